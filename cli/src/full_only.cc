// kbatch-full's side of full_only.h for images: the heavy subsystems themselves (the Kubernetes
// backend is pod_backend.cc, which kbatch-k8s links too).

#include "full_only.h"

#include "kbatch/common/log.h"

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

// kbatch-full is the end of the line: it never hands over, so it needs nothing kept.
void rememberConsumedStdin(std::string) {}

}  // namespace kbatch::cli
