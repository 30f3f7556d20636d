#include "trusted_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <deque>

#include "kbatch/common/error.h"

namespace kbatch::policy::detail {
namespace {

namespace fs = std::filesystem;

// As the kernel's MAXSYMLINKS: a loop of links must end in an error, not a hang.
constexpr int kMaxSymlinkHops = 40;

std::string describeMode(const struct stat& info) {
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(info.st_mode & 07777));
  return octal;
}

class TrustChecker {
 public:
  TrustChecker(const fs::path& requested, const std::vector<uid_t>& owners, std::string action)
      : requested_(requested), owners_(owners), action_(std::move(action)) {}

  void fail(const std::string& cause, const std::string& hint = {}) const {
    throw Error(action_, requested_.string(), cause, hint);
  }

  bool isTrustedOwner(uid_t uid) const {
    return std::find(owners_.begin(), owners_.end(), uid) != owners_.end();
  }

  // Checks that a directory, link or file could only have been changed by a trusted owner.
  void checkEntry(const fs::path& where, const struct stat& info, const char* what) const {
    if (!isTrustedOwner(info.st_uid)) {
      fail(std::string(what) + " '" + where.string() + "' is owned by uid " +
               std::to_string(info.st_uid) + ", not by root",
           "the policy and every directory above it must belong to root");
    }
    // Symlink permission bits mean nothing on Linux; only their owner and directory count.
    // A sticky directory (like /tmp) owned by a trusted owner is safe to pass through: there only
    // an entry's owner, the directory's owner or root may rename or unlink an entry, and the
    // entry below it is checked to belong to a trusted owner too (sticky(7), unlink(2) EPERM).
    const bool trusted_sticky_directory = S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX) != 0;
    if (!S_ISLNK(info.st_mode) && !trusted_sticky_directory &&
        (info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      fail(std::string(what) + " '" + where.string() + "' is writable by group or others (mode " +
               describeMode(info) + ")",
           "run `chmod go-w " + where.string() + "`");
    }
  }

  // Walks the path component by component from '/', following symlinks by hand so that each
  // link, and each directory its target passes through, is checked too. Returns the final path.
  fs::path resolveChecked() const {
    fs::path start = requested_.is_absolute() ? requested_ : fs::absolute(requested_);
    std::deque<std::string> pending;
    for (const auto& part : start.relative_path()) pending.push_back(part.string());
    fs::path current = "/";
    checkDirectory(current);
    int hops = 0;
    while (!pending.empty()) {
      std::string part = pending.front();
      pending.pop_front();
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        current = current.parent_path();
        continue;
      }
      fs::path next = current / part;
      struct stat info {};
      if (lstat(next.c_str(), &info) != 0) {
        fail("cannot examine '" + next.string() + "': " + describeErrno(errno));
      }
      if (S_ISLNK(info.st_mode)) {
        checkEntry(next, info, "symlink");
        if (++hops > kMaxSymlinkHops) fail("too many levels of symbolic links");
        std::string target(static_cast<std::size_t>(info.st_size) + 1, '\0');
        ssize_t length = readlink(next.c_str(), target.data(), target.size());
        if (length < 0) fail("cannot read link '" + next.string() + "': " + describeErrno(errno));
        target.resize(static_cast<std::size_t>(length));
        fs::path target_path(target);
        std::deque<std::string> expanded;
        for (const auto& target_part : target_path.relative_path()) {
          expanded.push_back(target_part.string());
        }
        pending.insert(pending.begin(), expanded.begin(), expanded.end());
        if (target_path.is_absolute()) current = "/";
        continue;
      }
      if (pending.empty()) {
        if (!S_ISREG(info.st_mode)) fail("'" + next.string() + "' is not a regular file");
        checkEntry(next, info, "file");
      } else {
        if (!S_ISDIR(info.st_mode)) fail("'" + next.string() + "' is not a directory");
        checkEntry(next, info, "directory");
      }
      current = next;
    }
    return current;
  }

 private:
  void checkDirectory(const fs::path& directory) const {
    struct stat info {};
    if (lstat(directory.c_str(), &info) != 0) {
      fail("cannot examine '" + directory.string() + "': " + describeErrno(errno));
    }
    checkEntry(directory, info, "directory");
  }

  fs::path requested_;
  const std::vector<uid_t>& owners_;
  std::string action_;
};

}  // namespace

std::string readTrustedFile(const fs::path& path, const std::vector<uid_t>& owners,
                            std::uint64_t max_bytes, const std::string& action) {
  TrustChecker checker(path, owners, action);
  fs::path resolved = checker.resolveChecked();

  // O_NOFOLLOW and the inode comparison close the window between the checks and the open.
  int fd = open(resolved.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) checker.fail("cannot open: " + describeErrno(errno));
  struct stat opened {};
  struct stat checked {};
  if (fstat(fd, &opened) != 0 || lstat(resolved.c_str(), &checked) != 0 ||
      opened.st_dev != checked.st_dev || opened.st_ino != checked.st_ino) {
    close(fd);
    checker.fail("the file changed while it was being checked");
  }
  if (static_cast<std::uint64_t>(opened.st_size) > max_bytes) {
    close(fd);
    checker.fail("file is " + std::to_string(opened.st_size) + " bytes, more than the limit of " +
                 std::to_string(max_bytes));
  }
  std::string content;
  char buffer[65536];
  while (true) {
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int saved = errno;
      close(fd);
      checker.fail("cannot read: " + describeErrno(saved));
    }
    if (got == 0) break;
    content.append(buffer, static_cast<std::size_t>(got));
    // A file that grows after fstat must not get past the limit either.
    if (content.size() > max_bytes) {
      close(fd);
      checker.fail("file is more than the limit of " + std::to_string(max_bytes) + " bytes");
    }
  }
  close(fd);
  return content;
}

}  // namespace kbatch::policy::detail
