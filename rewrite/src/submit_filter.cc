#include <exception>

#include "kbatch/common/exit_codes.h"
#include "kbatch/rewrite/submit.h"

namespace kbatch::rewrite {

SubmitFilterResult runSubmitFilter(std::string_view script,
                                   const std::vector<std::string>& qsub_arguments,
                                   const SubmitFilterOptions& options) {
  SubmitFilterResult result;
  auto reject = [&result](std::string message) {
    result.exit_code = exit_code::kSubmitFilterRejected;
    result.output.clear();
    result.message = std::move(message);
  };
  auto failInternally = [&](const std::string& message) {
    if (options.on_error == FailureMode::kOpen) {
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
    auto rewritten = rewriteJobScript(script, parse_options, options.rewrite);
    result.output = std::move(rewritten.script);
  } catch (const ScriptError& error) {
    // A wrong script is rejected whatever the failure mode: passing it on would run the job
    // otherwise than its author asked.
    reject(error.oneLine());
  } catch (const Error& error) {
    failInternally(error.oneLine());
  } catch (const std::exception& error) {
    failInternally(std::string("kbatch: submit filter: internal error: ") + error.what());
  }
  return result;
}

}  // namespace kbatch::rewrite
