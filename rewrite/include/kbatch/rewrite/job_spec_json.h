#pragma once
/// JobSpec as JSON (`kbatch parse --json`): sizes in bytes, times in seconds, absent values null.

#include <string>

#include "kbatch/rewrite/job_spec.h"

namespace kbatch::rewrite {

/// Serialises `spec`; indent < 0 gives one line.
std::string jobSpecToJson(const JobSpec& spec, int indent = 2);

}  // namespace kbatch::rewrite
