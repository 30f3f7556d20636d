#pragma once
/// Reading a descriptor to its end with read(2): what the job start path reads (the job body on
/// stdin, the job script, PBS_NODEFILE) and the submit path's stdin. Not a stream: the first
/// stream a process builds sets up the C++ locale, a millisecond of every job start here.

#include <string>

namespace kbatch {

/// Everything `fd` still holds, retrying reads interrupted by a signal. Throws
/// kbatch::Error(action, object, the errno) when a read fails; leaves `fd` open.
std::string readToEnd(int fd, const std::string& action, const std::string& object);

}  // namespace kbatch
