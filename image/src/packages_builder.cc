#include "packages_builder.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "deps_process.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"

namespace kbatch::image::detail {

namespace fs = std::filesystem;

namespace {

bool fileHasActiveSourceLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] != '#') return true;
  }
  return false;
}

std::string lastNonEmptyLine(const std::string& text) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  return last;
}

struct ReadArchiveDeleter {
  void operator()(archive* handle) const noexcept { archive_read_free(handle); }
};
struct WriteArchiveDeleter {
  void operator()(archive* handle) const noexcept { archive_write_free(handle); }
};

}  // namespace

std::vector<fs::path> hostAptSourceFiles() {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_regular_file("/etc/apt/sources.list", ec) &&
      fileHasActiveSourceLine("/etc/apt/sources.list")) {
    files.emplace_back("/etc/apt/sources.list");
  }
  std::vector<fs::path> parts;
  for (auto it = fs::directory_iterator("/etc/apt/sources.list.d", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    auto extension = it->path().extension();
    // Only what apt itself reads: *.list and *.sources (apt ignores other names too).
    if ((extension == ".list" || extension == ".sources") && fileHasActiveSourceLine(it->path())) {
      parts.push_back(it->path());
    }
  }
  std::sort(parts.begin(), parts.end());
  files.insert(files.end(), parts.begin(), parts.end());
  if (files.empty()) {
    throw Error("find apt sources", "/etc/apt/sources.list", "this machine has no apt sources",
                "the packages strategy installs from the machine's own apt sources; use "
                "--strategy closure");
  }
  return files;
}

std::string hostDistributionCodename() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VERSION_CODENAME=", 0) == 0) {
      std::string value = line.substr(17);
      value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
      if (!value.empty()) return value;
    }
  }
  throw Error("find distribution", "/etc/os-release", "no VERSION_CODENAME field",
              "the packages strategy needs a Debian-style system");
}

std::vector<std::string> installedPackageVersions(const std::vector<std::string>& packages) {
  if (packages.empty()) return {};
  std::vector<std::string> argv = {"dpkg-query", "--show", "--showformat",
                                   "${binary:Package}=${Version}\\n", "--"};
  argv.insert(argv.end(), packages.begin(), packages.end());
  auto result = runProcess(argv);
  if (result.exit_status != 0) {
    throw Error("query package versions", "dpkg-query", lastNonEmptyLine(result.standard_error));
  }
  std::vector<std::string> versions;
  std::istringstream lines(result.standard_output);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) versions.push_back(line);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

void unpackTarInto(const fs::path& tar_file, const fs::path& root) {
  std::unique_ptr<archive, ReadArchiveDeleter> reader(archive_read_new());
  std::unique_ptr<archive, WriteArchiveDeleter> writer(archive_write_disk_new());
  archive_read_support_format_tar(reader.get());
  archive_read_support_filter_all(reader.get());
  // No ARCHIVE_EXTRACT_OWNER: every file belongs to the user building the image.
  archive_write_disk_set_options(
      writer.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                        ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  if (archive_read_open_filename(reader.get(), tar_file.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw Error("unpack root filesystem", tar_file.string(), archive_error_string(reader.get()));
  }
  archive_entry* entry = nullptr;
  int status;
  while ((status = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK) {
    const mode_t type = archive_entry_filetype(entry);
    // Device nodes cannot be created unprivileged; the runner gives every job a fresh /dev.
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK) continue;
    std::string name = archive_entry_pathname(entry);
    // Names are made absolute under `root` below, so check them here: relative, no "..".
    fs::path relative(name);
    bool escapes = relative.is_absolute();
    for (const auto& component : relative) escapes = escapes || component == "..";
    if (escapes) {
      throw Error("unpack root filesystem", tar_file.string(),
                  "entry '" + name + "' is absolute or leaves the root");
    }
    archive_entry_set_pathname(entry, (root / name).c_str());
    if (const char* hardlink = archive_entry_hardlink(entry)) {
      archive_entry_set_hardlink(entry, (root / hardlink).c_str());
    }
    // No setuid/setgid bits in a user's image; owner keeps write access so the cache can be pruned.
    mode_t perm = archive_entry_perm(entry) & 0777;
    archive_entry_set_perm(entry, perm | (type == AE_IFDIR ? 0700 : 0600));
    if (archive_write_header(writer.get(), entry) != ARCHIVE_OK) {
      throw Error("unpack root filesystem", tar_file.string(),
                  name + ": " + archive_error_string(writer.get()));
    }
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int data_status;
    while ((data_status = archive_read_data_block(reader.get(), &block, &size, &offset)) ==
           ARCHIVE_OK) {
      if (archive_write_data_block(writer.get(), block, size, offset) != ARCHIVE_OK) {
        throw Error("unpack root filesystem", tar_file.string(),
                    name + ": " + archive_error_string(writer.get()));
      }
    }
    if (data_status != ARCHIVE_EOF) {
      throw Error("unpack root filesystem", tar_file.string(),
                  name + ": " + archive_error_string(reader.get()));
    }
    archive_write_finish_entry(writer.get());
  }
  if (status != ARCHIVE_EOF) {
    throw Error("unpack root filesystem", tar_file.string(), archive_error_string(reader.get()));
  }
  archive_write_close(writer.get());
}

void buildPackagesTar(const std::vector<std::string>& packages, const fs::path& tar_file,
                      bool quiet) {
  std::string include;
  for (const auto& package : packages) include += (include.empty() ? "" : ",") + package;
  std::vector<std::string> argv = {"mmdebstrap", "--mode=unshare", "--variant=minbase",
                                   "--format=tar"};
  if (quiet) argv.push_back("--quiet");
  if (!include.empty()) argv.push_back("--include=" + include);
  argv.push_back(hostDistributionCodename());
  argv.push_back(tar_file.string());
  for (const auto& source : hostAptSourceFiles()) argv.push_back(source.string());
  if (!quiet) {
    log::info("installing {} package(s) with mmdebstrap --mode=unshare", packages.size());
  }
  ProcessOptions options;
  options.capture_stderr = true;
  auto result = runProcess(argv, options);
  if (result.exit_status != 0) {
    throw Error("build base root filesystem", "mmdebstrap --mode=unshare",
                "exit status " + std::to_string(result.exit_status) + ": " +
                    lastNonEmptyLine(result.standard_error),
                "mmdebstrap's unshare mode needs unprivileged user namespaces and subordinate ids "
                "(/etc/subuid) for the calling user; --strategy closure needs neither");
  }
}

void buildPackagesRoot(const std::vector<std::string>& packages, const fs::path& rootfs,
                       const fs::path& scratch, bool quiet) {
  const fs::path tar_file = scratch / "rootfs.tar";
  buildPackagesTar(packages, tar_file, quiet);
  unpackTarInto(tar_file, rootfs);
  fs::remove(tar_file);
}

}  // namespace kbatch::image::detail
