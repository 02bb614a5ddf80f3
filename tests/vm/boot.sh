#!/bin/bash
# PID 1 of a test VM (run by vm.sh inside the VM's network namespace, in new PID/mount/UTS namespaces):
#   boot.sh ROOT HOSTNAME DOCKER_DATA HOST_CGROUP_MOUNTS (the host's /proc/mounts lines for /sys/fs/cgroup)
# Mounts /proc, /sys (this namespace's), cgroups, /dev with its own devpts, /run and /var/lib/docker (an ext4
# directory, so dockerd can use overlay2) into ROOT, starts sshd through the service stand-in, prints "booted",
# then waits until fd 3 (the test's lifeline) closes. When PID 1 exits the kernel kills every process of the VM
# and the mount namespace with all its mounts disappears.
set -euo pipefail
root=$1; hostname=$2; docker_data=$3; host_cgroups=$4
hostname "$hostname"
mount --bind "$root" "$root"   # ROOT is a mount point of this namespace (pivot_root needs one)
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
# `ip netns exec` replaced /sys (and lost the host's cgroup mounts): mount the cgroup hierarchies the host has.
mount -t tmpfs -o mode=755 cgroup "$root/sys/fs/cgroup"
while read -r _ mnt fstype opts _; do
  case "$fstype" in
    cgroup) sub=${mnt#/sys/fs/cgroup/}; mkdir -p "$root/sys/fs/cgroup/$sub"
            mount -t cgroup -o "$(echo "$opts" | tr ',' '\n' | grep -vE '^(rw|ro|relatime|nosuid|nodev|noexec)$' | paste -sd,)" \
              cgroup "$root/sys/fs/cgroup/$sub" ;;
    cgroup2) sub=${mnt#/sys/fs/cgroup}; sub=${sub#/}; mkdir -p "$root/sys/fs/cgroup/$sub"
             mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup/$sub" ;;
  esac
done <"$host_cgroups"
mount --rbind /dev "$root/dev"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$root/dev/pts"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/run/lock" "$root/run/systemd/system"   # the latter: "systemd is running" for maintainer scripts
mount --bind "$docker_data" "$root/var/lib/docker"
# Make ROOT the root of this mount namespace (pivot_root, not chroot): runc's `exec` joins a container's
# mount namespace and lands at that namespace's root, which under a chroot would be the host's /.
cd "$root"
pivot_root . mnt
umount -l /mnt
cd /
/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  /usr/local/sbin/service ssh start 3<&- </dev/null >/dev/null
echo booted
read -r -u 3 _ || true
