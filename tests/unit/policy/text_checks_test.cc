// The loader's text helpers: globs, sizes, durations, UTF-8, alias counting, did-you-mean.

#include "text_checks.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

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

TEST(YamlLimits, LoadedTreeCountsAliasesAsTheEventPassDoes) {
  // The same inputs as above, on the tree YAML::Load builds (aliases share their anchor's node).
  EXPECT_EQ(checkLoadedYamlLimits(YAML::Load("a: &x [1, 2]\nb: *x\n"), 100, 10), std::nullopt);
  auto too_big =
      checkLoadedYamlLimits(YAML::Load("a: &x [1, 2, 3, 4]\nb: [*x, *x, *x]\n"), 10, 10);
  ASSERT_TRUE(too_big);
  EXPECT_NE(too_big->cause.find("once aliases are expanded"), std::string::npos);
  auto too_many = checkLoadedYamlLimits(YAML::Load("a: &x 1\nb: [*x, *x, *x]\n"), 1000, 2);
  ASSERT_TRUE(too_many);
  EXPECT_NE(too_many->cause.find("more than 2 YAML aliases"), std::string::npos);
  // Many distinct empty values and equal scalars are not aliases.
  EXPECT_EQ(checkLoadedYamlLimits(YAML::Load("a:\nb:\nc: [x, x, x, x]\nd: {}\ne: {}\n"), 100, 0),
            std::nullopt);
  // A nine-level "billion laughs" is refused after walking a few dozen nodes.
  std::string bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    std::string previous(1, static_cast<char>(level - 1));
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", *" : "*") + previous;
    bomb += "]\n";
  }
  auto laughs = checkLoadedYamlLimits(YAML::Load(bomb), 100000, 256);
  ASSERT_TRUE(laughs);
  EXPECT_NE(laughs->cause.find("an alias bomb"), std::string::npos);
}

TEST(YamlDocuments, SecondDocumentIsFoundAtColumnZeroMarkers) {
  EXPECT_EQ(findSecondDocument("a: 1\nb: [x]\n"), std::nullopt);
  EXPECT_EQ(findSecondDocument("# c\n%YAML 1.2\n---\na: 1\n...\n# done\n"), std::nullopt);
  EXPECT_EQ(findSecondDocument("a: |\n  --- not a marker\n  ...\n"), std::nullopt);
  EXPECT_EQ(findSecondDocument("a: ---x\n---x: 1\n"), std::nullopt);  // "---x" is a plain word
  auto second = findSecondDocument("a: 1\n---\nb: 2\n");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->line, 2);
  ASSERT_TRUE(findSecondDocument("a: 1\n...\n\nb: 2\n"));
  EXPECT_EQ(findSecondDocument("a: 1\n...\n\nb: 2\n")->line, 4);
  EXPECT_EQ(findSecondDocument("---\na: 1\n--- \n")->line, 3);
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
