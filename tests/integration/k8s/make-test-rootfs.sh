#!/bin/bash
# Makes the smallest root filesystem the k8s tests' Pods need: busybox-static and its applets.
# Independent of the runner's `rootfs` fixture so that the Kubernetes tests only need busybox.
set -euo pipefail
root=${1:?usage: make-test-rootfs.sh DIR}
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  echo "make-test-rootfs: a static busybox is needed (Debian package busybox-static)" >&2
  exit 1
fi
rm -rf "$root.tmp"
mkdir -p "$root.tmp"/{bin,tmp,proc,dev,etc,home,scratch}
chmod 1777 "$root.tmp/tmp"
cp "$busybox" "$root.tmp/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root.tmp/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root.tmp/etc/passwd"
echo 'root:x:0:' > "$root.tmp/etc/group"
chmod -R a+rX "$root.tmp"
rm -rf "$root"
mv "$root.tmp" "$root"
