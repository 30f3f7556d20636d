#pragma once
/// Running one job in a local container: the entry point `kbatch exec` and `kbatch run` call. It
/// builds the launch plan, hands it to the privileged core (runner/src/linux/), turns the core's
/// (step, errno) report into one clear kbatch::Error, and returns how the job ended.

#include <string>
#include <vector>

#include "kbatch/runner/launch_plan.h"

namespace kbatch::runner {

/// How the job ended, exactly as wait(2) said.
struct JobOutcome {
  bool signaled = false;   ///< the job died by a signal
  int exit_code = 0;       ///< when !signaled
  int signal = 0;          ///< when signaled
  bool walltime_exceeded = false;
  /// The status a shell would show: exit_code, or 128 + signal.
  int shellStatus() const { return signaled ? 128 + signal : exit_code; }
};

/// Refuses to run when kbatch was started setuid or setgid (real and effective ids differ, or the
/// kernel marked the process AT_SECURE): kbatch must never be installed with those bits
/// (Charliecloud's ch-run does the same). Throws kbatch::Error, exit 125.
void refuseToRunSetuid();

/// Runs the request to completion. Signals SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT and
/// SIGCONT sent to this process are forwarded to the job; a job past its walltime gets SIGTERM, then
/// SIGKILL. Throws kbatch::Error for every failure before the job's command started (exit 125, 126
/// or 127 with a hint), never for the job's own failure.
JobOutcome runInContainer(const LaunchRequest& request);

/// Ends this process the way the job ended: exit(N), or death by the same signal (core dumps off,
/// default disposition), so that the calling shell reports 128+N as it would for the job itself.
/// Static destructors do not run: the job is over, and kbatch's exit is part of every job's run
/// time (bench/exec_start.sh).
[[noreturn]] void exitLikeJob(const JobOutcome& outcome);

}  // namespace kbatch::runner
