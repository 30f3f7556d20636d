#include "kbatch/k8s/log_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kbatch::k8s {
namespace {

struct Collected {
  std::vector<std::string> lines;
  TimestampedLogReader::LineSink sink() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
};

TEST(Rfc3339, ParsesGoRfc3339NanoAndOffsets) {
  EXPECT_EQ(parseRfc3339Nanos("1970-01-01T00:00:01Z"), 1000000000);
  EXPECT_EQ(parseRfc3339Nanos("1970-01-01T00:00:01.5Z"), 1500000000);
  EXPECT_EQ(parseRfc3339Nanos("1970-01-01T00:00:01.000000001Z"), 1000000001);
  EXPECT_EQ(parseRfc3339Nanos("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(parseRfc3339Nanos("1970-01-01T00:00:00"), -1);
  EXPECT_EQ(parseRfc3339Nanos("not a time at all!!"), -1);
}

TEST(LogReader, StripsTimestampsAndJoinsSplitChunks) {
  TimestampedLogReader reader;
  Collected out;
  reader.beginConnection();
  reader.feed("2026-01-01T00:00:00.1Z hel", out.sink());
  reader.feed("lo\n2026-01-01T00:00:00.2Z world\n", out.sink());
  reader.endConnection(true, out.sink());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"hello\n", "world\n"}));
  EXPECT_EQ(reader.resumeSinceTime(), "2026-01-01T00:00:00Z");
}

TEST(LogReader, ResumeAfterACutNeitherDuplicatesNorLoses) {
  TimestampedLogReader reader;
  Collected out;
  reader.beginConnection();
  reader.feed("2026-01-01T00:00:05.1Z a\n2026-01-01T00:00:05.2Z b\n2026-01-01T00:00:05.3Z par",
              out.sink());
  reader.endConnection(false, out.sink());  // cut mid-line: "par" is dropped, resent later
  EXPECT_EQ(reader.resumeSinceTime(), "2026-01-01T00:00:05Z");
  // The server repeats the whole second since sinceTime.
  reader.beginConnection();
  reader.feed("2026-01-01T00:00:05.1Z a\n2026-01-01T00:00:05.2Z b\n2026-01-01T00:00:05.3Z partial\n"
              "2026-01-01T00:00:06Z c\n",
              out.sink());
  reader.endConnection(true, out.sink());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"a\n", "b\n", "partial\n", "c\n"}));
}

TEST(LogReader, LinesSharingOneTimestampAreCountedNotDropped) {
  TimestampedLogReader reader;
  Collected out;
  reader.beginConnection();
  reader.feed("2026-01-01T00:00:07Z x\n2026-01-01T00:00:07Z x\n", out.sink());
  reader.endConnection(false, out.sink());
  reader.beginConnection();
  // Three lines at that instant exist; two were delivered.
  reader.feed("2026-01-01T00:00:07Z x\n2026-01-01T00:00:07Z x\n2026-01-01T00:00:07Z x\n",
              out.sink());
  reader.endConnection(true, out.sink());
  EXPECT_EQ(out.lines.size(), 3u);
  EXPECT_EQ(reader.deliveredLines(), 3u);
}

TEST(LogReader, ALastLineWithoutNewlineIsDeliveredOnlyAtTheRealEnd) {
  TimestampedLogReader reader;
  Collected out;
  reader.beginConnection();
  reader.feed("2026-01-01T00:00:00Z no newline", out.sink());
  reader.endConnection(true, out.sink());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"no newline"}));
}

}  // namespace
}  // namespace kbatch::k8s
