// The compute node's search for a dependency image pinned at submission: local store, site
// cache, registry, and only then a build; and the apt Contents lookup for libraries this host
// lacks (a sample in the Contents-<arch> format, plain and gzip-compressed).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "deps_fixtures.h"
#include "kbatch/common/error.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/store.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Sources that answer from a table and record the order in which they were asked.
class FakeSources : public DependencyImageSources {
 public:
  std::optional<fs::path> local, site, registry;
  bool registry_fails = false;
  std::vector<std::string> asked;
  std::optional<fs::path> findInLocalStore(const PinnedImage& image) override {
    asked.push_back("local " + image.digest);
    return local;
  }
  std::optional<fs::path> findInSiteCache(const PinnedImage&) override {
    asked.push_back("site");
    return site;
  }
  std::optional<fs::path> pullFromRegistry(const PinnedImage& image) override {
    asked.push_back("registry " + image.reference);
    if (registry_fails) throw Error("pull", image.reference, "connection refused");
    return registry;
  }
  fs::path build(const DependencyImageRequest& request) override {
    asked.push_back("build " + request.binary->string());
    return "/built";
  }
};

DependencyImageRequest fallback() {
  DependencyImageRequest request;
  request.binary = "/home/u/a.out";
  return request;
}

PinnedImage pinned() { return parsePinnedImage(std::string("docker://reg:5000/kbatch-deps:k@") + kDigest, "--image"); }

TEST(DependencyLookupTest, LocalStoreFirstAndNothingElseAsked) {
  FakeSources sources;
  sources.local = "/store/root";
  sources.site = "/site/root";
  auto found = locateDependencyImage(pinned(), fallback(), sources);
  EXPECT_EQ(found.rootfs, "/store/root");
  EXPECT_EQ(found.origin, DependencyImageOrigin::kLocalStore);
  EXPECT_EQ(sources.asked, std::vector<std::string>{std::string("local ") + kDigest});
}

TEST(DependencyLookupTest, SiteCacheBeforeRegistry) {
  FakeSources sources;
  sources.site = "/site/root";
  sources.registry = "/pulled";
  auto found = locateDependencyImage(pinned(), fallback(), sources);
  EXPECT_EQ(found.rootfs, "/site/root");
  EXPECT_EQ(found.origin, DependencyImageOrigin::kSiteCache);
  EXPECT_EQ(sources.asked.size(), 2u);
}

TEST(DependencyLookupTest, RegistryBeforeBuild) {
  FakeSources sources;
  sources.registry = "/pulled";
  auto found = locateDependencyImage(pinned(), fallback(), sources);
  EXPECT_EQ(found.origin, DependencyImageOrigin::kRegistry);
  EXPECT_EQ(sources.asked, (std::vector<std::string>{std::string("local ") + kDigest, "site",
                                                     "registry docker://reg:5000/kbatch-deps:k"}));
}

TEST(DependencyLookupTest, BuildsOnlyAsTheLastResortAndAfterAFailingRegistry) {
  FakeSources sources;
  sources.registry_fails = true;
  auto found = locateDependencyImage(pinned(), fallback(), sources);
  EXPECT_EQ(found.origin, DependencyImageOrigin::kBuilt);
  EXPECT_EQ(found.rootfs, "/built");
  ASSERT_EQ(sources.asked.size(), 4u);
  EXPECT_EQ(sources.asked.back(), "build /home/u/a.out");
}

TEST(DependencyLookupTest, NoPinnedImageMeansBuild) {
  FakeSources sources;
  sources.local = "/store/root";
  auto found = locateDependencyImage(std::nullopt, fallback(), sources);
  EXPECT_EQ(found.origin, DependencyImageOrigin::kBuilt);
  EXPECT_EQ(sources.asked, std::vector<std::string>{"build /home/u/a.out"});
}

TEST(DependencyLookupTest, PinnedImageNeedsADigest) {
  EXPECT_THROW(parsePinnedImage("docker://reg/kbatch-deps:latest", "--image"), Error);
  EXPECT_THROW(parsePinnedImage("docker://reg/x@sha256:abc", "--image"), Error);
  EXPECT_THROW(parsePinnedImage(std::string("@") + kDigest, "--image"), Error);
  auto image = parsePinnedImage(std::string("kbatch-deps:abc@") + kDigest, "--image");
  EXPECT_EQ(image.reference, "kbatch-deps:abc");
  EXPECT_EQ(image.digest, kDigest);
}

TEST(DependencyLookupTest, RealSourcesFindTheStoreThenTheSiteCacheByDigest) {
  testing::ScratchDir dir;
  fs::create_directories(dir / "layer/bin");
  std::ofstream(dir / "layer/bin/tool") << "x";
  // The image exists only in the "site cache" (a store with the same layout).
  ImageStore site(dir / "site");
  NewImageRequest request;
  request.layers = {dir / "layer"};
  std::string digest = site.createImage(request).manifest_digest;
  DependencyLookupOptions options;
  options.store_root = dir / "local";
  options.site_cache = dir / "site";
  auto sources = makeStoreDependencyImageSources(options);
  PinnedImage image{"kbatch-deps:x", digest};
  EXPECT_FALSE(sources->findInLocalStore(image).has_value());
  auto from_site = sources->findInSiteCache(image);
  ASSERT_TRUE(from_site.has_value());
  EXPECT_TRUE(fs::exists(*from_site / "bin/tool"));
  // A store name is not a registry: nothing to pull.
  EXPECT_FALSE(sources->pullFromRegistry(image).has_value());
  // Unpacked from the site's blobs into the local store, the next lookup finds it locally.
  auto local = sources->findInLocalStore(image);
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->parent_path().parent_path(), dir / "local/roots");
}

fs::path sample(const char* name) {
  return fs::path(KBATCH_SOURCE_DIR) / "tests/unit/deps/data" / name;
}

TEST(ContentsIndexTest, FindsThePackageShippingEachLibrary) {
  for (const char* name : {"Contents-amd64.sample", "Contents-amd64.sample.gz"}) {
    auto owners = lookupContentsIndexes(
        {sample(name)}, {"libgfortran.so.5", "libzstd.so.1", "libblas.so.3", "libpam.so.0",
                         "libfftw3.so.3", "libfake.so.9", "libnotthere.so.1"});
    EXPECT_EQ(owners["libgfortran.so.5"], "libgfortran5") << name;
    EXPECT_EQ(owners["libzstd.so.1"], "libzstd1");
    EXPECT_EQ(owners["libblas.so.3"], "libblas3");       // the default directory, not blas/
    EXPECT_EQ(owners["libpam.so.0"], "libpam0g");        // /lib, not only /usr/lib
    EXPECT_EQ(owners["libfftw3.so.3"], "libfftw3-double3");  // area/section/package
    EXPECT_FALSE(owners.count("libfake.so.9"));          // not in a library directory
    EXPECT_FALSE(owners.count("libnotthere.so.1"));
  }
}

TEST(ContentsIndexTest, MalformedLineIsNamedWithItsNumber) {
  testing::ScratchDir dir;
  std::ofstream(dir / "Contents-amd64") << "usr/lib/x86_64-linux-gnu/libz.so.1   libs/zlib1g\n"
                                        << "garbage-without-a-package\n";
  try {
    lookupContentsIndexes({dir / "Contents-amd64"}, {"libz.so.1"});
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("Contents-amd64:2"), std::string::npos) << error.oneLine();
  }
}

}  // namespace
}  // namespace kbatch::image
