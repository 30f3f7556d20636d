#!/bin/bash
# The paper's evaluation (PAPER.md, "Measurements"), reproduced on this machine:
#   Table 1  script job (Listing 2, examples/fib.pbs)
#   Table 2  binary job (Listing 3, examples/fib.cpp as a.out, `#PBS -B a.out`), 100 runs
# each run inside a batch job submitted with the real `qsub` (Slurm's TORQUE wrapper on the test
# cluster, tests/integration/slurm/slurm-cluster.sh), as the paper timed its jobs: the job's own
# execution time, for
#   native        the job script run as the batch system runs it (bash fib.pbs, bash fib-binary.pbs:
#                 the job's shell starts a.out, natively as in the container)
#   kbatch local  `kbatch run` of the same script: a container from its dependency image
#   kbatch k8s    `kbatch k8s run` of the same body in the same dependency image (a root
#                 filesystem directory on the node): a Pod on the Kubernetes test API server
#                 (tests/integration/k8s/start-server.sh), which runs Pods with kbatch's runtime
# min/mean/max of each (hyperfine inside the batch job), and the dependency image of a.out: build
# cold (empty cache) and warm (cached), and distribution through a registry on 127.0.0.1
# (`kbatch push`, then `kbatch pull` into an empty store = one more node; warm = already there).
# Writes bench/results/paper.md (our figures, ratios against native, the paper's beside them,
# labelled as the paper's) and bench/results/paper.png (gnuplot).
#
#   sudo bench/paper.sh [--runs N] [--build DIR] [--user USER] [--out DIR]
# Root: it starts Slurm and the k8s test server (in its own state directory, on free ports) and
# stops them at the end; jobs run as USER (default kbtest, as the tests create it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
if [ "$(id -u)" -eq 0 ] && [ -z "${KBATCH_PAPER_STATE:-}" ]; then
  # The jobs see a site policy that allows both backends and binds of the k8s test server's claim
  # directory (where the test node's kubelet binds Pod volumes from), laid over /etc in a private
  # mount namespace that the Slurm daemons started below inherit; the host's /etc is untouched.
  state=$(mktemp -d /tmp/kbatch-paper.XXXXXX)
  chmod 755 "$state"
  cat >"$state/site-policy.yaml" <<POLICY
version: 1
backends:
  allowed: [local, k8s]
  default: local
binds:
  allowed:
    - { path: \$HOME, access: rw }
    - { path: \$PBS_O_WORKDIR, access: rw }
    - { path: \$TMPDIR, access: rw }
    - { path: \$KBATCH_JOB_SCRATCH, access: rw }
    - { path: $state/k8s/claims/home, access: rw }
kubernetes:
  namespace: default
POLICY
  # Compiled, as the .deb's postinst compiles an installed site's policy: jobs then read no YAML
  # (an uncompiled policy sends each job through kbatch-cli, docs/policy.md).
  compiler=$repo/build/kbatch
  for ((i = 1; i < $#; i++)); do
    [ "${!i}" = --build ] && { j=$((i + 1)); compiler=${!j}/kbatch; }
  done
  exec env KBATCH_PAPER_STATE="$state" "$repo/tests/integration/with-site-policy.sh" \
    --compile "$compiler" "$state/site-policy.yaml" "$here/$(basename "$0")" "$@"
fi
runs=100
build=$repo/build
user=kbtest
out=$here/results
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    --user) user=${2:?--user needs an account}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    *) echo "usage: bench/paper.sh [--runs N] [--build DIR] [--user USER] [--out DIR]" >&2; exit 2 ;;
  esac
done
die() { echo "paper.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts a Slurm cluster and the k8s test server)"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
kbatch=$(readlink -f "$build/kbatch")
[ -x "$kbatch" ] || die "no $build/kbatch: build it first (cmake --build $build)"
id "$user" >/dev/null 2>&1 || die "no account '$user' (tests/integration/fixtures/create-test-user.sh creates kbtest)"
for tool in hyperfine gnuplot qsub qstat scontrol python3 g++; do
  command -v "$tool" >/dev/null || die "'$tool' not found: run packaging/install-deps.sh"
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

state=${KBATCH_PAPER_STATE:-$(mktemp -d /tmp/kbatch-paper.XXXXXX)}
chmod 755 "$state"
cleanup() {
  "$repo/tests/integration/k8s/stop-server.sh" "$state/k8s" >/dev/null 2>&1 || true
  "$repo/tests/integration/slurm/slurm-cluster.sh" stop "$state/slurm" >/dev/null 2>&1 || true
  "$repo/tests/integration/registry/registry-fixture.sh" stop "$state/registry" >/dev/null 2>&1 || true
  [ -n "${KBATCH_PAPER_KEEP:-}" ] || rm -rf "$state"
}
trap cleanup EXIT
# Killed or interrupted: still stop the cluster, the server and the registry (through EXIT).
trap 'exit 130' INT TERM HUP
step() { echo "paper.sh [$(date +%T)]: $*" >&2; }

step "starting the Slurm test cluster, the k8s test server and a registry in $state"
"$repo/tests/integration/slurm/slurm-cluster.sh" start "$state/slurm" >&2
"$repo/tests/integration/k8s/start-server.sh" "$state/k8s" "$kbatch" >&2
"$repo/tests/integration/registry/registry-fixture.sh" start "$state/registry" >&2
export SLURM_CONF=$state/slurm/slurm.conf
registry=$(cat "$state/registry/address")

# The job directory lies under the k8s server's `home` claim, so that the Pod reaches it as a
# PersistentVolumeClaim (the policy-free default maps nothing: the k8s runs name the claim).
work=$state/k8s/claims/home/paper
install -d -o "$user" -m 0755 "$work"
install -o "$user" -m 0644 "$repo/examples/fib.pbs" "$repo/examples/fib-binary.pbs" "$work/"
runuser -u "$user" -- g++ -O2 -o "$work/a.out" "$repo/examples/fib.cpp"
host=$(hostname -s)
k8s_options="--kubeconfig $state/k8s/kubeconfig --volume $state/k8s/claims/home=home"
# The registry listens on 127.0.0.1: loopback registries may be used with --insecure.
as_user() {
  runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" HOME="$work" KBATCH_CACHE="$work/.cache" "$@"
}

# Warm-up outside the timed runs: the first run builds the dependency images (measured below).
step "warm-up: dependency images for fib.pbs and fib-binary.pbs"
(cd "$work" && as_user "$kbatch" -q run fib.pbs >/dev/null && as_user "$kbatch" -q run fib-binary.pbs >/dev/null)
# The Kubernetes backend runs the same dependency images; the test server's kubelet takes an image
# that is a root filesystem directory on the node (what a site's shared image cache provides).
step "dependency images for the k8s backend"
script_root=$(cd "$work" && as_user "$kbatch" -q build --from-binary /bin/bash --shell /bin/bash | head -n 1)
binary_root=$(cd "$work" && as_user "$kbatch" -q build --from-binary ./a.out --shell /bin/bash | head -n 1)
[ -d "$script_root" ] && [ -d "$binary_root" ] || die "kbatch build printed no image roots"
(cd "$work" && as_user "$kbatch" -q build --from-binary ./a.out --shell /bin/bash \
    --push "docker://$registry/paper/binary:1" --insecure >/dev/null) ||
  die "could not push the dependency image of a.out to $registry"

# One batch job per configuration: qsub'd as the user, it times RUNS executions with hyperfine.
# usage: timeInBatchJob NAME COMMAND
timeInBatchJob() {
  local name=$1 command=$2 job_script=$work/time-$1.pbs job_id state i
  cat >"$job_script" <<EOF
#!/bin/bash
#PBS -N time-$name
#PBS -l nodes=1:ppn=1
cd "$work"
export HOME="$work" KBATCH_CACHE="$work/.cache"
# One untimed run first: its errors land in the job's stderr file, which hyperfine would hide
# (a Pod's log merges the container's stderr into its stdout, so that is shown too).
$command >"$work/$name.first.out" || { status=\$?; cat "$work/$name.first.out" >&2; exit \$status; }
hyperfine -N --style none --warmup 1 --runs $runs --export-json "$work/$name.json" -n "$name" "$command"
EOF
  chown "$user" "$job_script"
  job_id=$(cd "$work" && as_user qsub "$job_script" | tail -n 1 | tr -d '[:space:]')
  [[ $job_id =~ ^[0-9]+$ ]] || die "qsub printed no job id for $name"
  for ((i = 0; i < 7200; i++)); do
    state=$(scontrol show job "$job_id" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case $state in
      COMPLETED) break ;;
      PENDING | RUNNING | CONFIGURING | COMPLETING) sleep 0.5 ;;
      *) echo "paper.sh: job $job_id ($name) ended $state; its output:" >&2
         cat "$work/time-$name.pbs.o$job_id" "$work/time-$name.pbs.e$job_id" \
           "$work/slurm-$job_id.out" 2>/dev/null >&2 || true
         scontrol show job "$job_id" | grep -E 'StdOut|StdErr|ExitCode' >&2  || true
         failed+=("$name"); return 0 ;;
    esac
  done
  [ -s "$work/$name.json" ] || { failed+=("$name"); echo "paper.sh: job $job_id ($name) wrote no timings" >&2; return 0; }
  step "$name: done (job $job_id)"
}

failed=()
step "Table 1 and 2: $runs runs each, inside batch jobs"
timeInBatchJob script-native "bash fib.pbs"
timeInBatchJob script-local "$kbatch run fib.pbs"
timeInBatchJob script-k8s "$kbatch k8s run $k8s_options --image $script_root -- /bin/bash fib.pbs"
timeInBatchJob binary-native "bash fib-binary.pbs"
timeInBatchJob binary-local "$kbatch run fib-binary.pbs"
timeInBatchJob binary-k8s "$kbatch k8s run $k8s_options --image $binary_root -- /bin/bash fib-binary.pbs"

step "dependency image of a.out: build cold and warm, distribution cold and warm"
image="docker://$registry/paper/binary:1"
deps_runs=$((runs < 10 ? runs : 10))
(cd "$work" && as_user hyperfine -N --style none --runs "$deps_runs" --prepare "rm -rf $work/cold-cache" \
    --export-json "$work/deps-build-cold.json" -n build-cold \
    "env KBATCH_CACHE=$work/cold-cache $kbatch -q build --from-binary ./a.out --shell /bin/bash" \
  && as_user hyperfine -N --style none --warmup 1 --runs "$deps_runs" --export-json "$work/deps-build-warm.json" \
    -n build-warm "$kbatch -q build --from-binary ./a.out --shell /bin/bash" \
  && as_user hyperfine -N --style none --runs "$deps_runs" --prepare "rm -rf $work/node-cache" \
    --export-json "$work/deps-pull-cold.json" -n distribute-cold \
    "env KBATCH_CACHE=$work/node-cache $kbatch -q pull --insecure $image" \
  && as_user hyperfine -N --style none --warmup 1 --runs "$deps_runs" --export-json "$work/deps-pull-warm.json" \
    -n distribute-warm "env KBATCH_CACHE=$work/node-cache $kbatch -q pull --insecure $image") >&2 ||
  die "the dependency-image measurements failed"

step "writing $out/paper.md and $out/paper.png"
python3 - "$work" "$out" "$runs" "$(uptime)" "$(nproc)" <<'PY'
import json, sys, os
work, out, runs, uptime, cpus = sys.argv[1:6]
nan = float("nan")
def result(name):
    # A configuration that failed has no timings: it shows as "failed" (nan), never as a number.
    path = os.path.join(work, name + ".json")
    if not os.path.exists(path): return nan, nan, nan
    r = json.load(open(path))["results"][0]
    return r["min"], r["mean"], r["max"]
# The paper's figures (Saito, Hirotsu; 4 compute nodes, TORQUE, Kubernetes 1.13.1): mean, max, min.
paper = {"script": {"native": (0.023, 0.024, 0.027), "container": (2.80, 2.90, 3.08)},
         "binary": {"native": (0.15, 0.24, 0.25), "container": (6.10, 8.64, 12.03)}}
lines = ["# The paper's evaluation, reproduced", "",
         f"Command: `sudo bench/paper.sh --runs {runs}`. Each row: {runs} runs inside one batch job "
         "submitted with the real `qsub` (Slurm's TORQUE wrapper, one-node test cluster), timed by "
         "hyperfine; seconds. The machine is shared: these figures are noisy.", "",
         f"Machine: {cpus} CPUs; `uptime` at the end: {uptime.strip()}", ""]
rows = []
for kind, title in [("script", "Table 1: script job (Listing 2, fib.pbs)"),
                    ("binary", "Table 2: binary job (Listing 3, a.out via `#PBS -B a.out`)")]:
    native = result(f"{kind}-native")
    lines += [f"## {title}", "",
              "| how | min s | mean s | max s | mean / native | added over native, ms |",
              "|---|---|---|---|---|---|"]
    for how, label in [("native", "native (qsub)"), ("local", "kbatch local backend"),
                       ("k8s", "kbatch k8s backend (test API server)")]:
        lo, mean, hi = result(f"{kind}-{how}")
        lines.append(f"| {label} | {lo:.4f} | {mean:.4f} | {hi:.4f} | {mean / native[1]:.1f}x | "
                     f"{(mean - native[1]) * 1000:.1f} |")
        rows.append((f"{kind} {how}", mean))
    for how, label in [("native", "**paper's** native (TORQUE qsub)"),
                       ("container", "**paper's** container (Kubernetes Pod)")]:
        lo, mean, hi = paper[kind][how]
        ratio = mean / paper[kind]["native"][1]
        lines.append(f"| {label} | {lo:.3f} | {mean:.3f} | {hi:.3f} | {ratio:.0f}x | "
                     f"{(mean - paper[kind]['native'][1]) * 1000:.0f} |")
    # The test server's kubelet runs each Pod's container with kbatch's local runtime, so the
    # local row is the server's own container start plus the job: what the k8s row adds to it is
    # the Kubernetes path's overhead, the figure the k8s target is about.
    k8s_only = (result(f"{kind}-k8s")[1] - result(f"{kind}-local")[1]) * 1000
    lines += ["", f"Kubernetes path without the server's own container start (k8s mean minus "
              f"local mean): {k8s_only:.1f} ms."]
    lines.append("")
lines += ["## Dependency image of a.out", "",
          "| step | min s | mean s | max s |", "|---|---|---|---|"]
for name, label in [("deps-build-cold", "build, cold (empty cache, `closure` strategy)"),
                    ("deps-build-warm", "build, warm (cached: resolve, hash, find)"),
                    ("deps-pull-cold", "distribution to one more node, cold (`kbatch pull` from the registry)"),
                    ("deps-pull-warm", "distribution, warm (the node already has it)")]:
    lo, mean, hi = result(name)
    lines.append(f"| {label} | {lo:.3f} | {mean:.3f} | {hi:.3f} |")
lines += ["| **paper's** build and distribution (yum image, docker save, ssh, docker load) | | 44 | |",
          "| **paper's** distribution per node | | 4 | |", "",
          "Targets (issue 8): container overhead over native < 20 ms (local), < 100 ms (k8s test "
          "server, excluding the server's own container start); dependency image warm < 0.5 s, cold "
          "closure < 2 s.", ""]
open(os.path.join(out, "paper.md"), "w").write("\n".join(lines))
with open(os.path.join(work, "plot.dat"), "w") as data:
    data.write('"script native (paper)" %f\n' % paper["script"]["native"][1])
    data.write('"script container (paper)" %f\n' % paper["script"]["container"][1])
    for label, mean in rows[:3]: data.write('"%s (ours)" %f\n' % (label, mean))
    data.write('"binary native (paper)" %f\n' % paper["binary"]["native"][1])
    data.write('"binary container (paper)" %f\n' % paper["binary"]["container"][1])
    for label, mean in rows[3:]: data.write('"%s (ours)" %f\n' % (label, mean))
PY
gnuplot <<EOF
set terminal pngcairo size 1100,600 noenhanced
set output "$out/paper.png"
set title "Mean job time, seconds (log scale): the paper's figures beside ours ($runs runs)"
set style fill solid 0.8
set boxwidth 0.7
set logscale y
set yrange [0.0005:20]
set ylabel "seconds"
set xtics rotate by -35 left
set grid ytics
plot "$work/plot.dat" using 0:2:xtic(1) with boxes notitle, \
     "" using 0:(\$2*1.3):(sprintf("%.3g", \$2)) with labels notitle
EOF
cat "$out/paper.md"
[ ${#failed[@]} -eq 0 ] || die "these configurations failed (rows show nan): ${failed[*]}"
