#!/bin/sh
# docker.sh install|start [APT_MIRROR] — makes Docker and Compose v2 available and the daemon running.
#   install: installs missing packages with the distribution's package manager (apt: docker.io, plus
#            docker-compose-v2 on Ubuntu or docker-compose-plugin where offered), then starts the daemon.
#   start:   only starts the daemon (docker_install = "skip", or the daemon was stopped).
#   APT_MIRROR (`mirrors.apt`, e.g. http://mirrors.cloud.aliyuncs.com): apt reads every source of the host from that
#            base URL instead of its own scheme and host (the path kept), through a copy of the sources given to
#            apt for this install only; the host's apt configuration is not changed.
# Exit codes: 3 no apt-get, 4 no Compose v2 package, 5 the daemon did not start.
set -eu
mode="$1"
apt_mirror="${2:-}"
export DEBIAN_FRONTEND=noninteractive
aptopts=""
if [ "$mode" = install ] && [ -n "$apt_mirror" ]; then
  srcdir=$(mktemp -d)
  trap 'rm -rf "$srcdir"' EXIT
  mkdir "$srcdir/parts"
  # One-line sources (`deb [options] URI suite ...`) and deb822 ones (`URIs: ...`): scheme and host → the mirror.
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -E "s#^([[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z+]+:(//[^/[:space:]]*)?#\1$apt_mirror#" "$f"
  done >"$srcdir/sources.list"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed -E "s#^(URIs:[[:space:]]*)[a-z+]+:(//[^/[:space:]]*)?#\1$apt_mirror#" "$f" >"$srcdir/parts/$(basename "$f")"
  done
  aptopts="-o Dir::Etc::SourceList=$srcdir/sources.list -o Dir::Etc::SourceParts=$srcdir/parts"
fi
# A fresh Ubuntu runs unattended-upgrades at boot and holds the dpkg lock: wait for it rather than fail.
apt="apt-get -q -y -o DPkg::Lock::Timeout=900 -o Acquire::Retries=3 $aptopts"

wait_for_apt_lists() {
  i=0
  while command -v fuser >/dev/null 2>&1 && fuser /var/lib/apt/lists/lock >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 900 ] && break; sleep 1
  done
}

if [ "$mode" = install ]; then
  if ! command -v docker >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || {
      echo "this host has no apt-get: install Docker and Docker Compose v2 yourself, then apply again" >&2
      exit 3
    }
    wait_for_apt_lists
    $apt update
    command -v docker >/dev/null 2>&1 || $apt install docker.io
    if ! docker compose version >/dev/null 2>&1; then
      for p in docker-compose-v2 docker-compose-plugin; do
        # shellcheck disable=SC2086
        if apt-cache $aptopts show "$p" >/dev/null 2>&1 && $apt install "$p"; then break; fi
      done
    fi
    docker compose version >/dev/null 2>&1 || {
      echo "Docker Compose v2 is not offered by this distribution's packages (Ubuntu: docker-compose-v2); install it, then apply again" >&2
      exit 4
    }
  fi
  command -v curl >/dev/null 2>&1 || $apt install curl || true
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl enable --now docker >/dev/null 2>&1; then :
  else service docker start >/dev/null 2>&1 || true
  fi
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -gt 90 ] && { echo "the Docker daemon did not start within 90 s" >&2; exit 5; }
    sleep 1
  done
fi
docker version --format '{{.Server.Version}}'
