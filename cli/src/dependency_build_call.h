#pragma once
/// Building a job's dependency image at submission (`-B BIN`, `#KBATCH --from-binary BIN`) from
/// the submit-path commands. kbatch-submit links no ELF reader, archive or HTTP library, so the
/// build runs as `kbatch build --from-binary BIN --json` in the full kbatch installed beside the
/// running executable; with the policy's site.registry it also pushes the image there, so that
/// compute nodes pull it by digest instead of building it again.

#include <optional>
#include <string>
#include <vector>

#include "kbatch/rewrite/rewriter.h"

namespace kbatch::cli {

/// What `kbatch build --json` answered (the fields the submit path needs).
struct DependencyBuildAnswer {
  std::string reference;  ///< "docker://HOST/REPO:TAG" when pushed, else the store name
  std::string digest;     ///< "sha256:..." of the image manifest
  bool cached = false;
  /// "REFERENCE@DIGEST", what the exec line's --image carries.
  std::string pinned() const { return reference + "@" + digest; }
};

/// Parses `kbatch build --json` output; throws kbatch::Error naming the missing or bad field.
DependencyBuildAnswer parseDependencyBuildAnswer(const std::string& json);

/// The argv of the build: `KBATCH -q build --from-binary BIN --shell SHELL --json
/// [--push docker://REGISTRY/kbatch-deps [--insecure]]`. `site_registry` is the policy's
/// site.registry ("host[:port]"); `insecure` adds --insecure (plain HTTP, which kbatch build
/// still allows only for loopback and the site's insecure registries).
std::vector<std::string> dependencyBuildArguments(const std::string& kbatch,
                                                  const std::string& binary,
                                                  const std::string& shell,
                                                  const std::optional<std::string>& site_registry,
                                                  bool insecure);

/// Runs the build (stdin /dev/null, stdout captured, stderr passed through to the user) and
/// returns its answer. Throws kbatch::Error when it cannot start, fails or answers nonsense.
DependencyBuildAnswer runDependencyBuild(const std::vector<std::string>& argv);

/// The RewriteOptions::build_dependency_image of kbatch qsub and the submit filter: builds with
/// the full kbatch beside this executable, pushes to the site registry if the policy names one.
/// A binary that does not exist at submission is left to the compute node (it may be built by
/// the job's own workflow there).
rewrite::DependencyImageBuilder makeSubmissionDependencyBuilder();

}  // namespace kbatch::cli
