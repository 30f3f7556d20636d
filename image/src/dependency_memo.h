#pragma once
// The memo of a dependency image: which image buildDependencyImageDetailed() found or built for a
// request, and the lstat(2) of every path its answer depended on. While none of those changed,
// the same request has the same answer, so the warm path needs no ELF parsing, hashing or
// building, and the lean `kbatch` (no libelf, no libcrypto) can take it itself.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kbatch/image/dependency_image.h"

namespace kbatch::image::detail {

/// Everything about the request and the caller that decides the answer besides the watched
/// files: the paths, strategy, LD_LIBRARY_PATH, and the caller's uid, gid, name and home (they
/// go into the image's /etc/passwd). nullopt: this request is never memoized (a base image,
/// extra paths, plugin directories, or another strategy than closure).
std::optional<std::string> memoRequestText(const DependencyImageRequest& request);

/// What a memo watches, as lstat(2) saw it: path -> state.
struct MemoWatch {
  std::vector<std::pair<std::string, std::string>> watched;   ///< the image's inputs
  std::vector<std::pair<std::string, std::string>> searched;  ///< LD_LIBRARY_PATH directories
};

/// The state of `paths` and of the request's LD_LIBRARY_PATH directories, now. Taken before the
/// answer is computed from them, so that a file that changes meanwhile never matches the memo.
MemoWatch watchForMemo(const DependencyImageRequest& request,
                       const std::vector<std::filesystem::path>& paths);

/// Writes the memo of `request`'s answer `store_name` in `store_root`. Failures are only logged:
/// the memo is an optimisation.
void rememberDependencyImage(const std::filesystem::path& store_root,
                             const DependencyImageRequest& request, const std::string& store_name,
                             const MemoWatch& watch);

}  // namespace kbatch::image::detail
