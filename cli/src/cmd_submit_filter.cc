// `kbatch submit-filter [--on-error=closed|open] [qsub arguments...]`: TORQUE's SUBMITFILTER.
// qsub runs it with qsub's own arguments and the script on stdin, reads the new script from its
// stdout, and treats exit 255 as "administratively rejected".

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "command.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/rewrite/submit.h"
#include "dependency_build_call.h"
#include "site_policy.h"
#include "submit_site.h"

namespace kbatch::cli {
namespace {

struct SubmitFilterCommand {
  std::optional<std::string> on_error;
  bool detect = false;
  std::optional<std::string> kbatch_path;
  std::vector<std::string> qsub_arguments;
};

/// Writes the whole script or reports failure: qsub must never read half a script.
bool writeAll(int fd, const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    written += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(submit_filter, 32, [](CLI::App& app, const kbatch::cli::GlobalOptions&,
                                              int* exit_code) {
  auto command = std::make_shared<kbatch::cli::SubmitFilterCommand>();
  auto* sub = app.add_subcommand(
      "submit-filter",
      "TORQUE SUBMITFILTER: script on stdin, qsub's arguments as arguments, new script on stdout");
  // qsub's own options (-h, -v, -q, ...) must reach the filter untouched: kbatch's options come
  // first and everything from the first other argument on is qsub's.
  sub->set_help_flag("--help", "Show this help");
  sub->fallthrough(false);
  sub->prefix_command();
  sub->add_option("--on-error", command->on_error,
                  "When the filter fails (kbatch error, unreadable policy, a native job's "
                  "malformed #PBS line): closed rejects the job (exit 255), open passes the "
                  "original script on unchanged. Default: the policy's submit_filter.on_error. "
                  "A job the policy refuses is always rejected.")
      ->check(CLI::IsMember({"closed", "open"}));
  sub->add_flag("--detect", command->detect,
                "Give a dependency image to a job whose binary needs libraries the compute nodes "
                "lack (policy compute_nodes.missing_libraries); default: submit_filter.detect");
  sub->add_option("--kbatch-path", command->kbatch_path,
                  "kbatch path written into rewritten scripts (default: this executable)");
  sub->footer("Usage in torque.cfg: SUBMITFILTER /path/to/a/script that runs\n"
              "  exec kbatch submit-filter --on-error=closed \"$@\"");
  sub->callback([command, sub, exit_code] {
    command->qsub_arguments = sub->remaining();
    kbatch::rewrite::SubmitFilterOptions options;
    if (command->on_error) {
      options.on_error = *command->on_error == "open" ? kbatch::rewrite::FailureMode::kOpen
                                                      : kbatch::rewrite::FailureMode::kClosed;
    }
    options.site_failure_mode = &kbatch::cli::siteSubmitFilterMode;
    options.check_job = &kbatch::cli::enforceSitePolicyAtSubmission;
    if (const char* prefix = std::getenv("PBS_DPREFIX")) options.pbs_dprefix = prefix;
    std::string script;
    try {
      options.rewrite.kbatch_path =
          command->kbatch_path ? *command->kbatch_path : kbatch::rewrite::defaultKbatchPath();
      options.rewrite.detect_binary =
          kbatch::cli::siteBinaryDetector(command->detect, kbatch::rewrite::defaultKbatchPath());
      // -B: build the dependency image once, now, and pin it (H-deps).
      options.rewrite.build_dependency_image = kbatch::cli::makeSubmissionDependencyBuilder();
      script = kbatch::rewrite::readAllStandardInput();
    } catch (const kbatch::Error& error) {
      // Without the script there is nothing to pass on, whatever the failure mode.
      std::fprintf(stderr, "%s\n", error.oneLine().c_str());
      *exit_code = kbatch::exit_code::kSubmitFilterRejected;
      return;
    }
    auto result = kbatch::rewrite::runSubmitFilter(script, command->qsub_arguments, options);
    if (!result.message.empty()) std::fprintf(stderr, "%s\n", result.message.c_str());
    if (result.exit_code == kbatch::exit_code::kOk &&
        !kbatch::cli::writeAll(STDOUT_FILENO, result.output)) {
      int err = errno;
      std::fprintf(stderr, "kbatch: write script to qsub: %s\n", kbatch::describeErrno(err).c_str());
      *exit_code = kbatch::exit_code::kSubmitFilterRejected;
      return;
    }
    *exit_code = result.exit_code;
  });
});
