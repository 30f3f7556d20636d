#!/bin/bash
# How close can any runner that does what issue #3 asks come to ch-run on this machine? Times,
# in one run of interleaved rounds (bench/interleave.py), as an unprivileged user:
#   ch-run         ch-run ROOTFS -- /bin/true (one process: unshare, a few binds, pivot_root, exec)
#   floor          bench/floor/runner_floor.c: kbatch's container set-up step for step in plain C
#                  (user+mount+PID+IPC namespaces, staging tmpfs, fresh /proc, minimal /dev, /tmp
#                  tmpfs, read-only image, PID 1 reaping the job, no_new_privs, every capability
#                  dropped, kbatch's default seccomp program), with no policy, no options, no
#                  signal forwarding and no separate init executable
#   floor-noseccomp  the same without the seccomp program
#   floor-init     the floor with kbatch's design of PID 1: a separate static init program that
#                  PID 1 execs (bench/floor/floor_init.c), instead of waiting itself
#   floor-lean     the floor with only what the issue names: no IPC namespace, no /sys, no staging
#                  tmpfs (one pivot_root straight into the image bound onto itself)
#   kbatch         kbatch exec ROOTFS -- /bin/true, no site policy
# and prints each mean and its ratio to ch-run. The floor is not a runner (it checks nothing), only
# the cost of the required work; kbatch minus floor is what kbatch's own code adds.
#   usage: bench/runner_floor.sh BUILD_DIR ROOTFS [USER] [RUNS]   (as root: runs as USER, kbtest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: runner_floor.sh BUILD_DIR ROOTFS [USER] [RUNS]}" && pwd)
rootfs=$(readlink -f "${2:?usage: runner_floor.sh BUILD_DIR ROOTFS [USER] [RUNS]}")
user=${3:-$([ "$(id -u)" -eq 0 ] && echo kbtest || id -un)}
runs=${4:-200}
for tool in ch-run gcc g++ /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "runner_floor: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d /tmp/kbatch-floor.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -Wextra -o "$work/runner_floor" "$here/floor/runner_floor.c"
gcc -O2 -Wall -Wextra -static -nostdlib -fno-stack-protector -o "$work/floor_init" "$here/floor/floor_init.c"
g++ -std=c++20 -O2 -I"$here/../policy/include" -I"$here/../runner/include" \
  -I"$here/../common/include" "$here/floor/runner_floor_bpf.cc" "$build/runner/libkbatch_runner.a" \
  "$build/policy/libkbatch_policy.a" "$build/common/libkbatch_common.a" -lseccomp -lcap \
  -o "$work/runner_floor_bpf"
"$work/runner_floor_bpf" "$work/default.bpf" >&2
chmod 644 "$work/default.bpf"
as_user=()
[ "$(id -un)" != "$user" ] && as_user=(runuser -u "$user" --)
# Each must run the job: a floor that fails would time nothing.
for check in "$work/runner_floor --seccomp $work/default.bpf $rootfs /bin/true" \
             "$work/runner_floor $rootfs /bin/true" \
             "$work/runner_floor --seccomp $work/default.bpf --init $work/floor_init $rootfs /bin/true" \
             "$work/runner_floor --seccomp $work/default.bpf --lean $rootfs /bin/true"; do
  (cd / && "${as_user[@]}" $check) || { echo "runner_floor: '$check' failed ($?)" >&2; exit 1; }
done
out=$(cd / && "${as_user[@]}" "$work/runner_floor" --seccomp "$work/default.bpf" "$rootfs" \
  /bin/sh -c 'grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/self/status; echo pid $$')
grep -q "^Seccomp:[[:space:]]*2" <<<"$out" && grep -q "pid 2" <<<"$out" &&
  grep -q "^CapEff:[[:space:]]*0*$" <<<"$out" ||
  { echo "runner_floor: the floor's job is not confined as kbatch's is: $out" >&2; exit 1; }
: >"$work/result.json" && chmod 666 "$work/result.json"
echo "load before the run: $(uptime)" >&2
cd /
"${as_user[@]}" env USER="$user" /usr/bin/python3 "$here/interleave.py" --runs "$runs" \
  --export-json "$work/result.json" \
  -n ch-run "ch-run $rootfs -- /bin/true" \
  -n floor "$work/runner_floor --seccomp $work/default.bpf $rootfs /bin/true" \
  -n floor-noseccomp "$work/runner_floor $rootfs /bin/true" \
  -n floor-init "$work/runner_floor --seccomp $work/default.bpf --init $work/floor_init $rootfs /bin/true" \
  -n floor-lean "$work/runner_floor --seccomp $work/default.bpf --lean $rootfs /bin/true" \
  -n kbatch "$build/kbatch exec $rootfs -- /bin/true" >&2
echo "load after the run: $(uptime)" >&2
/usr/bin/python3 - "$work/result.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
base = results["ch-run"]["mean"]
print("runtime          mean ms  median ms  vs ch-run")
for name in ("ch-run", "floor", "floor-noseccomp", "floor-init", "floor-lean", "kbatch"):
    r = results[name]
    print(f"{name:<16} {r['mean'] * 1e3:7.2f}  {r['median'] * 1e3:9.2f}  {r['mean'] / base:9.2f}")
PY
