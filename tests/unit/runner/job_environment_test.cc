#include "kbatch/runner/job_environment.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "kbatch/common/error.h"

namespace kbatch::runner {
namespace {

bool has(const std::vector<std::string>& entries, const std::string& entry) {
  return std::find(entries.begin(), entries.end(), entry) != entries.end();
}

bool hasName(const std::vector<std::string>& entries, const std::string& name) {
  return std::any_of(entries.begin(), entries.end(),
                     [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
}

const std::map<std::string, std::string> kCaller = {
    {"PATH", "/opt/x/bin:/usr/bin"}, {"HOME", "/home/u"},  {"USER", "u"},
    {"LD_PRELOAD", "/lib/evil.so"},  {"LD_LIBRARY_PATH", "/host/lib"},
    {"PBS_JOBID", "12.server"},      {"SLURM_JOB_ID", "7"}, {"EDITOR", "vi"},
    {"TERM", "xterm"}};

TEST(JobEnvironment, PassesTheCallersEnvironmentExceptHostLibraryPaths) {
  auto env = buildJobEnvironment(kCaller, false, {});
  EXPECT_TRUE(has(env, "EDITOR=vi"));
  EXPECT_TRUE(has(env, "PATH=/opt/x/bin:/usr/bin"));
  EXPECT_TRUE(has(env, "PBS_JOBID=12.server"));
  EXPECT_FALSE(hasName(env, "LD_PRELOAD"));
  EXPECT_FALSE(hasName(env, "LD_LIBRARY_PATH"));
  EXPECT_TRUE(std::is_sorted(env.begin(), env.end()));
}

TEST(JobEnvironment, CleanEnvKeepsOnlyTheMinimalSet) {
  auto env = buildJobEnvironment(kCaller, true, {{"FOO", "bar"}});
  EXPECT_TRUE(has(env, "HOME=/home/u"));
  EXPECT_TRUE(has(env, "USER=u"));
  EXPECT_TRUE(has(env, "TERM=xterm"));
  EXPECT_TRUE(has(env, "PBS_JOBID=12.server"));
  EXPECT_TRUE(has(env, "SLURM_JOB_ID=7"));
  EXPECT_TRUE(has(env, "FOO=bar"));
  EXPECT_FALSE(hasName(env, "EDITOR"));
  EXPECT_FALSE(hasName(env, "LD_PRELOAD"));
}

TEST(JobEnvironment, OverridesWinAndPathHasADefault) {
  auto env = buildJobEnvironment({{"A", "1"}}, false, {{"A", "2"}, {"LD_LIBRARY_PATH", "/opt/lib"}});
  EXPECT_TRUE(has(env, "A=2"));
  EXPECT_TRUE(has(env, "LD_LIBRARY_PATH=/opt/lib"));  // asked for explicitly: passes
  EXPECT_TRUE(has(env, "PATH=" + std::string(kDefaultPath)));
}

TEST(JobEnvironment, ParseEnvAssignment) {
  EXPECT_EQ(parseEnvAssignment("K=V=W"), (std::pair<std::string, std::string>{"K", "V=W"}));
  EXPECT_EQ(parseEnvAssignment("EMPTY="), (std::pair<std::string, std::string>{"EMPTY", ""}));
  EXPECT_THROW(parseEnvAssignment("NOEQUALS"), Error);
  EXPECT_THROW(parseEnvAssignment("1BAD=x"), Error);
  EXPECT_THROW(parseEnvAssignment("BAD-NAME=x"), Error);
}

TEST(SlurmHostList, Expands) {
  EXPECT_EQ(expandSlurmHostList("n[1-3,07],gpu01"),
            (std::vector<std::string>{"n1", "n2", "n3", "n07", "gpu01"}));
  EXPECT_EQ(expandSlurmHostList("a[08-10]"), (std::vector<std::string>{"a08", "a09", "a10"}));
  EXPECT_EQ(expandSlurmHostList("single"), std::vector<std::string>{"single"});
  EXPECT_THROW(expandSlurmHostList("n[1-3"), Error);
  EXPECT_THROW(expandSlurmHostList("n[3-1]"), Error);
  EXPECT_THROW(expandSlurmHostList("n[x]"), Error);
}

TEST(BatchContext, FromTorque) {
  auto nodefile = std::filesystem::temp_directory_path() /
                  ("kbatch-nodefile-" + std::to_string(getpid()));
  std::ofstream(nodefile) << "node1\nnode1\nnode2\n";
  JobSpec job;
  fillBatchContext(job, {{"PBS_JOBID", "42.srv"},
                         {"PBS_O_WORKDIR", "/home/u/run"},
                         {"PBS_NODEFILE", nodefile.string()},
                         {"PBS_NUM_PPN", "2"},
                         {"PBS_ARRAYID", "3"},
                         {"PBS_JOBNAME", "fib"}});
  std::filesystem::remove(nodefile);
  EXPECT_EQ(job.job_id, "42.srv");
  EXPECT_EQ(job.submit_dir, "/home/u/run");
  EXPECT_EQ(job.hosts, (std::vector<std::string>{"node1", "node1", "node2"}));
  EXPECT_EQ(job.resources.ppn, 2);
  EXPECT_EQ(job.array_index, "3");
  EXPECT_EQ(job.name, "fib");
}

TEST(BatchContext, FromSlurmAndExistingFieldsWin) {
  JobSpec job;
  job.name = "mine";
  fillBatchContext(job, {{"SLURM_JOB_ID", "9"},
                         {"SLURM_SUBMIT_DIR", "/s"},
                         {"SLURM_JOB_NODELIST", "c[1-2]"},
                         {"SLURM_ARRAY_TASK_ID", "5"},
                         {"SLURM_JOB_NAME", "theirs"}});
  EXPECT_EQ(job.job_id, "9");
  EXPECT_EQ(job.submit_dir, "/s");
  EXPECT_EQ(job.hosts, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(job.array_index, "5");
  EXPECT_EQ(job.name, "mine");
}

TEST(BatchContext, UnreadableNodefileIsAnError) {
  JobSpec job;
  EXPECT_THROW(fillBatchContext(job, {{"PBS_NODEFILE", "/nonexistent/kbatch/nodefile"}}), Error);
}

}  // namespace
}  // namespace kbatch::runner
