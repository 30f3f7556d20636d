// runner_floor: the least a runner can do to start a job the way issue #3 asks kbatch to, written
// as plain C with no policy, no image store, no options and no error reporting beyond an exit
// status, so that bench/runner_floor.sh can time it beside ch-run and kbatch. What it does is
// kbatch's container set-up step for step (runner/src/linux/container_init.cc), not ch-run's:
//   - one clone into new user, mount, PID and IPC namespaces, mapping only the caller's ids;
//   - a private staging tmpfs, pivot_root into it, the image bound read-only at /newroot;
//   - a fresh /proc, /sys bound read-only, a minimal /dev (null, zero, full, random, urandom, tty
//     bound from the host; devpts; /dev/shm; read-only), a /tmp tmpfs;
//   - pivot_root into the image and the old root detached;
//   - PID 1 stays in the container to reap, the job is its child (PID 2): no_new_privs, every
//     capability dropped (bounding, ambient, permitted, effective, inheritable), the seccomp
//     program from --seccomp loaded last, then execve;
//   - the parent waits and exits with the job's status.
// With --lean, only what issue #3 names: no IPC namespace, no /sys, and no staging tmpfs (the image
// is bound onto itself and the one pivot_root goes straight into it), which shows what kbatch's
// extra steps cost. With --init INIT, PID 1 does what kbatch's does instead of waiting itself: it execs a separate
// init program (opened before the pivot, run with execveat) that reaps the job, which shows what
// that design choice costs.
// Left out, because kbatch does them and they are not part of the floor: the policy, signal
// forwarding, walltime, the separate init executable, the report pipe, binds of the working
// directory. It is a benchmark tool, never a runner: it checks nothing a real runner must.
//
// usage: runner_floor [--seccomp BPF_FILE] [--init INIT] [--lean] ROOTFS CMD [ARGS...]
//   BPF_FILE: a raw struct sock_filter[] (runner_floor_bpf writes kbatch's default profile).
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char image[4096];
static char** job_argv;
static struct sock_fprog seccomp_program;
static char uid_map[64], gid_map[64];
static char child_stack[64 * 1024] __attribute__((aligned(16)));
static int init_fd = -1;
static int lean = 0;

static void die(int code) { _exit(code); }

static void writeFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(120);
  close(fd);
}

static void remountReadOnly(const char* target, unsigned long flags) {
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) != 0) die(121);
}

static const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

// The image bound onto itself, the container's mounts made under it from the host's paths, and
// one pivot_root(".", ".") into it.
static void setUpMountsLean(void) {
  char path[4200], target[4200];
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die(122);
  if (mount(image, image, NULL, MS_BIND | MS_REC, NULL) != 0 || chdir(image) != 0) die(125);
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die(126);
  if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") != 0) die(128);
  for (size_t i = 0; i < sizeof kDevices / sizeof kDevices[0]; ++i) {
    snprintf(path, sizeof path, "/dev/%s", kDevices[i]);
    snprintf(target, sizeof target, "dev/%s", kDevices[i]);
    int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) die(129);
    close(fd);
    if (mount(path, target, NULL, MS_BIND, NULL) != 0) die(130);
  }
  if (mkdir("dev/pts", 0755) != 0 || mkdir("dev/shm", 01777) != 0 ||
      mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620") != 0 ||
      symlink("pts/ptmx", "dev/ptmx") != 0 || symlink("/proc/self/fd", "dev/fd") != 0 ||
      symlink("/proc/self/fd/0", "dev/stdin") != 0 ||
      symlink("/proc/self/fd/1", "dev/stdout") != 0 ||
      symlink("/proc/self/fd/2", "dev/stderr") != 0 ||
      mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
    die(131);
  }
  snprintf(path, sizeof path, "%s/dev", image);
  remountReadOnly(path, MS_NOSUID | MS_NOEXEC);
  if (mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) die(132);
  remountReadOnly(image, MS_NOSUID | MS_NODEV);
  if (syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
    die(133);
  }
}

static void setUpMounts(void) {
  char source[4200];
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die(122);
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0 ||
      chdir("/tmp") != 0 || mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0) {
    die(123);
  }
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0 || chdir("/") != 0) die(124);
  snprintf(source, sizeof source, "/oldroot%s", image);
  if (mount(source, "/newroot", NULL, MS_BIND | MS_REC, NULL) != 0) die(125);
  if (mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die(126);
  if (mount("/oldroot/sys", "/newroot/sys", NULL, MS_BIND | MS_REC, NULL) != 0) die(127);
  remountReadOnly("/newroot/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") != 0) die(128);
  for (size_t i = 0; i < sizeof kDevices / sizeof kDevices[0]; ++i) {
    char target[64];
    snprintf(source, sizeof source, "/oldroot/dev/%s", kDevices[i]);
    snprintf(target, sizeof target, "/newroot/dev/%s", kDevices[i]);
    int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) die(129);
    close(fd);
    if (mount(source, target, NULL, MS_BIND, NULL) != 0) die(130);
  }
  if (mkdir("/newroot/dev/pts", 0755) != 0 || mkdir("/newroot/dev/shm", 01777) != 0 ||
      mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620") != 0 ||
      symlink("pts/ptmx", "/newroot/dev/ptmx") != 0 ||
      symlink("/proc/self/fd", "/newroot/dev/fd") != 0 ||
      symlink("/proc/self/fd/0", "/newroot/dev/stdin") != 0 ||
      symlink("/proc/self/fd/1", "/newroot/dev/stdout") != 0 ||
      symlink("/proc/self/fd/2", "/newroot/dev/stderr") != 0 ||
      mount("tmpfs", "/newroot/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
    die(131);
  }
  remountReadOnly("/newroot/dev", MS_NOSUID | MS_NOEXEC);
  if (mount("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) die(132);
  remountReadOnly("/newroot", MS_NOSUID | MS_NODEV);
  if (chdir("/newroot") != 0 || syscall(SYS_pivot_root, ".", ".") != 0 ||
      umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
    die(133);
  }
}

static void dropPrivileges(void) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(134);
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) die(135);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) die(136);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) != 0) die(137);
  if (seccomp_program.len > 0 &&
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &seccomp_program) != 0) {
    die(138);
  }
}

static int containerInit(void* unused) {
  (void)unused;
  writeFile("/proc/self/setgroups", "deny");
  writeFile("/proc/self/uid_map", uid_map);
  writeFile("/proc/self/gid_map", gid_map);
  if (lean) {
    setUpMountsLean();
  } else {
    setUpMounts();
  }
  pid_t job = fork();
  if (job < 0) die(139);
  if (job == 0) {
    dropPrivileges();
    execvp(job_argv[0], job_argv);
    die(127);
  }
  if (init_fd >= 0) {
    char* init_argv[] = {(char*)"init", NULL};
    char* no_environment[] = {NULL};
    syscall(SYS_execveat, init_fd, "", init_argv, no_environment, AT_EMPTY_PATH);
    die(146);
  }
  int status = 0;
  for (;;) {
    pid_t reaped = wait(&status);
    if (reaped == job) break;
    if (reaped < 0) die(140);
  }
  if (WIFSIGNALED(status)) die(128 + WTERMSIG(status));
  die(WEXITSTATUS(status));
  return 0;
}

static void readSeccomp(const char* path) {
  static struct sock_filter program[BPF_MAXINSNS];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(141);
  ssize_t size = read(fd, program, sizeof program);
  close(fd);
  if (size <= 0 || size % (ssize_t)sizeof(struct sock_filter) != 0) die(142);
  seccomp_program.len = (unsigned short)(size / (ssize_t)sizeof(struct sock_filter));
  seccomp_program.filter = program;
}

int main(int argc, char** argv) {
  int first = 1;
  if (argc > first + 1 && strcmp(argv[first], "--seccomp") == 0) {
    readSeccomp(argv[first + 1]);
    first += 2;
  }
  if (argc > first + 1 && strcmp(argv[first], "--init") == 0) {
    init_fd = open(argv[first + 1], O_PATH | O_CLOEXEC);
    if (init_fd < 0) die(147);
    first += 2;
  }
  if (argc > first && strcmp(argv[first], "--lean") == 0) {
    lean = 1;
    first += 1;
  }
  if (argc - first < 2) {
    fprintf(stderr,
            "usage: runner_floor [--seccomp BPF_FILE] [--init INIT] [--lean] ROOTFS CMD [ARGS...]\n");
    return 2;
  }
  if (realpath(argv[first], image) == NULL) die(143);
  job_argv = argv + first + 1;
  snprintf(uid_map, sizeof uid_map, "%u %u 1\n", getuid(), getuid());
  snprintf(gid_map, sizeof gid_map, "%u %u 1\n", getgid(), getgid());
  pid_t init = clone(containerInit, child_stack + sizeof child_stack,
                     CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | (lean ? 0 : CLONE_NEWIPC) | SIGCHLD,
                     NULL);
  if (init < 0) die(144);
  int status = 0;
  if (waitpid(init, &status, 0) != init) die(145);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
