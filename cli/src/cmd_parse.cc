// `kbatch parse SCRIPT [--json]`: the JobSpec a job script's directives describe.

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "command.h"
#include "kbatch/rewrite/job_spec_json.h"
#include "kbatch/rewrite/parser.h"
#include "kbatch/rewrite/submit.h"

namespace kbatch::cli {
namespace {

struct ParseCommand {
  std::string script;
  bool json = false;
  std::optional<std::string> prefix;
};

template <typename T>
std::string show(const std::optional<T>& value) {
  if (!value) return "-";
  if constexpr (std::is_same_v<T, std::string>) return *value;
  else return std::to_string(*value);
}

void printSummary(const JobSpec& spec) {
  const Resources& r = spec.resources;
  std::printf("name:            %s\n", show(spec.name).c_str());
  std::printf("shell:           %s\n", show(spec.shell).c_str());
  std::printf("nodes/ppn/procs: %s / %s / %s\n", show(r.nodes).c_str(), show(r.ppn).c_str(),
              show(r.procs).c_str());
  std::printf("memory:          %s bytes\n", show(r.mem_bytes).c_str());
  std::printf("walltime:        %s s\n", show(r.walltime_s).c_str());
  std::printf("gpus:            %s\n", show(r.gpus).c_str());
  std::printf("image:           %s\n", show(spec.image).c_str());
  std::printf("binary:          %s\n", show(spec.binary).c_str());
  std::printf("backend:         %s\n", spec.backend ? toString(*spec.backend) : "-");
  std::printf("needs container: %s\n", spec.needs_container ? "yes" : "no");
  for (const auto& directive : spec.directives) {
    std::printf("  line %-4d %-8s %s %s\n", directive.line, directive.prefix.c_str(),
                directive.option.c_str(), directive.value.c_str());
  }
  for (const auto& option : spec.passthrough_options) {
    std::printf("  passed through: %s\n", option.c_str());
  }
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(parse, 30, [](CLI::App& app, const kbatch::cli::GlobalOptions&,
                                      int* exit_code) {
  auto command = std::make_shared<kbatch::cli::ParseCommand>();
  auto* sub = app.add_subcommand("parse", "Show the JobSpec a job script's directives describe");
  sub->add_option("script", command->script, "Job script ('-' reads stdin)")->required();
  sub->add_flag("--json", command->json, "Print JSON (sizes in bytes, times in seconds)");
  sub->add_option("-C,--prefix", command->prefix,
                  "#PBS directive prefix, as qsub -C (default: $PBS_DPREFIX, else #PBS)");
  sub->callback([command, exit_code] {
    kbatch::rewrite::ParseOptions options;
    options.directive_prefix = command->prefix;
    if (const char* prefix = std::getenv("PBS_DPREFIX")) options.pbs_dprefix = prefix;
    kbatch::JobSpec spec;
    if (command->script == "-") {
      spec = kbatch::rewrite::parseJobScript(kbatch::rewrite::readAllStandardInput(), options);
    } else {
      spec = kbatch::rewrite::parseJobScriptFile(command->script, options);
    }
    if (command->json) {
      std::printf("%s\n", kbatch::rewrite::jobSpecToJson(spec).c_str());
    } else {
      kbatch::cli::printSummary(spec);
    }
    *exit_code = kbatch::exit_code::kOk;
  });
});
