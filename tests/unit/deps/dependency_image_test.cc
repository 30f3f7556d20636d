// The closure builder: contents, cache reuse, key changes, concurrency and refusal of missing
// libraries. Running the image is covered by tests/integration/deps (needs user namespaces).

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "deps_fixtures.h"
#include "kbatch/common/error.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

struct Fixture {
  ScratchDir dir;
  fs::path program;
  fs::path library;
  Fixture() {
    fs::create_directories(dir / "lib");
    library = dir / "lib/libdep.so.1";
    testing::compileLibrary(library, "libdep.so.1", "dep", 40, {}, "");
    fs::create_symlink("libdep.so.1", dir / "lib/libdep.so");
    program = dir / "prog";
    testing::compileProgram(program, {"dep"},
                            "-L" + (dir / "lib").string() + " -ldep -Wl,-rpath,'$ORIGIN/lib'");
  }
  DependencyImageRequest request() const {
    DependencyImageRequest request;
    request.binary = program;
    request.shell = "/bin/bash";
    request.cache_dir = dir / "cache";
    request.quiet = true;
    return request;
  }
};

TEST(DependencyImageTest, ClosureHoldsBinaryLibrariesInterpreterShellAndMountPoints) {
  Fixture fixture;
  auto image = buildDependencyImageDetailed(fixture.request());
  EXPECT_FALSE(image.reused);
  EXPECT_EQ(image.strategy, DependencyStrategy::kClosure);
  const fs::path& root = image.rootfs;
  EXPECT_EQ(root, fixture.dir / "cache/deps" / image.key / "rootfs");
  EXPECT_TRUE(fs::is_regular_file(root / fixture.program.relative_path()));
  EXPECT_TRUE(fs::is_regular_file(root / fixture.library.relative_path()));
  EXPECT_TRUE(fs::exists(root / "lib64/ld-linux-x86-64.so.2"));
  EXPECT_TRUE(fs::exists(root / "bin/bash"));
  // bash's own libraries (libtinfo) came along, through the host's /lib -> usr/lib link if any.
  EXPECT_TRUE(fs::exists(root / "lib/x86_64-linux-gnu/libtinfo.so.6"));
  if (fs::is_symlink("/lib")) {
    EXPECT_TRUE(fs::is_symlink(root / "lib"));
  }
  for (const char* dir : {"dev", "proc", "sys", "tmp", "etc"}) {
    EXPECT_TRUE(fs::is_directory(root / dir)) << dir;
  }
  std::ifstream passwd(root / "etc/passwd");
  std::string first_line;
  std::getline(passwd, first_line);
  EXPECT_EQ(first_line, "root:x:0:0:root:/root:/bin/sh");
  // libc was found through the host's ld.so.cache: the image has its own cache naming it.
  bool cached_libc = false;
  for (const auto& entry : readLdCache(root / "etc/ld.so.cache")) {
    cached_libc = cached_libc || entry.name == "libc.so.6";
    EXPECT_TRUE(fs::exists(root / entry.path.relative_path())) << entry.path;
  }
  EXPECT_TRUE(cached_libc);
  EXPECT_TRUE(fs::exists(fixture.dir / "cache/deps" / image.key / "manifest.json"));
}

TEST(DependencyImageTest, SecondRequestReusesTheImage) {
  Fixture fixture;
  auto first = buildDependencyImageDetailed(fixture.request());
  auto marker = first.rootfs / "marker-left-by-test";
  std::ofstream(marker) << "x";
  auto second = buildDependencyImageDetailed(fixture.request());
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.rootfs, first.rootfs);
  EXPECT_TRUE(fs::exists(marker));  // not rebuilt
}

TEST(DependencyImageTest, ChangedLibraryContentChangesTheKey) {
  Fixture fixture;
  auto first = buildDependencyImageDetailed(fixture.request());
  testing::compileLibrary(fixture.dir / "lib/libdep.so.1.new", "libdep.so.1", "dep", 41, {}, "");
  fs::rename(fixture.dir / "lib/libdep.so.1.new", fixture.library);
  auto second = buildDependencyImageDetailed(fixture.request());
  EXPECT_FALSE(second.reused);
  EXPECT_NE(second.key, first.key);
}

TEST(DependencyImageTest, ConcurrentBuildsOfOneKeyBuildOnce) {
  Fixture fixture;
  constexpr int kProcesses = 4;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        auto image = buildDependencyImageDetailed(fixture.request());
        ::_exit(image.reused ? 10 : 11);
      } catch (...) {
        ::_exit(1);
      }
    }
    children.push_back(pid);
  }
  int built = 0, reused = 0;
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 11) ++built;
    else if (WEXITSTATUS(status) == 10) ++reused;
    else ADD_FAILURE() << "child failed with " << WEXITSTATUS(status);
  }
  EXPECT_EQ(built, 1);
  EXPECT_EQ(reused, kProcesses - 1);
  // Nothing half-built is left behind.
  int leftovers = 0;
  for (const auto& entry : fs::recursive_directory_iterator(fixture.dir / "cache/deps")) {
    if (entry.path().filename().string().rfind(".build-", 0) == 0) ++leftovers;
  }
  EXPECT_EQ(leftovers, 0);
}

TEST(DependencyImageTest, MissingLibraryIsRefusedWithItsName) {
  Fixture fixture;
  fs::rename(fixture.dir / "lib", fixture.dir / "hidden");
  try {
    buildDependencyImage(fixture.request());
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(error.cause().find("libdep.so.1"), std::string::npos) << error.oneLine();
    EXPECT_EQ(error.exitCode(), exit_code::kNotFound);
  }
  // With the job's LD_LIBRARY_PATH it resolves again.
  auto request = fixture.request();
  request.ld_library_path = (fixture.dir / "hidden").string();
  EXPECT_TRUE(fs::exists(buildDependencyImage(request) / "lib64/ld-linux-x86-64.so.2"));
}

TEST(DependencyImageTest, ExtrasAreCopiedWithTheirLibraries) {
  Fixture fixture;
  fs::create_directories(fixture.dir / "data/sub");
  std::ofstream(fixture.dir / "data/sub/input.txt") << "42\n";
  auto request = fixture.request();
  request.extra_paths = {fixture.dir / "data", "/usr/bin/env"};
  auto image = buildDependencyImageDetailed(request);
  EXPECT_TRUE(fs::exists(image.rootfs / (fixture.dir / "data/sub/input.txt").relative_path()));
  EXPECT_TRUE(fs::exists(image.rootfs / "usr/bin/env"));
  // env's own libraries came along (it is a dynamic ELF extra).
  EXPECT_TRUE(fs::exists(image.rootfs / "lib/x86_64-linux-gnu/libc.so.6"));
  request.extra_paths = {fixture.dir / "no-such-extra"};
  EXPECT_THROW(buildDependencyImage(request), Error);
}

TEST(DependencyImageTest, StrategyNames) {
  EXPECT_EQ(parseDependencyStrategy("auto", "--strategy"), DependencyStrategy::kAuto);
  EXPECT_THROW(parseDependencyStrategy("copy", "--strategy"), Error);
}

}  // namespace
}  // namespace kbatch::image
