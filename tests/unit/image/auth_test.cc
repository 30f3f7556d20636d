#include "auth.h"

#include <gtest/gtest.h>

#include "kbatch/common/error.h"

namespace kbatch::image {
namespace {

TEST(AuthConfigTest, DecodesBase64AuthForHost) {
  std::string config = R"({"auths": {"registry.example.org:5000": {"auth": ")" +
                       base64Encode("alice:s3cr:et") + R"("}}})";
  auto credentials = parseAuthConfig(config, "registry.example.org:5000", "config.json");
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->username, "alice");
  EXPECT_EQ(credentials->password, "s3cr:et");  // only the first colon separates
}

TEST(AuthConfigTest, MatchesKeysWrittenAsUrls) {
  std::string config = R"({"auths": {"https://Reg.Example.org/v1/": {"username": "bob", "password": "pw"}}})";
  auto credentials = parseAuthConfig(config, "reg.example.org", "config.json");
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->username, "bob");
  EXPECT_EQ(credentials->password, "pw");
  EXPECT_FALSE(parseAuthConfig(config, "other.example.org", "config.json").has_value());
  EXPECT_FALSE(parseAuthConfig("{}", "reg.example.org", "config.json").has_value());
}

TEST(AuthConfigTest, ReportsMalformedFilesByField) {
  try {
    parseAuthConfig(R"({"auths": {"h": {"auth": "!!!"}}})", "h", "/home/u/.docker/config.json");
    FAIL() << "invalid base64 accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("auths.h.auth"), std::string::npos) << error.what();
  }
  try {
    parseAuthConfig(R"({"auths": {"h": {"auth": ")" + base64Encode("nocolon") + R"("}}})", "h", "f");
    FAIL() << "auth without colon accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("user:password"), std::string::npos) << error.what();
  }
  EXPECT_THROW(parseAuthConfig("[1,2]", "h", "f"), Error);
  EXPECT_THROW(parseAuthConfig(R"({"auths": []})", "h", "f"), Error);
}

TEST(Base64Test, RoundTripsAllPaddingLengths) {
  for (std::string text : {"", "a", "ab", "abc", "abcd", "user:pass\xff"}) {
    EXPECT_EQ(base64Decode(base64Encode(text), "t"), text);
  }
  EXPECT_EQ(base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_THROW(base64Decode("a=b", "t"), Error);
}

TEST(AuthChallengeTest, ParsesBearerChallenge) {
  auto challenge = parseAuthChallenge(
      R"(Bearer realm="https://auth.example.org/token",service="registry.example.org",scope="repository:team/app:pull")");
  EXPECT_EQ(challenge.scheme, "bearer");
  EXPECT_EQ(challenge.parameters["realm"], "https://auth.example.org/token");
  EXPECT_EQ(challenge.parameters["service"], "registry.example.org");
  EXPECT_EQ(challenge.parameters["scope"], "repository:team/app:pull");
}

TEST(AuthChallengeTest, ParsesBasicAndUnquotedValues) {
  auto challenge = parseAuthChallenge(R"(Basic realm="Registry Realm", charset=UTF-8)");
  EXPECT_EQ(challenge.scheme, "basic");
  EXPECT_EQ(challenge.parameters["realm"], "Registry Realm");
  EXPECT_EQ(challenge.parameters["charset"], "UTF-8");
  EXPECT_THROW(parseAuthChallenge(R"(Bearer realm="unterminated)"), Error);
  EXPECT_THROW(parseAuthChallenge(""), Error);
}

}  // namespace
}  // namespace kbatch::image
