#pragma once
/// The job-script directive parser: `#PBS` (as TORQUE's qsub reads it), `#SBATCH` (as sbatch reads
/// it) and kbatch's own `#KBATCH`, merged with the qsub command line into one JobSpec.
///
/// Quotes: qsub keeps the quote characters of a #PBS directive in the option's value (make_argv),
/// and each option treats them as qsub does: `-l` strips the quotes of a quoted value, which may
/// then hold commas (`-l software="a,b"`, add_verify_resources); `-N "my job"` is refused, as
/// check_job_name refuses blanks, and `-N "x"` names the job `"x"`; `-v "A=1,B=2"` passes on as
/// written; kbatch's own `-B "./my solver"` loses its enclosing quotes. #KBATCH and #SBATCH
/// values lose their quotes, as in a shell.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/common/error.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::rewrite {

/// A script the user wrote is wrong (a malformed directive, an unknown #KBATCH option, ...). Kept
/// apart from kbatch's own failures so that the submit filter rejects such a job whatever its
/// fail-open setting: passing it on would run the job differently from what its author asked.
class ScriptError : public Error {
 public:
  using Error::Error;
};

struct ParseOptions {
  /// The name used in error messages ("job.pbs", "STDIN").
  std::string file_name = "STDIN";
  /// qsub's `-C PREFIX` given by the caller; overrides a -C found in `command_line`. An empty
  /// string disables #PBS scanning, as with qsub.
  std::optional<std::string> directive_prefix;
  /// The value of the PBS_DPREFIX environment variable, if set.
  std::optional<std::string> pbs_dprefix;
  /// qsub's command-line arguments; their options override the script's directives. A non-option
  /// argument (the script path) is ignored here.
  std::vector<std::string> command_line;
  /// qsub refuses a script *file* with DOS line endings; from stdin it strips the CR. Set this to
  /// reproduce the refusal (kbatch qsub does for files); otherwise a CR before LF is ignored in
  /// directives and the body keeps it.
  bool reject_dos_line_endings = false;
};

/// Where the directive header ends: TORQUE stops scanning at the first executable line.
struct ScriptLayout {
  std::size_t body_offset = 0;  ///< byte offset of the first executable line (== size if none)
  int body_line = 0;            ///< its 1-based line number (0 if there is no body)
  std::optional<std::string> shebang_interpreter;  ///< `#!/bin/bash -l` -> "/bin/bash -l"
  bool has_rewrite_marker = false;                  ///< a `#KBATCH-REWRITTEN` line in the header
};

/// Parses a job script and the qsub command line into a JobSpec. Throws ScriptError naming
/// file:line and the expected form for a malformed directive.
JobSpec parseJobScript(std::string_view content, const ParseOptions& options);

/// Reads and parses a script file (the file name in errors is `path` unless options say otherwise).
JobSpec parseJobScriptFile(const std::filesystem::path& path, const ParseOptions& options);

/// Like parseJobScript, and also returns where the header ends (used by the rewriter).
JobSpec parseJobScript(std::string_view content, const ParseOptions& options, ScriptLayout* layout);

/// The directive prefix qsub would use: -C (explicit or on the command line), else PBS_DPREFIX,
/// else "#PBS". Empty means #PBS scanning is disabled.
std::string effectivePbsPrefix(const ParseOptions& options);

/// qsub's command line split the way TORQUE's getopt sees it.
struct QsubCommandLine {
  std::vector<Directive> options;          ///< every option with its value, in order (line 0)
  std::optional<std::size_t> script_index; ///< index in the arguments of the script operand
  /// index of the script operand in arguments_without_binary
  std::optional<std::size_t> script_index_without_binary;
  std::optional<std::string> prefix;       ///< the last -C value
  std::optional<std::string> binary;       ///< the last -B value (kbatch's own option)
  bool interactive = false;                ///< -I
  /// The arguments without any -B and its value: what a stock qsub accepts.
  std::vector<std::string> arguments_without_binary;
};

/// Splits qsub's arguments (getopt rules with TORQUE's option string plus kbatch's -B). Throws
/// ScriptError for an option that lacks its argument or a second script operand.
QsubCommandLine parseQsubCommandLine(const std::vector<std::string>& arguments);

}  // namespace kbatch::rewrite
