#!/bin/bash
# Slurm's TORQUE `qdel` cancels a running job: qstat then reports it complete and Slurm records it as
# CANCELLED, with the job's process gone before its sleep could finish.
# shellcheck source=tests/integration/slurm/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"

enterFreshWorkDir qdel-cancels-running-job
cat >sleeper.pbs <<'SCRIPT'
#!/bin/bash
#PBS -N sleeper
echo started
sleep 300
echo "sleep was not interrupted"
SCRIPT
chown "$KBATCH_TEST_USER" sleeper.pbs

job_id=$(jobIdFromQsubOutput "$(asTestUser qsub sleeper.pbs)")
waitForJobRunning "$job_id"
asTestUser qdel "$job_id" || fail "qdel $job_id exited with status $?"
waitForJobWithQstat "$job_id"
state=$(jobField "$job_id" JobState)
[ "$state" = CANCELLED ] || fail "job $job_id is $state after qdel, expected CANCELLED"
if grep -q "not interrupted" "$(jobOutputFile "$job_id")"; then fail "job $job_id ran to its end despite qdel"; fi
echo "job $job_id: cancelled by qdel"
