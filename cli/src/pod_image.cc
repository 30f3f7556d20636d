#include "pod_image.h"

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/reference.h"
#include "kbatch/image/registry.h"

namespace kbatch::cli {
namespace {

constexpr std::string_view kDockerPrefix = "docker://";

std::string kubernetesName(const image::ImageReference& reference) {
  return reference.registry + "/" + reference.repository;
}

}  // namespace

std::string pinnedPodImage(const std::string& written, const policy::Policy& site) {
  std::string docker_text;
  if (written.rfind(kDockerPrefix, 0) == 0) {
    docker_text = written;
  } else if (image::namesRegistryHost(written)) {
    docker_text = std::string(kDockerPrefix) + written;
  } else {
    log::info("image {}: no registry host in the name, so its digest cannot be looked up here; "
              "the Pod names the tag, which the node's runtime resolves",
              written);
    return written;
  }
  const image::ImageReference reference = image::parseDockerReference(docker_text);
  if (!reference.digest.empty()) return kubernetesName(reference) + "@" + reference.digest;
  const std::string by_tag = kubernetesName(reference) + ":" + reference.tag;
  image::RegistryOptions options;
  options.insecure_registries = site.site.insecure_registries;
  options.insecure = image::choosePlainHttp(reference.registry, options.insecure_registries);
  options.quiet = true;
  try {
    const std::string digest = image::remoteManifestDigest(reference, options);
    log::debug("image {} pinned to {}", by_tag, digest);
    return kubernetesName(reference) + "@" + digest;
  } catch (const Error& error) {
    // Not a warning: the node's runtime may well reach a registry this batch host cannot, and
    // a job's error file is no place for it. `-v` shows it.
    log::info("cannot pin image {} to a digest ({}); the Pod names the tag, which may move",
              by_tag, error.oneLine());
    return by_tag;
  }
}

}  // namespace kbatch::cli
