// The child side of the privileged core: what runs after clone(2), as a list of named steps.
//
// Rules for everything in this file (STYLE.md items 3-4): no allocation, no exceptions, no
// logging, no locks, no writes to memory but the stack: this process shares kbatch's address
// space (CLONE_VM|CLONE_VFORK, launch.cc) until it execs kbatch-init, kbatch being suspended
// meanwhile. Every step is a system call or a short sequence of them on data the parent
// prepared (ChildProgram); a failing step writes (step, errno, detail) to the report pipe and the
// process exits. Modelled on bubblewrap's setup_newroot() and Charliecloud's ch_core.c.

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include <cstring>

#include "linux/core.h"

namespace kbatch::runner::core {
namespace {

// Paths of the staging tmpfs (see mountStaging).
constexpr const char* kStagingDir = "/tmp";
constexpr const char* kNewRoot = "/newroot";

/// Exit status of a child that reported a failure (the parent reads the report, not this).
constexpr int kFailedExit = 125;

void report(int fd, Step step, int error, int detail) noexcept {
  Report record;
  record.kind = Report::kStepFailed;
  record.step = static_cast<std::int32_t>(step);
  record.error = error;
  record.detail = detail;
  // One write of a PIPE_BUF-sized record is atomic; nothing useful can be done if it fails.
  [[maybe_unused]] ssize_t written = write(fd, &record, sizeof record);
}

[[noreturn]] void fail(const ChildProgram& program, Step step, int detail = 0) noexcept {
  report(program.report_fd, step, errno, detail);
  _exit(kFailedExit);
}

bool writeWholeFile(const char* path, const char* text) noexcept {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t length = std::strlen(text);
  ssize_t written = write(fd, text, length);
  int saved = errno;
  close(fd);
  errno = saved;
  return written == static_cast<ssize_t>(length);
}

bool createPath(const ChildPath& path) noexcept {
  if (path.directory) return mkdir(path.path, 0755) == 0 || errno == EEXIST;
  int fd = open(path.path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return errno == EEXIST;
  close(fd);
  return true;
}

/// Remounts a bind mount read-only, keeping the flags the kernel locked on it (nosuid, nodev,
/// noexec, atime): a remount that would clear a locked flag fails with EPERM in a user namespace.
bool remountReadOnly(const char* target, unsigned long locked_flags) noexcept {
  return mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags,
               nullptr) == 0;
}

// ---- The steps, in order. ----------------------------------------------------------------

// Kernel: prctl(PR_SET_PDEATHSIG). Man: prctl(2).
// If kbatch dies (SIGKILL from the batch system), the init and with it the whole PID namespace die.
void setParentDeathSignal(const ChildProgram& program) noexcept {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(program, Step::kSetParentDeathSignal);
}

// Kernel: write /proc/self/setgroups ("deny"), /proc/self/uid_map, /proc/self/gid_map.
// Man: user_namespaces(7), "User and group ID mappings". An unprivileged process may map exactly
// its own uid and gid, and must deny setgroups(2) before writing gid_map. Only the caller's ids
// are mapped (to themselves, or to 0 with --fakeroot); every other id shows as the overflow id.
void mapIds(const ChildProgram& program) noexcept {
  if (!writeWholeFile("/proc/self/setgroups", "deny") ||
      !writeWholeFile("/proc/self/uid_map", program.uid_map) ||
      !writeWholeFile("/proc/self/gid_map", program.gid_map)) {
    fail(program, Step::kMapIds);
  }
}

// Kernel: mount(NULL, "/", NULL, MS_REC|MS_PRIVATE). Man: mount_namespaces(7), mount(2).
// The new mount namespace starts as a copy of the host's with shared propagation; making it
// private means nothing we mount or unmount propagates back to the host.
void makeMountsPrivate(const ChildProgram& program) noexcept {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fail(program, Step::kMakeMountsPrivate);
  }
}

// Kernel: mount("tmpfs", "/tmp"), mkdir. Man: tmpfs(5), mount(2).
// A private tmpfs over the host's /tmp (visible only in our namespace) is the scaffolding: it
// holds /newroot (the container's root), /oldroot (the host's root after the first pivot) and the
// overlay's upper and work directories. The host's /tmp stays reachable as /oldroot/tmp.
void mountStaging(const ChildProgram& program) noexcept {
  if (mount("tmpfs", kStagingDir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0 ||
      chdir(kStagingDir) != 0 || mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0 ||
      mkdir("upper", 0755) != 0 || mkdir("work", 0755) != 0) {
    fail(program, Step::kMountStaging);
  }
}

// Kernel: pivot_root(2) then chdir("/"). Man: pivot_root(2).
// After this, "/" is the staging tmpfs and the host's tree is at /oldroot, so every host path
// the plan names is reached as /oldroot/<path> and every container path as /newroot/<path>.
void pivotToStaging(const ChildProgram& program) noexcept {
  if (syscall(SYS_pivot_root, kStagingDir, "/tmp/oldroot") != 0 || chdir("/") != 0) {
    fail(program, Step::kPivotToStaging);
  }
}

// Kernel: mount(MS_REMOUNT|MS_BIND|MS_RDONLY). Man: mount(2). The job cannot add or replace
// anything in /dev (its pts and shm mounts keep their own flags).
void sealDev(const ChildProgram& program) noexcept {
  if (!remountReadOnly("/newroot/dev", MS_NOSUID | MS_NOEXEC)) fail(program, Step::kSealDev);
}

// Kernel: mount(MS_BIND|MS_REC) or mount("overlay"). Man: mount(2), overlayfs
// (Documentation/filesystems/overlayfs.rst; unprivileged overlay needs Linux 5.11+).
// The image directory becomes /newroot. An overlay with the staging tmpfs as upper layer is used
// for --writable-tmpfs, and when mount points must be created that the image lacks.
void mountImage(const ChildProgram& program) noexcept {
  int rc;
  if (program.root_mode == RootMode::kBind) {
    rc = mount(program.image_source, kNewRoot, nullptr, MS_BIND | MS_REC, nullptr);
  } else {
    rc = mount("overlay", kNewRoot, "overlay", MS_NOSUID | MS_NODEV, program.overlay_options);
  }
  if (rc != 0) fail(program, Step::kMountImage);
}

// Kernel: mkdir(2) / open(O_CREAT) in the staging tmpfs. The missing mount points are created in
// the overlay's upper layer before the overlay is mounted: there they belong to us, whereas the
// image's directories belong to ids our user namespace does not map (no CAP_DAC_OVERRIDE over
// them). Directories in the upper layer merge with the image's. The image on disk is never written.
void createMountPoints(const ChildProgram& program) noexcept {
  for (std::size_t i = 0; i < program.mount_point_count; ++i) {
    if (!createPath(program.mount_points[i])) fail(program, Step::kCreateMountPoints, int(i));
  }
}

// Kernel: mount("proc"). Man: proc(5), pid_namespaces(7) ("/proc and PID namespaces").
// A procfs for our PID namespace shows only the container's processes. It must be mounted while
// the host's /proc is still visible (/oldroot/proc): the kernel refuses a new procfs in a user
// namespace unless a fully visible one exists in the mount namespace (mount_too_revealing).
void mountProc(const ChildProgram& program) noexcept {
  if (mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    fail(program, Step::kMountProc);
  }
}

// Kernel: mount(MS_BIND|MS_REC) + read-only remount. Man: mount(2), sysfs(5).
// A fresh sysfs needs a network namespace of our own; like ch-run we bind the host's, read-only,
// because MPI, hwloc and GPU runtimes read the topology from it.
void mountSys(const ChildProgram& program) noexcept {
  if (!program.mount_sys) return;
  if (mount("/oldroot/sys", "/newroot/sys", nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      !remountReadOnly("/newroot/sys", program.sys_remount_flags)) {
    fail(program, Step::kMountSys);
  }
}

// Kernel: mount("tmpfs"), open(O_CREAT) + mount(MS_BIND) per device, mount("devpts"),
// symlink(2), mount("tmpfs") for /dev/shm, read-only remount. Man: mount(2), pts(4), null(4),
// random(4), tmpfs(5). Device nodes cannot be created in a user namespace (mknod needs
// CAP_MKNOD in the initial namespace), so the host's nodes are bind-mounted, as bubblewrap's
// --dev does; a new devpts instance gives the job its own ptys.
void mountDev(const ChildProgram& program) noexcept {
  if (mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") != 0) {
    fail(program, Step::kMountDev);
  }
  for (std::size_t i = 0; i < program.device_count; ++i) {
    int fd = open(program.device_targets[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) fail(program, Step::kMountDev, int(i));
    close(fd);
    if (mount(program.device_sources[i], program.device_targets[i], nullptr, MS_BIND,
              nullptr) != 0) {
      fail(program, Step::kMountDev, int(i));
    }
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
    fail(program, Step::kMountDev, -1);
  }
}

// Kernel: mount("tmpfs"). Man: tmpfs(5). The job's /tmp is private and vanishes with the job.
void mountTmp(const ChildProgram& program) noexcept {
  if (mount("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
    fail(program, Step::kMountTmp);
  }
}

// Kernel: open(O_CREAT|O_EXCL), write(2). Files the plan carries (the decoded job body) are
// written into the container's private /dev tmpfs, owned by the caller: no bind can cover /dev,
// and it becomes read-only next.
void writeFiles(const ChildProgram& program) noexcept {
  for (std::size_t i = 0; i < program.file_count; ++i) {
    const ChildFile& file = program.files[i];
    int fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file.mode);
    if (fd < 0) fail(program, Step::kWriteFiles, int(i));
    std::size_t done = 0;
    while (done < file.size) {
      ssize_t n = write(fd, file.data + done, file.size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(program, Step::kWriteFiles, int(i));
      done += static_cast<std::size_t>(n);
    }
    close(fd);
  }
}

// Kernel: mkdir/open(O_CREAT) for missing mount points, mount(MS_BIND|MS_REC), read-only remount.
// Man: mount(2) ("Creating a bind mount", "Remounting an existing mount"). Targets were resolved
// inside the image by the parent (symlinks clamped at the image root).
void bindMounts(const ChildProgram& program) noexcept {
  for (std::size_t i = 0; i < program.bind_count; ++i) {
    const ChildBind& bind = program.binds[i];
    for (std::size_t j = 0; j < bind.create_count; ++j) {
      if (!createPath(bind.create_first[j])) fail(program, Step::kBindMounts, int(i));
    }
    if (mount(bind.source, bind.target, nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        (bind.read_only && !remountReadOnly(bind.target, bind.remount_flags))) {
      fail(program, Step::kBindMounts, int(i));
    }
  }
}

// Kernel: mount(MS_REMOUNT|MS_BIND|MS_RDONLY). Man: mount(2). The image is read-only to the job
// unless --writable-tmpfs; the mounts on top of it (/tmp, binds) keep their own flags.
void remountRootReadOnly(const ChildProgram& program) noexcept {
  if (program.root_mode == RootMode::kOverlayWritable) return;
  unsigned long flags = program.root_mode == RootMode::kBind ? program.image_remount_flags
                                                             : (MS_NOSUID | MS_NODEV);
  if (!remountReadOnly(kNewRoot, flags)) fail(program, Step::kRemountRootReadOnly);
}

// Kernel: pivot_root(".", "."), umount2(".", MNT_DETACH), chdir("/").
// Man: pivot_root(2) ("pivot_root(".", ".")" in NOTES), umount(2). The staging tmpfs ends up
// stacked on the new root; detaching it detaches everything mounted below it too, the host's
// tree at /oldroot included (one lazy unmount: each waits for an RCU grace period). Afterwards
// nothing of the host is reachable except the binds (runner check no_host_mounts).
void pivotToImage(const ChildProgram& program) noexcept {
  if (chdir(kNewRoot) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 ||
      umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
    fail(program, Step::kPivotToImage);
  }
}

// Kernel: chdir(2).
void changeDirectory(const ChildProgram& program) noexcept {
  if (chdir(program.workdir) != 0) fail(program, Step::kChangeDirectory);
}

// Kernel: prctl(PR_SET_NO_NEW_PRIVS). Man: prctl(2), Documentation/userspace-api/no_new_privs.rst.
// execve can no longer grant privileges: setuid/setgid bits and file capabilities are ignored.
void setNoNewPrivs(const ChildProgram& program) noexcept {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(program, Step::kNoNewPrivs);
}

// Kernel: prctl(PR_CAPBSET_DROP) per capability, prctl(PR_CAP_AMBIENT_CLEAR_ALL), capset(2), via
// libcap. Man: capabilities(7), cap_drop_bound(3), cap_set_proc(3). The bounding set goes first
// (dropping it needs CAP_SETPCAP, which the empty set then removes); with an empty bounding set
// even a uid-0 process (--fakeroot) regains nothing at execve.
void dropCapabilities(const ChildProgram& program) noexcept {
  // cap_max_bits() is the running kernel's count, which may exceed the headers' CAP_LAST_CAP.
  for (cap_value_t cap = 0; cap < static_cast<cap_value_t>(cap_max_bits()); ++cap) {
    if (cap_drop_bound(cap) != 0) fail(program, Step::kDropCapabilities, cap);
  }
  if (cap_reset_ambient() != 0 || cap_set_proc(program.empty_capabilities) != 0) {
    fail(program, Step::kDropCapabilities, -1);
  }
  // Changing credentials can clear the parent-death signal; set it again.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(program, Step::kDropCapabilities, -2);
}

// ---- The job: a child of the init. ----------------------------------------------------------

// Kernel: setrlimit(RLIMIT_DATA). Man: getrlimit(2).
void setLimits(const ChildProgram& program) noexcept {
  if (program.limit_memory && setrlimit(RLIMIT_DATA, &program.memory_limit) != 0) {
    fail(program, Step::kSetLimits);
  }
}

// Kernel: seccomp(SECCOMP_SET_MODE_FILTER). Man: seccomp(2). Loaded last, right before execve, so
// that the filter never has to allow what the setup needed (mount, pivot_root, capset...).
void loadSeccomp(const ChildProgram& program) noexcept {
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program.seccomp) != 0) {
    fail(program, Step::kLoadSeccomp);
  }
}

// Kernel: execve(2) on each candidate (the job's PATH search, as execvp does, without its
// allocations). Man: execve(2), execvp(3). EACCES on one candidate is remembered and reported
// if no later candidate runs, as execvp does.
[[noreturn]] void execute(const ChildProgram& program) noexcept {
  int error = ENOENT;
  bool saw_eacces = false;
  for (std::size_t i = 0; i < program.exec_candidate_count; ++i) {
    execve(program.exec_candidates[i], program.argv, program.envp);
    error = errno;
    if (error == EACCES) saw_eacces = true;
    if (error != ENOENT && error != ENOTDIR && error != EACCES) break;
  }
  if (saw_eacces && (error == ENOENT || error == ENOTDIR)) error = EACCES;
  errno = error;
  fail(program, Step::kExecute);
}

[[noreturn]] void runJob(const ChildProgram& program) noexcept {
  // The job gets the caller's signal mask and SIGCHLD disposition back; the init keeps the
  // forwarded signals blocked for sigwaitinfo.
  sigaction(SIGCHLD, &program.job_sigchld_action, nullptr);
  sigprocmask(SIG_SETMASK, &program.job_signal_mask, nullptr);
  setLimits(program);
  loadSeccomp(program);
  execute(program);
}

int jobEntry(void* program) { runJob(*static_cast<const ChildProgram*>(program)); }

// Kernel: fcntl(F_SETFD), execveat(2) with AT_EMPTY_PATH. Man: execveat(2), pid_namespaces(7).
// This process is the namespace's PID 1 and shares kbatch's memory; it becomes kbatch-init (a
// static executable, so the image needs no libc for it), which forwards signals to the job,
// reaps orphans and reports the job's wait status. Its execve releases kbatch from
// CLONE_VFORK. The report pipe must survive this execve, but not the job's, which is over by now.
// The init's argv is built on this stack: nothing of kbatch's memory is written.
[[noreturn]] void becomeInit(const ChildProgram& program, pid_t job) noexcept {
  char job_text[16];
  char digits[16];
  int count = 0;
  for (unsigned value = static_cast<unsigned>(job); value > 0 || count == 0; value /= 10) {
    digits[count++] = static_cast<char>('0' + value % 10);
  }
  for (int i = 0; i < count; ++i) job_text[i] = digits[count - 1 - i];
  job_text[count] = '\0';
  char name[] = "kbatch-init";
  char* argv[] = {name, const_cast<char*>(program.report_fd_text), job_text, nullptr};
  char* envp[] = {nullptr};
  if (fcntl(program.report_fd, F_SETFD, 0) == 0) {
    syscall(SYS_execveat, program.init_fd, "", argv, envp, AT_EMPTY_PATH);
  }
  // Exiting as PID 1 kills the job with the namespace.
  fail(program, Step::kStartInit);
}

}  // namespace

[[noreturn]] void runContainerInit(const ChildProgram& program) noexcept {
  setParentDeathSignal(program);
  mapIds(program);
  makeMountsPrivate(program);
  mountStaging(program);
  pivotToStaging(program);
  createMountPoints(program);
  mountImage(program);
  mountProc(program);
  mountSys(program);
  mountDev(program);
  writeFiles(program);
  sealDev(program);
  mountTmp(program);
  bindMounts(program);
  remountRootReadOnly(program);
  pivotToImage(program);
  changeDirectory(program);
  setNoNewPrivs(program);
  dropCapabilities(program);
  // clone(CLONE_VM|CLONE_VFORK) on a stack of the job's own, as posix_spawn does: unlike
  // vfork(2) the child does not run on this process's stack frames. What runJob does before
  // execve is safe in a child that shares our memory (which is kbatch's): it changes only
  // per-task state (signal mask, its own copy of the handlers, its rlimits, its seccomp filter),
  // allocates nothing, and ends in execve or _exit. This process is suspended until then.
  pid_t job = clone(jobEntry, program.job_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    const_cast<ChildProgram*>(&program));
  if (job < 0) fail(program, Step::kStartJob);
  becomeInit(program, job);
}

const char* describeStep(Step step) noexcept {
  switch (step) {
    case Step::kNone: return "none";
    case Step::kClone: return "create the user, mount and PID namespaces (clone)";
    case Step::kSetParentDeathSignal: return "set the parent-death signal";
    case Step::kMapIds: return "map the caller's uid and gid into the user namespace";
    case Step::kMakeMountsPrivate: return "make the mount namespace private";
    case Step::kMountStaging: return "mount the staging tmpfs on /tmp";
    case Step::kPivotToStaging: return "pivot_root into the staging tmpfs";
    case Step::kMountImage: return "mount the image as the new root";
    case Step::kCreateMountPoints: return "create mount points in the image's overlay";
    case Step::kMountProc: return "mount /proc";
    case Step::kMountSys: return "bind-mount /sys";
    case Step::kMountDev: return "set up /dev";
    case Step::kMountTmp: return "mount /tmp";
    case Step::kWriteFiles: return "write the job's files into /dev";
    case Step::kSealDev: return "remount /dev read-only";
    case Step::kBindMounts: return "bind-mount";
    case Step::kRemountRootReadOnly: return "remount the image read-only";
    case Step::kPivotToImage: return "pivot_root into the image";
    case Step::kChangeDirectory: return "change to the working directory";
    case Step::kNoNewPrivs: return "set no_new_privs";
    case Step::kDropCapabilities: return "drop all capabilities";
    case Step::kStartJob: return "start the job (clone)";
    case Step::kSetLimits: return "set resource limits";
    case Step::kLoadSeccomp: return "load the seccomp filter";
    case Step::kExecute: return "execute the command";
    case Step::kStartInit: return "start kbatch-init as the container's PID 1";
    case Step::kCount: break;
  }
  return "unknown step";
}

}  // namespace kbatch::runner::core
