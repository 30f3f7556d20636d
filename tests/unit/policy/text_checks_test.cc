// The loader's text helpers: globs, sizes, durations, UTF-8, alias counting, did-you-mean.

#include "text_checks.h"

#include <gtest/gtest.h>

namespace kbatch::policy::detail {
namespace {

TEST(Glob, StarStaysInOneComponentDoubleStarCrosses) {
  EXPECT_TRUE(globMatches("docker.io/library/*", "docker.io/library/ubuntu:22.04"));
  EXPECT_FALSE(globMatches("docker.io/library/*", "docker.io/library/a/b:1"));
  EXPECT_TRUE(globMatches("docker.io/**", "docker.io/library/a/b:1"));
  EXPECT_TRUE(globMatches("**", "anything/at/all"));
  EXPECT_TRUE(globMatches("ubuntu:2?.04", "ubuntu:22.04"));
  EXPECT_FALSE(globMatches("ubuntu:2?.04", "ubuntu:2/.04"));
  EXPECT_FALSE(globMatches("docker.io/library/ubuntu", "docker.io/library/ubuntu:22.04"));
  EXPECT_TRUE(globMatches("", ""));
  EXPECT_FALSE(globMatches("", "x"));
}

TEST(Glob, HostilePatternStaysFast) {
  std::string pattern;
  for (int i = 0; i < 200; ++i) pattern += "*a";
  std::string text(5000, 'a');
  EXPECT_FALSE(globMatches(pattern + "b", text));  // quadratic, not exponential
}

TEST(Glob, RegexFormMatchesTheSameStrings) {
  EXPECT_EQ(globToRegex("docker.io/library/*"), "^docker\\.io/library/[^/]*$");
  EXPECT_EQ(globToRegex("reg.example/**"), "^reg\\.example/.*$");
  EXPECT_EQ(globToRegex("a?b"), "^a[^/]b$");
}

TEST(Units, ByteSizes) {
  EXPECT_EQ(parseByteSize("1024"), 1024u);
  EXPECT_EQ(parseByteSize("64G"), 64ULL << 30);
  EXPECT_EQ(parseByteSize("512MiB"), 512ULL << 20);
  EXPECT_EQ(parseByteSize("4gb"), 4ULL << 30);
  EXPECT_EQ(parseByteSize("12 parsecs"), std::nullopt);
  EXPECT_EQ(parseByteSize("G"), std::nullopt);
  EXPECT_EQ(parseByteSize("99999999999T"), std::nullopt);  // would overflow
}

TEST(Units, Durations) {
  EXPECT_EQ(parseDuration("3600"), 3600u);
  EXPECT_EQ(parseDuration("1:00:00"), 3600u);
  EXPECT_EQ(parseDuration("90:00"), 5400u);
  EXPECT_EQ(parseDuration("1:2:3:4"), std::nullopt);
  EXPECT_EQ(parseDuration("1h"), std::nullopt);
  EXPECT_EQ(parseDuration(""), std::nullopt);
}

TEST(Utf8, FindsTheFirstBadByte) {
  EXPECT_EQ(findInvalidUtf8("plain\ncafé ✓ 😀"), std::nullopt);
  auto bad = findInvalidUtf8("ok\nab\xFFz");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->line, 2);
  EXPECT_EQ(bad->column, 3);
  EXPECT_TRUE(findInvalidUtf8("\xED\xA0\x80"));  // a UTF-16 surrogate
  EXPECT_TRUE(findInvalidUtf8("\xE2\x82"));      // truncated
}

TEST(YamlLimits, CountsExpandedAliases) {
  EXPECT_EQ(checkYamlLimits("a: &x [1, 2]\nb: *x\n", 100, 10), std::nullopt);
  auto too_big = checkYamlLimits("a: &x [1, 2, 3, 4]\nb: [*x, *x, *x]\n", 10, 10);
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->where.line, 2);
  auto too_many = checkYamlLimits("a: &x 1\nb: [*x, *x, *x]\n", 1000, 2);
  ASSERT_TRUE(too_many);
  EXPECT_NE(too_many->cause.find("aliases"), std::string::npos);
}

TEST(DidYouMean, SuggestsOnlyCloseWords) {
  EXPECT_EQ(closestMatch("imgaes", {"images", "binds"}), "images");
  EXPECT_EQ(closestMatch("qqqqqqq", {"images", "binds"}), std::nullopt);
}

TEST(Paths, SystemAndKernelDirectories) {
  EXPECT_TRUE(isForbiddenWritablePath("/"));
  EXPECT_TRUE(isForbiddenWritablePath("/usr/local"));
  EXPECT_TRUE(isForbiddenWritablePath("/var"));
  EXPECT_FALSE(isForbiddenWritablePath("/var/tmp"));
  EXPECT_FALSE(isForbiddenWritablePath("/home/alice"));
  EXPECT_TRUE(isForbiddenBindPath("/proc/1"));
  EXPECT_FALSE(isForbiddenBindPath("/procedures"));
  EXPECT_TRUE(pathIsWithin("/home/alice/x", "/home/alice"));
  EXPECT_FALSE(pathIsWithin("/home/alice2", "/home/alice"));
}

}  // namespace
}  // namespace kbatch::policy::detail
