// The CLI11 executables' command-line hook (command.h): before CLI11 parses, a command line whose
// command this executable registered stays; everything else goes to the helper that carries it
// (hand_over.h). Linked into kbatch-cli and kbatch-k8s, never into kbatch-full.

#include <string_view>

#include "command.h"
#include "hand_over.h"

namespace kbatch::cli {
namespace {

void dispatchToRegisteredCommands(int argc, char** argv) {
  dispatchCommandLine(argc, argv, [](std::string_view word) {
    for (const auto& command : commandRegistry()) {
      if (command.name == word) return true;
    }
    return false;
  });
}

const CommandLineHookRegistrar kDispatchRegistrar(&dispatchToRegisteredCommands);

}  // namespace
}  // namespace kbatch::cli
