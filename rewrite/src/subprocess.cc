#include "kbatch/rewrite/subprocess.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"

namespace kbatch::rewrite {

CapturedRun runCapturingStdout(const std::vector<std::string>& argv, const std::string& action,
                               const std::string& subject) {
  int output[2];
  if (::pipe2(output, O_CLOEXEC) != 0) {
    throw Error(action, subject, "cannot create a pipe: " + describeErrno(errno));
  }
  std::vector<std::string> storage = argv;
  std::vector<char*> pointers;
  for (auto& argument : storage) pointers.push_back(argument.data());
  pointers.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    ::close(output[0]);
    ::close(output[1]);
    throw Error(action, subject, "fork failed: " + describeErrno(err));
  }
  if (child == 0) {
    // The job script the filter was given is on our stdin (already read): not the child's.
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(output[1], STDOUT_FILENO);
    ::execv(pointers[0], pointers.data());
    std::fprintf(stderr, "kbatch: run '%s': %s\n", pointers[0], std::strerror(errno));
    ::_exit(exit_code::kCannotExecute);
  }
  ::close(output[1]);
  CapturedRun run;
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(output[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    run.standard_output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(output[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace kbatch::rewrite
