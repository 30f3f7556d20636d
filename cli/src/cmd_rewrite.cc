// `kbatch rewrite SCRIPT`: the script as the submit filter would pass it on, on stdout.

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>

#include "command.h"
#include "kbatch/common/error.h"
#include "kbatch/rewrite/rewriter.h"
#include "kbatch/rewrite/submit.h"
#include "site_policy.h"
#include "submit_site.h"

namespace kbatch::cli {
namespace {

struct RewriteCommand {
  std::string script;
  std::optional<std::string> prefix;
  std::optional<std::string> kbatch_path;
  bool detect = false;
};

void writeAllToStdout(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    int err = errno;
    throw Error("write", "stdout", describeErrno(err));
  }
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(rewrite, 31, [](CLI::App& app, const kbatch::cli::GlobalOptions&,
                                        int* exit_code) {
  auto command = std::make_shared<kbatch::cli::RewriteCommand>();
  auto* sub = app.add_subcommand(
      "rewrite", "Print the script rewritten to run in a container (unchanged if it needs none)");
  sub->add_option("script", command->script, "Job script ('-' reads stdin)")->required();
  sub->add_option("-C,--prefix", command->prefix,
                  "#PBS directive prefix, as qsub -C (default: $PBS_DPREFIX, else #PBS)");
  sub->add_option("--kbatch-path", command->kbatch_path,
                  "kbatch path written into the script (default: this executable)");
  sub->add_flag("--detect", command->detect,
                "Give a dependency image to a job whose binary needs libraries the compute nodes "
                "lack (policy compute_nodes.missing_libraries); default: submit_filter.detect");
  sub->callback([command, exit_code] {
    kbatch::rewrite::ParseOptions options;
    options.directive_prefix = command->prefix;
    if (const char* prefix = std::getenv("PBS_DPREFIX")) options.pbs_dprefix = prefix;
    std::string content;
    if (command->script == "-") {
      content = kbatch::rewrite::readAllStandardInput();
    } else {
      std::ifstream stream(command->script, std::ios::binary);
      if (!stream) {
        int err = errno;
        throw kbatch::Error("read job script", command->script, kbatch::describeErrno(err), {},
                            err == ENOENT ? kbatch::exit_code::kNotFound
                                          : kbatch::exit_code::kKbatchError);
      }
      content.assign(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());
      options.file_name = command->script;
    }
    kbatch::rewrite::RewriteOptions rewrite_options;
    rewrite_options.kbatch_path =
        command->kbatch_path ? *command->kbatch_path : kbatch::rewrite::defaultKbatchPath();
    rewrite_options.detect_binary =
        kbatch::cli::siteBinaryDetector(command->detect, kbatch::rewrite::defaultKbatchPath());
    auto result = kbatch::rewrite::rewriteJobScript(content, options, rewrite_options);
    kbatch::cli::writeAllToStdout(result.script);
    *exit_code = kbatch::exit_code::kOk;
  });
});
