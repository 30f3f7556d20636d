#include "test_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <stdexcept>
#include <vector>

namespace kbatch::image::testing {

struct TarBuilder::State {
  archive* writer = nullptr;
  std::string output;
  bool finished = false;
};

namespace {

la_ssize_t appendOutput(archive*, void* user, const void* buffer, size_t length) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

void check(archive* writer, int status) {
  if (status < ARCHIVE_WARN) throw std::runtime_error(archive_error_string(writer));
}

}  // namespace

TarBuilder::TarBuilder(Compression compression) : state_(new State) {
  state_->writer = archive_write_new();
  archive_write_set_format_pax_restricted(state_->writer);
  if (compression == Compression::kGzip) archive_write_add_filter_gzip(state_->writer);
  if (compression == Compression::kZstd) archive_write_add_filter_zstd(state_->writer);
  archive_write_set_bytes_in_last_block(state_->writer, 1);
  check(state_->writer,
        archive_write_open(state_->writer, &state_->output, nullptr, appendOutput, nullptr));
}

TarBuilder::~TarBuilder() {
  archive_write_free(state_->writer);
  delete state_;
}

namespace {

archive_entry* newEntry(const std::string& path, unsigned type, unsigned mode) {
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, path.c_str());
  archive_entry_set_filetype(entry, type);
  archive_entry_set_perm(entry, mode);
  archive_entry_set_mtime(entry, 1700000000, 0);
  return entry;
}

}  // namespace

TarBuilder& TarBuilder::file(const std::string& path, const std::string& content, unsigned mode) {
  archive_entry* entry = newEntry(path, AE_IFREG, mode);
  archive_entry_set_size(entry, static_cast<la_int64_t>(content.size()));
  check(state_->writer, archive_write_header(state_->writer, entry));
  archive_write_data(state_->writer, content.data(), content.size());
  archive_entry_free(entry);
  return *this;
}

TarBuilder& TarBuilder::fileHeaderOnly(const std::string& path, std::int64_t declared_size) {
  // libarchive will not write a header without its data, so this one is written by hand:
  // a ustar header whose size field declares `declared_size` (in base-256 when large).
  finish();
  std::string header(512, '\0');
  path.copy(header.data(), std::min<size_t>(path.size(), 99));
  std::snprintf(header.data() + 100, 8, "%07o", 0644);
  std::snprintf(header.data() + 108, 8, "%07o", 0);
  std::snprintf(header.data() + 116, 8, "%07o", 0);
  // base-256 size: first byte 0x80, big-endian value in the remaining 11 bytes.
  header[124] = static_cast<char>(0x80);
  for (int i = 0; i < 8; ++i) {
    header[135 - i] = static_cast<char>((static_cast<std::uint64_t>(declared_size) >> (8 * i)) & 0xff);
  }
  std::snprintf(header.data() + 136, 12, "%011o", 0);
  header[156] = '0';
  std::memcpy(header.data() + 257, "ustar", 6);
  std::memcpy(header.data() + 263, "00", 2);
  std::memset(header.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  std::snprintf(header.data() + 148, 8, "%06o", sum);
  header[155] = ' ';
  // Drop the end-of-archive blocks the earlier finish() wrote, then add the header and 4 KiB of
  // zeros as the start of its "data".
  while (state_->output.size() >= 512 &&
         state_->output.compare(state_->output.size() - 512, 512, std::string(512, '\0')) == 0) {
    state_->output.resize(state_->output.size() - 512);
  }
  state_->output += header;
  state_->output += std::string(4096, '\0');
  return *this;
}

TarBuilder& TarBuilder::directory(const std::string& path, unsigned mode) {
  archive_entry* entry = newEntry(path, AE_IFDIR, mode);
  check(state_->writer, archive_write_header(state_->writer, entry));
  archive_entry_free(entry);
  return *this;
}

TarBuilder& TarBuilder::symlink(const std::string& path, const std::string& target) {
  archive_entry* entry = newEntry(path, AE_IFLNK, 0777);
  archive_entry_set_symlink(entry, target.c_str());
  check(state_->writer, archive_write_header(state_->writer, entry));
  archive_entry_free(entry);
  return *this;
}

TarBuilder& TarBuilder::hardlink(const std::string& path, const std::string& target) {
  archive_entry* entry = newEntry(path, AE_IFREG, 0644);
  archive_entry_set_hardlink(entry, target.c_str());
  archive_entry_set_size(entry, 0);
  check(state_->writer, archive_write_header(state_->writer, entry));
  archive_entry_free(entry);
  return *this;
}

TarBuilder& TarBuilder::charDevice(const std::string& path) {
  archive_entry* entry = newEntry(path, AE_IFCHR, 0666);
  archive_entry_set_rdev(entry, makedev(1, 3));
  check(state_->writer, archive_write_header(state_->writer, entry));
  archive_entry_free(entry);
  return *this;
}

std::string TarBuilder::finish() {
  if (!state_->finished) {
    check(state_->writer, archive_write_close(state_->writer));
    state_->finished = true;
  }
  return state_->output;
}

std::filesystem::path makeTempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return buffer.data();
}

}  // namespace kbatch::image::testing
