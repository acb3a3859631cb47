// Session ids: the node's 128-bit id, a dash, 64 bits from the CSPRNG.
#include "dwrtc/session_id.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>

namespace dwrtc {
namespace {

const std::string kPrefix = "0123456789abcdef0123456789abcdef";

TEST(NodePrefix, IsFirstSixteenBytesAsLowercaseHex) {
    const std::uint8_t bytes[] = {0xde, 0xad, 0xBE, 0xef, 0x01, 0x2a, 0xff, 0x00, 0x10,
                                  0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x8f, 0xff, 0xff};
    EXPECT_EQ(nodePrefixFromBytes(bytes, sizeof bytes), "deadbeef012aff00102030405060708f");
    EXPECT_EQ(nodePrefixFromBytes(bytes, 16), "deadbeef012aff00102030405060708f");
}

TEST(NodePrefix, RefusesFewerThanSixteenBytes) {
    const std::uint8_t bytes[15] = {};
    EXPECT_THROW(nodePrefixFromBytes(bytes, sizeof bytes), std::invalid_argument);
}

TEST(NodePrefix, AcceptsOnlyThirtyTwoLowercaseHexChars) {
    EXPECT_TRUE(isValidNodePrefix(kPrefix));
    EXPECT_TRUE(isValidNodePrefix("cdefcdefcdefcdefcdefcdefcdefcdef"));
    EXPECT_FALSE(isValidNodePrefix(""));
    EXPECT_FALSE(isValidNodePrefix("0123456789ab"));  // the old 48-bit ids
    EXPECT_FALSE(isValidNodePrefix(kPrefix.substr(1)));
    EXPECT_FALSE(isValidNodePrefix(kPrefix + "0"));
    EXPECT_FALSE(isValidNodePrefix("0123456789ABCDEF0123456789abcdef"));
    EXPECT_FALSE(isValidNodePrefix("0123456789abcdef0123456789abcdeg"));
    EXPECT_FALSE(isValidNodePrefix("01234567-9abcdef0123456789abcdef"));
}

TEST(SessionId, IsNodeIdDashRandomHex) {
    std::string id = makeSessionId(kPrefix);
    ASSERT_EQ(id.size(), kSessionIdLength);
    EXPECT_EQ(kSessionIdLength, 49u);
    EXPECT_TRUE(isValidSessionId(id)) << id;
    EXPECT_EQ(id[32], '-');
    for (char c : id) {
        EXPECT_TRUE(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
    }
}

TEST(PeerJsServerId, IsAFreshLowercaseUuidOfVersion4) {
    std::string a = makePeerJsServerId();
    std::string b = makePeerJsServerId();
    EXPECT_NE(a, b);
    ASSERT_EQ(a.size(), kPeerJsServerIdLength);
    EXPECT_TRUE(isPeerJsServerId(a)) << a;
    EXPECT_EQ(a[14], '4') << a;
    EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;
    EXPECT_FALSE(isNodeSessionId(a));
    EXPECT_FALSE(isValidSessionId(a));
    EXPECT_FALSE(isPeerJsServerId("3F2B8C1E-9D4A-4E6F-8A7B-0C1D2E3F4A5B"));
    EXPECT_FALSE(isPeerJsServerId("3f2b8c1e-9d4a-4e6f-8a7b-0c1d2e3f4a5"));
    EXPECT_FALSE(isPeerJsServerId("3f2b8c1e-9d4a-4e6f-8a7b_0c1d2e3f4a5b"));
}

TEST(SessionId, SessionIdCarriesNodePrefix) {
    std::string id = makeSessionId(kPrefix);
    EXPECT_EQ(id.substr(0, 32), kPrefix);
    EXPECT_EQ(nodePrefixOfCanonical(id), kPrefix);
}

TEST(SessionId, IdsAreUniqueOverManyDraws) {
    constexpr int kDraws = 100000;
    std::set<std::string> seen;
    for (int i = 0; i < kDraws; ++i) {
        seen.insert(makeSessionId(kPrefix));
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kDraws));
}

TEST(SessionId, EveryRandomNibbleVaries) {
    // A nibble stuck at one value would mean fewer random bits than promised.
    std::set<char> seen[kSessionIdLength];
    for (int i = 0; i < 500; ++i) {
        std::string id = makeSessionId(kPrefix);
        for (std::size_t p = kNodePrefixLength + 1; p < kSessionIdLength; ++p) {
            seen[p].insert(id[p]);
        }
    }
    for (std::size_t p = kNodePrefixLength + 1; p < kSessionIdLength; ++p) {
        EXPECT_GT(seen[p].size(), 8u) << "position " << p;
    }
}

TEST(SessionId, RefusesMalformedNodePrefix) {
    EXPECT_THROW(makeSessionId("0123456789ABCDEF0123456789ABCDEF"), std::invalid_argument);
    EXPECT_THROW(makeSessionId("0123456789ab"), std::invalid_argument);
    EXPECT_THROW(makeSessionId(""), std::invalid_argument);
}

const std::string kValid = kPrefix + "-0011223344556677";

TEST(SessionIdValidation, AcceptsUpperAndLowerHex) {
    EXPECT_TRUE(isValidSessionId(kValid));
    EXPECT_TRUE(isValidSessionId("0123456789ABCDEF0123456789ABCDEF-00112233445566AA"));
    EXPECT_TRUE(isValidSessionId("0123456789aBcDeF0123456789abcdef-00112233445566aA"));
}

TEST(SessionIdValidation, RejectsWrongShape) {
    EXPECT_FALSE(isValidSessionId(""));
    EXPECT_FALSE(isValidSessionId(kValid.substr(0, 48)));  // short
    EXPECT_FALSE(isValidSessionId(kValid + "0"));          // long
    EXPECT_FALSE(isValidSessionId(kPrefix + "00112233445566778"));       // no dash
    EXPECT_FALSE(isValidSessionId(kPrefix.substr(0, 31) + "-00112233445566778"));  // dash moved
    EXPECT_FALSE(isValidSessionId(kPrefix + "_0011223344556677"));
    EXPECT_FALSE(isValidSessionId(kPrefix + "-001122334455667g"));
    EXPECT_FALSE(isValidSessionId("{123456789abcdef0123456789abcdef-0011223344556677"));
    EXPECT_FALSE(isValidSessionId(std::string(kValid.substr(0, 48)) + std::string(1, '\0')));
    // The UUIDs of the first protocol version are not session ids any more.
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-8f01-23456789abcd"));
}

TEST(SessionIdValidation, CanonicalIdIsLowercase) {
    std::string id = "ABCDEF0123456789ABCDEF0123456789-00112233445566AA";
    canonicalizeSessionId(id);
    EXPECT_EQ(id, "abcdef0123456789abcdef0123456789-00112233445566aa");
}

}  // namespace
}  // namespace dwrtc
