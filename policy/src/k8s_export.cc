#include "kbatch/policy/k8s_export.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#include <yaml-cpp/yaml.h>
#pragma GCC diagnostic pop

#include <nlohmann/json.hpp>

#include <set>

#include "text_checks.h"

namespace kbatch::policy {
namespace {

using nlohmann::ordered_json;

// A CEL string literal. Raw strings (r'...') keep regular expressions readable; the loader only
// admits image patterns without quotes or backslashes, and names are DNS names, so a single
// quote can never end the literal early.
std::string celString(const std::string& text) { return "'" + text + "'"; }
std::string celRawString(const std::string& text) { return "r'" + text + "'"; }

std::string celList(const std::vector<std::string>& items) {
  std::string list = "[";
  for (const auto& item : items) list += (list.size() > 1 ? ", " : "") + celString(item);
  return list + "]";
}

// Every container the Pod starts (ephemeral ones have another type, and Pod Security restricted
// already constrains them).
constexpr const char* kContainers = "variables.containers";

// Strings that YAML would read as something else must be quoted: label values are strings.
bool needsQuotes(const std::string& text) {
  static const std::set<std::string> kSpecial = {"true", "false", "yes", "no", "on", "off",
                                                 "null", "y",    "n",   "~",  ""};
  if (kSpecial.count(text) != 0) return true;
  if (!std::isalpha(static_cast<unsigned char>(text[0]))) return true;
  return !std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '/' || c == '_' ||
           c == '-';
  });
}

void emit(YAML::Emitter& out, const ordered_json& value) {
  if (value.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [key, item] : value.items()) {
      out << YAML::Key;
      if (needsQuotes(key)) out << YAML::DoubleQuoted;
      out << key << YAML::Value;
      emit(out, item);
    }
    out << YAML::EndMap;
  } else if (value.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& item : value) emit(out, item);
    out << YAML::EndSeq;
  } else if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (needsQuotes(text)) out << YAML::DoubleQuoted;
    out << text;
  } else if (value.is_boolean()) {
    out << value.get<bool>();
  } else if (value.is_number_unsigned()) {
    out << value.get<std::uint64_t>();
  } else if (value.is_number_integer()) {
    out << value.get<std::int64_t>();
  } else {
    out << YAML::Null;
  }
}

std::vector<std::string> jobNamespaces(const KubernetesSettings& k8s) {
  std::set<std::string> names = {k8s.default_namespace};
  for (const auto& [user, name] : k8s.user_namespaces) names.insert(name);
  for (const auto& [group, name] : k8s.group_namespaces) names.insert(name);
  return {names.begin(), names.end()};
}

std::string quantityAtMost(const std::string& resource, const std::string& limit, bool required) {
  std::string present = "has(c.resources) && has(c.resources.limits) && " + celString(resource) +
                        " in c.resources.limits";
  std::string within = "quantity(c.resources.limits[" + celString(resource) +
                       "]).compareTo(quantity(" + celString(limit) + ")) <= 0";
  if (required) return std::string(kContainers) + ".all(c, " + present + " && " + within + ")";
  return std::string(kContainers) + ".all(c, !(" + present + ") || " + within + ")";
}

}  // namespace

std::vector<CelValidation> admissionValidations(const Policy& policy) {
  const auto& k8s = policy.kubernetes;
  std::vector<CelValidation> validations;
  auto add = [&](std::string expression, std::string message) {
    validations.push_back({std::move(expression), std::move(message)});
  };

  std::string node = "has(object.spec.nodeName) && object.spec.nodeName != ''";
  if (!k8s.node_names.empty()) {
    std::set<std::string> nodes;
    for (const auto& [host, name] : k8s.node_names) nodes.insert(name);
    node += " && object.spec.nodeName in " + celList({nodes.begin(), nodes.end()});
  }
  add(node, "kbatch jobs are pinned with nodeName to a node the batch system chose");

  add(std::string(kContainers) +
          ".all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || "
          "!c.securityContext.privileged)",
      "privileged containers are not allowed");
  add(std::string(kContainers) +
          ".all(c, has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) && "
          "c.securityContext.allowPrivilegeEscalation == false)",
      "every container must set allowPrivilegeEscalation: false");
  add("!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && "
      "!(has(object.spec.hostPID) && object.spec.hostPID) && "
      "!(has(object.spec.hostIPC) && object.spec.hostIPC)",
      "host network, PID and IPC namespaces are not allowed");

  std::string profile = celString(k8s.seccomp_localhost_profile);
  add("has(object.spec.securityContext) && has(object.spec.securityContext.seccompProfile) && "
      "object.spec.securityContext.seccompProfile.type == 'Localhost' && "
      "has(object.spec.securityContext.seccompProfile.localhostProfile) && "
      "object.spec.securityContext.seccompProfile.localhostProfile == " + profile + " && " +
          kContainers +
          ".all(c, !has(c.securityContext) || !has(c.securityContext.seccompProfile) || "
          "(c.securityContext.seccompProfile.type == 'Localhost' && "
          "has(c.securityContext.seccompProfile.localhostProfile) && "
          "c.securityContext.seccompProfile.localhostProfile == " + profile + "))",
      "the Pod must use the Localhost seccomp profile " + k8s.seccomp_localhost_profile);

  std::vector<std::string> claims;
  for (const auto& [prefix, claim] : k8s.volumes) claims.push_back(claim);
  add("!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath) && "
      "(has(v.persistentVolumeClaim) ? v.persistentVolumeClaim.claimName in " + celList(claims) +
          " : (has(v.emptyDir) || has(v.projected))))",
      "volumes must be the claims the policy maps (or emptyDir, projected); hostPath is never "
      "allowed");

  std::vector<std::string> image_checks;
  for (const auto& pattern : policy.image_patterns) {
    if (pattern.glob.empty() || pattern.glob[0] == '/') continue;  // local images: no registry
    image_checks.push_back("c.image.matches(" + celRawString(detail::globToRegex(pattern.glob)) +
                           ")");
  }
  std::string any_image = image_checks.empty() ? "false" : "";
  for (const auto& check : image_checks) any_image += (any_image.empty() ? "" : " || ") + check;
  add(std::string(kContainers) + ".all(c, " + any_image + ")",
      "container images must be fully qualified references matching images.allowed");
  if (!policy.registries.empty()) {
    std::string registries;
    for (const auto& registry : policy.registries) {
      registries += (registries.empty() ? "" : " || ") +
                    std::string("c.image.startsWith(") + celString(registry + "/") + ")";
    }
    add(std::string(kContainers) + ".all(c, " + registries + ")",
        "container images must come from images.registries");
  }
  if (policy.require_digest) {
    add(std::string(kContainers) + ".all(c, c.image.matches(r'@sha256:[0-9a-f]{64}$'))",
        "container images must be pinned by sha256 digest");
  }

  std::vector<std::string> caps;
  for (const auto& cap : policy.allowedCapabilities()) caps.push_back(cap.substr(4));  // no CAP_
  add(std::string(kContainers) +
          ".all(c, !has(c.securityContext) || !has(c.securityContext.capabilities) || "
          "!has(c.securityContext.capabilities.add) || "
          "c.securityContext.capabilities.add.all(a, a in " + celList(caps) + "))",
      "containers may add only the capabilities the policy lists");

  if (!k8s.service_account.empty()) {
    add("has(object.spec.serviceAccountName) && object.spec.serviceAccountName == " +
            celString(k8s.service_account),
        "jobs run as service account " + k8s.service_account);
  }

  const auto& ceilings = policy.resources;
  if (ceilings.cpus) {
    add(quantityAtMost("cpu", std::to_string(*ceilings.cpus), true),
        "every container needs a cpu limit of at most " + std::to_string(*ceilings.cpus));
  }
  if (ceilings.memory_bytes) {
    add(quantityAtMost("memory", std::to_string(*ceilings.memory_bytes), true),
        "every container needs a memory limit of at most " +
            std::to_string(*ceilings.memory_bytes) + " bytes");
  }
  if (ceilings.gpus) {
    add(quantityAtMost(kGpuResourceName, std::to_string(*ceilings.gpus), false),
        std::string("at most ") + std::to_string(*ceilings.gpus) + " " + kGpuResourceName +
            " per container");
  }
  if (ceilings.walltime_s) {
    add("has(object.spec.activeDeadlineSeconds) && object.spec.activeDeadlineSeconds <= " +
            std::to_string(*ceilings.walltime_s),
        "activeDeadlineSeconds (the walltime) must be set and at most " +
            std::to_string(*ceilings.walltime_s));
  }
  return validations;
}

std::string exportKubernetesObjects(const Policy& policy) {
  std::vector<ordered_json> objects;
  for (const auto& name : jobNamespaces(policy.kubernetes)) {
    ordered_json labels = {{"pod-security.kubernetes.io/enforce", "restricted"},
                           {"pod-security.kubernetes.io/enforce-version", "latest"},
                           {"pod-security.kubernetes.io/warn", "restricted"},
                           {"pod-security.kubernetes.io/audit", "restricted"},
                           {kJobNamespaceLabel, "true"}};
    objects.push_back({{"apiVersion", "v1"},
                       {"kind", "Namespace"},
                       {"metadata", {{"name", name}, {"labels", labels}}}});
  }

  ordered_json validations = ordered_json::array();
  for (const auto& validation : admissionValidations(policy)) {
    validations.push_back({{"expression", validation.expression},
                           {"message", validation.message},
                           {"reason", "Forbidden"}});
  }
  ordered_json containers_variable = {
      {"name", "containers"},
      {"expression",
       "object.spec.containers + (has(object.spec.initContainers) ? "
       "object.spec.initContainers : [])"}};
  objects.push_back(
      {{"apiVersion", "admissionregistration.k8s.io/v1"},
       {"kind", "ValidatingAdmissionPolicy"},
       {"metadata", {{"name", kAdmissionPolicyName}}},
       {"spec",
        {{"failurePolicy", "Fail"},
         {"matchConstraints",
          {{"resourceRules", ordered_json::array({{{"apiGroups", ordered_json::array({""})},
                                                   {"apiVersions", ordered_json::array({"v1"})},
                                                   {"operations",
                                                    ordered_json::array({"CREATE", "UPDATE"})},
                                                   {"resources", ordered_json::array({"pods"})}}})}}},
         {"variables", ordered_json::array({containers_variable})},
         {"validations", validations}}}});
  objects.push_back(
      {{"apiVersion", "admissionregistration.k8s.io/v1"},
       {"kind", "ValidatingAdmissionPolicyBinding"},
       {"metadata", {{"name", std::string(kAdmissionPolicyName) + "-binding"}}},
       {"spec",
        {{"policyName", kAdmissionPolicyName},
         {"validationActions", ordered_json::array({"Deny"})},
         {"matchResources",
          {{"namespaceSelector", {{"matchLabels", {{kJobNamespaceLabel, "true"}}}}}}}}}});

  std::string stream = "# Generated by `kbatch policy export-k8s` from " +
                       (policy.sources.empty() ? std::string("the policy") : policy.sources[0]) +
                       "\n";
  for (const auto& object : objects) {
    YAML::Emitter out;
    out << YAML::BeginDoc;
    emit(out, object);
    stream += out.c_str();
    stream += "\n";
  }
  return stream;
}

}  // namespace kbatch::policy
