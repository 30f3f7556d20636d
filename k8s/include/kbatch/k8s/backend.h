#pragma once
/// The Kubernetes backend of `kbatch exec --backend k8s`: one Pod per host of the batch job,
/// pinned to that host's node; its log followed into the job's stdout (and stderr where the
/// server splits streams); its exit code returned; the Pod deleted (with a uid precondition) when
/// the job ends, is cancelled (SIGTERM from qdel: the DELETE goes out at once) or fails.
/// Exit codes: the container's own, else kbatch/k8s/exit_codes.h; 128+N after signal N; 125
/// when the API refuses (one line naming the request and the server's reason).

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <functional>

#include "kbatch/k8s/api_client.h"
#include "kbatch/k8s/manifest.h"
#include "kbatch/k8s/settings.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::k8s {

struct RunPodOptions {
  int stdout_fd = 1;  ///< where the job's stdout goes (TORQUE's .o file)
  int stderr_fd = 2;  ///< where the job's stderr and kbatch's messages go
  /// The batch host(s) to run on; empty: the distinct hosts of job.hosts, else this host.
  std::vector<std::string> batch_hosts;
  /// Whom the Pod runs as; nullopt: the calling user (getuid/getgid).
  std::optional<PodIdentity> identity;
  /// Signals that cancel the job (the Pod is deleted at once). Empty: none are handled.
  std::vector<int> cancel_signals = {15, 2, 1};  // SIGTERM, SIGINT, SIGHUP
  /// When set, gives the Pods' image in place of job.image, and is called once the nodes are
  /// known: the caller may still be resolving the image (a tag to its digest) meanwhile.
  std::function<std::string()> image_for_pods;
};

/// Runs the job's Pod(s) to the end and returns the exit code for `kbatch exec`. Throws
/// kbatch::Error (exit code 125 or the code of exit_codes.h) when no Pod could be started.
int runPodForJob(const JobSpec& job, const K8sSettings& settings, const RunPodOptions& options = {});

/// The Kubernetes node of a batch host: the settings' mapping, else the node whose
/// `kubernetes.io/hostname` label equals the host name (or its short form, case-insensitively),
/// else a node of that name. Throws (exit code kNotScheduled) if there is none or it is not Ready.
std::string resolveNodeName(ApiClient& client, const std::string& batch_host,
                            const K8sSettings& settings);

/// The namespace the job's Pods live in (settings, else the kubeconfig context, else "default").
std::string effectiveNamespace(const K8sSettings& settings, const ClusterAccess& access);

/// The job id kbatch uses for a JobSpec: the batch job id, or for a run outside a batch job one
/// made from this host, process and time.
std::string effectiveJobId(const JobSpec& job);

/// The credentials the settings select (kubeconfig paths/context or in-cluster).
ClusterAccess loadAccessFor(const K8sSettings& settings);

}  // namespace kbatch::k8s
