#pragma once
/// Sizes and times exactly as TORQUE and Slurm accept them. Each returns std::nullopt for text it
/// would refuse (callers turn that into an error naming file:line and the expected form).

#include <cstdint>
#include <optional>
#include <string_view>

namespace kbatch::rewrite {

/// TORQUE's word: the server multiplies a `w` size by sizeof(int) (attr_fn_size.c normalize_size,
/// mom_mach.c getsize), which is 4 bytes on every Linux ABI TORQUE runs on, 64-bit included.
inline constexpr std::uint64_t kTorqueWordBytes = 4;

/// TORQUE size: `<integer>[k|m|g|t|p][b|w]`, case-insensitive, binary multiples (1kb = 1024 bytes);
/// the integer is read as strtol(base 0) does (`0x10` hex, `010` octal). Returns bytes.
std::optional<std::uint64_t> parseTorqueSize(std::string_view text);

/// TORQUE time: `[[[DD:]HH:]MM:]SS[.fff]` (fraction rounded to the nearest second, as
/// decode_time does). Returns seconds.
std::optional<std::uint64_t> parseTorqueTime(std::string_view text);

/// Slurm --time: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`. Returns seconds; `UNLIMITED`,
/// `INFINITE` and `-1` give *unlimited = true and 0.
std::optional<std::uint64_t> parseSlurmTime(std::string_view text, bool* unlimited = nullptr);

/// Slurm --mem: `<integer>[K|M|G|T]` (default unit megabytes, binary multiples). Returns bytes.
std::optional<std::uint64_t> parseSlurmMemory(std::string_view text);

/// A positive decimal integer that fits an int (`ppn=4`, `--nodes=2`).
std::optional<int> parsePositiveInt(std::string_view text);

}  // namespace kbatch::rewrite
