// `kbatch policy check|explain|seccomp|export-k8s|compile`: the admin's view of the site policy.
//
// These commands only report; they never run a job. That is why `--policy FILE` may name a file
// the caller owns (a draft): what enforces the policy (exec, run, qsub, the submit filter) reads
// the site file only, through loadSitePolicy().

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "command.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/policy/k8s_export.h"
#include "kbatch/policy/policy.h"
#include "kbatch/policy/seccomp_json.h"
#include "kbatch/rewrite/parser.h"
#include "kbatch/rewrite/units.h"
#include "kbatch/runner/seccomp_filter.h"

namespace kbatch::cli {
namespace {

using policy::Policy;

struct PolicyCommand {
  std::optional<std::string> policy_file;
  // explain
  std::optional<std::string> script;
  std::optional<std::string> image;
  std::vector<std::string> binds;
  std::optional<std::string> backend;
  std::optional<std::string> workdir;
  std::optional<std::string> cpus, memory, walltime, gpus;
  std::vector<std::string> capabilities;
  bool fakeroot = false;
  // seccomp
  std::string format = "oci";
  std::optional<std::string> output;
};

Policy loadChosenPolicy(const PolicyCommand& command) {
  if (!command.policy_file) return policy::loadSitePolicy();
  policy::LoadOptions options;
  options.trusted_owners = {0, getuid()};
  return policy::loadPolicyFile(*command.policy_file, options);
}

// `SRC[:DST[:ro|rw]]`, as `kbatch exec --bind`.
BindMount parseBind(const std::string& spec) {
  BindMount bind;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = spec.find(':', start);
    parts.push_back(spec.substr(start, colon == std::string::npos ? colon : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3 || parts[0].empty()) {
    throw Error("parse --bind", spec, "expected SRC[:DST[:ro|rw]]");
  }
  bind.source = parts[0];
  bind.destination = parts.size() > 1 && !parts[1].empty() ? parts[1] : parts[0];
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") {
      throw Error("parse --bind", spec, "the mode must be 'ro' or 'rw'");
    }
    bind.read_only = parts[2] == "ro";
  }
  return bind;
}

JobSpec buildJob(const PolicyCommand& command) {
  JobSpec job;
  if (command.script) {
    rewrite::ParseOptions options;
    options.file_name = *command.script;
    job = rewrite::parseJobScriptFile(*command.script, options);
  }
  if (command.image) job.image = *command.image;
  for (const auto& bind : command.binds) job.binds.push_back(parseBind(bind));
  if (command.backend) {
    if (*command.backend == "local") {
      job.backend = Backend::kLocal;
    } else if (*command.backend == "k8s") {
      job.backend = Backend::kK8s;
    } else {
      throw Error("parse --backend", *command.backend, "expected 'local' or 'k8s'");
    }
  }
  if (command.workdir) job.workdir = *command.workdir;
  auto require = [](auto value, const char* flag, const std::string& text) {
    if (!value) throw Error(std::string("parse ") + flag, text, "not a valid value");
    return *value;
  };
  if (command.cpus) {
    job.resources.ppn = require(rewrite::parsePositiveInt(*command.cpus), "--cpus", *command.cpus);
  }
  if (command.memory) {
    job.resources.mem_bytes =
        require(rewrite::parseTorqueSize(*command.memory), "--memory", *command.memory);
  }
  if (command.walltime) {
    job.resources.walltime_s =
        require(rewrite::parseTorqueTime(*command.walltime), "--walltime", *command.walltime);
  }
  if (command.gpus) {
    job.resources.gpus = require(rewrite::parsePositiveInt(*command.gpus), "--gpus", *command.gpus);
  }
  return job;
}

int runCheck(const PolicyCommand& command) {
  try {
    Policy loaded = loadChosenPolicy(command);
    std::string sources;
    for (const auto& source : loaded.sources) sources += (sources.empty() ? "" : ", ") + source;
    std::printf("policy OK: %s\n", sources.c_str());
    std::printf("  backends: %zu allowed, default %s\n", loaded.allowed_backends.size(),
                toString(loaded.default_backend));
    std::printf("  images: %zu patterns, %zu registries%s\n", loaded.image_patterns.size(),
                loaded.registries.size(), loaded.require_digest ? ", digests required" : "");
    std::printf("  binds: %zu rules, %zu site binds\n", loaded.bind_rules.size(),
                loaded.site_binds.size());
    std::printf("  seccomp: %s (%zu rules)\n", loaded.seccomp.origin.c_str(),
                loaded.seccomp.rules.size());
    std::printf("  capabilities: %zu, fakeroot %s, submit filter fails %s\n",
                loaded.allowedCapabilities().size(), loaded.fakerootAllowed() ? "allowed" : "denied",
                loaded.submit_filter_mode == policy::SubmitFilterMode::kFailOpen ? "open"
                                                                                 : "closed");
    std::error_code missing;
    if (!command.policy_file && std::filesystem::exists(policy::sitePolicyPath(), missing)) {
      std::printf("  %s\n", policy::describeCompiledPolicy(policy::sitePolicyPath()).c_str());
    }
    return exit_code::kOk;
  } catch (const Error& error) {
    // An invalid policy is this command's "no", not kbatch failing.
    std::fprintf(stderr, "%s\n", error.oneLine().c_str());
    return exit_code::kDenied;
  }
}

int runExplain(const PolicyCommand& command) {
  if (!command.script && !command.image && command.binds.empty()) {
    throw Error("explain policy", "", "give a job script or --image/--bind",
                "kbatch policy explain job.pbs");
  }
  Policy loaded = loadChosenPolicy(command);
  JobSpec job = buildJob(command);
  policy::EvaluationContext context = policy::EvaluationContext::fromEnvironment();
  context.requested_capabilities = command.capabilities;
  context.fakeroot_requested = command.fakeroot;
  policy::Decision decision = policy::evaluate(loaded, job, context);
  for (const auto& result : decision.results) std::printf("%s\n", result.toString().c_str());
  if (const auto* denial = decision.firstDenial()) {
    std::printf("decision: denied by %s at %s\n", denial->rule.c_str(),
                denial->where.toString().c_str());
    return exit_code::kDenied;
  }
  std::printf("decision: allowed\n");
  return exit_code::kOk;
}

void writeOutput(const std::optional<std::string>& path, const std::string& text) {
  if (!path || *path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  std::ofstream out(*path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw Error("write", *path, describeErrno(errno));
}

int runSeccomp(const PolicyCommand& command) {
  if (command.format != "oci") {
    throw Error("write seccomp profile", command.format, "unknown format", "use --format oci");
  }
  writeOutput(command.output,
              policy::writeOciSeccompJson(policy::effectiveSeccompProfile(loadChosenPolicy(command))));
  return exit_code::kOk;
}

int runExportK8s(const PolicyCommand& command) {
  writeOutput(command.output, policy::exportKubernetesObjects(loadChosenPolicy(command)));
  return exit_code::kOk;
}

int runCompile(const PolicyCommand& command) {
  const std::string source = command.policy_file.value_or(policy::sitePolicyPath());
  const std::string output = command.output.value_or(policy::compiledPolicyPath(source));
  policy::compileSitePolicy(source, output, [](const policy::SeccompProfile& profile) {
    return runner::precompileSeccompFilter(profile);
  });
  std::printf("compiled %s into %s\n", source.c_str(), output.c_str());
  return exit_code::kOk;
}

void addPolicyOption(CLI::App* sub, PolicyCommand& command) {
  sub->add_option("--policy", command.policy_file,
                  std::string("Policy file to use instead of the site policy (") +
                      kbatch::policy::sitePolicyPath() + ")");
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(policy, 60, [](CLI::App& app, const kbatch::cli::GlobalOptions&,
                                       int* exit_code) {
  using kbatch::cli::PolicyCommand;
  auto command = std::make_shared<PolicyCommand>();
  auto* policy = app.add_subcommand("policy", "Check, explain and export the site security policy");
  policy->require_subcommand(1);

  auto* check = policy->add_subcommand("check", "Validate a policy (exit 1 if it is refused)");
  kbatch::cli::addPolicyOption(check, *command);
  check->callback([command, exit_code] { *exit_code = kbatch::cli::runCheck(*command); });

  auto* explain = policy->add_subcommand(
      "explain", "Show every rule that applies to a job and the decision (exit 1 if denied)");
  kbatch::cli::addPolicyOption(explain, *command);
  explain->add_option("script", command->script, "Job script whose directives describe the job");
  explain->add_option("--image", command->image, "Container image reference");
  explain->add_option("--bind", command->binds, "SRC[:DST[:ro|rw]] (repeatable)");
  explain->add_option("--backend", command->backend, "local or k8s");
  explain->add_option("--workdir", command->workdir, "The job's working directory");
  explain->add_option("--cpus", command->cpus, "CPUs (per node)");
  explain->add_option("--memory", command->memory, "Memory, e.g. 4gb");
  explain->add_option("--walltime", command->walltime, "Walltime, e.g. 1:00:00");
  explain->add_option("--gpus", command->gpus, "GPUs (per node)");
  explain->add_option("--cap", command->capabilities, "A capability to keep (repeatable)");
  explain->add_flag("--fakeroot", command->fakeroot, "Ask for fakeroot uid mapping");
  explain->callback([command, exit_code] { *exit_code = kbatch::cli::runExplain(*command); });

  auto* seccomp = policy->add_subcommand("seccomp", "Write the effective seccomp profile");
  kbatch::cli::addPolicyOption(seccomp, *command);
  seccomp->add_option("--format", command->format, "oci: OCI/Kubernetes LinuxSeccomp JSON")
      ->capture_default_str();
  seccomp->add_option("-o,--output", command->output, "File to write (default: stdout)");
  seccomp->callback([command, exit_code] { *exit_code = kbatch::cli::runSeccomp(*command); });

  auto* export_k8s = policy->add_subcommand(
      "export-k8s", "Write the Namespaces and ValidatingAdmissionPolicy that enforce the policy");
  kbatch::cli::addPolicyOption(export_k8s, *command);
  export_k8s->add_option("-o,--output", command->output, "File to write (default: stdout)");
  export_k8s->callback([command, exit_code] { *exit_code = kbatch::cli::runExportK8s(*command); });

  auto* compile = policy->add_subcommand(
      "compile", "Write the compiled site policy that jobs load instead of parsing the YAML "
                 "(as root, after each edit; a stale one is ignored)");
  compile->add_option("--policy", command->policy_file,
                      std::string("Root-owned policy file (default: ") +
                          kbatch::policy::sitePolicyPath() + ")");
  compile->add_option("-o,--output", command->output, "File to write (default: POLICY.compiled)");
  compile->callback([command, exit_code] { *exit_code = kbatch::cli::runCompile(*command); });
});
