#include "kbatch/image/reference.h"

#include <filesystem>
#include <regex>
#include <system_error>

#include "digest.h"
#include "kbatch/common/error.h"

namespace kbatch::image {
namespace {

// Grammar from the OCI distribution spec: repository path components and tags.
const std::regex& repositoryPattern() {
  static const std::regex pattern(
      "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*");
  return pattern;
}
const std::regex& tagPattern() {
  static const std::regex pattern("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  return pattern;
}
// host[:port]: DNS name or IPv4 address, or a bracketed IPv6 address.
const std::regex& hostPattern() {
  static const std::regex pattern(
      "(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
      "|\\[[0-9a-fA-F:.]+\\])(:[0-9]{1,5})?");
  return pattern;
}

[[noreturn]] void malformed(const std::string& text, const std::string& cause,
                            const std::string& hint) {
  throw Error("parse image reference", text, cause, hint);
}

constexpr const char* kDockerHint = "write docker://HOST[:PORT]/REPOSITORY[:TAG|@sha256:HEX]";

// Splits "path[:tag]" for oci: and oci-archive: references: the tag is the part after the last
// colon, when that part contains no slash (so "oci:./dir" and "oci:/a:b/c" keep their colons).
void splitPathAndTag(const std::string& rest, ImageReference& reference, const std::string& text) {
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    reference.path = rest.substr(0, colon);
    reference.tag = rest.substr(colon + 1);
    if (!std::regex_match(reference.tag, tagPattern())) {
      malformed(text, "tag '" + reference.tag + "' is not a valid OCI tag",
                "tags are letters, digits, '_', '.', '-', at most 128 characters");
    }
  } else {
    reference.path = rest;
  }
  if (reference.path.empty()) malformed(text, "missing path", "write oci:DIR[:TAG]");
}

}  // namespace

ImageReference parseDockerReference(const std::string& text) {
  constexpr std::string_view kPrefix = "docker://";
  if (text.rfind(kPrefix, 0) != 0) malformed(text, "not a docker:// reference", kDockerHint);
  std::string rest = text.substr(kPrefix.size());
  ImageReference reference;
  reference.transport = Transport::kDocker;
  auto at = rest.find('@');
  if (at != std::string::npos) {
    reference.digest = rest.substr(at + 1);
    rest.resize(at);
    if (!isValidDigest(reference.digest)) {
      malformed(text, "digest '" + reference.digest + "' is not sha256: plus 64 lowercase hex digits",
                kDockerHint);
    }
  }
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) {
    malformed(text, "no registry host before the repository", kDockerHint);
  }
  reference.registry = rest.substr(0, slash);
  std::string repository = rest.substr(slash + 1);
  if (!std::regex_match(reference.registry, hostPattern())) {
    malformed(text, "registry host '" + reference.registry + "' is not HOST or HOST:PORT", kDockerHint);
  }
  // A tag follows the last colon that comes after the last slash.
  auto last_slash = repository.rfind('/');
  auto colon = repository.find(':', last_slash == std::string::npos ? 0 : last_slash);
  if (colon != std::string::npos) {
    reference.tag = repository.substr(colon + 1);
    repository.resize(colon);
    if (!std::regex_match(reference.tag, tagPattern())) {
      malformed(text, "tag '" + reference.tag + "' is not a valid OCI tag",
                "tags are letters, digits, '_', '.', '-', at most 128 characters");
    }
  }
  if (repository.empty() || !std::regex_match(repository, repositoryPattern())) {
    malformed(text, "repository '" + repository + "' is not a valid OCI repository name",
              "repository names are lowercase letters, digits and separators . _ __ - /");
  }
  reference.repository = repository;
  if (reference.tag.empty() && reference.digest.empty()) reference.tag = "latest";
  return reference;
}

ImageReference parseImageReference(const std::string& text) {
  if (text.empty()) malformed(text, "empty image reference", "give a directory or a docker://, oci: or oci-archive: reference");
  if (text.rfind("docker://", 0) == 0) return parseDockerReference(text);
  ImageReference reference;
  if (text.rfind("oci:", 0) == 0) {
    reference.transport = Transport::kOciLayout;
    splitPathAndTag(text.substr(4), reference, text);
    return reference;
  }
  if (text.rfind("oci-archive:", 0) == 0) {
    reference.transport = Transport::kOciArchive;
    splitPathAndTag(text.substr(12), reference, text);
    return reference;
  }
  auto scheme = text.find("://");
  if (scheme != std::string::npos && text.find('/') > scheme) {
    malformed(text, "unknown transport '" + text.substr(0, scheme) + "://'",
              "use docker://, oci:, oci-archive: or a directory");
  }
  std::error_code ec;
  if (std::filesystem::is_directory(text, ec)) {
    reference.transport = Transport::kDirectory;
    reference.path = text;
    return reference;
  }
  reference.transport = Transport::kStoreName;
  reference.name = text;
  if (isValidDigest(text)) reference.digest = text;
  return reference;
}

std::string ImageReference::storeName() const {
  switch (transport) {
    case Transport::kDocker:
      if (!tag.empty()) return registry + "/" + repository + ":" + tag;
      return registry + "/" + repository + "@" + digest;
    case Transport::kOciLayout:
    case Transport::kOciArchive: {
      std::error_code ec;
      auto absolute = std::filesystem::absolute(path, ec).lexically_normal().string();
      if (absolute.size() > 1 && absolute.back() == '/') absolute.pop_back();
      return std::string(transport == Transport::kOciLayout ? "oci:" : "oci-archive:") + absolute +
             (tag.empty() ? "" : ":" + tag);
    }
    case Transport::kDirectory: return path;
    case Transport::kStoreName: return name;
  }
  return name;
}

std::string ImageReference::toString() const {
  switch (transport) {
    case Transport::kDocker: {
      std::string text = "docker://" + registry + "/" + repository;
      if (!tag.empty()) text += ":" + tag;
      if (!digest.empty()) text += "@" + digest;
      return text;
    }
    case Transport::kOciLayout: return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::kOciArchive: return "oci-archive:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::kDirectory: return path;
    case Transport::kStoreName: return name;
  }
  return name;
}

bool namesRegistryHost(const std::string& name) {
  const auto slash = name.find('/');
  if (slash == std::string::npos || slash == 0) return false;
  const std::string first = name.substr(0, slash);
  return first.find_first_of(".:") != std::string::npos || first == "localhost";
}

}  // namespace kbatch::image
