#pragma once
// Per-registry TLS settings from containers-certs.d(5), the directories podman, skopeo and
// buildah read: `<dir>/<host[:port]>/` holding CA certificates (*.crt) trusted in addition to the
// system's, and client certificate/key pairs (NAME.cert + NAME.key) for registries that ask for
// one. A site installs its registry's CA once in /etc/containers/certs.d and every tool agrees.

#include <filesystem>
#include <string>
#include <vector>

namespace kbatch::image {

struct RegistryTls {
  std::filesystem::path directory;     ///< the certs.d/<host> directory used; empty when none
  std::vector<std::filesystem::path> ca_files;  ///< *.crt, sorted
  std::filesystem::path client_cert;   ///< NAME.cert, with client_key; empty when none
  std::filesystem::path client_key;
};

/// The certs.d roots in the order containers-certs.d(5) consults them, highest priority first,
/// for a process of `uid` with `xdg_config_home` ($XDG_CONFIG_HOME, else $HOME/.config; empty
/// when neither is set).
std::vector<std::filesystem::path> certsDirectoryRoots(unsigned uid,
                                                       const std::filesystem::path& xdg_config_home);

/// The roots for this process, from its uid and environment.
std::vector<std::filesystem::path> certsDirectoryRoots();

/// The TLS settings for `registry` ("host[:port]", matched exactly as written in the reference):
/// the first root holding a directory of that name wins, as in containers/image.
/// Throws kbatch::Error when a client certificate has no key or a key no certificate.
RegistryTls findRegistryTls(const std::string& registry,
                            const std::vector<std::filesystem::path>& roots);

}  // namespace kbatch::image
