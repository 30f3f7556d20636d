#pragma once
// Splitting a directive's text into words, the way TORQUE's make_argv does for #PBS lines (and
// sbatch for #SBATCH): blanks separate words, quotes group (kbatch drops the quote characters),
// a backslash takes the next character literally, and an unquoted word starting with '#' begins a
// trailing comment.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbatch::rewrite::detail {

struct Word {
  std::string text;     ///< the word with quotes and escapes resolved
  std::size_t begin;    ///< offset of its first byte in the directive text
  std::size_t end;      ///< offset one past its last byte
};

/// Returns the words, or nullopt with *problem set (an unmatched quote, a trailing backslash).
std::optional<std::vector<Word>> splitDirectiveWords(std::string_view text, std::string* problem);

}  // namespace kbatch::rewrite::detail
