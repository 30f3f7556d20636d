// libFuzzer target for the policy loader: any bytes must either load or be refused with a
// kbatch::Error; a policy that loads must also evaluate and export without failing.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kbatch/common/error.h"
#include "kbatch/policy/k8s_export.h"
#include "kbatch/policy/policy.h"
#include "kbatch/policy/seccomp_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kbatch::policy;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadOptions options;
  // Overlays refuse more keys; fuzz both code paths, chosen by the input's first byte.
  options.overlay = size > 0 && (data[0] & 1) != 0;
  Policy policy;
  try {
    policy = parsePolicyText(text, "fuzz.yaml", options);
  } catch (const kbatch::Error&) {
    return 0;
  }
  kbatch::JobSpec job;
  job.image = "registry.example.org/hpc/app:1";
  job.binds = {{"/home/alice/data", "/data", false}, {"/apps", "/apps", true}};
  job.workdir = "/home/alice/run";
  job.resources.ppn = 4;
  job.resources.mem_bytes = 1ULL << 30;
  EvaluationContext context;
  context.user = "alice";
  context.home = "/home/alice";
  context.pbs_o_workdir = "/home/alice/run";
  context.resolve_symlinks = false;
  context.requested_capabilities = {"CHOWN"};
  context.fakeroot_requested = true;
  Decision decision = evaluate(policy, job, context);
  (void)decision.firstDenial();
  (void)expandSiteBinds(policy, context);
  (void)exportKubernetesObjects(policy);
  (void)writeOciSeccompJson(effectiveSeccompProfile(policy));
  return 0;
}
