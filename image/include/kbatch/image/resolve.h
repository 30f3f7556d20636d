#pragma once
/// Turning what a user wrote as IMAGE into a root filesystem directory the runner can use.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kbatch::image {

struct ResolveOptions {
  bool pull_if_missing = true;  ///< `kbatch exec REF` pulls on demand
  bool quiet = false;           ///< no progress display
  /// `--insecure`: plain HTTP for loopback registries and those in `insecure_registries`.
  bool insecure = false;
  /// The site's insecure registries (policy `site.insecure_registries`).
  std::vector<std::string> insecure_registries;
  /// The site's read-only image cache (policy `site.image_cache`), consulted first; may be empty.
  std::filesystem::path site_image_cache;
  /// The store; empty: $KBATCH_CACHE, $XDG_CACHE_HOME/kbatch or ~/.cache/kbatch.
  std::filesystem::path store_root;
  /// Unpack limit in bytes; 0: $KBATCH_MAX_UNPACKED_BYTES or the default (32 GiB).
  std::uint64_t max_unpacked_bytes = 0;
};

/// The warm path of resolveImageRoot(), which never fetches, unpacks or writes anything: a root
/// filesystem directory, or a tagged image (store name, `docker://` without a digest) whose tag
/// and unpacked root are already in the site cache or the store. nullopt when the image would have
/// to be pulled, imported (`oci:`, `oci-archive:`) or unpacked first; throws kbatch::Error for a
/// malformed reference or tag. Needs no OpenSSL, libarchive or libcurl (the lean `kbatch` links
/// only this; see cli/CMakeLists.txt).
std::optional<std::filesystem::path> findLocalImageRoot(const std::string& reference,
                                                        const ResolveOptions& options);

/// Accepts a root filesystem directory, `docker://...`, `oci:DIR[:TAG]`, `oci-archive:FILE`, or a
/// name the store knows. Returns the unpacked root (read-only, shared by all jobs of that image).
/// A tagged image already in the store is used without contacting the registry.
/// Throws kbatch::Error with exit code 127 when the image does not exist.
std::filesystem::path resolveImageRoot(const std::string& reference, const ResolveOptions& options);

}  // namespace kbatch::image
