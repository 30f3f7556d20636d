#pragma once
// The compiled site policy (policy_compiled.cc): the Policy in CBOR with the texts it came from.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kbatch/policy/policy.h"

namespace kbatch::policy {

// A seccomp profile with a few hundred rules is a few tens of KiB; 1 MiB leaves room.
inline constexpr std::uint64_t kMaxSeccompProfileBytes = 1024 * 1024;
// A compiled policy holds the policy text (<= 1 MiB), its seccomp profile (<= 1 MiB) and the rules.
inline constexpr std::uint64_t kMaxCompiledPolicyBytes = 8 * 1024 * 1024;

/// The compiled form of `policy` (a site policy, no overlays), parsed from `policy_text`. Reads the
/// seccomp profile file the policy names, through the trusted-file checks for `owners`.
std::vector<std::uint8_t> compilePolicy(const Policy& policy, const std::string& policy_text,
                                        const std::vector<uid_t>& owners);

/// The policy in `compiled`, if it was compiled by this kbatch from exactly `policy_text` (and the
/// seccomp profile file it names still has the text it had); `name` becomes its source. Otherwise
/// nullopt, and `*why_not` says why. Never throws for a bad cache; throws kbatch::Error only when
/// the seccomp profile itself is no longer trusted, as the YAML loader would.
std::optional<Policy> loadCompiledPolicy(const std::string& compiled, const std::string& policy_text,
                                         const std::string& name, const std::vector<uid_t>& owners,
                                         std::string* why_not);

/// The site policy file's text, read as the YAML loader reads it (root-owned, size-limited).
std::string readSitePolicyText(const std::filesystem::path& policy_path);

/// The compiled policy for `policy_path` if it is current and trusted, else nullopt (`*why_not`).
std::optional<Policy> currentCompiledPolicy(const std::filesystem::path& policy_path,
                                            const std::string& text, std::string* why_not);

}  // namespace kbatch::policy
