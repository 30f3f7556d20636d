#include "kbatch/rewrite/units.h"

#include <gtest/gtest.h>

namespace kbatch::rewrite {
namespace {

TEST(TorqueSize, PlainNumbersAreBytes) {
  EXPECT_EQ(parseTorqueSize("0"), 0u);
  EXPECT_EQ(parseTorqueSize("512"), 512u);
  EXPECT_EQ(parseTorqueSize("512b"), 512u);
  EXPECT_EQ(parseTorqueSize("512B"), 512u);
}

TEST(TorqueSize, MultipliersAreBinary) {
  EXPECT_EQ(parseTorqueSize("1kb"), 1024u);
  EXPECT_EQ(parseTorqueSize("1k"), 1024u);
  EXPECT_EQ(parseTorqueSize("3mb"), 3u * 1024 * 1024);
  EXPECT_EQ(parseTorqueSize("2GB"), 2ull << 30);
  EXPECT_EQ(parseTorqueSize("2gb"), 2ull << 30);
  EXPECT_EQ(parseTorqueSize("1tb"), 1ull << 40);
  EXPECT_EQ(parseTorqueSize("1pb"), 1ull << 50);
}

TEST(TorqueSize, WordsAreSizeofIntBytes) {
  EXPECT_EQ(kTorqueWordBytes, 4u);
  EXPECT_EQ(parseTorqueSize("10w"), 40u);
  EXPECT_EQ(parseTorqueSize("1kw"), 4096u);
  EXPECT_EQ(parseTorqueSize("2MW"), 8ull << 20);
}

TEST(TorqueSize, IntegerIsReadLikeStrtolBaseZero) {
  EXPECT_EQ(parseTorqueSize("0x10"), 16u);
  EXPECT_EQ(parseTorqueSize("010kb"), 8u * 1024);
}

TEST(TorqueSize, RefusesWhatToSizeRefuses) {
  for (const char* bad : {"", "gb", "1.5gb", "1xb", "1bb", "1bw", "1gbx", "-1gb", "1 gb", "1kbb",
                          "99999999999999999999", "16777216tb"}) {
    EXPECT_FALSE(parseTorqueSize(bad).has_value()) << bad;
  }
}

TEST(TorqueTime, AllFieldCounts) {
  EXPECT_EQ(parseTorqueTime("45"), 45u);
  EXPECT_EQ(parseTorqueTime("3600"), 3600u);
  EXPECT_EQ(parseTorqueTime("10:00"), 600u);
  EXPECT_EQ(parseTorqueTime("1:30"), 90u);
  EXPECT_EQ(parseTorqueTime("01:00:00"), 3600u);
  EXPECT_EQ(parseTorqueTime("100:00:00"), 360000u);
  EXPECT_EQ(parseTorqueTime("2:03:04:05"), 2u * 86400 + 3 * 3600 + 4 * 60 + 5);
}

TEST(TorqueTime, FractionRoundsToNearestSecond) {
  EXPECT_EQ(parseTorqueTime("10.499"), 10u);
  EXPECT_EQ(parseTorqueTime("10.5"), 11u);
  EXPECT_EQ(parseTorqueTime("1:00.9"), 61u);
}

TEST(TorqueTime, RefusesMalformed) {
  for (const char* bad : {"", ":", "1:", ":30", "1::2", "1:2:3:4:5", "ten", "1h", "-5", "1.x"}) {
    EXPECT_FALSE(parseTorqueTime(bad).has_value()) << bad;
  }
}

TEST(SlurmTime, EveryDocumentedForm) {
  EXPECT_EQ(parseSlurmTime("30"), 1800u);               // minutes
  EXPECT_EQ(parseSlurmTime("30:15"), 1815u);            // minutes:seconds
  EXPECT_EQ(parseSlurmTime("2:00:00"), 7200u);          // hours:minutes:seconds
  EXPECT_EQ(parseSlurmTime("1-0"), 86400u);             // days-hours
  EXPECT_EQ(parseSlurmTime("1-02:30"), 86400u + 2 * 3600 + 30 * 60);
  EXPECT_EQ(parseSlurmTime("1-02:30:10"), 86400u + 2 * 3600 + 30 * 60 + 10);
}

TEST(SlurmTime, UnlimitedIsFlagged) {
  bool unlimited = false;
  EXPECT_EQ(parseSlurmTime("UNLIMITED", &unlimited), 0u);
  EXPECT_TRUE(unlimited);
  EXPECT_TRUE(parseSlurmTime("infinite", &unlimited).has_value());
  EXPECT_TRUE(unlimited);
  EXPECT_EQ(parseSlurmTime("5", &unlimited), 300u);
  EXPECT_FALSE(unlimited);
}

TEST(SlurmTime, RefusesMalformed) {
  for (const char* bad : {"", "1-", "-1-2", "1:2:3:4", "a", "1-2:3:4:5", "1d"}) {
    EXPECT_FALSE(parseSlurmTime(bad).has_value()) << bad;
  }
}

TEST(SlurmMemory, DefaultUnitIsMegabytes) {
  EXPECT_EQ(parseSlurmMemory("100"), 100ull << 20);
  EXPECT_EQ(parseSlurmMemory("512K"), 512ull << 10);
  EXPECT_EQ(parseSlurmMemory("4G"), 4ull << 30);
  EXPECT_EQ(parseSlurmMemory("4g"), 4ull << 30);
  EXPECT_EQ(parseSlurmMemory("1T"), 1ull << 40);
  EXPECT_EQ(parseSlurmMemory("4GB"), 4ull << 30);
  EXPECT_EQ(parseSlurmMemory("0"), 0u);
  for (const char* bad : {"", "G", "4X", "4GiB", "1.5G", "-4G"}) {
    EXPECT_FALSE(parseSlurmMemory(bad).has_value()) << bad;
  }
}

TEST(PositiveInt, Bounds) {
  EXPECT_EQ(parsePositiveInt("1"), 1);
  EXPECT_EQ(parsePositiveInt("2147483647"), 2147483647);
  EXPECT_FALSE(parsePositiveInt("0").has_value());
  EXPECT_FALSE(parsePositiveInt("2147483648").has_value());
  EXPECT_FALSE(parsePositiveInt("+3").has_value());
  EXPECT_FALSE(parsePositiveInt("").has_value());
}

}  // namespace
}  // namespace kbatch::rewrite
