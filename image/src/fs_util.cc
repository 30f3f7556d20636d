#include "fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "kbatch/common/error.h"

namespace kbatch::image {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

UniqueFd::~UniqueFd() { reset(); }

int UniqueFd::release() noexcept {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

UniqueFd openLockFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) throw Error("open lock file", path.string(), describeErrno(errno));
  return fd;
}

}  // namespace

FileLock::FileLock(const std::filesystem::path& path, Mode mode) : fd_(openLockFile(path)) {
  int operation = mode == Mode::kShared ? LOCK_SH : LOCK_EX;
  while (::flock(fd_.get(), operation) != 0) {
    if (errno != EINTR) throw Error("lock", path.string(), describeErrno(errno));
  }
}

FileLock FileLock::tryLock(const std::filesystem::path& path, Mode mode) {
  FileLock lock;
  UniqueFd fd = openLockFile(path);
  int operation = (mode == Mode::kShared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  if (::flock(fd.get(), operation) == 0) lock.fd_ = std::move(fd);
  return lock;
}

std::string readFileLimited(const std::filesystem::path& path, std::uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error("read", path.string(), describeErrno(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error("stat", path.string(), describeErrno(errno));
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    throw Error("read", path.string(),
                "file is " + std::to_string(st.st_size) + " bytes, more than the " +
                    std::to_string(max_bytes) + " expected");
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < content.size()) {
    ssize_t got = ::read(fd.get(), content.data() + done, content.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error("read", path.string(), describeErrno(errno));
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  content.resize(done);
  return content;
}

void makeDirectories(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error("create directory", path.string(), ec.message());
}

namespace {

bool removeChildren(int dir_fd) {
  int dup_fd = ::dup(dir_fd);
  if (dup_fd < 0) return false;
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    ::close(dup_fd);
    return false;
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  ::closedir(dir);
  for (const auto& name : names) {
    if (!removeAt(dir_fd, name.c_str())) return false;
  }
  return true;
}

}  // namespace

bool removeAt(int dir_fd, const char* name) {
  struct stat st {};
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT;
  // Image directories may be read-only (mode 0555); the owner can always make them writable. If
  // that fails, the removal below fails and says so.
  [[maybe_unused]] int made_writable = ::fchmodat(dir_fd, name, 0700, 0);
  UniqueFd child(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!child.valid()) return false;
  if (!removeChildren(child.get())) return false;
  return ::unlinkat(dir_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

void removeTree(const std::filesystem::path& path) {
  std::filesystem::path parent = path.parent_path().empty() ? "." : path.parent_path();
  UniqueFd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd.valid()) {
    if (errno == ENOENT) return;
    throw Error("remove", path.string(), describeErrno(errno));
  }
  if (!removeAt(parent_fd.get(), path.filename().c_str())) {
    throw Error("remove", path.string(), describeErrno(errno));
  }
}

std::uint64_t treeSize(const std::filesystem::path& path) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           path, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec) && !it->is_symlink(size_ec)) {
      auto size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}


}  // namespace kbatch::image
