#pragma once
// Splitting a directive's text into words. Blanks separate words, quotes group, a backslash
// outside quotes takes the next character literally, and an unquoted word starting with '#'
// begins a trailing comment. Whether the quote characters stay in the word depends on who reads
// the directive (see QuoteRule).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbatch::rewrite::detail {

enum class QuoteRule {
  /// #PBS, as TORQUE's qsub reads it (qsub_functions.c make_argv): the quote characters are kept
  /// in the word ("we need to include the quotes in what is passed on"), and each option decides
  /// what they mean (-l strips a quoted value's quotes; -N refuses them with a blank inside).
  /// qsub has no comment syntax, but it ignores operands in a directive, so a trailing "# ..."
  /// is read as a comment here.
  kKeepQuotes,
  /// #KBATCH and #SBATCH: shell-like, the quote characters are removed.
  kRemoveQuotes,
};

struct Word {
  std::string text;     ///< the word with quotes and escapes resolved
  std::size_t begin;    ///< offset of its first byte in the directive text
  std::size_t end;      ///< offset one past its last byte
};

/// Returns the words, or nullopt with *problem set (an unmatched quote, a trailing backslash).
std::optional<std::vector<Word>> splitDirectiveWords(std::string_view text, std::string* problem,
                                                     QuoteRule rule = QuoteRule::kRemoveQuotes);

/// `"text"` or `'text'` (one pair enclosing the whole word) -> `text`; anything else unchanged.
std::string stripEnclosingQuotes(std::string_view word);

}  // namespace kbatch::rewrite::detail
