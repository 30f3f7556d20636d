#include "manifest.h"

#include <gtest/gtest.h>

#include "kbatch/common/error.h"

namespace kbatch::image {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');

std::string expectErrorText(const std::string& document) {
  try {
    parseImageManifest(document, "test.json");
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(ManifestTest, ParsesOciManifest) {
  std::string document = R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ")" + kDigestA + R"(", "size": 7},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ")" + kDigestB + R"(", "size": 100},
               {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": ")" + kDigestC + R"(", "size": 200}]})";
  ImageManifest manifest = parseImageManifest(document, "m");
  EXPECT_EQ(manifest.config.digest, kDigestA);
  ASSERT_EQ(manifest.layers.size(), 2u);
  EXPECT_EQ(manifest.layers[1].size, 200);
}

TEST(ManifestTest, ParsesDockerSchema2Manifest) {
  std::string document = R"({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": ")" + kDigestA + R"(", "size": 7},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ")" + kDigestB + R"(", "size": 1}]})";
  EXPECT_EQ(parseImageManifest(document, "m").media_type, media_type::kDockerManifest);
}

TEST(ManifestTest, NamesTheBadField) {
  EXPECT_NE(expectErrorText("not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(expectErrorText(R"({"schemaVersion": 1})").find("schemaVersion"), std::string::npos);
  std::string bad_digest = R"({"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:nothex", "size": 1}, "layers": []})";
  EXPECT_NE(expectErrorText(bad_digest).find("config.digest"), std::string::npos);
  std::string bad_layer = R"({"schemaVersion": 2, "config": {"mediaType": "x", "digest": ")" + kDigestA +
                          R"(", "size": 1}, "layers": [{"mediaType": "application/x-rar", "digest": ")" + kDigestB +
                          R"(", "size": 1}]})";
  EXPECT_NE(expectErrorText(bad_layer).find("layers[0].mediaType"), std::string::npos);
  std::string negative = R"({"schemaVersion": 2, "config": {"mediaType": "x", "digest": ")" + kDigestA +
                         R"(", "size": -1}, "layers": []})";
  EXPECT_NE(expectErrorText(negative).find("config.size"), std::string::npos);
}

TEST(ManifestTest, DetectsMediaTypeFromHeaderOrDocument) {
  EXPECT_EQ(detectManifestMediaType("{}", "application/vnd.oci.image.index.v1+json; charset=utf-8", "m"),
            media_type::kOciIndex);
  EXPECT_EQ(detectManifestMediaType(R"({"manifests": []})", "application/json", "m"), media_type::kOciIndex);
  EXPECT_EQ(detectManifestMediaType(R"({"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"})",
                                    "", "m"),
            media_type::kDockerManifestList);
}

ImageIndex sampleIndex() {
  std::string document = R"({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kDigestA + R"(", "size": 1,
     "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kDigestB + R"(", "size": 1,
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kDigestC + R"(", "size": 1,
     "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}]})";
  return parseImageIndex(document, "index");
}

TEST(ManifestTest, ChoosesThePlatformFromAnIndex) {
  ImageIndex index = sampleIndex();
  EXPECT_EQ(choosePlatformManifest(index, {"linux", "amd64", ""}, "i").digest, kDigestA);
  EXPECT_EQ(choosePlatformManifest(index, {"linux", "arm64", "v8"}, "i").digest, kDigestB);
  EXPECT_EQ(choosePlatformManifest(index, {"linux", "arm", "v7"}, "i").digest, kDigestC);
  try {
    choosePlatformManifest(index, {"linux", "s390x", ""}, "i");
    FAIL() << "no s390x manifest exists";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("linux/arm64/v8"), std::string::npos) << error.what();
  }
}

TEST(ManifestTest, CurrentPlatformUsesGoArchitectureNames) {
  Platform platform = currentPlatform();
  EXPECT_EQ(platform.os, "linux");
  EXPECT_NE(platform.architecture, "x86_64");
  EXPECT_NE(platform.architecture, "aarch64");
}

TEST(ManifestTest, ReadsConfigDiffIds) {
  auto ids = parseConfigDiffIds(R"({"rootfs": {"type": "layers", "diff_ids": [")" + kDigestA + R"("]}})", "c");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], kDigestA);
  EXPECT_THROW(parseConfigDiffIds(R"({"rootfs": {"diff_ids": [3]}})", "c"), Error);
}

}  // namespace
}  // namespace kbatch::image
