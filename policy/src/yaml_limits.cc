// What a YAML policy may hold before it is loaded or once it is: node and alias limits that keep
// an "alias bomb" from expanding. The only part of the text checks that needs yaml-cpp, kept
// apart so that what links the policy module without its YAML loader links no yaml-cpp (the
// `kbatch exec` front end, cli/src/exec_main.cc).

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <unordered_map>

#include "text_checks.h"

namespace kbatch::policy::detail {

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

}  // namespace

std::optional<YamlLimitViolation> checkLoadedYamlLimits(const YAML::Node& root,
                                                        std::size_t max_nodes,
                                                        std::size_t max_aliases) {
  LoadedTreeCounter counter(max_nodes, max_aliases);
  counter.count(root);
  return counter.violation;
}


}  // namespace kbatch::policy::detail
