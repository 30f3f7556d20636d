// Which registries `--insecure` may reach over plain HTTP: loopback ones, and the hosts the site
// policy lists; never any other host, and never without the flag.

#include <gtest/gtest.h>

#include "kbatch/common/error.h"
#include "registry_client.h"

namespace kbatch::image {
namespace {

TEST(PlainHttp, NeverWithoutTheInsecureFlag) {
  EXPECT_FALSE(allowPlainHttp("127.0.0.1:5000", false, {}));
  EXPECT_FALSE(allowPlainHttp("registry.site:5000", false, {"registry.site:5000"}));
}

TEST(PlainHttp, LoopbackRegistriesAreAllowed) {
  EXPECT_TRUE(allowPlainHttp("127.0.0.1:5000", true, {}));
  EXPECT_TRUE(allowPlainHttp("127.1.2.3", true, {}));
  EXPECT_TRUE(allowPlainHttp("localhost:5000", true, {}));
  EXPECT_TRUE(allowPlainHttp("[::1]:5000", true, {}));
}

TEST(PlainHttp, SiteListedHostsAreAllowed) {
  EXPECT_TRUE(allowPlainHttp("registry.site:5000", true, {"other:1", "registry.site:5000"}));
}

TEST(PlainHttp, OtherHostsAreRefusedNamingThePolicySetting) {
  try {
    allowPlainHttp("registry.site:5000", true, {"registry.site:5001"});
    FAIL() << "plain HTTP allowed for an unlisted host";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("site.insecure_registries"), std::string::npos)
        << error.what();
  }
  // Look-alikes of loopback addresses are not loopback.
  EXPECT_THROW(allowPlainHttp("128.0.0.1:5000", true, {}), Error);
  EXPECT_THROW(allowPlainHttp("127.0.0.1.example:5000", true, {}), Error);
  EXPECT_THROW(allowPlainHttp("localhost.example:5000", true, {}), Error);
}

}  // namespace
}  // namespace kbatch::image
