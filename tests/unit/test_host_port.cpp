// host:port text: the one parser and writer of the core.
#include "dwrtc/host_port.h"

#include <gtest/gtest.h>

namespace dwrtc {
namespace {

HostPort parsed(std::string_view text) {
    HostPort out;
    EXPECT_TRUE(parseHostPort(text, out)) << text;
    return out;
}

TEST(HostPort, ParsesNamesIpv4AndBracketedIpv6) {
    EXPECT_EQ(parsed("node1.example.org:4222").host, "node1.example.org");
    EXPECT_EQ(parsed("node1.example.org:4222").port, 4222u);
    EXPECT_EQ(parsed("127.0.0.1:1").host, "127.0.0.1");
    EXPECT_EQ(parsed("127.0.0.1:65535").port, 65535u);
    EXPECT_EQ(parsed("[::1]:4230").host, "::1");
    EXPECT_EQ(parsed("[fe80::1%eth0]:80").host, "fe80::1%eth0");
}

TEST(HostPort, RefusesWhatIsNotHostColonPort) {
    HostPort out;
    for (std::string_view bad :
         {"", "host", "host:", ":4222", "host:0", "host:65536", "host:99999999", "host:42a",
          "host:-1", "host: 42", "::1:4222", "[::1]", "[::1]4222", "[::1:4222", "[]:4222"}) {
        EXPECT_FALSE(parseHostPort(bad, out)) << bad;
    }
}

TEST(BootstrapEntry, TakesAPortOrARangeOfAtMost64) {
    BootstrapTarget t;
    ASSERT_TRUE(parseBootstrapEntry("node-1.example.org:4222", t));
    EXPECT_EQ(t.host, "node-1.example.org");
    EXPECT_EQ(t.portFrom, 4222u);
    EXPECT_EQ(t.portTo, 4222u);
    ASSERT_TRUE(parseBootstrapEntry("node-1.example.org:4222-4285", t));
    EXPECT_EQ(t.host, "node-1.example.org");
    EXPECT_EQ(t.portFrom, 4222u);
    EXPECT_EQ(t.portTo, 4285u);
    ASSERT_TRUE(parseBootstrapEntry("[::1]:4222-4223", t));
    EXPECT_EQ(t.host, "::1");
    EXPECT_EQ(t.portTo, 4223u);
    ASSERT_TRUE(parseBootstrapEntry("10.0.0.1:4222-4222", t));
    EXPECT_EQ(t.portFrom, t.portTo);
    for (std::string_view bad :
         {"host:4222-", "host:-4222", "host:4225-4222", "host:4222-4286", "host:4222-99999",
          "host:4222-42a", "host:4222--4223", "host", "host:4222-4223-4224"}) {
        EXPECT_FALSE(parseBootstrapEntry(bad, t)) << bad;
    }
}

TEST(LinkUrl, TakesOnlyWss) {
    HostPort out;
    ASSERT_TRUE(parseLinkUrl("wss://10.1.2.3:4230", out));
    EXPECT_EQ(out.host, "10.1.2.3");
    EXPECT_EQ(out.port, 4230u);
    ASSERT_TRUE(parseLinkUrl("wss://[2001:db8::7]:4231/", out));
    EXPECT_EQ(out.host, "2001:db8::7");
    EXPECT_EQ(out.port, 4231u);
    EXPECT_FALSE(parseLinkUrl("ws://10.1.2.3:4230", out));  // no plain links
    EXPECT_FALSE(parseLinkUrl("https://10.1.2.3:4230", out));
    EXPECT_FALSE(parseLinkUrl("wss://10.1.2.3", out));
    EXPECT_FALSE(parseLinkUrl("wss://", out));
}

TEST(HostPort, WritesBracketsAroundIpv6Only) {
    EXPECT_EQ(formatHostPort("call.example.com", 4230), "call.example.com:4230");
    EXPECT_EQ(formatHostPort("::1", 4230), "[::1]:4230");
    EXPECT_EQ(formatHostPort("[::1]", 4230), "[::1]:4230");
    HostPort back;
    ASSERT_TRUE(parseHostPort(formatHostPort("2001:db8::1", 9), back));
    EXPECT_EQ(back.host, "2001:db8::1");
    EXPECT_EQ(back.port, 9u);
}

}  // namespace
}  // namespace dwrtc
