// libFuzzer target for the ELF reader: any bytes must give an ElfInfo or a kbatch::Error, never a
// crash, a hang or an out-of-bounds read (the fuzz build runs with ASan and UBSan).

#include <cstddef>
#include <cstdint>
#include <span>

#include "kbatch/common/error.h"
#include "kbatch/image/elf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto info = kbatch::image::readElfMemory(
        std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz-input");
    // Touch every string so that a bad length or pointer shows up under ASan.
    std::size_t total = 0;
    for (const auto& name : info.needed) total += name.size();
    for (const auto& entry : info.runpath) total += entry.size();
    for (const auto& entry : info.rpath) total += entry.size();
    if (info.interpreter) total += info.interpreter->size();
    if (info.soname) total += info.soname->size();
    (void)kbatch::image::describeElfKind(info);
    return total > 0 ? 0 : 0;
  } catch (const kbatch::Error&) {
    return 0;
  }
}
