// libFuzzer target for the OCI seccomp JSON reader: any bytes must either read or be refused with
// a kbatch::Error, and a profile that reads must write back and read again to the same rules.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kbatch/common/error.h"
#include "kbatch/policy/seccomp_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kbatch::policy;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  SeccompProfile profile;
  try {
    profile = readOciSeccompJson(text, "fuzz.json");
  } catch (const kbatch::Error&) {
    return 0;
  }
  SeccompProfile again = readOciSeccompJson(writeOciSeccompJson(profile), "round-trip");
  if (again.rules.size() != profile.rules.size()) std::abort();
  for (std::size_t i = 0; i < profile.rules.size(); ++i) {
    if (again.rules[i].names != profile.rules[i].names ||
        again.rules[i].action != profile.rules[i].action) {
      std::abort();
    }
  }
  return 0;
}
