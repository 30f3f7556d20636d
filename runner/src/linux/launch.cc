// The parent side of the privileged core: prepare the child's data, clone(2) into new
// namespaces, relay signals to the container's init, enforce the walltime, collect the reports.
//
// The child shares this process's memory and runs on a stack of its own (CLONE_VM|CLONE_VFORK,
// as posix_spawn does), and this process is suspended until the child has started the job and
// replaced itself with kbatch-init. A forked child would cost a copy of kbatch's page tables and a
// copy-on-write fault for every page either process then writes: on virtual machines with shadow
// paging that was several milliseconds of every job's start (bench/exec_start.sh).

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "linux/core.h"

namespace kbatch::runner::core {
namespace {

/// Owns every string and array the ChildProgram points into; lives on the parent's stack until
/// the container has ended.
class ChildProgramStorage {
 public:
  const char* keep(std::string text) { return strings_.emplace_back(std::move(text)).c_str(); }

  std::deque<std::string> strings_;
  std::deque<std::vector<ChildPath>> path_lists_;
  std::vector<ChildPath> mount_points_;
  std::vector<const char*> device_sources_, device_targets_;
  std::vector<ChildBind> binds_;
  std::vector<ChildFile> files_;
  std::vector<char*> argv_, envp_;
  std::vector<const char*> exec_candidates_;
  std::vector<sock_filter> seccomp_;
};

std::string inNewRoot(const std::string& container_path) {
  return container_path == "/" ? std::string("/newroot") : "/newroot" + container_path;
}

std::string inOldRoot(const std::string& host_path) {
  return host_path == "/" ? std::string("/oldroot") : "/oldroot" + host_path;
}

std::string idMapLine(unsigned inside, unsigned outside) {
  return std::to_string(inside) + " " + std::to_string(outside) + " 1\n";
}

void prepare(const LaunchPlan& plan, ChildProgramStorage& storage, ChildProgram& program) {
  program.uid_map = storage.keep(idMapLine(plan.inside_uid, plan.outside_uid));
  program.gid_map = storage.keep(idMapLine(plan.inside_gid, plan.outside_gid));
  program.image_source = storage.keep(inOldRoot(plan.image_root));
  program.root_mode = plan.root_mode;
  // Image paths with ',' ':' or '\\' are refused by buildLaunchPlan: no escaping is needed.
  program.overlay_options = storage.keep("lowerdir=" + inOldRoot(plan.image_root) +
                                         ",upperdir=/upper,workdir=/work");
  program.image_remount_flags = plan.image_remount_flags;
  for (const auto& point : plan.mount_points) {
    storage.mount_points_.push_back({storage.keep("/upper" + point.container_path),
                                     point.directory});
  }
  program.mount_points = storage.mount_points_.data();
  program.mount_point_count = storage.mount_points_.size();
  program.mount_sys = plan.mount_sys;
  program.sys_remount_flags = plan.sys_remount_flags;
  for (const auto& device : plan.devices) {
    storage.device_sources_.push_back(storage.keep("/oldroot/dev/" + device));
    storage.device_targets_.push_back(storage.keep("/newroot/dev/" + device));
  }
  program.device_sources = storage.device_sources_.data();
  program.device_targets = storage.device_targets_.data();
  program.device_count = plan.devices.size();
  for (const auto& bind : plan.binds) {
    auto& create = storage.path_lists_.emplace_back();
    for (const auto& point : bind.create_first) {
      create.push_back({storage.keep(inNewRoot(point.container_path)), point.directory});
    }
    storage.binds_.push_back({storage.keep(inOldRoot(bind.host_source)),
                              storage.keep(inNewRoot(bind.container_target)), create.data(),
                              create.size(), bind.read_only, bind.remount_flags});
  }
  for (const auto& file : plan.files) {
    storage.files_.push_back({storage.keep(inNewRoot(file.path)), file.content.data(),
                              file.content.size(), static_cast<mode_t>(file.mode)});
  }
  // A replaced file is written into the staging tmpfs (the root while the container is set up,
  // detached at the end) and bound over the image's file, after the plan's binds: read-only like
  // the image, or writable with --writable-tmpfs, whose writes vanish with the container as the
  // staging tmpfs does. The staging tmpfs is nosuid,nodev: the kernel locks those flags into the
  // bind's remount.
  const bool replaced_read_only = plan.root_mode != RootMode::kOverlayWritable;
  for (std::size_t i = 0; i < plan.replaced_files.size(); ++i) {
    const ContainerFile& file = plan.replaced_files[i];
    const char* staged = storage.keep("/replaced-" + std::to_string(i));
    storage.files_.push_back({staged, file.content.data(), file.content.size(),
                              static_cast<mode_t>(file.mode)});
    storage.binds_.push_back({staged, storage.keep(inNewRoot(file.path)), nullptr, 0,
                              replaced_read_only, MS_NOSUID | MS_NODEV});
  }
  program.binds = storage.binds_.data();
  program.bind_count = storage.binds_.size();
  program.files = storage.files_.data();
  program.file_count = storage.files_.size();
  program.workdir = plan.workdir.c_str();
  for (const auto& arg : plan.argv) storage.argv_.push_back(const_cast<char*>(arg.c_str()));
  storage.argv_.push_back(nullptr);
  for (const auto& entry : plan.environment) {
    storage.envp_.push_back(const_cast<char*>(entry.c_str()));
  }
  storage.envp_.push_back(nullptr);
  program.argv = storage.argv_.data();
  program.envp = storage.envp_.data();
  for (const auto& candidate : plan.exec_candidates) {
    storage.exec_candidates_.push_back(candidate.c_str());
  }
  program.exec_candidates = storage.exec_candidates_.data();
  program.exec_candidate_count = storage.exec_candidates_.size();
  if (plan.memory_bytes) {
    program.limit_memory = true;
    program.memory_limit.rlim_cur = program.memory_limit.rlim_max =
        static_cast<rlim_t>(*plan.memory_bytes);
  }
}

/// The stacks of the setup child and of the job until it execs, one mapping: from low to high,
/// guard, job stack, guard, setup stack. Only the pages they touch are ever allocated; the guard
/// pages turn an overflow into a fault instead of a write into kbatch's memory.
class ChildStacks {
 public:
  static constexpr std::size_t kSize = 128 * 1024;
  static constexpr std::size_t kGuard = 4096;
  static constexpr std::size_t kMapping = 2 * (kGuard + kSize);
  ChildStacks() {
    void* mapping =
        mmap(nullptr, kMapping, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) return;
    char* bytes = static_cast<char*>(mapping);
    if (mprotect(bytes + kGuard, kSize, PROT_READ | PROT_WRITE) != 0 ||
        mprotect(bytes + 2 * kGuard + kSize, kSize, PROT_READ | PROT_WRITE) != 0) {
      munmap(mapping, kMapping);
      return;
    }
    base_ = bytes;
  }
  ~ChildStacks() {
    if (base_ != nullptr) munmap(base_, kMapping);
  }
  ChildStacks(const ChildStacks&) = delete;
  ChildStacks& operator=(const ChildStacks&) = delete;
  bool valid() const { return base_ != nullptr; }
  void* jobTop() const { return base_ + kGuard + kSize; }
  void* setupTop() const { return base_ + kMapping; }

 private:
  char* base_ = nullptr;
};

// Not instrumented by AddressSanitizer: see runner/CMakeLists.txt.
__attribute__((no_sanitize("address"))) int containerInitEntry(void* program) {
  runContainerInit(*static_cast<const ChildProgram*>(program));
}

/// clone(2) into new user, mount, PID and IPC namespaces, sharing this process's memory and
/// suspending it until the child execs or exits (CLONE_VM|CLONE_VFORK). The child gets its own
/// copies of the descriptor table and signal handlers (no CLONE_FILES, CLONE_SIGHAND).
pid_t cloneIntoNamespaces(const ChildProgram& program, const ChildStacks& stacks) noexcept {
  int flags = CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
              SIGCHLD;
  return clone(containerInitEntry, stacks.setupTop(), flags,
               const_cast<ChildProgram*>(&program));
}

/// Hands `signal_number` to the init for the job (init_protocol.h: the init drops it if the job
/// got the same signal directly).
void forwardToJob(pid_t init, int signal_number) noexcept {
  sigval value{};
  value.sival_int = signal_number;
  sigqueue(init, kForwardRequestSignal, value);
}

double monotonicSeconds() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

/// Waits for the init, relaying the forwarded signals and enforcing the walltime. Returns the
/// init's wait status.
int superviseInit(const ChildProgram& program, pid_t init, const LaunchPlan& plan,
                  bool* walltime_exceeded) noexcept {
  bool has_deadline = plan.walltime_s.has_value();
  double deadline = has_deadline ? monotonicSeconds() + static_cast<double>(*plan.walltime_s) : 0;
  bool sent_term = false;
  for (;;) {
    siginfo_t info{};
    int signal_number;
    if (has_deadline) {
      double remaining = deadline - monotonicSeconds();
      if (remaining < 0) remaining = 0;
      timespec timeout{static_cast<time_t>(remaining),
                       static_cast<long>((remaining - static_cast<double>(
                                                          static_cast<time_t>(remaining))) * 1e9)};
      signal_number = sigtimedwait(&program.forwarded_signals, &info, &timeout);
      if (signal_number < 0 && errno == EAGAIN) {
        // Past the walltime: SIGTERM (the init relays it to the job), then SIGKILL to the init,
        // which takes the whole PID namespace with it.
        *walltime_exceeded = true;
        if (!sent_term) {
          forwardToJob(init, SIGTERM);
          sent_term = true;
          deadline = monotonicSeconds() + kWalltimeGraceSeconds;
        } else {
          kill(init, SIGKILL);
          has_deadline = false;
        }
        continue;
      }
    } else {
      signal_number = sigwaitinfo(&program.forwarded_signals, &info);
    }
    if (signal_number < 0) continue;  // EINTR
    if (signal_number == SIGCHLD) {
      int status = 0;
      pid_t reaped = waitpid(init, &status, WNOHANG);
      if (reaped == init) return status;
      continue;
    }
    // The terminal's signals (SI_KERNEL) already reached the job through its process group.
    if (info.si_code != SI_KERNEL) forwardToJob(init, signal_number);
  }
}

void readReports(int fd, LaunchResult& result) noexcept {
  Report record;
  for (;;) {
    ssize_t n = read(fd, &record, sizeof record);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof record)) return;
    if (record.kind == Report::kStepFailed && result.failed_step == Step::kNone) {
      result.failed_step = static_cast<Step>(record.step);
      result.failed_errno = record.error;
      result.failed_detail = record.detail;
    } else if (record.kind == Report::kJobEnded) {
      result.job_status_known = true;
      result.job_wait_status = record.detail;
    }
  }
}

}  // namespace

LaunchResult launchAndWait(const LaunchPlan& plan,
                           const std::function<std::vector<sock_filter>()>& compile_seccomp) {
  ChildProgramStorage storage;
  ChildProgram program;
  prepare(plan, storage, program);
  // The filter is compiled before clone: the child cannot wait for it (kbatch is suspended while
  // the child runs) and must not allocate.
  storage.seccomp_ = compile_seccomp();
  program.seccomp.len = static_cast<unsigned short>(storage.seccomp_.size());
  program.seccomp.filter = storage.seccomp_.data();
  LaunchResult result;
  if (storage.seccomp_.empty() || storage.seccomp_.size() > BPF_MAXINSNS) {
    result.failed_step = Step::kLoadSeccomp;
    result.failed_errno = EINVAL;
    return result;
  }
  ChildStacks stacks;
  if (!stacks.valid()) {
    result.failed_step = Step::kClone;
    result.failed_errno = errno;
    return result;
  }
  program.empty_capabilities = cap_init();  // all sets empty
  if (program.empty_capabilities == nullptr) {
    result.failed_step = Step::kDropCapabilities;
    result.failed_errno = errno;
    return result;
  }
  program.job_stack_top = stacks.jobTop();
  program.init_fd = open(plan.init_executable.c_str(), O_PATH | O_CLOEXEC);
  if (program.init_fd < 0) {
    result.failed_step = Step::kStartInit;
    result.failed_errno = errno;
    cap_free(program.empty_capabilities);
    return result;
  }

  // Block the forwarded signals and SIGCHLD before clone so that none is lost: both kbatch and the
  // init take them with sigwaitinfo. SIGCHLD must not be ignored or waitpid would find no child.
  sigemptyset(&program.forwarded_signals);
  for (int signal_number : kForwardedSignals) sigaddset(&program.forwarded_signals, signal_number);
  sigaddset(&program.forwarded_signals, SIGCHLD);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigaction(SIGCHLD, &default_action, &program.job_sigchld_action);
  sigset_t blocked = program.forwarded_signals;
  sigaddset(&blocked, kForwardRequestSignal);  // the init's, inherited through clone and execve
  sigprocmask(SIG_BLOCK, &blocked, &program.job_signal_mask);

  int report_pipe[2];
  if (pipe2(report_pipe, O_CLOEXEC) != 0) {
    result.failed_step = Step::kClone;
    result.failed_errno = errno;
  } else {
    program.report_fd = report_pipe[1];
    program.report_fd_text = storage.keep(std::to_string(report_pipe[1]));
    // The child inherits a copy of the descriptor table: its read end is closed by its execs.
    pid_t init = cloneIntoNamespaces(program, stacks);
    int clone_errno = errno;
    close(report_pipe[1]);
    if (init < 0) {
      result.failed_step = Step::kClone;
      result.failed_errno = clone_errno;
    } else {
      result.init_wait_status = superviseInit(program, init, plan, &result.walltime_exceeded);
      readReports(report_pipe[0], result);
    }
    close(report_pipe[0]);
  }

  close(program.init_fd);
  sigprocmask(SIG_SETMASK, &program.job_signal_mask, nullptr);
  sigaction(SIGCHLD, &program.job_sigchld_action, nullptr);
  cap_free(program.empty_capabilities);
  return result;
}

}  // namespace kbatch::runner::core
