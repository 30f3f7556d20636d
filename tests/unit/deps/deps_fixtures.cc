#include "deps_fixtures.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kbatch::image::testing {

namespace fs = std::filesystem;

ScratchDir::ScratchDir() {
  std::string pattern = (fs::temp_directory_path() / "kbatch-deps-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

std::pair<int, std::string> runCommand(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  std::string output;
  char buffer[4096];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
}

namespace {

void compile(const fs::path& source, const fs::path& output, const std::string& flags) {
  std::string command = std::string(KBATCH_TEST_CC) + " -o " + quote(output.string()) + " " +
                        quote(source.string()) + " " + flags + " 2>&1";
  auto [status, text] = runCommand(command);
  if (status != 0) throw std::runtime_error("compile failed: " + command + "\n" + text);
}

std::string declarations(const std::vector<std::string>& calls) {
  std::string text;
  for (const auto& call : calls) text += "int " + call + "(void);\n";
  return text;
}

std::string sumOf(const std::vector<std::string>& calls) {
  std::string text = "0";
  for (const auto& call : calls) text += " + " + call + "()";
  return text;
}

}  // namespace

void compileLibrary(const fs::path& output, const std::string& soname, const std::string& symbol,
                    int value, const std::vector<std::string>& calls,
                    const std::string& link_flags) {
  fs::path source = output.string() + ".c";
  std::ofstream(source) << declarations(calls) << "int " << symbol << "(void) { return " << value
                        << " + " << sumOf(calls) << "; }\n";
  compile(source, output,
          "-shared -fPIC -Wl,-soname," + soname + " " + link_flags);
  fs::remove(source);
}

void compileProgram(const fs::path& output, const std::vector<std::string>& calls,
                    const std::string& link_flags) {
  fs::path source = output.string() + ".c";
  std::ofstream(source) << "#include <stdio.h>\n"
                        << declarations(calls) << "int main(void) { printf(\"result %d\\n\", "
                        << sumOf(calls) << "); return 0; }\n";
  compile(source, output, link_flags);
  fs::remove(source);
}

std::vector<std::string> lddLines(const fs::path& binary, const std::string& environment) {
  auto [status, output] = runCommand(environment + " ldd " + quote(binary.string()) + " 2>&1");
  std::vector<std::string> lines;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    auto arrow = line.find(" => ");
    if (arrow == std::string::npos) continue;  // vdso, interpreter, "statically linked"
    std::string name = line.substr(line.find_first_not_of(" \t"), arrow - line.find_first_not_of(" \t"));
    std::string rest = line.substr(arrow + 4);
    std::string path = rest.rfind("not found", 0) == 0 ? "not found" : rest.substr(0, rest.find(" ("));
    lines.push_back(name + " => " + path);
  }
  return lines;
}

}  // namespace kbatch::image::testing
