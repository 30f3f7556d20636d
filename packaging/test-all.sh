#!/bin/bash
# The whole kbatch test suite, as CI runs it (.ci/run) and as the README's second command:
#   1. install the Debian dependencies (packaging/install-deps.sh),
#   2. build the `default` preset (build/) and the `fuzz` preset (build-fuzz/),
#   3. run every CTest label of the default build (unit, userns, root, cluster, package and their fixtures),
#      then the fuzz targets (label fuzz) for a bounded time each.
# Run as root from a fresh clone: the tests create their own non-root user, and start and stop their
# own services (munge, slurmctld, slurmd, the OCI registry), so nothing needs to be running before.
# Exits non-zero if any step or any test failed.
#
# Environment: KBATCH_TEST_JOBS (parallel CTest jobs, default 1: several tests start daemons and
# time jobs), KBATCH_BUILD_JOBS (default: the number of CPUs).
set -uo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root" || exit 125
log_dir=$repo_root/build/test-all-logs
build_jobs=${KBATCH_BUILD_JOBS:-$(nproc)}
test_jobs=${KBATCH_TEST_JOBS:-1}
started_at=$(date +%s)

die() { echo "test-all: $*" >&2; exit 1; }
elapsed() { local s=$(($(date +%s) - started_at)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
step() { echo; echo "==== test-all [$(elapsed)]: $*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (the suite creates a test user and starts Slurm): sudo $0"

step "installing Debian dependencies"
"$repo_root/packaging/install-deps.sh" || die "packaging/install-deps.sh failed"

# ccache makes re-runs cheap; a fresh machine gets it from install-deps.sh.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# Builds a preset, keeping going past a failed target so that the tests of everything else still run
# (and show what works); a failed build still fails the whole run.
buildPreset() {
  local preset=$1 keep_going=()
  step "configuring and building the $preset preset"
  cmake --preset "$preset" "${launcher[@]}" || die "cmake --preset $preset failed"
  case $(sed -n "s/^CMAKE_GENERATOR:INTERNAL=//p" "$(presetBinaryDir "$preset")/CMakeCache.txt") in
    "Unix Makefiles") keep_going=(-- -k) ;;
    Ninja) keep_going=(-- -k 0) ;;
  esac
  cmake --build --preset "$preset" -j "$build_jobs" "${keep_going[@]}"
}
presetBinaryDir() { if [ "$1" = default ]; then echo "$repo_root/build"; else echo "$repo_root/build-$1"; fi; }

build_failures=()
buildPreset default || build_failures+=(default)
buildPreset fuzz || build_failures+=(fuzz)

mkdir -p "$log_dir"

# Runs one CTest preset, keeping its full output in the log directory; returns CTest's status.
runCtestPreset() {
  local preset=$1
  shift
  step "ctest --preset $preset $*"
  ctest --preset "$preset" -j "$test_jobs" --timeout 900 "$@" 2>&1 | tee "$log_dir/ctest-$preset.log"
  return "${PIPESTATUS[0]}"
}

runCtestPreset default
default_status=$?
# --no-tests=error: a fuzz build without fuzz targets is a failure, not an empty success.
runCtestPreset fuzz --no-tests=error
fuzz_status=$?

# CTest's own summary lines (pass ratio, label times, failed tests), for both runs.
summarize() {
  local preset=$1 status=$2
  echo "-- ctest --preset $preset: exit status $status"
  sed -n -e '/tests passed/p' -e '/^Total Test time/p' -e '/The following tests/,$p' \
    "$log_dir/ctest-$preset.log" | grep -v '^Errors while running CTest' || true
}
step "summary (full logs in $log_dir)"
summarize default "$default_status"
summarize fuzz "$fuzz_status"
if [ ${#build_failures[@]} -ne 0 ]; then echo "-- BUILD FAILED for preset(s): ${build_failures[*]} (see the compiler errors above)"; fi
echo "-- total time: $(elapsed)"

if [ ${#build_failures[@]} -ne 0 ] || [ "$default_status" -ne 0 ] || [ "$fuzz_status" -ne 0 ]; then
  echo "test-all: FAILED" >&2
  exit 1
fi
echo "test-all: all tests passed"
