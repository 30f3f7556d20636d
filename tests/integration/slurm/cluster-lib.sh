# shellcheck shell=bash
# Helpers shared by the `cluster` tests (sourced, not run). Every test runs as root under CTest and
# submits as the non-root test user through Slurm's TORQUE wrappers, as a user at a TORQUE site would.
# Expects SLURM_CONF (set by CTest), KBATCH_TEST_USER and KBATCH_WORK_ROOT in the environment.
set -euo pipefail

readonly kJobTimeoutSeconds=${KBATCH_JOB_TIMEOUT:-120}

fail() { echo "FAIL: $*" >&2; exit 1; }

: "${SLURM_CONF:?SLURM_CONF must name the test cluster's slurm.conf (set by CTest)}"
: "${KBATCH_TEST_USER:?KBATCH_TEST_USER must name the non-root account jobs run as}"
: "${KBATCH_WORK_ROOT:?KBATCH_WORK_ROOT must name a directory for the tests' job directories}"
[ -f "$SLURM_CONF" ] || fail "no $SLURM_CONF: the 'slurm' fixture (slurm-cluster.sh start) did not run"

# Runs a command as the test user in the current directory, keeping SLURM_CONF and PATH.
asTestUser() { runuser -u "$KBATCH_TEST_USER" -- env SLURM_CONF="$SLURM_CONF" PATH="$PATH" "$@"; }

# Creates a fresh job directory owned by the test user and changes into it.
enterFreshWorkDir() {
  local dir=$KBATCH_WORK_ROOT/$1
  rm -rf "$dir"
  install -d -m 0755 "$KBATCH_WORK_ROOT"
  install -d -o "$KBATCH_TEST_USER" -g "$(id -gn "$KBATCH_TEST_USER")" -m 0755 "$dir"
  cd "$dir"
}

# Copies a file into the current directory, owned by the test user.
copyForTestUser() {
  install -o "$KBATCH_TEST_USER" -g "$(id -gn "$KBATCH_TEST_USER")" -m 0644 "$1" "${2:-.}"
}

# Extracts the job id from qsub's output: Slurm's qsub prints the id alone on its last line.
jobIdFromQsubOutput() {
  local id
  id=$(printf '%s\n' "$1" | tail -n 1 | tr -d '[:space:]')
  [[ $id =~ ^[0-9]+$ ]] || fail "qsub printed no job id; its output was: '$1'"
  echo "$id"
}

# The one-letter PBS state qstat shows for a job (Q, R, S, C), or nothing once qstat no longer knows it.
qstatState() {
  asTestUser qstat "$1" 2>/dev/null | awk -v id="$1" '$1 == id { print $5 }'
}

# Polls qstat until the job is complete (C); fails with the job's record after kJobTimeoutSeconds.
waitForJobWithQstat() {
  local job_id=$1 state="" i
  for ((i = 0; i < kJobTimeoutSeconds * 2; i++)); do
    state=$(qstatState "$job_id")
    case $state in
      C) return 0 ;;
      Q | R | S) ;;
      *) fail "qstat lost track of job $job_id (state '$state'): $(scontrol show job "$job_id" 2>&1)" ;;
    esac
    sleep 0.5
  done
  fail "job $job_id still in state '$state' after ${kJobTimeoutSeconds} s: $(scontrol show job "$job_id" 2>&1)"
}

# Polls qstat until the job has left the queue and runs (R).
waitForJobRunning() {
  local job_id=$1 i
  for ((i = 0; i < kJobTimeoutSeconds * 2; i++)); do
    [ "$(qstatState "$job_id")" = R ] && return 0
    sleep 0.5
  done
  fail "job $job_id did not start within ${kJobTimeoutSeconds} s: $(scontrol show job "$job_id" 2>&1)"
}

# A field of `scontrol show job` (e.g. JobState, ExitCode).
jobField() {
  scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# The job's stdout file, named as Slurm's qsub names it (<script or -N name>.o<jobid>) in the job's
# working directory.
jobOutputFile() {
  local path
  path=$(jobField "$1" StdOut)
  [ -n "$path" ] && [ -f "$path" ] ||
    fail "job $1 has no output file (StdOut='$path')"
  echo "$path"
}

# The script as the batch system stored it, byte for byte.
writeSubmittedScript() {
  scontrol write batch_script "$1" "$2" >/dev/null || fail "scontrol could not return job $1's script"
}

# Fails unless a job completed with exit status 0 and its stdout is exactly the expected bytes.
expectJobSucceededWithOutput() {
  local job_id=$1 expected=$2 output_file error_file state exit_code
  state=$(jobField "$job_id" JobState)
  exit_code=$(jobField "$job_id" ExitCode)
  output_file=$(jobOutputFile "$job_id")
  error_file=$(jobField "$job_id" StdErr)
  if [ "$state" != COMPLETED ] || [ "$exit_code" != 0:0 ] ||
     [ "$(cat "$output_file"; echo x)" != "${expected}x" ]; then
    echo "---- stdout ($output_file):" >&2; cat -A "$output_file" >&2 || true
    if [ -f "$error_file" ]; then echo "---- stderr ($error_file):" >&2; cat "$error_file" >&2; fi
    fail "job $job_id: state $state, exit code $exit_code; expected COMPLETED, 0:0 and stdout '$expected'"
  fi
}

# The output the paper's fib.pbs and fib.cpp print: the first six Fibonacci numbers.
# shellcheck disable=SC2034 # used by the test scripts that source this file
readonly kFibOutput=$'0 1 1 2 3 5 \n'
