// The store: images created from directories and tarballs, lookups, verified blobs, unpack once
// under concurrency, rmi and prune.

#include "kbatch/image/store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "digest.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/image/registry.h"
#include "kbatch/image/resolve.h"
#include "manifest.h"
#include "test_tar.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::makeTempDir("kbatch-store");
    fs::create_directories(base_ / "layer1/etc");
    std::ofstream(base_ / "layer1/etc/os-release") << "NAME=test\n";
    std::ofstream(base_ / "layer1/data") << "lower";
    fs::create_directory_symlink("etc", base_ / "layer1/config");
    fs::create_directories(base_ / "layer2");
    std::ofstream(base_ / "layer2/data") << "upper";
    std::ofstream(base_ / "layer2/.wh.config") << "";
  }
  void TearDown() override { removeTree(base_); }

  static std::string readFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

  ImageRecord createSample(ImageStore& store, const std::string& tag = "sample:1") {
    NewImageRequest request;
    request.layers = {base_ / "layer1", base_ / "layer2"};
    request.config.env = {"PATH=/usr/bin:/bin", "LANG=C"};
    request.config.working_dir = "/work";
    request.tag = tag;
    request.source = "unit test";
    return store.createImage(request);
  }

  fs::path base_;
};

TEST_F(StoreTest, CreatesTagsAndUnpacksAnImage) {
  ImageStore store(base_ / "store");
  ImageRecord record = createSample(store);
  EXPECT_TRUE(isValidDigest(record.manifest_digest));
  auto found = store.lookup("sample:1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->manifest_digest, record.manifest_digest);
  EXPECT_EQ(store.lookup(record.manifest_digest.substr(0, 19))->name, "sample:1");
  EXPECT_FALSE(store.lookup("missing:1").has_value());

  ImageManifest manifest = parseImageManifest(store.readSmallBlob(record.manifest_digest), "m");
  ASSERT_EQ(manifest.layers.size(), 2u);
  EXPECT_EQ(manifest.layers[0].media_type, media_type::kOciLayerGzip);
  auto diff_ids = parseConfigDiffIds(store.readSmallBlob(manifest.config.digest), "c");
  EXPECT_EQ(diff_ids.size(), 2u);

  fs::path root = store.unpackedRoot(record.manifest_digest);
  EXPECT_EQ(root, store.root() / "roots" / digestHex(record.manifest_digest) / "rootfs");
  EXPECT_EQ(readFile(root / "etc/os-release"), "NAME=test\n");
  EXPECT_EQ(readFile(root / "data"), "upper");
  EXPECT_FALSE(fs::exists(fs::symlink_status(root / "config"))) << "the whiteout removes the symlink";
  EXPECT_EQ(store.unpackedRoot(record.manifest_digest), root);

  ImageConfigSettings settings = store.imageConfig(record.manifest_digest);
  EXPECT_EQ(settings.working_dir, "/work");
  ASSERT_EQ(settings.env.size(), 2u);
  EXPECT_EQ(settings.env[1], "LANG=C");
}

TEST_F(StoreTest, SameInputsGiveTheSameImageDigest) {
  ImageStore store(base_ / "store");
  EXPECT_EQ(createSample(store, "a:1").manifest_digest, createSample(store, "b:1").manifest_digest);
}

TEST_F(StoreTest, TarballLayersAreStoredAsGiven) {
  ImageStore store(base_ / "store");
  std::string tar = testing::TarBuilder(testing::TarBuilder::Compression::kGzip).file("hello", "hi").finish();
  std::ofstream(base_ / "layer.tar.gz", std::ios::binary) << tar;
  NewImageRequest request;
  request.layers = {base_ / "layer.tar.gz"};
  request.tag = "tarball:1";
  ImageRecord record = store.createImage(request);
  ImageManifest manifest = parseImageManifest(store.readSmallBlob(record.manifest_digest), "m");
  EXPECT_EQ(manifest.layers[0].digest, sha256Digest(tar));
  EXPECT_EQ(readFile(store.unpackedRoot(record.manifest_digest) / "hello"), "hi");
  request.layers = {base_ / "no-such-layer"};
  EXPECT_THROW(store.createImage(request), Error);
}

TEST_F(StoreTest, VerifiesBlobsOnArrivalAndOnRead) {
  ImageStore store(base_ / "store");
  EXPECT_THROW(store.putBlob("content", sha256Digest("other")), Error);
  EXPECT_FALSE(store.hasBlob(sha256Digest("content")));
  std::ofstream(base_ / "blob") << "payload";
  EXPECT_THROW(store.importBlobFile(base_ / "blob", sha256Digest("tampered")), Error);
  EXPECT_FALSE(store.hasBlob(sha256Digest("tampered")));
  EXPECT_THROW(store.importBlobFile(base_ / "blob", sha256Digest("payload"), 3), Error);
  std::string digest = store.putBlob("{\"small\": true}");
  fs::path path = store.blobPath(digest);
  fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(path) << "{\"small\": false}";
  EXPECT_THROW(store.readSmallBlob(digest), Error);
}

TEST_F(StoreTest, ConcurrentUnpacksProduceOneRoot) {
  ImageStore store(base_ / "store");
  ImageRecord record = createSample(store);
  constexpr int kProcesses = 4;
  pid_t children[kProcesses];
  for (pid_t& child : children) {
    child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        ImageStore own(base_ / "store");
        fs::path root = own.unpackedRoot(record.manifest_digest);
        ::_exit(fs::exists(root / "data") ? 0 : 2);
      } catch (...) {
        ::_exit(3);
      }
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  size_t roots = 0;
  for (const auto& entry : fs::directory_iterator(store.root() / "roots")) {
    EXPECT_EQ(entry.path().filename().string().rfind(".tmp-", 0), std::string::npos)
        << "leftover temporary unpack " << entry.path();
    ++roots;
  }
  EXPECT_EQ(roots, 1u);
}

TEST_F(StoreTest, AHalfUnpackedRootIsNeverUsedAndIsCleanedUp) {
  ImageStore store(base_ / "store");
  ImageRecord record = createSample(store);
  // What a process killed mid-unpack leaves behind.
  fs::path stale = store.root() / "roots" / (".tmp-" + digestHex(record.manifest_digest) + "-abcdef");
  fs::create_directories(stale / "rootfs");
  EXPECT_FALSE(store.findUnpackedRoot(record.manifest_digest).has_value());
  fs::path root = store.unpackedRoot(record.manifest_digest);
  EXPECT_TRUE(fs::exists(root / "data"));
  EXPECT_FALSE(fs::exists(stale));
}

TEST_F(StoreTest, UnpackFailureLeavesNoRoot) {
  ImageStore store(base_ / "store");
  ImageRecord record = createSample(store);
  UnpackOptions tiny;
  tiny.max_unpacked_bytes = 600;  // fewer than two entries' worth
  EXPECT_THROW(store.unpackedRoot(record.manifest_digest, tiny), Error);
  EXPECT_FALSE(store.findUnpackedRoot(record.manifest_digest).has_value());
  EXPECT_TRUE(fs::is_empty(store.root() / "roots"));
}

TEST_F(StoreTest, RmiAndPruneFreeWhatNoTagReaches) {
  ImageStore store(base_ / "store");
  ImageRecord record = createSample(store, "one:1");
  createSample(store, "two:1");
  store.unpackedRoot(record.manifest_digest);
  store.putBlob("orphan");
  PruneReport first = store.prune();
  EXPECT_EQ(first.blobs_removed, 1u);
  EXPECT_TRUE(store.findUnpackedRoot(record.manifest_digest).has_value());

  EXPECT_TRUE(store.removeTag("one:1"));
  EXPECT_TRUE(store.findUnpackedRoot(record.manifest_digest).has_value()) << "two:1 still needs it";
  EXPECT_TRUE(store.removeTag("two:1"));
  EXPECT_FALSE(store.removeTag("two:1"));
  EXPECT_FALSE(store.findUnpackedRoot(record.manifest_digest).has_value());
  PruneReport second = store.prune();
  EXPECT_EQ(second.blobs_removed, 4u);  // manifest, config, two layers
  EXPECT_TRUE(fs::is_empty(store.root() / "blobs" / "sha256"));
  EXPECT_TRUE(store.listImages().empty());
}

TEST_F(StoreTest, ARootARunningJobUsesSurvivesRmiAndPrune) {
  ImageStore store(base_ / "store");
  ImageRecord record = createSample(store, "busy:1");
  const fs::path root = store.unpackedRoot(record.manifest_digest);
  // The job: another process that uses the root until told to exit.
  int go[2];
  int ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  const pid_t job = fork();
  ASSERT_GE(job, 0);
  if (job == 0) {
    ImageStore(base_ / "store").useRootUntilExit(record.manifest_digest);
    char byte = 'r';
    if (write(ready[1], &byte, 1) != 1) _exit(2);
    if (read(go[0], &byte, 1) < 0) _exit(3);
    _exit(0);
  }
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);

  EXPECT_TRUE(store.removeTag("busy:1"));
  EXPECT_TRUE(fs::is_directory(root)) << "rmi removed the root of a running job";
  PruneReport during = store.prune();
  EXPECT_EQ(during.roots_in_use, 1u);
  EXPECT_EQ(during.roots_removed, 0u);
  EXPECT_TRUE(fs::is_directory(root)) << "prune removed the root of a running job";

  ASSERT_EQ(write(go[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(job, &status, 0), job);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  PruneReport after = store.prune();
  EXPECT_EQ(after.roots_in_use, 0u);
  EXPECT_EQ(after.roots_removed, 1u);
  EXPECT_FALSE(fs::exists(root));
  for (int fd : {go[0], go[1], ready[0], ready[1]}) close(fd);
}

TEST_F(StoreTest, SiteCacheIsConsultedFirstAndIsReadOnly) {
  ImageStore site(base_ / "site");
  ImageRecord record = createSample(site, "shared:1");
  fs::path site_root = site.unpackedRoot(record.manifest_digest);
  ImageStore user(base_ / "user", base_ / "site");
  auto found = user.lookup("shared:1");
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->from_site_cache);
  EXPECT_EQ(user.unpackedRoot(found->manifest_digest), site_root);
  EXPECT_TRUE(fs::is_empty(base_ / "user" / "roots"));
  EXPECT_THROW(user.removeTag("shared:1"), Error);
}

TEST_F(StoreTest, ImportsAnOciLayoutWrittenByHand) {
  // A minimal OCI layout, as skopeo writes it: oci-layout, index.json with a ref name, blobs.
  ImageStore scratch(base_ / "scratch");
  ImageRecord record = createSample(scratch);
  fs::path layout = base_ / "layout";
  fs::create_directories(layout / "blobs" / "sha256");
  std::ofstream(layout / "oci-layout") << R"({"imageLayoutVersion": "1.0.0"})";
  ImageManifest manifest = parseImageManifest(scratch.readSmallBlob(record.manifest_digest), "m");
  std::vector<std::string> digests{record.manifest_digest, manifest.config.digest};
  for (const auto& layer : manifest.layers) digests.push_back(layer.digest);
  for (const auto& digest : digests) {
    fs::copy_file(*scratch.findBlob(digest), layout / "blobs" / "sha256" / digestHex(digest));
  }
  std::string document = scratch.readSmallBlob(record.manifest_digest);
  std::ofstream(layout / "index.json")
      << R"({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")"
      << record.manifest_digest << R"(", "size": )" << document.size()
      << R"(, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]})";

  ImageStore store(base_ / "store");
  PullOptions options;
  options.quiet = true;
  PullResult result = pullImage(store, parseImageReference("oci:" + layout.string() + ":v1"), options);
  EXPECT_EQ(result.record.manifest_digest, record.manifest_digest);
  EXPECT_EQ(readFile(result.rootfs / "data"), "upper");
  EXPECT_THROW(pullImage(store, parseImageReference("oci:" + layout.string() + ":nope"), options), Error);
  // A tampered layer in the layout is refused.
  fs::path layer_file = layout / "blobs" / "sha256" / digestHex(manifest.layers[1].digest);
  fs::permissions(layer_file, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(layer_file, std::ios::app) << "x";
  ImageStore fresh(base_ / "fresh");
  EXPECT_THROW(pullImage(fresh, parseImageReference("oci:" + layout.string() + ":v1"), options), Error);
}

// The warm lookup the lean kbatch relies on: it finds only what needs no pull, import or unpack,
// and agrees with resolveImageRoot() on what it finds.
TEST_F(StoreTest, FindLocalImageRootFindsOnlyWhatIsReady) {
  ResolveOptions options;
  options.store_root = base_ / "store";
  ImageStore store(options.store_root);
  ImageRecord record = createSample(store, "warm:1");
  // Tagged but not unpacked: the caller must unpack (kbatch-full does).
  EXPECT_FALSE(findLocalImageRoot("warm:1", options).has_value());
  EXPECT_FALSE(fs::exists(options.store_root / "roots" / digestHex(record.manifest_digest)));
  fs::path root = resolveImageRoot("warm:1", options);
  auto found = findLocalImageRoot("warm:1", options);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, root);
  EXPECT_EQ(readFile(*found / "data"), "upper");
  // A directory is itself; unknown names, pinned digests and OCI sources are not ready.
  EXPECT_EQ(findLocalImageRoot((base_ / "layer1").string(), options), fs::canonical(base_ / "layer1"));
  EXPECT_FALSE(findLocalImageRoot("no-such:1", options).has_value());
  EXPECT_FALSE(findLocalImageRoot("docker://127.0.0.1:1/warm@" + record.manifest_digest, options)
                   .has_value());
  EXPECT_FALSE(findLocalImageRoot("oci:" + (base_ / "no-layout").string() + ":v1", options)
                   .has_value());
  // The site cache is consulted as resolveImageRoot does.
  ImageStore site(base_ / "site");
  ImageRecord shared = createSample(site, "shared:1");
  fs::path site_root = site.unpackedRoot(shared.manifest_digest);
  ResolveOptions with_site = options;
  with_site.site_image_cache = base_ / "site";
  EXPECT_EQ(findLocalImageRoot("shared:1", with_site), site_root);
  EXPECT_FALSE(findLocalImageRoot("shared:1", options).has_value());
}

}  // namespace
}  // namespace kbatch::image
