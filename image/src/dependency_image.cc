// buildDependencyImage(): resolve the job's binary, shell and extras, choose what to copy and what
// to install, hash those inputs into the image key, and build the OCI image (base layers + one
// dependency layer) into the image store once per key; locateDependencyImage(): the compute
// node's lookup of an image pinned at submission.

#include "kbatch/image/dependency_image.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>

#include "closure_plan.h"
#include "dependency_memo.h"
#include "deps_hash_cache.h"
#include "digest.h"
#include "fs_util.h"
#include "kbatch/image/store.h"
#include "layer_extract.h"
#include "manifest.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/deps.h"
#include "kbatch/image/registry.h"
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

fs::path dependencyCacheRoot() { return defaultStoreRoot(); }

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
  std::set<std::string> not_installed;  // found in a Contents index, no version known here
  std::vector<fs::path> unpackaged;  // resolved paths no package owns
};

/// `first_is_job_binary`: the job's own binary is always copied, never looked up; its libraries
/// are mapped like everything else's.
PackageMapping mapToPackages(const std::vector<DependencyReport>& reports,
                             bool first_is_job_binary,
                             const std::vector<fs::path>& contents_indexes) {
  std::vector<fs::path> wanted;
  std::vector<std::string> missing_names;
  std::vector<std::vector<fs::path>> chains;
  auto want = [&](const std::vector<fs::path>& chain) {
    chains.push_back(chain);
    wanted.insert(wanted.end(), chain.begin(), chain.end());
  };
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const DependencyReport& report = reports[i];
    for (const auto& missing : report.missingNames()) missing_names.push_back(missing);
    if (i > 0 || !first_is_job_binary) want(followSymlinks(report.requested_path));
    if (report.interpreter) want(report.interpreter_chain);
    for (const auto& library : report.libraries) want(library.symlink_chain);
    for (const auto& plugin : report.plugins) want(followSymlinks(plugin));
  }
  PackageMapping mapping;
  if (!missing_names.empty()) {
    // Not installed here: the package that ships it, from the apt Contents indexes (apt-file).
    auto indexes = contents_indexes.empty() ? findAptContentsIndexes() : contents_indexes;
    auto shipped = lookupContentsIndexes(indexes, missing_names);
    std::string unknown;
    for (const auto& name : missing_names) {
      if (auto it = shipped.find(name); it != shipped.end()) {
        log::info("{} is not installed here; package {} ships it", name, it->second);
        mapping.packages.insert(it->second);
        mapping.not_installed.insert(it->second);
      } else {
        unknown += (unknown.empty() ? "" : ", ") + name;
      }
    }
    if (!unknown.empty()) {
      throw Error("build dependency image", reports.front().binary.string(),
                  "libraries not found on this host" +
                      std::string(indexes.empty() ? "" : " nor in the apt Contents indexes") +
                      ": " + unknown,
                  indexes.empty() ? "install them, or run `apt-file update` so that the packages "
                                    "strategy can find the packages that ship them"
                                  : "install them, or pass the job's --ld-library-path",
                  exit_code::kNotFound);
    }
  }
  auto owners = lookupDebianPackages(wanted);
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

/// The store name of the image with `key`.
std::string dependencyImageName(const std::string& key) {
  return std::string(kDependencyImageRepository) + ":" + key;
}

/// A scratch directory in the store's tmp (same file system as roots/, so the finished root can
/// be renamed into place), removed on destruction unless released.
class ScratchDirectory {
 public:
  ScratchDirectory(const ImageStore& store, const std::string& label) {
    std::string name_template = (store.tempDirectory() / (label + "-XXXXXX")).string();
    std::vector<char> name(name_template.begin(), name_template.end());
    name.push_back('\0');
    if (::mkdtemp(name.data()) == nullptr) {
      throw Error("create build directory", name_template, describeErrno(errno));
    }
    path_ = name.data();
    ::chmod(path_.c_str(), 0755);
  }
  ~ScratchDirectory() {
    try {
      removeTree(path_);
    } catch (const Error& error) {
      log::warn("could not remove {}: {}", path_.string(), error.what());
    }
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Copies the tree `from` into the existing directory `to`, hard-linking regular files when both
/// are on one file system (a base root of the store is never modified through such a link: the
/// builder replaces files by unlink + create, never by writing into them).
void linkOrCopyTree(const fs::path& from, const fs::path& to) {
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator();
       ++it) {
    // Lexically: fs::relative() would resolve a link such as lib -> usr/lib to its target.
    fs::path target = to / it->path().lexically_relative(from);
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) {
      throw Error("copy base root", it->path().string(), describeErrno(errno));
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(target.c_str(), (st.st_mode & 07777) | 0700) != 0 && errno != EEXIST) {
        throw Error("copy base root", target.string(), describeErrno(errno));
      }
    } else if (S_ISLNK(st.st_mode)) {
      fs::copy_symlink(it->path(), target);
    } else if (S_ISREG(st.st_mode)) {
      if (::link(it->path().c_str(), target.c_str()) != 0) {
        if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
          throw Error("copy base root", target.string(), describeErrno(errno));
        }
        fs::copy_file(it->path(), target);
      }
    }
  }
}

bool sameFileContent(const fs::path& a, const fs::path& b, const struct stat& sa,
                     const struct stat& sb) {
  if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino) return true;
  if (sa.st_size != sb.st_size) return false;
  UniqueFd fa(::open(a.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  UniqueFd fb(::open(b.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fa.valid() || !fb.valid()) return false;
  std::vector<char> ba(1 << 16), bb(1 << 16);
  for (;;) {
    ssize_t na = ::read(fa.get(), ba.data(), ba.size());
    if (na <= 0) return na == 0;
    std::size_t got_b = 0;
    while (got_b < static_cast<std::size_t>(na)) {
      ssize_t nb = ::read(fb.get(), bb.data() + got_b, static_cast<std::size_t>(na) - got_b);
      if (nb <= 0) return false;
      got_b += static_cast<std::size_t>(nb);
    }
    if (std::memcmp(ba.data(), bb.data(), static_cast<std::size_t>(na)) != 0) return false;
  }
}

/// Writes into `layer` what turns `lower` into `upper` as an OCI layer: every entry of `upper`
/// that is new or differs from `lower` (type, permission bits, symlink target, content), with
/// its parent directories, and a `.wh.NAME` whiteout for every entry `lower` has and `upper`
/// lacks. Unchanged files cost one stat when they are hard links of each other.
void writeDifferenceLayer(const fs::path& upper, const fs::path& lower, const fs::path& layer) {
  std::size_t changed = 0;
  auto ensureParents = [&](const fs::path& relative) {
    fs::path dir = layer;
    fs::path source = upper;
    for (const auto& component : relative.parent_path()) {
      dir /= component;
      source /= component;
      struct stat st {};
      if (::lstat(dir.c_str(), &st) == 0) continue;
      struct stat original {};
      mode_t mode = ::lstat(source.c_str(), &original) == 0 ? (original.st_mode & 07777) : 0755;
      if (::mkdir(dir.c_str(), mode | 0700) != 0) {
        throw Error("write image layer", dir.string(), describeErrno(errno));
      }
      ::chmod(dir.c_str(), mode | 0700);
    }
  };
  auto addEntry = [&](const fs::path& relative, const struct stat& st) {
    ensureParents(relative);
    fs::path from = upper / relative;
    fs::path to = layer / relative;
    ++changed;
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(to.c_str(), (st.st_mode & 07777) | 0700) != 0 && errno != EEXIST) {
        throw Error("write image layer", to.string(), describeErrno(errno));
      }
      ::chmod(to.c_str(), (st.st_mode & 07777) | 0700);
    } else if (S_ISLNK(st.st_mode)) {
      fs::copy_symlink(from, to);
    } else if (S_ISREG(st.st_mode)) {
      if (::link(from.c_str(), to.c_str()) != 0) fs::copy_file(from, to);
    }
  };
  std::function<void(const fs::path&, bool)> walk = [&](const fs::path& relative, bool whole) {
    fs::path dir = relative.empty() ? upper : upper / relative;
    for (const auto& entry : fs::directory_iterator(dir)) {
      fs::path child = relative / entry.path().filename();
      struct stat su {};
      if (::lstat(entry.path().c_str(), &su) != 0) {
        throw Error("compare image roots", entry.path().string(), describeErrno(errno));
      }
      if (S_ISCHR(su.st_mode) || S_ISBLK(su.st_mode) || S_ISFIFO(su.st_mode) ||
          S_ISSOCK(su.st_mode)) {
        continue;  // never in an unprivileged image
      }
      struct stat sl {};
      bool in_lower = !whole && ::lstat((lower / child).c_str(), &sl) == 0;
      bool same_type = in_lower && (su.st_mode & S_IFMT) == (sl.st_mode & S_IFMT);
      bool same_mode = same_type && (su.st_mode & 07777) == (sl.st_mode & 07777);
      if (S_ISDIR(su.st_mode)) {
        if (!same_mode) addEntry(child, su);
        walk(child, whole || !same_type);
      } else if (S_ISLNK(su.st_mode)) {
        if (!same_type || fs::read_symlink(upper / child) != fs::read_symlink(lower / child)) {
          addEntry(child, su);
        }
      } else if (!same_mode || !sameFileContent(upper / child, lower / child, su, sl)) {
        addEntry(child, su);
      }
    }
  };
  walk("", false);
  // Whiteouts for what the upper root removed.
  std::function<void(const fs::path&)> removed = [&](const fs::path& relative) {
    fs::path dir = relative.empty() ? lower : lower / relative;
    for (const auto& entry : fs::directory_iterator(dir)) {
      fs::path child = relative / entry.path().filename();
      struct stat su {};
      if (::lstat((upper / child).c_str(), &su) != 0) {
        ensureParents(child);
        fs::path whiteout = layer / relative / (".wh." + child.filename().string());
        UniqueFd fd(::open(whiteout.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd.valid()) throw Error("write whiteout", whiteout.string(), describeErrno(errno));
        ++changed;
      } else if (S_ISDIR(su.st_mode) && entry.is_directory() && !entry.is_symlink()) {
        removed(child);
      }
    }
  };
  removed("");
  log::debug("dependency layer: {} entries differ from the base", changed);
}

/// Sets every mtime below `dir` (the directory included) to the epoch: a layer packed from it
/// then depends only on content, so identical inputs give the identical image digest on any host
/// and at any time (and a registry already holding the blobs skips them). Only entries the build
/// created are touched: the dependency layer never holds a hard link into a base root.
void normaliseTimes(const fs::path& dir) {
  const struct timespec epoch[2] = {{0, 0}, {0, 0}};
  std::vector<fs::path> directories;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_directory() && !it->is_symlink()) {
      directories.push_back(it->path());  // after its children, whose creation changed it
      continue;
    }
    if (::utimensat(AT_FDCWD, it->path().c_str(), epoch, AT_SYMLINK_NOFOLLOW) != 0) {
      throw Error("set file times in the image", it->path().string(), describeErrno(errno));
    }
  }
  directories.push_back(dir);
  for (const auto& directory : directories) {
    if (::utimensat(AT_FDCWD, directory.c_str(), epoch, AT_SYMLINK_NOFOLLOW) != 0) {
      throw Error("set file times in the image", directory.string(), describeErrno(errno));
    }
  }
}

/// The base an image is built on: its layers (blobs in the store, or a directory to pack) and its
/// unpacked root (to build on and to compare with).
struct BaseImage {
  std::vector<fs::path> layers;
  fs::path root;
  std::string identity;  // for the key: the base manifest digest, or the directory
};

/// The base of an image `--base REF`: a store image's own layers when REF resolves to one,
/// else the directory packed as one layer.
BaseImage resolveBase(ImageStore& store, const std::string& reference) {
  ResolveOptions options;
  options.store_root = store.root();
  BaseImage base;
  base.root = resolveImageRoot(reference, options);
  // An unpacked store root lives at roots/<manifest hex>/rootfs.
  fs::path roots = base.root.parent_path().parent_path();
  std::string hex = base.root.parent_path().filename().string();
  std::error_code ec;
  if (base.root.filename() == "rootfs" && fs::equivalent(roots, store.root() / "roots", ec) &&
      isValidDigest("sha256:" + hex)) {
    std::string digest = "sha256:" + hex;
    ImageManifest manifest = parseImageManifest(store.readSmallBlob(digest), digest);
    for (const auto& layer : manifest.layers) {
      auto blob = store.findBlob(layer.digest);
      if (!blob) {
        throw Error("use base image", reference, "layer " + layer.digest + " is not in the store",
                    "pull the base image again", exit_code::kNotFound);
      }
      base.layers.push_back(*blob);
    }
    base.identity = digest;
  } else {
    base.layers.push_back(base.root);
    base.identity = "directory " + base.root.string();
  }
  return base;
}

/// The `packages` base: mmdebstrap's minbase of this machine's apt sources, built once per
/// store and suite/sources and shared by every packages image as its first layer.
BaseImage ensureDebianBase(ImageStore& store, bool quiet) {
  std::string material = "kbatch minbase v1\nsuite " + detail::hostDistributionCodename() + "\n";
  for (const auto& source : detail::hostAptSourceFiles()) {
    material += "sources " + source.string() + " " + detail::sha256File(source) + "\n";
  }
  const std::string name = "kbatch-deps-base:" + detail::sha256Text(material);
  auto finish = [&](const std::string& digest) {
    BaseImage base;
    base.identity = digest;
    base.root = store.unpackedRoot(digest);
    ImageManifest manifest = parseImageManifest(store.readSmallBlob(digest), digest);
    for (const auto& layer : manifest.layers) base.layers.push_back(*store.findBlob(layer.digest));
    return base;
  };
  if (auto record = store.lookup(name)) return finish(record->manifest_digest);
  FileLock lock(store.lockPath("deps-base.lock"), FileLock::Mode::kExclusive);
  if (auto record = store.lookup(name)) return finish(record->manifest_digest);
  if (!quiet) log::info("building the base layer (mmdebstrap minbase, once per store)");
  ScratchDirectory scratch(store, "deps-base");
  const fs::path tar_file = scratch.path() / "base.tar";
  detail::buildPackagesTar({}, tar_file, quiet);
  NewImageRequest request;
  request.layers = {tar_file};
  request.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  request.source = "mmdebstrap --variant=minbase " + detail::hostDistributionCodename();
  ImageRecord record = store.createImage(request);
  store.tag(name, record.manifest_digest, request.source);
  return finish(record.manifest_digest);
}

/// Unpacks a tar file with the store's own safe extractor (the same code that will unpack the
/// image's layers on other nodes, so the comparison with the base sees what they will see).
void extractTarInto(const fs::path& tar_file, const fs::path& root) {
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) throw Error("open", root.string(), describeErrno(errno));
  ExtractStats stats;
  extractLayerFile(root_fd.get(), tar_file, tar_file.string(), extractLimitsFromEnvironment(),
                   stats);
}

/// Finds a finished image by name; its root is unpacked if the store has only the blobs.
std::optional<DependencyImage> findBuilt(ImageStore& store, DependencyImage image) {
  auto record = store.lookup(image.store_name);
  if (!record) return std::nullopt;
  image.manifest_digest = record->manifest_digest;
  auto root = store.findUnpackedRoot(record->manifest_digest);
  image.rootfs = root ? *root : store.unpackedRoot(record->manifest_digest);
  image.reused = true;
  ImageConfigSettings config = store.imageConfig(record->manifest_digest);
  if (auto it = config.labels.find("org.kbatch.strategy"); it != config.labels.end()) {
    image.strategy = parseDependencyStrategy(it->second, "org.kbatch.strategy");
  }
  if (auto it = config.labels.find("org.kbatch.layers"); it != config.labels.end()) {
    image.layers = static_cast<std::size_t>(std::stoul(it->second));
  }
  return image;
}

/// What a closure image's answer depends on besides the request: every path of the plan (files,
/// links, directories, whose entries ld.so's search sees), the host's ld.so.cache and account
/// files. nullopt when resolution also searched directories the memo does not watch: RPATH or
/// RUNPATH directories, ld.so's default directories, plugin directories.
std::optional<std::vector<fs::path>> memoWatchList(const ResolvedInputs& inputs,
                                                   const detail::ClosurePlan& plan) {
  for (const auto& report : inputs.reports) {
    if (!report.binary_info.rpath.empty() || !report.binary_info.runpath.empty()) {
      return std::nullopt;
    }
    for (const auto& library : report.libraries) {
      if (library.found_via != FoundVia::kLdCache && library.found_via != FoundVia::kDirectPath &&
          library.found_via != FoundVia::kAlreadyLoaded) {
        return std::nullopt;
      }
    }
  }
  std::vector<fs::path> paths = {"/etc/ld.so.cache", "/etc/passwd", "/etc/group"};
  for (const auto& [path, entry] : plan.entries()) {
    paths.push_back(path);
    if (entry.kind == detail::PlannedEntry::Kind::kFile && entry.host_source != path) {
      paths.push_back(entry.host_source);
    }
  }
  return paths;
}

}  // namespace

DependencyImage buildDependencyImageDetailed(const DependencyImageRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  ResolvedInputs inputs = resolveInputs(request);
  const fs::path store_root = request.cache_dir ? *request.cache_dir : dependencyCacheRoot();
  ImageStore store(store_root);

  DependencyImage image;
  image.strategy = request.strategy;
  detail::ClosurePlan plan;
  std::vector<std::string> package_versions;

  if (request.strategy == DependencyStrategy::kClosure) {
    for (const auto& report : inputs.reports) plan.addReport(report);
  } else {
    PackageMapping mapping =
        mapToPackages(inputs.reports, request.binary.has_value(), request.contents_indexes);
    if (!mapping.unpackaged.empty() && request.strategy == DependencyStrategy::kPackages) {
      std::string files;
      for (const auto& file : mapping.unpackaged) files += (files.empty() ? "" : ", ") + file.string();
      throw Error("build dependency image", request.binary ? request.binary->string() : "shell",
                  "no installed package provides " + files,
                  "use --strategy auto to copy those files from this host");
    }
    if (request.base && !mapping.packages.empty()) {
      throw Error("build dependency image", *request.base,
                  "installing packages into a given --base is not supported",
                  "use --strategy closure with --base, or omit --base for a minbase root");
    }
    image.packages.assign(mapping.packages.begin(), mapping.packages.end());
    std::vector<std::string> installed;
    for (const auto& package : image.packages) {
      if (!mapping.not_installed.count(package)) installed.push_back(package);
    }
    package_versions = detail::installedPackageVersions(installed);
    for (const auto& package : mapping.not_installed) package_versions.push_back(package + "=?");
    // The job's binary, and whatever no package provides (auto only), come from this host.
    if (request.binary) plan.addPath(inputs.reports.front().requested_path);
    for (const auto& file : mapping.unpackaged) plan.addPath(file);
    for (const auto& report : inputs.reports) {
      for (const auto& library : report.libraries) {
        if (library.path && std::find(mapping.unpackaged.begin(), mapping.unpackaged.end(),
                                      *library.path) != mapping.unpackaged.end()) {
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

  // What the next identical request may skip all of this for (dependency_memo.h): the inputs'
  // state is taken before they are hashed, so that a file changed meanwhile never matches it.
  std::optional<detail::MemoWatch> watch;
  if (image.strategy == DependencyStrategy::kClosure) {
    if (auto paths = memoWatchList(inputs, plan)) watch = detail::watchForMemo(request, *paths);
  }

  // The key: everything that decides the image's content. File contents are hashed once per
  // (device, inode, size, mtime, ctime) and remembered, so the warm path reads no library.
  detail::FileHashCache hashes(store_root / "deps" / "file-hashes");
  std::string key_material = "kbatch dependency image v2\n";
  key_material += std::string("strategy ") + toString(image.strategy) + "\n";
  key_material += "closure " +
                  plan.contentDigest([&](const fs::path& file) { return hashes.hashFile(file); }) +
                  "\n";
  hashes.save();
  for (const auto& version : package_versions) key_material += "package " + version + "\n";
  if (!image.packages.empty()) {
    key_material += "suite " + detail::hostDistributionCodename() + "\n";
    for (const auto& source : detail::hostAptSourceFiles()) {
      key_material += "sources " + source.string() + " " + detail::sha256File(source) + "\n";
    }
  }
  std::optional<BaseImage> base;
  if (request.base) {
    base = resolveBase(store, *request.base);
    key_material += "base " + base->identity + "\n";
  }
  auto accounts = accountFiles();
  key_material += accounts.first + accounts.second;
  image.key = detail::sha256Text(key_material);
  image.store_name = dependencyImageName(image.key);
  log::debug("dependency image key {} ({} file hashes cached, {} computed)", image.key,
             hashes.hits(), hashes.misses());

  auto remember = [&](const DependencyImage& answer) {
    if (watch) detail::rememberDependencyImage(store_root, request, answer.store_name, *watch);
    return answer;
  };
  if (auto found = findBuilt(store, image)) return remember(*found);
  FileLock gc(store.gcLockPath(), FileLock::Mode::kShared);
  FileLock lock(store.lockPath("deps-" + image.key + ".lock"), FileLock::Mode::kExclusive);
  if (auto found = findBuilt(store, image)) return remember(*found);  // built while we waited

  if (!image.packages.empty()) base = ensureDebianBase(store, request.quiet);
  ScratchDirectory scratch(store, "deps-" + image.key.substr(0, 12));
  const fs::path staging = scratch.path() / "rootfs";
  makeDirectories(staging);
  if (!request.quiet) {
    log::info("building dependency image {} ({}{})", image.key.substr(0, 12),
              toString(image.strategy),
              image.packages.empty() ? "" : ", " + std::to_string(image.packages.size()) + " packages");
  }
  if (!image.packages.empty()) {
    const fs::path tar_file = scratch.path() / "packages.tar";
    detail::buildPackagesTar(image.packages, tar_file, request.quiet);
    extractTarInto(tar_file, staging);
    fs::remove(tar_file);
  } else if (base) {
    linkOrCopyTree(base->root, staging);
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

  // Layers: the base's, then one with everything this job adds.
  NewImageRequest layers;
  fs::path dependency_layer = staging;
  if (base) {
    dependency_layer = scratch.path() / "layer";
    makeDirectories(dependency_layer);
    writeDifferenceLayer(staging, base->root, dependency_layer);
    layers.layers = base->layers;
  }
  normaliseTimes(dependency_layer);
  layers.layers.push_back(dependency_layer);
  image.layers = layers.layers.size();
  layers.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  layers.config.labels = {{"org.kbatch.dependency-key", image.key},
                          {"org.kbatch.strategy", toString(image.strategy)},
                          {"org.kbatch.layers", std::to_string(image.layers)}};
  if (request.binary) layers.config.labels["org.kbatch.binary"] = request.binary->string();
  if (!image.packages.empty()) {
    std::string list;
    for (const auto& package : image.packages) list += (list.empty() ? "" : ",") + package;
    layers.config.labels["org.kbatch.packages"] = list;
  }
  layers.source = "kbatch build --from-binary " +
                  (request.binary ? request.binary->string() : request.shell.string());
  ImageRecord record = store.createImage(layers);
  image.manifest_digest = record.manifest_digest;
  // The staged root is what the layers unpack to: it becomes the image's root without another
  // unpack, and only then is the tag written, so a reader never finds a tag without its root.
  image.rootfs = store.adoptUnpackedRoot(record.manifest_digest, staging);
  store.tag(image.store_name, record.manifest_digest, layers.source);
  if (!request.quiet) {
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    log::info("built dependency image {} ({}, {} layer{}) in {:.2f} s", image.key.substr(0, 12),
              toString(image.strategy), image.layers, image.layers == 1 ? "" : "s",
              elapsed.count());
  }
  return remember(image);
}

fs::path buildDependencyImage(const DependencyImageRequest& request) {
  return buildDependencyImageDetailed(request).rootfs;
}

// --- Finding a pinned image ---------------------------------------------------------------------

const char* toString(DependencyImageOrigin origin) {
  switch (origin) {
    case DependencyImageOrigin::kLocalStore: return "local store";
    case DependencyImageOrigin::kSiteCache: return "site cache";
    case DependencyImageOrigin::kRegistry: return "registry";
    case DependencyImageOrigin::kBuilt: return "built";
  }
  return "?";
}

LocatedDependencyImage locateDependencyImage(const std::optional<PinnedImage>& pinned,
                                             const DependencyImageRequest& fallback,
                                             DependencyImageSources& sources) {
  if (pinned) {
    using Finder = std::optional<fs::path> (DependencyImageSources::*)(const PinnedImage&);
    const std::pair<DependencyImageOrigin, Finder> steps[] = {
        {DependencyImageOrigin::kLocalStore, &DependencyImageSources::findInLocalStore},
        {DependencyImageOrigin::kSiteCache, &DependencyImageSources::findInSiteCache},
        {DependencyImageOrigin::kRegistry, &DependencyImageSources::pullFromRegistry},
    };
    for (const auto& [origin, find] : steps) {
      try {
        if (auto root = (sources.*find)(*pinned)) {
          log::info("dependency image {}: found in the {}", pinned->digest, toString(origin));
          return {*root, origin};
        }
        log::debug("dependency image {}: not in the {}", pinned->digest, toString(origin));
      } catch (const Error& error) {
        log::warn("dependency image {}: the {} failed ({}); trying the next source",
                  pinned->digest, toString(origin), error.oneLine());
      }
    }
    log::info("dependency image {} is in no store, cache or registry: building it here",
              pinned->digest);
  }
  return {sources.build(fallback), DependencyImageOrigin::kBuilt};
}

namespace {

/// True when every blob of the image is in `store` (so unpacking needs no network).
bool hasWholeImage(const ImageStore& store, const std::string& digest) {
  if (!store.hasBlob(digest)) return false;
  ImageManifest manifest = parseImageManifest(store.readSmallBlob(digest), digest);
  if (!store.hasBlob(manifest.config.digest)) return false;
  for (const auto& layer : manifest.layers) {
    if (!store.hasBlob(layer.digest)) return false;
  }
  return true;
}

class StoreDependencyImageSources : public DependencyImageSources {
 public:
  explicit StoreDependencyImageSources(DependencyLookupOptions options)
      : options_(std::move(options)) {
    if (options_.store_root.empty()) options_.store_root = defaultStoreRoot();
  }

  // Each source marks the image in use before it looks (as findUnpackedPinnedImage does in the
  // lean kbatch, whose mark did not survive the exec into this one): a prune or rmi while the
  // job runs must not remove its root.
  std::optional<fs::path> findInLocalStore(const PinnedImage& image) override {
    ImageStore local(options_.store_root);
    local.useRootUntilExit(image.digest);
    if (auto root = local.findUnpackedRoot(image.digest)) return root;
    if (!hasWholeImage(local, image.digest)) return std::nullopt;
    return local.unpackedRoot(image.digest);
  }

  std::optional<fs::path> findInSiteCache(const PinnedImage& image) override {
    if (options_.site_cache.empty()) return std::nullopt;
    ImageStore site(options_.site_cache);
    if (auto root = site.findUnpackedRoot(image.digest)) return root;
    if (!hasWholeImage(site, image.digest)) return std::nullopt;
    // Blobs only: unpack into the local store, reading the blobs from the site cache.
    ImageStore local(options_.store_root, options_.site_cache);
    local.useRootUntilExit(image.digest);
    return local.unpackedRoot(image.digest);
  }

  std::optional<fs::path> pullFromRegistry(const PinnedImage& image) override {
    if (image.reference.rfind("docker://", 0) != 0) return std::nullopt;
    ImageReference named = parseImageReference(image.reference);
    ImageReference pinned = parseImageReference("docker://" + named.registry + "/" +
                                                named.repository + "@" + image.digest);
    ImageStore local(options_.store_root, options_.site_cache);
    local.useRootUntilExit(image.digest);
    PullOptions pull;
    pull.quiet = options_.quiet;
    // Plain HTTP only where the site allows it (loopback, site.insecure_registries).
    pull.insecure = choosePlainHttp(pinned.registry, options_.insecure_registries);
    pull.insecure_registries = options_.insecure_registries;
    return pullImage(local, pinned, pull).rootfs;
  }

  fs::path build(const DependencyImageRequest& request) override {
    DependencyImageRequest copy = request;
    if (!copy.cache_dir) copy.cache_dir = options_.store_root;
    return buildDependencyImage(copy);
  }

 private:
  DependencyLookupOptions options_;
};

}  // namespace

std::unique_ptr<DependencyImageSources> makeStoreDependencyImageSources(
    const DependencyLookupOptions& options) {
  return std::make_unique<StoreDependencyImageSources>(options);
}

LocatedDependencyImage findOrBuildDependencyImage(const std::optional<std::string>& pinned_text,
                                                  const DependencyImageRequest& fallback,
                                                  const DependencyLookupOptions& options) {
  std::optional<PinnedImage> pinned;
  if (pinned_text) pinned = parsePinnedImage(*pinned_text, "--image");
  auto sources = makeStoreDependencyImageSources(options);
  auto located = locateDependencyImage(pinned, fallback, *sources);
  log::debug("dependency image root {} ({})", located.rootfs.string(), toString(located.origin));
  return located;
}

}  // namespace kbatch::image
