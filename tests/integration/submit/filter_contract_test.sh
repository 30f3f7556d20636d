#!/bin/bash
# filter_contract_test.sh FILTER_EXECUTABLE KBATCH FIXTURE_DIR
# TORQUE's SUBMITFILTER contract with the site policy, through the real executable.
set -u
filter_exe=$1
kbatch=$2
fixtures=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0
check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    echo "ok - $1"
  else
    echo "FAIL - $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}
contains() {  # contains DESCRIPTION FILE EXTENDED_REGEX
  if grep -Eq -- "$3" "$2"; then
    echo "ok - $1"
  else
    echo "FAIL - $1: no /$3/ in $(cat "$2")"
    failures=$((failures + 1))
  fi
}

# torque.cfg names a program; sites point it at a wrapper that runs the filter.
make_filter() {  # make_filter NAME [kbatch options...]
  local name=$1
  shift
  printf '#!/bin/sh\nexec %s submit-filter %s "$@"\n' "$filter_exe" "$*" > "$work/$name"
  chmod +x "$work/$name"
}
# What TORQUE's qsub does with SUBMITFILTER: popen("FILTER ARGS... >TMP", "w"), the script on the
# pipe, then WEXITSTATUS: 255 rejected, other non-zero aborted, 0 read TMP as the new script.
# Prints qsub's verdict; the filter's stderr goes to $work/err.
torque_qsub() {  # torque_qsub FILTER SCRIPT QSUB_ARGS...
  local filter=$1 script=$2
  shift 2
  rm -f "$work/out" "$work/err"
  sh -c "$filter $* >$work/out" < "$script" 2> "$work/err"
  local status=$?
  if [ "$status" -eq 255 ]; then
    echo "rejected"
  elif [ "$status" -ne 0 ]; then
    echo "aborted $status"
  else
    echo "submitted"
  fi
}

overlay=$work/overlay.yaml
export KBATCH_POLICY_OVERLAY=$overlay
cat > "$overlay" <<'YAML'
# Only the site's own registry, and at most an hour.
images:
  allowed: ["registry.example.org/**"]
resources: {max_walltime: "1:00:00"}
compute_nodes:
  missing_libraries: ["libseccomp.so.*"]
YAML
make_filter filter
make_filter filter-open --on-error=open
make_filter filter-closed --on-error=closed
make_filter filter-detect --detect

# 1. A native job passes byte for byte.
check "native job submitted" submitted "$(torque_qsub "$work/filter" "$fixtures/fib.pbs" -q batch fib.pbs)"
cmp -s "$fixtures/fib.pbs" "$work/out"
check "native job unchanged" 0 $?
check "native job: nothing on stderr" 0 "$(wc -c < "$work/err" | tr -d ' ')"

# 2. An allowed container job is rewritten.
printf '#!/bin/bash\n#PBS -N ok\n#KBATCH --image registry.example.org/hpc/app:1\necho "$HOME"\n' > allowed.pbs
check "allowed image submitted" submitted "$(torque_qsub "$work/filter" allowed.pbs -N ok)"
contains "allowed job rewritten" "$work/out" '^#KBATCH-REWRITTEN v1 sha256=[0-9a-f]{64}$'

# 3. A denied image: rejected (255), one stderr line naming the overlay's rule, nothing on stdout.
printf '#!/bin/bash\n#PBS -N bad\n#KBATCH --image docker.io/library/ubuntu:22.04\necho hi\n' > denied.pbs
check "denied image rejected" rejected "$(torque_qsub "$work/filter" denied.pbs)"
check "denied: nothing on stdout" 0 "$(wc -c < "$work/out" | tr -d ' ')"
check "denied: one stderr line" 1 "$(wc -l < "$work/err" | tr -d ' ')"
contains "denied: the first denial with its file:line" "$work/err" \
  "refused by the site policy: $overlay:3:[0-9]+: deny +images.allowed: image docker.io/library/ubuntu:22.04"
# Failing open changes nothing for a denial.
check "denied even failing open" rejected "$(torque_qsub "$work/filter-open" denied.pbs)"

# 4. The directives reach the policy: -B job whose walltime is above the ceiling.
printf '#!/bin/bash\n#PBS -l walltime=2:00:00\n#PBS -B ./a.out\n./a.out\n' > long.pbs
check "walltime above ceiling rejected" rejected "$(torque_qsub "$work/filter" long.pbs)"
contains "walltime denial" "$work/err" "refused by the site policy: $overlay:4:[0-9]+: deny +resources.max_walltime: walltime 7200 s"
# ... and so do qsub's own arguments, as TORQUE passes them to the filter.
check "command-line walltime within ceiling" submitted \
  "$(torque_qsub "$work/filter" long.pbs -l walltime=30:00)"

# 5. An unreadable policy: fail closed rejects with one line; fail open passes the original.
printf 'images: [unclosed\n' > "$overlay"
check "broken policy, closed" rejected "$(torque_qsub "$work/filter-closed" allowed.pbs)"
check "broken policy, closed: one line" 1 "$(wc -l < "$work/err" | tr -d ' ')"
contains "broken policy, closed: names the file" "$work/err" "$overlay:[0-9]+:[0-9]+.*fails closed"
check "broken policy, open" submitted "$(torque_qsub "$work/filter-open" allowed.pbs)"
cmp -s allowed.pbs "$work/out"
check "broken policy, open: the original passed on" 0 $?
contains "broken policy, open: a warning" "$work/err" "fails open"
check "broken policy, native job untouched" submitted "$(torque_qsub "$work/filter-closed" "$fixtures/fib.pbs")"
cmp -s "$fixtures/fib.pbs" "$work/out"
check "broken policy: native job unchanged" 0 $?

# 6. --detect: a binary needing a library the compute nodes lack runs in a dependency image. The
#    filter and `kbatch qsub` share this detector with `kbatch rewrite --detect`, which is used
#    here because the submit commands then also build that image (H-deps' submission build).
cat > "$overlay" <<'YAML'
compute_nodes:
  missing_libraries: ["libseccomp.so.*"]
YAML
cp "$kbatch" solver          # an ELF file that needs libseccomp
cp /bin/true tool            # one that needs only libc
printf '#!/bin/bash\n#PBS -N det\n./tool\nmpirun -np 2 ./solver in.dat\n' > detect.pbs
"$filter_exe" rewrite --detect --kbatch-path=/usr/bin/kbatch detect.pbs > "$work/out" 2> "$work/err"
check "detect exit" 0 $?
contains "detected binary recorded" "$work/out" '^#KBATCH --from-binary \./solver$'
contains "detected job runs through kbatch exec" "$work/out" '^exec /usr/bin/kbatch exec --job-body=base64 --from-binary \./solver '
"$filter_exe" rewrite --kbatch-path=/usr/bin/kbatch detect.pbs > "$work/out"
cmp -s detect.pbs "$work/out"
check "no --detect (and none in the policy): unchanged" 0 $?
printf '#!/bin/bash\n./tool\n' > libc-only.pbs
"$filter_exe" rewrite --detect --kbatch-path=/usr/bin/kbatch libc-only.pbs > "$work/out"
cmp -s libc-only.pbs "$work/out"
check "libc-only binary stays native" 0 $?
# The filter's own --detect flag reaches the same detector: a job whose binary needs nothing
# missing passes through it byte for byte.
check "filter --detect, libc-only" submitted "$(torque_qsub "$work/filter-detect" libc-only.pbs)"
cmp -s libc-only.pbs "$work/out"
check "filter --detect: libc-only unchanged" 0 $?

# 7. kbatch qsub: a denied job exits 1 with the same line, and the real qsub never runs.
cat > "$overlay" <<'YAML'
images:
  allowed: ["registry.example.org/**"]
YAML
printf '#!/bin/sh\necho ran > "%s/qsub-ran"\necho 1.server\n' "$work" > fake-qsub
chmod +x fake-qsub
KBATCH_QSUB=$work/fake-qsub "$filter_exe" qsub denied.pbs > "$work/out" 2> "$work/err"
check "kbatch qsub denied exit" 1 $?
check "kbatch qsub denied: qsub never ran" no "$([ -e "$work/qsub-ran" ] && echo yes || echo no)"
check "kbatch qsub denied: one line" 1 "$(wc -l < "$work/err" | tr -d ' ')"
contains "kbatch qsub denied: the rule" "$work/err" "refused by the site policy: $overlay:2:[0-9]+: deny +images.allowed"
KBATCH_QSUB=$work/fake-qsub "$filter_exe" qsub allowed.pbs > "$work/out" 2> "$work/err"
check "kbatch qsub allowed exit" 0 $?
check "kbatch qsub allowed: qsub ran" 1.server "$(cat "$work/out")"

[ "$failures" -eq 0 ]
