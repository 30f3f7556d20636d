#pragma once
// The privileged core's interface (private to the runner). Everything here uses only libc,
// libseccomp and libcap: no YAML, CLI or HTTP headers, no exceptions after clone().
//
// The parent turns a validated LaunchPlan into a ChildProgram: plain arrays of C strings and POD
// records, built before clone() so that the child only reads memory and makes system calls. The
// child runs in the parent's address space (CLONE_VM|CLONE_VFORK: the parent is suspended until
// it execs kbatch-init), so it must not allocate or write anything but its own stack. It reports
// a failure as (step, errno, detail) over a close-on-exec pipe.

#include <linux/filter.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/capability.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "kbatch/runner/launch_plan.h"
#include "linux/init_protocol.h"

namespace kbatch::runner::core {

/// The named steps of starting a container, in the order they run. Reports name the step.
enum class Step : std::int32_t {
  kNone = 0,
  kClone,                  // parent: clone(2) with new user, mount, PID and IPC namespaces
  kSetParentDeathSignal,   // init: die with kbatch
  kMapIds,                 // init: setgroups deny, uid_map, gid_map
  kMakeMountsPrivate,      // init: no mount event leaves our namespace
  kMountStaging,           // init: a tmpfs to build the new root in
  kPivotToStaging,         // init: the host root moves to /oldroot
  kCreateMountPoints,      // init: mount points missing in the image, in the overlay's upper layer
  kMountImage,             // init: the image (bind or overlay) at /newroot
  kMountProc,              // init: a fresh procfs for the new PID namespace
  kMountSys,               // init: the host's /sys, read-only
  kMountDev,               // init: tmpfs /dev with a few host devices, devpts, /dev/shm
  kWriteFiles,             // init: files the plan writes into /dev (the job body)
  kSealDev,                // init: /dev becomes read-only
  kMountTmp,               // init: tmpfs /tmp
  kBindMounts,             // init: --bind, the working directory, PBS_NODEFILE
  kRemountRootReadOnly,    // init: the image becomes read-only
  kPivotToImage,           // init: the image becomes /, the host root is detached
  kChangeDirectory,        // init: the job's working directory
  kNoNewPrivs,             // init: PR_SET_NO_NEW_PRIVS
  kDropCapabilities,       // init: bounding, ambient, inheritable, permitted, effective
  kStartJob,               // init: clone the job (CLONE_VM|CLONE_VFORK)
  kSetLimits,              // job: RLIMIT_DATA
  kLoadSeccomp,            // job: the filter, last
  kExecute,                // job: execve(2)
  kStartInit,              // init: execveat(2) of kbatch-init, which stays as PID 1
  kCount
};

/// Human-readable step name ("mount /proc"), for error messages in the parent.
const char* describeStep(Step step) noexcept;

struct ChildPath {
  const char* path;
  bool directory;
};

struct ChildBind {
  const char* source;              // "/oldroot/<host path>"
  const char* target;              // "/newroot/<container path>"
  const ChildPath* create_first;   // mount points to create just before mounting
  std::size_t create_count;
  bool read_only;
  unsigned long remount_flags;     // locked MS_* flags to carry over when remounting read-only
};

struct ChildFile {
  const char* path;  // "/newroot/tmp/..."
  const char* data;
  std::size_t size;
  mode_t mode;
};

/// Everything the child needs, as plain data. Built by the parent (prepareChildProgram); pointers
/// refer to strings the parent keeps alive until the child has exec'd or died.
struct ChildProgram {
  int report_fd = -1;
  const char* uid_map = nullptr;        // "<inside> <outside> 1\n"
  const char* gid_map = nullptr;
  const char* image_source = nullptr;   // "/oldroot/<image>"
  RootMode root_mode = RootMode::kBind;
  const char* overlay_options = nullptr;
  unsigned long image_remount_flags = 0;
  const ChildPath* mount_points = nullptr;
  std::size_t mount_point_count = 0;
  bool mount_sys = false;
  unsigned long sys_remount_flags = 0;
  const char* const* device_sources = nullptr;  // "/oldroot/dev/null"
  const char* const* device_targets = nullptr;  // "/newroot/dev/null"
  std::size_t device_count = 0;
  const ChildBind* binds = nullptr;
  std::size_t bind_count = 0;
  const ChildFile* files = nullptr;
  std::size_t file_count = 0;
  const char* workdir = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* const* exec_candidates = nullptr;
  std::size_t exec_candidate_count = 0;
  sock_fprog seccomp{};                 // compiled by the parent before clone
  void* job_stack_top = nullptr;        // the job's own stack until it execs (launch.cc)
  int init_fd = -1;                     // kbatch-init, opened O_PATH|O_CLOEXEC before clone
  const char* report_fd_text = nullptr; // report_fd in decimal, kbatch-init's first argument
  cap_t empty_capabilities = nullptr;   // allocated by the parent with cap_init()
  bool limit_memory = false;
  rlimit memory_limit{};
  sigset_t forwarded_signals{};         // blocked in kbatch and init, waited for with sigwaitinfo
  sigset_t job_signal_mask{};           // the caller's mask, restored in the job
  struct sigaction job_sigchld_action{};  // the caller's SIGCHLD disposition, restored in the job
};

/// Runs in the child of clone(), which is PID 1 of the new namespaces: sets up the container,
/// starts the job, and replaces itself with kbatch-init, which supervises the job and reports its
/// wait status. Never returns.
[[noreturn]] void runContainerInit(const ChildProgram& program) noexcept;

/// What happened, as the parent saw it.
struct LaunchResult {
  Step failed_step = Step::kNone;  // kNone: the job's command started
  int failed_errno = 0;
  int failed_detail = 0;
  bool job_status_known = false;
  int job_wait_status = 0;         // from the init's kJobEnded report
  int init_wait_status = 0;        // the init itself (killed by SIGKILL at walltime, ...)
  bool walltime_exceeded = false;
};

/// Prepares the ChildProgram for `plan`, starts the container and waits for it, forwarding
/// signals and enforcing the walltime. A failed clone is reported as Step::kClone. Throws
/// std::bad_alloc and what `compile_seccomp` throws, always before any child exists.
LaunchResult launchAndWait(const LaunchPlan& plan,
                           const std::function<std::vector<sock_filter>()>& compile_seccomp);

}  // namespace kbatch::runner::core
