#!/bin/bash
# The Kubernetes backend (`kbatch k8s run`, what `kbatch exec --backend k8s` runs) against the k8s
# test server: output and exit code back into the job, the failure cases with their exit codes
# and messages, cancellation, and no Pod left behind.
#   backend_test.sh STATE_DIR KBATCH [TEST_USER] [GROUP]   GROUP: basic | faults (default: both)
set -uo pipefail
state=${1:?usage: backend_test.sh STATE_DIR KBATCH [TEST_USER] [GROUP]}
kbatch=${2:?usage: backend_test.sh STATE_DIR KBATCH [TEST_USER] [GROUP]}
user=${3:-kbtest}
group=${4:-all}
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
export KUBECONFIG=$state/kubeconfig
host=$(hostname -s)
image=localhost/kbatch-test/busybox:1
failures=0

k() { kubectl --cache-dir "$work/kcache" --request-timeout=20s "$@"; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
control() {  # control NAME JSON: a test control of the server
  curl -sf --cacert "$state/ca.crt" -H "Authorization: Bearer $(cat "$state/token")" \
    -X POST -d "$2" "$(cat "$state/url")/_kbatch_test/$1" >/dev/null || fail "control $1"
}
# kb JOBID ARGS...: kbatch k8s run as the test user; stdout/stderr in $work/JOBID.{out,err}
kb() {
  local id=$1; shift
  runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" HOME="$work" \
    "$kbatch" k8s run --job-id "$id" --image "$image" "$@" >"$work/$id.out" 2>"$work/$id.err"
}
expect_rc() {  # expect_rc ID WANT GOT
  [ "$3" = "$2" ] || { fail "$1: exit code $3, expected $2"; cat "$work/$1.out" "$work/$1.err" >&2; }
}
expect_in() {  # expect_in ID out|err TEXT
  grep -qF -- "$3" "$work/$1.$2" || { fail "$1: '$3' not in $2"; cat "$work/$1.$2" >&2; }
}
wait_ready() {  # wait_ready POD: until kbatch has created it and its container runs
  for _ in $(seq 1 100); do k get pod "$1" >/dev/null 2>&1 && break; sleep 0.1; done
  k wait --for=condition=Ready "pod/$1" --timeout=30s >/dev/null
}
no_pod_left() {  # no_pod_left ID
  local left
  left=$(k get pods -A -l "kbatch.io/job-id=$1" -o name 2>&1)
  [ -z "$left" ] || fail "$1: Pod left behind: $left"
}

basic() {
  echo "== the site policy applies: a backend it does not allow is refused before any Pod"
  overlay=$(dirname "$0")/local-only-overlay.yaml
  runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" HOME="$work" KBATCH_POLICY_OVERLAY="$overlay" \
    "$kbatch" k8s run --job-id 100.head --image "$image" -- true >"$work/100.head.out" \
    2>"$work/100.head.err"; rc=$?
  expect_rc 100.head 125 $rc
  expect_in 100.head err "backends.allowed"
  no_pod_left 100.head

  echo "== output and exit code pass through; the Pod is deleted"
  kb 101.head -- sh -c 'echo 0 1 1 2 3 5; echo to-stderr >&2; exit 7'; rc=$?
  expect_rc 101.head 7 $rc
  expect_in 101.head out "0 1 1 2 3 5"
  expect_in 101.head out "to-stderr"  # the logs API merges the streams
  no_pod_left 101.head

  echo "== split streams keep stdout and stderr apart"
  kb 102.head --split-streams -- sh -c 'echo out-line; echo err-line >&2'; rc=$?
  expect_rc 102.head 0 $rc
  expect_in 102.head out "out-line"
  expect_in 102.head err "err-line"
  grep -q err-line "$work/102.head.out" && fail "102.head: stderr line on stdout"

  echo "== many lines arrive in order, once"
  kb 103.head -- sh -c 'i=1; while [ $i -le 3000 ]; do echo line-$i; i=$((i+1)); done'; rc=$?
  expect_rc 103.head 0 $rc
  seq -f 'line-%g' 1 3000 | diff -q - "$work/103.head.out" >/dev/null || fail "103.head: lines lost/duplicated"

  echo "== walltime: activeDeadlineSeconds"
  start=$(date +%s)
  kb 104.head --walltime 2 -- sleep 60; rc=$?
  expect_rc 104.head 124 $rc
  expect_in 104.head err "walltime"
  [ $(( $(date +%s) - start )) -le 20 ] || fail "104.head: walltime took too long"
  no_pod_left 104.head

  echo "== image pull failure"
  image=localhost/kbatch-test/missing:1 kb 105.head -- true; rc=$?
  expect_rc 105.head 122 $rc
  expect_in 105.head err "could not be pulled"
  no_pod_left 105.head

  echo "== a command the container cannot run"
  kb 106.head -- /no/such/command; rc=$?
  [ "$rc" = 0 ] && fail "106.head: a missing command reported success"
  no_pod_left 106.head

  echo "== unknown node and NotReady node"
  echo no-such-host >"$work/nodefile"
  chmod 644 "$work/nodefile"
  runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" PBS_NODEFILE="$work/nodefile" \
    "$kbatch" k8s run --job-id 107.head --image $image -- true >"$work/107.head.out" 2>"$work/107.head.err"
  expect_rc 107.head 120 $?
  expect_in 107.head err "no node has kubernetes.io/hostname=no-such-host"
  kb 108.head --node-name "$host=down-node.kbatch-test.internal" -- true; rc=$?
  expect_rc 108.head 120 $rc
  expect_in 108.head err "is not Ready"
  no_pod_left 108.head

  echo "== 403 from RBAC: one clear line"
  KUBECONFIG=$state/kubeconfig-readonly kb 109.head -- true; rc=$?
  expect_rc 109.head 125 $rc
  expect_in 109.head err 'User "viewer" cannot create resource "pods"'
  [ "$(wc -l <"$work/109.head.err")" -le 1 ] || fail "109.head: more than one line of error"

  echo "== SIGTERM (qdel): the Pod is deleted at once"
  runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" "$kbatch" k8s run --job-id 110.head \
    --image $image -- sleep 300 >"$work/110.head.out" 2>"$work/110.head.err" &
  pid=$!
  wait_ready kbatch-110-head || fail "110.head: never Ready"
  start=$(date +%s%N)
  pkill -TERM -P $pid -x kbatch 2>/dev/null || kill -TERM $pid
  # runuser forwards the signal to kbatch
  wait $pid; rc=$?
  expect_rc 110.head 143 $rc
  k wait --for=delete pod/kbatch-110-head --timeout=5s >/dev/null 2>&1 || fail "110.head: Pod not gone within 5 s"
  echo "   Pod gone $(( ($(date +%s%N) - start) / 1000000 )) ms after SIGTERM"

  echo "== client certificate credentials"
  KUBECONFIG=$state/kubeconfig-cert kb 111.head -- echo cert-ok; rc=$?
  expect_rc 111.head 0 $rc
  expect_in 111.head out cert-ok

  echo "== adopt: a restarted kbatch takes over the job's existing Pod"
  runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" "$kbatch" manifest --job-id 112.head \
    --image $image -- sh -c 'sleep 1; echo adopted-output' >"$work/112.yaml" || fail "112: manifest"
  k create --validate=false -f "$work/112.yaml" >/dev/null || fail "112.head: kubectl create"
  kb 112.head -v -- sh -c 'echo this-command-is-not-run'; rc=$?
  expect_rc 112.head 0 $rc
  expect_in 112.head out adopted-output
  expect_in 112.head err "adopted existing Pod"
  no_pod_left 112.head

  echo "== gc deletes Pods whose batch job is gone and keeps the others"
  for id in 113.head 114.head; do
    runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" "$kbatch" manifest --job-id $id \
      --image $image -- sleep 300 | k create --validate=false -f - >/dev/null || fail "$id: create"
  done
  cat >"$work/qstat" <<'QSTAT'
#!/bin/sh
# TORQUE's answers: 114.head is running, anything else is unknown.
if [ "$1" = 114.head ]; then
  printf 'Job id                    Name             User            Time Use S Queue\n'
  printf '------------------------- ---------------- --------------- -------- - -----\n'
  printf '114.head                  job              kbtest          00:00:01 R batch\n'
  exit 0
fi
echo "qstat: Unknown Job Id $1" >&2
exit 153
QSTAT
  chmod 755 "$work/qstat"
  "$kbatch" k8s gc --qstat "$work/qstat" >"$work/gc.out" 2>"$work/gc.err"; rc=$?
  [ $rc = 0 ] || { fail "gc exit $rc"; cat "$work/gc.err" >&2; }
  grep -q "deleted default/kbatch-113-head (job 113.head)" "$work/gc.out" || fail "gc did not delete 113"
  grep -q "114" "$work/gc.out" && fail "gc deleted the running job's Pod"
  k wait --for=delete pod/kbatch-113-head --timeout=20s >/dev/null 2>&1 || fail "113 not gone"
  k get pod kbatch-114-head >/dev/null 2>&1 || fail "114's Pod was deleted"
  k delete pod kbatch-114-head --grace-period=0 >/dev/null 2>&1
}

faults() {
  echo "== the watch stream cut midway"
  control cut-watch '{"afterEvents": 2}'
  kb 201.head -- sh -c 'sleep 1; echo after-cut; exit 4'; rc=$?
  expect_rc 201.head 4 $rc
  expect_in 201.head out after-cut
  no_pod_left 201.head

  echo "== the log stream cut midway: nothing lost, nothing repeated"
  control cut-log '{"afterLines": 3}'
  kb 202.head -- sh -c 'i=1; while [ $i -le 10 ]; do echo log-$i; i=$((i+1)); sleep 0.1; done'; rc=$?
  expect_rc 202.head 0 $rc
  seq -f 'log-%g' 1 10 | diff - "$work/202.head.out" >/dev/null || { fail "202.head: log lines differ"; cat "$work/202.head.out" >&2; }

  echo "== the API server restarts during the job (watch history lost: 410 -> relist)"
  kb 203.head -- sh -c 'i=1; while [ $i -le 8 ]; do echo r-$i; i=$((i+1)); sleep 0.4; done; exit 3' &
  pid=$!
  sleep 1.2
  control restart '{"downSeconds": 2}'
  wait $pid; rc=$?
  expect_rc 203.head 3 $rc
  seq -f 'r-%g' 1 8 | diff - "$work/203.head.out" >/dev/null || { fail "203.head: lines differ across the restart"; cat "$work/203.head.out" "$work/203.head.err" >&2; }
  no_pod_left 203.head

  echo "== the Pod deleted by someone else"
  kb 204.head -- sleep 300 &
  pid=$!
  wait_ready kbatch-204-head || fail "204 never Ready"
  k delete pod kbatch-204-head --wait=false >/dev/null
  wait $pid; rc=$?
  expect_rc 204.head 121 $rc
  expect_in 204.head err "deleted by someone else"
  k wait --for=delete pod/kbatch-204-head --timeout=40s >/dev/null 2>&1 || fail "204 not gone"

  echo "== 5xx answers are retried, 429 waits for Retry-After"
  control fail '{"method": "POST", "path": "/pods$", "code": 503, "reason": "ServiceUnavailable", "count": 2}'
  control fail '{"method": "GET", "path": "/api/v1/nodes$", "code": 429, "reason": "TooManyRequests", "retryAfter": 1, "count": 1}'
  kb 205.head -- echo retried-ok; rc=$?
  expect_rc 205.head 0 $rc
  expect_in 205.head out retried-ok

  echo "== a 500 that persists ends in one line"
  control fail '{"method": "POST", "path": "/pods$", "code": 500, "reason": "InternalError", "message": "etcdserver: request timed out", "count": 10}'
  kb 206.head -- true; rc=$?
  expect_rc 206.head 125 $rc
  expect_in 206.head err "etcdserver: request timed out"
  control clear-faults '{}'
}

case $group in
  basic) basic ;;
  faults) faults ;;
  *) basic; faults ;;
esac
running=$(curl -sf --cacert "$state/ca.crt" -H "Authorization: Bearer $(cat "$state/token")" \
  "$(cat "$state/url")/_kbatch_test/pods")
case "$running" in *'"runningContainers": []'*) ;; *) fail "containers still running: $running";; esac
if [ $failures -ne 0 ]; then echo "backend_test: $failures failure(s)" >&2; exit 1; fi
echo "backend_test: all passed"
