// libFuzzer target for the compiled site policy (policy/src/policy_compiled.cc): any bytes read as
// a compiled form of kPolicyText must either be refused (nullopt, with a reason) or give a policy
// that evaluates a job and compiles again. The corpus holds `kbatch policy compile` output for
// kPolicyText, so mutations reach the header fields and the CBOR behind a matching text.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kbatch/common/error.h"
#include "kbatch/policy/policy.h"
#include "policy_compiled.h"

namespace {

// Keep in step with tests/fuzz/corpus/policy_compiled/: after changing this text or the project
// version, write it to a root-owned file F and run
// `kbatch policy compile --policy F -o tests/fuzz/corpus/policy_compiled/example.compiled`.
const std::string kPolicyText =
    "version: 1\n"
    "backends: {allowed: [local, k8s], default: local}\n"
    "images:\n"
    "  registries: [registry.example.org]\n"
    "  allowed: [\"registry.example.org/hpc/**\", \"/apps/images/*\"]\n"
    "binds:\n"
    "  allowed:\n"
    "    - {path: $HOME, access: rw}\n"
    "    - {path: /apps, access: ro}\n"
    "  site:\n"
    "    - {source: /apps, destination: /apps}\n"
    "resources: {max_cpus: 64, max_memory: 256G, max_walltime: \"72:00:00\", max_gpus: 4}\n"
    "kubernetes:\n"
    "  namespace: hpc-jobs\n"
    "  volumes: {/home: home}\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kbatch::policy;
  const std::string compiled(reinterpret_cast<const char*>(data), size);
  std::string why_not;
  std::optional<Policy> policy;
  try {
    policy = loadCompiledPolicy(compiled, kPolicyText, "/etc/kbatch/policy.yaml", {0}, &why_not);
  } catch (const kbatch::Error&) {
    return 0;  // a seccomp profile file the input names is missing or untrusted
  }
  if (!policy) {
    if (why_not.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  kbatch::JobSpec job;
  job.image = "registry.example.org/hpc/solver:2";
  job.binds = {{"/home/alice/data", "/data", false}};
  EvaluationContext context;
  context.user = "alice";
  context.home = "/home/alice";
  context.resolve_symlinks = false;
  (void)evaluate(*policy, job, context);
  try {
    (void)compilePolicy(*policy, kPolicyText, {0});
  } catch (const kbatch::Error&) {
  }
  return 0;
}
