#!/bin/bash
# A one-node Slurm cluster on this machine, for the `cluster` tests.
#
#   slurm-cluster.sh start STATE_DIR   writes STATE_DIR/slurm.conf, starts munged (as the munge user,
#                                      with a fresh key and its own socket), slurmctld and slurmd (as
#                                      root), and waits until `sinfo` reports the node idle.
#   slurm-cluster.sh stop STATE_DIR    stops the daemons started by `start` (by their pid files).
#
# Options of `start` (after STATE_DIR), for the e2e tests; without them the cluster is as before:
#   --job-submit-lua FILE  installs FILE as job_submit.lua beside slurm.conf and sets
#                          JobSubmitPlugins=lua, as a site installs kbatch's server-side rewrite
#                          (packaging/slurm/job_submit.lua).
#   --etc-overlay DIR      starts the daemons in a private mount namespace in which DIR is laid
#                          read-only over /etc (e.g. DIR/kbatch/policy.yaml appears as
#                          /etc/kbatch/policy.yaml), so jobs see a test site policy while the host's
#                          /etc stays untouched. Enter it with
#                          `nsenter --mount=/proc/$(cat STATE_DIR/run/slurmctld.pid)/ns/mnt`.
#
# Clients (sbatch, and Slurm's TORQUE wrappers qsub/qstat/qdel) find the cluster through
# SLURM_CONF=STATE_DIR/slurm.conf; slurm.conf names the private munge socket (AuthInfo=socket=...), so
# nothing under /etc or /run is touched and a system-wide munged or Slurm is left alone.
# Proctrack is linuxproc and the task plugin none: no cgroup hierarchy is needed, so this works in
# containers and VMs without a delegated cgroup tree.
set -euo pipefail

readonly kWaitSeconds=60

die() { echo "slurm-cluster: $*" >&2; exit 1; }

usage() {
  die "usage: slurm-cluster.sh start STATE_DIR [--job-submit-lua FILE] [--etc-overlay DIR] | stop STATE_DIR"
}

[ $# -ge 2 ] || usage
action=$1
state_dir=$2
shift 2
job_submit_lua=""
etc_overlay=""
while [ $# -gt 0 ]; do
  case $1 in
    --job-submit-lua) [ $# -ge 2 ] || usage; job_submit_lua=$2; shift 2 ;;
    --etc-overlay) [ $# -ge 2 ] || usage; etc_overlay=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ "$action" = start ] || [ -z "$job_submit_lua$etc_overlay" ] || usage
[ -z "$job_submit_lua" ] || [ -f "$job_submit_lua" ] || die "no job_submit.lua at '$job_submit_lua'"
[ -z "$etc_overlay" ] || [ -d "$etc_overlay" ] || die "no directory '$etc_overlay' to lay over /etc"

# Ports: the first pair from a base upwards that nothing listens on (a connection is refused), so a
# system Slurm on 6817/6818 or a second test cluster does not collide with this one.
portIsFree() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
findFreePortPair() {
  local port
  for ((port = 16817; port < 17817; port += 2)); do
    if portIsFree "$port" && portIsFree $((port + 1)); then
      echo "$port"
      return 0
    fi
  done
  die "no free pair of TCP ports between 16817 and 17817 on 127.0.0.1"
}

# Waits until the process named by a pid file has exited; SIGKILL after the grace period.
stopByPidFile() {
  local pid_file=$1 name=$2 pid i
  [ -s "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm-cluster: $name (pid $pid) ignored SIGTERM for 10 s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pid_file"
}

stopCluster() {
  # slurmd first so that it does not keep retrying a controller that has gone.
  stopByPidFile "$state_dir/run/slurmd.pid" slurmd
  stopByPidFile "$state_dir/run/slurmctld.pid" slurmctld
  stopByPidFile "$state_dir/munge/munged.pid" munged
  echo "slurm-cluster: stopped (state kept in $state_dir for inspection)"
}

showLogsAndDie() {
  local log
  for log in "$state_dir"/log/*.log "$state_dir"/munge/munged.log; do
    [ -f "$log" ] || continue
    echo "---- last lines of $log" >&2
    tail -n 20 "$log" >&2
  done
  stopCluster >&2
  die "$*"
}

startMunge() {
  local munge_dir=$state_dir/munge
  id munge >/dev/null 2>&1 || die "no 'munge' account: install the munge package (packaging/install-deps.sh)"
  # munged refuses a key, socket or log directory that others may write to.
  install -d -o munge -g munge -m 0755 "$munge_dir"
  local socket=$munge_dir/munge.socket
  # sun_path holds 108 bytes including the terminating NUL.
  [ ${#socket} -lt 108 ] || die "munge socket path '$socket' is longer than a Unix socket allows; use a shorter build directory"
  runuser -u munge -- dd if=/dev/urandom of="$munge_dir/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$munge_dir/munge.key"
  runuser -u munge -- munged --socket="$socket" --key-file="$munge_dir/munge.key" \
    --pid-file="$munge_dir/munged.pid" --log-file="$munge_dir/munged.log" \
    --seed-file="$munge_dir/munged.seed"
  # munged daemonises once its socket is listening; prove it by a round trip.
  munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null \
    || showLogsAndDie "munged does not answer on $socket"
  MUNGE_SOCKET=$socket
}

writeSlurmConf() {
  local node_name node_line ctld_port
  node_name=$(hostname -s)
  # `slurmd -C` prints this machine's real CPUs, sockets, cores, threads and memory as a NodeName line.
  node_line=$(slurmd -C | grep '^NodeName=') || die "'slurmd -C' printed no NodeName line"
  node_line=$(echo "$node_line" | sed -e "s/^NodeName=[^ ]*/NodeName=$node_name NodeAddr=127.0.0.1/")
  ctld_port=$(findFreePortPair)
  install -d -m 0755 "$state_dir/ctld" "$state_dir/spool" "$state_dir/log" "$state_dir/run"
  : >"$state_dir/plugstack.conf"
  cat >"$state_dir/slurm.conf" <<EOF
# Written by tests/integration/slurm/slurm-cluster.sh for a one-node test cluster.
ClusterName=kbatch-test
SlurmctldHost=$node_name(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$state_dir/run/slurmctld.pid
SlurmdPidFile=$state_dir/run/slurmd.pid
SlurmctldLogFile=$state_dir/log/slurmctld.log
SlurmdLogFile=$state_dir/log/slurmd.log
PlugStackConfig=$state_dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
# Keep finished jobs visible to qstat/scontrol long enough for the tests to read them.
MinJobAge=600
KillWait=2
SlurmctldTimeout=30
SlurmdTimeout=60
$node_line State=UNKNOWN
PartitionName=batch Nodes=$node_name Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -n "$job_submit_lua" ]; then
    # slurmctld reads job_submit.lua from the directory of the slurm.conf it was started with.
    install -m 0644 "$job_submit_lua" "$state_dir/job_submit.lua"
    echo "JobSubmitPlugins=lua" >>"$state_dir/slurm.conf"
  fi
  chmod 0644 "$state_dir/slurm.conf"
}

waitForIdleNode() {
  local i state
  for ((i = 0; i < kWaitSeconds * 2; i++)); do
    state=$(SLURM_CONF=$state_dir/slurm.conf sinfo --noheader --format=%T 2>/dev/null || true)
    if [ "$state" = idle ]; then
      echo "slurm-cluster: node $(hostname -s) idle; SLURM_CONF=$state_dir/slurm.conf"
      return 0
    fi
    sleep 0.5
  done
  showLogsAndDie "node did not become idle within ${kWaitSeconds} s (sinfo says '${state:-nothing}')"
}

# Lays the overlay directory read-only over /etc in this (already private) mount namespace.
overlayEtc() {
  mount -t overlay overlay -o "ro,lowerdir=$(cd "$etc_overlay" && pwd):/etc" /etc ||
    die "cannot lay $etc_overlay over /etc (overlayfs)"
}

startCluster() {
  [ "$(id -u)" -eq 0 ] || die "must run as root to start munged, slurmctld and slurmd"
  if [ -n "$etc_overlay" ] && [ "${KBATCH_SLURM_IN_PRIVATE_NAMESPACE:-}" != "$state_dir" ]; then
    # Start again inside a new mount namespace; the daemons keep it alive after this script ends.
    command -v unshare >/dev/null || die "'unshare' not found (util-linux)"
    local self
    self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    KBATCH_SLURM_IN_PRIVATE_NAMESPACE=$state_dir exec unshare --mount --propagation private -- \
      "$self" start "$state_dir" ${job_submit_lua:+--job-submit-lua "$job_submit_lua"} \
      --etc-overlay "$etc_overlay"
  fi
  [ -z "$etc_overlay" ] || overlayEtc
  local tool
  for tool in munged munge unmunge slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || die "'$tool' not found: run packaging/install-deps.sh"
  done
  # A previous run that was interrupted may have left daemons behind.
  if [ -d "$state_dir" ]; then stopCluster >/dev/null; fi
  rm -rf "$state_dir"
  install -d -m 0755 "$state_dir"
  startMunge
  writeSlurmConf
  # -D: stay in the foreground (we background it and keep the pid file); -c: cold start, no old jobs.
  setsid slurmctld -D -c -f "$state_dir/slurm.conf" >"$state_dir/log/slurmctld.stdout" 2>&1 &
  echo $! >"$state_dir/run/slurmctld.pid"
  setsid slurmd -D -f "$state_dir/slurm.conf" -N "$(hostname -s)" >"$state_dir/log/slurmd.stdout" 2>&1 &
  echo $! >"$state_dir/run/slurmd.pid"
  waitForIdleNode
}

case $action in
  start) startCluster ;;
  stop) stopCluster ;;
  *) usage ;;
esac
