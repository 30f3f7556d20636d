// The container's /etc/passwd and /etc/group: the image's lines kept, one line added for the
// job's user and group when the image does not name their ids, nothing replaced otherwise.

#include "kbatch/runner/account_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kbatch::runner {
namespace {

namespace fs = std::filesystem;

class AccountFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("kbatch-account-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "etc");
    fs::create_directories(root_ / "bin");
    write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/false\n");
    write("etc/group", "root:x:0:\n");
    write("bin/sh", "");
    account_ = {"alice", 4242, 777, "Alice A", "/home/alice", "/bin/zsh", "physics"};
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& path, const std::string& text) {
    std::ofstream(root_ / path, std::ios::binary) << text;
  }
  const ContainerFile* find(const std::vector<ContainerFile>& files, const std::string& path) {
    for (const auto& file : files) {
      if (file.path == path) return &file;
    }
    return nullptr;
  }

  fs::path root_;
  HostAccount account_;
};

TEST_F(AccountFiles, AddsTheUserAndGroupAfterTheImagesLines) {
  const auto files = accountFilesFor(root_, account_);
  const ContainerFile* passwd = find(files, "/etc/passwd");
  const ContainerFile* group = find(files, "/etc/group");
  ASSERT_NE(passwd, nullptr);
  ASSERT_NE(group, nullptr);
  // The image has no /bin/zsh: the shell falls back to /bin/sh.
  EXPECT_EQ(passwd->content,
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/false\n"
            "alice:x:4242:777:Alice A:/home/alice:/bin/sh\n");
  EXPECT_EQ(group->content, "root:x:0:\nphysics:x:777:\n");
  EXPECT_EQ(passwd->mode, 0644u);
}

TEST_F(AccountFiles, KeepsTheHostShellWhenTheImageHasIt) {
  write("bin/zsh", "");
  const auto files = accountFilesFor(root_, account_);
  ASSERT_NE(find(files, "/etc/passwd"), nullptr);
  EXPECT_NE(find(files, "/etc/passwd")->content.find(":/home/alice:/bin/zsh\n"), std::string::npos);
}

TEST_F(AccountFiles, ReplacesNothingTheImageAlreadyNames) {
  write("etc/passwd", "root:x:0:0::/root:/bin/sh\nimage-alice:x:4242:777::/:/bin/sh");
  write("etc/group", "root:x:0:\nimage-group:x:777:");
  EXPECT_TRUE(accountFilesFor(root_, account_).empty());
}

TEST_F(AccountFiles, MatchesTheIdFieldOnlyAndEndsAnUnterminatedLastLine) {
  // 4242 as a gid or inside a name is not the uid 4242.
  write("etc/passwd", "x4242:x:1:4242:4242:/4242:/bin/sh");
  const auto files = accountFilesFor(root_, account_);
  ASSERT_NE(find(files, "/etc/passwd"), nullptr);
  EXPECT_EQ(find(files, "/etc/passwd")->content,
            "x4242:x:1:4242:4242:/4242:/bin/sh\nalice:x:4242:777:Alice A:/home/alice:/bin/sh\n");
}

TEST_F(AccountFiles, ColonsAndNewlinesInHostFieldsCannotAddFields) {
  account_.gecos = "Alice:0:0\nroot2";
  const auto files = accountFilesFor(root_, account_);
  ASSERT_NE(find(files, "/etc/passwd"), nullptr);
  EXPECT_NE(find(files, "/etc/passwd")->content.find("alice:x:4242:777:Alice 0 0 root2:"),
            std::string::npos);
}

TEST_F(AccountFiles, NoFileInTheImageMeansNoReplacement) {
  fs::remove(root_ / "etc/passwd");
  fs::remove(root_ / "etc/group");
  EXPECT_TRUE(accountFilesFor(root_, account_).empty());
  fs::create_directory(root_ / "etc/passwd");  // not a regular file either
  EXPECT_TRUE(accountFilesFor(root_, account_).empty());
}

TEST_F(AccountFiles, FollowsTheImagesSymlinksInsideTheImageOnly) {
  // An absolute link in the image points into the image, never at the host's file.
  fs::create_directories(root_ / "usr/share/base");
  write("usr/share/base/passwd", "root:x:0:0::/root:/bin/sh\n");
  fs::remove(root_ / "etc/passwd");
  fs::create_symlink("/usr/share/base/passwd", root_ / "etc/passwd");
  const auto files = accountFilesFor(root_, account_);
  ASSERT_NE(find(files, "/etc/passwd"), nullptr);
  EXPECT_EQ(find(files, "/etc/passwd")->content,
            "root:x:0:0::/root:/bin/sh\nalice:x:4242:777:Alice A:/home/alice:/bin/sh\n");
}

TEST_F(AccountFiles, AHostGroupWithoutANameAddsNoGroupLine) {
  account_.group_name.clear();
  const auto files = accountFilesFor(root_, account_);
  EXPECT_NE(find(files, "/etc/passwd"), nullptr);
  EXPECT_EQ(find(files, "/etc/group"), nullptr);
}

TEST_F(AccountFiles, AnOversizedImageFileIsNotRead) {
  write("etc/passwd", std::string((1 << 20) + 1, '#'));
  EXPECT_EQ(find(accountFilesFor(root_, account_), "/etc/passwd"), nullptr);
}

}  // namespace
}  // namespace kbatch::runner
