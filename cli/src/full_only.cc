// kbatch-full's side of full_only.h: the heavy subsystems themselves.

#include "full_only.h"

#include "kbatch/common/log.h"
#include "pod_settings.h"
#include "site_policy.h"

namespace kbatch::cli {

std::filesystem::path fetchImageRoot(const std::string& reference,
                                     const image::ResolveOptions& options) {
  return image::resolveImageRoot(reference, options);
}

std::filesystem::path dependencyImageRoot(const std::optional<std::string>& pinned,
                                          const image::DependencyImageRequest& request,
                                          const image::DependencyLookupOptions& lookup) {
  log::info("building (or reusing) the dependency image for {}",
            request.binary ? request.binary->string() : request.shell.string());
  return image::findOrBuildDependencyImage(pinned, request, lookup).rootfs;
}

int runJobAsPod(JobSpec job, const std::optional<std::string>& job_body) {
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

// kbatch-full is the end of the line: it never hands over, so it needs nothing kept.
void rememberConsumedStdin(std::string) {}

}  // namespace kbatch::cli
