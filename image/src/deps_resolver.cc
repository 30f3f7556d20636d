// The library resolver: a model of glibc's elf/dl-load.c (_dl_map_object) and elf/dl-deps.c
// (_dl_map_object_deps), run on files instead of a process. Objects are loaded breadth first, a
// DT_NEEDED name already satisfied (by an earlier object's name or DT_SONAME, or by the same file
// under another name) is not searched again, and each new object remembers the object that first
// needed it, because DT_RPATH is inherited along that chain.

#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>
#include <unordered_map>

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {

namespace fs = std::filesystem;

const char* toString(FoundVia via) {
  switch (via) {
    case FoundVia::kDirectPath: return "path";
    case FoundVia::kRpath: return "rpath";
    case FoundVia::kLdLibraryPath: return "ld_library_path";
    case FoundVia::kRunpath: return "runpath";
    case FoundVia::kLdCache: return "ld.so.cache";
    case FoundVia::kDefaultDir: return "default_dir";
    case FoundVia::kAlreadyLoaded: return "loaded";
    case FoundVia::kPluginDir: return "plugin_dir";
    case FoundVia::kNotFound: return "not_found";
  }
  return "?";
}

std::vector<std::string> DependencyReport::missingNames() const {
  std::vector<std::string> names;
  for (const auto& library : libraries) {
    if (library.missing()) names.push_back(library.name);
  }
  return names;
}

std::vector<fs::path> defaultSystemDirectories() {
  // ld.so's SYSTEM_DIRS are compiled in; Debian's multiarch build uses these four (`ld.so --help`
  // lists them), RPM-style 64-bit builds use /lib64 and /usr/lib64.
#if defined(__x86_64__)
  const char* multiarch = "x86_64-linux-gnu";
#elif defined(__aarch64__)
  const char* multiarch = "aarch64-linux-gnu";
#else
  const char* multiarch = nullptr;
#endif
  std::error_code ec;
  if (multiarch != nullptr && fs::is_directory(fs::path("/usr/lib") / multiarch, ec)) {
    return {fs::path("/lib") / multiarch, fs::path("/usr/lib") / multiarch, "/lib", "/usr/lib"};
  }
  if (sizeof(void*) == 8 && fs::is_directory("/usr/lib64", ec)) return {"/lib64", "/usr/lib64"};
  return {"/lib", "/usr/lib"};
}

namespace {

/// What $LIB and $PLATFORM expand to, and the hardware-capability subdirectories ld.so tries in
/// every search directory before the directory itself (glibc 2.36: glibc-hwcaps levels the CPU
/// supports, then the legacy tls/platform names).
struct SearchEnvironment {
  std::string lib;
  std::string platform;
  std::vector<std::string> subdirectories;  // "" is the directory itself, always last
};

SearchEnvironment describeSearchEnvironment() {
  SearchEnvironment environment;
  struct utsname names {};
  ::uname(&names);
  environment.platform = names.machine;
  auto system_dirs = defaultSystemDirectories();
  // $LIB is the library directory of this ld.so build: "lib/x86_64-linux-gnu" on Debian.
  environment.lib = system_dirs.front().relative_path().string();
#if defined(__x86_64__)
  // The x86-64 micro-architecture levels from their defining features: clang 14 has no
  // __builtin_cpu_supports("x86-64-vN"), and both compilers know the individual features.
  const bool level2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt") &&
                      __builtin_cpu_supports("ssse3");
  const bool level3 = level2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
                      __builtin_cpu_supports("fma");
  const bool level4 = level3 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (level4) environment.subdirectories.push_back("glibc-hwcaps/x86-64-v4");
  if (level3) environment.subdirectories.push_back("glibc-hwcaps/x86-64-v3");
  if (level2) environment.subdirectories.push_back("glibc-hwcaps/x86-64-v2");
  // The legacy names as glibc 2.36 lists them (AT_PLATFORM "x86_64" and hwcap "x86_64").
  for (const char* legacy : {"tls/x86_64/x86_64", "tls/x86_64", "tls", "x86_64/x86_64", "x86_64"}) {
    environment.subdirectories.push_back(legacy);
  }
#endif
  environment.subdirectories.push_back("");
  return environment;
}

/// One object in the simulated link map.
struct LoadedObject {
  fs::path path;                       // as ld.so names it (l_name)
  std::set<std::string> names;         // names it satisfies (l_libname + soname)
  ElfInfo info;
  std::optional<std::size_t> loader;   // index of the object that first needed it
  std::optional<std::size_t> record;   // index into report.libraries (none for main/interpreter)
  dev_t device = 0;
  ino_t inode = 0;
};

class Resolver {
 public:
  Resolver(const DependencyOptions& options, DependencyReport& report)
      : options_(options), report_(report), environment_(describeSearchEnvironment()) {
    system_dirs_ = options.system_dirs.empty() ? defaultSystemDirectories() : options.system_dirs;
    std::error_code ec;
    if (fs::exists(options.ld_cache, ec)) {
      for (auto& entry : readLdCache(options.ld_cache)) {
        if (entry.hwcap != 0) continue;  // glibc-hwcaps entries need the CPU check ld.so does
        if (entry.flags != 1 && entry.flags != nativeLdCacheFlags()) continue;
        cache_.emplace(entry.name, entry.path);  // first entry wins, as in ld.so's lookup
      }
    }
  }

  void run(const fs::path& binary) {
    report_.requested_path = fs::absolute(binary).lexically_normal();
    report_.binary = fs::canonical(binary);
    report_.binary_info = readElfFile(report_.binary);
    const ElfInfo& main_info = report_.binary_info;
    if (!main_info.has_dynamic) return;
    LoadedObject main;
    main.path = report_.binary;
    main.info = main_info;
    setIdentity(main);
    objects_.push_back(std::move(main));
    if (main_info.interpreter) addInterpreter(*main_info.interpreter);
    loadBreadthFirst(0);
    for (const auto& dir : options_.plugin_dirs) addPluginDirectory(dir);
  }

 private:
  static void setIdentity(LoadedObject& object) {
    struct stat st {};
    if (::stat(object.path.c_str(), &st) == 0) {
      object.device = st.st_dev;
      object.inode = st.st_ino;
    }
  }

  void addInterpreter(const std::string& interpreter) {
    report_.interpreter = interpreter;
    report_.interpreter_chain = followSymlinks(interpreter);
    std::error_code ec;
    if (!fs::exists(interpreter, ec)) {
      log::warn("{}: interpreter {} does not exist on this host", report_.binary.string(),
                interpreter);
      return;
    }
    LoadedObject object;
    object.path = interpreter;
    object.names.insert(interpreter);
    object.info = readElfFile(interpreter);
    if (object.info.soname) object.names.insert(*object.info.soname);
    setIdentity(object);
    objects_.push_back(std::move(object));
  }

  void loadBreadthFirst(std::size_t first) {
    std::deque<std::size_t> queue{first};
    while (!queue.empty()) {
      std::size_t requester = queue.front();
      queue.pop_front();
      // Copy: objects_ grows (and may reallocate) while we walk the list.
      const std::vector<std::string> needed = objects_[requester].info.needed;
      for (const auto& name : needed) {
        if (auto loaded = findLoaded(name)) {
          noteNeededBy(*loaded, requester);
          continue;
        }
        auto found = search(name, requester);
        if (!found) {
          recordMissing(name, requester);
          continue;
        }
        if (auto same = findLoadedFile(found->first)) {
          objects_[*same].names.insert(name);
          noteNeededBy(*same, requester);
          continue;
        }
        queue.push_back(addObject(name, found->first, found->second, requester));
      }
    }
  }

  std::optional<std::size_t> findLoaded(const std::string& name) const {
    for (std::size_t i = 0; i < objects_.size(); ++i) {
      if (objects_[i].names.count(name) != 0) return i;
    }
    return std::nullopt;
  }

  std::optional<std::size_t> findLoadedFile(const fs::path& path) const {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    for (std::size_t i = 0; i < objects_.size(); ++i) {
      if (objects_[i].inode == st.st_ino && objects_[i].device == st.st_dev) return i;
    }
    return std::nullopt;
  }

  void noteNeededBy(std::size_t object, std::size_t requester) {
    if (!objects_[object].record) return;
    auto& needed_by = report_.libraries[*objects_[object].record].needed_by;
    std::string who = objects_[requester].path.string();
    if (std::find(needed_by.begin(), needed_by.end(), who) == needed_by.end()) {
      needed_by.push_back(who);
    }
  }

  void recordMissing(const std::string& name, std::size_t requester) {
    std::string who = objects_[requester].path.string();
    for (auto& library : report_.libraries) {
      if (library.missing() && library.name == name) {
        library.needed_by.push_back(who);
        return;
      }
    }
    LibraryRecord record;
    record.name = name;
    record.needed_by.push_back(who);
    report_.libraries.push_back(std::move(record));
  }

  std::size_t addObject(const std::string& name, const fs::path& path, FoundVia via,
                        std::optional<std::size_t> requester) {
    LoadedObject object;
    object.path = path;
    object.names.insert(name);
    object.names.insert(path.string());
    object.info = readElfFile(path);
    if (object.info.soname) object.names.insert(*object.info.soname);
    object.loader = requester;
    setIdentity(object);
    LibraryRecord record;
    record.name = name;
    record.soname = object.info.soname;
    record.path = path;
    record.symlink_chain = followSymlinks(path);
    record.found_via = via;
    if (requester) record.needed_by.push_back(objects_[*requester].path.string());
    object.record = report_.libraries.size();
    report_.libraries.push_back(std::move(record));
    objects_.push_back(std::move(object));
    return objects_.size() - 1;
  }

  /// $ORIGIN of an object: the directory of the path it was loaded by (ld.so does not resolve
  /// symlinks for libraries; for the main program it uses /proc/self/exe, the canonical path).
  static std::string originOf(const LoadedObject& object) {
    return object.path.parent_path().string();
  }

  /// Expands $ORIGIN, $LIB and $PLATFORM (also in ${...} form) as _dl_dst_substitute does.
  std::string expandTokens(const std::string& text, const LoadedObject& object) const {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
      if (text[i] != '$') {
        out.push_back(text[i++]);
        continue;
      }
      auto matches = [&](const std::string& token, std::size_t* length) {
        const std::string plain = "$" + token, braced = "${" + token + "}";
        if (text.compare(i, braced.size(), braced) == 0) {
          *length = braced.size();
          return true;
        }
        // A bare token must end at a non-identifier character.
        if (text.compare(i, plain.size(), plain) == 0) {
          std::size_t after = i + plain.size();
          if (after == text.size() || !(std::isalnum(static_cast<unsigned char>(text[after])) ||
                                        text[after] == '_')) {
            *length = plain.size();
            return true;
          }
        }
        return false;
      };
      std::size_t length = 0;
      if (matches("ORIGIN", &length)) {
        out += originOf(object);
      } else if (matches("LIB", &length)) {
        out += environment_.lib;
      } else if (matches("PLATFORM", &length)) {
        out += environment_.platform;
      } else {
        out.push_back(text[i]);
        length = 1;
      }
      i += length;
    }
    return out;
  }

  std::vector<fs::path> expandDirectories(const std::vector<std::string>& entries,
                                          const LoadedObject& object) const {
    std::vector<fs::path> dirs;
    for (const auto& entry : entries) {
      // An empty element means the current directory, as in ld.so's fillin_rpath.
      dirs.emplace_back(entry.empty() ? std::string(".") : expandTokens(entry, object));
    }
    return dirs;
  }

  bool candidateMatches(const fs::path& candidate) {
    auto header = probeElfHeader(candidate);
    if (!header) return false;
    const ElfInfo& main = report_.binary_info;
    // ld.so's open_verify: wrong class, byte order or machine are skipped and the search goes on.
    return header->elf_class == main.elf_class && header->data_encoding == main.data_encoding &&
           header->machine == main.machine &&
           (header->type == 3 /*ET_DYN*/ || header->type == 2 /*ET_EXEC*/);
  }

  bool directoryExists(const fs::path& dir) {
    auto it = directory_exists_.find(dir.string());
    if (it != directory_exists_.end()) return it->second;
    std::error_code ec;
    bool exists = fs::is_directory(dir, ec);
    directory_exists_.emplace(dir.string(), exists);
    return exists;
  }

  std::optional<fs::path> searchDirectories(const std::vector<fs::path>& dirs,
                                            const std::string& name) {
    for (const auto& dir : dirs) {
      for (const auto& subdirectory : environment_.subdirectories) {
        fs::path where = subdirectory.empty() ? dir : dir / subdirectory;
        if (!directoryExists(where)) continue;
        fs::path candidate = where / name;
        if (candidateMatches(candidate)) return candidate;
      }
    }
    return std::nullopt;
  }

  std::optional<std::pair<fs::path, FoundVia>> search(const std::string& name,
                                                      std::size_t requester) {
    const LoadedObject& loader = objects_[requester];
    if (name.find('/') != std::string::npos) {
      fs::path direct = expandTokens(name, loader);
      if (candidateMatches(direct)) return std::pair{direct, FoundVia::kDirectPath};
      return std::nullopt;
    }
    // 1. DT_RPATH of the requester and of every object up its loading chain, unless the
    //    requester has DT_RUNPATH (an object's own RPATH is ignored when it has a RUNPATH).
    if (loader.info.runpath.empty()) {
      std::set<std::size_t> visited;
      for (std::optional<std::size_t> at = requester; at && visited.insert(*at).second;
           at = objects_[*at].loader) {
        const LoadedObject& object = objects_[*at];
        if (object.info.rpath.empty() || !object.info.runpath.empty()) continue;
        if (auto found = searchDirectories(expandDirectories(object.info.rpath, object), name)) {
          return std::pair{*found, FoundVia::kRpath};
        }
      }
    }
    // 2. LD_LIBRARY_PATH (split at ':' and ';'; $ORIGIN there is the main program's).
    if (options_.ld_library_path) {
      std::vector<std::string> entries;
      std::string current;
      for (char c : *options_.ld_library_path) {
        if (c == ':' || c == ';') {
          entries.push_back(current);
          current.clear();
        } else {
          current.push_back(c);
        }
      }
      entries.push_back(current);
      if (auto found = searchDirectories(expandDirectories(entries, objects_[0]), name)) {
        return std::pair{*found, FoundVia::kLdLibraryPath};
      }
    }
    // 3. DT_RUNPATH of the requester only (never inherited).
    if (!loader.info.runpath.empty()) {
      if (auto found = searchDirectories(expandDirectories(loader.info.runpath, loader), name)) {
        return std::pair{*found, FoundVia::kRunpath};
      }
    }
    if (loader.info.no_default_lib) return std::nullopt;
    // 4. /etc/ld.so.cache.
    if (auto cached = cache_.find(name); cached != cache_.end()) {
      if (candidateMatches(cached->second)) return std::pair{cached->second, FoundVia::kLdCache};
    }
    // 5. The default system directories.
    if (auto found = searchDirectories(system_dirs_, name)) {
      return std::pair{*found, FoundVia::kDefaultDir};
    }
    return std::nullopt;
  }

  void addPluginDirectory(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      throw Error("read plugin directory", dir.string(), "not a directory",
                  "give a directory holding the dlopen()ed .so files");
    }
    std::vector<fs::path> plugins;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string file = entry.path().filename().string();
      bool shared_object = file.size() > 3 && (file.ends_with(".so") ||
                                               file.find(".so.") != std::string::npos);
      if (shared_object && entry.is_regular_file()) plugins.push_back(entry.path());
    }
    std::sort(plugins.begin(), plugins.end());
    for (const auto& plugin : plugins) {
      fs::path path = fs::absolute(plugin).lexically_normal();
      if (!candidateMatches(path)) {
        throw Error("add plugin", path.string(),
                    "is not a " + describeElfKind(report_.binary_info) + " shared object",
                    "plugins must match the binary's class and machine");
      }
      report_.plugins.push_back(path);
      if (findLoadedFile(path)) continue;
      // dlopen() from the program: the main map is the loader, as for a call in main().
      std::size_t index = addObject(path.filename().string(), path, FoundVia::kPluginDir, 0);
      loadBreadthFirst(index);
    }
  }

  const DependencyOptions& options_;
  DependencyReport& report_;
  SearchEnvironment environment_;
  std::vector<fs::path> system_dirs_;
  std::unordered_map<std::string, fs::path> cache_;
  std::unordered_map<std::string, bool> directory_exists_;
  std::vector<LoadedObject> objects_;
};

}  // namespace

std::vector<fs::path> followSymlinks(const fs::path& start) {
  std::vector<fs::path> chain{start};
  fs::path current = start;
  for (int hops = 0; hops < 40; ++hops) {
    fs::path prefix;
    bool replaced = false;
    for (auto component = current.begin(); component != current.end(); ++component) {
      prefix /= *component;
      std::error_code ec;
      if (!fs::is_symlink(prefix, ec)) continue;
      fs::path target = fs::read_symlink(prefix, ec);
      if (ec) break;
      fs::path next = target.is_absolute() ? target : prefix.parent_path() / target;
      for (auto rest = std::next(component); rest != current.end(); ++rest) next /= *rest;
      current = next.lexically_normal();
      chain.push_back(current);
      replaced = true;
      break;
    }
    if (!replaced) return chain;
  }
  throw Error("follow symlinks", start.string(), "too many levels of symbolic links");
}

DependencyReport resolveDependencies(const fs::path& binary, const DependencyOptions& options) {
  std::error_code ec;
  if (!fs::exists(binary, ec)) {
    throw Error("analyse binary", binary.string(), "no such file", {}, exit_code::kNotFound);
  }
  DependencyReport report;
  Resolver resolver(options, report);
  resolver.run(binary);
  if (options.lookup_packages) {
    std::vector<fs::path> files;
    for (const auto& library : report.libraries) {
      if (!library.missing()) files.insert(files.end(), library.symlink_chain.begin(),
                                            library.symlink_chain.end());
    }
    auto owners = lookupDebianPackages(files);
    for (auto& library : report.libraries) {
      if (library.missing()) continue;
      // The real file's owner is the package; fall back to a link name's owner.
      for (auto it = library.symlink_chain.rbegin(); it != library.symlink_chain.rend(); ++it) {
        if (auto owner = owners.find(*it); owner != owners.end()) {
          library.package = owner->second;
          break;
        }
      }
    }
  }
  return report;
}

}  // namespace kbatch::image
