#!/bin/bash
# The paper's examples/fib.pbs, submitted unchanged with Slurm's TORQUE `qsub` as the test user,
# waited for with `qstat`: the batch system stores the script byte for byte and the job prints the
# first six Fibonacci numbers.
# usage: fib-with-real-qsub.sh SOURCE_DIR
# shellcheck source=tests/integration/slurm/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
source_dir=${1:?usage: fib-with-real-qsub.sh SOURCE_DIR}

enterFreshWorkDir fib-with-real-qsub
copyForTestUser "$source_dir/examples/fib.pbs"

job_id=$(jobIdFromQsubOutput "$(asTestUser qsub fib.pbs)")
waitForJobWithQstat "$job_id"

writeSubmittedScript "$job_id" submitted.pbs
cmp fib.pbs submitted.pbs || fail "the batch system stored a different script than fib.pbs"
[ "$(jobField "$job_id" UserId)" = "$KBATCH_TEST_USER($(id -u "$KBATCH_TEST_USER"))" ] ||
  fail "job $job_id ran as '$(jobField "$job_id" UserId)', not as $KBATCH_TEST_USER"
expectJobSucceededWithOutput "$job_id" "$kFibOutput"
[ "$(basename "$(jobOutputFile "$job_id")")" = "fib.pbs.o$job_id" ] ||
  fail "qsub named the output $(jobOutputFile "$job_id"), not fib.pbs.o$job_id as TORQUE's qsub does"
echo "job $job_id: fib.pbs ran unchanged as $KBATCH_TEST_USER and printed: $kFibOutput"
