#!/bin/bash
# A dependency image reaching a second node through the registry (issue 5: "second node gets the
# image from the registry in under 1 s for a 50 MB image on loopback"), against skopeo measured in
# the same run. The paper copied image tar files to every node over ssh (44 s with the build).
#   1. first node: `kbatch build --from-binary a.out --extra PAYLOAD --push` (not timed);
#   2. second node, cold store each run: `kbatch pull` (fetch, verify, unpack: ready for exec) and
#      `kbatch exec REF -- /bin/sh -c :` (pull and run the shell the image holds), against `skopeo copy` to an OCI layout, and
#      `skopeo copy` + `umoci unpack --rootless` (fetch + unpack, the same end state as kbatch pull).
# usage: bench/distribution_bench.sh KBATCH REGISTRY_ADDRESS [SIZE_MB]   (default 50 MB)
#        registry: plain HTTP on loopback, e.g. the test fixture's 127.0.0.1:PORT
#        (tests/integration/registry/registry-fixture.sh start DIR prints it)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KBATCH=${1:?usage: distribution_bench.sh KBATCH REGISTRY_ADDRESS [SIZE_MB]}
REGISTRY=${2:?usage: distribution_bench.sh KBATCH REGISTRY_ADDRESS [SIZE_MB]}
SIZE_MB=${3:-50}
RUNS=${RUNS:-10}
for tool in hyperfine skopeo umoci g++ python3; do
  command -v "$tool" >/dev/null || { echo "distribution_bench: $tool is not installed" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kbatch-distribution-bench.XXXXXX")
trap 'chmod -R u+rwX "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

# The job's binary (the paper's Listing 3) and data that makes the image SIZE_MB: random bytes,
# which gzip cannot shrink, so the registry really serves SIZE_MB.
g++ -O2 -o "$WORK/a.out" "$here/examples/fib.cpp"
mkdir -p "$WORK/payload"
head -c "$((SIZE_MB * 1000 * 1000))" /dev/urandom > "$WORK/payload/input.dat"
ref=docker://$REGISTRY/bench/deps-a.out:$SIZE_MB
echo "first node: building and pushing the dependency image..."
KBATCH_CACHE=$WORK/node1 "$KBATCH" -q build --from-binary "$WORK/a.out" --shell /bin/sh \
  --extra "$WORK/payload" --push "$ref" --insecure >/dev/null
bytes=$(skopeo inspect --raw --tls-verify=false "$ref" |
  python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
echo "image: $ref, $(python3 -c "print(f'{$bytes / 1e6:.1f}')") MB of layers (compressed)"

node2=$WORK/node2
hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/dist.json" \
  -n "kbatch pull" --prepare "rm -rf '$node2'" \
  "env KBATCH_CACHE=$node2 $KBATCH -q pull --insecure $ref" \
  -n "kbatch exec REF -- /bin/sh -c : (cold)" --prepare "rm -rf '$node2'" \
  "env KBATCH_CACHE=$node2 $KBATCH -q exec $ref -- /bin/sh -c :" \
  -n "skopeo copy" --prepare "rm -rf '$WORK/oci'" \
  "skopeo copy --quiet --src-tls-verify=false $ref oci:$WORK/oci:img" \
  -n "skopeo copy + umoci unpack" --prepare "rm -rf '$WORK/oci' '$WORK/bundle'" \
  "sh -c 'skopeo copy --quiet --src-tls-verify=false $ref oci:$WORK/oci:img && umoci unpack --rootless --image $WORK/oci:img $WORK/bundle >/dev/null'"
python3 - "$WORK/dist.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
pull, execute, copy, unpack = (r["kbatch pull"], r["kbatch exec REF -- /bin/sh -c : (cold)"],
                               r["skopeo copy"], r["skopeo copy + umoci unpack"])
print(f"second node: kbatch pull {pull:.3f} s (target < 1 s), cold exec {execute:.3f} s; "
      f"skopeo copy {copy:.3f} s, + umoci unpack {unpack:.3f} s; "
      f"kbatch pull / (skopeo copy + umoci unpack) = {pull / unpack:.2f}")
PY
