#pragma once
// Helpers for the policy tests: a scratch directory that passes the loader's ownership checks
// (under the build tree, which root or the tester owns), and quick policy/job builders.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "kbatch/policy/policy.h"

namespace kbatch::policy::testing {

namespace fs = std::filesystem;

/// Owners the tests trust: root, and the tester when the tests do not run as root.
inline LoadOptions trustingTester() {
  LoadOptions options;
  options.trusted_owners = {0, geteuid()};
  return options;
}

class ScratchDir {
 public:
  ScratchDir() {
    std::random_device random;
    path_ = fs::path(KBATCH_BINARY_DIR) / "policy-test-scratch" /
            ("t" + std::to_string(getpid()) + "-" + std::to_string(random()));
    fs::create_directories(path_);
    // create_directories honours the umask; the loader refuses group/other-writable parents.
    for (fs::path p = path_; p != fs::path(KBATCH_BINARY_DIR); p = p.parent_path()) {
      chmod(p.c_str(), 0755);
    }
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

  fs::path write(const std::string& name, const std::string& content, mode_t mode = 0644) const {
    fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    chmod(file.c_str(), mode);
    return file;
  }

 private:
  fs::path path_;
};

inline Policy parse(const std::string& text, LoadOptions options = trustingTester()) {
  return parsePolicyText(text, "test.yaml", options);
}

inline EvaluationContext aliceContext() {
  EvaluationContext context;
  context.user = "alice";
  context.uid = 1234;
  context.home = "/home/alice";
  context.pbs_o_workdir = "/home/alice/run1";
  context.tmpdir = "/tmp/pbs.42.node01";
  context.job_scratch = "/scratch/jobs/42";
  context.resolve_symlinks = false;  // these paths do not exist on the test machine
  return context;
}

}  // namespace kbatch::policy::testing
