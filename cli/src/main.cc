/// kbatch: run batch jobs in containers through the site's existing batch system.

#include <algorithm>
#include <cstdio>

#include "command.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "main_errors.h"

#ifndef KBATCH_VERSION
#define KBATCH_VERSION "unknown"
#endif

namespace kbatch::cli {

std::vector<CommandRegistration>& commandRegistry() {
  static std::vector<CommandRegistration> registry;
  return registry;
}

CommandLineHook& commandLineHook() {
  static CommandLineHook hook = nullptr;
  return hook;
}

namespace {

int runMain(int argc, char** argv) {
  if (CommandLineHook hook = commandLineHook()) hook(argc, argv);
  CLI::App app{"kbatch: run batch jobs in containers through the site's existing batch system"};
  app.name("kbatch");
  app.set_version_flag("--version", std::string("kbatch ") + KBATCH_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions globals;
  app.add_flag("-v,--verbose", globals.verbose, "More log output (repeat for debug)");
  app.add_flag("-q,--quiet", globals.quiet, "Only errors");
  app.footer(
      "Exit codes: the job's own status passes through unchanged; kbatch's own failures use\n"
      "125 (kbatch error), 126 (cannot execute), 127 (not found). Death of the job by signal N\n"
      "is reported as 128+N, as the shell does. `kbatch help COMMAND` shows a command's help.");

  int exit_code = exit_code::kOk;
  auto& registry = commandRegistry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order < b.order; });
  for (auto& command : registry) command.setup(app, globals, &exit_code);

  // `kbatch help [COMMAND]`
  std::vector<std::string> help_topic;
  auto* help = app.add_subcommand("help", "Show help for kbatch or one of its commands");
  help->add_option("command", help_topic, "Command (and subcommand) to describe");
  help->callback([&] {
    CLI::App* target = &app;
    for (const auto& word : help_topic) {
      CLI::App* next = nullptr;
      try {
        next = target->get_subcommand(word);
      } catch (const CLI::OptionNotFound&) {
      }
      if (next == nullptr) {
        throw Error("show help for", word, "no such command", "run `kbatch help` for the list",
                    exit_code::kKbatchError);
      }
      target = next;
    }
    // App::help() would describe the selected subcommand ("help" itself); ask the formatter directly.
    std::string name = target == &app ? "kbatch" : target->get_name();
    std::fputs(target->get_formatter()->make_help(target, name, CLI::AppFormatMode::Normal).c_str(),
               stdout);
  });

  // Logging must be configured before any subcommand callback runs.
  app.parse_complete_callback(
      [&] { log::setup(log::verbosityFromFlags(globals.verbose, globals.quiet)); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& parse_error) {
    int rc = app.exit(parse_error);
    // CLI11 returns 0 for --help/--version; usage errors are kbatch errors.
    return rc == 0 ? exit_code::kOk : exit_code::kKbatchError;
  }
  return exit_code;
}

}  // namespace
}  // namespace kbatch::cli

int main(int argc, char** argv) {
  return kbatch::cli::runReportingErrors([&] { return kbatch::cli::runMain(argc, argv); });
}
