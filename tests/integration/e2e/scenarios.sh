#!/bin/bash
# The e2e scenarios: jobs submitted through the real `qsub` (Slurm's TORQUE wrapper), `sbatch` and
# `kbatch qsub`, as the non-root test user, on the site e2e-fixture.sh started (Slurm with kbatch's
# job_submit.lua, the site policy, docker-registry, the Kubernetes test server).
#   scenarios.sh SCENARIO     (one CTest test per scenario; see the case at the end)
# shellcheck source=tests/integration/e2e/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"

readonly kLocalImage=docker://$E2E_IMAGE  # kbatch exec pulls docker:// references
readonly kPodImage=$E2E_IMAGE             # what a Kubernetes user writes; the node knows it
readonly kImageMarker="kbatch e2e site image"
readonly kCleanupSeconds=30

# Waits (bounded) until no process of the test user matches; fails naming the survivors.
expectProcessesGone() {
  local pattern=$1 what=$2 i
  for ((i = 0; i < kCleanupSeconds * 10; i++)); do
    [ -z "$(testUserProcessesMatching "$pattern")" ] && return 0
    sleep 0.1
  done
  fail "$what: processes still running ${kCleanupSeconds} s later: $(ps -o pid,args -p "$(testUserProcessesMatching "$pattern" | paste -sd,)")"
}

# Waits (bounded) until a process of the test user matches.
waitForProcess() {
  local pattern=$1 what=$2 i
  for ((i = 0; i < kJobTimeoutSeconds * 10; i++)); do
    [ -n "$(testUserProcessesMatching "$pattern")" ] && return 0
    sleep 0.1
  done
  fail "$what: no process matching '$pattern' appeared"
}

compileFib() {
  copyForTestUser "$E2E_SOURCE_DIR/examples/fib.cpp"
  asTestUser g++ -O2 -o a.out fib.cpp || fail "cannot compile examples/fib.cpp"
}

# A native job passes through the site's integration points byte for byte: through job_submit.lua
# (plain qsub) and through the kbatch qsub wrapper; both run natively and print Listing 2's output.
native_job() {
  enterFreshWorkDir native-job
  copyForTestUser "$E2E_SOURCE_DIR/examples/fib.pbs"
  local plain wrapped
  plain=$(submitWithQsub fib.pbs)
  wrapped=$(submitWithKbatchQsub fib.pbs)
  for job_id in "$plain" "$wrapped"; do
    waitForJobWithQstat "$job_id"
    writeSubmittedScript "$job_id" "stored-$job_id.pbs"
    cmp fib.pbs "stored-$job_id.pbs" || fail "job $job_id: the stored script differs from fib.pbs"
    expectJobSucceededWithOutput "$job_id" "$kFibOutput"
  done
  cmp fib.pbs "$E2E_SOURCE_DIR/examples/fib.pbs" || fail "submitting changed the user's fib.pbs"
  echo "jobs $plain (qsub) and $wrapped (kbatch qsub): fib.pbs stored byte for byte, ran natively"
}

# Listing 2 in a container on the local backend, submitted with plain qsub: job_submit.lua
# rewrites it inside slurmctld.
listing2_local() {
  enterFreshWorkDir listing2-local
  scriptWithDirectives "$E2E_SOURCE_DIR/examples/fib.pbs" fib.pbs "#KBATCH --image $kLocalImage"
  cp fib.pbs original.pbs
  local job_id
  job_id=$(submitWithQsub fib.pbs)
  waitForJobWithQstat "$job_id"
  expectStoredScriptRewritten "$job_id"
  cmp fib.pbs original.pbs || fail "the user's script was modified on disk"
  expectJobSucceededWithOutput "$job_id" "$kFibOutput"
  echo "job $job_id: Listing 2 rewritten server-side, ran in $kLocalImage, printed $kFibOutput"
}

# Listing 3 (`#PBS -B a.out`) through the kbatch qsub wrapper (sbatch itself rejects -B), and the
# same job as `#KBATCH --from-binary a.out` through plain qsub (rewritten server-side).
listing3_local() {
  enterFreshWorkDir listing3-local
  copyForTestUser "$E2E_SOURCE_DIR/examples/fib-binary.pbs"
  compileFib
  sed 's/^#PBS -B a.out$/#KBATCH --from-binary a.out/' fib-binary.pbs >fib-kbatch.pbs
  chown "$KBATCH_TEST_USER" fib-kbatch.pbs
  local wrapped plain
  wrapped=$(submitWithKbatchQsub fib-binary.pbs)
  plain=$(submitWithQsub fib-kbatch.pbs)
  for job_id in "$wrapped" "$plain"; do
    waitForJobWithQstat "$job_id"
    expectStoredScriptRewritten "$job_id"
    grep -qxF '#KBATCH --from-binary a.out' "stored-$job_id.pbs" ||
      fail "job $job_id: the stored script lost '#KBATCH --from-binary a.out'"
    expectJobSucceededWithOutput "$job_id" "$kFibOutput"
  done
  echo "jobs $wrapped (kbatch qsub, -B) and $plain (qsub, server-side): Listing 3 printed $kFibOutput"
}

# Listing 2 as a Pod: `#KBATCH --backend k8s`, submitted with plain qsub.
listing2_k8s() {
  enterFreshWorkDir listing2-k8s
  scriptWithDirectives "$E2E_SOURCE_DIR/examples/fib.pbs" fib.pbs \
    "#KBATCH --backend k8s" "#KBATCH --image $kPodImage"
  local job_id
  job_id=$(submitWithQsub fib.pbs)
  waitForJobWithQstat "$job_id"
  expectStoredScriptRewritten "$job_id"
  grep -q -- "--backend k8s" "stored-$job_id.pbs" || fail "job $job_id: the rewrite lost --backend k8s"
  expectJobSucceededWithOutput "$job_id" "$kFibOutput"
  expectPodRanAndIsGone "$job_id"
  echo "job $job_id: Listing 2 ran as a Pod and printed $kFibOutput"
}

# Listing 3 as a Pod: the paper's fib-binary.pbs plus `#KBATCH --backend k8s`, with kbatch qsub.
listing3_k8s() {
  enterFreshWorkDir listing3-k8s
  scriptWithDirectives "$E2E_SOURCE_DIR/examples/fib-binary.pbs" fib-binary.pbs "#KBATCH --backend k8s"
  compileFib
  local job_id
  job_id=$(submitWithKbatchQsub fib-binary.pbs)
  waitForJobWithQstat "$job_id"
  expectStoredScriptRewritten "$job_id"
  expectJobSucceededWithOutput "$job_id" "$kFibOutput"
  expectPodRanAndIsGone "$job_id"
  echo "job $job_id: Listing 3 ran as a Pod and printed $kFibOutput"
}

# The test server records an event for every Pod it started; the Pod itself must be gone.
expectPodRanAndIsGone() {
  local job_id=$1 pods
  pods=$(podsOfJob "$job_id")
  [ -z "$pods" ] || fail "job $job_id: its Pod is still there after the job ended: $pods"
  siteKubectl get events -n kbatch-jobs -o jsonpath='{range .items[*]}{.involvedObject.name}{" "}{.reason}{"\n"}{end}' |
    grep -qE "^kbatch-$job_id(-[a-z0-9-]+)? Started$" ||
    fail "job $job_id: the Kubernetes test server never started a Pod for it: $(siteKubectl get events -n kbatch-jobs 2>&1 | tail -n 5)"
}

# A job that calls `kbatch exec` itself is native to the submit path (stored unchanged) and runs its
# command inside the site image.
explicit_exec() {
  enterFreshWorkDir explicit-exec
  cat >exec.pbs <<SCRIPT
#!/bin/bash
#PBS -N explicit-exec
echo "on the host: \$(test -e /etc/e2e-image-marker && echo marker || echo no-marker)"
$E2E_KBATCH exec $kLocalImage -- cat /etc/e2e-image-marker
SCRIPT
  chown "$KBATCH_TEST_USER" exec.pbs
  local job_id
  job_id=$(submitWithQsub exec.pbs)
  waitForJobWithQstat "$job_id"
  writeSubmittedScript "$job_id" stored.pbs
  cmp exec.pbs stored.pbs || fail "job $job_id: a script calling kbatch exec itself was rewritten"
  expectJobSucceededWithOutput "$job_id" $'on the host: no-marker\n'"$kImageMarker"$'\n'
  echo "job $job_id: kbatch exec ran the command in the site image"
}

# A job the policy forbids is refused at submission by every integration point, with the rule.
policy_refusal() {
  enterFreshWorkDir policy-refusal
  local forbidden=docker://$E2E_REGISTRY/untrusted/tool:1
  scriptWithDirectives "$E2E_SOURCE_DIR/examples/fib.pbs" forbidden.pbs "#KBATCH --image $forbidden"
  local rule_pattern="refused by the site policy: .*$E2E_POLICY:[0-9]+(:[0-9]+)?: deny +images"
  local jobs_before status
  jobs_before=$(squeue --noheader --all --states=all | wc -l)

  asTestUser "$E2E_KBATCH" qsub forbidden.pbs >qsub.out 2>qsub.err && status=0 || status=$?
  [ "$status" = 1 ] || fail "kbatch qsub of a forbidden job exited $status, expected 1: $(cat qsub.err)"
  [ "$(grep -c . qsub.err)" = 1 ] || fail "kbatch qsub printed more than one line: $(cat qsub.err)"
  grep -qE "$rule_pattern" qsub.err || fail "kbatch qsub did not name the rule: $(cat qsub.err)"

  asTestUser "$E2E_KBATCH" submit-filter <forbidden.pbs >filter.out 2>filter.err && status=0 || status=$?
  [ "$status" = 255 ] || fail "kbatch submit-filter exited $status, expected 255: $(cat filter.err)"
  [ ! -s filter.out ] || fail "kbatch submit-filter printed a script for a refused job"
  grep -qE "$rule_pattern" filter.err || fail "kbatch submit-filter did not name the rule: $(cat filter.err)"

  # Plain qsub: job_submit.lua in slurmctld refuses it and hands the rule to the user.
  asTestUser qsub forbidden.pbs >plain.out 2>&1 && status=0 || status=$?
  [ "$status" != 0 ] || fail "plain qsub of a forbidden job succeeded: $(cat plain.out)"
  grep -qE "$rule_pattern" plain.out || fail "plain qsub's refusal did not name the rule: $(cat plain.out)"
  [ "$(squeue --noheader --all --states=all | wc -l)" = "$jobs_before" ] ||
    fail "a refused submission created a job: $(squeue --all --states=all)"
  echo "refused at submission with: $(grep -oE "$rule_pattern.*" qsub.err)"
}

# A containerised array job (-t 1-4): every task runs in the image and sees its own index.
job_array() {
  enterFreshWorkDir job-array
  cat >array.pbs <<SCRIPT
#!/bin/bash
#PBS -N array
#KBATCH --image $kLocalImage
echo "task \$SLURM_ARRAY_TASK_ID: \$(cat /etc/e2e-image-marker)"
SCRIPT
  chown "$KBATCH_TEST_USER" array.pbs
  local job_id records task record output i
  # One output file per task (TORQUE appends -INDEX itself; Slurm's qsub needs the pattern).
  job_id=$(submitWithQsub -t 1-4 -o 'array.o%A-%a' array.pbs)
  for ((i = 0; i < kJobTimeoutSeconds * 2; i++)); do
    records=$(scontrol --oneliner show job "$job_id")
    if grep -qE 'JobState=(FAILED|CANCELLED|TIMEOUT|NODE_FAIL)' <<<"$records"; then
      fail "array job $job_id: a task failed: $records"
    fi
    [ "$(grep -c 'JobState=COMPLETED' <<<"$records")" = 4 ] && break
    sleep 0.5
  done
  [ "$(grep -c 'JobState=COMPLETED' <<<"$records")" = 4 ] ||
    fail "array job $job_id: not all 4 tasks completed: $records"
  for task in 1 2 3 4; do
    record=$(grep -E "ArrayTaskId=$task " <<<"$records") || fail "array job $job_id has no task $task"
    output=$(tr ' ' '\n' <<<"$record" | sed -n 's/^StdOut=//p')
    [ "$(cat "$output")" = "task $task: $kImageMarker" ] ||
      fail "array task $task printed '$(cat "$output")' into $output"
  done
  echo "array job $job_id: 4 tasks ran in the image, each with its index"
}

# -W depend=afterok: the second containerised job starts only after the first succeeded, and sees
# what it wrote.
depend_afterok() {
  enterFreshWorkDir depend-afterok
  cat >first.pbs <<SCRIPT
#!/bin/bash
#KBATCH --image $kLocalImage
sleep 3
echo "written by the first job" >handoff.txt
SCRIPT
  cat >second.pbs <<SCRIPT
#!/bin/bash
#KBATCH --image $kLocalImage
cat handoff.txt
SCRIPT
  chown "$KBATCH_TEST_USER" first.pbs second.pbs
  local first second
  first=$(submitWithQsub first.pbs)
  # The second job fails if it starts before the first wrote handoff.txt.
  second=$(submitWithQsub -W "depend=afterok:$first" second.pbs)
  waitForJobWithQstat "$second"
  expectJobSucceededWithOutput "$second" $'written by the first job\n'
  [ "$(jobField "$first" JobState)" = COMPLETED ] || fail "the first job $first did not complete"
  local first_end second_start
  first_end=$(date -d "$(jobField "$first" EndTime)" +%s)
  second_start=$(date -d "$(jobField "$second" StartTime)" +%s)
  [ "$second_start" -ge "$first_end" ] ||
    fail "job $second started at $second_start, before job $first ended at $first_end"
  echo "job $second ran after job $first (afterok) and read its output"
}

# qdel of a running containerised job: the job is cancelled and its container's processes are gone.
qdel_local() {
  enterFreshWorkDir qdel-local
  cat >long.pbs <<SCRIPT
#!/bin/bash
#KBATCH --image $kLocalImage
echo started
sleep 3001
echo "sleep was not interrupted"
SCRIPT
  chown "$KBATCH_TEST_USER" long.pbs
  local job_id
  job_id=$(submitWithQsub long.pbs)
  waitForJobRunning "$job_id"
  waitForProcess "sleep 3001" "job $job_id"
  asTestUser qdel "$job_id" || fail "qdel $job_id exited with status $?"
  waitForJobWithQstat "$job_id"
  [ "$(jobField "$job_id" JobState)" = CANCELLED ] || fail "job $job_id is $(jobField "$job_id" JobState) after qdel"
  expectProcessesGone "sleep 3001" "job $job_id after qdel"
  if grep -q "not interrupted" "$(jobOutputFile "$job_id")"; then fail "job $job_id ran to its end"; fi
  echo "job $job_id: cancelled by qdel, its container's processes are gone"
}

# qdel of a running job on the Kubernetes backend: its Pod is gone within 5 s (TORQUE's kill_delay
# is 2 s; kbatch deletes the Pod on SIGTERM without waiting for the answer).
qdel_k8s() {
  enterFreshWorkDir qdel-k8s
  cat >long.pbs <<SCRIPT
#!/bin/bash
#KBATCH --backend k8s
#KBATCH --image $kPodImage
echo started
sleep 3002
echo "sleep was not interrupted"
SCRIPT
  chown "$KBATCH_TEST_USER" long.pbs
  local job_id pod i
  job_id=$(submitWithQsub long.pbs)
  waitForJobRunning "$job_id"
  for ((i = 0; i < kJobTimeoutSeconds * 10; i++)); do
    pod=$(podsOfJob "$job_id")
    [ -n "$pod" ] && break
    sleep 0.1
  done
  [ -n "$pod" ] || fail "job $job_id never created a Pod"
  siteKubectl wait --for=condition=Ready "$pod" -n kbatch-jobs --timeout=60s >/dev/null ||
    fail "job $job_id: $pod never became Ready"
  asTestUser qdel "$job_id" || fail "qdel $job_id exited with status $?"
  siteKubectl wait --for=delete "$pod" -n kbatch-jobs --timeout=5s >/dev/null ||
    fail "job $job_id: $pod still exists 5 s after qdel"
  waitForJobWithQstat "$job_id"
  expectProcessesGone "sleep 3002" "job $job_id's Pod after qdel"
  echo "job $job_id: qdel deleted $pod within 5 s"
}

# A job past its walltime is stopped, and its container with it.
walltime() {
  enterFreshWorkDir walltime
  cat >overrun.pbs <<SCRIPT
#!/bin/bash
#PBS -l walltime=00:00:05
#KBATCH --image $kLocalImage
echo started
sleep 3003
echo "sleep was not interrupted"
SCRIPT
  chown "$KBATCH_TEST_USER" overrun.pbs
  local job_id state
  job_id=$(submitWithQsub overrun.pbs)
  waitForJobWithQstat "$job_id"
  state=$(jobField "$job_id" JobState)
  case $state in
    TIMEOUT | FAILED) ;;
    *) fail "job $job_id past its walltime ended $state ($(jobField "$job_id" ExitCode)), expected TIMEOUT or FAILED" ;;
  esac
  grep -qx started "$(jobOutputFile "$job_id")" || fail "job $job_id never started its body"
  if grep -q "not interrupted" "$(jobOutputFile "$job_id")"; then fail "job $job_id outlived its walltime"; fi
  expectProcessesGone "sleep 3003" "job $job_id past its walltime"
  echo "job $job_id: stopped at its walltime ($state, exit $(jobField "$job_id" ExitCode)), container gone"
}

# Two jobs needing the same dependency image at once: the image is built once. The store holds one
# image and no abandoned build; a second build of the same key could not have published its root
# (the rename onto an existing root fails), so both jobs succeeding means one built and one reused.
shared_dependency_image() {
  enterFreshWorkDir shared-dependency-image
  copyForTestUser "$E2E_SOURCE_DIR/examples/fib-binary.pbs"
  compileFib
  install -d -o "$KBATCH_TEST_USER" -m 0755 cache
  local first second images leftovers
  # Slurm's qsub exports the submitter's environment into the job: both jobs use this cache.
  # Both are submitted held (-h) and released together, so that they start at once.
  first=$(KBATCH_CACHE=$PWD/cache submitWithKbatchQsub -h fib-binary.pbs)
  second=$(KBATCH_CACHE=$PWD/cache submitWithKbatchQsub -h fib-binary.pbs)
  asTestUser qrls "$first" "$second" || fail "qrls $first $second exited with status $?"
  waitForJobWithQstat "$first"
  waitForJobWithQstat "$second"
  expectJobSucceededWithOutput "$first" "$kFibOutput"
  expectJobSucceededWithOutput "$second" "$kFibOutput"
  # Both ran at the same time (Slurm's times have one-second resolution).
  [ "$(date -d "$(jobField "$second" StartTime)" +%s)" -le "$(date -d "$(jobField "$first" EndTime)" +%s)" ] ||
    fail "jobs $first and $second did not overlap; the test needs them to run at once"
  # Dependency images are store images tagged kbatch-deps:<key of the resolved inputs>.
  asTestUser env KBATCH_CACHE="$PWD/cache" "$E2E_KBATCH" images --json >images.json ||
    fail "kbatch images exited with status $?"
  images=$(python3 -c 'import json, sys
print(sum(1 for image in json.load(open(sys.argv[1])) if image["name"].startswith("kbatch-deps:")))' images.json)
  [ "$images" = 1 ] || fail "expected one dependency image in the store, found $images: $(cat images.json)"
  leftovers=$(find cache/roots -mindepth 1 -maxdepth 1 -name '.tmp-*')
  [ -z "$leftovers" ] || fail "an abandoned unpack or build is in the store: $leftovers"
  echo "jobs $first and $second: one dependency image in the store"
}

# A plain `sbatch` of a containerised job (#SBATCH directives, #KBATCH image) is rewritten by
# job_submit.lua in slurmctld and runs in the container.
server_side_sbatch() {
  enterFreshWorkDir server-side-sbatch
  cat >job.sbatch <<SCRIPT
#!/bin/bash
#SBATCH --job-name=server-side
#SBATCH --output=server-side.out
#KBATCH --image $kLocalImage
cat /etc/e2e-image-marker
SCRIPT
  chown "$KBATCH_TEST_USER" job.sbatch
  local output job_id
  output=$(asTestUser sbatch job.sbatch) || fail "sbatch exited with status $?: $output"
  job_id=${output##* }
  [[ $job_id =~ ^[0-9]+$ ]] || fail "sbatch printed no job id: $output"
  waitForJobWithQstat "$job_id"
  expectStoredScriptRewritten "$job_id"
  expectJobSucceededWithOutput "$job_id" "$kImageMarker"$'\n'
  echo "job $job_id: plain sbatch, rewritten by job_submit.lua, ran in the image"
}

# The TORQUE epilogue shipped in packaging/ (run with TORQUE's epilogue arguments) deletes the Pods
# of jobs the batch system no longer knows, and keeps those of live jobs.
torque_epilogue() {
  enterFreshWorkDir torque-epilogue
  local epilogue=$E2E_SOURCE_DIR/packaging/torque/epilogue
  [ -x "$epilogue" ] || fail "no executable $epilogue"
  cat >live.pbs <<'SCRIPT'
#!/bin/bash
sleep 3004
SCRIPT
  chown "$KBATCH_TEST_USER" live.pbs
  local live_job stale_job=999999
  live_job=$(submitWithQsub live.pbs)
  waitForJobRunning "$live_job"
  for job_id in "$live_job" "$stale_job"; do
    inSite runuser -u "$KBATCH_TEST_USER" -- env KUBECONFIG="$KUBECONFIG" "$E2E_KBATCH" manifest \
      --job-id "$job_id" --image "$kPodImage" -- sleep 300 >"pod-$job_id.yaml" ||
      fail "kbatch manifest for job $job_id failed"
    siteKubectl create --validate=false -f "pod-$job_id.yaml" >/dev/null ||
      fail "cannot create the Pod of job $job_id"
  done
  # TORQUE runs the epilogue as root with: job id, user, group, job name, session id, requested
  # limits, used resources, queue, account, exit status.
  inSite env KUBECONFIG="$KUBECONFIG" SLURM_CONF="$SLURM_CONF" PATH="$PATH" KBATCH="$E2E_KBATCH" \
    "$epilogue" "$live_job" "$KBATCH_TEST_USER" "$KBATCH_TEST_USER" live 1234 \
    "walltime=00:10:00" "cput=00:00:00" batch "" 0 >epilogue.out 2>&1 ||
    fail "the epilogue failed: $(cat epilogue.out)"
  [ -z "$(podsOfJob "$stale_job")" ] || fail "the epilogue kept the Pod of the finished job $stale_job"
  [ -n "$(podsOfJob "$live_job")" ] || fail "the epilogue deleted the Pod of the running job $live_job"
  asTestUser qdel "$live_job"
  siteKubectl delete pods -A -l "kbatch.io/job-id=$live_job" --wait=false >/dev/null
  echo "epilogue: deleted the Pod of gone job $stale_job, kept the one of running job $live_job"
}

# job_submit.lua when kbatch itself cannot run: fail-closed (the default) refuses every batch job
# with a message; fail-open lets jobs through unchanged. A throwaway cluster whose slurmctld names
# a kbatch that does not exist, started once per mode.
job_submit_fail_modes() {
  enterFreshWorkDir job-submit-fail-modes
  scriptWithDirectives "$E2E_SOURCE_DIR/examples/fib.pbs" containerised.pbs "#KBATCH --image $kLocalImage"
  local cluster=$E2E_STATE/fail-modes mode output status job_id
  local cluster_script=$E2E_SOURCE_DIR/tests/integration/slurm/slurm-cluster.sh
  # shellcheck disable=SC2064 # the paths are fixed now; the trap runs after this function returns
  trap "'$cluster_script' stop '$cluster' >/dev/null 2>&1 || true" EXIT
  for mode in closed open; do
    KBATCH_EXECUTABLE=$E2E_STATE/no-such-kbatch KBATCH_ON_ERROR=$mode "$cluster_script" start "$cluster" \
      --job-submit-lua "$E2E_SOURCE_DIR/packaging/slurm/job_submit.lua" >/dev/null ||
      fail "cannot start the $mode-mode cluster"
    output=$(SLURM_CONF=$cluster/slurm.conf asTestUser qsub containerised.pbs 2>&1) && status=0 ||
      status=$?
    if [ "$mode" = closed ]; then
      [ "$status" != 0 ] || fail "fail-closed: a job was accepted although kbatch cannot run: $output"
      grep -q "kbatch: the job cannot be checked" <<<"$output" ||
        fail "fail-closed: the refusal does not say why: $output"
      echo "fail-closed refusal as the user sees it: $output"
    else
      [ "$status" = 0 ] || fail "fail-open: the job was refused: $output"
      job_id=$(jobIdFromQsubOutput "$output")
      SLURM_CONF=$cluster/slurm.conf scontrol write batch_script "$job_id" stored-open.pbs >/dev/null
      cmp containerised.pbs stored-open.pbs || fail "fail-open: the job was not passed through unchanged"
      SLURM_CONF=$cluster/slurm.conf scancel "$job_id"
    fi
    "$cluster_script" stop "$cluster" >/dev/null
  done
  echo "job_submit.lua without kbatch: closed refused the job, open passed it unchanged"
}

case ${1:-} in
  native_job | listing2_local | listing3_local | listing2_k8s | listing3_k8s | explicit_exec | \
    policy_refusal | job_array | depend_afterok | qdel_local | qdel_k8s | walltime | \
    shared_dependency_image | server_side_sbatch | torque_epilogue | job_submit_fail_modes) "$1" ;;
  *) fail "usage: scenarios.sh SCENARIO (unknown scenario '${1:-}')" ;;
esac
