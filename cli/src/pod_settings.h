#pragma once
/// The site's settings for a job's Pod (policy `kubernetes:` section), shared by every command
/// that makes a Pod or shows one: `kbatch exec --backend k8s`, `kbatch k8s run` and
/// `kbatch manifest` build the same Pod for the same job.

#include <optional>
#include <string>

#include "kbatch/k8s/settings.h"
#include "kbatch/rewrite/job_spec.h"
#include "kbatch/policy/policy.h"

namespace kbatch::cli {

/// The namespace (per user or group), service account, node-name map, claims and seccomp
/// profile the policy gives the caller's Pods, or those of the account `as_user` names
/// (`kbatch manifest --as-user`). Throws kbatch::Error when the namespace is ambiguous.
k8s::K8sSettings sitePodSettings(const policy::Policy& site,
                                 const policy::EvaluationContext& context,
                                 const std::optional<std::string>& as_user = std::nullopt);

/// Runs the job's Pod(s) to the end and returns the exit code. The image is pinned to its digest
/// (pinnedPodImage) while the nodes are looked up: both are a round trip. Without a working or
/// submission directory, the Pod starts in the current directory if a claim carries it.
int runJobPods(const JobSpec& job, const policy::Policy& site, const k8s::K8sSettings& settings);

}  // namespace kbatch::cli
