#pragma once
// Checks on policy text made before any YAML parser sees it, plus small helpers shared by the
// loader and the evaluator.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
}

namespace kbatch::policy::detail {

/// Position of the first byte that is not valid UTF-8, as 1-based line and column.
struct TextPosition {
  int line = 0;
  int column = 0;
};
std::optional<TextPosition> findInvalidUtf8(std::string_view text);
/// 1-based line and column of a byte offset.
TextPosition positionOfOffset(std::string_view text, std::size_t offset);

/// Limits on the YAML event stream: aliases, nodes after expanding aliases, documents.
struct YamlLimitViolation {
  TextPosition where;
  std::string cause;
};
std::optional<YamlLimitViolation> checkYamlLimits(std::string_view text, std::size_t max_nodes,
                                                  std::size_t max_aliases);
/// The same limits on the tree YAML::Load built, where an alias shares its anchor's node (a node
/// is known by its mark): walking it costs the unique nodes, not the expanded ones, so that one
/// parse of the text serves both the limits and the policy.
std::optional<YamlLimitViolation> checkLoadedYamlLimits(const YAML::Node& root,
                                                        std::size_t max_nodes,
                                                        std::size_t max_aliases);
/// Where a second YAML document starts: a "---" line after content, or content after a "..."
/// line (document markers stand at column 0, where no scalar's text can be). YAML::Load reads
/// only the first document, so a policy split in two would otherwise lose its second half.
std::optional<TextPosition> findSecondDocument(std::string_view text);

/// The closest candidate within a small edit distance, for "did you mean ...?".
std::optional<std::string> closestMatch(const std::string& word,
                                        const std::vector<std::string>& candidates);

/// Glob over '/'-separated text: `*`, `?` stay within a component; `**` crosses '/'.
bool globMatches(std::string_view pattern, std::string_view text);
/// The same glob as an RE2/CEL regular expression, anchored.
std::string globToRegex(std::string_view pattern);

/// "64G", "512MiB", "1024" -> bytes (binary units, as TORQUE's mem=).
std::optional<std::uint64_t> parseByteSize(std::string_view text);
/// "3600", "1:00:00", "90:00" -> seconds (as PBS walltime).
std::optional<std::uint64_t> parseDuration(std::string_view text);

/// True for "/" and the system directories no job may write to, or bind at all (/proc, /sys,
/// /dev): `path` is lexically normal and absolute.
bool isForbiddenWritablePath(const std::string& path);
bool isForbiddenBindPath(const std::string& path);
/// True if `path` is `prefix` or inside it (component-wise; both lexically normal).
bool pathIsWithin(const std::string& path, const std::string& prefix);

}  // namespace kbatch::policy::detail
