#pragma once
/// The site's security policy (/etc/kbatch/policy.yaml, docs/policy.md): what a job may use, and
/// the site settings every module reads. Loading refuses files that anyone but root could have
/// written; evaluation lists every rule that applied to a job, with the rule's file and line.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kbatch/policy/seccomp_profile.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::policy {

/// Where a rule was written: "file:line:column" ("built-in default" for the defaults).
struct SourceLocation {
  std::string file;
  int line = 0;    ///< 1-based; 0 for built-in rules
  int column = 0;  ///< 1-based
  std::string toString() const;
};

/// A host directory that jobs may bind, e.g. `$HOME` (rw) or `/apps` (ro). The path may contain
/// $HOME, $USER, $PBS_O_WORKDIR, $TMPDIR and $KBATCH_JOB_SCRATCH, expanded per job.
struct BindRule {
  std::string path;
  bool read_write = false;
  SourceLocation where;
};

/// A bind the runner always adds (e.g. the site's software tree), with variables expanded per job.
struct SiteBind {
  std::string source;
  std::string destination;
  bool read_only = true;
  SourceLocation where;
};

/// A glob over normalised image references (`docker.io/library/ubuntu:22.04`): `*` and `?` stay
/// inside one path component, `**` crosses `/`.
struct ImagePattern {
  std::string glob;
  SourceLocation where;
};

struct ResourceCeilings {
  std::optional<int> cpus;
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::uint64_t> walltime_s;
  std::optional<int> gpus;
  bool match_allocation = false;  ///< container limits must equal the batch allocation
  SourceLocation cpus_where, memory_where, walltime_where, gpus_where, match_where;
};

enum class SubmitFilterMode { kFailClosed, kFailOpen };

/// A glob over shared-library file names (`libopenblas.so.*`, `libcuda.so.1`) that the compute
/// nodes lack: a job whose binary needs one runs in a dependency image (`--detect`).
struct LibraryPattern {
  std::string glob;
  SourceLocation where;
};

/// What the site says about its compute nodes' software (docs/policy.md, `compute_nodes`).
struct ComputeNodes {
  std::vector<LibraryPattern> missing_libraries;
};

struct SiteSettings {
  std::string qsub_path = "/usr/bin/qsub";
  std::string kbatch_path = "/usr/bin/kbatch";
  std::optional<std::string> image_cache;  ///< read-only site image cache directory
  std::optional<std::string> registry;     ///< the site registry for dependency images
  std::vector<std::string> insecure_registries;
};

/// The groups a job runs with, by name: the primary group (the job's gid, which a batch system's
/// `-W group_list=` or `sg` chooses) and the supplementary ones.
struct GroupMembership {
  std::string primary;
  std::vector<std::string> supplementary;
};

struct KubernetesSettings {
  std::string default_namespace = "kbatch-jobs";
  std::map<std::string, std::string> user_namespaces;   ///< user -> namespace
  std::map<std::string, std::string> group_namespaces;  ///< group -> namespace
  std::string service_account = "default";
  std::map<std::string, std::string> node_names;  ///< batch host name -> Kubernetes node name
  std::map<std::string, std::string> volumes;     ///< host path prefix -> PVC claim name
  std::string seccomp_localhost_profile = "kbatch/default.json";  ///< relative to kubelet's root

  /// The namespace of a job of `user`: the user's own entry, else the primary group's, else the
  /// one namespace that the user's mapped supplementary groups share, else the default. Throws
  /// kbatch::Error (naming the groups) when supplementary groups map to different namespaces:
  /// the choice would otherwise follow the order the account database lists groups in, and a
  /// job put in another project's namespace would get its quota and its volumes.
  std::string namespaceFor(const std::string& user, const GroupMembership& groups) const;
};

/// A loaded policy. Rules not written in the file keep the built-in defaults (docs/policy.md).
struct Policy {
  std::vector<std::string> sources;  ///< files the policy came from, or "built-in default"

  std::vector<Backend> allowed_backends = {Backend::kLocal};
  Backend default_backend = Backend::kLocal;
  SourceLocation backends_where;

  std::vector<ImagePattern> image_patterns = {{"**", {"built-in default", 0, 0}}};
  SourceLocation image_patterns_where{"built-in default", 0, 0};
  std::vector<std::string> registries;  ///< empty: any registry the patterns allow
  SourceLocation registries_where;
  bool require_digest = false;
  SourceLocation require_digest_where;

  std::vector<BindRule> bind_rules;
  SourceLocation bind_rules_where{"built-in default", 0, 0};
  /// False only in an overlay that does not mention binds.allowed: it then restricts no bind.
  bool restricts_binds = true;
  std::vector<SiteBind> site_binds;

  ResourceCeilings resources;

  SeccompProfile seccomp = defaultSeccompProfile();
  SourceLocation seccomp_where;
  /// `seccomp` compiled to BPF, present only in a policy loaded from its compiled form.
  std::optional<PrecompiledSeccomp> seccomp_program;

  std::vector<std::string> capabilities;  ///< CAP_* names a job may keep; none by default
  SourceLocation capabilities_where;
  bool fakeroot = false;
  SourceLocation fakeroot_where;

  SubmitFilterMode submit_filter_mode = SubmitFilterMode::kFailClosed;
  /// submit_filter.detect: look for binaries needing libraries the compute nodes lack in every
  /// job that asks for no container, as `--detect` does.
  bool submit_filter_detect = false;
  ComputeNodes compute_nodes;
  SiteSettings site;
  KubernetesSettings kubernetes;

  /// Extra policies that must also allow a job (the test-only tightening overlay). Their rules are
  /// evaluated too; a job passes only if every policy allows it.
  std::vector<Policy> also_required;

  /// Fakeroot-style uid mapping is allowed only if the site and every overlay allow it.
  bool fakerootAllowed() const;
  /// The capabilities allowed by the site and every overlay.
  std::vector<std::string> allowedCapabilities() const;
};

/// Everything about the job's surroundings that rules need and JobSpec does not hold.
struct EvaluationContext {
  std::string user;
  uid_t uid = 0;
  std::string home;                          ///< $HOME
  std::optional<std::string> pbs_o_workdir;  ///< $PBS_O_WORKDIR (or SLURM_SUBMIT_DIR)
  std::optional<std::string> tmpdir;         ///< $TMPDIR of the batch job
  std::optional<std::string> job_scratch;    ///< $KBATCH_JOB_SCRATCH: the job's scratch directory
  std::vector<std::string> requested_capabilities;
  bool fakeroot_requested = false;
  /// Resolve symlinks in bind sources before matching (a link in $HOME must not reach /etc).
  bool resolve_symlinks = true;

  /// What the batch system granted (from PBS_NUM_PPN, PBS_WALLTIME, ...), for match_allocation.
  struct Allocation {
    std::optional<int> cpus;
    std::optional<std::uint64_t> memory_bytes;
    std::optional<std::uint64_t> walltime_s;
    std::optional<int> gpus;
  };
  std::optional<Allocation> allocation;

  /// Fills user, uid, home, PBS_O_WORKDIR, TMPDIR, KBATCH_JOB_SCRATCH and the allocation from the
  /// calling process and its environment.
  static EvaluationContext fromEnvironment();
};

/// The calling process's groups (getgid, getgroups) by name, from the account database; a group
/// without a name is left out. Not part of EvaluationContext: no rule evaluates them, only the
/// Kubernetes namespace choice reads them, and lookups through NSS (LDAP, SSSD) can take longer
/// than a local job's whole start.
GroupMembership callerGroups();

/// The groups of the named account (its passwd entry's group and getgrouplist), by name. Throws
/// kbatch::Error if there is no such user.
GroupMembership groupsOfUser(const std::string& user);

/// One rule applied to one thing the job asked for.
struct RuleResult {
  std::string rule;     ///< the policy key, e.g. "images.allowed"
  std::string subject;  ///< what was checked, e.g. "image docker.io/library/ubuntu:22.04"
  bool allowed = false;
  std::string reason;
  SourceLocation where;
  std::string toString() const;  ///< "file:line: allow|deny rule: subject: reason"
};

struct Decision {
  std::vector<RuleResult> results;
  bool allowed() const;
  /// The first rule that denied the job, or nullptr.
  const RuleResult* firstDenial() const;
};

/// Limits the loader enforces on a policy file.
struct LoadOptions {
  std::uint64_t max_bytes = 1024 * 1024;
  std::size_t max_yaml_nodes = 100000;  ///< after alias expansion (YAML "billion laughs")
  std::size_t max_aliases = 256;
  /// Owners trusted for the file and each directory on its path; root only for the site file.
  std::vector<uid_t> trusted_owners = {0};
  /// An overlay may only tighten: keys that grant or configure (site, kubernetes, seccomp,
  /// submit_filter, binds.site) are refused in it.
  bool overlay = false;
};

/// The environment variable naming the test-only tightening overlay (see loadSitePolicy).
inline constexpr const char* kOverlayEnvironmentVariable = "KBATCH_POLICY_OVERLAY";

/// The site policy file's path, fixed at build time (KBATCH_POLICY_PATH).
const char* sitePolicyPath();

/// The site policy: KBATCH_POLICY_PATH, or the built-in default policy when that file does not
/// exist. If $KBATCH_POLICY_OVERLAY names a file (owned by root or the caller, not writable by
/// others), its rules are added to `also_required`: it can only make the policy stricter.
Policy loadSitePolicy();

/// The site policy when reading it needs no YAML parser: the built-in default where there is no
/// policy file, else its compiled form if that is current (`kbatch policy compile`). nullopt, with
/// why in `*why_not`, when only loadSitePolicy() can read it: the compiled policy is missing or
/// stale, or $KBATCH_POLICY_OVERLAY names an overlay. Lives apart from the YAML loader, so an
/// executable that calls only this links no yaml-cpp.
std::optional<Policy> loadSitePolicyWithoutYaml(std::string* why_not);
/// Loads a site policy file (root-owned, as loadSitePolicy does): from its compiled form
/// (`<path>.compiled`, see compileSitePolicy) when that is current, else by parsing the YAML.
Policy loadSitePolicyFile(const std::filesystem::path& policy_path);
/// `<policy_path>.compiled`: where compileSitePolicy writes and loadSitePolicyFile looks.
std::string compiledPolicyPath(const std::filesystem::path& policy_path);
/// Compiles a seccomp profile to BPF (the runner's, passed in: this module does not link
/// libseccomp).
using SeccompPrecompiler = std::function<PrecompiledSeccomp(const SeccompProfile&)>;
/// Parses the site policy file and writes its compiled form to `output` (atomically, mode 0644):
/// the loaded rules and the exact texts they came from, and, when `precompile` is given, the BPF
/// program of its seccomp profile. Loading then skips the YAML parse (and the runner the seccomp
/// compilation) as long as the policy file and its seccomp profile keep those texts; otherwise it
/// parses as before.
void compileSitePolicy(const std::filesystem::path& policy_path, const std::filesystem::path& output,
                       const SeccompPrecompiler& precompile = {});
/// One line: whether the compiled policy of `policy_path` is current, or why it is not used.
std::string describeCompiledPolicy(const std::filesystem::path& policy_path);
/// Loads one policy file; throws kbatch::Error naming file:line:column on any problem.
Policy loadPolicyFile(const std::filesystem::path& path);
Policy loadPolicyFile(const std::filesystem::path& path, const LoadOptions& options);
/// Parses policy text (no file-system checks); `name` is used in errors. For tests and fuzzing.
Policy parsePolicyText(std::string_view text, const std::string& name, const LoadOptions& options);
/// The policy that applies when the site has none (docs/policy.md, "Built-in default").
Policy builtinDefaultPolicy();

/// Evaluates every rule that applies to the job.
Decision evaluate(const Policy& policy, const JobSpec& job, const EvaluationContext& context);

/// The seccomp profile jobs run under (the site's; overlays cannot change it).
SeccompProfile effectiveSeccompProfile(const Policy& policy);

/// Site binds with variables expanded for this job; binds whose variables are unset are dropped.
std::vector<SiteBind> expandSiteBinds(const Policy& policy, const EvaluationContext& context);

/// The normalised form of an image reference, as patterns see it
/// (`ubuntu` -> `docker.io/library/ubuntu:latest`); local paths are returned unchanged.
std::string normalizeImageReference(const std::string& reference);

/// The first compute_nodes.missing_libraries pattern (of the site or an overlay) matching
/// `library` (a DT_NEEDED name, a soname, or a library path, of which the file name is matched),
/// or nullptr.
const LibraryPattern* findMissingLibrary(const Policy& policy, std::string_view library);

/// Capabilities that some policy may allow; everything else (CAP_SYS_ADMIN, ...) is refused.
const std::vector<std::string>& grantableCapabilities();

}  // namespace kbatch::policy
