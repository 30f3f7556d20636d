#pragma once
// A client for one registry speaking the OCI distribution API v2, over libcurl: manifests, blobs
// (HEAD, ranged GET), uploads (monolithic PUT or chunked PATCH, cross-repository mount) and
// bearer-token or basic authentication answering the registry's WWW-Authenticate challenge.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth.h"

namespace kbatch::image {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  ///< keys lower case; last value wins
  std::string body;                            ///< unless streamed to a sink
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// Whether plain HTTP may be used for `registry`: only when `--insecure` was given AND the host is
/// a loopback address or the site lists it as insecure (`site_list`, the policy's
/// site.insecure_registries).
/// Throws kbatch::Error when --insecure names a host the site does not allow.
bool allowPlainHttp(const std::string& registry, bool insecure_flag,
                    const std::vector<std::string>& site_list);

class RegistryClient {
 public:
  RegistryClient(std::string registry, bool plain_http, std::optional<Credentials> credentials);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const std::string& registry() const { return registry_; }

  /// GET a manifest by tag or digest. Throws kbatch::Error (exit 127 when the registry says it
  /// does not exist).
  HttpResponse getManifest(const std::string& repository, const std::string& reference);
  /// HEAD a blob: true when the repository has it.
  bool hasBlob(const std::string& repository, const std::string& digest);
  /// Streams a blob from byte `offset`: `restart` is called when the registry ignores the range
  /// and sends the blob from the start; `sink` receives the bytes.
  void downloadBlob(const std::string& repository, const std::string& digest, std::uint64_t offset,
                    const std::function<void()>& restart,
                    const std::function<void(const char*, size_t)>& sink);
  /// Starts an upload; with `mount_from` set, asks for a cross-repository mount first and sets
  /// `*mounted` when the registry did it (no upload needed). Returns the upload URL otherwise.
  std::string startUpload(const std::string& repository, const std::string& digest,
                          const std::string& mount_from, bool* mounted);
  /// Uploads `file` to an upload URL from startUpload: one PUT when smaller than `chunk_size`,
  /// else PATCH chunks then PUT. `progress` receives bytes sent so far.
  void uploadBlob(const std::string& repository, std::string upload_url,
                  const std::filesystem::path& file, const std::string& digest,
                  std::uint64_t chunk_size, const std::function<void(std::uint64_t)>& progress);
  /// PUT a manifest under `reference` (a tag or its digest); returns the registry's digest.
  std::string putManifest(const std::string& repository, const std::string& reference,
                          const std::string& body, const std::string& media_type);

 private:
  struct Request;
  HttpResponse perform(Request& request);
  HttpResponse performOnce(Request& request, const std::string& authorization);
  void loadTlsSettings();
  void authenticate(const HttpResponse& challenge_response, const Request& request);
  std::string authorizationFor(const Request& request) const;
  std::string absoluteUrl(const std::string& location) const;
  [[noreturn]] void failUnauthorized(const Request& request, const HttpResponse& response) const;
  [[noreturn]] void failResponse(const std::string& action, const std::string& object,
                                 const HttpResponse& response) const;

  std::string registry_;
  std::string base_url_;
  bool plain_http_;
  std::optional<Credentials> credentials_;
  void* curl_ = nullptr;
  bool use_basic_ = false;
  std::string tls_directory_;  // containers-certs.d directory in use, for messages
  std::string ca_bundle_;      // system CAs + the directory's *.crt; empty: libcurl's default
  std::string client_cert_, client_key_;
  std::map<std::string, std::string> tokens_;  // scope set -> bearer token
};

}  // namespace kbatch::image
