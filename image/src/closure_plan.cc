#include "closure_plan.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "kbatch/common/error.h"
#include "fs_util.h"

namespace kbatch::image::detail {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxSymlinkDepth = 40;  // the kernel's limit (path_resolution(7))

struct DigestDeleter {
  void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};

class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) {
      throw Error("hash", "sha256", "OpenSSL cannot initialise SHA-256");
    }
  }
  void update(const void* data, std::size_t size) {
    EVP_DigestUpdate(context_.get(), data, size);
  }
  void update(const std::string& text) {
    update(text.data(), text.size());
    update("\0", 1);  // a separator, so that ("ab","c") and ("a","bc") differ
  }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest, &length);
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; ++i) {
      out.push_back(kHex[digest[i] >> 4]);
      out.push_back(kHex[digest[i] & 15]);
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> context_;
};

[[noreturn]] void failPath(const char* action, const fs::path& path, int errnum) {
  throw Error(action, path.string(), describeErrno(errnum));
}

void copyRegularFile(const fs::path& from, const fs::path& to, mode_t mode) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (in.get() < 0) failPath("read file for the image", from, errno);
  int out_fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (out_fd < 0 && errno == EEXIST) {
    // A --base root may hold an older copy: this host's file replaces it (never written through).
    if (::unlink(to.c_str()) != 0) failPath("replace file in the image", to, errno);
    out_fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  UniqueFd out(out_fd);
  if (out.get() < 0) failPath("create file in the image", to, errno);
  // copy_file_range lets the kernel copy (or reflink) without passing data through user space.
  while (true) {
    ssize_t copied = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
    if (copied == 0) break;
    if (copied > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
      failPath("copy file into the image", from, errno);
    }
    // Fall back to read/write (older kernels, some file systems).
    char buffer[1 << 16];
    ssize_t got;
    while ((got = ::read(in.get(), buffer, sizeof buffer)) != 0) {
      if (got < 0) {
        if (errno == EINTR) continue;
        failPath("read file for the image", from, errno);
      }
      for (ssize_t written = 0; written < got;) {
        ssize_t n = ::write(out.get(), buffer + written, static_cast<std::size_t>(got - written));
        if (n < 0) failPath("write file in the image", to, errno);
        written += n;
      }
    }
    break;
  }
  if (::fchmod(out.get(), mode & 07755) != 0) failPath("set mode in the image", to, errno);
}

}  // namespace

std::string sha256Text(const std::string& text) {
  Sha256 hash;
  hash.update(text.data(), text.size());
  return hash.hex();
}

std::string sha256File(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) failPath("hash file", path, errno);
  Sha256 hash;
  char buffer[1 << 16];
  while (true) {
    ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      failPath("hash file", path, errno);
    }
    hash.update(buffer, static_cast<std::size_t>(got));
  }
  return hash.hex();
}

void ClosurePlan::addPath(const fs::path& host_path) {
  if (!host_path.is_absolute()) {
    throw Error("add path to image", host_path.string(), "not an absolute path");
  }
  addPathWithin(host_path.lexically_normal(), 0);
}

void ClosurePlan::addPathWithin(const fs::path& host_path, int depth) {
  if (depth > kMaxSymlinkDepth) {
    throw Error("add path to image", host_path.string(), "too many levels of symbolic links");
  }
  fs::path prefix = "/";
  for (auto component = std::next(host_path.begin()); component != host_path.end(); ++component) {
    if (component->empty()) continue;
    prefix /= *component;
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) != 0) failPath("add path to image", prefix, errno);
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      fs::path target = fs::read_symlink(prefix, ec);
      if (ec) throw Error("read symlink", prefix.string(), ec.message());
      PlannedEntry entry;
      entry.kind = PlannedEntry::Kind::kSymlink;
      entry.link_target = target;
      entries_[prefix] = entry;
      fs::path next = target.is_absolute() ? target : prefix.parent_path() / target;
      for (auto rest = std::next(component); rest != host_path.end(); ++rest) next /= *rest;
      addPathWithin(next.lexically_normal(), depth + 1);
      return;
    }
    PlannedEntry entry;
    entry.mode = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      entry.kind = PlannedEntry::Kind::kDirectory;
      // Directories stay enterable and writable by the owner so the cache can be pruned.
      entry.mode = (entry.mode | 0700) & 0755;
    } else if (S_ISREG(st.st_mode)) {
      if (std::next(component) != host_path.end()) {
        throw Error("add path to image", host_path.string(),
                    prefix.string() + " is a file, not a directory");
      }
      entry.kind = PlannedEntry::Kind::kFile;
      entry.host_source = prefix;
      entry.mode = (entry.mode | 0600) & 0755;  // setuid/setgid bits are never copied
    } else {
      throw Error("add path to image", prefix.string(),
                  "is neither a file, a directory nor a symlink (devices, sockets and FIFOs are "
                  "not copied into images)");
    }
    entries_[prefix] = entry;
  }
}

void ClosurePlan::addTree(const fs::path& host_dir) {
  addPath(host_dir);
  std::error_code ec;
  fs::path real = fs::canonical(host_dir, ec);
  if (ec) throw Error("add directory to image", host_dir.string(), ec.message());
  for (auto it = fs::recursive_directory_iterator(real, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink()) {
      // The link itself, and what it points to when that exists.
      addPath(it->path());
    } else if (it->is_directory() || it->is_regular_file()) {
      addPath(it->path());
    }
  }
  if (ec) throw Error("read directory for the image", host_dir.string(), ec.message());
}

void ClosurePlan::addReport(const DependencyReport& report) {
  auto missing = report.missingNames();
  if (!missing.empty()) {
    std::string names;
    for (const auto& name : missing) names += (names.empty() ? "" : ", ") + name;
    throw Error("build dependency image", report.binary.string(),
                "libraries not found on this host: " + names,
                "install them, or pass the job's --ld-library-path / --plugin-dir",
                exit_code::kNotFound);
  }
  addPath(report.requested_path.empty() ? report.binary : report.requested_path);
  if (report.interpreter) addPath(*report.interpreter);
  for (const auto& library : report.libraries) addLibrary(library);
  for (const auto& plugin : report.plugins) addPath(plugin);
}

void ClosurePlan::addLibrary(const LibraryRecord& library) {
  if (library.missing()) return;
  addPath(*library.path);
  // The job's LD_LIBRARY_PATH never reaches the container (it names host libraries; see
  // runner/src/job_environment.cc), so what it found is entered in the image's cache instead.
  if (library.found_via != FoundVia::kLdCache && library.found_via != FoundVia::kLdLibraryPath) {
    return;
  }
  for (const auto& existing : cache_entries_) {
    if (existing.name == library.name) return;
  }
  LdCacheEntry entry;
  entry.name = library.name;
  entry.path = *library.path;
  entry.flags = nativeLdCacheFlags();
  cache_entries_.push_back(entry);
}

std::string ClosurePlan::contentDigest() const { return contentDigest(sha256File); }

std::string ClosurePlan::contentDigest(
    const std::function<std::string(const fs::path&)>& hash_file) const {
  Sha256 hash;
  for (const auto& [path, entry] : entries_) {
    hash.update(path.string());
    hash.update(std::to_string(static_cast<int>(entry.kind)) + " " + std::to_string(entry.mode));
    if (entry.kind == PlannedEntry::Kind::kSymlink) hash.update(entry.link_target.string());
    if (entry.kind == PlannedEntry::Kind::kFile) hash.update(hash_file(entry.host_source));
  }
  for (const auto& entry : cache_entries_) hash.update(entry.name + "=" + entry.path.string());
  return hash.hex();
}

void ClosurePlan::materialise(const fs::path& root) const {
  // std::map orders "/a" before "/a/b", so parents are created before their children; no entry
  // lies beneath a symlink because planning switches to the link's target.
  for (const auto& [path, entry] : entries_) {
    fs::path target = root / path.relative_path();
    // Never write through a symlink: a --base root may hold an absolute link (/lib -> /usr/lib)
    // that would otherwise lead out of the image and into the host.
    fs::path parent = root;
    for (const auto& component : path.parent_path().relative_path()) {
      parent /= component;
      struct stat st {};
      if (::lstat(parent.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        throw Error("build dependency image", parent.string(),
                    "the base root has a symlink where this host has the directory " +
                        path.parent_path().string(),
                    "use a base with the same /usr layout as this host, or no --base");
      }
    }
    switch (entry.kind) {
      case PlannedEntry::Kind::kDirectory:
        if (::mkdir(target.c_str(), entry.mode) != 0 && errno != EEXIST) {
          failPath("create directory in the image", target, errno);
        }
        break;
      case PlannedEntry::Kind::kSymlink:
        if (::symlink(entry.link_target.c_str(), target.c_str()) != 0 && errno != EEXIST) {
          failPath("create symlink in the image", target, errno);
        }
        break;
      case PlannedEntry::Kind::kFile:
        copyRegularFile(entry.host_source, target, entry.mode);
        break;
    }
  }
}

}  // namespace kbatch::image::detail
