#pragma once
// sha256 content digests ("sha256:<64 lowercase hex>"), the only algorithm the store accepts.

#include <openssl/evp.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kbatch::image {

/// Incremental sha256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// "sha256:<hex>"; the hasher can no longer be updated afterwards.
  std::string finishDigest();
  void reset();

 private:
  struct Deleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, Deleter> context_;
};

/// "sha256:<hex>" of `data`.
std::string sha256Digest(std::string_view data);

/// "sha256:<hex>" of a file's content.
std::string sha256DigestOfFile(const std::filesystem::path& path);

/// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool isValidDigest(std::string_view digest);

/// Throws kbatch::Error naming `field` unless `digest` is valid; returns the hex part.
std::string digestHex(std::string_view digest, std::string_view field = "digest");

}  // namespace kbatch::image
