// findLocalImageRoot(): the image lookups that need no network, no unpacking and no hashing. Kept
// apart from resolve.cc (which pulls and unpacks) so that linking it reaches none of pull.cc,
// layer_extract.cc or digest.cc (see store_read.cc).

#include <system_error>

#include "kbatch/image/reference.h"
#include "kbatch/image/resolve.h"
#include "kbatch/image/store.h"

namespace kbatch::image {

std::optional<std::filesystem::path> findLocalImageRoot(const std::string& reference,
                                                        const ResolveOptions& options) {
  ImageReference parsed = parseImageReference(reference);
  if (parsed.transport == Transport::kDirectory) return std::filesystem::canonical(parsed.path);
  // A digest-pinned docker reference goes through pullImage even when cached (its digest may name
  // an index rather than the manifest the root is keyed by), and oci:/oci-archive: sources are
  // re-read each time because their content may change under the same path.
  const bool tagged_name = parsed.transport == Transport::kStoreName ||
                           (parsed.transport == Transport::kDocker && parsed.digest.empty());
  if (!tagged_name) return std::nullopt;
  ImageStore store(options.store_root.empty() ? defaultStoreRoot() : options.store_root,
                   options.site_image_cache);
  // Only one small tag file is read: the tag's manifest digest names the root directory.
  auto record = store.lookup(parsed.storeName());
  if (!record) return std::nullopt;
  // Marked before the lookup, so that a prune or rmi cannot remove the root in between.
  if (!record->from_site_cache) store.useRootUntilExit(record->manifest_digest);
  return store.findUnpackedRoot(record->manifest_digest);
}

}  // namespace kbatch::image
