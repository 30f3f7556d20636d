#pragma once
// Safe extraction of one OCI layer (a tar stream, optionally gzip or zstd compressed) on top of a
// root filesystem directory.
//
// Every path is walked one component at a time from the root's file descriptor with O_NOFOLLOW
// (the approach of umoci's and containers/storage's in-root resolution, done without a chroot):
// a symlink met on the way is resolved by the walker itself, relative to the image root, and an
// entry whose path would climb out of the root (`..` in the entry, a relative symlink that climbs
// above the root, a hard link to outside) is refused. Nothing is ever opened by a string path
// below the root, so no entry can make the process write outside it.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "kbatch/image/store.h"

namespace kbatch::image {

struct ExtractLimits {
  /// Total bytes (declared file sizes plus 512 per entry) all layers of an image may unpack to;
  /// stops decompression bombs and huge sparse files before they are written.
  std::uint64_t max_unpacked_bytes = 32ULL << 30;
};

struct ExtractStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes_written = 0;   ///< file data written
  std::uint64_t budget_used = 0;     ///< against ExtractLimits::max_unpacked_bytes, all layers
  std::uint64_t skipped_devices = 0; ///< device nodes and sockets, which a rootless unpack cannot create
  std::uint64_t dropped_setid = 0;   ///< entries whose setuid/setgid bits were cleared
};

/// Applies the layer file `layer` on top of the directory open as `root_fd`. `label` names the
/// layer in errors. Throws kbatch::Error (naming the layer and the entry) on hostile or malformed
/// input; what was extracted before the error stays in the root, so callers extract into a
/// temporary directory and discard it on failure.
void extractLayerFile(int root_fd, const std::filesystem::path& layer, const std::string& label,
                      const ExtractLimits& limits, ExtractStats& stats);

/// The same, from memory (the fuzz target and tests).
void extractLayerMemory(int root_fd, const void* data, std::size_t size, const std::string& label,
                        const ExtractLimits& limits, ExtractStats& stats);

/// Reads the default limit from $KBATCH_MAX_UNPACKED_BYTES (bytes, or with a K/M/G/T suffix).
ExtractLimits extractLimitsFromEnvironment();

}  // namespace kbatch::image
