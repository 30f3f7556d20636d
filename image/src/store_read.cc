// The read side of the image store: finding tags, blobs and unpacked roots. `kbatch exec REF`
// with the image already unpacked needs nothing else, so this file (with reference.cc, fs_util.cc
// and digest_text.cc) must not reach OpenSSL, libarchive or libcurl: the lean `kbatch` links it
// without them (see cli/CMakeLists.txt).

#include <dirent.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "digest.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/reference.h"
#include "kbatch/image/store.h"
#include "store_internal.h"

namespace kbatch::image {

namespace fs = std::filesystem;
using nlohmann::json;

namespace detail {

std::string escapeRefName(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  // "." and ".." are escaped too so that no ref file can be a directory link.
  if (out == "." || out == "..") out = out == "." ? "%2E" : "%2E%2E";
  return out;
}

std::vector<std::string> listDirectory(const fs::path& directory) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace detail

namespace {

using detail::escapeRefName;
using detail::listDirectory;

bool isHexPrefix(const std::string& text) {
  std::string_view hex = text;
  if (hex.rfind("sha256:", 0) == 0) hex.remove_prefix(7);
  if (hex.size() < 12 || hex.size() > 64) return false;
  return std::all_of(hex.begin(), hex.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

fs::path defaultStoreRoot() {
  if (const char* cache = std::getenv("KBATCH_CACHE"); cache != nullptr && *cache) return cache;
  // The XDG base directory spec: a relative XDG_CACHE_HOME is invalid and ignored.
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return fs::path(xdg) / "kbatch";
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home != '/') {
    const passwd* entry = ::getpwuid(::getuid());
    if (entry == nullptr || entry->pw_dir == nullptr || *entry->pw_dir != '/') {
      throw Error("find the image store", "$HOME", "not set and the user has no passwd entry",
                  "set KBATCH_CACHE to a writable directory");
    }
    home = entry->pw_dir;
  }
  return fs::path(home) / ".cache" / "kbatch";
}

ImageStore::ImageStore(fs::path root, fs::path site_cache)
    : root_(std::move(root)), site_cache_(std::move(site_cache)) {
  for (const char* sub : {"blobs/sha256", "refs", "roots", "locks", "tmp", "sources"}) {
    makeDirectories(root_ / sub);
  }
}

fs::path ImageStore::blobPath(const std::string& digest) const {
  return root_ / "blobs" / "sha256" / digestHex(digest);
}

std::optional<fs::path> ImageStore::findBlob(const std::string& digest) const {
  std::string hex = digestHex(digest);
  std::error_code ec;
  if (!site_cache_.empty()) {
    fs::path site = site_cache_ / "blobs" / "sha256" / hex;
    if (fs::is_regular_file(site, ec)) return site;
  }
  fs::path local = root_ / "blobs" / "sha256" / hex;
  if (fs::is_regular_file(local, ec)) return local;
  return std::nullopt;
}

std::optional<ImageRecord> ImageStore::readRef(const fs::path& refs_dir, const std::string& name,
                                               bool site) const {
  fs::path file = refs_dir / escapeRefName(name);
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  json document = json::parse(readFileLimited(file, 1 << 20), nullptr, false);
  if (!document.is_object() || !document.contains("manifest") || !document["manifest"].is_string() ||
      !isValidDigest(document["manifest"].get<std::string>())) {
    throw Error("read image tag", file.string(), "field 'manifest': expected a sha256 digest",
                "remove the tag with `kbatch rmi` and pull again");
  }
  ImageRecord record;
  record.name = document.value("name", name);
  record.manifest_digest = document["manifest"].get<std::string>();
  record.source = document.value("source", std::string());
  record.created = document.value("created", std::string());
  record.size = document.value("size", std::uint64_t{0});
  record.from_site_cache = site;
  return record;
}

std::optional<ImageRecord> ImageStore::lookup(const std::string& name_or_digest) const {
  std::string name = name_or_digest;
  if (name.rfind("docker://", 0) == 0 || name.rfind("oci:", 0) == 0 ||
      name.rfind("oci-archive:", 0) == 0) {
    name = parseImageReference(name).storeName();
  }
  if (auto record = readRef(root_ / "refs", name, false)) return record;
  if (!site_cache_.empty()) {
    if (auto record = readRef(site_cache_ / "refs", name, true)) return record;
  }
  if (isHexPrefix(name)) {
    std::string prefix = name.rfind("sha256:", 0) == 0 ? name : "sha256:" + name;
    std::optional<ImageRecord> match;
    for (const auto& record : listImages()) {
      if (record.manifest_digest.rfind(prefix, 0) != 0) continue;
      if (match && match->manifest_digest != record.manifest_digest) {
        throw Error("find image", name_or_digest, "the digest prefix matches more than one image",
                    "give more digits");
      }
      match = record;
    }
    if (match) return match;
    // An untagged image (e.g. a dependency image) is reachable by its full digest.
    if (isValidDigest(prefix) && hasBlob(prefix)) {
      ImageRecord record;
      record.manifest_digest = prefix;
      return record;
    }
  }
  return std::nullopt;
}

std::vector<ImageRecord> ImageStore::listImages() const {
  std::vector<ImageRecord> records;
  std::set<std::string> seen;
  auto collect = [&](const fs::path& refs_dir, bool site) {
    for (const auto& file : listDirectory(refs_dir)) {
      if (file.find(".tmp-") != std::string::npos) continue;  // an atomic write in progress
      json document = json::parse(readFileLimited(refs_dir / file, 1 << 20), nullptr, false);
      if (!document.is_object() || !document.contains("name")) {
        log::warn("ignoring malformed image tag file {}", (refs_dir / file).string());
        continue;
      }
      std::string name = document["name"].get<std::string>();
      if (seen.count(name)) continue;
      if (auto record = readRef(refs_dir, name, site)) {
        seen.insert(name);
        records.push_back(*record);
      }
    }
  };
  collect(root_ / "refs", false);
  if (!site_cache_.empty()) collect(site_cache_ / "refs", true);
  std::sort(records.begin(), records.end(),
            [](const ImageRecord& a, const ImageRecord& b) { return a.name < b.name; });
  return records;
}

std::optional<fs::path> ImageStore::findUnpackedRoot(const std::string& manifest_digest) const {
  std::string hex = digestHex(manifest_digest);
  std::error_code ec;
  if (!site_cache_.empty()) {
    fs::path site = site_cache_ / "roots" / hex / "rootfs";
    if (fs::is_directory(site, ec)) return site;
  }
  fs::path local = root_ / "roots" / hex / "rootfs";
  if (fs::is_directory(local, ec)) return local;
  return std::nullopt;
}

// The locks stay open until the process exits: the job's lifetime, for `kbatch exec`.
void ImageStore::useRootUntilExit(const std::string& manifest_digest) {
  static std::mutex held_mutex;
  static std::vector<FileLock> held;
  FileLock lock(lockPath("use-" + digestHex(manifest_digest) + ".lock"), FileLock::Mode::kShared);
  std::lock_guard<std::mutex> guard(held_mutex);
  held.push_back(std::move(lock));
}

}  // namespace kbatch::image
