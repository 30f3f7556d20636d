#!/bin/bash
# Runs a command with a test site policy in place of /etc/kbatch/policy.yaml, without touching the
# host's /etc: in a private mount namespace, POLICY is laid read-only over /etc (overlayfs) as
# kbatch/policy.yaml, root-owned and 0644 as a site installs it. Processes the command starts
# (kbatch run as the test user through runuser included) see the same /etc.
#   with-site-policy.sh POLICY CMD [ARGS...]      (as root)
set -euo pipefail
policy=${1:?usage: with-site-policy.sh POLICY CMD [ARGS...]}
shift
[ $# -gt 0 ] || { echo "usage: with-site-policy.sh POLICY CMD [ARGS...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "with-site-policy: must run as root (it mounts over /etc)" >&2; exit 1; }
[ -f "$policy" ] || { echo "with-site-policy: $policy: no such file" >&2; exit 1; }
policy=$(readlink -f "$policy")
if [ "${KBATCH_WITH_SITE_POLICY:-}" != "$policy" ]; then
  exec env KBATCH_WITH_SITE_POLICY="$policy" unshare --mount --propagation private -- "$0" "$policy" "$@"
fi
unset KBATCH_WITH_SITE_POLICY
layer=$(mktemp -d /tmp/kbatch-site-policy.XXXXXX)
mount -t tmpfs -o mode=0755 kbatch-site-policy "$layer"
install -d -m 0755 -o root -g root "$layer/kbatch"
install -m 0644 -o root -g root "$policy" "$layer/kbatch/policy.yaml"
mount -t overlay overlay -o "ro,lowerdir=$layer:/etc" /etc
# The overlay keeps the tmpfs alive; its mount point goes, so nothing is left in /tmp.
umount -l "$layer"
rmdir "$layer"
exec "$@"
