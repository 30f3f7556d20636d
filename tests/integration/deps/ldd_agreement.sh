#!/bin/bash
# `kbatch deps` must list exactly what ldd lists (name => path, or not found) for our own binaries
# and for at least 20 dynamically linked binaries from Debian packages on this machine. ldd is the
# oracle here only: these binaries are trusted, ldd may execute what it inspects.
set -euo pipefail
kbatch=${1:?usage: ldd_agreement.sh KBATCH DEPS_TEST}
deps_test=${2:?usage: ldd_agreement.sh KBATCH DEPS_TEST}
candidates=(bash ls cp tar gzip xz python3 perl ssh curl git gpg openssl make gcc ld objdump readelf
            file find grep sed mawk jq ch-run bwrap crun skopeo sbatch srun squeue munge dpkg apt
            apt-get cmake ccache clang-14 hyperfine sqlite3 rsync wget zstd vim.basic less)
binaries=("$kbatch" "$deps_test")
for name in "${candidates[@]}"; do
  path=$(command -v "$name" 2>/dev/null) || continue
  path=$(readlink -f "$path")
  # Only dynamically linked ELF files (no scripts, no static Go binaries).
  head -c 4 "$path" | grep -q $'\x7fELF' || continue
  LC_ALL=C readelf -l "$path" 2>/dev/null | grep -q 'INTERP' || continue
  binaries+=("$path")
done
debian_count=$(( ${#binaries[@]} - 2 ))
if [ "$debian_count" -lt 20 ]; then
  echo "ldd_agreement: only $debian_count dynamic binaries from Debian packages found (need 20)" >&2
  exit 1
fi

normalise_ldd() {
  # "\tname => /path (0x...)" and "\tname => not found"; drop vdso and the interpreter line.
  env -u LD_LIBRARY_PATH ldd "$1" | awk -F ' => ' 'NF == 2 {
      sub(/^[ \t]+/, "", $1); path = $2
      if (path ~ /^not found/) path = "not found"; else sub(/ \(0x[0-9a-f]+\)$/, "", path)
      print $1 " => " path }' | sort
}
normalise_kbatch() {
  # "  name => /path (via, package)" and "  name => not found (needed by X)".
  "$kbatch" deps --no-packages "$1" | awk -F ' => ' 'NF == 2 {
      sub(/^[ \t]+/, "", $1); path = $2
      if (path ~ /^not found/) path = "not found"; else sub(/ \([^)]*\)$/, "", path)
      print $1 " => " path }' | sort
}

failures=0
for binary in "${binaries[@]}"; do
  expected=$(normalise_ldd "$binary")
  actual=$(normalise_kbatch "$binary" || true)
  if [ "$expected" != "$actual" ]; then
    echo "MISMATCH for $binary:" >&2
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    failures=$((failures + 1))
  elif [ -z "$actual" ]; then
    echo "no libraries at all for $binary: the comparison would prove nothing" >&2
    failures=$((failures + 1))
  fi
done
echo "compared ${#binaries[@]} binaries ($debian_count from Debian packages), $failures mismatches"
[ "$failures" -eq 0 ]
