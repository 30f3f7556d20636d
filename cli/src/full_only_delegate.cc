// The lean executables' side of full_only.h and hand_over.h: whatever needs a subsystem this
// executable does not link is handed to the helper that does, by re-executing it with this
// process's own command line (git runs its dashed helpers the same way). execv(2) keeps the pid,
// the environment, the open descriptors, the signal mask and the controlling terminal, so the
// batch system sees one process throughout. Compiled into
//   kbatch      the front end (exec_main.cc), and kbatch-cli, which hand the Kubernetes backend
//               and its commands to kbatch-k8s, the rest to kbatch-full;
//   kbatch-k8s  (KBATCH_CARRIES_PODS) which carries those and hands the rest to kbatch-full.
// No CLI11 and no iostreams here: the front end links this.

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include "full_only.h"
#include "hand_over.h"
#include "helper_path.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"

#ifndef KBATCH_POD_COMMANDS
#error "KBATCH_POD_COMMANDS must list the commands kbatch-k8s carries, separated by spaces"
#endif

namespace kbatch::cli {
namespace {

namespace fs = std::filesystem;

/// main()'s arguments, kept for the hand-over (argv lives until the process ends).
char** saved_argv = nullptr;
/// What exec --job-body read from stdin before it found it had to hand over.
std::optional<std::string> consumed_stdin;

constexpr const char* kFullHelper = "kbatch-full";
constexpr const char* kPodHelper = "kbatch-k8s";

/// Gives the helper the stdin this process already read: a memory file with the same bytes
/// (the job's own stdin is /dev/null once its body has been read, so nothing else is lost).
void replayConsumedStdin() {
  if (!consumed_stdin) return;
  int fd = ::memfd_create("kbatch-stdin", MFD_CLOEXEC);
  if (fd < 0) throw Error("keep stdin for the helper", "", describeErrno(errno));
  std::string_view rest = *consumed_stdin;
  while (!rest.empty()) {
    ssize_t written = ::write(fd, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) throw Error("keep stdin for the helper", "", describeErrno(errno));
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::lseek(fd, 0, SEEK_SET) != 0 || ::dup2(fd, STDIN_FILENO) < 0) {
    throw Error("keep stdin for the helper", "", describeErrno(errno));
  }
  ::close(fd);
}

}  // namespace

void recordArguments(char** argv) { saved_argv = argv; }

void handOverTo(const char* helper_name, const std::string& reason) {
  if (saved_argv == nullptr) {
    throw Error(std::string("hand over to ") + helper_name, reason,
                "main() did not record its arguments");
  }
  const fs::path helper = findHelperExecutable(helper_name);
  log::debug("{}: continuing in {}", reason, helper.string());
  replayConsumedStdin();
  // Whatever this process printed must come out before the helper's own output (std::cout is
  // synchronised with stdio, so its output is in stdio's buffers).
  std::fflush(nullptr);
  ::execv(helper.c_str(), saved_argv);
  throw Error("run", helper.string(), describeErrno(errno),
              "kbatch needs its helper for this command; reinstall kbatch");
}

std::string_view commandWord(int argc, char** argv, bool& asks_for_main_help) {
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "--help" || word == "-h") asks_for_main_help = true;
    if (word.empty() || word.front() != '-' || word == "--") return word;
  }
  return {};
}

namespace {

[[noreturn]] void handOverToFullKbatch(const std::string& reason) { handOverTo(kFullHelper, reason); }

#ifndef KBATCH_CARRIES_PODS
/// Whether `word` is one of the commands kbatch-k8s carries (KBATCH_POD_COMMANDS, from CMake).
bool isPodCommand(std::string_view word) {
  std::string_view list = KBATCH_POD_COMMANDS;
  while (!list.empty()) {
    const auto space = list.find(' ');
    if (list.substr(0, space) == word) return true;
    list = space == std::string_view::npos ? std::string_view() : list.substr(space + 1);
  }
  return false;
}
#endif

}  // namespace

void dispatchCommandLine(int argc, char** argv,
                         const std::function<bool(std::string_view)>& carries) {
  saved_argv = argv;
  bool asks_for_main_help = false;
  std::string_view word = commandWord(argc, argv, asks_for_main_help);
  if (word.empty() && !asks_for_main_help) {
    // Only global flags: --version is answered here; anything else is a usage error that
    // kbatch-full reports with the full command list.
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--version") return;
    }
  }
  if (!word.empty() && !asks_for_main_help) {
    if (carries(word)) return;
#ifndef KBATCH_CARRIES_PODS
    if (isPodCommand(word)) handOverTo(kPodHelper, "this command is carried by kbatch-k8s");
#endif
  }
  handOverToFullKbatch("this command is carried by kbatch-full");
}

std::filesystem::path fetchImageRoot(const std::string& reference, const image::ResolveOptions&) {
  handOverToFullKbatch("image " + reference + " must be pulled, imported or unpacked");
}

std::filesystem::path dependencyImageRoot(const std::optional<std::string>&,
                                          const image::DependencyImageRequest&,
                                          const image::DependencyLookupOptions&) {
  handOverToFullKbatch("a dependency image is needed");
}

#ifndef KBATCH_CARRIES_PODS
int runJobAsPod(JobSpec, const std::optional<std::string>&) {
  handOverTo(kPodHelper, "the Kubernetes backend is needed");
}
#endif

void rememberConsumedStdin(std::string consumed) { consumed_stdin = std::move(consumed); }

}  // namespace kbatch::cli
