#!/bin/bash
# The paper's case: a program linked against a library the "compute" side lacks. The test builds
# libsecret.so.1, links two programs to it (one with RUNPATH, one relying on the job's
# LD_LIBRARY_PATH), builds their dependency images as the unprivileged test user, hides the
# library, checks the programs now fail natively, and runs them from the images with ch-run (a
# peer runtime) and with `kbatch exec`.
#   hidden_library.sh KBATCH TEST_USER CC closure|auto
set -euo pipefail
kbatch=${1:?usage: hidden_library.sh KBATCH USER CC STRATEGY}
user=${2:?}
cc=${3:?}
strategy=${4:?}
# Not under /tmp: ch-run binds the host /tmp and kbatch mounts a fresh one, either would hide
# the program copied into the image.
work=$(mktemp -d /var/tmp/kbatch-deps-hidden-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
as_user() { runuser -u "$user" -- env -u LD_LIBRARY_PATH KBATCH_CACHE="$work/cache" HOME="$work" "$@"; }

mkdir -p "$work/libs"
echo 'int secret(void){return 42;}' >"$work/secret.c"
printf '#include <stdio.h>\nint secret(void);\nint main(void){printf("result %%d\\n", secret());return 0;}\n' \
  >"$work/prog.c"
"$cc" -shared -fPIC -Wl,-soname,libsecret.so.1 -o "$work/libs/libsecret.so.1" "$work/secret.c"
ln -s libsecret.so.1 "$work/libs/libsecret.so"
"$cc" -o "$work/prog_runpath" "$work/prog.c" -L"$work/libs" -lsecret -Wl,-rpath,"$work/libs"
"$cc" -o "$work/prog_plain" "$work/prog.c" -L"$work/libs" -lsecret
chmod -R a+rX "$work"
mkdir "$work/cache" && chown "$user" "$work/cache"

# Before hiding: both run natively (the plain one with the job's LD_LIBRARY_PATH).
[ "$("$work/prog_runpath")" = "result 42" ]
[ "$(LD_LIBRARY_PATH="$work/libs" "$work/prog_plain")" = "result 42" ]

root_runpath=$(as_user "$kbatch" -q build --from-binary "$work/prog_runpath" --shell /bin/bash \
               --strategy "$strategy")
root_plain=$(as_user "$kbatch" -q build --from-binary "$work/prog_plain" --shell /bin/bash \
             --strategy "$strategy" --ld-library-path "$work/libs")
echo "images: $root_runpath $root_plain"
for root in "$root_runpath" "$root_plain"; do
  [ -f "$root/$work/libs/libsecret.so.1" ] || { echo "libsecret.so.1 missing from $root"; exit 1; }
  [ -e "$root/bin/bash" ] || { echo "/bin/bash missing from $root"; exit 1; }
done

# A second build with the same inputs is a cache hit: same root, and fast.
start=$(date +%s%N)
again=$(as_user "$kbatch" -q build --from-binary "$work/prog_runpath" --shell /bin/bash \
        --strategy "$strategy")
echo "cached build: $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ "$again" = "$root_runpath" ] || { echo "cache miss: $again vs $root_runpath"; exit 1; }

# Hide the library: the programs fail natively.
mv "$work/libs" "$work/libs.hidden"
if "$work/prog_runpath" 2>"$work/native.err"; then echo "prog_runpath still runs natively"; exit 1; fi
grep -q "libsecret.so.1" "$work/native.err"
if LD_LIBRARY_PATH="$work/libs" "$work/prog_plain" 2>/dev/null; then
  echo "prog_plain still runs natively"; exit 1
fi
echo "native runs fail as expected: $(head -1 "$work/native.err")"

# ch-run, as the test user.
out=$(as_user ch-run "$root_runpath" -- "$work/prog_runpath")
[ "$out" = "result 42" ] || { echo "ch-run prog_runpath: '$out'"; exit 1; }
out=$(as_user env LD_LIBRARY_PATH="$work/libs" ch-run "$root_plain" -- "$work/prog_plain")
[ "$out" = "result 42" ] || { echo "ch-run prog_plain: '$out'"; exit 1; }
out=$(as_user ch-run "$root_runpath" -- /bin/bash -c 'echo shell ok')
[ "$out" = "shell ok" ]
echo "ch-run: both programs run from their $strategy images"

# kbatch exec with the image built at "submission", as the test user, run by kbatch's own
# runtime. (`exec --from-binary` would resolve the binary again here, where the library is gone.)
# Run from / so that no host directory is bound over the image.
out=$(cd / && as_user "$kbatch" -q exec --image "$root_runpath" -- "$work/prog_runpath")
[ "$out" = "result 42" ] || { echo "kbatch exec prog_runpath: '$out'"; exit 1; }
echo "kbatch exec: prog_runpath runs from its image"
