#include "digest.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kbatch/common/error.h"
#include "test_tar.h"

namespace kbatch::image {
namespace {

TEST(DigestTest, MatchesKnownSha256Vectors) {
  EXPECT_EQ(sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 incremental;
  incremental.update("a");
  incremental.update("bc");
  EXPECT_EQ(incremental.finishDigest(), sha256Digest("abc"));
}

TEST(DigestTest, HashesFiles) {
  auto dir = testing::makeTempDir("kbatch-digest");
  std::ofstream(dir / "f") << "abc";
  EXPECT_EQ(sha256DigestOfFile(dir / "f"), sha256Digest("abc"));
  std::filesystem::remove_all(dir);
}

TEST(DigestTest, ValidatesDigestSyntax) {
  std::string good = "sha256:" + std::string(64, '0');
  EXPECT_TRUE(isValidDigest(good));
  EXPECT_EQ(digestHex(good), std::string(64, '0'));
  EXPECT_FALSE(isValidDigest("sha256:" + std::string(63, '0')));
  EXPECT_FALSE(isValidDigest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(isValidDigest("sha512:" + std::string(64, '0')));
  EXPECT_FALSE(isValidDigest("sha256:../../../../etc/passwd" + std::string(36, '0')));
  EXPECT_THROW(digestHex("sha256:xyz", "layers[0].digest"), Error);
}

}  // namespace
}  // namespace kbatch::image
