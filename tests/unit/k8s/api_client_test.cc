#include "kbatch/k8s/api_client.h"

#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <deque>
#include <filesystem>

namespace kbatch::k8s {
namespace {

/// Answers from a script, and records what was asked.
class ScriptedTransport final : public HttpTransport {
 public:
  explicit ScriptedTransport(std::deque<HttpResponse> answers) : answers_(std::move(answers)) {}
  HttpResponse perform(const HttpRequest& request, const DataSink* sink,
                       const std::atomic<bool>*) override {
    requests.push_back(request);
    HttpResponse answer = answers_.front();
    answers_.pop_front();
    if (sink != nullptr && answer.status >= 200 && answer.status < 300) {
      (*sink)(answer.body);
      answer.body.clear();
    }
    return answer;
  }
  std::vector<HttpRequest> requests;

 private:
  std::deque<HttpResponse> answers_;
};

std::string status(int code, const std::string& reason, const std::string& message,
                   const std::string& details = "{}") {
  return R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":)" + std::to_string(code) +
         R"(,"reason":")" + reason + R"(","message":")" + message + R"(","details":)" + details + "}";
}

ApiClient clientWith(std::deque<HttpResponse> answers, ScriptedTransport** out) {
  auto transport = std::make_unique<ScriptedTransport>(std::move(answers));
  *out = transport.get();
  RetryPolicy fast;
  fast.first_backoff = std::chrono::milliseconds(1);
  fast.max_retry_after = std::chrono::milliseconds(5);
  return ApiClient(ClusterAccess{}, std::move(transport), fast);
}

TEST(ApiClient, RetriesServerErrorsThenSucceeds) {
  ScriptedTransport* transport;
  auto client = clientWith({{503, "unavailable", "", "", false},
                            {0, "", "", "Connection refused", false},
                            {200, R"({"ok":true})", "", "", false}},
                           &transport);
  EXPECT_EQ(client.get("/api/v1/pods")["ok"], true);
  EXPECT_EQ(transport->requests.size(), 3u);
}

TEST(ApiClient, ARefusedCertificateIsNotRetried) {
  ScriptedTransport* transport;
  HttpResponse refused{0, "", "", "SSL certificate problem: self-signed certificate in chain",
                       false, true};
  auto client = clientWith({refused, refused, refused}, &transport);
  try {
    client.get("/api/v1/nodes");
    FAIL();
  } catch (const ApiError& error) {
    EXPECT_EQ(error.reason(), ApiError::kCertificateRefused);
    EXPECT_NE(error.oneLine().find("self-signed"), std::string::npos);
    EXPECT_NE(error.oneLine().find("certificate-authority"), std::string::npos);
    EXPECT_EQ(error.oneLine().find("attempts"), std::string::npos);
  }
  EXPECT_EQ(transport->requests.size(), 1u);
}

TEST(ApiClient, GivesUpAfterBoundedAttemptsWithOneLine) {
  ScriptedTransport* transport;
  std::deque<HttpResponse> answers(5, HttpResponse{500, status(500, "InternalError", "etcd down"),
                                                   "", "", false});
  auto client = clientWith(answers, &transport);
  try {
    client.get("/api/v1/pods");
    FAIL();
  } catch (const ApiError& error) {
    EXPECT_EQ(error.httpStatus(), 500);
    EXPECT_NE(error.oneLine().find("etcd down"), std::string::npos);
    EXPECT_NE(error.oneLine().find("after 5 attempts"), std::string::npos);
    EXPECT_EQ(error.oneLine().find('\n'), std::string::npos);
  }
  EXPECT_EQ(transport->requests.size(), 5u);
}

TEST(ApiClient, HonoursRetryAfterOn429) {
  ScriptedTransport* transport;
  auto client = clientWith({{429, status(429, "TooManyRequests", "slow down"), "1", "", false},
                            {201, R"({"created":1})", "", "", false}},
                           &transport);
  EXPECT_EQ(client.post("/api/v1/namespaces/a/pods", {{"kind", "Pod"}})["created"], 1);
  EXPECT_EQ(transport->requests[1].method, "POST");
  EXPECT_EQ(transport->requests[1].body, R"({"kind":"Pod"})");
}

TEST(ApiClient, ClientErrorsAreNotRetriedAndKeepTheServersReason) {
  ScriptedTransport* transport;
  auto client = clientWith(
      {{403, status(403, "Forbidden", "pods is forbidden: User \\\"bob\\\" cannot create resource"),
        "", "", false}},
      &transport);
  try {
    client.post("/api/v1/namespaces/a/pods", {});
    FAIL();
  } catch (const ApiError& error) {
    EXPECT_EQ(error.reason(), "Forbidden");
    EXPECT_NE(error.cause().find("User \"bob\" cannot create"), std::string::npos);
    EXPECT_FALSE(error.hint().empty());
  }
  EXPECT_EQ(transport->requests.size(), 1u);
}

TEST(ApiClient, UnprocessableNamesTheField) {
  ScriptedTransport* transport;
  auto client = clientWith(
      {{422, status(422, "Invalid", "Pod is invalid",
                    R"({"causes":[{"field":"spec.containers[0].image","reason":"FieldValueRequired"}]})"),
        "", "", false}},
      &transport);
  try {
    client.post("/p", {});
    FAIL();
  } catch (const ApiError& error) {
    EXPECT_NE(error.cause().find("spec.containers[0].image"), std::string::npos);
  }
}

TEST(ApiClient, UnauthorizedSaysCredentials) {
  ScriptedTransport* transport;
  auto client = clientWith({{401, status(401, "Unauthorized", "Unauthorized"), "", "", false}},
                           &transport);
  try {
    client.get("/api");
    FAIL();
  } catch (const ApiError& error) {
    EXPECT_NE(error.cause().find("rejected the credentials"), std::string::npos);
  }
}

TEST(ApiClient, StreamReportsACutConnection) {
  ScriptedTransport* transport;
  auto client = clientWith({{200, "line 1\n", "", "transfer closed", false},
                            {200, "all\n", "", "", false}},
                           &transport);
  std::string received;
  auto sink = [&](std::string_view data) {
    received.append(data);
    return true;
  };
  EXPECT_EQ(client.stream("/log", sink, nullptr), ApiClient::StreamEnd::kCut);
  EXPECT_EQ(client.stream("/log", sink, nullptr), ApiClient::StreamEnd::kFinished);
  EXPECT_EQ(received, "line 1\nall\n");
}

std::size_t threadsOfThisProcess() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

TEST(TlsWarmup, RunsBesideTheCallerAndIsJoinedWhenDestroyed) {
  sigset_t before, during, after;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  const std::size_t threads = threadsOfThisProcess();
  {
    const TlsWarmup warmup;
    pthread_sigmask(SIG_SETMASK, nullptr, &during);
  }
  pthread_sigmask(SIG_SETMASK, nullptr, &after);
  EXPECT_EQ(threadsOfThisProcess(), threads) << "the warm-up thread outlived its object";
  // The thread blocks every signal for itself only: the caller must still take qdel's SIGTERM.
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
    EXPECT_EQ(sigismember(&during, sig), sigismember(&before, sig)) << sig;
    EXPECT_EQ(sigismember(&after, sig), sigismember(&before, sig)) << sig;
  }
}

TEST(UrlEncode, EncodesSelectors) {
  EXPECT_EQ(urlEncode("metadata.name=kbatch-1"), "metadata.name%3Dkbatch-1");
  EXPECT_EQ(urlEncode("a b/c"), "a%20b%2Fc");
}

}  // namespace
}  // namespace kbatch::k8s
