// Package lookups: dpkg -S output, the real dpkg database, RPM capabilities and dnf output.

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "kbatch/common/error.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  fs::path path = fs::path(KBATCH_SOURCE_DIR) / "tests/fixtures/dnf" / name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(PackagesTest, ParsesDpkgSearchOutput) {
  auto owners = parseDpkgSearchOutput(
      "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6\n"
      "diversion by dash from: /bin/sh\n"
      "diversion by dash to: /bin/sh.distrib\n"
      "libgcc-s1:amd64, gcc-12-base:amd64: /usr/share/doc/libgcc-s1\n"
      "zlib1g:amd64: /lib/x86_64-linux-gnu/libz.so.1\n");
  EXPECT_EQ(owners.size(), 3u);
  EXPECT_EQ(owners.at("/lib/x86_64-linux-gnu/libc.so.6"), "libc6:amd64");
  EXPECT_EQ(owners.at("/usr/share/doc/libgcc-s1"), "libgcc-s1:amd64");
  EXPECT_EQ(owners.count("/bin/sh"), 0u);
}

TEST(PackagesTest, LooksUpRealPackagesAcrossTheMergedUsrAlias) {
  // bookworm's libc6 records /lib/x86_64-linux-gnu/libc.so.6; the /usr spelling is found through
  // the merged-/usr fallback.
  auto owners = lookupDebianPackages({"/lib/x86_64-linux-gnu/libc.so.6",
                                      "/usr/lib/x86_64-linux-gnu/libc.so.6",
                                      "/nonexistent/libnothing.so.1"});
  ASSERT_EQ(owners.count("/lib/x86_64-linux-gnu/libc.so.6"), 1u);
  EXPECT_EQ(owners.at("/lib/x86_64-linux-gnu/libc.so.6").rfind("libc6", 0), 0u);
  EXPECT_EQ(owners.at("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            owners.at("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_EQ(owners.count("/nonexistent/libnothing.so.1"), 0u);
}

TEST(PackagesTest, RpmCapabilityNames) {
  EXPECT_EQ(rpmLibraryCapability("libz.so.1", true), "libz.so.1()(64bit)");
  EXPECT_EQ(rpmLibraryCapability("libz.so.1", false), "libz.so.1");
}

TEST(PackagesTest, ParsesDnf4OutputWithMetadataLine) {
  EXPECT_EQ(parseDnfRepoqueryOutput(fixture("dnf4-rhel9-libz.so.1-64bit.txt"), "dnf4"),
            std::vector<std::string>{"zlib"});
}

TEST(PackagesTest, ParsesDnf5OutputWithRepositoryChatter) {
  EXPECT_EQ(parseDnfRepoqueryOutput(fixture("dnf5-fedora41-libcrypto.so.3-64bit.txt"), "dnf5"),
            std::vector<std::string>{"openssl-libs"});
}

TEST(PackagesTest, DashesInNamesAndRepeatedVersions) {
  EXPECT_EQ(parseDnfRepoqueryOutput(fixture("dnf4-fedora35-multiple.txt"), "multi"),
            (std::vector<std::string>{"gcc-c++", "compat-libstdc++-33"}));
}

TEST(PackagesTest, NoProviderIsAnEmptyList) {
  EXPECT_TRUE(parseDnfRepoqueryOutput(fixture("dnf4-no-provider.txt"), "none").empty());
}

TEST(PackagesTest, MalformedLineNamesSourceAndLine) {
  try {
    parseDnfRepoqueryOutput(fixture("malformed.txt"), "malformed.txt");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("malformed.txt:2"), std::string::npos) << error.oneLine();
    EXPECT_NE(error.cause().find("thisisnotanevra"), std::string::npos);
  }
}

}  // namespace
}  // namespace kbatch::image
