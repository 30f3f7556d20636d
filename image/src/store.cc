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
#include <mutex>
#include <optional>
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
#include "store_internal.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using detail::escapeRefName;
using detail::listDirectory;
using nlohmann::json;

constexpr std::uint64_t kMaxSmallBlobBytes = 4 << 20;

std::string nowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm utc {};
  ::gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

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
    // A running job's root stays; the first prune after the job removes it.
    FileLock unused = FileLock::tryLock(lockPath("use-" + hex + ".lock"), FileLock::Mode::kExclusive);
    if (unused.held()) removeTree(root_ / "roots" / hex);
  }
  return true;
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
    // Held while the root goes, so that no job can start using it halfway.
    std::optional<FileLock> unused;
    if (name.rfind(".tmp-", 0) != 0) {
      unused.emplace(FileLock::tryLock(lockPath("use-" + name + ".lock"), FileLock::Mode::kExclusive));
      if (!unused->held()) {
        ++report.roots_in_use;
        continue;
      }
    }
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

// --- Added for dependency images (H-deps): publishing a root built from a directory ---
namespace kbatch::image {

std::filesystem::path ImageStore::adoptUnpackedRoot(const std::string& manifest_digest,
                                                    const std::filesystem::path& prepared_root) {
  namespace fs = std::filesystem;
  std::string hex = digestHex(manifest_digest);
  std::string config = readSmallBlob(
      parseImageManifest(readSmallBlob(manifest_digest), manifest_digest).config.digest);
  FileLock gc(gcLockPath(), FileLock::Mode::kShared);
  FileLock lock(lockPath("root-" + hex + ".lock"), FileLock::Mode::kExclusive);
  fs::path final_dir = root_ / "roots" / hex;
  std::error_code ec;
  if (fs::is_directory(final_dir / "rootfs", ec)) {
    removeTree(prepared_root);
    return final_dir / "rootfs";
  }
  // The same layout unpackedRoot() publishes: roots/.tmp-<hex>-X/{rootfs,config.json}, renamed.
  fs::path temp_dir = root_ / "roots" / (".tmp-" + hex + "-adopt" + std::to_string(::getpid()));
  removeTree(temp_dir);
  makeDirectories(temp_dir);
  try {
    if (::rename(prepared_root.c_str(), (temp_dir / "rootfs").c_str()) != 0) {
      throw Error("publish image root", prepared_root.string(), describeErrno(errno),
                  "the prepared root must be on the store's file system");
    }
    writeFileAtomic(temp_dir / "config.json", config);
    // Everything on disk before the rename publishes it. A dependency image has a few dozen
    // files: fsyncing each is far cheaper than a syncfs that also waits for every other writer
    // of a busy file system; a large tree (packages) takes the one syncfs.
    constexpr std::size_t kFsyncEachUpTo = 2000;
    std::vector<fs::path> entries;
    for (auto it = fs::recursive_directory_iterator(temp_dir / "rootfs");
         it != fs::recursive_directory_iterator() && entries.size() <= kFsyncEachUpTo; ++it) {
      if (!it->is_symlink()) entries.push_back(it->path());
    }
    entries.push_back(temp_dir / "rootfs");
    if (entries.size() > kFsyncEachUpTo) {
      UniqueFd root_fd(::open((temp_dir / "rootfs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!root_fd.valid() || ::syncfs(root_fd.get()) != 0) {
        throw Error("sync", (temp_dir / "rootfs").string(), describeErrno(errno));
      }
    } else {
      for (const auto& entry : entries) {
        UniqueFd fd(::open(entry.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd.valid() || ::fsync(fd.get()) != 0) {
          throw Error("sync", entry.string(), describeErrno(errno));
        }
      }
    }
    if (::rename(temp_dir.c_str(), final_dir.c_str()) != 0) {
      throw Error("publish image root", final_dir.string(), describeErrno(errno));
    }
    syncDirectory(root_ / "roots");
  } catch (...) {
    removeTree(temp_dir);
    throw;
  }
  return final_dir / "rootfs";
}

}  // namespace kbatch::image
