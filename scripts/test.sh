#!/usr/bin/env bash
# The README's test command: installs everything the tests need on a fresh machine, then runs them.
# Each scripts/deps/NN-*.sh is idempotent and installs one group of test dependencies; heavy builds (OpenTofu,
# the alicloud provider, the test VM) are cached outside the checkout in $CLOUDCODE_TEST_CACHE
# (~/.cache/cloudcode-test), so a run in a fresh clone on the same machine reuses them.
#
# The engine matrix (tests/src/engine.rs): CLOUDCODE_TEST_ENGINES lists the engines the engine-facing tests
# run under (default terraform, tofu 1.12.6 and tofu 1.11.14); a line per engine at the end counts its runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLOUDCODE_TEST_CACHE=${CLOUDCODE_TEST_CACHE:-$HOME/.cache/cloudcode-test}
for dep in scripts/deps/*.sh; do
  [ -e "$dep" ] || continue
  echo "== deps: $dep" >&2
  start=$(date +%s)
  bash "$dep"
  echo "== deps: $dep took $(( $(date +%s) - start )) s" >&2
done
export PATH="$PWD/.cache/bin:$PATH"
# Compiled dependencies are reused across clones like the other heavy builds: a warm run recompiles only this
# workspace's crates. Keyed by the compiler, so a toolchain change starts afresh.
rustc_key=$(rustc -V | sha256sum | cut -c1-12)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CLOUDCODE_TEST_CACHE/cargo-target-$rustc_key}
export CLOUDCODE_TEST_ENGINES=${CLOUDCODE_TEST_ENGINES:-terraform,tofu@1.12.6,tofu@1.11.14}
engine_log=$(mktemp)
export CLOUDCODE_TEST_ENGINE_LOG=$engine_log
trap 'rm -f "$engine_log"' EXIT

status=0
if [ "$#" -gt 0 ]; then
  cargo test --workspace --locked "$@" || status=$?
else
  # Every test binary, two at a time (scripts/run-tests.sh says why).
  bash scripts/run-tests.sh || status=$?
fi

# Per-engine counts of the scenarios run under each engine (a test under three engines counts once for each).
echo "== engine matrix ($CLOUDCODE_TEST_ENGINES)"
if [ -s "$engine_log" ]; then
  awk -F'\t' '{ n[$1]++; if ($3 == "pass") p[$1]++; else f[$1]++ }
    END { for (e in n) printf "   engine %s: %d scenario runs, %d passed, %d failed\n", e, n[e], p[e], f[e] }' \
    "$engine_log" | sort
else
  echo "   no engine-facing test ran"
fi
exit "$status"
