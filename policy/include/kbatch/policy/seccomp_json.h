#pragma once
/// The seccomp profile in the OCI runtime-spec LinuxSeccomp JSON format: what container runtimes
/// read from config.json and what the kubelet reads as a `Localhost` seccomp profile
/// (defaultAction, defaultErrnoRet, architectures, syscalls[{names, action, errnoRet, args}]).

#include <string>
#include <string_view>

#include "kbatch/policy/seccomp_profile.h"

namespace kbatch::policy {

/// Writes the profile as pretty-printed OCI JSON (reasons are not part of the format and are
/// left out; `kbatch policy explain` shows them).
std::string writeOciSeccompJson(const SeccompProfile& profile);

/// Reads an OCI (or Docker-style, with `archMap`, `name` and `comment`) profile. Throws
/// kbatch::Error naming `origin`, the line and column or the field (`syscalls[3].action`).
/// Refuses what kbatch cannot enforce the same way on both backends: conditional rules
/// (`includes`/`excludes`), user-space notification, SCMP_ACT_TRACE, filter flags.
SeccompProfile readOciSeccompJson(std::string_view text, const std::string& origin);

}  // namespace kbatch::policy
