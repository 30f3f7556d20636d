#include "kbatch/common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace kbatch::log {

void setup(Verbosity verbosity) {
  auto logger = spdlog::stderr_color_mt("kbatch");
  // -vv is for finding where time goes, too: its lines carry the time of day to the microsecond.
  logger->set_pattern(verbosity == Verbosity::kDebug ? "kbatch: %H:%M:%S.%f %^%l%$: %v"
                                                     : "kbatch: %^%l%$: %v");
  switch (verbosity) {
    case Verbosity::kQuiet: logger->set_level(spdlog::level::err); break;
    case Verbosity::kNormal: logger->set_level(spdlog::level::warn); break;
    case Verbosity::kVerbose: logger->set_level(spdlog::level::info); break;
    case Verbosity::kDebug: logger->set_level(spdlog::level::debug); break;
  }
  spdlog::set_default_logger(logger);
}

}  // namespace kbatch::log
