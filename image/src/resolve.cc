#include "kbatch/image/resolve.h"

#include <system_error>

#include "kbatch/common/error.h"
#include "kbatch/image/reference.h"
#include "kbatch/image/registry.h"
#include "kbatch/image/store.h"

namespace kbatch::image {

std::filesystem::path resolveImageRoot(const std::string& reference, const ResolveOptions& options) {
  // The warm path (a directory, or a tagged image already unpacked) reads one small tag file.
  if (auto root = findLocalImageRoot(reference, options)) return *root;

  ImageReference parsed = parseImageReference(reference);
  ImageStore store(options.store_root.empty() ? defaultStoreRoot() : options.store_root,
                   options.site_image_cache);
  UnpackOptions unpack;
  unpack.max_unpacked_bytes = options.max_unpacked_bytes;
  bool tagged_name = parsed.transport == Transport::kStoreName ||
                     (parsed.transport == Transport::kDocker && parsed.digest.empty());
  if (tagged_name) {
    // Tagged but not unpacked yet (e.g. `kbatch pull --no-unpack`): unpack from the stored blobs.
    if (auto record = store.lookup(parsed.storeName())) {
      if (!record->from_site_cache) store.useRootUntilExit(record->manifest_digest);
      return store.unpackedRoot(record->manifest_digest, unpack);
    }
  }
  if (parsed.transport == Transport::kStoreName) {
    // "registry.site:5000/team/app:1" as a Kubernetes Pod or `docker run` would take it.
    if (namesRegistryHost(reference)) return resolveImageRoot("docker://" + reference, options);
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
  // (A digest-pinned docker reference goes through pullImage, which finds everything in the
  // store without network access; its digest may name an index rather than the manifest.)
  PullOptions pull;
  pull.quiet = options.quiet;
  // A registry the admin lists as insecure may speak plain HTTP, and so may loopback test
  // registries: when they do not answer TLS.
  pull.insecure = options.insecure || (parsed.transport == Transport::kDocker &&
                                       choosePlainHttp(parsed.registry, options.insecure_registries));
  pull.insecure_registries = options.insecure_registries;
  pull.unpack_options = unpack;
  PullResult pulled = pullImage(store, parsed, pull);
  // Tagged by the pull, so prune keeps it; this guards it against an rmi while the job runs.
  store.useRootUntilExit(pulled.record.manifest_digest);
  return pulled.rootfs;
}

}  // namespace kbatch::image
