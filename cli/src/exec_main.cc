/// The lean `kbatch` (bindir): the front end every batch job starts. It runs `kbatch exec` and
/// `kbatch run` itself when their command lines are in the forms jobs use (exec_arguments.h) and
/// the site policy needs no YAML parser (the built-in default, or a current compiled policy); it
/// hands everything else to a helper with the same command line (hand_over.h): kbatch-cli (exec and
/// run with CLI11's full parser and the YAML policy loader), kbatch-k8s, kbatch-full.
///
/// Why a front end: each job's start pays for what the executable initialises before main and
/// for parsing its command line. CLI11 and yaml-cpp include <iostream>, whose static initialiser
/// builds the C++ locale, and CLI11 builds every option as objects; here that cost ~2 ms of a
/// ~15 ms container start (bench/exec_start.sh). This executable links neither: nothing in it
/// runs before main, and nothing builds a stream.

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "exec_arguments.h"
#include "hand_over.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "kbatch/policy/policy.h"
#include "local_exec.h"
#include "main_errors.h"
#include "site_policy.h"

#ifndef KBATCH_VERSION
#define KBATCH_VERSION "unknown"
#endif

namespace kbatch::cli {
namespace {

constexpr const char* kCliHelper = "kbatch-cli";

}  // namespace

const policy::Policy& sitePolicy() {
  static const policy::Policy loaded = [] {
    std::string why_not;
    std::optional<policy::Policy> policy = policy::loadSitePolicyWithoutYaml(&why_not);
    if (!policy) handOverTo(kCliHelper, "the site policy must be read from its YAML: " + why_not);
    return std::move(*policy);
  }();
  return loaded;
}

namespace {

log::Verbosity verbosityOf(const FrontCommandLine& line) {
  if (line.quiet) return log::Verbosity::kQuiet;
  if (line.verbose == 1) return log::Verbosity::kVerbose;
  if (line.verbose >= 2) return log::Verbosity::kDebug;
  return log::Verbosity::kNormal;
}

int runFrontEnd(int argc, char** argv) {
  recordArguments(argv);
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::printf("kbatch %s\n", KBATCH_VERSION);
    return exit_code::kOk;
  }
  bool asks_for_main_help = false;
  const std::string_view word = commandWord(argc, argv, asks_for_main_help);
  if (word != "exec" && word != "run") {
    dispatchCommandLine(argc, argv, [](std::string_view) { return false; });
  }
  std::optional<FrontCommandLine> line = parseFrontCommandLine(argc, argv);
  if (!line) {
    // -vv before the command word shows the hand-over too.
    FrontCommandLine globals;
    for (int i = 1; i < argc && std::string_view(argv[i]) != word; ++i) {
      std::string_view flag = argv[i];
      if (flag == "-q" || flag == "--quiet") globals.quiet = true;
      if (flag == "--verbose") ++globals.verbose;
      if (flag.size() >= 2 && flag[0] == '-' && flag.find_first_not_of('v', 1) == flag.npos) {
        globals.verbose += static_cast<int>(flag.size() - 1);
      }
    }
    log::setup(verbosityOf(globals));
    handOverTo(kCliHelper, "the command line is for CLI11's parser");
  }
  log::setup(verbosityOf(*line));
  if (line->command == FrontCommandLine::Command::kExec) runExec(line->exec);
  runScript(line->run);
}

}  // namespace
}  // namespace kbatch::cli

int main(int argc, char** argv) {
  return kbatch::cli::runReportingErrors([&] { return kbatch::cli::runFrontEnd(argc, argv); });
}
