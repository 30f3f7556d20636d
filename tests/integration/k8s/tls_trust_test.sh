#!/bin/bash
# The kubeconfig's certificate-authority is the only CA kbatch trusts for the API server, as with
# kubectl; the system's CAs count only when the kubeconfig names none. In a private mount
# namespace, the test server's CA is made a system CA (a hash link in /etc/ssl/certs, which libcurl
# consults besides any CA it is given); then, as the test user:
#   - a kubeconfig naming an unrelated CA must be refused at once (no retries), in one line;
#   - a kubeconfig naming no CA must work (the system CA vouches for the server), which shows
#     that the refusal above comes from kbatch, not from a broken set-up;
#   - the server's own kubeconfig must work.
#   tls_trust_test.sh K8S_STATE_DIR KBATCH TEST_USER      (as root)
set -uo pipefail
state=${1:?usage: tls_trust_test.sh K8S_STATE_DIR KBATCH TEST_USER}
kbatch=${2:?}
user=${3:?}
if [ "${KBATCH_TLS_TRUST_INSIDE:-}" != 1 ]; then
  exec env KBATCH_TLS_TRUST_INSIDE=1 unshare --mount --propagation private -- "$0" "$@"
fi
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# The system CA directory of this mount namespace: the host's, plus the test server's CA.
mkdir "$work/certs"
cp -a /etc/ssl/certs/. "$work/certs/" 2>/dev/null || true
cp "$state/ca.crt" "$work/certs/kbatch-test-server.pem"
ln -s kbatch-test-server.pem "$work/certs/$(openssl x509 -hash -noout -in "$state/ca.crt").0"
mount --bind "$work/certs" /etc/ssl/certs

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/other.key" -out "$work/other.crt" \
  -subj "/CN=an unrelated CA" -days 1 2>/dev/null || { echo "FAIL: openssl req" >&2; exit 1; }
server=$(cat "$state/url")
token=$(cat "$state/token")
kubeconfig() {  # kubeconfig FILE [CA_FILE]
  local ca_line=''
  [ -n "${2:-}" ] && ca_line="\"certificate-authority\": \"$2\","
  cat >"$1" <<EOF
{"apiVersion": "v1", "kind": "Config", "current-context": "t",
 "clusters": [{"name": "t", "cluster": {$ca_line "server": "$server"}}],
 "users": [{"name": "u", "user": {"token": "$token"}}],
 "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u", "namespace": "default"}}]}
EOF
  chmod 644 "$1"
}
kubeconfig "$work/other-ca.json" "$work/other.crt"
kubeconfig "$work/no-ca.json"
chmod 644 "$work/other.crt"
ask() {  # ask KUBECONFIG: a read-only API call as the test user
  setpriv --reuid="$user" --regid="$user" --init-groups env HOME="$work" KUBECONFIG="$1" \
    "$kbatch" k8s gc --dry-run --all-namespaces
}

start=$(date +%s%N)
ask "$work/other-ca.json" >"$work/other.out" 2>"$work/other.err"
status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$status" -eq 125 ] || fail "an unrelated kubeconfig CA: exit $status, expected 125 (the system CA was trusted?)"
[ "$(wc -l <"$work/other.err")" -eq 1 ] || fail "an unrelated kubeconfig CA: not one line: $(cat "$work/other.err")"
grep -q "TLS refused a certificate" "$work/other.err" ||
  fail "an unrelated kubeconfig CA: the error does not say so: $(cat "$work/other.err")"
grep -q "attempts" "$work/other.err" && fail "a refused certificate was retried: $(cat "$work/other.err")"
[ "$elapsed_ms" -lt 2000 ] || fail "a refused certificate took $elapsed_ms ms (retried?)"

ask "$work/no-ca.json" >"$work/no-ca.out" 2>"$work/no-ca.err" ||
  fail "no kubeconfig CA, the server's CA among the system's: $(cat "$work/no-ca.err")"
ask "$state/kubeconfig" >"$work/own.out" 2>"$work/own.err" ||
  fail "the server's own kubeconfig: $(cat "$work/own.err")"

if [ "$failures" -ne 0 ]; then
  echo "tls_trust_test: $failures failure(s)" >&2
  exit 1
fi
echo "tls_trust_test: the kubeconfig's CA is the only one trusted; system CAs only without one"
