// The compiled site policy: what it loads is the policy the YAML gives, field for field and
// decision for decision; anything that does not match the texts it was compiled from is not used.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kbatch/common/error.h"
#include "kbatch/policy/k8s_export.h"
#include "kbatch/policy/seccomp_json.h"
#include "policy_compiled.h"
#include "policy_test_util.h"

namespace kbatch::policy {
namespace {

using testing::ScratchDir;

std::string readSource(const std::string& relative) {
  std::ifstream in(std::string(KBATCH_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string asString(const std::vector<std::uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

std::vector<uid_t> owners() { return testing::trustingTester().trusted_owners; }

std::vector<std::string> decisions(const Policy& policy) {
  std::vector<JobSpec> jobs(4);
  jobs[0].image = "registry.example.org/hpc/solver:2";
  jobs[1].image = "docker.io/library/ubuntu:22.04";
  jobs[1].binds = {{"/home/alice/data", "/data", false}, {"/etc", "/etc", true}};
  jobs[2].image = "registry.example.org/hpc/solver:2";
  jobs[2].resources.ppn = 512;
  jobs[2].backend = Backend::kK8s;
  jobs[3].image = "/home/alice/rootfs";
  jobs[3].resources.walltime_s = 3600;
  std::vector<std::string> lines;
  for (const auto& job : jobs) {
    for (const auto& result : evaluate(policy, job, testing::aliceContext()).results) {
      lines.push_back(result.toString());
    }
  }
  return lines;
}

TEST(CompiledPolicy, LoadsWhatTheYamlGives) {
  ScratchDir dir;
  // The full example policy, with a seccomp profile file instead of the built-in one.
  auto profile = dir.write("seccomp.json", R"({"defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mount", "ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})");
  std::string text = readSource("packaging/policy.yaml");
  const std::string default_profile = "profile: default";
  ASSERT_NE(text.find(default_profile), std::string::npos);
  text.replace(text.find(default_profile), default_profile.size(), "profile: " + profile.string());
  Policy parsed = testing::parse(text);
  ASSERT_EQ(parsed.seccomp.origin, profile.string());

  std::vector<std::uint8_t> compiled = compilePolicy(parsed, text, owners());
  std::string why_not;
  auto loaded = loadCompiledPolicy(asString(compiled), text, "test.yaml", owners(), &why_not);
  ASSERT_TRUE(loaded) << why_not;
  // Every serialised field round-trips (policy_compiled.cc's size checks cover unserialised ones).
  EXPECT_EQ(compilePolicy(*loaded, text, owners()), compiled);
  EXPECT_EQ(loaded->sources, parsed.sources);
  ASSERT_GT(decisions(parsed).size(), 8u);
  EXPECT_EQ(decisions(*loaded), decisions(parsed));
  EXPECT_EQ(writeOciSeccompJson(effectiveSeccompProfile(*loaded)),
            writeOciSeccompJson(effectiveSeccompProfile(parsed)));
  EXPECT_EQ(exportKubernetesObjects(*loaded), exportKubernetesObjects(parsed));
  EXPECT_EQ(loaded->site.registry, parsed.site.registry);
  EXPECT_EQ(loaded->kubernetes.volumes, parsed.kubernetes.volumes);
}

TEST(CompiledPolicy, RulesNameTheFileTheyAreLoadedFrom) {
  // Compiled in a staging directory, installed in /etc: explain must point at the installed file.
  const std::string text = "images:\n  allowed: ['registry.example.org/**']\n";
  Policy parsed = parsePolicyText(text, "/staging/policy.yaml", testing::trustingTester());
  std::string why_not;
  auto loaded = loadCompiledPolicy(asString(compilePolicy(parsed, text, owners())), text,
                                   "/etc/kbatch/policy.yaml", owners(), &why_not);
  ASSERT_TRUE(loaded) << why_not;
  ASSERT_EQ(loaded->image_patterns.size(), 1u);
  EXPECT_EQ(loaded->image_patterns[0].where.file, "/etc/kbatch/policy.yaml");
  EXPECT_EQ(loaded->image_patterns[0].where.line, parsed.image_patterns[0].where.line);
  EXPECT_EQ(loaded->sources, std::vector<std::string>{"/etc/kbatch/policy.yaml"});
  // Built-in rules keep their own origin.
  EXPECT_EQ(loaded->seccomp_where.file, parsed.seccomp_where.file);
}

TEST(CompiledPolicy, TheBuiltInDefaultsRoundTrip) {
  const std::string text = "version: 1\n";
  Policy parsed = testing::parse(text);
  std::string why_not;
  auto loaded = loadCompiledPolicy(asString(compilePolicy(parsed, text, owners())), text,
                                   "test.yaml", owners(), &why_not);
  ASSERT_TRUE(loaded) << why_not;
  EXPECT_EQ(decisions(*loaded), decisions(parsed));
  EXPECT_EQ(loaded->seccomp.rules.size(), defaultSeccompProfile().rules.size());
}

TEST(CompiledPolicy, ThePrecompiledSeccompProgramRoundTrips) {
  const std::string text = "version: 1\n";
  Policy parsed = testing::parse(text);
  EXPECT_FALSE(parsed.seccomp_program);  // only `kbatch policy compile` adds one
  parsed.seccomp_program = PrecompiledSeccomp{"libseccomp 2.5.4, seccomp API 6, arch c000003e",
                                              {0x20, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00}};
  std::string why_not;
  auto loaded = loadCompiledPolicy(asString(compilePolicy(parsed, text, owners())), text,
                                   "test.yaml", owners(), &why_not);
  ASSERT_TRUE(loaded) << why_not;
  ASSERT_TRUE(loaded->seccomp_program);
  EXPECT_EQ(loaded->seccomp_program->build, parsed.seccomp_program->build);
  EXPECT_EQ(loaded->seccomp_program->program, parsed.seccomp_program->program);

  parsed.seccomp_program.reset();
  loaded = loadCompiledPolicy(asString(compilePolicy(parsed, text, owners())), text, "test.yaml",
                              owners(), &why_not);
  ASSERT_TRUE(loaded) << why_not;
  EXPECT_FALSE(loaded->seccomp_program);
}

TEST(CompiledPolicy, AnotherPolicyTextIsNotUsed) {
  const std::string permissive = "images: {allowed: ['**']}\n";
  const std::string strict = "images: {allowed: ['registry.example.org/**']}\n";
  auto compiled = asString(compilePolicy(testing::parse(permissive), permissive, owners()));
  std::string why_not;
  EXPECT_FALSE(loadCompiledPolicy(compiled, strict, "test.yaml", owners(), &why_not));
  EXPECT_NE(why_not.find("changed since it was compiled"), std::string::npos) << why_not;
  // One byte more is another text too.
  EXPECT_FALSE(loadCompiledPolicy(compiled, permissive + " ", "test.yaml", owners(), &why_not));
}

TEST(CompiledPolicy, AChangedSeccompProfileIsNotUsed) {
  ScratchDir dir;
  auto profile = dir.write("seccomp.json", R"({"defaultAction": "SCMP_ACT_ERRNO"})");
  const std::string text = "seccomp: {profile: " + profile.string() + "}\n";
  auto compiled = asString(compilePolicy(testing::parse(text), text, owners()));
  std::string why_not;
  ASSERT_TRUE(loadCompiledPolicy(compiled, text, "test.yaml", owners(), &why_not)) << why_not;
  dir.write("seccomp.json", R"({"defaultAction": "SCMP_ACT_LOG"})");
  EXPECT_FALSE(loadCompiledPolicy(compiled, text, "test.yaml", owners(), &why_not));
  EXPECT_NE(why_not.find("seccomp profile"), std::string::npos) << why_not;
}

TEST(CompiledPolicy, CorruptOrForeignBytesAreNotUsed) {
  const std::string text = "version: 1\n";
  auto compiled = asString(compilePolicy(testing::parse(text), text, owners()));
  std::string why_not;
  for (const std::string& bad :
       {std::string(), std::string("not cbor"), compiled.substr(0, compiled.size() / 2),
        asString(nlohmann::json::to_cbor({{"format", 999}, {"kbatch", "0"}}))}) {
    why_not.clear();
    EXPECT_FALSE(loadCompiledPolicy(bad, text, "test.yaml", owners(), &why_not));
    EXPECT_FALSE(why_not.empty());
  }
}

TEST(CompiledPolicy, OverlaysAreNotCompiled) {
  Policy policy = testing::parse("version: 1\n");
  policy.also_required.push_back(policy);
  EXPECT_THROW(compilePolicy(policy, "version: 1\n", owners()), Error);
}

}  // namespace
}  // namespace kbatch::policy
