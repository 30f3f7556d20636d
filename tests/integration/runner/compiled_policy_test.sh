#!/bin/bash
# The compiled site policy (/etc/kbatch/policy.yaml.compiled, `kbatch policy compile`), as a job
# meets it: kbatch exec as the test user under a site policy laid over /etc. A current compiled
# policy decides as the YAML does, naming the YAML's lines; one compiled from another text (the
# admin edited the policy afterwards) or writable by others is ignored, and the YAML decides.
# usage: compiled_policy_test.sh KBATCH ROOTFS USER SCRATCH   (as root)
set -uo pipefail
KBATCH=${1:?usage: compiled_policy_test.sh KBATCH ROOTFS USER SCRATCH}
ROOTFS=${2:?}
TEST_USER=${3:?}
SCRATCH=${4:?}
WITH_POLICY=$(cd "$(dirname "$0")/.." && pwd)/with-site-policy.sh

fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH" && chmod 755 "$SCRATCH"
cd "$SCRATCH" || fail "cannot enter $SCRATCH"

# The strict policy allows only images under /nonexistent: the test root filesystem is refused.
cat > strict.yaml <<'YAML'
version: 1
images:
  allowed:
    - "/nonexistent/**"
YAML
cat > permissive.yaml <<'YAML'
version: 1
images:
  allowed: ["**"]
YAML
# as_user OPTIONS... -- CMD: CMD as the test user under the strict site policy.
exec_job() {
  "$WITH_POLICY" "$@" strict.yaml runuser -u "$TEST_USER" -- "$KBATCH" exec "$ROOTFS" -- /bin/true
}

echo "== current: the compiled policy is used and refuses as the YAML does, naming its line"
"$WITH_POLICY" --compile "$KBATCH" strict.yaml "$KBATCH" policy check > check.out ||
  fail "policy check failed: $(cat check.out)"
grep -q "policy.yaml.compiled is current" check.out || fail "the compiled policy is not current: $(cat check.out)"
exec_job --compile "$KBATCH" 2> current.err && fail "a job the strict policy refuses ran"
grep -q "/etc/kbatch/policy.yaml:3" current.err || fail "the refusal does not name the YAML's line: $(cat current.err)"
"$WITH_POLICY" --compile "$KBATCH" strict.yaml runuser -u "$TEST_USER" -- \
  "$KBATCH" -vv exec "$ROOTFS" -- /bin/true 2> current-debug.err
grep -q "parsing the YAML" current-debug.err && fail "a current compiled policy was not used: $(cat current-debug.err)"

echo "== current: the job's seccomp filter is the one kbatch policy compile compiled"
grep -q "with its seccomp filter compiled by libseccomp" check.out ||
  fail "policy check does not report the precompiled seccomp filter: $(cat check.out)"
"$WITH_POLICY" --compile "$KBATCH" permissive.yaml runuser -u "$TEST_USER" -- \
  "$KBATCH" -vv exec "$ROOTFS" -- sh -c 'grep Seccomp: /proc/self/status' > precompiled.out 2> precompiled.err ||
  fail "a job under the compiled permissive policy failed: $(cat precompiled.err)"
grep -q "precompiled by kbatch policy compile" precompiled.err ||
  fail "the precompiled seccomp filter was not used: $(cat precompiled.err)"
grep -q "Seccomp:.*2" precompiled.out || fail "the job runs without its filter: $(cat precompiled.out)"
# Under the YAML alone (no compiled policy) the filter is compiled at the job's start: the check
# above can fail.
"$WITH_POLICY" permissive.yaml runuser -u "$TEST_USER" -- \
  "$KBATCH" -vv exec "$ROOTFS" -- true 2> yaml-only.err || fail "the job failed: $(cat yaml-only.err)"
grep -q "precompiled by kbatch policy compile" yaml-only.err &&
  fail "a precompiled filter was reported without a compiled policy"

echo "== stale: compiled from a permissive text, the strict YAML still decides"
"$WITH_POLICY" --compile "$KBATCH" --compiled-from permissive.yaml strict.yaml "$KBATCH" policy check > stale.out
grep -q "not used: the policy file changed since it was compiled" stale.out ||
  fail "policy check does not report the stale compiled policy: $(cat stale.out)"
exec_job --compile "$KBATCH" --compiled-from permissive.yaml 2> stale.err &&
  fail "a stale permissive compiled policy let a refused job run"
grep -q "/etc/kbatch/policy.yaml:3" stale.err || fail "stale: unexpected refusal: $(cat stale.err)"
# The same permissive policy, current, does let the job run: the check above can fail.
"$WITH_POLICY" --compile "$KBATCH" permissive.yaml runuser -u "$TEST_USER" -- "$KBATCH" exec "$ROOTFS" -- /bin/true ||
  fail "the permissive policy refuses the job: the stale check proves nothing"

echo "== untrusted: a compiled policy writable by others is ignored"
"$WITH_POLICY" --compile "$KBATCH" --compiled-mode 0666 strict.yaml "$KBATCH" policy check > untrusted.out
grep -q "not used:.*writable" untrusted.out || fail "policy check does not report the untrusted compiled policy: $(cat untrusted.out)"
exec_job --compile "$KBATCH" --compiled-mode 0666 2> untrusted.err && fail "untrusted: the refused job ran"

echo "compiled policy: all checks passed"
