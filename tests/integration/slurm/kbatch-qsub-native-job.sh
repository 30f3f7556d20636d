#!/bin/bash
# A job that needs no container (the paper's fib.pbs) passes through `kbatch qsub` byte for byte: the
# batch system stores exactly the original script, and the job runs natively as before.
# usage: kbatch-qsub-native-job.sh SOURCE_DIR KBATCH
# shellcheck source=tests/integration/slurm/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
source_dir=${1:?usage: kbatch-qsub-native-job.sh SOURCE_DIR KBATCH}
kbatch=${2:?usage: kbatch-qsub-native-job.sh SOURCE_DIR KBATCH}

enterFreshWorkDir kbatch-qsub-native-job
copyForTestUser "$source_dir/examples/fib.pbs"

qsub_output=$(asTestUser "$kbatch" qsub fib.pbs) || fail "kbatch qsub exited with status $?"
job_id=$(jobIdFromQsubOutput "$qsub_output")
waitForJobWithQstat "$job_id"

writeSubmittedScript "$job_id" submitted.pbs
cmp fib.pbs submitted.pbs || fail "kbatch qsub changed a job that needs no container"
expectJobSucceededWithOutput "$job_id" "$kFibOutput"
echo "job $job_id: fib.pbs passed through kbatch qsub unchanged and printed: $kFibOutput"
