#include "kbatch/image/resolve.h"

#include <system_error>

#include "kbatch/common/error.h"
#include "kbatch/image/reference.h"
#include "kbatch/image/registry.h"
#include "kbatch/image/store.h"

namespace kbatch::image {

std::filesystem::path resolveImageRoot(const std::string& reference, const ResolveOptions& options) {
  ImageReference parsed = parseImageReference(reference);
  if (parsed.transport == Transport::kDirectory) return std::filesystem::canonical(parsed.path);

  ImageStore store(options.store_root.empty() ? defaultStoreRoot() : options.store_root,
                   options.site_image_cache);
  UnpackOptions unpack;
  unpack.max_unpacked_bytes = options.max_unpacked_bytes;
  // The warm path: a name the store (or the site cache) knows needs no network and no parsing of
  // anything but one small tag file.
  // (A digest-pinned docker reference goes through pullImage, which finds everything in the
  // store without network access; its digest may name an index rather than the manifest.)
  bool tagged_name = parsed.transport == Transport::kStoreName ||
                     (parsed.transport == Transport::kDocker && parsed.digest.empty());
  if (tagged_name) {
    if (auto record = store.lookup(parsed.storeName())) {
      if (auto root = store.findUnpackedRoot(record->manifest_digest)) return *root;
      return store.unpackedRoot(record->manifest_digest, unpack);
    }
  }
  if (parsed.transport == Transport::kStoreName) {
    throw Error("find image", reference, "no such directory, and no image of that name in the store",
                "give a root filesystem directory, a docker://, oci: or oci-archive: reference, or a "
                "name from `kbatch images`",
                exit_code::kNotFound);
  }
  if (!options.pull_if_missing && parsed.transport == Transport::kDocker) {
    throw Error("find image", reference, "not in the image store and pulling is disabled",
                "run `kbatch pull " + reference + "` first", exit_code::kNotFound);
  }
  // oci: and oci-archive: sources are re-read each time (their content may change under the same
  // path); their blobs are imported only once, so an unchanged layout costs a few hashes.
  PullOptions pull;
  pull.quiet = options.quiet;
  pull.insecure = options.insecure;
  pull.insecure_registries = options.insecure_registries;
  pull.unpack_options = unpack;
  return pullImage(store, parsed, pull).rootfs;
}

}  // namespace kbatch::image
