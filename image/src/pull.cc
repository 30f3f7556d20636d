// Pulling images into the store: from a registry (OCI distribution API v2), an OCI image layout
// directory, or an OCI archive.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "digest.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/registry.h"
#include "layer_extract.h"
#include "manifest.h"
#include "progress.h"
#include "registry_client.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

// Downloads one blob into the store unless it is there already. Under the blob's lock, so that
// concurrent pulls of images sharing a layer download it once; the partial file is kept across
// crashes and resumed with a Range request. Returns true when bytes were downloaded.
bool fetchBlob(ImageStore& store, RegistryClient& client, const std::string& repository,
               const Descriptor& blob, TransferProgress& progress) {
  progress.startBlob(blob.digest, static_cast<std::uint64_t>(blob.size));
  if (store.hasBlob(blob.digest)) {
    progress.finishBlob("present");
    return false;
  }
  std::string hex = digestHex(blob.digest);
  FileLock lock(store.lockPath("blob-" + hex + ".lock"), FileLock::Mode::kExclusive);
  if (store.hasBlob(blob.digest)) {  // a concurrent pull finished it while we waited
    progress.finishBlob("present");
    return false;
  }
  fs::path partial = store.tempDirectory() / (hex + ".partial");
  UniqueFd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) throw Error("write blob", partial.string(), describeErrno(errno));
  auto expected = static_cast<std::uint64_t>(blob.size);
  Sha256 hasher;
  std::uint64_t have = 0;
  std::vector<char> buffer(1 << 20);
  for (;;) {  // hash what an interrupted pull left, leaving the offset at its end
    ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error("read partial blob", partial.string(), describeErrno(errno));
    if (got == 0) break;
    hasher.update(buffer.data(), static_cast<size_t>(got));
    have += static_cast<std::uint64_t>(got);
  }
  auto restart = [&] {
    if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0) {
      throw Error("restart download", partial.string(), describeErrno(errno));
    }
    hasher.reset();
    have = 0;
  };
  if (have > expected) restart();
  auto download = [&] {
    if (have >= expected && expected > 0) return;
    client.downloadBlob(repository, blob.digest, have, restart, [&](const char* data, size_t size) {
      if (have + size > expected) {
        throw Error("download blob", blob.digest,
                    "the registry sent more than the " + std::to_string(expected) +
                        " bytes the manifest declares");
      }
      for (size_t done = 0; done < size;) {
        ssize_t written = ::write(fd.get(), data + done, size - done);
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) throw Error("write blob", partial.string(), describeErrno(errno));
        done += static_cast<size_t>(written);
      }
      hasher.update(data, size);
      have += size;
      progress.updateBlob(have);
    });
  };
  bool resumed = have > 0;
  if (resumed) log::info("resuming download of {} at byte {}", blob.digest, have);
  // A resumed download that fails verification is fetched once more from zero: the partial file
  // a killed process left may itself be damaged (restart() also resets the hasher).
  download();
  std::string actual = hasher.finishDigest();
  if (resumed && (actual != blob.digest || have != expected)) {
    log::info("resumed download of {} does not verify; downloading it again", blob.digest);
    restart();
    download();
    actual = hasher.finishDigest();
  }
  if (actual != blob.digest || have != expected) {
    ::unlink(partial.c_str());
    throw Error("verify blob", blob.digest,
                "downloaded " + std::to_string(have) + " bytes hashing to " + actual +
                    "; the manifest declares " + std::to_string(expected) + " bytes",
                "the registry sent corrupt data; pull again");
  }
  if (::fsync(fd.get()) != 0) throw Error("fsync", partial.string(), describeErrno(errno));
  ::fchmod(fd.get(), 0444);
  fs::path target = store.blobPath(blob.digest);
  if (::rename(partial.c_str(), target.c_str()) != 0) {
    throw Error("store blob", target.string(), describeErrno(errno));
  }
  syncDirectory(target.parent_path());
  progress.finishBlob("downloaded");
  return true;
}

// Fetches a manifest (or index) by digest or tag, verifying it against the digest it was asked
// by. Returns {document, media type, digest}.
struct FetchedManifest {
  std::string document;
  std::string media_type;
  std::string digest;
};

FetchedManifest fetchManifest(ImageStore& store, RegistryClient& client,
                              const std::string& repository, const std::string& reference,
                              const std::string& origin) {
  FetchedManifest fetched;
  bool by_digest = isValidDigest(reference);
  if (by_digest && store.hasBlob(reference)) {
    fetched.document = store.readSmallBlob(reference);
    fetched.media_type = detectManifestMediaType(fetched.document, "", origin);
    fetched.digest = reference;
    return fetched;
  }
  HttpResponse response = client.getManifest(repository, reference);
  fetched.document = std::move(response.body);
  fetched.digest = sha256Digest(fetched.document);
  if (by_digest && fetched.digest != reference) {
    throw Error("verify manifest", origin,
                "the registry sent a manifest hashing to " + fetched.digest + ", not " + reference);
  }
  std::string announced = response.header("docker-content-digest");
  if (announced.rfind("sha256:", 0) == 0 && announced != fetched.digest) {
    throw Error("verify manifest", origin,
                "the manifest hashes to " + fetched.digest + " but the registry announced " + announced);
  }
  fetched.media_type =
      detectManifestMediaType(fetched.document, response.header("content-type"), origin);
  return fetched;
}

PullResult pullFromRegistry(ImageStore& store, const ImageReference& reference,
                            const PullOptions& options) {
  FileLock gc(store.gcLockPath(), FileLock::Mode::kShared);
  bool plain_http = allowPlainHttp(reference.registry, options.insecure, options.insecure_registries);
  RegistryClient client(reference.registry, plain_http,
                        loadCredentials(reference.registry, options.auth_file));
  std::string origin = reference.toString();
  const std::string& repository = reference.repository;
  FetchedManifest fetched = fetchManifest(store, client, repository,
                                          reference.digest.empty() ? reference.tag : reference.digest,
                                          origin);
  if (isIndexMediaType(fetched.media_type)) {
    store.putBlob(fetched.document, fetched.digest);
    ImageIndex index = parseImageIndex(fetched.document, origin);
    const Descriptor& chosen = choosePlatformManifest(index, currentPlatform(), origin);
    fetched = fetchManifest(store, client, repository, chosen.digest, origin + " (" + chosen.digest + ")");
    if (isIndexMediaType(fetched.media_type)) {
      throw Error("pull image", origin, "an image index points to another index; not supported");
    }
  }
  ImageManifest manifest = parseImageManifest(fetched.document, origin);
  store.putBlob(fetched.document, fetched.digest);

  PullResult result;
  TransferProgress progress("pull", origin, static_cast<int>(manifest.layers.size()) + 1, options.quiet);
  std::vector<const Descriptor*> blobs{&manifest.config};
  for (const auto& layer : manifest.layers) blobs.push_back(&layer);
  std::string source = reference.registry + "/" + repository;
  for (const Descriptor* blob : blobs) {
    if (fetchBlob(store, client, repository, *blob, progress)) {
      ++result.blobs_downloaded;
      result.bytes_downloaded += static_cast<std::uint64_t>(blob->size);
    } else {
      ++result.blobs_present;
    }
    store.noteBlobSource(blob->digest, source);
  }
  progress.finish();
  result.record = store.tag(reference.storeName(), fetched.digest, origin);
  if (options.unpack) result.rootfs = store.unpackedRoot(fetched.digest, options.unpack_options);
  return result;
}

std::string readLayoutIndex(const fs::path& layout, const std::string& origin) {
  std::error_code ec;
  if (!fs::is_regular_file(layout / "oci-layout", ec)) {
    throw Error("read OCI image layout", origin, "no oci-layout file in " + layout.string(),
                "give a directory written by `skopeo copy ... oci:DIR` or umoci", exit_code::kNotFound);
  }
  return readFileLimited(layout / "index.json", 4 << 20);
}

fs::path layoutBlob(const fs::path& layout, const Descriptor& descriptor) {
  return layout / "blobs" / "sha256" / digestHex(descriptor.digest);
}

PullResult importOciLayout(ImageStore& store, const fs::path& layout, const std::string& tag,
                           const std::string& store_name, const std::string& origin,
                           const PullOptions& options) {
  FileLock gc(store.gcLockPath(), FileLock::Mode::kShared);
  std::string index_document = readLayoutIndex(layout, origin);
  ImageIndex index = parseImageIndex(index_document, (layout / "index.json").string());
  const Descriptor* chosen = nullptr;
  std::string available;
  for (const auto& descriptor : index.manifests) {
    auto name = descriptor.annotations.find(kRefNameAnnotation);
    std::string ref_name = name == descriptor.annotations.end() ? "" : name->second;
    if (!available.empty()) available += ", ";
    available += ref_name.empty() ? descriptor.digest : ref_name;
    if (!tag.empty() && ref_name == tag) chosen = &descriptor;
  }
  if (tag.empty() && index.manifests.size() == 1) chosen = &index.manifests[0];
  if (chosen == nullptr) {
    throw Error("find image in OCI layout", origin,
                tag.empty() ? "the layout holds several images; name one with :TAG"
                            : "no image tagged '" + tag + "'",
                "the layout offers: " + (available.empty() ? std::string("nothing") : available),
                exit_code::kNotFound);
  }
  Descriptor manifest_descriptor = *chosen;
  while (isIndexMediaType(manifest_descriptor.media_type)) {
    store.importBlobFile(layoutBlob(layout, manifest_descriptor), manifest_descriptor.digest,
                         manifest_descriptor.size);
    ImageIndex nested = parseImageIndex(store.readSmallBlob(manifest_descriptor.digest), origin);
    manifest_descriptor = choosePlatformManifest(nested, currentPlatform(), origin);
  }
  store.importBlobFile(layoutBlob(layout, manifest_descriptor), manifest_descriptor.digest,
                       manifest_descriptor.size);
  ImageManifest manifest = parseImageManifest(store.readSmallBlob(manifest_descriptor.digest), origin);
  PullResult result;
  std::vector<const Descriptor*> blobs{&manifest.config};
  for (const auto& layer : manifest.layers) blobs.push_back(&layer);
  for (const Descriptor* blob : blobs) {
    if (store.hasBlob(blob->digest)) {
      ++result.blobs_present;
      continue;
    }
    store.importBlobFile(layoutBlob(layout, *blob), blob->digest, blob->size);
    ++result.blobs_downloaded;
    result.bytes_downloaded += static_cast<std::uint64_t>(blob->size);
  }
  result.record = store.tag(store_name, manifest_descriptor.digest, origin);
  if (options.unpack) {
    result.rootfs = store.unpackedRoot(manifest_descriptor.digest, options.unpack_options);
  }
  return result;
}

PullResult importOciArchive(ImageStore& store, const ImageReference& reference,
                            const PullOptions& options) {
  std::string origin = reference.toString();
  std::string temp_template = (store.tempDirectory() / "archive-XXXXXX").string();
  std::vector<char> temp_name(temp_template.begin(), temp_template.end());
  temp_name.push_back('\0');
  if (::mkdtemp(temp_name.data()) == nullptr) {
    throw Error("create temporary directory", temp_template, describeErrno(errno));
  }
  fs::path layout = temp_name.data();
  try {
    // The archive is untrusted input like any layer: the same safe extractor unpacks it.
    UniqueFd layout_fd(::open(layout.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ExtractStats stats;
    extractLayerFile(layout_fd.get(), reference.path, origin, extractLimitsFromEnvironment(), stats);
    PullResult result =
        importOciLayout(store, layout, reference.tag, reference.storeName(), origin, options);
    removeTree(layout);
    return result;
  } catch (...) {
    removeTree(layout);
    throw;
  }
}

}  // namespace

PullResult pullImage(ImageStore& store, const ImageReference& reference, const PullOptions& options) {
  try {
    switch (reference.transport) {
      case Transport::kDocker: return pullFromRegistry(store, reference, options);
      case Transport::kOciLayout:
        return importOciLayout(store, reference.path, reference.tag, reference.storeName(),
                               reference.toString(), options);
      case Transport::kOciArchive: return importOciArchive(store, reference, options);
      case Transport::kDirectory: {
        NewImageRequest request;
        request.layers.push_back(reference.path);
        request.tag = fs::absolute(reference.path).lexically_normal().string();
        request.source = "directory " + request.tag;
        PullResult result;
        result.record = store.createImage(request);
        if (options.unpack) {
          result.rootfs = store.unpackedRoot(result.record.manifest_digest, options.unpack_options);
        }
        return result;
      }
      case Transport::kStoreName: break;
    }
  } catch (Error& error) {
    error.addContext("pulling " + reference.toString());
    throw;
  }
  throw Error("pull image", reference.toString(), "not a pullable reference",
              "use docker://HOST/REPO[:TAG], oci:DIR[:TAG], oci-archive:FILE[:TAG] or a directory");
}

}  // namespace kbatch::image
