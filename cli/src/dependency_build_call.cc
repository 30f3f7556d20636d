#include "dependency_build_call.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "kbatch/rewrite/subprocess.h"
#include "site_policy.h"

namespace kbatch::cli {

namespace fs = std::filesystem;

DependencyBuildAnswer parseDependencyBuildAnswer(const std::string& json) {
  const char* action = "read the answer of kbatch build --json";
  auto document = nlohmann::json::parse(json, nullptr, false);
  if (!document.is_object()) throw Error(action, "stdout", "not a JSON object");
  DependencyBuildAnswer answer;
  auto text = [&](const char* field) {
    auto it = document.find(field);
    if (it == document.end() || !it->is_string() || it->get<std::string>().empty()) {
      throw Error(action, std::string("field '") + field + "'", "missing or not a string");
    }
    return it->get<std::string>();
  };
  answer.reference = text("reference");
  answer.digest = text("digest");
  if (answer.digest.size() != 71 || answer.digest.rfind("sha256:", 0) != 0 ||
      answer.digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
    throw Error(action, "field 'digest'", "'" + answer.digest + "' is not sha256:<64 hex>");
  }
  auto cached = document.find("cached");
  if (cached == document.end() || !cached->is_boolean()) {
    throw Error(action, "field 'cached'", "missing or not a boolean");
  }
  answer.cached = cached->get<bool>();
  return answer;
}

std::vector<std::string> dependencyBuildArguments(const std::string& kbatch,
                                                  const std::string& binary,
                                                  const std::string& shell,
                                                  const std::optional<std::string>& site_registry,
                                                  bool insecure) {
  std::vector<std::string> argv = {kbatch, "-q", "build", "--from-binary", binary,
                                   "--shell", shell, "--json"};
  if (site_registry) {
    argv.push_back("--push");
    argv.push_back("docker://" + *site_registry + "/kbatch-deps");
    if (insecure) argv.push_back("--insecure");
  }
  return argv;
}

DependencyBuildAnswer runDependencyBuild(const std::vector<std::string>& argv) {
  const std::string& binary = argv.size() > 4 ? argv[4] : argv.front();
  const char* action = "build the dependency image of";
  const rewrite::CapturedRun run = rewrite::runCapturingStdout(argv, action, binary);
  if (run.status != 0) {
    throw Error(action, binary,
                "`" + argv.front() + " build --from-binary` failed (status " +
                    std::to_string(run.status) + ")",
                "its error is above; run `kbatch build --from-binary " + binary + "` to retry");
  }
  return parseDependencyBuildAnswer(run.standard_output);
}

rewrite::DependencyImageBuilder makeSubmissionDependencyBuilder() {
  return [](const JobSpec& spec) -> std::optional<std::string> {
    if (!spec.binary) return std::nullopt;
    std::error_code ec;
    if (!fs::is_regular_file(*spec.binary, ec)) {
      log::info("{} does not exist at submission: the compute node builds its dependency image",
                *spec.binary);
      return std::nullopt;
    }
    const policy::Policy& site = sitePolicy();
    bool insecure = false;
    if (site.site.registry) {
      const auto& list = site.site.insecure_registries;
      insecure = std::find(list.begin(), list.end(), *site.site.registry) != list.end() ||
                 site.site.registry->rfind("127.0.0.1", 0) == 0 ||
                 site.site.registry->rfind("localhost", 0) == 0 ||
                 site.site.registry->rfind("[::1]", 0) == 0;
    }
    std::string shell = rewrite::jobShell(spec);
    shell = shell.substr(0, shell.find_first_of(" \t"));  // "#!/bin/bash -l": the interpreter
    auto answer = runDependencyBuild(dependencyBuildArguments(
        rewrite::defaultKbatchPath(), *spec.binary, shell, site.site.registry, insecure));
    log::info("dependency image of {}: {} ({})", *spec.binary, answer.pinned(),
              answer.cached ? "reused" : "built");
    return answer.pinned();
  };
}

}  // namespace kbatch::cli
