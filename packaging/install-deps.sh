#!/bin/bash
# Installs every Debian 12 package that building kbatch, its tests and the services the integration
# tests start (Slurm with its TORQUE wrappers, munge, an OCI registry, container tools) need.
# Run as root; safe to re-run: when everything is already installed it changes nothing and needs no
# network. Set KBATCH_APT_UPDATE=always to refresh the package lists even then.
set -euo pipefail

# Build toolchain and the libraries the CMake project finds (see CMakeLists.txt).
readonly kBuildPackages=(
  build-essential cmake pkg-config ccache git
  clang libclang-rt-14-dev # the `fuzz` preset: clang with libFuzzer and the sanitizer runtimes
  libyaml-cpp-dev libseccomp-dev libcap-dev libcli11-dev libspdlog-dev nlohmann-json3-dev
  libcurl4-openssl-dev libarchive-dev libelf-dev libssl-dev
  libgtest-dev libgmock-dev
)
# Container runtimes and image tools kbatch drives or is compared against, and what the runner and
# the root filesystem fixtures need (newuidmap/newgidmap for mmdebstrap --mode=unshare).
readonly kContainerPackages=(
  charliecloud-runtime bubblewrap crun skopeo umoci docker-registry mmdebstrap uidmap busybox-static
)
# The batch system the `cluster` tests start: Slurm, its TORQUE wrappers (qsub, qstat, qdel), munge.
readonly kBatchPackages=(slurm-wlm slurm-wlm-torque munge)
# Benchmarks, man page, plots, the Kubernetes API models the k8s tests check manifests against, and
# what the test registry's token server signs its tokens with (openssl makes the test CA), and
# systemd-analyze, which checks the package's systemd units.
readonly kToolPackages=(hyperfine help2man gnuplot-nox python3-kubernetes lintian
                        openssl python3-jwt python3-cryptography systemd)

die() { echo "install-deps: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"
command -v apt-get >/dev/null || die "apt-get not found: kbatch's dependencies are Debian 12 packages"

if [ -r /etc/os-release ]; then
  # shellcheck source=/dev/null
  . /etc/os-release
  if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
    echo "install-deps: warning: this is ${PRETTY_NAME:-an unknown system}, not Debian 12;" \
         "package names may differ" >&2
  fi
fi

packages=("${kBuildPackages[@]}" "${kContainerPackages[@]}" "${kBatchPackages[@]}" "${kToolPackages[@]}")
# The Kubernetes test server is checked against the real kubectl client. Debian ships it as
# kubernetes-client; a kubectl installed from elsewhere (e.g. the Google Cloud SDK repository)
# provides the same file, so only add the Debian package when there is no kubectl at all.
if ! command -v kubectl >/dev/null; then packages+=(kubernetes-client); fi

isInstalled() {
  [ "$(dpkg-query --show --showformat='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for package in "${packages[@]}"; do
  isInstalled "$package" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ] && [ "${KBATCH_APT_UPDATE:-}" != always ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # Name every package the archive lacks at once, rather than failing on the first.
  unavailable=()
  for package in "${missing[@]}"; do
    candidate=$(apt-cache policy "$package" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then unavailable+=("$package"); fi
  done
  [ ${#unavailable[@]} -eq 0 ] ||
    die "not in the configured apt sources: ${unavailable[*]} (is 'main' of bookworm enabled?)"
  apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${packages[@]}"
  echo "install-deps: installed or updated: ${missing[*]:-nothing new}"
fi

# kbatch runs containers in unprivileged user namespaces; say so early if the kernel forbids them.
if [ -r /proc/sys/kernel/unprivileged_userns_clone ] &&
   [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
  echo "install-deps: warning: unprivileged user namespaces are disabled" \
       "(sysctl kernel.unprivileged_userns_clone=0); non-root users cannot run containers" >&2
fi
if [ -r /proc/sys/user/max_user_namespaces ] && [ "$(cat /proc/sys/user/max_user_namespaces)" = 0 ]; then
  echo "install-deps: warning: user.max_user_namespaces is 0; containers cannot start" >&2
fi
