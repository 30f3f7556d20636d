// The digest of an image's manifest in its registry, without pulling it: what the Kubernetes
// backend pins a Pod's image to. In a file of its own so that an executable needing only this
// (kbatch-k8s) does not link the pull and unpack code, and with it libarchive.

#include "auth.h"
#include "digest.h"
#include "kbatch/common/error.h"
#include "kbatch/image/registry.h"
#include "registry_client.h"

namespace kbatch::image {

std::string remoteManifestDigest(const ImageReference& reference, const RegistryOptions& options) {
  if (reference.transport != Transport::kDocker) {
    throw Error("look up manifest digest", reference.toString(), "not a registry reference",
                "give docker://HOST[:PORT]/REPO[:TAG]");
  }
  const std::string origin = reference.toString();
  const bool plain_http =
      allowPlainHttp(reference.registry, options.insecure, options.insecure_registries);
  RegistryClient client(reference.registry, plain_http,
                        loadCredentials(reference.registry, options.auth_file));
  const std::string asked = reference.digest.empty() ? reference.tag : reference.digest;
  HttpResponse response = client.getManifest(reference.repository, asked);
  const std::string digest = sha256Digest(response.body);
  if (!reference.digest.empty() && digest != reference.digest) {
    throw Error("verify manifest", origin,
                "the registry sent a manifest hashing to " + digest + ", not " + reference.digest);
  }
  const std::string announced = response.header("docker-content-digest");
  if (announced.rfind("sha256:", 0) == 0 && announced != digest) {
    throw Error("verify manifest", origin,
                "the manifest hashes to " + digest + " but the registry announced " + announced);
  }
  return digest;
}

}  // namespace kbatch::image
