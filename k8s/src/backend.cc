// The Kubernetes backend: create (or adopt) the job's Pod, watch it, follow its log, collect the
// exit code and delete it. Threads: the caller's thread watches; one thread per log stream; one
// thread waits for cancel signals and sends the DELETE at once.

#include "kbatch/k8s/backend.h"

#include <pthread.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "kbatch/k8s/exit_codes.h"
#include "kbatch/k8s/log_stream.h"
#include "kbatch/k8s/pod_status.h"

namespace kbatch::k8s {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAction = "run the job's Pod";
/// How long the API may stay unreachable (a restart, a network blip) before kbatch gives up on a
/// running job. The Pod keeps running meanwhile; activeDeadlineSeconds and gc are the backstops.
constexpr auto kApiOutageBudget = std::chrono::seconds(120);
/// After the container ended, how long the log stream may take to deliver its last lines.
constexpr auto kLogDrainTimeout = std::chrono::seconds(15);

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string podsPath(const std::string& ns) { return "/api/v1/namespaces/" + urlEncode(ns) + "/pods"; }

/// Writes whole lines to a file descriptor; the mutex keeps lines of different Pods apart.
class OutputWriter {
 public:
  void write(int fd, std::string_view data) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // the job's output is gone (closed pipe): nothing more to do with it
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  std::mutex mutex_;
};

/// What every part of one run shares: the cancel flag and the signal that set it.
struct RunState {
  std::atomic<bool> cancel{false};
  std::atomic<int> signal{0};
  OutputWriter output;
};

/// Measures how long the API has been failing without a break.
class OutageClock {
 public:
  void reset() { failing_ = false; }
  /// Called on each failure: true once failures have lasted longer than kApiOutageBudget.
  bool exceeded() {
    if (!failing_) {
      failing_ = true;
      since_ = Clock::now();
    }
    return Clock::now() - since_ > kApiOutageBudget;
  }

 private:
  bool failing_ = false;
  Clock::time_point since_{};
};

bool isTransient(const ApiError& error) {
  if (error.reason() == ApiError::kCertificateRefused) return false;
  return error.httpStatus() == 0 || error.httpStatus() >= 500 || error.httpStatus() == 429;
}

/// One Pod of the job, from creation to deletion.
class PodRun {
 public:
  /// `requests` is the run's client for single requests, whose connection the node lookup has
  /// opened and which then sits idle: the POST goes over it, and so does the DELETE at the end
  /// when `delete_over_requests` (one Pod, whose end is awaited on the thread that owns the
  /// client). Each new TLS connection costs a handshake (about 2 ms resumed, 7 ms in full against
  /// the test API server, bench/k8s_overhead.sh); the watch and the log streams need their own.
  PodRun(const ClusterAccess& access, std::string ns, json manifest, const K8sSettings& settings,
         const RunPodOptions& options, RunState& state, ApiClient& requests,
         bool delete_over_requests)
      : access_(access),
        ns_(std::move(ns)),
        manifest_(std::move(manifest)),
        name_(manifest_["metadata"]["name"].get<std::string>()),
        settings_(settings),
        options_(options),
        state_(state),
        requests_(requests),
        delete_over_requests_(delete_over_requests),
        client_(access) {
    client_.setCancelFlag(&state_.cancel);
  }

  const std::string& name() const { return name_; }

  /// Creates the Pod, or adopts the Pod an earlier kbatch of this job created. The POST goes
  /// first: a job's Pod almost never exists yet, and asking before creating would cost every job
  /// a round trip.
  void createOrAdopt() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (state_.cancel.load()) {
        throw Error(kAction, ns_ + "/" + name_, "cancelled before the Pod was created", "",
                    kbatch::exit_code::kSignalBase + state_.signal.load());
      }
      try {
        json created = requests_.post(podsPath(ns_), manifest_);
        adopt(created);
        if (state_.cancel.load()) deleteNow(0);  // the signal came while the POST was out
        log::debug("k8s: created Pod {}/{} (uid {}) on node {}", ns_, name_, uid_,
                   manifest_["spec"]["nodeName"].get<std::string>());
        return;
      } catch (ApiError& error) {
        if (error.httpStatus() != 409 || error.reason() != "AlreadyExists") {
          error.addContext("while creating Pod " + ns_ + "/" + name_);
          throw;
        }
      }
      if (adoptExisting()) return;
    }
    throw Error(kAction, ns_ + "/" + name_, "the Pod kept appearing and disappearing");
  }

  /// Watches the Pod and follows its log until it ends; returns the job's exit code.
  int waitForEnd() {
    const auto pending_limit = std::chrono::seconds(settings_.pending_timeout_seconds);
    const auto started = Clock::now();
    OutageClock outage;
    bool finished = considerPod(pod_);
    while (!finished && !state_.cancel.load()) {
      const auto pending_left =
          std::chrono::duration_cast<std::chrono::seconds>(pending_limit - (Clock::now() - started));
      if (!everRunning_ && pending_left.count() <= 0) {
        finishWith(exit_code::kNotScheduled,
                   "the Pod was still Pending after " +
                       std::to_string(settings_.pending_timeout_seconds) + " s" +
                       (waiting_reason_.empty() ? "" : " (" + waiting_reason_ + ")") +
                       describeNodeProblem());
        break;
      }
      long timeout = settings_.watch_timeout_seconds;
      if (!everRunning_) timeout = std::clamp<long>(pending_left.count(), 1, timeout);
      const std::string path = podsPath(ns_) + "?watch=true&allowWatchBookmarks=true" +
                               "&fieldSelector=" + urlEncode("metadata.name=" + name_) +
                               "&resourceVersion=" + urlEncode(resource_version_) +
                               "&timeoutSeconds=" + std::to_string(timeout);
      std::string buffer;
      bool relist = false;
      auto sink = [&](std::string_view data) {
        buffer.append(data);
        std::size_t newline;
        while ((newline = buffer.find('\n')) != std::string::npos) {
          std::string line = buffer.substr(0, newline);
          buffer.erase(0, newline + 1);
          if (line.empty()) continue;
          json event;
          try {
            event = json::parse(line);
          } catch (const json::exception&) {
            throw Error(kAction, ns_ + "/" + name_, "the watch stream sent a line that is not JSON");
          }
          const std::string type = event.value("type", "");
          const json& object = event["object"];
          if (type == "ERROR") {
            if (object.value("code", 0) == 410) {
              relist = true;  // our resourceVersion is too old: list again
              return false;
            }
            throw Error(kAction, ns_ + "/" + name_,
                        "the watch failed: " + object.value("message", object.dump()));
          }
          if (object.contains("metadata") && object["metadata"].contains("resourceVersion")) {
            resource_version_ = object["metadata"]["resourceVersion"].get<std::string>();
          }
          if (type == "BOOKMARK") continue;
          if (object["metadata"].value("uid", "") != uid_) continue;
          if (type == "DELETED") {
            gone_ = true;
            finished = true;
            return false;
          }
          if (considerPod(object)) {
            finished = true;
            return false;
          }
        }
        return true;
      };
      try {
        ApiClient::StreamEnd end = client_.stream(path, sink, &state_.cancel);
        outage.reset();
        if (end == ApiClient::StreamEnd::kCut) {
          log::debug("k8s: watch of {} was cut; resuming at resourceVersion {}", name_,
                     resource_version_);
        }
      } catch (const ApiError& error) {
        if (!isTransient(error)) throw;
        if (outage.exceeded()) throw;
        log::debug("k8s: watch of {} failed ({}); retrying", name_, error.cause());
        sleepUnlessCancelled(std::chrono::milliseconds(500));
        continue;
      }
      if (relist && !finished) {
        log::debug("k8s: resourceVersion {} expired (410 Gone); listing again", resource_version_);
        finished = relistPod();
      }
    }
    bool ended;
    {
      std::lock_guard<std::mutex> lock(verdict_mutex_);
      ended = verdict_.exit_code.has_value();
    }
    if (deleted_by_other_ || (gone_ && !ended)) {
      finishWith(exit_code::kDeletedExternally,
                 "the Pod was deleted by someone else before its container finished");
    }
    return collect();
  }

  /// Deletes the Pod now (qdel, walltime, crash path), without waiting for it to go, over a
  /// connection of its own: the caller may be the signal thread.
  void deleteNow(int grace_seconds) {
    // One attempt: on SIGTERM the batch system's SIGKILL follows within seconds.
    RetryPolicy once;
    once.max_attempts = 1;
    ApiClient client(access_, makeCurlTransport(access_), once);
    deleteWith(client, grace_seconds);
  }

  bool deleted() const { return deleted_.load(); }

 private:
  void deleteWith(ApiClient& client, int grace_seconds) {
    std::string uid;
    {
      std::lock_guard<std::mutex> lock(id_mutex_);
      uid = uid_;
    }
    if (uid.empty()) return;
    deleting_ = true;
    try {
      client.remove(podsPath(ns_) + "/" + name_,
                    json{{"kind", "DeleteOptions"},
                         {"apiVersion", "v1"},
                         {"gracePeriodSeconds", grace_seconds},
                         {"preconditions", {{"uid", uid}}}});
      deleted_ = true;
    } catch (const ApiError& error) {
      if (error.httpStatus() == 404 || error.httpStatus() == 409) {
        deleted_ = true;  // gone already, or a newer Pod of the name that is not ours
        return;
      }
      writeMessage("could not delete the Pod: " + error.oneLine());
    } catch (const Error& error) {
      writeMessage("could not delete the Pod: " + error.oneLine());
    }
  }

  /// A Pod of the job's name exists: adopts it if it is this job's and alive. Returns false when
  /// it went away (or is going), so that the caller creates the Pod again.
  bool adoptExisting() {
    const std::string job_label = manifest_["metadata"]["labels"][kJobIdLabel].get<std::string>();
    const std::string job_id =
        manifest_["metadata"]["annotations"][kJobIdAnnotation].get<std::string>();
    json existing;
    try {
      existing = client_.get(podsPath(ns_) + "/" + name_);
    } catch (const ApiError& error) {
      if (error.httpStatus() == 404) return false;
      throw;
    }
    const json& meta = existing["metadata"];
    const bool ours = meta.contains("labels") && meta["labels"].value(kJobIdLabel, "") == job_label &&
                      meta.contains("annotations") &&
                      meta["annotations"].value(kJobIdAnnotation, "") == job_id;
    if (!ours) {
      throw Error(kAction, ns_ + "/" + name_,
                  "a Pod of that name exists and does not belong to batch job " + job_id,
                  "delete it or check the job id labels", kbatch::exit_code::kKbatchError);
    }
    if (meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null()) {
      // An earlier Pod of this job is being deleted: wait for it to go, then create anew.
      log::info("k8s: Pod {}/{} of an earlier run is terminating; waiting for it", ns_, name_);
      waitUntilGone(meta["uid"].get<std::string>());
      return false;
    }
    // The log is followed from its start, not from where an earlier kbatch stopped: a batch
    // job that runs its script again (requeue, rerun) has a fresh output file, which must hold
    // the whole log. Only a second kbatch inside one run would duplicate lines, and the job's
    // own script does not start one.
    adopt(existing);
    log::info("k8s: adopted existing Pod {}/{} (uid {})", ns_, name_, uid_);
    return true;
  }

  void adopt(const json& pod) {
    pod_ = pod;
    {
      std::lock_guard<std::mutex> lock(id_mutex_);
      uid_ = pod["metadata"]["uid"].get<std::string>();
    }
    resource_version_ = pod["metadata"]["resourceVersion"].get<std::string>();
  }

  void waitUntilGone(const std::string& uid) {
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until && !state_.cancel.load()) {
      try {
        json pod = client_.get(podsPath(ns_) + "/" + name_);
        if (pod["metadata"].value("uid", "") != uid) return;
      } catch (const ApiError& error) {
        if (error.httpStatus() == 404) return;
        throw;
      }
      sleepUnlessCancelled(std::chrono::milliseconds(250));
    }
    throw Error(kAction, ns_ + "/" + name_, "an earlier Pod of this job did not go away in 60 s");
  }

  /// Relist after 410 Gone: fetch the Pod and the list's resourceVersion.
  bool relistPod() {
    json list = client_.get(podsPath(ns_) + "?fieldSelector=" +
                            urlEncode("metadata.name=" + name_));
    resource_version_ = list["metadata"]["resourceVersion"].get<std::string>();
    for (const auto& item : list["items"]) {
      if (item["metadata"].value("uid", "") == uid_) return considerPod(item);
    }
    gone_ = true;
    return true;
  }

  /// Updates the verdict from a Pod object; starts the log followers once the container has
  /// started. Returns true when the Pod has ended.
  bool considerPod(const json& pod) {
    pod_ = pod;
    if (pod["metadata"].contains("deletionTimestamp") && !pod["metadata"]["deletionTimestamp"].is_null() &&
        !deleting_) {
      deleted_by_other_ = true;
    }
    PodVerdict verdict = interpretPod(pod);
    waiting_reason_ = verdict.waiting_reason;
    if (verdict.logs_available) {
      everRunning_ = true;
      startLogFollowers();
    }
    {
      std::lock_guard<std::mutex> lock(verdict_mutex_);
      verdict_ = verdict;
    }
    verdict_changed_.notify_all();
    return verdict.progress == PodProgress::kFinished;
  }

  void finishWith(int code, std::string message) {
    std::lock_guard<std::mutex> lock(verdict_mutex_);
    verdict_.progress = PodProgress::kFinished;
    verdict_.exit_code = code;
    verdict_.message = std::move(message);
  }

  std::string describeNodeProblem() {
    try {
      json node = client_.get("/api/v1/nodes/" + urlEncode(pod_["spec"].value("nodeName", "")));
      for (const auto& condition : node["status"]["conditions"]) {
        if (condition.value("type", "") == "Ready" && condition.value("status", "") != "True") {
          return "; node " + node["metadata"]["name"].get<std::string>() + " is not Ready";
        }
      }
    } catch (const Error&) {
    }
    return "";
  }

  void startLogFollowers() {
    if (logs_started_) return;
    logs_started_ = true;
    {
      std::lock_guard<std::mutex> lock(followers_mutex_);
      followers_running_ = settings_.split_log_streams ? 2 : 1;
    }
    if (settings_.split_log_streams) {
      log_threads_.emplace_back([this] { followLog("Stdout", options_.stdout_fd); });
      log_threads_.emplace_back([this] { followLog("Stderr", options_.stderr_fd); });
    } else {
      log_threads_.emplace_back([this] { followLog("", options_.stdout_fd); });
    }
  }

  /// Follows one log stream to its end, resuming with sinceTime when the connection breaks.
  void followLog(const std::string& stream, int fd) {
    struct CountDown {
      PodRun& run;
      ~CountDown() {
        std::lock_guard<std::mutex> lock(run.followers_mutex_);
        --run.followers_running_;
        run.followers_done_.notify_all();
      }
    } count_down{*this};
    ApiClient client(access_);
    client.setCancelFlag(&logs_cancel_);
    TimestampedLogReader reader;
    auto write_line = [&](std::string_view line) { state_.output.write(fd, line); };
    OutageClock outage;
    while (!logs_cancel_.load()) {
      std::string path = podsPath(ns_) + "/" + name_ + "/log?container=" + kContainerName +
                         "&follow=true&timestamps=true";
      if (!stream.empty()) path += "&stream=" + stream;
      const std::string since = reader.resumeSinceTime();
      if (!since.empty()) path += "&sinceTime=" + urlEncode(since);
      reader.beginConnection();
      ApiClient::StreamEnd end;
      try {
        end = client.stream(
            path,
            [&](std::string_view data) {
              reader.feed(data, write_line);
              return true;
            },
            &logs_cancel_);
        outage.reset();
      } catch (const ApiError& error) {
        reader.endConnection(false, write_line);
        if (error.httpStatus() == 404) return;  // the Pod is gone: nothing more to read
        if (error.httpStatus() == 400 || isTransient(error)) {
          // 400: "waiting to start" (a restarted server answers before the kubelet reports).
          if (outage.exceeded()) {
            writeMessage("gave up following the log: " + error.oneLine());
            return;
          }
          sleepFor(std::chrono::milliseconds(100));
          continue;
        }
        writeMessage("cannot follow the log: " + error.oneLine());
        return;
      }
      if (end == ApiClient::StreamEnd::kCancelled) {
        reader.endConnection(false, write_line);
        return;
      }
      if (end == ApiClient::StreamEnd::kCut) {
        reader.endConnection(false, write_line);
        log::debug("k8s: log stream of {} was cut after {} lines; resuming", name_,
                   reader.deliveredLines());
        sleepFor(std::chrono::milliseconds(100));
        continue;
      }
      reader.endConnection(true, write_line);
      // A log stream ends normally when the container has exited, but also when a server closes
      // it early: only the Pod's status tells.
      if (containerHasEnded(client)) return;
    }
  }

  bool containerHasEnded(ApiClient& client) {
    {
      // Usually the watch has already seen the container end: no need to ask.
      std::lock_guard<std::mutex> lock(verdict_mutex_);
      if (verdict_.progress == PodProgress::kFinished) return true;
    }
    try {
      json pod = client.get(podsPath(ns_) + "/" + name_);
      if (pod["metadata"].value("uid", "") != uid_) return true;
      const PodVerdict verdict = interpretPod(pod);
      return verdict.progress == PodProgress::kFinished;
    } catch (const ApiError& error) {
      if (error.httpStatus() == 404) return true;
      sleepFor(std::chrono::milliseconds(300));
      return false;
    }
  }

  void sleepFor(std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    while (Clock::now() < until && !logs_cancel_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void sleepUnlessCancelled(std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    while (Clock::now() < until && !state_.cancel.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// Waits for the log followers to deliver the last lines, deletes the Pod, and returns the
  /// exit code.
  int collect() {
    if (state_.cancel.load()) {
      logs_cancel_ = true;
    } else if (!logs_started_ && verdict_.exit_code && !gone_) {
      // The container ended between two watch events: read its log once.
      startLogFollowers();
    }
    // Followers end by themselves once the container has ended and its log is drained; give
    // them a bounded time, then cut them off.
    {
      std::unique_lock<std::mutex> lock(followers_mutex_);
      followers_done_.wait_for(lock, kLogDrainTimeout, [this] { return followers_running_ == 0; });
    }
    logs_cancel_ = true;
    for (auto& thread : log_threads_) {
      if (thread.joinable()) thread.join();
    }
    if (!state_.cancel.load() && !gone_) {
      if (delete_over_requests_) {
        deleteWith(requests_, 0);
      } else {
        deleteNow(0);
      }
    }
    if (state_.cancel.load()) return kbatch::exit_code::kSignalBase + state_.signal.load();
    PodVerdict verdict;
    {
      std::lock_guard<std::mutex> lock(verdict_mutex_);
      verdict = verdict_;
    }
    if (!verdict.message.empty()) writeMessage(verdict.message);
    return verdict.exit_code.value_or(kbatch::exit_code::kKbatchError);
  }

  void writeMessage(const std::string& message) {
    state_.output.write(options_.stderr_fd, "kbatch: Pod " + ns_ + "/" + name_ + ": " + message + "\n");
  }

  ClusterAccess access_;
  std::string ns_;
  json manifest_;
  std::string name_;
  const K8sSettings& settings_;
  const RunPodOptions& options_;
  RunState& state_;
  ApiClient& requests_;  // single requests, on the thread that runs runPodForJob
  bool delete_over_requests_;
  ApiClient client_;     // the watch, and the GETs of this Pod's own thread

  json pod_;
  std::mutex id_mutex_;  // uid_ is read by the signal thread
  std::string uid_;
  std::string resource_version_;
  std::string waiting_reason_;
  bool everRunning_ = false;
  bool gone_ = false;
  std::atomic<bool> deleting_{false};
  std::atomic<bool> deleted_{false};
  bool deleted_by_other_ = false;

  std::mutex verdict_mutex_;
  std::condition_variable verdict_changed_;
  PodVerdict verdict_;

  bool logs_started_ = false;
  std::atomic<bool> logs_cancel_{false};
  std::mutex followers_mutex_;
  std::condition_variable followers_done_;
  int followers_running_ = 0;  // guarded by followers_mutex_
  std::vector<std::thread> log_threads_;
};

/// Blocks the cancel signals in every thread of the run, and gives them to one thread that
/// deletes the Pods at once: TORQUE sends SIGKILL 2 s after SIGTERM by default.
class SignalGuard {
 public:
  SignalGuard(const std::vector<int>& signals, RunState& state,
              std::vector<std::unique_ptr<PodRun>>& pods, int grace)
      : state_(state), pods_(pods), grace_(grace) {
    sigemptyset(&set_);
    for (int sig : signals) sigaddset(&set_, sig);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    // The signals arrive on a signalfd and the end of the run on an eventfd, so the thread sleeps
    // in poll(2) and wakes for either at once: kbatch's exit waits for this thread's join.
    signal_fd_ = signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
    done_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (signal_fd_ < 0 || done_fd_ < 0) {
      const int error = errno;
      closeFds();
      pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
      throw Error("watch for qdel's signals", "signalfd/eventfd", describeErrno(error));
    }
    thread_ = std::thread([this] { waitForSignals(); });
  }
  ~SignalGuard() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t written = write(done_fd_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    closeFds();
    // A signal that arrived but was not taken stays pending; restoring the mask delivers it to
    // the default action, which is what the caller would have had without us.
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  void waitForSignals() {
    for (;;) {
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {done_fd_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      signalfd_siginfo info{};
      if (read(signal_fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
      state_.signal = static_cast<int>(info.ssi_signo);
      state_.cancel = true;
      for (auto& pod : pods_) pod->deleteNow(grace_);
      return;
    }
  }

  void closeFds() {
    if (signal_fd_ >= 0) close(signal_fd_);
    if (done_fd_ >= 0) close(done_fd_);
    signal_fd_ = done_fd_ = -1;
  }

  RunState& state_;
  std::vector<std::unique_ptr<PodRun>>& pods_;
  int grace_;
  sigset_t set_;
  sigset_t previous_;
  int signal_fd_ = -1;
  int done_fd_ = -1;
  std::thread thread_;
};

std::string thisHostName() {
  char buffer[256] = {0};
  if (gethostname(buffer, sizeof buffer - 1) != 0) {
    throw Error(kAction, "this host", "gethostname failed: " + describeErrno(errno));
  }
  return buffer;
}

bool nodeIsReady(const json& node, std::string* why) {
  if (node.contains("status") && node["status"].contains("conditions")) {
    for (const auto& condition : node["status"]["conditions"]) {
      if (condition.value("type", "") != "Ready") continue;
      if (condition.value("status", "") == "True") return true;
      *why = "Ready=" + condition.value("status", "?") + " (" + condition.value("reason", "") +
             (condition.contains("message") ? ": " + condition.value("message", "") : "") + ")";
      return false;
    }
  }
  *why = "it reports no Ready condition";
  return false;
}

}  // namespace

std::string resolveNodeName(ApiClient& client, const std::string& batch_host,
                            const K8sSettings& settings) {
  const std::string short_host = batch_host.substr(0, batch_host.find('.'));
  std::string node_name;
  std::string how;
  for (const std::string& key : {batch_host, short_host}) {
    auto it = settings.node_names.find(key);
    if (it != settings.node_names.end()) {
      node_name = it->second;
      how = "the site's node name mapping";
      break;
    }
  }
  json node;
  if (node_name.empty()) {
    std::vector<std::string> candidates = {batch_host, lowercase(batch_host), short_host,
                                           lowercase(short_host)};
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    for (const auto& candidate : candidates) {
      json list = client.get("/api/v1/nodes?labelSelector=" +
                             urlEncode(std::string("kubernetes.io/hostname=") + candidate));
      if (list["items"].size() > 1) {
        throw Error("find the Kubernetes node of", batch_host,
                    "several nodes carry kubernetes.io/hostname=" + candidate,
                    "map the host in the policy's kubernetes.node_names",
                    exit_code::kNotScheduled);
      }
      if (list["items"].size() == 1) {
        node = list["items"][0];
        node_name = node["metadata"]["name"].get<std::string>();
        break;
      }
    }
    how = "the kubernetes.io/hostname label";
  }
  if (node_name.empty()) {
    // Last resort: a node named exactly like the host.
    try {
      node = client.get("/api/v1/nodes/" + urlEncode(lowercase(batch_host)));
      node_name = node["metadata"]["name"].get<std::string>();
    } catch (const ApiError& error) {
      if (error.httpStatus() != 404) throw;
      throw Error("find the Kubernetes node of", batch_host,
                  "no node has kubernetes.io/hostname=" + batch_host + " (or " + short_host +
                      ") and none is named so",
                  "map the batch host in the policy's kubernetes.node_names",
                  exit_code::kNotScheduled);
    }
  }
  if (node.is_null()) {
    try {
      node = client.get("/api/v1/nodes/" + urlEncode(node_name));
    } catch (const ApiError& error) {
      if (error.httpStatus() != 404) throw;
      throw Error("find the Kubernetes node of", batch_host,
                  "node '" + node_name + "' (from " + how + ") does not exist", "",
                  exit_code::kNotScheduled);
    }
  }
  std::string why;
  if (!nodeIsReady(node, &why)) {
    throw Error("find the Kubernetes node of", batch_host,
                "node '" + node_name + "' is not Ready: " + why, "", exit_code::kNotScheduled);
  }
  return node_name;
}

std::string effectiveNamespace(const K8sSettings& settings, const ClusterAccess& access) {
  if (!settings.namespace_name.empty()) return settings.namespace_name;
  if (!access.namespace_name.empty()) return access.namespace_name;
  return "default";
}

std::string effectiveJobId(const JobSpec& job) {
  if (job.job_id && !job.job_id->empty()) return *job.job_id;
  return "exec-" + thisHostName() + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::time(nullptr));
}

ClusterAccess loadAccessFor(const K8sSettings& settings) {
  KubeconfigOptions options;
  options.paths = settings.kubeconfig;
  options.context = settings.context;
  options.service_account_dir = settings.service_account_dir;
  return loadClusterAccess(options);
}

int runPodForJob(const JobSpec& job_in, const K8sSettings& settings, const RunPodOptions& options) {
  JobSpec job = job_in;
  job.job_id = effectiveJobId(job_in);
  const ClusterAccess access = loadAccessFor(settings);
  const std::string ns = effectiveNamespace(settings, access);

  PodIdentity identity;
  if (options.identity) {
    identity = *options.identity;
  } else {
    identity.uid = getuid();
    identity.gid = getgid();
    if (const passwd* entry = getpwuid(identity.uid)) identity.user = entry->pw_name;
  }
  if (identity.user.empty() && job.user) identity.user = *job.user;

  std::vector<std::string> hosts = options.batch_hosts;
  if (hosts.empty()) {
    for (const auto& host : job.hosts) {
      if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) hosts.push_back(host);
    }
  }
  if (hosts.empty()) hosts.push_back(thisHostName());

  ApiClient client(access);
  RunState state;
  client.setCancelFlag(&state.cancel);  // the POST, like the watch, gives up on qdel
  std::vector<std::unique_ptr<PodRun>> pods;
  std::vector<std::string> node_names;
  for (const auto& host : hosts) node_names.push_back(resolveNodeName(client, host, settings));
  if (options.image_for_pods) job.image = options.image_for_pods();
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    PodPlacement placement;
    placement.batch_host = hosts[i];
    placement.node_name = node_names[i];
    placement.host_index = static_cast<int>(i);
    placement.host_count = static_cast<int>(hosts.size());
    json manifest = buildPodManifest(job, placement, identity, settings, ns);
    pods.push_back(std::make_unique<PodRun>(access, ns, std::move(manifest), settings, options,
                                            state, client, hosts.size() == 1));
  }

  SignalGuard signals(options.cancel_signals, state, pods, settings.termination_grace_seconds);
  // The crash path: an exception on the way out still deletes what was created.
  struct CleanupOnUnwind {
    std::vector<std::unique_ptr<PodRun>>& pods;
    bool armed = true;
    ~CleanupOnUnwind() {
      if (!armed) return;
      for (auto& pod : pods) {
        if (!pod->deleted()) pod->deleteNow(0);
      }
    }
  } cleanup{pods};

  for (auto& pod : pods) pod->createOrAdopt();
  int result = kbatch::exit_code::kOk;
  if (pods.size() == 1) {
    result = pods[0]->waitForEnd();
  } else {
    std::vector<int> codes(pods.size(), 0);
    std::vector<std::thread> waiters;
    std::mutex error_mutex;
    std::optional<Error> first_error;
    for (std::size_t i = 0; i < pods.size(); ++i) {
      waiters.emplace_back([&, i] {
        try {
          codes[i] = pods[i]->waitForEnd();
        } catch (const Error& error) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!first_error) first_error = error;
          codes[i] = error.exitCode();
        }
      });
    }
    for (auto& waiter : waiters) waiter.join();
    if (first_error) throw *first_error;
    for (int code : codes) {
      if (code != 0) {
        result = code;
        break;
      }
    }
  }
  if (state.cancel.load()) {
    // Give the DELETE sent by the signal thread a moment; the batch system's SIGKILL follows.
    const auto until = Clock::now() + std::chrono::milliseconds(1500);
    while (Clock::now() < until &&
           !std::all_of(pods.begin(), pods.end(), [](auto& pod) { return pod->deleted(); })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    result = kbatch::exit_code::kSignalBase + state.signal.load();
  }
  cleanup.armed = false;
  return result;
}

}  // namespace kbatch::k8s
