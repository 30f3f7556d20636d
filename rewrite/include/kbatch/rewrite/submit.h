#pragma once
/// The two ways a job reaches the batch system through kbatch: TORQUE's SUBMITFILTER contract and
/// the `kbatch qsub` wrapper around the site's real qsub.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/rewrite/rewriter.h"

namespace kbatch::rewrite {

/// What the submit filter does when kbatch itself fails (not when the script is wrong: a wrong
/// script is always rejected).
enum class FailureMode { kClosed, kOpen };

struct SubmitFilterOptions {
  FailureMode on_error = FailureMode::kClosed;
  RewriteOptions rewrite;
  std::optional<std::string> pbs_dprefix;
};

struct SubmitFilterResult {
  int exit_code = 0;        ///< 0, or 255 (exit_code::kSubmitFilterRejected): rejected
  std::string output;       ///< the complete script for stdout; empty when rejected
  std::string message;      ///< one line for stderr, or empty
};

/// TORQUE's SUBMITFILTER: `script` is what qsub wrote to the filter's stdin, `qsub_arguments` are
/// qsub's own arguments. Never returns a partial script.
SubmitFilterResult runSubmitFilter(std::string_view script,
                                   const std::vector<std::string>& qsub_arguments,
                                   const SubmitFilterOptions& options);

/// The seam between `kbatch qsub` and the real qsub, so tests can see the exact argv.
class QsubInvoker {
 public:
  virtual ~QsubInvoker() = default;
  /// Runs `qsub` with `arguments` (argv[1..]), stdout and stderr inherited, `standard_input` fed
  /// to its stdin when given (else stdin inherited). Returns its exit status (128+N if killed by
  /// signal N).
  virtual int invoke(const std::filesystem::path& qsub, const std::vector<std::string>& arguments,
                     const std::optional<std::string>& standard_input) = 0;
};

/// The real thing: fork + execv.
class ProcessQsubInvoker : public QsubInvoker {
 public:
  int invoke(const std::filesystem::path& qsub, const std::vector<std::string>& arguments,
             const std::optional<std::string>& standard_input) override;
};

struct QsubWrapperOptions {
  RewriteOptions rewrite;
  std::filesystem::path qsub_path;           ///< the real qsub (see findRealQsub)
  std::optional<std::string> pbs_dprefix;
  std::filesystem::path temporary_directory = "/tmp";
  /// Reads the script when it comes on stdin (tests replace it).
  std::string (*read_standard_input)() = nullptr;
};

/// `kbatch qsub [qsub options] [SCRIPT]`: consumes -B, rewrites the script if its job needs a
/// container, runs the real qsub on the result and returns qsub's exit status.
int runQsubWrapper(const std::vector<std::string>& arguments, const QsubWrapperOptions& options,
                   QsubInvoker& invoker);

/// Reads all of stdin as bytes (the script qsub or the user pipes in).
std::string readAllStandardInput();

/// Finds the real qsub: `explicit_path`, else `env_path` (KBATCH_QSUB), else the first `qsub` on
/// `search_path` that is not kbatch itself (`self` and anything resolving to it are skipped).
/// Throws kbatch::Error (exit 127) when there is none.
std::filesystem::path findRealQsub(const std::optional<std::string>& explicit_path,
                                   const char* env_path, std::string_view search_path,
                                   const std::filesystem::path& self);

}  // namespace kbatch::rewrite
