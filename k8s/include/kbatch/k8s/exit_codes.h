#pragma once
/// Exit codes of the Kubernetes backend when the job's container has no exit code of its own.
/// A container that terminated passes its exit code through unchanged (an OOM-killed container
/// shows 137 = 128 + SIGKILL, with a message naming the memory limit). kbatch never reports 0
/// unless the container exited 0. The values sit below kbatch's own 125/126/127 and above the
/// codes jobs commonly use; 124 is what timeout(1) reports for a time limit.

namespace kbatch::k8s::exit_code {

/// The node evicted the Pod (memory, disk or PID pressure; node drained).
inline constexpr int kEvicted = 119;
/// The Pod could not run on the batch host's node: node unknown or not Ready, Unschedulable,
/// rejected by the kubelet (OutOfcpu, OutOfmemory, NodeAffinity, ...), or Pending too long.
inline constexpr int kNotScheduled = 120;
/// Someone else deleted the Pod (or its node vanished) before its container finished.
inline constexpr int kDeletedExternally = 121;
/// The image could not be pulled (ErrImagePull/ImagePullBackOff, InvalidImageName, ...).
inline constexpr int kImagePullFailed = 122;
/// The container could not be created or started (CreateContainerConfigError, StartError, ...).
inline constexpr int kContainerNotCreated = 123;
/// The Pod ran past activeDeadlineSeconds (the job's walltime).
inline constexpr int kDeadlineExceeded = 124;

}  // namespace kbatch::k8s::exit_code
