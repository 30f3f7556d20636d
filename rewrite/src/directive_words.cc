#include "directive_words.h"

#include <cctype>

namespace kbatch::rewrite::detail {

std::optional<std::vector<Word>> splitDirectiveWords(std::string_view text, std::string* problem,
                                                     QuoteRule rule) {
  std::vector<Word> words;
  std::size_t i = 0;
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  const bool keep_quotes = rule == QuoteRule::kKeepQuotes;
  while (i < text.size()) {
    while (i < text.size() && blank(text[i])) ++i;
    if (i >= text.size()) break;
    if (text[i] == '#') break;  // trailing comment
    Word word{{}, i, i};
    while (i < text.size() && !blank(text[i])) {
      char c = text[i];
      if (c == '"' || c == '\'') {
        std::size_t close = text.find(c, i + 1);
        if (close == std::string_view::npos) {
          *problem = std::string("unmatched ") + c + " quote";
          return std::nullopt;
        }
        word.text.append(keep_quotes ? text.substr(i, close - i + 1)
                                     : text.substr(i + 1, close - i - 1));
        i = close + 1;
      } else if (c == '\\') {
        if (i + 1 >= text.size()) {
          *problem = "a backslash at the end of the directive";
          return std::nullopt;
        }
        word.text += text[i + 1];
        i += 2;
      } else {
        word.text += c;
        ++i;
      }
    }
    word.end = i;
    words.push_back(std::move(word));
  }
  return words;
}

std::string stripEnclosingQuotes(std::string_view word) {
  if (word.size() >= 2 && (word.front() == '"' || word.front() == '\'') &&
      word.back() == word.front() && word.find(word.front(), 1) == word.size() - 1) {
    return std::string(word.substr(1, word.size() - 2));
  }
  return std::string(word);
}

}  // namespace kbatch::rewrite::detail
