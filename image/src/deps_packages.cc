// Which distribution package owns a library: `dpkg -S` on Debian (one call for all files), and
// the RPM capability / `dnf repoquery --whatprovides` output format for RPM distributions.

#include <set>
#include <sstream>

#include "deps_process.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {

namespace fs = std::filesystem;

namespace {

/// Top-level directories that merged-/usr systems make links into /usr: dpkg's database may
/// record a file under either spelling (bookworm's libc6 still ships /lib/x86_64-linux-gnu/...).
const char* const kMergedUsrDirectories[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

std::optional<fs::path> mergedUsrAlias(const fs::path& path) {
  auto component = path.begin();
  if (component == path.end() || *component != "/") return std::nullopt;
  ++component;
  if (component == path.end()) return std::nullopt;
  fs::path alias;
  if (*component == "usr") {
    ++component;
    if (component == path.end()) return std::nullopt;
    bool merged = false;
    for (const char* dir : kMergedUsrDirectories) merged = merged || *component == dir;
    if (!merged) return std::nullopt;
    alias = "/";
  } else {
    bool merged = false;
    for (const char* dir : kMergedUsrDirectories) merged = merged || *component == dir;
    if (!merged) return std::nullopt;
    alias = "/usr";
  }
  for (; component != path.end(); ++component) alias /= *component;
  return alias;
}

std::string trim(const std::string& text) {
  auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

}  // namespace

std::map<fs::path, std::string> parseDpkgSearchOutput(const std::string& output) {
  std::map<fs::path, std::string> owners;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    // "diversion by X from: /p" and "diversion by X to: /p" describe diversions, not owners.
    if (line.rfind("diversion by ", 0) == 0) continue;
    auto separator = line.find(": /");
    if (separator == std::string::npos) continue;
    std::string packages = line.substr(0, separator);
    fs::path file = trim(line.substr(separator + 2));
    // Several packages may share a directory or a file ("a, b: /path"): keep the first.
    std::string first = trim(packages.substr(0, packages.find(',')));
    if (!first.empty()) owners.emplace(file, first);
  }
  return owners;
}

std::map<fs::path, std::string> lookupDebianPackages(const std::vector<fs::path>& files) {
  std::map<fs::path, std::string> owners;
  if (files.empty()) return owners;
  if (!detail::programExists("dpkg-query")) {
    log::warn("dpkg-query not found: library packages are not looked up");
    return owners;
  }
  std::set<fs::path> queries;
  for (const auto& file : files) {
    queries.insert(file);
    if (auto alias = mergedUsrAlias(file)) queries.insert(*alias);
  }
  std::vector<std::string> argv = {"dpkg-query", "--search", "--"};
  for (const auto& query : queries) argv.push_back(query.string());
  // Exit status 1 only means some files belong to no package; stderr lists those.
  auto result = detail::runProcess(argv);
  if (result.exit_status > 1) {
    throw Error("look up packages", "dpkg-query --search",
                "exit status " + std::to_string(result.exit_status) + ": " +
                    trim(result.standard_error));
  }
  auto found = parseDpkgSearchOutput(result.standard_output);
  for (const auto& file : files) {
    if (auto owner = found.find(file); owner != found.end()) {
      owners.emplace(file, owner->second);
    } else if (auto alias = mergedUsrAlias(file)) {
      if (auto aliased = found.find(*alias); aliased != found.end()) {
        owners.emplace(file, aliased->second);
      }
    }
  }
  return owners;
}

std::string rpmLibraryCapability(const std::string& soname, bool sixty_four_bit) {
  // rpm's elfdeps writes "libfoo.so.1()(64bit)" for 64-bit objects and "libfoo.so.1" for 32-bit.
  return sixty_four_bit ? soname + "()(64bit)" : soname;
}

std::vector<std::string> parseDnfRepoqueryOutput(const std::string& output,
                                                 const std::string& source) {
  std::vector<std::string> packages;
  std::istringstream lines(output);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    line = trim(line);
    if (line.empty()) continue;
    // dnf prints metadata progress on stdout when not quiet ("Last metadata expiration check:",
    // "Updating and loading repositories:", "Repositories loaded."); none of them is a NEVRA.
    if (line.find(' ') != std::string::npos || line.ends_with(":") ||
        line == "Repositories loaded.") {
      continue;
    }
    // NEVRA: name-[epoch:]version-release.arch; the name may itself contain dashes.
    auto arch_dot = line.rfind('.');
    auto release_dash = line.rfind('-', arch_dot);
    if (arch_dot == std::string::npos || release_dash == std::string::npos || release_dash == 0) {
      throw Error("parse dnf repoquery output", source + ":" + std::to_string(number),
                  "'" + line + "' is not name-[epoch:]version-release.arch");
    }
    auto version_dash = line.rfind('-', release_dash - 1);
    if (version_dash == std::string::npos || version_dash == 0) {
      throw Error("parse dnf repoquery output", source + ":" + std::to_string(number),
                  "'" + line + "' has no version field");
    }
    std::string name = line.substr(0, version_dash);
    if (std::find(packages.begin(), packages.end(), name) == packages.end()) {
      packages.push_back(name);
    }
  }
  return packages;
}

}  // namespace kbatch::image
