#include "kbatch/rewrite/detect.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace kbatch::rewrite {
namespace {

namespace fs = std::filesystem;

class DetectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = testing::makeTemporaryDirectory();
    // A real ELF executable, and a shell script that is not one.
    fs::copy_file("/bin/true", directory_ / "solver");
    fs::create_directories(directory_ / "bin");
    fs::copy_file("/bin/true", directory_ / "bin" / "post");
    std::ofstream(directory_ / "run.sh") << "#!/bin/sh\necho\n";
    ::chmod((directory_ / "run.sh").c_str(), 0755);
  }
  void TearDown() override { fs::remove_all(directory_); }
  fs::path directory_;
};

TEST_F(DetectTest, FindsElfFilesTheBodyRuns) {
  std::string body =
      "cd $PBS_O_WORKDIR\n"
      "echo start   # a system program: on every node\n"
      "./run.sh     # a script, not an ELF file\n"
      "OMP_NUM_THREADS=4 time ./solver in.dat > out\n"
      "mpirun -np 16 --bind-to core bin/post --fast\r\n"
      "./solver again\n"
      "$HOME/bin/other     # known only at run time\n"
      "./missing\n"
      "# ./solver in a comment\n";
  EXPECT_EQ(findJobBinaries(body, directory_), (std::vector<std::string>{"./solver", "bin/post"}));
  // An absolute path needs no working directory.
  std::string absolute = (directory_ / "solver").string();
  EXPECT_EQ(findJobBinaries("exec " + absolute + "\n", "/nonexistent"),
            (std::vector<std::string>{absolute}));
  EXPECT_TRUE(findJobBinaries("srun -n 4 ./solver\n", "/nonexistent").empty());
}

TEST_F(DetectTest, DetectorPicksTheFirstBinaryWithALibraryTheNodesLack) {
  std::vector<std::string> listed;
  DetectOptions options;
  options.submit_directory = directory_;
  options.list_libraries = [&listed](const std::string& binary) {
    listed.push_back(binary);
    if (binary.find("post") != std::string::npos) {
      return std::vector<NeededLibrary>{{"libopenblas.so.0", "libopenblas.so.0",
                                         "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"}};
    }
    return std::vector<NeededLibrary>{{"libc.so.6", "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"}};
  };
  options.node_lacks = [](const std::string& library, std::string* why) {
    *why = "test rule";
    return library.rfind("libopenblas", 0) == 0;
  };
  BinaryDetector detect = makeBinaryDetector(options);
  JobSpec spec;
  EXPECT_EQ(detect(spec, "./solver\nbin/post\n"), "bin/post");
  EXPECT_EQ(listed, (std::vector<std::string>{(directory_ / "solver").string(),
                                              (directory_ / "bin/post").string()}));
  EXPECT_FALSE(detect(spec, "./solver\n").has_value());

  // A relative -d moves the working directory the body's paths start from.
  fs::create_directories(directory_ / "sub");
  fs::copy_file("/bin/true", directory_ / "sub" / "post");
  spec.workdir = "sub";
  EXPECT_EQ(detect(spec, "./post\n"), "./post");
  EXPECT_EQ(listed.back(), (directory_ / "sub/post").string());
}

TEST_F(DetectTest, DisabledDetectorNeverListsLibraries) {
  bool listed = false;
  bool asked = false;
  DetectOptions options;
  options.submit_directory = directory_;
  options.enabled = [&asked] {
    asked = true;
    return false;
  };
  options.list_libraries = [&listed](const std::string&) {
    listed = true;
    return std::vector<NeededLibrary>{};
  };
  options.node_lacks = [](const std::string&, std::string*) { return true; };
  BinaryDetector detect = makeBinaryDetector(options);
  EXPECT_FALSE(detect(JobSpec{}, "echo no binary here\n").has_value());
  EXPECT_FALSE(asked);  // nothing to detect: the setting (the policy) is not even read
  EXPECT_FALSE(detect(JobSpec{}, "./solver\n").has_value());
  EXPECT_TRUE(asked);
  EXPECT_FALSE(listed);
}

TEST(DetectLibraries, FailingDepsCommandIsAnError) {
  // /bin/false exits 1 ("missing libraries") but prints no JSON; /bin/sh -c is not `deps`.
  EXPECT_THROW(listNeededLibraries("/bin/false", "/bin/true"), Error);
  EXPECT_THROW(listNeededLibraries("/nonexistent/kbatch", "/bin/true"), Error);
}

}  // namespace
}  // namespace kbatch::rewrite
