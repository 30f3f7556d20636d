#pragma once
// Line rules shared by the parser and the rewriter.

#include <string_view>

namespace kbatch::rewrite::detail {

/// TORQUE's isexecutable(): a line starting with ':' or "#!" is not executable, nor is a blank
/// line or a '#' comment (leading blanks skipped); anything else is, and ends directive scanning.
bool isExecutableLine(std::string_view line);

}  // namespace kbatch::rewrite::detail
