#pragma once
/// The launch plan: everything the privileged core needs to start one container, computed and
/// validated in the parent (STYLE.md item 4), where unit tests can inspect it. After clone() the
/// child only reads it.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/policy/seccomp_profile.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::runner {

/// Parses `SRC[:DST[:ro|rw]]` as `--bind` takes it. SRC and DST must be absolute; DST defaults to
/// SRC. Throws kbatch::Error (exit 125) naming the spec on anything else.
BindMount parseBindSpec(std::string_view spec);

/// A file the runner writes into the container's private, read-only /dev before the job starts
/// (the decoded job body of a rewritten script lives there: no file is left behind on the host,
/// and no bind can cover it).
struct ContainerFile {
  std::string path;     ///< absolute path inside the container, directly in /dev
  std::string content;
  unsigned mode = 0700;
};

/// What a caller (kbatch exec / kbatch run) asks for.
struct LaunchRequest {
  std::filesystem::path image_root;     ///< an unpacked root filesystem directory
  std::vector<std::string> argv;        ///< argv[0] is looked up in the job's PATH unless it has '/'
  std::vector<BindMount> binds;         ///< in order; DST parents before children is not required
  /// Working directory inside the container. Default: the caller's current directory, which is
  /// then bind-mounted read-write at the same path (as apptainer does), unless it is `/`.
  std::optional<std::string> workdir;
  std::vector<std::string> environment; ///< the job's final environment, "K=V"
  bool writable_tmpfs = false;          ///< writes to the image land in a tmpfs overlay
  bool fakeroot = false;                ///< map the caller to uid/gid 0 inside
  bool fakeroot_allowed = false;        ///< the site policy allows `fakeroot`
  std::vector<ContainerFile> files;
  /// Regular files of the image shown with other content, read-only (account_files.h: /etc/passwd
  /// and /etc/group with the job's user). Written into the runner's private staging tmpfs and
  /// bound over the image's file; nothing is written to the image or the host.
  std::vector<ContainerFile> replaced_files;
  policy::SeccompProfile seccomp;
  /// `seccomp` compiled ahead of time (a compiled site policy's), used instead of compiling it when
  /// this machine would compile the same program (usablePrecompiledFilter).
  std::optional<policy::PrecompiledSeccomp> precompiled_seccomp;
  std::optional<std::uint64_t> memory_bytes;  ///< RLIMIT_DATA of the job (see docs in run_job.h)
  std::optional<std::uint64_t> walltime_s;    ///< SIGTERM, then SIGKILL after kWalltimeGraceSeconds
  std::filesystem::path current_directory;    ///< the caller's cwd (filled by the caller)
  uid_t uid = 0;                              ///< the caller's real ids (filled by the caller)
  gid_t gid = 0;
  /// kbatch-init, the container's PID 1: a static executable installed beside kbatch-full
  /// (libexecdir/kbatch). Filled by the caller.
  std::filesystem::path init_executable;
};

/// How the image becomes `/`.
enum class RootMode {
  kBind,               ///< read-only bind mount of the image directory (fastest)
  kOverlayReadOnly,    ///< overlay with a tmpfs upper layer, used only so that missing mount points
                       ///< can be created; remounted read-only before the job starts
  kOverlayWritable,    ///< `--writable-tmpfs`: writes go to the tmpfs upper layer and vanish
};

/// One path the child creates inside the new root before mounting onto it.
struct MountPointToCreate {
  std::string container_path;  ///< absolute, inside the container
  bool directory = true;       ///< false: an empty regular file (for a file bind)
};

/// One bind mount with both ends resolved: the source as a host path, the target as a path inside
/// the image with the image's own symlinks followed (clamped at its root, as chroot would).
struct ResolvedBind {
  std::string host_source;
  std::string container_target;
  bool read_only = false;
  unsigned long remount_flags = 0;  ///< MS_* flags the kernel locked on the source mount (nosuid...)
  bool source_is_directory = true;
  std::string spec;                 ///< as the user wrote it, for error messages
  /// Missing components of a target inside the container's /tmp, created there before mounting.
  std::vector<MountPointToCreate> create_first;
};

/// The validated plan. Build it with buildLaunchPlan(); the core only reads it.
struct LaunchPlan {
  std::string image_root;                 ///< canonical host path
  RootMode root_mode = RootMode::kBind;
  unsigned long image_remount_flags = 0;  ///< locked MS_* flags of the image's mount
  bool mount_sys = true;                  ///< /sys exists (or can be created) in the image
  unsigned long sys_remount_flags = 0;    ///< locked MS_* flags of the host's /sys
  std::vector<std::string> devices;       ///< host /dev entries bind-mounted into the new /dev
  /// Mount points the image lacks (/proc, /dev, /tmp, bind targets), created in order in the
  /// overlay's upper layer before the overlay is mounted: the image's own directories belong to
  /// uids the user namespace does not map, so they cannot be written even through the overlay.
  std::vector<MountPointToCreate> mount_points;
  std::vector<ResolvedBind> binds;               ///< mounted in order
  std::vector<ContainerFile> files;
  /// replaced_files with each path resolved inside the image (an existing regular file there);
  /// bound after `binds`.
  std::vector<ContainerFile> replaced_files;
  std::string workdir;                    ///< inside the container
  std::vector<std::string> argv;
  std::vector<std::string> exec_candidates;  ///< absolute paths tried with execve, in order
  std::vector<std::string> environment;
  uid_t outside_uid = 0, inside_uid = 0;
  gid_t outside_gid = 0, inside_gid = 0;
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::uint64_t> walltime_s;
  std::string init_executable;            ///< host path of kbatch-init, as the caller found it
};

/// Seconds between the SIGTERM and the SIGKILL when a job runs past its walltime (TORQUE's
/// kill_delay default is 2 s; we give jobs a little longer to write checkpoints).
inline constexpr unsigned kWalltimeGraceSeconds = 5;

/// Validates the request against the host and the image and resolves every path. Throws
/// kbatch::Error with exit code 127 (image missing), 125 (bad bind, bad option) and a hint.
LaunchPlan buildLaunchPlan(const LaunchRequest& request);

/// Follows `path` inside `root` as if `root` were `/`: absolute symlinks restart at `root`, `..`
/// stops at `root`. Returns the resolved path relative to root (always starting with '/') and
/// whether every component exists. Used to place mount points inside images safely.
struct PathInsideRoot {
  std::string path;      ///< absolute, inside the root
  bool exists = false;
  std::string first_missing;  ///< the first component that does not exist (absolute, inside root)
};
PathInsideRoot resolvePathInsideRoot(const std::filesystem::path& root, std::string_view path);

}  // namespace kbatch::runner
