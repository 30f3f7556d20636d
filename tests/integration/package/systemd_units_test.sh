#!/bin/bash
# The package's systemd units as systemd itself reads them: `systemd-analyze verify` on the unit
# files from the .deb, which fails on an unknown key or value, a missing unit, or a command that
# is not there. ExecStart names `kbatch` on systemd's search path; the test points it at the
# package's own binary, since the machine running the test need not have kbatch installed.
# Also checks that the path unit watches the policy file this kbatch was built to read, and that
# verify can fail: the same check on a unit with a misspelt key must report it.
#   systemd_units_test.sh DEB POLICY_PATH
set -euo pipefail
deb=${1:?usage: systemd_units_test.sh DEB POLICY_PATH}
policy_path=${2:?usage: systemd_units_test.sh DEB POLICY_PATH}
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null ||
  fail "systemd-analyze not found (the systemd package; packaging/install-deps.sh installs it)"
[ -f "$deb" ] || fail "no package at $deb (the 'deb' fixture did not run)"
work=$(mktemp -d /tmp/kbatch-units.XXXXXX)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/tree"
units=$work/tree/lib/systemd/system
for unit in kbatch-policy-compile.path kbatch-policy-compile.service; do
  [ -f "$units/$unit" ] || fail "the package lacks /lib/systemd/system/$unit"
done
grep -qx "PathChanged=$policy_path" "$units/kbatch-policy-compile.path" ||
  fail "the path unit does not watch $policy_path: $(grep Path "$units/kbatch-policy-compile.path")"
grep -qx "ExecStart=kbatch policy compile" "$units/kbatch-policy-compile.service" ||
  fail "the service does not run 'kbatch policy compile': $(grep ExecStart "$units/kbatch-policy-compile.service")"

mkdir "$work/check"
cp "$units/kbatch-policy-compile.path" "$work/check/"
sed "s|^ExecStart=kbatch |ExecStart=$work/tree/usr/bin/kbatch |" "$units/kbatch-policy-compile.service" \
  >"$work/check/kbatch-policy-compile.service"
verify() {
  # Any line at all is a finding: systemd prints "ignoring" for keys and values it drops.
  local out
  out=$(cd "$work/check" && systemd-analyze verify --man=no "$@" 2>&1) && [ -z "$out" ] || {
    echo "$out"
    return 1
  }
}
verify kbatch-policy-compile.path kbatch-policy-compile.service ||
  fail "systemd-analyze verify reports the units above"
echo "ok: systemd-analyze verify accepts kbatch-policy-compile.path and .service"

sed 's/^ProtectSystem=/ProtectSystm=/' "$work/check/kbatch-policy-compile.service" >"$work/check/misspelt.service"
found=$(verify misspelt.service) && fail "verify did not report a misspelt key: the check above proves nothing"
grep -q ProtectSystm <<<"$found" || fail "verify failed on the misspelt unit for another reason: $found"
echo "ok: the same check reports a misspelt key ($(head -n 1 <<<"$found"))"
