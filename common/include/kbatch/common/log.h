#pragma once
/// The one logging wrapper (spdlog underneath). Logs go to stderr so that a job's stdout stays
/// the job's own. The privileged child after clone() never logs.
///
/// Every job starts `kbatch exec`, and most runs show no message at all; so a message below the
/// verbosity costs one comparison, and spdlog's registry, logger and sink are only made when the
/// first message is shown (that set-up cost each job start ~0.2 ms here; bench/exec_start.sh).

#include <spdlog/spdlog.h>

#include <utility>

namespace kbatch::log {

enum class Verbosity { kQuiet, kNormal, kVerbose, kDebug };

/// The verbosity kbatch's global flags ask for: -q wins, one -v is kVerbose, two or more kDebug.
Verbosity verbosityFromFlags(int verbose_count, bool quiet);

/// Sets the verbosity (kNormal until called: warnings and errors); call once from main.
void setup(Verbosity verbosity);

namespace detail {
bool shown(spdlog::level::level_enum level);
/// The process-wide logger, made on first use with the verbosity set by setup().
spdlog::logger& logger();
}  // namespace detail

#define KBATCH_LOG_LEVEL_FUNCTION(name, severity)                               \
  template <typename... Args>                                                   \
  void name(spdlog::format_string_t<Args...> format, Args&&... args) {          \
    if (detail::shown(spdlog::level::severity)) {                               \
      detail::logger().name(format, std::forward<Args>(args)...);               \
    }                                                                           \
  }                                                                             \
  template <typename T>                                                         \
  void name(const T& message) {                                                 \
    if (detail::shown(spdlog::level::severity)) detail::logger().name(message); \
  }

KBATCH_LOG_LEVEL_FUNCTION(debug, debug)
KBATCH_LOG_LEVEL_FUNCTION(info, info)
KBATCH_LOG_LEVEL_FUNCTION(warn, warn)
KBATCH_LOG_LEVEL_FUNCTION(error, err)

#undef KBATCH_LOG_LEVEL_FUNCTION

}  // namespace kbatch::log
