#pragma once
/// RFC 4648 base64 (standard alphabet, `=` padding): the job body in rewritten scripts, kubeconfig
/// `*-data` fields, registry `auth` entries. One strict decoder for all of them, so that no two
/// texts decode to the same bytes.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kbatch {

/// Encodes `bytes`; with `line_length` > 0 the text is broken into lines of that many characters,
/// each ending in "\n".
std::string encodeBase64(std::string_view bytes, std::size_t line_length = 0);

/// Decodes padded base64, ignoring "\n" and "\r" between characters; nullopt on any other stray
/// byte, data after padding, a length that is not a multiple of 4, or non-zero padding bits.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace kbatch
