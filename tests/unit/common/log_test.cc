#include "kbatch/common/log.h"

#include <gtest/gtest.h>

#include <string>

namespace kbatch {
namespace {

std::string stderrOf(void (*write_messages)()) {
  testing::internal::CaptureStderr();
  write_messages();
  return testing::internal::GetCapturedStderr();
}

// One test, one process: the logger is process-wide and made once.
TEST(Log, MessagesBelowTheVerbosityCostNothingAndTheRestReachStderr) {
  log::setup(log::Verbosity::kNormal);
  EXPECT_EQ(stderrOf([] {
              log::debug("hidden {}", 1);
              log::info("hidden too");
            }),
            "");
  // Nothing shown yet, so spdlog's logger was never made (each job's start skips its set-up).
  EXPECT_EQ(spdlog::get("kbatch"), nullptr);

  EXPECT_EQ(stderrOf([] { log::warn("disk {} is {}% full", "/scratch", 97); }),
            "kbatch: warning: disk /scratch is 97% full\n");
  ASSERT_NE(spdlog::get("kbatch"), nullptr);

  log::setup(log::Verbosity::kQuiet);
  EXPECT_EQ(stderrOf([] {
              log::warn("hidden when quiet");
              log::error(std::string("shown when quiet"));
            }),
            "kbatch: error: shown when quiet\n");

  log::setup(log::Verbosity::kDebug);
  const std::string debug_line = stderrOf([] { log::debug("step {}", "mount"); });
  EXPECT_NE(debug_line.find(" debug: step mount\n"), std::string::npos) << debug_line;
  EXPECT_EQ(debug_line.rfind("kbatch: ", 0), 0u) << debug_line;
}

}  // namespace
}  // namespace kbatch
