#pragma once
// The memo of a dependency image: which image buildDependencyImageDetailed() found or built for a
// request, and the lstat(2) of every path its answer depended on. While none of those changed,
// the same request has the same answer, so the warm path needs no ELF parsing, hashing or
// building, and the lean `kbatch` (no libelf, no libcrypto) can take it itself.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kbatch/image/dependency_image.h"

namespace kbatch::image::detail {

/// Everything about the request and the caller that decides the answer besides the watched
/// files: the paths, strategy, LD_LIBRARY_PATH, and the caller's uid, gid, name and home (they
/// go into the image's /etc/passwd). nullopt: this request is never memoized (a base image,
/// extra paths, plugin directories, or another strategy than closure).
std::optional<std::string> memoRequestText(const DependencyImageRequest& request);

/// Writes the memo of `request`'s answer `store_name` in `store_root`, watching `paths` (their
/// lstat, or their absence) and the LD_LIBRARY_PATH directories. Failures are only logged: the
/// memo is an optimisation.
void rememberDependencyImage(const std::filesystem::path& store_root,
                             const DependencyImageRequest& request, const std::string& store_name,
                             const std::vector<std::filesystem::path>& paths);

}  // namespace kbatch::image::detail
