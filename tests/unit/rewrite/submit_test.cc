#include "kbatch/rewrite/submit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "kbatch/common/exit_codes.h"
#include "test_support.h"

namespace kbatch::rewrite {
namespace {

namespace fs = std::filesystem;

SubmitFilterOptions filterOptions(FailureMode mode = FailureMode::kClosed) {
  SubmitFilterOptions options;
  options.on_error = mode;
  options.rewrite.kbatch_path = "/usr/bin/kbatch";
  return options;
}

TEST(SubmitFilter, NativeJobPassesThroughWithExitZero) {
  std::string script = testing::readFixture("fib.pbs");
  auto result = runSubmitFilter(script, {"-q", "batch", "fib.pbs"}, filterOptions());
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, script);
  EXPECT_TRUE(result.message.empty());
}

TEST(SubmitFilter, ContainerJobIsRewritten) {
  auto result = runSubmitFilter(testing::readFixture("container.pbs"), {}, filterOptions());
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_TRUE(decodeRewrittenScript(result.output).has_value());
}

TEST(SubmitFilter, CommandLineBinaryTriggersRewrite) {
  auto result = runSubmitFilter("#PBS -N x\necho\n", {"-B", "./a.out", "job.pbs"}, filterOptions());
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("#KBATCH --from-binary ./a.out"), std::string::npos);
}

TEST(SubmitFilter, PrefixFromArgumentsAndEnvironment) {
  auto options = filterOptions();
  auto result = runSubmitFilter("#X --not-pbs\n#Y -B ./b\necho\n", {"-C", "#Y"}, options);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("#KBATCH --from-binary ./b"), std::string::npos);
  options.pbs_dprefix = "#Y";
  result = runSubmitFilter("#Y -B ./c\necho\n", {}, options);
  EXPECT_NE(result.output.find("#KBATCH --from-binary ./c"), std::string::npos);
}

TEST(SubmitFilter, MalformedNativeDirectiveFollowsTheFailureMode) {
  // No container asked for: the batch system judges its own #PBS line when the filter steps aside.
  std::string script = testing::readFixture("malformed_walltime.pbs");
  auto result = runSubmitFilter(script, {}, filterOptions(FailureMode::kClosed));
  EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
  EXPECT_TRUE(result.output.empty());
  EXPECT_NE(result.message.find("STDIN:3"), std::string::npos) << result.message;
  result = runSubmitFilter(script, {}, filterOptions(FailureMode::kOpen));
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, script);
  EXPECT_NE(result.message.find("STDIN:3"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("fails open"), std::string::npos) << result.message;
}

TEST(SubmitFilter, MalformedContainerScriptIsRejectedEvenWhenFailingOpen) {
  // Passed on, these would run natively instead of in the container their author asked for.
  for (const std::string& script : {std::string("#KBATCH --image debian:12\n#PBS -l walltime=x\necho\n"),
                                    std::string("#PBS -l walltime=x\n#PBS -B ./a.out\necho\n")}) {
    auto result = runSubmitFilter(script, {}, filterOptions(FailureMode::kOpen));
    EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected) << script;
    EXPECT_TRUE(result.output.empty());
  }
  auto result = runSubmitFilter("#PBS -l walltime=x\necho\n", {"-B", "./a.out"},
                                filterOptions(FailureMode::kOpen));
  EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
}

TEST(SubmitFilter, PolicyRefusalIsRejectedWhateverTheMode) {
  int checks = 0;
  for (auto mode : {FailureMode::kClosed, FailureMode::kOpen}) {
    auto options = filterOptions(mode);
    options.check_job = [&checks](const JobSpec& spec) {
      ++checks;
      throw JobRefused("submit job", "job", "refused by the site policy: policy.yaml:4: deny " +
                                                std::string("images.allowed: image ") + *spec.image);
    };
    auto result = runSubmitFilter("#KBATCH --image evil/img\necho\n", {}, options);
    EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
    EXPECT_TRUE(result.output.empty());
    EXPECT_EQ(result.message.find('\n'), std::string::npos);  // one line
    EXPECT_NE(result.message.find("refused by the site policy: policy.yaml:4: deny images.allowed"),
              std::string::npos)
        << result.message;
  }
  EXPECT_EQ(checks, 2);
}

TEST(SubmitFilter, PolicyIsCheckedOnlyForContainerJobs) {
  std::vector<std::string> checked;
  auto options = filterOptions();
  options.check_job = [&checked](const JobSpec& spec) { checked.push_back(*spec.image); };
  bool mode_asked = false;
  options.on_error.reset();
  options.site_failure_mode = [&mode_asked] {
    mode_asked = true;
    return FailureMode::kClosed;
  };
  std::string native = testing::readFixture("fib.pbs");
  auto result = runSubmitFilter(native, {}, options);
  EXPECT_EQ(result.output, native);
  EXPECT_TRUE(checked.empty());
  EXPECT_FALSE(mode_asked);  // nothing failed: the site's mode (the policy) was never needed

  result = runSubmitFilter("#KBATCH --image debian:12\necho\n", {}, options);
  ASSERT_EQ(result.exit_code, 0);
  // A script rewritten before is checked again: rewriting by hand must not skip the policy.
  runSubmitFilter(result.output, {}, options);
  EXPECT_EQ(checked, (std::vector<std::string>{"debian:12", "debian:12"}));
}

TEST(SubmitFilter, UnreadablePolicyFollowsTheSiteModeUnlessTheCommandLineChooses) {
  std::string script = "#KBATCH --image debian:12\necho\n";
  auto options = filterOptions();
  options.on_error.reset();
  options.check_job = [](const JobSpec&) {
    throw Error("load policy", "/etc/kbatch/policy.yaml:3:1", "not valid YAML");
  };
  options.site_failure_mode = [] { return FailureMode::kOpen; };
  auto result = runSubmitFilter(script, {}, options);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, script);  // the original, not the rewritten script
  EXPECT_NE(result.message.find("policy.yaml:3:1"), std::string::npos) << result.message;

  options.on_error = FailureMode::kClosed;  // --on-error=closed wins over the site's open
  result = runSubmitFilter(script, {}, options);
  EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
  EXPECT_TRUE(result.output.empty());

  // When the site's mode is itself unknowable (the policy it is in cannot be read): closed.
  options.on_error.reset();
  options.site_failure_mode = []() -> FailureMode { throw Error("load policy", "x", "broken"); };
  result = runSubmitFilter(script, {}, options);
  EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
}

TEST(SubmitFilter, InternalFailureFollowsTheFailureMode) {
  // A relative kbatch path is a configuration fault of kbatch, not of the job's script.
  std::string script = "#KBATCH --image debian:12\necho hi\n";
  auto closed = filterOptions(FailureMode::kClosed);
  closed.rewrite.kbatch_path = "relative/kbatch";
  auto result = runSubmitFilter(script, {}, closed);
  EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
  EXPECT_TRUE(result.output.empty());
  EXPECT_NE(result.message.find("fails closed"), std::string::npos);

  auto open = closed;
  open.on_error = FailureMode::kOpen;
  result = runSubmitFilter(script, {}, open);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, script);
  EXPECT_NE(result.message.find("fails open"), std::string::npos);
}

/// Records what `kbatch qsub` asked the real qsub to do, including the script file's content at
/// the time of the call (the wrapper deletes its temporary copy afterwards).
class RecordingInvoker : public QsubInvoker {
 public:
  int invoke(const fs::path& qsub, const std::vector<std::string>& arguments,
             const std::optional<std::string>& standard_input) override {
    qsub_ = qsub;
    arguments_ = arguments;
    standard_input_ = standard_input;
    for (const auto& argument : arguments) {
      if (argument.size() > 4 && argument.find("kbatch-qsub.") != std::string::npos) {
        std::ifstream stream(argument, std::ios::binary);
        submitted_file_.assign(std::istreambuf_iterator<char>(stream), {});
        struct stat info {};
        ::stat(argument.c_str(), &info);
        submitted_mode_ = info.st_mode & 0777;
        submitted_path_ = argument;
      }
    }
    return exit_status_;
  }
  fs::path qsub_;
  std::vector<std::string> arguments_;
  std::optional<std::string> standard_input_;
  std::string submitted_file_;
  std::string submitted_path_;
  unsigned submitted_mode_ = 0;
  int exit_status_ = 0;
};

class QsubWrapperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = testing::makeTemporaryDirectory();
    options_.qsub_path = "/usr/bin/qsub";
    options_.rewrite.kbatch_path = "/usr/bin/kbatch";
    options_.temporary_directory = directory_;
  }
  void TearDown() override { fs::remove_all(directory_); }
  std::string writeScript(const std::string& name, const std::string& content) {
    std::string path = directory_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::string directory_;
  QsubWrapperOptions options_;
  RecordingInvoker invoker_;
};

TEST_F(QsubWrapperTest, NativeJobRunsQsubWithTheSameArguments) {
  std::string path = writeScript("fib.pbs", testing::readFixture("fib.pbs"));
  std::vector<std::string> arguments{"-q", "batch", "-l", "walltime=1:00", path};
  invoker_.exit_status_ = 0;
  EXPECT_EQ(runQsubWrapper(arguments, options_, invoker_), 0);
  EXPECT_EQ(invoker_.qsub_, "/usr/bin/qsub");
  EXPECT_EQ(invoker_.arguments_, arguments);
  EXPECT_FALSE(invoker_.standard_input_.has_value());
}

TEST_F(QsubWrapperTest, BinaryIsConsumedAndTheRewrittenCopySubmitted) {
  std::string original = testing::readFixture("fib.pbs");
  std::string path = writeScript("fib.pbs", original);
  invoker_.exit_status_ = 3;  // qsub's own status comes back unchanged
  EXPECT_EQ(runQsubWrapper({"-N", "x", "-B", "./a.out", path, "-V"}, options_, invoker_), 3);
  ASSERT_EQ(invoker_.arguments_.size(), 4u);
  EXPECT_EQ(invoker_.arguments_[0], "-N");
  EXPECT_EQ(invoker_.arguments_[1], "x");
  EXPECT_EQ(fs::path(invoker_.arguments_[2]).filename(), "fib.pbs");  // default job name kept
  EXPECT_NE(invoker_.arguments_[2], path);
  EXPECT_EQ(invoker_.arguments_[3], "-V");
  EXPECT_EQ(invoker_.submitted_mode_, 0600u);
  auto decoded = decodeRewrittenScript(invoker_.submitted_file_);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(original.substr(original.size() - decoded->body.size()), decoded->body);
  EXPECT_NE(decoded->header.find("#KBATCH --from-binary ./a.out"), std::string::npos);
  EXPECT_FALSE(fs::exists(invoker_.submitted_path_));  // the temporary copy is gone
}

TEST_F(QsubWrapperTest, ScriptOnStdin) {
  static std::string stdin_script;
  stdin_script = testing::readFixture("container.pbs");
  options_.read_standard_input = [] { return stdin_script; };
  EXPECT_EQ(runQsubWrapper({"-q", "gpu"}, options_, invoker_), 0);
  EXPECT_EQ(invoker_.arguments_, (std::vector<std::string>{"-q", "gpu"}));
  ASSERT_TRUE(invoker_.standard_input_.has_value());
  EXPECT_TRUE(decodeRewrittenScript(*invoker_.standard_input_).has_value());

  stdin_script = testing::readFixture("fib.pbs");
  EXPECT_EQ(runQsubWrapper({}, options_, invoker_), 0);
  EXPECT_EQ(invoker_.standard_input_, stdin_script);  // native: passed on byte for byte
}

TEST_F(QsubWrapperTest, RefusedJobNeverReachesQsub) {
  std::string path = writeScript("job.pbs", "#KBATCH --image evil/img\necho\n");
  options_.check_job = [](const JobSpec&) {
    throw JobRefused("submit job", "job.pbs", "refused by the site policy: p.yaml:2: deny x");
  };
  EXPECT_THROW(runQsubWrapper({path}, options_, invoker_), JobRefused);
  EXPECT_TRUE(invoker_.qsub_.empty());  // qsub never ran

  // A native job is not checked at all.
  std::string native = writeScript("fib.pbs", testing::readFixture("fib.pbs"));
  EXPECT_EQ(runQsubWrapper({native}, options_, invoker_), 0);
  EXPECT_EQ(invoker_.qsub_, "/usr/bin/qsub");
}

TEST_F(QsubWrapperTest, DosScriptFileIsRefusedAsQsubWould) {
  std::string path = writeScript("dos.pbs", "#PBS -N d\r\necho\r\n");
  EXPECT_THROW(runQsubWrapper({path}, options_, invoker_), ScriptError);
  EXPECT_TRUE(invoker_.arguments_.empty());  // qsub never ran
}

TEST_F(QsubWrapperTest, MissingScriptIsNotFound) {
  try {
    runQsubWrapper({directory_ + "/missing.pbs"}, options_, invoker_);
    FAIL() << "expected an Error";
  } catch (const Error& error) {
    EXPECT_EQ(error.exitCode(), exit_code::kNotFound);
  }
}

TEST_F(QsubWrapperTest, InteractiveWithoutScriptGoesStraightThrough) {
  EXPECT_EQ(runQsubWrapper({"-I", "-l", "nodes=1"}, options_, invoker_), 0);
  EXPECT_EQ(invoker_.arguments_, (std::vector<std::string>{"-I", "-l", "nodes=1"}));
  EXPECT_THROW(runQsubWrapper({"-I", "-B", "./x"}, options_, invoker_), ScriptError);
}

TEST_F(QsubWrapperTest, RealProcessInvokerPassesArgvStdinAndStatus) {
  // A stand-in qsub: records its argv and stdin, exits with a chosen status.
  std::string qsub = writeScript("qsub", "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\n"
                                          "cat > \"$0.stdin\"\nexit 7\n");
  ::chmod(qsub.c_str(), 0755);
  ProcessQsubInvoker invoker;
  EXPECT_EQ(invoker.invoke(qsub, {"-N", "a b", "x"}, std::string("script\0bytes", 12)), 7);
  std::ifstream args(qsub + ".args");
  std::string recorded((std::istreambuf_iterator<char>(args)), {});
  EXPECT_EQ(recorded, "-N\na b\nx\n");
  std::ifstream input(qsub + ".stdin", std::ios::binary);
  std::string fed((std::istreambuf_iterator<char>(input)), {});
  EXPECT_EQ(fed, std::string("script\0bytes", 12));

  std::string killer = writeScript("qsub-killed", "#!/bin/sh\nkill -TERM $$\n");
  ::chmod(killer.c_str(), 0755);
  EXPECT_EQ(invoker.invoke(killer, {}, std::nullopt), exit_code::kSignalBase + 15);
  EXPECT_EQ(invoker.invoke(directory_ + "/absent", {}, std::nullopt), exit_code::kNotFound);
}

TEST_F(QsubWrapperTest, FindRealQsubSkipsKbatchItself) {
  fs::create_directories(directory_ + "/wrapper");
  fs::create_directories(directory_ + "/real");
  std::string self = writeScript("kbatch", "#!/bin/sh\n");
  ::chmod(self.c_str(), 0755);
  fs::create_symlink(self, directory_ + "/wrapper/qsub");
  std::string real = writeScript("real/qsub", "#!/bin/sh\n");
  ::chmod(real.c_str(), 0755);
  std::string path = directory_ + "/wrapper:" + directory_ + "/nowhere:" + directory_ + "/real";
  EXPECT_EQ(findRealQsub(std::nullopt, nullptr, path, self), fs::path(directory_ + "/real/qsub"));
  EXPECT_EQ(findRealQsub(std::nullopt, real.c_str(), "", self), fs::path(real));
  EXPECT_EQ(findRealQsub(real, "/nonexistent", "", self), fs::path(real));
  EXPECT_THROW(findRealQsub(std::nullopt, nullptr, directory_ + "/wrapper", self), Error);
  EXPECT_THROW(findRealQsub(std::string("/nonexistent/qsub"), nullptr, path, self), Error);
}

}  // namespace
}  // namespace kbatch::rewrite

namespace kbatch::rewrite {
namespace {

TEST(SubmitFilter, PolicyIsCheckedBeforeTheDependencyImageIsBuilt) {
  std::vector<std::string> events;
  auto options = filterOptions();
  options.rewrite.build_dependency_image = [&events](const JobSpec& spec) {
    events.push_back("build " + *spec.binary);
    return std::optional<std::string>("registry.example.org/deps@sha256:" + std::string(64, 'a'));
  };
  options.check_job = [&events](const JobSpec& spec) {
    events.push_back("check " + *spec.binary);
    if (*spec.binary == "./refused") throw JobRefused("submit job", "job", "refused");
  };
  auto result = runSubmitFilter("#PBS -B ./ok\necho\n", {}, options);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(events, (std::vector<std::string>{"check ./ok", "build ./ok"}));  // checked once
  events.clear();
  result = runSubmitFilter("#PBS -B ./refused\necho\n", {}, options);
  EXPECT_EQ(result.exit_code, exit_code::kSubmitFilterRejected);
  EXPECT_EQ(events, (std::vector<std::string>{"check ./refused"}));  // nothing built
}

}  // namespace
}  // namespace kbatch::rewrite
