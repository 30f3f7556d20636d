#pragma once
// Pieces of the store shared by its read side (store_read.cc) and its write side (store.cc).

#include <filesystem>
#include <string>
#include <vector>

namespace kbatch::image::detail {

/// The file name of a tag below refs/: everything but [A-Za-z0-9._-] percent-encoded, so that
/// "/" and ":" cannot create directories or collide, and "." and ".." are escaped too.
std::string escapeRefName(const std::string& name);

/// The names in `directory` except "." and "..", sorted; empty when it cannot be read.
std::vector<std::string> listDirectory(const std::filesystem::path& directory);

}  // namespace kbatch::image::detail
