#pragma once
/// Running the full `kbatch` from the submit path (`deps --json` for --detect, `build --json` for
/// a job's dependency image): the lean kbatch-submit links none of what those commands need.

#include <string>
#include <vector>

namespace kbatch::rewrite {

struct CapturedRun {
  std::string standard_output;
  int status = 0;  ///< exit status, or 128 + the signal that ended it
};

/// Runs argv[0] (a path, not looked up on PATH) with stdin from /dev/null, its stderr going to
/// ours, and returns what it printed on stdout. Throws kbatch::Error, naming `action` and
/// `subject`, only when it cannot be started at all.
CapturedRun runCapturingStdout(const std::vector<std::string>& argv, const std::string& action,
                               const std::string& subject);

}  // namespace kbatch::rewrite
