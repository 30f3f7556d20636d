#pragma once
/// Dependency images (the paper's `-B binary`): an OCI image holding what a job's binary needs to
/// run, built from the binary's resolved libraries. `kbatch build --from-binary` builds one;
/// `kbatch qsub`/the submit filter build it once at submission (through `kbatch build --json`)
/// and pin its digest in the rewritten script; `kbatch exec --image REF@DIGEST --from-binary BIN`
/// finds it with locateDependencyImage() and builds only as the last resort.
///
/// Images live in the image store (store.h) as ordinary OCI images: a base layer shared by every
/// image of one base (`packages`: the mmdebstrap minbase of this machine's apt sources; `closure`:
/// none, or the `--base` image's own layers) and one layer with the job's dependencies. Each is
/// tagged `kbatch-deps:<key>`, where the key is a hash of the resolved inputs (strategy, base,
/// package names and versions, library paths and contents), so a second request with the same
/// needs finds the tag and reuses the image without building. Builds run unprivileged, under a
/// per-key lock, in the store's tmp directory; the root filesystem they produce is adopted as the
/// image's unpacked root, so a fresh build is never unpacked again.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kbatch::image {

enum class DependencyStrategy {
  kClosure,   ///< copy the resolved libraries from this host (no network, seconds)
  kPackages,  ///< install the owning distribution packages into a base root filesystem
  kAuto,      ///< packages when every library maps to a package, else closure
};
const char* toString(DependencyStrategy strategy);
/// Parses "closure", "packages", "auto"; throws kbatch::Error naming `field` otherwise.
DependencyStrategy parseDependencyStrategy(const std::string& text, const std::string& field);

/// The store name prefix of dependency images: "kbatch-deps:<key>".
inline constexpr const char* kDependencyImageRepository = "kbatch-deps";

struct DependencyImageRequest {
  std::optional<std::filesystem::path> binary;  ///< the job's binary (`-B`); may be absent
  std::filesystem::path shell = "/bin/sh";      ///< the job script's shell, always included
  std::vector<std::filesystem::path> extra_paths;  ///< `--extra`: files, directories, tools
  DependencyStrategy strategy = DependencyStrategy::kClosure;
  std::optional<std::string> ld_library_path;   ///< the job's LD_LIBRARY_PATH
  std::vector<std::filesystem::path> plugin_dirs;  ///< dlopen plugin directories
  /// A base image (any reference resolveImageRoot() accepts) whose layers come first; nullopt:
  /// `packages` builds the minbase root with mmdebstrap from this machine's apt sources,
  /// `closure` has no base layer.
  std::optional<std::string> base;
  /// The image store (default: defaultStoreRoot()).
  std::optional<std::filesystem::path> cache_dir;
  /// The apt Contents indexes for libraries this host lacks (packages/auto); empty: found with
  /// findAptContentsIndexes().
  std::vector<std::filesystem::path> contents_indexes;
  bool quiet = false;  ///< no progress messages
};

/// What a build produced.
struct DependencyImage {
  std::filesystem::path rootfs;    ///< the image's unpacked root in the store (read-only)
  std::string key;                 ///< hex sha256 of the resolved inputs
  std::string manifest_digest;     ///< "sha256:..." of the OCI image manifest in the store
  std::string store_name;          ///< "kbatch-deps:<key>"
  std::size_t layers = 0;          ///< number of layers (base layers + 1)
  DependencyStrategy strategy = DependencyStrategy::kClosure;  ///< the strategy actually used
  bool reused = false;             ///< found in the store, nothing was built
  std::vector<std::string> packages;  ///< `packages`/`auto`: the packages installed
};

/// Builds (or finds in the store) the image for `request`. Throws kbatch::Error when a library
/// cannot be resolved (with the list of missing names), when a path cannot be read, or when the
/// packages strategy cannot run (naming the tool and its error).
DependencyImage buildDependencyImageDetailed(const DependencyImageRequest& request);

/// The root filesystem directory of buildDependencyImageDetailed(request).
std::filesystem::path buildDependencyImage(const DependencyImageRequest& request);

/// The warm path without resolving or hashing anything: the image buildDependencyImageDetailed()
/// last found or built for this same request, as long as no path its answer depended on changed
/// since (lstat: device, inode, size, mtime, ctime) and the image is still in the store. nullopt:
/// ask buildDependencyImageDetailed(). Only closure requests without --base, --extra or plugin
/// directories are remembered. Needs no libelf, libcrypto or libarchive, so the lean `kbatch`
/// runs a cached dependency image itself.
std::optional<std::filesystem::path> findRememberedDependencyImage(
    const DependencyImageRequest& request);

/// The store in use: `$KBATCH_CACHE`, `$XDG_CACHE_HOME/kbatch` or `~/.cache/kbatch`.
std::filesystem::path dependencyCacheRoot();

// --- Finding a pinned dependency image on a compute node ---------------------------------------

/// Where locateDependencyImage() found the image.
enum class DependencyImageOrigin { kLocalStore, kSiteCache, kRegistry, kBuilt };
const char* toString(DependencyImageOrigin origin);

/// "REF@sha256:<hex>" taken apart: `reference` is "docker://HOST/REPO[:TAG]" or a store name.
struct PinnedImage {
  std::string reference;
  std::string digest;  ///< "sha256:<64 hex>"
};
/// Parses "REF@sha256:<hex>"; throws kbatch::Error naming `field` when there is no valid digest
/// (a dependency image is found by content, never by a tag that may move).
PinnedImage parsePinnedImage(const std::string& text, const std::string& field);

/// The places a pinned image may be, in the order locateDependencyImage() asks them. Each returns
/// the unpacked root, or nullopt when the image is not there (errors other than "not there" are
/// thrown). A seam so tests can check the order with fakes.
class DependencyImageSources {
 public:
  virtual ~DependencyImageSources() = default;
  virtual std::optional<std::filesystem::path> findInLocalStore(const PinnedImage& image) = 0;
  virtual std::optional<std::filesystem::path> findInSiteCache(const PinnedImage& image) = 0;
  virtual std::optional<std::filesystem::path> pullFromRegistry(const PinnedImage& image) = 0;
  virtual std::filesystem::path build(const DependencyImageRequest& request) = 0;
};

struct LocatedDependencyImage {
  std::filesystem::path rootfs;
  DependencyImageOrigin origin = DependencyImageOrigin::kBuilt;
};

/// The local store, then the site cache, then the registry (only for a docker:// reference),
/// then a build from `fallback` (also when `pinned` is nullopt). A source that fails (a registry
/// that cannot be reached, a damaged cache) is logged as a warning and the next one is asked.
LocatedDependencyImage locateDependencyImage(const std::optional<PinnedImage>& pinned,
                                             const DependencyImageRequest& fallback,
                                             DependencyImageSources& sources);

/// Where the real sources look.
struct DependencyLookupOptions {
  std::filesystem::path store_root;   ///< empty: defaultStoreRoot()
  std::filesystem::path site_cache;   ///< the site's read-only image cache; empty: none
  std::vector<std::string> insecure_registries;  ///< the site's plain-HTTP registries
  bool quiet = false;
};

/// What locateDependencyImage() finds without pulling, unpacking or building: the pinned image's
/// root when it is already unpacked in the local store or the site cache. Needs no libelf,
/// libcrypto, libarchive or libcurl, so the lean `kbatch` runs such a job itself.
std::optional<std::filesystem::path> findUnpackedPinnedImage(const PinnedImage& image,
                                                             const DependencyLookupOptions& options);

/// The store, the site cache and the registry, as `kbatch exec` uses them.
std::unique_ptr<DependencyImageSources> makeStoreDependencyImageSources(
    const DependencyLookupOptions& options);

/// `kbatch exec --image REF@DIGEST --from-binary BIN`: the pinned image when `pinned_text` is
/// given and found, else a build from `fallback`; logs at -v where the image came from.
LocatedDependencyImage findOrBuildDependencyImage(const std::optional<std::string>& pinned_text,
                                                  const DependencyImageRequest& fallback,
                                                  const DependencyLookupOptions& options);

// --- apt Contents indexes (libraries this host lacks) -------------------------------------------

/// The Contents-<arch> indexes of this machine's own apt sources: apt-file's cache
/// (/var/cache/apt/apt-file) and the apt lists directory (/var/lib/apt/lists), any compression
/// libarchive reads (lz4, gzip, xz, none). Empty when apt-file never downloaded them.
std::vector<std::filesystem::path> findAptContentsIndexes();

/// Looks up files in Contents indexes ("path   section/pkg[,section/pkg...]" lines; paths
/// without the leading slash). `file_names` are bare names ("libfoo.so.1"); the result maps each
/// found name to the package of its first entry in a library directory (lib/, usr/lib/ and their
/// multiarch subdirectories). Throws kbatch::Error naming the index and line when a line is
/// malformed.
std::map<std::string, std::string> lookupContentsIndexes(
    const std::vector<std::filesystem::path>& indexes, const std::vector<std::string>& file_names);

}  // namespace kbatch::image
