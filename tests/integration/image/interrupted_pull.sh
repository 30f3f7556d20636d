#!/bin/bash
# A pull killed midway (SIGKILL, no chance to clean up) is followed by a pull that succeeds with a
# correct root; a partial download left behind is resumed, and a damaged one is replaced.
source "$(dirname "$0")/lib.sh"

make_rootfs "$WORK/source"
head -c 60000000 /dev/urandom > "$WORK/source/data/big.bin"
ref=docker://$REGISTRY/interrupt/image:1
KBATCH_CACHE=$WORK/pusher "$KBATCH" push --insecure -q --json "$WORK/source" "$ref" > "$WORK/push.json"

# 1. A real kill at some point of the pull (download or unpack, whichever it reached).
for delay in 0.05 0.3; do
  rm -rf "$KBATCH_CACHE"
  "$KBATCH" pull --insecure -q "$ref" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  "$KBATCH" pull --insecure --json "$ref" > "$WORK/after-kill.json"
  compare_trees "$WORK/source" "$(json_field rootfs < "$WORK/after-kill.json")"
  for name in $(ls -A "$KBATCH_CACHE/roots"); do
    case $name in .tmp-*) fail "half-unpacked root $name is still there";; esac
  done
done

# 2. Deterministic: the partial file a killed download leaves (first half of the layer) is resumed.
layer=$(skopeo inspect --raw --tls-verify=false "$ref" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
hex=${layer#sha256:}
rm -rf "$KBATCH_CACHE"
mkdir -p "$KBATCH_CACHE/tmp"
size=$(stat -c %s "$WORK/pusher/blobs/sha256/$hex")
head -c $((size / 2)) "$WORK/pusher/blobs/sha256/$hex" > "$KBATCH_CACHE/tmp/$hex.partial"
"$KBATCH" -v pull --insecure --json "$ref" > "$WORK/resumed.json" 2>"$WORK/resumed.err"
grep -q "resuming download of $layer at byte $((size / 2))" "$WORK/resumed.err" || { cat "$WORK/resumed.err"; fail "the partial download was not resumed"; }
compare_trees "$WORK/source" "$(json_field rootfs < "$WORK/resumed.json")"

# 3. A damaged partial file (wrong bytes) is detected and the layer downloaded again.
rm -rf "$KBATCH_CACHE"
mkdir -p "$KBATCH_CACHE/tmp"
head -c $((size / 3)) /dev/urandom > "$KBATCH_CACHE/tmp/$hex.partial"
"$KBATCH" -v pull --insecure --json "$ref" > "$WORK/damaged.json" 2>"$WORK/damaged.err"
grep -q "does not verify" "$WORK/damaged.err" || { cat "$WORK/damaged.err"; fail "the damaged partial was not detected"; }
compare_trees "$WORK/source" "$(json_field rootfs < "$WORK/damaged.json")"
echo PASS
