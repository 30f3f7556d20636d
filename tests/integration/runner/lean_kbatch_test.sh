#!/bin/bash
# The lean `kbatch` and its helpers kbatch-cli, kbatch-k8s and kbatch-full (cli/src/full_only.h,
# cli/src/exec_main.cc), checked from outside:
#   1. the lean executable records no libcurl, libarchive, OpenSSL or libelf (kbatch-full does);
#      kbatch-k8s records libcurl but not libarchive or libelf; the lean one links neither CLI11
#      nor yaml-cpp (kbatch-cli does), so nothing builds the C++ streams before its main;
#   2. it answers every command line exactly as kbatch-full does (help, errors, exit codes);
#   3. a warm `kbatch exec` (a directory, an image already unpacked in the store) loads none of
#      those libraries, and a cold one hands over to kbatch-full, stdin (--job-body) included.
# usage: lean_kbatch_test.sh KBATCH ROOTFS USER SCRATCH
set -uo pipefail
KBATCH=${1:?usage: lean_kbatch_test.sh KBATCH ROOTFS USER SCRATCH}
ROOTFS=${2:?}
TEST_USER=${3:?}
SCRATCH=${4:?}
FULL=$(dirname "$KBATCH")/libexec/kbatch/kbatch-full
PODS=$(dirname "$KBATCH")/libexec/kbatch/kbatch-k8s
HEAVY='libcurl|libarchive|libcrypto|libssl|libelf'

fail() { echo "FAIL: $*" >&2; exit 1; }
as_user() { runuser -u "$TEST_USER" -- env KBATCH_CACHE="$SCRATCH/store" "$@"; }

[ -x "$FULL" ] || fail "kbatch-full not built at $FULL"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH" && chmod 777 "$SCRATCH"
cd "$SCRATCH" || fail "cannot enter $SCRATCH"

# 1. What the dynamic loader has to load.
lean_needed=$(readelf -d "$KBATCH" | grep NEEDED) || fail "readelf failed on $KBATCH"
full_needed=$(readelf -d "$FULL" | grep NEEDED) || fail "readelf failed on $FULL"
if grep -Eq "$HEAVY" <<<"$lean_needed"; then
  fail "the lean kbatch needs heavy libraries: $(grep -Eo "$HEAVY[^]]*" <<<"$lean_needed" | tr '\n' ' ')"
fi
# The same pattern finds them in kbatch-full, so the check above can fail.
grep -q libcurl <<<"$full_needed" && grep -q libarchive <<<"$full_needed" ||
  fail "kbatch-full does not link libcurl and libarchive: the pattern would prove nothing"
echo "ok: kbatch needs $(wc -l <<<"$lean_needed") libraries, kbatch-full $(wc -l <<<"$full_needed")"
[ -x "$PODS" ] || fail "kbatch-k8s not built at $PODS"
pods_needed=$(readelf -d "$PODS" | grep NEEDED) || fail "readelf failed on $PODS"
grep -q libcurl <<<"$pods_needed" || fail "kbatch-k8s does not link libcurl"
if grep -Eq 'libarchive|libelf' <<<"$pods_needed"; then
  fail "kbatch-k8s needs what only images and builds need: $(grep -Eo '(libarchive|libelf)[^]]*' <<<"$pods_needed" | tr '\n' ' ')"
fi
echo "ok: kbatch-k8s needs $(wc -l <<<"$pods_needed") libraries: libcurl, no libarchive or libelf"
CLI=$(dirname "$KBATCH")/libexec/kbatch/kbatch-cli
[ -x "$CLI" ] || fail "kbatch-cli not built at $CLI"
HEAVY_CXX='YAML::Parser::|CLI::App::App|std::ios_base::Init::Init'
front_symbols=$(nm -C "$KBATCH" | grep -Eo "$HEAVY_CXX" | sort -u)
[ -z "$front_symbols" ] || fail "the lean kbatch links: $(tr '\n' ' ' <<<"$front_symbols")"
# The same probe finds all three in kbatch-cli, so the check above can fail.
[ "$(nm -C "$CLI" | grep -Eo "$HEAVY_CXX" | sort -u | wc -l)" = 3 ] ||
  fail "kbatch-cli does not link yaml-cpp, CLI11 and iostreams: the probe would prove nothing"
echo "ok: the lean kbatch links no CLI11, yaml-cpp or iostreams; kbatch-cli does"

# 2. One command: the same output and status for every kind of command line.
same_answer() {
  local lean_out full_out lean_status full_status
  lean_out=$("$KBATCH" "$@" 2>&1); lean_status=$?
  full_out=$("$FULL" "$@" 2>&1); full_status=$?
  [ "$lean_status" = "$full_status" ] ||
    fail "kbatch $* exits $lean_status, kbatch-full $full_status"
  [ "$lean_out" = "$full_out" ] ||
    fail "kbatch $* answers differently:"$'\n'"$(diff <(echo "$lean_out") <(echo "$full_out"))"
  echo "ok: kbatch $* (status $lean_status)"
}
same_answer help
same_answer --help
same_answer
same_answer -v --help
same_answer --version
same_answer help exec
same_answer help pull
same_answer exec --help
same_answer run --help
same_answer pull --help
same_answer images --help
same_answer rewrite --help
same_answer no-such-command
same_answer exec --no-such-flag "$ROOTFS" -- true
same_answer k8s --help
same_answer k8s run --help
same_answer manifest --help
same_answer help k8s
# kbatch-k8s hands what it does not carry to kbatch-full, and answers as it does.
for args in "pull --help" "images --help" "help" "no-such-command"; do
  # shellcheck disable=SC2086
  [ "$("$PODS" $args 2>&1; echo "status $?")" = "$("$FULL" $args 2>&1; echo "status $?")" ] ||
    fail "kbatch-k8s $args answers differently from kbatch-full"
done
echo "ok: kbatch-k8s hands pull, images, help and unknown words to kbatch-full"
help_text=$("$KBATCH" help)
for command in exec run pull push images build deps policy rewrite submit-filter qsub; do
  grep -Eq "^ +$command( |$)" <<<"$help_text" || fail "kbatch help does not list $command"
done
echo "ok: kbatch help lists every command"

# 3. The hot path stays lean; the cold path hands over.
loaded_heavy() { grep -E "calling init: .*($HEAVY)" <<<"$1" | sed 's/.*calling init: //' | sort -u; }
out=$(as_user env LD_DEBUG=files "$KBATCH" exec "$ROOTFS" -- /bin/true 2>&1) ||
  fail "kbatch exec ROOTFS failed: $(tail -3 <<<"$out")"
[ -z "$(loaded_heavy "$out")" ] || fail "kbatch exec ROOTFS loaded: $(loaded_heavy "$out")"
# The same probe sees the libraries when they are loaded.
out=$(as_user env LD_DEBUG=files "$KBATCH" images 2>&1) || fail "kbatch images failed: $out"
[ -n "$(loaded_heavy "$out")" ] || fail "LD_DEBUG=files shows no library loads: the probe is void"
echo "ok: exec from a directory loads no heavy library; kbatch images (in kbatch-full) does"
# A policy only the YAML loader reads (here an overlay) and a command line only CLI11 takes go to
# kbatch-cli, and the job runs as it would have.
# (An overlay must sit where only its owner or root can write: not in the shared scratch.)
overlay_dir=$(mktemp -d /tmp/kbatch-lean-overlay.XXXXXX) && chmod 755 "$overlay_dir" ||
  fail "cannot make a directory for the overlay"
printf 'version: 1\nimages:\n  allowed: ["/**"]\n' >"$overlay_dir/overlay.yaml"
chmod 644 "$overlay_dir/overlay.yaml"
out=$(as_user env KBATCH_POLICY_OVERLAY="$overlay_dir/overlay.yaml" "$KBATCH" -vv exec "$ROOTFS" \
        -- /bin/sh -c 'echo ran' 2>&1) || fail "exec under an overlay policy failed: $out"
grep -q 'continuing in .*/kbatch-cli$' <<<"$out" && grep -q '^ran$' <<<"$out" ||
  fail "exec under an overlay policy did not run in kbatch-cli: $out"
rm -rf "$overlay_dir"
out=$(as_user "$KBATCH" -vv exec "$ROOTFS" /bin/echo ran 2>&1)
grep -q 'continuing in .*/kbatch-cli$' <<<"$out" && grep -q '^ran$' <<<"$out" ||
  fail "a command line without -- did not run in kbatch-cli: $out"
out=$(as_user "$KBATCH" -vv exec "$ROOTFS" -- /bin/sh -c 'echo ran' 2>&1)
grep -q 'continuing in' <<<"$out" && fail "a plain exec left the front end: $out"
echo "ok: an overlay policy and a command line for CLI11 continue in kbatch-cli; a plain exec does not"
# The Kubernetes commands go to kbatch-k8s: libcurl is loaded, libarchive is not.
out=$(as_user env LD_DEBUG=files "$KBATCH" k8s --help 2>&1) || fail "kbatch k8s --help failed: $out"
grep -Eq "calling init: .*libcurl" <<<"$out" || fail "kbatch k8s --help loaded no libcurl: not in a helper"
grep -Eq "calling init: .*libarchive" <<<"$out" && fail "kbatch k8s --help went to kbatch-full (libarchive loaded)"
echo "ok: kbatch k8s runs in kbatch-k8s (libcurl, no libarchive)"

built=$(as_user "$KBATCH" -q build --from-binary /bin/true --tag lean-test --json) ||
  fail "kbatch build failed: $built"
root=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["root"])' <<<"$built")
[ -d "$root" ] || fail "kbatch build reported no root directory: $built"
# Cold: the tag is there but the root is not unpacked; the body read from stdin must survive the
# hand-over to kbatch-full.
rm -rf "$(dirname "$root")"
body='echo "body ran as $0 with stdin:$(cat)"'
out=$(base64 <<<"$body" | as_user env LD_DEBUG=files "$KBATCH" exec --job-body=base64 \
        --image lean-test -- /bin/sh 2>"$SCRATCH/cold.err")
status=$?
[ "$status" = 0 ] || fail "cold exec exited $status: $(grep -v '^ *[0-9]*:' "$SCRATCH/cold.err" | tail -3)"
[ "$out" = "body ran as /dev/kbatch-job-body with stdin:" ] || fail "cold exec printed: $out"
[ -n "$(loaded_heavy "$(cat "$SCRATCH/cold.err")")" ] ||
  fail "the cold exec unpacked without kbatch-full's libraries"
[ -d "$root" ] || fail "the cold exec did not unpack $root"
echo "ok: cold exec of a stored image unpacks in kbatch-full and keeps the job body"
# Warm: the root is there now.
out=$(base64 <<<"$body" | as_user env LD_DEBUG=files "$KBATCH" exec --job-body=base64 \
        --image lean-test -- /bin/sh 2>"$SCRATCH/warm.err")
status=$?
[ "$status" = 0 ] || fail "warm exec exited $status: $(grep -v '^ *[0-9]*:' "$SCRATCH/warm.err" | tail -3)"
[ "$out" = "body ran as /dev/kbatch-job-body with stdin:" ] || fail "warm exec printed: $out"
heavy=$(loaded_heavy "$(cat "$SCRATCH/warm.err")")
[ -z "$heavy" ] || fail "warm exec of a stored image loaded: $heavy"
echo "ok: warm exec of a stored image stays in the lean kbatch"

# Exit codes pass through the hand-over unchanged.
rm -rf "$(dirname "$root")"
as_user "$KBATCH" -q exec lean-test -- /bin/sh -c 'exit 42'
status=$?
[ "$status" = 42 ] || fail "exit 42 through kbatch-full came back as $status"
as_user "$KBATCH" -q exec no-such-image-here -- /bin/true 2>/dev/null
status=$?
[ "$status" = 127 ] || fail "a missing image exits $status, expected 127"
echo "ok: exit statuses 42 and 127 through the hand-over"
