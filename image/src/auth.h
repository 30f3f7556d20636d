#pragma once
// Registry credentials (docker's config.json format) and WWW-Authenticate challenges.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace kbatch::image {

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  ///< OAuth2 refresh token ("identitytoken"), when present
};

/// Finds the credentials for `host` ("host[:port]") in a docker config.json document
/// (`auths.<host>.auth` = base64 "user:password", or `username`/`password`). Keys may be written as
/// "host", "https://host" or "https://host/v1/". `origin` names the file in errors.
std::optional<Credentials> parseAuthConfig(std::string_view document, std::string_view host,
                                           std::string_view origin);

/// The auth file kbatch reads: `override` if set, else $REGISTRY_AUTH_FILE, else
/// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
std::filesystem::path authFilePath(const std::filesystem::path& override_path = {});

/// Credentials for `host` from the auth file, if it exists and names the host.
std::optional<Credentials> loadCredentials(std::string_view host,
                                           const std::filesystem::path& override_path = {});

/// One challenge of a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`.
struct AuthChallenge {
  std::string scheme;  ///< lower case: "bearer", "basic"
  std::map<std::string, std::string> parameters;  ///< keys lower case
};

/// Parses the first challenge of a WWW-Authenticate header; throws kbatch::Error when malformed.
AuthChallenge parseAuthChallenge(std::string_view header);

/// Encodes standard padded base64 (kbatch::encodeBase64).
std::string base64Encode(std::string_view data);
/// Decodes standard padded base64; throws kbatch::Error naming `field` when invalid.
std::string base64Decode(std::string_view text, std::string_view field);

}  // namespace kbatch::image
