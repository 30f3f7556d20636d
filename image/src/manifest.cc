#include "manifest.h"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "digest.h"
#include "kbatch/common/error.h"

namespace kbatch::image {
namespace {

using nlohmann::json;

[[noreturn]] void badField(std::string_view origin, const std::string& field,
                           const std::string& expected) {
  throw Error("parse image metadata", std::string(origin),
              "field '" + field + "': expected " + expected);
}

json parseJson(std::string_view document, std::string_view origin) {
  json value = json::parse(document.begin(), document.end(), nullptr, false);
  if (value.is_discarded()) {
    throw Error("parse image metadata", std::string(origin), "not valid JSON");
  }
  if (!value.is_object()) badField(origin, "(top level)", "a JSON object");
  return value;
}

std::string requireString(const json& object, const char* key, const std::string& path,
                          std::string_view origin) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) badField(origin, path + key, "a string");
  return it->get<std::string>();
}

std::string optionalString(const json& object, const char* key, const std::string& path,
                           std::string_view origin) {
  auto it = object.find(key);
  if (it == object.end()) return {};
  if (!it->is_string()) badField(origin, path + key, "a string");
  return it->get<std::string>();
}

void checkSchemaVersion(const json& document, std::string_view origin) {
  auto it = document.find("schemaVersion");
  if (it == document.end() || !it->is_number_integer() || it->get<int>() != 2) {
    badField(origin, "schemaVersion", "2 (schema 1 manifests are not supported)");
  }
}

Descriptor parseDescriptor(const json& value, const std::string& path, std::string_view origin) {
  if (!value.is_object()) badField(origin, path, "a descriptor object");
  Descriptor descriptor;
  descriptor.media_type = requireString(value, "mediaType", path + ".", origin);
  descriptor.digest = requireString(value, "digest", path + ".", origin);
  if (!isValidDigest(descriptor.digest)) {
    badField(origin, path + ".digest", "sha256: followed by 64 lowercase hex digits");
  }
  auto size = value.find("size");
  if (size == value.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0) {
    badField(origin, path + ".size", "a non-negative integer");
  }
  descriptor.size = size->get<std::int64_t>();
  if (auto platform = value.find("platform"); platform != value.end()) {
    if (!platform->is_object()) badField(origin, path + ".platform", "an object");
    Platform parsed;
    parsed.os = requireString(*platform, "os", path + ".platform.", origin);
    parsed.architecture = requireString(*platform, "architecture", path + ".platform.", origin);
    parsed.variant = optionalString(*platform, "variant", path + ".platform.", origin);
    descriptor.platform = parsed;
  }
  if (auto annotations = value.find("annotations"); annotations != value.end()) {
    if (!annotations->is_object()) badField(origin, path + ".annotations", "an object");
    for (const auto& [key, text] : annotations->items()) {
      if (!text.is_string()) badField(origin, path + ".annotations." + key, "a string");
      descriptor.annotations[key] = text.get<std::string>();
    }
  }
  return descriptor;
}

}  // namespace

std::string manifestAcceptHeader() {
  return std::string(media_type::kOciManifest) + ", " + std::string(media_type::kOciIndex) + ", " +
         std::string(media_type::kDockerManifest) + ", " +
         std::string(media_type::kDockerManifestList);
}

bool isIndexMediaType(std::string_view media_type) {
  return media_type == media_type::kOciIndex || media_type == media_type::kDockerManifestList;
}

bool isSupportedLayerMediaType(std::string_view media_type) {
  return media_type == media_type::kOciLayer || media_type == media_type::kOciLayerGzip ||
         media_type == media_type::kOciLayerZstd || media_type == media_type::kDockerLayerGzip ||
         media_type == media_type::kDockerForeignLayerGzip ||
         // Non-distributable OCI layers are ordinary layers whose blobs may live elsewhere.
         media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar" ||
         media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
         media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}

std::string detectManifestMediaType(std::string_view document, std::string_view content_type,
                                    std::string_view origin) {
  // Content-Type may carry parameters ("; charset=utf-8").
  std::string_view bare = content_type.substr(0, content_type.find(';'));
  while (!bare.empty() && bare.back() == ' ') bare.remove_suffix(1);
  if (bare == media_type::kOciManifest || bare == media_type::kOciIndex ||
      bare == media_type::kDockerManifest || bare == media_type::kDockerManifestList) {
    return std::string(bare);
  }
  json value = parseJson(document, origin);
  std::string declared = optionalString(value, "mediaType", "", origin);
  if (!declared.empty()) return declared;
  // OCI allows mediaType to be absent; an index is recognisable by its "manifests" array.
  if (value.contains("manifests")) return std::string(media_type::kOciIndex);
  if (value.contains("layers")) return std::string(media_type::kOciManifest);
  badField(origin, "mediaType", "an image manifest or index media type");
}

ImageManifest parseImageManifest(std::string_view document, std::string_view origin) {
  json value = parseJson(document, origin);
  checkSchemaVersion(value, origin);
  ImageManifest manifest;
  manifest.media_type = optionalString(value, "mediaType", "", origin);
  if (manifest.media_type.empty()) manifest.media_type = media_type::kOciManifest;
  if (manifest.media_type != media_type::kOciManifest &&
      manifest.media_type != media_type::kDockerManifest) {
    badField(origin, "mediaType", "an OCI or Docker schema 2 image manifest, not '" +
                                      manifest.media_type + "'");
  }
  auto config = value.find("config");
  if (config == value.end()) badField(origin, "config", "a descriptor object");
  manifest.config = parseDescriptor(*config, "config", origin);
  auto layers = value.find("layers");
  if (layers == value.end() || !layers->is_array()) badField(origin, "layers", "an array");
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string path = "layers[" + std::to_string(i) + "]";
    Descriptor layer = parseDescriptor((*layers)[i], path, origin);
    if (!isSupportedLayerMediaType(layer.media_type)) {
      badField(origin, path + ".mediaType",
               "a tar, tar+gzip or tar+zstd layer, not '" + layer.media_type + "'");
    }
    manifest.layers.push_back(std::move(layer));
  }
  return manifest;
}

ImageIndex parseImageIndex(std::string_view document, std::string_view origin) {
  json value = parseJson(document, origin);
  checkSchemaVersion(value, origin);
  ImageIndex index;
  index.media_type = optionalString(value, "mediaType", "", origin);
  if (index.media_type.empty()) index.media_type = media_type::kOciIndex;
  auto manifests = value.find("manifests");
  if (manifests == value.end() || !manifests->is_array()) badField(origin, "manifests", "an array");
  for (size_t i = 0; i < manifests->size(); ++i) {
    index.manifests.push_back(
        parseDescriptor((*manifests)[i], "manifests[" + std::to_string(i) + "]", origin));
  }
  return index;
}

Platform currentPlatform() {
  utsname name {};
  ::uname(&name);
  std::string machine = name.machine;
  Platform platform{"linux", machine, ""};
  // GOARCH names, which OCI uses.
  if (machine == "x86_64") platform.architecture = "amd64";
  else if (machine == "aarch64" || machine == "arm64") {
    platform.architecture = "arm64";
    platform.variant = "v8";
  } else if (machine == "i386" || machine == "i686") platform.architecture = "386";
  else if (machine.rfind("armv7", 0) == 0) {
    platform.architecture = "arm";
    platform.variant = "v7";
  } else if (machine.rfind("armv6", 0) == 0) {
    platform.architecture = "arm";
    platform.variant = "v6";
  }
  return platform;
}

const Descriptor& choosePlatformManifest(const ImageIndex& index, const Platform& platform,
                                         std::string_view origin) {
  const Descriptor* without_variant = nullptr;
  std::string offered;
  for (const auto& descriptor : index.manifests) {
    if (!descriptor.platform) continue;
    const Platform& p = *descriptor.platform;
    if (!offered.empty()) offered += ", ";
    offered += p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
    if (p.os != platform.os || p.architecture != platform.architecture) continue;
    if (p.variant == platform.variant) return descriptor;
    // arm64 manifests often omit the (only) variant v8.
    if (p.variant.empty() && without_variant == nullptr) without_variant = &descriptor;
  }
  if (without_variant != nullptr) return *without_variant;
  // An index without platforms (as `skopeo copy` to an OCI layout writes) with one manifest.
  if (index.manifests.size() == 1 && !index.manifests[0].platform) return index.manifests[0];
  throw Error("choose platform in image index", std::string(origin),
              "no manifest for " + platform.os + "/" + platform.architecture +
                  (platform.variant.empty() ? "" : "/" + platform.variant) + "; the index offers " +
                  (offered.empty() ? std::string("no platforms") : offered));
}

std::vector<std::string> parseConfigDiffIds(std::string_view config, std::string_view origin) {
  json value = parseJson(config, origin);
  auto rootfs = value.find("rootfs");
  if (rootfs == value.end() || !rootfs->is_object()) badField(origin, "rootfs", "an object");
  auto diff_ids = rootfs->find("diff_ids");
  if (diff_ids == rootfs->end() || !diff_ids->is_array()) {
    badField(origin, "rootfs.diff_ids", "an array");
  }
  std::vector<std::string> ids;
  for (size_t i = 0; i < diff_ids->size(); ++i) {
    const auto& id = (*diff_ids)[i];
    if (!id.is_string() || !isValidDigest(id.get<std::string>())) {
      badField(origin, "rootfs.diff_ids[" + std::to_string(i) + "]", "a sha256 digest");
    }
    ids.push_back(id.get<std::string>());
  }
  return ids;
}

}  // namespace kbatch::image
