#include "kbatch/common/error.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace kbatch {
namespace {

std::string composeWhat(const std::string& action, const std::string& object,
                        const std::string& cause) {
  std::string text = action;
  if (!object.empty()) text += " '" + object + "'";
  if (!cause.empty()) text += ": " + cause;
  return text;
}

}  // namespace

Error::Error(std::string action, std::string object, std::string cause, std::string hint,
             int exit_code)
    : std::runtime_error(composeWhat(action, object, cause)),
      action_(std::move(action)),
      object_(std::move(object)),
      cause_(std::move(cause)),
      hint_(std::move(hint)),
      exit_code_(exit_code) {}

Error& Error::addContext(std::string context) {
  contexts_.push_back(std::move(context));
  return *this;
}

std::string Error::oneLine() const {
  std::string line = "kbatch: ";
  line += what();
  for (const auto& context : contexts_) line += " (while " + context + ")";
  if (!hint_.empty()) line += " (hint: " + hint_ + ")";
  // One line, always: a cause quoted from a file must not break the format.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

std::string describeErrno(int errnum) {
  const char* name = strerrorname_np(errnum);
  std::string text = strerror(errnum);
  if (name != nullptr) text += std::string(" (") + name + ")";
  return text;
}

}  // namespace kbatch
