#!/bin/bash
# Where the time of one `kbatch k8s run --image IMAGE -- true` goes, phase by phase, against the
# k8s test server: bench/k8s_overhead.sh says how long, this says where. The kernel's tracer
# (ftrace: exec and exit events, and uprobes on a few functions of kbatch-k8s) timestamps each
# run without slowing it down as strace would; the script prints each phase's median over RUNS.
#   bench/k8s_timeline.sh BUILD_DIR [RUNS]      (as root: ftrace; kbatch runs as kbtest)
# Phases: harness (bash, setpriv, env: the same for every command of k8s_overhead.sh); the front
# end's exec of kbatch-k8s; kbatch-k8s's dynamic loading (libcurl's chain); the policy; the
# kubeconfig; the node lookup with the first TLS handshake; the POST and the test server until it
# starts the Pod's process; the Pod's process (setpriv and `kbatch exec`, the container itself);
# from its exit to kbatch's (the watch event, the log's end, the DELETE, kbatch's exit).
set -euo pipefail
if [ "${KBATCH_BENCH_SITE_POLICY:-}" != 1 ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  exec env KBATCH_BENCH_SITE_POLICY=1 "$here/../tests/integration/with-site-policy.sh" \
    --compile "${1:?usage: k8s_timeline.sh BUILD_DIR [RUNS]}/kbatch" \
    "$here/../tests/integration/k8s/site-policy.yaml" "$here/$(basename "$0")" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: k8s_timeline.sh BUILD_DIR [RUNS]}" && pwd)
runs=${2:-15}
tracing=/sys/kernel/tracing
helper=$build/libexec/kbatch/kbatch-k8s
[ -w "$tracing/uprobe_events" ] || { echo "k8s_timeline: needs root and ftrace ($tracing)" >&2; exit 1; }
tests=$here/../tests/integration/k8s
state=$(mktemp -d /tmp/kbatch-k8s-timeline.XXXXXX)
chmod 755 "$state"
cleanup() {
  echo 0 >"$tracing/tracing_on"
  echo >"$tracing/set_event"
  echo 0 >"$tracing/events/kbatch_timeline/enable" 2>/dev/null || true
  echo >"$tracing/uprobe_events"
  "$tests/stop-server.sh" "$state/server"
  rm -rf "$state"
}
trap cleanup EXIT
"$tests/start-server.sh" "$state/server" "$build/kbatch" >/dev/null
chmod 644 "$state/server/kubeconfig"

# Uprobes on kbatch-k8s's own functions, found by their names.
address() {
  nm -C "$helper" | grep -F -e "$1" | grep -v -e cold -e _State -e lambda | head -1 |
    awk '{print "0x" $1}'
}
echo 0 >"$tracing/tracing_on"
echo >"$tracing/set_event"
echo >"$tracing/uprobe_events"
probe() {
  local where
  where=$(address "$2")
  [ -n "$where" ] || { echo "k8s_timeline: no function '$2' in $helper" >&2; exit 1; }
  echo "p:kbatch_timeline/$1 $helper:$where" >>"$tracing/uprobe_events"
}
echo "p:kbatch_timeline/main $helper:0x$(nm "$helper" | awk '$3 == "main" {print $1}')" \
  >>"$tracing/uprobe_events"
probe policy "kbatch::policy::loadSitePolicy()"
probe kubeconfig "kbatch::k8s::loadClusterAccess("
probe node_lookup "kbatch::k8s::resolveNodeName("
probe manifest "kbatch::k8s::buildPodManifest("
echo 1 >"$tracing/events/kbatch_timeline/enable"
echo sched:sched_process_exec >>"$tracing/set_event"
echo sched:sched_process_exit >>"$tracing/set_event"

as_user="setpriv --reuid=kbtest --regid=kbtest --init-groups env HOME=$state KUBECONFIG=$state/server/kubeconfig"
printf '#!/bin/bash\nexec %s\n' "$as_user $build/kbatch k8s run --image localhost/kbatch-test/busybox:1 -- true" \
  >"$state/kbatch.sh"
chmod 755 "$state/kbatch.sh"
for _ in 1 2 3; do "$state/kbatch.sh"; done  # warm the page cache and the server
for i in $(seq "$runs"); do
  echo >"$tracing/trace"
  echo 1 >"$tracing/tracing_on"
  "$state/kbatch.sh"
  echo 0 >"$tracing/tracing_on"
  cp "$tracing/trace" "$state/trace.$i"
done

/usr/bin/python3 - "$state" "$runs" <<'PY'
import re, statistics, sys
state, runs = sys.argv[1], int(sys.argv[2])
line_re = re.compile(r"\s*(.+?)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\S+?): (.*)")
phases = {}
for i in range(1, runs + 1):
    events = []
    for line in open("%s/trace.%d" % (state, i)):
        m = line_re.match(line)
        if m:
            events.append((float(m.group(3)) * 1000, int(m.group(2)), m.group(4), m.group(5)))

    def first(pred):
        return next((e for e in events if pred(e)), None)

    def last(pred):
        found = [e for e in events if pred(e)]
        return found[-1] if found else None

    start = first(lambda e: e[2] == "sched_process_exec" and "kbatch.sh" in e[3])
    helper = first(lambda e: e[2] == "sched_process_exec" and "libexec/kbatch/kbatch-k8s" in e[3])
    pid = helper[1]
    front = first(lambda e: e[2] == "sched_process_exec" and e[1] == pid and
                  re.search(r"filename=\S*/kbatch pid", e[3]))
    marks = {name: first(lambda e, n=name: e[2] == n and e[1] == pid)
             for name in ("main", "policy", "kubeconfig", "node_lookup", "manifest")}
    pod_start = first(lambda e: e[2] == "sched_process_exec" and "setpriv" in e[3] and
                      e[1] != pid and e[0] > marks["manifest"][0])
    pod_end = last(lambda e: e[2] == "sched_process_exit" and "comm=kbatch " in e[3] and e[1] != pid)
    end = last(lambda e: e[2] == "sched_process_exit" and e[1] == pid)
    steps = [("harness (bash, setpriv, env)", start, front),
             ("front end, to the exec of kbatch-k8s", front, helper),
             ("dynamic loading, to main", helper, marks["main"]),
             ("main to the policy", marks["main"], marks["policy"]),
             ("policy and evaluation", marks["policy"], marks["kubeconfig"]),
             ("kubeconfig", marks["kubeconfig"], marks["node_lookup"]),
             ("node lookup (first TLS handshake)", marks["node_lookup"], marks["manifest"]),
             ("POST, test server until the Pod's process", marks["manifest"], pod_start),
             ("the Pod's process (setpriv, kbatch exec)", pod_start, pod_end),
             ("its exit to kbatch's (watch, log, DELETE)", pod_end, end),
             ("total", start, end)]
    for name, a, b in steps:
        phases.setdefault(name, []).append(b[0] - a[0])
print("median of %d runs, ms (min-max):" % runs)
for name, values in phases.items():
    print("  %-44s %6.2f  (%.1f-%.1f)" % (name, statistics.median(values), min(values), max(values)))
PY
