// Compiling the seccomp profile with libseccomp, in the parent. The BPF is exported through a
// memfd (libseccomp 2.5 has no export-to-memory call) and kept as data in the launch plan.

#include "kbatch/runner/seccomp_filter.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "kbatch/common/error.h"

namespace kbatch::runner {
namespace {

using policy::SeccompAction;

struct ContextDeleter {
  void operator()(scmp_filter_ctx context) const { seccomp_release(context); }
};
using Context = std::unique_ptr<void, ContextDeleter>;

std::uint32_t toLibseccompAction(SeccompAction action, int errno_ret) {
  switch (action) {
    case SeccompAction::kAllow: return SCMP_ACT_ALLOW;
    case SeccompAction::kErrno: return SCMP_ACT_ERRNO(static_cast<std::uint16_t>(errno_ret));
    case SeccompAction::kKill: return SCMP_ACT_KILL;
    case SeccompAction::kKillProcess: return SCMP_ACT_KILL_PROCESS;
    case SeccompAction::kTrap: return SCMP_ACT_TRAP;
    case SeccompAction::kLog: return SCMP_ACT_LOG;
  }
  throw Error("compile seccomp profile", "", "unknown action");
}

scmp_compare toComparison(const std::string& op, const std::string& rule_name) {
  static const std::map<std::string, scmp_compare> kOperators = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  auto it = kOperators.find(op);
  if (it == kOperators.end()) {
    throw Error("compile seccomp rule", rule_name, "unknown argument operator '" + op + "'",
                "use an OCI operator such as SCMP_CMP_EQ or SCMP_CMP_MASKED_EQ");
  }
  return it->second;
}

/// The libseccomp architecture for an OCI name, when it can run on this machine: the native one
/// and its compat modes (a 64-bit x86 kernel also runs i386 and x32 code).
std::optional<std::uint32_t> runnableArchitecture(const std::string& oci_name) {
  std::string name = oci_name;
  if (name.rfind("SCMP_ARCH_", 0) == 0) name = name.substr(10);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint32_t arch = seccomp_arch_resolve_name(name.c_str());
  if (arch == 0) return std::nullopt;
  std::uint32_t native = seccomp_arch_native();
  if (arch == native) return arch;
  bool compat = (native == SCMP_ARCH_X86_64 && (arch == SCMP_ARCH_X86 || arch == SCMP_ARCH_X32)) ||
                (native == SCMP_ARCH_AARCH64 && arch == SCMP_ARCH_ARM);
  return compat ? std::optional<std::uint32_t>(arch) : std::nullopt;
}

void check(int rc, const std::string& what) {
  if (rc < 0) throw Error("compile seccomp profile", what, describeErrno(-rc));
}

}  // namespace

CompiledSeccompFilter compileSeccompFilter(const policy::SeccompProfile& profile) {
  CompiledSeccompFilter compiled;
  std::uint32_t default_action =
      toLibseccompAction(profile.default_action, profile.default_errno_ret);
  Context context(seccomp_init(default_action));
  if (!context) throw Error("compile seccomp profile", profile.origin, "seccomp_init failed");
  // The runner sets no_new_privs itself, as a named step, before the filter is loaded.
  check(seccomp_attr_set(context.get(), SCMP_FLTATR_CTL_NNP, 0), "no_new_privs attribute");
  // A binary tree over syscall numbers instead of one comparison per rule in order: the kernel
  // runs the filter on every syscall the job makes, and once per syscall number when the filter
  // is loaded (to build its cache of always-allowed calls), so the job starts faster and runs
  // with less overhead. The rules' actions do not depend on their order (each names its calls).
  check(seccomp_attr_set(context.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "optimize attribute");

  compiled.architectures.push_back("native");  // seccomp_init always includes it
  for (const auto& name : profile.architectures) {
    auto arch = runnableArchitecture(name);
    if (!arch || *arch == seccomp_arch_native()) continue;
    int rc = seccomp_arch_add(context.get(), *arch);
    if (rc == -EEXIST) continue;
    check(rc, "architecture " + name);
    compiled.architectures.push_back(name);
  }

  for (const auto& rule : profile.rules) {
    std::uint32_t action = toLibseccompAction(rule.action, rule.errno_ret);
    std::string rule_name = rule.names.empty() ? std::string("(no names)") : rule.names.front();
    if (action == default_action) continue;  // libseccomp refuses rules that change nothing
    std::vector<scmp_arg_cmp> comparisons;
    for (const auto& arg : rule.args) {
      if (arg.index > 5) {
        throw Error("compile seccomp rule", rule_name,
                    "argument index " + std::to_string(arg.index) + " is not between 0 and 5");
      }
      comparisons.push_back({arg.index, toComparison(arg.op, rule_name), arg.value,
                             arg.value_two});
    }
    for (const auto& name : rule.names) {
      int number = seccomp_syscall_resolve_name(name.c_str());
      if (number == __NR_SCMP_ERROR) {
        compiled.skipped_syscalls.push_back(name);
        continue;
      }
      int rc = seccomp_rule_add_array(context.get(), action, number,
                                      static_cast<unsigned>(comparisons.size()),
                                      comparisons.empty() ? nullptr : comparisons.data());
      if (rc == -EOPNOTSUPP || rc == -EDOM) {
        // No such syscall on one of the architectures (e.g. a legacy call on x32): not enforceable.
        compiled.skipped_syscalls.push_back(name);
        continue;
      }
      check(rc, "rule for " + name + " (" + rule.reason + ")");
      compiled.applied_syscalls.push_back(name);
    }
  }

  int fd = memfd_create("kbatch-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) throw Error("compile seccomp profile", "memfd", describeErrno(errno));
  int rc = seccomp_export_bpf(context.get(), fd);
  if (rc < 0) {
    close(fd);
    check(rc, "export to BPF");
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    close(fd);
    throw Error("compile seccomp profile", profile.origin, "libseccomp exported no BPF program");
  }
  compiled.program.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
  ssize_t got = pread(fd, compiled.program.data(), static_cast<std::size_t>(size), 0);
  close(fd);
  if (got != size) throw Error("compile seccomp profile", "memfd", "short read of the BPF program");
  if (compiled.program.size() > BPF_MAXINSNS) {
    throw Error("compile seccomp profile", profile.origin,
                "the filter has " + std::to_string(compiled.program.size()) +
                    " instructions; the kernel accepts at most " + std::to_string(BPF_MAXINSNS));
  }
  return compiled;
}

std::string seccompBuildIdentity() {
  const scmp_version* version = seccomp_version();
  char text[96];
  std::snprintf(text, sizeof text, "libseccomp %u.%u.%u, seccomp API %u, arch %x", version->major,
                version->minor, version->micro, seccomp_api_get(), seccomp_arch_native());
  return text;
}

policy::PrecompiledSeccomp precompileSeccompFilter(const policy::SeccompProfile& profile) {
  const std::vector<sock_filter> program = compileSeccompFilter(profile).program;
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(program.data());
  return {seccompBuildIdentity(),
          std::vector<std::uint8_t>(bytes, bytes + program.size() * sizeof(sock_filter))};
}

std::optional<std::vector<sock_filter>> usablePrecompiledFilter(
    const policy::PrecompiledSeccomp& precompiled) {
  const std::size_t size = precompiled.program.size();
  if (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS ||
      precompiled.build != seccompBuildIdentity()) {
    return std::nullopt;
  }
  std::vector<sock_filter> program(size / sizeof(sock_filter));
  std::memcpy(program.data(), precompiled.program.data(), size);
  return program;
}

}  // namespace kbatch::runner
