// The Kubernetes backend's side of full_only.h (runJobAsPod), linked into kbatch-k8s and
// kbatch-full.

#include "full_only.h"
#include "kbatch/k8s/api_client.h"
#include "pod_settings.h"
#include "site_policy.h"

namespace kbatch::cli {

int runJobAsPod(JobSpec job, const std::optional<std::string>& job_body) {
  const k8s::TlsWarmup warmup;  // overlaps TLS set-up with the policy and the kubeconfig
  const policy::Policy& site = sitePolicy();
  const policy::EvaluationContext context = policy::EvaluationContext::fromEnvironment();
  enforceSitePolicy(job, context, "run job");
  if (job_body) {
    // A Pod has no private file to hand over: the body travels as `SHELL -c BODY NAME`, which
    // keeps $0 as the job's name.
    const std::string shell = job.command.front();
    job.command = {shell, "-c", *job_body, job.name.value_or("kbatch-job")};
  }
  // The policy judged the image as the user named it; the Pod gets it pinned by digest.
  return runJobPods(job, site, sitePodSettings(site, context));
}

}  // namespace kbatch::cli
