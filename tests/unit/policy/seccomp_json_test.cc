// The seccomp profile as OCI JSON: what `kbatch policy seccomp --format oci` writes must read back
// as the same rules, and bad profiles are refused naming the field.

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "kbatch/common/error.h"
#include "kbatch/policy/seccomp_json.h"

namespace kbatch::policy {
namespace {

std::string readError(const std::string& text) {
  try {
    readOciSeccompJson(text, "profile.json");
  } catch (const Error& error) {
    return error.oneLine();
  }
  return "(no error)";
}

TEST(DefaultSeccompProfile, DeniesTheEscapeRoutesWithEperm) {
  SeccompProfile profile = defaultSeccompProfile();
  EXPECT_EQ(profile.default_action, SeccompAction::kAllow);
  std::set<std::string> denied;  // whatever the arguments
  std::set<unsigned long long> clone_flags_denied;
  for (const auto& rule : profile.rules) {
    EXPECT_EQ(rule.action, SeccompAction::kErrno);
    EXPECT_FALSE(rule.reason.empty()) << rule.names[0] << " has no reason";
    if (rule.names == std::vector<std::string>{"clone3"}) {
      // glibc falls back to clone on ENOSYS only; EPERM would break every pthread_create.
      EXPECT_EQ(rule.errno_ret, ENOSYS);
    } else {
      EXPECT_EQ(rule.errno_ret, EPERM) << rule.names[0];
    }
    if (rule.names == std::vector<std::string>{"clone"}) {
      ASSERT_EQ(rule.args.size(), 1u);
      EXPECT_EQ(rule.args[0].index, 0u);
      EXPECT_EQ(rule.args[0].op, "SCMP_CMP_MASKED_EQ");
      EXPECT_EQ(rule.args[0].value, rule.args[0].value_two);
      clone_flags_denied.insert(rule.args[0].value);
      continue;
    }
    EXPECT_TRUE(rule.args.empty()) << rule.names[0];
    denied.insert(rule.names.begin(), rule.names.end());
  }
  for (const char* name : {"mount", "umount2", "pivot_root", "unshare", "setns", "clone3", "keyctl",
                           "bpf", "perf_event_open", "ptrace", "kexec_load", "init_module",
                           "finit_module", "reboot", "swapon", "open_by_handle_at", "userfaultfd",
                           "iopl", "ioperm", "syslog", "move_mount", "fsopen"}) {
    EXPECT_EQ(denied.count(name), 1u) << name;
  }
  EXPECT_EQ(denied.count("read"), 0u);
  EXPECT_EQ(denied.count("clone"), 0u);  // threads and fork need it; only its flags are refused
  // MPI copies between ranks with them (cross-memory attach).
  EXPECT_EQ(denied.count("process_vm_readv"), 0u);
  EXPECT_EQ(denied.count("process_vm_writev"), 0u);
  EXPECT_EQ(clone_flags_denied,
            (std::set<unsigned long long>{CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                          CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP}));
}

TEST(SeccompJson, WritesTheOciFieldNames) {
  auto json = nlohmann::json::parse(writeOciSeccompJson(defaultSeccompProfile()));
  EXPECT_EQ(json["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(json["architectures"][0], "SCMP_ARCH_X86_64");
  ASSERT_TRUE(json["syscalls"].is_array());
  EXPECT_EQ(json["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(json["syscalls"][0]["errnoRet"], 1);
  EXPECT_EQ(json["syscalls"][0]["names"][0], "mount");
  for (const auto& [key, value] : json.items()) {
    EXPECT_TRUE(key == "defaultAction" || key == "architectures" || key == "syscalls") << key;
  }
}

TEST(SeccompJson, RoundTripKeepsEveryRule) {
  SeccompProfile original = defaultSeccompProfile();
  original.rules.push_back({{"personality"}, SeccompAction::kErrno, 22,
                            {{0, 0xffffffff, 0, "SCMP_CMP_NE"}}, ""});
  SeccompProfile back = readOciSeccompJson(writeOciSeccompJson(original), "round-trip");
  ASSERT_EQ(back.rules.size(), original.rules.size());
  for (std::size_t i = 0; i < original.rules.size(); ++i) {
    EXPECT_EQ(back.rules[i].names, original.rules[i].names);
    EXPECT_EQ(back.rules[i].action, original.rules[i].action);
    EXPECT_EQ(back.rules[i].errno_ret, original.rules[i].errno_ret);
    ASSERT_EQ(back.rules[i].args.size(), original.rules[i].args.size());
  }
  EXPECT_EQ(back.rules.back().args[0].value, 0xffffffffULL);
  EXPECT_EQ(back.rules.back().args[0].op, "SCMP_CMP_NE");
  EXPECT_EQ(back.architectures, original.architectures);
}

TEST(SeccompJson, ReadsDockerStyleProfiles) {
  SeccompProfile profile = readOciSeccompJson(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "I/O",
                  "includes": {}, "excludes": {}}]})",
                                              "docker.json");
  EXPECT_EQ(profile.default_action, SeccompAction::kErrno);
  EXPECT_EQ(profile.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(profile.rules[0].reason, "I/O");
}

TEST(SeccompJson, RefusesWhatCannotBeEnforcedAlike) {
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALOW"})").find("did you mean 'SCMP_ACT_ALLOW'"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
            "action": "SCMP_ACT_NOTIFY"}]})")
                .find("syscalls[0].action"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
            "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]})")
                .find("syscalls[0].includes: conditional rules are not supported"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []})")
                .find("did you mean 'syscalls'?"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [],
            "action": "SCMP_ACT_ERRNO"}]})")
                .find("at least one syscall"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
            "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]})")
                .find("syscalls[0].args[0].index: must be at most 5"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
            "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}]})")
                .find("did you mean 'SCMP_CMP_EQ'"),
            std::string::npos);
  EXPECT_NE(readError(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mo unt"],
            "action": "SCMP_ACT_ERRNO"}]})")
                .find("is not a syscall name"),
            std::string::npos);
  std::string error = readError("{\n  \"defaultAction\": ,\n}");
  EXPECT_NE(error.find("profile.json:2:"), std::string::npos) << error;
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
}

}  // namespace
}  // namespace kbatch::policy
