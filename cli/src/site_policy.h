#pragma once
/// The site policy as the commands that start or submit jobs apply it: loaded once per process,
/// evaluated for the job, and the job refused with the first rule that denies it (file:line).

#include <string>

#include "kbatch/policy/policy.h"
#include "kbatch/rewrite/detect.h"
#include "kbatch/rewrite/job_spec.h"
#include "kbatch/rewrite/submit.h"

namespace kbatch::cli {

/// /etc/kbatch/policy.yaml (or the built-in default), with any tightening overlay; loaded once.
/// Defined by site_policy_load.cc, or by the front end (exec_main.cc).
const policy::Policy& sitePolicy();

/// Evaluates the job; throws rewrite::JobRefused (a kbatch::Error, exit 125) whose one line holds
/// "refused by the site policy: " and the first denying rule with its file:line. `action` says
/// what was refused ("run job", "submit job").
void enforceSitePolicy(const JobSpec& job, const policy::EvaluationContext& context,
                       const std::string& action);

/// The check `kbatch submit-filter` and `kbatch qsub` run on a job that needs a container, with the
/// submitting user's context: the job's directory is the current one (qsub's PBS_O_WORKDIR), and
/// no batch allocation exists yet. Decides as `kbatch exec` will on the compute node.
void enforceSitePolicyAtSubmission(const JobSpec& job);


}  // namespace kbatch::cli
