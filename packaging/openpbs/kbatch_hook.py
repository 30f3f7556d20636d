# kbatch for PBS Professional / OpenPBS: a site hook that runs containerised jobs through kbatch.
#
# UNTESTED: neither OpenPBS nor PBS Professional is packaged in Debian 12, so this hook has never
# run against a real PBS server here. It is written against OpenPBS's hook API (the `pbs` module,
# doc/man1/pbs_module.7B; hook events in src/include/hook.h) and must be tried on a test server
# before production use. See docs/install.md.
#
# Events (one hook, `qmgr -c "set hook kbatch event = 'queuejob,execjob_launch'"`):
#   queuejob        on the server, at qsub: refuses `#PBS -B` given on the command line, which PBS's
#                   qsub would otherwise record as an unknown option. The job script itself is NOT
#                   visible to a queuejob hook: it reaches the server in a separate batch request
#                   after the Queue Job request the hook sees, and the pbs module offers no job
#                   script object. So the rewrite cannot happen here.
#   execjob_launch  on the mother superior, as root, before the job shell starts: reads the job
#                   script the MoM holds, runs `kbatch rewrite` on it as the job owner and, when
#                   kbatch rewrote it (a containerised job), launches the rewritten script instead.
#                   A native job's launch is left exactly as PBS made it. Users cannot skip this
#                   hook (it runs in pbs_mom, not in their qsub), and `kbatch exec` enforces the
#                   site policy again when the rewritten job starts.
#
# Install (as root on the server host):
#   qmgr -c "create hook kbatch"
#   qmgr -c "set hook kbatch event = 'queuejob,execjob_launch'"
#   qmgr -c "set hook kbatch fail_action = none"
#   qmgr -c "import hook kbatch application/x-python default kbatch_hook.py"
# Settings: the constants below.

import os
import pwd
import subprocess

import pbs

KBATCH = "/usr/bin/kbatch"
# "closed": if kbatch itself fails, the job is not launched; "open": it runs unchanged (natively).
ON_ERROR = "closed"
# The rewritten script is written here (per job), readable by the job owner only.
REWRITE_DIR_NAME = "kbatch"


def job_script_path(job):
    """The copy of the job script the MoM keeps for a running job."""
    pbs_home = pbs.get_pbs_conf()["PBS_HOME"]
    return os.path.join(pbs_home, "mom_priv", "jobs", job.id + ".SC")


def run_as_owner(owner, argv, stdin_bytes):
    """Runs argv as the job owner (never as root: the script is the user's input)."""
    entry = pwd.getpwnam(owner)

    def drop_privileges():
        os.setgroups(os.getgrouplist(entry.pw_name, entry.pw_gid))
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    process = subprocess.run(argv, input=stdin_bytes, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=drop_privileges,
                             env={"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir,
                                  "USER": entry.pw_name},
                             cwd=entry.pw_dir if os.path.isdir(entry.pw_dir) else "/",
                             timeout=60)
    return process.returncode, process.stdout, process.stderr


def first_line(data):
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def kbatch_failed(event, job, reason):
    pbs.logjobmsg(job.id, "kbatch hook: " + reason)
    if ON_ERROR == "open":
        event.accept()
    event.reject("kbatch: the job cannot be prepared (%s); ask your administrator" % reason)


def on_queuejob(event):
    job = event.job
    arguments = str(job.Submit_arguments or "")
    if " -B " in " " + arguments + " ":
        event.reject("kbatch: put `#PBS -B BINARY` in the script, or `#KBATCH --from-binary "
                     "BINARY`; PBS's qsub has no -B option")
    event.accept()


def on_execjob_launch(event):
    job = event.job
    owner = str(job.euser)
    try:
        with open(job_script_path(job), "rb") as handle:
            script = handle.read()
    except OSError as error:
        kbatch_failed(event, job, "cannot read the job script: %s" % error)
    try:
        status, rewritten, errors = run_as_owner(
            owner, [KBATCH, "rewrite", "--kbatch-path", KBATCH, "-"], script)
    except (OSError, subprocess.SubprocessError, KeyError) as error:
        kbatch_failed(event, job, "cannot run %s: %s" % (KBATCH, error))
    if status != 0:
        # A malformed script or a refusal is never "open".
        event.reject(first_line(errors) or "kbatch rejected the job script")
    if rewritten == script:
        event.accept()  # a native job: PBS launches it as it planned
    entry = pwd.getpwnam(owner)
    directory = os.path.join(os.path.dirname(job_script_path(job)), REWRITE_DIR_NAME)
    os.makedirs(directory, mode=0o711, exist_ok=True)
    target = os.path.join(directory, job.id + ".sh")
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o500)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(rewritten)
    os.chown(target, entry.pw_uid, entry.pw_gid)
    # The rewritten script carries the whole job (directives, then `exec kbatch exec ...` with the
    # original body): the job's shell runs it in place of the original.
    shell = str(event.progname)
    event.progname = shell
    event.argv = [shell, target]
    pbs.logjobmsg(job.id, "kbatch hook: launching the containerised rewrite %s" % target)
    event.accept()


try:
    current = pbs.event()
    if current.type == pbs.QUEUEJOB:
        on_queuejob(current)
    elif current.type == pbs.EXECJOB_LAUNCH:
        on_execjob_launch(current)
    else:
        current.accept()
except SystemExit:
    pass  # accept() and reject() end the hook by raising SystemExit
