#include "kbatch/runner/seccomp_filter.h"

#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kbatch/common/error.h"

namespace kbatch::runner {
namespace {

using policy::SeccompAction;
using policy::SeccompProfile;

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

/// Loads `filter` in a forked child and returns what `probe` returned there (its exit status).
template <typename Probe>
int runUnderFilter(const CompiledSeccompFilter& filter, Probe probe) {
  pid_t child = fork();
  if (child == 0) {
    sock_fprog program{static_cast<unsigned short>(filter.program.size()),
                       const_cast<sock_filter*>(filter.program.data())};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(200);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) _exit(201);
    // Straight to the kernel: the sanitizers' _exit interceptor (debug preset) makes calls of
    // its own, which a default-deny profile refuses, and then aborts.
    syscall(SYS_exit_group, probe());
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

TEST(SeccompFilter, DefaultProfileCompilesAndNamesWhatItDenies) {
  CompiledSeccompFilter filter = compileSeccompFilter(policy::defaultSeccompProfile());
  EXPECT_GT(filter.program.size(), 10u);
  for (const char* name : {"mount", "unshare", "setns", "keyctl", "bpf", "ptrace",
                           "perf_event_open", "open_by_handle_at", "userfaultfd", "kexec_load"}) {
    EXPECT_TRUE(contains(filter.applied_syscalls, name)) << name;
  }
  EXPECT_FALSE(filter.architectures.empty());
}

TEST(SeccompFilter, DefaultProfileDeniesWithEpermAndAllowsTheRest) {
  CompiledSeccompFilter filter = compileSeccompFilter(policy::defaultSeccompProfile());
  EXPECT_EQ(runUnderFilter(filter, [] {
              long rc = syscall(SYS_keyctl, 0, 0, 0, 0, 0);
              return rc == -1 && errno == EPERM ? 0 : 1;
            }), 0);
  EXPECT_EQ(runUnderFilter(filter, [] {
              return syscall(SYS_unshare, 0) == -1 && errno == EPERM ? 0 : 1;
            }), 0);
  EXPECT_EQ(runUnderFilter(filter, [] { return getpid() > 0 && getppid() > 0 ? 0 : 1; }), 0);
}

void* threadBody(void* argument) { return argument; }

// The default profile refuses new namespaces through clone's flags, while clone3 (whose flags a
// filter cannot read) reports ENOSYS so that glibc falls back to clone: threads must still work.
TEST(SeccompFilter, DefaultProfileRefusesNamespaceClonesButKeepsThreads) {
  CompiledSeccompFilter filter = compileSeccompFilter(policy::defaultSeccompProfile());
  for (unsigned long flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS,
                             CLONE_NEWIPC, CLONE_NEWCGROUP}) {
    EXPECT_EQ(runUnderFilter(filter, [flag] {
                long child = syscall(SYS_clone, flag | SIGCHLD, nullptr, nullptr, nullptr, 0);
                if (child == 0) _exit(0);
                if (child > 0) waitpid(static_cast<pid_t>(child), nullptr, 0);
                return child == -1 && errno == EPERM ? 0 : 1;
              }), 0) << "clone flag " << std::hex << flag;
  }
  EXPECT_EQ(runUnderFilter(filter, [] {
              return syscall(SYS_clone3, nullptr, 0) == -1 && errno == ENOSYS ? 0 : 1;
            }), 0);
  EXPECT_EQ(runUnderFilter(filter, [] {
              pthread_t thread;
              if (pthread_create(&thread, nullptr, threadBody, nullptr) != 0) return 1;
              return pthread_join(thread, nullptr) == 0 ? 0 : 2;
            }), 0);
  EXPECT_EQ(runUnderFilter(filter, [] {
              pid_t child = fork();
              if (child == 0) _exit(7);
              int status = 0;
              return child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
                             WEXITSTATUS(status) == 7
                         ? 0
                         : 1;
            }), 0);
}

TEST(SeccompFilter, CustomErrnoAndArgumentComparisons) {
  SeccompProfile profile;
  profile.default_action = SeccompAction::kAllow;
  profile.rules.push_back({{"getppid"}, SeccompAction::kErrno, 42, {}, "test: fixed errno"});
  // dup(0) is denied, dup(1) allowed: the argument comparison is compiled in.
  profile.rules.push_back({{"dup"}, SeccompAction::kErrno, EPERM,
                           {{0, 0, 0, "SCMP_CMP_EQ"}}, "test: argument"});
  CompiledSeccompFilter filter = compileSeccompFilter(profile);
  EXPECT_EQ(runUnderFilter(filter, [] {
              return syscall(SYS_getppid) == -1 && errno == 42 ? 0 : 1;
            }), 0);
  EXPECT_EQ(runUnderFilter(filter, [] {
              bool zero_denied = dup(0) == -1 && errno == EPERM;
              bool one_allowed = dup(1) >= 0;
              return zero_denied && one_allowed ? 0 : 1;
            }), 0);
}

TEST(SeccompFilter, DefaultDenyProfileWithAllowList) {
  SeccompProfile profile;
  profile.default_action = SeccompAction::kErrno;
  profile.default_errno_ret = EACCES;
  profile.rules.push_back({{"exit_group", "exit", "getpid", "write"}, SeccompAction::kAllow, 0, {},
                           "test"});
  CompiledSeccompFilter filter = compileSeccompFilter(profile);
  EXPECT_EQ(runUnderFilter(filter, [] {
              bool denied = syscall(SYS_getppid) == -1 && errno == EACCES;
              return denied && syscall(SYS_getpid) > 0 ? 0 : 1;
            }), 0);
}

TEST(SeccompFilter, UnknownSyscallNamesAreSkippedAndListed) {
  SeccompProfile profile;
  profile.rules.push_back({{"not_a_syscall_kbatch", "bpf"}, SeccompAction::kErrno, EPERM, {}, "t"});
  CompiledSeccompFilter filter = compileSeccompFilter(profile);
  EXPECT_TRUE(contains(filter.skipped_syscalls, "not_a_syscall_kbatch"));
  EXPECT_TRUE(contains(filter.applied_syscalls, "bpf"));
}

TEST(SeccompFilter, ForeignArchitecturesAreLeftOut) {
  SeccompProfile profile;
  profile.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"};
  profile.rules.push_back({{"bpf"}, SeccompAction::kErrno, EPERM, {}, "t"});
  CompiledSeccompFilter filter = compileSeccompFilter(profile);
#if defined(__x86_64__)
  EXPECT_TRUE(contains(filter.architectures, "SCMP_ARCH_X86"));
  EXPECT_FALSE(contains(filter.architectures, "SCMP_ARCH_AARCH64"));
#endif
}

TEST(SeccompFilter, BadOperatorIsAnErrorNamingTheRule) {
  SeccompProfile profile;
  profile.rules.push_back({{"dup"}, SeccompAction::kErrno, EPERM, {{0, 0, 0, "SCMP_CMP_SOMETIMES"}},
                           "t"});
  try {
    compileSeccompFilter(profile);
    FAIL() << "accepted an unknown operator";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("SCMP_CMP_SOMETIMES"), std::string::npos);
    EXPECT_NE(error.oneLine().find("dup"), std::string::npos);
  }
}

// `kbatch policy compile` keeps the filter in the compiled policy; a job uses it only where this
// machine would compile exactly that program.
TEST(SeccompFilter, PrecompiledFilterIsTheCompiledProgramForThisMachineOnly) {
  const SeccompProfile profile = policy::defaultSeccompProfile();
  const policy::PrecompiledSeccomp precompiled = precompileSeccompFilter(profile);
  const std::string identity = seccompBuildIdentity();
  EXPECT_EQ(precompiled.build, identity);
  EXPECT_NE(identity.find("libseccomp "), std::string::npos) << identity;
  EXPECT_NE(identity.find("seccomp API "), std::string::npos) << identity;

  auto usable = usablePrecompiledFilter(precompiled);
  ASSERT_TRUE(usable);
  const std::vector<sock_filter> compiled = compileSeccompFilter(profile).program;
  ASSERT_EQ(usable->size(), compiled.size());
  EXPECT_EQ(std::memcmp(usable->data(), compiled.data(), compiled.size() * sizeof(sock_filter)), 0);
  EXPECT_EQ(runUnderFilter(CompiledSeccompFilter{*usable, {}, {}, {}}, [] {
              return syscall(SYS_keyctl, 0, 0, 0, 0, 0) == -1 && errno == EPERM ? 0 : 1;
            }), 0);

  policy::PrecompiledSeccomp elsewhere = precompiled;
  elsewhere.build = "libseccomp 2.4.0, seccomp API 3, arch c000003e";
  EXPECT_FALSE(usablePrecompiledFilter(elsewhere));
  policy::PrecompiledSeccomp truncated = precompiled;
  truncated.program.pop_back();
  EXPECT_FALSE(usablePrecompiledFilter(truncated));
  policy::PrecompiledSeccomp empty = precompiled;
  empty.program.clear();
  EXPECT_FALSE(usablePrecompiledFilter(empty));
}

}  // namespace
}  // namespace kbatch::runner
