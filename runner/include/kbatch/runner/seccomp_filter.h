#pragma once
/// Compiles a policy::SeccompProfile into a classic-BPF program with libseccomp, in the parent
/// (STYLE.md item 4): the child of clone() only hands the finished program to seccomp(2).

#include <linux/filter.h>

#include <optional>
#include <string>
#include <vector>

#include "kbatch/policy/seccomp_profile.h"

namespace kbatch::runner {

struct CompiledSeccompFilter {
  std::vector<sock_filter> program;            ///< ready for SECCOMP_SET_MODE_FILTER
  std::vector<std::string> architectures;      ///< libseccomp names actually included
  std::vector<std::string> applied_syscalls;   ///< names this kernel/libseccomp knows, in rule order
  std::vector<std::string> skipped_syscalls;   ///< names unknown here (kept in the profile for others)
};

/// Builds the filter. Architectures of the profile that cannot run on this machine (e.g. AArch64
/// on x86-64) are left out; unknown syscall names are skipped and listed. Throws kbatch::Error
/// naming the rule on an invalid action, argument operator or libseccomp failure.
CompiledSeccompFilter compileSeccompFilter(const policy::SeccompProfile& profile);

/// What a compiled filter depends on besides its profile: libseccomp's version, the running
/// kernel's seccomp API level (libseccomp adapts actions and flags to it) and the native
/// architecture, e.g. "libseccomp 2.5.4, seccomp API 6, arch c000003e".
std::string seccompBuildIdentity();

/// compileSeccompFilter's program as `kbatch policy compile` keeps it in the compiled policy.
policy::PrecompiledSeccomp precompileSeccompFilter(const policy::SeccompProfile& profile);

/// The program of `precompiled` if this machine would compile exactly it (same build identity)
/// and it is a well-formed program; otherwise nullopt and the profile must be compiled.
std::optional<std::vector<sock_filter>> usablePrecompiledFilter(
    const policy::PrecompiledSeccomp& precompiled);

}  // namespace kbatch::runner
