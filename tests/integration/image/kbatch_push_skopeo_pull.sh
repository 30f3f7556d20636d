#!/bin/bash
# A directory pushed by kbatch is inspected and copied by skopeo and unpacked by umoci; umoci's
# root filesystem matches the original directory file by file. Pushing again skips every blob
# (HEAD); pushing to another repository mounts the blobs; large blobs go up in PATCH chunks.
source "$(dirname "$0")/lib.sh"

make_rootfs "$WORK/source"
ref=docker://$REGISTRY/interop/from-kbatch:1
# A 64 KiB chunk size makes the 300 KB random file's layer go up in several PATCH requests.
KBATCH_UPLOAD_CHUNK_BYTES=64K "$KBATCH" push --insecure --json "$WORK/source" "$ref" > "$WORK/push1.json"
[ "$(json_field blobs_uploaded < "$WORK/push1.json")" = 2 ] || fail "expected layer + config uploaded: $(cat "$WORK/push1.json")"
digest=$(json_field manifest < "$WORK/push1.json")

skopeo inspect --tls-verify=false "$ref" > "$WORK/inspect.json"
[ "$(json_field Digest < "$WORK/inspect.json")" = "$digest" ] || fail "skopeo sees another digest than kbatch pushed"
skopeo inspect --raw --tls-verify=false "$ref" | python3 -c '
import json, sys
manifest = json.load(sys.stdin)
assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json", manifest
assert len(manifest["layers"]) == 1, manifest'

skopeo copy --quiet --src-tls-verify=false "$ref" "oci:$WORK/layout:copied"
umoci unpack --rootless --image "$WORK/layout:copied" "$WORK/bundle"
compare_trees "$WORK/source" "$WORK/bundle/rootfs"

"$KBATCH" push --insecure --json "$WORK/source" "$ref" > "$WORK/push2.json"
[ "$(json_field blobs_skipped < "$WORK/push2.json")" = 2 ] || fail "second push did not skip: $(cat "$WORK/push2.json")"
[ "$(json_field blobs_uploaded < "$WORK/push2.json")" = 0 ] || fail "second push uploaded blobs"

"$KBATCH" push --insecure --json "$WORK/source" "docker://$REGISTRY/interop/mounted:1" > "$WORK/push3.json"
[ "$(json_field blobs_mounted < "$WORK/push3.json")" = 2 ] || fail "blobs were not mounted across repositories: $(cat "$WORK/push3.json")"
skopeo inspect --tls-verify=false "docker://$REGISTRY/interop/mounted:1" > /dev/null

# The store image round-trips: pulled back by kbatch into a fresh store, it matches the source.
KBATCH_CACHE=$WORK/cache2 "$KBATCH" pull --insecure --json "$ref" > "$WORK/pull.json"
compare_trees "$WORK/source" "$(json_field rootfs < "$WORK/pull.json")"

# A destination that is not docker:// and a source that does not exist are refused clearly.
if "$KBATCH" push "$WORK/source" "oci:$WORK/x" 2>"$WORK/err"; then fail "push to oci: accepted"; fi
grep -q "docker://" "$WORK/err" || { cat "$WORK/err"; fail "unclear error"; }
if "$KBATCH" push --insecure no-such-image "$ref" 2>"$WORK/err"; then fail "push of a missing image accepted"; fi
grep -q "no-such-image" "$WORK/err" || { cat "$WORK/err"; fail "unclear error"; }
echo PASS
