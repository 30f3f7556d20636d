// Every rule, with a job it allows and a job it denies; the decision names the rule's line.

#include <gtest/gtest.h>

#include "policy_test_util.h"

namespace kbatch::policy {
namespace {

using testing::parse;

const char* kPolicy = R"(version: 1
backends:
  allowed: [local]
images:
  registries: [registry.example.org, docker.io]
  allowed:
    - "registry.example.org/hpc/**"
    - "docker.io/library/ubuntu:*"
    - "/apps/images/*"
binds:
  allowed:
    - { path: $HOME, access: rw }
    - { path: $PBS_O_WORKDIR, access: rw }
    - { path: $TMPDIR, access: rw }
    - { path: /scratch/$USER, access: rw }
    - { path: /apps, access: ro }
  site:
    - { source: /apps/modules, destination: /opt/modules }
    - { source: $KBATCH_JOB_SCRATCH, destination: /job-scratch, access: rw }
resources:
  max_cpus: 16
  max_memory: 64G
  max_walltime: "24:00:00"
  max_gpus: 2
capabilities: [CHOWN]
)";

class EvaluateTest : public ::testing::Test {
 protected:
  Policy policy_ = parse(kPolicy);
  EvaluationContext context_ = testing::aliceContext();
  JobSpec job_;

  RuleResult only(const Decision& decision, const std::string& rule) {
    const RuleResult* found = nullptr;
    for (const auto& result : decision.results) {
      if (result.rule == rule) {
        EXPECT_EQ(found, nullptr) << "rule " << rule << " applied twice";
        found = &result;
      }
    }
    if (found == nullptr) {
      ADD_FAILURE() << "rule " << rule << " did not apply";
      return {"(missing)", "", false, "", {}};
    }
    return *found;
  }
};

TEST_F(EvaluateTest, BackendDefaultAllowedOtherDenied) {
  const auto& allowed = only(evaluate(policy_, job_, context_), "backends.allowed");
  EXPECT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.subject, "backend local");
  EXPECT_EQ(allowed.where.toString(), "test.yaml:3:3");
  job_.backend = Backend::kK8s;
  Decision decision = evaluate(policy_, job_, context_);
  EXPECT_FALSE(decision.allowed());
  EXPECT_EQ(decision.firstDenial()->rule, "backends.allowed");
  EXPECT_EQ(decision.firstDenial()->toString(),
            "test.yaml:3:3: deny  backends.allowed: backend k8s: requested, not in backends.allowed");
}

TEST_F(EvaluateTest, ImagePatternAllowsAndDenies) {
  job_.image = "ubuntu:22.04";
  const auto& allowed = only(evaluate(policy_, job_, context_), "images.allowed");
  EXPECT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.subject, "image docker.io/library/ubuntu:22.04");
  EXPECT_EQ(allowed.where.line, 8);
  job_.image = "docker.io/library/alpine:3";
  EXPECT_FALSE(only(evaluate(policy_, job_, context_), "images.allowed").allowed);
  // `*` stays within one component, `**` does not.
  job_.image = "registry.example.org/hpc/chem/gromacs:2023";
  EXPECT_TRUE(evaluate(policy_, job_, context_).allowed());
  job_.image = "/apps/images/gromacs";
  EXPECT_TRUE(evaluate(policy_, job_, context_).allowed());
  job_.image = "/apps/images/x/../../../etc";
  EXPECT_FALSE(evaluate(policy_, job_, context_).allowed());
}

TEST_F(EvaluateTest, RegistryAllowsAndDenies) {
  Policy any_image = parse("images: {registries: [registry.example.org], allowed: ['**']}\n");
  job_.image = "registry.example.org/x/y:1";
  EXPECT_TRUE(only(evaluate(any_image, job_, context_), "images.registries").allowed);
  job_.image = "quay.io/x/y:1";
  const auto& denied = only(evaluate(any_image, job_, context_), "images.registries");
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, "registry 'quay.io' is not allowed");
}

TEST_F(EvaluateTest, RequireDigestAllowsPinnedDeniesTags) {
  Policy pinned = parse("images: {require_digest: true}\n");
  job_.image = "ubuntu@sha256:" + std::string(64, 'a');
  EXPECT_TRUE(only(evaluate(pinned, job_, context_), "images.require_digest").allowed);
  job_.image = "ubuntu:22.04";
  EXPECT_FALSE(only(evaluate(pinned, job_, context_), "images.require_digest").allowed);
  job_.image = "ubuntu@sha256:abc";
  EXPECT_FALSE(only(evaluate(pinned, job_, context_), "images.require_digest").allowed);
}

TEST_F(EvaluateTest, BindsInsideAllowedPathsPass) {
  job_.binds = {{"/home/alice/data", "/data", false},
                {"/scratch/alice/out", "/out", false},
                {"/apps/gromacs", "/opt/gromacs", true},
                {"/tmp/pbs.42.node01/x", "/tmp/x", false}};
  Decision decision = evaluate(policy_, job_, context_);
  EXPECT_TRUE(decision.allowed()) << decision.firstDenial()->toString();
  int binds = 0;
  for (const auto& result : decision.results) binds += result.rule == "binds.allowed";
  EXPECT_EQ(binds, 4);
}

TEST_F(EvaluateTest, BindsOutsideOrTooWritableAreDenied) {
  job_.binds = {{"/home/bob/secret", "/secret", true}};
  Decision decision = evaluate(policy_, job_, context_);
  ASSERT_FALSE(decision.allowed());
  EXPECT_EQ(decision.firstDenial()->reason, "not inside any allowed path");

  job_.binds = {{"/apps/gromacs", "/opt/gromacs", false}};  // rw under a ro rule
  decision = evaluate(policy_, job_, context_);
  ASSERT_FALSE(decision.allowed());
  EXPECT_EQ(decision.firstDenial()->reason, "only read-only binds are allowed under /apps");
  EXPECT_EQ(decision.firstDenial()->where.line, 16);

  // A prefix that is not a path component does not count.
  job_.binds = {{"/home/alice2", "/x", true}};
  EXPECT_FALSE(evaluate(policy_, job_, context_).allowed());
  job_.binds = {{"relative/dir", "/x", true}};
  EXPECT_FALSE(evaluate(policy_, job_, context_).allowed());
  job_.binds = {{"/home/alice/x", "/../etc", true}};
  EXPECT_FALSE(evaluate(policy_, job_, context_).allowed());
  job_.binds = {{"/proc", "/proc", true}};
  EXPECT_FALSE(evaluate(policy_, job_, context_).allowed());
}

TEST_F(EvaluateTest, UnsetVariablesMakeTheirRulesInapplicable) {
  context_.tmpdir.reset();
  job_.binds = {{"/tmp/pbs.42.node01/x", "/x", true}};
  Decision decision = evaluate(policy_, job_, context_);
  ASSERT_FALSE(decision.allowed());
  EXPECT_NE(decision.firstDenial()->reason.find("$TMPDIR ($TMPDIR unset)"), std::string::npos)
      << decision.firstDenial()->reason;
}

TEST_F(EvaluateTest, HomeAtTheRootDoesNotOpenTheSystem) {
  context_.home = "/";
  job_.binds = {{"/etc", "/etc", false}};
  Decision decision = evaluate(policy_, job_, context_);
  ASSERT_FALSE(decision.allowed());
  EXPECT_NE(decision.firstDenial()->reason.find("expands to /, a system path"), std::string::npos)
      << decision.firstDenial()->reason;
}

TEST_F(EvaluateTest, SymlinkOutOfAnAllowedPathIsDenied) {
  testing::ScratchDir dir;
  std::filesystem::create_directories(dir.path() / "home");
  std::filesystem::create_directories(dir.path() / "elsewhere");
  std::filesystem::create_directory_symlink(dir.path() / "elsewhere", dir.path() / "home" / "link");
  context_.home = (dir.path() / "home").string();
  context_.resolve_symlinks = true;
  job_.binds = {{(dir.path() / "home" / "link").string(), "/data", true}};
  Decision decision = evaluate(policy_, job_, context_);
  ASSERT_FALSE(decision.allowed());
  EXPECT_NE(decision.firstDenial()->reason.find("resolves to " + (dir.path() / "elsewhere").string()),
            std::string::npos)
      << decision.firstDenial()->reason;
  job_.binds = {{(dir.path() / "home").string(), "/data", true}};
  EXPECT_TRUE(evaluate(policy_, job_, context_).allowed());
}

TEST_F(EvaluateTest, WorkingDirectoryNeedsAWritableRule) {
  job_.workdir = "/home/alice/run1";
  EXPECT_TRUE(only(evaluate(policy_, job_, context_), "binds.allowed").allowed);
  job_.workdir = "/apps/run";
  EXPECT_FALSE(only(evaluate(policy_, job_, context_), "binds.allowed").allowed);
}

TEST_F(EvaluateTest, ResourceCeilings) {
  job_.resources.ppn = 16;
  job_.resources.mem_bytes = 64ULL << 30;
  job_.resources.walltime_s = 24 * 3600;
  job_.resources.gpus = 2;
  Decision decision = evaluate(policy_, job_, context_);
  EXPECT_TRUE(only(decision, "resources.max_cpus").allowed);
  EXPECT_TRUE(only(decision, "resources.max_memory").allowed);
  EXPECT_TRUE(only(decision, "resources.max_walltime").allowed);
  EXPECT_TRUE(only(decision, "resources.max_gpus").allowed);

  job_.resources.ppn = 17;
  job_.resources.mem_bytes = (64ULL << 30) + 1;
  job_.resources.walltime_s = 24 * 3600 + 1;
  job_.resources.gpus = 3;
  decision = evaluate(policy_, job_, context_);
  EXPECT_FALSE(only(decision, "resources.max_cpus").allowed);
  EXPECT_FALSE(only(decision, "resources.max_memory").allowed);
  EXPECT_FALSE(only(decision, "resources.max_walltime").allowed);
  EXPECT_FALSE(only(decision, "resources.max_gpus").allowed);
  EXPECT_EQ(only(decision, "resources.max_cpus").reason, "above the ceiling of 16");
  EXPECT_EQ(only(decision, "resources.max_cpus").where.line, 21);
  // procs counts when ppn is absent.
  job_ = {};
  job_.resources.procs = 32;
  EXPECT_FALSE(only(evaluate(policy_, job_, context_), "resources.max_cpus").allowed);
}

TEST_F(EvaluateTest, MatchAllocation) {
  Policy matching = parse("resources: {match_allocation: true}\n");
  context_.allocation = EvaluationContext::Allocation{8, 16ULL << 30, 3600, 1};
  job_.resources.ppn = 8;
  job_.resources.mem_bytes = 16ULL << 30;
  job_.resources.walltime_s = 3600;
  EXPECT_TRUE(evaluate(matching, job_, context_).allowed());
  job_.resources.ppn = 4;
  Decision decision = evaluate(matching, job_, context_);
  ASSERT_FALSE(decision.allowed());
  EXPECT_EQ(decision.firstDenial()->reason, "differs from the batch allocation of 8");
  // Outside a batch job there is no allocation to compare with.
  context_.allocation.reset();
  EXPECT_TRUE(evaluate(matching, job_, context_).allowed());
}

TEST_F(EvaluateTest, Capabilities) {
  context_.requested_capabilities = {"chown"};
  EXPECT_TRUE(only(evaluate(policy_, job_, context_), "capabilities").allowed);
  context_.requested_capabilities = {"CAP_KILL"};
  EXPECT_FALSE(only(evaluate(policy_, job_, context_), "capabilities").allowed);
  EXPECT_FALSE(only(evaluate(builtinDefaultPolicy(), job_, context_), "capabilities").allowed);
}

TEST_F(EvaluateTest, Fakeroot) {
  context_.fakeroot_requested = true;
  EXPECT_FALSE(only(evaluate(policy_, job_, context_), "fakeroot").allowed);
  EXPECT_TRUE(only(evaluate(parse("fakeroot: true\n"), job_, context_), "fakeroot").allowed);
}

TEST_F(EvaluateTest, SeccompIsAlwaysReported) {
  const auto& seccomp = only(evaluate(policy_, job_, context_), "seccomp");
  EXPECT_TRUE(seccomp.allowed);
  EXPECT_NE(seccomp.reason.find("built-in default"), std::string::npos);
}

TEST_F(EvaluateTest, SiteBindsExpandPerJob) {
  auto binds = expandSiteBinds(policy_, context_);
  ASSERT_EQ(binds.size(), 2u);
  EXPECT_EQ(binds[0].destination, "/opt/modules");
  EXPECT_TRUE(binds[0].read_only);
  EXPECT_EQ(binds[1].source, "/scratch/jobs/42");
  EXPECT_FALSE(binds[1].read_only);
  context_.job_scratch.reset();
  EXPECT_EQ(expandSiteBinds(policy_, context_).size(), 1u);
}

TEST_F(EvaluateTest, BuiltInDefaultAllowsTheJobsOwnDirectoriesOnly) {
  Policy defaults = builtinDefaultPolicy();
  job_.image = "anything/at:all";
  job_.binds = {{"/home/alice/x", "/x", false}, {"/scratch/jobs/42", "/s", false}};
  EXPECT_TRUE(evaluate(defaults, job_, context_).allowed());
  job_.binds = {{"/data/shared", "/x", true}};
  EXPECT_FALSE(evaluate(defaults, job_, context_).allowed());
  job_.backend = Backend::kK8s;
  job_.binds.clear();
  EXPECT_FALSE(evaluate(defaults, job_, context_).allowed());
}

TEST(ImageReference, Normalisation) {
  EXPECT_EQ(normalizeImageReference("ubuntu"), "docker.io/library/ubuntu:latest");
  EXPECT_EQ(normalizeImageReference("ubuntu:22.04"), "docker.io/library/ubuntu:22.04");
  EXPECT_EQ(normalizeImageReference("user/app"), "docker.io/user/app:latest");
  EXPECT_EQ(normalizeImageReference("localhost:5000/app"), "localhost:5000/app:latest");
  EXPECT_EQ(normalizeImageReference("docker://registry.example.org/a/b:1"),
            "registry.example.org/a/b:1");
  EXPECT_EQ(normalizeImageReference("ubuntu@sha256:ab"), "docker.io/library/ubuntu@sha256:ab");
  EXPECT_EQ(normalizeImageReference("/apps/images/x"), "/apps/images/x");
}

}  // namespace
}  // namespace kbatch::policy
