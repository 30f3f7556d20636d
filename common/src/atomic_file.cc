#include "kbatch/common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "kbatch/common/error.h"

namespace kbatch {

void syncDirectory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    throw Error("sync directory", directory.string(), describeErrno(saved));
  }
  ::close(fd);
}

void writeFileAtomic(const std::filesystem::path& path, std::string_view content, unsigned mode) {
  std::string temp_name = path.string() + ".tmp-XXXXXX";
  std::vector<char> temp(temp_name.begin(), temp_name.end());
  temp.push_back('\0');
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) throw Error("create temporary file for", path.string(), describeErrno(errno));
  auto fail = [&](const char* what) {
    const int saved = errno;
    ::close(fd);
    ::unlink(temp.data());
    throw Error(what, path.string(), describeErrno(saved));
  };
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    data += written;
    left -= static_cast<size_t>(written);
  }
  if (::fchmod(fd, mode) != 0) fail("set mode of");
  if (::fsync(fd) != 0) fail("fsync");
  if (::rename(temp.data(), path.c_str()) != 0) fail("rename into place");
  ::close(fd);
  syncDirectory(path.parent_path());
}

}  // namespace kbatch
