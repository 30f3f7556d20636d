#include "kbatch/image/reference.h"

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "digest.h"
#include "kbatch/common/error.h"

namespace kbatch::image {
namespace {

// The grammar of the OCI distribution spec, matched by hand: std::regex compiles each pattern at
// run time (about 1.5 ms here for the three, callgrind), in every process that parses a reference.
// tests/unit/image/reference_test.cc checks these against the spec's regular expressions.

bool isAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
bool isValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (!isAlnum(tag[0]) && tag[0] != '_') return false;
  for (char c : tag.substr(1)) {
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// Path components separated by '/', each [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool isValidRepository(std::string_view repository) {
  if (repository.empty()) return false;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(repository.find('/', start), repository.size());
    const std::string_view component = repository.substr(start, end - start);
    if (component.empty() || !isLowerAlnum(component.front()) || !isLowerAlnum(component.back())) {
      return false;
    }
    for (std::size_t i = 0; i < component.size();) {
      if (isLowerAlnum(component[i])) {
        ++i;
        continue;
      }
      // A separator between two alphanumerics: '.', '_', '__', or a run of '-'.
      std::size_t run = i;
      while (run < component.size() && component[run] == component[i]) ++run;
      const std::size_t length = run - i;
      const char separator = component[i];
      if (!((separator == '.' && length == 1) || (separator == '_' && length <= 2) ||
            separator == '-')) {
        return false;
      }
      if (!isLowerAlnum(component[run])) return false;  // one separator, then alphanumerics
      i = run;
    }
    if (end == repository.size()) return true;
    start = end + 1;
  }
}

// host[:port]: DNS labels [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? joined by '.' (an IPv4 address
// included), or a bracketed IPv6 address [0-9a-fA-F:.]+; then :[0-9]{1,5}.
bool isValidRegistryHost(std::string_view host) {
  std::size_t end_of_name;
  if (!host.empty() && host.front() == '[') {
    end_of_name = host.find(']');
    if (end_of_name == std::string_view::npos || end_of_name == 1) return false;
    for (char c : host.substr(1, end_of_name - 1)) {
      const bool hex = isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return false;
    }
    ++end_of_name;
  } else {
    end_of_name = std::min(host.find(':'), host.size());
    const std::string_view name = host.substr(0, end_of_name);
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = std::min(name.find('.', start), name.size());
      const std::string_view label = name.substr(start, end - start);
      if (label.empty() || !isAlnum(label.front()) || !isAlnum(label.back())) return false;
      for (char c : label) {
        if (!isAlnum(c) && c != '-') return false;
      }
      if (end == name.size()) break;
      start = end + 1;
    }
  }
  const std::string_view port = host.substr(end_of_name);
  if (port.empty()) return true;
  if (port.front() != ':' || port.size() < 2 || port.size() > 6) return false;
  for (char c : port.substr(1)) {
    if (!isDigit(c)) return false;
  }
  return true;
}

namespace {

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
    if (!isValidTag(reference.tag)) {
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
  if (!isValidRegistryHost(reference.registry)) {
    malformed(text, "registry host '" + reference.registry + "' is not HOST or HOST:PORT", kDockerHint);
  }
  // A tag follows the last colon that comes after the last slash.
  auto last_slash = repository.rfind('/');
  auto colon = repository.find(':', last_slash == std::string::npos ? 0 : last_slash);
  if (colon != std::string::npos) {
    reference.tag = repository.substr(colon + 1);
    repository.resize(colon);
    if (!isValidTag(reference.tag)) {
      malformed(text, "tag '" + reference.tag + "' is not a valid OCI tag",
                "tags are letters, digits, '_', '.', '-', at most 128 characters");
    }
  }
  if (!isValidRepository(repository)) {
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
