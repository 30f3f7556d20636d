#pragma once
/// A small REST client for the Kubernetes API: JSON requests with the retry rules the API
/// conventions ask for (429 + Retry-After, bounded backoff on 5xx and dropped connections), and
/// streams (watch, logs) handed chunk by chunk to the caller. An ApiClient is not thread-safe:
/// each thread uses its own (they share nothing but the ClusterAccess they were made from).

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "kbatch/common/error.h"
#include "kbatch/k8s/kubeconfig.h"

namespace kbatch::k8s {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  ///< absolute path with query, e.g. /api/v1/namespaces/ns/pods?watch=true
  std::string body;  ///< JSON; empty: none
};

struct HttpResponse {
  long status = 0;           ///< 0: no HTTP answer (see transport_error)
  std::string body;          ///< the body of a non-streamed answer or of an error answer
  std::string retry_after;   ///< the Retry-After header, if any
  std::string transport_error;  ///< why no (complete) answer arrived, e.g. "connection reset"
  bool cancelled = false;    ///< the cancel flag stopped the transfer
  /// TLS refused the server's certificate (or the client's): asking again cannot help.
  bool certificate_refused = false;
};

/// Receives a streamed body as it arrives; returns false to end the transfer early.
using DataSink = std::function<bool(std::string_view)>;

/// The HTTP seam: the real implementation uses libcurl; tests substitute a fake.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  /// Performs one request. With a sink, a 2xx body goes to the sink instead of the response.
  /// `cancel` (may be null) is polled while waiting; setting it ends the transfer promptly.
  virtual HttpResponse perform(const HttpRequest& request, const DataSink* sink,
                               const std::atomic<bool>* cancel) = 0;
};

/// libcurl with the cluster's TLS settings and credentials.
std::unique_ptr<HttpTransport> makeCurlTransport(const ClusterAccess& access);

/// Blocks every signal in the calling thread, for the helper threads of a Pod run (TLS warm-up,
/// digest pinning): the run's cancel signals (qdel's SIGTERM) must reach the thread that deletes
/// the Pod, never a helper, whose default action would end kbatch with the Pod left running.
void blockSignalsInThisThread();

/// Does libcurl's and OpenSSL's one-time set-up (configuration file, random generator, the
/// provider's algorithm tables: about 5 ms here) on a thread of its own, while the caller reads
/// the policy and the kubeconfig; the first connection then starts its handshake at once. Joins
/// that thread when destroyed. Only for processes that will talk to the API: the thread must not
/// exist where a process later needs to be single-threaded (unshare).
class TlsWarmup {
 public:
  TlsWarmup();
  ~TlsWarmup();
  TlsWarmup(const TlsWarmup&) = delete;
  TlsWarmup& operator=(const TlsWarmup&) = delete;

 private:
  std::thread thread_;
};

/// An error answer of the API server (or no answer at all: http_status 0).
class ApiError : public Error {
 public:
  ApiError(std::string object, std::string cause, std::string hint, int http_status,
           std::string reason);
  int httpStatus() const noexcept { return http_status_; }
  /// The Status object's reason (NotFound, AlreadyExists, Conflict, Expired, Forbidden, ...);
  /// kCertificateRefused when no answer came because TLS refused a certificate.
  const std::string& reason() const noexcept { return reason_; }
  static constexpr const char* kCertificateRefused = "CertificateRefused";

 private:
  int http_status_;
  std::string reason_;
};

/// Builds the one-line error for an error answer (Status object or otherwise).
ApiError apiErrorFromResponse(const HttpRequest& request, const HttpResponse& response,
                              int attempts);

struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds first_backoff{200};
  std::chrono::milliseconds max_retry_after{10000};
};

class ApiClient {
 public:
  explicit ApiClient(ClusterAccess access);
  ApiClient(ClusterAccess access, std::unique_ptr<HttpTransport> transport,
            RetryPolicy retry = {});

  nlohmann::json get(const std::string& path);
  nlohmann::json post(const std::string& path, const nlohmann::json& body);
  /// DELETE with a DeleteOptions body (preconditions, gracePeriodSeconds).
  nlohmann::json remove(const std::string& path, const nlohmann::json& options);

  enum class StreamEnd { kFinished, kCut, kCancelled };
  /// Streams a 2xx body into `sink`. Returns how the stream ended: kFinished (the server ended
  /// it), kCut (the connection broke midway), kCancelled. Throws ApiError for an error answer
  /// (after the same retries as other requests when no byte was streamed yet).
  StreamEnd stream(const std::string& path, const DataSink& sink,
                   const std::atomic<bool>* cancel);

  const ClusterAccess& access() const noexcept { return access_; }
  /// The cancel flag polled by ordinary (non-stream) requests too.
  void setCancelFlag(const std::atomic<bool>* cancel) noexcept { cancel_ = cancel; }

 private:
  HttpResponse performWithRetries(const HttpRequest& request, const DataSink* sink,
                                  const std::atomic<bool>* cancel, bool* streamed);
  nlohmann::json jsonCall(const HttpRequest& request);

  ClusterAccess access_;
  std::unique_ptr<HttpTransport> transport_;
  RetryPolicy retry_;
  const std::atomic<bool>* cancel_ = nullptr;
};

/// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view text);

}  // namespace kbatch::k8s
