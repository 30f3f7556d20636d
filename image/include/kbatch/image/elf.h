#pragma once
/// Reading what the dynamic linker needs from an ELF file, with libelf, without ever running it.
/// A user's binary must not execute during analysis (ldd may run it), so everything here is read
/// from the file: the interpreter (PT_INTERP), DT_NEEDED, DT_RPATH, DT_RUNPATH and DT_SONAME.
/// Every malformed input becomes a kbatch::Error naming the file and what is wrong.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kbatch::image {

/// The dynamic-linking facts of one ELF file.
struct ElfInfo {
  std::filesystem::path path;           ///< the file as read (for messages)
  int elf_class = 0;                    ///< ELFCLASS32 (1) or ELFCLASS64 (2)
  int data_encoding = 0;                ///< ELFDATA2LSB (1) or ELFDATA2MSB (2)
  std::uint16_t machine = 0;            ///< e_machine, e.g. EM_X86_64 (62)
  std::uint16_t type = 0;               ///< e_type: ET_EXEC (2), ET_DYN (3), ...
  std::optional<std::string> interpreter;  ///< PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2
  std::vector<std::string> needed;      ///< DT_NEEDED, in file order
  std::vector<std::string> rpath;       ///< DT_RPATH entries, split at ':' (unexpanded)
  std::vector<std::string> runpath;     ///< DT_RUNPATH entries, split at ':' (unexpanded)
  std::optional<std::string> soname;    ///< DT_SONAME
  bool has_dynamic = false;             ///< has a PT_DYNAMIC segment (false: static executable)
  bool no_default_lib = false;          ///< DF_1_NODEFLIB: skip ld.so.cache and default dirs
};

/// Files larger than this are refused before they are mapped: no real executable or library comes
/// close, and a huge (possibly sparse) file must not make analysis slow or exhaust memory.
inline constexpr std::uint64_t kMaxElfFileBytes = std::uint64_t{512} << 20;

/// Reads `path` (mmap through libelf's ELF_C_READ_MMAP). Throws kbatch::Error naming the file and
/// the defect for anything that is not a well-formed ELF object.
ElfInfo readElfFile(const std::filesystem::path& path);

/// Same, from bytes in memory (for the fuzzer and for tests); `name` is used in messages.
ElfInfo readElfMemory(std::span<const std::byte> bytes, const std::string& name);

/// Reads only the identification (class, data, machine, type) to decide whether a candidate
/// library can satisfy a request; returns nullopt for anything that is not a usable ELF file.
std::optional<ElfInfo> probeElfHeader(const std::filesystem::path& path);

/// "ELF64 x86-64", "ELF32 i386", ... for messages.
std::string describeElfKind(const ElfInfo& info);

}  // namespace kbatch::image
