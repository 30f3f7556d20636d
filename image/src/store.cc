#include "kbatch/image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <set>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "digest.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/reference.h"
#include "layer_extract.h"
#include "manifest.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::uint64_t kMaxSmallBlobBytes = 4 << 20;

// Tag names become file names: everything but [A-Za-z0-9._-] is percent-encoded, so "/" and ":"
// cannot create directories or collide.
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

std::string nowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm utc {};
  ::gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
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
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg) {
    return fs::path(xdg) / "kbatch";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home) {
    return fs::path(home) / ".cache" / "kbatch";
  }
  throw Error("find the image store", "", "none of KBATCH_CACHE, XDG_CACHE_HOME, HOME is set",
              "set KBATCH_CACHE to a writable directory");
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

std::string ImageStore::readSmallBlob(const std::string& digest) const {
  auto path = findBlob(digest);
  if (!path) {
    throw Error("read blob", digest, "not in the image store " + root_.string(),
                "pull the image again", exit_code::kNotFound);
  }
  std::string content = readFileLimited(*path, kMaxSmallBlobBytes);
  // Manifests and configs are re-verified on every read: they decide what gets unpacked.
  if (std::string actual = sha256Digest(content); actual != digest) {
    throw Error("read blob", path->string(), "content hashes to " + actual + ", not " + digest,
                "the store is corrupt; run `kbatch prune` and pull again");
  }
  return content;
}

std::string ImageStore::putBlob(std::string_view content, const std::string& expected_digest) {
  std::string digest = sha256Digest(content);
  if (!expected_digest.empty() && digest != expected_digest) {
    throw Error("verify blob", expected_digest, "content hashes to " + digest,
                "the source sent corrupt or tampered data");
  }
  fs::path path = blobPath(digest);
  std::error_code ec;
  if (!fs::exists(path, ec)) writeFileAtomic(path, content, 0444);
  return digest;
}

fs::path ImageStore::importBlobFile(const fs::path& file, const std::string& expected_digest,
                                    std::int64_t expected_size) {
  std::string hex = digestHex(expected_digest);
  if (auto existing = findBlob(expected_digest)) return *existing;
  FileLock lock(lockPath("blob-" + hex + ".lock"), FileLock::Mode::kExclusive);
  fs::path target = blobPath(expected_digest);
  std::error_code ec;
  if (fs::exists(target, ec)) return target;
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) throw Error("read blob", file.string(), describeErrno(errno));
  fs::path temp = tempDirectory() / (hex + ".import");
  UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444));
  if (!out.valid()) throw Error("write blob", temp.string(), describeErrno(errno));
  Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  std::int64_t total = 0;
  for (;;) {
    ssize_t got = ::read(in.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error("read blob", file.string(), describeErrno(errno));
    if (got == 0) break;
    hasher.update(buffer.data(), static_cast<size_t>(got));
    total += got;
    for (ssize_t done = 0; done < got;) {
      ssize_t written = ::write(out.get(), buffer.data() + done, static_cast<size_t>(got - done));
      if (written < 0 && errno == EINTR) continue;
      if (written < 0) throw Error("write blob", temp.string(), describeErrno(errno));
      done += written;
    }
  }
  std::string actual = hasher.finishDigest();
  if (actual != expected_digest || (expected_size >= 0 && total != expected_size)) {
    ::unlink(temp.c_str());
    throw Error("verify blob", file.string(),
                "content hashes to " + actual + " (" + std::to_string(total) + " bytes), expected " +
                    expected_digest +
                    (expected_size >= 0 ? " (" + std::to_string(expected_size) + " bytes)" : ""),
                "the image source is corrupt or was tampered with");
  }
  if (::fsync(out.get()) != 0) throw Error("fsync", temp.string(), describeErrno(errno));
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    throw Error("store blob", target.string(), describeErrno(errno));
  }
  syncDirectory(target.parent_path());
  return target;
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

ImageRecord ImageStore::tag(const std::string& name, const std::string& manifest_digest,
                            const std::string& source) {
  ImageManifest manifest = parseImageManifest(readSmallBlob(manifest_digest), manifest_digest);
  std::uint64_t size = static_cast<std::uint64_t>(manifest.config.size);
  for (const auto& layer : manifest.layers) size += static_cast<std::uint64_t>(layer.size);
  ImageRecord record;
  record.name = name;
  record.manifest_digest = manifest_digest;
  record.source = source;
  record.created = nowRfc3339();
  record.size = size;
  json document = {{"name", name},       {"manifest", manifest_digest}, {"source", source},
                   {"created", record.created}, {"size", size}};
  writeFileAtomic(root_ / "refs" / escapeRefName(name), document.dump(2) + "\n");
  return record;
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

bool ImageStore::removeTag(const std::string& name) {
  auto record = lookup(name);
  if (!record || record->name.empty()) return false;
  if (record->from_site_cache) {
    throw Error("remove image", name, "it is in the read-only site cache " + site_cache_.string());
  }
  FileLock gc(gcLockPath(), FileLock::Mode::kShared);
  fs::path file = root_ / "refs" / escapeRefName(record->name);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    throw Error("remove image tag", file.string(), describeErrno(errno));
  }
  bool still_used = false;
  for (const auto& other : listImages()) {
    if (!other.from_site_cache && other.manifest_digest == record->manifest_digest) still_used = true;
  }
  if (!still_used) {
    std::string hex = digestHex(record->manifest_digest);
    FileLock root_lock(lockPath("root-" + hex + ".lock"), FileLock::Mode::kExclusive);
    removeTree(root_ / "roots" / hex);
  }
  return true;
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

fs::path ImageStore::unpackedRoot(const std::string& manifest_digest, const UnpackOptions& options) {
  if (auto existing = findUnpackedRoot(manifest_digest)) return *existing;
  std::string hex = digestHex(manifest_digest);
  FileLock gc(gcLockPath(), FileLock::Mode::kShared);
  FileLock lock(lockPath("root-" + hex + ".lock"), FileLock::Mode::kExclusive);
  // Another process may have finished the unpack while we waited for the lock.
  fs::path final_dir = root_ / "roots" / hex;
  std::error_code ec;
  if (fs::is_directory(final_dir / "rootfs", ec)) return final_dir / "rootfs";
  // Holding the lock, any temporary unpack of this image is a leftover of a killed process.
  for (const auto& name : listDirectory(root_ / "roots")) {
    if (name.rfind(".tmp-" + hex + "-", 0) == 0) removeTree(root_ / "roots" / name);
  }
  ImageManifest manifest = parseImageManifest(readSmallBlob(manifest_digest), manifest_digest);
  std::string config = readSmallBlob(manifest.config.digest);

  std::string temp_template = (root_ / "roots" / (".tmp-" + hex + "-XXXXXX")).string();
  std::vector<char> temp_name(temp_template.begin(), temp_template.end());
  temp_name.push_back('\0');
  if (::mkdtemp(temp_name.data()) == nullptr) {
    throw Error("create temporary directory", temp_template, describeErrno(errno));
  }
  fs::path temp_dir = temp_name.data();
  try {
    ::chmod(temp_dir.c_str(), 0755);
    fs::path rootfs = temp_dir / "rootfs";
    if (::mkdir(rootfs.c_str(), 0755) != 0) {
      throw Error("create directory", rootfs.string(), describeErrno(errno));
    }
    UniqueFd root_fd(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd.valid()) throw Error("open", rootfs.string(), describeErrno(errno));
    ExtractLimits limits = extractLimitsFromEnvironment();
    if (options.max_unpacked_bytes > 0) limits.max_unpacked_bytes = options.max_unpacked_bytes;
    ExtractStats stats;
    for (size_t i = 0; i < manifest.layers.size(); ++i) {
      const Descriptor& layer = manifest.layers[i];
      auto blob = findBlob(layer.digest);
      if (!blob) {
        throw Error("unpack image", manifest_digest,
                    "layer " + std::to_string(i + 1) + " (" + layer.digest + ") is not in the store",
                    "pull the image again", exit_code::kNotFound);
      }
      extractLayerFile(root_fd.get(), *blob,
                       layer.digest + " (layer " + std::to_string(i + 1) + "/" +
                           std::to_string(manifest.layers.size()) + ")",
                       limits, stats);
    }
    if (stats.dropped_setid > 0) {
      log::info("image {}: cleared setuid/setgid bits on {} file(s)", manifest_digest,
                stats.dropped_setid);
    }
    writeFileAtomic(temp_dir / "config.json", config);
    // Everything must be on disk before the rename publishes the root; one syncfs is far cheaper
    // than an fsync per file.
    if (::syncfs(root_fd.get()) != 0) throw Error("sync", rootfs.string(), describeErrno(errno));
    if (::rename(temp_dir.c_str(), final_dir.c_str()) != 0) {
      throw Error("publish unpacked image", final_dir.string(), describeErrno(errno));
    }
    syncDirectory(root_ / "roots");
  } catch (...) {
    try {
      removeTree(temp_dir);
    } catch (const Error& cleanup) {
      log::warn("could not remove {}: {}", temp_dir.string(), cleanup.what());
    }
    throw;
  }
  return final_dir / "rootfs";
}

ImageConfigSettings ImageStore::imageConfig(const std::string& manifest_digest) const {
  ImageManifest manifest = parseImageManifest(readSmallBlob(manifest_digest), manifest_digest);
  json document = json::parse(readSmallBlob(manifest.config.digest), nullptr, false);
  ImageConfigSettings settings;
  if (!document.is_object()) return settings;
  auto config = document.find("config");
  if (config == document.end() || !config->is_object()) return settings;
  auto strings = [&](const char* key) {
    std::vector<std::string> values;
    auto it = config->find(key);
    if (it == config->end() || !it->is_array()) return values;
    for (const auto& item : *it) {
      if (item.is_string()) values.push_back(item.get<std::string>());
    }
    return values;
  };
  settings.env = strings("Env");
  settings.entrypoint = strings("Entrypoint");
  settings.cmd = strings("Cmd");
  if (auto it = config->find("WorkingDir"); it != config->end() && it->is_string()) {
    settings.working_dir = it->get<std::string>();
  }
  if (auto it = config->find("User"); it != config->end() && it->is_string()) {
    settings.user = it->get<std::string>();
  }
  if (auto it = config->find("Labels"); it != config->end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      if (value.is_string()) settings.labels[key] = value.get<std::string>();
    }
  }
  return settings;
}

PruneReport ImageStore::prune() {
  FileLock gc(gcLockPath(), FileLock::Mode::kExclusive);
  PruneReport report;
  std::set<std::string> reachable_blobs;
  std::set<std::string> reachable_roots;
  for (const auto& record : listImages()) {
    if (record.from_site_cache) continue;
    std::string hex = digestHex(record.manifest_digest);
    reachable_roots.insert(hex);
    reachable_blobs.insert(hex);
    try {
      ImageManifest manifest =
          parseImageManifest(readSmallBlob(record.manifest_digest), record.manifest_digest);
      reachable_blobs.insert(digestHex(manifest.config.digest));
      for (const auto& layer : manifest.layers) reachable_blobs.insert(digestHex(layer.digest));
    } catch (const Error& error) {
      log::warn("image {} is damaged ({}); prune keeps its blobs", record.name, error.what());
      return report;
    }
  }
  auto account = [&](const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      report.bytes_freed += static_cast<std::uint64_t>(st.st_size);
    }
  };
  for (const auto& name : listDirectory(root_ / "blobs" / "sha256")) {
    if (reachable_blobs.count(name)) continue;
    fs::path path = root_ / "blobs" / "sha256" / name;
    account(path);
    if (::unlink(path.c_str()) == 0) ++report.blobs_removed;
    ::unlink((root_ / "sources" / name).c_str());
  }
  for (const auto& name : listDirectory(root_ / "roots")) {
    if (reachable_roots.count(name)) continue;
    fs::path path = root_ / "roots" / name;
    report.bytes_freed += treeSize(path);
    removeTree(path);
    if (name.rfind(".tmp-", 0) == 0) ++report.temporaries_removed;
    else ++report.roots_removed;
  }
  for (const auto& name : listDirectory(tempDirectory())) {
    fs::path path = tempDirectory() / name;
    account(path);
    removeTree(path);
    ++report.temporaries_removed;
  }
  return report;
}

void ImageStore::noteBlobSource(const std::string& digest, const std::string& host_and_repository) {
  std::string hex = digestHex(digest);
  fs::path file = root_ / "sources" / hex;
  FileLock lock(lockPath("sources.lock"), FileLock::Mode::kExclusive);
  std::vector<std::string> sources = blobSources(digest);
  if (std::find(sources.begin(), sources.end(), host_and_repository) != sources.end()) return;
  sources.push_back(host_and_repository);
  std::string content;
  for (const auto& source : sources) content += source + "\n";
  writeFileAtomic(file, content);
}

std::vector<std::string> ImageStore::blobSources(const std::string& digest) const {
  fs::path file = root_ / "sources" / digestHex(digest);
  std::error_code ec;
  std::vector<std::string> sources;
  if (!fs::exists(file, ec)) return sources;
  std::string content = readFileLimited(file, 1 << 20);
  size_t start = 0;
  while (start < content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    if (end > start) sources.push_back(content.substr(start, end - start));
    start = end + 1;
  }
  return sources;
}

}  // namespace kbatch::image
