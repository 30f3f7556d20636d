/// `kbatch run JOB_SCRIPT [exec options]`: run a whole job script in its container as the batch
/// system would on this node. The README quick start's main command: no batch system needed. The
/// CLI11 command (its options: exec_options.cc); what it runs is local_exec.cc.

#include <memory>

#include "cmd_exec.h"
#include "command.h"

KBATCH_REGISTER_COMMAND(run, 11, [](CLI::App& app, const kbatch::cli::GlobalOptions&, int*) {
  auto state = std::make_shared<kbatch::cli::RunCommand>();
  kbatch::cli::addRunCommand(app, *state)->callback([state] { kbatch::cli::runScript(*state); });
});
