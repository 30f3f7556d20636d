#pragma once
/// Options of the Kubernetes commands (`kbatch manifest`, `kbatch k8s ...`): overrides of the
/// site settings the policy supplies (namespace, node map, claims, seccomp profile), and the
/// batch job's context read from the environment. Private to cmd_manifest.cc and cmd_k8s.cc.

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "kbatch/common/error.h"
#include "kbatch/k8s/settings.h"
#include "kbatch/rewrite/job_spec.h"

namespace kbatch::cli {

struct K8sFlags {
  std::optional<std::string> kubeconfig;
  std::optional<std::string> context;
  std::optional<std::string> namespace_name;
  std::vector<std::string> node_names;  ///< HOST=NODE
  std::vector<std::string> volumes;     ///< PREFIX=CLAIM
  std::optional<std::string> seccomp_localhost;
  bool split_streams = false;
  std::optional<int> pending_timeout;
  std::optional<std::string> job_id;
};

inline void addK8sOptions(CLI::App* command, K8sFlags& flags) {
  command->add_option("--kubeconfig", flags.kubeconfig,
                      "Kubeconfig file(s), colon-separated (default: $KUBECONFIG, ~/.kube/config, "
                      "then the in-cluster service account)");
  command->add_option("--context", flags.context, "Kubeconfig context (default: current-context)");
  command->add_option("--namespace,-n", flags.namespace_name,
                      "Namespace of the job's Pods (default: the context's, else default)");
  command->add_option("--node-name", flags.node_names,
                      "HOST=NODE: the Kubernetes node of a batch host (repeatable; default: the "
                      "node labelled kubernetes.io/hostname=HOST)");
  command->add_option("--volume", flags.volumes,
                      "PREFIX=CLAIM: host paths under PREFIX reach the Pod through the "
                      "PersistentVolumeClaim CLAIM (repeatable)");
  command->add_option("--seccomp-localhost", flags.seccomp_localhost,
                      "Localhost seccomp profile (relative to the kubelet's seccomp root) instead "
                      "of RuntimeDefault");
  command->add_flag("--split-streams", flags.split_streams,
                    "Ask the API for stdout and stderr apart (Kubernetes 1.32+ with "
                    "PodLogsQuerySplitStreams); otherwise both arrive on stdout");
  command->add_option("--pending-timeout", flags.pending_timeout,
                      "Seconds a Pod may stay Pending before kbatch gives up (default 300)");
  command->add_option("--job-id", flags.job_id,
                      "The batch job id (default: PBS_JOBID or SLURM_JOB_ID)");
}

inline std::pair<std::string, std::string> splitAssignment(const std::string& text,
                                                           const std::string& flag) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0 || equals + 1 == text.size()) {
    throw Error("read option", flag + " " + text, "expected KEY=VALUE");
  }
  return {text.substr(0, equals), text.substr(equals + 1)};
}

/// The site's settings (sitePodSettings) with the flags on top: a flag given replaces what the
/// policy says for that setting (the cluster's own RBAC and admission still decide what the
/// user's credentials may create).
inline k8s::K8sSettings settingsFromFlags(const K8sFlags& flags, k8s::K8sSettings settings) {
  settings.kubeconfig = flags.kubeconfig;
  settings.context = flags.context;
  if (flags.namespace_name) settings.namespace_name = *flags.namespace_name;
  for (const auto& item : flags.node_names) {
    auto [host, node] = splitAssignment(item, "--node-name");
    settings.node_names[host] = node;
  }
  for (const auto& item : flags.volumes) {
    auto [prefix, claim] = splitAssignment(item, "--volume");
    settings.volumes[prefix] = claim;
  }
  if (flags.seccomp_localhost) settings.seccomp_localhost_profile = flags.seccomp_localhost;
  settings.split_log_streams = flags.split_streams;
  if (flags.pending_timeout) settings.pending_timeout_seconds = *flags.pending_timeout;
  return settings;
}

/// The batch job's context on the compute node: TORQUE's PBS_* or Slurm's SLURM_* variables.
inline void applyBatchEnvironment(JobSpec& job, const K8sFlags& flags) {
  auto env = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
  job.job_id = flags.job_id ? flags.job_id : env("PBS_JOBID") ? env("PBS_JOBID") : env("SLURM_JOB_ID");
  if (!job.array_index) {
    job.array_index = env("PBS_ARRAYID") ? env("PBS_ARRAYID")
                      : env("PBS_ARRAY_INDEX") ? env("PBS_ARRAY_INDEX")
                                               : env("SLURM_ARRAY_TASK_ID");
  }
  if (!job.name) job.name = env("PBS_JOBNAME") ? env("PBS_JOBNAME") : env("SLURM_JOB_NAME");
  if (!job.submit_dir) {
    job.submit_dir = env("PBS_O_WORKDIR") ? env("PBS_O_WORKDIR") : env("SLURM_SUBMIT_DIR");
  }
  if (job.hosts.empty()) {
    if (auto nodefile = env("PBS_NODEFILE")) {
      std::ifstream in(*nodefile);
      if (!in) throw Error("read", *nodefile, "cannot read PBS_NODEFILE");
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) job.hosts.push_back(line);
      }
    }
  }
  if (!job.user) job.user = env("USER");
}

}  // namespace kbatch::cli
