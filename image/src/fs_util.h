#pragma once
// Small POSIX helpers for the store: owned file descriptors, atomic file replacement and flock locks.
// Every write the store makes goes through writeFileAtomic or the same temp+fsync+rename dance, so
// a crash leaves either the old content or the new, never a torn file.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "kbatch/common/atomic_file.h"

namespace kbatch::image {

/// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept;
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

/// An flock(2) lock on `path` (created if missing), held until destruction. Locks taken by a process
/// that dies are released by the kernel, so a killed pull never leaves the store locked.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  FileLock(const std::filesystem::path& path, Mode mode);
  /// Returns an unlocked FileLock when another process holds a conflicting lock.
  static FileLock tryLock(const std::filesystem::path& path, Mode mode);
  bool held() const noexcept { return fd_.valid(); }

 private:
  FileLock() = default;
  UniqueFd fd_;
};

// Atomic replacement is shared with the policy module (kbatch/common/atomic_file.h).
using kbatch::syncDirectory;
using kbatch::writeFileAtomic;

/// Reads a whole file, refusing files larger than `max_bytes`.
std::string readFileLimited(const std::filesystem::path& path, std::uint64_t max_bytes);

/// Creates `path` and its parents (mode 0755 before umask); throws kbatch::Error on failure.
void makeDirectories(const std::filesystem::path& path);

/// Removes a tree that kbatch itself created (an unpacked root, a temporary directory), first
/// giving the owner write permission on directories so that read-only directories inside an image
/// do not stop the removal. Never follows symlinks.
void removeTree(const std::filesystem::path& path);

/// Removes `name` inside directory `dir_fd`, recursively if it is a directory, without following
/// symlinks. Missing entries are not an error. Returns false and sets errno on failure.
bool removeAt(int dir_fd, const char* name);

/// Total bytes of regular files below `path` (allocation-independent apparent size).
std::uint64_t treeSize(const std::filesystem::path& path);

}  // namespace kbatch::image
