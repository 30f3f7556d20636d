#!/bin/bash
# Runs a command inside an unpacked Debian root filesystem as root, in a private mount and PID
# namespace whose root IS that file system (pivot_root), not a chroot: the kernel refuses to create
# a user namespace from inside a chroot (clone(2), CLONE_NEWUSER: EPERM "the caller is in a chroot
# environment"), and the job under test needs one. Inside: a fresh /proc (fully visible, which a
# nested container's own /proc mount requires), the host's /dev and /etc/resolv.conf (so apt can
# reach the machine's mirror). The host's root is detached before the command runs. Every mount
# lives in the private namespace and disappears with it.
#   enter-root.sh ROOT COMMAND [ARGS...]
set -euo pipefail
root=${1:?usage: enter-root.sh ROOT COMMAND [ARGS...]}
shift
[ $# -gt 0 ] || { echo "usage: enter-root.sh ROOT COMMAND [ARGS...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "enter-root: must run as root" >&2; exit 1; }
[ -x "$root/bin/sh" ] || { echo "enter-root: $root has no /bin/sh: not a root filesystem" >&2; exit 1; }
root=$(cd "$root" && pwd -P)

# The inner script runs in the new namespaces, still in the host's root until pivot_root.
exec unshare --mount --pid --fork --propagation private -- /bin/bash -euo pipefail -c '
  root=$1
  shift
  mount --bind "$root" "$root"          # pivot_root needs the new root to be a mount point
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  mkdir -p "$root/.host-root"
  cd "$root"
  pivot_root . .host-root
  cd /
  umount -l /.host-root
  rmdir /.host-root
  exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 "$@"
' enter-root "$root" "$@"
