#pragma once
/// Exit codes of the kbatch command, in one place (as podman and docker use them).
/// A job's own exit status always passes through unchanged; these are only for kbatch's own failures.

namespace kbatch::exit_code {

inline constexpr int kOk = 0;
/// `policy explain`/`policy check`: the job or the policy is denied/invalid (not an internal error).
inline constexpr int kDenied = 1;
/// kbatch itself failed: bad input, bad configuration, a refused policy, an unreachable service.
inline constexpr int kKbatchError = 125;
/// The command exists but cannot be executed (permission, not executable, wrong format).
inline constexpr int kCannotExecute = 126;
/// The command, image or file was not found.
inline constexpr int kNotFound = 127;
/// TORQUE's submit filter convention: "administratively rejected".
inline constexpr int kSubmitFilterRejected = 255;
/// Death by signal N is reported as the shell does: 128 + N.
inline constexpr int kSignalBase = 128;

}  // namespace kbatch::exit_code
