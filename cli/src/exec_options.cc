// The CLI11 side of `kbatch exec` and `kbatch run` (cmd_exec.h): their options and arguments.
// Kept apart from the commands' registration so that tests/unit/cli can check the front end's own
// parser (exec_arguments.cc) against this one.

#include "cmd_exec.h"

namespace kbatch::cli {

void addExecOptions(CLI::App* command, ExecFlags& flags) {
  // Each occurrence takes exactly one value (CLI11 would otherwise let a vector option swallow
  // the IMAGE word after it).
  command
      ->add_option("--bind,-B", flags.binds,
                   "Bind-mount SRC[:DST[:ro|rw]] into the container (repeatable)")
      ->allow_extra_args(false);
  command->add_option("--workdir", flags.workdir,
                      "Working directory inside the container (default: the current directory, "
                      "bind-mounted at the same path)");
  command->add_option("--env", flags.env, "Set NAME=VALUE in the job's environment (repeatable)")
      ->allow_extra_args(false);
  command->add_flag("--cleanenv", flags.clean_env,
                    "Pass only PATH, HOME, USER, TERM, LANG, PBS_* and SLURM_* from this "
                    "environment");
  command->add_flag("--writable-tmpfs", flags.writable_tmpfs,
                    "Let the job write to the image; writes go to a tmpfs and vanish");
  command->add_flag("--fakeroot", flags.fakeroot,
                    "Appear as root (uid 0) inside; gives no privilege outside");
  command->add_option("--backend", flags.backend, "Where to run: local (default) or k8s")
      ->check(CLI::IsMember({"local", "k8s"}));
  command->add_option("--image", flags.image, "Image reference (instead of the positional IMAGE)");
  command->add_option("--from-binary", flags.from_binary,
                      "Build (or reuse) a dependency image for this binary and run in it");
  command->add_option("--cpus", flags.cpus, "CPUs for the job (advisory in the local backend)")
      ->check(CLI::PositiveNumber);
  command->add_option("--memory", flags.memory,
                      "Memory limit (bytes, or a TORQUE size such as 4gb); local backend: the "
                      "job's RLIMIT_DATA");
  command->add_option(
      "--walltime", flags.walltime,
      "Wall-clock limit (seconds or [[HH:]MM:]SS); then SIGTERM, SIGKILL 5 s later");
  command->add_option("--gpus", flags.gpus, "GPUs for the job")->check(CLI::NonNegativeNumber);
}

CLI::App* addExecCommand(CLI::App& app, ExecCommand& state) {
  auto* exec = app.add_subcommand(
      "exec", "Run a command in a container: kbatch exec [options] IMAGE -- CMD [ARGS...]");
  addExecOptions(exec, state.flags);
  exec->add_option("--job-body", state.job_body,
                   "Read the job body (base64) from stdin and run CMD with it as its script");
  // CLI11 puts the first word after `--` into IMAGE when no IMAGE came before it; runExec
  // shifts it back into the command when --image or --from-binary named the image.
  exec->add_option("IMAGE", state.image_word,
                   "A root filesystem directory or an image reference (or use --image)");
  exec->add_option("COMMAND", state.words, "After `--`: the command and its arguments");
  exec->footer(
      "The job's exit status passes through; death by signal N ends kbatch by signal N (the shell "
      "shows 128+N). 125: kbatch failed; 126: the command cannot be executed; 127: the image or "
      "the command was not found.");
  return exec;
}

CLI::App* addRunCommand(CLI::App& app, RunCommand& state) {
  auto* run = app.add_subcommand(
      "run", "Run a job script in its container on this node, as the batch system would");
  run->add_option("JOB_SCRIPT", state.script, "The job script (#PBS, #SBATCH, #KBATCH directives)")
      ->required();
  addExecOptions(run, state.flags);
  run->footer(
      "Without an image (#KBATCH --image or --image), a dependency image is built from the "
      "script's shell and its -B binary. The job gets PBS_JOBID, PBS_JOBNAME, PBS_O_WORKDIR and "
      "PBS_NUM_PPN as under TORQUE. The exit status passes through as with `kbatch exec`.");
  return run;
}

}  // namespace kbatch::cli
