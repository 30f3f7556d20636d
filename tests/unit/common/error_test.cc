#include "kbatch/common/error.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace kbatch {
namespace {

TEST(Error, OneLineNamesActionObjectCauseContextAndHint) {
  Error error("parse job script", "job.pbs", "line 3: expected -l RESOURCE=VALUE",
              "see `kbatch help parse`", exit_code::kKbatchError);
  error.addContext("rewriting for qsub");
  EXPECT_EQ(error.oneLine(),
            "kbatch: parse job script 'job.pbs': line 3: expected -l RESOURCE=VALUE "
            "(while rewriting for qsub) (hint: see `kbatch help parse`)");
  EXPECT_EQ(error.exitCode(), 125);
}

TEST(Error, OneLineStaysOneLineWhenCauseHasNewlines) {
  Error error("load policy", "/etc/kbatch/policy.yaml", "bad\nvalue\r");
  EXPECT_EQ(error.oneLine().find('\n'), std::string::npos);
  EXPECT_EQ(error.oneLine().find('\r'), std::string::npos);
}

TEST(Error, DescribeErrnoNamesTheConstant) {
  EXPECT_NE(describeErrno(EACCES).find("EACCES"), std::string::npos);
}

}  // namespace
}  // namespace kbatch
