#include "pod_settings.h"

#include <filesystem>
#include <optional>
#include <future>
#include <string>
#include <system_error>
#include <vector>

#include "kbatch/k8s/backend.h"
#include "kbatch/k8s/manifest.h"
#include "pod_image.h"

namespace kbatch::cli {

k8s::K8sSettings sitePodSettings(const policy::Policy& site,
                                 const policy::EvaluationContext& context,
                                 const std::optional<std::string>& as_user) {
  k8s::K8sSettings settings;
  // The job's groups matter only to a site that maps groups to namespaces.
  const std::string& user = as_user ? *as_user : context.user;
  policy::GroupMembership groups;
  if (!site.kubernetes.group_namespaces.empty()) {
    groups = as_user ? policy::groupsOfUser(*as_user) : policy::callerGroups();
  }
  settings.namespace_name = site.kubernetes.namespaceFor(user, groups);
  settings.service_account = site.kubernetes.service_account;
  settings.node_names = site.kubernetes.node_names;
  settings.volumes = site.kubernetes.volumes;
  if (!site.kubernetes.seccomp_localhost_profile.empty()) {
    settings.seccomp_localhost_profile = site.kubernetes.seccomp_localhost_profile;
  }
  return settings;
}

int runJobPods(const JobSpec& job_in, const policy::Policy& site,
               const k8s::K8sSettings& settings) {
  JobSpec job = job_in;
  if (!job.workdir && !job.submit_dir) {
    // Outside a batch job, the Pod starts where the local backend would: in the current
    // directory, when a claim carries it into the Pod.
    std::error_code ec;
    const std::string cwd = std::filesystem::current_path(ec).string();
    if (!ec && k8s::claimCarriesHostPath(settings, cwd)) job.workdir = cwd;
  }
  k8s::RunPodOptions options;
  std::future<std::string> pinned;
  if (job.image) {
    pinned = std::async(std::launch::async, [written = *job.image, &site] {
      k8s::blockSignalsInThisThread();
      return pinnedPodImage(written, site);
    });
    options.image_for_pods = [&pinned] { return pinned.get(); };
  }
  return k8s::runPodForJob(job, settings, options);
}

}  // namespace kbatch::cli
