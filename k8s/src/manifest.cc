// The Pod manifest for a JobSpec.

#include "kbatch/k8s/manifest.h"

#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>

#include "kbatch/common/error.h"

namespace kbatch::k8s {
namespace {

constexpr const char* kAction = "build the Pod manifest";
constexpr std::size_t kMaxLabelLength = 63;

std::string shortHash(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

/// Lower-case alphanumerics with single dashes between runs, no dash at either end.
std::string dnsWords(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c)) {
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

/// Cuts `text` to `limit` characters, replacing the tail by a hash of `original` when it is cut,
/// so that two ids sharing a long prefix keep distinct names.
std::string fitWithHash(std::string text, const std::string& original, std::size_t limit) {
  if (text.size() <= limit) return text;
  const std::string hash = shortHash(original);
  text.resize(limit - hash.size() - 1);
  while (!text.empty() && (text.back() == '-' || text.back() == '.')) text.pop_back();
  return text + "-" + hash;
}

/// Quantities are written as plain integers: bytes for memory, cores for cpu.
std::string quantity(std::uint64_t value) { return std::to_string(value); }

struct Mount {
  std::string claim;
  std::string mount_path;
  std::string sub_path;
  bool read_only = false;
};

/// The claim whose prefix is the longest one containing `normal` (an absolute, lexically normal
/// path), with that prefix normalised.
struct ClaimMatch {
  std::string prefix;
  const std::string* claim = nullptr;
};
std::optional<ClaimMatch> claimForPath(const std::string& normal, const K8sSettings& settings) {
  namespace fs = std::filesystem;
  std::optional<ClaimMatch> best;
  std::size_t best_raw_size = 0;
  for (const auto& [prefix_raw, claim] : settings.volumes) {
    std::string prefix = fs::path(prefix_raw).lexically_normal().generic_string();
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    const bool inside = normal == prefix ||
                        (normal.size() > prefix.size() && normal.compare(0, prefix.size(), prefix) == 0 &&
                         (prefix == "/" || normal[prefix.size()] == '/'));
    if (inside && (!best || prefix_raw.size() > best_raw_size)) {
      best = ClaimMatch{prefix, &claim};
      best_raw_size = prefix_raw.size();
    }
  }
  return best;
}

std::string normalHostPath(const std::string& host_path) {
  return std::filesystem::path(host_path).lexically_normal().generic_string();
}

/// Maps a host path to the claim whose prefix is the longest one containing it.
Mount mountForHostPath(const std::string& host_path, const std::string& mount_path,
                       bool read_only, const K8sSettings& settings, const std::string& field) {
  const std::string normal = normalHostPath(host_path);
  if (normal.empty() || normal[0] != '/') {
    throw Error(kAction, host_path, field + ": a host path must be absolute");
  }
  const auto match = claimForPath(normal, settings);
  if (!match) {
    throw Error(kAction, host_path,
                field + ": no PersistentVolumeClaim is mapped to a prefix of this host path, and "
                        "Pod Security \"restricted\" forbids hostPath volumes",
                "the site policy's kubernetes.volumes maps host path prefixes to claims");
  }
  std::string sub = normal.size() > match->prefix.size() ? normal.substr(match->prefix.size()) : "";
  while (!sub.empty() && sub.front() == '/') sub.erase(sub.begin());
  return Mount{*match->claim, mount_path, sub, read_only};
}

bool looksNonString(const std::string& text) {
  if (text.empty()) return true;
  static const std::regex kNumber(R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))");
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  for (const char* word : kWords) {
    if (lower == word) return true;
  }
  return std::regex_match(text, kNumber) || text.front() == ' ' || text.back() == ' ';
}

void emit(YAML::Emitter& out, const nlohmann::ordered_json& value) {
  if (value.is_object()) {
    if (value.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (const auto& [key, item] : value.items()) {
      out << YAML::Key << key << YAML::Value;
      emit(out, item);
    }
    out << YAML::EndMap;
  } else if (value.is_array()) {
    if (value.empty()) {
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
      return;
    }
    out << YAML::BeginSeq;
    for (const auto& item : value) emit(out, item);
    out << YAML::EndSeq;
  } else if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (looksNonString(text)) out << YAML::DoubleQuoted;
    out << text;
  } else if (value.is_boolean()) {
    out << (value.get<bool>() ? "true" : "false");
  } else if (value.is_number_unsigned()) {
    out << value.get<std::uint64_t>();
  } else if (value.is_number_integer()) {
    out << value.get<std::int64_t>();
  } else if (value.is_number_float()) {
    out << value.get<double>();
  } else {
    out << YAML::Null;
  }
}

}  // namespace

bool claimCarriesHostPath(const K8sSettings& settings, const std::string& host_path) {
  const std::string normal = normalHostPath(host_path);
  return !normal.empty() && normal[0] == '/' && claimForPath(normal, settings).has_value();
}

std::string podNameForJob(const std::string& job_id, int host_index, int host_count) {
  std::string words = dnsWords(job_id);
  if (words.empty()) {
    throw Error(kAction, job_id, "the batch job id has no letter or digit to name a Pod after");
  }
  std::string suffix = host_count > 1 ? "-h" + std::to_string(host_index) : "";
  std::string name = fitWithHash("kbatch-" + words, job_id, kMaxLabelLength - suffix.size());
  return name + suffix;
}

std::string labelValueForJobId(const std::string& job_id) {
  std::string out;
  for (unsigned char c : job_id) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
  }
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  while (!out.empty() && !alnum(out.back())) out.pop_back();
  while (!out.empty() && !alnum(out.front())) out.erase(out.begin());
  if (out.empty()) {
    throw Error(kAction, job_id, "the batch job id has no letter or digit to label a Pod with");
  }
  out = fitWithHash(out, job_id, kMaxLabelLength);
  return out;
}

nlohmann::ordered_json buildPodManifest(const JobSpec& job, const PodPlacement& placement,
                                        const PodIdentity& identity,
                                        const K8sSettings& settings,
                                        const std::string& namespace_name) {
  using json = nlohmann::ordered_json;
  if (!job.job_id || job.job_id->empty()) {
    throw Error(kAction, "JobSpec", "job_id: the Pod is named after the batch job id, and there is none");
  }
  if (identity.uid == 0) {
    throw Error(kAction, identity.user.empty() ? "root" : identity.user,
                "a job Pod never runs as root (Pod Security \"restricted\": runAsNonRoot)");
  }
  if (!job.image || job.image->empty()) {
    throw Error(kAction, *job.job_id, "image: the Kubernetes backend needs an image reference",
                "give --image (or #KBATCH --image)");
  }
  if (job.command.empty()) {
    throw Error(kAction, *job.job_id, "command: there is nothing to run in the Pod");
  }
  if (placement.node_name.empty()) {
    throw Error(kAction, *job.job_id, "nodeName: the batch host's Kubernetes node is not known");
  }
  const std::string& job_id = *job.job_id;

  json labels = {{kManagedByLabel, kManagedByValue}, {kJobIdLabel, labelValueForJobId(job_id)}};
  json annotations = {{kJobIdAnnotation, job_id}};
  if (!identity.user.empty()) annotations[kUserAnnotation] = identity.user;
  if (job.name) annotations[kJobNameAnnotation] = *job.name;
  if (job.array_index) annotations[kArrayIndexAnnotation] = *job.array_index;
  if (!placement.batch_host.empty()) annotations[kBatchHostAnnotation] = placement.batch_host;

  json env = json::array();
  for (const auto& [key, value] : job.env) {
    if (key.empty() || key.find('=') != std::string::npos) {
      throw Error(kAction, key, "env: '" + key + "' is not a valid variable name");
    }
    env.push_back({{"name", key}, {"value", value}});
  }

  // Resources: ppn cores, the job's memory divided among its hosts, GPUs as nvidia.com/gpu.
  json limits = json::object();
  const Resources& resources = job.resources;
  std::optional<int> cpus = resources.ppn;
  if (!cpus && resources.procs) cpus = resources.procs;
  if (cpus && resources.cpus_per_task) cpus = *cpus * *resources.cpus_per_task;
  if (cpus) {
    if (*cpus <= 0) throw Error(kAction, job_id, "resources.ppn: must be positive");
    limits["cpu"] = std::to_string(*cpus);
  }
  std::optional<std::uint64_t> memory;
  const auto hosts = static_cast<std::uint64_t>(std::max(placement.host_count, 1));
  if (resources.mem_bytes) {
    memory = (*resources.mem_bytes + hosts - 1) / hosts;
  } else if (resources.pmem_bytes) {
    memory = *resources.pmem_bytes * static_cast<std::uint64_t>(cpus.value_or(1));
  }
  if (memory) limits["memory"] = quantity(*memory);
  json requests = limits;  // requests == limits: the batch system already reserved the node
  if (resources.gpus && *resources.gpus > 0) {
    limits["nvidia.com/gpu"] = std::to_string(*resources.gpus);
  }

  // Host directories: the working directory and every bind, through PVCs.
  std::vector<Mount> mounts;
  std::optional<std::string> workdir = job.workdir ? job.workdir : job.submit_dir;
  if (workdir) mounts.push_back(mountForHostPath(*workdir, *workdir, false, settings, "workdir"));
  for (std::size_t i = 0; i < job.binds.size(); ++i) {
    const BindMount& bind = job.binds[i];
    const std::string destination = bind.destination.empty() ? bind.source : bind.destination;
    if (destination == "/tmp" || destination.rfind("/tmp/", 0) == 0) {
      throw Error(kAction, destination, "binds[" + std::to_string(i) +
                                            "]: /tmp is the Pod's own emptyDir");
    }
    mounts.push_back(mountForHostPath(bind.source, destination, bind.read_only, settings,
                                      "binds[" + std::to_string(i) + "]"));
  }
  json volume_mounts = json::array({{{"name", "tmp"}, {"mountPath", "/tmp"}}});
  json volumes = json::array({{{"name", "tmp"}, {"emptyDir", json::object()}}});
  std::map<std::string, std::string> claim_volumes;
  for (const Mount& mount : mounts) {
    auto [it, inserted] = claim_volumes.emplace(mount.claim, "claim-" + dnsWords(mount.claim));
    if (inserted) {
      volumes.push_back({{"name", it->second},
                         {"persistentVolumeClaim", {{"claimName", mount.claim}}}});
    }
    bool duplicate = false;
    for (const auto& existing : volume_mounts) {
      if (existing["mountPath"] == mount.mount_path) duplicate = true;
    }
    if (duplicate) continue;
    json entry = {{"name", it->second}, {"mountPath", mount.mount_path}};
    if (!mount.sub_path.empty()) entry["subPath"] = mount.sub_path;
    if (mount.read_only) entry["readOnly"] = true;
    volume_mounts.push_back(entry);
  }

  json seccomp = settings.seccomp_localhost_profile
                     ? json{{"type", "Localhost"},
                            {"localhostProfile", *settings.seccomp_localhost_profile}}
                     : json{{"type", "RuntimeDefault"}};
  json container = {{"name", kContainerName}, {"image", *job.image}, {"command", job.command}};
  if (!env.empty()) container["env"] = env;
  if (workdir) container["workingDir"] = *workdir;
  json resources_json = json::object();
  if (!requests.empty()) resources_json["requests"] = requests;
  if (!limits.empty()) resources_json["limits"] = limits;
  if (!resources_json.empty()) container["resources"] = resources_json;
  container["volumeMounts"] = volume_mounts;
  container["securityContext"] = {{"allowPrivilegeEscalation", false},
                                  {"privileged", false},
                                  {"capabilities", {{"drop", json::array({"ALL"})}}},
                                  {"readOnlyRootFilesystem", true},
                                  {"runAsNonRoot", true},
                                  {"runAsUser", identity.uid},
                                  {"runAsGroup", identity.gid},
                                  {"seccompProfile", seccomp}};
  container["terminationMessagePolicy"] = "FallbackToLogsOnError";

  json spec = {{"nodeName", placement.node_name},
               {"restartPolicy", "Never"},
               {"terminationGracePeriodSeconds", settings.termination_grace_seconds},
               {"automountServiceAccountToken", false},
               {"enableServiceLinks", false},
               {"hostNetwork", false},
               {"hostPID", false},
               {"hostIPC", false}};
  if (resources.walltime_s) {
    if (*resources.walltime_s == 0) {
      throw Error(kAction, job_id, "resources.walltime: must be positive");
    }
    spec["activeDeadlineSeconds"] = *resources.walltime_s;
  }
  if (!settings.service_account.empty()) spec["serviceAccountName"] = settings.service_account;
  spec["securityContext"] = {{"runAsNonRoot", true},
                             {"runAsUser", identity.uid},
                             {"runAsGroup", identity.gid},
                             {"seccompProfile", seccomp}};
  spec["containers"] = json::array({container});
  spec["volumes"] = volumes;

  return json{{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", podNameForJob(job_id, placement.host_index, placement.host_count)},
                {"namespace", namespace_name},
                {"labels", labels},
                {"annotations", annotations}}},
              {"spec", spec}};
}

std::string toYaml(const nlohmann::ordered_json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  emit(out, value);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text.push_back('\n');
  return text;
}

}  // namespace kbatch::k8s
