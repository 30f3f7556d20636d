#!/bin/bash
# Dependency-image benchmark: cold `closure` build (into the OCI store: pack, hash and gzip the
# dependency layer) and warm (cached) lookup, for a.out from
# examples/fib.cpp and for /usr/bin/python3, against a peer measured in the same run: a `tar`
# pipe copying exactly the files and links the image holds (what a hand-made closure costs).
# Targets (issue 5): warm < 0.5 s, cold closure < 2 s.
#   bench/deps_bench.sh [KBATCH]   (default: build-deps/kbatch, else build/kbatch)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kbatch=${1:-}
if [ -z "$kbatch" ]; then
  for candidate in "$here/build-deps/kbatch" "$here/build/kbatch"; do
    [ -x "$candidate" ] && kbatch=$candidate && break
  done
fi
[ -x "$kbatch" ] || { echo "deps_bench: no kbatch binary (give its path)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "deps_bench: hyperfine is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
g++ -O2 -o "$work/a.out" "$here/examples/fib.cpp"

mean() { jq -r '.results[0].mean' "$1"; }
# The machine is shared: the load is printed with the figures.
echo "load: $(uptime)"
printf '%-18s %12s %12s %12s %14s %10s\n' binary files cold_s warm_s tar_peer_s cold/tar
for binary in "$work/a.out" /usr/bin/python3; do
  name=$(basename "$binary")
  cache="$work/cache-$name"
  build=("$kbatch" -q build --from-binary "$binary" --shell /bin/bash)
  # Cold: an empty cache every run.
  hyperfine --style none --warmup 1 --runs 10 --prepare "rm -rf '$cache'" \
    --export-json "$work/cold.json" "KBATCH_CACHE='$cache' ${build[*]}" >/dev/null
  # Warm: the image exists in the store; resolve the binary, look up the cached library hashes
  # (stat keys) and find the image's tag and unpacked root.
  root=$(KBATCH_CACHE="$cache" "${build[@]}")
  hyperfine --style none --warmup 2 --runs 20 --export-json "$work/warm.json" \
    "KBATCH_CACHE='$cache' ${build[*]}" >/dev/null
  # Peer: copy the same host files and links (the image minus what kbatch generates itself).
  (cd "$root" && find . \( -type f -o -type l \) -printf '/%P\n') |
    grep -v -e '^/etc/passwd$' -e '^/etc/group$' -e '^/etc/ld.so.cache$' >"$work/list"
  files=$(wc -l <"$work/list")
  hyperfine --style none --warmup 1 --runs 10 --prepare "rm -rf '$work/peer'; mkdir '$work/peer'" \
    --export-json "$work/peer.json" \
    "tar -cf - --absolute-names -T '$work/list' | tar -xf - -C '$work/peer'" >/dev/null
  cold=$(mean "$work/cold.json") warm=$(mean "$work/warm.json") peer=$(mean "$work/peer.json")
  printf '%-18s %12s %12.3f %12.3f %14.3f %10.2f\n' "$name" "$files" "$cold" "$warm" "$peer" \
    "$(echo "$cold / $peer" | bc -l)"
done
echo "load: $(uptime)"
