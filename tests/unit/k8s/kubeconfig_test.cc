#include "kbatch/k8s/kubeconfig.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "kbatch/common/error.h"

namespace kbatch::k8s {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/kbatch-kubeconfig-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

const char* kConfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority: ca.pem
- name: prod-cluster
  cluster:
    server: https://prod:6443
    certificate-authority-data: LS0tLS1CRUdJTg==
users:
- name: alice
  user:
    tokenFile: token.txt
- name: bob
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
contexts:
- name: dev
  context: {cluster: dev-cluster, user: alice, namespace: jobs}
- name: prod
  context: {cluster: prod-cluster, user: bob}
)";

TEST(Kubeconfig, CurrentContextWithFilesRelativeToTheKubeconfig) {
  TempDir dir;
  dir.write("ca.pem", "CA PEM");
  const auto config = dir.write("config", kConfig);
  auto access = parseKubeconfigs({{config, kConfig}}, std::nullopt);
  EXPECT_EQ(access.server, "https://10.0.0.1:6443");
  EXPECT_EQ(access.ca_pem, "CA PEM");
  EXPECT_EQ(access.token_file, (dir.path() / "token.txt").string());
  EXPECT_EQ(access.namespace_name, "jobs");
}

TEST(Kubeconfig, ExplicitContextWithBase64Data) {
  auto access = parseKubeconfigs({{"/x/config", kConfig}}, std::string("prod"));
  EXPECT_EQ(access.server, "https://prod:6443");
  EXPECT_EQ(access.ca_pem, "-----BEGIN");
  EXPECT_EQ(access.client_cert_pem, "cert");
  EXPECT_EQ(access.client_key_pem, "key");
  EXPECT_TRUE(access.namespace_name.empty());
}

TEST(Kubeconfig, FirstFileWinsWhenMerging) {
  const std::string first = R"(current-context: other
contexts:
- name: dev
  context: {cluster: c1, user: u}
clusters:
- name: c1
  cluster: {server: "https://first:1"}
users:
- name: u
  user: {token: first-token}
)";
  auto access = parseKubeconfigs({{"/a", first}, {"/b", kConfig}}, std::string("dev"));
  EXPECT_EQ(access.server, "https://first:1");
  EXPECT_EQ(access.token, "first-token");
}

TEST(Kubeconfig, ErrorsNameTheFileAndField) {
  try {
    parseKubeconfigs({{"/etc/k.yaml", "contexts:\n- name: a\n  context: {cluster: nope}\n"}},
                     std::string("a"));
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.object(), "/etc/k.yaml");
    EXPECT_NE(error.cause().find("cluster 'nope' is not defined"), std::string::npos);
  }
  try {
    parseKubeconfigs({{"/etc/k.yaml", "a: [b\n"}}, std::nullopt);
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(error.object().find("/etc/k.yaml:"), std::string::npos);
  }
  EXPECT_THROW(parseKubeconfigs({{"/k", kConfig}}, std::string("missing")), Error);
}

TEST(Kubeconfig, ExecPluginTokenAndBadApiVersion) {
  TempDir dir;
  const auto plugin = dir.write(
      "plugin.sh",
      "#!/bin/sh\n"
      "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3;; esac\n"
      "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
      "\"status\":{\"token\":\"from-plugin-'\"$PLUGIN_ARG\"'\"}}'\n");
  fs::permissions(plugin, fs::perms::owner_all);
  const std::string config = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                             "clusters:\n- name: k\n  cluster: {server: 'https://k:1'}\n"
                             "users:\n- name: u\n  user:\n    exec:\n"
                             "      apiVersion: client.authentication.k8s.io/v1\n"
                             "      command: ./plugin.sh\n"
                             "      env: [{name: PLUGIN_ARG, value: x}]\n";
  const auto path = dir.write("config", config);
  auto access = parseKubeconfigs({{path, config}}, std::nullopt);
  ASSERT_TRUE(access.exec.has_value());
  EXPECT_EQ(access.exec->command, (dir.path() / "plugin.sh").string());
  runExecPlugin(access);
  EXPECT_EQ(access.token, "from-plugin-x");

  std::string bad = config;
  bad.replace(bad.find("k8s.io/v1\n"), 10, "k8s.io/v9\n");
  EXPECT_THROW(parseKubeconfigs({{path, bad}}, std::nullopt), Error);
}

TEST(Kubeconfig, InClusterServiceAccount) {
  TempDir dir;
  dir.write("token", "sa-token\n");
  dir.write("ca.crt", "SA CA");
  dir.write("namespace", "batch\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto access = inClusterAccess(dir.path());
  EXPECT_EQ(access.server, "https://10.96.0.1:443");
  EXPECT_EQ(access.ca_pem, "SA CA");
  EXPECT_EQ(access.namespace_name, "batch");
  EXPECT_EQ(access.token_file, (dir.path() / "token").string());
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_THROW(inClusterAccess(dir.path()), Error);
}

}  // namespace
}  // namespace kbatch::k8s
