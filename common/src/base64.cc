#include "kbatch/common/base64.h"

namespace kbatch {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decodeChar(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string encodeBase64(std::string_view bytes, std::size_t line_length) {
  std::string encoded;
  encoded.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    auto b0 = static_cast<unsigned char>(bytes[i]);
    auto b1 = static_cast<unsigned char>(bytes[i + 1]);
    auto b2 = static_cast<unsigned char>(bytes[i + 2]);
    encoded += kAlphabet[b0 >> 2];
    encoded += kAlphabet[((b0 & 0x03) << 4) | (b1 >> 4)];
    encoded += kAlphabet[((b1 & 0x0f) << 2) | (b2 >> 6)];
    encoded += kAlphabet[b2 & 0x3f];
  }
  if (std::size_t left = bytes.size() - i; left > 0) {
    auto b0 = static_cast<unsigned char>(bytes[i]);
    unsigned char b1 = left == 2 ? static_cast<unsigned char>(bytes[i + 1]) : 0;
    encoded += kAlphabet[b0 >> 2];
    encoded += kAlphabet[((b0 & 0x03) << 4) | (b1 >> 4)];
    encoded += left == 2 ? kAlphabet[(b1 & 0x0f) << 2] : '=';
    encoded += '=';
  }
  if (line_length == 0) return encoded;
  std::string lines;
  lines.reserve(encoded.size() + encoded.size() / line_length + 1);
  for (std::size_t pos = 0; pos < encoded.size(); pos += line_length) {
    lines.append(encoded, pos, line_length);
    lines += '\n';
  }
  return lines;
}

std::optional<std::string> decodeBase64(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size() / 4 * 3);
  unsigned buffer = 0;
  int bits = 0;
  int padding = 0;
  std::size_t symbols = 0;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n' || c == '\r') continue;
    if (c == '=') {
      ++padding;
      ++symbols;
      continue;
    }
    if (padding > 0) return std::nullopt;  // data after padding
    int value = decodeChar(c);
    if (value < 0) return std::nullopt;
    ++symbols;
    buffer = (buffer << 6) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  if (symbols % 4 != 0 || padding > 2) return std::nullopt;
  // The leftover bits of a padded group must be zero, or two texts would decode alike.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  if ((padding == 1 && bits != 2) || (padding == 2 && bits != 4) || (padding == 0 && bits != 0)) {
    return std::nullopt;
  }
  return decoded;
}

}  // namespace kbatch
