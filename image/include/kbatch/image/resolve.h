#pragma once
/// Turning what a user wrote as IMAGE into a root filesystem directory the runner can use.

#include <filesystem>
#include <string>

namespace kbatch::image {

struct ResolveOptions {
  bool pull_if_missing = true;  ///< `kbatch exec REF` pulls on demand
  bool quiet = false;           ///< no progress display
};

/// Accepts a root filesystem directory, `docker://...`, `oci:DIR[:TAG]`, `oci-archive:FILE`, or a
/// name the store knows. Returns the unpacked root (read-only, shared by all jobs of that image).
/// Throws kbatch::Error with exit code 127 when the image does not exist.
std::filesystem::path resolveImageRoot(const std::string& reference, const ResolveOptions& options);

}  // namespace kbatch::image
