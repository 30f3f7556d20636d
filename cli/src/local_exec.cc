/// What `kbatch exec` and `kbatch run` do once their command lines are parsed (local_exec.h): the
/// site policy, the image, the job's environment and binds, and the local runner. No CLI11 and no
/// iostreams here: the lean front end (exec_main.cc) runs this on every job start.

#include "local_exec.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "full_only.h"
#include "helper_path.h"
#include "kbatch/common/base64.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/common/read_all.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/resolve.h"
#include "kbatch/policy/seccomp_profile.h"
#include "kbatch/rewrite/parser.h"
#include "kbatch/rewrite/units.h"
#include "kbatch/runner/account_files.h"
#include "kbatch/runner/job_environment.h"
#include "site_policy.h"

namespace kbatch::cli {
namespace {

namespace fs = std::filesystem;

/// Where the decoded job body is written inside the container (its private, read-only /dev).
constexpr const char* kJobBodyPath = "/dev/kbatch-job-body";

std::string readAllStdin() {
  std::string text = readToEnd(STDIN_FILENO, "read", "stdin");
  rememberConsumedStdin(text);
  return text;
}

/// The job's stdin is /dev/null once its body has been read from ours (contract 2).
void replaceStdinWithDevNull() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || dup2(fd, STDIN_FILENO) < 0) {
    throw Error("open", "/dev/null", describeErrno(errno));
  }
  close(fd);
}

int availableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

/// Host paths a batch job expects to find at the same place inside its container.
void addBatchBinds(const JobSpec& job, const std::map<std::string, std::string>& environment,
                   const fs::path& cwd, std::vector<BindMount>& binds) {
  std::error_code ec;
  auto add = [&](const std::string& path, bool read_only) {
    for (const auto& bind : binds) {
      if (bind.destination == path) return;  // the user bound it already
    }
    binds.push_back({path, path, read_only});
  };
  // Scripts `cd $PBS_O_WORKDIR` first thing; the submit directory must exist in the container.
  if (job.submit_dir && fs::is_directory(*job.submit_dir, ec) &&
      fs::weakly_canonical(*job.submit_dir, ec) != cwd && *job.submit_dir != "/") {
    add(fs::canonical(*job.submit_dir, ec).string(), false);
  }
  if (auto it = environment.find("PBS_NODEFILE");
      it != environment.end() && fs::is_regular_file(it->second, ec)) {
    add(fs::canonical(it->second, ec).string(), true);
  }
  // The batch system's per-job scratch directory (TORQUE and Slurm set TMPDIR to it).
  if (auto it = environment.find("TMPDIR"); it != environment.end() && !it->second.empty() &&
                                            it->second != "/tmp" &&
                                            fs::is_directory(it->second, ec)) {
    add(fs::canonical(it->second, ec).string(), false);
  }
}

}  // namespace

void applyExecFlags(const ExecFlags& flags, JobSpec& job) {
  for (const auto& spec : flags.binds) job.binds.push_back(runner::parseBindSpec(spec));
  for (const auto& assignment : flags.env) job.env.push_back(runner::parseEnvAssignment(assignment));
  if (flags.workdir) job.workdir = *flags.workdir;
  if (flags.backend) job.backend = *flags.backend == "k8s" ? Backend::kK8s : Backend::kLocal;
  if (flags.image) job.image = *flags.image;
  if (flags.from_binary) job.binary = *flags.from_binary;
  if (flags.cpus) job.resources.ppn = *flags.cpus;
  if (flags.gpus) job.resources.gpus = *flags.gpus;
  if (flags.memory) {
    auto bytes = rewrite::parseTorqueSize(*flags.memory);
    if (!bytes || *bytes == 0) {
      throw Error("parse --memory", *flags.memory, "not a size",
                  "give bytes or a TORQUE size such as 512mb or 4gb");
    }
    job.resources.mem_bytes = *bytes;
  }
  if (flags.walltime) {
    auto seconds = rewrite::parseTorqueTime(*flags.walltime);
    if (!seconds || *seconds == 0) {
      throw Error("parse --walltime", *flags.walltime, "not a positive time",
                  "give seconds or [[HH:]MM:]SS");
    }
    job.resources.walltime_s = *seconds;
  }
}

runner::JobOutcome runJobLocally(const JobSpec& job, const LocalLaunch& launch,
                                 const std::map<std::string, std::string>& environment) {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  if (ec) throw Error("find the current directory", "", ec.message());

  // The policy refuses before anything is pulled, built or mounted.
  const policy::Policy& site = sitePolicy();
  policy::EvaluationContext context = policy::EvaluationContext::fromEnvironment();
  context.fakeroot_requested = launch.fakeroot;
  // Here --workdir names a directory inside the container, not a host path: the host directories
  // a local job reaches are its binds, which the policy does check.
  JobSpec checked = job;
  checked.workdir.reset();
  enforceSitePolicy(checked, context, "run job");

  runner::LaunchRequest request;
  if (job.image && !job.binary) {
    image::ResolveOptions resolve;
    resolve.insecure_registries = site.site.insecure_registries;
    if (site.site.image_cache) resolve.site_image_cache = *site.site.image_cache;
    // The warm path first: it needs none of the libraries the lean kbatch leaves out.
    auto local_root = image::findLocalImageRoot(*job.image, resolve);
    request.image_root = local_root ? *local_root : fetchImageRoot(*job.image, resolve);
  } else {
    // No image named: a dependency image with the job's shell and binary (the paper's -B).
    image::DependencyImageRequest deps;
    if (job.binary) deps.binary = fs::absolute(*job.binary);
    deps.shell = launch.shell;
    if (auto it = environment.find("LD_LIBRARY_PATH"); it != environment.end()) {
      deps.ld_library_path = it->second;
    }
    // An image pinned at submission (--image REF@DIGEST) is looked up first: local store, site
    // cache, site registry; the build here is the last resort (image/dependency_image.h).
    image::DependencyLookupOptions lookup;
    lookup.insecure_registries = site.site.insecure_registries;
    if (site.site.image_cache) lookup.site_cache = *site.site.image_cache;
    // The warm paths first, as for named images: the pinned image already unpacked on this node,
    // or the image this same request got last time.
    const std::optional<fs::path> found =
        job.image ? image::findUnpackedPinnedImage(
                        image::parsePinnedImage(*job.image, "--image (with --from-binary)"), lookup)
                  : image::findRememberedDependencyImage(deps);
    request.image_root = found ? *found : dependencyImageRoot(job.image, deps, lookup);
  }

  request.argv = job.command;
  if ((!job.image || job.binary) && !request.argv.empty() && request.argv.front() == launch.shell) {
    // A dependency image holds the host's files at their real paths; /bin may not be a link to
    // /usr/bin there, so the shell is started by the path the image certainly has.
    std::error_code shell_ec;
    fs::path real_shell = fs::canonical(launch.shell, shell_ec);
    if (!shell_ec) request.argv.front() = real_shell.string();
  }
  request.binds = job.binds;
  for (const auto& site_bind : policy::expandSiteBinds(site, context)) {
    request.binds.push_back({site_bind.source, site_bind.destination, site_bind.read_only});
  }
  addBatchBinds(job, environment, cwd, request.binds);
  request.workdir = job.workdir;
  auto overrides = job.env;
  overrides.insert(overrides.end(), launch.batch_variables.begin(), launch.batch_variables.end());
  request.environment = runner::buildJobEnvironment(environment, launch.clean_env, overrides);
  request.writable_tmpfs = launch.writable_tmpfs;
  request.fakeroot = launch.fakeroot;
  // Even where allowed, a fakeroot user namespace grants nothing outside it (empty bounding set,
  // no_new_privs); the policy decides whether a site wants it at all.
  request.fakeroot_allowed = site.fakerootAllowed();
  request.files = launch.files;
  request.seccomp = policy::effectiveSeccompProfile(site);
  request.precompiled_seccomp = site.seccomp_program;
  request.memory_bytes = job.resources.mem_bytes;
  request.walltime_s = job.resources.walltime_s;
  request.current_directory = cwd;
  request.uid = getuid();
  request.gid = getgid();
  // The job's user by name inside, as apptainer and ch-run show it; under --fakeroot the job is
  // root, whom every image names.
  if (!request.fakeroot) {
    if (auto account = runner::lookUpHostAccount(request.uid, request.gid)) {
      request.replaced_files = runner::accountFilesFor(request.image_root, *account);
    }
  }
  request.init_executable = findHelperExecutable("kbatch-init");

  if (job.resources.ppn && *job.resources.ppn > availableCpus()) {
    log::warn("the job asks for {} CPUs but only {} are available to it here", *job.resources.ppn,
              availableCpus());
  }
  if (job.resources.gpus && *job.resources.gpus > 0) {
    log::warn("--gpus is advisory in the local backend: the batch system's GPU assignment "
              "(CUDA_VISIBLE_DEVICES) passes in the environment, but no GPU devices or driver "
              "libraries are mounted");
  }
  return runner::runInContainer(request);
}

void exitAsJob(int exit_code) {
  runner::JobOutcome outcome;
  outcome.exit_code = exit_code;
  runner::exitLikeJob(outcome);
}

namespace {

std::string readJobScript(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error("read job script", path.string(), describeErrno(errno), {}, exit_code::kNotFound);
  }
  try {
    std::string text = readToEnd(fd, "read", "job script " + path.string());
    ::close(fd);
    return text;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

/// The words of `text`, split at blanks as the shell splits `#PBS -S` and shebang lines.
std::vector<std::string> splitWords(const std::string& text) {
  std::vector<std::string> words;
  std::size_t start = 0;
  while ((start = text.find_first_not_of(" \t\n\r\f\v", start)) != std::string::npos) {
    std::size_t end = text.find_first_of(" \t\n\r\f\v", start);
    words.push_back(text.substr(start, end == std::string::npos ? end : end - start));
    start = end;
  }
  return words;
}

/// A job id unique on this node for the lifetime of the job, in TORQUE's `<seq>.<server>` form.
std::string localJobId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::to_string(getpid()) + "." + (host[0] != '\0' ? host : "localhost");
}

}  // namespace

void runScript(RunCommand& command) {
  runner::refuseToRunSetuid();
  fs::path script = command.script;
  std::string content = readJobScript(script);
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
  runner::exitLikeJob(runJobLocally(job, launch, runner::currentEnvironment()));
}

void runExec(ExecCommand& command) {
  runner::refuseToRunSetuid();
  JobSpec job;
  applyExecFlags(command.flags, job);
  if (job.image && job.binary) {
    // Only the dependency image pinned at submission may come with its binary (the fallback).
    image::parsePinnedImage(*job.image, "--image (with --from-binary)");
  }
  std::vector<std::string> command_words = command.words;
  if (job.image || job.binary) {
    // The positional IMAGE slot then holds the command's first word.
    if (command.image_word) command_words.insert(command_words.begin(), *command.image_word);
  } else if (!command.image_word) {
    throw Error("run container", "", "no image given",
                "kbatch exec IMAGE -- CMD [ARGS...], or --image REF / --from-binary PATH");
  } else {
    job.image = *command.image_word;
  }
  if (command_words.empty()) {
    throw Error("run container", job.image ? *job.image : *job.binary, "no command given",
                "put the command after `--`: kbatch exec IMAGE -- CMD [ARGS...]");
  }
  job.command = command_words;
  const auto environment = runner::currentEnvironment();
  runner::fillBatchContext(job, environment);

  std::optional<std::string> job_body;
  LocalLaunch launch;
  launch.clean_env = command.flags.clean_env;
  launch.writable_tmpfs = command.flags.writable_tmpfs;
  launch.fakeroot = command.flags.fakeroot;
  if (command.job_body) {
    launch.shell = job.command.front();  // contract 2: `-- <SHELL>`
    if (*command.job_body != "base64") {
      throw Error("parse --job-body", *command.job_body, "unknown encoding",
                  "the only encoding is base64 (--job-body=base64)");
    }
    auto body = decodeBase64(readAllStdin());
    if (!body) {
      throw Error("decode the job body", "stdin", "not valid base64",
                  "rewrite the job script again with `kbatch rewrite`");
    }
    replaceStdinWithDevNull();
    job_body = std::move(*body);
  }
  if (job.backend.value_or(sitePolicy().default_backend) == Backend::kK8s) {
    exitAsJob(runJobAsPod(job, job_body));
  }
  if (job_body) {
    launch.files.push_back({kJobBodyPath, std::move(*job_body), 0700});
    job.command.push_back(kJobBodyPath);  // <SHELL> <file>: $0 and `set -e` behave as before
  }
  runner::exitLikeJob(runJobLocally(job, launch, environment));
}

}  // namespace kbatch::cli

