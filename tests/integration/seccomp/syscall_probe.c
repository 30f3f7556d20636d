// kbatch_syscall_probe: calls every syscall that kbatch's default seccomp profile denies, with
// harmless arguments (missing paths, invalid descriptors, read-only requests, wrong magic
// numbers), and prints one line per syscall: `<name> <errno name>` (`OK` when the call succeeded,
// `skipped` when this architecture has no such syscall). It exits 0 only if every call failed with
// the profile's errno (EPERM; ENOSYS for clone3, so that libc falls back to clone), and if what
// every job needs still works: a thread (glibc creates it with clone3, then clone), a fork, and
// cross-memory attach (process_vm_readv of a child, as MPI's shared-memory transports do).
// `clone` is probed once per CLONE_NEW* flag and reported as one line. Built static so that it can
// be the only file in a container's root file system.
//
// It refuses to run with capabilities that would make a call do something (CAP_SYS_ADMIN,
// CAP_SYS_BOOT, ...): it is meant for containers, never for a root shell on a node.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char kMissing[] = "/kbatch-probe-does-not-exist";
static int failures = 0;

static void probeExpecting(const char* name, long result, int expected) {
  int saved = errno;
  if (result >= 0) {
    // A call that succeeded may have returned a descriptor (userfaultfd); do not leak it.
    if (strcmp(name, "userfaultfd") == 0) close((int)result);
    printf("%s OK\n", name);
    ++failures;
    return;
  }
  const char* errno_name = strerrorname_np(saved);
  printf("%s %s\n", name, errno_name != NULL ? errno_name : "unknown");
  if (saved != expected) ++failures;
}

static void probe(const char* name, long result) { probeExpecting(name, result, EPERM); }

// clone with each namespace flag, fork-like (no new stack), so that a child that does get created
// only exits. Reported as one `clone` line: EPERM when every flag was refused, else the first
// other outcome; each flag's own outcome goes on a `clone(FLAG)` line.
static void probeCloneNamespaceFlags(void) {
  static const struct { unsigned long flag; const char* name; } kFlags[] = {
      {CLONE_NEWNS, "CLONE_NEWNS"},   {CLONE_NEWUTS, "CLONE_NEWUTS"},
      {CLONE_NEWIPC, "CLONE_NEWIPC"}, {CLONE_NEWUSER, "CLONE_NEWUSER"},
      {CLONE_NEWPID, "CLONE_NEWPID"}, {CLONE_NEWNET, "CLONE_NEWNET"},
      {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}};
  const char* summary = "EPERM";
  for (size_t i = 0; i < sizeof kFlags / sizeof kFlags[0]; ++i) {
    long child = syscall(SYS_clone, kFlags[i].flag | SIGCHLD, NULL, NULL, NULL, 0);
    if (child == 0) _exit(0);
    const char* outcome = "OK";
    if (child > 0) {
      waitpid((pid_t)child, NULL, 0);
    } else {
      outcome = strerrorname_np(errno) != NULL ? strerrorname_np(errno) : "unknown";
    }
    printf("clone(%s) %s\n", kFlags[i].name, outcome);
    if (strcmp(outcome, "EPERM") != 0 && strcmp(summary, "EPERM") == 0) summary = outcome;
  }
  printf("clone %s\n", summary);
  if (strcmp(summary, "EPERM") != 0) ++failures;
}

static void* threadBody(void* argument) { return argument; }

// Cross-memory attach as MPI uses it: one process reads a buffer of its child.
static void checkCrossMemoryAttach(void) {
  static char buffer[64] = "kbatch-cma";
  int ready[2];
  if (pipe(ready) != 0) {
    printf("process_vm_readv %s\n", strerrorname_np(errno));
    ++failures;
    return;
  }
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char byte;
  close(ready[1]);
  int ok = child > 0 && read(ready[0], &byte, 1) == 1;
  char copy[sizeof buffer] = {0};
  struct iovec local = {copy, sizeof copy};
  struct iovec remote = {buffer, sizeof buffer};
  long got = ok ? syscall(SYS_process_vm_readv, child, &local, 1, &remote, 1, 0) : -1;
  int saved = errno;
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  close(ready[0]);
  ok = got == (long)sizeof buffer && strcmp(copy, "kbatch-cma") == 0;
  printf("process_vm_readv %s\n", ok ? "OK" : strerrorname_np(saved));
  if (!ok) ++failures;
}

// What the profile must leave working: a thread and a fork (both go through clone).
static void checkThreadAndFork(void) {
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, threadBody, NULL);
  if (rc == 0) pthread_join(thread, NULL);
  printf("pthread_create %s\n", rc == 0 ? "OK" : strerrorname_np(rc));
  if (rc != 0) ++failures;
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status = -1;
  if (child > 0) waitpid(child, &status, 0);
  int forked = child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("fork %s\n", forked ? "OK" : strerrorname_np(errno));
  if (!forked) ++failures;
}

static void skip(const char* name) { printf("%s skipped\n", name); }

// CapEff bits that would let one of the probes change the machine.
static int hasDangerousCapabilities(void) {
  static const int kDangerous[] = {16 /* SYS_MODULE */, 17 /* SYS_RAWIO */, 20 /* SYS_PACCT */,
                                   21 /* SYS_ADMIN */,  22 /* SYS_BOOT */,  25 /* SYS_TIME */,
                                   26 /* SYS_TTY_CONFIG */};
  FILE* status = fopen("/proc/self/status", "r");
  unsigned long long effective = 0;
  char line[256];
  int found = 0;
  if (status != NULL) {
    while (fgets(line, sizeof line, status) != NULL) {
      if (sscanf(line, "CapEff: %llx", &effective) == 1) {
        found = 1;
        break;
      }
    }
    fclose(status);
  }
  // Without /proc we cannot tell; a root process might hold them, so only trust a non-root uid.
  if (!found) return geteuid() == 0;
  for (size_t i = 0; i < sizeof kDangerous / sizeof kDangerous[0]; ++i) {
    if (effective & (1ULL << kDangerous[i])) return 1;
  }
  return 0;
}

int main(void) {
  if (hasDangerousCapabilities()) {
    fprintf(stderr, "kbatch_syscall_probe: refusing to run with CAP_SYS_ADMIN or similar "
                    "capabilities; run it inside a container\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct timespec time_now = {0, 0};
  struct timex read_only_adjustment;
  memset(&read_only_adjustment, 0, sizeof read_only_adjustment);  // modes 0: only read
  (void)time_now;
  (void)read_only_adjustment;

#ifdef SYS_mount
  probe("mount", syscall(SYS_mount, "none", kMissing, "tmpfs", 0UL, NULL));
#else
  skip("mount");
#endif
#ifdef SYS_umount
  probe("umount", syscall(SYS_umount, kMissing));
#else
  skip("umount");
#endif
#ifdef SYS_umount2
  probe("umount2", syscall(SYS_umount2, kMissing, 0));
#else
  skip("umount2");
#endif
#ifdef SYS_pivot_root
  probe("pivot_root", syscall(SYS_pivot_root, kMissing, kMissing));
#else
  skip("pivot_root");
#endif
#ifdef SYS_chroot
  probe("chroot", syscall(SYS_chroot, kMissing));
#else
  skip("chroot");
#endif
#ifdef SYS_move_mount
  probe("move_mount", syscall(SYS_move_mount, -1, "", -1, "", 0));
#else
  skip("move_mount");
#endif
#ifdef SYS_open_tree
  probe("open_tree", syscall(SYS_open_tree, -1, kMissing, 0));
#else
  skip("open_tree");
#endif
#ifdef SYS_fsopen
  probe("fsopen", syscall(SYS_fsopen, "kbatch-probe-nofs", 0));
#else
  skip("fsopen");
#endif
#ifdef SYS_fsconfig
  probe("fsconfig", syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0));
#else
  skip("fsconfig");
#endif
#ifdef SYS_fsmount
  probe("fsmount", syscall(SYS_fsmount, -1, 0, 0));
#else
  skip("fsmount");
#endif
#ifdef SYS_fspick
  probe("fspick", syscall(SYS_fspick, -1, kMissing, 0));
#else
  skip("fspick");
#endif
#ifdef SYS_mount_setattr
  probe("mount_setattr", syscall(SYS_mount_setattr, -1, "", 0, NULL, 0));
#else
  skip("mount_setattr");
#endif
#ifdef SYS_unshare
  probe("unshare", syscall(SYS_unshare, 0));
#else
  skip("unshare");
#endif
#ifdef SYS_setns
  probe("setns", syscall(SYS_setns, -1, 0));
#else
  skip("setns");
#endif
  probeCloneNamespaceFlags();
#ifdef SYS_clone3
  probeExpecting("clone3", syscall(SYS_clone3, NULL, 0), ENOSYS);
#else
  skip("clone3");
#endif
#ifdef SYS_keyctl
  probe("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1 /* thread keyring */, 0));
#else
  skip("keyctl");
#endif
#ifdef SYS_add_key
  probe("add_key", syscall(SYS_add_key, "kbatch-probe-notype", "d", NULL, 0, -1));
#else
  skip("add_key");
#endif
#ifdef SYS_request_key
  probe("request_key", syscall(SYS_request_key, "user", "kbatch-probe-nokey", NULL, 0));
#else
  skip("request_key");
#endif
#ifdef SYS_bpf
  probe("bpf", syscall(SYS_bpf, -1, NULL, 0));
#else
  skip("bpf");
#endif
#ifdef SYS_perf_event_open
  probe("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
#else
  skip("perf_event_open");
#endif
#ifdef SYS_ptrace
  probe("ptrace", syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 0 /* no such pid */, NULL, NULL));
#else
  skip("ptrace");
#endif
#ifdef SYS_kcmp
  probe("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 1 /* KCMP_VM */, 0, 0));
#else
  skip("kcmp");
#endif
#ifdef SYS_kexec_load
  probe("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0xffffffffUL /* invalid flags */));
#else
  skip("kexec_load");
#endif
#ifdef SYS_kexec_file_load
  probe("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xffffffffUL));
#else
  skip("kexec_file_load");
#endif
#ifdef SYS_init_module
  probe("init_module", syscall(SYS_init_module, NULL, 0, ""));
#else
  skip("init_module");
#endif
#ifdef SYS_finit_module
  probe("finit_module", syscall(SYS_finit_module, -1, "", 0));
#else
  skip("finit_module");
#endif
#ifdef SYS_delete_module
  probe("delete_module", syscall(SYS_delete_module, "kbatch_probe_nomodule", 04000 /* O_NONBLOCK */));
#else
  skip("delete_module");
#endif
#ifdef SYS_create_module
  probe("create_module", syscall(SYS_create_module, "kbatch_probe_nomodule", 0));
#else
  skip("create_module");
#endif
#ifdef SYS_query_module
  probe("query_module", syscall(SYS_query_module, "kbatch_probe_nomodule", 0, NULL, 0, NULL));
#else
  skip("query_module");
#endif
#ifdef SYS_reboot
  probe("reboot", syscall(SYS_reboot, 0, 0, 0, NULL /* wrong magic numbers */));
#else
  skip("reboot");
#endif
#ifdef SYS_swapon
  probe("swapon", syscall(SYS_swapon, kMissing, 0));
#else
  skip("swapon");
#endif
#ifdef SYS_swapoff
  probe("swapoff", syscall(SYS_swapoff, kMissing));
#else
  skip("swapoff");
#endif
#ifdef SYS_open_by_handle_at
  probe("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
#else
  skip("open_by_handle_at");
#endif
#ifdef SYS_name_to_handle_at
  probe("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, kMissing, NULL, NULL, 0));
#else
  skip("name_to_handle_at");
#endif
#ifdef SYS_userfaultfd
  probe("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC));
#else
  skip("userfaultfd");
#endif
#ifdef SYS_acct
  probe("acct", syscall(SYS_acct, kMissing));
#else
  skip("acct");
#endif
#ifdef SYS_settimeofday
  probe("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
#else
  skip("settimeofday");
#endif
#ifdef SYS_clock_settime
  probe("clock_settime", syscall(SYS_clock_settime, -1 /* no such clock */, &time_now));
#else
  skip("clock_settime");
#endif
#ifdef SYS_clock_adjtime
  probe("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &read_only_adjustment));
#else
  skip("clock_adjtime");
#endif
#ifdef SYS_adjtimex
  probe("adjtimex", syscall(SYS_adjtimex, &read_only_adjustment));
#else
  skip("adjtimex");
#endif
#ifdef SYS_stime
  probe("stime", syscall(SYS_stime, NULL));
#else
  skip("stime");
#endif
#ifdef SYS_iopl
  probe("iopl", syscall(SYS_iopl, 0 /* keep the current level */));
#else
  skip("iopl");
#endif
#ifdef SYS_ioperm
  probe("ioperm", syscall(SYS_ioperm, 0, 0, 0 /* turn nothing off */));
#else
  skip("ioperm");
#endif
#ifdef SYS_lookup_dcookie
  probe("lookup_dcookie", syscall(SYS_lookup_dcookie, 0, NULL, 0));
#else
  skip("lookup_dcookie");
#endif
#ifdef SYS_quotactl
  probe("quotactl", syscall(SYS_quotactl, 0 /* no such command */, NULL, 0, NULL));
#else
  skip("quotactl");
#endif
#ifdef SYS_nfsservctl
  probe("nfsservctl", syscall(SYS_nfsservctl, 0, NULL, NULL));
#else
  skip("nfsservctl");
#endif
#ifdef SYS_vhangup
  probe("vhangup", syscall(SYS_vhangup));
#else
  skip("vhangup");
#endif
#ifdef SYS_syslog
  probe("syslog", syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
#else
  skip("syslog");
#endif

  checkThreadAndFork();
  checkCrossMemoryAttach();
  return failures == 0 ? 0 : 1;
}
