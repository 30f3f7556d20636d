#include "kbatch/policy/seccomp_profile.h"

#include <cerrno>
#include <sched.h>
#include <utility>

namespace kbatch::policy {

SeccompProfile defaultSeccompProfile() {
  SeccompProfile profile;
  profile.default_action = SeccompAction::kAllow;
  profile.origin = "built-in default";
  profile.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                           "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
  auto deny = [&](std::vector<std::string> names, std::string reason) {
    profile.rules.push_back(
        {std::move(names), SeccompAction::kErrno, EPERM, {}, std::move(reason)});
  };
  deny({"mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
        "fsconfig", "fsmount", "fspick", "mount_setattr"},
       "a job must not change its filesystem view; the runner set it up before the job started");
  deny({"unshare", "setns"}, "new namespaces would let a job undo the runner's isolation");
  // clone(2) must stay: every threaded program (OpenMP, MPI progress threads, Python) and every
  // fork uses it. Only its namespace flags are refused, one rule per flag because the rules for a
  // syscall are alternatives and one masked comparison cannot say "any of these bits".
  const std::pair<unsigned long long, const char*> namespace_flags[] = {
      {CLONE_NEWNS, "CLONE_NEWNS"},   {CLONE_NEWUTS, "CLONE_NEWUTS"},
      {CLONE_NEWIPC, "CLONE_NEWIPC"}, {CLONE_NEWUSER, "CLONE_NEWUSER"},
      {CLONE_NEWPID, "CLONE_NEWPID"}, {CLONE_NEWNET, "CLONE_NEWNET"},
      {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}};
  for (const auto& [flag, flag_name] : namespace_flags) {
    profile.rules.push_back(
        {{"clone"},
         SeccompAction::kErrno,
         EPERM,
         {{0, flag, flag, "SCMP_CMP_MASKED_EQ"}},
         std::string("clone with ") + flag_name +
             " would give the job a namespace of its own and undo the runner's isolation"});
  }
  // clone3 passes its flags in memory, which a seccomp filter cannot read. ENOSYS, not EPERM:
  // glibc (2.34 and later) falls back to clone only when clone3 fails with ENOSYS, as on kernels
  // before 5.3; with EPERM every pthread_create would fail.
  profile.rules.push_back(
      {{"clone3"}, SeccompAction::kErrno, ENOSYS, {},
       "its flags cannot be checked, so it reports ENOSYS and libc falls back to clone, "
       "whose namespace flags are refused"});
  deny({"keyctl", "add_key", "request_key"}, "the kernel keyring is not namespaced");
  deny({"bpf"}, "eBPF programs reach into the kernel");
  deny({"perf_event_open"}, "performance counters leak information across users");
  deny({"ptrace", "kcmp"}, "a job must not inspect or modify other processes");
  // process_vm_readv/process_vm_writev stay allowed: MPI libraries (Open MPI's vader/sm and
  // UCX's CMA transport) copy messages between a node's ranks with them, and fail outright
  // ("Read -1, expected N, errno = 1") where they are refused, as under Docker's old profile.
  // The kernel's ptrace access check still applies (same uid, Yama), and the job's PID namespace
  // holds only the job's own processes and a non-dumpable init.
  deny({"kexec_load", "kexec_file_load"}, "loading a new kernel");
  deny({"init_module", "finit_module", "delete_module", "create_module", "query_module"},
       "kernel modules");
  deny({"reboot"}, "rebooting the node");
  deny({"swapon", "swapoff"}, "node-wide swap configuration");
  deny({"open_by_handle_at", "name_to_handle_at"},
       "file handles bypass path-based access checks (the 'shocker' escape)");
  deny({"userfaultfd"}, "used to widen kernel race windows in exploits");
  deny({"acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime"},
       "node-wide accounting and clock settings");
  deny({"iopl", "ioperm"}, "raw I/O port access");
  deny({"lookup_dcookie", "quotactl", "nfsservctl", "vhangup", "syslog"},
       "administrative interfaces no batch job needs");
  return profile;
}

const char* toOciName(SeccompAction action) {
  switch (action) {
    case SeccompAction::kAllow: return "SCMP_ACT_ALLOW";
    case SeccompAction::kErrno: return "SCMP_ACT_ERRNO";
    case SeccompAction::kKill: return "SCMP_ACT_KILL";
    case SeccompAction::kKillProcess: return "SCMP_ACT_KILL_PROCESS";
    case SeccompAction::kTrap: return "SCMP_ACT_TRAP";
    case SeccompAction::kLog: return "SCMP_ACT_LOG";
  }
  return "SCMP_ACT_KILL";
}

}  // namespace kbatch::policy
