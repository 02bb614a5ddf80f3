#!/usr/bin/env bash
# The README's test command: installs everything the tests need on a fresh machine, then runs them.
# Each scripts/deps/NN-*.sh is idempotent and installs one group of test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
for dep in scripts/deps/*.sh; do
  [ -e "$dep" ] || continue
  echo "== deps: $dep" >&2
  bash "$dep"
done
export PATH="$PWD/.cache/bin:$PATH"
cargo test --workspace --locked "$@"
