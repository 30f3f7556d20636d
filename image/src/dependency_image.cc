// buildDependencyImage(): resolve the job's binary, shell and extras, choose what to copy and what
// to install, hash those inputs into the cache key, and build the root filesystem once per key.

#include "kbatch/image/dependency_image.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "closure_plan.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/deps.h"
#include "kbatch/image/resolve.h"
#include "packages_builder.h"

namespace kbatch::image {

namespace fs = std::filesystem;

const char* toString(DependencyStrategy strategy) {
  switch (strategy) {
    case DependencyStrategy::kClosure: return "closure";
    case DependencyStrategy::kPackages: return "packages";
    case DependencyStrategy::kAuto: return "auto";
  }
  return "?";
}

DependencyStrategy parseDependencyStrategy(const std::string& text, const std::string& field) {
  if (text == "closure") return DependencyStrategy::kClosure;
  if (text == "packages") return DependencyStrategy::kPackages;
  if (text == "auto") return DependencyStrategy::kAuto;
  throw Error("read dependency strategy", field, "'" + text + "' is not closure, packages or auto");
}

fs::path dependencyCacheRoot() {
  if (const char* cache = std::getenv("KBATCH_CACHE"); cache != nullptr && *cache != '\0') {
    return cache;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return fs::path(xdg) / "kbatch";
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home != '/') {
    struct passwd* entry = ::getpwuid(::getuid());
    if (entry == nullptr) {
      throw Error("find cache directory", "$HOME", "not set and the user has no passwd entry",
                  "set KBATCH_CACHE");
    }
    home = entry->pw_dir;
  }
  return fs::path(home) / ".cache" / "kbatch";
}

namespace {

/// Directories the runner mounts onto (/dev, /proc, /sys, /tmp) and the usual homes, so that the
/// image can be bind-mounted as `/` read-only without an overlay for missing mount points.
const char* const kMountPoints[] = {"/dev", "/proc", "/sys", "/tmp", "/run", "/home", "/root",
                                    "/var", "/var/tmp", "/etc"};

/// Minimal account entries: root, nobody and the building user, so `id` and `whoami` work.
std::pair<std::string, std::string> accountFiles() {
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\n";
  std::string group = "root:x:0:\n";
  const uid_t uid = ::getuid();
  const gid_t gid = ::getgid();
  if (uid != 0) {
    if (struct passwd* entry = ::getpwuid(uid)) {
      passwd += std::string(entry->pw_name) + ":x:" + std::to_string(uid) + ":" +
                std::to_string(gid) + "::" + entry->pw_dir + ":/bin/sh\n";
      group += std::string(entry->pw_name) + ":x:" + std::to_string(gid) + ":\n";
    }
  }
  passwd += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
  group += "nogroup:x:65534:\n";
  return {passwd, group};
}

void writeTextFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw Error("write file in the image", path.string(), "write failed");
}

/// The mount points and, where the image has none, account files.
void writeSkeleton(const fs::path& root) {
  for (const char* dir : kMountPoints) {
    fs::path target = root / fs::path(dir).relative_path();
    std::error_code ec;
    // A mount point that is a symlink in the image (e.g. /var/run) is left as the image has it.
    if (fs::is_symlink(target, ec)) continue;
    fs::create_directories(target, ec);
    if (ec) throw Error("create mount point in the image", target.string(), ec.message());
  }
  fs::permissions(root / "tmp", fs::perms::all | fs::perms::sticky_bit);
  auto [passwd, group] = accountFiles();
  if (!fs::exists(root / "etc/passwd")) writeTextFile(root / "etc/passwd", passwd);
  if (!fs::exists(root / "etc/group")) writeTextFile(root / "etc/group", group);
}

/// A lock file held with flock(2) for the life of the object.
class BuildLock {
 public:
  explicit BuildLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("lock image build", path.string(), describeErrno(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw Error("lock image build", path.string(), describeErrno(errno));
    }
  }
  ~BuildLock() { ::close(fd_); }
  BuildLock(const BuildLock&) = delete;
  BuildLock& operator=(const BuildLock&) = delete;

 private:
  int fd_ = -1;
};

/// Everything one request resolves to, before any building.
struct ResolvedInputs {
  std::vector<DependencyReport> reports;        // binary, shell, ELF extras
  std::vector<fs::path> plain_extras;           // non-ELF extra files and directories
};

bool isDynamicElf(const fs::path& path) {
  auto header = probeElfHeader(path);
  if (!header) return false;
  return readElfFile(path).has_dynamic;
}

ResolvedInputs resolveInputs(const DependencyImageRequest& request) {
  DependencyOptions options;
  options.ld_library_path = request.ld_library_path;
  options.plugin_dirs = request.plugin_dirs;
  ResolvedInputs inputs;
  if (request.binary) {
    inputs.reports.push_back(resolveDependencies(*request.binary, options));
  }
  if (!request.shell.is_absolute()) {
    throw Error("build dependency image", request.shell.string(),
                "the job's shell must be an absolute path");
  }
  options.plugin_dirs.clear();  // plugins belong to the binary
  inputs.reports.push_back(resolveDependencies(request.shell, options));
  for (const auto& extra : request.extra_paths) {
    std::error_code ec;
    fs::path absolute = fs::absolute(extra, ec).lexically_normal();
    if (ec || !fs::exists(absolute, ec)) {
      throw Error("add extra path", extra.string(), "no such file or directory", {},
                  exit_code::kNotFound);
    }
    if (fs::is_regular_file(absolute) && isDynamicElf(absolute)) {
      inputs.reports.push_back(resolveDependencies(absolute, options));
    } else {
      inputs.plain_extras.push_back(absolute);
    }
  }
  return inputs;
}

/// The files of one report that a package could provide: libraries, the interpreter, the
/// object itself.
struct PackageMapping {
  std::set<std::string> packages;
  std::vector<fs::path> unpackaged;  // resolved paths no package owns
};

/// `first_is_job_binary`: the job's own binary is always copied, never looked up; its libraries
/// are mapped like everything else's.
PackageMapping mapToPackages(const std::vector<DependencyReport>& reports,
                             bool first_is_job_binary) {
  std::vector<fs::path> wanted;
  std::vector<std::vector<fs::path>> chains;
  auto want = [&](const std::vector<fs::path>& chain) {
    chains.push_back(chain);
    wanted.insert(wanted.end(), chain.begin(), chain.end());
  };
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const DependencyReport& report = reports[i];
    for (const auto& missing : report.missingNames()) {
      throw Error("build dependency image", report.binary.string(),
                  "library " + missing + " not found on this host", {}, exit_code::kNotFound);
    }
    if (i > 0 || !first_is_job_binary) want(followSymlinks(report.requested_path));
    if (report.interpreter) want(report.interpreter_chain);
    for (const auto& library : report.libraries) want(library.symlink_chain);
    for (const auto& plugin : report.plugins) want(followSymlinks(plugin));
  }
  auto owners = lookupDebianPackages(wanted);
  PackageMapping mapping;
  for (const auto& chain : chains) {
    std::optional<std::string> owner;
    for (auto it = chain.rbegin(); it != chain.rend() && !owner; ++it) {
      if (auto found = owners.find(*it); found != owners.end()) owner = found->second;
    }
    if (owner) {
      mapping.packages.insert(*owner);
    } else if (std::find(mapping.unpackaged.begin(), mapping.unpackaged.end(), chain.front()) ==
               mapping.unpackaged.end()) {
      mapping.unpackaged.push_back(chain.front());
    }
  }
  return mapping;
}

std::string randomSuffix() {
  std::random_device device;
  return std::to_string(::getpid()) + "-" + std::to_string(device());
}

void writeManifest(const fs::path& file, const DependencyImage& image,
                   const DependencyImageRequest& request, std::size_t entry_count) {
  nlohmann::json manifest = {
      {"key", image.key},
      {"strategy", toString(image.strategy)},
      {"binary", request.binary ? nlohmann::json(request.binary->string()) : nlohmann::json()},
      {"shell", request.shell.string()},
      {"packages", image.packages},
      {"copied_entries", entry_count},
  };
  writeTextFile(file, manifest.dump(2) + "\n");
}

}  // namespace

DependencyImage buildDependencyImageDetailed(const DependencyImageRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  ResolvedInputs inputs = resolveInputs(request);

  DependencyImage image;
  image.strategy = request.strategy;
  detail::ClosurePlan plan;
  std::vector<std::string> package_versions;
  std::optional<fs::path> base_root;
  if (request.base) base_root = resolveImageRoot(*request.base, ResolveOptions{});

  if (request.strategy == DependencyStrategy::kClosure) {
    for (const auto& report : inputs.reports) plan.addReport(report);
  } else {
    PackageMapping mapping = mapToPackages(inputs.reports, request.binary.has_value());
    if (!mapping.unpackaged.empty() && request.strategy == DependencyStrategy::kPackages) {
      std::string files;
      for (const auto& file : mapping.unpackaged) files += (files.empty() ? "" : ", ") + file.string();
      throw Error("build dependency image", request.binary ? request.binary->string() : "shell",
                  "no installed package provides " + files,
                  "use --strategy auto to copy those files from this host");
    }
    if (base_root && !mapping.packages.empty()) {
      throw Error("build dependency image", *request.base,
                  "installing packages into a given --base is not supported",
                  "use --strategy closure with --base, or omit --base for a minbase root");
    }
    image.packages.assign(mapping.packages.begin(), mapping.packages.end());
    package_versions = detail::installedPackageVersions(image.packages);
    // The job's binary, and whatever no package provides (auto only), come from this host.
    if (request.binary) plan.addPath(inputs.reports.front().requested_path);
    for (const auto& file : mapping.unpackaged) plan.addPath(file);
    for (const auto& report : inputs.reports) {
      for (const auto& library : report.libraries) {
        if (std::find(mapping.unpackaged.begin(), mapping.unpackaged.end(), *library.path) !=
            mapping.unpackaged.end()) {
          plan.addLibrary(library);
        }
      }
    }
    if (image.packages.empty()) image.strategy = DependencyStrategy::kClosure;
    else if (mapping.unpackaged.empty()) image.strategy = DependencyStrategy::kPackages;
    else image.strategy = DependencyStrategy::kAuto;
    if (image.strategy == DependencyStrategy::kClosure) {
      for (const auto& report : inputs.reports) plan.addReport(report);
    }
  }
  for (const auto& extra : inputs.plain_extras) {
    if (fs::is_directory(extra)) plan.addTree(extra);
    else plan.addPath(extra);
  }

  // The key: everything that decides the image's content.
  std::string key_material = "kbatch dependency image v1\n";
  key_material += std::string("strategy ") + toString(image.strategy) + "\n";
  key_material += "closure " + plan.contentDigest() + "\n";
  for (const auto& version : package_versions) key_material += "package " + version + "\n";
  if (!image.packages.empty()) {
    key_material += "suite " + detail::hostDistributionCodename() + "\n";
    for (const auto& source : detail::hostAptSourceFiles()) {
      key_material += "sources " + source.string() + " " + detail::sha256File(source) + "\n";
    }
  }
  if (base_root) key_material += "base " + base_root->string() + "\n";
  auto accounts = accountFiles();
  key_material += accounts.first + accounts.second;
  image.key = detail::sha256Text(key_material);

  const fs::path cache_root = request.cache_dir ? *request.cache_dir : dependencyCacheRoot();
  const fs::path image_dir = cache_root / "deps" / image.key;
  image.rootfs = image_dir / "rootfs";
  std::error_code ec;
  if (fs::is_directory(image.rootfs, ec)) {
    image.reused = true;
    return image;
  }
  fs::create_directories(image_dir, ec);
  if (ec) throw Error("create image cache directory", image_dir.string(), ec.message());
  BuildLock lock(cache_root / "deps" / (image.key + ".lock"));
  if (fs::is_directory(image.rootfs, ec)) {  // another process built it while we waited
    image.reused = true;
    return image;
  }
  const fs::path scratch = image_dir / (".build-" + randomSuffix());
  const fs::path staging = scratch / "rootfs";
  try {
    fs::create_directories(staging);
    if (!image.packages.empty()) {
      if (!request.quiet) {
        log::info("building dependency image {} (packages: {})", image.key.substr(0, 12),
                  image.packages.size());
      }
      detail::buildPackagesRoot(image.packages, staging, scratch, request.quiet);
    } else if (base_root) {
      // The base first, then the closure on top of it.
      fs::copy(*base_root, staging,
               fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
    plan.materialise(staging);
    writeSkeleton(staging);
    if (!plan.cacheEntries().empty()) {
      std::vector<LdCacheEntry> entries;
      fs::path cache_file = staging / "etc/ld.so.cache";
      if (fs::exists(cache_file)) entries = readLdCache(cache_file);
      entries.insert(entries.end(), plan.cacheEntries().begin(), plan.cacheEntries().end());
      fs::remove(cache_file);
      writeLdCache(cache_file, entries);
    }
    writeManifest(scratch / "manifest.json", image, request, plan.entries().size());
    fs::rename(scratch / "manifest.json", image_dir / "manifest.json");
    // The rename publishes the finished root in one step: readers never see a partial image.
    fs::rename(staging, image.rootfs);
    fs::remove_all(scratch);
  } catch (...) {
    std::error_code cleanup;
    fs::remove_all(scratch, cleanup);
    throw;
  }
  if (!request.quiet) {
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    log::info("built dependency image {} ({}) in {:.2f} s", image.key.substr(0, 12),
              toString(image.strategy), elapsed.count());
  }
  return image;
}

fs::path buildDependencyImage(const DependencyImageRequest& request) {
  return buildDependencyImageDetailed(request).rootfs;
}

}  // namespace kbatch::image
