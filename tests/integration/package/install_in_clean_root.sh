#!/bin/bash
# Installs the .deb (from the `deb` fixture) in a clean Debian root filesystem as an admin would,
# with apt resolving its Depends from the machine's own mirror, and runs kbatch there:
#   1. a minimal root filesystem of this machine's release, built by mmdebstrap from this machine's
#      apt sources (/etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}: no mirror
#      is named here), cached in WORK_DIR as a tarball keyed by those sources;
#   2. `apt-get install ./kbatch_*.deb` inside it (Depends only, no Recommends);
#   3. `kbatch --version`, `kbatch policy check` on the installed conffile, then the paper's
#      Listing 2 (examples/fib.pbs) with `kbatch run`, as a non-root user created there, in a
#      container of its own (user namespaces, from inside that root filesystem);
#   4. `apt-get purge kbatch` removes the binaries and the conffile.
# Fails, never skips, when mmdebstrap or the mirror is missing.
#   install_in_clean_root.sh DEB WORK_DIR SOURCE_DIR
set -euo pipefail
deb=${1:?usage: install_in_clean_root.sh DEB WORK_DIR SOURCE_DIR}
work=${2:?usage: install_in_clean_root.sh DEB WORK_DIR SOURCE_DIR}
source_dir=${3:?usage: install_in_clean_root.sh DEB WORK_DIR SOURCE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
enter_root=$here/enter-root.sh
readonly kJobUser=kbjob
# passwd: useradd for the job's user; mount: umount for enter-root.sh.
readonly kBasePackages=passwd,mount

fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it builds and enters a root filesystem)"
[ -f "$deb" ] || fail "no package at $deb (the 'deb' fixture, build_deb.sh, did not run)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap not found: run packaging/install-deps.sh"
deb=$(readlink -f "$deb")
mkdir -p "$work"
work=$(cd "$work" && pwd -P)

# ---- 1. the base root filesystem, from this machine's apt sources.
# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:-}
[ -n "$codename" ] || fail "/etc/os-release names no VERSION_CODENAME: cannot tell which release to build"
sources=()
if [ -s /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
  sources+=(/etc/apt/sources.list)
fi
for file in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$file" ] && sources+=("$file")
done
[ ${#sources[@]} -gt 0 ] || fail "no apt sources on this machine (/etc/apt/sources.list{,.d/}): no mirror to build from"
key=$( { echo "$codename $kBasePackages"; cat "${sources[@]}"; } | sha256sum | cut -c1-16)
base=$work/base-$codename-$key.tar
if [ -s "$base" ]; then
  echo "base root filesystem: cached $base"
else
  echo "base root filesystem: mmdebstrap $codename from ${sources[*]}"
  rm -f "$work"/base-*.tar
  # Root mode: the test runs as root, so no subordinate ids are needed. The sources files are
  # passed as they are: mmdebstrap pastes them into the new root's apt configuration.
  mmdebstrap --mode=root --variant=minbase --include="$kBasePackages" "$codename" \
    "$work/base.partial.tar" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1 || {
    tail -n 30 "$work/mmdebstrap.log" >&2
    fail "mmdebstrap could not build a $codename root filesystem from ${sources[*]} (is the mirror reachable?)"
  }
  mv "$work/base.partial.tar" "$base"
fi

# ---- a fresh copy of it for this run.
root=$work/root
if grep -qF " $root" /proc/self/mountinfo; then
  fail "something is still mounted under $root; refusing to delete it: $(grep -F " $root" /proc/self/mountinfo)"
fi
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" --numeric-owner -xpf "$base"
install -m 0644 "$deb" "$root/var/tmp/$(basename "$deb")"
inRoot() { "$enter_root" "$root" "$@"; }

# ---- 2. install as an admin would: apt resolves Depends from the mirror.
inRoot /bin/sh -c "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends /var/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1 || {
  tail -n 30 "$work/apt.log" >&2
  fail "apt-get could not install $(basename "$deb") in the clean root (mirror unreachable, or a Depends that does not resolve)"
}
echo "installed: $(grep -c '^Unpacking' "$work/apt.log") packages unpacked ($(grep '^Unpacking' "$work/apt.log" | awk '{ print $2 }' | xargs))"

version=$(dpkg-deb --field "$deb" Version)
status=$(inRoot dpkg-query --show --showformat='${Status} ${Version}' kbatch)
[ "$status" = "install ok installed $version" ] || fail "dpkg says '$status', expected 'install ok installed $version'"
inRoot dpkg-query --show --showformat='${Conffiles}\n' kbatch | grep -q '^ /etc/kbatch/policy.yaml ' ||
  fail "dpkg does not list /etc/kbatch/policy.yaml among kbatch's conffiles"

# ---- 3. kbatch as installed.
reported=$(inRoot kbatch --version)
[ "$reported" = "kbatch ${version%-*}" ] || fail "kbatch --version says '$reported', expected 'kbatch ${version%-*}'"
echo "ok: kbatch --version: $reported"
inRoot kbatch policy check > "$work/check.out" ||
  fail "kbatch policy check refuses the installed /etc/kbatch/policy.yaml"
grep -q "policy.yaml.compiled is current" "$work/check.out" ||
  fail "postinst did not compile the site policy: $(cat "$work/check.out")"
[ -f "$root/usr/share/man/man1/kbatch.1.gz" ] || fail "the man page is not installed"
# postinst enables the path unit that recompiles the policy after each edit (no systemd runs here,
# so it is enabled, not started: the symlink is what `systemctl enable` would make).
wants=$root/etc/systemd/system/paths.target.wants/kbatch-policy-compile.path
[ "$(readlink "$wants" || true)" = /lib/systemd/system/kbatch-policy-compile.path ] ||
  fail "postinst did not enable kbatch-policy-compile.path ($wants: $(ls -l "$wants" 2>&1))"
echo "ok: postinst enabled kbatch-policy-compile.path"
inRoot useradd --create-home --shell /bin/bash "$kJobUser"
home=$root/home/$kJobUser
install -o "$(stat -c %u "$home")" -g "$(stat -c %g "$home")" -m 0644 "$source_dir/examples/fib.pbs" "$home/fib.pbs"
output=$(inRoot runuser -u "$kJobUser" -- /bin/sh -c 'cd && kbatch run fib.pbs' 2>"$work/job.stderr") || {
  status=$?
  cat "$work/job.stderr" >&2
  fail "kbatch run fib.pbs exited with status $status in the clean root"
}
[ "$output" = "0 1 1 2 3 5 " ] || { cat "$work/job.stderr" >&2; fail "Listing 2 printed '$output', expected '0 1 1 2 3 5 '"; }
echo "ok: the paper's Listing 2 ran in a container as $kJobUser in the clean root and printed: $output"

# ---- 4. purge removes everything, the conffile included.
inRoot /bin/sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kbatch' >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "apt-get purge kbatch failed"; }
for path in /usr/bin/kbatch /usr/bin/kbatch-submit /etc/kbatch/policy.yaml /etc/kbatch/policy.yaml.compiled \
            /usr/share/man/man1/kbatch.1.gz; do
  [ ! -e "$root$path" ] || fail "$path is still there after apt-get purge kbatch"
done
[ ! -e "$wants" ] && [ ! -L "$wants" ] || fail "kbatch-policy-compile.path is still enabled after apt-get purge kbatch"
[ ! -e "$root/etc/systemd/system/kbatch-policy-compile.path" ] ||
  fail "kbatch-policy-compile.path is still masked after apt-get purge kbatch"
echo "ok: apt-get purge removed kbatch, its conffile and the path unit's enablement"
