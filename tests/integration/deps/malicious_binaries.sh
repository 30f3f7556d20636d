#!/bin/bash
# Hostile inputs to `kbatch deps`: each must end with kbatch's own error (exit 125) and one line
# naming the file, never a crash (signal) or a hang; a loop of RUNPATH references must terminate.
set -euo pipefail
kbatch=${1:?usage: malicious_binaries.sh KBATCH CC}
cc=${2:?usage: malicious_binaries.sh KBATCH CC}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

expect_error() {  # FILE WHAT
  local file=$1 what=$2 status=0
  timeout 20 "$kbatch" deps "$file" >"$work/out" 2>"$work/err" || status=$?
  if [ "$status" -ne 125 ]; then
    echo "FAIL $what: exit status $status (expected 125)"; cat "$work/err"; exit 1
  fi
  if [ "$(wc -l <"$work/err")" -ne 1 ] || ! grep -qF "$file" "$work/err"; then
    echo "FAIL $what: expected one error line naming $file, got:"; cat "$work/err"; exit 1
  fi
  echo "ok   $what: $(cat "$work/err")"
}

printf '\177ELF\002\001\001\000garbage after a valid-looking magic' >"$work/bogus-header"
expect_error "$work/bogus-header" "bogus ELF header"

head -c 3000 /bin/ls >"$work/truncated"
expect_error "$work/truncated" "truncated program headers"

# A copy cut inside its loadable segments.
size=$(stat -c %s /bin/ls)
head -c $((size / 2)) /bin/ls >"$work/half"
expect_error "$work/half" "truncated segments"

cp /bin/ls "$work/bad-class"
printf '\011' | dd of="$work/bad-class" bs=1 seek=4 conv=notrunc status=none
expect_error "$work/bad-class" "invalid ELF class"

truncate -s 1G "$work/sparse-1g"
printf '\177ELF\002\001\001' | dd of="$work/sparse-1g" conv=notrunc status=none
start=$(date +%s%N)
expect_error "$work/sparse-1g" "1 GB sparse file"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "     (refused in ${elapsed_ms} ms)"

printf '#!/bin/sh\necho hi\n' >"$work/script.sh"
expect_error "$work/script.sh" "shell script"
expect_error "$work" "directory"

# A loop of RUNPATH references: liba -> libb -> liba, each pointing its RUNPATH at the other's
# directory and at a symlink that points to itself. It resolves, and terminates.
mkdir -p "$work/a" "$work/b"
ln -s "$work/selfloop" "$work/selfloop"
echo 'int b(void){return 1;}' >"$work/b.c"
echo 'int b(void); int a(void){return b()+1;}' >"$work/a.c"
echo 'int a(void); int b(void){return a()+1;}' >"$work/b2.c"
echo 'int a(void); int main(void){return a();}' >"$work/p.c"
"$cc" -shared -fPIC -Wl,-soname,libb.so -o "$work/b/libb.so" "$work/b.c"
"$cc" -shared -fPIC -Wl,-soname,liba.so -o "$work/a/liba.so" "$work/a.c" "$work/b/libb.so" \
  -Wl,--enable-new-dtags,-rpath,"$work/b:$work/selfloop:$work/a"
"$cc" -shared -fPIC -Wl,-soname,libb.so -o "$work/b/libb.so" "$work/b2.c" "$work/a/liba.so" \
  -Wl,--enable-new-dtags,-rpath,"$work/a:$work/selfloop:$work/b"
"$cc" -o "$work/loop" "$work/p.c" "$work/a/liba.so" -Wl,--enable-new-dtags,-rpath,"$work/a:$work/a"
timeout 20 "$kbatch" deps --no-packages "$work/loop" >"$work/out"
grep -q "libb.so => $work/b/libb.so" "$work/out" || { echo "FAIL runpath loop:"; cat "$work/out"; exit 1; }
echo "ok   RUNPATH loop resolves and terminates"
