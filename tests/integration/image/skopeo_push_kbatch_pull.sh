#!/bin/bash
# An image built with umoci (two layers, the second deleting files and a directory) and pushed by
# skopeo is pulled and unpacked by kbatch; the root filesystem matches umoci's own unpack file by
# file. A second pull transfers no blob; plain HTTP needs both --insecure and the allow list.
source "$(dirname "$0")/lib.sh"

layout=$WORK/layout
umoci init --layout "$layout"
umoci new --image "$layout:base"
umoci unpack --rootless --image "$layout:base" "$WORK/bundle"
make_rootfs "$WORK/bundle/rootfs"
umoci repack --image "$layout:base" "$WORK/bundle"
# Layer 2 from a fresh unpack, so that umoci diffs against layer 1 (deletions become whiteouts).
umoci unpack --rootless --image "$layout:base" "$WORK/bundle2"
rm "$WORK/bundle2/rootfs/data/remove-me"
rm -r "$WORK/bundle2/rootfs/data/sub"
echo "added in layer 2" > "$WORK/bundle2/rootfs/data/new.txt"
umoci repack --image "$layout:base" "$WORK/bundle2"
umoci config --image "$layout:base" --config.env "GREETING=hello" --config.workingdir /data
ref=docker://$REGISTRY/interop/from-skopeo:1
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:base" "$ref"

# Plain HTTP is refused without --insecure (TLS is the default) ...
if "$KBATCH" pull "$ref" 2>"$WORK/err"; then fail "pull over plain HTTP without --insecure succeeded"; fi
grep -q "https" "$WORK/err" || grep -qi "ssl\|tls" "$WORK/err" || { cat "$WORK/err"; fail "unexpected error text"; }
# ... and --insecure is refused for a host that is neither loopback nor listed by the site policy
# (refused before any connection: the host does not exist).
if "$KBATCH" pull --insecure docker://registry.invalid:5000/interop/x:1 2>"$WORK/err"; then
  fail "--insecure honoured for an unlisted host"
fi
grep -q "site.insecure_registries" "$WORK/err" || { cat "$WORK/err"; fail "the refusal does not name the allow list"; }

"$KBATCH" pull --insecure --json "$ref" > "$WORK/pull1.json"
rootfs=$(json_field rootfs < "$WORK/pull1.json")
[ "$(json_field blobs_downloaded < "$WORK/pull1.json")" = 3 ] || fail "first pull should download config + 2 layers: $(cat "$WORK/pull1.json")"
[ -d "$rootfs" ] || fail "no rootfs at $rootfs"

umoci unpack --rootless --image "$layout:base" "$WORK/reference"
compare_trees "$WORK/reference/rootfs" "$rootfs"
[ ! -e "$rootfs/data/remove-me" ] || fail "whiteout not applied"
[ ! -e "$rootfs/data/sub" ] || fail "directory whiteout not applied"
[ "$(cat "$rootfs/data/new.txt")" = "added in layer 2" ] || fail "layer 2 content missing"
[ "$(stat -c %u "$rootfs/data/keep.txt")" = "$(id -u)" ] || fail "unpacked files must belong to the user"

"$KBATCH" pull --insecure --json "$ref" > "$WORK/pull2.json"
[ "$(json_field blobs_downloaded < "$WORK/pull2.json")" = 0 ] || fail "second pull transferred blobs: $(cat "$WORK/pull2.json")"
[ "$(json_field rootfs < "$WORK/pull2.json")" = "$rootfs" ] || fail "second pull unpacked again"

# It runs: H-runner's `kbatch exec` resolves the reference through the store (no network).
[ "$("$KBATCH" exec "$ref" -- /bin/cat /data/new.txt)" = "added in layer 2" ] || fail "kbatch exec of the pulled image failed"

# images lists it (table and JSON); the config's settings are kept next to the root.
"$KBATCH" images | grep -q "$REGISTRY/interop/from-skopeo:1" || fail "kbatch images does not list the image"
"$KBATCH" images --json | python3 -c '
import json, sys
images = json.load(sys.stdin)
assert len(images) == 1 and images[0]["rootfs"], images'
grep -q GREETING=hello "$(dirname "$rootfs")/config.json" || fail "image config not stored with the root"

# Pinned by digest: resolved from the store without a second download.
digest=$(json_field manifest < "$WORK/pull1.json")
"$KBATCH" pull --insecure --json "docker://$REGISTRY/interop/from-skopeo@$digest" > "$WORK/pull3.json"
[ "$(json_field blobs_downloaded < "$WORK/pull3.json")" = 0 ] || fail "digest pull transferred blobs"

"$KBATCH" rmi "$REGISTRY/interop/from-skopeo:1" "$REGISTRY/interop/from-skopeo@$digest"
"$KBATCH" prune --json > "$WORK/prune.json"
[ "$(json_field blobs_removed < "$WORK/prune.json")" -ge 4 ] || fail "prune freed too little: $(cat "$WORK/prune.json")"
[ -z "$(ls "$KBATCH_CACHE/blobs/sha256")" ] || fail "blobs left after rmi + prune"
if "$KBATCH" rmi "$REGISTRY/interop/from-skopeo:1" 2>/dev/null; then fail "rmi of a missing image succeeded"; fi
echo PASS
