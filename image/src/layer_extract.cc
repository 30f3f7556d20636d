#include "layer_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <deque>
#include <memory>
#include <unordered_set>
#include <vector>

#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"

namespace kbatch::image {
namespace {

// Linux resolves at most 40 symlinks per path; an image gets the same budget.
constexpr int kMaxSymlinks = 40;
// Each entry costs this much of the unpack budget even when empty, so that a layer of millions of
// empty files is also a bomb.
constexpr std::uint64_t kEntryOverheadBytes = 512;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveDeleter {
  void operator()(archive* handle) const { archive_read_free(handle); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

class LayerExtractor {
 public:
  LayerExtractor(int root_fd, std::string label, const ExtractLimits& limits, ExtractStats& stats)
      : root_fd_(root_fd), label_(std::move(label)), limits_(limits), stats_(stats) {}

  void run(archive* reader) {
    archive_entry* entry = nullptr;
    for (;;) {
      int status = archive_read_next_header(reader, &entry);
      if (status == ARCHIVE_EOF) break;
      if (status < ARCHIVE_WARN) {
        throw Error("unpack layer", label_,
                    std::string("corrupt archive: ") + describeArchiveError(reader));
      }
      applyEntry(reader, entry);
    }
    if (stats_.skipped_devices > reported_devices_) {
      log::info("layer {}: skipped {} device node(s) or socket(s), which a rootless unpack cannot "
                "create", label_, stats_.skipped_devices - reported_devices_);
    }
  }

 private:
  static std::string describeArchiveError(archive* reader) {
    const char* text = archive_error_string(reader);
    return text != nullptr ? text : "unknown libarchive error";
  }

  [[noreturn]] void refuse(const std::string& entry, const std::string& cause) const {
    throw Error("unpack layer", label_, "entry '" + entry + "': " + cause,
                "the layer is malformed or hostile; kbatch refuses to unpack it");
  }
  [[noreturn]] void failSystem(const std::string& entry, const char* step) const {
    throw Error("unpack layer", label_,
                "entry '" + entry + "': " + step + ": " + describeErrno(errno));
  }

  // Splits an archive path into components, refusing absolute paths and `..`. "./a//b/" -> {a, b}.
  std::vector<std::string> splitPath(const std::string& raw, const std::string& entry,
                                     const char* what) const {
    if (!raw.empty() && raw.front() == '/') refuse(entry, std::string(what) + " is an absolute path");
    std::vector<std::string> components;
    size_t start = 0;
    while (start <= raw.size()) {
      size_t end = raw.find('/', start);
      if (end == std::string::npos) end = raw.size();
      std::string component = raw.substr(start, end - start);
      if (component == "..") refuse(entry, std::string(what) + " contains '..'");
      if (!component.empty() && component != ".") components.push_back(std::move(component));
      start = end + 1;
    }
    return components;
  }

  static std::string joinPath(const std::vector<std::string>& components) {
    std::string text;
    for (const auto& component : components) {
      if (!text.empty()) text += '/';
      text += component;
    }
    return text;
  }

  enum class IfMissing { kCreate, kFail, kReturnInvalid };

  // Opens the directory named by `components` below the root, one component at a time with
  // O_NOFOLLOW. Symlinks are resolved here, relative to the image root: an absolute target starts
  // again at the root (as inside the container), `..` pops one level, and popping past the root
  // is refused.
  UniqueFd openDirectoryBeneath(const std::vector<std::string>& components, IfMissing if_missing,
                                const std::string& entry) const {
    std::vector<UniqueFd> stack;
    stack.emplace_back(::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0));
    if (!stack.back().valid()) failSystem(entry, "duplicate root descriptor");
    std::deque<std::string> pending(components.begin(), components.end());
    int symlinks_followed = 0;
    while (!pending.empty()) {
      std::string component = std::move(pending.front());
      pending.pop_front();
      if (component.empty() || component == ".") continue;
      if (component == "..") {
        if (stack.size() == 1) refuse(entry, "a symlink on its path points outside the image root");
        stack.pop_back();
        continue;
      }
      int current = stack.back().get();
      struct stat st {};
      if (::fstatat(current, component.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) failSystem(entry, "inspect parent directory");
        if (if_missing == IfMissing::kReturnInvalid) return UniqueFd();
        if (if_missing == IfMissing::kFail) refuse(entry, "'" + component + "' does not exist");
        if (::mkdirat(current, component.c_str(), 0755) != 0 && errno != EEXIST) {
          failSystem(entry, "create parent directory");
        }
      } else if (S_ISLNK(st.st_mode)) {
        if (++symlinks_followed > kMaxSymlinks) refuse(entry, "too many levels of symlinks");
        std::string target = readLink(current, component, entry);
        if (!target.empty() && target.front() == '/') stack.resize(1);
        std::vector<std::string> parts;
        size_t start = 0;
        while (start <= target.size()) {
          size_t end = target.find('/', start);
          if (end == std::string::npos) end = target.size();
          parts.push_back(target.substr(start, end - start));
          start = end + 1;
        }
        pending.insert(pending.begin(), parts.begin(), parts.end());
        continue;
      } else if (!S_ISDIR(st.st_mode)) {
        refuse(entry, "'" + component + "' on its path is not a directory");
      }
      UniqueFd next(::openat(current, component.c_str(),
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) failSystem(entry, "open parent directory");
      stack.push_back(std::move(next));
    }
    return std::move(stack.back());
  }

  std::string readLink(int dir_fd, const std::string& name, const std::string& entry) const {
    std::vector<char> buffer(PATH_MAX + 1);
    ssize_t length = ::readlinkat(dir_fd, name.c_str(), buffer.data(), buffer.size());
    if (length < 0) failSystem(entry, "read symlink");
    if (static_cast<size_t>(length) >= buffer.size()) refuse(entry, "symlink target too long");
    return std::string(buffer.data(), static_cast<size_t>(length));
  }

  // Removes whatever is at `leaf` unless it is a directory and `keep_directory` is set.
  void clearLeaf(int parent_fd, const std::string& leaf, bool keep_directory,
                 const std::string& entry) const {
    struct stat st {};
    if (::fstatat(parent_fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      failSystem(entry, "inspect existing file");
    }
    if (keep_directory && S_ISDIR(st.st_mode)) return;
    if (!removeAt(parent_fd, leaf.c_str())) failSystem(entry, "replace existing file");
  }

  void chargeBudget(std::uint64_t bytes, const std::string& entry) {
    if (bytes > limits_.max_unpacked_bytes - stats_.budget_used) {
      throw Error("unpack layer", label_,
                  "entry '" + entry + "': unpacking it would exceed the limit of " +
                      std::to_string(limits_.max_unpacked_bytes) + " bytes (" +
                      formatBytes(limits_.max_unpacked_bytes) + ")",
                  "possible decompression bomb; raise --max-unpacked-bytes or "
                  "KBATCH_MAX_UNPACKED_BYTES if the image is genuinely this large");
    }
    stats_.budget_used += bytes;
  }

  mode_t sanitizeMode(archive_entry* entry) {
    mode_t mode = archive_entry_perm(entry) & 07777;
    // Rootless runtimes cannot honour setuid/setgid (the files belong to the user), and an image
    // must not carry such bits onto a shared filesystem.
    if (mode & (S_ISUID | S_ISGID)) {
      ++stats_.dropped_setid;
      mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
    }
    return mode;
  }

  void applyEntry(archive* reader, archive_entry* entry) {
    const char* raw_path = archive_entry_pathname(entry);
    if (raw_path == nullptr) {
      throw Error("unpack layer", label_, "an entry has no path name");
    }
    std::string entry_name = raw_path;
    ++stats_.entries;
    chargeBudget(kEntryOverheadBytes, entry_name);
    std::vector<std::string> components = splitPath(entry_name, entry_name, "its path");
    if (components.empty()) return;  // "./": the root itself keeps kbatch's permissions.
    std::string leaf = components.back();
    components.pop_back();
    std::string normalized = joinPath(components);

    if (leaf.rfind(kWhiteoutPrefix, 0) == 0) {
      applyWhiteout(components, leaf, entry_name);
      return;
    }
    seen_in_layer_.insert(normalized.empty() ? leaf : normalized + "/" + leaf);

    UniqueFd parent = openDirectoryBeneath(components, IfMissing::kCreate, entry_name);
    const char* hardlink = archive_entry_hardlink(entry);
    if (hardlink != nullptr) {
      applyHardlink(parent.get(), leaf, hardlink, entry_name);
      return;
    }
    mode_t mode = sanitizeMode(entry);
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR: {
        clearLeaf(parent.get(), leaf, /*keep_directory=*/true, entry_name);
        if (::mkdirat(parent.get(), leaf.c_str(), 0700) != 0 && errno != EEXIST) {
          failSystem(entry_name, "create directory");
        }
        // The owner keeps rwx so that later layers (and `kbatch rmi`) can change the directory.
        if (::fchmodat(parent.get(), leaf.c_str(), mode | S_IRWXU, 0) != 0) {
          failSystem(entry_name, "set directory mode");
        }
        break;
      }
      case AE_IFREG: writeRegularFile(reader, entry, parent.get(), leaf, mode, entry_name); break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr) refuse(entry_name, "symlink without a target");
        clearLeaf(parent.get(), leaf, false, entry_name);
        // The target is stored as written: it is only ever resolved by the walker above or inside
        // the container, both of which keep it within the image root.
        if (::symlinkat(target, parent.get(), leaf.c_str()) != 0) {
          failSystem(entry_name, "create symlink");
        }
        setTimes(parent.get(), leaf, entry, AT_SYMLINK_NOFOLLOW);
        break;
      }
      case AE_IFIFO: {
        clearLeaf(parent.get(), leaf, false, entry_name);
        if (::mkfifoat(parent.get(), leaf.c_str(), mode) != 0) failSystem(entry_name, "create fifo");
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFSOCK:
        ++stats_.skipped_devices;
        log::debug("layer {}: skipping device node or socket '{}'", label_, entry_name);
        break;
      default: refuse(entry_name, "unknown file type");
    }
  }

  void setTimes(int parent_fd, const std::string& leaf, archive_entry* entry, int flags) const {
    if (!archive_entry_mtime_is_set(entry)) return;
    timespec times[2];
    times[0].tv_sec = times[1].tv_sec = archive_entry_mtime(entry);
    times[0].tv_nsec = times[1].tv_nsec = archive_entry_mtime_nsec(entry);
    // Timestamps are cosmetic; a filesystem refusing them is no reason to fail the unpack.
    ::utimensat(parent_fd, leaf.c_str(), times, flags);
  }

  void writeRegularFile(archive* reader, archive_entry* entry, int parent_fd,
                        const std::string& leaf, mode_t mode, const std::string& entry_name) {
    la_int64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    if (declared < 0) refuse(entry_name, "negative size");
    // Charge the declared (logical) size before writing anything: a sparse 1 TB file is refused
    // up front rather than after filling the disk.
    chargeBudget(static_cast<std::uint64_t>(declared), entry_name);
    clearLeaf(parent_fd, leaf, false, entry_name);
    UniqueFd file(::openat(parent_fd, leaf.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file.valid()) failSystem(entry_name, "create file");
    const void* block = nullptr;
    size_t block_size = 0;
    la_int64_t offset = 0;
    for (;;) {
      int status = archive_read_data_block(reader, &block, &block_size, &offset);
      if (status == ARCHIVE_EOF) break;
      if (status < ARCHIVE_WARN) {
        throw Error("unpack layer", label_,
                    "entry '" + entry_name + "': corrupt data: " + describeArchiveError(reader));
      }
      if (offset < 0 || static_cast<std::uint64_t>(offset) + block_size >
                            static_cast<std::uint64_t>(declared)) {
        refuse(entry_name, "data runs past the declared size");
      }
      const char* data = static_cast<const char*>(block);
      while (block_size > 0) {
        ssize_t written = ::pwrite(file.get(), data, block_size, offset);
        if (written < 0) {
          if (errno == EINTR) continue;
          failSystem(entry_name, "write file");
        }
        data += written;
        offset += written;
        block_size -= static_cast<size_t>(written);
        stats_.bytes_written += static_cast<std::uint64_t>(written);
      }
    }
    // Trailing holes of sparse files.
    if (::ftruncate(file.get(), declared) != 0) failSystem(entry_name, "set file size");
    if (::fchmod(file.get(), mode) != 0) failSystem(entry_name, "set file mode");
    if (archive_entry_mtime_is_set(entry)) {
      timespec times[2];
      times[0].tv_sec = times[1].tv_sec = archive_entry_mtime(entry);
      times[0].tv_nsec = times[1].tv_nsec = archive_entry_mtime_nsec(entry);
      ::futimens(file.get(), times);
    }
  }

  void applyHardlink(int parent_fd, const std::string& leaf, const char* target,
                     const std::string& entry_name) {
    std::vector<std::string> target_components = splitPath(target, entry_name, "its hard link target");
    if (target_components.empty()) refuse(entry_name, "hard link to the image root");
    std::string target_leaf = target_components.back();
    target_components.pop_back();
    UniqueFd target_parent = openDirectoryBeneath(target_components, IfMissing::kFail, entry_name);
    struct stat st {};
    if (::fstatat(target_parent.get(), target_leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      refuse(entry_name, std::string("hard link target '") + target + "' does not exist in the image");
    }
    if (S_ISDIR(st.st_mode)) refuse(entry_name, "hard link to a directory");
    clearLeaf(parent_fd, leaf, false, entry_name);
    // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
    if (::linkat(target_parent.get(), target_leaf.c_str(), parent_fd, leaf.c_str(), 0) != 0) {
      failSystem(entry_name, "create hard link");
    }
  }

  void applyWhiteout(const std::vector<std::string>& parent_components, const std::string& leaf,
                     const std::string& entry_name) {
    UniqueFd parent = openDirectoryBeneath(parent_components, IfMissing::kReturnInvalid, entry_name);
    std::string parent_path = joinPath(parent_components);
    if (leaf == kOpaqueMarker) {
      if (!parent.valid()) return;
      // Opaque: hide everything lower layers put in this directory, but keep what this layer
      // itself already wrote there (tar order within a layer is not fixed).
      int dup_fd = ::fcntl(parent.get(), F_DUPFD_CLOEXEC, 0);
      DIR* dir = dup_fd >= 0 ? ::fdopendir(dup_fd) : nullptr;
      if (dir == nullptr) failSystem(entry_name, "list opaque directory");
      std::vector<std::string> doomed;
      while (dirent* child = ::readdir(dir)) {
        std::string_view name = child->d_name;
        if (name == "." || name == "..") continue;
        std::string path = parent_path.empty() ? std::string(name) : parent_path + "/" + std::string(name);
        if (!seen_in_layer_.count(path)) doomed.emplace_back(name);
      }
      ::closedir(dir);
      for (const auto& name : doomed) {
        if (!removeAt(parent.get(), name.c_str())) failSystem(entry_name, "apply opaque whiteout");
      }
      return;
    }
    std::string victim = leaf.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == "..") {
      refuse(entry_name, "whiteout of '" + victim + "' is not a file name");
    }
    if (!parent.valid()) return;
    if (!removeAt(parent.get(), victim.c_str())) failSystem(entry_name, "apply whiteout");
  }

  int root_fd_;
  std::string label_;
  const ExtractLimits& limits_;
  ExtractStats& stats_;
  std::uint64_t reported_devices_ = stats_.skipped_devices;
  std::unordered_set<std::string> seen_in_layer_;
};

ArchivePtr newLayerReader() {
  ArchivePtr reader(archive_read_new());
  if (!reader) throw Error("unpack layer", "", "libarchive: out of memory");
  // Only what OCI layers may be: tar, plain or gzip/zstd-compressed. Every other format and
  // filter stays disabled, which keeps libarchive's attack surface small.
  archive_read_support_filter_gzip(reader.get());
  if (archive_read_support_filter_zstd(reader.get()) != ARCHIVE_OK) {
    log::debug("libarchive has no built-in zstd support; zstd layers will fail to unpack");
  }
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_empty(reader.get());
  return reader;
}

}  // namespace

void extractLayerFile(int root_fd, const std::filesystem::path& layer, const std::string& label,
                      const ExtractLimits& limits, ExtractStats& stats) {
  ArchivePtr reader = newLayerReader();
  UniqueFd fd(::open(layer.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error("open layer", layer.string(), describeErrno(errno));
  if (archive_read_open_fd(reader.get(), fd.get(), 1 << 17) != ARCHIVE_OK) {
    const char* text = archive_error_string(reader.get());
    throw Error("unpack layer", label, std::string("not a tar archive: ") + (text ? text : "?"));
  }
  LayerExtractor(root_fd, label, limits, stats).run(reader.get());
}

void extractLayerMemory(int root_fd, const void* data, std::size_t size, const std::string& label,
                        const ExtractLimits& limits, ExtractStats& stats) {
  ArchivePtr reader = newLayerReader();
  if (archive_read_open_memory(reader.get(), data, size) != ARCHIVE_OK) {
    const char* text = archive_error_string(reader.get());
    throw Error("unpack layer", label, std::string("not a tar archive: ") + (text ? text : "?"));
  }
  LayerExtractor(root_fd, label, limits, stats).run(reader.get());
}

std::uint64_t parseByteSize(const std::string& text, const std::string& field) {
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || errno != 0 || text[0] == '-') {
    throw Error("read size", text, field + ": expected a number of bytes, optionally with K, M, G or T");
  }
  std::string suffix(end);
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") shift = 0;
  else if (suffix == "K" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else if (suffix == "T" || suffix == "TiB") shift = 40;
  else throw Error("read size", text, field + ": unknown unit '" + suffix + "' (use K, M, G or T)");
  if (shift > 0 && value > (~0ULL >> shift)) throw Error("read size", text, field + ": too large");
  return static_cast<std::uint64_t>(value) << shift;
}

ExtractLimits extractLimitsFromEnvironment() {
  ExtractLimits limits;
  if (const char* value = std::getenv("KBATCH_MAX_UNPACKED_BYTES"); value != nullptr && *value) {
    limits.max_unpacked_bytes = parseByteSize(value, "KBATCH_MAX_UNPACKED_BYTES");
  }
  return limits;
}

}  // namespace kbatch::image
