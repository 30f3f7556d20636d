#pragma once
/// Dependency images (the paper's `-B binary`): a root filesystem holding what a job's binary
/// needs to run, built from the binary's resolved libraries. `kbatch run`/`kbatch exec
/// --from-binary` call buildDependencyImage() when the job names no image; `kbatch build
/// --from-binary` calls it directly.
///
/// Images are cached under `$KBATCH_CACHE` (else `$XDG_CACHE_HOME/kbatch`, else
/// `~/.cache/kbatch`) in `deps/<key>/rootfs`, where the key is a hash of the resolved inputs, so a
/// second request with the same needs reuses the image without rebuilding. Builds happen in a
/// temporary directory that is renamed into place, under a lock, so concurrent jobs build once.

#include <filesystem>
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

struct DependencyImageRequest {
  std::optional<std::filesystem::path> binary;  ///< the job's binary (`-B`); may be absent
  std::filesystem::path shell = "/bin/sh";      ///< the job script's shell, always included
  std::vector<std::filesystem::path> extra_paths;  ///< `--extra`: files, directories, tools
  DependencyStrategy strategy = DependencyStrategy::kClosure;
  std::optional<std::string> ld_library_path;   ///< the job's LD_LIBRARY_PATH
  std::vector<std::filesystem::path> plugin_dirs;  ///< dlopen plugin directories
  /// `packages`: a base root filesystem directory (or a reference resolveImageRoot() accepts);
  /// nullopt: build one with mmdebstrap from this machine's apt sources.
  std::optional<std::string> base;
  /// Overrides the cache directory (default: see above).
  std::optional<std::filesystem::path> cache_dir;
  bool quiet = false;  ///< no progress messages
};

/// What a build produced.
struct DependencyImage {
  std::filesystem::path rootfs;    ///< the root filesystem directory (read-only by convention)
  std::string key;                 ///< hex sha256 of the resolved inputs
  DependencyStrategy strategy = DependencyStrategy::kClosure;  ///< the strategy actually used
  bool reused = false;             ///< found in the cache, nothing was built
  std::vector<std::string> packages;  ///< `packages`: the packages installed
};

/// Builds (or finds in the cache) the image for `request`. Throws kbatch::Error when a library
/// cannot be resolved (with the list of missing names), when a path cannot be read, or when the
/// packages strategy cannot run (naming the tool and its error).
DependencyImage buildDependencyImageDetailed(const DependencyImageRequest& request);

/// Contract 4: the root filesystem directory of buildDependencyImageDetailed(request).
std::filesystem::path buildDependencyImage(const DependencyImageRequest& request);

/// The cache root in use: `$KBATCH_CACHE`, `$XDG_CACHE_HOME/kbatch` or `~/.cache/kbatch`.
std::filesystem::path dependencyCacheRoot();

}  // namespace kbatch::image
