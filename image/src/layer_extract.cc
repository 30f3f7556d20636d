#include "layer_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fs_util.h"
#include "kbatch/common/bytes.h"
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
// Open directories kept per layer: enough for the directories a tar stream goes back and forth
// between, far below the descriptor limit.
constexpr std::size_t kMaxCachedDirectories = 64;

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

  // The directory named by `components` (as the entry wrote them), from the cache when an earlier
  // entry of this layer opened it. The descriptor stays owned by the cache and valid until the
  // next entry starts (see forgetDirectories). Tar streams list a directory's files together, so
  // most entries find their parent here instead of walking from the root again.
  // -1 for IfMissing::kReturnInvalid when a component does not exist.
  int directoryBeneath(const std::vector<std::string>& components, IfMissing if_missing,
                       const std::string& entry) {
    std::string key = joinPath(components);
    if (auto it = directories_.find(key); it != directories_.end()) return it->second.get();
    UniqueFd opened = openDirectoryBeneath(components, if_missing, entry);
    if (!opened.valid()) return -1;
    if (directories_.size() >= kMaxCachedDirectories) forgetDirectories();
    return directories_.emplace(std::move(key), std::move(opened)).first->second.get();
  }

  // Called whenever this layer removes something: a removed directory, or one replaced by a
  // symlink, must be walked to again. The descriptors the current entry borrowed stay open until
  // the next entry starts.
  void forgetDirectories() {
    for (auto& [path, fd] : directories_) retired_directories_.push_back(std::move(fd));
    directories_.clear();
  }

  // Removes `name` in `dir_fd` (recursively), forgetting cached directories since it may be one.
  bool removeBeneath(int dir_fd, const char* name) {
    forgetDirectories();
    return removeAt(dir_fd, name);
  }

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
                 const std::string& entry) {
    struct stat st {};
    if (::fstatat(parent_fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      failSystem(entry, "inspect existing file");
    }
    if (keep_directory && S_ISDIR(st.st_mode)) return;
    if (!removeBeneath(parent_fd, leaf.c_str())) failSystem(entry, "replace existing file");
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
    retired_directories_.clear();  // no descriptor of an earlier entry is in use any more
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

    const int parent = directoryBeneath(components, IfMissing::kCreate, entry_name);
    const char* hardlink = archive_entry_hardlink(entry);
    if (hardlink != nullptr) {
      applyHardlink(parent, leaf, hardlink, entry_name);
      return;
    }
    mode_t mode = sanitizeMode(entry);
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR: {
        // Creating first and looking only when the name is taken saves a stat per entry.
        if (::mkdirat(parent, leaf.c_str(), 0700) != 0) {
          if (errno != EEXIST) failSystem(entry_name, "create directory");
          clearLeaf(parent, leaf, /*keep_directory=*/true, entry_name);
          if (::mkdirat(parent, leaf.c_str(), 0700) != 0 && errno != EEXIST) {
            failSystem(entry_name, "create directory");
          }
        }
        // The owner keeps rwx so that later layers (and `kbatch rmi`) can change the directory.
        if (::fchmodat(parent, leaf.c_str(), mode | S_IRWXU, 0) != 0) {
          failSystem(entry_name, "set directory mode");
        }
        break;
      }
      case AE_IFREG: writeRegularFile(reader, entry, parent, leaf, mode, entry_name); break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr) refuse(entry_name, "symlink without a target");
        // The target is stored as written: it is only ever resolved by the walker above or inside
        // the container, both of which keep it within the image root.
        if (::symlinkat(target, parent, leaf.c_str()) != 0) {
          if (errno != EEXIST) failSystem(entry_name, "create symlink");
          clearLeaf(parent, leaf, false, entry_name);
          if (::symlinkat(target, parent, leaf.c_str()) != 0) {
            failSystem(entry_name, "create symlink");
          }
        }
        setTimes(parent, leaf, entry, AT_SYMLINK_NOFOLLOW);
        break;
      }
      case AE_IFIFO: {
        clearLeaf(parent, leaf, false, entry_name);
        if (::mkfifoat(parent, leaf.c_str(), mode) != 0) failSystem(entry_name, "create fifo");
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
    // O_EXCL never follows or reuses what is there; only a taken name costs the extra stat.
    constexpr int kCreateFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd file(::openat(parent_fd, leaf.c_str(), kCreateFlags, 0600));
    if (!file.valid() && errno == EEXIST) {
      clearLeaf(parent_fd, leaf, false, entry_name);
      file.reset(::openat(parent_fd, leaf.c_str(), kCreateFlags, 0600));
    }
    if (!file.valid()) failSystem(entry_name, "create file");
    la_int64_t end_of_data = 0;
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
      end_of_data = std::max(end_of_data, offset);
    }
    // Trailing holes of sparse files.
    if (end_of_data < declared && ::ftruncate(file.get(), declared) != 0) {
      failSystem(entry_name, "set file size");
    }
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
    const int target_parent = directoryBeneath(target_components, IfMissing::kFail, entry_name);
    struct stat st {};
    if (::fstatat(target_parent, target_leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      refuse(entry_name, std::string("hard link target '") + target + "' does not exist in the image");
    }
    if (S_ISDIR(st.st_mode)) refuse(entry_name, "hard link to a directory");
    clearLeaf(parent_fd, leaf, false, entry_name);
    // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
    if (::linkat(target_parent, target_leaf.c_str(), parent_fd, leaf.c_str(), 0) != 0) {
      failSystem(entry_name, "create hard link");
    }
  }

  void applyWhiteout(const std::vector<std::string>& parent_components, const std::string& leaf,
                     const std::string& entry_name) {
    const int parent = directoryBeneath(parent_components, IfMissing::kReturnInvalid, entry_name);
    std::string parent_path = joinPath(parent_components);
    if (leaf == kOpaqueMarker) {
      if (parent < 0) return;
      // Opaque: hide everything lower layers put in this directory, but keep what this layer
      // itself already wrote there (tar order within a layer is not fixed).
      int dup_fd = ::fcntl(parent, F_DUPFD_CLOEXEC, 0);
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
        if (!removeBeneath(parent, name.c_str())) failSystem(entry_name, "apply opaque whiteout");
      }
      return;
    }
    std::string victim = leaf.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == "..") {
      refuse(entry_name, "whiteout of '" + victim + "' is not a file name");
    }
    if (parent < 0) return;
    if (!removeBeneath(parent, victim.c_str())) failSystem(entry_name, "apply whiteout");
  }

  int root_fd_;
  std::string label_;
  const ExtractLimits& limits_;
  ExtractStats& stats_;
  std::uint64_t reported_devices_ = stats_.skipped_devices;
  std::unordered_set<std::string> seen_in_layer_;
  /// Directories opened by earlier entries of this layer, by their path as the entries wrote it.
  std::unordered_map<std::string, UniqueFd> directories_;
  /// Forgotten directories the current entry may still use (closed when the next one starts).
  std::vector<UniqueFd> retired_directories_;
};

// Only what OCI layers may be: tar, plain or gzip/zstd-compressed. Every other format and filter
// stays disabled, which keeps libarchive's attack surface small.
void enableLayerFilters(archive* reader) {
  archive_read_support_filter_gzip(reader);
  if (archive_read_support_filter_zstd(reader) != ARCHIVE_OK) {
    log::debug("libarchive has no built-in zstd support; zstd layers will fail to unpack");
  }
}

ArchivePtr newLayerReader() {
  ArchivePtr reader(archive_read_new());
  if (!reader) throw Error("unpack layer", "", "libarchive: out of memory");
  enableLayerFilters(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_empty(reader.get());
  return reader;
}

// Decompresses a layer file on a thread of its own while the caller unpacks the tar stream, as
// `tar -xzf` runs gzip beside tar: on a multi-core node inflating and creating files overlap
// instead of taking turns (bench/image_bench.sh). The thread only reads the layer file and fills
// a bounded queue; everything that touches the image root stays on the caller's thread. A
// decompression bomb is still stopped by the caller's budget: the queue never holds more than
// kMaxQueuedBytes ahead of it, and the destructor stops the thread.
class BackgroundDecompressor {
 public:
  explicit BackgroundDecompressor(int layer_fd)
      : layer_fd_(layer_fd), thread_([this] { decompress(); }) {}
  BackgroundDecompressor(const BackgroundDecompressor&) = delete;
  BackgroundDecompressor& operator=(const BackgroundDecompressor&) = delete;
  ~BackgroundDecompressor() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  // Opens `reader` (tar only: the data arrives decompressed) on this decompressor's output.
  int openReader(archive* reader) {
    return archive_read_open(reader, this, nullptr, &BackgroundDecompressor::readCallback, nullptr);
  }

 private:
  static constexpr std::size_t kChunkBytes = 1 << 20;
  static constexpr std::size_t kMaxQueuedChunks = 8;

  // libarchive's read callback: the next chunk (valid until the next call), 0 at the end, -1
  // with the thread's error.
  static la_ssize_t readCallback(archive* reader, void* self, const void** buffer) {
    auto& decompressor = *static_cast<BackgroundDecompressor*>(self);
    std::unique_lock lock(decompressor.mutex_);
    decompressor.changed_.wait(lock, [&] {
      return !decompressor.ready_.empty() || decompressor.finished_;
    });
    if (decompressor.ready_.empty()) {
      if (!decompressor.error_.empty()) {
        archive_set_error(reader, EIO, "%s", decompressor.error_.c_str());
        return -1;
      }
      return 0;
    }
    decompressor.current_ = std::move(decompressor.ready_.front());
    decompressor.ready_.pop_front();
    lock.unlock();
    decompressor.changed_.notify_all();
    *buffer = decompressor.current_.data();
    return static_cast<la_ssize_t>(decompressor.current_.size());
  }

  // Hands a full chunk to the reader; false once the reader is gone.
  bool push(std::vector<char>& chunk) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return ready_.size() < kMaxQueuedChunks || cancelled_; });
    if (cancelled_) return false;
    ready_.push_back(std::move(chunk));
    lock.unlock();
    changed_.notify_all();
    chunk = {};
    chunk.reserve(kChunkBytes);
    return true;
  }

  void finish(std::string error) {
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
      error_ = std::move(error);
    }
    changed_.notify_all();
  }

  // The thread: libarchive's "raw" format passes the decompressed bytes through as one entry.
  void decompress() noexcept {
    try {
      ArchivePtr raw(archive_read_new());
      if (!raw) return finish("libarchive: out of memory");
      enableLayerFilters(raw.get());
      archive_read_support_format_raw(raw.get());
      archive_read_support_format_empty(raw.get());
      if (archive_read_open_fd(raw.get(), layer_fd_, 1 << 17) != ARCHIVE_OK) {
        return finish(std::string("not a tar archive: ") + errorText(raw.get()));
      }
      archive_entry* entry = nullptr;
      int status = archive_read_next_header(raw.get(), &entry);
      if (status == ARCHIVE_EOF) return finish({});  // an empty layer
      if (status < ARCHIVE_WARN) return finish(std::string("corrupt archive: ") + errorText(raw.get()));
      std::vector<char> chunk;
      chunk.reserve(kChunkBytes);
      for (;;) {
        const void* block = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        status = archive_read_data_block(raw.get(), &block, &size, &offset);
        if (status == ARCHIVE_EOF) break;
        if (status < ARCHIVE_WARN) {
          return finish(std::string("corrupt compressed data: ") + errorText(raw.get()));
        }
        chunk.insert(chunk.end(), static_cast<const char*>(block),
                     static_cast<const char*>(block) + size);
        if (chunk.size() >= kChunkBytes && !push(chunk)) return finish({});
      }
      if (!chunk.empty() && !push(chunk)) return finish({});
      finish({});
    } catch (const std::exception& error) {
      finish(std::string("decompressing: ") + error.what());
    }
  }

  static std::string errorText(archive* reader) {
    const char* text = archive_error_string(reader);
    return text != nullptr ? text : "unknown libarchive error";
  }

  int layer_fd_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::vector<char>> ready_;
  std::vector<char> current_;  // the chunk libarchive is reading
  bool finished_ = false;
  bool cancelled_ = false;
  std::string error_;
  std::thread thread_;  // last: started once every other member exists
};

}  // namespace

void extractLayerFile(int root_fd, const std::filesystem::path& layer, const std::string& label,
                      const ExtractLimits& limits, ExtractStats& stats) {
  UniqueFd fd(::open(layer.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error("open layer", layer.string(), describeErrno(errno));
  BackgroundDecompressor decompressor(fd.get());
  ArchivePtr reader(archive_read_new());
  if (!reader) throw Error("unpack layer", label, "libarchive: out of memory");
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_empty(reader.get());
  if (decompressor.openReader(reader.get()) != ARCHIVE_OK) {
    const char* text = archive_error_string(reader.get());
    throw Error("unpack layer", label, std::string("not a tar archive: ") + (text ? text : "?"));
  }
  // The reader goes before the decompressor (declared after it), which then stops its thread.
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
