#!/bin/bash
# The bash completion (packaging/completion/kbatch), driven as bash drives it: the script is sourced
# in a fresh non-interactive bash, `complete -p` must name its function for kbatch and
# kbatch-submit, and each case sets COMP_WORDS/COMP_CWORD, calls the function and compares
# COMPREPLY with what the built binary's own help lists.
#   completion_test.sh COMPLETION_FILE BUILD_DIR
set -euo pipefail
completion=${1:?usage: completion_test.sh COMPLETION_FILE BUILD_DIR}
build=${2:?usage: completion_test.sh COMPLETION_FILE BUILD_DIR}
[ -x "$build/kbatch" ] || { echo "FAIL: no $build/kbatch: build it first" >&2; exit 1; }
export PATH="$build:$PATH" COMPLETION=$completion

bash --norc --noprofile <<'BASH'
set -uo pipefail
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
source "$COMPLETION" || { echo "FAIL: sourcing $COMPLETION failed" >&2; exit 1; }

for program in kbatch kbatch-submit; do
  registered=$(complete -p "$program" 2>&1)
  [ "$registered" = "complete -o default -F _kbatch $program" ] ||
    fail "complete -p $program says '$registered'"
done

# expectCompletion "EXPECTED WORDS" WORD... : the last word is the one under the cursor.
expectCompletion() {
  local expected=$1
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=(unset)
  _kbatch
  local got="${COMPREPLY[*]}"
  if [ "$got" = "$expected" ]; then
    echo "ok: [$*] -> [$got]"
  else
    fail "[$*]: completed to [$got], expected [$expected]"
  fi
}

# Subcommands: exactly the list `kbatch help` prints, in its order.
all_commands=$(kbatch help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' | xargs)
[ -n "$all_commands" ] || fail "kbatch help lists no subcommands"
for command in exec run policy; do
  [[ " $all_commands " == *" $command "* ]] || fail "kbatch help does not list $command: $all_commands"
done
expectCompletion "$all_commands" kbatch ""
expectCompletion "exec" kbatch ex
expectCompletion "run" kbatch -v ru
# Every match, in the order of the help.
expectCompletion "$(printf '%s\n' $all_commands | grep '^p' | xargs)" kbatch p
# Options of a subcommand, from its --help.
expectCompletion "--workdir" kbatch exec --wo
expectCompletion "--writable-tmpfs" kbatch run --wr
# An option's values from "--backend TEXT:{local,k8s}"; an option's value is skipped.
expectCompletion "local k8s" kbatch exec --backend ""
expectCompletion "k8s" kbatch run --backend k
expectCompletion "--image" kbatch exec --bind /tmp --backend k8s --ima
# A flag takes no value: what follows it is completed as usual.
expectCompletion "$all_commands" kbatch -v ""
expectCompletion "local k8s" kbatch exec --fakeroot --backend ""
# Nested subcommands, from `kbatch policy --help`.
policy_commands=$(kbatch policy --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' | xargs)
[ -n "$policy_commands" ] || fail "kbatch policy --help lists no subcommands"
expectCompletion "$policy_commands" kbatch policy ""
expectCompletion "explain export-k8s" kbatch policy exp
expectCompletion "explain" kbatch policy expl
explain_has_image=$(kbatch policy explain --help | grep -c -- '--image') || true
[ "$explain_has_image" -gt 0 ] || fail "kbatch policy explain --help has no --image to complete"
expectCompletion "--image" kbatch policy explain --ima
# After `--`, the words belong to the job: nothing from kbatch (bash's default completion).
expectCompletion "" kbatch exec --image x -- ls --w
# kbatch-submit completes its own, smaller command set.
submit_commands=$(kbatch-submit --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' | xargs)
[ -n "$submit_commands" ] || fail "kbatch-submit --help lists no subcommands"
case " $submit_commands " in *" exec "*) fail "kbatch-submit unexpectedly lists exec" ;; esac
expectCompletion "$submit_commands" kbatch-submit ""

[ "$failures" -eq 0 ] || { echo "$failures completion case(s) failed" >&2; exit 1; }
echo "all completion cases passed"
BASH
