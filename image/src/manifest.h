#pragma once
// OCI image manifests, indexes and configs (and their Docker v2 schema 2 equivalents), parsed
// strictly: every missing or mistyped field is reported by its JSON path.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbatch::image {

namespace media_type {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media_type

/// The Accept header value for manifest requests: every manifest and index type kbatch reads.
std::string manifestAcceptHeader();

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  std::int64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
};

struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

/// True for OCI image index and Docker manifest list media types.
bool isIndexMediaType(std::string_view media_type);
/// True for layer media types kbatch can unpack (tar, gzip, zstd; OCI and Docker).
bool isSupportedLayerMediaType(std::string_view media_type);

/// The media type of a manifest document: the HTTP Content-Type when it names a known type, else
/// the document's own `mediaType` field. `origin` names the document in errors.
std::string detectManifestMediaType(std::string_view document, std::string_view content_type,
                                    std::string_view origin);

/// Parses an image manifest (OCI or Docker schema 2). Throws kbatch::Error naming `origin` and the
/// field on malformed input.
ImageManifest parseImageManifest(std::string_view document, std::string_view origin);

/// Parses an image index or manifest list.
ImageIndex parseImageIndex(std::string_view document, std::string_view origin);

/// This machine's platform in OCI terms (linux/amd64, linux/arm64/v8, ...).
Platform currentPlatform();

/// Picks the manifest for `platform` from an index; throws kbatch::Error listing what the index
/// offers when nothing matches.
const Descriptor& choosePlatformManifest(const ImageIndex& index, const Platform& platform,
                                         std::string_view origin);

/// The diff_ids (sha256 of each uncompressed layer) listed in an image config.
std::vector<std::string> parseConfigDiffIds(std::string_view config, std::string_view origin);

}  // namespace kbatch::image
