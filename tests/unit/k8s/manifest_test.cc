#include "kbatch/k8s/manifest.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "kbatch/common/error.h"

namespace kbatch::k8s {
namespace {

JobSpec sampleJob() {
  JobSpec job;
  job.job_id = "123[4].head.example.org";
  job.name = "fib";
  job.array_index = "4";
  job.image = "registry.example.org/fib@sha256:0123";
  job.command = {"/bin/sh", "-c", "echo 0 1 1 2 3 5"};
  job.resources.ppn = 4;
  job.resources.mem_bytes = 8ull << 30;
  job.resources.walltime_s = 3600;
  job.resources.gpus = 2;
  job.env = {{"OMP_NUM_THREADS", "4"}};
  job.submit_dir = "/home/alice/run1";
  job.binds = {BindMount{"/scratch/alice/data", "/data", true}};
  return job;
}

K8sSettings sampleSettings() {
  K8sSettings settings;
  settings.volumes = {{"/home", "home"}, {"/scratch", "scratch"}, {"/scratch/alice", "alice"}};
  return settings;
}

TEST(PodName, SanitisesTorqueArrayIds) {
  EXPECT_EQ(podNameForJob("123[4].head.domain", 0, 1), "kbatch-123-4-head-domain");
  EXPECT_EQ(podNameForJob("123[4].head.domain", 1, 2), "kbatch-123-4-head-domain-h1");
  EXPECT_EQ(podNameForJob("4711", 0, 1), "kbatch-4711");
}

TEST(PodName, LongIdsAreCutWithADistinguishingHash) {
  const std::string a = "1." + std::string(100, 'x') + ".a";
  const std::string b = "1." + std::string(100, 'x') + ".b";
  const std::string name_a = podNameForJob(a, 0, 1);
  const std::string name_b = podNameForJob(b, 0, 1);
  EXPECT_LE(name_a.size(), 63u);
  EXPECT_NE(name_a, name_b);
  EXPECT_LE(podNameForJob(a, 3, 4).size(), 63u);
  EXPECT_EQ(podNameForJob(a, 3, 4).substr(podNameForJob(a, 3, 4).size() - 3), "-h3");
}

TEST(PodName, RefusesAnIdWithoutAlphanumerics) {
  EXPECT_THROW(podNameForJob("[].", 0, 1), Error);
}

TEST(LabelValue, KeepsWhatLabelsAllowAndIsAtMost63) {
  EXPECT_EQ(labelValueForJobId("123[4].head.domain"), "123_4_.head.domain");
  const std::string value = labelValueForJobId(std::string(80, '9') + "[1]");
  EXPECT_LE(value.size(), 63u);
  EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(value.back())));
}

TEST(ClaimCarriesHostPath, MatchesWholePathComponentsOfAnyPrefix) {
  K8sSettings settings;
  settings.volumes = {{"/home/", "home"}, {"/scratch", "scratch"}};
  EXPECT_TRUE(claimCarriesHostPath(settings, "/home"));
  EXPECT_TRUE(claimCarriesHostPath(settings, "/home/alice/run"));
  EXPECT_TRUE(claimCarriesHostPath(settings, "/scratch/../home/alice"));
  EXPECT_FALSE(claimCarriesHostPath(settings, "/homework"));
  EXPECT_FALSE(claimCarriesHostPath(settings, "/tmp"));
  EXPECT_FALSE(claimCarriesHostPath(settings, "relative/home"));
  settings.volumes = {{"/", "root"}};
  EXPECT_TRUE(claimCarriesHostPath(settings, "/anything/at/all"));
}

TEST(Manifest, IsRestrictedAndPinned) {
  const auto pod = buildPodManifest(sampleJob(), {"node-a.example.org", "node-a", 0, 1},
                                    {1000, 1000, "alice"}, sampleSettings(), "jobs");
  EXPECT_EQ(pod["spec"]["nodeName"], "node-a.example.org");
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["activeDeadlineSeconds"], 3600);
  EXPECT_EQ(pod["spec"]["hostNetwork"], false);
  const auto& container = pod["spec"]["containers"][0];
  const auto& sc = container["securityContext"];
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["privileged"], false);
  EXPECT_EQ(sc["capabilities"]["drop"][0], "ALL");
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  EXPECT_EQ(sc["runAsUser"], 1000);
  EXPECT_EQ(sc["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(pod["spec"]["securityContext"]["runAsNonRoot"], true);
  for (const auto& volume : pod["spec"]["volumes"]) EXPECT_FALSE(volume.contains("hostPath"));
}

TEST(Manifest, LabelsAndAnnotationsCarryTheJob) {
  const auto pod = buildPodManifest(sampleJob(), {"n", "node-a", 0, 1}, {1000, 1000, "alice"},
                                    sampleSettings(), "jobs");
  const auto& meta = pod["metadata"];
  EXPECT_EQ(meta["name"], "kbatch-123-4-head-example-org");
  EXPECT_EQ(meta["namespace"], "jobs");
  EXPECT_EQ(meta["labels"][kManagedByLabel], "kbatch");
  EXPECT_EQ(meta["labels"][kJobIdLabel], "123_4_.head.example.org");
  EXPECT_EQ(meta["annotations"][kJobIdAnnotation], "123[4].head.example.org");
  EXPECT_EQ(meta["annotations"][kUserAnnotation], "alice");
  EXPECT_EQ(meta["annotations"][kJobNameAnnotation], "fib");
  EXPECT_EQ(meta["annotations"][kArrayIndexAnnotation], "4");
}

TEST(Manifest, ResourcesFromPpnMemGpus) {
  auto job = sampleJob();
  const auto pod = buildPodManifest(job, {"n", "h", 0, 2}, {1000, 1000, "alice"}, sampleSettings(),
                                    "jobs");
  const auto& resources = pod["spec"]["containers"][0]["resources"];
  EXPECT_EQ(resources["limits"]["cpu"], "4");
  EXPECT_EQ(resources["limits"]["memory"], std::to_string((8ull << 30) / 2));  // per host
  EXPECT_EQ(resources["limits"]["nvidia.com/gpu"], "2");
  EXPECT_EQ(resources["requests"]["memory"], resources["limits"]["memory"]);
  EXPECT_FALSE(resources["requests"].contains("nvidia.com/gpu"));
}

TEST(Manifest, HostDirectoriesArriveThroughTheLongestMatchingClaim) {
  const auto pod = buildPodManifest(sampleJob(), {"n", "h", 0, 1}, {1000, 1000, "alice"},
                                    sampleSettings(), "jobs");
  const auto& mounts = pod["spec"]["containers"][0]["volumeMounts"];
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0]["mountPath"], "/tmp");
  EXPECT_EQ(mounts[1]["mountPath"], "/home/alice/run1");
  EXPECT_EQ(mounts[1]["subPath"], "alice/run1");
  EXPECT_EQ(mounts[1]["name"], "claim-home");
  EXPECT_EQ(mounts[2]["mountPath"], "/data");
  EXPECT_EQ(mounts[2]["subPath"], "data");  // under /scratch/alice, the longer prefix
  EXPECT_EQ(mounts[2]["name"], "claim-alice");
  EXPECT_EQ(mounts[2]["readOnly"], true);
  EXPECT_EQ(pod["spec"]["containers"][0]["workingDir"], "/home/alice/run1");
}

TEST(Manifest, AHostPathNoClaimMapsIsRefusedNamingTheField) {
  auto job = sampleJob();
  job.binds = {BindMount{"/opt/data", "/opt/data", false}};
  try {
    buildPodManifest(job, {"n", "h", 0, 1}, {1000, 1000, "alice"}, sampleSettings(), "jobs");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(error.cause().find("binds[0]"), std::string::npos) << error.oneLine();
    EXPECT_NE(error.cause().find("hostPath"), std::string::npos) << error.oneLine();
  }
  // A prefix match must end at a path component: /homework is not under /home.
  job.binds = {BindMount{"/homework", "/homework", false}};
  EXPECT_THROW(
      buildPodManifest(job, {"n", "h", 0, 1}, {1000, 1000, "alice"}, sampleSettings(), "jobs"),
      Error);
}

TEST(Manifest, RefusesRootAndMissingPieces) {
  EXPECT_THROW(buildPodManifest(sampleJob(), {"n", "h", 0, 1}, {0, 0, "root"}, sampleSettings(),
                                "jobs"),
               Error);
  auto job = sampleJob();
  job.image.reset();
  EXPECT_THROW(
      buildPodManifest(job, {"n", "h", 0, 1}, {1000, 1000, "a"}, sampleSettings(), "jobs"), Error);
  job = sampleJob();
  job.command.clear();
  EXPECT_THROW(
      buildPodManifest(job, {"n", "h", 0, 1}, {1000, 1000, "a"}, sampleSettings(), "jobs"), Error);
}

TEST(Manifest, LocalhostSeccompProfile) {
  auto settings = sampleSettings();
  settings.seccomp_localhost_profile = "kbatch/default.json";
  const auto pod =
      buildPodManifest(sampleJob(), {"n", "h", 0, 1}, {1000, 1000, "a"}, settings, "jobs");
  EXPECT_EQ(pod["spec"]["securityContext"]["seccompProfile"]["type"], "Localhost");
  EXPECT_EQ(pod["spec"]["securityContext"]["seccompProfile"]["localhostProfile"],
            "kbatch/default.json");
}

TEST(Yaml, RoundTripsAndQuotesNumericStrings) {
  const auto pod = buildPodManifest(sampleJob(), {"n", "h", 0, 1}, {1000, 1000, "a"},
                                    sampleSettings(), "jobs");
  const YAML::Node parsed = YAML::Load(toYaml(pod));
  EXPECT_EQ(parsed["spec"]["containers"][0]["resources"]["limits"]["cpu"].Tag(), "!");
  EXPECT_EQ(parsed["spec"]["containers"][0]["resources"]["limits"]["cpu"].as<std::string>(), "4");
  EXPECT_EQ(parsed["metadata"]["annotations"][kArrayIndexAnnotation].Tag(), "!");
  EXPECT_EQ(parsed["spec"]["activeDeadlineSeconds"].as<int>(), 3600);
  EXPECT_EQ(parsed["spec"]["containers"][0]["command"][2].as<std::string>(), "echo 0 1 1 2 3 5");
}

}  // namespace
}  // namespace kbatch::k8s
