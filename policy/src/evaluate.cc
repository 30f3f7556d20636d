// Evaluating a job against the policy: every rule that applies adds one RuleResult, allowed or
// denied, with the rule's file and line, so `kbatch policy explain` can show the whole reasoning
// and the runner can refuse with the first denial.

#include <algorithm>
#include <filesystem>

#include "kbatch/policy/policy.h"
#include "text_checks.h"

namespace kbatch::policy {
namespace {

namespace fs = std::filesystem;

std::string trimTrailingSlash(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Expands $VAR and ${VAR} from the context; nullopt when a variable is unset for this job.
std::optional<std::string> expandVariables(const std::string& pattern,
                                           const EvaluationContext& context,
                                           std::string* missing) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '$') {
      out += pattern[i];
      continue;
    }
    std::size_t start = i + 1;
    bool braced = start < pattern.size() && pattern[start] == '{';
    if (braced) ++start;
    std::size_t end = start;
    while (end < pattern.size() &&
           (std::isalnum(static_cast<unsigned char>(pattern[end])) || pattern[end] == '_')) {
      ++end;
    }
    std::string name = pattern.substr(start, end - start);
    std::optional<std::string> value;
    if (name == "HOME") value = context.home.empty() ? std::nullopt : std::optional(context.home);
    if (name == "USER") value = context.user.empty() ? std::nullopt : std::optional(context.user);
    if (name == "PBS_O_WORKDIR") value = context.pbs_o_workdir;
    if (name == "TMPDIR") value = context.tmpdir;
    if (name == "KBATCH_JOB_SCRATCH") value = context.job_scratch;
    if (!value) {
      if (missing != nullptr) *missing = "$" + name;
      return std::nullopt;
    }
    out += *value;
    i = braced ? end : end - 1;
  }
  return out;
}

// The path as the kernel will see it: lexically normal, and with symlinks resolved when asked, so
// that a link under $HOME cannot reach /etc.
std::string resolvePath(const std::string& path, bool resolve_symlinks) {
  fs::path normal = fs::path(path).lexically_normal();
  if (resolve_symlinks) {
    std::error_code error;
    fs::path resolved = fs::weakly_canonical(normal, error);
    if (!error) normal = resolved;
  }
  return trimTrailingSlash(normal.string());
}

class Evaluator {
 public:
  Evaluator(const Policy& policy, const JobSpec& job, const EvaluationContext& context,
            bool is_overlay, Decision& decision)
      : policy_(policy), job_(job), context_(context), overlay_(is_overlay), decision_(decision) {}

  void run() {
    checkBackend();
    checkImage();
    checkBinds();
    checkResources();
    checkCapabilities();
    checkFakeroot();
    if (!overlay_) {
      add("seccomp", "seccomp profile", true,
          "jobs run under the " + policy_.seccomp.origin + " profile (" +
              std::to_string(policy_.seccomp.rules.size()) + " rules, default " +
              toOciName(policy_.seccomp.default_action) + ")",
          policy_.seccomp_where);
    }
  }

 private:
  void add(std::string rule, std::string subject, bool allowed, std::string reason,
           const SourceLocation& where) {
    // An overlay's unwritten sections allow everything; they are not rules worth listing.
    if (overlay_ && allowed && where.line == 0) return;
    decision_.results.push_back(
        {std::move(rule), std::move(subject), allowed, std::move(reason), where});
  }

  void checkBackend() {
    Backend backend = job_.backend.value_or(policy_.default_backend);
    bool allowed = std::find(policy_.allowed_backends.begin(), policy_.allowed_backends.end(),
                             backend) != policy_.allowed_backends.end();
    std::string how = job_.backend ? "requested" : "the site default";
    add("backends.allowed", std::string("backend ") + toString(backend), allowed,
        allowed ? how + ", allowed" : how + ", not in backends.allowed", policy_.backends_where);
  }

  void checkImage() {
    if (!job_.image) return;  // dependency images are built from the host's own files
    std::string normal = normalizeImageReference(*job_.image);
    std::string subject = "image " + normal;
    bool local = !normal.empty() && normal[0] == '/';
    const ImagePattern* match = nullptr;
    for (const auto& pattern : policy_.image_patterns) {
      if (detail::globMatches(pattern.glob, normal)) {
        match = &pattern;
        break;
      }
    }
    if (match != nullptr) {
      add("images.allowed", subject, true, "matches '" + match->glob + "'", match->where);
    } else {
      add("images.allowed", subject, false,
          "matches none of the " + std::to_string(policy_.image_patterns.size()) +
              " allowed patterns",
          policy_.image_patterns_where);
    }
    if (!policy_.registries.empty()) {
      if (local) {
        add("images.registries", subject, true, "a local image, from no registry",
            policy_.registries_where);
      } else {
        std::string registry = normal.substr(0, normal.find('/'));
        bool allowed = std::find(policy_.registries.begin(), policy_.registries.end(),
                                 registry) != policy_.registries.end();
        add("images.registries", subject, allowed,
            "registry '" + registry + (allowed ? "' is allowed" : "' is not allowed"),
            policy_.registries_where);
      }
    }
    if (policy_.require_digest && !local) {
      auto at = normal.find("@sha256:");
      bool pinned = at != std::string::npos && normal.size() - at - 8 == 64 &&
                    normal.find_first_not_of("0123456789abcdef", at + 8) == std::string::npos;
      add("images.require_digest", subject, pinned,
          pinned ? "pinned by sha256 digest" : "must be pinned by digest (name@sha256:<64 hex>)",
          policy_.require_digest_where);
    }
  }

  struct BindRequest {
    std::string source;
    std::string destination;
    bool read_write;
    std::string what;
  };

  void checkBinds() {
    std::vector<BindRequest> requests;
    for (const auto& bind : job_.binds) {
      requests.push_back({bind.source, bind.destination.empty() ? bind.source : bind.destination,
                          !bind.read_only, "bind"});
    }
    // The runner binds the working directory read-write, so it needs the same permission.
    if (job_.workdir) requests.push_back({*job_.workdir, *job_.workdir, true, "working directory"});
    for (const auto& request : requests) checkBind(request);
  }

  void checkBind(const BindRequest& request) {
    std::string subject = request.what + " " + request.source + " (" +
                          (request.read_write ? "rw" : "ro") + ")";
    if (request.source.empty() || request.source[0] != '/') {
      add("binds.allowed", subject, false, "the source must be an absolute path",
          policy_.bind_rules_where);
      return;
    }
    if (request.destination.empty() || request.destination[0] != '/' ||
        fs::path(request.destination).lexically_normal() != fs::path(request.destination) ||
        request.destination.find("/..") != std::string::npos) {
      add("binds.allowed", subject, false,
          "the destination '" + request.destination + "' must be an absolute, normal path",
          policy_.bind_rules_where);
      return;
    }
    if (!policy_.restricts_binds) return;
    std::string source = resolvePath(request.source, context_.resolve_symlinks);
    std::string resolved_note =
        source == trimTrailingSlash(fs::path(request.source).lexically_normal().string())
            ? ""
            : " (resolves to " + source + ")";
    if (detail::isForbiddenBindPath(source)) {
      add("binds.allowed", subject, false,
          "/proc, /sys and /dev are never bound" + resolved_note, policy_.bind_rules_where);
      return;
    }
    const BindRule* read_only_match = nullptr;
    std::vector<std::string> skipped;
    for (const auto& rule : policy_.bind_rules) {
      std::string missing;
      auto expanded = expandVariables(rule.path, context_, &missing);
      if (!expanded) {
        skipped.push_back(rule.path + " (" + missing + " unset)");
        continue;
      }
      if (expanded->empty() || (*expanded)[0] != '/') continue;
      std::string prefix = resolvePath(*expanded, context_.resolve_symlinks);
      // A variable must never widen a rule to the system: $HOME=/ for a service account.
      if (detail::isForbiddenBindPath(prefix) ||
          (rule.read_write && detail::isForbiddenWritablePath(prefix))) {
        skipped.push_back(rule.path + " (expands to " + prefix + ", a system path)");
        continue;
      }
      if (!detail::pathIsWithin(source, prefix)) continue;
      if (request.read_write && !rule.read_write) {
        if (read_only_match == nullptr) read_only_match = &rule;
        continue;
      }
      add("binds.allowed", subject, true,
          "inside " + rule.path + (rule.path == prefix ? "" : " = " + prefix) + " (" +
              (rule.read_write ? "rw" : "ro") + ")" + resolved_note,
          rule.where);
      return;
    }
    if (read_only_match != nullptr) {
      add("binds.allowed", subject, false,
          "only read-only binds are allowed under " + read_only_match->path + resolved_note,
          read_only_match->where);
      return;
    }
    std::string reason = "not inside any allowed path" + resolved_note;
    if (!skipped.empty()) {
      reason += "; not applicable to this job:";
      for (const auto& entry : skipped) reason += " " + entry;
    }
    add("binds.allowed", subject, false, reason, policy_.bind_rules_where);
  }

  template <typename T>
  void checkCeiling(const char* rule, const std::string& name, std::optional<T> requested,
                    std::optional<T> ceiling, const SourceLocation& where,
                    std::string (*format)(T)) {
    if (!ceiling || !requested) return;
    bool allowed = *requested <= *ceiling;
    add(rule, name + " " + format(*requested), allowed,
        (allowed ? "within the ceiling of " : "above the ceiling of ") + format(*ceiling), where);
  }

  static std::string plain(int value) { return std::to_string(value); }
  static std::string bytes(std::uint64_t value) { return std::to_string(value) + " bytes"; }
  static std::string seconds(std::uint64_t value) { return std::to_string(value) + " s"; }

  // The CPUs a container on one node gets: ppn, else procs.
  std::optional<int> requestedCpus() const {
    return job_.resources.ppn ? job_.resources.ppn : job_.resources.procs;
  }

  void checkResources() {
    const auto& ceilings = policy_.resources;
    const auto& requested = job_.resources;
    checkCeiling<int>("resources.max_cpus", "cpus", requestedCpus(), ceilings.cpus,
                      ceilings.cpus_where, plain);
    checkCeiling<std::uint64_t>("resources.max_memory", "memory", requested.mem_bytes,
                                ceilings.memory_bytes, ceilings.memory_where, bytes);
    checkCeiling<std::uint64_t>("resources.max_walltime", "walltime", requested.walltime_s,
                                ceilings.walltime_s, ceilings.walltime_where, seconds);
    checkCeiling<int>("resources.max_gpus", "gpus", requested.gpus, ceilings.gpus,
                      ceilings.gpus_where, plain);
    if (!ceilings.match_allocation || !context_.allocation) return;
    const auto& granted = *context_.allocation;
    auto compare = [&](const std::string& name, auto container, auto allocation, auto format) {
      if (!allocation) return;
      if (!container) {
        add("resources.match_allocation", name, true,
            "no container limit given; the runner applies the allocation's " + format(*allocation),
            ceilings.match_where);
        return;
      }
      bool equal = *container == *allocation;
      add("resources.match_allocation", name + " " + format(*container), equal,
          equal ? "equals the batch allocation"
                : "differs from the batch allocation of " + format(*allocation),
          ceilings.match_where);
    };
    compare("cpus", requestedCpus(), granted.cpus, plain);
    compare("memory", requested.mem_bytes, granted.memory_bytes, bytes);
    compare("walltime", requested.walltime_s, granted.walltime_s, seconds);
    compare("gpus", requested.gpus, granted.gpus, plain);
  }

  void checkCapabilities() {
    for (const auto& requested : context_.requested_capabilities) {
      std::string name;
      for (char c : requested) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (name.rfind("CAP_", 0) != 0) name = "CAP_" + name;
      bool allowed = std::find(policy_.capabilities.begin(), policy_.capabilities.end(), name) !=
                     policy_.capabilities.end();
      add("capabilities", "capability " + name, allowed,
          allowed ? "listed in capabilities" : "jobs keep no capability the policy does not list",
          policy_.capabilities_where);
    }
  }

  void checkFakeroot() {
    if (!context_.fakeroot_requested) return;
    add("fakeroot", "fakeroot uid mapping", policy_.fakeroot,
        policy_.fakeroot ? "allowed" : "the policy does not allow fakeroot", policy_.fakeroot_where);
  }

  const Policy& policy_;
  const JobSpec& job_;
  const EvaluationContext& context_;
  bool overlay_;
  Decision& decision_;
};

}  // namespace

Decision evaluate(const Policy& policy, const JobSpec& job, const EvaluationContext& context) {
  Decision decision;
  Evaluator(policy, job, context, false, decision).run();
  for (const auto& extra : policy.also_required) {
    Evaluator(extra, job, context, true, decision).run();
  }
  return decision;
}

const LibraryPattern* findMissingLibrary(const Policy& policy, std::string_view library) {
  std::string_view name = library.substr(library.rfind('/') == std::string_view::npos
                                             ? 0
                                             : library.rfind('/') + 1);
  for (const auto& pattern : policy.compute_nodes.missing_libraries) {
    if (detail::globMatches(pattern.glob, name)) return &pattern;
  }
  // An overlay may name more (it can only make more jobs run in a container, which the policy
  // then checks).
  for (const auto& extra : policy.also_required) {
    if (const LibraryPattern* found = findMissingLibrary(extra, library)) return found;
  }
  return nullptr;
}

std::vector<SiteBind> expandSiteBinds(const Policy& policy, const EvaluationContext& context) {
  std::vector<SiteBind> binds;
  for (const auto& bind : policy.site_binds) {
    auto source = expandVariables(bind.source, context, nullptr);
    auto destination = expandVariables(bind.destination, context, nullptr);
    if (!source || !destination) continue;
    SiteBind expanded = bind;
    expanded.source = trimTrailingSlash(fs::path(*source).lexically_normal().string());
    expanded.destination = trimTrailingSlash(fs::path(*destination).lexically_normal().string());
    // As for bind rules: a variable must not turn a site bind into a bind of the system.
    if (detail::isForbiddenBindPath(expanded.source) ||
        (!expanded.read_only && detail::isForbiddenWritablePath(expanded.source))) {
      continue;
    }
    binds.push_back(std::move(expanded));
  }
  return binds;
}

}  // namespace kbatch::policy
