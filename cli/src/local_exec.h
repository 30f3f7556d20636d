#pragma once
/// `kbatch exec` and `kbatch run` without their command-line parser: the options they share, the
/// commands as parsed, and the local launch both end in. CLI11-free, so that the lean front end
/// (exec_main.cc) links no CLI11 (nor, through it, <iostream>'s static initialisation); the CLI11
/// commands (cmd_exec.cc, cmd_run.cc) fill the same structures.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kbatch/rewrite/job_spec.h"
#include "kbatch/runner/run_job.h"

namespace kbatch::cli {

/// The options `kbatch exec` and `kbatch run` share, as a parser fills them.
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
/// launch request, runs the job in a local container and returns how it ended. `environment` is
/// kbatch's own (runner::currentEnvironment()), which the caller has built already.
runner::JobOutcome runJobLocally(const JobSpec& job, const LocalLaunch& launch,
                                 const std::map<std::string, std::string>& environment);

/// Ends kbatch with a Pod's exit code, as runner::exitLikeJob ends it for a local job.
[[noreturn]] void exitAsJob(int exit_code);

/// `kbatch exec [options] IMAGE -- CMD [ARGS...]` as parsed.
struct ExecCommand {
  ExecFlags flags;
  std::optional<std::string> job_body;    ///< --job-body ENCODING
  std::optional<std::string> image_word;  ///< the positional IMAGE
  std::vector<std::string> words;         ///< the command and its arguments
};

/// Runs the exec command to its end: kbatch exits as the job did.
[[noreturn]] void runExec(ExecCommand& command);

/// `kbatch run [options] JOB_SCRIPT` as parsed.
struct RunCommand {
  ExecFlags flags;
  std::string script;
};

/// Runs the job script in its container to its end: kbatch exits as the job did.
[[noreturn]] void runScript(RunCommand& command);

}  // namespace kbatch::cli
