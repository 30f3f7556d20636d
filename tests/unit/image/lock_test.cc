#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "fs_util.h"
#include "kbatch/common/error.h"
#include "test_tar.h"

namespace kbatch::image {
namespace {

TEST(FileLockTest, ExclusiveLockExcludesOtherHolders) {
  auto dir = testing::makeTempDir("kbatch-lock");
  auto path = dir / "x.lock";
  {
    FileLock held(path, FileLock::Mode::kExclusive);
    EXPECT_TRUE(held.held());
    EXPECT_FALSE(FileLock::tryLock(path, FileLock::Mode::kShared).held());
    EXPECT_FALSE(FileLock::tryLock(path, FileLock::Mode::kExclusive).held());
  }
  EXPECT_TRUE(FileLock::tryLock(path, FileLock::Mode::kExclusive).held());
  std::filesystem::remove_all(dir);
}

TEST(FileLockTest, SharedLocksCoexist) {
  auto dir = testing::makeTempDir("kbatch-lock");
  auto path = dir / "x.lock";
  FileLock first(path, FileLock::Mode::kShared);
  EXPECT_TRUE(FileLock::tryLock(path, FileLock::Mode::kShared).held());
  EXPECT_FALSE(FileLock::tryLock(path, FileLock::Mode::kExclusive).held());
  std::filesystem::remove_all(dir);
}

TEST(FileLockTest, LockOfAKilledProcessIsReleased) {
  auto dir = testing::makeTempDir("kbatch-lock");
  auto path = dir / "x.lock";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    FileLock held(path, FileLock::Mode::kExclusive);
    char byte = 1;
    (void)!::write(ready[1], &byte, 1);
    ::pause();
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  EXPECT_FALSE(FileLock::tryLock(path, FileLock::Mode::kExclusive).held());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(FileLock::tryLock(path, FileLock::Mode::kExclusive).held());
  ::close(ready[0]);
  ::close(ready[1]);
  std::filesystem::remove_all(dir);
}

TEST(AtomicWriteTest, ReplacesContentAndLeavesNoTemporaries) {
  auto dir = testing::makeTempDir("kbatch-atomic");
  writeFileAtomic(dir / "f", "one");
  writeFileAtomic(dir / "f", "two");
  EXPECT_EQ(readFileLimited(dir / "f", 100), "two");
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u);
  EXPECT_THROW(readFileLimited(dir / "f", 2), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kbatch::image
