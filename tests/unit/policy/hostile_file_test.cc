// Hostile policy files: anything a user could have written or swapped, anything that would make
// the loader burn memory or time, anything that is not text. Each is refused with one clear line.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kbatch/common/error.h"
#include "policy_test_util.h"

namespace kbatch::policy {
namespace {

namespace fs = std::filesystem;

// A uid that is neither root nor the tester: as root we chown files to it; as a normal user the
// tester's own files already stand for "user-owned" (the site loader trusts root only).
constexpr uid_t kOtherUser = 65534;  // nobody

std::string loadError(const fs::path& path, const LoadOptions& options) {
  try {
    loadPolicyFile(path, options);
  } catch (const Error& error) {
    return error.oneLine();
  }
  return "(no error)";
}

// Makes `path` owned by someone the loader does not trust, and returns the options to use.
LoadOptions makeUserOwned(const fs::path& path) {
  LoadOptions site;  // trusts root only
  if (geteuid() == 0) {
    EXPECT_EQ(lchown(path.c_str(), kOtherUser, kOtherUser), 0) << path;
    site.trusted_owners = {0};
  } else {
    site.trusted_owners = {0};  // the tester's own file is "user-owned"
  }
  return site;
}

TEST(HostilePolicyFile, GoodFileLoads) {
  testing::ScratchDir dir;
  auto file = dir.write("policy.yaml", "fakeroot: false\n");
  EXPECT_NO_THROW(loadPolicyFile(file, testing::trustingTester()));
}

TEST(HostilePolicyFile, WorldWritableFileIsRefused) {
  testing::ScratchDir dir;
  auto file = dir.write("policy.yaml", "fakeroot: false\n", 0666);
  std::string error = loadError(file, testing::trustingTester());
  EXPECT_NE(error.find("file '" + file.string() + "' is writable by group or others (mode 0666)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("chmod go-w"), std::string::npos) << error;
}

TEST(HostilePolicyFile, GroupWritableDirectoryOnThePathIsRefused) {
  testing::ScratchDir dir;
  auto file = dir.write("etc/policy.yaml", "fakeroot: false\n");
  chmod((dir.path() / "etc").c_str(), 0775);
  std::string error = loadError(file, testing::trustingTester());
  EXPECT_NE(error.find("directory '" + (dir.path() / "etc").string() + "' is writable by group"),
            std::string::npos)
      << error;
}

TEST(HostilePolicyFile, StickyDirectoryOnThePathIsAcceptedButNotTheUserEntryBelowIt) {
  // Like a checkout under /tmp: a trusted sticky world-writable directory above trusted entries.
  testing::ScratchDir dir;
  auto file = dir.write("tmp/etc/policy.yaml", "fakeroot: false\n");
  ASSERT_EQ(chmod((dir.path() / "tmp").c_str(), 01777), 0);
  EXPECT_NO_THROW(loadPolicyFile(file, testing::trustingTester()));
  // Without the sticky bit anyone could rename etc/ away and put their own in its place.
  ASSERT_EQ(chmod((dir.path() / "tmp").c_str(), 0777), 0);
  EXPECT_NE(loadError(file, testing::trustingTester()).find("is writable by group or others"),
            std::string::npos);
  ASSERT_EQ(chmod((dir.path() / "tmp").c_str(), 01777), 0);
  // An entry a user owns inside the sticky directory is still refused.
  LoadOptions site = makeUserOwned(dir.path() / "tmp" / "etc");
  if (geteuid() == 0) {
    EXPECT_NE(loadError(file, site).find("is owned by uid"), std::string::npos);
  }
}

TEST(HostilePolicyFile, FileOwnedByAUserIsRefused) {
  testing::ScratchDir dir;
  auto file = dir.write("policy.yaml", "fakeroot: false\n");
  LoadOptions site = makeUserOwned(file);
  std::string error = loadError(file, site);
  EXPECT_NE(error.find("is owned by uid"), std::string::npos) << error;
  EXPECT_NE(error.find("not by root"), std::string::npos) << error;
}

TEST(HostilePolicyFile, SymlinkInAUserOwnedDirectoryIsRefused) {
  // /site/etc/policy.yaml is fine, but the path the loader is given goes through a directory a
  // user owns (and could re-point at any time).
  testing::ScratchDir dir;
  auto good = dir.write("etc/policy.yaml", "fakeroot: false\n");
  fs::create_directories(dir.path() / "home");
  fs::create_symlink(good, dir.path() / "home" / "policy.yaml");
  LoadOptions site = makeUserOwned(dir.path() / "home");
  if (geteuid() != 0) GTEST_FAIL() << "needs root to give the directory to another user";
  // Everything else belongs to root in this test; only "home" does not.
  std::string error = loadError(dir.path() / "home" / "policy.yaml", site);
  EXPECT_NE(error.find("directory '" + (dir.path() / "home").string() + "' is owned by uid 65534"),
            std::string::npos)
      << error;
}

TEST(HostilePolicyFile, SymlinkIntoAUserOwnedPlaceIsRefused) {
  testing::ScratchDir dir;
  auto target = dir.write("home/alice/policy.yaml", "fakeroot: true\n");
  fs::create_directories(dir.path() / "etc");
  fs::create_symlink(target, dir.path() / "etc" / "policy.yaml");
  if (geteuid() != 0) GTEST_FAIL() << "needs root to give the directory to another user";
  ASSERT_EQ(chown((dir.path() / "home" / "alice").c_str(), kOtherUser, kOtherUser), 0);
  std::string error = loadError(dir.path() / "etc" / "policy.yaml", LoadOptions{});
  EXPECT_NE(error.find("directory '" + (dir.path() / "home" / "alice").string() +
                       "' is owned by uid 65534"),
            std::string::npos)
      << error;
}

TEST(HostilePolicyFile, SymlinkOwnedByAUserIsRefused) {
  testing::ScratchDir dir;
  auto good = dir.write("policy-real.yaml", "fakeroot: false\n");
  fs::create_symlink(good, dir.path() / "policy.yaml");
  if (geteuid() != 0) GTEST_FAIL() << "needs root to give the link to another user";
  ASSERT_EQ(lchown((dir.path() / "policy.yaml").c_str(), kOtherUser, kOtherUser), 0);
  std::string error = loadError(dir.path() / "policy.yaml", LoadOptions{});
  EXPECT_NE(error.find("symlink '" + (dir.path() / "policy.yaml").string() + "' is owned by uid"),
            std::string::npos)
      << error;
}

TEST(HostilePolicyFile, RootOwnedSymlinkChainLoads) {
  testing::ScratchDir dir;
  auto good = dir.write("real/policy.yaml", "fakeroot: false\n");
  fs::create_symlink("real", dir.path() / "link-dir");
  fs::create_symlink(dir.path() / "link-dir" / "policy.yaml", dir.path() / "policy.yaml");
  EXPECT_NO_THROW(loadPolicyFile(dir.path() / "policy.yaml", testing::trustingTester()));
}

TEST(HostilePolicyFile, SymlinkLoopIsRefused) {
  testing::ScratchDir dir;
  fs::create_symlink(dir.path() / "b", dir.path() / "a");
  fs::create_symlink(dir.path() / "a", dir.path() / "b");
  EXPECT_NE(loadError(dir.path() / "a", testing::trustingTester()).find("too many levels"),
            std::string::npos);
}

TEST(HostilePolicyFile, HundredMegabyteFileIsRefusedBeforeReading) {
  testing::ScratchDir dir;
  auto file = dir.write("policy.yaml", "");
  // Sparse: the size is what matters, and the test must not write 100 MB.
  ASSERT_EQ(truncate(file.c_str(), 100LL * 1024 * 1024), 0);
  std::string error = loadError(file, testing::trustingTester());
  EXPECT_NE(error.find("file is 104857600 bytes, more than the limit of 1048576"), std::string::npos)
      << error;
}

TEST(HostilePolicyFile, AliasBombIsRefused) {
  // The "billion laughs": nine levels of ten aliases each.
  std::string bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    std::string previous(1, static_cast<char>(level - 1));
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", *" : "*") + previous;
    bomb += "]\n";
  }
  testing::ScratchDir dir;
  auto file = dir.write("policy.yaml", bomb);
  std::string error = loadError(file, testing::trustingTester());
  EXPECT_NE(error.find("YAML nodes once aliases are expanded"), std::string::npos) << error;
  EXPECT_NE(error.find("policy.yaml:"), std::string::npos) << error;
}

TEST(HostilePolicyFile, TooManyAliasesAreRefused) {
  std::string text = "images:\n  allowed: &p ['docker.io/**']\n  registries: []\nx: [";
  for (int i = 0; i < 300; ++i) text += (i ? ", *p" : "*p");
  text += "]\n";
  std::string error;
  try {
    testing::parse(text);
  } catch (const Error& e) {
    error = e.oneLine();
  }
  EXPECT_NE(error.find("more than 256 YAML aliases"), std::string::npos) << error;
}

TEST(HostilePolicyFile, InvalidUtf8IsRefusedWithPosition) {
  testing::ScratchDir dir;
  auto file = dir.write("policy.yaml", "version: 1\nsite: {registry: \"caf\xC3\x28\"}\n");
  std::string error = loadError(file, testing::trustingTester());
  EXPECT_NE(error.find("policy.yaml:2:22"), std::string::npos) << error;
  EXPECT_NE(error.find("invalid UTF-8"), std::string::npos) << error;
  // Overlong encodings and NUL bytes are not text either.
  auto overlong = dir.write("overlong.yaml", "a: \xC0\xAF\n");
  EXPECT_NE(loadError(overlong, testing::trustingTester()).find("invalid UTF-8"), std::string::npos);
  auto nul = dir.write("nul.yaml", std::string("fakeroot: false\n\0\n", 18));
  EXPECT_NE(loadError(nul, testing::trustingTester()).find("policy"), std::string::npos);
  EXPECT_NE(loadError(nul, testing::trustingTester()).find("invalid UTF-8"), std::string::npos);
}

TEST(HostilePolicyFile, DirectoryOrDeviceIsNotAPolicy) {
  testing::ScratchDir dir;
  fs::create_directories(dir.path() / "policy.yaml");
  EXPECT_NE(loadError(dir.path() / "policy.yaml", testing::trustingTester()).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(loadError("/dev/null", testing::trustingTester()).find("not a regular file"),
            std::string::npos);
}

TEST(HostilePolicyFile, MalformedTextIsNotReadAsAnEmptyPolicy) {
  // yaml-cpp 0.7 reads this as endless empty documents (found by fuzz_policy); YAML::Load alone
  // would return an empty node, i.e. the built-in defaults.
  std::string error;
  try {
    testing::parse(", x]\nb: [*a, *a]\n");
  } catch (const Error& e) {
    error = e.oneLine();
  }
  EXPECT_NE(error.find("more than one YAML document"), std::string::npos) << error;
}

TEST(HostilePolicyFile, DeepNestingIsRefused) {
  std::string deep(5000, '[');
  std::string error;
  try {
    testing::parse("x: " + deep + std::string(5000, ']') + "\n");
  } catch (const Error& e) {
    error = e.oneLine();
  }
  EXPECT_NE(error.find("test.yaml:"), std::string::npos) << error;
}

}  // namespace
}  // namespace kbatch::policy
