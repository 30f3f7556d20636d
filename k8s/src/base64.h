#pragma once
// Standard base64 (RFC 4648 section 4) for kubeconfig *-data fields.

#include <string>
#include <string_view>

namespace kbatch::k8s {

/// Decodes base64, ignoring whitespace; returns false on any other invalid input.
bool decodeBase64(std::string_view text, std::string* out);

}  // namespace kbatch::k8s
