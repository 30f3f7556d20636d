#include "text_checks.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_map>

namespace kbatch::policy::detail {

TextPosition positionOfOffset(std::string_view text, std::size_t offset) {
  TextPosition position{1, 1};
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++position.line;
      position.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++position.column;  // count characters, not continuation bytes
    }
  }
  return position;
}

std::optional<TextPosition> findInvalidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (byte < 0x80) {
      // NUL is valid UTF-8 but never valid in a policy; yaml-cpp would stop reading at it.
      if (byte == 0) return positionOfOffset(text, i);
      ++i;
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      length = 2;
      code = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      length = 3;
      code = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      length = 4;
      code = byte & 0x07;
    } else {
      return positionOfOffset(text, i);
    }
    if (i + length > text.size()) return positionOfOffset(text, i);
    for (std::size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return positionOfOffset(text, i);
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid (RFC 3629).
    static constexpr std::array<std::uint32_t, 5> kMinimum = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return positionOfOffset(text, i);
    }
    i += length;
  }
  return std::nullopt;
}

namespace {

bool isDocumentMarker(std::string_view line, std::string_view marker) {
  return line.substr(0, 3) == marker && (line.size() == 3 || line[3] == ' ' || line[3] == '\t');
}

}  // namespace

std::optional<TextPosition> findSecondDocument(std::string_view text) {
  bool content = false;  // the first document has begun
  bool ended = false;    // ... closed it
  int line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t newline = text.find('\n', start);
    std::string_view line = text.substr(start, newline == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : newline - start);
    start = newline == std::string_view::npos ? text.size() : newline + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (isDocumentMarker(line, "---")) {
      if (content || ended) return TextPosition{line_number, 1};
      content = true;  // an explicit start of the first document
      continue;
    }
    if (isDocumentMarker(line, "...")) {
      ended = true;
      continue;
    }
    std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;  // blank or comment
    if (line[0] == '%' && !content) continue;  // a directive before the document
    if (ended) return TextPosition{line_number, 1};
    content = true;
  }
  return std::nullopt;
}

std::optional<std::string> closestMatch(const std::string& word,
                                        const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::size_t> previous(b.size() + 1), current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      current[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
        current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
      }
      std::swap(previous, current);
    }
    return previous[b.size()];
  };
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    std::size_t d = distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

bool globMatches(std::string_view pattern, std::string_view text) {
  // The literal prefix decides most non-matches at once: a site's patterns share a registry and
  // differ in a project name, and `kbatch exec` matches the job's image against every one of them.
  std::size_t literal = pattern.find_first_of("*?");
  if (literal == std::string_view::npos) return pattern == text;
  if (text.substr(0, literal) != pattern.substr(0, literal)) return false;
  enum class Token { kLiteral, kOne, kStar, kDoubleStar };
  std::vector<std::pair<Token, char>> tokens;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      tokens.emplace_back(Token::kDoubleStar, 0);
      ++i;
    } else if (pattern[i] == '*') {
      tokens.emplace_back(Token::kStar, 0);
    } else if (pattern[i] == '?') {
      tokens.emplace_back(Token::kOne, 0);
    } else {
      tokens.emplace_back(Token::kLiteral, pattern[i]);
    }
  }
  // Dynamic programming from the end: after step i, row[j] says whether tokens[i..] match
  // text[j..]. Linear in |tokens| * |text|, so a hostile pattern full of stars cannot make
  // matching exponential.
  const std::size_t t = text.size();
  std::vector<char> row(t + 1, 0), next(t + 1, 0);
  row[t] = 1;
  for (std::size_t i = tokens.size(); i-- > 0;) {
    auto [kind, literal] = tokens[i];
    for (std::size_t j = t + 1; j-- > 0;) {
      bool more = j < t;
      switch (kind) {
        case Token::kDoubleStar: next[j] = row[j] || (more && next[j + 1]); break;
        case Token::kStar: next[j] = row[j] || (more && text[j] != '/' && next[j + 1]); break;
        case Token::kOne: next[j] = more && text[j] != '/' && row[j + 1]; break;
        case Token::kLiteral: next[j] = more && text[j] == literal && row[j + 1]; break;
      }
    }
    row.swap(next);
  }
  return row[0] != 0;
}

std::string globToRegex(std::string_view pattern) {
  std::string regex = "^";
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      regex += ".*";
      ++i;
    } else if (c == '*') {
      regex += "[^/]*";
    } else if (c == '?') {
      regex += "[^/]";
    } else if (std::string_view(".+()[]{}|^$\\").find(c) != std::string_view::npos) {
      regex += '\\';
      regex += c;
    } else {
      regex += c;
    }
  }
  return regex + "$";
}

std::optional<std::uint64_t> parseByteSize(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) return std::nullopt;
  std::uint64_t value = std::stoull(std::string(text.substr(0, digits)));
  std::string unit(text.substr(digits));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, unsigned> kShift = {
      {"", 0},   {"b", 0},   {"k", 10},  {"kb", 10},  {"ki", 10},  {"kib", 10},
      {"m", 20}, {"mb", 20}, {"mi", 20}, {"mib", 20}, {"g", 30},   {"gb", 30},
      {"gi", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"ti", 40},  {"tib", 40}};
  auto found = kShift.find(unit);
  if (found == kShift.end()) return std::nullopt;
  if (found->second > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> found->second)) {
    return std::nullopt;
  }
  return value << found->second;
}

std::optional<std::uint64_t> parseDuration(std::string_view text) {
  std::vector<std::uint64_t> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = text.find(':', start);
    std::string_view part = text.substr(start, colon == std::string_view::npos ? colon : colon - start);
    if (part.empty() || part.size() > 12 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    parts.push_back(std::stoull(std::string(part)));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3) return std::nullopt;
  std::uint64_t seconds = 0;
  for (auto part : parts) seconds = seconds * 60 + part;
  return seconds;
}

bool pathIsWithin(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return !path.empty() && path[0] == '/';
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

namespace {
// Where the system lives: writable binds of these (or of a directory above them) would let a
// job change the node for everyone.
const std::vector<std::string> kSystemDirectories = {
    "/bin", "/boot", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/root", "/run", "/sbin",
    "/usr", "/var/lib", "/var/log", "/var/spool", "/var/cache", "/var/run", "/proc", "/sys", "/dev"};
// The runner gives every job fresh ones; the host's would expose every process and device.
const std::vector<std::string> kKernelDirectories = {"/proc", "/sys", "/dev"};
}  // namespace

bool isForbiddenWritablePath(const std::string& path) {
  for (const auto& system : kSystemDirectories) {
    if (pathIsWithin(path, system) || pathIsWithin(system, path)) return true;
  }
  return false;
}

bool isForbiddenBindPath(const std::string& path) {
  for (const auto& kernel : kKernelDirectories) {
    if (pathIsWithin(path, kernel) || pathIsWithin(kernel, path)) return true;
  }
  return false;
}

}  // namespace kbatch::policy::detail
