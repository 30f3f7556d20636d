#pragma once
/// The site policy as the commands that start jobs apply it: loaded once per process, evaluated for
/// the job, and the job refused with the first rule that denies it (file:line).

#include <string>

#include "kbatch/policy/policy.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::cli {

/// /etc/kbatch/policy.yaml (or the built-in default), with any tightening overlay; loaded once.
const policy::Policy& sitePolicy();

/// Evaluates the job; throws kbatch::Error (exit 125) naming the first denying rule and where it
/// is written. `action` says what was refused ("run job", "submit job").
void enforceSitePolicy(const JobSpec& job, const policy::EvaluationContext& context,
                       const std::string& action);

}  // namespace kbatch::cli
