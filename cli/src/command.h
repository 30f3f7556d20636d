#pragma once
/// Each subcommand lives in its own file (cmd_<name>.cc) and registers itself here, so adding a
/// command touches no shared file. The registration runs during static initialisation of the
/// kbatch executable (the cli sources are compiled into it directly, never into a library that
/// the linker could drop).

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace kbatch::cli {

/// Global flags every subcommand sees.
struct GlobalOptions {
  int verbose = 0;
  bool quiet = false;
};

/// A subcommand's setup: it adds itself to `app` and sets a callback that stores the exit code in
/// `*exit_code`. Errors are thrown as kbatch::Error and reported by main.
using CommandSetup = std::function<void(CLI::App& app, const GlobalOptions& globals, int* exit_code)>;

struct CommandRegistration {
  std::string name;
  int order;  ///< position in `kbatch help`
  CommandSetup setup;
};

std::vector<CommandRegistration>& commandRegistry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, int order, CommandSetup setup) {
    commandRegistry().push_back({std::move(name), order, std::move(setup)});
  }
};

/// A hook main() calls with its arguments before parsing them, when the executable has one. The
/// lean `kbatch` sets it (full_only_delegate.cc) to hand every command line it has no command for
/// (`kbatch pull ...`, `kbatch help`) to kbatch-full; other executables have none.
using CommandLineHook = void (*)(int argc, char** argv);
CommandLineHook& commandLineHook();

struct CommandLineHookRegistrar {
  explicit CommandLineHookRegistrar(CommandLineHook hook) { commandLineHook() = hook; }
};

}  // namespace kbatch::cli

/// Usage: KBATCH_REGISTER_COMMAND(exec, 10, [](CLI::App& app, const GlobalOptions& g, int* rc) {...});
#define KBATCH_REGISTER_COMMAND(id, order, setup) \
  static const ::kbatch::cli::CommandRegistrar kbatch_command_##id(#id, order, setup)
