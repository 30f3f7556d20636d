#include "kbatch/runner/run_job.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "kbatch/common/error.h"
#include "kbatch/policy/seccomp_profile.h"

namespace kbatch::runner {
namespace {

namespace fs = std::filesystem;

// The seccomp filter is compiled in the parent before clone (runner/src/linux/launch.cc). A
// profile that does not compile must stop the launch with its own error, and leave no child
// behind.
TEST(RunInContainer, AProfileThatDoesNotCompileStopsTheLaunchAndLeavesNoChild) {
  const fs::path root = fs::temp_directory_path() / ("kbatch-run-job-test-" + std::to_string(getpid()));
  fs::remove_all(root);
  for (const char* dir : {"proc", "dev", "tmp", "sys", "etc"}) fs::create_directories(root / dir);

  LaunchRequest request;
  request.image_root = root;
  request.argv = {"/never-started"};
  request.workdir = "/";
  request.environment = {"PATH=/usr/bin:/bin"};
  request.uid = getuid();
  request.gid = getgid();
  request.init_executable = KBATCH_INIT_PATH;
  request.seccomp = policy::defaultSeccompProfile();
  policy::SeccompRule bad;
  bad.names = {"read"};
  bad.args = {{0, 1, 0, "SCMP_CMP_BOGUS"}};
  request.seccomp.rules.push_back(bad);

  std::string message;
  try {
    runInContainer(request);
  } catch (const Error& error) {
    message = error.what();
  }
  fs::remove_all(root);
  EXPECT_NE(message.find("unknown argument operator"), std::string::npos) << message;
  int status = 0;
  EXPECT_EQ(waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace kbatch::runner
