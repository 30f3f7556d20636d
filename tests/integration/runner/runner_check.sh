#!/bin/bash
# One runner check, run as the unprivileged test user against a container runtime:
#   runner_check.sh RUNTIME CHECK
# RUNTIME is `kbatch` (kbatch exec / kbatch run) or `ch-run` (Charliecloud, the peer: the same
# assertion run under a runtime that lacks a feature must fail, which CTest records as WILL_FAIL).
# Environment (set by CMakeLists.txt): KBATCH, ROOTFS, TEST_USER, PROBE, EXAMPLES, FIB_BINARY,
# SCRATCH (a per-test directory this script creates).
#
# Every check ends in an assertion that can fail: `expect` compares and exits 1 with both values.
set -uo pipefail
runtime=${1:?usage: runner_check.sh kbatch|ch-run CHECK}
check=${2:?usage: runner_check.sh kbatch|ch-run CHECK}
: "${KBATCH:?}" "${ROOTFS:?}" "${TEST_USER:?}" "${SCRATCH:?}"

uid=$(id -u "$TEST_USER")
gid=$(id -g "$TEST_USER")

fail() { echo "FAIL [$runtime $check]: $*" >&2; exit 1; }
expect() {  # expect WHAT ACTUAL EXPECTED
  if [ "$2" != "$3" ]; then fail "$1: got '$2', expected '$3'"; fi
  echo "ok: $1 = '$2'"
}

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
chown "$TEST_USER:" "$SCRATCH"
# SCRATCH plays the job's scratch directory, which the built-in default policy lets jobs bind.
export KBATCH_JOB_SCRATCH=$SCRATCH
cd "$SCRATCH" || exit 1

as_user() { runuser -u "$TEST_USER" -- env USER="$TEST_USER" "$@"; }

# container [RUNTIME OPTIONS --] CMD...: runs CMD in ROOTFS with the runtime under test; SCRATCH is
# bound at /mnt (read-write) and is the working directory.
container() {
  case $runtime in
    kbatch) as_user "$KBATCH" exec --bind "$SCRATCH:/mnt" --workdir /mnt "$ROOTFS" -- "$@" ;;
    ch-run) as_user ch-run -b "$SCRATCH:/mnt" -c /mnt "$ROOTFS" -- "$@" ;;
    *) fail "unknown runtime $runtime" ;;
  esac
}

# setLauncher: `launcher` becomes the runtime's command line up to the job's command, with SCRATCH
# at /mnt as `container` has it, for checks that start the runtime themselves (setpriv, setsid).
setLauncher() {
  if [ "$runtime" = kbatch ]; then
    launcher=("$KBATCH" exec --bind "$SCRATCH:/mnt" --workdir /mnt "$ROOTFS" --)
  else
    launcher=(ch-run -b "$SCRATCH:/mnt" -c /mnt "$ROOTFS" --)
  fi
}

# How a process ended, as its parent sees it: "exit N" or "signal N" (python distinguishes a
# death by signal from an exit status above 128).
how_it_ended() {
  python3 -c '
import subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(f"signal {-rc}" if rc < 0 else f"exit {rc}")' "$@"
}

status_line() { grep -E "^$1:" | awk '{print $2}'; }

case $check in
  listing2)  # the paper's Listing 2: the Fibonacci job script
    if [ "$runtime" = kbatch ]; then
      cp "$EXAMPLES/fib.pbs" "$SCRATCH/" && chown "$TEST_USER:" "$SCRATCH/fib.pbs"
      out=$(as_user "$KBATCH" run fib.pbs) || fail "kbatch run fib.pbs failed"
    else
      cp "$EXAMPLES/fib.pbs" "$SCRATCH/"
      out=$(container bash /mnt/fib.pbs) || fail "fib.pbs failed"
    fi
    expect "fib.pbs output" "$out" "0 1 1 2 3 5 "
    ;;
  listing3)  # the paper's Listing 3: the compiled Fibonacci binary, `#PBS -B a.out`
    cp "$FIB_BINARY" "$SCRATCH/a.out" && cp "$EXAMPLES/fib-binary.pbs" "$SCRATCH/"
    chown "$TEST_USER:" "$SCRATCH"/*
    out=$(container ./a.out) || fail "a.out failed"
    expect "a.out output" "$out" "0 1 1 2 3 5 "
    if [ "$runtime" = kbatch ]; then
      out=$(as_user "$KBATCH" run fib-binary.pbs) || fail "kbatch run fib-binary.pbs failed"
      expect "kbatch run fib-binary.pbs output (dependency image)" "$out" "0 1 1 2 3 5 "
      out=$(base64 <<<'./a.out' |
            as_user "$KBATCH" exec --job-body=base64 --from-binary a.out -- /bin/bash) ||
        fail "kbatch exec --job-body --from-binary failed"
      expect "rewritten-job form (--job-body, --from-binary)" "$out" "0 1 1 2 3 5 "
    fi
    ;;
  status)  # capabilities, no_new_privs and seccomp as the kernel reports them
    status=$(container cat /proc/self/status) || fail "cannot read /proc/self/status"
    expect "CapEff" "$(status_line CapEff <<<"$status")" "0000000000000000"
    expect "CapPrm" "$(status_line CapPrm <<<"$status")" "0000000000000000"
    expect "CapBnd" "$(status_line CapBnd <<<"$status")" "0000000000000000"
    expect "CapAmb" "$(status_line CapAmb <<<"$status")" "0000000000000000"
    expect "NoNewPrivs" "$(status_line NoNewPrivs <<<"$status")" "1"
    expect "Seccomp" "$(status_line Seccomp <<<"$status")" "2"
    ;;
  uid)  # the job runs as the caller, not as root
    expect "uid" "$(container id -u)" "$uid"
    expect "gid" "$(container id -g)" "$gid"
    ;;
  user_name)  # the job's user has a name inside, and the image's own accounts are still there
    name=$(id -un "$TEST_USER")
    group=$(id -gn "$TEST_USER")
    grep -q "^$name:" "$ROOTFS/etc/passwd" &&
      fail "the test image already names $name: the check would prove nothing"
    expect "whoami" "$(container whoami)" "$name"
    expect "id -gn" "$(container id -gn)" "$group"
    expect "root in the image's passwd" "$(container grep -c '^root:' /etc/passwd)" "1"
    # ch-run binds a writable file of its own there; kbatch's is read-only, like the image.
    if [ "$runtime" = kbatch ]; then
      container sh -c 'echo x >>/etc/passwd' 2>/dev/null && fail "the job could write /etc/passwd"
      # With --writable-tmpfs the image takes writes that vanish with the container; so does it.
      expect "a line appended under --writable-tmpfs" \
        "$(as_user "$KBATCH" exec --writable-tmpfs "$ROOTFS" -- sh -c 'echo extra:x:9:9::/:/bin/sh >>/etc/passwd && grep -c ^extra: /etc/passwd')" "1"
      grep -q '^extra:' "$ROOTFS/etc/passwd" && fail "a write under --writable-tmpfs reached the image"
      expect "the image's own line count plus one" \
        "$(container wc -l </dev/null /etc/passwd | awk '{print $1}')" \
        "$(( $(wc -l <"$ROOTFS/etc/passwd") + 1 ))"
    fi
    echo "ok: whoami is $name, the image's root entry is there"
    ;;
  pid_namespace)  # host processes are invisible
    # setpriv execs, so $! is the marker process itself; its output must not hold our pipes.
    setpriv --reuid "$uid" --regid "$gid" --clear-groups sleep 424242 </dev/null >/dev/null 2>&1 &
    marker=$!
    sleep 0.2
    seen=$(container sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " "')
    kill "$marker" 2>/dev/null; wait "$marker" 2>/dev/null
    # The listing must at least show the reading shell itself, or the check proves nothing.
    grep -q "cat /proc" <<<"$seen" || fail "could not list the container's own processes: '$seen'"
    if grep -q 424242 <<<"$seen"; then fail "a host process (sleep 424242) is visible inside"; fi
    count=$(container sh -c 'ls -d /proc/[0-9]* | wc -l')
    [ "$count" -le 5 ] || fail "$count processes visible inside, expected only the container's"
    echo "ok: $count processes visible, the host's marker is not"
    ;;
  pid1)  # the namespace's PID 1 is kbatch-init, not the job, and the job cannot reach into it
    [ "$runtime" = kbatch ] || fail "pid1 checks kbatch's own init"
    expect "PID 1" "$(container sh -c 'tr "\0" "\n" </proc/1/cmdline | head -n 1')" "kbatch-init"
    # The job is not PID 1, so signals it sends itself act as outside a container (a namespace's
    # init would ignore them: pid_namespaces(7)).
    expect "the job's own pid" "$(container sh -c 'echo $$')" "2"
    expect "a job that sends itself SIGTERM" "$(how_it_ended setpriv --reuid "$uid" --regid "$gid" \
      --clear-groups env USER="$TEST_USER" "$KBATCH" exec "$ROOTFS" -- sh -c 'kill -TERM $$; sleep 5' \
      2>/dev/null)" "signal 15"
    # Same uid, same user namespace: only the init's non-dumpable flag keeps the job out of what
    # ptrace access guards (its memory, environment and descriptors).
    container sh -c 'cat /proc/1/environ' >/dev/null 2>&1 && fail "the job read the init's environ"
    container sh -c 'ls -l /proc/1/fd/' >/dev/null 2>&1 && fail "the job listed the init's descriptors"
    container sh -c 'ls -l /proc/2/fd/ >/dev/null' || fail "the job cannot list its own descriptors: test is void"
    # kbatch-init started by hand refuses instead of waiting for a job it does not have.
    out=$(as_user "$(dirname "$KBATCH")/libexec/kbatch/kbatch-init" 1 2 2>&1)
    expect "kbatch-init by hand: status" "$?" "125"
    [[ $out == *"started by kbatch only"* ]] || fail "kbatch-init by hand said: $out"
    echo "ok: PID 1 is kbatch-init, non-dumpable; the job is PID 2"
    ;;
  no_host_mounts)  # after the pivot nothing of the host's mount tree is left but the binds
    [ "$runtime" = kbatch ] || fail "no_host_mounts checks kbatch's own mount tree"
    points=$(container sh -c 'while read -r _ _ _ _ point _; do echo "$point"; done </proc/self/mountinfo')
    grep -qx / <<<"$points" || fail "no root in the container's mountinfo: test is void: $points"
    unexpected=$(grep -vxE '/|/proc|/sys(/.*)?|/dev(/.*)?|/tmp|/mnt|/etc/passwd|/etc/group' <<<"$points")
    [ -z "$unexpected" ] ||
      fail "mounts besides the image, /proc, /sys, /dev, /tmp, the bind and the account files: $unexpected"
    echo "ok: $(wc -l <<<"$points") mounts, none of the host's or the staging tree's"
    ;;
  seccomp_probe)  # every syscall the default profile denies fails with its errno; threads, fork, CMA work
    : "${PROBE:?}"
    cp "$PROBE" "$SCRATCH/probe" && chown "$TEST_USER:" "$SCRATCH/probe"
    container /mnt/probe || fail "the probe saw a denied syscall not fail with its errno, or a thread or fork fail"
    echo "ok: every denied syscall failed with its errno (EPERM; ENOSYS for clone3); threads, fork and cross-memory attach work"
    ;;
  setuid_binary)  # a setuid-root binary in the image gains nothing
    mode=$(container stat -c %A /usr/bin/id-setuid-root)
    [ "${mode:3:1}" = s ] || fail "the image's id-setuid-root is not setuid ($mode): test is void"
    expect "euid of a setuid-root binary" "$(container id-setuid-root -u)" "$uid"
    ;;
  readonly)  # writes outside the binds and the tmpfs fail
    container sh -c 'touch /etc/kbatch-test' 2>/dev/null && fail "wrote into the image's /etc"
    container sh -c 'touch /usr/bin/kbatch-test' 2>/dev/null && fail "wrote into /usr/bin"
    container sh -c 'touch /kbatch-test' 2>/dev/null && fail "wrote into /"
    [ -e "$ROOTFS/etc/kbatch-test" ] && fail "the image on disk was modified"
    container sh -c 'touch /tmp/ok' || fail "cannot write /tmp"
    container sh -c 'touch /mnt/ok' || fail "cannot write the read-write bind"
    [ -e "$SCRATCH/ok" ] || fail "the write to the bind did not reach the host"
    echo "ok: image read-only; /tmp and the bind writable"
    if [ "$runtime" = kbatch ]; then
      mkdir -p "$SCRATCH/ro" && chown "$TEST_USER:" "$SCRATCH/ro"
      as_user "$KBATCH" exec --bind "$SCRATCH/ro:/data:ro" "$ROOTFS" -- touch /data/x 2>/dev/null &&
        fail "wrote into a read-only bind"
      # The image's root directory: in a user namespace the overlay lets us write where the
      # directory is ours (the upper layer's root is), not into root-owned subdirectories.
      out=$(as_user "$KBATCH" exec --writable-tmpfs --workdir / "$ROOTFS" -- \
            sh -c 'touch /scratch && echo written') || fail "--writable-tmpfs write failed"
      expect "--writable-tmpfs" "$out" "written"
      [ -e "$ROOTFS/scratch" ] && fail "--writable-tmpfs modified the image on disk"
      echo "ok: read-only bind refused the write; --writable-tmpfs wrote to its tmpfs only"
    fi
    ;;
  exit_codes)  # exit status and death by signal pass through as the shell would show them
    for case in "exit 0:exit 0" "exit 1:exit 1" "exit 42:exit 42" \
                'kill -KILL $$:signal 9' 'kill -SEGV $$:signal 11'; do
      job=${case%%:*}
      want=${case#*:}
      if [ "$runtime" = kbatch ]; then
        got=$(how_it_ended setpriv --reuid "$uid" --regid "$gid" --clear-groups \
              env USER="$TEST_USER" "$KBATCH" exec "$ROOTFS" -- sh -c "$job" 2>/dev/null)
      else
        got=$(how_it_ended setpriv --reuid "$uid" --regid "$gid" --clear-groups \
              env USER="$TEST_USER" ch-run "$ROOTFS" -- sh -c "$job" 2>/dev/null)
      fi
      expect "job '$job' ends kbatch by" "$got" "$want"
    done
    # ... and the shell reports 128+N for death by signal N.
    shell_status=$(as_user bash -c '"$@" 2>/dev/null; echo $?' _ \
      $([ "$runtime" = kbatch ] && echo "$KBATCH exec" || echo ch-run) "$ROOTFS" -- sh -c 'kill -KILL $$')
    expect "shell status for SIGKILL" "$shell_status" "137"
    ;;
  signal_once)  # a signal reaches the job once, whether sent to the whole job or to kbatch alone
    # Batch systems signal a whole job (TORQUE its session, Slurm its cgroup, a terminal its
    # foreground group): the job has the signal then, and a forwarded copy would run its trap twice.
    cat > "$SCRATCH/job.sh" <<'JOB'
trap 'echo trapped >>/mnt/traps' TERM USR1
echo ready
i=0
while [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
echo finished
JOB
    chown "$TEST_USER:" "$SCRATCH/job.sh"
    setLauncher
    for target in group runtime; do
      rm -f "$SCRATCH/traps" "$SCRATCH/out"
      # setsid: the runtime leads a process group of its own, as a batch job's session would.
      setsid setpriv --reuid "$uid" --regid "$gid" --clear-groups env USER="$TEST_USER" \
        "${launcher[@]}" sh /mnt/job.sh > "$SCRATCH/out" 2>&1 &
      pid=$!
      for _ in $(seq 100); do grep -q ready "$SCRATCH/out" && break; sleep 0.1; done
      grep -q ready "$SCRATCH/out" || fail "the job never started: $(cat "$SCRATCH/out")"
      if [ "$target" = group ]; then kill -USR1 -- "-$pid"; else kill -USR1 "$pid"; fi
      wait "$pid"
      grep -q finished "$SCRATCH/out" || fail "the job did not run on after its trap: $(cat "$SCRATCH/out")"
      expect "traps run for one SIGUSR1 sent to the $target" "$(grep -c trapped "$SCRATCH/traps" 2>/dev/null)" "1"
    done
    ;;
  sigterm)  # SIGTERM to kbatch reaches the job, whose trap runs
    cat > "$SCRATCH/job.sh" <<'JOB'
trap 'echo trapped; exit 7' TERM
echo ready
sleep 100 &
wait
JOB
    chown "$TEST_USER:" "$SCRATCH/job.sh"
    setLauncher
    # setpriv execs (runuser would fork), so $! is the runtime's own process.
    setpriv --reuid "$uid" --regid "$gid" --clear-groups env USER="$TEST_USER" \
      "${launcher[@]}" bash /mnt/job.sh > "$SCRATCH/out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q ready "$SCRATCH/out" && break; sleep 0.1; done
    grep -q ready "$SCRATCH/out" || fail "the job never started: $(cat "$SCRATCH/out")"
    kill -TERM "$pid"
    wait "$pid"
    status=$?
    expect "exit status after SIGTERM" "$status" "7"
    grep -q trapped "$SCRATCH/out" || fail "the job's trap did not run: $(cat "$SCRATCH/out")"
    echo "ok: the trap ran"
    ;;
  no_leftover)  # a daemon the job leaves behind dies with the job
    container sh -c 'sleep 535353 </dev/null >/dev/null 2>&1 & echo started' >/dev/null ||
      fail "job failed"
    sleep 0.3
    left=$(pgrep -u "$uid" -f 'sleep 535353' || true)
    if [ -n "$left" ]; then
      kill $left 2>/dev/null  # our own test's processes, by pid
      fail "process(es) $left outlived the job"
    fi
    echo "ok: nothing outlived the job"
    ;;
  walltime)  # past --walltime the job gets SIGTERM (then SIGKILL)
    out=$(as_user "$KBATCH" exec --walltime 2 "$ROOTFS" -- \
          sh -c 'trap "echo terminated; exit 3" TERM; sleep 60 & wait' 2>/dev/null)
    status=$?
    expect "status after walltime" "$status" "3"
    expect "job output" "$out" "terminated"
    ;;
  errors)  # failures before the job starts: one clear line and 125/126/127
    err_case() {  # err_case WANT_STATUS WANT_TEXT ARGS...
      local want=$1 text=$2
      shift 2
      local err status
      err=$(as_user "$KBATCH" exec "$@" 2>&1 >/dev/null)
      status=$?
      expect "status of kbatch exec $*" "$status" "$want"
      [ "$(wc -l <<<"$err")" -eq 1 ] || fail "more than one line: $err"
      [[ $err == kbatch:*"$text"* ]] || fail "message '$err' lacks '$text'"
    }
    err_case 127 "no such directory, and no image of that name" "$SCRATCH/no-such-image" -- true
    err_case 127 "command not found in the image" "$ROOTFS" -- no-such-command
    err_case 126 "Permission denied" "$ROOTFS" -- /etc/passwd
    err_case 125 "No such file or directory" --bind "$SCRATCH/no-such-dir:/data" "$ROOTFS" -- true
    # The built-in default policy allows binds of the job's own directories only.
    err_case 125 "refused by the site policy" \
      --bind /usr/share:/data:ro "$ROOTFS" -- true
    err_case 125 "kbatch sets up itself" --bind "$SCRATCH:/proc" "$ROOTFS" -- true
    err_case 125 "working directory" --workdir /no/such/dir "$ROOTFS" -- true
    err_case 125 "backends.allowed" --backend k8s "$ROOTFS" -- true
    ;;
  refuses_setuid)  # kbatch installed setuid-root refuses to run
    cp "$KBATCH" "$SCRATCH/kbatch-setuid" && chown 0:0 "$SCRATCH/kbatch-setuid" &&
      chmod 4755 "$SCRATCH/kbatch-setuid"
    findmnt -no OPTIONS -T "$SCRATCH" | grep -qw nosuid && fail "$SCRATCH is nosuid: test is void"
    err=$(as_user "$SCRATCH/kbatch-setuid" exec "$ROOTFS" -- true 2>&1)
    status=$?
    expect "status of setuid kbatch" "$status" "125"
    [[ $err == *"refusing to run setuid"* ]] || fail "unexpected message: $err"
    echo "ok: $err"
    ;;
  job_body)  # contract 2: --job-body=base64 runs <SHELL> <decoded file>, stdin /dev/null
    body='echo "$0"; echo "stdin:$(cat)"; set -e; false; echo not-reached'
    out=$(base64 <<<"$body" | as_user "$KBATCH" exec --job-body=base64 --image "$ROOTFS" -- /bin/bash)
    status=$?
    expect "job body status (set -e)" "$status" "1"
    expect "job body output" "$out" $'/dev/kbatch-job-body\nstdin:'
    ;;
  environment)  # the caller's environment passes in; --cleanenv keeps the minimal set
    out=$(PBS_JOBID=12.srv KBATCH_TEST_VAR=yes runuser -u "$TEST_USER" -p -- "$KBATCH" exec \
          --env EXTRA=1 "$ROOTFS" -- sh -c 'echo "$PBS_JOBID $KBATCH_TEST_VAR $EXTRA"')
    expect "passed environment" "$out" "12.srv yes 1"
    out=$(PBS_JOBID=12.srv KBATCH_TEST_VAR=yes runuser -u "$TEST_USER" -p -- "$KBATCH" exec \
          --cleanenv --env EXTRA=1 "$ROOTFS" -- sh -c 'echo "$PBS_JOBID ${KBATCH_TEST_VAR:-unset} $EXTRA"')
    expect "--cleanenv environment" "$out" "12.srv unset 1"
    ;;
  *) fail "unknown check" ;;
esac
