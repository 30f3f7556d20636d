#pragma once
/// Compiles a policy::SeccompProfile into a classic-BPF program with libseccomp, in the parent
/// (STYLE.md item 4): the child of clone() only hands the finished program to seccomp(2).

#include <linux/filter.h>

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

}  // namespace kbatch::runner
