#pragma once
// Running the few trusted host tools the dependency builder needs (dpkg-query, mmdebstrap, dnf)
// with an argument vector, never through a shell, so a file name cannot become a command.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kbatch::image::detail {

struct ProcessResult {
  int exit_status = -1;      ///< exit code, or 128 + signal number
  std::string standard_output;
  std::string standard_error;
};

struct ProcessOptions {
  bool capture_stderr = true;  ///< false: stderr goes to kbatch's stderr (long-running tools)
  /// Extra environment entries (K=V) on top of kbatch's own environment.
  std::vector<std::string> extra_environment;
};

/// Runs argv[0] (looked up in PATH) with the arguments; throws kbatch::Error only when the program
/// cannot be started (exit_code 127 when it does not exist). The caller judges the exit status.
ProcessResult runProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {});

/// True if `program` is found in PATH.
bool programExists(const std::string& program);

}  // namespace kbatch::image::detail
