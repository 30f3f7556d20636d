#pragma once
/// Following a container's log across reconnects without losing or duplicating a line. The logs
/// API is asked for `timestamps=true`: every line starts with its RFC 3339 (nanosecond) time. A
/// reconnect asks for `sinceTime` (whole seconds, the precision the API guarantees), so the server
/// repeats the lines of that second; the reader drops every line older than the last one it
/// delivered, and as many lines at exactly that time as it already delivered.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kbatch::k8s {

/// Nanoseconds since the epoch of an RFC 3339 time ("2026-01-02T03:04:05.123Z"); -1 if invalid.
std::int64_t parseRfc3339Nanos(std::string_view text);

class TimestampedLogReader {
 public:
  /// Receives one new line (without its timestamp, with its newline if it had one).
  using LineSink = std::function<void(std::string_view line)>;

  /// A new connection starts: counting of repeated lines restarts.
  void beginConnection();
  /// Feeds bytes of the stream; complete new lines go to `sink`.
  void feed(std::string_view data, const LineSink& sink);
  /// The stream ended. When `complete`, a last line without newline is delivered; when the
  /// connection was cut it is dropped, because the next connection sends it again.
  void endConnection(bool complete, const LineSink& sink);
  /// `sinceTime` for the next connection (RFC 3339, seconds); empty before the first line.
  std::string resumeSinceTime() const;
  /// Lines delivered so far.
  std::uint64_t deliveredLines() const noexcept { return delivered_; }

 private:
  void handleLine(std::string_view line, const LineSink& sink);

  std::string partial_;
  std::int64_t last_ns_ = -1;        ///< time of the newest delivered line
  std::uint64_t count_at_last_ = 0;  ///< delivered lines carrying exactly last_ns_
  std::uint64_t seen_at_last_ = 0;   ///< lines at last_ns_ seen on this connection
  std::uint64_t delivered_ = 0;
};

}  // namespace kbatch::k8s
