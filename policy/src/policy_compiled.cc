// The compiled site policy: the loaded Policy in CBOR, beside the YAML file, so that a job's start
// does not pay yaml-cpp's parse (about 1 ms for 200 rules, bench/policy_bench.sh) every time.
// ld.so.cache is the model: the source stays the truth, `kbatch policy compile` (root) writes the
// cache, and the loader uses it only when it is current; otherwise it parses the YAML as before.
//
// "Current" is decided by content, not by timestamps: the cache holds the exact text of the policy
// file and of the seccomp profile it names, and the loader compares them with what it has just read
// through the same trusted-file checks. Stale, foreign, corrupt or untrusted caches are never
// errors, only slower: the YAML is always there to parse.

#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/policy/policy.h"
#include "policy_compiled.h"
#include "trusted_file.h"

namespace kbatch {
// Backend lives in the rewrite module's namespace; its serializer must sit beside it.
NLOHMANN_JSON_SERIALIZE_ENUM(Backend, {{Backend::kLocal, "local"}, {Backend::kK8s, "k8s"}})
}  // namespace kbatch

namespace kbatch::policy {

// Every field of these structs is written below. The sizes make the build fail when a field is
// added, so that the serializer (and kFormat) cannot be forgotten.
static_assert(sizeof(SourceLocation) == 40 && sizeof(BindRule) == 80 && sizeof(SiteBind) == 112 &&
                  sizeof(ImagePattern) == 72 && sizeof(LibraryPattern) == 72,
              "a policy struct changed: update policy_compiled.cc and bump kFormat");
static_assert(sizeof(ResourceCeilings) == 256 && sizeof(SiteSettings) == 168 &&
                  sizeof(KubernetesSettings) == 288 && sizeof(ComputeNodes) == 24,
              "a policy struct changed: update policy_compiled.cc and bump kFormat");
static_assert(sizeof(SeccompArg) == 56 && sizeof(SeccompRule) == 88 && sizeof(SeccompProfile) == 88,
              "a seccomp struct changed: update policy_compiled.cc and bump kFormat");
static_assert(sizeof(Policy) == 1440 && sizeof(PrecompiledSeccomp) == 56,
              "Policy changed: update policy_compiled.cc and bump kFormat");

NLOHMANN_JSON_SERIALIZE_ENUM(SeccompAction, {{SeccompAction::kAllow, "allow"},
                                             {SeccompAction::kErrno, "errno"},
                                             {SeccompAction::kKill, "kill"},
                                             {SeccompAction::kKillProcess, "kill_process"},
                                             {SeccompAction::kTrap, "trap"},
                                             {SeccompAction::kLog, "log"}})
NLOHMANN_JSON_SERIALIZE_ENUM(SubmitFilterMode, {{SubmitFilterMode::kFailClosed, "fail-closed"},
                                                {SubmitFilterMode::kFailOpen, "fail-open"}})

// The many small rules are written as arrays, not objects: a 200-rule policy then decodes without
// a map and its keys per rule, which is most of what loading costs (bench/policy_bench.sh).
// Rules written in the policy file name it as null: the compiled policy then serves the file under
// the name it is loaded by (a policy compiled in a staging directory and installed in /etc), and
// stays small. Set by a PolicyNameScope around (de)serialisation.
thread_local const std::string* t_policy_name = nullptr;

class PolicyNameScope {
 public:
  explicit PolicyNameScope(const std::string& name) { t_policy_name = &name; }
  ~PolicyNameScope() { t_policy_name = nullptr; }
  PolicyNameScope(const PolicyNameScope&) = delete;
  PolicyNameScope& operator=(const PolicyNameScope&) = delete;
};

void to_json(nlohmann::json& out, const SourceLocation& where) {
  nlohmann::json file = where.file;
  if (t_policy_name != nullptr && where.file == *t_policy_name) file = nullptr;
  out = nlohmann::json::array({std::move(file), where.line, where.column});
}
void from_json(const nlohmann::json& in, SourceLocation& where) {
  if (in.at(0).is_null() && t_policy_name != nullptr) {
    where.file = *t_policy_name;
  } else {
    in.at(0).get_to(where.file);
  }
  in.at(1).get_to(where.line);
  in.at(2).get_to(where.column);
}
void to_json(nlohmann::json& out, const BindRule& rule) {
  out = nlohmann::json::array({rule.path, rule.read_write, rule.where});
}
void from_json(const nlohmann::json& in, BindRule& rule) {
  in.at(0).get_to(rule.path);
  in.at(1).get_to(rule.read_write);
  in.at(2).get_to(rule.where);
}
void to_json(nlohmann::json& out, const SiteBind& bind) {
  out = nlohmann::json::array({bind.source, bind.destination, bind.read_only, bind.where});
}
void from_json(const nlohmann::json& in, SiteBind& bind) {
  in.at(0).get_to(bind.source);
  in.at(1).get_to(bind.destination);
  in.at(2).get_to(bind.read_only);
  in.at(3).get_to(bind.where);
}
void to_json(nlohmann::json& out, const ImagePattern& pattern) {
  out = nlohmann::json::array({pattern.glob, pattern.where});
}
void from_json(const nlohmann::json& in, ImagePattern& pattern) {
  in.at(0).get_to(pattern.glob);
  in.at(1).get_to(pattern.where);
}
void to_json(nlohmann::json& out, const LibraryPattern& pattern) {
  out = nlohmann::json::array({pattern.glob, pattern.where});
}
void from_json(const nlohmann::json& in, LibraryPattern& pattern) {
  in.at(0).get_to(pattern.glob);
  in.at(1).get_to(pattern.where);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ComputeNodes, missing_libraries)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SeccompArg, index, value, value_two, op)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SeccompRule, names, action, errno_ret, args, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SeccompProfile, default_action, default_errno_ret, architectures,
                                   rules, origin)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(KubernetesSettings, default_namespace, user_namespaces,
                                   group_namespaces, service_account, node_names, volumes,
                                   seccomp_localhost_profile)

namespace {

using nlohmann::json;

// Bumped whenever what is written changes meaning; a cache of another format is not used.
constexpr int kFormat = 4;

template <typename T>
void putOptional(json& out, const char* key, const std::optional<T>& value) {
  out[key] = value ? json(*value) : json(nullptr);
}

template <typename T>
void getOptional(const json& in, const char* key, std::optional<T>& value) {
  const json& item = in.at(key);
  if (item.is_null()) {
    value.reset();
  } else {
    value = item.get<T>();
  }
}

json toJson(const ResourceCeilings& r) {
  json out;
  putOptional(out, "cpus", r.cpus);
  putOptional(out, "memory_bytes", r.memory_bytes);
  putOptional(out, "walltime_s", r.walltime_s);
  putOptional(out, "gpus", r.gpus);
  out["match_allocation"] = r.match_allocation;
  out["where"] = {r.cpus_where, r.memory_where, r.walltime_where, r.gpus_where, r.match_where};
  return out;
}

ResourceCeilings resourcesFromJson(const json& in) {
  ResourceCeilings r;
  getOptional(in, "cpus", r.cpus);
  getOptional(in, "memory_bytes", r.memory_bytes);
  getOptional(in, "walltime_s", r.walltime_s);
  getOptional(in, "gpus", r.gpus);
  in.at("match_allocation").get_to(r.match_allocation);
  const json& where = in.at("where");
  where.at(0).get_to(r.cpus_where);
  where.at(1).get_to(r.memory_where);
  where.at(2).get_to(r.walltime_where);
  where.at(3).get_to(r.gpus_where);
  where.at(4).get_to(r.match_where);
  return r;
}

json toJson(const SiteSettings& s) {
  json out = {{"qsub_path", s.qsub_path},
              {"kbatch_path", s.kbatch_path},
              {"insecure_registries", s.insecure_registries}};
  putOptional(out, "image_cache", s.image_cache);
  putOptional(out, "registry", s.registry);
  return out;
}

SiteSettings siteFromJson(const json& in) {
  SiteSettings s;
  in.at("qsub_path").get_to(s.qsub_path);
  in.at("kbatch_path").get_to(s.kbatch_path);
  in.at("insecure_registries").get_to(s.insecure_registries);
  getOptional(in, "image_cache", s.image_cache);
  getOptional(in, "registry", s.registry);
  return s;
}

json toJson(const Policy& p) {
  return {{"sources", p.sources},
          {"allowed_backends", p.allowed_backends},
          {"default_backend", p.default_backend},
          {"backends_where", p.backends_where},
          {"image_patterns", p.image_patterns},
          {"image_patterns_where", p.image_patterns_where},
          {"registries", p.registries},
          {"registries_where", p.registries_where},
          {"require_digest", p.require_digest},
          {"require_digest_where", p.require_digest_where},
          {"bind_rules", p.bind_rules},
          {"bind_rules_where", p.bind_rules_where},
          {"restricts_binds", p.restricts_binds},
          {"site_binds", p.site_binds},
          {"resources", toJson(p.resources)},
          {"seccomp", p.seccomp},
          {"seccomp_where", p.seccomp_where},
          {"seccomp_program",
           p.seccomp_program ? json::array({p.seccomp_program->build,
                                            json::binary(p.seccomp_program->program)})
                             : json(nullptr)},
          {"capabilities", p.capabilities},
          {"capabilities_where", p.capabilities_where},
          {"fakeroot", p.fakeroot},
          {"fakeroot_where", p.fakeroot_where},
          {"submit_filter_mode", p.submit_filter_mode},
          {"submit_filter_detect", p.submit_filter_detect},
          {"compute_nodes", p.compute_nodes},
          {"site", toJson(p.site)},
          {"kubernetes", p.kubernetes}};
}

Policy policyFromJson(const json& in) {
  Policy p;
  in.at("sources").get_to(p.sources);
  in.at("allowed_backends").get_to(p.allowed_backends);
  in.at("default_backend").get_to(p.default_backend);
  in.at("backends_where").get_to(p.backends_where);
  in.at("image_patterns").get_to(p.image_patterns);
  in.at("image_patterns_where").get_to(p.image_patterns_where);
  in.at("registries").get_to(p.registries);
  in.at("registries_where").get_to(p.registries_where);
  in.at("require_digest").get_to(p.require_digest);
  in.at("require_digest_where").get_to(p.require_digest_where);
  in.at("bind_rules").get_to(p.bind_rules);
  in.at("bind_rules_where").get_to(p.bind_rules_where);
  in.at("restricts_binds").get_to(p.restricts_binds);
  in.at("site_binds").get_to(p.site_binds);
  p.resources = resourcesFromJson(in.at("resources"));
  in.at("seccomp").get_to(p.seccomp);
  in.at("seccomp_where").get_to(p.seccomp_where);
  if (const json& program = in.at("seccomp_program"); !program.is_null()) {
    p.seccomp_program = PrecompiledSeccomp{program.at(0).get<std::string>(),
                                           program.at(1).get_binary()};
  }
  in.at("capabilities").get_to(p.capabilities);
  in.at("capabilities_where").get_to(p.capabilities_where);
  in.at("fakeroot").get_to(p.fakeroot);
  in.at("fakeroot_where").get_to(p.fakeroot_where);
  in.at("submit_filter_mode").get_to(p.submit_filter_mode);
  in.at("submit_filter_detect").get_to(p.submit_filter_detect);
  in.at("compute_nodes").get_to(p.compute_nodes);
  p.site = siteFromJson(in.at("site"));
  in.at("kubernetes").get_to(p.kubernetes);
  return p;
}

constexpr const char* kMagic = "kbatch compiled policy\n";

// What every compiled policy of this kbatch starts with: the magic, the format and the version.
std::string headerPrefix() {
  return std::string(kMagic) + std::to_string(kFormat) + "\n" + KBATCH_VERSION + "\n";
}

// A length-prefixed field of the header: decimal length, newline, the bytes.
void appendField(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += '\n';
  out.append(field);
}

bool takeField(std::string_view& in, std::string_view& field) {
  const auto newline = in.find('\n');
  if (newline == std::string_view::npos || newline == 0 || newline > 20) return false;
  std::uint64_t length = 0;
  for (char c : in.substr(0, newline)) {
    if (c < '0' || c > '9') return false;
    length = length * 10 + static_cast<std::uint64_t>(c - '0');
  }
  in.remove_prefix(newline + 1);
  if (length > in.size()) return false;
  field = in.substr(0, length);
  in.remove_prefix(length);
  return true;
}

// The seccomp profile file a policy read, whose text the cache must also match; empty for the
// built-in profile.
std::string seccompProfileFile(const Policy& policy) {
  const std::string& origin = policy.seccomp.origin;
  return !origin.empty() && origin.front() == '/' ? origin : std::string();
}

}  // namespace

std::vector<std::uint8_t> compilePolicy(const Policy& policy, const std::string& policy_text,
                                        const std::vector<uid_t>& owners) {
  if (!policy.also_required.empty()) {
    throw Error("compile policy", policy.sources.empty() ? "" : policy.sources.front(),
                "a policy with overlays cannot be compiled");
  }
  const std::string profile = seccompProfileFile(policy);
  std::string profile_text;
  if (!profile.empty()) {
    profile_text = detail::readTrustedFile(profile, owners, kMaxSeccompProfileBytes,
                                           "read seccomp profile");
  }
  const std::string name = policy.sources.empty() ? std::string() : policy.sources.front();
  json serialised;
  {
    PolicyNameScope scope(name);
    serialised = toJson(policy);
  }
  // The texts come first, outside the CBOR: a stale file is recognised without decoding the rules.
  std::string header = headerPrefix();
  appendField(header, policy_text);
  appendField(header, profile);
  appendField(header, profile_text);
  std::vector<std::uint8_t> out(header.begin(), header.end());
  json::to_cbor(serialised, out);
  return out;
}

std::optional<Policy> loadCompiledPolicy(const std::string& compiled, const std::string& policy_text,
                                         const std::string& name, const std::vector<uid_t>& owners,
                                         std::string* why_not) {
  auto refuse = [why_not](const std::string& reason) -> std::optional<Policy> {
    if (why_not != nullptr) *why_not = reason;
    return std::nullopt;
  };
  const std::string expected_header = headerPrefix();
  if (compiled.compare(0, std::strlen(kMagic), kMagic) != 0) return refuse("not a compiled policy");
  if (compiled.compare(0, expected_header.size(), expected_header) != 0) {
    return refuse("written by another kbatch version");
  }
  std::string_view rest(compiled);
  rest.remove_prefix(expected_header.size());
  std::string_view stored_text, profile, stored_profile_text;
  if (!takeField(rest, stored_text) || !takeField(rest, profile) ||
      !takeField(rest, stored_profile_text)) {
    return refuse("unreadable (truncated)");
  }
  if (stored_text != policy_text) return refuse("the policy file changed since it was compiled");
  if (!profile.empty()) {
    // Read through the same checks as the YAML loader: an untrusted profile fails the same way.
    std::string text = detail::readTrustedFile(std::string(profile), owners,
                                               kMaxSeccompProfileBytes, "read seccomp profile");
    if (stored_profile_text != text) {
      return refuse("the seccomp profile " + std::string(profile) +
                    " changed since the policy was compiled");
    }
  }
  try {
    json document = json::from_cbor(rest.begin(), rest.end());
    Policy policy;
    {
      PolicyNameScope scope(name);
      policy = policyFromJson(document);
    }
    if (seccompProfileFile(policy) != profile) return refuse("unreadable (inconsistent)");
    policy.sources = {name};
    return policy;
  } catch (const json::exception& error) {
    return refuse(std::string("unreadable (") + error.what() + ")");
  }
}

}  // namespace kbatch::policy
