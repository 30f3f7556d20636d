// The ld.so.cache reader and writer, checked against the host's real cache (written by ldconfig).

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "deps_fixtures.h"
#include "kbatch/common/error.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;

TEST(LdCacheTest, ReadsTheHostCache) {
  auto entries = readLdCache("/etc/ld.so.cache");
  ASSERT_FALSE(entries.empty());
  bool found_libc = false;
  for (const auto& entry : entries) {
    if (entry.name == "libc.so.6" && entry.flags == nativeLdCacheFlags()) {
      found_libc = true;
      EXPECT_TRUE(fs::exists(entry.path)) << entry.path;
    }
  }
  EXPECT_TRUE(found_libc);
}

TEST(LdCacheTest, LibraryNameOrderMatchesLdconfig) {
  // ldconfig sorts the cache in descending _dl_cache_libcmp order and ld.so binary-searches it:
  // our comparison must agree with the order of the host's real cache on every adjacent pair.
  auto entries = readLdCache("/etc/ld.so.cache");
  for (std::size_t i = 1; i < entries.size(); ++i) {
    EXPECT_GE(compareLibraryNames(entries[i - 1].name, entries[i].name), 0)
        << entries[i - 1].name << " before " << entries[i].name;
  }
}

TEST(LdCacheTest, CompareLibraryNamesComparesDigitRunsAsNumbers) {
  EXPECT_GT(compareLibraryNames("libfoo.so.10", "libfoo.so.9"), 0);
  EXPECT_LT(compareLibraryNames("libfoo.so.1", "libfoo.so.1.2"), 0);
  EXPECT_EQ(compareLibraryNames("libz.so.1", "libz.so.1"), 0);
  EXPECT_GT(compareLibraryNames("lib2", "liba"), 0);  // a digit sorts after a non-digit
}

TEST(LdCacheTest, WriteThenReadRoundTrips) {
  testing::ScratchDir dir;
  std::vector<LdCacheEntry> written = {
      {"libb.so.2", "/opt/b/libb.so.2", nativeLdCacheFlags(), 0},
      {"liba.so.10", "/opt/a/liba.so.10", nativeLdCacheFlags(), 0},
      {"liba.so.9", "/opt/a/liba.so.9", nativeLdCacheFlags(), 0},
  };
  writeLdCache(dir / "ld.so.cache", written);
  auto read = readLdCache(dir / "ld.so.cache");
  ASSERT_EQ(read.size(), 3u);
  // Descending order, as ldconfig writes it.
  EXPECT_EQ(read[0].name, "libb.so.2");
  EXPECT_EQ(read[1].name, "liba.so.10");
  EXPECT_EQ(read[2].name, "liba.so.9");
  EXPECT_EQ(read[1].path, "/opt/a/liba.so.10");
  EXPECT_EQ(read[2].flags, nativeLdCacheFlags());
}

TEST(LdCacheTest, RejectsCorruptCaches) {
  testing::ScratchDir dir;
  std::ifstream in("/etc/ld.so.cache", std::ios::binary);
  std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto expectError = [&](const std::string& bytes, const std::string& cause) {
    fs::path file = dir / "cache";
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<long>(bytes.size()));
    try {
      readLdCache(file);
      ADD_FAILURE() << "no error, expected: " << cause;
    } catch (const Error& error) {
      EXPECT_NE(error.cause().find(cause), std::string::npos) << error.oneLine();
      EXPECT_NE(error.oneLine().find(file.string()), std::string::npos);
    }
  };
  expectError("not a cache", "no ld.so cache magic");
  expectError(good.substr(0, 30), "header truncated");
  expectError(good.substr(0, 100), "run past the end");
  std::string bad_offset = good;
  // First entry's key: an offset far outside the file.
  bad_offset[48 + 4] = '\xff';
  bad_offset[48 + 5] = '\xff';
  bad_offset[48 + 6] = '\xff';
  bad_offset[48 + 7] = '\x7f';
  expectError(bad_offset, "outside the string table");
}

}  // namespace
}  // namespace kbatch::image
