#include "kbatch/rewrite/encoding.h"

#include <openssl/evp.h>

#include <cstdint>

#include "kbatch/common/error.h"

namespace kbatch::rewrite {

std::string sha256Hex(std::string_view bytes) {
  // OpenSSL's one-shot EVP_Digest: the digest names the job body in the rewrite marker.
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1 ||
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
