#include "helper_path.h"

#include <unistd.h>

#include <array>
#include <string>
#include <system_error>

#include "kbatch/common/error.h"

#ifndef KBATCH_HELPER_DIR_INSTALLED
#error "KBATCH_HELPER_DIR_INSTALLED must name libexecdir/kbatch relative to bindir"
#endif

namespace kbatch::cli {

namespace fs = std::filesystem;

fs::path findHelperExecutable(std::string_view name) {
  const std::string action = "find " + std::string(name);
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(action, "/proc/self/exe", ec.message(), "is /proc mounted?");
  const fs::path dir = self.parent_path();
  const std::array<fs::path, 3> candidates = {dir / KBATCH_HELPER_DIR_INSTALLED / name,
                                              dir / "libexec/kbatch" / name, dir / name};
  for (const auto& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal();
  }
  throw Error(action, candidates.front().lexically_normal().string(), "not installed",
              "it is installed with kbatch; reinstall kbatch");
}

}  // namespace kbatch::cli
