#pragma once
// What the container's setup process, kbatch-init (runner/init/) and kbatch share: the report
// record and the signals that are forwarded. Plain C types only: kbatch-init is a static program
// that uses nothing but libc.

#include <signal.h>

#include <cstdint>

namespace kbatch::runner::core {

/// One record on the report pipe; small enough that write(2) is atomic (PIPE_BUF).
struct Report {
  enum Kind : std::int32_t { kStepFailed = 1, kJobEnded = 2 };
  std::int32_t kind = 0;
  std::int32_t step = 0;    // Step (core.h)
  std::int32_t error = 0;   // errno
  std::int32_t detail = 0;  // bind index for kBindMounts, wait status for kJobEnded
};

/// The signals kbatch and the init forward to the job. They and SIGCHLD stay blocked from before
/// clone(2) until the job starts, and in kbatch-init throughout (the mask survives execve(2)):
/// both wait for them with sigwaitinfo, so none is lost while a handler could not yet run.
inline constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT,
                                            SIGCONT};

}  // namespace kbatch::runner::core
