// The policy schema: every key read with its type, defaults for what is left out, and one clear
// error naming file:line:column for every mistake.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "kbatch/common/error.h"
#include "policy_test_util.h"

namespace kbatch::policy {
namespace {

using testing::parse;

// The error's one line, for matching.
std::string errorOf(const std::string& text, LoadOptions options = testing::trustingTester()) {
  try {
    parse(text, options);
  } catch (const Error& error) {
    return error.oneLine();
  }
  return "(no error)";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(PolicyLoader, PackagedExampleLoadsWithEverySection) {
  Policy policy = parse(readFile(KBATCH_SOURCE_DIR "/packaging/policy.yaml"));
  EXPECT_EQ(policy.allowed_backends, (std::vector<Backend>{Backend::kLocal, Backend::kK8s}));
  EXPECT_EQ(policy.default_backend, Backend::kLocal);
  ASSERT_EQ(policy.image_patterns.size(), 5u);
  EXPECT_EQ(policy.image_patterns[0].glob, "registry.example.org/hpc/**");
  EXPECT_EQ(policy.image_patterns[0].where.toString(), "test.yaml:16:7");
  EXPECT_EQ(policy.registries, (std::vector<std::string>{"registry.example.org", "docker.io"}));
  ASSERT_EQ(policy.bind_rules.size(), 7u);
  EXPECT_EQ(policy.bind_rules[4].path, "/scratch/$USER");
  EXPECT_TRUE(policy.bind_rules[4].read_write);
  EXPECT_FALSE(policy.bind_rules[6].read_write);  // the bare path form is read-only
  ASSERT_EQ(policy.site_binds.size(), 1u);
  EXPECT_EQ(policy.site_binds[0].destination, "/opt/modules");
  EXPECT_EQ(policy.resources.cpus, 64);
  EXPECT_EQ(policy.resources.memory_bytes, 256ULL << 30);
  EXPECT_EQ(policy.resources.walltime_s, 72ULL * 3600);
  EXPECT_EQ(policy.resources.gpus, 4);
  EXPECT_TRUE(policy.resources.match_allocation);
  EXPECT_EQ(policy.seccomp.origin, "built-in default");
  EXPECT_TRUE(policy.capabilities.empty());
  EXPECT_FALSE(policy.fakerootAllowed());
  EXPECT_EQ(policy.submit_filter_mode, SubmitFilterMode::kFailClosed);
  EXPECT_EQ(policy.site.qsub_path, "/usr/bin/qsub");
  EXPECT_EQ(policy.site.image_cache, "/var/cache/kbatch/site-images");
  EXPECT_EQ(policy.site.registry, "registry.example.org");
  EXPECT_EQ(policy.kubernetes.namespaceFor("alice", {"physics", {}}), "alice-jobs");
  EXPECT_EQ(policy.kubernetes.namespaceFor("bob", {"users", {"physics"}}), "physics-jobs");
  EXPECT_EQ(policy.kubernetes.namespaceFor("carol", {"users", {}}), "hpc-jobs");
  EXPECT_EQ(policy.kubernetes.service_account, "kbatch-job");
  EXPECT_EQ(policy.kubernetes.node_names.at("node02"), "k8s-node02");
  EXPECT_EQ(policy.kubernetes.volumes.at("/scratch"), "scratch-pvc");
  EXPECT_EQ(policy.kubernetes.seccomp_localhost_profile, "kbatch/default.json");
}

TEST(PolicyLoader, EmptyFileMeansBuiltInDefaults) {
  Policy policy = parse("");
  Policy defaults = builtinDefaultPolicy();
  EXPECT_EQ(policy.allowed_backends, defaults.allowed_backends);
  EXPECT_EQ(policy.bind_rules.size(), defaults.bind_rules.size());
  EXPECT_EQ(policy.seccomp.rules.size(), defaultSeccompProfile().rules.size());
  EXPECT_EQ(policy.submit_filter_mode, SubmitFilterMode::kFailClosed);
  EXPECT_FALSE(policy.fakeroot);
  EXPECT_TRUE(policy.capabilities.empty());
}

TEST(PolicyLoader, SubmitFilterOpenAndFakerootAndCapabilities) {
  Policy policy = parse(
      "submit_filter: {on_error: open}\nfakeroot: true\ncapabilities: [chown, CAP_SETUID]\n");
  EXPECT_EQ(policy.submit_filter_mode, SubmitFilterMode::kFailOpen);
  EXPECT_TRUE(policy.fakerootAllowed());
  EXPECT_EQ(policy.allowedCapabilities(), (std::vector<std::string>{"CAP_CHOWN", "CAP_SETUID"}));
}

TEST(PolicyLoader, ComputeNodesMissingLibrariesAndDetect) {
  Policy policy = parse(
      "submit_filter: {detect: true}\n"
      "compute_nodes:\n"
      "  missing_libraries: ['libopenblas.so.*', libcuda.so.1]\n");
  EXPECT_TRUE(policy.submit_filter_detect);
  ASSERT_EQ(policy.compute_nodes.missing_libraries.size(), 2u);
  EXPECT_EQ(policy.compute_nodes.missing_libraries[1].where.toString(), "test.yaml:3:43");
  const LibraryPattern* found = findMissingLibrary(policy, "/usr/lib/x86_64-linux-gnu/libopenblas.so.0");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->glob, "libopenblas.so.*");
  EXPECT_NE(findMissingLibrary(policy, "libcuda.so.1"), nullptr);
  EXPECT_EQ(findMissingLibrary(policy, "libc.so.6"), nullptr);
  EXPECT_EQ(findMissingLibrary(policy, "libcuda.so.12"), nullptr);
  EXPECT_FALSE(parse("version: 1\n").submit_filter_detect);
  EXPECT_TRUE(parse("version: 1\n").compute_nodes.missing_libraries.empty());

  EXPECT_NE(errorOf("compute_nodes: {missing_libraries: [/usr/lib/libx.so]}\n")
                .find("test.yaml:1:37': compute_nodes.missing_libraries: '/usr/lib/libx.so' must "
                      "be a library file name pattern"),
            std::string::npos)
      << errorOf("compute_nodes: {missing_libraries: [/usr/lib/libx.so]}\n");
  EXPECT_NE(errorOf("compute_nodes: {missing_librarys: []}\n").find("did you mean 'missing_libraries'"),
            std::string::npos);
  EXPECT_NE(errorOf("submit_filter: {detect: yes}\n").find("expected true or false"),
            std::string::npos);
}

TEST(PolicyLoader, OverlayMayNameMoreMissingLibraries) {
  LoadOptions overlay_options = testing::trustingTester();
  overlay_options.overlay = true;
  Policy site = parse("compute_nodes: {missing_libraries: [libfoo.so.1]}\n");
  site.also_required.push_back(
      parse("compute_nodes: {missing_libraries: [libbar.so.*]}\n", overlay_options));
  EXPECT_NE(findMissingLibrary(site, "libfoo.so.1"), nullptr);
  EXPECT_NE(findMissingLibrary(site, "libbar.so.2"), nullptr);
  EXPECT_NE(errorOf("submit_filter: {detect: true}\n", overlay_options)
                .find("cannot be set in an overlay policy"),
            std::string::npos);
}

TEST(PolicyLoader, UnknownKeySuggestsTheNearestWithPosition) {
  std::string error = errorOf("version: 1\nimgaes:\n  allowed: ['*']\n");
  EXPECT_NE(error.find("test.yaml:2:1"), std::string::npos) << error;
  EXPECT_NE(error.find("unknown key 'imgaes'"), std::string::npos) << error;
  EXPECT_NE(error.find("did you mean 'images'?"), std::string::npos) << error;

  error = errorOf("images:\n  require_digets: true\n");
  EXPECT_NE(error.find("test.yaml:2:3"), std::string::npos) << error;
  EXPECT_NE(error.find("'images.require_digets'"), std::string::npos) << error;
  EXPECT_NE(error.find("did you mean 'require_digest'?"), std::string::npos) << error;
}

TEST(PolicyLoader, WrongTypesNameTheField) {
  EXPECT_NE(errorOf("fakeroot: yes\n").find("fakeroot: expected true or false, found 'yes'"),
            std::string::npos);
  EXPECT_NE(errorOf("resources: {max_cpus: lots}\n").find("test.yaml:1:23': resources.max_cpus: "
                                                          "expected a whole number"),
            std::string::npos)
      << errorOf("resources: {max_cpus: lots}\n");
  EXPECT_NE(errorOf("images: {allowed: docker.io/*}\n").find("images.allowed: expected a list"),
            std::string::npos);
  EXPECT_NE(errorOf("resources: {max_memory: 12 parsecs}\n").find("resources.max_memory"),
            std::string::npos);
  EXPECT_NE(errorOf("resources: {max_walltime: '1:2:3:4'}\n").find("resources.max_walltime"),
            std::string::npos);
  EXPECT_NE(errorOf("backends: {allowed: [locla]}\n").find("did you mean 'local'?"),
            std::string::npos);
  EXPECT_NE(errorOf("submit_filter: {on_error: maybe}\n").find("expected 'closed' or 'open'"),
            std::string::npos);
  EXPECT_NE(errorOf("binds: {allowed: [{path: /data, access: write}]}\n")
                .find("expected 'ro' or 'rw', found 'write'"),
            std::string::npos);
  EXPECT_NE(errorOf("version: 2\n").find("version: must be between 1 and 1"), std::string::npos);
  EXPECT_NE(errorOf("- just\n- a list\n").find("expected a mapping"), std::string::npos);
}

TEST(PolicyLoader, ContradictoryRulesAreRefused) {
  EXPECT_NE(errorOf("backends: {allowed: [local], default: k8s}\n")
                .find("contradictory rules: backends.default 'k8s' is not in backends.allowed"),
            std::string::npos);
  EXPECT_NE(errorOf("images:\n  registries: [registry.example.org]\n"
                    "  allowed: ['quay.io/hpc/*']\n")
                .find("contradictory rules: images.allowed pattern 'quay.io/hpc/*' names registry "
                      "'quay.io'"),
            std::string::npos);
  std::string error = errorOf("binds:\n  allowed:\n    - {path: /data, access: ro}\n"
                              "    - {path: /data/, access: rw}\n");
  EXPECT_NE(error.find("test.yaml:4:7': contradictory rules"), std::string::npos) << error;
  EXPECT_NE(error.find("already listed at line 3"), std::string::npos) << error;
  EXPECT_NE(errorOf("images: {registries: [a.example]}\nsite: {registry: b.example}\n")
                .find("contradictory rules: site.registry 'b.example'"),
            std::string::npos);
  EXPECT_NE(errorOf("backends: {allowed: []}\n").find("empty: no job could run"),
            std::string::npos);
}

TEST(PolicyLoader, WhatNoPolicyMayAllowIsRefusedWithTheReason) {
  EXPECT_NE(errorOf("privileged: true\n").find("'privileged' cannot be allowed by any policy: "
                                               "kbatch never runs privileged containers"),
            std::string::npos);
  EXPECT_NE(errorOf("kubernetes:\n  hostNetwork: true\n")
                .find("test.yaml:2:3': 'kubernetes.hostNetwork' cannot be allowed by any policy"),
            std::string::npos);
  EXPECT_NE(errorOf("host_pid: true\n").find("cannot be allowed by any policy"), std::string::npos);
  EXPECT_NE(errorOf("host-ipc: true\n").find("cannot be allowed by any policy"), std::string::npos);
  EXPECT_NE(errorOf("binds: {allowed: [{path: /etc, access: rw}]}\n")
                .find("writable '/etc' cannot be allowed by any policy"),
            std::string::npos);
  EXPECT_NE(errorOf("binds: {allowed: [{path: /, access: rw}]}\n")
                .find("writable '/' cannot be allowed by any policy"),
            std::string::npos);
  EXPECT_NE(errorOf("binds: {allowed: [/proc]}\n").find("cannot be allowed by any policy"),
            std::string::npos);
  EXPECT_NE(errorOf("capabilities: [SYS_ADMIN]\n")
                .find("CAP_SYS_ADMIN cannot be allowed by any policy"),
            std::string::npos);
  EXPECT_NE(errorOf("seccomp: {profile: unconfined}\n").find("cannot be allowed by any policy"),
            std::string::npos);
  // Read-only binds of ordinary system directories are fine.
  EXPECT_NO_THROW(parse("binds: {allowed: [{path: /usr/share/data, access: ro}]}\n"));
}

TEST(PolicyLoader, BindVariablesAreChecked) {
  std::string error = errorOf("binds: {allowed: [{path: $HOEM/data, access: rw}]}\n");
  EXPECT_NE(error.find("unknown variable '$HOEM'"), std::string::npos) << error;
  EXPECT_NE(error.find("did you mean '$HOME'?"), std::string::npos) << error;
  EXPECT_NE(errorOf("binds: {allowed: [data]}\n").find("must be an absolute path"),
            std::string::npos);
  EXPECT_NE(errorOf("binds: {allowed: ['/data/../etc']}\n").find("must not contain '..'"),
            std::string::npos);
  EXPECT_NO_THROW(parse("binds: {allowed: ['${PBS_O_WORKDIR}/out']}\n"));
}

TEST(PolicyLoader, DuplicateKeysAndDocumentsAreRefused) {
  EXPECT_NE(errorOf("fakeroot: false\nfakeroot: true\n").find("test.yaml:2:1': 'fakeroot' is given "
                                                              "twice (first at line 1)"),
            std::string::npos)
      << errorOf("fakeroot: false\nfakeroot: true\n");
  EXPECT_NE(errorOf("fakeroot: false\n---\nfakeroot: true\n").find("more than one YAML document"),
            std::string::npos);
  EXPECT_NE(errorOf("fakeroot: false\n...\n# end\nversion: 1\n").find("test.yaml:4:1"),
            std::string::npos);
  // An explicit start and end of the one document are fine.
  EXPECT_NO_THROW(parse("%YAML 1.2\n---\nfakeroot: false\n...\n# the end\n"));
  EXPECT_NE(errorOf("kubernetes: {node_names: {a: n1, a: n2}}\n").find("'a' is given twice"),
            std::string::npos);
}

TEST(PolicyLoader, SyntaxErrorsNameLineAndColumn) {
  std::string error = errorOf("images:\n  allowed: [a, b\n");
  EXPECT_NE(error.find("test.yaml:"), std::string::npos) << error;
  EXPECT_NE(error.find("not valid YAML"), std::string::npos) << error;
}

TEST(PolicyLoader, KubernetesNamesAreValidated) {
  EXPECT_NE(errorOf("kubernetes: {namespace: Bad_Name}\n").find("not a valid namespace name"),
            std::string::npos);
  EXPECT_NE(errorOf("kubernetes: {volumes: {home: home-pvc}}\n").find("must be an absolute"),
            std::string::npos);
  EXPECT_NE(errorOf("kubernetes: {seccomp_profile: ../../etc/x.json}\n").find("relative to the "
                                                                              "kubelet"),
            std::string::npos);
  Policy policy = parse("kubernetes: {namespace: batch}\n");
  EXPECT_EQ(policy.kubernetes.namespaceFor("anyone", {}), "batch");
}

TEST(PolicyLoader, TheNamespaceIsTheUsersThenThePrimaryGroupsThenOneTheOtherGroupsShare) {
  Policy policy = parse(
      "kubernetes:\n"
      "  namespace:\n"
      "    default: batch\n"
      "    users: {alice: alice-jobs}\n"
      "    groups: {physics: physics-jobs, chemistry: chemistry-jobs, lab: physics-jobs}\n");
  const auto& k8s = policy.kubernetes;
  // The user's own entry wins over any group.
  EXPECT_EQ(k8s.namespaceFor("alice", {"chemistry", {"physics"}}), "alice-jobs");
  // The job's group (qsub -W group_list) wins over the others, whatever their order.
  EXPECT_EQ(k8s.namespaceFor("bob", {"chemistry", {"physics", "lab"}}), "chemistry-jobs");
  EXPECT_EQ(k8s.namespaceFor("bob", {"physics", {"chemistry"}}), "physics-jobs");
  // Other groups decide only when they agree.
  EXPECT_EQ(k8s.namespaceFor("bob", {"users", {"lab", "audio", "physics"}}), "physics-jobs");
  EXPECT_EQ(k8s.namespaceFor("bob", {"users", {"audio"}}), "batch");
  try {
    k8s.namespaceFor("bob", {"users", {"physics", "audio", "chemistry"}});
    ADD_FAILURE() << "groups mapping to two namespaces chose one";
  } catch (const Error& error) {
    const std::string line = error.oneLine();
    EXPECT_NE(line.find("user bob"), std::string::npos) << line;
    EXPECT_NE(line.find("physics (namespace physics-jobs) and chemistry (namespace "
                        "chemistry-jobs)"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("group_list"), std::string::npos) << line;
  }
}

TEST(PolicyLoader, SeccompProfileFileIsLoadedAndChecked) {
  testing::ScratchDir dir;
  auto profile = dir.write("seccomp.json", R"({"defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})");
  Policy policy = parse("seccomp: {profile: " + profile.string() + "}\n");
  EXPECT_EQ(policy.seccomp.origin, profile.string());
  ASSERT_EQ(policy.seccomp.rules.size(), 1u);
  EXPECT_EQ(policy.seccomp.rules[0].names, std::vector<std::string>{"mount"});

  auto allow_all = dir.write("allow.json", R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  EXPECT_NE(errorOf("seccomp: {profile: " + allow_all.string() + "}\n").find("allows every syscall"),
            std::string::npos);
  auto broken = dir.write("broken.json", "{\"defaultAction\": \n");
  std::string error = errorOf("seccomp: {profile: " + broken.string() + "}\n");
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  EXPECT_NE(error.find("test.yaml:1:20"), std::string::npos) << error;  // the policy line, too
}

TEST(PolicyLoader, OverlayMayNotConfigureOrGrant) {
  LoadOptions overlay = testing::trustingTester();
  overlay.overlay = true;
  for (const char* text : {"site: {qsub_path: /tmp/qsub}\n", "kubernetes: {namespace: x}\n",
                           "seccomp: {profile: default}\n", "submit_filter: {on_error: open}\n",
                           "binds: {site: [{source: /data}]}\n", "backends: {default: k8s}\n"}) {
    EXPECT_NE(errorOf(text, overlay).find("cannot be set in an overlay policy"), std::string::npos)
        << text;
  }
  // What it may say, it says as an extra restriction.
  EXPECT_NO_THROW(parse("images: {allowed: ['docker.io/library/*']}\n", overlay));
}

TEST(PolicyLoader, SitePolicyReadsTheOverlayNamedByTheEnvironment) {
  testing::ScratchDir dir;
  auto overlay = dir.write("overlay.yaml", "images: {allowed: ['docker.io/library/debian:*']}\n");
  setenv(kOverlayEnvironmentVariable, overlay.c_str(), 1);
  Policy policy = loadSitePolicy();
  unsetenv(kOverlayEnvironmentVariable);
  ASSERT_EQ(policy.also_required.size(), 1u);
  EXPECT_EQ(policy.sources.back(), overlay.string() + " (overlay)");
  JobSpec job;
  job.image = "ubuntu:22.04";
  const Decision decision_1 = evaluate(policy, job, testing::aliceContext());
  const RuleResult* denial = decision_1.firstDenial();
  ASSERT_NE(denial, nullptr);
  EXPECT_EQ(denial->where.file, overlay.string());
}

TEST(PolicyLoader, OverlayIntersectsWithTheSitePolicy) {
  Policy site = parse("fakeroot: true\ncapabilities: [CHOWN, SETUID]\n"
                      "images: {allowed: ['docker.io/**']}\n");
  LoadOptions overlay_options = testing::trustingTester();
  overlay_options.overlay = true;
  // The overlay tries to grant more (KILL, a quay.io image) and to take fakeroot away.
  Policy overlay = parsePolicyText(
      "fakeroot: false\ncapabilities: [SETUID, KILL]\n"
      "images: {allowed: ['docker.io/library/debian:*', 'quay.io/**']}\n",
      "overlay.yaml", overlay_options);
  site.also_required.push_back(overlay);
  EXPECT_FALSE(site.fakerootAllowed());
  EXPECT_EQ(site.allowedCapabilities(), std::vector<std::string>{"CAP_SETUID"});

  EvaluationContext context = testing::aliceContext();
  JobSpec job;
  job.image = "quay.io/hpc/app:1";  // the overlay allows it; the site does not
  ASSERT_NE(evaluate(site, job, context).firstDenial(), nullptr);
  EXPECT_EQ(evaluate(site, job, context).firstDenial()->where.file, "test.yaml");
  job.image = "docker.io/library/ubuntu:22.04";  // the site allows it; the overlay does not
  ASSERT_NE(evaluate(site, job, context).firstDenial(), nullptr);
  EXPECT_EQ(evaluate(site, job, context).firstDenial()->where.file, "overlay.yaml");
  job.image = "debian:12";  // both allow it
  EXPECT_TRUE(evaluate(site, job, context).allowed());
  // The overlay says nothing about binds, so it restricts none.
  job.binds = {{"/home/alice/data", "/data", false}};
  EXPECT_TRUE(evaluate(site, job, context).allowed());
}

TEST(PolicyLoader, OverlayThatIsWorldWritableIsRefused) {
  testing::ScratchDir dir;
  auto overlay = dir.write("overlay.yaml", "fakeroot: false\n", 0666);
  setenv(kOverlayEnvironmentVariable, overlay.c_str(), 1);
  try {
    loadSitePolicy();
    ADD_FAILURE() << "a world-writable overlay was accepted";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("writable by group or others"), std::string::npos)
        << error.oneLine();
  }
  unsetenv(kOverlayEnvironmentVariable);
}

}  // namespace
}  // namespace kbatch::policy
