#pragma once
/// The job's environment and batch context inside the container, as apptainer passes them: the
/// caller's environment goes in (minus what would break or subvert the image's own dynamic
/// linker), `--cleanenv` keeps only a minimal set, and `--env K=V` wins over both.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/rewrite/job_spec.h"

namespace kbatch::runner {

/// Default PATH when the caller has none (the one apptainer and Debian use).
inline constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Parses `environ`-style "K=V" entries into a map (later entries win; entries without '=' are
/// ignored, as getenv would never see them).
std::map<std::string, std::string> environmentFromEntries(const std::vector<std::string>& entries);

/// This process's environment as a map.
std::map<std::string, std::string> currentEnvironment();

/// The job's environment as "K=V" entries, sorted by name. Without clean_env every caller variable
/// passes except LD_PRELOAD, LD_LIBRARY_PATH and LD_AUDIT (host library paths mean nothing in the
/// image and would load host code into it). With clean_env only PATH, HOME, USER, TERM, LANG and
/// the PBS_* / SLURM_* variables pass. Then `overrides` (--env, #KBATCH --env) are applied.
/// PATH falls back to kDefaultPath. Throws kbatch::Error for an invalid override name.
std::vector<std::string> buildJobEnvironment(
    const std::map<std::string, std::string>& caller_environment, bool clean_env,
    const std::vector<std::pair<std::string, std::string>>& overrides);

/// Parses `--env K=V`; throws kbatch::Error naming the argument when K is not a valid name.
std::pair<std::string, std::string> parseEnvAssignment(std::string_view assignment);

/// Fills the batch-context fields of `job` (job_id, array_index, submit_dir, hosts, user, name,
/// resources.ppn) from a TORQUE/PBS or Slurm job's environment, leaving fields already set alone.
/// hosts come from the PBS_NODEFILE file (one line per slot) or SLURM_JOB_NODELIST (expanded).
void fillBatchContext(JobSpec& job, const std::map<std::string, std::string>& environment);

/// Expands a Slurm host list, e.g. "n[1-3,07],gpu01" -> n1 n2 n3 n07 gpu01. Throws kbatch::Error
/// on an unbalanced bracket or a bad range.
std::vector<std::string> expandSlurmHostList(std::string_view list);

}  // namespace kbatch::runner
