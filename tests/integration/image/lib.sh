# Shared helpers for the image integration tests (sourced).
#   usage of every test: TEST.sh KBATCH_BINARY REGISTRY_STATE_DIR
set -euo pipefail
KBATCH=${1:?usage: $0 KBATCH_BINARY REGISTRY_STATE_DIR}
REGISTRY_STATE=${2:?usage: $0 KBATCH_BINARY REGISTRY_STATE_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$KBATCH" ] || { echo "FAIL: kbatch binary $KBATCH is missing" >&2; exit 1; }
[ -f "$REGISTRY_STATE/address" ] || { echo "FAIL: the registry fixture is not running ($REGISTRY_STATE/address missing)" >&2; exit 1; }
REGISTRY=$(cat "$REGISTRY_STATE/address")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kbatch-image-test.XXXXXX")
trap 'chmod -R u+rwX "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
export KBATCH_CACHE=$WORK/cache
# The local test registry speaks plain HTTP on 127.0.0.1: `--insecure` is honoured for loopback
# registries (other hosts need the site policy's site.insecure_registries).
unset REGISTRY_AUTH_FILE DOCKER_CONFIG

fail() { echo "FAIL: $*" >&2; exit 1; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# make_rootfs DIR: a small root filesystem with a static busybox, links of every kind, a setuid
# file and a nested directory tree.
make_rootfs() {
  local root=$1
  mkdir -p "$root"/{bin,etc,data/sub/deeper,tmp}
  cp /usr/bin/busybox "$root/bin/busybox"
  for tool in sh cat echo ls true env; do ln -s busybox "$root/bin/$tool"; done
  printf 'NAME="kbatch test image"\nID=kbtest\n' > "$root/etc/os-release"
  echo "keep me" > "$root/data/keep.txt"
  echo "remove me" > "$root/data/remove-me"
  echo "deep" > "$root/data/sub/deeper/file"
  ln "$root/data/keep.txt" "$root/data/keep-hardlink.txt"
  ln -s ../etc/os-release "$root/data/os-release-link"
  head -c 300000 /dev/urandom > "$root/data/random.bin"
  chmod 0750 "$root/data/sub"
  chmod 0600 "$root/etc/os-release"
  chmod 1777 "$root/tmp"
}

# compare_trees A B: same paths, types, symlink targets, contents and permission bits.
compare_trees() { python3 "$HERE/compare_trees.py" "$1" "$2"; }
