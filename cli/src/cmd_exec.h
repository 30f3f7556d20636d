#pragma once
/// The options `kbatch exec` and `kbatch run` share, and the local launch both end in. Private to
/// the CLI (cmd_exec.cc, cmd_run.cc).

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kbatch/rewrite/job_spec.h"
#include "kbatch/runner/run_job.h"

namespace kbatch::cli {

/// Flags as CLI11 fills them.
struct ExecFlags {
  std::vector<std::string> binds;
  std::vector<std::string> env;
  std::optional<std::string> workdir;
  bool clean_env = false;
  bool writable_tmpfs = false;
  bool fakeroot = false;
  std::optional<std::string> backend;
  std::optional<std::string> image;
  std::optional<std::string> from_binary;
  std::optional<int> cpus;
  std::optional<std::string> memory;
  std::optional<std::string> walltime;
  std::optional<int> gpus;
};

/// Adds the shared options to `command`.
void addExecOptions(CLI::App* command, ExecFlags& flags);

/// Applies the flags on top of `job` (flags win over the script's #KBATCH directives; binds and
/// env add to them). Throws kbatch::Error naming the flag for a malformed value.
void applyExecFlags(const ExecFlags& flags, JobSpec& job);

/// Extra setup the local backend needs besides the JobSpec.
struct LocalLaunch {
  bool clean_env = false;
  bool writable_tmpfs = false;
  bool fakeroot = false;
  std::vector<runner::ContainerFile> files;
  /// Variables set for the job after --env (kbatch run's PBS_* context).
  std::vector<std::pair<std::string, std::string>> batch_variables;
  /// The shell for a dependency image when the job names no image.
  std::string shell = "/bin/sh";
};

/// Resolves the job's image (reference, or dependency image from its binary and shell), builds the
/// launch request, runs the job in a local container and returns how it ended. Refuses the k8s
/// backend (issue 7).
runner::JobOutcome runJobLocally(const JobSpec& job, const LocalLaunch& launch);

/// Ends kbatch with a Pod's exit code, as runner::exitLikeJob ends it for a local job.
[[noreturn]] void exitAsJob(int exit_code);

}  // namespace kbatch::cli
