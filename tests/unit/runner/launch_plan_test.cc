#include "kbatch/runner/launch_plan.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "kbatch/common/error.h"

namespace kbatch::runner {
namespace {

namespace fs = std::filesystem;

/// A throwaway image directory with the usual mount points.
class ImageFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("kbatch-plan-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    for (const char* dir : {"proc", "dev", "tmp", "sys", "usr/bin", "etc", "data"}) {
      fs::create_directories(root_ / dir);
    }
    host_ = root_.string() + "-host";
    fs::remove_all(host_);
    fs::create_directories(host_ / "dir");
    std::ofstream(host_ / "file") << "x";
  }
  void TearDown() override {
    fs::remove_all(root_);
    fs::remove_all(host_);
  }

  LaunchRequest request() const {
    LaunchRequest r;
    r.image_root = root_;
    r.argv = {"true"};
    r.workdir = "/";
    r.environment = {"PATH=/usr/bin:/bin"};
    r.uid = 1234;
    r.gid = 5678;
    r.seccomp = policy::defaultSeccompProfile();
    return r;
  }

  fs::path root_;
  fs::path host_;
};

TEST(ParseBindSpec, SourceOnlyMeansSamePathReadWrite) {
  BindMount bind = parseBindSpec("/scratch");
  EXPECT_EQ(bind.source, "/scratch");
  EXPECT_EQ(bind.destination, "/scratch");
  EXPECT_FALSE(bind.read_only);
}

TEST(ParseBindSpec, DestinationAndMode) {
  BindMount bind = parseBindSpec("/data/in:/in:ro");
  EXPECT_EQ(bind.source, "/data/in");
  EXPECT_EQ(bind.destination, "/in");
  EXPECT_TRUE(bind.read_only);
  EXPECT_FALSE(parseBindSpec("/a:/b:rw").read_only);
}

TEST(ParseBindSpec, RejectsMalformedSpecsWithTheSpecInTheMessage) {
  for (const char* spec : {"relative", "/a:relative", "/a:/b:rx", "/a:/b:ro:extra", ":/b"}) {
    try {
      parseBindSpec(spec);
      ADD_FAILURE() << "accepted " << spec;
    } catch (const Error& error) {
      EXPECT_NE(error.oneLine().find(spec), std::string::npos) << error.oneLine();
      EXPECT_EQ(error.exitCode(), exit_code::kKbatchError);
    }
  }
}

TEST_F(ImageFixture, ResolvesAbsoluteSymlinksInsideTheImage) {
  fs::create_directories(root_ / "real/home");
  fs::create_symlink("/real/home", root_ / "home");  // absolute: must stay inside the image
  PathInsideRoot resolved = resolvePathInsideRoot(root_, "/home/alice");
  EXPECT_EQ(resolved.path, "/real/home/alice");
  EXPECT_FALSE(resolved.exists);
  EXPECT_EQ(resolved.first_missing, "/real/home/alice");
}

TEST_F(ImageFixture, DotDotAndEscapingSymlinksStopAtTheImageRoot) {
  fs::create_symlink("../../../../etc", root_ / "escape");
  PathInsideRoot resolved = resolvePathInsideRoot(root_, "/escape");
  EXPECT_EQ(resolved.path, "/etc");
  EXPECT_TRUE(resolved.exists);
  EXPECT_EQ(resolvePathInsideRoot(root_, "/../../usr/./bin").path, "/usr/bin");
}

TEST_F(ImageFixture, SymlinkLoopsAreAnError) {
  fs::create_symlink("/loop", root_ / "loop");
  EXPECT_THROW(resolvePathInsideRoot(root_, "/loop/x"), Error);
}

TEST_F(ImageFixture, CompleteImageIsBindMountedReadOnly) {
  LaunchPlan plan = buildLaunchPlan(request());
  EXPECT_EQ(plan.root_mode, RootMode::kBind);
  EXPECT_TRUE(plan.mount_points.empty());
  EXPECT_TRUE(plan.mount_sys);
  EXPECT_EQ(plan.image_root, fs::canonical(root_).string());
  EXPECT_NE(plan.image_remount_flags & MS_NOSUID, 0u);
  EXPECT_EQ(plan.outside_uid, 1234u);
  EXPECT_EQ(plan.inside_uid, 1234u);
  EXPECT_EQ(plan.inside_gid, 5678u);
}

TEST_F(ImageFixture, WritableTmpfsUsesAWritableOverlay) {
  auto r = request();
  r.writable_tmpfs = true;
  EXPECT_EQ(buildLaunchPlan(r).root_mode, RootMode::kOverlayWritable);
}

TEST_F(ImageFixture, MissingImageIsNotFound) {
  auto r = request();
  r.image_root = root_ / "nope";
  try {
    buildLaunchPlan(r);
    FAIL() << "accepted a missing image";
  } catch (const Error& error) {
    EXPECT_EQ(error.exitCode(), exit_code::kNotFound);
  }
}

TEST_F(ImageFixture, MissingMountPointSwitchesToAReadOnlyOverlayAndCreatesItFromTheTop) {
  auto r = request();
  r.binds = {{(host_ / "dir").string(), "/scratch/job", false}};
  LaunchPlan plan = buildLaunchPlan(r);
  EXPECT_EQ(plan.root_mode, RootMode::kOverlayReadOnly);
  ASSERT_EQ(plan.mount_points.size(), 2u);
  EXPECT_EQ(plan.mount_points[0].container_path, "/scratch");
  EXPECT_EQ(plan.mount_points[1].container_path, "/scratch/job");
  EXPECT_TRUE(plan.mount_points[1].directory);
  ASSERT_EQ(plan.binds.size(), 1u);
  EXPECT_EQ(plan.binds[0].container_target, "/scratch/job");
  EXPECT_EQ(plan.binds[0].host_source, fs::canonical(host_ / "dir").string());
}

TEST_F(ImageFixture, FileBindCreatesAFileMountPoint) {
  auto r = request();
  r.binds = {{(host_ / "file").string(), "/etc/job.conf", true}};
  LaunchPlan plan = buildLaunchPlan(r);
  ASSERT_FALSE(plan.mount_points.empty());
  EXPECT_EQ(plan.mount_points.back().container_path, "/etc/job.conf");
  EXPECT_FALSE(plan.mount_points.back().directory);
  EXPECT_TRUE(plan.binds[0].read_only);
  EXPECT_NE(plan.binds[0].remount_flags & MS_NOSUID, 0u);
}

TEST_F(ImageFixture, BindIntoTmpIsCreatedInTheTmpfsWithoutOverlay) {
  auto r = request();
  r.binds = {{(host_ / "dir").string(), "/tmp/a/b", false}};
  LaunchPlan plan = buildLaunchPlan(r);
  EXPECT_EQ(plan.root_mode, RootMode::kBind);
  ASSERT_EQ(plan.binds[0].create_first.size(), 2u);
  EXPECT_EQ(plan.binds[0].create_first[0].container_path, "/tmp/a");
  EXPECT_EQ(plan.binds[0].create_first[1].container_path, "/tmp/a/b");
}

TEST_F(ImageFixture, BindTargetFollowsTheImagesSymlinks) {
  fs::create_directories(root_ / "real");
  fs::create_symlink("/real", root_ / "link");
  auto r = request();
  r.binds = {{(host_ / "dir").string(), "/link", false}};
  LaunchPlan plan = buildLaunchPlan(r);
  EXPECT_EQ(plan.binds[0].container_target, "/real");
  EXPECT_EQ(plan.root_mode, RootMode::kBind);
}

TEST_F(ImageFixture, RefusesBindsOntoWhatTheRunnerOwns) {
  for (const char* target : {"/proc/x", "/dev", "/sys/fs", "/"}) {
    auto r = request();
    r.binds = {{(host_ / "dir").string(), target, false}};
    EXPECT_THROW(buildLaunchPlan(r), Error) << target;
  }
}

TEST_F(ImageFixture, RefusesMissingSourcesAndTypeMismatches) {
  auto r = request();
  r.binds = {{(host_ / "missing").string(), "/data", false}};
  EXPECT_THROW(buildLaunchPlan(r), Error);
  r.binds = {{(host_ / "file").string(), "/data", false}};  // /data is a directory in the image
  EXPECT_THROW(buildLaunchPlan(r), Error);
}

TEST_F(ImageFixture, TargetInsideAnEarlierBindMustExistOnTheHost) {
  auto r = request();
  r.binds = {{host_.string(), "/data", false}, {(host_ / "dir").string(), "/data/dir", true}};
  EXPECT_NO_THROW(buildLaunchPlan(r));
  r.binds = {{host_.string(), "/data", false}, {(host_ / "dir").string(), "/data/newdir", true}};
  EXPECT_THROW(buildLaunchPlan(r), Error);  // would create a directory on the host
}

TEST_F(ImageFixture, CurrentDirectoryIsBoundWhenNoWorkdirIsGiven) {
  auto r = request();
  r.workdir.reset();
  r.current_directory = host_ / "dir";
  LaunchPlan plan = buildLaunchPlan(r);
  EXPECT_EQ(plan.workdir, (host_ / "dir").string());
  ASSERT_EQ(plan.binds.size(), 1u);
  EXPECT_EQ(plan.binds[0].host_source, fs::canonical(host_ / "dir").string());
  EXPECT_FALSE(plan.binds[0].read_only);
}

TEST_F(ImageFixture, CommandIsSearchedInTheJobsPath) {
  auto r = request();
  r.argv = {"solver", "in.dat"};
  r.environment = {"PATH=/opt/bin::/usr/bin"};
  LaunchPlan plan = buildLaunchPlan(r);
  EXPECT_EQ(plan.exec_candidates,
            (std::vector<std::string>{"/opt/bin/solver", "./solver", "/usr/bin/solver"}));
  r.argv = {"./a.out"};
  EXPECT_EQ(buildLaunchPlan(r).exec_candidates, std::vector<std::string>{"./a.out"});
}

TEST_F(ImageFixture, FakerootMapsToZeroOnlyWhenAllowed) {
  auto r = request();
  r.fakeroot = true;
  EXPECT_THROW(buildLaunchPlan(r), Error);
  r.fakeroot_allowed = true;
  LaunchPlan plan = buildLaunchPlan(r);
  EXPECT_EQ(plan.inside_uid, 0u);
  EXPECT_EQ(plan.inside_gid, 0u);
  EXPECT_EQ(plan.outside_uid, 1234u);
}

TEST_F(ImageFixture, ImageWithoutMountPointsGetsThemInTheOverlay) {
  fs::remove(root_ / "proc");
  fs::remove(root_ / "sys");
  LaunchPlan plan = buildLaunchPlan(request());
  EXPECT_EQ(plan.root_mode, RootMode::kOverlayReadOnly);
  std::vector<std::string> created;
  for (const auto& point : plan.mount_points) created.push_back(point.container_path);
  EXPECT_NE(std::find(created.begin(), created.end(), "/proc"), created.end());
  EXPECT_NE(std::find(created.begin(), created.end(), "/sys"), created.end());
}

TEST_F(ImageFixture, ContainerFilesMustLiveDirectlyInDev) {
  auto r = request();
  r.files = {{"/dev/job", "echo hi\n", 0700}};
  EXPECT_EQ(buildLaunchPlan(r).files.size(), 1u);
  r.files = {{"/etc/job", "x", 0700}};
  EXPECT_THROW(buildLaunchPlan(r), Error);
}

TEST_F(ImageFixture, EmptyCommandIsRefused) {
  auto r = request();
  r.argv.clear();
  EXPECT_THROW(buildLaunchPlan(r), Error);
}

}  // namespace
}  // namespace kbatch::runner
