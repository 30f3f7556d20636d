#pragma once
/// The container's /etc/passwd and /etc/group, so that the job's user has a name inside: the
/// image's own files with one line added for the job's uid (and one for its primary gid) when the
/// image has none, as apptainer and ch-run do. Without it `whoami`, `id -un`, shells, ssh and MPI
/// launchers that look the user up fail ("cannot find name for user ID").

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kbatch/runner/launch_plan.h"

namespace kbatch::runner {

/// The host's account entry of the job's user, as getpwuid/getgrgid give it.
struct HostAccount {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string gecos;
  std::string home;
  std::string shell;
  std::string group_name;  ///< the primary group's name; empty when the host has none
};

/// The caller's entry from the host's account database (NSS), or nullopt when it has none.
std::optional<HostAccount> lookUpHostAccount(uid_t uid, gid_t gid);

/// Replacement files for the image at `image_root` that give `account` (with the ids it has inside
/// the container) a passwd line and its primary group a group line. A file is left out when the
/// image already names the id, when the image has no such regular file, or when it is larger than
/// a sane limit; the image's own lines are kept as they are. The shell is the host's when the
/// image has it, else /bin/sh.
std::vector<ContainerFile> accountFilesFor(const std::filesystem::path& image_root,
                                           const HostAccount& account);

}  // namespace kbatch::runner
