#pragma once
// Reading a configuration file that only trusted owners (root) could have written: every directory
// on the way, every symlink followed and the file itself must belong to a trusted owner and be
// writable by nobody else. Otherwise a user could swap the policy under our feet.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kbatch::policy::detail {

/// Reads `path` after checking its whole path (see above) and its size (<= max_bytes). Throws
/// kbatch::Error with `action` naming what was being loaded.
std::string readTrustedFile(const std::filesystem::path& path, const std::vector<uid_t>& owners,
                            std::uint64_t max_bytes, const std::string& action);

}  // namespace kbatch::policy::detail
