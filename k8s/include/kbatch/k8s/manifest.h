#pragma once
/// The Pod for a batch job: pinned to the batch host's node, labelled with the job id, and always
/// within Pod Security "restricted" (non-root as the job owner, no privilege escalation, all
/// capabilities dropped, seccomp, read-only root with an emptyDir /tmp, host directories only
/// through PersistentVolumeClaims; never privileged, hostPath or host namespaces).

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

#include "kbatch/k8s/settings.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::k8s {

inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "kbatch";
inline constexpr const char* kJobIdLabel = "kbatch.io/job-id";
inline constexpr const char* kJobIdAnnotation = "kbatch.io/job-id";
inline constexpr const char* kUserAnnotation = "kbatch.io/user";
inline constexpr const char* kJobNameAnnotation = "kbatch.io/job-name";
inline constexpr const char* kArrayIndexAnnotation = "kbatch.io/array-index";
inline constexpr const char* kBatchHostAnnotation = "kbatch.io/batch-host";
inline constexpr const char* kContainerName = "job";

/// Where the Pod goes: one Pod per host of the job.
struct PodPlacement {
  std::string node_name;   ///< the Kubernetes node (nodeName)
  std::string batch_host;  ///< the batch system's name of that host
  int host_index = 0;
  int host_count = 1;
};

/// Whom the Pod runs as: the job owner.
struct PodIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
};

/// True when one of settings.volumes' claims carries `host_path` into a Pod (the claim whose
/// prefix is the longest one containing it, as the manifest's mounts use).
bool claimCarriesHostPath(const K8sSettings& settings, const std::string& host_path);

/// DNS-1123 label (<= 63 characters) naming the job's Pod, e.g. `123[4].head.domain` ->
/// `kbatch-123-4-head-domain` (with `-h<index>` for a multi-host job). Too long an id is cut and
/// given a hash suffix so that different ids keep different names.
std::string podNameForJob(const std::string& job_id, int host_index, int host_count);

/// A label value (<= 63 characters, alphanumeric at both ends) standing for the job id.
std::string labelValueForJobId(const std::string& job_id);

/// Builds the Pod. Throws kbatch::Error naming the JobSpec field that cannot be expressed (no
/// image, no command, a host path no PersistentVolumeClaim maps, a root owner).
nlohmann::ordered_json buildPodManifest(const JobSpec& job, const PodPlacement& placement,
                                        const PodIdentity& identity,
                                        const K8sSettings& settings,
                                        const std::string& namespace_name);

/// YAML text of a JSON value (strings that YAML would read as numbers or booleans are quoted).
std::string toYaml(const nlohmann::ordered_json& value);

}  // namespace kbatch::k8s
