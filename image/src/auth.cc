#include "auth.h"

#include <cctype>
#include <cstdlib>
#include <optional>
#include <system_error>

#include <nlohmann/json.hpp>

#include "fs_util.h"
#include "kbatch/common/base64.h"
#include "kbatch/common/error.h"

namespace kbatch::image {
namespace {

// "https://host:5000/v1/" -> "host:5000"
std::string normalizeAuthKey(std::string_view key) {
  if (auto scheme = key.find("://"); scheme != std::string_view::npos) key.remove_prefix(scheme + 3);
  if (auto slash = key.find('/'); slash != std::string_view::npos) key = key.substr(0, slash);
  std::string lowered(key);
  for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lowered;
}

}  // namespace

std::string base64Encode(std::string_view data) { return encodeBase64(data); }

std::string base64Decode(std::string_view text, std::string_view field) {
  std::optional<std::string> decoded = decodeBase64(text);
  if (!decoded) {
    throw Error("decode base64", std::string(field),
                "not canonical base64 (RFC 4648 alphabet, '=' padding to a multiple of 4)");
  }
  return *decoded;
}

std::optional<Credentials> parseAuthConfig(std::string_view document, std::string_view host,
                                           std::string_view origin) {
  using nlohmann::json;
  json config = json::parse(document.begin(), document.end(), nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    throw Error("read registry credentials", std::string(origin), "not a JSON object");
  }
  auto auths = config.find("auths");
  if (auths == config.end()) return std::nullopt;
  if (!auths->is_object()) {
    throw Error("read registry credentials", std::string(origin), "field 'auths': expected an object");
  }
  std::string wanted = normalizeAuthKey(host);
  for (const auto& item : auths->items()) {
    // Named references rather than a structured binding: clang 14 cannot capture bindings in lambdas.
    const std::string& key = item.key();
    const auto& entry = item.value();
    if (normalizeAuthKey(key) != wanted) continue;
    std::string field = "auths." + key;
    if (!entry.is_object()) {
      throw Error("read registry credentials", std::string(origin), "field '" + field + "': expected an object");
    }
    Credentials credentials;
    auto text = [&](const char* name) -> std::string {
      auto it = entry.find(name);
      if (it == entry.end()) return {};
      if (!it->is_string()) {
        throw Error("read registry credentials", std::string(origin),
                    "field '" + field + "." + name + "': expected a string");
      }
      return it->get<std::string>();
    };
    std::string encoded = text("auth");
    if (!encoded.empty()) {
      std::string decoded = base64Decode(encoded, std::string(origin) + ": " + field + ".auth");
      auto colon = decoded.find(':');
      if (colon == std::string::npos) {
        throw Error("read registry credentials", std::string(origin),
                    "field '" + field + ".auth': expected base64 of 'user:password'");
      }
      credentials.username = decoded.substr(0, colon);
      credentials.password = decoded.substr(colon + 1);
    } else {
      credentials.username = text("username");
      credentials.password = text("password");
    }
    credentials.identity_token = text("identitytoken");
    if (credentials.username.empty() && credentials.identity_token.empty()) return std::nullopt;
    return credentials;
  }
  return std::nullopt;
}

std::filesystem::path authFilePath(const std::filesystem::path& override_path) {
  if (!override_path.empty()) return override_path;
  if (const char* file = std::getenv("REGISTRY_AUTH_FILE"); file != nullptr && *file) return file;
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir) {
    return std::filesystem::path(dir) / "config.json";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home) {
    return std::filesystem::path(home) / ".docker" / "config.json";
  }
  return {};
}

std::optional<Credentials> loadCredentials(std::string_view host,
                                           const std::filesystem::path& override_path) {
  std::filesystem::path file = authFilePath(override_path);
  std::error_code ec;
  if (file.empty() || !std::filesystem::exists(file, ec)) return std::nullopt;
  std::string document = readFileLimited(file, 4 << 20);
  return parseAuthConfig(document, host, file.string());
}

AuthChallenge parseAuthChallenge(std::string_view header) {
  AuthChallenge challenge;
  size_t i = 0;
  auto skipSpaces = [&] {
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
  };
  skipSpaces();
  size_t start = i;
  while (i < header.size() && header[i] != ' ') ++i;
  for (char c : header.substr(start, i - start)) {
    challenge.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (challenge.scheme.empty()) {
    throw Error("parse WWW-Authenticate header", std::string(header), "no authentication scheme");
  }
  while (i < header.size()) {
    skipSpaces();
    size_t key_start = i;
    while (i < header.size() && header[i] != '=' && header[i] != ',') ++i;
    std::string key;
    for (char c : header.substr(key_start, i - key_start)) {
      if (c != ' ') key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (i >= header.size() || header[i] == ',') {
      ++i;
      continue;
    }
    ++i;  // '='
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      bool closed = false;
      while (i < header.size()) {
        char c = header[i++];
        if (c == '\\' && i < header.size()) value += header[i++];
        else if (c == '"') {
          closed = true;
          break;
        } else value += c;
      }
      if (!closed) {
        throw Error("parse WWW-Authenticate header", std::string(header),
                    "unterminated quoted value for '" + key + "'");
      }
    } else {
      while (i < header.size() && header[i] != ',') value += header[i++];
      while (!value.empty() && value.back() == ' ') value.pop_back();
    }
    if (!key.empty()) challenge.parameters[key] = value;
    skipSpaces();
    if (i < header.size() && header[i] == ',') ++i;
  }
  return challenge;
}

}  // namespace kbatch::image
