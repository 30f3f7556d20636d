#include "kbatch/image/reference.h"

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kbatch/common/error.h"
#include "test_tar.h"

namespace kbatch::image {
namespace {

// The hand-written matchers against the distribution spec's regular expressions, on every string
// of up to 6 characters over an alphabet that exercises each rule, and on long ones.
TEST(ImageReferenceGrammar, MatchesTheSpecsRegularExpressions) {
  const std::regex tag("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  const std::regex repository(
      "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*");
  const std::regex host(
      "(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
      "|\\[[0-9a-fA-F:.]+\\])(:[0-9]{1,5})?");
  const std::string alphabet = "aZ0._-/:[]f";
  std::vector<std::string> strings = {"", std::string(128, 'a'), std::string(129, 'a'),
                                      "_" + std::string(127, '-'), "a:123456", "[::1]:5000",
                                      "[]", "[g]", "a..b", "a--b", "a__b", "a___b", "a._b"};
  std::vector<std::string> level = {""};
  for (int length = 1; length <= 6; ++length) {
    std::vector<std::string> next;
    for (const auto& prefix : level) {
      for (char c : alphabet) next.push_back(prefix + c);
    }
    strings.insert(strings.end(), next.begin(), next.end());
    level = std::move(next);
  }
  for (const auto& text : strings) {
    ASSERT_EQ(isValidTag(text), std::regex_match(text, tag)) << "tag '" << text << "'";
    ASSERT_EQ(isValidRepository(text), std::regex_match(text, repository))
        << "repository '" << text << "'";
    ASSERT_EQ(isValidRegistryHost(text), std::regex_match(text, host)) << "host '" << text << "'";
  }
}

TEST(ImageReferenceTest, ParsesDockerReferenceWithPortAndTag) {
  auto reference = parseImageReference("docker://127.0.0.1:5000/team/app:1.2");
  EXPECT_EQ(reference.transport, Transport::kDocker);
  EXPECT_EQ(reference.registry, "127.0.0.1:5000");
  EXPECT_EQ(reference.repository, "team/app");
  EXPECT_EQ(reference.tag, "1.2");
  EXPECT_TRUE(reference.digest.empty());
  EXPECT_EQ(reference.storeName(), "127.0.0.1:5000/team/app:1.2");
  EXPECT_EQ(reference.toString(), "docker://127.0.0.1:5000/team/app:1.2");
}

TEST(ImageReferenceTest, DefaultsTagToLatest) {
  auto reference = parseImageReference("docker://registry.example.org/app");
  EXPECT_EQ(reference.registry, "registry.example.org");
  EXPECT_EQ(reference.tag, "latest");
}

TEST(ImageReferenceTest, ParsesDigestPinnedReference) {
  std::string digest = "sha256:" + std::string(64, 'a');
  auto reference = parseImageReference("docker://host:443/app@" + digest);
  EXPECT_EQ(reference.digest, digest);
  EXPECT_TRUE(reference.tag.empty());
  EXPECT_EQ(reference.storeName(), "host:443/app@" + digest);
}

TEST(ImageReferenceTest, RejectsMalformedDockerReferences) {
  for (const char* bad : {"docker://app", "docker:///app", "docker://host/App", "docker://host/app:",
                          "docker://host/app@sha256:123", "docker://ho st/app",
                          "docker://host/app:bad/tag"}) {
    EXPECT_THROW(parseImageReference(bad), Error) << bad;
  }
  try {
    parseImageReference("docker://host/UPPER");
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("repository 'UPPER'"), std::string::npos) << error.what();
  }
}

TEST(ImageReferenceTest, ParsesOciLayoutAndArchive) {
  auto layout = parseImageReference("oci:/data/layout:v1");
  EXPECT_EQ(layout.transport, Transport::kOciLayout);
  EXPECT_EQ(layout.path, "/data/layout");
  EXPECT_EQ(layout.tag, "v1");
  EXPECT_EQ(layout.storeName(), "oci:/data/layout:v1");
  auto untagged = parseImageReference("oci:/data/with:colon/layout");
  EXPECT_EQ(untagged.path, "/data/with:colon/layout");
  EXPECT_TRUE(untagged.tag.empty());
  auto archive = parseImageReference("oci-archive:/tmp/image.tar");
  EXPECT_EQ(archive.transport, Transport::kOciArchive);
  EXPECT_EQ(archive.path, "/tmp/image.tar");
  EXPECT_THROW(parseImageReference("oci:"), Error);
}

TEST(ImageReferenceTest, DistinguishesDirectoriesFromStoreNames) {
  auto dir = testing::makeTempDir("kbatch-ref");
  auto reference = parseImageReference(dir.string());
  EXPECT_EQ(reference.transport, Transport::kDirectory);
  std::filesystem::remove(dir);
  auto name = parseImageReference("127.0.0.1:5000/team/app:1");
  EXPECT_EQ(name.transport, Transport::kStoreName);
  EXPECT_THROW(parseImageReference("ftp://host/x"), Error);
  EXPECT_THROW(parseImageReference(""), Error);
}

TEST(NamesRegistryHost, AsContainerRuntimesDecideIt) {
  EXPECT_TRUE(namesRegistryHost("registry.site/team/app:1"));
  EXPECT_TRUE(namesRegistryHost("127.0.0.1:5000/app@sha256:0123"));
  EXPECT_TRUE(namesRegistryHost("localhost/app"));
  EXPECT_FALSE(namesRegistryHost("team/app:1"));
  EXPECT_FALSE(namesRegistryHost("busybox"));
  EXPECT_FALSE(namesRegistryHost("/abs/dir"));
  EXPECT_FALSE(namesRegistryHost("kbatch-deps:0123abcd"));
}

}  // namespace
}  // namespace kbatch::image
