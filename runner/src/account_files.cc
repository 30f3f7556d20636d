#include "kbatch/runner/account_files.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <string_view>

#include "kbatch/common/log.h"
#include "kbatch/common/read_all.h"

namespace kbatch::runner {
namespace {

// passwd and group files of real images are a few kilobytes; a larger one is not read.
constexpr std::size_t kMaxAccountFileBytes = 1 << 20;

/// The image's file at `container_path` (symlinks followed inside the image), if it is a regular
/// file of sane size.
std::optional<std::string> readImageFile(const std::filesystem::path& image_root,
                                         std::string_view container_path) {
  const PathInsideRoot inside = resolvePathInsideRoot(image_root, container_path);
  if (!inside.exists) return std::nullopt;
  const std::string host_path = image_root.string() + inside.path;
  const int fd = ::open(host_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode) ||
      static_cast<std::size_t>(status.st_size) > kMaxAccountFileBytes) {
    ::close(fd);
    return std::nullopt;
  }
  std::string text;
  try {
    text = readToEnd(fd, "read", host_path);
  } catch (const std::exception&) {
    ::close(fd);
    return std::nullopt;
  }
  ::close(fd);
  if (text.size() > kMaxAccountFileBytes) return std::nullopt;
  return text;
}

/// Whether a line of the colon-separated file names `id` in its third field.
bool namesId(std::string_view text, unsigned long id) {
  const std::string wanted = std::to_string(id);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    std::size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    std::size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::size_t third = line.find(':', second + 1);
    std::string_view field = line.substr(second + 1, third == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : third - second - 1);
    if (field == wanted) return true;
  }
  return false;
}

/// A field that is safe in a colon-separated line: no colon, no newline.
std::string field(std::string text) {
  for (char& c : text) {
    if (c == ':' || c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string withLine(std::string text, const std::string& line) {
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text + line + "\n";
}

}  // namespace

std::optional<HostAccount> lookUpHostAccount(uid_t uid, gid_t gid) {
  const passwd* user = ::getpwuid(uid);
  if (user == nullptr) return std::nullopt;
  HostAccount account;
  account.name = user->pw_name;
  account.uid = uid;
  account.gid = gid;
  account.gecos = user->pw_gecos != nullptr ? user->pw_gecos : "";
  account.home = user->pw_dir != nullptr ? user->pw_dir : "/";
  account.shell = user->pw_shell != nullptr ? user->pw_shell : "";
  if (const group* primary = ::getgrgid(gid)) account.group_name = primary->gr_name;
  return account;
}

std::vector<ContainerFile> accountFilesFor(const std::filesystem::path& image_root,
                                           const HostAccount& account) {
  std::vector<ContainerFile> files;
  if (account.name.empty()) return files;
  if (auto passwd_text = readImageFile(image_root, "/etc/passwd")) {
    if (!namesId(*passwd_text, account.uid)) {
      std::string shell = "/bin/sh";
      if (!account.shell.empty() && account.shell.front() == '/' &&
          resolvePathInsideRoot(image_root, account.shell).exists) {
        shell = account.shell;
      }
      const std::string line = field(account.name) + ":x:" + std::to_string(account.uid) + ":" +
                               std::to_string(account.gid) + ":" + field(account.gecos) + ":" +
                               field(account.home) + ":" + field(shell);
      files.push_back({"/etc/passwd", withLine(std::move(*passwd_text), line), 0644});
    }
  } else {
    log::debug("the image has no regular /etc/passwd: the job's user gets no name inside");
  }
  if (account.group_name.empty()) return files;
  if (auto group_text = readImageFile(image_root, "/etc/group")) {
    if (!namesId(*group_text, account.gid)) {
      const std::string line = field(account.group_name) + ":x:" + std::to_string(account.gid) + ":";
      files.push_back({"/etc/group", withLine(std::move(*group_text), line), 0644});
    }
  }
  return files;
}

}  // namespace kbatch::runner
