#!/bin/bash
# The `packages` strategy against a bare mmdebstrap installing the same packages (issue 5: within
# 1.3x, measured in one run). kbatch runs mmdebstrap itself (--mode=unshare --variant=minbase
# --format=tar, from this machine's apt sources), then unpacks, diffs against the minbase layer
# and packs the image into the store; the peer is that same mmdebstrap command alone.
#   - "base cached": the minbase layer is in the store already (it is built once per store, so
#     every packages image after a node's first), the image itself is new;
#   - "cold": an empty store: kbatch also builds the minbase base layer (a second mmdebstrap).
# Both download the packages from the mirror every time, so the network's speed is in both; the
# rounds alternate kbatch and the peer so that a slow minute hits both.
#   usage: bench/packages_bench.sh KBATCH [BINARY] [ROUNDS]   (default /usr/bin/curl, 2 rounds)
set -euo pipefail
KBATCH=${1:?usage: packages_bench.sh KBATCH [BINARY] [ROUNDS]}
BINARY=${2:-/usr/bin/curl}
ROUNDS=${3:-2}
command -v mmdebstrap >/dev/null || { echo "packages_bench: mmdebstrap is not installed" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kbatch-packages-bench.XXXXXX")
trap 'chmod -R u+rwX "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

seconds() { date +%s.%N; }
# build STORE BINARY -> prints the JSON result of kbatch build --strategy packages
build() { KBATCH_CACHE=$1 "$KBATCH" -q build --strategy packages --from-binary "$2" --json; }

echo "load: $(uptime)"
# The store with only the base (and /bin/true's image): every round copies it, then builds BINARY.
build "$WORK/base-store" /bin/true > /dev/null
codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')
sources=()
[ -f /etc/apt/sources.list ] && grep -Eq '^[[:space:]]*deb' /etc/apt/sources.list && sources+=(/etc/apt/sources.list)
for file in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$file" ] && grep -Eq '^[[:space:]]*(deb|Types:)' "$file" && sources+=("$file")
done

kbatch_times=() peer_times=()
for round in $(seq "$ROUNDS"); do
  rm -rf "$WORK/store" && cp -a "$WORK/base-store" "$WORK/store"
  start=$(seconds)
  build "$WORK/store" "$BINARY" > "$WORK/build.json"
  kbatch_times+=("$(echo "$(seconds) - $start" | bc -l)")
  packages=$(python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["packages"]))' < "$WORK/build.json")
  rm -f "$WORK/peer.tar"
  start=$(seconds)
  mmdebstrap --mode=unshare --variant=minbase --format=tar --quiet --include="$packages" \
    "$codename" "$WORK/peer.tar" "${sources[@]}"
  peer_times+=("$(echo "$(seconds) - $start" | bc -l)")
  echo "round $round: kbatch ${kbatch_times[-1]} s, mmdebstrap ${peer_times[-1]} s ($(tr ',' '\n' <<<"$packages" | wc -l) packages)"
done
rm -rf "$WORK/cold-store"
start=$(seconds)
build "$WORK/cold-store" "$BINARY" > /dev/null
cold=$(echo "$(seconds) - $start" | bc -l)
python3 - "$cold" "${kbatch_times[*]}" "${peer_times[*]}" "$BINARY" <<'PY'
import statistics, sys
cold = float(sys.argv[1])
kb = [float(x) for x in sys.argv[2].split()]
peer = [float(x) for x in sys.argv[3].split()]
ratios = [k / p for k, p in zip(kb, peer)]
print(f"packages image of {sys.argv[4]}: kbatch (base cached) {statistics.mean(kb):.1f} s, bare mmdebstrap "
      f"{statistics.mean(peer):.1f} s, ratio {statistics.mean(ratios):.2f} (rounds: "
      + ", ".join(f"{r:.2f}" for r in ratios) + f"; target <= 1.3); cold store (base too) {cold:.1f} s")
PY
echo "load: $(uptime)"
