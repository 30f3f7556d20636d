// The resolver against ld.so itself: every scenario is also resolved by `ldd` (the oracle; these
// fixtures are our own trusted programs) and the two must agree exactly.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "deps_fixtures.h"
#include "kbatch/common/error.h"
#include "kbatch/image/deps.h"

namespace kbatch::image {
namespace {

namespace fs = std::filesystem;
using testing::quote;
using testing::ScratchDir;

std::vector<std::string> reportLines(const DependencyReport& report) {
  std::vector<std::string> lines;
  for (const auto& library : report.libraries) {
    if (library.found_via == FoundVia::kPluginDir) continue;
    lines.push_back(library.name + " => " +
                    (library.missing() ? std::string("not found") : library.path->string()));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::vector<std::string> sorted(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Resolves `binary` and checks the result against ldd run with the same LD_LIBRARY_PATH.
DependencyReport expectAgreesWithLdd(const fs::path& binary,
                                     std::optional<std::string> ld_library_path = std::nullopt) {
  DependencyOptions options;
  options.ld_library_path = ld_library_path;
  DependencyReport report = resolveDependencies(binary, options);
  std::string environment =
      ld_library_path ? "LD_LIBRARY_PATH=" + quote(*ld_library_path) : "env -u LD_LIBRARY_PATH";
  EXPECT_EQ(reportLines(report), sorted(testing::lddLines(binary, environment)))
      << "for " << binary;
  return report;
}

const LibraryRecord& library(const DependencyReport& report, const std::string& name) {
  for (const auto& record : report.libraries) {
    if (record.name == name) return record;
  }
  throw std::runtime_error("no record for " + name);
}

/// lib<base>.so.1 (real file) and lib<base>.so (link for -l<base>) in `dir`.
void makeLibrary(const fs::path& dir, const std::string& base, int value,
                 const std::vector<std::string>& calls = {}, const std::string& flags = "") {
  fs::create_directories(dir);
  testing::compileLibrary(dir / ("lib" + base + ".so.1"), "lib" + base + ".so.1", base, value,
                          calls, flags);
  fs::create_symlink("lib" + base + ".so.1", dir / ("lib" + base + ".so"));
}

TEST(ResolverTest, AgreesWithLddOnOwnTestBinary) {
  auto report = expectAgreesWithLdd(fs::canonical("/proc/self/exe"));
  EXPECT_EQ(report.interpreter, fs::path("/lib64/ld-linux-x86-64.so.2"));
  EXPECT_TRUE(report.missingNames().empty());
  EXPECT_EQ(library(report, "libc.so.6").found_via, FoundVia::kLdCache);
}

TEST(ResolverTest, RunpathWithOriginFindsLibrariesBesideTheProgram) {
  ScratchDir dir;
  fs::path lib = dir / "lib";
  makeLibrary(lib, "dep", 1);
  makeLibrary(lib, "top", 2, {"dep"}, "-L" + lib.string() + " -ldep -Wl,--enable-new-dtags,-rpath,'$ORIGIN'");
  testing::compileProgram(dir / "prog", {"top"},
                          "-L" + lib.string() + " -ltop -Wl,--enable-new-dtags,-rpath,'$ORIGIN/lib'");
  auto report = expectAgreesWithLdd(dir / "prog");
  EXPECT_EQ(library(report, "libtop.so.1").found_via, FoundVia::kRunpath);
  EXPECT_EQ(library(report, "libdep.so.1").path, lib / "libdep.so.1");
  EXPECT_EQ(library(report, "libdep.so.1").needed_by,
            std::vector<std::string>{(lib / "libtop.so.1").string()});
}

TEST(ResolverTest, RunpathIsNotInheritedButRpathIs) {
  ScratchDir dir;
  fs::path lib = dir / "lib";
  makeLibrary(lib, "dep", 1);
  // libtop has no search path of its own: it relies on its loader's.
  makeLibrary(lib, "top", 2, {"dep"}, "-L" + lib.string() + " -ldep");
  testing::compileProgram(dir / "with_runpath", {"top"},
                          "-L" + lib.string() + " -ltop -Wl,--enable-new-dtags,-rpath," + lib.string());
  testing::compileProgram(dir / "with_rpath", {"top"},
                          "-L" + lib.string() + " -ltop -Wl,--disable-new-dtags,-rpath," + lib.string());
  auto runpath = expectAgreesWithLdd(dir / "with_runpath");
  EXPECT_TRUE(library(runpath, "libdep.so.1").missing());
  EXPECT_EQ(runpath.missingNames(), std::vector<std::string>{"libdep.so.1"});
  auto rpath = expectAgreesWithLdd(dir / "with_rpath");
  EXPECT_EQ(library(rpath, "libdep.so.1").found_via, FoundVia::kRpath);
}

TEST(ResolverTest, LdLibraryPathComesFromTheJobNotFromKbatch) {
  ScratchDir dir;
  fs::path lib = dir / "lib";
  makeLibrary(lib, "dep", 1);
  testing::compileProgram(dir / "prog", {"dep"}, "-L" + lib.string() + " -ldep");
  auto without = expectAgreesWithLdd(dir / "prog");
  EXPECT_EQ(without.missingNames(), std::vector<std::string>{"libdep.so.1"});
  auto with = expectAgreesWithLdd(dir / "prog", lib.string());
  EXPECT_EQ(library(with, "libdep.so.1").found_via, FoundVia::kLdLibraryPath);
}

TEST(ResolverTest, SkipsCandidatesOfTheWrongClass) {
  ScratchDir dir;
  fs::path lib = dir / "lib";
  makeLibrary(lib, "dep", 1);
  testing::compileProgram(dir / "prog", {"dep"}, "-L" + lib.string() + " -ldep");
  // A "32-bit" libdep.so.1 earlier in the path: same file with EI_CLASS set to ELFCLASS32.
  fs::create_directories(dir / "lib32");
  std::ifstream in(lib / "libdep.so.1", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes[4] = 1;
  std::ofstream(dir / "lib32/libdep.so.1", std::ios::binary).write(bytes.data(),
                                                                     static_cast<long>(bytes.size()));
  auto report = expectAgreesWithLdd(dir / "prog", (dir / "lib32").string() + ":" + lib.string());
  EXPECT_EQ(library(report, "libdep.so.1").path, lib / "libdep.so.1");
}

TEST(ResolverTest, RunpathLoopsTerminate) {
  ScratchDir dir;
  fs::path a = dir / "a", b = dir / "b";
  fs::create_directories(a);
  fs::create_directories(b);
  // liba needs libb (found through liba's RUNPATH b), libb needs liba (RUNPATH a): a cycle, plus
  // a RUNPATH entry that is a symlink to itself.
  fs::create_symlink(dir / "selfloop", dir / "selfloop");
  testing::compileLibrary(b / "libloopb.so.1", "libloopb.so.1", "loopb", 1, {}, "");
  testing::compileLibrary(a / "libloopa.so.1", "libloopa.so.1", "loopa", 2, {"loopb"},
                          (b / "libloopb.so.1").string() +
                              " -Wl,--enable-new-dtags,-rpath," + b.string() + ":" +
                              (dir / "selfloop").string());
  testing::compileLibrary(b / "libloopb.so.1", "libloopb.so.1", "loopb", 1, {"loopa"},
                          (a / "libloopa.so.1").string() + " -Wl,--enable-new-dtags,-rpath," +
                              a.string() + ":" + (dir / "selfloop").string());
  testing::compileProgram(dir / "prog", {"loopa"},
                          (a / "libloopa.so.1").string() + " -Wl,--enable-new-dtags,-rpath," +
                              a.string() + ":" + a.string());
  auto report = expectAgreesWithLdd(dir / "prog");
  EXPECT_TRUE(report.missingNames().empty());
  EXPECT_EQ(library(report, "libloopb.so.1").needed_by.size(), 1u);
}

TEST(ResolverTest, ExpandsLibAndPlatformTokens) {
  ScratchDir dir;
  makeLibrary(dir / "lib/x86_64-linux-gnu", "dep", 1);
  makeLibrary(dir / "x86_64", "top", 2);
  testing::compileProgram(
      dir / "prog", {"dep", "top"},
      "-L" + (dir / "lib/x86_64-linux-gnu").string() + " -L" + (dir / "x86_64").string() +
          " -ldep -ltop -Wl,--enable-new-dtags,-rpath,'$ORIGIN/$LIB:${ORIGIN}/${PLATFORM}'");
  auto report = expectAgreesWithLdd(dir / "prog");
  EXPECT_EQ(library(report, "libdep.so.1").path, dir / "lib/x86_64-linux-gnu/libdep.so.1");
  EXPECT_EQ(library(report, "libtop.so.1").path, dir / "x86_64/libtop.so.1");
}

TEST(ResolverTest, PluginDirectoriesAddTheirOwnClosure) {
  ScratchDir dir;
  makeLibrary(dir / "plugdeps", "plugdep", 5);
  fs::create_directories(dir / "plugins");
  testing::compileLibrary(dir / "plugins/myplugin.so", "myplugin.so", "plugin", 1, {"plugdep"},
                          "-L" + (dir / "plugdeps").string() +
                              " -lplugdep -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../plugdeps'");
  testing::compileProgram(dir / "prog", {}, "");
  DependencyOptions options;
  options.plugin_dirs = {dir / "plugins"};
  auto report = resolveDependencies(dir / "prog", options);
  ASSERT_EQ(report.plugins.size(), 1u);
  EXPECT_EQ(report.plugins[0], dir / "plugins/myplugin.so");
  // $ORIGIN of a library is the directory it was loaded from, without resolving symlinks.
  EXPECT_EQ(library(report, "libplugdep.so.1").path, dir / "plugins/../plugdeps/libplugdep.so.1");
  EXPECT_EQ(library(report, "libplugdep.so.1").found_via, FoundVia::kRunpath);
}

TEST(ResolverTest, SymlinkChainEndsAtTheRealFile) {
  ScratchDir dir;
  fs::path lib = dir / "lib";
  makeLibrary(lib, "dep", 1);
  fs::create_directory_symlink("lib", dir / "liblink");
  testing::compileProgram(dir / "prog", {"dep"},
                          "-L" + lib.string() + " -ldep -Wl,-rpath," + (dir / "liblink").string());
  auto report = expectAgreesWithLdd(dir / "prog");
  const auto& dep = library(report, "libdep.so.1");
  ASSERT_EQ(dep.symlink_chain.size(), 2u);
  EXPECT_EQ(dep.symlink_chain.front(), dir / "liblink/libdep.so.1");
  EXPECT_EQ(dep.symlink_chain.back(), lib / "libdep.so.1");
}

TEST(ResolverTest, StaticBinaryHasNoLibraries) {
  ScratchDir dir;
  auto [status, output] = testing::runCommand(
      "printf 'int main(void){return 0;}' > " + quote((dir / "s.c").string()) + " && " +
      KBATCH_TEST_CC + " -static -o " + quote((dir / "s").string()) + " " +
      quote((dir / "s.c").string()) + " 2>&1");
  ASSERT_EQ(status, 0) << output;
  auto report = resolveDependencies(dir / "s", {});
  EXPECT_TRUE(report.statically_linked());
  EXPECT_TRUE(report.libraries.empty());
}

TEST(ResolverTest, MalformedBinaryIsAnErrorNotACrash) {
  ScratchDir dir;
  std::ofstream(dir / "junk") << "\x7f" "ELF garbage that is not an ELF file at all";
  EXPECT_THROW(resolveDependencies(dir / "junk", {}), Error);
  EXPECT_THROW(resolveDependencies(dir / "absent", {}), Error);
}

}  // namespace
}  // namespace kbatch::image
