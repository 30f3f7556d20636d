/// `kbatch exec [options] IMAGE -- CMD [ARGS...]`: run one command in a container, in the style of
/// `apptainer exec` and `ch-run`; also the target of rewritten job scripts (contract 2:
/// `--job-body=base64` reads the job body from stdin). The CLI11 command (its options:
/// exec_options.cc); what it runs is local_exec.cc.

#include <memory>

#include "cmd_exec.h"
#include "command.h"

KBATCH_REGISTER_COMMAND(exec, 10, [](CLI::App& app, const kbatch::cli::GlobalOptions&, int*) {
  auto state = std::make_shared<kbatch::cli::ExecCommand>();
  kbatch::cli::addExecCommand(app, *state)->callback([state] { kbatch::cli::runExec(*state); });
});
