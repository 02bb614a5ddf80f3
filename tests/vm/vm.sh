#!/usr/bin/env bash
# Runs one test VM for as long as its standard input (the "lifeline", a pipe from the test process) stays open:
#   vm.sh [--user NAME] --authorized-key FILE <PIPE
# Takes a free slot N (flock under /run/lock/cloudcode-testvm), cleans up whatever a crashed run left in that
# slot, mounts an overlay of the cached vm-rootfs, creates network namespace cctvmN with a veth pair
# (host 10.231.N.1/30 <-> VM 10.231.N.2/30, no default route inside) and boots the VM (boot.sh) in new
# PID/mount/UTS namespaces. Prints one line "ready key=value..." on stdout, then waits for EOF on stdin and
# tears everything down (processes, mounts, namespace, cgroups, files) before printing "down".
set -euo pipefail
exec 3<&0 </dev/null   # fd 3: the lifeline (boot.sh, the VM's PID 1, watches it too)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CLOUDCODE_TESTVM_CACHE:-${CLOUDCODE_TEST_CACHE:-$HOME/.cache/cloudcode-test}/testvm}
LOCKS=/run/lock/cloudcode-testvm
MAX_SLOTS=64
user=root; authorized_key=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=$2; shift ;;
    --authorized-key) authorized_key=$2; shift ;;
    *) echo "vm.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$authorized_key" ] || { echo "vm.sh: --authorized-key is required" >&2; exit 2; }
[ -d "$CACHE/vm-rootfs" ] || { echo "vm.sh: $CACHE/vm-rootfs missing: run tests/vm/build.sh" >&2; exit 2; }
log() { printf '[testvm %(%T)T] %s\n' -1 "$*" >&2; }

mkdir -p "$LOCKS"
slot=""
for n in $(seq 0 $((MAX_SLOTS - 1))); do
  exec {lockfd}>"$LOCKS/slot$n.lock"
  if flock -n "$lockfd"; then slot=$n; break; fi
  exec {lockfd}>&-
done
[ -n "$slot" ] || { echo "vm.sh: all $MAX_SLOTS slots busy" >&2; exit 1; }

ns=cctvm$slot
veth=cctvm${slot}h
host_ip=10.231.$slot.1
vm_ip=10.231.$slot.2
dir=$CACHE/vms/slot$slot
root=$dir/root
cgparent=cloudcode-testvm-$slot
unshare_pid=""
pid1=""

kill_ns_processes() {
  local pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] && return 0; sleep 0.1; done
  return 1
}
teardown() { # idempotent: also cleans what a crashed run left in this slot
  log "teardown of slot $slot"
  if [ -n "$unshare_pid" ]; then
    # Killing the VM's PID 1 kills every process of the VM; unshare then reaps it and exits.
    [ -z "${pid1:-}" ] || kill -9 "$pid1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$unshare_pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$unshare_pid" 2>/dev/null || true   # --kill-child
    wait "$unshare_pid" 2>/dev/null || true
  fi
  log "processes stopped"
  if ip netns list | grep -qw "^$ns"; then kill_ns_processes || log "processes left in $ns"; fi
  # Mounts under the slot dir (the overlay root, and anything a crashed run left), deepest first.
  awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$veth" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/"$cgparent"; do   # cgroups docker made for this VM's containers
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  log "unmounted, namespace deleted"
  rm -rf "$dir"
  log "teardown done"
}
teardown
trap 'teardown; echo down' EXIT

t0=$(date +%s%N)
mkdir -p "$dir"/{upper,work,root,docker}
mount -t overlay overlay -o "lowerdir=$CACHE/vm-rootfs,upperdir=$dir/upper,workdir=$dir/work" "$root"
echo "$ns" >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$ns" >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
echo "--cgroup-parent=/$cgparent" >"$root/etc/cloudcode-testvm/dockerd.args"
chroot "$root" /usr/bin/ssh-keygen -A -q >/dev/null
install -d -m 700 "$root/root/.ssh"
install -m 600 "$authorized_key" "$root/root/.ssh/authorized_keys"
if [ "$user" != root ]; then
  chroot "$root" /usr/sbin/useradd -m -s /bin/bash "$user"
  install -d -m 700 "$root/home/$user/.ssh"
  install -m 600 "$authorized_key" "$root/home/$user/.ssh/authorized_keys"
  chroot "$root" chown -R "$user:$user" "/home/$user/.ssh"
  echo "$user ALL=(ALL) NOPASSWD:ALL" >"$root/etc/sudoers.d/90-$user"; chmod 440 "$root/etc/sudoers.d/90-$user"
fi

grep -E ' /sys/fs/cgroup[ /]' /proc/self/mounts >"$dir/host-cgroups" || true

ip netns add "$ns"
ip link add "$veth" type veth peer name eth0 netns "$ns"
ip addr add "$host_ip/30" dev "$veth"; ip link set "$veth" up
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$vm_ip/30" dev eth0; ip -n "$ns" link set eth0 up

# The VM: PID 1 is boot.sh (mounts, starts sshd, then waits for the lifeline to close).
ip netns exec "$ns" unshare --pid --mount --uts --fork --kill-child \
  /bin/bash "$HERE/boot.sh" "$root" "$ns" "$dir/docker" "$dir/host-cgroups" {lockfd}>&- >"$dir/boot.out" 2>"$dir/boot.log" &
unshare_pid=$!
for _ in $(seq 1 300); do
  grep -q '^booted' "$dir/boot.out" 2>/dev/null && break
  kill -0 "$unshare_pid" 2>/dev/null || { cat "$dir/boot.log" >&2; exit 1; }
  sleep 0.05
done
grep -q '^booted' "$dir/boot.out" || { echo "vm.sh: VM did not boot" >&2; cat "$dir/boot.log" >&2; exit 1; }
pid1=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" | awk '{print $1}')
t1=$(date +%s%N)
echo "ready slot=$slot ns=$ns ip=$vm_ip host_ip=$host_ip port=22 pid1=$pid1 root=$root dir=$dir boot_ms=$(( (t1 - t0) / 1000000 ))"
read -r -u 3 _ || true   # blocks until the test process closes (or loses) the lifeline
