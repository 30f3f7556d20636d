#include "kbatch/common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>

namespace kbatch::log {
namespace {

Verbosity chosen_verbosity = Verbosity::kNormal;
std::atomic<spdlog::logger*> made_logger{nullptr};

spdlog::level::level_enum thresholdOf(Verbosity verbosity) {
  switch (verbosity) {
    case Verbosity::kQuiet:
      return spdlog::level::err;
    case Verbosity::kNormal:
      return spdlog::level::warn;
    case Verbosity::kVerbose:
      return spdlog::level::info;
    case Verbosity::kDebug:
      return spdlog::level::debug;
  }
  return spdlog::level::warn;
}

void configure(spdlog::logger& logger) {
  // -vv is for finding where time goes, too: its lines carry the time of day to the microsecond.
  logger.set_pattern(chosen_verbosity == Verbosity::kDebug ? "kbatch: %H:%M:%S.%f %^%l%$: %v"
                                                           : "kbatch: %^%l%$: %v");
  logger.set_level(thresholdOf(chosen_verbosity));
}

}  // namespace

Verbosity verbosityFromFlags(int verbose_count, bool quiet) {
  if (quiet) return Verbosity::kQuiet;
  if (verbose_count == 1) return Verbosity::kVerbose;
  if (verbose_count >= 2) return Verbosity::kDebug;
  return Verbosity::kNormal;
}

void setup(Verbosity verbosity) {
  chosen_verbosity = verbosity;
  // A message shown before main parsed the command line made the logger already.
  if (spdlog::logger* logger = made_logger.load()) configure(*logger);
}

namespace detail {

bool shown(spdlog::level::level_enum level) { return level >= thresholdOf(chosen_verbosity); }

spdlog::logger& logger() {
  static const std::shared_ptr<spdlog::logger> made = [] {
    auto logger = spdlog::stderr_color_mt("kbatch");
    configure(*logger);
    spdlog::set_default_logger(logger);
    made_logger.store(logger.get());
    return logger;
  }();
  return *made;
}

}  // namespace detail
}  // namespace kbatch::log
