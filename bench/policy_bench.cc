// Micro-benchmark for bench/policy_bench.sh: loads a policy file (with all the file checks) and
// evaluates one job against it, N times, and prints the mean microseconds per load+evaluate.
// Usage: policy_bench POLICY ITERATIONS [site]
// With "site", the policy is loaded as the site policy is (loadSitePolicyFile): from its compiled
// form POLICY.compiled when that is current.

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kbatch/policy/policy.h"

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: policy_bench POLICY ITERATIONS [site]\n");
    return 2;
  }
  using namespace kbatch::policy;
  LoadOptions options;
  options.trusted_owners = {0, getuid()};
  kbatch::JobSpec job;
  job.image = "registry.example.org/group198/app:1.0";
  job.binds = {{"/home/alice/data", "/data", false}, {"/project/p150/shared", "/shared", true}};
  job.workdir = "/home/alice/run";
  job.resources.ppn = 8;
  job.resources.mem_bytes = 8ULL << 30;
  job.resources.walltime_s = 3600;
  EvaluationContext context;
  context.user = "alice";
  context.home = "/home/alice";
  context.pbs_o_workdir = "/home/alice/run";
  context.resolve_symlinks = false;
  long iterations = std::atol(argv[2]);
  const bool as_site = argc == 4 && std::string(argv[3]) == "site";
  std::size_t rules = 0;
  bool allowed = false;
  // CPU time as well as wall time: on a shared machine the wall clock also counts other work.
  std::clock_t cpu_start = std::clock();
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i) {
    Policy policy = as_site ? loadSitePolicyFile(argv[1]) : loadPolicyFile(argv[1], options);
    Decision decision = evaluate(policy, job, context);
    rules = decision.results.size();
    allowed = decision.allowed();
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  double micros = std::chrono::duration<double, std::micro>(elapsed).count() / double(iterations);
  double cpu_micros =
      1e6 * double(std::clock() - cpu_start) / CLOCKS_PER_SEC / double(iterations);
  std::printf("%s%s: %.1f us wall, %.1f us CPU per load+evaluate (%zu rules applied, %s)\n",
              argv[1], as_site ? " (as the site policy)" : "", micros, cpu_micros, rules, allowed ? "allowed" : "denied");
  return 0;
}
