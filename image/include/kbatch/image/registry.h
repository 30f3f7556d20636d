#pragma once
/// Moving images between the store and their sources: registry pull and push (OCI distribution
/// API v2), import of OCI layouts, OCI archives and plain root filesystem directories.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kbatch/image/reference.h"
#include "kbatch/image/store.h"

namespace kbatch::image {

struct RegistryOptions {
  /// `--insecure`: plain HTTP, honoured only for loopback hosts and `insecure_registries`.
  bool insecure = false;
  /// The site's insecure registries ("host:port"), from the policy's site.insecure_registries.
  std::vector<std::string> insecure_registries;
  /// Credentials file; empty: $REGISTRY_AUTH_FILE, else ~/.docker/config.json.
  std::filesystem::path auth_file;
  bool quiet = false;  ///< no progress output
};

struct PullOptions : RegistryOptions {
  bool unpack = true;  ///< also unpack the root filesystem
  UnpackOptions unpack_options;
};

struct PullResult {
  ImageRecord record;
  std::filesystem::path rootfs;        ///< empty when !unpack
  int blobs_downloaded = 0;
  int blobs_present = 0;               ///< already in the store (or site cache)
  std::uint64_t bytes_downloaded = 0;
};

/// Pulls `reference` (docker://, oci:, oci-archive: or a directory) into the store and tags it
/// with reference.storeName(). Only missing blobs are transferred; an interrupted download is
/// resumed from its partial file.
PullResult pullImage(ImageStore& store, const ImageReference& reference, const PullOptions& options);

/// Whether `--insecure` may reach `registry` ("host[:port]") over plain HTTP: a loopback host, or
/// one the site lists (`site_list`, the policy's site.insecure_registries).
bool plainHttpPermitted(const std::string& registry, const std::vector<std::string>& site_list);

/// Whether a pull nobody asked `--insecure` for (exec's on-demand pull, dependency image lookups,
/// Pod image pinning) uses plain HTTP: only for a registry plainHttpPermitted allows that does not
/// complete a TLS handshake. A loopback or site-listed registry that speaks TLS gets TLS, and one
/// whose certificate is not trusted fails with that error instead of dropping to plain HTTP.
bool choosePlainHttp(const std::string& registry, const std::vector<std::string>& site_list);

/// The digest of the manifest (or image index) a registry serves for `reference`'s tag, verified
/// against its body; nothing is stored. What a Kubernetes Pod pins its image to.
std::string remoteManifestDigest(const ImageReference& reference, const RegistryOptions& options);

struct PushResult {
  std::string manifest_digest;
  int blobs_uploaded = 0;
  int blobs_skipped = 0;  ///< the registry had them (HEAD)
  int blobs_mounted = 0;  ///< cross-repository mount
  std::uint64_t bytes_uploaded = 0;
};

/// Pushes a local image (a store name or digest, oci:, oci-archive:, or a root filesystem
/// directory, which becomes a one-layer image) to `destination` (docker://).
PushResult pushImage(ImageStore& store, const std::string& source, const ImageReference& destination,
                     const RegistryOptions& options);

}  // namespace kbatch::image
