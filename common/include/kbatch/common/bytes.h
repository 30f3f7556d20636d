#pragma once
/// Sizes for people: what progress lines, `kbatch images` and error messages print.

#include <cstdint>
#include <string>

namespace kbatch {

/// "512 B", "1.5 KiB", "3.2 GiB": binary units, one decimal above bytes.
std::string formatBytes(std::uint64_t bytes);

}  // namespace kbatch
