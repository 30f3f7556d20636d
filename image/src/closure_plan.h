#pragma once
// The closure plan: which host paths go into a dependency image, at which paths, as files,
// symlinks or directories. Planning is separate from copying so the cache key (a hash of the plan
// and the files' contents) is known before anything is built.

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kbatch/image/deps.h"

namespace kbatch::image::detail {

struct PlannedEntry {
  enum class Kind { kDirectory, kFile, kSymlink };
  Kind kind = Kind::kDirectory;
  std::filesystem::path host_source;  ///< kFile: where to copy from
  std::filesystem::path link_target;  ///< kSymlink: the target, as the host link has it
  mode_t mode = 0755;
};

class ClosurePlan {
 public:
  /// Adds `host_path` (absolute) at the same path in the image, with every symlink on the way
  /// (directory links such as /lib -> usr/lib included) and the target it leads to.
  void addPath(const std::filesystem::path& host_path);
  /// Adds a directory tree (entries not followed through symlinks; link targets are added).
  void addTree(const std::filesystem::path& host_dir);
  /// Adds a resolved library; one found through the host's ld.so.cache or the job's
  /// LD_LIBRARY_PATH also gets an entry in the image's own cache, since its directory may not be
  /// a default one and LD_LIBRARY_PATH is not passed into containers.
  void addLibrary(const LibraryRecord& library);
  /// Adds the libraries, interpreter and plugins of a resolved report, and the binary itself.
  /// Throws kbatch::Error listing missing libraries.
  void addReport(const DependencyReport& report);
  /// Entries whose in-image path ld.so found through the host's ld.so.cache: the image gets its
  /// own cache with just these (soname -> path).
  const std::vector<LdCacheEntry>& cacheEntries() const { return cache_entries_; }
  const std::map<std::filesystem::path, PlannedEntry>& entries() const { return entries_; }

  /// sha256 over every entry (path, kind, mode, link target, file content), in path order;
  /// `hash_file` gives a file's content hash (e.g. from a FileHashCache).
  std::string contentDigest(const std::function<std::string(const std::filesystem::path&)>&
                                hash_file) const;
  std::string contentDigest() const;

  /// Creates every entry under `root` (which must exist), parents first.
  void materialise(const std::filesystem::path& root) const;

 private:
  void addPathWithin(const std::filesystem::path& host_path, int depth);
  std::map<std::filesystem::path, PlannedEntry> entries_;
  std::vector<LdCacheEntry> cache_entries_;
};

/// sha256 of a file's content, hex; throws kbatch::Error naming the file.
std::string sha256File(const std::filesystem::path& path);
/// sha256 of bytes, hex.
std::string sha256Text(const std::string& text);

}  // namespace kbatch::image::detail
