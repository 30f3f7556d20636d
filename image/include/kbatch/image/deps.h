#pragma once
/// Resolving a binary's shared libraries as glibc's ld.so would, without running anything: the
/// order is DT_RPATH (only when the requester has no DT_RUNPATH, inherited up the loading chain),
/// LD_LIBRARY_PATH (the job's, given here), DT_RUNPATH (the requester's only), /etc/ld.so.cache,
/// then the default system directories; $ORIGIN, $LIB and $PLATFORM are expanded, and candidates
/// of the wrong ELF class or machine are skipped. `kbatch deps` prints the result and the
/// dependency-image builder copies or installs what it lists.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kbatch/image/elf.h"

namespace kbatch::image {

/// How a library was found (the step of ld.so's search that found it).
enum class FoundVia { kDirectPath, kRpath, kLdLibraryPath, kRunpath, kLdCache, kDefaultDir,
                      kAlreadyLoaded, kPluginDir, kNotFound };
const char* toString(FoundVia via);

/// One library of the closure.
struct LibraryRecord {
  std::string name;                         ///< the DT_NEEDED string (or plugin file name)
  std::optional<std::string> soname;        ///< its DT_SONAME, when found
  std::optional<std::filesystem::path> path;  ///< where ld.so would load it from (as ld.so names it)
  /// `path`, then each symlink it passes through (directory links included) down to the real
  /// file, in the order they are followed; the last element is the regular file.
  std::vector<std::filesystem::path> symlink_chain;
  FoundVia found_via = FoundVia::kNotFound;
  std::vector<std::string> needed_by;       ///< the objects whose DT_NEEDED named it
  std::optional<std::string> package;       ///< the distribution package owning the file
  bool missing() const { return !path.has_value(); }
};

struct DependencyOptions {
  /// LD_LIBRARY_PATH of the job (not of kbatch's own environment); nullopt: unset.
  std::optional<std::string> ld_library_path;
  /// dlopen plugin directories named by the user: each *.so in them joins the closure with its
  /// own libraries.
  std::vector<std::filesystem::path> plugin_dirs;
  /// Look up the owning package of every library (`dpkg -S`, one batched call).
  bool lookup_packages = false;
  /// The ld.so cache to consult; a missing file means no cache, as for ld.so.
  std::filesystem::path ld_cache = "/etc/ld.so.cache";
  /// ld.so's compiled-in system directories; empty: this host's (defaultSystemDirectories()).
  std::vector<std::filesystem::path> system_dirs;
};

/// Everything `kbatch deps` reports for one binary.
struct DependencyReport {
  std::filesystem::path binary;             ///< canonical path of the binary
  /// The binary's absolute path as given (before symlinks): a job runs /bin/bash even when that
  /// is a link to /usr/bin/bash, so images hold this path too.
  std::filesystem::path requested_path;
  ElfInfo binary_info;
  std::optional<std::filesystem::path> interpreter;  ///< PT_INTERP as written
  std::vector<std::filesystem::path> interpreter_chain;  ///< interpreter path and its symlinks
  std::vector<LibraryRecord> libraries;     ///< in ld.so's load order (breadth first)
  std::vector<std::filesystem::path> plugins;  ///< plugin .so files added from plugin_dirs
  bool statically_linked() const { return !binary_info.has_dynamic; }
  std::vector<std::string> missingNames() const;
};

/// Resolves the closure of `binary`. Throws kbatch::Error for an unreadable or malformed binary
/// or plugin; a missing library is reported in the result, not thrown.
DependencyReport resolveDependencies(const std::filesystem::path& binary,
                                     const DependencyOptions& options);

/// `start`, then each path obtained by replacing its first symlink component (a directory link
/// such as /lib -> usr/lib included) with the link's target, down to the real file.
std::vector<std::filesystem::path> followSymlinks(const std::filesystem::path& start);

/// ld.so's built-in directories on this host: the multiarch pair plus /lib and /usr/lib on Debian
/// (what `ld.so --help` lists), /lib64 and /usr/lib64 on RPM-style 64-bit systems.
std::vector<std::filesystem::path> defaultSystemDirectories();

/// One entry of /etc/ld.so.cache (format "glibc-ld.so.cache1.1").
struct LdCacheEntry {
  std::string name;                ///< the soname ld.so looks up
  std::filesystem::path path;      ///< the file it maps to
  std::int32_t flags = 0;          ///< FLAG_ELF_LIBC6 | FLAG_X8664_LIB64, ...
  std::uint64_t hwcap = 0;         ///< non-zero: only for a glibc-hwcaps subdirectory
};

/// Parses an ld.so cache file; throws kbatch::Error naming the file and the bad field.
std::vector<LdCacheEntry> readLdCache(const std::filesystem::path& path);

/// Writes an ld.so cache in the new format that glibc 2.32+ ld.so reads, sorted as ldconfig sorts
/// it (ld.so binary-searches it). Used for dependency images whose libraries ld.so found through
/// the host's cache.
void writeLdCache(const std::filesystem::path& path, std::vector<LdCacheEntry> entries);

/// The cache flags ld.so accepts on this architecture (x86-64: ELF libc6 + x86-64 lib64).
std::int32_t nativeLdCacheFlags();

/// glibc's _dl_cache_libcmp: compares sonames with digit runs compared as numbers.
int compareLibraryNames(const std::string& left, const std::string& right);

/// Maps files to the Debian packages that own them with one `dpkg -S` call. Paths under a
/// merged-/usr link (/lib -> usr/lib) are looked up under both spellings. Files no package owns
/// are absent from the result.
std::map<std::filesystem::path, std::string> lookupDebianPackages(
    const std::vector<std::filesystem::path>& files);

/// Parses `dpkg -S` output ("pkg[:arch][, pkg2]: /path" lines); for tests and the lookup above.
std::map<std::filesystem::path, std::string> parseDpkgSearchOutput(const std::string& output);

/// The RPM capability name ld.so's library maps to: "libfoo.so.1()(64bit)" for a 64-bit library.
std::string rpmLibraryCapability(const std::string& soname, bool sixty_four_bit);

/// Parses `dnf repoquery --whatprovides CAP` output (one NEVRA per line, e.g.
/// "zlib-0:1.2.11-40.el9.x86_64") into package names, skipping dnf's metadata chatter.
/// `source` names the output in errors.
std::vector<std::string> parseDnfRepoqueryOutput(const std::string& output,
                                                 const std::string& source);

}  // namespace kbatch::image
