// The parts of finding a dependency image that need only the store: parsing a pin and finding a
// pinned image already unpacked. Linked into the lean kbatch, so that the common case of a job
// rewritten at submission (`kbatch exec --image REF@DIGEST --from-binary BIN` with the image on the
// node) needs no kbatch-full: none of libelf, libcrypto, libarchive or libcurl may be reached from
// here (tests/integration/runner/lean_kbatch_test.sh).

#include "digest.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/store.h"

namespace kbatch::image {

PinnedImage parsePinnedImage(const std::string& text, const std::string& field) {
  auto at = text.rfind("@sha256:");
  if (at == std::string::npos || at == 0 || !isValidDigest(text.substr(at + 1))) {
    throw Error("read dependency image", field,
                "'" + text + "' is not REFERENCE@sha256:<64 hex digits>",
                "the submit filter pins the image it built by its manifest digest");
  }
  return {text.substr(0, at), text.substr(at + 1)};
}

std::optional<std::filesystem::path> findUnpackedPinnedImage(const PinnedImage& image,
                                                             const DependencyLookupOptions& options) {
  ImageStore local(options.store_root.empty() ? defaultStoreRoot() : options.store_root);
  // Marked before the lookup, so that a prune or rmi cannot remove the root in between.
  local.useRootUntilExit(image.digest);
  if (auto root = local.findUnpackedRoot(image.digest)) {
    log::info("dependency image {}: found in the local store", image.digest);
    return root;
  }
  if (options.site_cache.empty()) return std::nullopt;
  auto root = ImageStore(options.site_cache).findUnpackedRoot(image.digest);
  if (root) log::info("dependency image {}: found in the site cache", image.digest);
  return root;
}

}  // namespace kbatch::image
