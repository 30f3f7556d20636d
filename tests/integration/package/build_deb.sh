#!/bin/bash
# CTest fixture `deb` (setup) and its checks: runs CPack on the build tree and checks the .deb it
# wrote with dpkg-deb: the files an admin expects (kbatch, kbatch-submit, man pages, bash
# completion, the policy as a conffile, copyright and changelog), Depends computed by
# dpkg-shlibdeps, and no setuid or setgid file. Leaves the package as OUT_DIR/kbatch.deb for the
# lintian and clean-root tests.
#   build_deb.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=${1:?usage: build_deb.sh BUILD_DIR OUT_DIR}
out=${2:?usage: build_deb.sh BUILD_DIR OUT_DIR}

fail() { echo "FAIL: $*" >&2; exit 1; }

for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || fail "'$tool' not found (packaging/install-deps.sh installs cmake and dpkg-dev)"
done
[ -f "$build/CPackConfig.cmake" ] || fail "no $build/CPackConfig.cmake: cmake/KbatchPackaging.cmake was not included"

rm -rf "$out"
mkdir -p "$out"
# cpack runs the install rules of the whole build tree: a tree built only in part fails here.
(cd "$build" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out") >"$out/cpack.log" 2>&1 || {
  cat "$out/cpack.log" >&2
  fail "cpack failed (is the whole build tree built? cmake --build $build)"
}
mapfile -t debs < <(find "$out" -maxdepth 1 -name 'kbatch_*.deb')
[ ${#debs[@]} -eq 1 ] || fail "expected one kbatch_*.deb in $out, found ${#debs[@]}: $(cat "$out/cpack.log")"
deb=${debs[0]}
ln -sf "$(basename "$deb")" "$out/kbatch.deb"
echo "package: $deb"
dpkg-deb --info "$deb"

field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = kbatch ] || fail "Package is '$(field Package)', not kbatch"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
depends=$(field Depends)
# dpkg-shlibdeps turns the binaries' NEEDED entries into versioned package names.
[[ $depends == *"libc6 (>="* ]] || fail "Depends lacks a versioned libc6 (did dpkg-shlibdeps run?): '$depends'"
for library_package in libseccomp2 libcap2 libcurl; do
  [[ $depends == *"$library_package"* ]] || fail "Depends lacks $library_package: '$depends'"
done
# The C++ runtime and yaml-cpp are linked in (CMakeLists.txt, KBATCH_STATIC_CXX): no dependency.
for library_package in libyaml-cpp libstdc++ libspdlog libfmt; do
  [[ $depends != *"$library_package"* ]] || fail "Depends names $library_package, which is linked in: '$depends'"
done

control=$out/control
dpkg-deb --control "$deb" "$control"
grep -qx '/etc/kbatch/policy.yaml' "$control/conffiles" ||
  fail "/etc/kbatch/policy.yaml is not a conffile: $(cat "$control/conffiles" 2>/dev/null)"

listing=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/kbatch ./usr/bin/kbatch-submit ./etc/kbatch/policy.yaml \
            ./usr/share/man/man1/kbatch.1.gz ./usr/share/man/man1/kbatch-submit.1.gz \
            ./usr/share/man/man1/kbatch-exec.1.gz ./usr/share/man/man1/kbatch-run.1.gz \
            ./usr/share/bash-completion/completions/kbatch \
            ./usr/share/doc/kbatch/copyright ./usr/share/doc/kbatch/changelog.Debian.gz \
            ./usr/share/doc/kbatch/README.md ./usr/share/doc/kbatch/examples/fib.pbs \
            ./lib/systemd/system/kbatch-policy-compile.path \
            ./lib/systemd/system/kbatch-policy-compile.service; do
  awk -v p="$path" '$6 == p { found = 1 } END { exit !found }' <<<"$listing" ||
    fail "the package lacks $path"
done
# Never install anything setuid or setgid (docs/install.md: kbatch needs no privilege).
if awk '$1 ~ /^-..[sS]|^-.....[sS]/' <<<"$listing" | grep -q .; then
  fail "the package holds a setuid or setgid file: $(awk '$1 ~ /^-..[sS]|^-.....[sS]/' <<<"$listing")"
fi
# Everything belongs to root, and nothing is writable by group or others.
if awk '$2 != "root/root" || $1 ~ /^.....w|^........w/' <<<"$listing" | grep -q .; then
  fail "files not root-owned or group/other-writable: $(awk '$2 != "root/root" || $1 ~ /^.....w|^........w/' <<<"$listing")"
fi
# The policy must pass kbatch's own ownership and mode checks once installed.
awk '$6 == "./etc/kbatch/policy.yaml" && $1 == "-rw-r--r--" { ok = 1 } END { exit !ok }' <<<"$listing" ||
  fail "/etc/kbatch/policy.yaml is not -rw-r--r--"
echo "ok: $(basename "$deb"): $(wc -l <<<"$listing") entries, Depends: $depends"
