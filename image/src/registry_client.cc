#include "registry_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "manifest.h"
#include "registry_tls.h"

namespace kbatch::image {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxErrorBodyBytes = 64 << 10;

CURL* handle(void* curl) { return static_cast<CURL*>(curl); }

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string urlEscape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  return out;
}

// Scopes as a token request's `scope` form field and messages write them: space-separated.
std::string joinScopes(const std::vector<std::string>& scopes) {
  std::string joined;
  for (const auto& scope : scopes) joined += (joined.empty() ? "" : " ") + scope;
  return joined;
}

std::string withQuery(const std::string& url, const std::string& parameter) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + parameter;
}

// libcurl is initialised once per process, before any thread could race on it.
void ensureCurlInitialised() {
  static const bool initialised = [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
      throw Error("initialise libcurl", "", "curl_global_init failed");
    }
    return true;
  }();
  (void)initialised;
}

}  // namespace

namespace {

/// The host part of "host[:port]" or "[v6]:port".
std::string registryHost(const std::string& registry) {
  if (!registry.empty() && registry.front() == '[') {
    const auto close = registry.find(']');
    return close == std::string::npos ? registry : registry.substr(1, close - 1);
  }
  return registry.substr(0, registry.find(':'));
}

/// Loopback registries never leave the machine, so plain HTTP exposes nothing on the network
/// (Docker marks 127.0.0.0/8 insecure by default for the same reason). curl resolves "localhost"
/// itself to the loopback address, without DNS or /etc/hosts.
bool isLoopbackRegistry(const std::string& registry) {
  const std::string host = registryHost(registry);
  if (host == "localhost" || host == "::1") return true;
  in_addr address{};
  return ::inet_pton(AF_INET, host.c_str(), &address) == 1 &&
         (ntohl(address.s_addr) >> 24) == 127;
}

}  // namespace

bool plainHttpPermitted(const std::string& registry, const std::vector<std::string>& site_list) {
  return isLoopbackRegistry(registry) ||
         std::find(site_list.begin(), site_list.end(), registry) != site_list.end();
}

bool choosePlainHttp(const std::string& registry, const std::vector<std::string>& site_list) {
  if (!plainHttpPermitted(registry, site_list)) return false;
  ensureCurlInitialised();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return true;
  const std::string url = "https://" + registry + "/v2/";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);  // TCP and the TLS handshake, no request
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  // An untrusted certificate still means TLS (the pull then reports it, with the certs.d hint);
  // only a server that cannot complete a handshake at all is spoken to in plain HTTP.
  const bool speaks_tls = code == CURLE_OK || code == CURLE_PEER_FAILED_VERIFICATION;
  log::debug("registry {}: {}", registry,
             speaks_tls ? "answers TLS, so TLS it is" : "no TLS handshake, plain HTTP");
  return !speaks_tls;
}

bool allowPlainHttp(const std::string& registry, bool insecure_flag,
                    const std::vector<std::string>& site_list) {
  if (!insecure_flag) return false;
  if (plainHttpPermitted(registry, site_list)) return true;
  throw Error("use plain HTTP for registry", registry,
              "--insecure is only honoured for loopback registries and the hosts in the site "
              "policy's site.insecure_registries",
              "ask the administrator to list the host, or use TLS");
}

struct RegistryClient::Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::vector<std::string> scopes;  // token scopes this request needs
  const std::string* body = nullptr;
  int body_fd = -1;
  std::uint64_t body_offset = 0;
  std::uint64_t body_length = 0;
  std::function<void(long, const char*, size_t)> sink;  // receives the body of a 2xx answer
  std::function<void(std::uint64_t)> upload_progress;
  size_t max_body = kMaxErrorBodyBytes;
  bool follow_redirects = true;
};

namespace {

struct TransferState {
  HttpResponse* response;
  const std::function<void(long, const char*, size_t)>* sink;
  size_t max_body;
  std::exception_ptr failure;
  // Upload source.
  const std::string* body;
  int body_fd;
  std::uint64_t body_offset;
  std::uint64_t body_length;
  std::uint64_t sent = 0;
  const std::function<void(std::uint64_t)>* upload_progress;
  bool body_too_large = false;
};

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  std::string line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a redirect or 100 Continue) starts over.
    state->response->headers.clear();
    auto space = line.find(' ');
    state->response->status = space == std::string::npos ? 0 : std::atol(line.c_str() + space + 1);
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    state->response->headers[lower(line.substr(0, colon))] = value;
  }
  return size * count;
}

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  size_t bytes = size * count;
  long status = state->response->status;
  if (state->sink != nullptr && *state->sink && status >= 200 && status < 300) {
    try {
      (*state->sink)(status, data, bytes);
    } catch (...) {
      state->failure = std::current_exception();
      return 0;  // aborts the transfer
    }
    return bytes;
  }
  if (state->response->body.size() + bytes > state->max_body) {
    state->body_too_large = true;
    return 0;
  }
  state->response->body.append(data, bytes);
  return bytes;
}

size_t onRead(char* buffer, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  std::uint64_t left = state->body_length - state->sent;
  size_t want = static_cast<size_t>(std::min<std::uint64_t>(left, size * count));
  if (want == 0) return 0;
  if (state->body != nullptr) {
    std::copy_n(state->body->data() + state->sent, want, buffer);
  } else {
    ssize_t got = ::pread(state->body_fd, buffer, want,
                          static_cast<off_t>(state->body_offset + state->sent));
    if (got <= 0) return CURL_READFUNC_ABORT;
    want = static_cast<size_t>(got);
  }
  state->sent += want;
  if (state->upload_progress != nullptr && *state->upload_progress) {
    (*state->upload_progress)(state->sent);
  }
  return want;
}

}  // namespace

RegistryClient::RegistryClient(std::string registry, bool plain_http,
                               std::optional<Credentials> credentials)
    : registry_(std::move(registry)),
      base_url_((plain_http ? "http://" : "https://") + registry_),
      plain_http_(plain_http),
      credentials_(std::move(credentials)) {
  ensureCurlInitialised();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw Error("connect to registry", registry_, "curl_easy_init failed");
  if (!plain_http_) loadTlsSettings();
}

void RegistryClient::loadTlsSettings() {
  RegistryTls tls = findRegistryTls(registry_, certsDirectoryRoots());
  tls_directory_ = tls.directory.string();
  client_cert_ = tls.client_cert.string();
  client_key_ = tls.client_key.string();
  if (!tls.directory.empty()) log::debug("registry {}: TLS settings from {}", registry_, tls_directory_);
  if (tls.ca_files.empty()) return;
  // The site's CAs are trusted in addition to the system's, as containers/image does; a CA blob
  // replaces libcurl's default bundle, so the bundle goes first.
  const char* system_bundle = nullptr;
  curl_easy_getinfo(handle(curl_), CURLINFO_CAINFO, &system_bundle);
  std::error_code error;
  if (system_bundle != nullptr && std::filesystem::is_regular_file(system_bundle, error)) {
    ca_bundle_ = readFileLimited(system_bundle, 64 << 20);
  }
  for (const auto& file : tls.ca_files) {
    if (!ca_bundle_.empty() && ca_bundle_.back() != '\n') ca_bundle_ += '\n';
    ca_bundle_ += readFileLimited(file, 1 << 20);
  }
}

RegistryClient::~RegistryClient() {
  if (curl_ != nullptr) curl_easy_cleanup(handle(curl_));
}

std::string RegistryClient::absoluteUrl(const std::string& location) const {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  if (!location.empty() && location.front() == '/') return base_url_ + location;
  return base_url_ + "/" + location;
}

std::string RegistryClient::authorizationFor(const Request& request) const {
  std::string scope_key;
  for (const auto& scope : request.scopes) scope_key += scope + " ";
  if (auto it = tokens_.find(scope_key); it != tokens_.end()) return "Bearer " + it->second;
  if (use_basic_ && credentials_) {
    return "Basic " + base64Encode(credentials_->username + ":" + credentials_->password);
  }
  return {};
}

HttpResponse RegistryClient::performOnce(Request& request, const std::string& authorization) {
  CURL* curl = handle(curl_);
  // Reset keeps the connection cache, so successive requests reuse the TLS connection.
  curl_easy_reset(curl);
  HttpResponse response;
  TransferState state{&response, &request.sink, request.max_body, nullptr, request.body,
                      request.body_fd, request.body_offset, request.body_length, 0,
                      &request.upload_progress};
  curl_slist* headers = nullptr;
  for (const auto& header : request.headers) headers = curl_slist_append(headers, header.c_str());
  if (!authorization.empty()) {
    headers = curl_slist_append(headers, ("Authorization: " + authorization).c_str());
  }
  // No "Expect: 100-continue" round trip before uploads.
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kbatch/" KBATCH_VERSION);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  // Redirects (to blob storage) may only go to http(s), and plain http only for insecure hosts.
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, plain_http_ ? "http,https" : "https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, plain_http_ ? "http,https" : "https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 KiB/s for a minute) fails instead of hanging a job forever.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_blob ca_blob{ca_bundle_.data(), ca_bundle_.size(), CURL_BLOB_NOCOPY};
  if (!ca_bundle_.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca_blob);
  if (!client_cert_.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, client_cert_.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, client_key_.c_str());
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST" && request.body == nullptr && request.body_fd < 0) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  } else if (request.method != "GET") {
    if (request.body != nullptr || request.body_fd >= 0) {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, onRead);
      curl_easy_setopt(curl, CURLOPT_READDATA, &state);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(request.body_length));
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (state.failure) std::rethrow_exception(state.failure);
  if (state.body_too_large) {
    throw Error("read answer from registry", request.url,
                "the answer is larger than " + std::to_string(request.max_body) + " bytes");
  }
  if (code != CURLE_OK) {
    std::string detail = error_text[0] != '\0' ? error_text : curl_easy_strerror(code);
    std::string hint;
    if (code == CURLE_UNSUPPORTED_PROTOCOL) {
      hint = "plain HTTP needs --insecure and the host in the site's insecure registries";
    } else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CONNECT_ERROR) {
      hint = tls_directory_.empty()
                 ? "the registry's TLS certificate was not accepted; if a site CA signed it, put "
                   "the CA in /etc/containers/certs.d/" + registry_ + "/ca.crt (or "
                   "~/.config/containers/certs.d/" + registry_ + "/ca.crt)"
                 : "the registry's TLS certificate was not accepted with the settings in " +
                       tls_directory_;
    } else if (!plain_http_ && client_cert_.empty() &&
               (code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR)) {
      // Under TLS 1.3 a server that wants a client certificate drops the connection after the
      // handshake, so the refusal surfaces as a send or receive failure.
      hint = "if the registry wants a client certificate, put NAME.cert and NAME.key in "
             "~/.config/containers/certs.d/" + registry_ + "/ (or /etc/containers/certs.d/" +
             registry_ + "/)";
    } else if (code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CACERT_BADFILE) {
      hint = "check the certificates in " +
             (tls_directory_.empty() ? std::string("the system CA bundle") : tls_directory_);
    }
    throw Error(request.method + " " + request.url, "", detail, hint);
  }
  return response;
}

HttpResponse RegistryClient::perform(Request& request) {
  HttpResponse response = performOnce(request, authorizationFor(request));
  if (response.status == 401) {
    authenticate(response, request);
    response = performOnce(request, authorizationFor(request));
    if (response.status == 401) failUnauthorized(request, response);
  }
  return response;
}

void RegistryClient::authenticate(const HttpResponse& challenge_response, const Request& request) {
  std::string header = challenge_response.header("www-authenticate");
  if (header.empty()) failResponse("authenticate to registry", registry_, challenge_response);
  AuthChallenge challenge = parseAuthChallenge(header);
  if (challenge.scheme == "basic") {
    if (!credentials_) {
      throw Error("authenticate to registry", registry_, "the registry asks for a user name and password",
                  "add an entry for " + registry_ + " to " + authFilePath().string() +
                      " (or $REGISTRY_AUTH_FILE)");
    }
    use_basic_ = true;
    return;
  }
  if (challenge.scheme != "bearer") {
    throw Error("authenticate to registry", registry_,
                "unsupported authentication scheme '" + challenge.scheme + "'");
  }
  std::string realm = challenge.parameters["realm"];
  if (realm.empty()) throw Error("authenticate to registry", registry_, "bearer challenge without realm");
  if (realm.rfind("https://", 0) != 0 && !(plain_http_ && realm.rfind("http://", 0) == 0)) {
    throw Error("authenticate to registry", registry_,
                "token realm '" + realm + "' is not an https URL");
  }
  std::vector<std::string> scopes = request.scopes;
  if (scopes.empty()) {
    if (auto scope = challenge.parameters.find("scope"); scope != challenge.parameters.end()) {
      scopes.push_back(scope->second);
    }
  }
  const auto service = challenge.parameters.find("service");
  Request token_request;
  std::string authorization;
  std::string form;
  if (credentials_ && !credentials_->identity_token.empty()) {
    // An identity token (what `docker login` stores instead of a password when the token server
    // offers one) is an OAuth2 refresh token: exchanged by POST (distribution's spec/auth/oauth).
    form = "grant_type=refresh_token&client_id=kbatch&refresh_token=" +
           urlEscape(credentials_->identity_token) + "&scope=" + urlEscape(joinScopes(scopes));
    if (service != challenge.parameters.end()) form += "&service=" + urlEscape(service->second);
    token_request.method = "POST";
    token_request.url = realm;
    token_request.body = &form;
    token_request.body_length = form.size();
    token_request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    std::string url = realm;
    if (service != challenge.parameters.end()) {
      url = withQuery(url, "service=" + urlEscape(service->second));
    }
    for (const auto& scope : scopes) url = withQuery(url, "scope=" + urlEscape(scope));
    token_request.url = url;
    if (credentials_) {
      authorization = "Basic " + base64Encode(credentials_->username + ":" + credentials_->password);
    }
  }
  HttpResponse answer = performOnce(token_request, authorization);
  if (answer.status != 200) failResponse("get a registry token from", realm, answer);
  auto document = nlohmann::json::parse(answer.body, nullptr, false);
  std::string token;
  if (document.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (auto it = document.find(key); it != document.end() && it->is_string()) {
        token = it->get<std::string>();
        break;
      }
    }
  }
  if (token.empty()) {
    throw Error("get a registry token from", realm, "the answer has no 'token' or 'access_token' field");
  }
  std::string scope_key;
  for (const auto& scope : request.scopes) scope_key += scope + " ";
  tokens_[scope_key] = token;
}

void RegistryClient::failUnauthorized(const Request& request, const HttpResponse& response) const {
  const std::string scopes = joinScopes(request.scopes);
  std::string header = response.header("www-authenticate");
  bool insufficient_scope = header.find("insufficient_scope") != std::string::npos;
  if (!insufficient_scope || scopes.empty()) failResponse("authenticate to registry", registry_, response);
  // The token server answered but granted less than the request needs: say what was asked, as
  // whom, and where the credentials come from.
  const std::string file = authFilePath().string();
  std::string cause = credentials_ ? "the token for user '" + credentials_->username + "' does not grant " + scopes
                                   : "anonymous access does not grant " + scopes;
  std::string hint = credentials_ ? "ask the registry's administrators for access to the repository"
                                  : "add credentials for " + registry_ + " to " + file +
                                        " (or $REGISTRY_AUTH_FILE)";
  throw Error("authenticate to registry", registry_, cause, hint);
}

void RegistryClient::failResponse(const std::string& action, const std::string& object,
                                  const HttpResponse& response) const {
  std::string cause = "HTTP " + std::to_string(response.status);
  // Registries explain errors as {"errors":[{"code":..., "message":...}]}.
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (document.is_object() && document.contains("errors") && document["errors"].is_array()) {
    for (const auto& item : document["errors"]) {
      if (!item.is_object()) continue;
      cause += " " + item.value("code", std::string()) + ": " + item.value("message", std::string());
    }
  }
  int exit_code = response.status == 404 ? exit_code::kNotFound : exit_code::kKbatchError;
  std::string hint;
  if (response.status == 401 || response.status == 403) {
    hint = "check the credentials for " + registry_ + " in " + authFilePath().string();
  }
  throw Error(action, object, cause, hint, exit_code);
}

HttpResponse RegistryClient::getManifest(const std::string& repository, const std::string& reference) {
  Request request;
  request.url = base_url_ + "/v2/" + repository + "/manifests/" + reference;
  request.headers.push_back("Accept: " + manifestAcceptHeader());
  request.scopes.push_back("repository:" + repository + ":pull");
  request.max_body = kMaxManifestBytes;
  HttpResponse response = perform(request);
  if (response.status != 200) {
    failResponse("get manifest", registry_ + "/" + repository + ":" + reference, response);
  }
  return response;
}

bool RegistryClient::hasBlob(const std::string& repository, const std::string& digest) {
  Request request;
  request.method = "HEAD";
  request.url = base_url_ + "/v2/" + repository + "/blobs/" + digest;
  request.scopes.push_back("repository:" + repository + ":pull,push");
  HttpResponse response = perform(request);
  if (response.status == 200) return true;
  if (response.status == 404) return false;
  failResponse("check blob", registry_ + "/" + repository + "@" + digest, response);
}

void RegistryClient::downloadBlob(const std::string& repository, const std::string& digest,
                                  std::uint64_t offset, const std::function<void()>& restart,
                                  const std::function<void(const char*, size_t)>& sink) {
  Request request;
  request.url = base_url_ + "/v2/" + repository + "/blobs/" + digest;
  request.scopes.push_back("repository:" + repository + ":pull");
  if (offset > 0) request.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
  bool decided = false;
  request.sink = [&](long status, const char* data, size_t size) {
    if (!decided) {
      decided = true;
      // 200 instead of 206: the registry ignored the range and sends everything again.
      if (offset > 0 && status != 206) restart();
    }
    sink(data, size);
  };
  HttpResponse response = perform(request);
  if (response.status == 416 && offset > 0) {
    // The range starts at or past the end: what we have is not a prefix of this blob.
    restart();
    downloadBlob(repository, digest, 0, restart, sink);
    return;
  }
  if (response.status != 200 && response.status != 206) {
    failResponse("download blob", registry_ + "/" + repository + "@" + digest, response);
  }
}

std::string RegistryClient::startUpload(const std::string& repository, const std::string& digest,
                                        const std::string& mount_from, bool* mounted) {
  *mounted = false;
  Request request;
  request.method = "POST";
  request.url = base_url_ + "/v2/" + repository + "/blobs/uploads/";
  request.scopes.push_back("repository:" + repository + ":pull,push");
  if (!mount_from.empty()) {
    request.url += "?mount=" + urlEscape(digest) + "&from=" + urlEscape(mount_from);
    request.scopes.push_back("repository:" + mount_from + ":pull");
  }
  HttpResponse response = perform(request);
  // 201: mounted; 202: the registry declined the mount (or none was asked) and opened an upload.
  if (response.status == 201 && !mount_from.empty()) {
    *mounted = true;
    return {};
  }
  if (response.status != 202) {
    failResponse("start blob upload to", registry_ + "/" + repository, response);
  }
  std::string location = response.header("location");
  if (location.empty()) {
    throw Error("start blob upload to", registry_ + "/" + repository,
                "the registry answered 202 without a Location header");
  }
  return absoluteUrl(location);
}

void RegistryClient::uploadBlob(const std::string& repository, std::string upload_url,
                                const std::filesystem::path& file, const std::string& digest,
                                std::uint64_t chunk_size,
                                const std::function<void(std::uint64_t)>& progress) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error("read blob", file.string(), describeErrno(errno));
  struct stat st {};
  ::fstat(fd.get(), &st);
  auto size = static_cast<std::uint64_t>(st.st_size);
  std::string object = registry_ + "/" + repository + "@" + digest;
  std::uint64_t offset = 0;
  if (size > chunk_size) {
    // Chunked upload: PATCH with Content-Range, following the Location the registry returns.
    while (offset < size) {
      std::uint64_t length = std::min(chunk_size, size - offset);
      Request patch;
      patch.method = "PATCH";
      patch.url = upload_url;
      patch.scopes.push_back("repository:" + repository + ":pull,push");
      patch.body_fd = fd.get();
      patch.body_offset = offset;
      patch.body_length = length;
      patch.headers.push_back("Content-Type: application/octet-stream");
      patch.headers.push_back("Content-Range: " + std::to_string(offset) + "-" +
                              std::to_string(offset + length - 1));
      std::uint64_t base = offset;
      patch.upload_progress = [&, base](std::uint64_t sent) { if (progress) progress(base + sent); };
      HttpResponse response = perform(patch);
      if (response.status != 202) failResponse("upload blob chunk", object, response);
      if (auto location = response.header("location"); !location.empty()) {
        upload_url = absoluteUrl(location);
      }
      offset += length;
    }
  }
  Request put;
  put.method = "PUT";
  put.url = withQuery(upload_url, "digest=" + urlEscape(digest));
  put.scopes.push_back("repository:" + repository + ":pull,push");
  put.headers.push_back("Content-Type: application/octet-stream");
  put.body_fd = fd.get();
  put.body_offset = offset;
  put.body_length = size - offset;
  put.upload_progress = [&](std::uint64_t sent) { if (progress) progress(offset + sent); };
  HttpResponse response = perform(put);
  if (response.status != 201) failResponse("upload blob", object, response);
}

std::string RegistryClient::putManifest(const std::string& repository, const std::string& reference,
                                        const std::string& body, const std::string& media_type) {
  Request request;
  request.method = "PUT";
  request.url = base_url_ + "/v2/" + repository + "/manifests/" + reference;
  request.scopes.push_back("repository:" + repository + ":pull,push");
  request.headers.push_back("Content-Type: " + media_type);
  request.body = &body;
  request.body_length = body.size();
  HttpResponse response = perform(request);
  if (response.status != 201 && response.status != 200) {
    failResponse("put manifest", registry_ + "/" + repository + ":" + reference, response);
  }
  return response.header("docker-content-digest");
}

}  // namespace kbatch::image
