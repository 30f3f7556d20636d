// `kbatch qsub [qsub options] [SCRIPT]`: rewrites the job if it needs a container (consuming the
// paper's -B, which stock qsub refuses) and runs the site's real qsub on the result.

#include <cstdlib>
#include <memory>

#include "command.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include <cstdio>

#include "kbatch/rewrite/submit.h"
#include "dependency_build_call.h"
#include "site_policy.h"
#include "submit_site.h"

namespace kbatch::cli {
namespace {

struct QsubCommand {
  std::optional<std::string> qsub_path;
  std::optional<std::string> kbatch_path;
  bool detect = false;
};

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(qsub, 33, [](CLI::App& app, const kbatch::cli::GlobalOptions&,
                                     int* exit_code) {
  auto command = std::make_shared<kbatch::cli::QsubCommand>();
  auto* sub = app.add_subcommand(
      "qsub", "Submit a job through the real qsub, rewriting it first if it needs a container");
  // qsub's -h (hold), -v, -q ... belong to qsub: kbatch's own options must come first.
  sub->set_help_flag("--help", "Show this help");
  sub->fallthrough(false);
  sub->prefix_command();
  sub->add_option("--qsub", command->qsub_path,
                  "The real qsub (default: $KBATCH_QSUB, else the first qsub on PATH that is not "
                  "kbatch)");
  sub->add_option("--kbatch-path", command->kbatch_path,
                  "kbatch path written into rewritten scripts (default: this executable)");
  sub->add_flag("--detect", command->detect,
                "Give a dependency image to a job whose binary needs libraries the compute nodes "
                "lack (policy compute_nodes.missing_libraries); default: submit_filter.detect");
  sub->footer("All other arguments are qsub's, e.g. kbatch qsub -B ./a.out -l nodes=1 job.pbs");
  sub->callback([command, sub, exit_code] {
    if (std::getenv("KBATCH_QSUB_ACTIVE") != nullptr) {
      throw kbatch::Error("submit job", "qsub", "the real qsub found is kbatch qsub itself",
                          "set KBATCH_QSUB or --qsub to the batch system's qsub");
    }
    std::string self = kbatch::rewrite::currentExecutablePath();
    const char* path = std::getenv("PATH");
    kbatch::rewrite::QsubWrapperOptions options;
    options.qsub_path = kbatch::rewrite::findRealQsub(command->qsub_path, std::getenv("KBATCH_QSUB"),
                                                      path != nullptr ? path : "", self);
    options.rewrite.kbatch_path =
        command->kbatch_path ? *command->kbatch_path : kbatch::rewrite::defaultKbatchPath();
    if (const char* prefix = std::getenv("PBS_DPREFIX")) options.pbs_dprefix = prefix;
    if (const char* tmpdir = std::getenv("TMPDIR"); tmpdir != nullptr && *tmpdir != '\0') {
      options.temporary_directory = tmpdir;
    }
    options.read_standard_input = &kbatch::rewrite::readAllStandardInput;
    options.rewrite.detect_binary =
        kbatch::cli::siteBinaryDetector(command->detect, kbatch::rewrite::defaultKbatchPath());
    // -B: build the dependency image once, now, and pin it (H-deps).
    options.rewrite.build_dependency_image = kbatch::cli::makeSubmissionDependencyBuilder();
    options.check_job = &kbatch::cli::enforceSitePolicyAtSubmission;
    kbatch::rewrite::ProcessQsubInvoker invoker;
    try {
      *exit_code = kbatch::rewrite::runQsubWrapper(sub->remaining(), options, invoker);
    } catch (const kbatch::rewrite::JobRefused& refusal) {
      // The site said no: the answer, not a failure of kbatch (qsub never ran).
      std::fprintf(stderr, "%s\n", refusal.oneLine().c_str());
      *exit_code = kbatch::exit_code::kDenied;
    }
  });
});
