#pragma once
// Helpers shared by the rewrite tests.

#include <string>

namespace kbatch::rewrite::testing {

/// The bytes of tests/fixtures/scripts/<name>.
std::string readFixture(const std::string& name);

/// A fresh private directory under the test's temporary directory.
std::string makeTemporaryDirectory();

}  // namespace kbatch::rewrite::testing
