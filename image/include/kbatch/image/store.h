#pragma once
/// The local content-addressed image store.
///
/// Layout below the store root ($KBATCH_CACHE, else $XDG_CACHE_HOME/kbatch, else ~/.cache/kbatch):
///   blobs/sha256/<hex>      manifests, configs and layers, verified against their digest on arrival
///   refs/<escaped name>     one small JSON file per tag: the manifest digest it names
///   roots/<hex>/rootfs      the unpacked root filesystem of image manifest <hex>, shared by all jobs
///   roots/<hex>/config.json the image config (env, entrypoint, working directory)
///   locks/, tmp/            flock files and in-progress downloads and unpacks
/// Every write is temp + fsync + rename; per-blob and per-root locks make N concurrent pulls of one
/// image download and unpack it once; a root only appears (by rename) once completely unpacked.
/// An optional read-only site cache with the same layout is consulted first for blobs and roots.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kbatch::image {

/// Parses a byte count: "123", "512M", "10G" (K, M, G, T are powers of 1024). Throws
/// kbatch::Error naming `field` on bad input.
std::uint64_t parseByteSize(const std::string& text, const std::string& field);

/// The store root from the environment (see above).
std::filesystem::path defaultStoreRoot();

/// A tag in the store.
struct ImageRecord {
  std::string name;             ///< e.g. "127.0.0.1:5000/team/app:1" or "oci:/abs/dir:tag"
  std::string manifest_digest;  ///< "sha256:..." of the image manifest (platform already chosen)
  std::string source;           ///< where it came from ("docker://...", "directory /x", ...)
  std::string created;          ///< when it was tagged, RFC 3339 UTC
  std::uint64_t size = 0;       ///< config + layer bytes as stored (compressed)
  bool from_site_cache = false; ///< found in the read-only site cache
};

/// The runtime settings of an image config that a runner applies.
struct ImageConfigSettings {
  std::vector<std::string> env;         ///< "KEY=VALUE"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::map<std::string, std::string> labels;
};

/// Input of ImageStore::createImage: layers applied in order, each a directory (packed as a gzip
/// tar layer owned by root) or a tar file (.tar, or gzip/zstd-compressed tar, stored as is).
struct NewImageRequest {
  std::vector<std::filesystem::path> layers;
  ImageConfigSettings config;
  std::string tag;     ///< store name to give the image; empty: untagged (reachable by digest)
  std::string source;  ///< recorded in the tag ("kbatch build ...")
};

/// What prune removed.
struct PruneReport {
  std::uint64_t blobs_removed = 0;
  std::uint64_t roots_removed = 0;
  std::uint64_t temporaries_removed = 0;
  std::uint64_t bytes_freed = 0;
  std::uint64_t roots_in_use = 0;  ///< untagged roots kept because a running job uses them
};

struct UnpackOptions {
  std::uint64_t max_unpacked_bytes = 0;  ///< 0: $KBATCH_MAX_UNPACKED_BYTES or the 32 GiB default
};

class ImageStore {
 public:
  /// Opens (creating if needed) the store at `root`; `site_cache` (may be empty) is a read-only
  /// store with the same layout, consulted before the local one for blobs and unpacked roots.
  explicit ImageStore(std::filesystem::path root, std::filesystem::path site_cache = {});

  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& siteCache() const { return site_cache_; }

  /// Path of a stored blob (site cache first), if present.
  std::optional<std::filesystem::path> findBlob(const std::string& digest) const;
  bool hasBlob(const std::string& digest) const { return findBlob(digest).has_value(); }
  /// Reads a small blob (manifest, config), verifying its digest again. Throws when missing.
  std::string readSmallBlob(const std::string& digest) const;
  /// Stores bytes; when `expected_digest` is given the content must hash to it. Returns the digest.
  std::string putBlob(std::string_view content, const std::string& expected_digest = {});
  /// Copies a file into the store, verifying it against `expected_digest` (and `expected_size`
  /// when >= 0). Returns the stored path.
  std::filesystem::path importBlobFile(const std::filesystem::path& file,
                                       const std::string& expected_digest,
                                       std::int64_t expected_size = -1);

  /// Creates an image from layer directories/tarballs and a config, stores it and tags it.
  ImageRecord createImage(const NewImageRequest& request);

  /// Looks up a store name ("host/repo:tag", "oci:/dir:tag", ...) or a manifest digest
  /// ("sha256:<hex>" or an unambiguous prefix of at least 12 hex digits).
  std::optional<ImageRecord> lookup(const std::string& name_or_digest) const;
  /// Points `name` at `manifest_digest` (which must be stored), replacing any previous target.
  ImageRecord tag(const std::string& name, const std::string& manifest_digest,
                  const std::string& source);
  /// Removes a tag; returns false if it did not exist. The unpacked root is removed too when no
  /// other tag names the same manifest (blobs are left to prune).
  bool removeTag(const std::string& name);
  /// All tags, local and site cache, sorted by name.
  std::vector<ImageRecord> listImages() const;

  /// The unpacked root filesystem of an image manifest, unpacking it first if needed (once, under
  /// a lock, into a temporary directory renamed into place when complete).
  std::filesystem::path unpackedRoot(const std::string& manifest_digest,
                                     const UnpackOptions& options = {});
  /// The unpacked root if it exists already (no unpacking).
  std::optional<std::filesystem::path> findUnpackedRoot(const std::string& manifest_digest) const;
  /// The runtime settings from the image's config.
  ImageConfigSettings imageConfig(const std::string& manifest_digest) const;

  /// Removes blobs and roots no tag reaches, and leftovers of interrupted pulls and unpacks.
  /// Waits for running pulls, pushes and unpacks of this store to finish first. A root that a
  /// running job uses (useRootUntilExit) is kept until a prune after the job.
  PruneReport prune();

  /// Marks the root of `manifest_digest` as used by this process until it exits (a shared lock
  /// on locks/use-<hex>.lock, closed on exec): prune and rmi leave it alone meanwhile. Call it
  /// before looking the root up, so that a prune cannot remove it in between.
  void useRootUntilExit(const std::string& manifest_digest);

  /// Records that `digest` exists in registry repository `host/repo` (used to offer
  /// cross-repository mounts on push); `sources` returns what was recorded.
  void noteBlobSource(const std::string& digest, const std::string& host_and_repository);
  std::vector<std::string> blobSources(const std::string& digest) const;

  /// Internal plumbing for pull, push and import (private headers, not for other modules).
  std::filesystem::path blobPath(const std::string& digest) const;
  std::filesystem::path tempDirectory() const { return root_ / "tmp"; }
  std::filesystem::path lockPath(const std::string& name) const { return root_ / "locks" / name; }
  /// Shared lock held by every operation that adds to the store; prune takes it exclusively.
  std::filesystem::path gcLockPath() const { return lockPath("gc.lock"); }

  /// Makes `prepared_root` (a directory on the store's file system, e.g. under tempDirectory())
  /// the unpacked root of `manifest_digest`, by rename, so that an image built from a directory
  /// is not unpacked again from its own layers. The caller guarantees that the directory holds
  /// what the image's layers unpack to. Returns the published root; when another process
  /// published or unpacked one first, that one is returned and `prepared_root` is removed.
  std::filesystem::path adoptUnpackedRoot(const std::string& manifest_digest,
                                          const std::filesystem::path& prepared_root);

 private:
  std::optional<ImageRecord> readRef(const std::filesystem::path& refs_dir,
                                     const std::string& name, bool site) const;
  std::filesystem::path root_;
  std::filesystem::path site_cache_;
};

}  // namespace kbatch::image
