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
  /// `--insecure`: plain HTTP, honoured only for hosts in `insecure_registries`.
  bool insecure = false;
  /// The site's insecure registries ("host:port"). Empty: $KBATCH_INSECURE_REGISTRIES (comma or
  /// space separated) until the lead wires the policy's site.insecure_registries here.
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
