#include "kbatch/k8s/log_stream.h"

#include <ctime>

namespace kbatch::k8s {

std::int64_t parseRfc3339Nanos(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
      text[13] != ':' || text[16] != ':') {
    return -1;
  }
  auto number = [&](std::size_t at, std::size_t length, int* out) {
    int value = 0;
    for (std::size_t i = at; i < at + length; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      value = value * 10 + (text[i] - '0');
    }
    *out = value;
    return true;
  };
  std::tm tm{};
  int year, month, day, hour, minute, second;
  if (!number(0, 4, &year) || !number(5, 2, &month) || !number(8, 2, &day) ||
      !number(11, 2, &hour) || !number(14, 2, &minute) || !number(17, 2, &second)) {
    return -1;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (text[at] - '0');
        ++digits;
      }
      ++at;
    }
    if (digits == 0) return -1;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  std::int64_t offset = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    int oh, om;
    if (!number(at + 1, 2, &oh) || !number(at + 4, 2, &om)) return -1;
    offset = (text[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    at += 6;
  } else {
    return -1;
  }
  if (at != text.size()) return -1;
  const std::int64_t seconds = static_cast<std::int64_t>(timegm(&tm)) - offset;
  return seconds * 1000000000 + nanos;
}

void TimestampedLogReader::beginConnection() {
  partial_.clear();
  seen_at_last_ = 0;
}

void TimestampedLogReader::feed(std::string_view data, const LineSink& sink) {
  while (!data.empty()) {
    const std::size_t newline = data.find('\n');
    if (newline == std::string_view::npos) {
      partial_.append(data);
      return;
    }
    if (partial_.empty()) {
      handleLine(data.substr(0, newline + 1), sink);
    } else {
      partial_.append(data.substr(0, newline + 1));
      handleLine(partial_, sink);
      partial_.clear();
    }
    data.remove_prefix(newline + 1);
  }
}

void TimestampedLogReader::endConnection(bool complete, const LineSink& sink) {
  if (complete && !partial_.empty()) handleLine(partial_, sink);
  partial_.clear();
}

void TimestampedLogReader::handleLine(std::string_view line, const LineSink& sink) {
  const std::size_t space = line.find(' ');
  const std::int64_t stamp =
      space == std::string_view::npos ? -1 : parseRfc3339Nanos(line.substr(0, space));
  if (stamp < 0) {
    // A line without a timestamp (a server that ignored timestamps=true) cannot be deduplicated:
    // deliver it as it is.
    sink(line);
    ++delivered_;
    return;
  }
  const std::string_view content = line.substr(space + 1);
  if (stamp < last_ns_) return;  // delivered by an earlier connection
  if (stamp == last_ns_) {
    ++seen_at_last_;
    if (seen_at_last_ <= count_at_last_) return;
    count_at_last_ = seen_at_last_;
  } else {
    last_ns_ = stamp;
    count_at_last_ = 1;
    seen_at_last_ = 1;
  }
  sink(content);
  ++delivered_;
}

std::string TimestampedLogReader::resumeSinceTime() const {
  if (last_ns_ < 0) return {};
  const std::time_t seconds = static_cast<std::time_t>(last_ns_ / 1000000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace kbatch::k8s
