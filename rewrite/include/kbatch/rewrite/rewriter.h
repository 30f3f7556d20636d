#pragma once
/// The script rewriter (contract 2): a job that needs a container keeps its shebang and every
/// directive, gains a `#KBATCH-REWRITTEN v1 sha256=<hex>` marker, and its body is replaced by one
/// `exec <kbatch> exec --job-body=base64 ... -- <SHELL> <<'KBATCH_JOB_BODY_<16 hex>'` whose
/// here-document carries the original body in base64, so that no quoting can alter it. Any other
/// script passes through byte for byte.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kbatch/rewrite/job_spec.h"
#include "kbatch/rewrite/parser.h"

namespace kbatch::rewrite {

inline constexpr std::string_view kRewriteMarker = "#KBATCH-REWRITTEN v1 sha256=";
inline constexpr std::string_view kBodyDelimiterPrefix = "KBATCH_JOB_BODY_";

/// `--detect`: given a job that asks for no container and its body, returns the binary whose
/// shared libraries the compute nodes lack (the job then runs in a dependency image built from
/// it, as with -B), or nullopt to leave the job native.
using BinaryDetector =
    std::function<std::optional<std::string>(const JobSpec& spec, std::string_view body)>;

/// See RewriteOptions::build_dependency_image.
using DependencyImageBuilder = std::function<std::optional<std::string>(const JobSpec& spec)>;

struct RewriteOptions {
  /// Absolute path of the kbatch executable written into the script (the compute nodes run it).
  std::string kbatch_path;
  /// Unset: no detection; only #KBATCH directives and -B make a job need a container.
  BinaryDetector detect_binary;
  /// Builds, at submission, the dependency image of a job that names a binary and no image, and
  /// returns it pinned as "REFERENCE@sha256:<hex>" (nullopt: leave the build to the compute
  /// node). The exec line then carries `--image` with it and keeps `--from-binary` as the
  /// compute node's last resort. Unset: no build at submission.
  DependencyImageBuilder build_dependency_image;
};

struct RewriteResult {
  std::string script;       ///< the new script (the input itself when nothing changed)
  bool rewritten = false;   ///< false: passed through byte for byte (native job or already rewritten)
  bool already_rewritten = false;
  /// The binary `detect_binary` found, recorded as `#KBATCH --from-binary` in the new script.
  std::optional<std::string> detected_binary;
  /// The dependency image built at submission ("REFERENCE@sha256:<hex>"), pinned in the exec line.
  std::optional<std::string> dependency_image;
  JobSpec spec;
};

/// Rewrites `content` if its job needs a container. Throws ScriptError for a malformed script.
RewriteResult rewriteJobScript(std::string_view content, const ParseOptions& parse_options,
                               const RewriteOptions& rewrite_options);

/// A rewritten script taken apart again (for `kbatch exec`, tests and the fuzzer).
struct RewrittenScript {
  std::string header;           ///< everything before the marker line
  std::string body_sha256;      ///< hex from the marker
  std::string exec_line;        ///< the `exec ... <<'DELIM'` line, without its newline
  std::string body;             ///< the decoded original body
};

/// Takes a rewritten script apart and checks the body against the marker's sha256. Returns
/// nullopt if no line starts with the marker; throws ScriptError if one does but the script
/// around it is damaged (so call it on scripts kbatch rewrote, not on arbitrary ones).
std::optional<RewrittenScript> decodeRewrittenScript(std::string_view script,
                                                     std::string_view file_name = "STDIN");

/// The shell that runs the body: -S, else the shebang's interpreter, else /bin/sh.
std::string jobShell(const JobSpec& spec);

/// The realpath of /proc/self/exe.
std::string currentExecutablePath();

/// The kbatch written into rewritten scripts by default: `kbatch` beside this executable (the
/// lean `kbatch-submit` has no `exec` command), else this executable itself.
std::string defaultKbatchPath();

}  // namespace kbatch::rewrite
