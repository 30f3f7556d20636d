#!/bin/bash
# Registry credentials as the user keeps them, against a real registry that asks for them:
# Debian's docker-registry with htpasswd (HTTP basic) auth on 127.0.0.1. kbatch reads
# $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json (the files
# podman, skopeo and docker write); skopeo, a peer, checks what kbatch pushed with the same
# credentials.
#   registry_auth.sh KBATCH REGISTRY_STATE_DIR   (lib.sh's usage; this test starts its own registry)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
fixture=$here/../registry/registry-fixture.sh
state=$WORK/registry
cleanup() { "$fixture" stop "$state" >/dev/null 2>&1 || true; chmod -R u+rwX "$WORK" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# A bcrypt entry (the only hash docker-registry accepts), made with the system's crypt(3).
password=s3cret-$$
hash=$(/usr/bin/python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))' "$password")
[[ $hash == '$2'* ]] || fail "crypt(3) made no bcrypt hash: $hash"
mkdir -p "$WORK"
echo "alice:$hash" > "$WORK/htpasswd"
"$fixture" start "$state" --htpasswd "$WORK/htpasswd" >/dev/null
registry=$(cat "$state/address")
ref=docker://$registry/private/tool:1
auth_json() {  # auth_json USER:PASSWORD -> a containers-auth.json / docker config.json
  printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$registry" "$(printf '%s' "$1" | base64 -w0)"
}

make_rootfs "$WORK/rootfs"

echo "== no credentials: refused with the registry's answer"
if "$KBATCH" -q push --insecure "$WORK/rootfs" "$ref" 2>"$WORK/push.err"; then
  fail "push without credentials succeeded"
fi
grep -q "asks for a user name and password" "$WORK/push.err" ||
  fail "push without credentials: unclear: $(cat "$WORK/push.err")"
grep -q "config.json" "$WORK/push.err" || fail "push without credentials: no hint: $(cat "$WORK/push.err")"
[ "$(wc -l < "$WORK/push.err")" -eq 1 ] || fail "push without credentials: not one line: $(cat "$WORK/push.err")"

echo "== \$REGISTRY_AUTH_FILE: push, then skopeo sees the image with the same credentials"
auth_json "alice:$password" > "$WORK/auth.json"
REGISTRY_AUTH_FILE=$WORK/auth.json "$KBATCH" -q push --insecure "$WORK/rootfs" "$ref" >/dev/null ||
  fail "push with REGISTRY_AUTH_FILE failed"
skopeo inspect --tls-verify=false --creds "alice:$password" "$ref" >/dev/null ||
  fail "skopeo does not find what kbatch pushed"

echo "== ~/.docker/config.json: pull"
mkdir -p "$WORK/home/.docker"
auth_json "alice:$password" > "$WORK/home/.docker/config.json"
HOME=$WORK/home KBATCH_CACHE=$WORK/cache-home "$KBATCH" -q pull --insecure "$ref" >/dev/null ||
  fail "pull with ~/.docker/config.json failed"

echo "== a wrong password: refused, one line naming the registry"
mkdir -p "$WORK/wrong"
auth_json "alice:not-$password" > "$WORK/wrong/config.json"
if DOCKER_CONFIG=$WORK/wrong KBATCH_CACHE=$WORK/cache-wrong "$KBATCH" -q pull --insecure "$ref" \
     2>"$WORK/wrong.err" >/dev/null; then
  fail "pull with a wrong password succeeded"
fi
grep -q "$registry" "$WORK/wrong.err" || fail "wrong password: the registry is not named: $(cat "$WORK/wrong.err")"
grep -q "$WORK/wrong/config.json" "$WORK/wrong.err" ||
  fail "wrong password: the credentials file is not named: $(cat "$WORK/wrong.err")"

echo "registry auth: all checks passed"
