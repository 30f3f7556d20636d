#include "text_checks.h"

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

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

// Counts the nodes a consumer would see if it expanded every alias, without expanding them: each
// anchored node remembers its expanded size, and an alias adds that size again.
class LimitCounter : public YAML::EventHandler {
 public:
  LimitCounter(std::size_t max_nodes, std::size_t max_aliases)
      : max_nodes_(max_nodes), max_aliases_(max_aliases) {}

  std::optional<YamlLimitViolation> violation;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) record(mark, "more than one YAML document; a policy is one document");
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (++aliases_ > max_aliases_) {
      record(mark, "more than " + std::to_string(max_aliases_) + " YAML aliases");
      return;
    }
    auto found = anchor_sizes_.find(anchor);
    std::size_t size = found == anchor_sizes_.end() ? 1 : found->second;
    add(mark, size);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(mark, anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    std::size_t size;
    YAML::Mark mark;
  };

  void record(const YAML::Mark& mark, std::string cause) {
    if (!violation) violation = YamlLimitViolation{{mark.line + 1, mark.column + 1}, std::move(cause)};
  }
  void add(const YAML::Mark& mark, std::size_t size) {
    // Saturating sums: sizes of nested aliases grow geometrically and must not wrap around.
    auto saturatingAdd = [](std::size_t x, std::size_t y) {
      return y > std::numeric_limits<std::size_t>::max() - x ? std::numeric_limits<std::size_t>::max()
                                                              : x + y;
    };
    auto& target = stack_.empty() ? total_ : stack_.back().size;
    target = saturatingAdd(target, size);
    std::size_t seen = total_;
    for (const auto& entry : stack_) seen = saturatingAdd(seen, entry.size);
    if (seen > max_nodes_) {
      record(mark, "more than " + std::to_string(max_nodes_) +
                       " YAML nodes once aliases are expanded (an alias bomb?)");
    }
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) anchor_sizes_[anchor] = 1;
    add(mark, 1);
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    stack_.push_back({anchor, 1, mark});
  }
  void close() {
    if (stack_.empty()) return;
    Open done = stack_.back();
    stack_.pop_back();
    if (done.anchor != YAML::NullAnchor) anchor_sizes_[done.anchor] = done.size;
    add(done.mark, done.size);
  }

  std::size_t max_nodes_;
  std::size_t max_aliases_;
  std::size_t aliases_ = 0;
  std::size_t total_ = 0;
  int documents_ = 0;
  std::vector<Open> stack_;
  std::map<YAML::anchor_t, std::size_t> anchor_sizes_;
};

}  // namespace

std::optional<YamlLimitViolation> checkYamlLimits(std::string_view text, std::size_t max_nodes,
                                                  std::size_t max_aliases) {
  std::istringstream stream{std::string(text)};
  YAML::Parser parser(stream);
  LimitCounter counter(max_nodes, max_aliases);
  // Syntax errors surface here as YAML::ParserException; the caller reports them with their mark.
  while (!counter.violation && parser.HandleNextDocument(counter)) {
  }
  return counter.violation;
}

namespace {

/// A node of a loaded tree, known by where it was parsed (aliases repeat their anchor's mark).
struct NodeKey {
  int pos, line, column, type;
  bool operator==(const NodeKey& other) const {
    return pos == other.pos && line == other.line && column == other.column && type == other.type;
  }
};
struct NodeKeyHash {
  std::size_t operator()(const NodeKey& key) const {
    return std::hash<long long>()((static_cast<long long>(key.pos) << 3) ^ key.type);
  }
};

class LoadedTreeCounter {
 public:
  LoadedTreeCounter(std::size_t max_nodes, std::size_t max_aliases)
      : max_nodes_(max_nodes), max_aliases_(max_aliases) {}

  std::optional<YamlLimitViolation> violation;

  // The expanded size of `node`'s subtree; each shared subtree is walked once.
  std::size_t count(const YAML::Node& node) {
    if (violation) return 0;
    const YAML::Mark mark = node.Mark();
    const NodeKey key{mark.pos, mark.line, mark.column, static_cast<int>(node.Type())};
    auto found = sizes_.find(key);
    if (found != sizes_.end()) {
      // Seen before: an alias to it (a node without a position, made up by the loader for an
      // empty value, is not one).
      if (mark.pos >= 0 && ++aliases_ > max_aliases_) {
        record(mark, "more than " + std::to_string(max_aliases_) + " YAML aliases");
      }
      return found->second;
    }
    sizes_[key] = 1;  // while inside: an alias to an enclosing node adds nothing more
    std::size_t size = 1;
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end() && !violation; ++it) {
        size = saturatingAdd(size, count(it->first));
        size = saturatingAdd(size, count(it->second));
      }
    } else if (node.IsSequence()) {
      for (auto it = node.begin(); it != node.end() && !violation; ++it) {
        size = saturatingAdd(size, count(*it));
      }
    }
    sizes_[key] = size;
    if (size > max_nodes_) {
      record(mark, "more than " + std::to_string(max_nodes_) +
                       " YAML nodes once aliases are expanded (an alias bomb?)");
    }
    return size;
  }

 private:
  static std::size_t saturatingAdd(std::size_t x, std::size_t y) {
    return y > std::numeric_limits<std::size_t>::max() - x ? std::numeric_limits<std::size_t>::max()
                                                            : x + y;
  }
  void record(const YAML::Mark& mark, std::string cause) {
    if (!violation) {
      violation = YamlLimitViolation{{std::max(mark.line, 0) + 1, std::max(mark.column, 0) + 1},
                                     std::move(cause)};
    }
  }

  std::size_t max_nodes_;
  std::size_t max_aliases_;
  std::size_t aliases_ = 0;
  std::unordered_map<NodeKey, std::size_t, NodeKeyHash> sizes_;
};

bool isDocumentMarker(std::string_view line, std::string_view marker) {
  return line.substr(0, 3) == marker && (line.size() == 3 || line[3] == ' ' || line[3] == '\t');
}

}  // namespace

std::optional<YamlLimitViolation> checkLoadedYamlLimits(const YAML::Node& root,
                                                        std::size_t max_nodes,
                                                        std::size_t max_aliases) {
  LoadedTreeCounter counter(max_nodes, max_aliases);
  counter.count(root);
  return counter.violation;
}

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
