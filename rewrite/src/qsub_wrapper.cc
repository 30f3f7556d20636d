#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "kbatch/common/read_all.h"
#include "kbatch/rewrite/submit.h"

namespace kbatch::rewrite {
namespace {

/// A private directory for the rewritten script, removed when the wrapper is done.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const std::filesystem::path& parent) {
    std::string pattern = (parent / "kbatch-qsub.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      int err = errno;
      throw Error("create a temporary directory in", parent.string(), describeErrno(err),
                  "set TMPDIR to a writable directory");
    }
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void writePrivateFile(const std::filesystem::path& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    throw Error("write rewritten job script", path.string(), describeErrno(err));
  }
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw Error("write rewritten job script", path.string(), describeErrno(err));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    int err = errno;
    throw Error("write rewritten job script", path.string(), describeErrno(err));
  }
}

std::string readScriptFile(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    int err = errno;
    throw Error("read job script", path, describeErrno(err), {},
                err == ENOENT ? exit_code::kNotFound : exit_code::kKbatchError);
  }
  return std::string((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
}

bool isExecutableFile(const std::filesystem::path& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string readAllStandardInput() {
  return readToEnd(STDIN_FILENO, "read job script", "STDIN");
}

int ProcessQsubInvoker::invoke(const std::filesystem::path& qsub,
                               const std::vector<std::string>& arguments,
                               const std::optional<std::string>& standard_input) {
  std::vector<std::string> argv_storage{qsub.string()};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : argv_storage) argv.push_back(argument.data());
  argv.push_back(nullptr);

  int input_pipe[2] = {-1, -1};
  if (standard_input && ::pipe2(input_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    throw Error("run qsub", qsub.string(), "cannot create a pipe: " + describeErrno(err));
  }
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    int err = errno;
    throw Error("run qsub", qsub.string(), "fork failed: " + describeErrno(err));
  }
  if (child == 0) {
    if (standard_input) ::dup2(input_pipe[0], STDIN_FILENO);  // dup2 clears O_CLOEXEC on fd 0
    // Marks the child so that a qsub which is really kbatch again refuses to loop.
    ::setenv("KBATCH_QSUB_ACTIVE", "1", 1);
    ::execv(argv[0], argv.data());
    int err = errno;
    std::fprintf(stderr, "kbatch: run qsub '%s': %s\n", argv[0], std::strerror(err));
    ::_exit(err == ENOENT ? exit_code::kNotFound : exit_code::kCannotExecute);
  }
  if (standard_input) {
    ::close(input_pipe[0]);
    // qsub may exit without reading everything; that is its answer, not a reason to die of SIGPIPE.
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &previous);
    std::size_t written = 0;
    while (written < standard_input->size()) {
      ssize_t n = ::write(input_pipe[1], standard_input->data() + written,
                          standard_input->size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    ::close(input_pipe[1]);
    ::sigaction(SIGPIPE, &previous, nullptr);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      int err = errno;
      throw Error("run qsub", qsub.string(), "waitpid failed: " + describeErrno(err));
    }
  }
  if (WIFSIGNALED(status)) return exit_code::kSignalBase + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::filesystem::path findRealQsub(const std::optional<std::string>& explicit_path,
                                   const char* env_path, std::string_view search_path,
                                   const std::filesystem::path& self) {
  auto checked = [](const std::string& path, const char* origin) {
    if (!isExecutableFile(path)) {
      throw Error("find the real qsub", path, std::string("not an executable file (from ") +
                  origin + ")", {}, exit_code::kNotFound);
    }
    return std::filesystem::path(path);
  };
  if (explicit_path && !explicit_path->empty()) return checked(*explicit_path, "--qsub");
  if (env_path != nullptr && *env_path != '\0') return checked(env_path, "KBATCH_QSUB");
  std::error_code error;
  auto self_real = std::filesystem::canonical(self, error);
  std::size_t start = 0;
  while (start <= search_path.size()) {
    std::size_t colon = search_path.find(':', start);
    std::string directory(search_path.substr(start, colon == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : colon - start));
    start = colon == std::string_view::npos ? search_path.size() + 1 : colon + 1;
    if (directory.empty()) directory = ".";
    std::filesystem::path candidate = std::filesystem::path(directory) / "qsub";
    if (!isExecutableFile(candidate)) continue;
    auto candidate_real = std::filesystem::canonical(candidate, error);
    if (!error && !self_real.empty() && candidate_real == self_real) continue;  // kbatch itself
    return candidate;
  }
  throw Error("find the real qsub", "qsub", "no qsub on PATH other than kbatch itself",
              "set KBATCH_QSUB or pass --qsub PATH", exit_code::kNotFound);
}

int runQsubWrapper(const std::vector<std::string>& arguments, const QsubWrapperOptions& options,
                   QsubInvoker& invoker) {
  QsubCommandLine command_line = parseQsubCommandLine(arguments);
  std::vector<std::string> qsub_arguments = command_line.arguments_without_binary;
  const bool script_on_stdin = !command_line.script_index.has_value();
  if (script_on_stdin && command_line.interactive) {
    if (command_line.binary) {
      throw ScriptError("submit job", "command line", "-B needs a job script",
                        "interactive jobs (-I) run no script to containerise");
    }
    return invoker.invoke(options.qsub_path, qsub_arguments, std::nullopt);
  }

  ParseOptions parse_options;
  parse_options.pbs_dprefix = options.pbs_dprefix;
  parse_options.command_line = arguments;
  std::string content;
  std::string script_path;
  if (script_on_stdin) {
    if (options.read_standard_input == nullptr) {
      throw Error("submit job", "STDIN", "no way to read the script from stdin");
    }
    content = options.read_standard_input();
  } else {
    script_path = arguments[*command_line.script_index];
    parse_options.file_name = script_path;
    // qsub refuses a script file in DOS format; kbatch qsub does the same before rewriting.
    parse_options.reject_dos_line_endings = true;
    content = readScriptFile(script_path);
  }

  bool checked = false;
  RewriteResult result = rewriteJobScript(
      content, parse_options, checkBeforeBuilding(options.rewrite, options.check_job, &checked));
  // Refused jobs never reach qsub; already rewritten scripts are checked like new ones.
  if (result.spec.needs_container && options.check_job && !checked) {
    options.check_job(result.spec);
  }
  if (!result.rewritten) {
    log::info("job needs no container; running {} unchanged", options.qsub_path.string());
    return invoker.invoke(options.qsub_path, qsub_arguments,
                          script_on_stdin ? std::optional<std::string>(content) : std::nullopt);
  }
  if (script_on_stdin) {
    return invoker.invoke(options.qsub_path, qsub_arguments, result.script);
  }
  // Same base name as the original, so qsub's default job name (the script's name) is unchanged.
  TemporaryDirectory directory(options.temporary_directory);
  std::filesystem::path rewritten_path =
      directory.path() / std::filesystem::path(script_path).filename();
  writePrivateFile(rewritten_path, result.script);
  qsub_arguments[*command_line.script_index_without_binary] = rewritten_path.string();
  log::info("job rewritten for kbatch exec; submitting {}", rewritten_path.string());
  return invoker.invoke(options.qsub_path, qsub_arguments, std::nullopt);
}

}  // namespace kbatch::rewrite
