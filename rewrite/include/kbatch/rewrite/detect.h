#pragma once
/// `--detect`: finding, in a job that asks for no container, a binary whose shared libraries the
/// compute nodes lack, so that the job runs in a dependency image built from it (as with -B).
/// The libraries come from `kbatch deps --json`, run as a subprocess: the lean kbatch-submit links
/// no ELF reader, and the full kbatch is installed beside it.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/rewrite/rewriter.h"

namespace kbatch::rewrite {

/// The programs a job body runs: the first word of each command line (after `exec`, `time`,
/// `env`, `NAME=value` assignments, and the launcher and options of mpirun, mpiexec and srun)
/// that names an existing ELF file, relative to `workdir` unless absolute. Words the shell would
/// expand or split ($, quotes, backquotes, globs) are skipped: their meaning is known only at run
/// time. Each path is returned once, in body order, as written.
std::vector<std::string> findJobBinaries(std::string_view body, const std::filesystem::path& workdir);

/// One shared library of a binary's closure, as `kbatch deps --json` lists it.
struct NeededLibrary {
  std::string name;                   ///< the DT_NEEDED string
  std::optional<std::string> soname;
  std::optional<std::string> path;    ///< where the submit host's ld.so finds it; unset if missing
};

/// Runs `kbatch_path deps --json --no-packages BINARY` and reads its library list. Throws
/// kbatch::Error when it cannot run or its answer is not the expected JSON.
std::vector<NeededLibrary> listNeededLibraries(const std::string& kbatch_path,
                                               const std::string& binary);

struct DetectOptions {
  /// The full kbatch (with `deps`).
  std::string kbatch_path;
  /// Where the job is submitted from: relative -d and binary paths start here.
  std::filesystem::path submit_directory;
  /// True if the compute nodes lack `library` (a name, soname or path); sets *why to the rule.
  std::function<bool(const std::string& library, std::string* why)> node_lacks;
  /// Asked only when the body runs an ELF file, so that a job without one costs no policy read;
  /// false turns detection off for this job. Unset: on.
  std::function<bool()> enabled;
  /// Replaces listNeededLibraries (tests).
  std::function<std::vector<NeededLibrary>(const std::string& binary)> list_libraries;
};

/// A BinaryDetector: the first of findJobBinaries() with a library the nodes lack, or nullopt.
BinaryDetector makeBinaryDetector(DetectOptions options);

}  // namespace kbatch::rewrite
