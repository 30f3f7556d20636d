#include "kbatch/rewrite/parser.h"

#include <gtest/gtest.h>

#include "kbatch/rewrite/job_spec_json.h"
#include "test_support.h"

namespace kbatch::rewrite {
namespace {

JobSpec parse(const std::string& content, std::vector<std::string> command_line = {},
              std::optional<std::string> pbs_dprefix = std::nullopt) {
  ParseOptions options;
  options.file_name = "job.pbs";
  options.command_line = std::move(command_line);
  options.pbs_dprefix = std::move(pbs_dprefix);
  return parseJobScript(content, options);
}

/// The one-line message of the ScriptError that parsing `content` throws.
std::string parseError(const std::string& content, std::vector<std::string> command_line = {}) {
  try {
    parse(content, std::move(command_line));
  } catch (const ScriptError& error) {
    return error.oneLine();
  }
  return "<no error>";
}

TEST(Scanning, PbsDirectivesAfterShebangAndComments) {
  JobSpec spec = parse("#!/bin/bash\n# comment\n\n#PBS -N job1\n   #PBS -q batch\necho hi\n");
  EXPECT_EQ(spec.name, "job1");
  EXPECT_EQ(spec.shell, "/bin/bash");
  ASSERT_EQ(spec.directives.size(), 2u);
  EXPECT_EQ(spec.directives[0].line, 4);
  EXPECT_EQ(spec.directives[0].option, "-N");
  EXPECT_EQ(spec.directives[0].raw, "#PBS -N job1");
  EXPECT_EQ(spec.directives[1].line, 5);
  EXPECT_EQ(spec.passthrough_options, std::vector<std::string>{"-q batch"});
}

TEST(Scanning, StopsAtFirstExecutableLine) {
  JobSpec spec = parse("#PBS -N first\necho run\n#PBS -N second\n");
  EXPECT_EQ(spec.name, "first");
  EXPECT_EQ(spec.directives.size(), 1u);
}

TEST(Scanning, ColonLinesDoNotEndTheHeader) {
  // qsub's isexecutable() treats any line starting with ':' like the '#!' line.
  JobSpec spec = parse(": some shell no-op\n#PBS -N after_colon\ntrue\n");
  EXPECT_EQ(spec.name, "after_colon");
}

TEST(Scanning, LeadingBlanksBeforeAColonMakeItACommand) {
  JobSpec spec = parse("  : indented\n#PBS -N too_late\n");
  EXPECT_FALSE(spec.name.has_value());
}

TEST(Scanning, BackslashContinuesADirective) {
  JobSpec spec = parse(testing::readFixture("continued.pbs"));
  EXPECT_EQ(spec.name, "long");
  EXPECT_EQ(spec.resources.nodes, 2);
  EXPECT_EQ(spec.resources.ppn, 4);
  EXPECT_EQ(spec.resources.walltime_s, 3600u);
  EXPECT_EQ(spec.resources.mem_bytes, 2ull << 30);
  EXPECT_EQ(spec.shell, "/bin/sh");
  ASSERT_FALSE(spec.directives.empty());
  EXPECT_EQ(spec.directives[0].line, 2);
  EXPECT_EQ(spec.directives[0].raw, "#PBS -N long \\\n-l nodes=2:ppn=4");
  EXPECT_EQ(spec.directives[1].line, 2);  // the -l on the continuation line belongs to line 2
}

TEST(Scanning, ContinuationPastEndOfFileIsAnError) {
  EXPECT_NE(parseError("#PBS -N x \\\n").find("job.pbs:1"), std::string::npos);
}

TEST(Scanning, DosLineEndingsStrippedFromDirectivesByDefault) {
  JobSpec spec = parse("#!/bin/sh\r\n#PBS -N dos\r\n#PBS -l walltime=60\r\necho\r\n");
  EXPECT_EQ(spec.name, "dos");
  EXPECT_EQ(spec.resources.walltime_s, 60u);
  EXPECT_EQ(spec.shell, "/bin/sh");
}

TEST(Scanning, DosLineEndingsRefusedLikeQsubDoesForFiles) {
  ParseOptions options;
  options.file_name = "dos.pbs";
  options.reject_dos_line_endings = true;
  try {
    parseJobScript("#PBS -N x\necho ok\necho bad\r\n", options);
    FAIL() << "expected a ScriptError";
  } catch (const ScriptError& error) {
    EXPECT_NE(error.oneLine().find("dos.pbs:3"), std::string::npos) << error.oneLine();
    EXPECT_NE(error.oneLine().find("dos2unix"), std::string::npos);
  }
}

TEST(Prefix, DashCOnCommandLineWins) {
  const std::string script = "#PBS -N pbs\n#MY -N mine\necho\n";
  EXPECT_EQ(parse(script, {"-C", "#MY"}).name, "mine");
  EXPECT_EQ(parse(script, {"-C#MY"}).name, "mine");
  EXPECT_EQ(parse(script, {}, "#MY").name, "mine");                 // PBS_DPREFIX
  EXPECT_EQ(parse(script, {"-C", "#PBS"}, "#MY").name, "pbs");      // -C beats PBS_DPREFIX
}

TEST(Prefix, EmptyPrefixDisablesScanning) {
  JobSpec spec = parse("#PBS -N ignored\n#KBATCH --image debian:12\necho\n", {"-C", ""});
  EXPECT_FALSE(spec.name.has_value());
  EXPECT_EQ(spec.image, "debian:12");  // kbatch's own directives are still read
}

TEST(Prefix, PbsPrefixIsAPlainStringCompare) {
  EXPECT_EQ(parse("#PBS-N glued\n").name, "glued");
}

TEST(QsubOptions, ValuesAttachedSeparateAndBundled) {
  JobSpec spec = parse("#PBS -Nname -lnodes=3 -Vh -S /bin/zsh\n");
  EXPECT_EQ(spec.name, "name");
  EXPECT_EQ(spec.resources.nodes, 3);
  EXPECT_EQ(spec.shell, "/bin/zsh");
  std::vector<std::string> expected{"-V", "-h"};
  EXPECT_EQ(spec.passthrough_options, expected);
}

TEST(QsubOptions, QuotesStayInTheValueAsQsubKeepsThem) {
  // TORQUE's make_argv keeps the quote characters of a #PBS directive in the argument.
  JobSpec spec = parse("#PBS -N \"run1\" # the name\n#PBS -M 'a@b.c'\n#PBS -v \"A=1,B=2\"\n");
  EXPECT_EQ(spec.name, "\"run1\"");
  std::vector<std::string> expected{"-M 'a@b.c'", "-v \"A=1,B=2\""};
  EXPECT_EQ(spec.passthrough_options, expected);
  ASSERT_EQ(spec.directives.size(), 3u);
  EXPECT_EQ(spec.directives[2].value, "\"A=1,B=2\"");
  // A backslash outside quotes still takes the next character literally.
  EXPECT_EQ(parse("#PBS -N a\\#b\n").name, "a#b");
}

TEST(QsubOptions, JobNameFollowsCheckJobName) {
  // qsub refuses a name with a blank ("illegal -N value"); the directive's quotes do not help.
  std::string error = parseError("#PBS -N \"my job\"\n");
  EXPECT_NE(error.find("job.pbs:1"), std::string::npos) << error;
  EXPECT_NE(error.find("keeps the quotes"), std::string::npos) << error;
  EXPECT_NE(parseError("#PBS -N x\n", {"-N", "two words"}).find("no blanks"), std::string::npos);
  EXPECT_NE(parseError("#PBS -N " + std::string(257, 'n') + "\n").find("256"), std::string::npos);
  EXPECT_EQ(parse("#PBS -N " + std::string(256, 'n') + "\n").name, std::string(256, 'n'));
}

TEST(QsubOptions, QuotedBinaryLosesItsQuotes) {
  JobSpec spec = parse("#PBS -B \"./my solver\"\n");
  EXPECT_EQ(spec.binary, "./my solver");
}

TEST(ResourceList, QuotedValuesAsAddVerifyResources) {
  // A value that starts with a quote runs to the next quote and may hold commas.
  JobSpec spec = parse("#PBS -l walltime=\"1:00:00\",nodes=2,software='a,b'\n");
  EXPECT_EQ(spec.resources.walltime_s, 3600u);
  EXPECT_EQ(spec.resources.nodes, 2);
  ASSERT_EQ(spec.resources.other.size(), 1u);
  EXPECT_EQ(spec.resources.other[0].second, "a,b");
  // Quoting the whole list quotes the first resource's name: qsub's server refuses it too.
  EXPECT_NE(parseError("#PBS -l \"nodes=1,walltime=10\"\n").find("holds a quote"),
            std::string::npos);
  EXPECT_NE(parseError("#PBS -l mem=4\"gb\"\n").find("quote inside the value"),
            std::string::npos);
  EXPECT_NE(parseError("#PBS -l mem=\"4gb\"x\n").find("after the quoted value"),
            std::string::npos);
}

TEST(QsubOptions, EveryIssueOption) {
  JobSpec spec = parse(
      "#PBS -N n -o out.log -e err.log -j oe -q q1 -V -v A=1,B -t 1-10%2 -W depend=afterok:1\n"
      "#PBS -m abe -M u@x -d /work/dir -w /work/w -A acct -p 10 -S /bin/bash -I\n");
  EXPECT_EQ(spec.name, "n");
  EXPECT_EQ(spec.array, "1-10%2");
  EXPECT_EQ(spec.workdir, "/work/w");  // -w after -d: the later one wins
  EXPECT_EQ(spec.shell, "/bin/bash");
  std::vector<std::string> expected{"-o out.log", "-e err.log", "-j oe",   "-q q1",
                                    "-V",         "-v A=1,B",   "-W depend=afterok:1",
                                    "-m abe",     "-M u@x",     "-A acct", "-p 10", "-I"};
  EXPECT_EQ(spec.passthrough_options, expected);
}

TEST(QsubOptions, ShellListTakesTheHostlessEntry) {
  EXPECT_EQ(parse("#PBS -S /bin/ksh@node1,/bin/sh\n").shell, "/bin/ksh");
}

TEST(QsubOptions, UnknownOptionsAreKeptVerbatim) {
  JobSpec spec = parse("#PBS -Z something  odd\n#PBS -N ok --extra=1\n");
  std::vector<std::string> expected{"-Z something  odd", "--extra=1"};
  EXPECT_EQ(spec.passthrough_options, expected);
  EXPECT_EQ(spec.name, "ok");
}

TEST(QsubOptions, BinaryOption) {
  JobSpec spec = parse("#PBS -B ./a.out\n");
  EXPECT_EQ(spec.binary, "./a.out");
  EXPECT_TRUE(spec.needs_container);
}

TEST(QsubOptions, InvalidValuesNameLineAndForm) {
  EXPECT_NE(parseError("#PBS -j xx\n").find("job.pbs:1"), std::string::npos);
  EXPECT_NE(parseError("#PBS -j xx\n").find("-j oe"), std::string::npos);
  EXPECT_NE(parseError("\n#PBS -m abz\n").find("job.pbs:2"), std::string::npos);
  EXPECT_NE(parseError("#PBS -p 2000\n").find("-1024..1023"), std::string::npos);
  EXPECT_NE(parseError("#PBS -r maybe\n").find("-r y or -r n"), std::string::npos);
  EXPECT_NE(parseError("#PBS -S bash\n").find("absolute"), std::string::npos);
  EXPECT_NE(parseError("#PBS -t one\n").find("-t 1-10"), std::string::npos);
  EXPECT_NE(parseError("#PBS -N\n").find("-N needs a value"), std::string::npos);
  EXPECT_NE(parseError("#PBS -N \"open\n").find("unmatched"), std::string::npos);
}

TEST(ResourceList, NodesPpnGpus) {
  JobSpec spec = parse("#PBS -l nodes=2:ppn=8:gpus=2\n");
  EXPECT_EQ(spec.resources.nodes, 2);
  EXPECT_EQ(spec.resources.ppn, 8);
  EXPECT_EQ(spec.resources.gpus, 2);
  ASSERT_EQ(spec.resources.node_requests.size(), 1u);
  EXPECT_EQ(spec.resources.node_requests[0].count, 2);
  EXPECT_TRUE(spec.resources.node_requests[0].host.empty());
}

TEST(ResourceList, HostListWithPlus) {
  JobSpec spec = parse("#PBS -l nodes=host1:ppn=2+host2:ppn=4+3:bigmem\n");
  EXPECT_EQ(spec.resources.nodes, 5);
  EXPECT_EQ(spec.resources.ppn, 2);
  const auto& requests = spec.resources.node_requests;
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].host, "host1");
  EXPECT_EQ(requests[1].host, "host2");
  EXPECT_EQ(requests[1].ppn, 4);
  EXPECT_EQ(requests[2].count, 3);
  EXPECT_EQ(requests[2].properties, std::vector<std::string>{"bigmem"});
}

TEST(ResourceList, EveryResourceKind) {
  JobSpec spec = parse(
      "#PBS -l procs=16,mem=4gb,pmem=512mb,vmem=8gb,walltime=1:02:03,gpus=2\n"
      "#PBS -l software=matlab,cput=10:00\n");
  const Resources& r = spec.resources;
  EXPECT_EQ(r.procs, 16);
  EXPECT_EQ(r.mem_bytes, 4ull << 30);
  EXPECT_EQ(r.pmem_bytes, 512ull << 20);
  EXPECT_EQ(r.vmem_bytes, 8ull << 30);
  EXPECT_EQ(r.walltime_s, 3723u);
  EXPECT_EQ(r.gpus, 2);
  std::vector<std::pair<std::string, std::string>> other{{"software", "matlab"},
                                                          {"cput", "10:00"}};
  EXPECT_EQ(r.other, other);
}

TEST(ResourceList, ExplicitGpusBeatNodeGpus) {
  EXPECT_EQ(parse("#PBS -l gpus=4\n#PBS -l nodes=1:gpus=1\n").resources.gpus, 4);
}

TEST(ResourceList, LaterResourceOverridesEarlierOne) {
  JobSpec spec = parse("#PBS -l walltime=10:00,mem=1gb\n#PBS -l walltime=20:00\n");
  EXPECT_EQ(spec.resources.walltime_s, 1200u);
  EXPECT_EQ(spec.resources.mem_bytes, 1ull << 30);
}

TEST(ResourceList, ErrorsNameTheFormExpected) {
  std::string message = parseError("#!/bin/sh\n#PBS -l walltime=ten\n");
  EXPECT_NE(message.find("job.pbs:2"), std::string::npos) << message;
  EXPECT_NE(message.find("[[[DD:]HH:]MM:]SS"), std::string::npos) << message;
  EXPECT_NE(parseError("#PBS -l mem=lots\n").find("4gb"), std::string::npos);
  EXPECT_NE(parseError("#PBS -l nodes=0\n").find("positive"), std::string::npos);
  EXPECT_NE(parseError("#PBS -l nodes=1:ppn=x\n").find("ppn=<M>"), std::string::npos);
  EXPECT_NE(parseError("#PBS -l nodes=1::ppn=2\n").find("empty field"), std::string::npos);
  EXPECT_NE(parseError("#PBS -l nodes=1,procs=2\n").find("nodes= and procs="), std::string::npos);
  EXPECT_NE(parseError("#PBS -l procs=0\n").find("procs=<N>"), std::string::npos);
  EXPECT_NE(parseError("#PBS -l mem\n").find("-l mem=VALUE"), std::string::npos);
  EXPECT_NE(parseError("#PBS -l nodes=1,,mem=1gb\n").find("empty item"), std::string::npos);
}

TEST(ResourceList, MalformedFixtureNamesFileAndLine) {
  ParseOptions options;
  options.file_name = "malformed_walltime.pbs";
  try {
    parseJobScript(testing::readFixture("malformed_walltime.pbs"), options);
    FAIL() << "expected a ScriptError";
  } catch (const ScriptError& error) {
    EXPECT_EQ(error.oneLine(),
              "kbatch: parse job script 'malformed_walltime.pbs:3': bad walltime 'ten_minutes' "
              "(expected [[[DD:]HH:]MM:]SS[.fff])");
  }
}

TEST(CommandLine, OverridesScriptDirectives) {
  JobSpec spec = parse("#PBS -N script_name\n#PBS -l walltime=10:00,mem=1gb\necho\n",
                       {"-N", "cli_name", "-l", "walltime=1:00:00", "job.pbs"});
  EXPECT_EQ(spec.name, "cli_name");
  EXPECT_EQ(spec.resources.walltime_s, 3600u);
  EXPECT_EQ(spec.resources.mem_bytes, 1ull << 30);  // not overridden: kept from the script
  EXPECT_EQ(spec.directives.back().source, DirectiveSource::kCommandLine);
  EXPECT_EQ(spec.directives.back().line, 0);
}

TEST(CommandLine, BinaryAndErrorsSayCommandLine) {
  EXPECT_EQ(parse("echo\n", {"-B", "/bin/true", "job.pbs"}).binary, "/bin/true");
  EXPECT_NE(parseError("echo\n", {"-l", "walltime=x"}).find("'command line'"), std::string::npos);
  EXPECT_NE(parseError("echo\n", {"-N"}).find("-N needs a value"), std::string::npos);
}

TEST(CommandLine, SplitLikeGetopt) {
  auto line = parseQsubCommandLine({"-V", "-l", "nodes=1", "-IB", "./x", "job.pbs", "-q", "b"});
  ASSERT_TRUE(line.script_index.has_value());
  EXPECT_EQ(*line.script_index, 5u);
  EXPECT_EQ(line.binary, "./x");
  EXPECT_TRUE(line.interactive);
  std::vector<std::string> without{"-V", "-l", "nodes=1", "-I", "job.pbs", "-q", "b"};
  EXPECT_EQ(line.arguments_without_binary, without);
  EXPECT_EQ(line.script_index_without_binary, 4u);
  auto attached = parseQsubCommandLine({"-B./y", "-C", "#X", "s.sh"});
  EXPECT_EQ(attached.binary, "./y");
  EXPECT_EQ(attached.prefix, "#X");
  EXPECT_EQ(attached.arguments_without_binary, (std::vector<std::string>{"-C", "#X", "s.sh"}));
}

TEST(Slurm, LongShortEqualsAndSpaceForms) {
  JobSpec spec = parse(testing::readFixture("slurm.sbatch"));
  const Resources& r = spec.resources;
  EXPECT_EQ(spec.name, "sim");
  EXPECT_EQ(r.nodes, 2);
  EXPECT_EQ(r.ppn, 8);
  EXPECT_EQ(r.cpus_per_task, 2);
  EXPECT_EQ(r.mem_bytes, 4ull << 30);
  EXPECT_EQ(r.walltime_s, 86400u + 2 * 3600 + 30 * 60);
  EXPECT_EQ(r.gpus, 2);
  EXPECT_EQ(spec.workdir, "/scratch/sim");
  EXPECT_EQ(spec.array, "0-15%4");
  EXPECT_EQ(spec.image, "docker.io/library/debian:12");
  std::vector<std::string> expected{"--gres=gpu:a100:2", "--partition=batch", "-o sim-%j.out"};
  EXPECT_EQ(spec.passthrough_options, expected);
}

TEST(Slurm, MoreForms) {
  JobSpec spec = parse(
      "#SBATCH -J short -n 32 -c 4 -t 90 -D /tmp --mem-per-cpu=2048 -G 3\n"
      "#SBATCH --nodes=2-4 --exclusive --time UNLIMITED --unknown-flag x y\n");
  EXPECT_EQ(spec.name, "short");
  EXPECT_EQ(spec.resources.procs, 32);
  EXPECT_EQ(spec.resources.cpus_per_task, 4);
  EXPECT_FALSE(spec.resources.walltime_s.has_value());  // UNLIMITED after 90 minutes
  EXPECT_EQ(spec.workdir, "/tmp");
  EXPECT_EQ(spec.resources.pmem_bytes, 2048ull << 20);
  EXPECT_EQ(spec.resources.gpus, 3);
  EXPECT_EQ(spec.resources.nodes, 2);
  EXPECT_EQ(spec.resources.max_nodes, 4);  // the range is kept, not silently its minimum
  std::vector<std::string> expected{"--exclusive", "--unknown-flag x y"};
  EXPECT_EQ(spec.passthrough_options, expected);
}

TEST(Slurm, NodeCountWithoutRangeAndJson) {
  JobSpec spec = parse("#SBATCH --nodes=3\n");
  EXPECT_EQ(spec.resources.nodes, 3);
  EXPECT_FALSE(spec.resources.max_nodes.has_value());
  std::string json = jobSpecToJson(parse("#SBATCH -N 2-8\n"), -1);
  EXPECT_NE(json.find("\"max_nodes\":8"), std::string::npos) << json;
  // A later TORQUE node list is exact and replaces the range.
  EXPECT_FALSE(parse("#SBATCH -N 2-8\n#PBS -l nodes=2\n").resources.max_nodes.has_value());
}

TEST(Slurm, Errors) {
  EXPECT_NE(parseError("#SBATCH --time=abc\n").find("D-H:M:S"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH --mem=4X\n").find("default M"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH -N zero\n").find("--nodes=N"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH --nodes=4-2\n").find("MIN <= MAX"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH --nodes=2-\n").find("job.pbs:1"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH --gres=gpu:2x\n").find("job.pbs:1"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH --job-name\n").find("needs a value"), std::string::npos);
  EXPECT_NE(parseError("#SBATCH --requeue=yes\n").find("takes no value"), std::string::npos);
}

TEST(Slurm, SbatchPrefixNeedsABlankAfterIt) {
  JobSpec spec = parse("#SBATCHX --job-name=no\n");
  EXPECT_FALSE(spec.name.has_value());
}

TEST(Kbatch, AllOptions) {
  JobSpec spec = parse(testing::readFixture("container.pbs"));
  EXPECT_EQ(spec.image, "registry.example.org/ml/pytorch:2.1");
  EXPECT_EQ(spec.backend, Backend::kLocal);
  ASSERT_EQ(spec.binds.size(), 2u);
  EXPECT_EQ(spec.binds[0].source, "/scratch");
  EXPECT_FALSE(spec.binds[0].read_only);
  EXPECT_EQ(spec.binds[1].destination, "/data");
  EXPECT_TRUE(spec.binds[1].read_only);
  ASSERT_EQ(spec.env.size(), 1u);
  EXPECT_EQ(spec.env[0], (std::pair<std::string, std::string>{"OMP_NUM_THREADS", "4"}));
  EXPECT_EQ(spec.shell, "/bin/bash -l");
  EXPECT_EQ(spec.resources.gpus, 1);
  EXPECT_TRUE(spec.needs_container);
  JobSpec other = parse("#KBATCH --backend=k8s --from-binary=/opt/x --image=a:b\n");
  EXPECT_EQ(other.backend, Backend::kK8s);
  EXPECT_EQ(other.binary, "/opt/x");
}

TEST(Kbatch, ErrorsNameLineAndForm) {
  EXPECT_NE(parseError("#KBATCH --imag x\n").find("unknown #KBATCH option '--imag'"),
            std::string::npos);
  EXPECT_NE(parseError("#KBATCH --backend docker\n").find("--backend local"), std::string::npos);
  EXPECT_NE(parseError("#KBATCH --bind rel:/x\n").find("absolute"), std::string::npos);
  EXPECT_NE(parseError("#KBATCH --bind /a:/b:rx\n").find("bad bind mode"), std::string::npos);
  EXPECT_NE(parseError("#KBATCH --env 1X=2\n").find("NAME=VALUE"), std::string::npos);
  EXPECT_NE(parseError("#KBATCH --env NOVALUE\n").find("NAME=VALUE"), std::string::npos);
  EXPECT_NE(parseError("\n\n#KBATCH --image\n").find("job.pbs:3"), std::string::npos);
  EXPECT_NE(parseError("#KBATCH image\n").find("unexpected 'image'"), std::string::npos);
}

TEST(Json, FieldsAndNulls) {
  std::string json = jobSpecToJson(parse("#PBS -N j\n#PBS -l nodes=1:ppn=2\necho\n"), -1);
  EXPECT_NE(json.find("\"name\":\"j\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mem_bytes\":null"), std::string::npos);
  EXPECT_NE(json.find("\"ppn\":2"), std::string::npos);
  EXPECT_NE(json.find("\"needs_container\":false"), std::string::npos);
  EXPECT_NE(json.find("\"image\":null"), std::string::npos);
  EXPECT_NE(json.find("\"line\":2"), std::string::npos);
  EXPECT_NE(json.find("\"passthrough_options\":[]"), std::string::npos);
}

TEST(File, ReadsAndNamesTheFile) {
  ParseOptions options;
  std::string path = std::string(KBATCH_SOURCE_DIR) + "/tests/fixtures/scripts/fib.pbs";
  JobSpec spec = parseJobScriptFile(path, options);
  EXPECT_EQ(spec.script_path, path);
  EXPECT_EQ(spec.name, "fib");
  EXPECT_EQ(spec.resources.walltime_s, 300u);
  EXPECT_FALSE(spec.needs_container);
  try {
    parseJobScriptFile("/nonexistent/x.pbs", options);
    FAIL() << "expected an Error";
  } catch (const Error& error) {
    EXPECT_EQ(error.exitCode(), exit_code::kNotFound);
  }
}

}  // namespace
}  // namespace kbatch::rewrite
