#include "kbatch/rewrite/rewriter.h"

#include <gtest/gtest.h>

#include <string>

using namespace std::string_literals;

#include "kbatch/common/base64.h"
#include "kbatch/rewrite/encoding.h"
#include "test_support.h"

namespace kbatch::rewrite {
namespace {

constexpr char kKbatch[] = "/opt/kbatch/bin/kbatch";

RewriteOptions kbatchAt(const std::string& path) {
  RewriteOptions options;
  options.kbatch_path = path;
  return options;
}

RewriteResult rewrite(std::string_view content, std::vector<std::string> command_line = {}) {
  ParseOptions options;
  options.file_name = "job.pbs";
  options.command_line = std::move(command_line);
  return rewriteJobScript(content, options, kbatchAt(kKbatch));
}

/// The base64 lines between the exec line and the delimiter, decoded by hand (not through
/// decodeRewrittenScript) so the test checks the format, not the library against itself.
std::string decodeBodyByHand(const std::string& script) {
  std::size_t open = script.find("<<'KBATCH_JOB_BODY_");
  EXPECT_NE(open, std::string::npos);
  std::size_t line_end = script.find('\n', open);
  std::string delimiter = script.substr(open + 3, line_end - open - 4);
  std::size_t close = script.find("\n" + delimiter + "\n", line_end);
  EXPECT_NE(close, std::string::npos);
  std::string base64 = script.substr(line_end + 1, close - line_end);
  for (std::size_t pos = 0; pos < base64.size();) {
    std::size_t newline = base64.find('\n', pos);
    EXPECT_LE(newline - pos, 76u);
    pos = newline + 1;
  }
  auto body = decodeBase64(base64);
  EXPECT_TRUE(body.has_value());
  return body.value_or("");
}

TEST(Encoding, Base64RoundTripAndRfcVectors) {
  EXPECT_EQ(encodeBase64("", 0), "");
  EXPECT_EQ(encodeBase64("f", 0), "Zg==");
  EXPECT_EQ(encodeBase64("fo", 0), "Zm8=");
  EXPECT_EQ(encodeBase64("foobar", 0), "Zm9vYmFy");
  EXPECT_EQ(decodeBase64("Zm9vYg=="), "foob");
  EXPECT_FALSE(decodeBase64("Zm9").has_value());
  EXPECT_FALSE(decodeBase64("Zm9=Zm9v").has_value());
  EXPECT_FALSE(decodeBase64("Zh==").has_value());  // non-zero padding bits
  EXPECT_FALSE(decodeBase64("Zm 9v").has_value());
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(decodeBase64(encodeBase64(all)), all);
  // FIPS 180-4 / NIST test vectors, including the one- and two-block padding edges.
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha256Hex(std::string(55, 'x')).size(), 64u);
  EXPECT_EQ(quoteShellWord("/usr/bin/x"), "/usr/bin/x");
  EXPECT_EQ(quoteShellWord("it's"), "'it'\\''s'");
  EXPECT_EQ(quoteShellWord(""), "''");
}

TEST(Rewrite, NativeJobPassesThroughByteForByte) {
  for (const char* name : {"fib.pbs", "continued.pbs", "malformed_walltime.pbs"}) {
    if (std::string(name) == "malformed_walltime.pbs") continue;  // refused, tested elsewhere
    std::string original = testing::readFixture(name);
    RewriteResult result = rewrite(original);
    EXPECT_FALSE(result.rewritten) << name;
    EXPECT_EQ(result.script, original) << name;
  }
  std::string weird = "#!/bin/sh\r\n\xff\xfe no directives\n\0 nul"s;
  EXPECT_EQ(rewrite(weird).script, weird);
}

TEST(Rewrite, ContainerJobLayout) {
  std::string original = testing::readFixture("container.pbs");
  RewriteResult result = rewrite(original);
  ASSERT_TRUE(result.rewritten);
  const std::string& script = result.script;
  std::size_t body_at = original.find("set -euo pipefail");
  std::string header = original.substr(0, body_at);
  std::string body = original.substr(body_at);
  // Shebang and every directive kept, in place.
  EXPECT_EQ(script.substr(0, header.size()), header);
  std::string rest = script.substr(header.size());
  EXPECT_EQ(rest.substr(0, rest.find('\n')), "#KBATCH-REWRITTEN v1 sha256=" + sha256Hex(body));
  std::string exec_line = rest.substr(rest.find('\n') + 1);
  exec_line = exec_line.substr(0, exec_line.find('\n'));
  EXPECT_EQ(exec_line,
            "exec /opt/kbatch/bin/kbatch exec --job-body=base64 --image "
            "registry.example.org/ml/pytorch:2.1 --backend local --bind /scratch:/scratch "
            "--bind /datasets:/data:ro --env OMP_NUM_THREADS=4 --cpus 4 --memory 17179869184 "
            "--walltime 7200 --gpus 1 -- /bin/bash -l <<'KBATCH_JOB_BODY_" +
                sha256Hex(body).substr(0, 16) + "'");
  EXPECT_EQ(decodeBodyByHand(script), body);
  EXPECT_EQ(script.substr(script.size() - 33), "KBATCH_JOB_BODY_" + sha256Hex(body).substr(0, 16) + "\n");
}

TEST(Rewrite, BodyPreservedForHostileBodies) {
  const std::string header = "#!/bin/bash\n#KBATCH --image debian:12\n";
  const std::vector<std::string> bodies = {
      "echo \"double\" 'single' `back` $HOME ${X:-y} \\ \\\\ \\n\n",
      "cat <<EOF\n$expanded\nEOF\ncat <<'KBATCH_JOB_BODY_0000000000000000'\nfake delimiter\n"
      "KBATCH_JOB_BODY_0000000000000000\n",
      "echo crlf\r\necho more\r\n",
      "printf '\\xff'\n\xff\xfe\xc3\x28\x80 not utf-8\n",
      std::string("nul \0 byte\n", 11),
      "no trailing newline",
      "x",
      "'",
      "echo x\n\n\n",  // blank lines before a command would belong to the header
      "echo $((1+2)) ; exit 3\n",
      std::string(10000, 'a') + "\n",
  };
  for (const auto& body : bodies) {
    RewriteResult result = rewrite(header + body);
    ASSERT_TRUE(result.rewritten);
    EXPECT_EQ(decodeBodyByHand(result.script), body);
    auto decoded = decodeRewrittenScript(result.script);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->body, body);
    EXPECT_EQ(decoded->header, header);
  }
}

TEST(Rewrite, FixtureBodiesSurviveExactly) {
  for (const char* name : {"crlf_body.pbs", "non_utf8.pbs", "fib_binary.pbs", "slurm.sbatch"}) {
    std::string original = testing::readFixture(name);
    RewriteResult result = rewrite(original);
    ASSERT_TRUE(result.rewritten) << name;
    auto decoded = decodeRewrittenScript(result.script);
    ASSERT_TRUE(decoded.has_value()) << name;
    EXPECT_EQ(original.substr(original.size() - decoded->body.size()), decoded->body) << name;
    EXPECT_EQ(decodeBodyByHand(result.script), decoded->body) << name;
  }
}

TEST(Rewrite, Idempotent) {
  for (const char* name : {"container.pbs", "fib_binary.pbs", "crlf_body.pbs", "slurm.sbatch"}) {
    std::string once = rewrite(testing::readFixture(name)).script;
    RewriteResult twice = rewrite(once);
    EXPECT_FALSE(twice.rewritten) << name;
    EXPECT_TRUE(twice.already_rewritten) << name;
    EXPECT_EQ(twice.script, once) << name;
  }
}

TEST(Rewrite, PbsBinaryBecomesKbatchFromBinary) {
  RewriteResult result = rewrite(testing::readFixture("fib_binary.pbs"));
  ASSERT_TRUE(result.rewritten);
  EXPECT_EQ(result.script.find("#PBS -B"), std::string::npos);
  EXPECT_NE(result.script.find("\n#KBATCH --from-binary ./a.out\n#KBATCH-REWRITTEN"),
            std::string::npos);
  EXPECT_NE(result.script.find("--from-binary ./a.out --cpus 2 --memory 536870912 --walltime 600 "
                               "-- /bin/bash <<'"),
            std::string::npos)
      << result.script;
  // The rewritten script reads back with the binary recorded as kbatch's own directive.
  ParseOptions options;
  JobSpec again = parseJobScript(result.script, options);
  EXPECT_EQ(again.binary, "./a.out");
  EXPECT_EQ(again.name, "fib-binary");
}

TEST(Rewrite, BinaryMixedWithOtherOptionsKeepsThem) {
  RewriteResult result = rewrite("#PBS -N mix -VB '/opt/my app' -q fast\necho\n");
  ASSERT_TRUE(result.rewritten);
  EXPECT_EQ(result.script.substr(0, result.script.find("#KBATCH-REWRITTEN")),
            "#PBS -N mix -V -q fast\n#KBATCH --from-binary '/opt/my app'\n");
  ParseOptions options;
  JobSpec again = parseJobScript(result.script, options);
  EXPECT_EQ(again.binary, "/opt/my app");
  EXPECT_EQ(again.passthrough_options, (std::vector<std::string>{"-V", "-q fast"}));
}

TEST(Rewrite, ContinuedBinaryDirectiveIsJoined) {
  RewriteResult result = rewrite("#PBS -N c \\\n  -B ./solver\necho\n");
  EXPECT_EQ(result.script.substr(0, result.script.find("#KBATCH-REWRITTEN")),
            "#PBS -N c   \n#KBATCH --from-binary ./solver\n");
}

TEST(Rewrite, CommandLineBinaryIsRecorded) {
  RewriteResult result = rewrite("#!/bin/sh\n#PBS -N cl\necho\n", {"-B", "/usr/bin/solver", "x.pbs"});
  ASSERT_TRUE(result.rewritten);
  EXPECT_EQ(result.script.substr(0, result.script.find("#KBATCH-REWRITTEN")),
            "#!/bin/sh\n#PBS -N cl\n#KBATCH --from-binary /usr/bin/solver\n");
  EXPECT_NE(result.script.find("-- /bin/sh <<'"), std::string::npos);
}

TEST(Rewrite, ShellChoice) {
  auto execLine = [](const std::string& script) {
    std::size_t at = script.find("\nexec ");
    return script.substr(at + 1, script.find('\n', at + 1) - at - 1);
  };
  EXPECT_NE(execLine(rewrite("#KBATCH --image a\necho\n").script).find("-- /bin/sh <<"),
            std::string::npos);
  EXPECT_NE(execLine(rewrite("#!/usr/bin/env python3\n#KBATCH --image a\nprint(1)\n").script)
                .find("-- /usr/bin/env python3 <<"),
            std::string::npos);
  EXPECT_NE(execLine(rewrite("#!/bin/bash\n#PBS -S /bin/zsh\n#KBATCH --image a\necho\n").script)
                .find("-- /bin/zsh <<"),
            std::string::npos);
}

TEST(Rewrite, HeaderWithoutTrailingNewline) {
  RewriteResult result = rewrite("#KBATCH --image a");
  auto decoded = decodeRewrittenScript(result.script);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->header, "#KBATCH --image a\n");
  EXPECT_EQ(decoded->body, "");
}

TEST(Rewrite, DamagedRewrittenScriptIsRefused) {
  std::string script = rewrite(testing::readFixture("container.pbs")).script;
  std::string tampered = script;
  std::size_t base64_at = tampered.find('\n', tampered.find("\nexec ") + 1) + 1;
  tampered[base64_at] = tampered[base64_at] == 'A' ? 'B' : 'A';
  EXPECT_THROW(rewrite(tampered), ScriptError);
  std::string truncated = script.substr(0, script.size() - 10);
  EXPECT_THROW(rewrite(truncated), ScriptError);
  EXPECT_THROW(decodeRewrittenScript(script + "echo appended\n"), ScriptError);
}

TEST(Rewrite, RelativeKbatchPathIsRefused) {
  ParseOptions options;
  EXPECT_THROW(rewriteJobScript("#KBATCH --image a\necho\n", options, kbatchAt("kbatch")),
               Error);
}

TEST(Rewrite, NoMarkerMeansNotRewritten) {
  EXPECT_FALSE(decodeRewrittenScript("#!/bin/sh\n#KBATCH --image a\necho\n"));
  // A marker-like line where kbatch never writes one is not taken for a rewritten script.
  std::string native = "#!/bin/sh\necho\ncat <<EOF\n#KBATCH-REWRITTEN v1 sha256=00\nEOF\n";
  EXPECT_EQ(rewrite(native).script, native);
}

}  // namespace
}  // namespace kbatch::rewrite

namespace kbatch::rewrite {
namespace {

TEST(Rewrite, DetectedBinaryIsRecordedAndRewritingStaysIdempotent) {
  std::string script = "#!/bin/bash\n#PBS -N det\ncd $PBS_O_WORKDIR\n./solver in.dat\n";
  std::vector<std::string> seen_bodies;
  RewriteOptions options = kbatchAt(kKbatch);
  options.detect_binary = [&](const JobSpec& spec, std::string_view body) {
    seen_bodies.emplace_back(body);
    EXPECT_FALSE(spec.needs_container);
    return std::optional<std::string>("./solver");
  };
  ParseOptions parse_options;
  RewriteResult result = rewriteJobScript(script, parse_options, options);
  ASSERT_TRUE(result.rewritten);
  EXPECT_EQ(result.detected_binary, "./solver");
  EXPECT_EQ(seen_bodies, (std::vector<std::string>{"cd $PBS_O_WORKDIR\n./solver in.dat\n"}));
  EXPECT_EQ(result.script.substr(0, result.script.find("#KBATCH-REWRITTEN")),
            "#!/bin/bash\n#PBS -N det\n#KBATCH --from-binary ./solver\n");
  EXPECT_NE(result.script.find("exec /opt/kbatch/bin/kbatch exec --job-body=base64 --from-binary "
                               "./solver -- /bin/bash <<'"),
            std::string::npos)
      << result.script;
  // Rewriting the result again changes nothing, and the detector is not asked: the job already
  // names its binary.
  RewriteResult again = rewriteJobScript(result.script, parse_options, options);
  EXPECT_TRUE(again.already_rewritten);
  EXPECT_EQ(again.script, result.script);
  EXPECT_EQ(seen_bodies.size(), 1u);
}

TEST(Rewrite, DetectorThatFindsNothingLeavesTheScriptAlone) {
  std::string script = "#PBS -N plain\necho hi\n";
  RewriteOptions options = kbatchAt(kKbatch);
  options.detect_binary = [](const JobSpec&, std::string_view) {
    return std::optional<std::string>();
  };
  ParseOptions parse_options;
  RewriteResult result = rewriteJobScript(script, parse_options, options);
  EXPECT_FALSE(result.rewritten);
  EXPECT_EQ(result.script, script);
}

TEST(Encoding, Sha256MatchesOpenSslOnEveryTailLength) {
  // Lengths around the 55/56/64-byte padding boundaries, against known digests of 'a' * n.
  EXPECT_EQ(sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256Hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

}  // namespace
}  // namespace kbatch::rewrite
