#pragma once
/// What the Kubernetes backend needs from the site: plain values that the caller fills from the
/// site policy (policy `kubernetes:` section), so that this module depends on no policy code.

#include <map>
#include <optional>
#include <string>

namespace kbatch::k8s {

struct K8sSettings {
  /// Namespace of the job's Pods; empty: the kubeconfig context's namespace, else "default".
  std::string namespace_name;
  /// Service account of the Pods; empty: the namespace's default. Its token is never mounted.
  std::string service_account;
  /// Batch host name -> Kubernetes node name. A host without an entry is found through the
  /// nodes' `kubernetes.io/hostname` label.
  std::map<std::string, std::string> node_names;
  /// Host path prefix -> PersistentVolumeClaim name (e.g. "/home" -> "home"). Every host
  /// directory the job needs must lie under one of these prefixes.
  std::map<std::string, std::string> volumes;
  /// A Localhost seccomp profile relative to the kubelet's seccomp root; nullopt: RuntimeDefault.
  std::optional<std::string> seccomp_localhost_profile;

  /// Kubeconfig file list (colon-separated, as $KUBECONFIG); nullopt: $KUBECONFIG, then
  /// ~/.kube/config, then the in-cluster service account.
  std::optional<std::string> kubeconfig;
  /// Kubeconfig context; nullopt: the current-context.
  std::optional<std::string> context;
  /// Where an in-cluster service account's token, ca.crt and namespace are.
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";

  /// Ask for stdout and stderr as separate log streams (`stream=Stdout|Stderr`, Kubernetes 1.32+
  /// with the PodLogsQuerySplitStreams feature gate). Off: the logs API merges both streams and
  /// everything arrives on the job's stdout.
  bool split_log_streams = false;
  /// Grace period the Pod gets when kbatch deletes it while it runs (qdel, walltime).
  int termination_grace_seconds = 10;
  /// How long a Pod may stay Pending (image pulls, volume mounts) before kbatch gives up.
  int pending_timeout_seconds = 300;
  /// Watch requests ask the server to end the stream after this long; kbatch then resumes.
  int watch_timeout_seconds = 300;
};

}  // namespace kbatch::k8s
