#!/bin/sh
# The submit-filter and qsub contracts through the real kbatch executable.
# Usage: cli_contracts_test.sh KBATCH FIXTURE_DIR
set -u
kbatch=$1
fixtures=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    echo "ok - $1"
  else
    echo "FAIL - $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}

# The container fixture without its binds of /scratch and /datasets: the filter now checks the
# site policy, and the built-in default (what a machine without /etc/kbatch/policy.yaml has)
# allows binds only under $HOME, $PBS_O_WORKDIR, $TMPDIR and the job's scratch directory.
grep -v '^#KBATCH --bind' "$fixtures/container.pbs" > "$work/container.pbs"

# 1. A native job passes through the filter byte for byte, exit 0.
"$kbatch" submit-filter -q batch "$fixtures/fib.pbs" < "$fixtures/fib.pbs" > "$work/out"
check "native filter exit" 0 $?
cmp -s "$fixtures/fib.pbs" "$work/out"
check "native filter output identical" 0 $?

# 2. qsub's -h, -v, -q reach the filter as qsub options, not as kbatch's.
"$kbatch" submit-filter -h -v A=1 -q x < "$fixtures/fib.pbs" > "$work/out"
check "qsub options after kbatch's" 0 $?
cmp -s "$fixtures/fib.pbs" "$work/out"
check "qsub options do not change the script" 0 $?

# 3. A container job is rewritten and the body decodes back exactly.
"$kbatch" submit-filter --kbatch-path=/usr/bin/kbatch < "$work/container.pbs" > "$work/out"
check "container filter exit" 0 $?
delimiter=$(sed -n "s/^exec .*<<'\(KBATCH_JOB_BODY_[0-9a-f]*\)'\$/\1/p" "$work/out")
sed -n "/^exec /,/^$delimiter\$/p" "$work/out" | sed '1d;$d' | base64 -d > "$work/body"
sed -n '/^set -euo pipefail/,$p' "$fixtures/container.pbs" > "$work/expected_body"
cmp -s "$work/expected_body" "$work/body"
check "rewritten body decodes to the original" 0 $?
"$kbatch" rewrite --kbatch-path=/usr/bin/kbatch "$work/out" | cmp -s - "$work/out"
check "rewrite is idempotent" 0 $?

# 4. A malformed #PBS line in a native job: failing closed rejects it with 255 and a message
#    naming STDIN:3; failing open passes the original on for qsub to judge its own directive.
"$kbatch" submit-filter --on-error=closed < "$fixtures/malformed_walltime.pbs" > "$work/out" 2> "$work/err"
check "malformed script rejected" 255 $?
check "nothing on stdout when rejected" 0 "$(wc -c < "$work/out" | tr -d ' ')"
grep -q "STDIN:3" "$work/err"
check "message names the line" 0 $?
"$kbatch" submit-filter --on-error=open < "$fixtures/malformed_walltime.pbs" > "$work/out" 2> "$work/err"
check "malformed native script, failing open" 0 $?
cmp -s "$fixtures/malformed_walltime.pbs" "$work/out"
check "failing open passes the malformed original" 0 $?
# A malformed script that asks for a container is rejected even failing open.
printf '#KBATCH --image debian:12\n#PBS -l walltime=ten\necho\n' |
  "$kbatch" submit-filter --on-error=open > "$work/out" 2>/dev/null
check "malformed container script rejected failing open" 255 $?

# 5. An internal failure: closed rejects (255), open passes the original through.
"$kbatch" submit-filter --on-error=closed --kbatch-path=relative < "$work/container.pbs" > "$work/out" 2>/dev/null
check "internal failure, closed" 255 $?
"$kbatch" submit-filter --on-error=open --kbatch-path=relative < "$work/container.pbs" > "$work/out" 2>/dev/null
check "internal failure, open" 0 $?
cmp -s "$work/container.pbs" "$work/out"
check "fail-open passes the original" 0 $?

# 6. kbatch qsub runs a stand-in qsub with -B consumed and passes its status through.
cat > "$work/qsub" <<'QSUB'
#!/bin/sh
printf '%s\n' "$@" > "$(dirname "$0")/args"
for last; do :; done
cp "$last" "$(dirname "$0")/submitted"
echo 42.server
exit 5
QSUB
chmod +x "$work/qsub"
output=$(KBATCH_QSUB="$work/qsub" "$kbatch" qsub -B ./a.out -N fb "$fixtures/fib.pbs")
check "qsub exit status passes through" 5 $?
check "qsub stdout passes through" "42.server" "$output"
check "qsub argv without -B" "-N fb fib.pbs" "$(head -2 "$work/args" | tr '\n' ' ')$(basename "$(sed -n 3p "$work/args")")"
grep -q '^#KBATCH --from-binary ./a.out$' "$work/submitted"
check "submitted script records the binary" 0 $?
grep -q -- '-B' "$work/args"
check "stock qsub never sees -B" 1 $?

# 7. kbatch qsub refuses to run itself as the real qsub.
KBATCH_QSUB_ACTIVE=1 "$kbatch" qsub "$fixtures/fib.pbs" 2>/dev/null
check "recursion refused" 125 $?

[ "$failures" -eq 0 ]
