#include "progress.h"

#include <unistd.h>

#include <cstdio>

#include "fs_util.h"
#include "kbatch/common/bytes.h"

namespace kbatch::image {
namespace {

// "sha256:0123456789ab..." -> "0123456789ab"
std::string shortDigest(const std::string& digest) {
  return digest.size() >= 19 ? digest.substr(7, 12) : digest;
}

}  // namespace

TransferProgress::TransferProgress(std::string verb, std::string image, int total_blobs, bool quiet)
    : verb_(std::move(verb)),
      image_(std::move(image)),
      total_blobs_(total_blobs),
      quiet_(quiet),
      terminal_(::isatty(STDERR_FILENO) == 1),
      started_(std::chrono::steady_clock::now()),
      last_draw_(started_) {}

TransferProgress::~TransferProgress() {
  if (line_dirty_) std::fputs("\n", stderr);
}

void TransferProgress::startBlob(const std::string& digest, std::uint64_t size) {
  digest_ = digest;
  size_ = size;
  current_ = 0;
  redraw(true);
}

void TransferProgress::updateBlob(std::uint64_t transferred) {
  current_ = transferred;
  redraw(false);
}

void TransferProgress::finishBlob(const std::string& how) {
  ++finished_blobs_;
  bool moved = how == "downloaded" || how == "uploaded";
  if (moved) bytes_done_ += current_;
  current_ = 0;
  if (quiet_) return;
  if (terminal_) {
    redraw(true);
  } else {
    std::fprintf(stderr, "kbatch: %s %s: blob %d/%d %s %s (%s)\n", verb_.c_str(), image_.c_str(),
                 finished_blobs_, total_blobs_, shortDigest(digest_).c_str(), how.c_str(),
                 formatBytes(size_).c_str());
  }
}

void TransferProgress::redraw(bool force) {
  if (quiet_ || !terminal_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double seconds = std::chrono::duration<double>(now - started_).count();
  std::uint64_t moved = bytes_done_ + current_;
  auto rate = static_cast<std::uint64_t>(seconds > 0 ? static_cast<double>(moved) / seconds : 0);
  std::fprintf(stderr, "\r\033[K%s %s: blobs %d/%d, %s this blob %s/%s, %s/s", verb_.c_str(),
               image_.c_str(), finished_blobs_, total_blobs_, shortDigest(digest_).c_str(),
               formatBytes(current_).c_str(), formatBytes(size_).c_str(), formatBytes(rate).c_str());
  std::fflush(stderr);
  line_dirty_ = true;
}

void TransferProgress::finish() {
  if (quiet_) return;
  if (line_dirty_) {
    std::fputs("\n", stderr);
    line_dirty_ = false;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::fprintf(stderr, "kbatch: %s %s: %d blobs, %s transferred in %.1f s\n", verb_.c_str(),
               image_.c_str(), total_blobs_, formatBytes(bytes_done_).c_str(), seconds);
}

}  // namespace kbatch::image
