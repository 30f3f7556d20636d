#pragma once
// Builds tar layers in memory with libarchive, including hostile ones no honest tool would write.

#include <cstdint>
#include <filesystem>
#include <string>

namespace kbatch::image::testing {

class TarBuilder {
 public:
  enum class Compression { kNone, kGzip, kZstd };
  explicit TarBuilder(Compression compression = Compression::kNone);
  ~TarBuilder();
  TarBuilder& file(const std::string& path, const std::string& content, unsigned mode = 0644);
  /// A regular file header declaring `declared_size` bytes followed by no data at all.
  TarBuilder& fileHeaderOnly(const std::string& path, std::int64_t declared_size);
  TarBuilder& directory(const std::string& path, unsigned mode = 0755);
  TarBuilder& symlink(const std::string& path, const std::string& target);
  TarBuilder& hardlink(const std::string& path, const std::string& target);
  TarBuilder& charDevice(const std::string& path);
  /// Finishes the archive and returns its bytes.
  std::string finish();

 private:
  struct State;
  State* state_;
};

/// A fresh directory under the test temp dir, removed by the caller's fixture.
std::filesystem::path makeTempDir(const std::string& prefix);

}  // namespace kbatch::image::testing
