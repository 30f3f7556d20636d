# shellcheck shell=bash
# Helpers shared by the e2e tests (sourced, not run). They reuse the cluster tests' helpers
# (../slurm/cluster-lib.sh) against the e2e site that e2e-fixture.sh started, whose state directory
# CTest passes as E2E_STATE. Every submission runs as the non-root test user inside the site's
# mount namespace, where /etc/kbatch/policy.yaml is the e2e policy, as on a real login node.
set -euo pipefail

: "${E2E_STATE:?E2E_STATE must name the state directory of the e2e site (set by CTest)}"
[ -s "$E2E_STATE/site.env" ] || { echo "FAIL: no $E2E_STATE/site.env: the 'e2e_site' fixture did not run" >&2; exit 1; }
set -a
# shellcheck source=/dev/null
source "$E2E_STATE/site.env"
set +a
# shellcheck source=tests/integration/slurm/cluster-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../slurm/cluster-lib.sh"

# The site's mount namespace: the one slurmctld runs in.
siteNamespace() { echo "/proc/$(cat "$E2E_STATE/slurm/run/slurmctld.pid")/ns/mnt"; }

# Runs a command as root inside the site's mount namespace.
inSite() { nsenter --mount="$(siteNamespace)" -- "$@"; }

# Runs a command as the test user in the current directory, inside the site's namespace, with the
# environment a user of this site has (Slurm's qsub exports it into the job).
asTestUser() {
  nsenter --mount="$(siteNamespace)" --wd="$PWD" -- runuser -u "$KBATCH_TEST_USER" -- \
    env SLURM_CONF="$SLURM_CONF" PATH="$PATH" KUBECONFIG="$KUBECONFIG" "$@"
}

# kubectl against the site's Kubernetes test server, as its admin.
siteKubectl() {
  kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_STATE/k8s/kubectl-cache" \
    --request-timeout=20s "$@"
}

# Writes a job script owned by the test user: the paper's script $1 with the lines $3... inserted
# after its last directive, as a user adds `#KBATCH` lines to an existing job.
scriptWithDirectives() {
  local source=$1 target=$2
  shift 2
  local directives
  directives=$(printf '%s\n' "$@")
  awk -v extra="$directives" '
    !done && NR > 1 && !/^#/ { print extra; done = 1 }
    { print }
    END { if (!done) print extra }' "$source" >"$target"
  chown "$KBATCH_TEST_USER" "$target"
}

# Fails unless the stored script of a job is kbatch's rewrite (server- or client-side).
expectStoredScriptRewritten() {
  local job_id=$1 stored=stored-$1.pbs
  writeSubmittedScript "$job_id" "$stored"
  grep -qE '^#KBATCH-REWRITTEN v1 sha256=[0-9a-f]{64}$' "$stored" ||
    fail "job $job_id: the stored script has no '#KBATCH-REWRITTEN v1' marker: $(cat "$stored")"
  grep -qE "^exec '?$E2E_KBATCH'? exec --job-body=base64 " "$stored" ||
    fail "job $job_id: the stored script does not run its body through '$E2E_KBATCH exec'"
}

# Processes of the test user whose command line mentions a string (e.g. a job's marker word).
testUserProcessesMatching() {
  pgrep -u "$KBATCH_TEST_USER" -f -- "$1" || true
}

# The Pods of a batch job (kbatch labels them with the job id), as "pod/NAME" lines.
podsOfJob() {
  siteKubectl get pods -A -l "kbatch.io/job-id=$1" -o name
}

# Submits with the real qsub as the test user and prints the job id.
submitWithQsub() {
  local output
  output=$(asTestUser qsub "$@") || fail "qsub $* exited with status $?: $output"
  jobIdFromQsubOutput "$output"
}

# Submits with `kbatch qsub` (the client-side wrapper) as the test user and prints the job id.
submitWithKbatchQsub() {
  local output
  output=$(asTestUser "$E2E_KBATCH" qsub "$@") || fail "kbatch qsub $* exited with status $?: $output"
  jobIdFromQsubOutput "$output"
}
