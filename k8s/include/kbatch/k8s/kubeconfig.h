#pragma once
/// Finding the API server and credentials as kubectl does: $KUBECONFIG (a colon-separated list,
/// merged with the first file winning), else ~/.kube/config, else the in-cluster service account.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbatch::k8s {

/// An exec credential plugin (users[].user.exec): run to obtain a token or client certificate.
struct ExecPlugin {
  std::string api_version;  ///< client.authentication.k8s.io/v1 or v1beta1
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  bool provide_cluster_info = false;
};

/// Everything needed to talk to one API server as one user.
struct ClusterAccess {
  std::string server;            ///< https://host:port (no trailing slash)
  std::string ca_pem;            ///< PEM of the CAs to trust; empty: the system's
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;   ///< overrides the name checked in the server's certificate
  std::string token;             ///< bearer token
  std::string token_file;        ///< re-read on every request (service account tokens rotate)
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string username;          ///< basic authentication (old clusters)
  std::string password;
  std::optional<ExecPlugin> exec;
  std::string namespace_name;    ///< the context's namespace; empty if none
  std::string origin;            ///< "file:context" or "in-cluster", for messages
};

struct KubeconfigOptions {
  /// Colon-separated kubeconfig paths; nullopt: $KUBECONFIG, else ~/.kube/config.
  std::optional<std::string> paths;
  std::optional<std::string> context;
  std::filesystem::path service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

/// Loads the credentials kubectl would use. Throws kbatch::Error naming the file and field.
ClusterAccess loadClusterAccess(const KubeconfigOptions& options);

/// Parses kubeconfig documents (already read; `files` pairs each text with its path, used to
/// resolve relative paths and in messages) and selects the context.
ClusterAccess parseKubeconfigs(
    const std::vector<std::pair<std::filesystem::path, std::string>>& files,
    const std::optional<std::string>& context);

/// The in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and the service account files).
ClusterAccess inClusterAccess(const std::filesystem::path& service_account_dir);

/// Runs the exec plugin and stores the token or client certificate it returns in `access`.
void runExecPlugin(ClusterAccess& access);

}  // namespace kbatch::k8s
