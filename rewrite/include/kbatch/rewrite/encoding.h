#pragma once
/// Byte encodings used by the rewriter: base64 for the job body, sha256 for the marker, and
/// POSIX-shell quoting for the words of the `kbatch exec` line.

#include <optional>
#include <string>
#include <string_view>

namespace kbatch::rewrite {

/// RFC 4648 base64 with `=` padding, broken into lines of `line_length` characters (each ending in
/// "\n"); line_length 0 means one line without a newline.
std::string encodeBase64(std::string_view bytes, std::size_t line_length = 76);

/// Decodes base64, ignoring "\n" and "\r" between characters; nullopt on any other stray byte or
/// bad padding.
std::optional<std::string> decodeBase64(std::string_view text);

/// Lower-case hex sha256 of `bytes`.
std::string sha256Hex(std::string_view bytes);

/// `word` as one POSIX shell word: unchanged when it holds only safe characters, else in single
/// quotes with each `'` written as `'\''`.
std::string quoteShellWord(std::string_view word);

}  // namespace kbatch::rewrite
