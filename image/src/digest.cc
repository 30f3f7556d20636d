#include "digest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "fs_util.h"
#include "kbatch/common/error.h"

namespace kbatch::image {

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  if (!context_) throw Error("start sha256", "", "out of memory");
  reset();
}

void Sha256::reset() {
  if (EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("start sha256", "", "OpenSSL refused EVP_sha256");
  }
}

void Sha256::update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(context_.get(), data, size);
}

std::string Sha256::finishDigest() {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context_.get(), hash, &length);
  static const char kHex[] = "0123456789abcdef";
  std::string digest = "sha256:";
  for (unsigned i = 0; i < length; ++i) {
    digest += kHex[hash[i] >> 4];
    digest += kHex[hash[i] & 0xf];
  }
  return digest;
}

std::string sha256Digest(std::string_view data) {
  Sha256 hasher;
  hasher.update(data);
  return hasher.finishDigest();
}

std::string sha256DigestOfFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error("hash", path.string(), describeErrno(errno));
  Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error("hash", path.string(), describeErrno(errno));
    if (got == 0) break;
    hasher.update(buffer.data(), static_cast<size_t>(got));
  }
  return hasher.finishDigest();
}

}  // namespace kbatch::image
