// Finding and reading the site policy without a YAML parser: its path, the compiled policy
// beside it and whether that is current, and the built-in default when there is no file. Kept
// apart from the YAML loader (policy_loader.cc) so that the `kbatch exec` front end
// (cli/src/exec_main.cc) links neither yaml-cpp nor its static initialisers.

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "kbatch/common/error.h"
#include "kbatch/policy/policy.h"
#include "policy_compiled.h"
#include "trusted_file.h"

namespace kbatch::policy {

namespace fs = std::filesystem;

constexpr const char* kLoadAction = "load policy";

const char* sitePolicyPath() { return KBATCH_POLICY_PATH; }

std::string compiledPolicyPath(const fs::path& policy_path) {
  return policy_path.string() + ".compiled";
}

std::string readSitePolicyText(const fs::path& policy_path) {
  const LoadOptions options;
  return detail::readTrustedFile(policy_path, options.trusted_owners, options.max_bytes, kLoadAction);
}

std::optional<Policy> currentCompiledPolicy(const fs::path& policy_path, const std::string& text,
                                            std::string* why_not) {
  const std::string compiled_path = compiledPolicyPath(policy_path);
  std::error_code error;
  if (!fs::exists(fs::symlink_status(compiled_path, error))) {
    *why_not = "there is none (kbatch policy compile writes it)";
    return std::nullopt;
  }
  std::string compiled;
  try {
    compiled = detail::readTrustedFile(compiled_path, {0}, kMaxCompiledPolicyBytes,
                                       "read compiled policy");
  } catch (const Error& untrusted) {
    *why_not = untrusted.oneLine();
    return std::nullopt;
  }
  return loadCompiledPolicy(compiled, text, policy_path.string(), LoadOptions{}.trusted_owners,
                            why_not);
}

std::string describeCompiledPolicy(const fs::path& policy_path) {
  std::string why_not;
  if (auto compiled = currentCompiledPolicy(policy_path, readSitePolicyText(policy_path), &why_not)) {
    return "compiled policy " + compiledPolicyPath(policy_path) + " is current" +
           (compiled->seccomp_program
                ? ", with its seccomp filter compiled by " + compiled->seccomp_program->build
                : std::string());
  }
  return "compiled policy " + compiledPolicyPath(policy_path) + " not used: " + why_not;
}

std::optional<Policy> loadSitePolicyWithoutYaml(std::string* why_not) {
  const char* overlay = std::getenv(kOverlayEnvironmentVariable);
  if (overlay != nullptr && *overlay != '\0') {
    *why_not = std::string("$") + kOverlayEnvironmentVariable + " names an overlay policy";
    return std::nullopt;
  }
  std::error_code error;
  if (!fs::exists(fs::symlink_status(sitePolicyPath(), error))) return builtinDefaultPolicy();
  return currentCompiledPolicy(sitePolicyPath(), readSitePolicyText(sitePolicyPath()), why_not);
}

}  // namespace kbatch::policy
