#pragma once
// A cache of library file hashes keyed by what stat(2) says about the file, so that the warm path
// of a dependency image (the image exists; find it) does not read and hash every library again.
// A file whose device, inode, size, mtime or ctime changed is hashed again; ctime is part of the
// key because a user can set mtime back (touch -d) but not ctime, so a replaced library can never
// reuse the hash, and thus the image, of the one it replaced.

#include <filesystem>
#include <map>
#include <string>

namespace kbatch::image::detail {

class FileHashCache {
 public:
  /// Loads `file` if it exists (a missing or malformed cache is an empty cache).
  explicit FileHashCache(std::filesystem::path file);
  /// The hex sha256 of `path`'s content, from the cache when its stat key is unchanged.
  std::string hashFile(const std::filesystem::path& path);
  /// Writes the cache back (atomically) when something was added; errors are only logged, since
  /// the cache is an optimisation.
  void save();
  std::size_t hits() const { return hits_; }
  std::size_t misses() const { return misses_; }

 private:
  struct Entry {
    std::string stat_key;
    std::string hex;
    bool used = false;
  };
  std::filesystem::path file_;
  std::map<std::string, Entry> entries_;  // by path
  bool dirty_ = false;
  std::size_t hits_ = 0;
  std::size_t misses_ = 0;
};

}  // namespace kbatch::image::detail
