#pragma once
/// Replacing a file so that a reader sees the old content or the new, never half of either: what
/// the image store writes (manifests, refs, caches) and what `kbatch policy compile` writes.

#include <filesystem>
#include <string_view>

namespace kbatch {

/// Writes `content` to a temporary file next to `path`, sets `mode`, fsyncs it, renames it over
/// `path` and fsyncs the directory. Throws kbatch::Error naming `path`.
void writeFileAtomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

/// fsyncs a directory so that a rename inside it is durable.
void syncDirectory(const std::filesystem::path& directory);

}  // namespace kbatch
