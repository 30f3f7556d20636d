#pragma once
/// Byte encodings used by the rewriter: sha256 for the marker, and POSIX-shell quoting for the
/// words of the `kbatch exec` line. (The job body's base64 is kbatch/common/base64.h.)

#include <string>
#include <string_view>

namespace kbatch::rewrite {

/// Lower-case hex sha256 of `bytes`.
std::string sha256Hex(std::string_view bytes);

/// `word` as one POSIX shell word: unchanged when it holds only safe characters, else in single
/// quotes with each `'` written as `'\''`.
std::string quoteShellWord(std::string_view word);

}  // namespace kbatch::rewrite
