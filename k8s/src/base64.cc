#include "base64.h"

#include <cstdint>

namespace kbatch::k8s {

bool decodeBase64(std::string_view text, std::string* out) {
  out->clear();
  std::uint32_t accumulator = 0;
  int bits = 0;
  int padding = 0;
  for (char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') value = c - 'A';
    else if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
    else if (c >= '0' && c <= '9') value = c - '0' + 52;
    else if (c == '+') value = 62;
    else if (c == '/') value = 63;
    else if (c == '=') { ++padding; continue; }
    else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    else return false;
    if (padding > 0) return false;  // data after padding
    accumulator = (accumulator << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((accumulator >> bits) & 0xFFu));
    }
  }
  return padding <= 2;
}

}  // namespace kbatch::k8s
