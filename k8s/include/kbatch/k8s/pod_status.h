#pragma once
/// Reading a Pod's status the way a batch job needs it: is it still coming, running or done, and
/// if done (or hopeless), with which exit code and why. A Failed Pod may have no terminated
/// container state (DeadlineExceeded, Evicted, OutOfcpu, ...): each such case has its own exit
/// code (kbatch/k8s/exit_codes.h), and 0 is reported only when the container exited 0.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kbatch::k8s {

enum class PodProgress {
  kPending,   ///< not running yet (scheduling, image pull, container creation)
  kRunning,   ///< the container runs
  kFinished,  ///< the Pod ended, or can never run: exit_code is set
};

struct PodVerdict {
  PodProgress progress = PodProgress::kPending;
  bool logs_available = false;     ///< the container has started (running or terminated)
  std::optional<int> exit_code;    ///< set when progress is kFinished
  std::string message;             ///< why, when it is not the container's own exit
  std::string waiting_reason;      ///< while pending: the container's waiting reason, if any
};

/// Interprets a Pod object (the API's JSON).
PodVerdict interpretPod(const nlohmann::json& pod);

}  // namespace kbatch::k8s
