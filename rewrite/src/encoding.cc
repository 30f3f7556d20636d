#include "kbatch/rewrite/encoding.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include <cstdint>

#include "kbatch/common/error.h"

namespace kbatch::rewrite {
namespace {

static_assert(OPENSSL_VERSION_MAJOR == 3, "libcrypto's soname below is OpenSSL 3's");
constexpr const char* kLibcrypto = "libcrypto.so.3";

/// OpenSSL's EVP, loaded the first time a body is hashed. Only jobs that are rewritten need it,
/// and linking libcrypto cost every submission, native jobs included, 2.5 ms of start-up in the
/// dynamic loader (bench/submit_filter.sh). Where libcrypto is linked anyway (kbatch-full),
/// dlopen returns the copy already loaded.
struct Evp {
  decltype(&EVP_Digest) digest = nullptr;
  decltype(&EVP_sha256) sha256 = nullptr;
};

const Evp& evp() {
  static const Evp loaded = [] {
    void* library = dlopen(kLibcrypto, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      throw Error("hash job body", kLibcrypto, std::string("cannot load: ") + dlerror(),
                  "install OpenSSL's libcrypto (Debian: libssl3)");
    }
    Evp functions;
    functions.digest = reinterpret_cast<decltype(&EVP_Digest)>(dlsym(library, "EVP_Digest"));
    functions.sha256 = reinterpret_cast<decltype(&EVP_sha256)>(dlsym(library, "EVP_sha256"));
    if (functions.digest == nullptr || functions.sha256 == nullptr) {
      throw Error("hash job body", kLibcrypto, "EVP_Digest or EVP_sha256 is missing",
                  "check the OpenSSL installation (libcrypto)");
    }
    return functions;
  }();
  return loaded;
}

}  // namespace

std::string sha256Hex(std::string_view bytes) {
  // OpenSSL's one-shot EVP_Digest: the digest names the job body in the rewrite marker.
  const Evp& openssl = evp();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (openssl.digest(bytes.data(), bytes.size(), digest, &length, openssl.sha256(), nullptr) != 1 ||
      length != 32) {
    throw Error("hash job body", "sha256", "OpenSSL's EVP_Digest failed",
                "check the OpenSSL installation (libcrypto)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

std::string quoteShellWord(std::string_view word) {
  auto safe = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == ':' || c == '=' ||
           c == ',' || c == '@' || c == '%';
  };
  bool all_safe = !word.empty();
  for (char c : word) all_safe = all_safe && safe(c);
  // A leading '=' or '-' is harmless to the shell; only the word's characters matter here.
  if (all_safe) return std::string(word);
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') quoted += "'\\''";
    else quoted += c;
  }
  quoted += '\'';
  return quoted;
}

}  // namespace kbatch::rewrite
