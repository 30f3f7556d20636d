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

/// A job must get each signal once. Batch systems signal a whole job at once: TORQUE and PBS its
/// session, Slurm every process of its cgroup, a terminal its foreground process group. kbatch,
/// the init and the job are all in that set, so the job has such a signal already when kbatch
/// forwards its own copy, and a second SIGTERM runs a checkpointing trap twice. kbatch therefore
/// does not forward with kill(2): it asks the init, with this real-time signal carrying the
/// signal's number (sigqueue(3); real-time signals queue, so the request never merges with a
/// direct delivery of the same signal). The init holds each request for kForwardHoldMilliseconds
/// and drops it if the same signal reaches the init directly within that time either way (it was
/// sent to a set that holds the job); otherwise (kill of kbatch alone, the walltime) it passes it
/// on. Signals that reach the init directly are never passed on. Kernel numbering (glibc keeps
/// 32-34 for itself); blocked in kbatch and the init from before clone(2).
inline constexpr int kForwardRequestSignal = 40;
inline constexpr long kForwardHoldMilliseconds = 100;

}  // namespace kbatch::runner::core
