#include "deps_hash_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <sstream>

#include "closure_plan.h"
#include "file_stat_key.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"

namespace kbatch::image::detail {

namespace fs = std::filesystem;

namespace {
constexpr std::uint64_t kMaxCacheBytes = 16 << 20;
// Entries not used by the current build are dropped beyond this many, so the file stays small.
constexpr std::size_t kMaxEntries = 20000;
constexpr const char* kHeader = "kbatch file hashes v1";
}  // namespace

FileHashCache::FileHashCache(fs::path file) : file_(std::move(file)) {
  std::string content;
  try {
    std::error_code ec;
    if (!fs::exists(file_, ec)) return;
    content = readFileLimited(file_, kMaxCacheBytes);
  } catch (const Error& error) {
    log::debug("ignoring the file hash cache: {}", error.what());
    return;
  }
  std::istringstream lines(content);
  std::string line;
  if (!std::getline(lines, line) || line != kHeader) return;
  // "<stat key>\t<hex>\t<path>": tabs cannot appear in the key or the hex; a path may hold any
  // byte but NUL and newline, and one with a newline is simply never cached.
  while (std::getline(lines, line)) {
    auto first = line.find('\t');
    auto second = first == std::string::npos ? first : line.find('\t', first + 1);
    if (second == std::string::npos || second - first != 65) continue;
    entries_[line.substr(second + 1)] = {line.substr(0, first), line.substr(first + 1, 64), false};
  }
}

std::string FileHashCache::hashFile(const fs::path& path) {
  struct stat before {};
  if (::stat(path.c_str(), &before) != 0) {
    throw Error("hash file", path.string(), describeErrno(errno));
  }
  std::string key = fileStatKey(before);
  auto it = entries_.find(path.string());
  if (it != entries_.end() && it->second.stat_key == key) {
    it->second.used = true;
    ++hits_;
    return it->second.hex;
  }
  ++misses_;
  std::string hex = sha256File(path);
  // A file written while it was hashed is not cached: its hash may mix old and new bytes.
  struct stat after {};
  if (::stat(path.c_str(), &after) == 0 && fileStatKey(after) == key &&
      path.string().find('\n') == std::string::npos) {
    entries_[path.string()] = {key, hex, true};
    dirty_ = true;
  }
  return hex;
}

void FileHashCache::save() {
  if (!dirty_) return;
  std::string content = std::string(kHeader) + "\n";
  std::size_t kept = 0;
  for (const auto& [path, entry] : entries_) {
    if (!entry.used && kept >= kMaxEntries) continue;
    content += entry.stat_key + "\t" + entry.hex + "\t" + path + "\n";
    ++kept;
  }
  try {
    makeDirectories(file_.parent_path());
    writeFileAtomic(file_, content, 0600);
    dirty_ = false;
  } catch (const Error& error) {
    log::warn("could not save the file hash cache: {}", error.what());
  }
}

}  // namespace kbatch::image::detail
