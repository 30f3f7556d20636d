#!/bin/bash
# Image store benchmarks, each against a peer measured in the same run:
#   1. unpack of a multi-layer image: kbatch (store unpack) vs `tar -x` of the same layers in order
#   2. pull from the local registry: kbatch pull (fresh store) vs `skopeo copy` to an OCI dir
#   3. warm `kbatch exec REF -- true` vs `kbatch exec DIR -- true` (what the store lookup adds)
# usage: bench/image_bench.sh KBATCH_BINARY REGISTRY_ADDRESS   (registry: plain HTTP, e.g. the
#        test fixture's 127.0.0.1:PORT: `--insecure` is honoured for loopback registries)
set -euo pipefail
KBATCH=${1:?usage: image_bench.sh KBATCH_BINARY REGISTRY_ADDRESS}
REGISTRY=${2:?usage: image_bench.sh KBATCH_BINARY REGISTRY_ADDRESS}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kbatch-image-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RUNS=${RUNS:-5}

# Layers: /usr/share/doc and locale (many small files), 60 large shared libraries, 100 MB of
# random data.
echo "building the benchmark image..."
for i in 1 2 3; do mkdir -p "$WORK/layer$i"; done
cp -a /usr/share/doc "$WORK/layer1/doc"
cp -a /usr/share/locale "$WORK/layer1/locale" 2>/dev/null || true
mkdir -p "$WORK/layer2/lib"
# (head closes the pipe early; that SIGPIPE is not a failure)
{ find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f -size +200k || true; } | head -60 > "$WORK/libs.txt" || true
xargs -a "$WORK/libs.txt" -I{} cp {} "$WORK/layer2/lib/"
head -c 100000000 /dev/urandom > "$WORK/layer3/random.bin"
export KBATCH_CACHE=$WORK/store

# A 3-layer image built with umoci and pushed by skopeo (so kbatch pulls a peer's image).
ref=docker://$REGISTRY/bench/multilayer:1
umoci init --layout "$WORK/oci" >/dev/null
umoci new --image "$WORK/oci:img" >/dev/null
for i in 1 2 3; do
  # A fresh unpack per layer, so that umoci diffs against the layers below (one layer each).
  umoci unpack --rootless --image "$WORK/oci:img" "$WORK/bundle$i" >/dev/null
  cp -a "$WORK/layer$i/." "$WORK/bundle$i/rootfs/"
  umoci repack --image "$WORK/oci:img" "$WORK/bundle$i" >/dev/null
  rm -rf "$WORK/bundle$i"
done
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/oci:img" "$ref"
layers=$(skopeo inspect --raw --tls-verify=false "$ref" | python3 -c 'import json,sys; print(" ".join(l["digest"][7:] for l in json.load(sys.stdin)["layers"]))')
"$KBATCH" -q pull --insecure --no-unpack "$ref" > /dev/null
digest=$("$KBATCH" images --json | python3 -c 'import json,sys; print([i["manifest"] for i in json.load(sys.stdin) if "multilayer" in i["name"]][0])')
hex=${digest#sha256:}

echo
echo "== 1. unpack ($(du -sh "$WORK/store/blobs" | cut -f1) of blobs, $RUNS runs each)"
# The peer: GNU tar extracting the same blobs in order, then syncing (kbatch syncs before it
# publishes a root).
cat > "$WORK/tarx.sh" <<TARX
mkdir -p "$WORK/tarx"
for layer in $layers; do tar -xzf "$WORK/store/blobs/sha256/\$layer" -C "$WORK/tarx"; done
sync -f "$WORK/tarx/."
TARX
hyperfine --runs "$RUNS" --export-json "$WORK/unpack.json" \
  --prepare "rm -rf $WORK/store/roots/$hex $WORK/tarx; sync" \
  "$KBATCH -q pull --insecure $ref" "bash $WORK/tarx.sh"
python3 - "$WORK/unpack.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"kbatch unpack {r[0]['mean']:.3f} s, tar -x + sync {r[1]['mean']:.3f} s, ratio {r[0]['mean']/r[1]['mean']:.2f} (target <= 1.3)")
PY

echo
echo "== 2. pull from the local registry ($RUNS runs each)"
hyperfine --runs "$RUNS" --export-json "$WORK/pull.json" \
  --prepare "rm -rf $WORK/fresh" "KBATCH_CACHE=$WORK/fresh $KBATCH -q pull --insecure --no-unpack $ref" \
  --prepare "rm -rf $WORK/skopeo-dir" "skopeo copy --quiet --src-tls-verify=false $ref oci:$WORK/skopeo-dir:img"
python3 - "$WORK/pull.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"kbatch pull {r[0]['mean']:.3f} s, skopeo copy {r[1]['mean']:.3f} s, ratio {r[0]['mean']/r[1]['mean']:.2f} (target <= 1.0)")
PY

echo
echo "== 3. warm exec: image reference vs directory"
rootfs=$WORK/store/roots/$hex/rootfs
"$KBATCH" -q pull --insecure "$ref" >/dev/null
# busybox picks its applet from argv[0] unless that is "busybox": call it by that name.
cp /usr/bin/busybox "$rootfs/busybox"
if "$KBATCH" exec "$ref" -- /busybox true >/dev/null 2>&1; then
  hyperfine -N --runs 100 --warmup 10 --export-json "$WORK/exec.json" \
    "$KBATCH exec $ref -- /busybox true" "$KBATCH exec $rootfs -- /busybox true"
  python3 - "$WORK/exec.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"exec by reference {r[0]['mean']*1000:.2f} ms, by directory {r[1]['mean']*1000:.2f} ms, store adds {(r[0]['mean']-r[1]['mean'])*1000:.2f} ms (target < 1 ms)")
PY
else
  echo "kbatch exec could not run here ($("$KBATCH" exec "$ref" -- /busybox true 2>&1 | tail -1)); measuring the lookup alone:"
  hyperfine --runs 30 --warmup 3 --export-json "$WORK/exec.json" \
    "$KBATCH images --json" "$KBATCH --version"
fi
