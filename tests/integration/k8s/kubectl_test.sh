#!/bin/bash
# The real kubectl against the k8s test server: get, describe, logs -f, delete, and
# `run --rm -i --restart=Never`, plus the refusals a real cluster gives (Pod Security
# "restricted", RBAC 403). Holds the server to a real client's expectations.
#   kubectl_test.sh STATE_DIR
set -euo pipefail
state=${1:?usage: kubectl_test.sh STATE_DIR}
export KUBECONFIG=$state/kubeconfig
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
k() { kubectl --cache-dir "$work/cache" --request-timeout=20s "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_in() {  # expect_in NEEDLE FILE WHAT
  grep -qF -- "$1" "$2" || { echo "--- $2:" >&2; cat "$2" >&2; fail "$3: '$1' missing"; }
}
uid=$(id -u kbtest 2>/dev/null || echo 65534)
restricted() {  # restricted CONTAINER_NAME: the overrides a restricted namespace needs
  printf '{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":%s,"runAsGroup":%s,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"%s","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}' \
    "$uid" "$uid" "$1"
}
image=localhost/kbatch-test/busybox:1

echo "== get nodes"
k get nodes >"$work/nodes"
expect_in "Ready" "$work/nodes" "node list"
expect_in "NotReady" "$work/nodes" "node list"
k get node -l "kubernetes.io/hostname=$(hostname -s)" -o name >"$work/node-by-label"
[ "$(wc -l <"$work/node-by-label")" = 1 ] || fail "label selector on nodes: $(cat "$work/node-by-label")"

echo "== run --rm -i --restart=Never (exit code passes through)"
set +e
k run kubectl-run --rm -i --restart=Never --image=$image --override-type=strategic \
  --overrides="$(restricted kubectl-run)" -- sh -c 'echo out-1; echo err-1 >&2; echo out-2; exit 3' \
  >"$work/run.out" 2>"$work/run.err"
rc=$?
set -e
[ "$rc" = 3 ] || { cat "$work/run.out" "$work/run.err" >&2; fail "kubectl run exit code $rc, expected 3"; }
expect_in "out-1" "$work/run.out" "run output"
expect_in "out-2" "$work/run.out" "run output"
expect_in 'pod "kubectl-run" deleted' "$work/run.out" "run --rm"
if k get pod kubectl-run >/dev/null 2>&1; then fail "run --rm left the Pod behind"; fi
grep -q "falling back to streaming logs" "$work/run.err" && fail "kubectl could not attach: $(cat "$work/run.err")"

echo "== run -i: stdin reaches the container through attach"
echo piped-input | k run kubectl-stdin --rm -i --restart=Never --image=$image --override-type=strategic \
  --overrides="$(restricted kubectl-stdin)" -- sh -c 'read line; echo got-$line' >"$work/stdin.out" 2>"$work/stdin.err" \
  || { cat "$work/stdin.err" >&2; fail "kubectl run with stdin failed"; }
expect_in "got-piped-input" "$work/stdin.out" "stdin through attach"

echo "== Pod Security restricted refuses a default Pod"
if k run insecure --restart=Never --image=$image -- true 2>"$work/insecure.err"; then
  fail "a Pod without a restricted securityContext was admitted"
fi
expect_in 'violates PodSecurity "restricted:latest"' "$work/insecure.err" "admission"
expect_in "allowPrivilegeEscalation != false" "$work/insecure.err" "admission"
expect_in "runAsNonRoot != true" "$work/insecure.err" "admission"

echo "== a Pod through its lifecycle: get, logs -f, describe, delete"
k run lifecycle --restart=Never --image=$image --override-type=strategic \
  --overrides="$(restricted lifecycle)" -- sh -c 'for i in 1 2 3 4 5; do echo line-$i; sleep 0.3; done'
k wait --for=condition=Ready pod/lifecycle --timeout=20s >/dev/null
k get pod lifecycle >"$work/get"
expect_in "Running" "$work/get" "get pod while running"
k logs -f lifecycle >"$work/logs"
printf 'line-%s\n' 1 2 3 4 5 | diff - "$work/logs" || fail "logs -f lost, duplicated or reordered lines"
k wait --for=jsonpath='{.status.phase}'=Succeeded pod/lifecycle --timeout=20s >/dev/null
code=$(k get pod lifecycle -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')
[ "$code" = 0 ] || fail "terminated exit code '$code'"
k describe pod lifecycle >"$work/describe"
expect_in "Status:           Succeeded" "$work/describe" "describe"
expect_in "$(hostname -s).kbatch-test.internal" "$work/describe" "describe node"
expect_in "Started" "$work/describe" "describe events"
expect_in "Scheduled" "$work/describe" "describe events"
k delete pod lifecycle >"$work/delete"
expect_in 'pod "lifecycle" deleted' "$work/delete" "delete"
if k get pod lifecycle 2>"$work/gone"; then fail "deleted Pod still listed"; fi
expect_in 'pods "lifecycle" not found' "$work/gone" "get after delete"

echo "== delete a running Pod: its container is stopped"
k run sleeper --restart=Never --image=$image --override-type=strategic \
  --overrides="$(restricted sleeper)" -- sleep 300
k wait --for=condition=Ready pod/sleeper --timeout=20s >/dev/null
start=$(date +%s)
k delete pod sleeper --grace-period=2 >/dev/null
[ $(( $(date +%s) - start )) -le 10 ] || fail "delete of a running Pod took too long"
running=$(curl -sf --cacert "$state/ca.crt" -H "Authorization: Bearer $(cat "$state/token")" \
  "$(cat "$state/url")/_kbatch_test/pods")
case "$running" in *'"runningContainers": []'*) ;; *) fail "container left running: $running";; esac

echo "== RBAC: the read-only user may list but not create"
KUBECONFIG=$state/kubeconfig-readonly k get pods >/dev/null
if KUBECONFIG=$state/kubeconfig-readonly k run denied --restart=Never --image=$image \
     --override-type=strategic --overrides="$(restricted denied)" -- true 2>"$work/denied.err"; then
  fail "the read-only user created a Pod"
fi
expect_in 'User "viewer" cannot create resource "pods"' "$work/denied.err" "RBAC"

echo "== client certificate authentication"
KUBECONFIG=$state/kubeconfig-cert k get nodes >/dev/null
echo "kubectl_test: all passed"
