#pragma once
/// The seccomp profile as data: one definition that the local runner compiles with libseccomp and
/// that `kbatch policy seccomp --format oci` writes as the OCI/Kubernetes LinuxSeccomp JSON, so both
/// backends enforce the same rules.

#include <cstdint>
#include <string>
#include <vector>

namespace kbatch::policy {

enum class SeccompAction { kAllow, kErrno, kKill, kKillProcess, kTrap, kLog };

/// An argument comparison, as in the OCI LinuxSeccompArg.
struct SeccompArg {
  unsigned index = 0;
  unsigned long long value = 0;
  unsigned long long value_two = 0;
  std::string op;  ///< "SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ", ... (OCI names)
};

struct SeccompRule {
  std::vector<std::string> names;  ///< syscall names; names unknown to this kernel are skipped
  SeccompAction action = SeccompAction::kErrno;
  int errno_ret = 1;               ///< EPERM
  std::vector<SeccompArg> args;
  std::string reason;              ///< why the rule exists, shown by `policy explain`
};

struct SeccompProfile {
  SeccompAction default_action = SeccompAction::kAllow;
  int default_errno_ret = 1;
  std::vector<std::string> architectures;  ///< OCI names: "SCMP_ARCH_X86_64", ...
  std::vector<SeccompRule> rules;
  std::string origin;                      ///< "built-in default" or the profile file's path
};

/// A profile's BPF program compiled ahead of time by `kbatch policy compile` (with the runner's
/// compileSeccompFilter) and kept in the compiled policy, so that no job start pays libseccomp's
/// compilation. `build` names what produced it (libseccomp's version, the kernel's seccomp API
/// level, the native architecture): the runner uses the program only when its own is the same,
/// and compiles the profile otherwise. Opaque to this module.
struct PrecompiledSeccomp {
  std::string build;
  std::vector<std::uint8_t> program;  ///< struct sock_filter[], as seccomp(2) takes it
};

/// The built-in default: allow everything a batch job needs, deny with EPERM what none needs
/// (mount and friends, new namespaces including clone's CLONE_NEW* flags, keyctl, bpf,
/// perf_event_open, ptrace, kexec, modules, reboot, swap, open_by_handle_at, userfaultfd, ...).
/// clone3 fails with ENOSYS so that libc falls back to clone. Every rule says why.
SeccompProfile defaultSeccompProfile();

const char* toOciName(SeccompAction action);

}  // namespace kbatch::policy
