#pragma once
/// The two ways a job reaches the batch system through kbatch: TORQUE's SUBMITFILTER contract and
/// the `kbatch qsub` wrapper around the site's real qsub.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/rewrite/rewriter.h"

namespace kbatch::rewrite {

/// What the submit filter does when it cannot do its work: kbatch fails internally, the policy is
/// unreadable, or a #PBS/#SBATCH directive is malformed in a job that asks for no container (the
/// batch system then judges its own directive). A script that asks for a container (#KBATCH, -B)
/// and is malformed, and a job the policy refuses, are rejected whatever the mode: passing them
/// on would run the job otherwise than its author, or the site, asked.
enum class FailureMode { kClosed, kOpen };

/// A job the site refuses (the policy denies it). Never passed on, whatever the failure mode.
class JobRefused : public Error {
 public:
  using Error::Error;
};

/// Checks a job that needs a container before it reaches the batch system; throws JobRefused for
/// a job the site refuses, and kbatch::Error when the check itself cannot be made.
using SubmissionCheck = std::function<void(const JobSpec&)>;

/// `options` with its dependency-image build preceded by `check`, so that a job the site refuses
/// gets no image built for it; *checked becomes true once the check has run (and passed).
RewriteOptions checkBeforeBuilding(const RewriteOptions& options, const SubmissionCheck& check,
                                   bool* checked);

struct SubmitFilterOptions {
  /// The failure mode chosen on the command line; when unset, `site_failure_mode` decides.
  std::optional<FailureMode> on_error;
  /// The site's failure mode (the policy's submit_filter.on_error); asked only when something
  /// failed, so a native job never makes the filter read the policy. Unset: fail closed.
  std::function<FailureMode()> site_failure_mode;
  /// Run on every job that needs a container (after rewriting, or already rewritten).
  SubmissionCheck check_job;
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
  /// Run on every job that needs a container before qsub runs; a JobRefused stops the submission.
  SubmissionCheck check_job;
  std::filesystem::path qsub_path;           ///< the real qsub (see findRealQsub)
  std::optional<std::string> pbs_dprefix;
  std::filesystem::path temporary_directory = "/tmp";
  /// Reads the script when it comes on stdin (tests replace it).
  std::string (*read_standard_input)() = nullptr;
};

/// `kbatch qsub [qsub options] [SCRIPT]`: consumes -B, rewrites the script if its job needs a
/// container, checks it (options.check_job), runs the real qsub on the result and returns qsub's
/// exit status. Throws JobRefused, without running qsub, for a job the site refuses.
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
