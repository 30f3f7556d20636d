// The exported admission objects: right kinds and API versions, restricted Pod Security labels,
// and one CEL validation per rule, carrying the policy's values. (tests/integration/k8s_schema
// checks the field names against the Kubernetes API models.)

#include <gtest/gtest.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#include <yaml-cpp/yaml.h>
#pragma GCC diagnostic pop

#include "kbatch/policy/k8s_export.h"
#include "policy_test_util.h"

namespace kbatch::policy {
namespace {

const char* kPolicy = R"(
images:
  registries: [registry.example.org]
  allowed: ["registry.example.org/hpc/**", "/apps/images/*"]
  require_digest: true
resources: {max_cpus: 8, max_memory: 16G, max_walltime: 3600, max_gpus: 1}
capabilities: [NET_BIND_SERVICE]
kubernetes:
  namespace: {default: hpc-jobs, users: {alice: alice-jobs}}
  node_names: {node01: k8s-node01}
  volumes: {/home: home-pvc}
  seccomp_profile: kbatch/default.json
)";

std::string findExpression(const std::vector<CelValidation>& validations, const std::string& word) {
  for (const auto& validation : validations) {
    if (validation.expression.find(word) != std::string::npos) return validation.expression;
  }
  return "";
}

TEST(KubernetesExport, ObjectsAndKinds) {
  Policy policy = testing::parse(kPolicy);
  std::vector<YAML::Node> documents = YAML::LoadAll(exportKubernetesObjects(policy));
  ASSERT_EQ(documents.size(), 4u);  // two namespaces, the policy, the binding
  EXPECT_EQ(documents[0]["kind"].as<std::string>(), "Namespace");
  EXPECT_EQ(documents[0]["metadata"]["name"].as<std::string>(), "alice-jobs");
  EXPECT_EQ(documents[1]["metadata"]["name"].as<std::string>(), "hpc-jobs");
  auto labels = documents[1]["metadata"]["labels"];
  EXPECT_EQ(labels["pod-security.kubernetes.io/enforce"].as<std::string>(), "restricted");
  // A label value must stay a string: `true` unquoted would be a YAML boolean.
  EXPECT_EQ(labels[kJobNamespaceLabel].Tag(), "!");
  EXPECT_EQ(documents[2]["apiVersion"].as<std::string>(), "admissionregistration.k8s.io/v1");
  EXPECT_EQ(documents[2]["kind"].as<std::string>(), "ValidatingAdmissionPolicy");
  EXPECT_EQ(documents[2]["spec"]["failurePolicy"].as<std::string>(), "Fail");
  EXPECT_EQ(documents[2]["spec"]["matchConstraints"]["resourceRules"][0]["operations"].size(), 2u);
  EXPECT_EQ(documents[2]["spec"]["validations"].size(), admissionValidations(policy).size());
  EXPECT_EQ(documents[3]["kind"].as<std::string>(), "ValidatingAdmissionPolicyBinding");
  EXPECT_EQ(documents[3]["spec"]["policyName"].as<std::string>(), kAdmissionPolicyName);
  EXPECT_EQ(documents[3]["spec"]["validationActions"][0].as<std::string>(), "Deny");
}

TEST(KubernetesExport, ValidationsCarryThePolicyValues) {
  auto validations = admissionValidations(testing::parse(kPolicy));
  EXPECT_NE(findExpression(validations, "nodeName in ['k8s-node01']"), "");
  EXPECT_NE(findExpression(validations, "claimName in ['home-pvc']"), "");
  EXPECT_NE(findExpression(validations, "!has(v.hostPath)"), "");
  EXPECT_NE(findExpression(validations, "localhostProfile == 'kbatch/default.json'"), "");
  EXPECT_NE(findExpression(validations, "c.image.matches(r'^registry\\.example\\.org/hpc/.*$')"), "");
  EXPECT_EQ(findExpression(validations, "/apps/images"), "");  // local images are not for Pods
  EXPECT_NE(findExpression(validations, "c.image.startsWith('registry.example.org/')"), "");
  EXPECT_NE(findExpression(validations, "@sha256:[0-9a-f]{64}$"), "");
  EXPECT_NE(findExpression(validations, "a in ['NET_BIND_SERVICE']"), "");
  EXPECT_NE(findExpression(validations, "compareTo(quantity('8'))"), "");
  EXPECT_NE(findExpression(validations, "compareTo(quantity('17179869184'))"), "");
  EXPECT_NE(findExpression(validations, "activeDeadlineSeconds <= 3600"), "");
  EXPECT_NE(findExpression(validations, "allowPrivilegeEscalation == false"), "");
  EXPECT_NE(findExpression(validations, "c.securityContext.privileged"), "");
}

TEST(KubernetesExport, DefaultPolicyHasNoCeilingsOrClaims) {
  auto validations = admissionValidations(builtinDefaultPolicy());
  EXPECT_EQ(findExpression(validations, "quantity("), "");
  EXPECT_NE(findExpression(validations, "claimName in []"), "");
  EXPECT_NE(findExpression(validations, "a in []"), "");
}

}  // namespace
}  // namespace kbatch::policy
