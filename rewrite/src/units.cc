#include "kbatch/rewrite/units.h"

#include <cctype>
#include <limits>
#include <string>

namespace kbatch::rewrite {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool multiplyChecked(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  if (a != 0 && b > kMax / a) return false;
  *out = a * b;
  return true;
}

bool addChecked(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  if (b > kMax - a) return false;
  *out = a + b;
  return true;
}

/// Reads an unsigned integer as strtol(text, &end, 0) would (no sign accepted: a negative size is
/// meaningless). Advances *pos past it; false if no digit was read or it overflows.
bool readStrtolBase0(std::string_view text, std::size_t* pos, std::uint64_t* value) {
  std::size_t i = *pos;
  unsigned base = 10;
  if (i + 1 < text.size() && text[i] == '0' && lower(text[i + 1]) == 'x' && i + 2 < text.size() &&
      std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
    base = 16;
    i += 2;
  } else if (i < text.size() && text[i] == '0') {
    base = 8;
  }
  std::uint64_t result = 0;
  std::size_t start = i;
  for (; i < text.size(); ++i) {
    char c = lower(text[i]);
    unsigned digit;
    if (isDigit(c)) digit = static_cast<unsigned>(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') digit = static_cast<unsigned>(c - 'a' + 10);
    else break;
    if (digit >= base) break;
    if (!multiplyChecked(result, base, &result) || !addChecked(result, digit, &result)) return false;
  }
  if (i == start) return false;
  *pos = i;
  *value = result;
  return true;
}

/// A run of decimal digits as an unsigned number; false if empty, not all digits, or overflowing.
bool readDecimal(std::string_view text, std::uint64_t* value) {
  if (text.empty()) return false;
  std::uint64_t result = 0;
  for (char c : text) {
    if (!isDigit(c)) return false;
    if (!multiplyChecked(result, 10, &result) ||
        !addChecked(result, static_cast<std::uint64_t>(c - '0'), &result)) {
      return false;
    }
  }
  *value = result;
  return true;
}

/// Combines fields most-significant first with the given radices (e.g. {24, 60, 60}).
std::optional<std::uint64_t> combineFields(const std::uint64_t* fields, const std::uint64_t* radix,
                                           std::size_t count) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0 && !multiplyChecked(total, radix[i], &total)) return std::nullopt;
    if (!addChecked(total, fields[i], &total)) return std::nullopt;
  }
  return total;
}

}  // namespace

std::optional<std::uint64_t> parseTorqueSize(std::string_view text) {
  std::size_t pos = 0;
  std::uint64_t number = 0;
  if (!readStrtolBase0(text, &pos, &number)) return std::nullopt;
  unsigned shift = 0;
  bool unit_given = false;
  bool words = false;
  if (pos < text.size()) {
    switch (lower(text[pos])) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      case 'p': shift = 50; break;
      case 'b': unit_given = true; break;
      case 'w': unit_given = true; words = true; break;
      default: return std::nullopt;
    }
    ++pos;
  }
  if (pos < text.size()) {
    // A second suffix letter is only allowed after a multiplier (`kb`, `mw`), never after b/w.
    if (unit_given) return std::nullopt;
    char unit = lower(text[pos]);
    if (unit == 'w') words = true;
    else if (unit != 'b') return std::nullopt;
    ++pos;
  }
  if (pos != text.size()) return std::nullopt;
  std::uint64_t bytes = number;
  if (words && !multiplyChecked(bytes, kTorqueWordBytes, &bytes)) return std::nullopt;
  if (shift > 0) {
    if (bytes > (kMax >> shift)) return std::nullopt;
    bytes <<= shift;
  }
  return bytes;
}

std::optional<std::uint64_t> parseTorqueTime(std::string_view text) {
  std::string_view whole = text;
  std::string_view fraction;
  if (auto dot = text.find('.'); dot != std::string_view::npos) {
    whole = text.substr(0, dot);
    fraction = text.substr(dot + 1);
    for (char c : fraction) {
      if (!isDigit(c)) return std::nullopt;
    }
  }
  std::uint64_t fields[4];
  std::size_t count = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = whole.find(':', start);
    std::string_view field = whole.substr(start, colon == std::string_view::npos ? whole.npos
                                                                                   : colon - start);
    if (count == 4 || !readDecimal(field, &fields[count])) return std::nullopt;
    ++count;
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  static constexpr std::uint64_t kRadix[4] = {1, 24, 60, 60};
  // With fewer than four fields the leading ones are hours or minutes: use the tail of the radices.
  auto seconds = combineFields(fields, kRadix + (4 - count), count);
  if (!seconds) return std::nullopt;
  // decode_time rounds: milliseconds >= 500 add a second.
  if (!fraction.empty() && fraction[0] >= '5') {
    if (!addChecked(*seconds, 1, &*seconds)) return std::nullopt;
  }
  return seconds;
}

std::optional<std::uint64_t> parseSlurmTime(std::string_view text, bool* unlimited) {
  if (unlimited != nullptr) *unlimited = false;
  std::string lowered;
  for (char c : text) lowered += lower(c);
  if (lowered == "unlimited" || lowered == "infinite" || lowered == "-1") {
    if (unlimited != nullptr) *unlimited = true;
    return 0;
  }
  std::uint64_t days = 0;
  bool has_days = false;
  std::string_view rest = text;
  if (auto dash = text.find('-'); dash != std::string_view::npos) {
    if (!readDecimal(text.substr(0, dash), &days)) return std::nullopt;
    has_days = true;
    rest = text.substr(dash + 1);
  }
  std::uint64_t fields[3];
  std::size_t count = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = rest.find(':', start);
    std::string_view field =
        rest.substr(start, colon == std::string_view::npos ? rest.npos : colon - start);
    if (count == 3 || !readDecimal(field, &fields[count])) return std::nullopt;
    ++count;
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  std::uint64_t hours = 0, minutes = 0, seconds = 0;
  if (has_days) {
    // D-H, D-H:M, D-H:M:S
    hours = fields[0];
    if (count > 1) minutes = fields[1];
    if (count > 2) seconds = fields[2];
  } else if (count == 1) {
    minutes = fields[0];  // a bare number is minutes
  } else if (count == 2) {
    minutes = fields[0];  // M:S
    seconds = fields[1];
  } else {
    hours = fields[0];
    minutes = fields[1];
    seconds = fields[2];
  }
  const std::uint64_t parts[4] = {days, hours, minutes, seconds};
  static constexpr std::uint64_t kRadix[4] = {1, 24, 60, 60};
  return combineFields(parts, kRadix, 4);
}

std::optional<std::uint64_t> parseSlurmMemory(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && isDigit(text[digits])) ++digits;
  std::uint64_t number = 0;
  if (!readDecimal(text.substr(0, digits), &number)) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  unsigned shift = 20;  // megabytes by default
  if (!suffix.empty()) {
    switch (lower(suffix[0])) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      default: return std::nullopt;
    }
    suffix.remove_prefix(1);
    if (!suffix.empty() && lower(suffix[0]) == 'b') suffix.remove_prefix(1);  // "4GB"
    if (!suffix.empty()) return std::nullopt;
  }
  if (number > (kMax >> shift)) return std::nullopt;
  return number << shift;
}

std::optional<int> parsePositiveInt(std::string_view text) {
  std::uint64_t value = 0;
  if (!readDecimal(text, &value) || value == 0 ||
      value > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  return static_cast<int>(value);
}

}  // namespace kbatch::rewrite
