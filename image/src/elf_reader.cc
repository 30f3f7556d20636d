// The ELF reader. It reads the dynamic section the way ld.so does: through the program headers
// (PT_INTERP, PT_DYNAMIC, PT_LOAD), not the section headers, because a stripped (sstrip) binary
// still runs without sections. Every offset, size and string index read from the file is checked
// against the file's size before use, so a hostile file yields an Error, never a wild read.

#include "kbatch/image/elf.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

#include "kbatch/common/error.h"
#include "fs_util.h"

namespace kbatch::image {
namespace {

constexpr const char* kAction = "read ELF file";

[[noreturn]] void fail(const std::string& name, const std::string& cause) {
  throw Error(kAction, name, cause, "is this a Linux executable or shared library?");
}

struct ElfCloser {
  void operator()(Elf* elf) const noexcept { elf_end(elf); }
};
using ElfHandle = std::unique_ptr<Elf, ElfCloser>;

void initialiseLibelf(const std::string& name) {
  // elf_version() must be called once before any other libelf call; it is idempotent.
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  if (!ok) fail(name, std::string("libelf is unusable: ") + elf_errmsg(-1));
}

/// True if [offset, offset + size) lies inside a file of `file_size` bytes (no overflow).
bool rangeInsideFile(std::uint64_t offset, std::uint64_t size, std::uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

/// Translates a virtual address (DT_STRTAB is one) into a file offset through the PT_LOAD
/// segments, as the loaded image would place it.
std::optional<std::uint64_t> fileOffsetOfAddress(const std::vector<GElf_Phdr>& loads,
                                                 std::uint64_t address) {
  for (const auto& load : loads) {
    if (address >= load.p_vaddr && address - load.p_vaddr < load.p_filesz) {
      return load.p_offset + (address - load.p_vaddr);
    }
  }
  return std::nullopt;
}

std::vector<std::string> splitSearchPath(const std::string& value) {
  // ld.so splits on ':' (and ';' is not a separator on Linux); an empty element means the current
  // directory, which ld.so honours, so it is kept as "".
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = value.find(':', start);
    parts.push_back(value.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return parts;
}

ElfInfo readFromHandle(Elf* elf, const std::string& name) {
  if (elf == nullptr) fail(name, std::string("libelf cannot open it: ") + elf_errmsg(-1));
  if (elf_kind(elf) != ELF_K_ELF) {
    std::size_t size = 0;
    const char* bytes = elf_rawfile(elf, &size);
    if (bytes != nullptr && size >= EI_NIDENT && std::memcmp(bytes, ELFMAG, SELFMAG) == 0) {
      fail(name, "ELF magic present but e_ident is invalid (class " +
                     std::to_string(static_cast<unsigned char>(bytes[EI_CLASS])) + ", data " +
                     std::to_string(static_cast<unsigned char>(bytes[EI_DATA])) + ")");
    }
    fail(name, elf_kind(elf) == ELF_K_AR ? "it is an ar archive (a static library), not an ELF object"
                                         : "not an ELF file (no ELF magic)");
  }
  std::size_t file_size = 0;
  const char* raw = elf_rawfile(elf, &file_size);
  if (raw == nullptr) fail(name, std::string("cannot access its bytes: ") + elf_errmsg(-1));

  ElfInfo info;
  info.path = name;
  const char* ident = elf_getident(elf, nullptr);
  if (ident == nullptr) fail(name, "truncated ELF identification");
  info.elf_class = static_cast<unsigned char>(ident[EI_CLASS]);
  info.data_encoding = static_cast<unsigned char>(ident[EI_DATA]);
  if (info.elf_class != ELFCLASS32 && info.elf_class != ELFCLASS64) {
    fail(name, "invalid ELF class " + std::to_string(info.elf_class) + " in e_ident");
  }
  if (info.data_encoding != ELFDATA2LSB && info.data_encoding != ELFDATA2MSB) {
    fail(name, "invalid ELF data encoding " + std::to_string(info.data_encoding) + " in e_ident");
  }
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf, &ehdr) == nullptr) {
    fail(name, std::string("bad ELF header: ") + elf_errmsg(-1));
  }
  info.machine = ehdr.e_machine;
  info.type = ehdr.e_type;

  const std::uint64_t phentsize =
      info.elf_class == ELFCLASS64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  // Check the header's own count first: libelf reports a truncated table as zero entries, which
  // would make a cut-off executable look static.
  if (ehdr.e_phnum != 0 && ehdr.e_phnum != PN_XNUM &&
      !rangeInsideFile(ehdr.e_phoff, std::uint64_t{ehdr.e_phnum} * phentsize, file_size)) {
    fail(name, "program header table (offset " + std::to_string(ehdr.e_phoff) + ", " +
                   std::to_string(ehdr.e_phnum) + " entries) runs past the end of the file (" +
                   std::to_string(file_size) + " bytes): truncated");
  }
  std::size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) {
    fail(name, std::string("bad program header count: ") + elf_errmsg(-1));
  }
  if (phnum > 0 && !rangeInsideFile(ehdr.e_phoff, phnum * phentsize, file_size)) {
    fail(name, "program header table (offset " + std::to_string(ehdr.e_phoff) + ", " +
                   std::to_string(phnum) + " entries) runs past the end of the file (" +
                   std::to_string(file_size) + " bytes): truncated");
  }

  std::vector<GElf_Phdr> loads;
  std::optional<GElf_Phdr> dynamic;
  for (std::size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf, static_cast<int>(i), &phdr) == nullptr) {
      fail(name, "unreadable program header " + std::to_string(i) + ": " + elf_errmsg(-1));
    }
    if (phdr.p_type == PT_LOAD) {
      // ld.so maps every PT_LOAD from the file; bytes missing at the end mean a truncated copy.
      if (!rangeInsideFile(phdr.p_offset, phdr.p_filesz, file_size)) {
        fail(name, "PT_LOAD segment " + std::to_string(i) + " (offset " +
                       std::to_string(phdr.p_offset) + ", size " + std::to_string(phdr.p_filesz) +
                       ") runs past the end of the file (" + std::to_string(file_size) +
                       " bytes): truncated");
      }
      loads.push_back(phdr);
    } else if (phdr.p_type == PT_DYNAMIC) {
      if (dynamic) fail(name, "more than one PT_DYNAMIC segment");
      dynamic = phdr;
    } else if (phdr.p_type == PT_INTERP) {
      if (info.interpreter) fail(name, "more than one PT_INTERP segment");
      if (!rangeInsideFile(phdr.p_offset, phdr.p_filesz, file_size) || phdr.p_filesz == 0) {
        fail(name, "PT_INTERP segment (offset " + std::to_string(phdr.p_offset) + ", size " +
                       std::to_string(phdr.p_filesz) + ") lies outside the file: truncated");
      }
      const char* start = raw + phdr.p_offset;
      const void* nul = std::memchr(start, '\0', phdr.p_filesz);
      if (nul == nullptr) fail(name, "PT_INTERP path is not NUL-terminated");
      info.interpreter = std::string(start, static_cast<const char*>(nul));
      if (info.interpreter->empty()) fail(name, "PT_INTERP path is empty");
    }
  }
  if (!dynamic) return info;  // a static executable: nothing to resolve
  info.has_dynamic = true;
  if (!rangeInsideFile(dynamic->p_offset, dynamic->p_filesz, file_size)) {
    fail(name, "PT_DYNAMIC segment (offset " + std::to_string(dynamic->p_offset) + ", size " +
                   std::to_string(dynamic->p_filesz) + ") runs past the end of the file (" +
                   std::to_string(file_size) + " bytes): truncated");
  }
  // elf_getdata_rawchunk converts the entries to host byte order and checks the range itself.
  Elf_Data* data = elf_getdata_rawchunk(elf, static_cast<int64_t>(dynamic->p_offset),
                                        dynamic->p_filesz, ELF_T_DYN);
  if (data == nullptr) fail(name, std::string("unreadable dynamic section: ") + elf_errmsg(-1));
  const std::size_t dyn_size = gelf_fsize(elf, ELF_T_DYN, 1, EV_CURRENT);
  if (dyn_size == 0) fail(name, "cannot size dynamic entries");
  const std::size_t count = dynamic->p_filesz / dyn_size;

  std::optional<std::uint64_t> strtab_address, strtab_size, soname_index;
  std::vector<std::uint64_t> needed_indices, rpath_indices, runpath_indices;
  bool terminated = false;
  for (std::size_t i = 0; i < count; ++i) {
    GElf_Dyn dyn;
    if (gelf_getdyn(data, static_cast<int>(i), &dyn) == nullptr) {
      fail(name, "unreadable dynamic entry " + std::to_string(i) + ": " + elf_errmsg(-1));
    }
    if (dyn.d_tag == DT_NULL) {
      terminated = true;
      break;
    }
    switch (dyn.d_tag) {
      case DT_STRTAB: strtab_address = dyn.d_un.d_ptr; break;
      case DT_STRSZ: strtab_size = dyn.d_un.d_val; break;
      case DT_NEEDED: needed_indices.push_back(dyn.d_un.d_val); break;
      case DT_RPATH: rpath_indices.push_back(dyn.d_un.d_val); break;
      case DT_RUNPATH: runpath_indices.push_back(dyn.d_un.d_val); break;
      case DT_SONAME: soname_index = dyn.d_un.d_val; break;
      case DT_FLAGS_1: info.no_default_lib = (dyn.d_un.d_val & DF_1_NODEFLIB) != 0; break;
      default: break;
    }
  }
  if (!terminated) fail(name, "dynamic section has no DT_NULL terminator: truncated or corrupt");
  const bool has_strings = !needed_indices.empty() || !rpath_indices.empty() ||
                           !runpath_indices.empty() || soname_index.has_value();
  if (!has_strings) return info;
  if (!strtab_address || !strtab_size) {
    fail(name, "dynamic section names libraries but has no DT_STRTAB/DT_STRSZ");
  }
  auto strtab_offset = fileOffsetOfAddress(loads, *strtab_address);
  if (!strtab_offset) {
    fail(name, "DT_STRTAB address 0x" + [&] {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%llx",
                    static_cast<unsigned long long>(*strtab_address));
      return std::string(buffer);
    }() + " is not inside any PT_LOAD segment");
  }
  if (!rangeInsideFile(*strtab_offset, *strtab_size, file_size)) {
    fail(name, "dynamic string table (offset " + std::to_string(*strtab_offset) + ", size " +
                   std::to_string(*strtab_size) + ") runs past the end of the file (" +
                   std::to_string(file_size) + " bytes): truncated");
  }
  const char* strtab = raw + *strtab_offset;
  auto stringAt = [&](std::uint64_t index, const char* what) {
    if (index >= *strtab_size) {
      fail(name, std::string(what) + " string index " + std::to_string(index) +
                     " is outside the string table (" + std::to_string(*strtab_size) + " bytes)");
    }
    const void* nul = std::memchr(strtab + index, '\0', *strtab_size - index);
    if (nul == nullptr) fail(name, std::string(what) + " string is not NUL-terminated");
    return std::string(strtab + index, static_cast<const char*>(nul));
  };
  for (auto index : needed_indices) {
    std::string needed = stringAt(index, "DT_NEEDED");
    if (needed.empty()) fail(name, "empty DT_NEEDED name");
    info.needed.push_back(std::move(needed));
  }
  for (auto index : rpath_indices) {
    for (auto& part : splitSearchPath(stringAt(index, "DT_RPATH"))) info.rpath.push_back(part);
  }
  for (auto index : runpath_indices) {
    for (auto& part : splitSearchPath(stringAt(index, "DT_RUNPATH"))) info.runpath.push_back(part);
  }
  if (soname_index) info.soname = stringAt(*soname_index, "DT_SONAME");
  return info;
}

}  // namespace

ElfInfo readElfFile(const std::filesystem::path& path) {
  const std::string name = path.string();
  initialiseLibelf(name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) fail(name, "cannot open: " + describeErrno(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(name, "cannot stat: " + describeErrno(errno));
  if (!S_ISREG(st.st_mode)) fail(name, "not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxElfFileBytes) {
    fail(name, "file is " + std::to_string(st.st_size) + " bytes, more than the " +
                   std::to_string(kMaxElfFileBytes >> 20) + " MiB limit for an executable");
  }
  if (st.st_size < static_cast<off_t>(EI_NIDENT)) {
    fail(name, "file is " + std::to_string(st.st_size) + " bytes, too short for an ELF header");
  }
  ElfHandle elf(elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr));
  return readFromHandle(elf.get(), name);
}

ElfInfo readElfMemory(std::span<const std::byte> bytes, const std::string& name) {
  initialiseLibelf(name);
  if (bytes.size() > kMaxElfFileBytes) fail(name, "more than the size limit for an executable");
  if (bytes.size() < EI_NIDENT) {
    fail(name, std::to_string(bytes.size()) + " bytes, too short for an ELF header");
  }
  // elf_memory() only reads the image with ELF_C_READ semantics; the cast drops const for its API.
  ElfHandle elf(elf_memory(const_cast<char*>(reinterpret_cast<const char*>(bytes.data())),
                           bytes.size()));
  return readFromHandle(elf.get(), name);
}

std::optional<ElfInfo> probeElfHeader(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  // e_ident (16 bytes), e_type (2), e_machine (2): the same fields ld.so's open_verify checks.
  std::array<unsigned char, EI_NIDENT + 4> header{};
  if (::pread(fd.get(), header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    return std::nullopt;
  }
  if (std::memcmp(header.data(), ELFMAG, SELFMAG) != 0) return std::nullopt;
  ElfInfo info;
  info.path = path;
  info.elf_class = header[EI_CLASS];
  info.data_encoding = header[EI_DATA];
  if (info.elf_class != ELFCLASS32 && info.elf_class != ELFCLASS64) return std::nullopt;
  auto half = [&](std::size_t at) {
    return info.data_encoding == ELFDATA2MSB
               ? static_cast<std::uint16_t>(header[at] << 8 | header[at + 1])
               : static_cast<std::uint16_t>(header[at + 1] << 8 | header[at]);
  };
  if (info.data_encoding != ELFDATA2LSB && info.data_encoding != ELFDATA2MSB) return std::nullopt;
  info.type = half(EI_NIDENT);
  info.machine = half(EI_NIDENT + 2);
  return info;
}

std::string describeElfKind(const ElfInfo& info) {
  std::string machine;
  switch (info.machine) {
    case EM_X86_64: machine = "x86-64"; break;
    case EM_386: machine = "i386"; break;
    case EM_AARCH64: machine = "aarch64"; break;
    case EM_ARM: machine = "arm"; break;
    case EM_PPC64: machine = "ppc64"; break;
    case EM_RISCV: machine = "riscv"; break;
    case EM_S390: machine = "s390"; break;
    default: machine = "machine " + std::to_string(info.machine); break;
  }
  return std::string(info.elf_class == ELFCLASS64 ? "ELF64 " : "ELF32 ") + machine;
}

}  // namespace kbatch::image
