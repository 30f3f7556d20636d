#pragma once
/// `kbatch k8s gc`: deletes the Pods kbatch created whose batch job no longer exists (for a cron
/// job or a TORQUE epilogue), the backstop for a kbatch that was killed before it could clean up.

#include <functional>
#include <string>
#include <vector>

#include "kbatch/k8s/api_client.h"

namespace kbatch::k8s {

enum class BatchJobState { kAlive, kGone };

/// Tells whether a batch job still exists. Throws kbatch::Error when it cannot tell (a Pod is
/// never deleted on a guess).
using BatchJobProbe = std::function<BatchJobState(const std::string& job_id)>;

/// Asks `qstat JOB_ID` (TORQUE, or Slurm's TORQUE wrapper): exit 0 with the job in state C
/// (completed) or no line for it, or "Unknown Job Id", means gone; exit 0 with the job listed
/// in another state means alive; anything else is an error.
BatchJobState probeJobWithQstat(const std::string& qstat, const std::string& job_id);

struct GcReport {
  std::vector<std::string> deleted;  ///< namespace/name (job id)
  std::vector<std::string> kept;
  std::vector<std::string> errors;   ///< one line per Pod that could not be decided or deleted
};

/// Lists the Pods labelled app.kubernetes.io/managed-by=kbatch in `namespace_name` (empty: all
/// namespaces), asks `probe` about each Pod's job (annotation kbatch.io/job-id) and deletes those
/// whose job is gone, with a uid precondition. A Pod of a run outside any batch job (id
/// `exec-...`) is deleted once it has ended.
GcReport collectGarbage(ApiClient& client, const std::string& namespace_name,
                        const BatchJobProbe& probe, bool dry_run);

}  // namespace kbatch::k8s
