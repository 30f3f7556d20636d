#!/bin/bash
# The warm path of dependency images (image/src/dependency_memo.h): the second identical request
# is answered by the lean kbatch from the memo, without handing over to kbatch-full; any change to
# what the answer depended on (the binary, a library, LD_LIBRARY_PATH's directories) sends it back
# to the full lookup, which builds the right image; requests the memo cannot watch (a library
# found through LD_LIBRARY_PATH) are never remembered.
#   remembered_image.sh KBATCH TEST_USER CC
set -euo pipefail
kbatch=${1:?usage: remembered_image.sh KBATCH USER CC}
user=${2:?}
cc=${3:?}
# Not under /tmp, which kbatch mounts afresh in the container.
work=$(mktemp -d /var/tmp/kbatch-deps-memo-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
chmod 755 "$work"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
as_user() { (cd "$work" && runuser -u "$user" -- env -u LD_LIBRARY_PATH KBATCH_CACHE="$work/cache" HOME="$work" "$@"); }
# run NAME ARGS...: kbatch -vv ARGS as the test user; stdout in $work/NAME.out, log in NAME.err
run() {
  local name=$1; shift
  as_user "$kbatch" -vv "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    { fail "$name: exit $?"; cat "$work/$name.err" >&2; }
}
remembered() { grep -q "(remembered; nothing changed since)" "$work/$1.err"; }
handed_over() { grep -q "continuing in .*kbatch-full" "$work/$1.err"; }

program() {  # program TEXT: (re)builds $work/prog, which prints TEXT
  printf '#include <stdio.h>\nint main(void){puts("%s");return 0;}\n' "$1" >"$work/prog.c"
  "$cc" -o "$work/prog.new" "$work/prog.c"
  mv "$work/prog.new" "$work/prog"
  chmod 755 "$work/prog"
}
mkdir "$work/cache" && chown "$user" "$work/cache"
program first

echo "== first run: kbatch-full resolves and builds"
run build1 exec --from-binary "$work/prog" -- "$work/prog"
grep -qx first "$work/build1.out" || fail "build1: output $(cat "$work/build1.out")"
handed_over build1 || fail "build1: did not hand over to kbatch-full"

echo "== second run: the lean kbatch answers from the memo"
run warm exec --from-binary "$work/prog" -- "$work/prog"
grep -qx first "$work/warm.out" || fail "warm: output $(cat "$work/warm.out")"
remembered warm || fail "warm: not answered from the memo"
handed_over warm && fail "warm: handed over to kbatch-full"

echo "== the binary changed (same size, mtime set back): rebuilt, not remembered"
stamp=$(stat -c %y "$work/prog")
program other
touch -d "$stamp" "$work/prog"
run changed exec --from-binary "$work/prog" -- "$work/prog"
grep -qx other "$work/changed.out" || fail "changed: ran the old image: $(cat "$work/changed.out")"
remembered changed && fail "changed: answered from a stale memo"
run changed2 exec --from-binary "$work/prog" -- "$work/prog"
remembered changed2 || fail "changed2: the new answer was not remembered"

echo "== an LD_LIBRARY_PATH directory gains an entry: looked up again"
mkdir -p "$work/libdir" && chmod 755 "$work/libdir"
# The job's LD_LIBRARY_PATH (kbatch's own environment) is part of the request.
with_ld_path() {  # with_ld_path NAME DIR
  as_user env LD_LIBRARY_PATH="$2" "$kbatch" -vv exec --from-binary "$work/prog" -- \
    "$work/prog" >"$work/$1.out" 2>"$work/$1.err" || fail "$1: exit $?"
}
with_ld_path ldpath1 "$work/libdir"
remembered ldpath1 && fail "ldpath1: another LD_LIBRARY_PATH answered from the memo"
with_ld_path ldpath2 "$work/libdir"
remembered ldpath2 || fail "ldpath2: not answered from the memo"
touch "$work/libdir/libunrelated.so.1"
with_ld_path ldpath3 "$work/libdir"
remembered ldpath3 && fail "ldpath3: the changed LD_LIBRARY_PATH directory was not noticed"

echo "== a library found through LD_LIBRARY_PATH: never remembered"
mkdir -p "$work/libs"
echo 'int secret(void){return 42;}' >"$work/secret.c"
printf '#include <stdio.h>\nint secret(void);\nint main(void){printf("result %%d\\n", secret());return 0;}\n' \
  >"$work/secret_prog.c"
"$cc" -shared -fPIC -Wl,-soname,libsecret.so.1 -o "$work/libs/libsecret.so.1" "$work/secret.c"
"$cc" -o "$work/secret_prog" "$work/secret_prog.c" -L"$work/libs" -l:libsecret.so.1
chmod -R a+rX "$work/libs" "$work/secret_prog"
for n in 1 2; do
  as_user env LD_LIBRARY_PATH="$work/libs" "$kbatch" -vv exec --from-binary "$work/secret_prog" -- \
    "$work/secret_prog" >"$work/secret$n.out" 2>"$work/secret$n.err" || fail "secret$n: exit $?"
  grep -qx "result 42" "$work/secret$n.out" || fail "secret$n: output $(cat "$work/secret$n.out")"
done
remembered secret2 && fail "secret2: a library found through LD_LIBRARY_PATH was remembered"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "remembered dependency images: all checks passed"
