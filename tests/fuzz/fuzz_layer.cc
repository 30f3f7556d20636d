// libFuzzer target: arbitrary bytes as an OCI layer, extracted into a fresh temporary root.
// Any input may be refused (kbatch::Error), but none may crash the extractor or create anything
// outside the root: a sentinel directory next to the root must stay empty.

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

// The extractor is private to the image module; the fuzz build has no include path for it.
#include "../../image/src/fs_util.h"
#include "kbatch/common/error.h"
#include "../../image/src/layer_extract.h"

namespace {

namespace fs = std::filesystem;

const fs::path& baseDirectory() {
  static const fs::path base = [] {
    std::string pattern = (fs::temp_directory_path() / "kbatch-fuzz-layer-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    fs::create_directory(fs::path(pattern) / "outside");
    return fs::path(pattern);
  }();
  return base;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path& base = baseDirectory();
  fs::path root = base / "root";
  kbatch::image::removeTree(root);
  fs::create_directory(root);
  kbatch::image::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) std::abort();
  kbatch::image::ExtractLimits limits;
  limits.max_unpacked_bytes = 64ULL << 20;  // keep each run small
  kbatch::image::ExtractStats stats;
  try {
    kbatch::image::extractLayerMemory(root_fd.get(), data, size, "fuzz", limits, stats);
  } catch (const kbatch::Error&) {
    // Refusing a malformed or hostile layer is the expected outcome for most inputs.
  }
  if (!fs::is_empty(base / "outside")) {
    std::fprintf(stderr, "a layer wrote outside the image root\n");
    std::abort();
  }
  for (const auto& entry : fs::directory_iterator(base)) {
    std::string name = entry.path().filename().string();
    if (name != "root" && name != "outside") {
      std::fprintf(stderr, "a layer created %s next to the image root\n", name.c_str());
      std::abort();
    }
  }
  return 0;
}
