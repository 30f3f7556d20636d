#!/bin/bash
# Debian's own package checker on the .deb from the `deb` fixture. Every tag is printed; the test
# fails on any error (E:), the tags Debian's archive would reject. Warnings and informational tags
# are listed for the report but do not fail the test.
#   lintian_test.sh DEB
set -euo pipefail
deb=${1:?usage: lintian_test.sh DEB}
command -v lintian >/dev/null || { echo "FAIL: lintian not found (packaging/install-deps.sh installs it)" >&2; exit 1; }
[ -f "$deb" ] || { echo "FAIL: no package at $deb (the 'deb' fixture did not run)" >&2; exit 1; }
# lintian exits non-zero on errors; collect its output either way and judge the tags ourselves.
tags=$(lintian --no-tag-display-limit --info "$deb" 2>&1) || true
echo "$tags"
errors=$(grep -c '^E: ' <<<"$tags" || true)
warnings=$(grep -c '^W: ' <<<"$tags" || true)
echo "lintian: $errors error(s), $warnings warning(s)"
[ "$errors" -eq 0 ] || { echo "FAIL: lintian reports errors" >&2; exit 1; }
