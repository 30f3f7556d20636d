#pragma once
/// The Kubernetes objects that enforce the policy inside the cluster, where a user with API
/// credentials cannot skip the check: the jobs' namespaces with Pod Security admission
/// "restricted", and a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, CEL) with its
/// binding for what Pod Security does not know (images, nodeName, claims, seccomp profile name,
/// ceilings).

#include <string>
#include <vector>

#include "kbatch/policy/policy.h"

namespace kbatch::policy {

/// Label that marks the namespaces the admission policy binds to.
inline constexpr const char* kJobNamespaceLabel = "kbatch.io/jobs";
inline constexpr const char* kAdmissionPolicyName = "kbatch-job-policy";
/// The extended resource name the GPU ceiling applies to.
inline constexpr const char* kGpuResourceName = "nvidia.com/gpu";

/// One CEL validation of the admission policy, with the rule it enforces.
struct CelValidation {
  std::string expression;
  std::string message;
};

/// The validations, in order (exposed so tests can read them without parsing YAML).
std::vector<CelValidation> admissionValidations(const Policy& policy);

/// All objects as one multi-document YAML stream (Namespaces, the policy, its binding).
std::string exportKubernetesObjects(const Policy& policy);

}  // namespace kbatch::policy
