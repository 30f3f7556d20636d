#!/bin/bash
# Runs a command with a test site policy in place of /etc/kbatch/policy.yaml, without touching the
# host's /etc: in a private mount namespace, POLICY is laid read-only over /etc (overlayfs) as
# kbatch/policy.yaml, root-owned and 0644 as a site installs it. Processes the command starts
# (kbatch run as the test user through runuser included) see the same /etc.
#   with-site-policy.sh [OPTIONS] POLICY CMD [ARGS...]      (as root)
# Options, for the compiled policy (/etc/kbatch/policy.yaml.compiled, `kbatch policy compile`):
#   --compile KBATCH         compile POLICY with KBATCH, as an admin does after installing it
#   --compiled-from OTHER    compile OTHER instead (a policy edited after it was compiled)
#   --compiled-mode MODE     chmod the compiled file (e.g. 0666: a cache kbatch must not trust)
set -euo pipefail
usage="usage: with-site-policy.sh [--compile KBATCH [--compiled-from OTHER] [--compiled-mode MODE]] POLICY CMD [ARGS...]"
all_args=("$@")
compiler='' compiled_from='' compiled_mode=''
while [ $# -gt 0 ]; do
  case $1 in
    --compile) compiler=${2:?$usage}; shift 2 ;;
    --compiled-from) compiled_from=$(readlink -f "${2:?$usage}"); shift 2 ;;
    --compiled-mode) compiled_mode=${2:?$usage}; shift 2 ;;
    --*) echo "with-site-policy: unknown option '$1'; $usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
policy=${1:?$usage}
shift
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "with-site-policy: must run as root (it mounts over /etc)" >&2; exit 1; }
[ -f "$policy" ] || { echo "with-site-policy: $policy: no such file" >&2; exit 1; }
policy=$(readlink -f "$policy")
if [ "${KBATCH_WITH_SITE_POLICY:-}" != "$policy" ]; then
  exec env KBATCH_WITH_SITE_POLICY="$policy" unshare --mount --propagation private -- "$0" "${all_args[@]}"
fi
unset KBATCH_WITH_SITE_POLICY
layer=$(mktemp -d /tmp/kbatch-site-policy.XXXXXX)
mount -t tmpfs -o mode=0755 kbatch-site-policy "$layer"
install -d -m 0755 -o root -g root "$layer/kbatch"
install -m 0644 -o root -g root "$policy" "$layer/kbatch/policy.yaml"
if [ -n "$compiler" ]; then
  source_policy=$layer/kbatch/policy.yaml
  if [ -n "$compiled_from" ]; then
    install -m 0644 -o root -g root "$compiled_from" "$layer/compiled-from.yaml"
    source_policy=$layer/compiled-from.yaml
  fi
  "$compiler" policy compile --policy "$source_policy" --output "$layer/kbatch/policy.yaml.compiled" >/dev/null
  [ -z "$compiled_mode" ] || chmod "$compiled_mode" "$layer/kbatch/policy.yaml.compiled"
fi
mount -t overlay overlay -o "ro,lowerdir=$layer:/etc" /etc
# The overlay keeps the tmpfs alive; its mount point goes, so nothing is left in /tmp.
umount -l "$layer"
rmdir "$layer"
exec "$@"
