// /etc/ld.so.cache, read and written without ldconfig (ldconfig -r needs chroot, i.e. root).
// Layout of the new format (glibc sysdeps/generic/dl-cache.h, "glibc-ld.so.cache1.1"):
//   header (48 bytes): magic[17] version[3] nlibs:u32 len_strings:u32 flags:u8 pad[3]
//                      extension_offset:u32 unused[3]:u32
//   nlibs entries (24 bytes): flags:i32 key:u32 value:u32 osversion:u32 hwcap:u64
//   string table; key/value are offsets from the start of the new-format header.
// An older ldconfig prefixes the old "ld.so-1.7.0" table and aligns the new header after it.

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kbatch/common/error.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {
namespace {

constexpr char kOldMagic[] = "ld.so-1.7.0";
constexpr char kNewMagic[] = "glibc-ld.so.cache1.1";
constexpr std::size_t kNewHeaderBytes = 48;
constexpr std::size_t kNewEntryBytes = 24;
constexpr std::size_t kOldEntryBytes = 12;
constexpr std::uint8_t kEndianLittle = 2;  // cache_file_new_flags_endian_little
constexpr std::uint8_t kEndianBig = 3;
constexpr std::uint64_t kMaxCacheBytes = 64u << 20;

// Flag values from dl-cache.h.
constexpr std::int32_t kFlagElfLibc6 = 0x0003;
constexpr std::int32_t kFlagX8664Lib64 = 0x0300;
constexpr std::int32_t kFlagAArch64Lib64 = 0x0a00;

template <typename T>
T loadNative(const std::string& bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

template <typename T>
void storeNative(std::string& bytes, T value) {
  char buffer[sizeof value];
  std::memcpy(buffer, &value, sizeof value);
  bytes.append(buffer, sizeof value);
}

}  // namespace

std::int32_t nativeLdCacheFlags() {
#if defined(__x86_64__)
  return kFlagElfLibc6 | kFlagX8664Lib64;
#elif defined(__aarch64__)
  return kFlagElfLibc6 | kFlagAArch64Lib64;
#else
  return kFlagElfLibc6;
#endif
}

int compareLibraryNames(const std::string& left, const std::string& right) {
  // A transcription of glibc's _dl_cache_libcmp (elf/dl-cache.c): runs of digits compare as
  // numbers, a digit sorts after a non-digit, otherwise bytes compare as chars.
  const char* p1 = left.c_str();
  const char* p2 = right.c_str();
  auto isDigit = [](char c) { return c >= '0' && c <= '9'; };
  while (*p1 != '\0') {
    if (isDigit(*p1)) {
      if (!isDigit(*p2)) return 1;
      long long value1 = 0, value2 = 0;
      while (isDigit(*p1)) value1 = value1 * 10 + (*p1++ - '0');
      while (isDigit(*p2)) value2 = value2 * 10 + (*p2++ - '0');
      if (value1 != value2) return value1 < value2 ? -1 : 1;
    } else if (isDigit(*p2)) {
      return -1;
    } else if (*p1 != *p2) {
      return *p1 - *p2;
    } else {
      ++p1;
      ++p2;
    }
  }
  return *p1 - *p2;
}

std::vector<LdCacheEntry> readLdCache(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto bad = [&](const std::string& cause) -> Error {
    return Error("read ld.so cache", name, cause, "regenerate it with ldconfig");
  };
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) throw bad("cannot stat: " + ec.message());
  if (size > kMaxCacheBytes) throw bad("file is " + std::to_string(size) + " bytes, too large");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad("cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::size_t base = 0;  // where the new-format header starts
  if (bytes.compare(0, sizeof kOldMagic - 1, kOldMagic) == 0) {
    // Old table first: skip its entries, then the new header follows, 8-byte aligned.
    if (bytes.size() < sizeof kOldMagic - 1 + 4) throw bad("old-format header truncated");
    auto old_count = loadNative<std::uint32_t>(bytes, sizeof kOldMagic - 1);
    std::uint64_t after = sizeof kOldMagic - 1 + 4 + std::uint64_t{old_count} * kOldEntryBytes;
    if (after > bytes.size()) throw bad("old-format table of " + std::to_string(old_count) +
                                        " entries runs past the end of the file");
    base = static_cast<std::size_t>((after + 7) & ~std::uint64_t{7});
    if (bytes.compare(base, sizeof kNewMagic - 1, kNewMagic) != 0) {
      throw bad("old format only (no glibc-ld.so.cache1.1 table): not supported");
    }
  } else if (bytes.compare(0, sizeof kNewMagic - 1, kNewMagic) != 0) {
    throw bad("no ld.so cache magic (expected \"glibc-ld.so.cache1.1\")");
  }
  if (bytes.size() - base < kNewHeaderBytes) throw bad("header truncated");
  auto count = loadNative<std::uint32_t>(bytes, base + 20);
  auto strings_length = loadNative<std::uint32_t>(bytes, base + 24);
  auto endian = static_cast<std::uint8_t>(bytes[base + 28] & 3);
  const std::uint8_t native_endian =
      std::endian::native == std::endian::little ? kEndianLittle : kEndianBig;
  if (endian != 0 && endian != native_endian) {
    throw bad("written for the other byte order (flags " + std::to_string(endian) + ")");
  }
  std::uint64_t entries_end = base + kNewHeaderBytes + std::uint64_t{count} * kNewEntryBytes;
  if (entries_end > bytes.size()) {
    throw bad("nlibs " + std::to_string(count) + " entries run past the end of the file (" +
              std::to_string(bytes.size()) + " bytes)");
  }
  if (entries_end + strings_length > bytes.size()) {
    throw bad("len_strings " + std::to_string(strings_length) + " runs past the end of the file");
  }
  auto stringAt = [&](std::uint32_t offset, std::uint32_t index, const char* field) {
    std::uint64_t at = base + std::uint64_t{offset};
    if (at < entries_end || at >= bytes.size()) {
      throw bad("entry " + std::to_string(index) + " " + field + " offset " +
                std::to_string(offset) + " is outside the string table");
    }
    auto nul = bytes.find('\0', at);
    if (nul == std::string::npos) {
      throw bad("entry " + std::to_string(index) + " " + field + " is not NUL-terminated");
    }
    return bytes.substr(at, nul - at);
  };
  std::vector<LdCacheEntry> entries;
  entries.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::size_t at = base + kNewHeaderBytes + i * kNewEntryBytes;
    LdCacheEntry entry;
    entry.flags = loadNative<std::int32_t>(bytes, at);
    entry.name = stringAt(loadNative<std::uint32_t>(bytes, at + 4), i, "key");
    entry.path = stringAt(loadNative<std::uint32_t>(bytes, at + 8), i, "value");
    entry.hwcap = loadNative<std::uint64_t>(bytes, at + 16);
    entries.push_back(std::move(entry));
  }
  return entries;
}

void writeLdCache(const std::filesystem::path& path, std::vector<LdCacheEntry> entries) {
  // ldconfig's order: descending by _dl_cache_libcmp, which ld.so's binary search relies on.
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    int order = compareLibraryNames(b.name, a.name);
    if (order != 0) return order < 0;
    return a.flags > b.flags;
  });
  const std::size_t strings_start = kNewHeaderBytes + entries.size() * kNewEntryBytes;
  std::string strings;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> offsets;
  for (const auto& entry : entries) {
    auto key = static_cast<std::uint32_t>(strings_start + strings.size());
    strings.append(entry.name).push_back('\0');
    auto value = static_cast<std::uint32_t>(strings_start + strings.size());
    strings.append(entry.path.string()).push_back('\0');
    offsets.emplace_back(key, value);
  }
  std::string bytes(kNewMagic, sizeof kNewMagic - 1);
  storeNative(bytes, static_cast<std::uint32_t>(entries.size()));
  storeNative(bytes, static_cast<std::uint32_t>(strings.size()));
  bytes.push_back(static_cast<char>(std::endian::native == std::endian::little ? kEndianLittle
                                                                               : kEndianBig));
  bytes.append(3, '\0');                          // padding
  storeNative(bytes, std::uint32_t{0});           // no extension directory
  bytes.append(12, '\0');                         // unused[3]
  for (std::size_t i = 0; i < entries.size(); ++i) {
    storeNative(bytes, entries[i].flags);
    storeNative(bytes, offsets[i].first);
    storeNative(bytes, offsets[i].second);
    storeNative(bytes, std::uint32_t{0});         // osversion (unused)
    storeNative(bytes, entries[i].hwcap);
  }
  bytes += strings;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error("write ld.so cache", path.string(), "write failed");
}

}  // namespace kbatch::image
