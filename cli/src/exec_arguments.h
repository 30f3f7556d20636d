#pragma once
/// The lean front end's parser for the command lines every job starts with: `kbatch exec ...` and
/// `kbatch run ...`, in the forms rewritten job scripts and users write them. It is deliberately
/// narrower than CLI11's (cmd_exec.cc): a command line it does not take in full (--help, an
/// unknown or repeated option, an invalid value, a positional outside IMAGE -- CMD) is nullopt,
/// and the front end hands it to kbatch-cli, whose CLI11 parser answers it. Where both take a
/// command line, they must agree; tests/unit/cli checks them against each other.

#include <optional>

#include "kbatch/common/log.h"
#include "local_exec.h"

namespace kbatch::cli {

struct FrontCommandLine {
  int verbose = 0;  ///< -v, -vv, --verbose (repeatable)
  bool quiet = false;
  log::Verbosity verbosity() const { return log::verbosityFromFlags(verbose, quiet); }
  enum class Command { kExec, kRun } command = Command::kExec;
  ExecCommand exec;  ///< when command is kExec
  RunCommand run;    ///< when command is kRun
};

/// argv as main() gets it.
std::optional<FrontCommandLine> parseFrontCommandLine(int argc, const char* const* argv);

/// The verbosity the global flags before the command word ask for, read as
/// parseFrontCommandLine reads them: for logging the hand-over of a command line it does not take.
log::Verbosity leadingVerbosity(int argc, const char* const* argv);

}  // namespace kbatch::cli
