#!/usr/bin/env bash
# Test VM (tests/vm, tests/src/vm): host packages, then the cached rootfs, offline apt repo and image archives
# (tests/vm/build.sh: ~5 min cold, well under a second when cached).
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
for tool in debootstrap:debootstrap apt-ftparchive:apt-utils ip:iproute2 ssh:openssh-client ssh-keygen:openssh-client \
            nsenter:util-linux unshare:util-linux flock:util-linux busybox:busybox-static curl:curl unzip:unzip \
            npm:npm pip:python3-pip tinyproxy:tinyproxy-bin skopeo:skopeo docker-registry:docker-registry; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
[ -x /bin/busybox ] || { echo "40-testvm: /bin/busybox missing (busybox-static)" >&2; exit 1; }
exec bash tests/vm/build.sh
