#!/bin/bash
# A dependency image as an OCI image: built into the store with a digest, pushed to a real
# registry (Debian's docker-registry) and checked there by skopeo, pinned by digest in the job
# script at submission, and found on a "compute node" (a fresh store, the library hidden) in the
# registry, then in its local store; an unknown digest falls back to building, which fails there
# with the library's name.
#   pinned_image_registry.sh KBATCH KBATCH_SUBMIT REGISTRY_STATE TEST_USER CC
set -euo pipefail
kbatch=${1:?usage: pinned_image_registry.sh KBATCH KBATCH_SUBMIT REGISTRY_STATE TEST_USER CC}
kbatch_submit=${2:?}
registry_state=${3:?}
user=${4:?}
cc=${5:?}
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$registry_state/address" ] || fail "the registry fixture is not running ($registry_state/address missing)"
command -v skopeo >/dev/null || fail "skopeo is not installed"
registry=$(cat "$registry_state/address")
# Not under /tmp: kbatch mounts a fresh /tmp in the container, which would hide the program.
work=$(mktemp -d /var/tmp/kbatch-deps-pinned-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1"; }
as_user() { runuser -u "$user" -- env -u LD_LIBRARY_PATH HOME="$work" "$@"; }

mkdir -p "$work/libs" "$work/submit-store" "$work/node-store"
echo 'int secret(void){return 42;}' >"$work/secret.c"
printf '#include <stdio.h>\nint secret(void);\nint main(void){printf("result %%d\\n", secret());return 0;}\n' \
  >"$work/prog.c"
"$cc" -shared -fPIC -Wl,-soname,libsecret.so.1 -o "$work/libs/libsecret.so.1" "$work/secret.c"
ln -s libsecret.so.1 "$work/libs/libsecret.so"
"$cc" -o "$work/prog" "$work/prog.c" -L"$work/libs" -lsecret -Wl,-rpath,"$work/libs"
chmod -R a+rX "$work"
chown "$user" "$work/submit-store" "$work/node-store"

# 1. Build and push; the printed digest is the one the registry serves.
KBATCH_CACHE=$work/submit-store as_user "$kbatch" -q build --from-binary "$work/prog" --shell /bin/sh \
  --push "docker://$registry/kbatch-deps" --insecure --json >"$work/build1.json"
cat "$work/build1.json"
digest=$(field digest <"$work/build1.json")
reference=$(field reference <"$work/build1.json")
key=$(field key <"$work/build1.json")
[ "$(field cached <"$work/build1.json")" = false ] || fail "first build reported cached"
[ "$reference" = "docker://$registry/kbatch-deps:$key" ] || fail "pushed reference $reference is not tagged with the key"
[ -f "$(field root <"$work/build1.json")/$work/libs/libsecret.so.1" ] || fail "libsecret.so.1 missing from the root"
skopeo inspect --tls-verify=false "$reference" >"$work/inspect.json"
[ "$(field Digest <"$work/inspect.json")" = "$digest" ] || fail "skopeo sees $(field Digest <"$work/inspect.json"), kbatch printed $digest"
echo "registry serves $digest"

# 2. The image is in the store under its key, and a second build reuses it (same digest).
KBATCH_CACHE=$work/submit-store as_user "$kbatch" images --json >"$work/images.json"
grep -q "kbatch-deps:$key" "$work/images.json" || fail "kbatch images does not list kbatch-deps:$key"
KBATCH_CACHE=$work/submit-store as_user "$kbatch" -q build --from-binary "$work/prog" --shell /bin/sh --json >"$work/build2.json"
[ "$(field cached <"$work/build2.json")" = true ] || fail "second build was not a cache hit"
[ "$(field digest <"$work/build2.json")" = "$digest" ] || fail "second build gave another digest"

# 3. Submission: the submit filter builds once and pins the digest in the exec line, keeping
#    --from-binary as the fallback (no site registry in this policy: the store name is pinned).
printf '#!/bin/sh\n#PBS -N pinned\n#PBS -B %s\n%s\n' "$work/prog" "$work/prog" >"$work/job.pbs"
KBATCH_CACHE=$work/submit-store as_user "$kbatch_submit" submit-filter <"$work/job.pbs" >"$work/job.rewritten"
exec_line=$(grep '^exec ' "$work/job.rewritten") || fail "no exec line: $(cat "$work/job.rewritten")"
echo "$exec_line"
case $exec_line in
  *"--image kbatch-deps:$key@$digest"*"--from-binary $work/prog"*) ;;
  *) fail "the exec line does not pin kbatch-deps:$key@$digest before --from-binary" ;;
esac

# 4. The compute node: the library is gone, the node's store is empty. The pinned image comes from
#    the registry, then from the node's own store; the program runs from it.
mv "$work/libs" "$work/libs.hidden"
if "$work/prog" 2>/dev/null; then fail "prog still runs natively"; fi
run_pinned() {
  (cd / && KBATCH_CACHE=$work/node-store as_user "$kbatch" -vv exec --image "$1" \
     --from-binary "$work/prog" -- "$work/prog")
}
out=$(run_pinned "$reference@$digest" 2>"$work/exec1.err") || { cat "$work/exec1.err"; fail "exec from the registry failed"; }
[ "$out" = "result 42" ] || fail "exec printed '$out'"
grep -q "found in the registry" "$work/exec1.err" || { cat "$work/exec1.err"; fail "the image did not come from the registry"; }
out=$(run_pinned "$reference@$digest" 2>"$work/exec2.err") || { cat "$work/exec2.err"; fail "second exec failed"; }
[ "$out" = "result 42" ] || fail "second exec printed '$out'"
grep -q "found in the local store" "$work/exec2.err" || { cat "$work/exec2.err"; fail "the second run did not use the local store"; }
# An unpacked pinned image is found by the lean kbatch itself (image/src/dependency_local.cc).
if grep -q "continuing in .*kbatch-full" "$work/exec2.err"; then
  cat "$work/exec2.err"; fail "the second run handed over to kbatch-full"
fi
echo "compute node: registry, then local store"

# 5. A digest no source has: the build is the last resort, and here it fails naming the library.
missing="docker://$registry/kbatch-deps:nothing@sha256:$(printf '0%.0s' $(seq 64))"
if run_pinned "$missing" >/dev/null 2>"$work/exec3.err"; then fail "an unknown digest ran"; fi
grep -q "libsecret.so.1" "$work/exec3.err" || { cat "$work/exec3.err"; fail "the fallback build's error does not name the library"; }
grep -q "building it here" "$work/exec3.err" || { cat "$work/exec3.err"; fail "no fallback build was tried"; }
echo PASS
