// The submit path's build call: the argv it runs, the JSON it accepts, and a real subprocess
// (a stand-in `kbatch` script) for success, failure and a malformed answer.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "dependency_build_call.h"
#include "deps_fixtures.h"
#include "kbatch/common/error.h"

namespace kbatch::cli {
namespace {

namespace fs = std::filesystem;
using image::testing::ScratchDir;

constexpr const char* kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fs::path standIn(const ScratchDir& dir, const std::string& body) {
  fs::path script = dir / "kbatch";
  std::ofstream(script) << "#!/bin/sh\n" << body;
  ::chmod(script.c_str(), 0755);
  return script;
}

TEST(DependencyBuildCallTest, ArgumentsPushToTheSiteRegistryOnlyWhenOneIsConfigured) {
  auto plain = dependencyBuildArguments("/usr/bin/kbatch", "./a.out", "/bin/bash", std::nullopt,
                                        false);
  EXPECT_EQ(plain, (std::vector<std::string>{"/usr/bin/kbatch", "-q", "build", "--from-binary",
                                             "./a.out", "--shell", "/bin/bash", "--json"}));
  auto pushed = dependencyBuildArguments("/usr/bin/kbatch", "./a.out", "/bin/sh",
                                         std::string("127.0.0.1:5000"), true);
  ASSERT_EQ(pushed.size(), 11u);
  EXPECT_EQ(pushed[8], "--push");
  EXPECT_EQ(pushed[9], "docker://127.0.0.1:5000/kbatch-deps");
  EXPECT_EQ(pushed[10], "--insecure");
}

TEST(DependencyBuildCallTest, ParsesTheAnswerAndPinsTheReference) {
  auto answer = parseDependencyBuildAnswer(
      std::string(R"({"reference":"docker://r:5000/kbatch-deps:abc","digest":")") + kDigest +
      R"(","root":"/x","cached":true})");
  EXPECT_EQ(answer.pinned(), std::string("docker://r:5000/kbatch-deps:abc@") + kDigest);
  EXPECT_TRUE(answer.cached);
  EXPECT_THROW(parseDependencyBuildAnswer("not json"), Error);
  EXPECT_THROW(parseDependencyBuildAnswer(R"({"reference":"x","digest":"sha256:12","cached":false})"),
               Error);
  EXPECT_THROW(parseDependencyBuildAnswer(std::string(R"({"reference":"x","digest":")") + kDigest +
                                          R"("})"),
               Error);
}

TEST(DependencyBuildCallTest, RunsTheBuildAndReadsItsStdout) {
  ScratchDir dir;
  // The stand-in checks that it got the binary and an empty stdin, as the real build would.
  fs::path kbatch = standIn(
      dir, std::string("[ \"$4\" = /bin/true ] || exit 3\n"
                       "[ -z \"$(cat)\" ] || exit 4\n"
                       "echo 'progress goes to stderr' >&2\n"
                       "printf '{\"reference\":\"kbatch-deps:k\",\"digest\":\"") +
                kDigest + "\",\"root\":\"/r\",\"cached\":false}\\n'\n");
  auto answer = runDependencyBuild(
      dependencyBuildArguments(kbatch.string(), "/bin/true", "/bin/sh", std::nullopt, false));
  EXPECT_EQ(answer.pinned(), std::string("kbatch-deps:k@") + kDigest);
  EXPECT_FALSE(answer.cached);
}

TEST(DependencyBuildCallTest, AFailedBuildIsAnErrorNamingTheBinary) {
  ScratchDir dir;
  fs::path kbatch = standIn(dir, "echo 'kbatch: library libx.so.1 not found' >&2\nexit 127\n");
  try {
    runDependencyBuild(
        dependencyBuildArguments(kbatch.string(), "/bin/true", "/bin/sh", std::nullopt, false));
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(error.oneLine().find("/bin/true"), std::string::npos) << error.oneLine();
    EXPECT_NE(error.oneLine().find("127"), std::string::npos) << error.oneLine();
  }
  EXPECT_THROW(runDependencyBuild(dependencyBuildArguments((dir / "missing").string(), "/bin/true",
                                                           "/bin/sh", std::nullopt, false)),
               Error);
}

}  // namespace
}  // namespace kbatch::cli
