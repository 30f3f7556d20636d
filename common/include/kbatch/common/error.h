#pragma once
/// kbatch::Error: the one exception type above the privileged core (Sarus-style).
/// It carries what was being done, to which object, why it failed, an optional hint, and the exit
/// code kbatch should end with. Callers add "while ..." context as it travels up.

#include <stdexcept>
#include <string>
#include <vector>

#include "kbatch/common/exit_codes.h"

namespace kbatch {

class Error : public std::runtime_error {
 public:
  /// action: what kbatch was doing ("parse job script"); object: what it did it to (a path, a
  /// reference); cause: why it failed, with file:line or field where there is one.
  Error(std::string action, std::string object, std::string cause, std::string hint = {},
        int exit_code = exit_code::kKbatchError);

  /// Adds an outer "while ..." context; returns *this so it can be rethrown.
  Error& addContext(std::string context);

  const std::string& action() const noexcept { return action_; }
  const std::string& object() const noexcept { return object_; }
  const std::string& cause() const noexcept { return cause_; }
  const std::string& hint() const noexcept { return hint_; }
  int exitCode() const noexcept { return exit_code_; }
  const std::vector<std::string>& contexts() const noexcept { return contexts_; }

  /// One line: `kbatch: <action> '<object>': <cause> (while ...) (hint: ...)`.
  std::string oneLine() const;

 private:
  std::string action_;
  std::string object_;
  std::string cause_;
  std::string hint_;
  int exit_code_;
  std::vector<std::string> contexts_;
};

/// Formats errno as text, e.g. "Permission denied (EACCES)".
std::string describeErrno(int errnum);

}  // namespace kbatch
