#!/bin/bash
# Container start overhead: `kbatch exec ROOTFS -- /bin/true` against its peers, in one run of
# interleaved rounds (bench/interleave.py: every command once per round, so that the machine's
# drift slows all alike), as an unprivileged user, with kbatch's seccomp filter on (it always is).
# Prints each mean and its ratio to ch-run's (the target: kbatch/ch-run <= 1.0, never above 1.2).
# Also measured: kbatch-full (libexec/kbatch/kbatch-full beside a build tree's kbatch), the same
# exec in the executable that links every subsystem, which shows what the dynamic loader costs.
# Run as root, it measures kbatch a second time as a .deb installs it: under the packaged site
# policy (packaging/policy-installed.yaml) compiled by `kbatch policy compile`, whose seccomp filter
# is then precompiled, laid over /etc in a private mount namespace (tests/integration/
# with-site-policy.sh), against ch-run again in that same run.
#
# usage: bench/exec_start.sh KBATCH ROOTFS [USER] [RUNS]
#   KBATCH  the kbatch executable;  ROOTFS  a root filesystem directory holding /bin/true
#   USER    who runs the commands (default: kbtest when run as root, else yourself)
#   ROOTFS can be built with tests/integration/fixtures/make-rootfs.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kbatch=$(readlink -f "${1:?usage: exec_start.sh KBATCH ROOTFS [USER] [RUNS]}")
rootfs=$(readlink -f "${2:?usage: exec_start.sh KBATCH ROOTFS [USER] [RUNS]}")
user=${3:-$([ "$(id -u)" -eq 0 ] && echo kbtest || id -un)}
runs=${4:-200}
for tool in ch-run bwrap unshare /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "exec_start: $tool is not installed" >&2; exit 1; }
done
json=$(mktemp /tmp/kbatch-exec-start.XXXXXX.json)
chmod 666 "$json"
trap 'rm -f "$json"' EXIT

full=$(dirname "$kbatch")/libexec/kbatch/kbatch-full
[ -x "$full" ] || full=$(dirname "$kbatch")/../libexec/kbatch/kbatch-full
full_args=()
[ -x "$full" ] && full_args=(-n kbatch-full "$full exec $rootfs -- /bin/true")
echo "load before the run: $(uptime)" >&2

as_user=()
[ "$(id -un)" != "$user" ] && as_user=(runuser -u "$user" --)
# Run from / so that kbatch binds no working directory (ch-run binds none either).
cd /
interleave=$here/interleave.py
"${as_user[@]}" env USER="$user" /usr/bin/python3 "$interleave" --runs "$runs" --export-json "$json" \
  -n kbatch "$kbatch exec $rootfs -- /bin/true" \
  "${full_args[@]}" \
  -n ch-run "ch-run $rootfs -- /bin/true" \
  -n bwrap "bwrap --unshare-all --ro-bind $rootfs / --proc /proc --dev /dev /bin/true" \
  -n unshare "unshare -U -r -m -p -f chroot $rootfs /bin/true" \
  -n native "/bin/true" >&2

site_json=
if [ "$(id -u)" -eq 0 ]; then
  repo=$(dirname "$here")
  site_json=$(mktemp /tmp/kbatch-exec-start-site.XXXXXX.json)
  chmod 666 "$site_json"
  trap 'rm -f "$json" "$site_json"' EXIT
  "$repo/tests/integration/with-site-policy.sh" --compile "$kbatch" \
    "$repo/packaging/policy-installed.yaml" \
    runuser -u "$user" -- env USER="$user" /usr/bin/python3 "$interleave" --runs "$runs" \
    --export-json "$site_json" \
    -n "kbatch+site" "$kbatch exec $rootfs -- /bin/true" \
    -n ch-run "ch-run $rootfs -- /bin/true" >&2
fi

/usr/bin/python3 - "$json" "$site_json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
peer = results["ch-run"]["mean"]
print(f"{'runtime':<10} {'mean ms':>9} {'min ms':>8} {'max ms':>8} {'vs ch-run':>10}")
for name in ["kbatch", "kbatch-full", "ch-run", "bwrap", "unshare", "native"]:
    if name not in results:
        continue
    r = results[name]
    print(f"{name:<10} {r['mean']*1e3:9.2f} {r['min']*1e3:8.2f} {r['max']*1e3:8.2f} {r['mean']/peer:10.2f}")
ratio = results["kbatch"]["mean"] / peer
print(f"kbatch/ch-run = {ratio:.2f} (target <= 1.0, limit 1.2): "
      + ("OK" if ratio <= 1.0 else "ABOVE TARGET" if ratio <= 1.2 else "ABOVE LIMIT"))
if len(sys.argv) > 2 and sys.argv[2]:
    site = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
    k, c = site["kbatch+site"], site["ch-run"]
    print(f"as installed (compiled site policy, precompiled seccomp filter), second run: kbatch "
          f"{k['mean']*1e3:.2f} ms, ch-run {c['mean']*1e3:.2f} ms, kbatch/ch-run = "
          f"{k['mean']/c['mean']:.2f}")
PY
echo "load after the run: $(uptime)"
