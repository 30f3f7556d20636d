#include "site_policy.h"

#include <optional>

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"

namespace kbatch::cli {

const policy::Policy& sitePolicy() {
  static const policy::Policy loaded = policy::loadSitePolicy();
  return loaded;
}

void enforceSitePolicy(const JobSpec& job, const policy::EvaluationContext& context,
                       const std::string& action) {
  const policy::Decision decision = policy::evaluate(sitePolicy(), job, context);
  for (const auto& result : decision.results) log::debug("policy: {}", result.toString());
  if (const policy::RuleResult* denial = decision.firstDenial()) {
    throw Error(action, job.script_path.empty() ? std::string("job") : job.script_path,
                "refused by the site policy: " + denial->toString(),
                "`kbatch policy explain` lists every rule that applies to this job");
  }
}

}  // namespace kbatch::cli
