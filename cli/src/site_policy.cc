#include "site_policy.h"

#include <filesystem>
#include <optional>

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"

namespace kbatch::cli {

void enforceSitePolicy(const JobSpec& job, const policy::EvaluationContext& context,
                       const std::string& action) {
  const policy::Decision decision = policy::evaluate(sitePolicy(), job, context);
  for (const auto& result : decision.results) log::debug("policy: {}", result.toString());
  if (const policy::RuleResult* denial = decision.firstDenial()) {
    throw rewrite::JobRefused(action, job.script_path.empty() ? std::string("job") : job.script_path,
                              "refused by the site policy: " + denial->toString(),
                              "`kbatch policy explain` lists every rule that applies to this job");
  }
}

void enforceSitePolicyAtSubmission(const JobSpec& job) {
  policy::EvaluationContext context = policy::EvaluationContext::fromEnvironment();
  if (!context.pbs_o_workdir) {
    std::error_code error;
    auto cwd = std::filesystem::current_path(error);
    if (!error) context.pbs_o_workdir = cwd.string();
  }
  // A job submitted from inside another job must not be held to that job's allocation.
  context.allocation.reset();
  // As in `kbatch exec`: the working directory is the container's, the host paths are the binds.
  JobSpec checked = job;
  checked.workdir.reset();
  enforceSitePolicy(checked, context, "submit job");
}

}  // namespace kbatch::cli
