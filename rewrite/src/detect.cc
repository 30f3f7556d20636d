#include "kbatch/rewrite/detect.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "kbatch/rewrite/subprocess.h"

namespace kbatch::rewrite {
namespace {

namespace fs = std::filesystem;

bool isAssignment(std::string_view word) {
  std::size_t equals = word.find('=');
  if (equals == 0 || equals == std::string_view::npos) return false;
  if (std::isdigit(static_cast<unsigned char>(word[0]))) return false;
  return std::all_of(word.begin(), word.begin() + static_cast<std::ptrdiff_t>(equals), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

/// Words the shell would expand, split or glob: their meaning exists only at run time.
bool needsTheShell(std::string_view word) {
  return word.find_first_of("$`'\"\\*?[{~<>|;&()") != std::string_view::npos;
}

bool isElfFile(const fs::path& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return false;
  std::ifstream stream(path, std::ios::binary);
  char magic[4] = {};
  return stream.read(magic, 4) && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
}

/// The word the line runs, after wrappers that only start it: `exec`, `time`, `env`, assignments,
/// and MPI/Slurm launchers with their options. Only paths (words with '/') can be detected, so
/// after a launcher every word without '/' is an option's value (`-np 4`, `--bind-to core`),
/// and the few options whose value is a path skip it explicitly.
std::optional<std::string> commandWord(const std::vector<std::string>& words) {
  static const std::set<std::string> kPlainWrappers = {"exec", "time", "env", "nohup", "command"};
  static const std::set<std::string> kLaunchers = {"mpirun", "mpiexec", "srun", "mpiexec.hydra"};
  static const std::set<std::string> kPathOptions = {
      "-hostfile", "--hostfile", "-machinefile", "--machinefile", "-f", "-wdir", "--wdir",
      "--chdir", "-D", "--output-filename", "-o", "-e", "-i", "--output", "--error", "--input"};
  std::size_t i = 0;
  while (i < words.size()) {
    const std::string& word = words[i];
    if (isAssignment(word) || kPlainWrappers.count(word) != 0) {
      ++i;
      continue;
    }
    if (kLaunchers.count(fs::path(word).filename().string()) == 0) return word;
    ++i;
    while (i < words.size()) {
      const std::string& option = words[i];
      if (!option.empty() && option[0] == '-') {
        i += kPathOptions.count(option) != 0 ? 2 : 1;
      } else if (option.find('/') == std::string::npos) {
        ++i;  // an option's value
      } else {
        break;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> findJobBinaries(std::string_view body, const fs::path& workdir) {
  std::vector<std::string> found;
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t newline = body.find('\n', start);
    std::string line(body.substr(start, newline == std::string_view::npos ? std::string_view::npos
                                                                          : newline - start));
    start = newline == std::string_view::npos ? body.size() : newline + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> words;
    std::istringstream stream(line);
    for (std::string word; stream >> word;) {
      if (word[0] == '#') break;  // a comment
      words.push_back(word);
    }
    auto command = commandWord(words);
    if (!command || needsTheShell(*command)) continue;
    // A bare name is looked up on PATH by the shell, and system programs are on every node.
    if (command->find('/') == std::string::npos) continue;
    fs::path path = fs::path(*command).is_absolute() ? fs::path(*command) : workdir / *command;
    if (!isElfFile(path)) continue;
    if (std::find(found.begin(), found.end(), *command) == found.end()) found.push_back(*command);
  }
  return found;
}

std::vector<NeededLibrary> listNeededLibraries(const std::string& kbatch_path,
                                               const std::string& binary) {
  const char* action = "list the libraries of";
  const CapturedRun run = runCapturingStdout(
      {kbatch_path, "deps", "--json", "--no-packages", binary}, action, binary);
  const std::string& json = run.standard_output;
  // 1 means "a library is missing on this host too": the list is still complete.
  if (run.status != 0 && run.status != 1) {
    throw Error(action, binary,
                "`" + kbatch_path + " deps --json` failed (status " + std::to_string(run.status) +
                    ")",
                "run `kbatch deps " + binary + "` to see why");
  }
  std::vector<NeededLibrary> libraries;
  try {
    auto document = nlohmann::json::parse(json);
    for (const auto& entry : document.at("libraries")) {
      NeededLibrary library;
      library.name = entry.at("name").get<std::string>();
      if (entry.contains("soname") && entry["soname"].is_string()) {
        library.soname = entry["soname"].get<std::string>();
      }
      if (entry.contains("path") && entry["path"].is_string()) {
        library.path = entry["path"].get<std::string>();
      }
      libraries.push_back(std::move(library));
    }
  } catch (const nlohmann::json::exception& error) {
    throw Error(action, binary,
                std::string("`kbatch deps --json` answered unexpected JSON: ") + error.what());
  }
  return libraries;
}

BinaryDetector makeBinaryDetector(DetectOptions options) {
  return [options = std::move(options)](const JobSpec& spec,
                                        std::string_view body) -> std::optional<std::string> {
    fs::path workdir = options.submit_directory;
    if (spec.workdir) workdir = fs::path(*spec.workdir).is_absolute() ? fs::path(*spec.workdir)
                                                                       : workdir / *spec.workdir;
    auto binaries = findJobBinaries(body, workdir);
    if (binaries.empty() || (options.enabled && !options.enabled())) return std::nullopt;
    for (const auto& binary : binaries) {
      std::string path =
          fs::path(binary).is_absolute() ? binary : (workdir / binary).lexically_normal().string();
      auto libraries = options.list_libraries ? options.list_libraries(path)
                                              : listNeededLibraries(options.kbatch_path, path);
      for (const auto& library : libraries) {
        std::string why;
        for (const auto* candidate : {&library.name, library.soname ? &*library.soname : nullptr,
                                      library.path ? &*library.path : nullptr}) {
          if (candidate != nullptr && options.node_lacks(*candidate, &why)) {
            log::info("{} needs {}, which the compute nodes lack ({}): running it in a "
                      "dependency image", binary, library.name, why);
            return binary;
          }
        }
      }
    }
    return std::nullopt;
  };
}

}  // namespace kbatch::rewrite
