/// `kbatch k8s run [options] --image IMAGE -- CMD`: the Kubernetes backend on its own (what
/// `kbatch exec --backend k8s` runs), and `kbatch k8s gc`: deletes Pods whose batch job is gone.

#include <cstdio>
#include <memory>

#include "cmd_exec.h"
#include "cmd_k8s_options.h"
#include "command.h"
#include "kbatch/common/log.h"
#include "kbatch/k8s/api_client.h"
#include "kbatch/k8s/backend.h"
#include "kbatch/k8s/gc.h"
#include "pod_settings.h"
#include "site_policy.h"

namespace kbatch::cli {
namespace {

struct K8sRunState {
  ExecFlags exec;
  K8sFlags k8s;
  std::vector<std::string> command;
};

struct K8sGcState {
  K8sFlags k8s;
  std::string qstat = "qstat";
  bool all_namespaces = false;
  bool dry_run = false;
};

[[noreturn]] void runK8sRun(K8sRunState& state) {
  if (state.command.empty()) {
    throw Error("run the job's Pod", "kbatch k8s run", "no command: give `-- CMD [ARGS...]`");
  }
  JobSpec job;
  job.command = state.command;
  job.backend = Backend::kK8s;
  applyExecFlags(state.exec, job);
  applyBatchEnvironment(job, state.k8s);
  int exit_code;
  {
    const k8s::TlsWarmup warmup;  // overlaps TLS set-up with the policy and the kubeconfig
    // The same policy as `kbatch exec --backend k8s`: this command is no way around it.
    const policy::Policy& site = sitePolicy();
    const policy::EvaluationContext context = policy::EvaluationContext::fromEnvironment();
    enforceSitePolicy(job, context, "run job");
    exit_code = runJobPods(job, site, settingsFromFlags(state.k8s, sitePodSettings(site, context)));
  }
  exitAsJob(exit_code);
}

void runK8sGc(K8sGcState& state, int* exit_code) {
  const k8s::K8sSettings settings = settingsFromFlags(
      state.k8s, sitePodSettings(sitePolicy(), policy::EvaluationContext::fromEnvironment()));
  const k8s::ClusterAccess access = k8s::loadAccessFor(settings);
  k8s::ApiClient client(access);
  const std::string ns = state.all_namespaces ? "" : k8s::effectiveNamespace(settings, access);
  const std::string qstat = state.qstat;
  const auto report = k8s::collectGarbage(
      client, ns, [&](const std::string& job_id) { return k8s::probeJobWithQstat(qstat, job_id); },
      state.dry_run);
  for (const auto& pod : report.deleted) {
    std::printf("%s %s\n", state.dry_run ? "would delete" : "deleted", pod.c_str());
  }
  for (const auto& pod : report.kept) log::info("kept {} (its job still exists)", pod);
  for (const auto& error : report.errors) std::fprintf(stderr, "kbatch: k8s gc: %s\n", error.c_str());
  *exit_code = report.errors.empty() ? 0 : exit_code::kKbatchError;
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(k8s, 70, [](CLI::App& app, const kbatch::cli::GlobalOptions&, int* rc) {
  auto* k8s = app.add_subcommand("k8s", "The Kubernetes backend: run a job's Pod, collect garbage");
  k8s->require_subcommand(1);

  auto run_state = std::make_shared<kbatch::cli::K8sRunState>();
  auto* run = k8s->add_subcommand(
      "run", "Run a command as the batch job's Pod on this host's node (what `kbatch exec "
             "--backend k8s` does): kbatch k8s run --image IMAGE [options] -- CMD [ARGS...]");
  kbatch::cli::addExecOptions(run, run_state->exec);
  kbatch::cli::addK8sOptions(run, run_state->k8s);
  run->add_option("COMMAND", run_state->command, "After `--`: the command and its arguments");
  run->footer(
      "Exit codes: the container's own; 119 evicted, 120 not schedulable on this host's node "
      "(unknown, not Ready, rejected, Pending too long), 121 Pod deleted by someone else, 122 "
      "image pull failed, 123 container not created, 124 walltime (activeDeadlineSeconds) "
      "exceeded; 128+N after signal N; 125 API or kbatch error.");
  run->callback([run_state] { kbatch::cli::runK8sRun(*run_state); });

  auto gc_state = std::make_shared<kbatch::cli::K8sGcState>();
  auto* gc = k8s->add_subcommand(
      "gc", "Delete the Pods kbatch created whose batch job no longer exists (asks qstat)");
  kbatch::cli::addK8sOptions(gc, gc_state->k8s);
  gc->add_option("--qstat", gc_state->qstat, "The qstat command to ask (default: qstat)");
  gc->add_flag("--all-namespaces,-A", gc_state->all_namespaces, "Look in every namespace");
  gc->add_flag("--dry-run", gc_state->dry_run, "Only print what would be deleted");
  gc->callback([gc_state, rc] { kbatch::cli::runK8sGc(*gc_state, rc); });
});
