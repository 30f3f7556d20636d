#include "kbatch/image/resolve.h"

#include <system_error>

#include "kbatch/common/error.h"

namespace kbatch::image {

std::filesystem::path resolveImageRoot(const std::string& reference, const ResolveOptions&) {
  std::error_code ec;
  std::filesystem::path path(reference);
  if (std::filesystem::is_directory(path, ec)) return std::filesystem::canonical(path);
  throw Error("find image", reference, "no such root filesystem directory",
              "give a directory holding the image's root filesystem", exit_code::kNotFound);
}

}  // namespace kbatch::image
