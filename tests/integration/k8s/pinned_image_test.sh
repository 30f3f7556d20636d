#!/bin/bash
# A job's Pod names its image by digest: kbatch pushes a root filesystem to the test registry under
# a tag; the Pod manifest for a job naming the tag names host/repo@<the digest the push printed>,
# and the server's kubelet pulls that digest from the registry and runs it. Then the tag moves to
# another image: the next job's Pod follows the tag to its new digest.
#   pinned_image_test.sh K8S_STATE_DIR KBATCH TEST_USER REGISTRY_STATE_DIR
set -uo pipefail
state=${1:?usage: pinned_image_test.sh K8S_STATE KBATCH TEST_USER REGISTRY_STATE}
kbatch=${2:?}
user=${3:?}
registry=$(cat "${4:?}/address") || { echo "FAIL: the registry fixture is not running" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
export KUBECONFIG=$state/kubeconfig
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
as_user() { runuser -u "$user" -- env KUBECONFIG="$KUBECONFIG" HOME="$work" KBATCH_CACHE="$work/cache" "$@"; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# Two distinguishable images from the server's test root filesystem.
for version in 1 2; do
  cp -a "$state/rootfs" "$work/root$version"
  echo "image version $version" > "$work/root$version/version"
done
chown -R "$user" "$work"
ref=docker://$registry/kbatch-test/pinned:current
as_user "$kbatch" -q push --insecure --json "$work/root1" "$ref" > "$work/push1.json" ||
  { echo "FAIL: push of version 1" >&2; exit 1; }
digest1=$(json_field manifest < "$work/push1.json")

# `kbatch manifest` shows the pinned name without creating anything.
as_user "$kbatch" manifest --node kbatch-node-0 --namespace default --image "$ref" -- true \
  > "$work/manifest.yaml" 2> "$work/manifest.err" || fail "kbatch manifest: $(cat "$work/manifest.err")"
grep -qF "image: $registry/kbatch-test/pinned@$digest1" "$work/manifest.yaml" ||
  fail "the manifest does not pin $digest1: $(grep image: "$work/manifest.yaml")"

# The Pod runs the pinned image, pulled by the server's kubelet from the registry.
as_user "$kbatch" k8s run --job-id 301.head --image "$ref" -- cat /version \
  > "$work/301.out" 2> "$work/301.err"
rc=$?
[ "$rc" = 0 ] || fail "job 301 exited $rc: $(cat "$work/301.err")"
grep -qx "image version 1" "$work/301.out" || fail "job 301 printed: $(cat "$work/301.out")"

# The tag moves; the next job follows it, pinned to the new digest.
as_user "$kbatch" -q push --insecure --json "$work/root2" "$ref" > "$work/push2.json" ||
  fail "push of version 2"
digest2=$(json_field manifest < "$work/push2.json")
[ "$digest1" != "$digest2" ] || fail "both versions have digest $digest1"
as_user "$kbatch" -vv k8s run --job-id 302.head --image "$ref" -- cat /version \
  > "$work/302.out" 2> "$work/302.err" || fail "job 302: $(cat "$work/302.err")"
grep -qF "pinned to $digest2" "$work/302.err" || fail "job 302 was not pinned to $digest2: $(cat "$work/302.err")"
grep -qx "image version 2" "$work/302.out" || fail "job 302 printed: $(cat "$work/302.out")"

# An image pinned by the user stays as written (by digest), and an unreachable registry leaves the
# tag, saying why at -v.
as_user "$kbatch" manifest --node kbatch-node-0 --namespace default \
  --image "docker://$registry/kbatch-test/pinned@$digest1" -- true > "$work/m2.yaml" 2>/dev/null
grep -qF "image: $registry/kbatch-test/pinned@$digest1" "$work/m2.yaml" || fail "a digest reference was changed"
as_user "$kbatch" -v manifest --node kbatch-node-0 --namespace default \
  --image docker://127.0.0.1:9/nothing/here:1 -- true > "$work/m3.yaml" 2> "$work/m3.err"
grep -qF "image: 127.0.0.1:9/nothing/here:1" "$work/m3.yaml" || fail "unreachable registry: $(cat "$work/m3.yaml")"
grep -q "cannot pin image 127.0.0.1:9/nothing/here:1 to a digest" "$work/m3.err" ||
  fail "no warning for the unpinned image: $(cat "$work/m3.err")"

[ "$failures" = 0 ] && echo "PASS: Pods name their images by digest"
exit $((failures > 0))
