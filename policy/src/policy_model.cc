// The built-in default policy, the small accessors on Policy, and the evaluation context.

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "kbatch/common/error.h"
#include "kbatch/policy/policy.h"
#include "text_checks.h"

namespace kbatch::policy {

std::string SourceLocation::toString() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string KubernetesSettings::namespaceFor(const std::string& user,
                                             const GroupMembership& groups) const {
  if (auto found = user_namespaces.find(user); found != user_namespaces.end()) {
    return found->second;
  }
  if (auto found = group_namespaces.find(groups.primary); found != group_namespaces.end()) {
    return found->second;
  }
  std::string chosen_group;
  std::string chosen;
  for (const auto& group : groups.supplementary) {
    auto found = group_namespaces.find(group);
    if (found == group_namespaces.end()) continue;
    if (chosen.empty()) {
      chosen_group = group;
      chosen = found->second;
    } else if (found->second != chosen) {
      throw Error("choose the Kubernetes namespace", "user " + user,
                  "groups " + chosen_group + " (namespace " + chosen + ") and " + group +
                      " (namespace " + found->second +
                      ") map to different namespaces in kubernetes.namespace.groups",
                  "submit with the group whose namespace you mean as the job's group (qsub -W "
                  "group_list=GROUP, sbatch --gid=GROUP), or ask the admins to map the user in "
                  "kubernetes.namespace.users");
    }
  }
  return chosen.empty() ? default_namespace : chosen;
}

bool Policy::fakerootAllowed() const {
  return fakeroot && std::all_of(also_required.begin(), also_required.end(),
                                 [](const Policy& extra) { return extra.fakerootAllowed(); });
}

std::vector<std::string> Policy::allowedCapabilities() const {
  std::vector<std::string> allowed = capabilities;
  for (const auto& extra : also_required) {
    auto theirs = extra.allowedCapabilities();
    allowed.erase(std::remove_if(allowed.begin(), allowed.end(),
                                 [&](const std::string& cap) {
                                   return std::find(theirs.begin(), theirs.end(), cap) ==
                                          theirs.end();
                                 }),
                  allowed.end());
  }
  return allowed;
}

const std::vector<std::string>& grantableCapabilities() {
  // Inside the job's user namespace these act only on the ids mapped into it (fakeroot-style
  // package installs, chown of the job's own files); none reaches the node.
  static const std::vector<std::string> kGrantable = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FOWNER",  "CAP_FSETID",          "CAP_KILL",
      "CAP_SETGID", "CAP_SETUID",       "CAP_SETFCAP", "CAP_NET_BIND_SERVICE"};
  return kGrantable;
}

Policy builtinDefaultPolicy() {
  Policy policy;
  SourceLocation builtin{"built-in default", 0, 0};
  policy.sources = {"built-in default"};
  policy.backends_where = builtin;
  policy.image_patterns_where = builtin;
  policy.registries_where = builtin;
  policy.require_digest_where = builtin;
  policy.bind_rules_where = builtin;
  // The job's own directories, read-write; nothing else of the host.
  policy.bind_rules = {{"$HOME", true, builtin},
                       {"$PBS_O_WORKDIR", true, builtin},
                       {"$TMPDIR", true, builtin},
                       {"$KBATCH_JOB_SCRATCH", true, builtin}};
  auto& r = policy.resources;
  r.cpus_where = r.memory_where = r.walltime_where = r.gpus_where = r.match_where = builtin;
  policy.seccomp_where = builtin;
  policy.capabilities_where = builtin;
  policy.fakeroot_where = builtin;
  return policy;
}

SeccompProfile effectiveSeccompProfile(const Policy& policy) { return policy.seccomp; }

std::string normalizeImageReference(const std::string& reference) {
  std::string ref = reference;
  for (const char* scheme : {"docker://", "oci://"}) {
    if (ref.rfind(scheme, 0) == 0) ref = ref.substr(std::string(scheme).size());
  }
  if (ref.empty() || ref[0] == '.') return ref;
  // A local path, as the kernel will resolve it: `..` must not walk out of an allowed prefix.
  if (ref[0] == '/') return std::filesystem::path(ref).lexically_normal().string();
  std::string digest;
  if (auto at = ref.find('@'); at != std::string::npos) {
    digest = ref.substr(at);
    ref = ref.substr(0, at);
  }
  // The first component names a registry only if it looks like a host (Docker's rule).
  auto slash = ref.find('/');
  std::string first = ref.substr(0, slash);
  bool has_registry = slash != std::string::npos &&
                      (first.find_first_of(".:") != std::string::npos || first == "localhost");
  if (!has_registry) {
    ref = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + ref;
  }
  auto last_slash = ref.rfind('/');
  bool has_tag = ref.find(':', last_slash == std::string::npos ? 0 : last_slash) != std::string::npos;
  if (!has_tag && digest.empty()) ref += ":latest";
  return ref + digest;
}

namespace {

std::string groupName(gid_t gid) {
  const struct group* entry = getgrgid(gid);
  return entry != nullptr ? std::string(entry->gr_name) : std::string();
}

GroupMembership membershipOf(gid_t primary, const std::vector<gid_t>& all) {
  GroupMembership groups;
  groups.primary = groupName(primary);
  for (gid_t gid : all) {
    if (gid == primary) continue;
    std::string name = groupName(gid);
    if (!name.empty() && std::find(groups.supplementary.begin(), groups.supplementary.end(),
                                   name) == groups.supplementary.end()) {
      groups.supplementary.push_back(std::move(name));
    }
  }
  return groups;
}

}  // namespace

GroupMembership callerGroups() {
  std::vector<gid_t> gids(static_cast<std::size_t>(std::max(getgroups(0, nullptr), 0)));
  int count = getgroups(static_cast<int>(gids.size()), gids.data());
  gids.resize(static_cast<std::size_t>(std::max(count, 0)));
  return membershipOf(getgid(), gids);
}

GroupMembership groupsOfUser(const std::string& user) {
  const struct passwd* entry = getpwnam(user.c_str());
  if (entry == nullptr) {
    throw Error("look up the groups of", user, "no such user in the account database");
  }
  const gid_t primary = entry->pw_gid;
  const std::string name = entry->pw_name;
  std::vector<gid_t> gids(32);
  int count = static_cast<int>(gids.size());
  while (getgrouplist(name.c_str(), primary, gids.data(), &count) < 0) {
    gids.resize(static_cast<std::size_t>(count) + 32);  // count now says how many there are
    count = static_cast<int>(gids.size());
  }
  gids.resize(static_cast<std::size_t>(count));
  return membershipOf(primary, gids);
}

EvaluationContext EvaluationContext::fromEnvironment() {
  EvaluationContext context;
  auto env = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
  context.uid = getuid();
  // The account database, not $HOME or $USER: the environment is the user's to set.
  if (struct passwd* entry = getpwuid(context.uid)) {
    context.user = entry->pw_name;
    context.home = entry->pw_dir;
  }
  context.pbs_o_workdir = env("PBS_O_WORKDIR");
  if (!context.pbs_o_workdir) context.pbs_o_workdir = env("SLURM_SUBMIT_DIR");
  context.tmpdir = env("TMPDIR");
  context.job_scratch = env("KBATCH_JOB_SCRATCH");

  // The batch allocation, only inside a batch job.
  Allocation allocation;
  bool in_job = false;
  if (auto ppn = env("PBS_NUM_PPN")) {
    allocation.cpus = std::atoi(ppn->c_str());
    in_job = true;
  } else if (auto cpus = env("SLURM_CPUS_ON_NODE")) {
    allocation.cpus = std::atoi(cpus->c_str());
    in_job = true;
  }
  if (auto walltime = env("PBS_WALLTIME")) {
    allocation.walltime_s = detail::parseDuration(*walltime);
    in_job = true;
  }
  if (auto memory = env("SLURM_MEM_PER_NODE")) {  // megabytes
    if (auto mb = detail::parseByteSize(*memory + "M")) allocation.memory_bytes = mb;
    in_job = true;
  }
  if (auto gpus = env("PBS_NUM_GPUS")) {
    allocation.gpus = std::atoi(gpus->c_str());
    in_job = true;
  }
  if (in_job) context.allocation = allocation;
  return context;
}

std::string RuleResult::toString() const {
  return where.toString() + ": " + (allowed ? "allow " : "deny  ") + rule + ": " + subject +
         (reason.empty() ? "" : ": " + reason);
}

bool Decision::allowed() const { return firstDenial() == nullptr; }

const RuleResult* Decision::firstDenial() const {
  for (const auto& result : results) {
    if (!result.allowed) return &result;
  }
  return nullptr;
}

}  // namespace kbatch::policy
