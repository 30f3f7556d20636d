// ImageStore::createImage: an OCI image from layer directories or tarballs and a config. Directory
// layers are packed as gzip tar with root ownership, in sorted order, in one pass that hashes both
// the uncompressed stream (diff_id) and the compressed blob (digest).

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "digest.h"
#include "fs_util.h"
#include "kbatch/common/error.h"
#include "kbatch/common/log.h"
#include "kbatch/image/store.h"
#include "manifest.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct LayerBlob {
  fs::path file;          // the blob, in the store's tmp directory or the caller's tarball
  std::string digest;     // of the blob as stored
  std::string diff_id;    // of the uncompressed tar
  std::int64_t size = 0;
  std::string media_type;
  bool temporary = false;
};

struct WriterDeleter {
  void operator()(archive* handle) const { archive_write_free(handle); }
};
using WriterPtr = std::unique_ptr<archive, WriterDeleter>;

struct CompressedSink {
  int fd;
  Sha256 hasher;
  std::int64_t size = 0;
  int error = 0;
};

la_ssize_t writeCompressed(archive*, void* user, const void* buffer, size_t length) {
  auto* sink = static_cast<CompressedSink*>(user);
  const char* data = static_cast<const char*>(buffer);
  for (size_t done = 0; done < length;) {
    ssize_t written = ::write(sink->fd, data + done, length - done);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      sink->error = errno;
      return -1;
    }
    done += static_cast<size_t>(written);
  }
  sink->hasher.update(buffer, length);
  sink->size += static_cast<std::int64_t>(length);
  return static_cast<la_ssize_t>(length);
}

struct TarSink {
  archive* compressor;
  Sha256 hasher;
};

la_ssize_t writeTar(archive*, void* user, const void* buffer, size_t length) {
  auto* sink = static_cast<TarSink*>(user);
  sink->hasher.update(buffer, length);
  return archive_write_data(sink->compressor, buffer, length);
}

class DirectoryPacker {
 public:
  DirectoryPacker(const fs::path& directory, archive* tar) : directory_(directory), tar_(tar) {}

  void pack() { packDirectory(""); }

 private:
  [[noreturn]] void fail(const std::string& relative, const std::string& cause) const {
    throw Error("pack layer from directory", (directory_ / relative).string(), cause);
  }
  void checkArchive(int status, const std::string& relative) const {
    if (status < ARCHIVE_WARN) {
      const char* text = archive_error_string(tar_);
      fail(relative, text != nullptr ? text : "libarchive write error");
    }
  }

  void packDirectory(const std::string& relative) {
    fs::path absolute = relative.empty() ? directory_ : directory_ / relative;
    DIR* dir = ::opendir(absolute.c_str());
    if (dir == nullptr) fail(relative, describeErrno(errno));
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());  // reproducible layers
    for (const auto& name : names) {
      std::string child = relative.empty() ? name : relative + "/" + name;
      packEntry(child);
    }
  }

  void packEntry(const std::string& relative) {
    fs::path absolute = directory_ / relative;
    struct stat st {};
    if (::lstat(absolute.c_str(), &st) != 0) fail(relative, describeErrno(errno));
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)) {
      log::info("not packing device node or socket {}", absolute.string());
      return;
    }
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                        archive_entry_free);
    archive_entry_copy_stat(entry.get(), &st);
    archive_entry_set_pathname(entry.get(), relative.c_str());
    // Access and change times vary between packings of the same content; only mtime is kept.
    archive_entry_unset_atime(entry.get());
    archive_entry_unset_ctime(entry.get());
    archive_entry_unset_birthtime(entry.get());
    // Images are owned by root inside the container, whoever built them.
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_uname(entry.get(), "root");
    archive_entry_set_gname(entry.get(), "root");
    if (S_ISLNK(st.st_mode)) {
      std::vector<char> target(static_cast<size_t>(st.st_size) + 2);
      ssize_t length = ::readlink(absolute.c_str(), target.data(), target.size() - 1);
      if (length < 0) fail(relative, describeErrno(errno));
      target[static_cast<size_t>(length)] = '\0';
      archive_entry_set_symlink(entry.get(), target.data());
      checkArchive(archive_write_header(tar_, entry.get()), relative);
      return;
    }
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto [it, inserted] = hardlinks_.emplace(key, relative);
      if (!inserted) {
        archive_entry_set_hardlink(entry.get(), it->second.c_str());
        archive_entry_set_size(entry.get(), 0);
        checkArchive(archive_write_header(tar_, entry.get()), relative);
        return;
      }
    }
    checkArchive(archive_write_header(tar_, entry.get()), relative);
    if (S_ISDIR(st.st_mode)) {
      packDirectory(relative);
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd fd(::open(absolute.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) fail(relative, describeErrno(errno));
      std::vector<char> buffer(1 << 20);
      for (;;) {
        ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(relative, describeErrno(errno));
        if (got == 0) break;
        if (archive_write_data(tar_, buffer.data(), static_cast<size_t>(got)) < 0) {
          checkArchive(ARCHIVE_FATAL, relative);
        }
      }
    }
  }

  fs::path directory_;
  archive* tar_;
  std::map<std::pair<dev_t, ino_t>, std::string> hardlinks_;
};

LayerBlob packDirectoryLayer(const ImageStore& store, const fs::path& directory) {
  LayerBlob blob;
  blob.media_type = media_type::kOciLayerGzip;
  blob.temporary = true;
  std::string temp_template = (store.tempDirectory() / "layer-XXXXXX").string();
  std::vector<char> temp_name(temp_template.begin(), temp_template.end());
  temp_name.push_back('\0');
  UniqueFd fd(::mkostemp(temp_name.data(), O_CLOEXEC));
  if (!fd.valid()) throw Error("create temporary file", temp_template, describeErrno(errno));
  blob.file = temp_name.data();
  try {
    CompressedSink compressed{fd.get(), Sha256(), 0, 0};
    WriterPtr gzip(archive_write_new());
    archive_write_add_filter_gzip(gzip.get());
    // No timestamp in the gzip header: the same directory must give the same layer digest, so
    // that a second push finds every blob in the registry.
    archive_write_set_filter_option(gzip.get(), "gzip", "timestamp", nullptr);
    archive_write_set_format_raw(gzip.get());
    // No padding after the gzip stream: some readers reject trailing zeros.
    archive_write_set_bytes_per_block(gzip.get(), 0);
    archive_write_set_bytes_in_last_block(gzip.get(), 1);
    if (archive_write_open(gzip.get(), &compressed, nullptr, writeCompressed, nullptr) != ARCHIVE_OK) {
      throw Error("compress layer", directory.string(), archive_error_string(gzip.get()));
    }
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> raw_entry(archive_entry_new(),
                                                                            archive_entry_free);
    archive_entry_set_filetype(raw_entry.get(), AE_IFREG);
    archive_entry_set_pathname(raw_entry.get(), "layer.tar");
    archive_write_header(gzip.get(), raw_entry.get());

    TarSink tar_sink{gzip.get(), Sha256()};
    WriterPtr tar(archive_write_new());
    archive_write_set_format_pax_restricted(tar.get());
    archive_write_set_bytes_in_last_block(tar.get(), 1);
    if (archive_write_open(tar.get(), &tar_sink, nullptr, writeTar, nullptr) != ARCHIVE_OK) {
      throw Error("pack layer", directory.string(), archive_error_string(tar.get()));
    }
    DirectoryPacker(directory, tar.get()).pack();
    if (archive_write_close(tar.get()) != ARCHIVE_OK) {
      throw Error("pack layer", directory.string(), archive_error_string(tar.get()));
    }
    if (archive_write_close(gzip.get()) != ARCHIVE_OK || compressed.error != 0) {
      throw Error("compress layer", directory.string(),
                  compressed.error != 0 ? describeErrno(compressed.error)
                                        : std::string(archive_error_string(gzip.get())));
    }
    if (::fsync(fd.get()) != 0) throw Error("fsync", blob.file.string(), describeErrno(errno));
    blob.diff_id = tar_sink.hasher.finishDigest();
    blob.digest = compressed.hasher.finishDigest();
    blob.size = compressed.size;
  } catch (...) {
    ::unlink(blob.file.c_str());
    throw;
  }
  return blob;
}

// The diff_id of a compressed tarball: sha256 of its decompressed stream.
std::string uncompressedDigest(const fs::path& file) {
  std::unique_ptr<archive, decltype(&archive_read_free)> reader(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(reader.get());
  archive_read_support_filter_zstd(reader.get());
  archive_read_support_format_raw(reader.get());
  archive_entry* entry = nullptr;
  if (archive_read_open_filename(reader.get(), file.c_str(), 1 << 17) != ARCHIVE_OK ||
      archive_read_next_header(reader.get(), &entry) != ARCHIVE_OK) {
    throw Error("read layer tarball", file.string(), archive_error_string(reader.get()));
  }
  Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    la_ssize_t got = archive_read_data(reader.get(), buffer.data(), buffer.size());
    if (got < 0) throw Error("decompress layer tarball", file.string(), archive_error_string(reader.get()));
    if (got == 0) break;
    hasher.update(buffer.data(), static_cast<size_t>(got));
  }
  return hasher.finishDigest();
}

LayerBlob describeTarballLayer(const fs::path& file) {
  LayerBlob blob;
  blob.file = file;
  unsigned char magic[4] = {};
  {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw Error("read layer tarball", file.string(), describeErrno(errno));
    if (::read(fd.get(), magic, sizeof magic) < 0) {
      throw Error("read layer tarball", file.string(), describeErrno(errno));
    }
  }
  blob.digest = sha256DigestOfFile(file);
  std::error_code ec;
  blob.size = static_cast<std::int64_t>(fs::file_size(file, ec));
  if (magic[0] == 0x1f && magic[1] == 0x8b) {
    blob.media_type = media_type::kOciLayerGzip;
    blob.diff_id = uncompressedDigest(file);
  } else if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    blob.media_type = media_type::kOciLayerZstd;
    blob.diff_id = uncompressedDigest(file);
  } else {
    blob.media_type = media_type::kOciLayer;
    blob.diff_id = blob.digest;
  }
  return blob;
}

json stringArray(const std::vector<std::string>& values) {
  json array = json::array();
  for (const auto& value : values) array.push_back(value);
  return array;
}

}  // namespace

ImageRecord ImageStore::createImage(const NewImageRequest& request) {
  FileLock gc(gcLockPath(), FileLock::Mode::kShared);
  json layers = json::array();
  json diff_ids = json::array();
  json history = json::array();
  for (const auto& path : request.layers) {
    std::error_code ec;
    LayerBlob blob;
    if (fs::is_directory(path, ec)) blob = packDirectoryLayer(*this, path);
    else if (fs::is_regular_file(path, ec)) blob = describeTarballLayer(path);
    else {
      throw Error("create image", request.tag.empty() ? path.string() : request.tag,
                  "layer '" + path.string() + "' is neither a directory nor a tar file",
                  "", exit_code::kNotFound);
    }
    try {
      importBlobFile(blob.file, blob.digest, blob.size);
    } catch (...) {
      if (blob.temporary) ::unlink(blob.file.c_str());
      throw;
    }
    if (blob.temporary) ::unlink(blob.file.c_str());
    layers.push_back({{"mediaType", blob.media_type}, {"digest", blob.digest}, {"size", blob.size}});
    diff_ids.push_back(blob.diff_id);
    history.push_back({{"created_by", request.source.empty() ? "kbatch" : request.source}});
  }
  Platform platform = currentPlatform();
  json container_config = json::object();
  const ImageConfigSettings& settings = request.config;
  if (!settings.env.empty()) container_config["Env"] = stringArray(settings.env);
  if (!settings.entrypoint.empty()) container_config["Entrypoint"] = stringArray(settings.entrypoint);
  if (!settings.cmd.empty()) container_config["Cmd"] = stringArray(settings.cmd);
  if (!settings.working_dir.empty()) container_config["WorkingDir"] = settings.working_dir;
  if (!settings.user.empty()) container_config["User"] = settings.user;
  if (!settings.labels.empty()) container_config["Labels"] = settings.labels;
  // No "created" time: the same inputs give the same image digest.
  json config = {{"architecture", platform.architecture},
                 {"os", platform.os},
                 {"config", container_config},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                 {"history", history}};
  if (!platform.variant.empty()) config["variant"] = platform.variant;
  std::string config_text = config.dump();
  std::string config_digest = putBlob(config_text);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", std::string(media_type::kOciManifest)},
                   {"config",
                    {{"mediaType", std::string(media_type::kOciConfig)},
                     {"digest", config_digest},
                     {"size", config_text.size()}}},
                   {"layers", layers}};
  std::string manifest_digest = putBlob(manifest.dump());
  if (!request.tag.empty()) return tag(request.tag, manifest_digest, request.source);
  ImageRecord record;
  record.manifest_digest = manifest_digest;
  record.source = request.source;
  return record;
}

}  // namespace kbatch::image
