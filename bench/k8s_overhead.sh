#!/bin/bash
# kbatch's own overhead per Pod against `kubectl run --rm -i --restart=Never` doing the same job
# against the same k8s test server, in one run of interleaved rounds (bench/interleave.py: every
# command once per round, so that the machine's drift slows all alike). The container's own run
# time is measured too (the server's runtime running `true` directly) and subtracted for "own
# overhead". kbatch runs under the k8s tests' site policy, compiled as a .deb installs it. The
# image names a registry on localhost that is not there: kbatch's digest lookup fails at once
# on the loopback address (a real registry costs one round trip more), and no query leaves the
# machine. Each command is a one-line bash script, so each side pays the same shell start.
# Another command, bench/floor/k8s_floor.c, makes the same API calls as kbatch in plain C on
# libcurl and nothing else (no policy, no kubeconfig, no threads, no checks): the least any client
# of this server can cost here. "floor - container alone" is the part of the own overhead that no
# client can avoid on this machine: libcurl's loading, TLS, and the test server's own time.
#   bench/k8s_overhead.sh BUILD_DIR [RUNTIME] [RUNS]    RUNTIME: kbatch (default) or host
# Must run as root (the server's kubelet runs Pods as their runAsUser); kbatch runs as `kbtest`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# `kbatch k8s run` obeys the site policy: run under the k8s tests' one, which allows the backend.
if [ "${KBATCH_BENCH_SITE_POLICY:-}" != 1 ]; then
  exec env KBATCH_BENCH_SITE_POLICY=1 "$here/../tests/integration/with-site-policy.sh" \
    --compile "${KBATCH:-${1:?usage: k8s_overhead.sh BUILD_DIR [RUNTIME] [RUNS]}/kbatch}" \
    "$here/../tests/integration/k8s/site-policy.yaml" "$here/$(basename "$0")" "$@"
fi
build=$(cd "${1:?usage: k8s_overhead.sh BUILD_DIR [RUNTIME] [RUNS]}" && pwd)
runtime=${2:-kbatch}
runs=${3:-20}
kbatch=${KBATCH:-$build/kbatch}
tests=$here/../tests/integration/k8s
state=$(mktemp -d /tmp/kbatch-k8s-bench.XXXXXX)
chmod 755 "$state"
trap '"$tests/stop-server.sh" "$state/server"; rm -rf "$state"' EXIT
user=kbtest
id "$user" >/dev/null
"$tests/start-server.sh" "$state/server" "$kbatch" "$runtime" >/dev/null
export KUBECONFIG=$state/server/kubeconfig
uid=$(id -u $user)
overrides=$(printf '{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":%s,"runAsGroup":%s,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"kbench","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true}}]}}' "$uid" "$uid")
# Every command runs as $user through setpriv, which adds one exec and nothing else (runuser
# would add a PAM session, about 20 ms here, to each side).
as_user="setpriv --reuid=$user --regid=$user --init-groups env HOME=$state KUBECONFIG=$KUBECONFIG"
chmod 644 "$KUBECONFIG"
mkdir -p "$state/kcache" && chown "$user" "$state/kcache"
if [ "$runtime" = kbatch ]; then
  container="$as_user $kbatch exec --image $state/server/rootfs -- true"
else
  container="$as_user true"
fi
image=localhost/kbatch-test/busybox:1
gcc -O2 -Wall -Wextra -o "$state/k8s_floor" "$here/floor/k8s_floor.c" -lcurl
printf '#!/bin/bash\nexec %s\n' "$as_user $state/k8s_floor $(cat "$state/server/url") $state/server/ca.crt $(cat "$state/server/token") $(hostname -s) default $image $uid" >"$state/floor.sh"
printf '#!/bin/bash\nexec %s\n' "$container" >"$state/container-alone.sh"
printf '#!/bin/bash\nexec %s\n' "$as_user /bin/true" >"$state/harness.sh"
printf '#!/bin/bash\nexec %s\n' "$as_user $kbatch k8s run --image $image -- true" >"$state/kbatch.sh"
printf '#!/bin/bash\nexec %s\n' "$as_user kubectl --cache-dir $state/kcache run kbench --rm -i --restart=Never --image=$image --override-type=strategic --overrides='$overrides' -- true" >"$state/kubectl.sh"
chmod 755 "$state"/*.sh
echo "load before the run: $(uptime)" >&2
/usr/bin/python3 "$here/interleave.py" --warmup 2 --runs "$runs" --export-json "$state/result.json" \
  -n harness "$state/harness.sh" \
  -n container-alone "$state/container-alone.sh" \
  -n kbatch "$state/kbatch.sh" \
  -n floor "$state/floor.sh" \
  -n kubectl "$state/kubectl.sh" >&2
python3 - "$state/result.json" <<'PY'
import json, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
container = results["container-alone"]["median"]
kb = results["kbatch"]["median"]
kc = results["kubectl"]["median"]
print("median seconds over %d interleaved rounds: container alone %.3f, kbatch %.3f, kubectl %.3f"
      % (len(results["kbatch"]["times"]), container, kb, kc))
print("kbatch / kubectl = %.2f (target <= 0.5)" % (kb / kc))
floor = results["floor"]["median"]
print("kbatch's own overhead (kbatch - container alone) = %.0f ms (target < 50 ms)"
      % ((kb - container) * 1000))
print("floor: a minimal client (bench/floor/k8s_floor.c) %.3f s, own overhead %.0f ms; "
      "kbatch - floor = %.0f ms" % (floor, (floor - container) * 1000, (kb - floor) * 1000))
# The first and the last rounds alike, or the test server slows down as Pods pass through it
# (it did, before it ended the watches of clients that had left).
times = results["kbatch"]["times"]
window = max(1, min(20, len(times) // 4))
print("kbatch median of the first and the last %d rounds: %.1f / %.1f ms"
      % (window, statistics.median(times[:window]) * 1000, statistics.median(times[-window:]) * 1000))
# CPU per Pod on the client's side: each command's user + system time, all threads, minus that
# of the shell, setpriv and env every command starts with ("harness": the same line around
# /bin/true). The test server's and the container's CPU are not in it.
harness = results["harness"]["cpu_median"]
print("client CPU per Pod (median, minus the shell harness's %.1f ms): kbatch %.1f ms, "
      "floor %.1f ms, kubectl %.1f ms"
      % (harness * 1000, (results["kbatch"]["cpu_median"] - harness) * 1000,
         (results["floor"]["cpu_median"] - harness) * 1000,
         (results["kubectl"]["cpu_median"] - harness) * 1000))
PY
