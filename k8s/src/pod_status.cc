#include "kbatch/k8s/pod_status.h"

#include <set>

#include "kbatch/k8s/exit_codes.h"

namespace kbatch::k8s {
namespace {

std::string text(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return {};
  return object[key].get<std::string>();
}

const nlohmann::json* firstContainerStatus(const nlohmann::json& status) {
  if (!status.contains("containerStatuses") || !status["containerStatuses"].is_array() ||
      status["containerStatuses"].empty()) {
    return nullptr;
  }
  return &status["containerStatuses"][0];
}

std::string withDetail(std::string head, const std::string& detail) {
  if (!detail.empty()) head += ": " + detail;
  return head;
}

}  // namespace

PodVerdict interpretPod(const nlohmann::json& pod) {
  PodVerdict verdict;
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& status = pod.contains("status") ? pod["status"] : empty;
  const std::string phase = text(status, "phase");
  const std::string pod_reason = text(status, "reason");
  const std::string pod_message = text(status, "message");
  const nlohmann::json* container = firstContainerStatus(status);
  const nlohmann::json* state = container != nullptr && container->contains("state")
                                    ? &(*container)["state"]
                                    : nullptr;
  const nlohmann::json* terminated =
      state != nullptr && state->contains("terminated") ? &(*state)["terminated"] : nullptr;
  const nlohmann::json* waiting =
      state != nullptr && state->contains("waiting") ? &(*state)["waiting"] : nullptr;
  verdict.logs_available = terminated != nullptr ||
                           (state != nullptr && state->contains("running"));

  auto finish = [&](int code, std::string message) {
    verdict.progress = PodProgress::kFinished;
    verdict.exit_code = code;
    verdict.message = std::move(message);
    return verdict;
  };

  // Pod-level failures come first: they explain a container killed on their account.
  if (phase == "Failed" || (pod_reason == "DeadlineExceeded" || pod_reason == "Evicted")) {
    if (pod_reason == "DeadlineExceeded") {
      std::string limit;
      if (pod.contains("spec") && pod["spec"].contains("activeDeadlineSeconds")) {
        limit = " (" + pod["spec"]["activeDeadlineSeconds"].dump() + " s)";
      }
      return finish(exit_code::kDeadlineExceeded,
                    "the job ran past its walltime" + limit +
                        ": Kubernetes stopped the Pod (DeadlineExceeded)");
    }
    if (pod_reason == "Evicted") {
      return finish(exit_code::kEvicted, withDetail("the node evicted the Pod", pod_message));
    }
  }
  if (terminated != nullptr) {
    const std::string reason = text(*terminated, "reason");
    const int code = terminated->contains("exitCode") && (*terminated)["exitCode"].is_number()
                         ? (*terminated)["exitCode"].get<int>()
                         : -1;
    if (reason == "StartError" || reason == "ContainerCannotRun") {
      return finish(exit_code::kContainerNotCreated,
                    withDetail("the container could not start (" + reason + ")",
                               text(*terminated, "message")));
    }
    if (reason == "OOMKilled") {
      std::string limit;
      if (pod.contains("spec") && pod["spec"].contains("containers")) {
        const auto& c = pod["spec"]["containers"][0];
        if (c.contains("resources") && c["resources"].contains("limits") &&
            c["resources"]["limits"].contains("memory")) {
          limit = " of " + c["resources"]["limits"]["memory"].get<std::string>() + " bytes";
        }
      }
      return finish(code > 0 ? code : 137,
                    "the container was killed for using more than its memory limit" + limit +
                        " (OOMKilled)");
    }
    if (code < 0) {
      return finish(exit_code::kContainerNotCreated, "the container ended without an exit code");
    }
    if (phase == "Failed" && code == 0) {
      // Never report success for a failed Pod.
      return finish(exit_code::kNotScheduled,
                    withDetail("the Pod failed (" + (pod_reason.empty() ? "no reason given" : pod_reason) + ")",
                               pod_message));
    }
    return finish(code, "");
  }
  if (phase == "Failed") {
    return finish(exit_code::kNotScheduled,
                  withDetail("the node rejected the Pod (" +
                                 (pod_reason.empty() ? "no reason given" : pod_reason) + ")",
                             pod_message));
  }
  if (phase == "Succeeded") {
    return finish(exit_code::kContainerNotCreated,
                  "the Pod succeeded without a terminated container state");
  }
  if (status.contains("conditions") && status["conditions"].is_array()) {
    for (const auto& condition : status["conditions"]) {
      if (text(condition, "type") == "PodScheduled" && text(condition, "status") == "False" &&
          text(condition, "reason") == "Unschedulable") {
        return finish(exit_code::kNotScheduled,
                      withDetail("the Pod is Unschedulable", text(condition, "message")));
      }
    }
  }
  if (waiting != nullptr) {
    const std::string reason = text(*waiting, "reason");
    verdict.waiting_reason = reason;
    static const std::set<std::string> kPullFailures = {"ImagePullBackOff", "InvalidImageName",
                                                        "ErrImageNeverPull"};
    static const std::set<std::string> kCreateFailures = {
        "CreateContainerConfigError", "CreateContainerError", "RunContainerError"};
    if (kPullFailures.count(reason) != 0) {
      std::string image = container->contains("image") ? text(*container, "image") : "";
      return finish(exit_code::kImagePullFailed,
                    withDetail("the image " + (image.empty() ? "" : "'" + image + "' ") +
                                   "could not be pulled (" + reason + ")",
                               text(*waiting, "message")));
    }
    if (kCreateFailures.count(reason) != 0) {
      return finish(exit_code::kContainerNotCreated,
                    withDetail("the container could not be created (" + reason + ")",
                               text(*waiting, "message")));
    }
  }
  if (phase == "Running" && state != nullptr && state->contains("running")) {
    verdict.progress = PodProgress::kRunning;
  }
  return verdict;
}

}  // namespace kbatch::k8s
