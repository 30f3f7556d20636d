// The ELF reader on real files, compiled fixtures and hostile inputs.

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "deps_fixtures.h"
#include "kbatch/common/error.h"
#include "kbatch/image/elf.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeAll(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(),
                                                                static_cast<long>(bytes.size()));
}

/// Expects readElfFile(path) to throw an Error whose one-line message names the file and
/// contains `cause`.
void expectElfError(const fs::path& path, const std::string& cause) {
  try {
    readElfFile(path);
    FAIL() << "no error for " << path;
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find(path.string()), std::string::npos) << error.oneLine();
    EXPECT_NE(error.cause().find(cause), std::string::npos) << error.oneLine();
  }
}

TEST(ElfReaderTest, ReadsOwnExecutable) {
  ElfInfo info = readElfFile("/proc/self/exe");
  EXPECT_EQ(info.elf_class, ELFCLASS64);
  EXPECT_EQ(info.machine, EM_X86_64);
  ASSERT_TRUE(info.interpreter.has_value());
  EXPECT_EQ(*info.interpreter, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_TRUE(info.has_dynamic);
  EXPECT_NE(std::find(info.needed.begin(), info.needed.end(), "libc.so.6"), info.needed.end());
  EXPECT_EQ(describeElfKind(info), "ELF64 x86-64");
}

TEST(ElfReaderTest, ReadsSonameRunpathAndRpath) {
  ScratchDir dir;
  testing::compileLibrary(dir / "libdep.so", "libdep.so.1", "dep", 1, {}, "");
  testing::compileLibrary(dir / "libtop.so", "libtop.so.7", "top", 2, {"dep"},
                          "-L" + dir.path().string() +
                              " -ldep -Wl,--enable-new-dtags,-rpath,'$ORIGIN/a:/opt/b'");
  ElfInfo top = readElfFile(dir / "libtop.so");
  EXPECT_EQ(top.soname, "libtop.so.7");
  EXPECT_EQ(top.type, ET_DYN);
  EXPECT_FALSE(top.interpreter.has_value());
  EXPECT_EQ(top.runpath, (std::vector<std::string>{"$ORIGIN/a", "/opt/b"}));
  EXPECT_TRUE(top.rpath.empty());
  EXPECT_NE(std::find(top.needed.begin(), top.needed.end(), "libdep.so.1"), top.needed.end());

  testing::compileLibrary(dir / "libold.so", "libold.so.1", "old", 3, {},
                          "-Wl,--disable-new-dtags,-rpath,/x/y");
  ElfInfo old = readElfFile(dir / "libold.so");
  EXPECT_EQ(old.rpath, (std::vector<std::string>{"/x/y"}));
  EXPECT_TRUE(old.runpath.empty());
}

TEST(ElfReaderTest, StaticExecutableHasNoDynamicSection) {
  ScratchDir dir;
  auto [status, output] = testing::runCommand(
      "printf 'int main(void){return 0;}' > " + testing::quote((dir / "s.c").string()) + " && " +
      KBATCH_TEST_CC + " -static -o " + testing::quote((dir / "s").string()) + " " +
      testing::quote((dir / "s.c").string()) + " 2>&1");
  ASSERT_EQ(status, 0) << output;
  ElfInfo info = readElfFile(dir / "s");
  EXPECT_FALSE(info.has_dynamic);
  EXPECT_FALSE(info.interpreter.has_value());
  EXPECT_TRUE(info.needed.empty());
}

TEST(ElfReaderTest, RejectsNonElfFiles) {
  ScratchDir dir;
  writeAll(dir / "empty", "");
  expectElfError(dir / "empty", "too short");
  writeAll(dir / "script", "#!/bin/sh\necho this is a shell script, not an ELF file\n");
  expectElfError(dir / "script", "not an ELF file");
  expectElfError(dir.path(), "not a regular file");
  expectElfError(dir / "absent", "cannot open");
}

TEST(ElfReaderTest, RejectsBogusHeaderFields) {
  ScratchDir dir;
  std::string good = readAll("/proc/self/exe");
  ASSERT_GT(good.size(), 4096u);

  std::string bad_class = good;
  bad_class[EI_CLASS] = 7;
  writeAll(dir / "bad_class", bad_class);
  expectElfError(dir / "bad_class", "");

  // Program header table pointing far past the end of the file.
  std::string bad_phoff = good.substr(0, 4096);
  auto* header = reinterpret_cast<Elf64_Ehdr*>(bad_phoff.data());
  header->e_phoff = 0x7fffffff0000ULL;
  writeAll(dir / "bad_phoff", bad_phoff);
  expectElfError(dir / "bad_phoff", "");
}

TEST(ElfReaderTest, RejectsTruncatedFilesAtEveryInterestingSize) {
  ScratchDir dir;
  std::string good = readAll("/proc/self/exe");
  // Where the loadable part of the file ends (debug sections may follow; cutting those is
  // harmless to ld.so and to us).
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(good.data());
  const auto* phdrs = reinterpret_cast<const Elf64_Phdr*>(good.data() + header->e_phoff);
  std::size_t load_end = 0;
  for (int i = 0; i < header->e_phnum; ++i) {
    if (phdrs[i].p_type == PT_LOAD) {
      load_end = std::max<std::size_t>(load_end, phdrs[i].p_offset + phdrs[i].p_filesz);
    }
  }
  ASSERT_GT(load_end, 4096u);
  // Cut inside the ELF header, inside the program headers, just after them, mid-image (the
  // dynamic section or its strings cut off) and one byte short of the last segment.
  for (std::size_t size : {std::size_t{20}, std::size_t{63}, std::size_t{100}, std::size_t{700},
                           std::size_t{4096}, load_end / 2, load_end - 1}) {
    fs::path file = dir / ("cut" + std::to_string(size));
    writeAll(file, good.substr(0, size));
    try {
      readElfFile(file);
      ADD_FAILURE() << "no error for a copy cut at " << size << " bytes";
    } catch (const Error& error) {
      EXPECT_NE(error.oneLine().find(file.string()), std::string::npos) << error.oneLine();
    }
  }
}

TEST(ElfReaderTest, RejectsStringIndexOutsideTheStringTable) {
  ScratchDir dir;
  testing::compileLibrary(dir / "libx.so", "libx.so.1", "x", 1, {}, "");
  std::string bytes = readAll(dir / "libx.so");
  auto* header = reinterpret_cast<Elf64_Ehdr*>(bytes.data());
  auto* phdrs = reinterpret_cast<Elf64_Phdr*>(bytes.data() + header->e_phoff);
  bool patched = false;
  for (int i = 0; i < header->e_phnum; ++i) {
    if (phdrs[i].p_type != PT_DYNAMIC) continue;
    auto* dyn = reinterpret_cast<Elf64_Dyn*>(bytes.data() + phdrs[i].p_offset);
    for (; dyn->d_tag != DT_NULL; ++dyn) {
      if (dyn->d_tag == DT_SONAME) {
        dyn->d_un.d_val = 0x40000000;
        patched = true;
      }
    }
  }
  ASSERT_TRUE(patched);
  writeAll(dir / "libx-bad.so", bytes);
  expectElfError(dir / "libx-bad.so", "DT_SONAME string index");
}

TEST(ElfReaderTest, RefusesHugeSparseFileQuickly) {
  ScratchDir dir;
  fs::path huge = dir / "huge";
  {
    std::string head = readAll("/proc/self/exe").substr(0, 4096);
    writeAll(huge, head);
  }
  // 1 GB, sparse: no disk space used, but far beyond any executable.
  ASSERT_EQ(::truncate(huge.c_str(), 1'000'000'000), 0);
  expectElfError(huge, "MiB limit");
}

TEST(ElfReaderTest, ProbeReadsOnlyTheIdentification) {
  auto probe = probeElfHeader("/proc/self/exe");
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ(probe->elf_class, ELFCLASS64);
  EXPECT_EQ(probe->machine, EM_X86_64);
  EXPECT_FALSE(probeElfHeader("/etc/hostname").has_value());
  EXPECT_FALSE(probeElfHeader("/nonexistent/file").has_value());
}

TEST(ElfReaderTest, MemoryAndFileReadersAgree) {
  std::string bytes = readAll("/proc/self/exe");
  ElfInfo from_memory = readElfMemory(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), "self");
  ElfInfo from_file = readElfFile("/proc/self/exe");
  EXPECT_EQ(from_memory.needed, from_file.needed);
  EXPECT_EQ(from_memory.interpreter, from_file.interpreter);
}

}  // namespace
}  // namespace kbatch::image
