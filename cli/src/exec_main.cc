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
    log::setup(leadingVerbosity(argc, argv));  // -vv before the command word shows the hand-over
    handOverTo(kCliHelper, "the command line is for CLI11's parser");
  }
  log::setup(line->verbosity());
  if (line->command == FrontCommandLine::Command::kExec) runExec(line->exec);
  runScript(line->run);
}

}  // namespace
}  // namespace kbatch::cli

int main(int argc, char** argv) {
  return kbatch::cli::runReportingErrors([&] { return kbatch::cli::runFrontEnd(argc, argv); });
}
