/// `kbatch run JOB_SCRIPT [exec options]`: run a whole job script in its container as the batch
/// system would on this node. The README quick start's main command: no batch system needed.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cmd_exec.h"
#include "command.h"
#include "kbatch/common/error.h"
#include "kbatch/rewrite/parser.h"
#include "kbatch/runner/job_environment.h"

namespace kbatch::cli {
namespace {

namespace fs = std::filesystem;

struct RunCommand {
  ExecFlags flags;
  std::string script;
};

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("read job script", path.string(), describeErrno(errno), {}, exit_code::kNotFound);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> splitWords(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

/// A job id unique on this node for the lifetime of the job, in TORQUE's `<seq>.<server>` form.
std::string localJobId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::to_string(getpid()) + "." + (host[0] != '\0' ? host : "localhost");
}

[[noreturn]] void runScript(RunCommand& command) {
  runner::refuseToRunSetuid();
  fs::path script = command.script;
  std::string content = readFile(script);
  rewrite::ParseOptions options;
  options.file_name = script.string();
  if (const char* prefix = std::getenv("PBS_DPREFIX")) options.pbs_dprefix = prefix;
  JobSpec job = rewrite::parseJobScript(content, options);
  job.script_path = script.string();
  applyExecFlags(command.flags, job);

  // The job's shell: -S, else the shebang's interpreter (with its arguments), else /bin/sh.
  std::vector<std::string> shell = splitWords(job.shell.value_or("/bin/sh"));
  if (shell.empty()) shell = {"/bin/sh"};

  LocalLaunch launch;
  launch.clean_env = command.flags.clean_env;
  launch.writable_tmpfs = command.flags.writable_tmpfs;
  launch.fakeroot = command.flags.fakeroot;
  launch.shell = shell.front();
  // The script itself goes into the container's /dev; its directives are comments to the shell.
  std::string in_container = "/dev/kbatch-job-" + script.filename().string();
  launch.files.push_back({in_container, content, 0700});
  job.command = shell;
  job.command.push_back(in_container);

  std::error_code ec;
  std::string cwd = fs::current_path(ec).string();
  const std::string job_id = localJobId();
  const std::string name = job.name.value_or(script.filename().string());
  const int ppn = job.resources.ppn.value_or(1);
  // What TORQUE's pbs_mom sets for every job (a subset; see DESIGN.md).
  launch.batch_variables = {
      {"PBS_JOBID", job_id},
      {"PBS_JOBNAME", name},
      {"PBS_O_WORKDIR", job.workdir.value_or(cwd)},
      {"PBS_NUM_PPN", std::to_string(ppn)},
      {"PBS_NUM_NODES", std::to_string(job.resources.nodes.value_or(1))},
      {"PBS_ENVIRONMENT", "PBS_BATCH"},
      {"PBS_O_HOST", job_id.substr(job_id.find('.') + 1)},
  };
  job.job_id = job_id;
  job.submit_dir = cwd;
  runner::exitLikeJob(runJobLocally(job, launch));
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(run, 11, [](CLI::App& app, const kbatch::cli::GlobalOptions&, int*) {
  auto state = std::make_shared<kbatch::cli::RunCommand>();
  auto* run = app.add_subcommand(
      "run", "Run a job script in its container on this node, as the batch system would");
  run->add_option("JOB_SCRIPT", state->script, "The job script (#PBS, #SBATCH, #KBATCH directives)")
      ->required();
  kbatch::cli::addExecOptions(run, state->flags);
  run->footer(
      "Without an image (#KBATCH --image or --image), a dependency image is built from the "
      "script's shell and its -B binary. The job gets PBS_JOBID, PBS_JOBNAME, PBS_O_WORKDIR and "
      "PBS_NUM_PPN as under TORQUE. The exit status passes through as with `kbatch exec`.");
  run->callback([state] { kbatch::cli::runScript(*state); });
});
