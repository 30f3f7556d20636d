#pragma once
// The privileged core's interface (private to the runner). Everything here uses only libc,
// libseccomp and libcap: no YAML, CLI or HTTP headers, no exceptions after clone().
//
// The parent turns a validated LaunchPlan into a ChildProgram: plain arrays of C strings and POD
// records, built before clone() so that the child only reads memory and makes system calls. The
// child reports a failure as (step, errno, detail) over a close-on-exec pipe.

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
  kReceiveSeccomp,         // init: the compiled filter, from the parent (see launchAndWait)
  kStartJob,               // init: fork the job
  kSetLimits,              // job: RLIMIT_DATA
  kLoadSeccomp,            // job: the filter, last
  kExecute,                // job: execve(2)
  kCount
};

/// Human-readable step name ("mount /proc"), for error messages in the parent.
const char* describeStep(Step step) noexcept;

/// One record on the report pipe; small enough that write(2) is atomic (PIPE_BUF).
struct Report {
  enum Kind : std::int32_t { kStepFailed = 1, kJobEnded = 2 };
  std::int32_t kind = 0;
  std::int32_t step = 0;    // Step
  std::int32_t error = 0;   // errno
  std::int32_t detail = 0;  // bind index for kBindMounts, wait status for kJobEnded
};

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
  sock_fprog seccomp{};                 // filled in the init by receiveSeccomp, before the job
  int seccomp_fd = -1;                  // where the parent sends the compiled filter
  sock_filter* seccomp_buffer = nullptr;  // BPF_MAXINSNS instructions, allocated by the parent
  cap_t empty_capabilities = nullptr;   // allocated by the parent with cap_init()
  bool limit_memory = false;
  rlimit memory_limit{};
  sigset_t forwarded_signals{};         // blocked in kbatch and init, waited for with sigwaitinfo
  sigset_t job_signal_mask{};           // the caller's mask, restored in the job
  struct sigaction job_sigchld_action{};  // the caller's SIGCHLD disposition, restored in the job
};

/// The signals kbatch and the init forward to the job.
inline constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT,
                                            SIGCONT};

/// Runs in the child of clone(): sets up the container, becomes its init (PID 1), starts the job
/// and reports its wait status. Never returns.
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
/// std::bad_alloc (before clone) and what `compile_seccomp` throws.
/// `compile_seccomp` runs in the parent after clone, while the child sets up the container (the
/// filter is needed only when the job starts), and its program reaches the child through a pipe.
/// If it throws, the child is killed and reaped before the exception propagates.
LaunchResult launchAndWait(const LaunchPlan& plan,
                           const std::function<std::vector<sock_filter>()>& compile_seccomp);

}  // namespace kbatch::runner::core
