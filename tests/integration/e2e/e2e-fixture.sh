#!/bin/bash
# The `e2e_site` CTest fixture: a batch site as an admin would set it up, on this one machine.
#
#   e2e-fixture.sh start STATE_DIR KBATCH SOURCE_DIR REGISTRY_STATE_DIR
#   e2e-fixture.sh stop STATE_DIR
#
# start:
#   1. builds the site image `REGISTRY/e2e/toolbox:1` (bash, coreutils the jobs use, and the
#      libraries of the paper's fib.cpp) with `kbatch build`, pushes it to the `registry`
#      fixture's docker-registry, and pulls it from there into the site's read-only image cache
#      (STATE_DIR/site-images, the policy's site.image_cache);
#   2. writes the site policy (e2e-policy.yaml.in with this run's paths) to
#      STATE_DIR/etc/kbatch/policy.yaml, root-owned;
#   3. starts a one-node Slurm (../slurm/slurm-cluster.sh) with kbatch's job_submit.lua installed
#      (packaging/slurm/job_submit.lua) and STATE_DIR/etc laid over /etc in the daemons' private
#      mount namespace, so that slurmctld, the jobs and the Kubernetes node below all read that
#      policy as /etc/kbatch/policy.yaml while this machine's /etc stays untouched;
#   4. starts the Kubernetes test API server (tests/k8s-test-server) in the same namespace, its
#      kubelet running Pods with `kbatch exec` as the Pod's user; the site image is known to its
#      node under the same registry reference, and the claim `home` is STATE_DIR/k8s/claims/home,
#      where every e2e job directory lives (the policy maps that host path to the claim);
#   5. writes STATE_DIR/site.env for the tests (sourced by e2e-lib.sh).
set -euo pipefail

die() { echo "e2e-fixture: $*" >&2; exit 1; }
usage() { die "usage: e2e-fixture.sh start STATE_DIR KBATCH SOURCE_DIR REGISTRY_STATE_DIR | stop STATE_DIR"; }

[ $# -ge 2 ] || usage
action=$1
state=$2
here=$(cd "$(dirname "$0")" && pwd)
cluster_script=$here/../slurm/slurm-cluster.sh

stopServer() {
  local pid_file=$state/k8s/pid pid
  [ -s "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -f "$pid_file"
}

stopSite() {
  stopServer
  "$cluster_script" stop "$state/slurm" || true
}

# Runs a command in the cluster's mount namespace (where /etc/kbatch/policy.yaml is the test policy).
inSiteNamespace() { nsenter --mount="/proc/$(cat "$state/slurm/run/slurmctld.pid")/ns/mnt" -- "$@"; }

buildSiteImage() {
  local registry=$1 kbatch=$2 source_dir=$3 output
  install -d -m 0755 "$state/image-build"
  g++ -O2 -o "$state/image-build/fib" "$source_dir/examples/fib.cpp" ||
    die "cannot compile examples/fib.cpp"
  local extra=() tool
  for tool in cat sleep id ls sh true env; do extra+=(--extra "$(type -P "$tool")"); done
  output=$(KBATCH_CACHE=$state/image-cache "$kbatch" build --from-binary "$state/image-build/fib" \
    --shell /bin/bash "${extra[@]}") || die "kbatch build of the site image failed"
  image_rootfs=$(printf '%s\n' "$output" | head -n 1)
  [ -d "$image_rootfs" ] || die "kbatch build printed no root filesystem: '$output'"
  # Something only the image has, so that a job can prove it ran inside it.
  echo "kbatch e2e site image" >"$image_rootfs/etc/e2e-image-marker"
  KBATCH_CACHE=$state/image-cache "$kbatch" push --insecure "$image_rootfs" \
    "docker://$registry/e2e/toolbox:1" || die "kbatch push of the site image to $registry failed"
  # Compute nodes get images from the site's read-only image cache (policy site.image_cache),
  # filled from the registry as an admin fills it.
  KBATCH_CACHE=$state/site-images "$kbatch" pull --insecure "docker://$registry/e2e/toolbox:1" ||
    die "kbatch pull of the site image from $registry into the site image cache failed"
  chmod -R a+rX "$state/image-cache" "$state/site-images"
}

writePolicy() {
  local registry=$1
  install -d -o root -g root -m 0755 "$state/etc" "$state/etc/kbatch"
  sed -e "s|@REGISTRY@|$registry|g" -e "s|@CLAIM_HOME@|$state/k8s/claims/home|g" \
      -e "s|@IMAGE_ROOTFS@|$image_rootfs|g" -e "s|@SITE_IMAGES@|$state/site-images|g" \
      -e "s|@KUBELET_IMAGES@|$state/k8s/kubelet-images|g" \
      "$here/e2e-policy.yaml.in" >"$state/etc/kbatch/policy.yaml"
  chown root:root "$state/etc/kbatch/policy.yaml"
  chmod 0644 "$state/etc/kbatch/policy.yaml"
}

startServer() {
  local kbatch=$1 registry=$2 host
  host=$(hostname -s)
  install -d -m 0755 "$state/k8s" "$state/k8s/claims"
  install -d -m 1777 "$state/k8s/claims/home"
  # Node name and hostname label differ (FQDN vs short name), as at most sites: kbatch finds its
  # node through the kubernetes.io/hostname label.
  inSiteNamespace setsid /usr/bin/python3 "$here/../../k8s-test-server/k8s_test_server.py" \
    --state-dir "$state/k8s" --runtime kbatch --kbatch "$kbatch" \
    --node "$host.kbatch-e2e.internal:$host" --namespace kbatch-jobs --namespace default \
    --image "$registry/e2e/toolbox:1=$image_rootfs" \
    --claim "home=$state/k8s/claims/home" >"$state/k8s/server.log" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    if [ -s "$state/k8s/url" ] && [ -s "$state/k8s/pid" ] &&
       curl -sf --cacert "$state/k8s/ca.crt" "$(cat "$state/k8s/url")/readyz" >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  cat "$state/k8s/server.log" >&2 || true
  die "the Kubernetes test API server did not come up"
}

startSite() {
  [ $# -eq 5 ] || usage
  local kbatch=$3 source_dir=$4 registry_state=$5 registry
  [ "$(id -u)" -eq 0 ] || die "must run as root (daemons, mount namespace, jobs as the test user)"
  [ -x "$kbatch" ] || die "no kbatch executable at '$kbatch'"
  [ -s "$registry_state/address" ] || die "no $registry_state/address: the 'registry' fixture did not run"
  registry=$(cat "$registry_state/address")
  command -v nsenter >/dev/null || die "'nsenter' not found (util-linux)"

  [ ! -d "$state" ] || stopSite >/dev/null 2>&1
  rm -rf "$state"
  install -d -m 0755 "$state"
  buildSiteImage "$registry" "$kbatch" "$source_dir"
  writePolicy "$registry"
  # job_submit.lua runs kbatch from slurmctld's environment (KBATCH_EXECUTABLE), as a site sets it
  # in slurmctld's systemd unit.
  KBATCH_EXECUTABLE=$kbatch KBATCH_ON_ERROR=closed "$cluster_script" start "$state/slurm" \
    --job-submit-lua "$source_dir/packaging/slurm/job_submit.lua" --etc-overlay "$state/etc"
  inSiteNamespace "$kbatch" policy check >/dev/null ||
    die "the e2e site policy does not load: $(inSiteNamespace "$kbatch" policy check 2>&1)"
  startServer "$kbatch" "$registry"
  install -d -m 1777 "$state/k8s/claims/home/jobs"
  cat >"$state/site.env" <<ENV
# Written by e2e-fixture.sh start; sourced by e2e-lib.sh.
E2E_STATE=$state
E2E_KBATCH=$kbatch
E2E_SOURCE_DIR=$source_dir
E2E_REGISTRY=$registry
E2E_IMAGE=$registry/e2e/toolbox:1
E2E_POLICY=/etc/kbatch/policy.yaml
E2E_POLICY_SOURCE=$state/etc/kbatch/policy.yaml
SLURM_CONF=$state/slurm/slurm.conf
KUBECONFIG=$state/k8s/kubeconfig
KBATCH_WORK_ROOT=$state/k8s/claims/home/jobs
ENV
  echo "e2e-fixture: site ready: Slurm with job_submit.lua, registry $registry, Kubernetes test server $(cat "$state/k8s/url")"
}

case $action in
  start) startSite "$@" ;;
  stop) [ $# -eq 2 ] || usage; stopSite ;;
  *) usage ;;
esac
