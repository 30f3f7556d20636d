#include "kbatch/k8s/pod_status.h"

#include <gtest/gtest.h>

#include "kbatch/k8s/exit_codes.h"

namespace kbatch::k8s {
namespace {

using nlohmann::json;

json podWith(json status, json spec = json::object()) {
  return json{{"metadata", {{"name", "p"}, {"uid", "u"}}}, {"spec", spec}, {"status", status}};
}

json terminated(int code, const std::string& reason) {
  return {{"state", {{"terminated", {{"exitCode", code}, {"reason", reason}}}}}};
}

TEST(PodStatus, ContainerExitCodePassesThrough) {
  auto verdict = interpretPod(podWith({{"phase", "Failed"},
                                       {"containerStatuses", {terminated(3, "Error")}}}));
  EXPECT_EQ(verdict.progress, PodProgress::kFinished);
  EXPECT_EQ(verdict.exit_code, 3);
  EXPECT_TRUE(verdict.message.empty());
  EXPECT_TRUE(verdict.logs_available);
  verdict = interpretPod(podWith({{"phase", "Succeeded"},
                                  {"containerStatuses", {terminated(0, "Completed")}}}));
  EXPECT_EQ(verdict.exit_code, 0);
}

TEST(PodStatus, OomKilledNamesTheLimit) {
  json spec = {{"containers", {{{"name", "job"}, {"resources", {{"limits", {{"memory", "1000"}}}}}}}}};
  auto verdict = interpretPod(
      podWith({{"phase", "Failed"}, {"containerStatuses", {terminated(137, "OOMKilled")}}}, spec));
  EXPECT_EQ(verdict.exit_code, 137);
  EXPECT_NE(verdict.message.find("memory limit of 1000 bytes"), std::string::npos);
}

TEST(PodStatus, DeadlineExceededWithoutTerminatedState) {
  json spec = {{"activeDeadlineSeconds", 60}};
  auto verdict = interpretPod(podWith(
      {{"phase", "Failed"}, {"reason", "DeadlineExceeded"},
       {"containerStatuses", {{{"state", {{"running", {{"startedAt", "x"}}}}}}}}},
      spec));
  EXPECT_EQ(verdict.exit_code, exit_code::kDeadlineExceeded);
  EXPECT_NE(verdict.message.find("walltime"), std::string::npos);
  EXPECT_NE(verdict.message.find("60 s"), std::string::npos);
}

TEST(PodStatus, EvictedAndNodeRejections) {
  auto verdict = interpretPod(podWith({{"phase", "Failed"}, {"reason", "Evicted"},
                                       {"message", "The node was low on resource: memory."}}));
  EXPECT_EQ(verdict.exit_code, exit_code::kEvicted);
  EXPECT_NE(verdict.message.find("low on resource"), std::string::npos);
  verdict = interpretPod(podWith({{"phase", "Failed"}, {"reason", "OutOfcpu"}}));
  EXPECT_EQ(verdict.exit_code, exit_code::kNotScheduled);
  EXPECT_NE(verdict.message.find("OutOfcpu"), std::string::npos);
}

TEST(PodStatus, AFailedPodNeverReportsZero) {
  auto verdict = interpretPod(podWith({{"phase", "Failed"},
                                       {"containerStatuses", {terminated(0, "Completed")}}}));
  EXPECT_NE(verdict.exit_code, 0);
}

TEST(PodStatus, ImagePullAndCreateFailuresAreFinal) {
  auto verdict = interpretPod(podWith(
      {{"phase", "Pending"},
       {"containerStatuses",
        {{{"image", "x:1"},
          {"state", {{"waiting", {{"reason", "ImagePullBackOff"}, {"message", "no such image"}}}}}}}}}));
  EXPECT_EQ(verdict.exit_code, exit_code::kImagePullFailed);
  EXPECT_NE(verdict.message.find("'x:1'"), std::string::npos);
  verdict = interpretPod(podWith(
      {{"phase", "Pending"},
       {"containerStatuses",
        {{{"state", {{"waiting", {{"reason", "CreateContainerConfigError"}}}}}}}}}));
  EXPECT_EQ(verdict.exit_code, exit_code::kContainerNotCreated);
}

TEST(PodStatus, ErrImagePullAloneIsStillPending) {
  // The kubelet retries a failed pull; only ImagePullBackOff says it keeps failing.
  auto verdict = interpretPod(podWith(
      {{"phase", "Pending"},
       {"containerStatuses", {{{"state", {{"waiting", {{"reason", "ErrImagePull"}}}}}}}}}));
  EXPECT_EQ(verdict.progress, PodProgress::kPending);
  EXPECT_EQ(verdict.waiting_reason, "ErrImagePull");
}

TEST(PodStatus, Unschedulable) {
  auto verdict = interpretPod(podWith(
      {{"phase", "Pending"},
       {"conditions",
        {{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"},
          {"message", "0/3 nodes are available"}}}}}));
  EXPECT_EQ(verdict.exit_code, exit_code::kNotScheduled);
  EXPECT_NE(verdict.message.find("0/3 nodes"), std::string::npos);
}

TEST(PodStatus, RunningPodIsRunning) {
  auto verdict = interpretPod(podWith(
      {{"phase", "Running"},
       {"containerStatuses", {{{"state", {{"running", {{"startedAt", "t"}}}}}}}}}));
  EXPECT_EQ(verdict.progress, PodProgress::kRunning);
  EXPECT_TRUE(verdict.logs_available);
  EXPECT_FALSE(verdict.exit_code.has_value());
}

}  // namespace
}  // namespace kbatch::k8s
