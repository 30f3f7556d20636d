// Layer extraction: honest layers unpack as OCI says; hostile layers are refused with a clear
// error and write nothing outside the image root.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fs_util.h"
#include "kbatch/common/error.h"
#include "layer_extract.h"
#include "test_tar.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using testing::TarBuilder;

class LayerExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::makeTempDir("kbatch-layer");
    root_ = base_ / "root";
    outside_ = base_ / "outside";
    fs::create_directory(root_);
    fs::create_directory(outside_);
    root_fd_.reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }
  void TearDown() override { removeTree(base_); }

  void extract(const std::string& layer, ExtractLimits limits = {}) {
    extractLayerMemory(root_fd_.get(), layer.data(), layer.size(), "test-layer", limits, stats_);
  }

  // Extracts a hostile layer, expects a refusal mentioning `expected`, and checks that the
  // sibling directory outside the root is still empty.
  void expectRefused(const std::string& layer, const std::string& expected) {
    try {
      extract(layer);
      FAIL() << "the layer was accepted; expected an error mentioning: " << expected;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("test-layer"), std::string::npos) << error.what();
    }
    EXPECT_TRUE(fs::is_empty(outside_)) << "something was written outside the image root";
  }

  static std::string readFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

  fs::path base_, root_, outside_;
  UniqueFd root_fd_;
  ExtractStats stats_;
};

TEST_F(LayerExtractTest, UnpacksFilesDirectoriesAndLinks) {
  extract(TarBuilder()
              .directory("./etc/")
              .file("./etc/hostname", "node1\n", 0640)
              .directory("usr/bin")
              .file("usr/bin/tool", "#!/bin/sh\n", 0755)
              .symlink("bin", "usr/bin")
              .hardlink("usr/bin/tool-alias", "usr/bin/tool")
              .finish());
  EXPECT_EQ(readFile(root_ / "etc/hostname"), "node1\n");
  EXPECT_EQ(fs::status(root_ / "etc/hostname").permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_TRUE(fs::is_symlink(root_ / "bin"));
  EXPECT_EQ(fs::read_symlink(root_ / "bin"), "usr/bin");
  EXPECT_EQ(fs::hard_link_count(root_ / "usr/bin/tool"), 2u);
  EXPECT_EQ(readFile(root_ / "usr/bin/tool-alias"), "#!/bin/sh\n");
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "usr/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1700000000);
}

TEST_F(LayerExtractTest, GzipAndZstdLayersUnpack) {
  extract(TarBuilder(TarBuilder::Compression::kGzip).file("a.txt", "gzip").finish());
  extract(TarBuilder(TarBuilder::Compression::kZstd).file("b.txt", "zstd").finish());
  EXPECT_EQ(readFile(root_ / "a.txt"), "gzip");
  EXPECT_EQ(readFile(root_ / "b.txt"), "zstd");
}

TEST_F(LayerExtractTest, WhiteoutsRemoveLowerLayerFiles) {
  extract(TarBuilder()
              .file("keep.txt", "k")
              .file("gone.txt", "g")
              .directory("dir")
              .file("dir/inner", "i")
              .finish());
  extract(TarBuilder().file(".wh.gone.txt", "").file("dir/.wh.inner", "").finish());
  EXPECT_TRUE(fs::exists(root_ / "keep.txt"));
  EXPECT_FALSE(fs::exists(root_ / "gone.txt"));
  EXPECT_FALSE(fs::exists(root_ / ".wh.gone.txt"));
  EXPECT_TRUE(fs::is_directory(root_ / "dir"));
  EXPECT_FALSE(fs::exists(root_ / "dir/inner"));
}

TEST_F(LayerExtractTest, OpaqueDirectoryHidesLowerLayersButKeepsItsOwnEntries) {
  extract(TarBuilder().directory("opt").file("opt/old1", "1").file("opt/old2", "2").finish());
  // The opaque marker comes after a sibling written by the same layer: that sibling stays.
  extract(TarBuilder().file("opt/new", "n").file("opt/.wh..wh..opq", "").finish());
  EXPECT_FALSE(fs::exists(root_ / "opt/old1"));
  EXPECT_FALSE(fs::exists(root_ / "opt/old2"));
  EXPECT_EQ(readFile(root_ / "opt/new"), "n");
  EXPECT_FALSE(fs::exists(root_ / "opt/.wh..wh..opq"));
}

TEST_F(LayerExtractTest, LaterLayersReplaceFileTypes) {
  extract(TarBuilder().directory("x").file("x/f", "1").file("y", "file").finish());
  extract(TarBuilder().file("x", "now a file").directory("y").finish());
  EXPECT_EQ(readFile(root_ / "x"), "now a file");
  EXPECT_TRUE(fs::is_directory(root_ / "y"));
}

TEST_F(LayerExtractTest, SetuidAndSetgidBitsAreDropped) {
  extract(TarBuilder().file("su", "x", 06755).finish());
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(stats_.dropped_setid, 1u);
}

TEST_F(LayerExtractTest, DeviceNodesAreSkippedAndCounted) {
  extract(TarBuilder().charDevice("dev/null").file("after", "a").finish());
  EXPECT_FALSE(fs::exists(root_ / "dev/null"));
  EXPECT_TRUE(fs::exists(root_ / "after"));
  EXPECT_EQ(stats_.skipped_devices, 1u);
}

TEST_F(LayerExtractTest, RefusesDotDotTraversal) {
  expectRefused(TarBuilder().file("../outside/escape", "x").finish(), "contains '..'");
  expectRefused(TarBuilder().file("a/../../outside/escape", "x").finish(), "contains '..'");
}

TEST_F(LayerExtractTest, RefusesAbsolutePaths) {
  std::string target = (outside_ / "absolute").string();
  expectRefused(TarBuilder().file(target, "x").finish(), "absolute path");
}

TEST_F(LayerExtractTest, RefusesWritingThroughSymlinkThatClimbsOut) {
  expectRefused(TarBuilder().symlink("link", "../outside").file("link/pwned", "x").finish(),
                "outside the image root");
  expectRefused(TarBuilder().directory("a").symlink("a/up", "../../..").file("a/up/tmp/pwned", "x").finish(),
                "outside the image root");
}

TEST_F(LayerExtractTest, AbsoluteSymlinksResolveInsideTheRoot) {
  // As inside the container, "/x" means the image's /x: writing through it lands in the root.
  extract(TarBuilder().symlink("abs", outside_.string()).file("abs/pwned", "x").finish());
  EXPECT_TRUE(fs::is_empty(outside_));
  EXPECT_EQ(readFile(root_ / outside_.relative_path() / "pwned"), "x");
}

TEST_F(LayerExtractTest, SymlinkPlantedInEarlierLayerIsNotFollowedOut) {
  extract(TarBuilder().symlink("etc", "../../outside").finish());
  expectRefused(TarBuilder().file("etc/passwd", "root::0:0").finish(), "outside the image root");
}

// The extractor keeps the directories it opened for the next entries; an entry that replaces such
// a directory within the same layer must make later entries walk (and check) the path again.
TEST_F(LayerExtractTest, DirectoryReplacedBySymlinkInTheSameLayerIsWalkedAgain) {
  expectRefused(TarBuilder()
                    .directory("lib")
                    .file("lib/first", "1")
                    .symlink("lib", "../outside")
                    .file("lib/second", "2")
                    .finish(),
                "outside the image root");
  removeTree(root_);
  fs::create_directory(root_);
  root_fd_.reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  extract(TarBuilder()
              .directory("lib")
              .file("lib/first", "1")
              .directory("usr/lib")
              .symlink("lib", "usr/lib")
              .file("lib/second", "2")
              .finish());
  EXPECT_EQ(readFile(root_ / "usr/lib/second"), "2");
  EXPECT_FALSE(fs::exists(root_ / "usr/lib/first"));
}

TEST_F(LayerExtractTest, DirectoryReplacedTwiceInTheSameLayerGetsTheLaterEntries) {
  // Later entries win, as with tar -x: x ends as a new directory holding only b.
  extract(TarBuilder()
              .directory("x")
              .file("x/a", "a")
              .file("x", "now a file")
              .directory("x")
              .file("x/b", "b")
              .finish());
  EXPECT_FALSE(fs::exists(root_ / "x/a"));
  EXPECT_EQ(readFile(root_ / "x/b"), "b");
}

TEST_F(LayerExtractTest, ManyDirectoriesAndRevisitsUnpackCompletely) {
  // More directories than the extractor keeps open, visited back and forth.
  TarBuilder layer;
  for (int round = 0; round < 2; ++round) {
    for (int d = 0; d < 100; ++d) {
      std::string dir = "d" + std::to_string(d);
      if (round == 0) layer.directory(dir);
      layer.file(dir + "/f" + std::to_string(round), std::to_string(d * 10 + round));
    }
  }
  extract(layer.finish());
  for (int d = 0; d < 100; ++d) {
    for (int round = 0; round < 2; ++round) {
      EXPECT_EQ(readFile(root_ / ("d" + std::to_string(d)) / ("f" + std::to_string(round))),
                std::to_string(d * 10 + round));
    }
  }
  EXPECT_EQ(stats_.entries, 300u);
}

TEST_F(LayerExtractTest, RefusesSymlinkLoops) {
  expectRefused(TarBuilder().symlink("a", "b").symlink("b", "a").file("a/x", "x").finish(),
                "too many levels of symlinks");
}

TEST_F(LayerExtractTest, RefusesHardlinksToOutside) {
  fs::path secrets = base_ / "secrets";
  fs::create_directory(secrets);
  std::ofstream(secrets / "secret") << "secret";
  expectRefused(TarBuilder().hardlink("h", "../secrets/secret").finish(), "contains '..'");
  expectRefused(TarBuilder().hardlink("h", (secrets / "secret").string()).finish(), "absolute path");
  // Through a symlink: resolved inside the root, where no such file exists.
  expectRefused(TarBuilder().symlink("up", "/").hardlink("h", "up/etc/passwd").finish(),
                "does not exist");
  EXPECT_EQ(fs::hard_link_count(secrets / "secret"), 1u);
  EXPECT_FALSE(fs::exists(root_ / "h"));
}

TEST_F(LayerExtractTest, RefusesWhiteoutOfDotDot) {
  std::ofstream(base_ / "victim") << "v";
  expectRefused(TarBuilder().file(".wh...", "").finish(), "whiteout of '..'");
  expectRefused(TarBuilder().file("sub/.wh..", "").finish(), "whiteout of '.'");
  EXPECT_TRUE(fs::exists(base_ / "victim"));
  EXPECT_TRUE(fs::exists(root_));
}

TEST_F(LayerExtractTest, RefusesHugeSparseFileBeforeWriting) {
  ExtractLimits limits;
  limits.max_unpacked_bytes = 1 << 30;
  std::string layer = TarBuilder().file("small", "s").fileHeaderOnly("huge", 1LL << 40).finish();
  try {
    extract(layer, limits);
    FAIL() << "a 1 TiB entry was accepted under a 1 GiB limit";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'huge'"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("exceed the limit"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(fs::exists(root_ / "huge"));
}

TEST_F(LayerExtractTest, StopsDecompressionBomb) {
  ExtractLimits limits;
  limits.max_unpacked_bytes = 8 << 20;
  std::string zeros(32 << 20, '\0');
  std::string layer = TarBuilder(TarBuilder::Compression::kGzip).file("bomb", zeros).finish();
  ASSERT_LT(layer.size(), 1u << 20) << "the test bomb should compress well";
  EXPECT_THROW(extract(layer, limits), Error);
  EXPECT_FALSE(fs::exists(root_ / "bomb"));
  // The budget spans layers: many small layers add up.
  ExtractStats fresh;
  stats_ = fresh;
  std::string chunk = TarBuilder().file("part", std::string(3 << 20, 'x')).finish();
  extract(chunk, limits);
  extract(chunk, limits);
  EXPECT_THROW(extract(chunk, limits), Error);
}

TEST_F(LayerExtractTest, RejectsGarbageWithOneLineError) {
  std::string garbage = "this is not a tar archive at all, just some text......";
  garbage.resize(2048, 'x');
  try {
    extract(garbage);
    FAIL() << "garbage accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.oneLine().find('\n'), std::string::npos);
    EXPECT_NE(error.oneLine().find("test-layer"), std::string::npos);
  }
}

// extractLayerFile decompresses on a second thread; the same layers must give the same results
// and the same errors as from memory.
class LayerFileTest : public LayerExtractTest {
 protected:
  void extractFile(const std::string& layer, ExtractLimits limits = {}) {
    fs::path file = base_ / ("layer-" + std::to_string(++files_));
    std::ofstream(file, std::ios::binary) << layer;
    extractLayerFile(root_fd_.get(), file, "test-layer", limits, stats_);
  }
  int files_ = 0;
};

TEST_F(LayerFileTest, UnpacksPlainGzipZstdAndEmptyLayerFiles) {
  // Several MiB, so that the stream passes through the decompressor's queue many times over.
  std::string big(5 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
  extractFile(TarBuilder(TarBuilder::Compression::kGzip)
                  .directory("usr/share")
                  .file("usr/share/big", big)
                  .file("usr/share/small", "s")
                  .finish());
  extractFile(TarBuilder(TarBuilder::Compression::kZstd).file("z.txt", "zstd").finish());
  extractFile(TarBuilder().file("plain.txt", "plain").finish());
  extractFile("");
  EXPECT_EQ(readFile(root_ / "usr/share/big"), big);
  EXPECT_EQ(readFile(root_ / "usr/share/small"), "s");
  EXPECT_EQ(readFile(root_ / "z.txt"), "zstd");
  EXPECT_EQ(readFile(root_ / "plain.txt"), "plain");
}

TEST_F(LayerFileTest, TruncatedGzipLayerFailsWithOneLine) {
  std::string big(4 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 31) % 253);
  std::string layer = TarBuilder(TarBuilder::Compression::kGzip).file("big", big).finish();
  layer.resize(layer.size() / 2);
  try {
    extractFile(layer);
    FAIL() << "a truncated layer was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.oneLine().find('\n'), std::string::npos) << error.oneLine();
    EXPECT_NE(error.oneLine().find("test-layer"), std::string::npos) << error.oneLine();
  }
}

TEST_F(LayerFileTest, GarbageFileIsNotATarArchive) {
  std::string garbage(4096, 'x');
  try {
    extractFile(garbage);
    FAIL() << "garbage accepted";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("not a tar archive"), std::string::npos) << error.oneLine();
  }
}

TEST_F(LayerFileTest, StopsDecompressionBombAndItsThread) {
  ExtractLimits limits;
  limits.max_unpacked_bytes = 8 << 20;
  // 64 MiB of zeros, far more than the decompressor queues ahead: it must be stopped midway.
  std::string layer =
      TarBuilder(TarBuilder::Compression::kGzip).file("bomb", std::string(64 << 20, '\0')).finish();
  try {
    extractFile(layer, limits);
    FAIL() << "the bomb was accepted";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("exceed the limit"), std::string::npos) << error.oneLine();
  }
  EXPECT_FALSE(fs::exists(root_ / "bomb"));
}

}  // namespace
}  // namespace kbatch::image
