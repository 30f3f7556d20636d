#pragma once
// Test fixtures for the dependency resolver: a scratch directory in which small C libraries and
// programs are compiled with chosen sonames, RPATH/RUNPATH and dependencies.

#include <filesystem>
#include <string>
#include <vector>

namespace kbatch::image::testing {

/// A temporary directory, removed with everything in it when the object goes away.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Compiles a shared library at `output` exporting `int <symbol>(void)` returning `value` plus
/// the sum of the given dependencies' functions. `link_flags` are passed to the linker
/// (e.g. "-L dir -lfoo -Wl,-rpath,..."). Fails the test (throws) if the compiler fails.
void compileLibrary(const std::filesystem::path& output, const std::string& soname,
                    const std::string& symbol, int value,
                    const std::vector<std::string>& calls, const std::string& link_flags);

/// Compiles a program calling the given functions and printing "result <sum>".
void compileProgram(const std::filesystem::path& output, const std::vector<std::string>& calls,
                    const std::string& link_flags);

/// Runs a shell command (trusted, test-only); returns its exit status and stdout.
std::pair<int, std::string> runCommand(const std::string& command);

/// The libraries `ldd` (the oracle, for tests only) reports: "name => path" or "name => not
/// found" strings, without linux-vdso and the interpreter line.
std::vector<std::string> lddLines(const std::filesystem::path& binary,
                                  const std::string& environment = "");

/// Shell-quotes a string.
std::string quote(const std::string& text);

}  // namespace kbatch::image::testing
