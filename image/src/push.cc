// Pushing an image from the store to a registry: blobs the registry has are skipped (HEAD), blobs
// known to exist in another repository of the same registry are mounted, the rest uploaded
// (monolithic PUT, or PATCH chunks for large blobs), then the manifest is PUT unchanged so that
// its digest stays the same.

#include <cstdlib>

#include "digest.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/image/registry.h"
#include "layer_extract.h"
#include "manifest.h"
#include "progress.h"
#include "registry_client.h"

namespace kbatch::image {
namespace {

// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
constexpr std::uint64_t kDefaultChunkBytes = 64ULL << 20;

std::uint64_t uploadChunkBytes() {
  if (const char* value = std::getenv("KBATCH_UPLOAD_CHUNK_BYTES"); value != nullptr && *value) {
    std::uint64_t bytes = parseByteSize(value, "KBATCH_UPLOAD_CHUNK_BYTES");
    if (bytes > 0) return bytes;
  }
  return kDefaultChunkBytes;
}

std::string resolveSourceManifest(ImageStore& store, const std::string& source,
                                  const RegistryOptions& options) {
  ImageReference reference = parseImageReference(source);
  if (reference.transport == Transport::kStoreName || reference.transport == Transport::kDocker) {
    if (auto record = store.lookup(reference.transport == Transport::kDocker ? reference.storeName()
                                                                            : source)) {
      return record->manifest_digest;
    }
    if (reference.transport == Transport::kStoreName) {
      throw Error("find image", source, "not in the image store " + store.root().string(),
                  "`kbatch images` lists the store; give a directory, oci:DIR or docker:// reference",
                  exit_code::kNotFound);
    }
  }
  PullOptions pull_options;
  static_cast<RegistryOptions&>(pull_options) = options;
  pull_options.unpack = false;
  return pullImage(store, reference, pull_options).record.manifest_digest;
}

}  // namespace

PushResult pushImage(ImageStore& store, const std::string& source, const ImageReference& destination,
                     const RegistryOptions& options) {
  if (destination.transport != Transport::kDocker) {
    throw Error("push image", destination.toString(), "the destination must be a docker:// reference",
                "write docker://HOST[:PORT]/REPOSITORY[:TAG]");
  }
  std::string origin = destination.toString();
  try {
    PushResult result;
    result.manifest_digest = resolveSourceManifest(store, source, options);
    if (!destination.digest.empty() && destination.digest != result.manifest_digest) {
      throw Error("push image", origin,
                  "the image's manifest is " + result.manifest_digest + ", not the digest named");
    }
    std::string document = store.readSmallBlob(result.manifest_digest);
    ImageManifest manifest = parseImageManifest(document, result.manifest_digest);
    bool plain_http =
        allowPlainHttp(destination.registry, options.insecure, options.insecure_registries);
    RegistryClient client(destination.registry, plain_http,
                          loadCredentials(destination.registry, options.auth_file));
    const std::string& repository = destination.repository;
    std::string here = destination.registry + "/" + repository;
    std::uint64_t chunk_bytes = uploadChunkBytes();

    std::vector<const Descriptor*> blobs;
    for (const auto& layer : manifest.layers) blobs.push_back(&layer);
    blobs.push_back(&manifest.config);
    TransferProgress progress("push", origin, static_cast<int>(blobs.size()), options.quiet);
    for (const Descriptor* blob : blobs) {
      progress.startBlob(blob->digest, static_cast<std::uint64_t>(blob->size));
      if (client.hasBlob(repository, blob->digest)) {
        ++result.blobs_skipped;
        progress.finishBlob("exists");
        store.noteBlobSource(blob->digest, here);
        continue;
      }
      auto path = store.findBlob(blob->digest);
      if (!path) {
        throw Error("push blob", blob->digest, "not in the image store", "pull the image again",
                    exit_code::kNotFound);
      }
      // A repository of the same registry known to hold the blob can lend it (cross-repository
      // mount); a registry that declines simply opens a normal upload.
      std::string mount_from;
      for (const auto& known : store.blobSources(blob->digest)) {
        if (known.rfind(destination.registry + "/", 0) == 0 && known != here) {
          mount_from = known.substr(destination.registry.size() + 1);
          break;
        }
      }
      bool mounted = false;
      std::string upload_url = client.startUpload(repository, blob->digest, mount_from, &mounted);
      if (mounted) {
        ++result.blobs_mounted;
        progress.finishBlob("mounted");
      } else {
        client.uploadBlob(repository, upload_url, *path, blob->digest, chunk_bytes,
                          [&](std::uint64_t sent) { progress.updateBlob(sent); });
        ++result.blobs_uploaded;
        result.bytes_uploaded += static_cast<std::uint64_t>(blob->size);
        progress.updateBlob(static_cast<std::uint64_t>(blob->size));
        progress.finishBlob("uploaded");
      }
      store.noteBlobSource(blob->digest, here);
    }
    std::string reference = destination.tag.empty() ? result.manifest_digest : destination.tag;
    std::string announced = client.putManifest(repository, reference, document, manifest.media_type);
    if (announced.rfind("sha256:", 0) == 0 && announced != result.manifest_digest) {
      throw Error("push manifest", origin,
                  "the registry stored it as " + announced + ", not " + result.manifest_digest);
    }
    progress.finish();
    return result;
  } catch (Error& error) {
    error.addContext("pushing " + source + " to " + origin);
    throw;
  }
}

}  // namespace kbatch::image
