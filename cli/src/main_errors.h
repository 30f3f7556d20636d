#pragma once
/// What every kbatch main() does with an error: one line on stderr and kbatch's exit code
/// (kbatch::Error carries its own; anything else is an internal error, 125).

#include <cstdio>
#include <exception>

#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"

namespace kbatch::cli {

template <typename Body>
int runReportingErrors(Body&& body) {
  try {
    return body();
  } catch (const Error& error) {
    std::fprintf(stderr, "%s\n", error.oneLine().c_str());
    return error.exitCode();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kbatch: internal error: %s\n", error.what());
    return exit_code::kKbatchError;
  }
}

}  // namespace kbatch::cli
