// Which containers-certs.d(5) directory serves a registry, and what kbatch takes from it: CA files
// added to the system's, one client certificate paired with its key, clear errors otherwise.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kbatch/common/error.h"
#include "registry_tls.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;

class RegistryTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("kbatch-registry-tls-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void touch(const fs::path& path) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "pem\n";
  }
  fs::path root_;
};

TEST(CertsDirectoryRoots, FollowTheDocumentedOrder) {
  auto rootless = certsDirectoryRoots(1001, "/home/u/.config");
  ASSERT_GE(rootless.size(), 4u);
  EXPECT_EQ(rootless.front(), "/home/u/.config/containers/certs.d");
  EXPECT_EQ(rootless[1], "/etc/containers/certs.rootless.d/1001");
  EXPECT_EQ(rootless.back(), "/etc/docker/certs.d");
  auto rootful = certsDirectoryRoots(0, "");
  EXPECT_EQ(rootful.front(), "/etc/containers/certs.rootful.d");
  EXPECT_EQ(rootful[1], "/etc/containers/certs.d");
  for (const auto& root : rootful) EXPECT_EQ(root.string().find("rootless"), std::string::npos);
}

TEST_F(RegistryTlsTest, NoDirectoryMeansSystemDefaults) {
  RegistryTls tls = findRegistryTls("registry.site:5000", {root_ / "a", root_ / "b"});
  EXPECT_TRUE(tls.directory.empty());
  EXPECT_TRUE(tls.ca_files.empty());
  EXPECT_TRUE(tls.client_cert.empty());
}

TEST_F(RegistryTlsTest, FirstRootWithTheHostWinsAndPortMustMatch) {
  touch(root_ / "user/registry.site:5000/user-ca.crt");
  touch(root_ / "site/registry.site:5000/site-ca.crt");
  touch(root_ / "site/registry.site/no-port.crt");
  RegistryTls tls = findRegistryTls("registry.site:5000", {root_ / "user", root_ / "site"});
  EXPECT_EQ(tls.directory, root_ / "user/registry.site:5000");
  ASSERT_EQ(tls.ca_files.size(), 1u);
  EXPECT_EQ(tls.ca_files[0].filename(), "user-ca.crt");
  tls = findRegistryTls("registry.site", {root_ / "user", root_ / "site"});
  ASSERT_EQ(tls.ca_files.size(), 1u);
  EXPECT_EQ(tls.ca_files[0].filename(), "no-port.crt");
}

TEST_F(RegistryTlsTest, TakesEveryCaAndTheClientPair) {
  touch(root_ / "r:1/b.crt");
  touch(root_ / "r:1/a.crt");
  touch(root_ / "r:1/client.cert");
  touch(root_ / "r:1/client.key");
  touch(root_ / "r:1/README");
  RegistryTls tls = findRegistryTls("r:1", {root_});
  ASSERT_EQ(tls.ca_files.size(), 2u);
  EXPECT_EQ(tls.ca_files[0].filename(), "a.crt");
  EXPECT_EQ(tls.client_cert, root_ / "r:1/client.cert");
  EXPECT_EQ(tls.client_key, root_ / "r:1/client.key");
}

TEST_F(RegistryTlsTest, UnpairedClientFilesAreRefusedNamingTheFile) {
  touch(root_ / "r:1/client.cert");
  try {
    findRegistryTls("r:1", {root_});
    FAIL() << "a certificate without its key was accepted";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("client.cert"), std::string::npos) << error.oneLine();
    EXPECT_NE(error.oneLine().find("client.key"), std::string::npos) << error.oneLine();
  }
  fs::remove(root_ / "r:1/client.cert");
  touch(root_ / "r:1/other.key");
  EXPECT_THROW(findRegistryTls("r:1", {root_}), Error);
}

TEST_F(RegistryTlsTest, NamesThatWouldLeaveTheRootsAreIgnored) {
  touch(root_ / "inside/ca.crt");
  EXPECT_TRUE(findRegistryTls("..", {root_ / "inside"}).directory.empty());
  EXPECT_TRUE(findRegistryTls("x/../..", {root_ / "inside"}).directory.empty());
}

}  // namespace
}  // namespace kbatch::image
