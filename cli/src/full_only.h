#pragma once
/// The parts of `kbatch exec` and `kbatch run` that need kbatch's heavy subsystems: pulling and
/// unpacking images (libcurl, libarchive, OpenSSL), building dependency images (libelf, OpenSSL)
/// and the Kubernetes backend (libcurl, OpenSSL).
///
/// Loading those libraries costs more than starting a container (bench/exec_start.sh), so
/// kbatch is several executables behind one command, as git is with its dashed helpers:
///   - `kbatch` (bindir), the front end (exec_main.cc), runs exec and run (every batch job starts
///     one) and links full_only_delegate.cc: each function below re-executes a helper with the
///     same command line (and the same stdin, if exec already consumed it), and so does every
///     command line it does not run itself: to kbatch-cli (exec and run with CLI11 and the YAML
///     policy loader), kbatch-k8s or kbatch-full;
///   - `kbatch-cli` (libexecdir/kbatch) links full_only_delegate.cc too;
///   - `kbatch-k8s` (libexecdir/kbatch) carries exec, run and the Kubernetes backend and its
///     commands (runJobAsPod in pod_backend.cc; `kbatch k8s`, `kbatch manifest`): libcurl and
///     OpenSSL, but not libarchive (with libxml2 and ICU) or libelf, which only pulls and builds
///     need; it hands those to kbatch-full like the lean kbatch does;
///   - `kbatch-full` (libexecdir/kbatch) carries every command and links full_only.cc and
///     pod_backend.cc: the functions below do the work.
/// A warm `kbatch exec REF` (a directory, or an image already unpacked in the store) never leaves
/// the lean executable.

#include <filesystem>
#include <optional>
#include <string>

#include "kbatch/image/dependency_image.h"
#include "kbatch/image/resolve.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::cli {

/// The image's root filesystem after pulling, importing or unpacking it as needed
/// (image::resolveImageRoot). Called only when image::findLocalImageRoot() found none.
std::filesystem::path fetchImageRoot(const std::string& reference,
                                     const image::ResolveOptions& options);

/// The dependency image for a job that names no image, or the one pinned at submission
/// (`--image REF@DIGEST --from-binary BIN`): image::findOrBuildDependencyImage().
std::filesystem::path dependencyImageRoot(const std::optional<std::string>& pinned,
                                          const image::DependencyImageRequest& request,
                                          const image::DependencyLookupOptions& lookup);

/// The Kubernetes backend: the job's Pod on this batch host's node, with the site policy's
/// namespace, node names, volume claims and seccomp profile. Returns the exit code for kbatch.
int runJobAsPod(JobSpec job, const std::optional<std::string>& job_body);

/// Records what `kbatch exec --job-body` read from stdin, so that a hand-over to kbatch-full can
/// give it the same input.
void rememberConsumedStdin(std::string consumed);

}  // namespace kbatch::cli
