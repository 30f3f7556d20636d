#!/bin/bash
# A registry as sites run them: HTTPS with a certificate from the site's own CA, and bearer tokens
# from a token server (docker/distribution's token auth), against Debian's docker-registry and a
# token server on 127.0.0.1 (../registry/token-server.py). Also mutual TLS, for registries that
# ask for a client certificate. kbatch takes the CA and client certificate from
# containers-certs.d(5), as skopeo and podman do; skopeo, a peer, checks the same setup.
#   registry_tls_token.sh KBATCH REGISTRY_STATE_DIR   (lib.sh's usage; this test starts its own)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
fixture=$here/../registry/registry-fixture.sh
token_pid=''
cleanup() {
  "$fixture" stop "$WORK/registry" >/dev/null 2>&1 || true
  "$fixture" stop "$WORK/mtls-registry" >/dev/null 2>&1 || true
  [ -z "$token_pid" ] || kill "$token_pid" 2>/dev/null || true
  chmod -R u+rwX "$WORK" 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/pki"
cd "$WORK/pki"

# one_line FILE WHAT: the error is one line.
one_line() { [ "$(wc -l < "$1")" -eq 1 ] || fail "$2: not one line: $(cat "$1")"; }

echo "== a site CA, the registry's and token server's certificate, a client certificate, a token signer"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kbatch-test-site-ca \
  -keyout ca.key -out ca.crt 2>/dev/null
issue() {  # issue NAME EXTENSIONS: a certificate signed by the site CA
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
issue server $'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'
issue client $'extendedKeyUsage=clientAuth'
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kbatch-test-token-signer \
  -keyout signer.key -out signer.crt 2>/dev/null
password=tok-$$
printf 'alice:%s\nrefresh:refresh-%s:alice\n' "$password" "$$" > users

echo "== the token server and a registry that trusts its tokens, both over TLS"
/usr/bin/python3 "$here/../registry/token-server.py" server.crt server.key signer.crt signer.key \
  kbatch-test-issuer kbatch-test-registry users "$WORK/token.log" "$WORK/token.port" \
  2>"$WORK/token.err" &
token_pid=$!
for _ in $(seq 100); do [ -f "$WORK/token.port" ] && break; sleep 0.1; done
[ -f "$WORK/token.port" ] || fail "the token server did not start: $(cat "$WORK/token.err")"
realm=https://127.0.0.1:$(cat "$WORK/token.port")/token
"$fixture" start "$WORK/registry" --tls server.crt server.key \
  --token "$realm" kbatch-test-registry kbatch-test-issuer signer.crt >/dev/null
registry=$(cat "$WORK/registry/address")
cd "$WORK"
make_rootfs "$WORK/rootfs"
export XDG_CONFIG_HOME=$WORK/config
auth_json() {  # auth_json USER:PASSWORD
  printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$registry" "$(printf '%s' "$1" | base64 -w0)"
}
auth_json "alice:$password" > "$WORK/alice.json"
auth_json "alice:wrong-$password" > "$WORK/wrong.json"

echo "== the site CA not installed: refused, saying where the CA goes"
if "$KBATCH" -q pull "docker://$registry/public/tool:1" >/dev/null 2>"$WORK/noca.err"; then
  fail "pull from a registry with an unknown CA succeeded"
fi
one_line "$WORK/noca.err" "unknown CA"
grep -q "TLS certificate was not accepted" "$WORK/noca.err" || fail "unknown CA: unclear: $(cat "$WORK/noca.err")"
grep -q "certs.d/$registry/ca.crt" "$WORK/noca.err" || fail "unknown CA: no hint: $(cat "$WORK/noca.err")"

certs=$XDG_CONFIG_HOME/containers/certs.d/$registry
mkdir -p "$certs"
cp pki/ca.crt "$certs/ca.crt"

echo "== anonymous push: the token server grants no push, refused in one line"
if "$KBATCH" -q push "$WORK/rootfs" "docker://$registry/private/tool:1" >/dev/null 2>"$WORK/anon-push.err"; then
  fail "anonymous push succeeded"
fi
one_line "$WORK/anon-push.err" "anonymous push"
grep -q "anonymous access does not grant repository:private/tool:pull,push" "$WORK/anon-push.err" ||
  fail "anonymous push: unclear: $(cat "$WORK/anon-push.err")"
grep -q "add credentials for $registry" "$WORK/anon-push.err" || fail "anonymous push: no hint: $(cat "$WORK/anon-push.err")"
grep -q '"user": null.*private/tool:pull,push' "$WORK/token.log" ||
  fail "anonymous push: kbatch did not ask the token server for pull,push: $(cat "$WORK/token.log")"

echo "== push with credentials: a token for pull,push, and skopeo sees the image"
REGISTRY_AUTH_FILE=$WORK/alice.json "$KBATCH" -q push "$WORK/rootfs" "docker://$registry/private/tool:1" \
  >/dev/null || fail "push with credentials failed"
grep -q '"user": "alice".*"granted": \[{"type": "repository", "name": "private/tool", "actions": \["pull", "push"\]' \
  "$WORK/token.log" || fail "push: no token for alice with pull,push: $(cat "$WORK/token.log")"
skopeo inspect --cert-dir "$certs" --creds "alice:$password" "docker://$registry/private/tool:1" >/dev/null ||
  fail "skopeo does not find what kbatch pushed"
skopeo copy -q --src-cert-dir "$certs" --dest-cert-dir "$certs" --src-creds "alice:$password" \
  --dest-creds "alice:$password" "docker://$registry/private/tool:1" "docker://$registry/public/tool:1" ||
  fail "skopeo copy to public/tool failed"

echo "== anonymous pull: public/ is granted, private/ is not"
KBATCH_CACHE=$WORK/cache-anon "$KBATCH" -q pull "docker://$registry/public/tool:1" >/dev/null ||
  fail "anonymous pull of public/tool failed"
KBATCH_CACHE=$WORK/cache-anon "$KBATCH" images --json | grep -q "public/tool" ||
  fail "the pulled image is not in the store"
if KBATCH_CACHE=$WORK/cache-anon2 "$KBATCH" -q pull "docker://$registry/private/tool:1" \
     >/dev/null 2>"$WORK/anon-pull.err"; then
  fail "anonymous pull of private/tool succeeded"
fi
one_line "$WORK/anon-pull.err" "anonymous pull of private/"
grep -q "$registry" "$WORK/anon-pull.err" || fail "anonymous pull: registry not named: $(cat "$WORK/anon-pull.err")"

echo "== exec's on-demand pull from a loopback registry that speaks TLS: TLS, not plain HTTP"
KBATCH_CACHE=$WORK/cache-exec "$KBATCH" -vv exec "docker://$registry/public/tool:1" -- /bin/cat /etc/os-release \
  >"$WORK/exec.out" 2>"$WORK/exec.err" || fail "exec of a TLS loopback registry's image failed: $(tail -3 "$WORK/exec.err")"
grep -q 'ID=kbtest' "$WORK/exec.out" || fail "exec: the job did not run in the pulled image: $(cat "$WORK/exec.out")"
grep -q "answers TLS" "$WORK/exec.err" || fail "exec: no TLS probe logged: $(grep -i registry "$WORK/exec.err")"

echo "== an identity token (what docker login stores instead of a password): exchanged by OAuth2 POST"
printf '{"auths": {"%s": {"auth": "%s", "identitytoken": "refresh-%s"}}}\n' "$registry" \
  "$(printf '<token>:' | base64 -w0)" "$$" > "$WORK/identity.json"
REGISTRY_AUTH_FILE=$WORK/identity.json KBATCH_CACHE=$WORK/cache-identity "$KBATCH" -q pull \
  "docker://$registry/private/tool:1" >/dev/null || fail "pull with an identity token failed"
grep -q '"method": "POST", "user": "alice".*private/tool:pull' "$WORK/token.log" ||
  fail "identity token: no OAuth2 exchange for alice: $(cat "$WORK/token.log")"

echo "== a wrong password: the token server refuses, one line naming the realm and the credentials file"
if REGISTRY_AUTH_FILE=$WORK/wrong.json KBATCH_CACHE=$WORK/cache-wrong "$KBATCH" -q pull \
     "docker://$registry/private/tool:1" >/dev/null 2>"$WORK/wrong.err"; then
  fail "pull with a wrong password succeeded"
fi
one_line "$WORK/wrong.err" "wrong password"
grep -q "$realm" "$WORK/wrong.err" || fail "wrong password: realm not named: $(cat "$WORK/wrong.err")"
grep -q "$WORK/wrong.json" "$WORK/wrong.err" || fail "wrong password: file not named: $(cat "$WORK/wrong.err")"

echo "== mutual TLS: a registry that wants a client certificate"
"$fixture" start "$WORK/mtls-registry" --tls pki/server.crt pki/server.key --client-ca pki/ca.crt >/dev/null
mtls=$(cat "$WORK/mtls-registry/address")
mtls_certs=$XDG_CONFIG_HOME/containers/certs.d/$mtls
mkdir -p "$mtls_certs"
cp pki/ca.crt "$mtls_certs/ca.crt"
if "$KBATCH" -q push "$WORK/rootfs" "docker://$mtls/tool:1" >/dev/null 2>"$WORK/nocert.err"; then
  fail "push without a client certificate succeeded"
fi
one_line "$WORK/nocert.err" "no client certificate"
grep -q "client certificate.*certs.d/$mtls/" "$WORK/nocert.err" || fail "no client certificate: no hint: $(cat "$WORK/nocert.err")"
cp pki/client.crt "$mtls_certs/client.cert"
if "$KBATCH" -q push "$WORK/rootfs" "docker://$mtls/tool:1" >/dev/null 2>"$WORK/nokey.err"; then
  fail "push with a client certificate but no key succeeded"
fi
one_line "$WORK/nokey.err" "certificate without key"
grep -q "client.cert.*client.key" "$WORK/nokey.err" || fail "no key: unclear: $(cat "$WORK/nokey.err")"
cp pki/client.key "$mtls_certs/client.key"
"$KBATCH" -q push "$WORK/rootfs" "docker://$mtls/tool:1" >/dev/null || fail "push with a client certificate failed"
skopeo inspect --cert-dir "$mtls_certs" "docker://$mtls/tool:1" >/dev/null ||
  fail "skopeo does not find what kbatch pushed over mutual TLS"
KBATCH_CACHE=$WORK/cache-mtls "$KBATCH" -q pull "docker://$mtls/tool:1" >/dev/null ||
  fail "pull over mutual TLS failed"

echo "registry TLS and token auth: all checks passed"
