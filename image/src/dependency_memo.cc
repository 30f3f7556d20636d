// The dependency-image memo (dependency_memo.h). Linked into the lean kbatch: it must reach none of
// libelf, libarchive, libcrypto or libcurl (tests/integration/runner/lean_kbatch_test.sh).

#include "dependency_memo.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <system_error>

#include "file_stat_key.h"
#include "kbatch/common/log.h"
#include "kbatch/image/resolve.h"
#include "kbatch/image/store.h"

namespace kbatch::image {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kMemoVersion = "kbatch dependency memo v1";

/// The store root buildDependencyImageDetailed() uses (dependencyCacheRoot(), which lives with the
/// builder and so out of the lean kbatch's reach).
fs::path memoStoreRoot(const DependencyImageRequest& request) {
  if (request.cache_dir) return *request.cache_dir;
  return defaultStoreRoot();
}

/// FNV-1a, only to name the memo file: the file holds the whole request text, which is compared.
std::string fileNameFor(const std::string& request_text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : request_text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.json", static_cast<unsigned long long>(hash));
  return name;
}

/// lstat(2) as the memo keeps it: "absent", or the file's stat key (file_stat_key.h) and its mode.
/// A directory of the image counts only by its identity and mode (what the image copies of it):
/// a job's working directory, which often holds its binary, changes with every output file.
/// `whole` keeps everything for a directory too, for the LD_LIBRARY_PATH directories, whose
/// entries ld.so searches.
std::string statText(const fs::path& path, bool whole = false) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT || errno == ENOTDIR ? "absent" : "";
  if (S_ISDIR(st.st_mode) && !whole) {
    return "directory " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + " mode " +
           std::to_string(st.st_mode);
  }
  return detail::fileStatKey(st) + " mode " + std::to_string(st.st_mode);
}

std::vector<fs::path> libraryPathDirectories(const DependencyImageRequest& request) {
  std::vector<fs::path> dirs;
  if (!request.ld_library_path) return dirs;
  std::string entry;
  std::istringstream list(*request.ld_library_path);
  while (std::getline(list, entry, ':')) {
    if (!entry.empty()) dirs.emplace_back(entry);
  }
  return dirs;
}

}  // namespace

namespace detail {

std::optional<std::string> memoRequestText(const DependencyImageRequest& request) {
  if (request.base || !request.extra_paths.empty() || !request.plugin_dirs.empty() ||
      request.strategy != DependencyStrategy::kClosure) {
    return std::nullopt;
  }
  json text;
  text["version"] = kMemoVersion;
  // Another kbatch may lay images out differently: its answers are not this one's.
  text["kbatch"] = KBATCH_VERSION;
  text["binary"] = request.binary ? json(request.binary->string()) : json(nullptr);
  text["shell"] = request.shell.string();
  text["ld_library_path"] = request.ld_library_path ? json(*request.ld_library_path) : json(nullptr);
  text["uid"] = ::getuid();
  text["gid"] = ::getgid();
  if (const passwd* entry = ::getpwuid(::getuid())) {
    text["user"] = entry->pw_name;
    text["home"] = entry->pw_dir;
  }
  return text.dump();
}

MemoWatch watchForMemo(const DependencyImageRequest& request, const std::vector<fs::path>& paths) {
  MemoWatch watch;
  for (const auto& path : paths) {
    std::string state = statText(path);
    if (!state.empty()) watch.watched.emplace_back(path.string(), std::move(state));
  }
  for (const auto& dir : libraryPathDirectories(request)) {
    std::string state = statText(dir, /*whole=*/true);
    if (!state.empty()) watch.searched.emplace_back(dir.string(), std::move(state));
  }
  return watch;
}

void rememberDependencyImage(const fs::path& store_root, const DependencyImageRequest& request,
                             const std::string& store_name, const MemoWatch& watch) {
  const auto request_text = memoRequestText(request);
  if (!request_text) return;
  json watched = json::object();
  json searched = json::object();
  for (const auto& [path, state] : watch.watched) watched[path] = state;
  for (const auto& [path, state] : watch.searched) searched[path] = state;
  json memo{{"request", *request_text},
            {"watched", watched},
            {"searched", searched},
            {"image", store_name}};
  const fs::path dir = store_root / "deps" / "memo";
  const fs::path file = dir / fileNameFor(*request_text);
  const fs::path temporary = file.string() + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  fs::create_directories(dir, ec);
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << memo.dump();
    if (!out) {
      log::debug("dependency memo {}: cannot write", temporary.string());
      fs::remove(temporary, ec);
      return;
    }
  }
  fs::rename(temporary, file, ec);
  if (ec) {
    log::debug("dependency memo {}: {}", file.string(), ec.message());
    fs::remove(temporary, ec);
  }
}

}  // namespace detail

std::optional<fs::path> findRememberedDependencyImage(const DependencyImageRequest& request) {
  const auto request_text = detail::memoRequestText(request);
  if (!request_text) return std::nullopt;
  const fs::path store_root = memoStoreRoot(request);
  const fs::path file = store_root / "deps" / "memo" / fileNameFor(*request_text);
  std::ifstream in(file);
  if (!in) return std::nullopt;
  json memo = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!memo.is_object() || !memo.contains("request") || !memo.contains("watched") ||
      !memo.contains("searched") || !memo.contains("image") || !memo["request"].is_string() ||
      !memo["watched"].is_object() || !memo["searched"].is_object() ||
      !memo["image"].is_string() || memo["request"].get<std::string>() != *request_text) {
    return std::nullopt;
  }
  for (const char* kind : {"watched", "searched"}) {
    const bool whole = std::string_view(kind) == "searched";
    for (const auto& [path, state] : memo[kind].items()) {
      if (!state.is_string() || statText(path, whole) != state.get<std::string>()) {
        log::debug("dependency memo {}: {} changed", file.string(), path);
        return std::nullopt;
      }
    }
  }
  const std::string image = memo["image"].get<std::string>();
  if (image.rfind(std::string(kDependencyImageRepository) + ":", 0) != 0) return std::nullopt;
  ResolveOptions options;
  options.store_root = store_root;
  try {
    auto root = findLocalImageRoot(image, options);
    if (root) log::debug("dependency image {} (remembered; nothing changed since)", image);
    return root;
  } catch (const std::exception& error) {
    log::debug("dependency memo {}: {}", file.string(), error.what());
    return std::nullopt;
  }
}

}  // namespace kbatch::image
