#pragma once
/// The site policy's submit-path settings (failure mode, binary detection): used by the submit
/// filter and `kbatch qsub` only, kept out of site_policy.cc so that the lean `kbatch` (exec, run)
/// does not link the rewriter and its OpenSSL hashing.

#include <string>

#include "kbatch/rewrite/detect.h"
#include "kbatch/rewrite/submit.h"

namespace kbatch::cli {

/// The policy's submit_filter.on_error (reads the policy).
rewrite::FailureMode siteSubmitFilterMode();

/// `--detect` as the submit commands use it: a job that runs an ELF file needing a library the
/// policy's compute_nodes.missing_libraries names is given a dependency image. `forced`: the
/// command line asked for detection; otherwise the policy's submit_filter.detect decides (read
/// only when the body runs an ELF file). `kbatch_path` is the local kbatch that runs `deps`
/// (beside this executable), not the path written into scripts for the compute nodes.
rewrite::BinaryDetector siteBinaryDetector(bool forced, const std::string& kbatch_path);

}  // namespace kbatch::cli
