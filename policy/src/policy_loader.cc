// Loading /etc/kbatch/policy.yaml: file checks (trusted_file.cc), text checks (text_checks.cc),
// then a strict walk over the YAML tree in which every key is known, every value has its type,
// and every rule remembers the file, line and column it came from.

#include <unistd.h>
// GCC 12 reports a false -Wdangling-pointer inside yaml-cpp's node/impl.h; not our code to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#include <yaml-cpp/yaml.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "kbatch/common/atomic_file.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/policy/policy.h"
#include "kbatch/policy/seccomp_json.h"
#include "policy_compiled.h"
#include "text_checks.h"
#include "trusted_file.h"

namespace kbatch::policy {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLoadAction = "load policy";

// Keys that would grant what kbatch never grants, normalised (lower case, no '_' or '-'), with the
// reason shown to the admin who wrote them.
const std::map<std::string, std::string>& forbiddenKeys() {
  static const std::map<std::string, std::string> kForbidden = {
      {"privileged", "kbatch never runs privileged containers"},
      {"allowprivileged", "kbatch never runs privileged containers"},
      {"allowprivilegeescalation", "jobs always run with no_new_privs"},
      {"hostnetwork", "jobs never share the host's network namespace"},
      {"hostpid", "jobs never share the host's PID namespace"},
      {"hostipc", "jobs never share the host's IPC namespace"},
      {"hostpath", "host paths are granted only through binds.allowed (and PVCs on Kubernetes)"},
      {"hostpaths", "host paths are granted only through binds.allowed (and PVCs on Kubernetes)"},
      {"writablehostpaths", "writable host paths are granted only through binds.allowed"},
      {"unconfined", "jobs always run under a seccomp profile"},
  };
  return kForbidden;
}

std::string normaliseKey(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '_' || c == '-') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

const std::set<std::string>& bindVariables() {
  static const std::set<std::string> kVariables = {"HOME", "USER", "PBS_O_WORKDIR", "TMPDIR",
                                                   "KBATCH_JOB_SCRATCH"};
  return kVariables;
}

bool isDnsLabel(const std::string& name, std::size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '-' || (max_length > 63 && c == '.'); });
}

class PolicyReader {
 public:
  PolicyReader(std::string file, const LoadOptions& options)
      : file_(std::move(file)), options_(options) {}

  SourceLocation at(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    return {file_, mark.line + 1, mark.column + 1};
  }

  [[noreturn]] void fail(const SourceLocation& where, const std::string& cause,
                         const std::string& hint = {}) const {
    throw Error(kLoadAction, where.toString(), cause, hint);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& cause,
                         const std::string& hint = {}) const {
    fail(at(node), cause, hint);
  }

  static std::string typeName(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Map: return "a mapping";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
      case YAML::NodeType::Null: return "nothing";
      default: return "an undefined value";
    }
  }

  // Checks the keys of a mapping: no duplicates, nothing forbidden, nothing unknown. Returns the
  // values by key, with the key nodes kept for their positions.
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> readMap(
      const YAML::Node& node, const std::string& section, const std::vector<std::string>& known,
      const std::vector<std::string>& overlay_refused = {}) const {
    if (!node.IsMap()) fail(node, section + ": expected a mapping, found " + typeName(node));
    std::map<std::string, std::pair<YAML::Node, YAML::Node>> entries;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies: the iterator hands out a temporary pair, so a reference into it would dangle
      // (found by fuzz_policy under ASan).
      YAML::Node key_node = it->first;
      YAML::Node value_node = it->second;
      if (!key_node.IsScalar()) fail(key_node, section + ": keys must be plain words");
      std::string key = key_node.Scalar();
      std::string name = section.empty() ? key : section + "." + key;
      auto forbidden = forbiddenKeys().find(normaliseKey(key));
      if (forbidden != forbiddenKeys().end()) {
        fail(key_node, "'" + name + "' cannot be allowed by any policy: " + forbidden->second);
      }
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        auto suggestion = detail::closestMatch(key, known);
        fail(key_node, "unknown key '" + name + "'",
             suggestion ? "did you mean '" + *suggestion + "'?"
                        : "known keys here: " + joinWords(known));
      }
      if (options_.overlay &&
          std::find(overlay_refused.begin(), overlay_refused.end(), key) != overlay_refused.end()) {
        fail(key_node, "'" + name + "' cannot be set in an overlay policy: an overlay can only "
                       "add restrictions, and only the site policy configures this");
      }
      if (entries.count(key) != 0) {
        fail(key_node, "'" + name + "' is given twice (first at line " +
                           std::to_string(entries[key].first.Mark().line + 1) + ")");
      }
      entries.emplace(key, std::make_pair(key_node, value_node));
    }
    return entries;
  }

  static std::string joinWords(const std::vector<std::string>& words) {
    std::string joined;
    for (const auto& word : words) joined += (joined.empty() ? "" : ", ") + word;
    return joined;
  }

  std::string scalar(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) fail(node, field + ": expected a string, found " + typeName(node));
    return node.Scalar();
  }

  bool boolean(const YAML::Node& node, const std::string& field) const {
    std::string text = scalar(node, field);
    // Only the YAML 1.2 spellings: `yes`/`on` read as booleans is a classic YAML surprise.
    if (text == "true") return true;
    if (text == "false") return false;
    fail(node, field + ": expected true or false, found '" + text + "'");
  }

  std::int64_t integer(const YAML::Node& node, const std::string& field, std::int64_t min,
                       std::int64_t max) const {
    std::string text = scalar(node, field);
    bool digits = !text.empty() && text.size() <= 18 &&
                  std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) fail(node, field + ": expected a whole number, found '" + text + "'");
    std::int64_t value = std::stoll(text);
    if (value < min || value > max) {
      fail(node, field + ": must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return value;
  }

  std::vector<std::pair<std::string, YAML::Node>> stringList(const YAML::Node& node,
                                                             const std::string& field) const {
    if (!node.IsSequence()) fail(node, field + ": expected a list, found " + typeName(node));
    std::vector<std::pair<std::string, YAML::Node>> items;
    for (std::size_t i = 0; i < node.size(); ++i) {
      items.emplace_back(scalar(node[i], field + "[" + std::to_string(i) + "]"), node[i]);
    }
    return items;
  }

  std::map<std::string, std::string> stringMap(const YAML::Node& node, const std::string& field,
                                               const std::function<void(const std::string&,
                                                                        const YAML::Node&)>&
                                                   check_key,
                                               const std::function<void(const std::string&,
                                                                        const YAML::Node&)>&
                                                   check_value) const {
    if (!node.IsMap()) fail(node, field + ": expected a mapping, found " + typeName(node));
    std::map<std::string, std::string> result;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = scalar(it->first, field + " key");
      std::string value = scalar(it->second, field + "." + key);
      check_key(key, it->first);
      check_value(value, it->second);
      if (!result.emplace(key, value).second) {
        fail(it->first, field + ": '" + key + "' is given twice");
      }
    }
    return result;
  }

  // A bind path: absolute, or starting with one of the per-job variables; no '..'.
  std::string bindPath(const YAML::Node& node, const std::string& field) const {
    std::string path = scalar(node, field);
    if (path.empty()) fail(node, field + ": empty path");
    for (std::size_t i = 0; i < path.size(); ++i) {
      if (path[i] != '$') continue;
      std::size_t start = i + 1;
      bool braced = start < path.size() && path[start] == '{';
      if (braced) ++start;
      std::size_t end = start;
      while (end < path.size() && (std::isalnum(static_cast<unsigned char>(path[end])) ||
                                   path[end] == '_')) {
        ++end;
      }
      std::string name = path.substr(start, end - start);
      if (braced && (end >= path.size() || path[end] != '}')) {
        fail(node, field + ": unterminated ${...} in '" + path + "'");
      }
      if (bindVariables().count(name) == 0) {
        std::vector<std::string> names(bindVariables().begin(), bindVariables().end());
        auto suggestion = detail::closestMatch(name, names);
        fail(node, field + ": unknown variable '$" + name + "'",
             suggestion ? "did you mean '$" + *suggestion + "'?"
                        : "variables: $" + joinWords(names));
      }
      i = braced ? end : end - 1;
    }
    if (path[0] != '/' && path[0] != '$') {
      fail(node, field + ": '" + path + "' must be an absolute path or start with a variable");
    }
    for (const auto& part : fs::path(path)) {
      if (part == "..") fail(node, field + ": '" + path + "' must not contain '..'");
    }
    std::string normal = fs::path(path).lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return normal;
  }

  std::string absolutePath(const YAML::Node& node, const std::string& field) const {
    std::string path = scalar(node, field);
    if (path.empty() || path[0] != '/') fail(node, field + ": expected an absolute path");
    return path;
  }

  Backend backend(const YAML::Node& node, const std::string& field) const {
    std::string name = scalar(node, field);
    if (name == "local") return Backend::kLocal;
    if (name == "k8s") return Backend::kK8s;
    auto suggestion = detail::closestMatch(name, {"local", "k8s"});
    fail(node, field + ": unknown backend '" + name + "'",
         suggestion ? "did you mean '" + *suggestion + "'?" : "backends: local, k8s");
  }

  void read(const YAML::Node& root, Policy& policy) {
    if (root.IsNull()) return;  // an empty file: the built-in defaults
    auto top = readMap(root, "",
                       {"version", "backends", "images", "binds", "resources", "seccomp",
                        "capabilities", "fakeroot", "submit_filter", "compute_nodes", "site",
                        "kubernetes"},
                       {"seccomp", "submit_filter", "site", "kubernetes"});
    if (auto it = top.find("version"); it != top.end()) {
      integer(it->second.second, "version", 1, 1);
    }
    if (auto it = top.find("backends"); it != top.end()) readBackends(it->second.second, policy);
    if (auto it = top.find("images"); it != top.end()) readImages(it->second.second, policy);
    if (auto it = top.find("binds"); it != top.end()) readBinds(it->second.second, policy);
    if (auto it = top.find("resources"); it != top.end()) readResources(it->second.second, policy);
    if (auto it = top.find("seccomp"); it != top.end()) readSeccomp(it->second.second, policy);
    if (auto it = top.find("capabilities"); it != top.end()) {
      readCapabilities(it->second.second, policy);
    }
    if (auto it = top.find("fakeroot"); it != top.end()) {
      policy.fakeroot = boolean(it->second.second, "fakeroot");
      policy.fakeroot_where = at(it->second.first);
    }
    if (auto it = top.find("submit_filter"); it != top.end()) {
      auto entries = readMap(it->second.second, "submit_filter", {"on_error", "detect"});
      if (auto detect = entries.find("detect"); detect != entries.end()) {
        policy.submit_filter_detect = boolean(detect->second.second, "submit_filter.detect");
      }
      if (auto mode = entries.find("on_error"); mode != entries.end()) {
        std::string value = scalar(mode->second.second, "submit_filter.on_error");
        if (value == "closed") {
          policy.submit_filter_mode = SubmitFilterMode::kFailClosed;
        } else if (value == "open") {
          policy.submit_filter_mode = SubmitFilterMode::kFailOpen;
        } else {
          fail(mode->second.second,
               "submit_filter.on_error: expected 'closed' or 'open', found '" + value + "'");
        }
      }
    }
    if (auto it = top.find("compute_nodes"); it != top.end()) {
      readComputeNodes(it->second.second, policy);
    }
    if (auto it = top.find("site"); it != top.end()) readSite(it->second.second, policy);
    if (auto it = top.find("kubernetes"); it != top.end()) {
      readKubernetes(it->second.second, policy);
    }
  }

 private:
  void readComputeNodes(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "compute_nodes", {"missing_libraries"});
    if (auto it = entries.find("missing_libraries"); it != entries.end()) {
      const std::string field = "compute_nodes.missing_libraries";
      for (const auto& [glob, item] : stringList(it->second.second, field)) {
        // Matched against file names: a '/' could never match, so it is a mistake.
        if (glob.empty() || glob.find('/') != std::string::npos) {
          fail(item, field + ": '" + glob + "' must be a library file name pattern such as "
                     "'libopenblas.so.*', without '/'");
        }
        policy.compute_nodes.missing_libraries.push_back({glob, at(item)});
      }
    }
  }

  void readBackends(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "backends", {"allowed", "default"}, {"default"});
    policy.backends_where = at(node);
    if (auto it = entries.find("allowed"); it != entries.end()) {
      policy.allowed_backends.clear();
      const YAML::Node& list = it->second.second;
      if (!list.IsSequence()) fail(list, "backends.allowed: expected a list, found " + typeName(list));
      for (std::size_t i = 0; i < list.size(); ++i) {
        Backend b = backend(list[i], "backends.allowed[" + std::to_string(i) + "]");
        if (std::find(policy.allowed_backends.begin(), policy.allowed_backends.end(), b) !=
            policy.allowed_backends.end()) {
          fail(list[i], "backends.allowed: '" + std::string(toString(b)) + "' is listed twice");
        }
        policy.allowed_backends.push_back(b);
      }
      if (policy.allowed_backends.empty()) {
        fail(list, "backends.allowed: empty: no job could run", "list at least one backend");
      }
      policy.backends_where = at(it->second.first);
    }
    auto default_entry = entries.find("default");
    if (default_entry != entries.end()) {
      policy.default_backend = backend(default_entry->second.second, "backends.default");
    } else if (!options_.overlay) {
      policy.default_backend = policy.allowed_backends.front();
    }
    if (!options_.overlay &&
        std::find(policy.allowed_backends.begin(), policy.allowed_backends.end(),
                  policy.default_backend) == policy.allowed_backends.end()) {
      fail(default_entry != entries.end() ? default_entry->second.second : node,
           std::string("contradictory rules: backends.default '") +
               toString(policy.default_backend) + "' is not in backends.allowed");
    }
  }

  void readImages(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "images", {"allowed", "registries", "require_digest"});
    if (auto it = entries.find("registries"); it != entries.end()) {
      policy.registries.clear();
      for (const auto& [registry, item] : stringList(it->second.second, "images.registries")) {
        bool valid = !registry.empty() && std::all_of(registry.begin(), registry.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
        });
        if (!valid) fail(item, "images.registries: '" + registry + "' is not a registry host[:port]");
        policy.registries.push_back(registry);
      }
      policy.registries_where = at(it->second.first);
    }
    if (auto it = entries.find("allowed"); it != entries.end()) {
      policy.image_patterns.clear();
      policy.image_patterns_where = at(it->second.first);
      for (const auto& [glob, item] : stringList(it->second.second, "images.allowed")) {
        // The characters of image references plus the glob's own; nothing that could end a CEL
        // string in `policy export-k8s` or mean something to a regular expression.
        bool valid = !glob.empty() && std::all_of(glob.begin(), glob.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) ||
                 std::string_view("._-/:@*?").find(c) != std::string_view::npos;
        });
        if (!valid) fail(item, "images.allowed: '" + glob + "' is not an image pattern");
        // A pattern whose registry is spelled out but not allowed can never match: the admin
        // meant something else.
        std::string registry = glob.substr(0, glob.find('/'));
        bool literal_registry = glob.find('/') != std::string::npos &&
                                registry.find_first_of("*?") == std::string::npos &&
                                glob[0] != '/';
        if (literal_registry && !policy.registries.empty() &&
            std::find(policy.registries.begin(), policy.registries.end(), registry) ==
                policy.registries.end()) {
          fail(item, "contradictory rules: images.allowed pattern '" + glob +
                         "' names registry '" + registry + "', which images.registries does not "
                         "allow (line " + std::to_string(policy.registries_where.line) + ")");
        }
        policy.image_patterns.push_back({glob, at(item)});
      }
    }
    if (auto it = entries.find("require_digest"); it != entries.end()) {
      policy.require_digest = boolean(it->second.second, "images.require_digest");
      policy.require_digest_where = at(it->second.first);
    }
  }

  void readBinds(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "binds", {"allowed", "site"}, {"site"});
    if (auto it = entries.find("allowed"); it != entries.end()) {
      policy.bind_rules.clear();
      policy.restricts_binds = true;
      policy.bind_rules_where = at(it->second.first);
      const YAML::Node& list = it->second.second;
      if (!list.IsSequence()) fail(list, "binds.allowed: expected a list, found " + typeName(list));
      for (std::size_t i = 0; i < list.size(); ++i) {
        std::string field = "binds.allowed[" + std::to_string(i) + "]";
        BindRule rule;
        rule.where = at(list[i]);
        if (list[i].IsScalar()) {
          rule.path = bindPath(list[i], field);  // a bare path is read-only
        } else {
          auto bind = readMap(list[i], field, {"path", "access"});
          auto path = bind.find("path");
          if (path == bind.end()) fail(list[i], field + ": missing 'path'");
          rule.path = bindPath(path->second.second, field + ".path");
          if (auto access = bind.find("access"); access != bind.end()) {
            rule.read_write = readAccess(access->second.second, field + ".access");
          }
        }
        if (rule.read_write && rule.path[0] == '/' && detail::isForbiddenWritablePath(rule.path)) {
          fail(list[i], field + ": writable '" + rule.path + "' cannot be allowed by any policy: "
                            "it is or contains a system directory");
        }
        if (rule.path[0] == '/' && detail::isForbiddenBindPath(rule.path)) {
          fail(list[i], field + ": '" + rule.path + "' cannot be allowed by any policy: jobs "
                            "get their own /proc, /sys and /dev");
        }
        for (const auto& earlier : policy.bind_rules) {
          if (earlier.path == rule.path) {
            fail(list[i], std::string(earlier.read_write != rule.read_write ? "contradictory rules: "
                                                                            : "") +
                              field + ": '" + rule.path + "' is already listed at line " +
                              std::to_string(earlier.where.line));
          }
        }
        policy.bind_rules.push_back(std::move(rule));
      }
    }
    if (auto it = entries.find("site"); it != entries.end()) {
      const YAML::Node& list = it->second.second;
      if (!list.IsSequence()) fail(list, "binds.site: expected a list, found " + typeName(list));
      for (std::size_t i = 0; i < list.size(); ++i) {
        std::string field = "binds.site[" + std::to_string(i) + "]";
        auto bind = readMap(list[i], field, {"source", "destination", "access"});
        auto source = bind.find("source");
        if (source == bind.end()) fail(list[i], field + ": missing 'source'");
        SiteBind site_bind;
        site_bind.where = at(list[i]);
        site_bind.source = bindPath(source->second.second, field + ".source");
        site_bind.destination = site_bind.source;
        if (auto destination = bind.find("destination"); destination != bind.end()) {
          site_bind.destination = bindPath(destination->second.second, field + ".destination");
        }
        if (auto access = bind.find("access"); access != bind.end()) {
          site_bind.read_only = !readAccess(access->second.second, field + ".access");
        }
        if (site_bind.source[0] == '/' && detail::isForbiddenBindPath(site_bind.source)) {
          fail(list[i], field + ": '" + site_bind.source + "' cannot be bound by any policy");
        }
        if (!site_bind.read_only && site_bind.source[0] == '/' &&
            detail::isForbiddenWritablePath(site_bind.source)) {
          fail(list[i], field + ": writable '" + site_bind.source +
                            "' cannot be allowed by any policy: it is or contains a system "
                            "directory");
        }
        policy.site_binds.push_back(std::move(site_bind));
      }
    }
  }

  bool readAccess(const YAML::Node& node, const std::string& field) const {
    std::string access = scalar(node, field);
    if (access == "rw") return true;
    if (access == "ro") return false;
    fail(node, field + ": expected 'ro' or 'rw', found '" + access + "'");
  }

  void readResources(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "resources",
                           {"max_cpus", "max_memory", "max_walltime", "max_gpus", "match_allocation"});
    auto& ceilings = policy.resources;
    if (auto it = entries.find("max_cpus"); it != entries.end()) {
      ceilings.cpus = static_cast<int>(integer(it->second.second, "resources.max_cpus", 1, 1 << 20));
      ceilings.cpus_where = at(it->second.first);
    }
    if (auto it = entries.find("max_gpus"); it != entries.end()) {
      ceilings.gpus = static_cast<int>(integer(it->second.second, "resources.max_gpus", 0, 4096));
      ceilings.gpus_where = at(it->second.first);
    }
    if (auto it = entries.find("max_memory"); it != entries.end()) {
      std::string text = scalar(it->second.second, "resources.max_memory");
      auto bytes = detail::parseByteSize(text);
      if (!bytes || *bytes == 0) {
        fail(it->second.second, "resources.max_memory: expected a size such as 64G or 512MiB, "
                                "found '" + text + "'");
      }
      ceilings.memory_bytes = bytes;
      ceilings.memory_where = at(it->second.first);
    }
    if (auto it = entries.find("max_walltime"); it != entries.end()) {
      std::string text = scalar(it->second.second, "resources.max_walltime");
      auto seconds = detail::parseDuration(text);
      if (!seconds || *seconds == 0) {
        fail(it->second.second, "resources.max_walltime: expected seconds or HH:MM:SS, found '" +
                                    text + "'");
      }
      ceilings.walltime_s = seconds;
      ceilings.walltime_where = at(it->second.first);
    }
    if (auto it = entries.find("match_allocation"); it != entries.end()) {
      ceilings.match_allocation = boolean(it->second.second, "resources.match_allocation");
      ceilings.match_where = at(it->second.first);
    }
  }

  void readSeccomp(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "seccomp", {"profile"});
    policy.seccomp_where = at(node);
    auto it = entries.find("profile");
    if (it == entries.end()) return;
    const YAML::Node& value = it->second.second;
    std::string profile = scalar(value, "seccomp.profile");
    policy.seccomp_where = at(it->second.first);
    if (profile == "default") {
      policy.seccomp = defaultSeccompProfile();
      return;
    }
    if (profile == "unconfined" || profile == "none") {
      fail(value, "seccomp.profile '" + profile + "' cannot be allowed by any policy: jobs "
                  "always run under a seccomp profile", "use 'default' or a profile file");
    }
    if (profile[0] != '/') {
      fail(value, "seccomp.profile: expected 'default' or an absolute path to an OCI JSON profile");
    }
    std::string text;
    try {
      text = detail::readTrustedFile(profile, options_.trusted_owners, kMaxSeccompProfileBytes,
                                     "read seccomp profile");
      policy.seccomp = readOciSeccompJson(text, profile);
    } catch (Error& error) {
      error.addContext("loading seccomp.profile at " + at(value).toString());
      throw;
    }
    bool denies_something =
        policy.seccomp.default_action != SeccompAction::kAllow ||
        std::any_of(policy.seccomp.rules.begin(), policy.seccomp.rules.end(),
                    [](const SeccompRule& rule) { return rule.action != SeccompAction::kAllow; });
    if (!denies_something) {
      fail(value, "seccomp profile '" + profile + "' allows every syscall: an unconfined profile "
                  "cannot be allowed by any policy");
    }
  }

  void readCapabilities(const YAML::Node& node, Policy& policy) {
    policy.capabilities.clear();
    policy.capabilities_where = at(node);
    for (const auto& [raw, item] : stringList(node, "capabilities")) {
      std::string name;
      for (char c : raw) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (name.rfind("CAP_", 0) != 0) name = "CAP_" + name;
      const auto& grantable = grantableCapabilities();
      if (std::find(grantable.begin(), grantable.end(), name) == grantable.end()) {
        static const std::set<std::string> kNeverGranted = {
            "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_SYS_BOOT",
            "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_BPF",
            "CAP_PERFMON", "CAP_SYSLOG", "CAP_SYS_TIME", "CAP_DAC_READ_SEARCH", "CAP_SYS_CHROOT",
            "CAP_MKNOD", "CAP_AUDIT_CONTROL", "CAP_LINUX_IMMUTABLE", "CAP_SYS_RESOURCE",
            "CAP_SYS_NICE", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_PACCT", "CAP_SYS_TTY_CONFIG",
            "CAP_LEASE", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
            "CAP_AUDIT_WRITE", "CAP_CHECKPOINT_RESTORE", "CAP_SETPCAP"};
        if (kNeverGranted.count(name) != 0) {
          fail(item, "capabilities: " + name + " cannot be allowed by any policy",
               "grantable: " + joinWords(grantable));
        }
        auto suggestion = detail::closestMatch(name, grantable);
        fail(item, "capabilities: unknown capability '" + raw + "'",
             suggestion ? "did you mean '" + *suggestion + "'?"
                        : "grantable: " + joinWords(grantable));
      }
      if (std::find(policy.capabilities.begin(), policy.capabilities.end(), name) !=
          policy.capabilities.end()) {
        fail(item, "capabilities: " + name + " is listed twice");
      }
      policy.capabilities.push_back(name);
    }
  }

  void readSite(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "site", {"qsub_path", "kbatch_path", "image_cache", "registry",
                                          "insecure_registries"});
    auto& site = policy.site;
    if (auto it = entries.find("qsub_path"); it != entries.end()) {
      site.qsub_path = absolutePath(it->second.second, "site.qsub_path");
    }
    if (auto it = entries.find("kbatch_path"); it != entries.end()) {
      site.kbatch_path = absolutePath(it->second.second, "site.kbatch_path");
    }
    if (auto it = entries.find("image_cache"); it != entries.end()) {
      site.image_cache = absolutePath(it->second.second, "site.image_cache");
    }
    if (auto it = entries.find("registry"); it != entries.end()) {
      std::string registry = scalar(it->second.second, "site.registry");
      if (registry.empty() || registry.find_first_of(" \t") != std::string::npos) {
        fail(it->second.second, "site.registry: '" + registry + "' is not a registry host[:port]");
      }
      site.registry = registry;
    }
    if (auto it = entries.find("insecure_registries"); it != entries.end()) {
      for (const auto& [registry, item] :
           stringList(it->second.second, "site.insecure_registries")) {
        site.insecure_registries.push_back(registry);
      }
    }
    if (site.registry && !policy.registries.empty() &&
        std::find(policy.registries.begin(), policy.registries.end(), *site.registry) ==
            policy.registries.end()) {
      fail(entries.at("registry").second, "contradictory rules: site.registry '" +
                                              *site.registry + "' is not in images.registries");
    }
  }

  void readKubernetes(const YAML::Node& node, Policy& policy) {
    auto entries = readMap(node, "kubernetes", {"namespace", "service_account", "node_names",
                                                "volumes", "seccomp_profile"});
    auto& k8s = policy.kubernetes;
    auto namespaceName = [&](const std::string& field) {
      return [this, field](const std::string& name, const YAML::Node& where) {
        if (!isDnsLabel(name, 63)) {
          fail(where, field + ": '" + name + "' is not a valid namespace name (RFC 1123 label)");
        }
      };
    };
    auto anyKey = [](const std::string&, const YAML::Node&) {};
    if (auto it = entries.find("namespace"); it != entries.end()) {
      const YAML::Node& value = it->second.second;
      if (value.IsScalar()) {
        k8s.default_namespace = value.Scalar();
        namespaceName("kubernetes.namespace")(k8s.default_namespace, value);
      } else {
        auto ns = readMap(value, "kubernetes.namespace", {"default", "users", "groups"});
        if (auto d = ns.find("default"); d != ns.end()) {
          k8s.default_namespace = scalar(d->second.second, "kubernetes.namespace.default");
          namespaceName("kubernetes.namespace.default")(k8s.default_namespace, d->second.second);
        }
        if (auto u = ns.find("users"); u != ns.end()) {
          k8s.user_namespaces = stringMap(u->second.second, "kubernetes.namespace.users", anyKey,
                                          namespaceName("kubernetes.namespace.users"));
        }
        if (auto g = ns.find("groups"); g != ns.end()) {
          k8s.group_namespaces = stringMap(g->second.second, "kubernetes.namespace.groups", anyKey,
                                           namespaceName("kubernetes.namespace.groups"));
        }
      }
    }
    if (auto it = entries.find("service_account"); it != entries.end()) {
      k8s.service_account = scalar(it->second.second, "kubernetes.service_account");
      if (!isDnsLabel(k8s.service_account, 253)) {
        fail(it->second.second, "kubernetes.service_account: '" + k8s.service_account +
                                    "' is not a valid name (RFC 1123 subdomain)");
      }
    }
    if (auto it = entries.find("node_names"); it != entries.end()) {
      k8s.node_names = stringMap(
          it->second.second, "kubernetes.node_names", anyKey,
          [this](const std::string& name, const YAML::Node& where) {
            if (!isDnsLabel(name, 253)) {
              fail(where, "kubernetes.node_names: '" + name + "' is not a valid node name");
            }
          });
    }
    if (auto it = entries.find("volumes"); it != entries.end()) {
      k8s.volumes = stringMap(
          it->second.second, "kubernetes.volumes",
          [this](const std::string& prefix, const YAML::Node& where) {
            if (prefix.empty() || prefix[0] != '/') {
              fail(where, "kubernetes.volumes: '" + prefix + "' must be an absolute host path");
            }
          },
          [this](const std::string& claim, const YAML::Node& where) {
            if (!isDnsLabel(claim, 253)) {
              fail(where, "kubernetes.volumes: '" + claim + "' is not a valid claim name");
            }
          });
    }
    if (auto it = entries.find("seccomp_profile"); it != entries.end()) {
      std::string profile = scalar(it->second.second, "kubernetes.seccomp_profile");
      bool escapes = profile.empty() || profile[0] == '/' ||
                     !std::all_of(profile.begin(), profile.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) ||
                              std::string_view("._-/").find(c) != std::string_view::npos;
                     });
      for (const auto& part : fs::path(profile)) escapes = escapes || part == "..";
      if (escapes) {
        fail(it->second.second, "kubernetes.seccomp_profile: '" + profile +
                                    "' must be a path relative to the kubelet's seccomp directory");
      }
      k8s.seccomp_localhost_profile = profile;
    }
  }

  std::string file_;
  const LoadOptions& options_;
};

// The starting point of an overlay: every rule allows everything, at line 0 so that evaluation
// can leave these non-rules out of its report.
Policy unrestrictedOverlayBase(const std::string& name) {
  Policy policy;
  SourceLocation nowhere{name, 0, 0};
  policy.allowed_backends = {Backend::kLocal, Backend::kK8s};
  policy.backends_where = nowhere;
  policy.image_patterns = {{"**", nowhere}};
  policy.image_patterns_where = nowhere;
  policy.restricts_binds = false;
  policy.capabilities = grantableCapabilities();
  policy.capabilities_where = nowhere;
  policy.fakeroot = true;
  policy.fakeroot_where = nowhere;
  return policy;
}

}  // namespace

Policy parsePolicyText(std::string_view text, const std::string& name, const LoadOptions& options) {
  if (text.size() > options.max_bytes) {
    throw Error(kLoadAction, name, "policy is " + std::to_string(text.size()) +
                                       " bytes, more than the limit of " +
                                       std::to_string(options.max_bytes));
  }
  if (auto bad = detail::findInvalidUtf8(text)) {
    throw Error(kLoadAction,
                name + ":" + std::to_string(bad->line) + ":" + std::to_string(bad->column),
                "invalid UTF-8 (a policy must be UTF-8 text)");
  }
  YAML::Node root;
  auto refuse = [&name](const detail::YamlLimitViolation& violation) {
    return Error(kLoadAction,
                 name + ":" + std::to_string(violation.where.line) + ":" +
                     std::to_string(violation.where.column),
                 violation.cause);
  };
  try {
    // One parse: yaml-cpp costs about a microsecond per policy line, and this runs at every job's
    // start (bench/policy_bench.sh). YAML::Load shares an anchor's node among its aliases, so
    // loading an alias bomb is cheap; the walk below counts it expanded before anything reads it.
    root = YAML::Load(std::string(text));
    if (root.IsNull()) {
      // yaml-cpp 0.7 reads some malformed text (", x]" at the top) as an endless series of empty
      // documents, and YAML::Load returns an empty node for it, i.e. the built-in defaults. Only
      // an empty policy loads as null, so the event pass that sees the documents is cheap here.
      if (auto violation =
              detail::checkYamlLimits(text, options.max_yaml_nodes, options.max_aliases)) {
        throw refuse(*violation);
      }
    } else {
      if (auto second = detail::findSecondDocument(text)) {
        throw refuse({*second, "more than one YAML document; a policy is one document"});
      }
      if (auto violation =
              detail::checkLoadedYamlLimits(root, options.max_yaml_nodes, options.max_aliases)) {
        throw refuse(*violation);
      }
    }
  } catch (const YAML::Exception& error) {
    throw Error(kLoadAction,
                name + ":" + std::to_string(error.mark.line + 1) + ":" +
                    std::to_string(error.mark.column + 1),
                "not valid YAML: " + error.msg);
  }
  // An overlay starts from "restricts nothing", so that a section it leaves out adds no rule.
  Policy policy = options.overlay ? unrestrictedOverlayBase(name) : builtinDefaultPolicy();
  policy.sources = {name};
  PolicyReader(name, options).read(root, policy);
  return policy;
}

Policy loadPolicyFile(const fs::path& path, const LoadOptions& options) {
  std::string text =
      detail::readTrustedFile(path, options.trusted_owners, options.max_bytes, kLoadAction);
  return parsePolicyText(text, path.string(), options);
}

Policy loadPolicyFile(const fs::path& path) { return loadPolicyFile(path, LoadOptions{}); }

Policy loadSitePolicyFile(const fs::path& policy_path) {
  const std::string text = readSitePolicyText(policy_path);
  std::string why_not;
  if (auto compiled = currentCompiledPolicy(policy_path, text, &why_not)) return std::move(*compiled);
  log::debug("policy {}: parsing the YAML; the compiled policy is not used: {}", policy_path.string(),
             why_not);
  return parsePolicyText(text, policy_path.string(), LoadOptions{});
}

void compileSitePolicy(const fs::path& policy_path, const fs::path& output,
                       const SeccompPrecompiler& precompile) {
  const LoadOptions options;
  const std::string text = readSitePolicyText(policy_path);
  Policy policy = parsePolicyText(text, policy_path.string(), options);
  if (precompile) policy.seccomp_program = precompile(policy.seccomp);
  std::vector<std::uint8_t> compiled = compilePolicy(policy, text, options.trusted_owners);
  // Replaced atomically, so a job never reads half a file.
  try {
    writeFileAtomic(output, std::string_view(reinterpret_cast<const char*>(compiled.data()),
                                             compiled.size()),
                    0644);
  } catch (Error& failure) {
    failure.addContext("writing the compiled policy");
    throw;
  }
}

Policy loadSitePolicy() {
  Policy policy;
  std::error_code error;
  if (fs::exists(fs::symlink_status(KBATCH_POLICY_PATH, error))) {
    policy = loadSitePolicyFile(KBATCH_POLICY_PATH);
  } else {
    policy = builtinDefaultPolicy();
  }
  // The overlay is for tests and trials: it may be the caller's own file, because all it can do is
  // add rules that must also pass (and it may not touch what configures or grants).
  const char* overlay = std::getenv(kOverlayEnvironmentVariable);
  if (overlay != nullptr && *overlay != '\0') {
    LoadOptions options;
    options.overlay = true;
    options.trusted_owners = {0, getuid()};
    Policy extra;
    try {
      extra = loadPolicyFile(overlay, options);
    } catch (Error& failure) {
      failure.addContext(std::string("reading the overlay named by $") +
                         kOverlayEnvironmentVariable);
      throw;
    }
    policy.sources.push_back(std::string(overlay) + " (overlay)");
    policy.also_required.push_back(std::move(extra));
  }
  return policy;
}

}  // namespace kbatch::policy
