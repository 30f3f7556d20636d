#pragma once
/// The options `kbatch exec` and `kbatch run` share, for their CLI11 commands (cmd_exec.cc,
/// cmd_run.cc); what they run is local_exec.h.

#include <CLI/CLI.hpp>

#include "local_exec.h"

namespace kbatch::cli {

/// Adds the shared options to `command`.
void addExecOptions(CLI::App* command, ExecFlags& flags);

/// Adds `exec` with its options and arguments to `app`, parsed into `state` (no callback). The
/// front end's own parser (exec_arguments.h) is tested against this one.
CLI::App* addExecCommand(CLI::App& app, ExecCommand& state);

/// Adds `run` with its options and JOB_SCRIPT to `app`, parsed into `state` (no callback).
CLI::App* addRunCommand(CLI::App& app, RunCommand& state);

}  // namespace kbatch::cli
