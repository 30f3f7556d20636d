#include "registry_tls.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <system_error>

#include "kbatch/common/error.h"

namespace kbatch::image {

std::vector<std::filesystem::path> certsDirectoryRoots(unsigned uid,
                                                       const std::filesystem::path& xdg_config_home) {
  std::vector<std::filesystem::path> roots;
  if (!xdg_config_home.empty()) roots.push_back(xdg_config_home / "containers/certs.d");
  const std::string rootless_uid = std::to_string(uid);
  if (uid == 0) {
    roots.emplace_back("/etc/containers/certs.rootful.d");
  } else {
    roots.push_back(std::filesystem::path("/etc/containers/certs.rootless.d") / rootless_uid);
    roots.emplace_back("/etc/containers/certs.rootless.d");
  }
  roots.emplace_back("/etc/containers/certs.d");
  if (uid == 0) {
    roots.emplace_back("/usr/share/containers/certs.rootful.d");
  } else {
    roots.push_back(std::filesystem::path("/usr/share/containers/certs.rootless.d") / rootless_uid);
    roots.emplace_back("/usr/share/containers/certs.rootless.d");
  }
  roots.emplace_back("/usr/share/containers/certs.d");
  roots.emplace_back("/etc/docker/certs.d");
  return roots;
}

std::vector<std::filesystem::path> certsDirectoryRoots() {
  std::filesystem::path config;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg == '/') {
    config = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    config = std::filesystem::path(home) / ".config";
  }
  return certsDirectoryRoots(static_cast<unsigned>(::getuid()), config);
}

RegistryTls findRegistryTls(const std::string& registry,
                            const std::vector<std::filesystem::path>& roots) {
  RegistryTls tls;
  // A name with a slash or a dot-dot would leave the roots; references never carry one.
  if (registry.empty() || registry.find('/') != std::string::npos || registry == "." ||
      registry == "..") {
    return tls;
  }
  std::error_code error;
  for (const auto& root : roots) {
    if (std::filesystem::is_directory(root / registry, error)) {
      tls.directory = root / registry;
      break;
    }
  }
  if (tls.directory.empty()) return tls;

  std::map<std::string, std::filesystem::path> certs, keys;  // by file stem, to pair them
  std::filesystem::directory_iterator entries(tls.directory, error);
  if (error) {
    throw Error("read registry TLS settings", tls.directory.string(), error.message(),
                "make the directory readable, or remove it");
  }
  for (const auto& entry : entries) {
    const auto& path = entry.path();
    const std::string extension = path.extension().string();
    if (extension == ".crt") tls.ca_files.push_back(path);
    if (extension == ".cert") certs[path.stem().string()] = path;
    if (extension == ".key") keys[path.stem().string()] = path;
  }
  std::sort(tls.ca_files.begin(), tls.ca_files.end());
  for (const auto& [stem, cert] : certs) {
    if (!keys.count(stem)) {
      throw Error("read registry TLS settings", cert.string(),
                  "client certificate without its key " + stem + ".key",
                  "add the key beside it, or remove the certificate");
    }
  }
  for (const auto& [stem, key] : keys) {
    if (!certs.count(stem)) {
      throw Error("read registry TLS settings", key.string(),
                  "client key without its certificate " + stem + ".cert",
                  "add the certificate beside it, or remove the key");
    }
  }
  if (certs.size() > 1) {
    throw Error("read registry TLS settings", tls.directory.string(),
                std::to_string(certs.size()) + " client certificates; kbatch presents one",
                "keep one NAME.cert/NAME.key pair in the directory");
  }
  if (!certs.empty()) {
    tls.client_cert = certs.begin()->second;
    tls.client_key = keys.at(certs.begin()->first);
  }
  return tls;
}

}  // namespace kbatch::image
