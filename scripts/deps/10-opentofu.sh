#!/usr/bin/env bash
# Real OpenTofu for the engine matrix, built from the Go module github.com/opentofu/opentofu (./cmd/tofu) into
# $CLOUDCODE_TEST_CACHE/tofu/<version>/tofu (default ~/.cache/cloudcode-test), once per version:
#   1.12.6  the current release: every engine-facing test runs under it beside terraform;
#   1.11.14 the oldest supported line: a smoke subset runs under it;
#   1.10.0  unsupported, only to show the version guard refusing it (built last, skipped with
#           CLOUDCODE_SKIP_TOFU_OLD=1).
# 1.12.6 builds cold in ~8 min on 2 cores; the others reuse most of Go's build cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${CLOUDCODE_TEST_CACHE:-$HOME/.cache/cloudcode-test}
# version  h1: hash of the module zip (go mod download -json .Sum), recorded here
VERSIONS=(
  "1.12.6  h1:0VT4P8pMmGcCUnQ9JDrJ+Qg2d35Vzm4FFd/9+H7oF98="
  "1.11.14 h1:GlCmAFAtainj2ZPISXj86bV2dHOZgGtt2ziOwQghxs0="
  "1.10.0  h1:G32w2K9c1IRIKmqXFKCkhNPQ4kw9prHC59Kn1tGl+QE="
)
for entry in "${VERSIONS[@]}"; do
  read -r version h1 <<<"$entry"
  [ "$version" != 1.10.0 ] || [ "${CLOUDCODE_SKIP_TOFU_OLD:-}" != 1 ] || continue
  out=$CACHE/tofu/$version/tofu
  bash scripts/deps/lib/gobuild.sh "tofu $version" github.com/opentofu/opentofu "v$version" "$h1" ./cmd/tofu "$out" \
    "-s -w -X github.com/opentofu/opentofu/version.dev=no"
  got=$(env -u TF_CLI_CONFIG_FILE "$out" version -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])')
  [ "$got" = "$version" ] || { echo "tofu at $out reports $got, expected $version: delete it to rebuild." >&2; exit 1; }
  echo "tofu $version ($out)"
done
