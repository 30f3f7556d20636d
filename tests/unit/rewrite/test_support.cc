#include "test_support.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace kbatch::rewrite::testing {

std::string readFixture(const std::string& name) {
  std::string path = std::string(KBATCH_SOURCE_DIR) + "/tests/fixtures/scripts/" + name;
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("missing fixture " + path);
  return std::string((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
}

std::string makeTemporaryDirectory() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                        "/kbatch-rewrite-test.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

}  // namespace kbatch::rewrite::testing
