#!/bin/bash
# The Kubernetes namespace a job's Pod goes to, from the site policy's kubernetes.namespace users
# and groups, with group memberships read through the real account database (NSS): the user's
# own entry first, then the job's primary group, then the one namespace the other groups share;
# groups that disagree refuse the Pod with a message naming them. Also: `--as-user` judges the
# policy's $HOME and $USER rules for that user, not for whoever runs the preview.
# Runs as root: a private mount namespace (with-site-policy.sh) gets the site policy and an
# /etc/passwd and /etc/group with a test user in three groups; the host's files are not touched.
#   namespace_groups_test.sh KBATCH
set -uo pipefail
kbatch=$(readlink -f "${1:?usage: namespace_groups_test.sh KBATCH}")
here=$(cd "$(dirname "$0")" && pwd)
with_policy=$here/../with-site-policy.sh
[ "$(id -u)" -eq 0 ] || { echo "namespace_groups_test: must run as root" >&2; exit 1; }
command -v setpriv >/dev/null || { echo "namespace_groups_test: setpriv is not installed" >&2; exit 1; }
work=$(mktemp -d /tmp/kbatch-ns-groups.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

user=kbatch-ns-user uid=64101
cp /etc/passwd "$work/passwd" && cp /etc/group "$work/group"
mkdir -p "$work/home/data"
echo "$user:x:$uid:64101::$work/home:/bin/sh" >>"$work/passwd"
cat >>"$work/group" <<GROUPS
kbatch-ns-a:x:64101:
kbatch-ns-b:x:64102:$user
kbatch-ns-c:x:64103:$user
GROUPS

policy() {  # policy FILE GROUP_MAP [USER_MAP]
  cat >"$1" <<POLICY
version: 1
backends: {allowed: [local, k8s], default: local}
kubernetes:
  namespace:
    default: fallback-jobs
    groups: $2
    users: ${3:-{\}}
POLICY
}
policy "$work/all-groups.yaml" '{kbatch-ns-a: ns-a, kbatch-ns-b: ns-b, kbatch-ns-c: ns-c}'
policy "$work/disagree.yaml" '{kbatch-ns-b: ns-b, kbatch-ns-c: ns-c}'
policy "$work/agree.yaml" '{kbatch-ns-b: shared-ns, kbatch-ns-c: shared-ns}'
policy "$work/user-entry.yaml" '{kbatch-ns-a: ns-a}' "{$user: own-ns}"

# Prints the namespace of the Pod `kbatch manifest` shows under POLICY. Words before `--` run
# kbatch through them (setpriv as the test user); words after it go to `kbatch manifest`.
namespaceUnder() {
  local policy_file=$1
  shift
  "$with_policy" "$policy_file" bash -c '
    mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group || exit 99
    kbatch=$2
    shift 2
    prefix=()
    while [ "$1" != -- ]; do prefix+=("$1"); shift; done
    shift
    cd / && exec "${prefix[@]}" "$kbatch" manifest --node node-a --job-id 5.head "$@" \
      --image busybox:1.36 -- true
  ' namespace-test "$work" "$kbatch" "$@" >"$work/out.yaml" 2>"$work/err" || return 1
  sed -n 's/^  namespace: //p' "$work/out.yaml" | head -1
}

expect() {  # expect WHAT WANTED GOT
  [ "$3" = "$2" ] || fail "$1: namespace '$3', expected '$2' ($(tr '\n' ' ' <"$work/err"))"
}

echo "== --as-user: the primary group's namespace, whatever the other groups map to"
expect "primary group" ns-a "$(namespaceUnder "$work/all-groups.yaml" -- --as-user $user)"

echo "== as the user, with another primary group (qsub -W group_list): that group's namespace"
expect "job's group" ns-b "$(namespaceUnder "$work/all-groups.yaml" \
  setpriv --reuid=$user --regid=kbatch-ns-b --init-groups --)"
expect "job's own group" ns-a "$(namespaceUnder "$work/all-groups.yaml" \
  setpriv --reuid=$user --regid=kbatch-ns-a --init-groups --)"

echo "== other groups decide when they agree"
expect "agreeing groups" shared-ns "$(namespaceUnder "$work/agree.yaml" \
  setpriv --reuid=$user --regid=kbatch-ns-a --init-groups --)"

echo "== the user's own entry wins over the groups"
expect "user entry" own-ns "$(namespaceUnder "$work/user-entry.yaml" \
  setpriv --reuid=$user --regid=kbatch-ns-a --init-groups --)"

echo "== groups that disagree: refused, with both named"
if ns=$(namespaceUnder "$work/disagree.yaml" setpriv --reuid=$user --regid=kbatch-ns-a \
     --init-groups --); then
  fail "disagreeing groups: a Pod in namespace '$ns' instead of a refusal"
elif ! grep -q 'groups kbatch-ns-b (namespace ns-b) and kbatch-ns-c (namespace ns-c)' "$work/err"; then
  fail "disagreeing groups: the message does not name both: $(cat "$work/err")"
fi

echo "== --as-user: \$HOME in the policy's binds is that user's home"
cat >"$work/home-binds.yaml" <<POLICY
version: 1
backends: {allowed: [local, k8s], default: local}
binds: {allowed: [{path: \$HOME/data, access: rw}]}
kubernetes: {volumes: {$work/home: homes}}
POLICY
previewBind() {  # previewBind [--as-user USER]: kbatch manifest binding the user's data directory
  "$with_policy" "$work/home-binds.yaml" bash -c '
    mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group || exit 99
    work=$1 kbatch=$2
    shift 2
    cd / && exec env HOME=/root "$kbatch" manifest --node node-a --namespace ns --job-id 6.head \
      "$@" --bind "$work/home/data:/data" --image busybox:1.36 -- true
  ' bind-test "$work" "$kbatch" "$@" >"$work/out.yaml" 2>"$work/err"
}
previewBind --as-user $user || fail "--as-user preview failed: $(cat "$work/err")"
grep -q "refused by the site policy" "$work/err" && fail "--as-user $user: the bind of their \$HOME/data was judged for the caller: $(cat "$work/err")"
grep -q "mountPath: /data" "$work/out.yaml" || fail "--as-user preview shows no /data mount: $(cat "$work/out.yaml")"
previewBind --as-user nobody || fail "--as-user nobody preview failed: $(cat "$work/err")"
grep -q "not inside any allowed path" "$work/err" ||
  fail "--as-user nobody: the bind outside their \$HOME was not refused, so the check above proves nothing: $(cat "$work/err")"

[ "$failures" -eq 0 ] && echo "namespace_groups_test: all checks passed"
exit $((failures > 0))
