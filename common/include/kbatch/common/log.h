#pragma once
/// The one logging wrapper (spdlog underneath). Logs go to stderr so that a job's stdout stays
/// the job's own. The privileged child after clone() never logs.

#include <spdlog/spdlog.h>

namespace kbatch::log {

enum class Verbosity { kQuiet, kNormal, kVerbose, kDebug };

/// Configures the process-wide logger; call once from main.
void setup(Verbosity verbosity);

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

}  // namespace kbatch::log
