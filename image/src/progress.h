#pragma once
// Transfer progress for pulls and pushes: a redrawn status line (layers, bytes, rate) when stderr
// is a terminal, one plain line per finished blob otherwise, nothing when quiet.

#include <chrono>
#include <cstdint>
#include <string>

namespace kbatch::image {

class TransferProgress {
 public:
  /// `verb` is "pull" or "push"; `total_blobs` the number of blobs the operation covers.
  TransferProgress(std::string verb, std::string image, int total_blobs, bool quiet);
  ~TransferProgress();

  void startBlob(const std::string& digest, std::uint64_t size);
  /// Bytes of the current blob transferred so far (absolute, not a delta).
  void updateBlob(std::uint64_t transferred);
  /// `how`: "downloaded", "present", "uploaded", "exists", "mounted".
  void finishBlob(const std::string& how);
  /// Final summary line.
  void finish();

  std::uint64_t bytesTransferred() const { return bytes_done_ + current_; }

 private:
  void redraw(bool force);
  std::string verb_;
  std::string image_;
  int total_blobs_;
  int finished_blobs_ = 0;
  bool quiet_;
  bool terminal_;
  std::string digest_;
  std::uint64_t size_ = 0;
  std::uint64_t current_ = 0;
  std::uint64_t bytes_done_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_draw_;
  bool line_dirty_ = false;
};

}  // namespace kbatch::image
