#include "exec_arguments.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cmd_exec.h"

namespace kbatch::cli {
namespace {

using Words = std::vector<std::string>;

struct Argv {
  explicit Argv(const Words& words) : words(words) {
    pointers.push_back("kbatch");
    for (const auto& word : this->words) pointers.push_back(word.c_str());
  }
  int argc() const { return static_cast<int>(pointers.size()); }
  Words words;
  std::vector<const char*> pointers;
};

/// What CLI11 makes of the command line, with kbatch's own options (exec_options.cc) and globals
/// (main.cc); nullopt when it refuses it.
std::optional<FrontCommandLine> parseWithCli11(const Words& words) {
  CLI::App app;
  app.require_subcommand(1);
  app.fallthrough();
  FrontCommandLine line;
  app.add_flag("-v,--verbose", line.verbose);
  app.add_flag("-q,--quiet", line.quiet);
  CLI::App* exec = addExecCommand(app, line.exec);
  CLI::App* run = addRunCommand(app, line.run);
  Argv argv(words);
  try {
    app.parse(argv.argc(), argv.pointers.data());
  } catch (const CLI::ParseError&) {
    return std::nullopt;
  }
  if (exec->parsed())
    line.command = FrontCommandLine::Command::kExec;
  else if (run->parsed())
    line.command = FrontCommandLine::Command::kRun;
  else
    return std::nullopt;
  return line;
}

void expectSameFlags(const ExecFlags& front, const ExecFlags& cli11) {
  EXPECT_EQ(front.binds, cli11.binds);
  EXPECT_EQ(front.env, cli11.env);
  EXPECT_EQ(front.workdir, cli11.workdir);
  EXPECT_EQ(front.clean_env, cli11.clean_env);
  EXPECT_EQ(front.writable_tmpfs, cli11.writable_tmpfs);
  EXPECT_EQ(front.fakeroot, cli11.fakeroot);
  EXPECT_EQ(front.backend, cli11.backend);
  EXPECT_EQ(front.image, cli11.image);
  EXPECT_EQ(front.from_binary, cli11.from_binary);
  EXPECT_EQ(front.cpus, cli11.cpus);
  EXPECT_EQ(front.memory, cli11.memory);
  EXPECT_EQ(front.walltime, cli11.walltime);
  EXPECT_EQ(front.gpus, cli11.gpus);
}

std::string joined(const Words& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : " ") + word;
  return text;
}

/// The front end takes the command line, and CLI11 makes the same of it.
void expectTakenAsCli11Does(const Words& words) {
  SCOPED_TRACE(joined(words));
  Argv argv(words);
  std::optional<FrontCommandLine> front = parseFrontCommandLine(argv.argc(), argv.pointers.data());
  std::optional<FrontCommandLine> cli11 = parseWithCli11(words);
  ASSERT_TRUE(front.has_value()) << "the front end hands it over";
  ASSERT_TRUE(cli11.has_value()) << "CLI11 refuses it";
  EXPECT_EQ(front->verbose, cli11->verbose);
  EXPECT_EQ(front->quiet, cli11->quiet);
  ASSERT_EQ(front->command, cli11->command);
  if (front->command == FrontCommandLine::Command::kExec) {
    expectSameFlags(front->exec.flags, cli11->exec.flags);
    EXPECT_EQ(front->exec.job_body, cli11->exec.job_body);
    EXPECT_EQ(front->exec.image_word, cli11->exec.image_word);
    EXPECT_EQ(front->exec.words, cli11->exec.words);
  } else {
    expectSameFlags(front->run.flags, cli11->run.flags);
    EXPECT_EQ(front->run.script, cli11->run.script);
  }
}

/// The front end hands the command line over (to kbatch-cli, which parses it with CLI11).
void expectHandedOver(const Words& words) {
  Argv argv(words);
  EXPECT_FALSE(parseFrontCommandLine(argv.argc(), argv.pointers.data()).has_value())
      << joined(words);
}

TEST(FrontEndArguments, TakesTheFormsJobsUseAsCli11Does) {
  for (const Words& words : std::vector<Words>{
           {"exec", "/rootfs", "--", "/bin/true"},
           {"exec", "/rootfs", "--", "sh", "-c", "echo $HOME -- x"},
           {"exec", "--bind", "/data:/data:ro", "-B", "/scratch", "-B/tmp/x:/x", "--env", "A=1",
            "--env=B=2", "--workdir", "/work", "--cleanenv", "--writable-tmpfs", "--fakeroot",
            "/rootfs", "--", "prog", "--flag", "-v"},
           {"exec", "--backend", "k8s", "--cpus", "4", "--gpus=0", "--memory", "4gb",
            "--walltime=1:00:00", "busybox:1.36", "--", "true"},
           {"exec", "--image", "registry.example.org/x@sha256:abc", "--from-binary", "./a.out",
            "--", "/bin/sh"},
           {"exec", "--job-body=base64", "--image", "alpine:3", "--", "/bin/bash"},
           {"exec", "--job-body", "base64", "alpine:3", "--", "/bin/sh"},
           {"exec", "--image", "alpine:3", "--", "/bin/sh", "-e"},
           {"-v", "exec", "/rootfs", "--", "true"},
           {"-vv", "exec", "/rootfs", "--", "true"},
           {"--verbose", "-q", "exec", "/rootfs", "--", "true"},
           {"exec", "-v", "/rootfs", "--", "true"},
           {"exec", "/rootfs", "--bind", "/data", "--", "true"},
           {"exec", "--", "true"},
           {"exec", "/rootfs", "--", "true", "--workdir", "-B"},  // after `--`: the command's
           {"run", "job.pbs"},
           {"run", "--image", "alpine:3", "--cpus", "2", "job.pbs"},
           {"run", "job.pbs", "--bind", "/data:/data", "--env", "X=y z"},
           {"-q", "run", "--from-binary", "a.out", "fib.pbs"},
       }) {
    expectTakenAsCli11Does(words);
  }
}

TEST(FrontEndArguments, HandsOverWhatOnlyCli11Answers) {
  for (const Words& words : std::vector<Words>{
           {"exec", "--help"},
           {"exec", "-h", "/rootfs", "--", "true"},
           {"--help"},
           {"exec", "/rootfs", "true"},                     // no `--`: CMD words as positionals
           {"exec", "/rootfs", "cmd", "--", "true"},        // a second positional before `--`
           {"exec", "--unknown", "/rootfs", "--", "true"},  // an option exec does not have
           {"exec", "--backend", "slurm", "/rootfs", "--", "true"},
           {"exec", "--cpus", "0", "/rootfs", "--", "true"},
           {"exec", "--cpus", "two", "/rootfs", "--", "true"},
           {"exec", "--gpus", "-1", "/rootfs", "--", "true"},
           {"exec", "--image", "a", "--image", "b", "--", "true"},
           {"exec", "--cleanenv", "--cleanenv", "/rootfs", "--", "true"},
           {"exec", "--env", "--cleanenv", "/rootfs", "--", "true"},
           {"exec", "--workdir=", "/rootfs", "--", "true"},
           {"run"},
           {"run", "a.pbs", "b.pbs"},
           {"run", "--job-body", "base64", "a.pbs"},
           {"run", "a.pbs", "--", "x"},
           {"exec", "--bind"},
           {"pull", "alpine:3"},
           {},
       }) {
    expectHandedOver(words);
  }
}

TEST(FrontEndArguments, RefusesWhatCli11Refuses) {
  // Where the front end hands over because a value is invalid, CLI11 must refuse it too (else the
  // hand-over would be the only way to a command line the front end could have run).
  for (const Words& words : std::vector<Words>{
           {"exec", "--backend", "slurm", "/rootfs", "--", "true"},
           {"exec", "--cpus", "0", "/rootfs", "--", "true"},
           {"exec", "--cpus", "two", "/rootfs", "--", "true"},
           {"exec", "--unknown", "/rootfs", "--", "true"},
           {"run", "a.pbs", "b.pbs"},
           {"run"},
       }) {
    EXPECT_FALSE(parseWithCli11(words).has_value()) << joined(words);
  }
}

TEST(FrontEndArguments, TheVerbosityOfAHandedOverCommandLineIsThatOfItsLeadingFlags) {
  auto leading = [](const Words& words) {
    Argv argv(words);
    return leadingVerbosity(argv.argc(), argv.pointers.data());
  };
  EXPECT_EQ(leading({"-vv", "exec", "--help"}), log::Verbosity::kDebug);
  EXPECT_EQ(leading({"-v", "--verbose", "exec", "/rootfs", "true"}), log::Verbosity::kDebug);
  EXPECT_EQ(leading({"--verbose", "run"}), log::Verbosity::kVerbose);
  EXPECT_EQ(leading({"-v", "-q", "pull", "x"}), log::Verbosity::kQuiet);
  // Flags after the command word are the command's: the hand-over logs at the default.
  EXPECT_EQ(leading({"exec", "-vv", "--help"}), log::Verbosity::kNormal);
}

}  // namespace
}  // namespace kbatch::cli
