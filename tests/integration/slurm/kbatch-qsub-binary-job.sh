#!/bin/bash
# The paper's examples/fib-binary.pbs (`#PBS -B a.out`) submitted with `kbatch qsub` as the test user.
# kbatch rewrites it (contract 2 in the design: directives kept, `-B` recorded as `#KBATCH
# --from-binary`, a `#KBATCH-REWRITTEN v1 sha256=` marker, the body replaced by one `kbatch exec` call
# carrying the original body in base64) and hands it to the real `qsub`; the job then runs a.out in a
# container built from its dependencies and prints the first six Fibonacci numbers.
# usage: kbatch-qsub-binary-job.sh SOURCE_DIR KBATCH
# shellcheck source=tests/integration/slurm/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
source_dir=${1:?usage: kbatch-qsub-binary-job.sh SOURCE_DIR KBATCH}
kbatch=${2:?usage: kbatch-qsub-binary-job.sh SOURCE_DIR KBATCH}

enterFreshWorkDir kbatch-qsub-binary-job
copyForTestUser "$source_dir/examples/fib-binary.pbs"
copyForTestUser "$source_dir/examples/fib.cpp"
asTestUser g++ -O2 -o a.out fib.cpp || fail "cannot compile examples/fib.cpp"

qsub_output=$(asTestUser "$kbatch" qsub fib-binary.pbs) || fail "kbatch qsub exited with status $?"
job_id=$(jobIdFromQsubOutput "$qsub_output")
waitForJobWithQstat "$job_id"

# The script the batch system received is kbatch's rewrite, not the original.
writeSubmittedScript "$job_id" submitted.pbs
if cmp -s fib-binary.pbs submitted.pbs; then fail "kbatch qsub submitted fib-binary.pbs unchanged"; fi
head -n 1 submitted.pbs | grep -qx '#!/bin/bash' || fail "the rewritten script lost its shebang"
for directive in '#PBS -l nodes=1:ppn=1' '#PBS -N exampleJob' '#KBATCH --from-binary a.out'; do
  grep -qxF "$directive" submitted.pbs || fail "the rewritten script lacks the line '$directive'"
done
if grep -q '^#PBS -B' submitted.pbs; then fail "the rewritten script still has '#PBS -B', which stock qsub rejects"; fi
marker_hash=$(sed -n 's/^#KBATCH-REWRITTEN v1 sha256=\([0-9a-f]\{64\}\)$/\1/p' submitted.pbs)
[ -n "$marker_hash" ] || fail "the rewritten script has no '#KBATCH-REWRITTEN v1 sha256=<hex>' marker"
# The path and the shell may be shell-quoted.
exec_line=$(grep -E "^exec '?$kbatch'? exec --job-body=base64 .* -- '?/bin/bash'? <<'KBATCH_JOB_BODY_[0-9a-f]{16}'\$" submitted.pbs) ||
  fail "the rewritten script has no 'exec $kbatch exec --job-body=base64 ... -- /bin/bash <<KBATCH_JOB_BODY_<hex>' line"
delimiter=${exec_line##*<<\'}
delimiter=${delimiter%\'}
# The heredoc carries the original body: decode it and check it against the marker and the original.
awk -v delimiter="$delimiter" 'carrying && $0 == delimiter { exit } carrying { print }
    /^exec .* --job-body=base64 / { carrying = 1 }' submitted.pbs |
  base64 --decode >carried-body || fail "the job body in the rewritten script is not valid base64"
[ "$(sha256sum <carried-body | cut -d' ' -f1)" = "$marker_hash" ] ||
  fail "the sha256 in the marker does not match the body the rewritten script carries"
grep -qx './a.out' carried-body || fail "the carried body lost the job's command './a.out'"
original_size=$(stat -c %s fib-binary.pbs)
body_size=$(stat -c %s carried-body)
tail -c "$body_size" fib-binary.pbs | cmp -s - carried-body ||
  fail "the carried body is not the end of fib-binary.pbs byte for byte ($body_size of $original_size bytes)"

expectJobSucceededWithOutput "$job_id" "$kFibOutput"
echo "job $job_id: fib-binary.pbs was rewritten by kbatch qsub and a.out printed: $kFibOutput"
