#pragma once
/// What a user writes as IMAGE: `docker://HOST[:PORT]/REPO[:TAG|@sha256:...]`, `oci:DIR[:TAG]`,
/// `oci-archive:FILE[:TAG]`, a root filesystem directory, or the name of an image in the store.

#include <string>
#include <string_view>

namespace kbatch::image {

enum class Transport {
  kDocker,      ///< a registry speaking the OCI distribution API v2
  kOciLayout,   ///< an OCI image layout directory
  kOciArchive,  ///< a tar file holding an OCI image layout
  kDirectory,   ///< an existing root filesystem directory
  kStoreName,   ///< a name or digest already in the local store
};

struct ImageReference {
  Transport transport = Transport::kStoreName;
  std::string registry;    ///< docker: "host[:port]"
  std::string repository;  ///< docker: "team/app"
  std::string tag;         ///< docker, oci, oci-archive: tag (docker defaults to "latest")
  std::string digest;      ///< docker: "sha256:..." when pinned; store: a manifest digest
  std::string path;        ///< oci, oci-archive, directory: the filesystem path as written
  std::string name;        ///< store: the name as written

  /// The name this image has in the store ("host:port/repo:tag", "host/repo@sha256:...",
  /// "oci:/abs/dir:tag", ...).
  std::string storeName() const;
  /// The reference in the syntax the user wrote it, e.g. "docker://host/repo:tag".
  std::string toString() const;
};

/// Parses a reference; throws kbatch::Error naming the bad part (with a hint) when malformed.
/// A string with no transport prefix is a directory when such a directory exists, else a store name.
ImageReference parseImageReference(const std::string& text);

/// Parses only `docker://...` references (for `kbatch push` destinations).
ImageReference parseDockerReference(const std::string& text);

/// The OCI distribution spec's grammar: a tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}), a repository
/// name (lowercase path components joined by '.', '_', '__' or runs of '-'), and a registry
/// host (DNS name, IPv4 address or bracketed IPv6 address, with an optional port).
bool isValidTag(std::string_view tag);
bool isValidRepository(std::string_view repository);
bool isValidRegistryHost(std::string_view host);

/// Whether a name without transport starts with a registry host, as container runtimes decide it
/// ("host.domain/...", "host:port/...", "localhost/..."), rather than naming a repository on a
/// runtime's default registry ("team/app:1") or a local store name.
bool namesRegistryHost(const std::string& name);

}  // namespace kbatch::image
