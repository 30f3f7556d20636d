#include "kbatch/common/base64.h"

#include <gtest/gtest.h>

namespace kbatch {
namespace {

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(encodeBase64(""), "");
  EXPECT_EQ(encodeBase64("f"), "Zg==");
  EXPECT_EQ(encodeBase64("fo"), "Zm8=");
  EXPECT_EQ(encodeBase64("foo"), "Zm9v");
  EXPECT_EQ(encodeBase64("foob"), "Zm9vYg==");
  EXPECT_EQ(encodeBase64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encodeBase64("foobar"), "Zm9vYmFy");
}

TEST(Base64, BreaksLines) {
  EXPECT_EQ(encodeBase64("foobar", 4), "Zm9v\nYmFy\n");
  EXPECT_EQ(encodeBase64("fooba", 4), "Zm9v\nYmE=\n");
}

TEST(Base64, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(decodeBase64(encodeBase64(all)), all);
  EXPECT_EQ(decodeBase64(encodeBase64(all, 76)), all);
  EXPECT_EQ(decodeBase64("Zm9v\r\nYmFy\r\n"), "foobar");
}

TEST(Base64, RefusesAnythingButCanonicalText) {
  EXPECT_FALSE(decodeBase64("Zm9").has_value());        // length not a multiple of 4
  EXPECT_FALSE(decodeBase64("Zm9=Zm9v").has_value());   // data after padding
  EXPECT_FALSE(decodeBase64("Zh==").has_value());       // non-zero padding bits
  EXPECT_FALSE(decodeBase64("Zm 9v").has_value());      // a space
  EXPECT_FALSE(decodeBase64("Zm9v-_==").has_value());   // the URL alphabet
  EXPECT_FALSE(decodeBase64("Z===").has_value());       // too much padding
}

}  // namespace
}  // namespace kbatch
