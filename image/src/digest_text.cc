// Checking digest strings, apart from digest.cc's hashing: the read side of the store
// (store_read.cc) and reference parsing need only these, and must not pull OpenSSL into the lean
// `kbatch` (see cli/CMakeLists.txt).

#include <string>
#include <string_view>

#include "digest.h"
#include "kbatch/common/error.h"

namespace kbatch::image {

bool isValidDigest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || digest.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  for (char c : digest.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string digestHex(std::string_view digest, std::string_view field) {
  if (!isValidDigest(digest)) {
    throw Error("check digest", std::string(digest),
                std::string(field) + ": expected sha256: followed by 64 lowercase hex digits");
  }
  return std::string(digest.substr(7));
}

}  // namespace kbatch::image
