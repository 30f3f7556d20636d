#pragma once
// The `packages` strategy's host side: the machine's own apt sources, the installed versions of
// packages (for the cache key), and an mmdebstrap run that installs them into a minbase root.

#include <filesystem>
#include <string>
#include <vector>

namespace kbatch::image::detail {

/// The apt source files mmdebstrap should use: /etc/apt/sources.list (if it has entries) and
/// /etc/apt/sources.list.d/*.list and *.sources, never a hard-coded mirror. Throws when none.
std::vector<std::filesystem::path> hostAptSourceFiles();

/// VERSION_CODENAME from /etc/os-release (e.g. "bookworm"); throws when absent.
std::string hostDistributionCodename();

/// "pkg=version" for each installed package (dpkg-query -W), for the cache key.
std::vector<std::string> installedPackageVersions(const std::vector<std::string>& packages);

/// Runs `mmdebstrap --mode=unshare --variant=minbase --include=...` into a tar file and unpacks it
/// into `rootfs` (an existing empty directory) as the calling user. Throws kbatch::Error with
/// mmdebstrap's own last error line when it fails.
void buildPackagesRoot(const std::vector<std::string>& packages, const std::filesystem::path& rootfs,
                       const std::filesystem::path& scratch, bool quiet);

/// Runs `mmdebstrap --mode=unshare --variant=minbase --format=tar [--include=...]` from this
/// machine's apt sources into `tar_file`. Throws kbatch::Error with mmdebstrap's last error line.
void buildPackagesTar(const std::vector<std::string>& packages,
                      const std::filesystem::path& tar_file, bool quiet);

/// Unpacks a tar file into `root` safely (no absolute paths, no `..`, no links out of the root,
/// no device nodes, no setuid bits, no ownership changes).
void unpackTarInto(const std::filesystem::path& tar_file, const std::filesystem::path& root);

}  // namespace kbatch::image::detail
