#include "kbatch/common/read_all.h"

#include <unistd.h>

#include <cerrno>

#include "kbatch/common/error.h"

namespace kbatch {

std::string readToEnd(int fd, const std::string& action, const std::string& object) {
  std::string content;
  char buffer[65536];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(action, object, describeErrno(errno));
    if (got == 0) return content;
    content.append(buffer, static_cast<std::size_t>(got));
  }
}

}  // namespace kbatch
