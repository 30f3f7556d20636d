// The dependency image builder: contents, OCI layers in the image store, reuse, key changes,
// concurrency, refusal of missing libraries, and the compute node's lookup order. Running the
// image is covered by tests/integration/deps (needs user namespaces).

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "deps_fixtures.h"
#include "kbatch/common/error.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/deps.h"
#include "kbatch/image/store.h"

#include <nlohmann/json.hpp>
#include <sys/stat.h>

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
  // An OCI image in the store: tagged by its key, unpacked root under roots/<manifest hex>.
  EXPECT_EQ(image.store_name, "kbatch-deps:" + image.key);
  ASSERT_EQ(image.manifest_digest.rfind("sha256:", 0), 0u);
  EXPECT_EQ(root, fixture.dir / "cache/roots" / image.manifest_digest.substr(7) / "rootfs");
  EXPECT_EQ(image.layers, 1u);  // closure without --base: the dependency layer only
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
  ImageStore store(fixture.dir / "cache");
  auto record = store.lookup(image.store_name);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->manifest_digest, image.manifest_digest);
  auto config = store.imageConfig(image.manifest_digest);
  EXPECT_EQ(config.labels["org.kbatch.dependency-key"], image.key);
  EXPECT_EQ(config.labels["org.kbatch.strategy"], "closure");
}

TEST(DependencyImageTest, StoreUnpacksTheSameRootFromTheLayers) {
  Fixture fixture;
  auto image = buildDependencyImageDetailed(fixture.request());
  // A second store that has only the blobs (as after a pull) unpacks the layers itself.
  ImageStore built(fixture.dir / "cache");
  ImageStore other(fixture.dir / "other");
  auto manifest_blob = built.findBlob(image.manifest_digest);
  ASSERT_TRUE(manifest_blob);
  for (const auto& entry : fs::directory_iterator(fixture.dir / "cache/blobs/sha256")) {
    std::string digest = "sha256:" + entry.path().filename().string();
    other.importBlobFile(entry.path(), digest);
  }
  fs::path unpacked = other.unpackedRoot(image.manifest_digest);
  auto [status, differences] = testing::runCommand(
      "diff -r --no-dereference " + testing::quote(image.rootfs.string()) + " " +
      testing::quote(unpacked.string()));
  EXPECT_EQ(status, 0) << differences;
}

TEST(DependencyImageTest, BaseImageLayersAreSharedAndTheDependencyLayerHoldsOnlyTheDifference) {
  Fixture fixture;
  // A base root with a large file: it must be in the base layer only.
  fs::path base = fixture.dir / "base";
  fs::create_directories(base / "opt/data");
  testing::runCommand("head -c 2000000 /dev/urandom > " +
                      testing::quote((base / "opt/data/big.bin").string()));
  ImageStore store(fixture.dir / "cache");
  NewImageRequest base_request;
  base_request.layers = {base};
  base_request.tag = "site/base:1";
  ImageRecord base_image = store.createImage(base_request);
  auto request = fixture.request();
  request.base = "site/base:1";
  auto first = buildDependencyImageDetailed(request);
  EXPECT_EQ(first.layers, 2u);
  EXPECT_TRUE(fs::exists(first.rootfs / "opt/data/big.bin"));
  EXPECT_TRUE(fs::is_regular_file(first.rootfs / fixture.program.relative_path()));
  auto layers = [&](const std::string& digest) {
    auto manifest = nlohmann::json::parse(store.readSmallBlob(digest));
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& layer : manifest["layers"]) {
      out.emplace_back(layer["digest"].get<std::string>(), layer["size"].get<std::int64_t>());
    }
    return out;
  };
  auto base_layers = layers(base_image.manifest_digest);
  auto image_layers = layers(first.manifest_digest);
  ASSERT_EQ(image_layers.size(), 2u);
  EXPECT_EQ(image_layers[0], base_layers[0]);  // the very same blob
  // The 2 MB of random (incompressible) data are not repeated: the dependency layer is about the
  // size of the same image's only layer when it has no base.
  auto without_base = buildDependencyImageDetailed(fixture.request());
  auto alone = layers(without_base.manifest_digest);
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_LT(image_layers[1].second, alone[0].second + 100000);
  // The base's own root was not modified through the hard links the build used.
  EXPECT_FALSE(fs::exists(store.unpackedRoot(base_image.manifest_digest) /
                          fixture.program.relative_path()));
  auto second = buildDependencyImageDetailed(request);
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.manifest_digest, first.manifest_digest);
}

TEST(DependencyImageTest, IdenticalInputsGiveTheSameDigestInAnotherStore) {
  Fixture fixture;
  auto first = buildDependencyImageDetailed(fixture.request());
  auto request = fixture.request();
  request.cache_dir = fixture.dir / "cache2";
  auto second = buildDependencyImageDetailed(request);
  EXPECT_FALSE(second.reused);
  EXPECT_EQ(second.key, first.key);
  EXPECT_EQ(second.manifest_digest, first.manifest_digest);
}

TEST(DependencyImageTest, SecondRequestReusesTheImage) {
  Fixture fixture;
  auto first = buildDependencyImageDetailed(fixture.request());
  auto marker = first.rootfs / "marker-left-by-test";
  std::ofstream(marker) << "x";
  auto second = buildDependencyImageDetailed(fixture.request());
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.rootfs, first.rootfs);
  EXPECT_EQ(second.manifest_digest, first.manifest_digest);
  EXPECT_TRUE(fs::exists(marker));  // not rebuilt
}

TEST(DependencyImageTest, ReplacedLibraryWithForgedMtimeIsHashedAgain) {
  // The warm path trusts cached hashes only while (dev, inode, size, mtime, ctime) are unchanged:
  // a library rewritten in place with the same size, its mtime set back, still changes the key.
  Fixture fixture;
  auto first = buildDependencyImageDetailed(fixture.request());
  const std::string lib = testing::quote(fixture.library.string());
  // One byte of the .comment section ("GCC: (...") changes; the ELF stays valid, the size equal.
  auto [status, output] = testing::runCommand(
      "cp -p " + lib + " " + lib + ".ref && python3 -c 'import sys; p=sys.argv[1]; "
      "d=bytearray(open(p,\"rb\").read()); i=d.index(b\"GCC: (\"); d[i]=ord(\"H\"); "
      "f=open(p,\"r+b\"); f.write(d)' " + lib + " && touch -r " + lib + ".ref " + lib);
  ASSERT_EQ(status, 0) << output;
  auto second = buildDependencyImageDetailed(fixture.request());
  EXPECT_FALSE(second.reused);
  EXPECT_NE(second.key, first.key);
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
  EXPECT_TRUE(fs::is_empty(fixture.dir / "cache/tmp"));
  for (const auto& entry : fs::directory_iterator(fixture.dir / "cache/roots")) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
  }
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
