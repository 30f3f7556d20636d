// apt-file's lookup, without apt-file: which Debian package ships a library that this host does
// not have installed, from the Contents-<arch> indexes of the machine's own apt sources.

#include <archive.h>
#include <archive_entry.h>
#include <sys/utsname.h>

#include <algorithm>
#include <memory>
#include <set>

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {

namespace fs = std::filesystem;

namespace {

/// dpkg's architecture name for this machine (Contents files are named by it).
std::string debianArchitecture() {
  struct utsname name {};
  if (::uname(&name) != 0) return "amd64";
  std::string machine = name.machine;
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  if (machine == "ppc64le") return "ppc64el";
  if (machine.size() == 4 && machine[0] == 'i' && machine.substr(2) == "86") return "i386";
  if (machine.rfind("arm", 0) == 0) return "armhf";
  return machine;  // s390x, riscv64, mips64el... are spelled the same
}

struct ReaderDeleter {
  void operator()(archive* handle) const noexcept { archive_read_free(handle); }
};

/// Directories (without the leading slash) where ld.so looks by default: only files there are
/// libraries a package provides to every program.
std::set<std::string> libraryDirectories() {
  std::set<std::string> dirs = {"lib", "usr/lib", "lib64", "usr/lib64"};
  for (const auto& dir : defaultSystemDirectories()) dirs.insert(dir.relative_path().string());
  return dirs;
}

}  // namespace

std::vector<fs::path> findAptContentsIndexes() {
  const std::string wanted = "Contents-" + debianArchitecture();
  std::vector<fs::path> found;
  for (const char* dir : {"/var/cache/apt/apt-file", "/var/lib/apt/lists"}) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      // "..._main_Contents-amd64.lz4", not "Contents-udeb-amd64" (installer packages).
      auto at = name.find(wanted);
      if (at == std::string::npos) continue;
      std::string rest = name.substr(at + wanted.size());
      if (!rest.empty() && rest[0] != '.') continue;
      if (rest == ".diff_Index" || rest.find(".diff") != std::string::npos) continue;
      if (it->is_regular_file(ec)) found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::map<std::string, std::string> lookupContentsIndexes(const std::vector<fs::path>& indexes,
                                                         const std::vector<std::string>& names) {
  std::map<std::string, std::string> owners;
  if (names.empty()) return owners;
  const std::set<std::string> wanted(names.begin(), names.end());
  const std::set<std::string> dirs = libraryDirectories();
  for (const auto& index : indexes) {
    std::unique_ptr<archive, ReaderDeleter> reader(archive_read_new());
    archive_read_support_filter_all(reader.get());  // apt stores lz4; mirrors serve gz and xz
    archive_read_support_format_raw(reader.get());
    archive_read_support_format_empty(reader.get());
    archive_entry* entry = nullptr;
    if (archive_read_open_filename(reader.get(), index.c_str(), 1 << 16) != ARCHIVE_OK) {
      throw Error("read apt Contents index", index.string(), archive_error_string(reader.get()));
    }
    int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) continue;
    if (status != ARCHIVE_OK) {
      throw Error("read apt Contents index", index.string(), archive_error_string(reader.get()));
    }
    std::string pending;
    std::size_t line_number = 0;
    auto handleLine = [&](std::string_view line) {
      ++line_number;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
      if (line.empty()) return;
      // "path<blanks>area/section/package[,area/section/package...]": the path may hold blanks,
      // the package list never does, so the last run of blanks separates them.
      auto split = line.find_last_of(" \t");
      if (split == std::string_view::npos) {
        throw Error("read apt Contents index", index.string() + ":" + std::to_string(line_number),
                    "expected 'PATH  SECTION/PACKAGE[,...]', got '" + std::string(line) + "'");
      }
      std::string_view packages = line.substr(split + 1);
      std::string_view path = line.substr(0, line.find_last_not_of(" \t", split) + 1);
      // Old-style indexes end their preamble with a "FILE  LOCATION" heading.
      if (path == "FILE" && packages == "LOCATION") return;
      auto slash = path.rfind('/');
      std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
      if (!wanted.count(std::string(base))) return;
      std::string dir(slash == std::string_view::npos ? "" : path.substr(0, slash));
      if (!dirs.count(dir)) return;
      std::string_view first = packages.substr(0, packages.find(','));
      std::string package(first.substr(first.rfind('/') == std::string_view::npos
                                           ? 0
                                           : first.rfind('/') + 1));
      if (package.empty()) {
        throw Error("read apt Contents index", index.string() + ":" + std::to_string(line_number),
                    "no package named for " + std::string(path));
      }
      owners.emplace(std::string(base), package);
    };
    std::vector<char> buffer(1 << 20);
    for (;;) {
      la_ssize_t got = archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (got < 0) {
        throw Error("read apt Contents index", index.string(), archive_error_string(reader.get()));
      }
      if (got == 0) break;
      pending.append(buffer.data(), static_cast<std::size_t>(got));
      std::size_t start = 0;
      for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos;
           start = newline + 1) {
        handleLine(std::string_view(pending).substr(start, newline - start));
      }
      pending.erase(0, start);
    }
    if (!pending.empty()) handleLine(pending);
    if (owners.size() == wanted.size()) break;
  }
  return owners;
}

}  // namespace kbatch::image
