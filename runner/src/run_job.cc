// From a LaunchRequest to a finished job: plan, launch through the core, and explain failures.

#include "kbatch/runner/run_job.h"

#include <signal.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/runner/seccomp_filter.h"
#include "linux/core.h"

namespace kbatch::runner {
namespace {

using core::Step;

std::string joinArgv(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& arg : argv) text += (text.empty() ? "" : " ") + arg;
  return text;
}

/// The one clear line for a failure before the job's command started.
[[noreturn]] void throwSetupFailure(const core::LaunchResult& result, const LaunchPlan& plan) {
  const int err = result.failed_errno;
  const std::string cause = describeErrno(err);
  switch (result.failed_step) {
    case Step::kClone:
      if (err == EPERM || err == ENOSPC || err == EINVAL || err == EUSERS) {
        throw Error("create a user namespace", "", cause,
                    "this kernel does not let unprivileged users create user namespaces; the admin "
                    "must enable them (sysctl user.max_user_namespaces > 0, "
                    "kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0)");
      }
      throw Error("start the container", plan.image_root, cause);
    case Step::kMapIds:
      throw Error("map uid/gid into the user namespace", "", cause,
                  "the kernel or a security module (AppArmor, SELinux) blocks unprivileged user "
                  "namespaces here; ask the admin to allow them");
    case Step::kMountImage:
      if (plan.root_mode != RootMode::kBind) {
        throw Error("mount the image with an overlay", plan.image_root, cause,
                    plan.root_mode == RootMode::kOverlayWritable
                        ? "overlayfs in a user namespace needs Linux 5.11 or later and a lower "
                          "filesystem that supports it; run without --writable-tmpfs"
                        : "the image lacks a mount point kbatch needs and overlayfs in a user "
                          "namespace is unavailable (Linux 5.11+); create the missing directories "
                          "(/proc, /dev, /tmp, bind destinations) in the image");
      }
      throw Error("bind-mount the image", plan.image_root, cause);
    case Step::kBindMounts: {
      const auto index = static_cast<std::size_t>(result.failed_detail);
      if (result.failed_detail >= 0 && index >= plan.binds.size() &&
          index - plan.binds.size() < plan.replaced_files.size()) {
        throw Error("show the job's account in", plan.replaced_files[index - plan.binds.size()].path,
                    cause, "report this as a kbatch bug");
      }
      std::string spec = result.failed_detail >= 0 && index < plan.binds.size()
                             ? plan.binds[index].spec
                             : std::string("?");
      throw Error("bind-mount", spec, cause,
                  "check that the source is readable by you and the destination can exist in the "
                  "image");
    }
    case Step::kChangeDirectory:
      throw Error("change to the working directory", plan.workdir, cause + " in the container",
                  "give --workdir a directory that exists in the image or is bind-mounted");
    case Step::kExecute: {
      const std::string& command = plan.argv[0];
      if (err == ENOENT || err == ENOTDIR) {
        throw Error("run", command, "command not found in the image",
                    command.find('/') == std::string::npos
                        ? "it was looked up in the job's PATH inside the container; give its "
                          "absolute path or add it to the image (its ELF interpreter, e.g. "
                          "/lib64/ld-linux-x86-64.so.2, must be in the image too)"
                        : "add it to the image, with its ELF interpreter and libraries",
                    exit_code::kNotFound);
      }
      if (err == ENOEXEC) {
        throw Error("run", command, "not an executable format this machine can run", 
                    "check the file's architecture, or start it with its interpreter",
                    exit_code::kCannotExecute);
      }
      throw Error("run", command, cause,
                  err == EACCES ? "make it executable (chmod +x) and check the directories above "
                                  "it are searchable"
                                : std::string(),
                  exit_code::kCannotExecute);
    }
    case Step::kStartInit:
      throw Error("start the container's init", plan.init_executable, cause,
                  "kbatch-init is installed with kbatch, in libexecdir/kbatch beside kbatch-full; "
                  "reinstall kbatch");
    default:
      throw Error("set up the container", plan.image_root,
                  std::string(core::describeStep(result.failed_step)) + ": " + cause,
                  "run with -vv for the launch plan; this may be a kernel without unprivileged "
                  "overlay, devpts or procfs mounts in user namespaces");
  }
}

void logPlan(const LaunchPlan& plan) {
  log::debug("image {} ({})", plan.image_root,
             plan.root_mode == RootMode::kBind            ? "read-only bind"
             : plan.root_mode == RootMode::kOverlayWritable ? "writable tmpfs overlay"
                                                           : "read-only overlay for mount points");
  for (const auto& bind : plan.binds) {
    log::debug("bind {} -> {} ({})", bind.host_source, bind.container_target,
               bind.read_only ? "ro" : "rw");
  }
  for (const auto& file : plan.replaced_files) {
    log::debug("{} shown with the job's account added ({} bytes)", file.path, file.content.size());
  }
  log::debug("uid {} -> {}, gid {} -> {}; workdir {}; command {}",
             plan.outside_uid, plan.inside_uid, plan.outside_gid, plan.inside_gid, plan.workdir,
             joinArgv(plan.argv));
}

}  // namespace

void refuseToRunSetuid() {
  // AT_SECURE covers setuid, setgid and file capabilities (getauxval(3)).
  if (getuid() != geteuid() || getgid() != getegid() || getauxval(AT_SECURE) != 0) {
    throw Error("run", "kbatch", "refusing to run setuid or setgid",
                "kbatch needs no privileges: install it without the setuid/setgid bits and "
                "without file capabilities");
  }
}

JobOutcome runInContainer(const LaunchRequest& request) {
  refuseToRunSetuid();
  LaunchPlan plan = buildLaunchPlan(request);
  if (plan.init_executable.empty()) {
    throw Error("start the container's init", "kbatch-init", "no path given",
                "the caller of runInContainer must fill LaunchRequest::init_executable");
  }
  logPlan(plan);
  // Our own buffered output must not interleave with the job's.
  std::fflush(stdout);
  std::fflush(stderr);
  core::LaunchResult result = core::launchAndWait(plan, [&request] {
    if (request.precompiled_seccomp) {
      if (auto program = usablePrecompiledFilter(*request.precompiled_seccomp)) {
        log::debug("seccomp: {} instructions, precompiled by kbatch policy compile",
                   program->size());
        return std::move(*program);
      }
      log::debug("seccomp: the precompiled filter is for {}, not this machine ({}); compiling",
                 request.precompiled_seccomp->build, seccompBuildIdentity());
    }
    std::vector<sock_filter> program = compileSeccompFilter(request.seccomp).program;
    log::debug("seccomp: {} instructions", program.size());
    return program;
  });
  if (result.failed_step != Step::kNone) throwSetupFailure(result, plan);

  JobOutcome outcome;
  outcome.walltime_exceeded = result.walltime_exceeded;
  int status = result.job_status_known ? result.job_wait_status : result.init_wait_status;
  if (WIFSIGNALED(status)) {
    outcome.signaled = true;
    outcome.signal = WTERMSIG(status);
  } else {
    outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : exit_code::kKbatchError;
  }
  if (outcome.walltime_exceeded) {
    log::error("the job ran past its walltime of {} s and was terminated", *plan.walltime_s);
  }
  return outcome;
}

[[noreturn]] void exitLikeJob(const JobOutcome& outcome) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (!outcome.signaled) std::_Exit(outcome.exit_code);
  // Die by the same signal so that our parent sees exactly what it would have seen for the job.
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(outcome.signal, SIG_DFL);
  sigset_t just_this;
  sigemptyset(&just_this);
  sigaddset(&just_this, outcome.signal);
  sigprocmask(SIG_UNBLOCK, &just_this, nullptr);
  kill(getpid(), outcome.signal);
  // Only reached for a signal whose default action is not to terminate.
  std::_Exit(exit_code::kSignalBase + outcome.signal);
}

}  // namespace kbatch::runner
