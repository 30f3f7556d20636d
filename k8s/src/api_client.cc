// The Kubernetes REST client on libcurl.

#include "kbatch/k8s/api_client.h"

#include <curl/curl.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>

#include <cctype>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

#include "kbatch/common/log.h"

namespace kbatch::k8s {
namespace {

constexpr const char* kAction = "call the Kubernetes API";

void initialiseCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// TLS sessions and DNS answers shared by every client of the process: a job's Pod takes a few
/// connections (requests, watch, log, delete), and after the first full handshake the others
/// resume the TLS session instead of repeating it. Connections themselves are not shared: libcurl
/// does not support sharing them between concurrent threads.
class SharedCurlState {
 public:
  static CURLSH* get() {
    static SharedCurlState instance;
    return instance.share_;
  }

 private:
  SharedCurlState() {
    initialiseCurlOnce();
    share_ = curl_share_init();
    if (share_ == nullptr) return;  // each handle then keeps its own sessions
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &SharedCurlState::lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &SharedCurlState::unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  }
  // Never cleaned up: handles in other threads may still use it while the process exits.

  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<SharedCurlState*>(self)->mutexes_[index(data)].lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<SharedCurlState*>(self)->mutexes_[index(data)].unlock();
  }
  static std::size_t index(curl_lock_data data) {
    const auto value = static_cast<std::size_t>(data);
    return value < kLocks ? value : 0;
  }

  static constexpr std::size_t kLocks = CURL_LOCK_DATA_LAST;
  CURLSH* share_ = nullptr;
  std::mutex mutexes_[kLocks];
};

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  return text.substr(start);
}

/// The kubeconfig's CA certificates, parsed once per process into one X509 store that the TLS
/// contexts of all connections share. OpenSSL 3.0 takes about 0.8 ms here to parse a certificate,
/// and libcurl would parse the CA again for each connection (a job's Pod takes three). Returns
/// nullptr when the PEM holds no certificate: the caller then hands the PEM to libcurl, which
/// reports the problem in its own words.
X509_STORE* sharedCaStore(const std::string& pem) {
  static std::mutex mutex;
  static std::map<std::string, X509_STORE*>* stores = new std::map<std::string, X509_STORE*>;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = stores->find(pem);
  if (found != stores->end()) return found->second;
  X509_STORE* store = nullptr;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  STACK_OF(X509_INFO)* infos = bio != nullptr ? PEM_X509_INFO_read_bio(bio, nullptr, nullptr, nullptr)
                                              : nullptr;
  int added = 0;
  if (infos != nullptr && (store = X509_STORE_new()) != nullptr) {
    for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
      X509_INFO* info = sk_X509_INFO_value(infos, i);
      if (info->x509 != nullptr && X509_STORE_add_cert(store, info->x509) == 1) ++added;
    }
    // As libcurl sets up its own stores, and as kubectl treats every certificate of its pool as
    // a trust anchor (an intermediate CA in the kubeconfig included).
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_TRUSTED_FIRST);
  }
  if (infos != nullptr) sk_X509_INFO_pop_free(infos, X509_INFO_free);
  BIO_free(bio);
  if (added == 0) {
    X509_STORE_free(store);
    store = nullptr;
  }
  (*stores)[pem] = store;  // kept for the process's life: contexts on other threads share it
  return store;
}

CURLcode useSharedCaStore(CURL*, void* ssl_ctx, void* store) {
  SSL_CTX_set1_cert_store(static_cast<SSL_CTX*>(ssl_ctx), static_cast<X509_STORE*>(store));
  return CURLE_OK;
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(ClusterAccess access) : access_(std::move(access)) {
    initialiseCurlOnce();
    handle_ = curl_easy_init();
    if (handle_ == nullptr) throw Error(kAction, access_.server, "curl_easy_init failed");
  }
  ~CurlTransport() override { curl_easy_cleanup(handle_); }
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  HttpResponse perform(const HttpRequest& request, const DataSink* sink,
                       const std::atomic<bool>* cancel) override {
    CURL* curl = handle_;
    // Reset per-request options but keep the connection cache (keep-alive, TLS sessions).
    curl_easy_reset(curl);
    Transfer transfer{sink, cancel, {}, curl, false};
    const std::string url = access_.server + request.path;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    if (CURLSH* share = SharedCurlState::get()) curl_easy_setopt(curl, CURLOPT_SHARE, share);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    if (sink == nullptr) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!access_.ca_pem.empty()) {
      // The kubeconfig's CA is the only one trusted, as with kubectl: neither libcurl's CA bundle
      // nor its CA directory (/etc/ssl/certs on Debian), where every public CA would otherwise
      // vouch for the API server's name.
      curl_easy_setopt(curl, CURLOPT_CAINFO, nullptr);
      curl_easy_setopt(curl, CURLOPT_CAPATH, nullptr);
      X509_STORE* store = sharedCaStore(access_.ca_pem);
      if (store == nullptr || curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, store) != CURLE_OK ||
          curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, &useSharedCaStore) != CURLE_OK) {
        // A libcurl on another TLS library has no SSL_CTX hook: it parses the CA itself.
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, nullptr);
        curl_blob blob{const_cast<char*>(access_.ca_pem.data()), access_.ca_pem.size(),
                       CURL_BLOB_COPY};
        curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
      }
    }
    if (access_.insecure_skip_tls_verify) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!access_.client_cert_pem.empty()) {
      curl_blob cert{const_cast<char*>(access_.client_cert_pem.data()),
                     access_.client_cert_pem.size(), CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(access_.client_key_pem.data()),
                    access_.client_key_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
      curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
    }
    std::string userpwd;
    if (!access_.username.empty()) {
      userpwd = access_.username + ":" + access_.password;
      curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
    }
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "User-Agent: kbatch/" KBATCH_VERSION);
    std::string token = access_.token;
    if (!access_.token_file.empty()) {
      std::ifstream in(access_.token_file);
      std::stringstream text;
      text << in.rdbuf();
      token = trim(text.str());
    }
    std::string authorization;
    if (!token.empty()) {
      authorization = "Authorization: Bearer " + token;
      headers = curl_slist_append(headers, authorization.c_str());
    }
    if (!request.body.empty()) {
      headers = curl_slist_append(headers, "Content-Type: application/json");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    }
    if (request.method != "GET" && request.method != "POST") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    } else if (request.method == "POST" && request.body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &CurlTransport::onWrite);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &CurlTransport::onHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &CurlTransport::onProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);

    const CURLcode code = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    HttpResponse& response = transfer.response;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    if (code != CURLE_OK) {
      if (transfer.stopped_by_sink) {
        return response;  // the caller asked to end the stream
      }
      if (cancel != nullptr && cancel->load()) {
        response.cancelled = true;
        return response;
      }
      response.transport_error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
      response.certificate_refused =
          code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
          code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_ISSUER_ERROR;
      // An answer that broke off midway is not a complete answer.
      if (code != CURLE_OK && response.status != 0 && sink == nullptr) response.status = 0;
    }
    return response;
  }

 private:
  struct Transfer {
    const DataSink* sink;
    const std::atomic<bool>* cancel;
    HttpResponse response;
    CURL* curl;
    bool stopped_by_sink;
  };

  static size_t onWrite(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    long status = 0;
    curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
    if (transfer->sink != nullptr && status >= 200 && status < 300) {
      if (!(*transfer->sink)(std::string_view(data, bytes))) {
        transfer->stopped_by_sink = true;
        return 0;  // makes curl end the transfer with CURLE_WRITE_ERROR
      }
      return bytes;
    }
    transfer->response.body.append(data, bytes);
    return bytes;
  }

  static size_t onHeader(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    std::string line(data, size * count);
    constexpr std::string_view kRetryAfter = "retry-after:";
    if (line.size() > kRetryAfter.size()) {
      std::string lower = line.substr(0, kRetryAfter.size());
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == kRetryAfter) transfer->response.retry_after = trim(line.substr(kRetryAfter.size()));
    }
    return size * count;
  }

  static int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* transfer = static_cast<Transfer*>(user);
    return transfer->cancel != nullptr && transfer->cancel->load() ? 1 : 0;
  }

  ClusterAccess access_;
  CURL* handle_;
};

bool isRetryableStatus(long status) {
  return status == 0 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

std::string describeRequest(const HttpRequest& request) {
  std::string path = request.path;
  return request.method + " " + path;
}

}  // namespace

void blockSignalsInThisThread() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

TlsWarmup::TlsWarmup() {
  try {
    thread_ = std::thread([] {
      blockSignalsInThisThread();
      initialiseCurlOnce();
      // Seeds the random generator, which fetches its algorithms and so fills OpenSSL's method
      // store; a context then fetches the TLS ciphers, signature algorithms and groups. Both
      // results are process-wide and kept for curl's own contexts.
      RAND_status();
      SSL_CTX_free(SSL_CTX_new(TLS_client_method()));
    });
  } catch (const std::system_error&) {
    // No thread: the first connection does the set-up itself, as it would anyway.
  }
}

TlsWarmup::~TlsWarmup() {
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<HttpTransport> makeCurlTransport(const ClusterAccess& access) {
  if (!access.tls_server_name.empty()) {
    throw Error("load Kubernetes credentials", access.origin,
                "clusters[].cluster.tls-server-name is not supported by kbatch",
                "name the server by a host name its certificate holds");
  }
  return std::make_unique<CurlTransport>(access);
}

ApiError::ApiError(std::string object, std::string cause, std::string hint, int http_status,
                   std::string reason)
    : Error(kAction, std::move(object), std::move(cause), std::move(hint)),
      http_status_(http_status),
      reason_(std::move(reason)) {}

ApiError apiErrorFromResponse(const HttpRequest& request, const HttpResponse& response,
                              int attempts) {
  const std::string object = describeRequest(request);
  const std::string tries =
      attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : std::string();
  if (response.certificate_refused) {
    return ApiError(object, "TLS refused a certificate: " + response.transport_error,
                    "the API server's certificate must be signed by the kubeconfig's "
                    "certificate-authority and name the server's host, as kubectl requires",
                    0, ApiError::kCertificateRefused);
  }
  if (response.status == 0) {
    return ApiError(object, "no answer from the API server: " + response.transport_error + tries,
                    "check that the server in the kubeconfig is reachable from this host", 0,
                    "");
  }
  std::string message;
  std::string reason;
  std::string field;
  try {
    auto status = nlohmann::json::parse(response.body);
    if (status.is_object() && status.value("kind", "") == "Status") {
      message = status.value("message", "");
      reason = status.value("reason", "");
      if (status.contains("details") && status["details"].contains("causes")) {
        for (const auto& cause : status["details"]["causes"]) {
          if (cause.contains("field")) {
            field = cause["field"].get<std::string>();
            break;
          }
        }
      }
    }
  } catch (const nlohmann::json::exception&) {
  }
  if (message.empty()) {
    message = response.body.substr(0, 200);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
    for (auto& c : message) {
      if (c == '\n') c = ' ';
    }
  }
  const int code = static_cast<int>(response.status);
  std::string hint;
  std::string cause = std::to_string(code) + " " + (reason.empty() ? "error" : reason) + ": " +
                      message;
  switch (code) {
    case 401:
      cause = "401 Unauthorized: the API server rejected the credentials";
      if (!message.empty() && message != "Unauthorized") cause += " (" + message + ")";
      hint = "the token or certificate of the kubeconfig user is wrong or expired";
      break;
    case 403:
      hint = "ask the cluster admin for a Role that allows this in the namespace";
      break;
    case 422:
      if (!field.empty() && message.find(field) == std::string::npos) {
        cause += " (field " + field + ")";
      }
      hint = "the Pod manifest was refused; `kbatch manifest` shows it";
      break;
    case 429:
      cause += tries;
      hint = "the API server is rate-limiting this client";
      break;
    default:
      if (code >= 500) cause += tries;
      break;
  }
  return ApiError(object, cause, hint, code, reason);
}

ApiClient::ApiClient(ClusterAccess access) : ApiClient(std::move(access), nullptr) {}

ApiClient::ApiClient(ClusterAccess access, std::unique_ptr<HttpTransport> transport,
                     RetryPolicy retry)
    : access_(std::move(access)), transport_(std::move(transport)), retry_(retry) {
  if (!transport_) {
    if (access_.exec && access_.token.empty() && access_.client_cert_pem.empty()) {
      runExecPlugin(access_);
    }
    transport_ = makeCurlTransport(access_);
  }
}

HttpResponse ApiClient::performWithRetries(const HttpRequest& request, const DataSink* sink,
                                           const std::atomic<bool>* cancel, bool* streamed) {
  bool refreshed_credentials = false;
  std::chrono::milliseconds backoff = retry_.first_backoff;
  for (int attempt = 1;; ++attempt) {
    bool got_data = false;
    DataSink counting;
    if (sink != nullptr) {
      counting = [&](std::string_view data) {
        got_data = true;
        return (*sink)(data);
      };
    }
    const auto started = std::chrono::steady_clock::now();
    HttpResponse response = transport_->perform(request, sink ? &counting : nullptr, cancel);
    log::debug("k8s: {} {}: {} after {:.1f} ms", request.method, request.path, response.status,
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count());
    if (streamed != nullptr) *streamed = got_data;
    if (response.cancelled || got_data) return response;
    if (response.status >= 200 && response.status < 300) return response;
    if (response.status == 401 && access_.exec && !refreshed_credentials) {
      // The plugin's credential may have expired: fetch a new one once.
      refreshed_credentials = true;
      runExecPlugin(access_);
      transport_ = makeCurlTransport(access_);
      continue;
    }
    if (!isRetryableStatus(response.status) || response.certificate_refused ||
        attempt >= retry_.max_attempts) {
      throw apiErrorFromResponse(request, response, attempt);
    }
    std::chrono::milliseconds wait = backoff;
    if (response.status == 429 && !response.retry_after.empty()) {
      try {
        wait = std::chrono::seconds(std::stoi(response.retry_after));
      } catch (const std::exception&) {
      }
      if (wait > retry_.max_retry_after) wait = retry_.max_retry_after;
    } else {
      backoff *= 2;
    }
    log::debug("k8s: {} {} answered {}{}; retrying in {} ms", request.method, request.path,
               response.status, response.transport_error.empty() ? "" : " (" + response.transport_error + ")",
               wait.count());
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      if (cancel != nullptr && cancel->load()) {
        response.cancelled = true;
        return response;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

nlohmann::json ApiClient::jsonCall(const HttpRequest& request) {
  HttpResponse response = performWithRetries(request, nullptr, cancel_, nullptr);
  if (response.cancelled) {
    throw ApiError(describeRequest(request), "cancelled", "", 0, "Cancelled");
  }
  try {
    return nlohmann::json::parse(response.body);
  } catch (const nlohmann::json::exception& error) {
    throw ApiError(describeRequest(request),
                   "the answer is not JSON: " + std::string(error.what()), "", 0, "");
  }
}

nlohmann::json ApiClient::get(const std::string& path) { return jsonCall({"GET", path, {}}); }

nlohmann::json ApiClient::post(const std::string& path, const nlohmann::json& body) {
  return jsonCall({"POST", path, body.dump()});
}

nlohmann::json ApiClient::remove(const std::string& path, const nlohmann::json& options) {
  return jsonCall({"DELETE", path, options.dump()});
}

ApiClient::StreamEnd ApiClient::stream(const std::string& path, const DataSink& sink,
                                       const std::atomic<bool>* cancel) {
  HttpRequest request{"GET", path, {}};
  bool streamed = false;
  HttpResponse response = performWithRetries(request, &sink, cancel, &streamed);
  if (response.cancelled) return StreamEnd::kCancelled;
  if (!response.transport_error.empty()) {
    if (streamed || (response.status >= 200 && response.status < 300)) return StreamEnd::kCut;
    throw apiErrorFromResponse(request, response, 1);
  }
  return StreamEnd::kFinished;
}

std::string urlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace kbatch::k8s
