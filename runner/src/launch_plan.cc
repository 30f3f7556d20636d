// Building and validating the launch plan in the parent: every path is checked and resolved here,
// so that the privileged core after clone() has nothing left to decide.

#include "kbatch/runner/launch_plan.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <map>
#include <system_error>

#include "kbatch/common/error.h"

namespace kbatch::runner {
namespace {

namespace fs = std::filesystem;

/// Container paths the runner mounts itself; binds there would be hidden or would subvert it.
constexpr std::string_view kReservedPrefixes[] = {"/proc", "/dev", "/sys"};

/// Host devices bind-mounted into the container's /dev (as bubblewrap's --dev does).
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

/// Maximum symlinks followed while resolving one path, as the kernel's MAXSYMLINKS.
constexpr int kMaxSymlinks = 40;

bool isUnder(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return true;
  return path == prefix ||
         (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix &&
          path[prefix.size()] == '/');
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string joinPath(const std::vector<std::string>& parts) {
  if (parts.empty()) return "/";
  std::string path;
  for (const auto& part : parts) path += "/" + part;
  return path;
}

/// `/a/./b/../c/` -> `/a/c`; the path must be absolute.
std::string normalizeAbsolute(std::string_view path) {
  std::vector<std::string> parts;
  for (auto& part : splitPath(path)) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(std::move(part));
  }
  return joinPath(parts);
}

/// The MS_* flags a remount must repeat because the kernel locks them on mounts that a user
/// namespace inherited (mount(2), "EPERM ... locked"); nosuid and nodev are always added.
unsigned long lockedMountFlags(const std::string& path) {
  struct statvfs info {};
  if (statvfs(path.c_str(), &info) != 0) {
    throw Error("inspect the mount of", path, describeErrno(errno));
  }
  unsigned long flags = MS_NOSUID | MS_NODEV;
  if (info.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (info.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (info.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (info.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

/// The mount points for `missing` and everything below it down to `target`.
std::vector<MountPointToCreate> pointsToCreate(const std::string& first_missing,
                                               const std::string& target, bool leaf_is_directory) {
  std::vector<MountPointToCreate> points;
  auto target_parts = splitPath(target);
  auto first_parts = splitPath(first_missing);
  for (std::size_t depth = first_parts.size(); depth <= target_parts.size(); ++depth) {
    std::vector<std::string> prefix(target_parts.begin(),
                                    target_parts.begin() + static_cast<long>(depth));
    points.push_back({joinPath(prefix), depth < target_parts.size() || leaf_is_directory});
  }
  return points;
}

struct PlacedBind {
  std::string container_target;
  std::string host_source;
};

/// Everything known about one bind while the plan is built.
class BindPlacer {
 public:
  BindPlacer(fs::path image_root) : image_root_(std::move(image_root)) {}

  bool needsOverlay() const { return needs_overlay_; }
  /// Mount points missing from the image, to be created in the overlay's upper layer.
  const std::vector<MountPointToCreate>& imageMountPoints() const { return image_mount_points_; }

  ResolvedBind place(const BindMount& bind, const std::string& spec) {
    ResolvedBind resolved;
    resolved.spec = spec;
    std::error_code ec;
    fs::path source = fs::canonical(bind.source, ec);
    if (ec) {
      throw Error("bind-mount", spec, "source '" + bind.source + "': " + ec.message(),
                  "the source must exist on this host");
    }
    resolved.host_source = source.string();
    resolved.source_is_directory = fs::is_directory(source, ec);
    resolved.read_only = bind.read_only;
    if (bind.destination.empty() || bind.destination[0] != '/') {
      throw Error("bind-mount", spec, "destination '" + bind.destination + "' is not absolute");
    }
    std::string target = normalizeAbsolute(bind.destination);
    if (target == "/") {
      throw Error("bind-mount", spec, "cannot bind over the container's root directory",
                  "bind to a directory below /");
    }
    checkNotReserved(target, spec);

    // Inside an earlier bind: the target lives on the host and must already exist there (the
    // runner never creates files on the host).
    for (auto it = placed_.rbegin(); it != placed_.rend(); ++it) {
      if (!isUnder(target, it->container_target)) continue;
      std::string host_path = it->host_source + target.substr(it->container_target.size());
      if (!fs::exists(host_path, ec)) {
        throw Error("bind-mount", spec,
                    "destination is inside the earlier bind of '" + it->host_source +
                        "' and '" + host_path + "' does not exist",
                    "create it on the host, or bind somewhere else");
      }
      checkTypesMatch(spec, resolved.source_is_directory, fs::is_directory(host_path, ec));
      resolved.container_target = target;
      placed_.push_back({target, resolved.host_source});
      finishFlags(resolved);
      return resolved;
    }

    PathInsideRoot inside = resolvePathInsideRoot(image_root_, target);
    target = inside.path;
    if (target == "/") throw Error("bind-mount", spec, "destination resolves to the container's root");
    checkNotReserved(target, spec);
    if (isUnder(target, "/tmp") && target != "/tmp") {
      // The container's /tmp is a fresh tmpfs: every component below it is created there.
      resolved.create_first = pointsToCreate(
          "/tmp/" + splitPath(target)[1], target, resolved.source_is_directory);
    } else if (!inside.exists) {
      // Every component from the top: the upper layer starts empty, and its directories merge
      // with the image's.
      (void)inside.first_missing;
      for (auto& point : pointsToCreate("/" + splitPath(target)[0], target,
                                        resolved.source_is_directory)) {
        image_mount_points_.push_back(std::move(point));
      }
      needs_overlay_ = true;
    } else {
      checkTypesMatch(spec, resolved.source_is_directory,
                      fs::is_directory(image_root_ / target.substr(1), ec));
    }
    resolved.container_target = target;
    placed_.push_back({target, resolved.host_source});
    finishFlags(resolved);
    return resolved;
  }

 private:
  static void checkNotReserved(const std::string& target, const std::string& spec) {
    for (auto prefix : kReservedPrefixes) {
      if (isUnder(target, prefix)) {
        throw Error("bind-mount", spec,
                    "destination '" + target + "' is inside " + std::string(prefix) +
                        ", which kbatch sets up itself",
                    "bind somewhere else");
      }
    }
  }

  static void checkTypesMatch(const std::string& spec, bool source_is_directory,
                              bool target_is_directory) {
    if (source_is_directory == target_is_directory) return;
    throw Error("bind-mount", spec,
                source_is_directory ? "the source is a directory but the destination is a file"
                                    : "the source is a file but the destination is a directory",
                "bind a file onto a file and a directory onto a directory");
  }

  static void finishFlags(ResolvedBind& resolved) {
    if (resolved.read_only) resolved.remount_flags = lockedMountFlags(resolved.host_source);
  }

  fs::path image_root_;
  std::vector<PlacedBind> placed_;
  std::vector<MountPointToCreate> image_mount_points_;
  bool needs_overlay_ = false;
};

std::string findPath(const std::vector<std::string>& environment) {
  for (const auto& entry : environment) {
    if (entry.rfind("PATH=", 0) == 0) return entry.substr(5);
  }
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/// The candidates execvp(3) would try: the command itself if it has a '/', else each PATH entry
/// (an empty entry means the working directory).
std::vector<std::string> execCandidates(const std::string& command,
                                        const std::vector<std::string>& environment) {
  if (command.find('/') != std::string::npos) return {command};
  std::vector<std::string> candidates;
  std::string path = findPath(environment);
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + command);
    start = end + 1;
  }
  return candidates;
}

}  // namespace

BindMount parseBindSpec(std::string_view spec) {
  std::string text(spec);
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (;;) {
    std::size_t colon = text.find(':', start);
    fields.push_back(text.substr(start, colon == std::string::npos ? std::string::npos
                                                                    : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  auto bad = [&](const std::string& cause) {
    return Error("parse --bind", text, cause, "use --bind SRC[:DST[:ro|rw]] with absolute paths");
  };
  if (fields.size() > 3) throw bad("too many ':' fields");
  BindMount bind;
  bind.source = fields[0];
  bind.destination = fields.size() >= 2 ? fields[1] : fields[0];
  if (fields.size() == 3) {
    if (fields[2] == "ro") bind.read_only = true;
    else if (fields[2] != "rw") throw bad("mode '" + fields[2] + "' is neither ro nor rw");
  }
  if (bind.source.empty()) throw bad("empty source");
  if (bind.destination.empty()) bind.destination = bind.source;
  if (bind.source[0] != '/') throw bad("source '" + bind.source + "' is not an absolute path");
  if (bind.destination[0] != '/') {
    throw bad("destination '" + bind.destination + "' is not an absolute path");
  }
  return bind;
}

PathInsideRoot resolvePathInsideRoot(const std::filesystem::path& root, std::string_view path) {
  std::deque<std::string> pending;
  for (auto& part : splitPath(path)) pending.push_back(std::move(part));
  std::vector<std::string> resolved;
  int symlinks = 0;
  PathInsideRoot result;
  while (!pending.empty()) {
    std::string part = std::move(pending.front());
    pending.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      if (!resolved.empty()) resolved.pop_back();  // `..` stops at the root, as in chroot
      continue;
    }
    resolved.push_back(part);
    std::string host = root.string() + joinPath(resolved);
    struct stat info {};
    if (lstat(host.c_str(), &info) != 0) {
      if (errno != ENOENT) {
        throw Error("resolve", joinPath(resolved), describeErrno(errno) + " in image " +
                                                       root.string());
      }
      result.first_missing = joinPath(resolved);
      for (auto& rest : pending) {
        if (rest == "." ) continue;
        if (rest == "..") {
          if (!resolved.empty()) resolved.pop_back();
          continue;
        }
        resolved.push_back(rest);
      }
      result.path = joinPath(resolved);
      result.exists = false;
      return result;
    }
    if (S_ISLNK(info.st_mode)) {
      if (++symlinks > kMaxSymlinks) {
        throw Error("resolve", std::string(path), "too many levels of symbolic links in image " +
                                                      root.string());
      }
      std::error_code ec;
      fs::path link = fs::read_symlink(host, ec);
      if (ec) throw Error("read symlink", host, ec.message());
      resolved.pop_back();
      std::string target = link.string();
      if (!target.empty() && target[0] == '/') resolved.clear();  // absolute: restart at the root
      auto parts = splitPath(target);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_front(*it);
      continue;
    }
    if (!S_ISDIR(info.st_mode) && !pending.empty()) {
      throw Error("resolve", std::string(path),
                  "'" + joinPath(resolved) + "' is not a directory in image " + root.string());
    }
  }
  result.path = joinPath(resolved);
  result.exists = true;
  return result;
}

LaunchPlan buildLaunchPlan(const LaunchRequest& request) {
  LaunchPlan plan;
  std::error_code ec;
  if (request.image_root.empty() || !fs::is_directory(request.image_root, ec)) {
    throw Error("find image", request.image_root.string(), "no such root filesystem directory",
                "give a directory holding the image's root filesystem, or an image reference",
                exit_code::kNotFound);
  }
  fs::path root = fs::canonical(request.image_root, ec);
  if (ec) throw Error("find image", request.image_root.string(), ec.message(), {}, exit_code::kNotFound);
  if (root == "/") {
    throw Error("use image", "/", "the host's root directory cannot be a container image");
  }
  plan.image_root = root.string();
  if (request.argv.empty() || request.argv[0].empty()) {
    throw Error("run container", plan.image_root, "no command given",
                "put the command after `--`: kbatch exec IMAGE -- CMD [ARGS...]");
  }
  plan.argv = request.argv;
  plan.environment = request.environment;
  plan.exec_candidates = execCandidates(request.argv[0], request.environment);

  if (request.fakeroot && !request.fakeroot_allowed) {
    throw Error("use --fakeroot", "", "the site policy does not allow fakeroot",
                "run without --fakeroot (the job then runs as your own uid)");
  }
  plan.outside_uid = request.uid;
  plan.outside_gid = request.gid;
  plan.inside_uid = request.fakeroot ? 0 : request.uid;
  plan.inside_gid = request.fakeroot ? 0 : request.gid;

  // The directories the runner mounts onto. A read-only image lacking one needs the overlay so
  // that the mount point can be created without touching the image on disk.
  bool needs_overlay = false;
  for (std::string_view needed : {"/proc", "/dev", "/tmp", "/sys"}) {
    PathInsideRoot inside = resolvePathInsideRoot(root, needed);
    bool exists_as_dir = inside.exists && inside.path == needed &&
                         fs::is_directory(root / needed.substr(1), ec);
    if (exists_as_dir) continue;
    if (inside.exists) {
      throw Error("use image", plan.image_root,
                  std::string(needed) + " is not a directory in the image",
                  "make " + std::string(needed) + " a plain directory in the image");
    }
    if (needed == "/sys") {
      plan.mount_sys = false;  // /sys is a convenience; only created when the overlay is used anyway
      continue;
    }
    needs_overlay = true;
    plan.mount_points.push_back({std::string(needed), true});
  }

  for (const char* device : kDevices) {
    struct stat info {};
    std::string host = std::string("/dev/") + device;
    if (stat(host.c_str(), &info) == 0 && S_ISCHR(info.st_mode)) plan.devices.emplace_back(device);
  }

  BindPlacer placer(root);
  if (request.workdir) {
    if (request.workdir->empty() || (*request.workdir)[0] != '/') {
      throw Error("use --workdir", *request.workdir, "not an absolute path inside the container");
    }
    plan.workdir = normalizeAbsolute(*request.workdir);
  } else {
    // As apptainer does: the job starts where the caller is, with that directory bind-mounted.
    std::string cwd = request.current_directory.empty() ? std::string("/")
                                                        : request.current_directory.string();
    plan.workdir = cwd;
    bool reserved = false;
    for (auto prefix : kReservedPrefixes) reserved = reserved || isUnder(cwd, prefix);
    if (cwd != "/" && !reserved) {
      plan.binds.push_back(placer.place({cwd, cwd, false}, "current directory " + cwd));
    }
  }
  for (const auto& bind : request.binds) {
    std::string spec = bind.source + ":" + bind.destination + (bind.read_only ? ":ro" : ":rw");
    plan.binds.push_back(placer.place(bind, spec));
  }
  needs_overlay = needs_overlay || placer.needsOverlay();
  plan.mount_points.insert(plan.mount_points.end(), placer.imageMountPoints().begin(),
                           placer.imageMountPoints().end());
  if (needs_overlay && !plan.mount_sys) {
    plan.mount_sys = true;
    plan.mount_points.push_back({"/sys", true});
  }

  for (const auto& file : request.files) {
    std::string path = normalizeAbsolute(file.path);
    if (path != file.path || !isUnder(path, "/dev") || splitPath(path).size() != 2) {
      throw Error("place file", file.path, "container files must be directly in /dev");
    }
    plan.files.push_back(file);
  }

  for (const auto& file : request.replaced_files) {
    const PathInsideRoot inside = resolvePathInsideRoot(plan.image_root, file.path);
    struct stat status {};
    if (!inside.exists || ::lstat((plan.image_root + inside.path).c_str(), &status) != 0 ||
        !S_ISREG(status.st_mode)) {
      throw Error("replace file", file.path, "the image has no regular file there");
    }
    plan.replaced_files.push_back({inside.path, file.content, file.mode});
  }

  if (request.writable_tmpfs) plan.root_mode = RootMode::kOverlayWritable;
  else if (needs_overlay) plan.root_mode = RootMode::kOverlayReadOnly;
  if (plan.root_mode != RootMode::kBind &&
      plan.image_root.find_first_of(",:\\") != std::string::npos) {
    throw Error("use image", plan.image_root,
                "overlayfs cannot take a path with ',', ':' or '\\' as its lower layer",
                "move or link the image to a path without those characters");
  }
  plan.image_remount_flags = lockedMountFlags(plan.image_root);
  if (plan.mount_sys) plan.sys_remount_flags = lockedMountFlags("/sys");

  if (request.memory_bytes && *request.memory_bytes == 0) {
    throw Error("use --memory", "0", "the memory limit must be positive");
  }
  if (request.walltime_s && *request.walltime_s == 0) {
    throw Error("use --walltime", "0", "the walltime must be positive");
  }
  plan.memory_bytes = request.memory_bytes;
  plan.walltime_s = request.walltime_s;
  plan.init_executable = request.init_executable.string();
  return plan;
}

}  // namespace kbatch::runner
