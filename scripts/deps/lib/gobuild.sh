#!/usr/bin/env bash
# Builds one Go program from a module served by the Go module proxy into the test cache, once per version.
#   gobuild.sh NAME MODULE VERSION H1 PACKAGE OUT [LDFLAGS]
# The module is fetched with `go mod download -json` and built inside the directory it prints (these
# modules carry `replace` directives, so `go install mod@version` refuses). Its h1: hash must equal H1,
# recorded in the repository: when the checksum database does not answer, GONOSUMDB is set for this one
# module and the recorded hash is what vouches for the download. The binary lands at OUT only when the
# build succeeded (written beside it, then renamed), so an interrupted build is redone, never half-used.
set -euo pipefail
name=$1 module=$2 version=$3 want_h1=$4 pkg=$5 out=$6 ldflags=${7:-"-s -w"}
log() { printf '[deps %(%T)T] %s: %s\n' -1 "$name" "$*" >&2; }

[ -x "$out" ] && exit 0
command -v go >/dev/null || { echo "$name: Go is not on PATH (needed to build $module@$version)." >&2; exit 1; }

download() {
  # Runs in a scratch directory: outside any module, go mod download fetches exactly MODULE@VERSION.
  (cd "$(mktemp -d)" && go mod download -json "$module@$version")
}
if ! json=$(download 2>/dev/null) || printf '%s' "$json" | grep -q '"Error"'; then
  log "checksum database did not vouch for $module@$version; checking the recorded h1: hash instead"
  json=$(GONOSUMDB=$module GOFLAGS=-mod=mod download)
fi
field() { printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1],""))' "$1"; }
err=$(field Error)
[ -z "$err" ] || { echo "$name: go mod download $module@$version failed: $err" >&2; exit 1; }
got_h1=$(field Sum)
if [ "$got_h1" != "$want_h1" ]; then
  echo "$name: $module@$version has hash $got_h1, the repository records $want_h1: refusing to build it." >&2
  exit 1
fi
dir=$(field Dir)

log "building $pkg of $module@$version (cold: several minutes on 2 cores; Go's build cache keeps later builds short)"
start=$(date +%s)
mkdir -p "$(dirname "$out")"
# The module cache is read-only; the build writes only to Go's build cache and to OUT.
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
mv -f "$out.tmp" "$out"
log "built $out in $(( $(date +%s) - start )) s"
