#!/bin/bash
# Four processes pulling the same image into one store at once: each succeeds, the blobs are
# downloaded and the root unpacked exactly once, and no temporary file or directory is left.
source "$(dirname "$0")/lib.sh"

make_rootfs "$WORK/source"
head -c 20000000 /dev/urandom > "$WORK/source/data/big.bin"
ref=docker://$REGISTRY/concurrency/image:1
KBATCH_CACHE=$WORK/pusher "$KBATCH" push --insecure -q "$WORK/source" "$ref" >/dev/null

pids=()
for i in 1 2 3 4; do
  "$KBATCH" pull --insecure --json "$ref" > "$WORK/pull$i.json" 2>"$WORK/pull$i.err" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a concurrent pull failed: $(cat "$WORK"/pull*.err)"; done

downloads=0
for i in 1 2 3 4; do
  downloads=$((downloads + $(json_field blobs_downloaded < "$WORK/pull$i.json")))
  [ "$(json_field rootfs < "$WORK/pull$i.json")" = "$(json_field rootfs < "$WORK/pull1.json")" ] || fail "pulls disagree on the root"
done
[ "$downloads" = 2 ] || fail "blobs were downloaded $downloads times in total, expected 2 (layer + config once)"
[ "$(ls "$KBATCH_CACHE/roots" | wc -l)" = 1 ] || fail "more than one root: $(ls -a "$KBATCH_CACHE/roots")"
[ -z "$(ls -A "$KBATCH_CACHE/tmp")" ] || fail "temporary files left: $(ls -A "$KBATCH_CACHE/tmp")"
compare_trees "$WORK/source" "$(json_field rootfs < "$WORK/pull1.json")"
echo PASS
