#!/bin/bash
# The README's first command: install the Debian dependencies, build kbatch (the `default` preset,
# into build/), and run the paper's example job in a container on the local backend:
#   ./build/kbatch run examples/fib.pbs
# Run as root (sudo). The job itself runs as the invoking user when there is one (SUDO_USER, or the
# account named by KBATCH_QUICKSTART_USER), in a user namespace as any user would; otherwise as root.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"

die() { echo "quickstart: $*" >&2; exit 1; }
step() { echo; echo "==== quickstart: $*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root to install packages: sudo $0"

step "installing Debian dependencies"
"$repo_root/packaging/install-deps.sh"

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
step "configuring and building (build/)"
cmake --preset default "${launcher[@]}"
cmake --build --preset default -j "${KBATCH_BUILD_JOBS:-$(nproc)}"

job_user=${KBATCH_QUICKSTART_USER:-${SUDO_USER:-root}}
id "$job_user" >/dev/null 2>&1 || die "no account '$job_user' to run the job as"
run_as=()
if [ "$job_user" != root ]; then
  # The user must reach the kbatch binary and the example; a checkout under /root is out of reach.
  runuser -u "$job_user" -- test -x "$repo_root/build/kbatch" ||
    die "user '$job_user' cannot execute $repo_root/build/kbatch (is the checkout in a private directory?)"
  runuser -u "$job_user" -- test -r "$repo_root/examples/fib.pbs" ||
    die "user '$job_user' cannot read $repo_root/examples/fib.pbs"
  run_as=(runuser -u "$job_user" --)
fi

step "running the paper's example job in a container as '$job_user': ./build/kbatch run examples/fib.pbs"
status=0
"${run_as[@]}" ./build/kbatch run examples/fib.pbs || status=$?
if [ "$status" -ne 0 ]; then
  die "the job exited with status $status (125: kbatch error, 126: cannot execute, 127: not found; see README.md)"
fi
echo "quickstart: done. Next: ./packaging/test-all.sh runs the whole test suite."
