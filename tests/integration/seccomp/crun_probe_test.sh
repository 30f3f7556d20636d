#!/bin/bash
# crun_probe_test.sh KBATCH PROBE profile|no_profile POLICY
# Runs kbatch_syscall_probe as the only program of an OCI container under crun (as root).
#   profile:    the container's linux.seccomp is `kbatch policy seccomp --format oci`; every syscall
#               that profile denies must fail with the profile's errno, and the probe must have tried each one;
#               a thread and a fork must still work.
#   no_profile: the same container without seccomp; at least one call must NOT fail as the profile says,
#               so that the first mode is known to be able to fail.
set -euo pipefail
kbatch=${1:?usage: crun_probe_test.sh KBATCH PROBE profile|no_profile}
probe=${2:?}
mode=${3:?}
policy=${4:?usage: crun_probe_test.sh KBATCH PROBE profile|no_profile POLICY}
python=/usr/bin/python3

fail() { echo "crun_probe_test: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (label 'root'): crun needs it to create the container"
command -v crun >/dev/null || fail "crun is not installed (apt-get install crun)"

bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
mkdir "$bundle/rootfs"
cp "$probe" "$bundle/rootfs/kbatch_syscall_probe"
(cd "$bundle" && crun spec)
# The profile of a policy that asks for the built-in default, whatever this machine's site policy.
"$kbatch" policy seccomp --format oci --policy "$policy" > "$bundle/profile.json"

"$python" - "$bundle" "$mode" <<'PY'
import json, sys
bundle, mode = sys.argv[1], sys.argv[2]
with open(f"{bundle}/config.json") as f:
    config = json.load(f)
config["process"]["args"] = ["/kbatch_syscall_probe"]
config["process"]["terminal"] = False
if mode == "profile":
    with open(f"{bundle}/profile.json") as f:
        config["linux"]["seccomp"] = json.load(f)
else:
    config["linux"].pop("seccomp", None)
with open(f"{bundle}/config.json", "w") as f:
    json.dump(config, f, indent=1)
PY

# crun 1.8 refuses a cgroup "hybrid" host (v1 controllers plus a cgroup2 mount that has
# controllers of its own, as in some CI containers). There, run it in a private mount namespace
# without the cgroup2 mount, which leaves a plain cgroup v1 layout.
run_crun=(crun run --bundle "$bundle" "kbatch-probe-$$-$mode")
set +e
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != "cgroup2fs" ] &&
   mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
  unshare -m --propagation private bash -c 'umount /sys/fs/cgroup/unified && exec "$@"' _ \
    "${run_crun[@]}" > "$bundle/out" 2> "$bundle/err"
else
  "${run_crun[@]}" > "$bundle/out" 2> "$bundle/err"
fi
rc=$?
set -e
cat "$bundle/out"
[ -s "$bundle/out" ] || { cat "$bundle/err" >&2; fail "the probe printed nothing (crun exit $rc)"; }
grep -q "refusing to run" "$bundle/err" && { cat "$bundle/err" >&2; fail "probe refused to run"; }

"$python" - "$bundle" "$mode" "$rc" <<'PY'
import errno, json, sys
bundle, mode, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
results = {}
for line in open(f"{bundle}/out"):
    name, _, outcome = line.strip().partition(" ")
    results[name] = outcome
profile = json.load(open(f"{bundle}/profile.json"))
# The errno each denied syscall must fail with, as the profile says (EPERM unless errnoRet).
expected = {n: errno.errorcode[rule.get("errnoRet", errno.EPERM)]
            for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO"
            for n in rule["names"]}
missing = [n for n in expected if n not in results]
if missing:
    sys.exit(f"the probe does not exercise {missing}: add them to syscall_probe.c")
tried = {n: results[n] for n in expected if results[n] != "skipped"}
differs = {n: o for n, o in tried.items() if o != expected[n]}
if mode == "profile":
    if differs or rc != 0:
        sys.exit(f"under the profile these did not fail with the profile's errno: {differs}; "
                 f"thread {results.get('pthread_create')}, fork {results.get('fork')} "
                 f"(probe exit {rc})")
    for needed in ("pthread_create", "fork", "process_vm_readv"):
        if results.get(needed) != "OK":
            sys.exit(f"the profile broke {needed}: {results.get(needed)} (probe exit {rc})")
    print(f"crun with the kbatch profile: all {len(tried)} syscalls failed with the profile's "
          f"errno ({len(expected) - len(tried)} do not exist on this architecture); "
          f"threads, fork and cross-memory attach work")
else:
    if not differs or rc == 0:
        sys.exit("without the profile every call still failed with the profile's errno: "
                 "the profile test could not tell a missing profile apart")
    print(f"crun without a profile: {len(differs)} of {len(tried)} calls did not fail as the "
          f"profile says, e.g. {sorted(differs.items())[:3]}")
PY
