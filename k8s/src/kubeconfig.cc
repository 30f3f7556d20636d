// Kubeconfig loading with the merge rules of client-go's loader: files in $KUBECONFIG order, the
// first file that defines a cluster, user or context (by name) or the current-context wins.

#include "kbatch/k8s/kubeconfig.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kbatch/common/base64.h"
#include "kbatch/common/error.h"

namespace kbatch::k8s {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAction = "load Kubernetes credentials";

std::string readFile(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(kAction, path.string(), "cannot read " + what + ": " + describeErrno(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// One named entry (cluster, user or context) and the file it came from.
struct Entry {
  YAML::Node node;
  fs::path file;
};

std::string scalar(const Entry& entry, const char* key, const std::string& where) {
  const YAML::Node value = entry.node[key];
  if (!value) return {};
  if (!value.IsScalar()) {
    throw Error(kAction, entry.file.string(), where + "." + key + ": expected a string");
  }
  return value.as<std::string>();
}

bool flag(const Entry& entry, const char* key, const std::string& where) {
  const YAML::Node value = entry.node[key];
  if (!value) return false;
  try {
    return value.as<bool>();
  } catch (const YAML::Exception&) {
    throw Error(kAction, entry.file.string(), where + "." + key + ": expected true or false");
  }
}

/// kubeconfig paths are relative to the file that names them.
fs::path resolvePath(const Entry& entry, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = entry.file.parent_path() / p;
  return p.lexically_normal();
}

std::string dataOrFile(const Entry& entry, const char* data_key, const char* file_key,
                       const std::string& where) {
  std::string data = scalar(entry, data_key, where);
  if (!data.empty()) {
    std::optional<std::string> decoded = decodeBase64(data);
    if (!decoded) {
      throw Error(kAction, entry.file.string(),
                  where + "." + data_key + ": not valid base64");
    }
    return *decoded;
  }
  std::string file = scalar(entry, file_key, where);
  if (file.empty()) return {};
  return readFile(resolvePath(entry, file), where + "." + file_key);
}

void collect(const YAML::Node& list, const char* section, const fs::path& file,
             std::map<std::string, Entry>* into) {
  if (!list) return;
  if (!list.IsSequence()) {
    throw Error(kAction, file.string(), std::string(section) + ": expected a list");
  }
  std::size_t index = 0;
  for (const auto& item : list) {
    std::string where = std::string(section) + "[" + std::to_string(index++) + "]";
    if (!item.IsMap() || !item["name"] || !item["name"].IsScalar()) {
      throw Error(kAction, file.string(), where + ".name: missing");
    }
    const char* body_key = std::string(section) == "clusters"   ? "cluster"
                           : std::string(section) == "users"    ? "user"
                                                                 : "context";
    YAML::Node body = item[body_key];
    if (body && !body.IsMap() && !body.IsNull()) {
      throw Error(kAction, file.string(), where + "." + body_key + ": expected a mapping");
    }
    into->emplace(item["name"].as<std::string>(), Entry{body ? body : YAML::Node(YAML::NodeType::Map), file});
  }
}

ExecPlugin parseExec(const Entry& user, const std::string& where) {
  Entry exec{user.node["exec"], user.file};
  ExecPlugin plugin;
  plugin.api_version = scalar(exec, "apiVersion", where + ".exec");
  plugin.command = scalar(exec, "command", where + ".exec");
  if (plugin.command.empty()) {
    throw Error(kAction, user.file.string(), where + ".exec.command: missing");
  }
  if (plugin.api_version != "client.authentication.k8s.io/v1" &&
      plugin.api_version != "client.authentication.k8s.io/v1beta1") {
    throw Error(kAction, user.file.string(),
                where + ".exec.apiVersion: '" + plugin.api_version +
                    "' is not client.authentication.k8s.io/v1 or v1beta1");
  }
  if (exec.node["args"]) {
    for (const auto& arg : exec.node["args"]) plugin.args.push_back(arg.as<std::string>());
  }
  if (exec.node["env"]) {
    for (const auto& pair : exec.node["env"]) {
      plugin.env.emplace_back(pair["name"].as<std::string>(), pair["value"].as<std::string>());
    }
  }
  plugin.provide_cluster_info = flag(exec, "provideClusterInfo", where + ".exec");
  // A relative command with a slash is relative to the kubeconfig, as client-go resolves it.
  if (plugin.command.find('/') != std::string::npos && plugin.command[0] != '/') {
    plugin.command = resolvePath(user, plugin.command).string();
  }
  return plugin;
}

}  // namespace

ClusterAccess parseKubeconfigs(const std::vector<std::pair<fs::path, std::string>>& files,
                               const std::optional<std::string>& context) {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
  for (const auto& [path, text] : files) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& error) {
      throw Error(kAction, path.string() + ":" + std::to_string(error.mark.line + 1),
                  "not valid YAML: " + error.msg);
    }
    if (root.IsNull()) continue;
    if (!root.IsMap()) throw Error(kAction, path.string(), "expected a kubeconfig mapping");
    collect(root["clusters"], "clusters", path, &clusters);
    collect(root["users"], "users", path, &users);
    collect(root["contexts"], "contexts", path, &contexts);
    if (current_context.empty() && root["current-context"] && root["current-context"].IsScalar()) {
      current_context = root["current-context"].as<std::string>();
    }
  }
  std::string files_text;
  for (const auto& file : files) files_text += (files_text.empty() ? "" : ":") + file.first.string();
  const std::string context_name = context.value_or(current_context);
  if (context_name.empty()) {
    throw Error(kAction, files_text, "no current-context is set and none was asked for",
                "set one with `kubectl config use-context NAME`");
  }
  auto context_it = contexts.find(context_name);
  if (context_it == contexts.end()) {
    throw Error(kAction, files_text, "context '" + context_name + "' is not defined");
  }
  const Entry& ctx = context_it->second;
  const std::string ctx_where = "contexts[" + context_name + "]";
  const std::string cluster_name = scalar(ctx, "cluster", ctx_where + ".context");
  const std::string user_name = scalar(ctx, "user", ctx_where + ".context");
  auto cluster_it = clusters.find(cluster_name);
  if (cluster_it == clusters.end()) {
    throw Error(kAction, ctx.file.string(),
                ctx_where + ".context.cluster: cluster '" + cluster_name + "' is not defined");
  }
  ClusterAccess access;
  access.origin = ctx.file.string() + ":" + context_name;
  access.namespace_name = scalar(ctx, "namespace", ctx_where + ".context");
  const Entry& cluster = cluster_it->second;
  const std::string cluster_where = "clusters[" + cluster_name + "].cluster";
  access.server = scalar(cluster, "server", cluster_where);
  if (access.server.empty()) {
    throw Error(kAction, cluster.file.string(), cluster_where + ".server: missing");
  }
  if (access.server.rfind("https://", 0) != 0 && access.server.rfind("http://", 0) != 0) {
    throw Error(kAction, cluster.file.string(),
                cluster_where + ".server: '" + access.server + "' is not an http(s) URL");
  }
  while (!access.server.empty() && access.server.back() == '/') access.server.pop_back();
  access.ca_pem = dataOrFile(cluster, "certificate-authority-data", "certificate-authority",
                             cluster_where);
  access.insecure_skip_tls_verify = flag(cluster, "insecure-skip-tls-verify", cluster_where);
  access.tls_server_name = scalar(cluster, "tls-server-name", cluster_where);

  if (!user_name.empty()) {
    auto user_it = users.find(user_name);
    if (user_it == users.end()) {
      throw Error(kAction, ctx.file.string(),
                  ctx_where + ".context.user: user '" + user_name + "' is not defined");
    }
    const Entry& user = user_it->second;
    const std::string user_where = "users[" + user_name + "].user";
    access.token = scalar(user, "token", user_where);
    const std::string token_file = scalar(user, "tokenFile", user_where);
    if (!token_file.empty()) access.token_file = resolvePath(user, token_file).string();
    access.client_cert_pem =
        dataOrFile(user, "client-certificate-data", "client-certificate", user_where);
    access.client_key_pem = dataOrFile(user, "client-key-data", "client-key", user_where);
    if (access.client_cert_pem.empty() != access.client_key_pem.empty()) {
      throw Error(kAction, user.file.string(),
                  user_where + ": a client certificate needs both certificate and key");
    }
    access.username = scalar(user, "username", user_where);
    access.password = scalar(user, "password", user_where);
    if (user.node["exec"]) access.exec = parseExec(user, user_where);
    if (user.node["auth-provider"]) {
      throw Error(kAction, user.file.string(),
                  user_where + ".auth-provider: legacy auth providers are not supported",
                  "use an exec credential plugin (users[].user.exec) instead");
    }
  }
  return access;
}

ClusterAccess inClusterAccess(const fs::path& service_account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    throw Error(kAction, "in-cluster configuration",
                "no kubeconfig found and KUBERNETES_SERVICE_HOST/PORT are not set",
                "set KUBECONFIG or create ~/.kube/config");
  }
  ClusterAccess access;
  std::string host_text = host;
  if (host_text.find(':') != std::string::npos) host_text = "[" + host_text + "]";  // IPv6
  access.server = "https://" + host_text + ":" + port;
  access.token_file = (service_account_dir / "token").string();
  readFile(access.token_file, "the service account token");  // fail now, not on first request
  access.ca_pem = readFile(service_account_dir / "ca.crt", "the service account CA");
  std::error_code ignored;
  if (fs::exists(service_account_dir / "namespace", ignored)) {
    access.namespace_name = readFile(service_account_dir / "namespace", "the namespace");
    while (!access.namespace_name.empty() &&
           (access.namespace_name.back() == '\n' || access.namespace_name.back() == ' ')) {
      access.namespace_name.pop_back();
    }
  }
  access.origin = "in-cluster";
  return access;
}

ClusterAccess loadClusterAccess(const KubeconfigOptions& options) {
  std::string list;
  if (options.paths) {
    list = *options.paths;
  } else if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    list = env;
  }
  std::vector<std::pair<fs::path, std::string>> files;
  if (!list.empty()) {
    std::stringstream split(list);
    std::string item;
    while (std::getline(split, item, ':')) {
      if (item.empty()) continue;
      std::error_code ignored;
      // kubectl skips $KUBECONFIG entries that do not exist; an explicit single file must exist.
      if (!fs::exists(item, ignored) && !options.paths) continue;
      files.emplace_back(item, readFile(item, "kubeconfig"));
    }
    if (files.empty()) {
      throw Error(kAction, list, "none of these kubeconfig files exists");
    }
    return parseKubeconfigs(files, options.context);
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    fs::path path = fs::path(home) / ".kube" / "config";
    std::error_code ignored;
    if (fs::exists(path, ignored)) {
      files.emplace_back(path, readFile(path, "kubeconfig"));
      return parseKubeconfigs(files, options.context);
    }
  }
  return inClusterAccess(options.service_account_dir);
}

void runExecPlugin(ClusterAccess& access) {
  const ExecPlugin& plugin = *access.exec;
  nlohmann::json info = {{"apiVersion", plugin.api_version},
                         {"kind", "ExecCredential"},
                         {"spec", {{"interactive", false}}}};
  if (plugin.provide_cluster_info) {
    info["spec"]["cluster"] = {{"server", access.server},
                               {"insecure-skip-tls-verify", access.insecure_skip_tls_verify}};
  }
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw Error("run exec credential plugin", plugin.command, describeErrno(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    throw Error("run exec credential plugin", plugin.command, describeErrno(errno));
  }
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    setenv("KUBERNETES_EXEC_INFO", info.dump().c_str(), 1);
    for (const auto& [key, value] : plugin.env) setenv(key.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(plugin.command.c_str()));
    for (const auto& arg : plugin.args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(out_pipe[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  close(out_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error("run exec credential plugin", plugin.command,
                WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                  : "killed by a signal");
  }
  nlohmann::json credential;
  try {
    credential = nlohmann::json::parse(output);
  } catch (const nlohmann::json::exception&) {
    throw Error("run exec credential plugin", plugin.command,
                "its output is not an ExecCredential JSON object");
  }
  if (credential.value("kind", "") != "ExecCredential" || !credential.contains("status")) {
    throw Error("run exec credential plugin", plugin.command,
                "its output has no ExecCredential status");
  }
  const auto& status_json = credential["status"];
  access.token = status_json.value("token", "");
  access.client_cert_pem = status_json.value("clientCertificateData", "");
  access.client_key_pem = status_json.value("clientKeyData", "");
  if (access.token.empty() && access.client_cert_pem.empty()) {
    throw Error("run exec credential plugin", plugin.command,
                "status has neither token nor clientCertificateData");
  }
}

}  // namespace kbatch::k8s
