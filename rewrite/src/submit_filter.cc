#include <exception>

#include "kbatch/common/exit_codes.h"
#include "kbatch/rewrite/submit.h"
#include "script_lines.h"

namespace kbatch::rewrite {
namespace {

/// Whether the job's author asked kbatch for a container: a #KBATCH line anywhere before the body
/// could have been one, and so could a -B among qsub's arguments. Read without the parser, because
/// it is asked exactly when the parser has refused the script.
bool asksForContainer(std::string_view script, const std::vector<std::string>& qsub_arguments) {
  try {
    if (parseQsubCommandLine(qsub_arguments).binary) return true;
  } catch (const ScriptError&) {
    // qsub's arguments themselves are malformed; the script may still ask.
  }
  std::size_t start = 0;
  while (start < script.size()) {
    std::size_t newline = script.find('\n', start);
    std::string_view line =
        script.substr(start, newline == std::string_view::npos ? std::string_view::npos
                                                               : newline - start);
    std::size_t text = line.find_first_not_of(" \t\r");
    if (text != std::string_view::npos) {
      std::string_view trimmed = line.substr(text);
      if (trimmed.substr(0, 7) == "#KBATCH") return true;
      // Any directive prefix may carry -B (qsub -C, PBS_DPREFIX): a "-B" word on a comment line.
      if (trimmed[0] == '#' && (trimmed.find(" -B") != std::string_view::npos ||
                                trimmed.find("\t-B") != std::string_view::npos)) {
        return true;
      }
    }
    if (detail::isExecutableLine(line)) break;  // the header ends here, as for the parser
    if (newline == std::string_view::npos) break;
    start = newline + 1;
  }
  return false;
}

}  // namespace

RewriteOptions checkBeforeBuilding(const RewriteOptions& options, const SubmissionCheck& check,
                                   bool* checked) {
  RewriteOptions result = options;
  if (!check || !options.build_dependency_image) return result;
  result.build_dependency_image = [check, checked,
                                   build = options.build_dependency_image](const JobSpec& spec) {
    check(spec);  // a refused job gets no image built for it
    *checked = true;
    return build(spec);
  };
  return result;
}

SubmitFilterResult runSubmitFilter(std::string_view script,
                                   const std::vector<std::string>& qsub_arguments,
                                   const SubmitFilterOptions& options) {
  SubmitFilterResult result;
  auto reject = [&result](std::string message) {
    result.exit_code = exit_code::kSubmitFilterRejected;
    result.output.clear();
    result.message = std::move(message);
  };
  auto failureMode = [&options] {
    if (options.on_error) return *options.on_error;
    if (!options.site_failure_mode) return FailureMode::kClosed;
    try {
      return options.site_failure_mode();
    } catch (const std::exception&) {
      return FailureMode::kClosed;  // the site's choice is unknowable: the safe side
    }
  };
  auto failInternally = [&](const std::string& message) {
    if (failureMode() == FailureMode::kOpen) {
      // Fail-open: the original goes on to the batch system untouched.
      result.exit_code = exit_code::kOk;
      result.output = std::string(script);
      result.message = message + " (submit filter fails open: job passed on unchanged)";
    } else {
      reject(message + " (submit filter fails closed: job rejected)");
    }
  };
  try {
    ParseOptions parse_options;
    parse_options.file_name = "STDIN";
    parse_options.pbs_dprefix = options.pbs_dprefix;
    parse_options.command_line = qsub_arguments;
    bool checked = false;
    RewriteOptions rewrite = checkBeforeBuilding(options.rewrite, options.check_job, &checked);
    auto rewritten = rewriteJobScript(script, parse_options, rewrite);
    // Already rewritten scripts are checked too: rewriting a script by hand must not skip policy.
    if (rewritten.spec.needs_container && options.check_job && !checked) {
      options.check_job(rewritten.spec);
    }
    result.output = std::move(rewritten.script);
  } catch (const JobRefused& refusal) {
    reject(refusal.oneLine());
  } catch (const ScriptError& error) {
    if (asksForContainer(script, qsub_arguments)) {
      // Passed on, a container job would run natively, or not as its author asked.
      reject(error.oneLine());
    } else {
      // A native job's malformed #PBS/#SBATCH line: qsub or sbatch will judge it themselves.
      failInternally(error.oneLine());
    }
  } catch (const Error& error) {
    failInternally(error.oneLine());
  } catch (const std::exception& error) {
    failInternally(std::string("kbatch: submit filter: internal error: ") + error.what());
  }
  return result;
}

}  // namespace kbatch::rewrite
