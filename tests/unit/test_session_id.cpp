// Session ids: UUID v4 text that names its node and carries CSPRNG bits.
#include "dwrtc/session_id.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>

namespace dwrtc {
namespace {

const std::string kPrefix = "0123456789ab";

TEST(NodePrefix, IsFirstSixBytesAsLowercaseHex) {
    const std::uint8_t bytes[] = {0xde, 0xad, 0xBE, 0xef, 0x01, 0x2a, 0xff, 0xff};
    EXPECT_EQ(nodePrefixFromBytes(bytes, sizeof bytes), "deadbeef012a");
    EXPECT_EQ(nodePrefixFromBytes(bytes, 6), "deadbeef012a");
}

TEST(NodePrefix, RefusesFewerThanSixBytes) {
    const std::uint8_t bytes[] = {1, 2, 3, 4, 5};
    EXPECT_THROW(nodePrefixFromBytes(bytes, sizeof bytes), std::invalid_argument);
}

TEST(NodePrefix, AcceptsOnlyTwelveLowercaseHexChars) {
    EXPECT_TRUE(isValidNodePrefix("0123456789ab"));
    EXPECT_TRUE(isValidNodePrefix("cdefcdefcdef"));
    EXPECT_FALSE(isValidNodePrefix(""));
    EXPECT_FALSE(isValidNodePrefix("0123456789a"));
    EXPECT_FALSE(isValidNodePrefix("0123456789abc"));
    EXPECT_FALSE(isValidNodePrefix("0123456789AB"));
    EXPECT_FALSE(isValidNodePrefix("0123456789ag"));
    EXPECT_FALSE(isValidNodePrefix("01234567-9ab"));
}

TEST(SessionId, IsCanonicalUuidV4Text) {
    std::string id = makeSessionId(kPrefix);
    ASSERT_EQ(id.size(), kSessionIdLength);
    EXPECT_TRUE(isValidSessionId(id)) << id;
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[18], '-');
    EXPECT_EQ(id[23], '-');
    EXPECT_EQ(id[14], '4');
    for (char c : id) {
        EXPECT_TRUE(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
    }
}

TEST(SessionId, SessionIdCarriesNodePrefix) {
    std::string id = makeSessionId(kPrefix);
    EXPECT_EQ(id.substr(0, 13), "01234567-89ab");
    EXPECT_EQ(nodePrefixOf(id), kPrefix);
}

TEST(SessionId, IdsAreUniqueOverManyDraws) {
    constexpr int kDraws = 100000;
    std::set<std::string> seen;
    for (int i = 0; i < kDraws; ++i) {
        seen.insert(makeSessionId(kPrefix));
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kDraws));
}

TEST(SessionId, VersionAndVariantNibblesHoldOnEveryDraw) {
    std::set<char> variants;
    for (int i = 0; i < 2000; ++i) {
        std::string id = makeSessionId(kPrefix);
        ASSERT_EQ(id[14], '4') << id;
        ASSERT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
        variants.insert(id[19]);
    }
    // The variant's two low bits are random: all four values show up
    // (each is missed with probability (3/4)^2000).
    EXPECT_EQ(variants.size(), 4u);
}

TEST(SessionId, EveryRandomNibbleVaries) {
    // A nibble stuck at one value would mean fewer random bits than promised.
    const std::size_t randomPositions[] = {15, 16, 17, 20, 21, 22, 24, 25, 26, 27,
                                           28, 29, 30, 31, 32, 33, 34, 35};
    std::set<char> seen[kSessionIdLength];
    for (int i = 0; i < 500; ++i) {
        std::string id = makeSessionId(kPrefix);
        for (std::size_t p : randomPositions) {
            seen[p].insert(id[p]);
        }
    }
    for (std::size_t p : randomPositions) {
        EXPECT_GT(seen[p].size(), 8u) << "position " << p;
    }
}

TEST(SessionId, RefusesMalformedNodePrefix) {
    EXPECT_THROW(makeSessionId("0123456789AB"), std::invalid_argument);
    EXPECT_THROW(makeSessionId("0123"), std::invalid_argument);
    EXPECT_THROW(makeSessionId(""), std::invalid_argument);
}

TEST(SessionIdValidation, AcceptsUpperAndLowerHex) {
    EXPECT_TRUE(isValidSessionId("01234567-89ab-4cde-8f01-23456789abcd"));
    EXPECT_TRUE(isValidSessionId("01234567-89AB-4CDE-BF01-23456789ABCD"));
    EXPECT_TRUE(isValidSessionId("01234567-89ab-4cde-9f01-23456789abcd"));
    EXPECT_TRUE(isValidSessionId("01234567-89ab-4cde-Af01-23456789abcd"));
}

TEST(SessionIdValidation, RejectsWrongShape) {
    EXPECT_FALSE(isValidSessionId(""));
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-8f01-23456789abc"));    // short
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-8f01-23456789abcde"));  // long
    EXPECT_FALSE(isValidSessionId("0123456789ab4cde8f0123456789abcd"));       // no dashes
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-8f0123456789abcd-"));   // dash moved
    EXPECT_FALSE(isValidSessionId("01234567_89ab-4cde-8f01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId("0123456g-89ab-4cde-8f01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId("{1234567-89ab-4cde-8f01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId(std::string("01234567-89ab-4cde-8f01-23456789abc\0", 36)));
}

TEST(SessionIdValidation, RejectsWrongVersionOrVariant) {
    EXPECT_FALSE(isValidSessionId("01234567-89ab-1cde-8f01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId("01234567-89ab-5cde-8f01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-7f01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-cf01-23456789abcd"));
    EXPECT_FALSE(isValidSessionId("01234567-89ab-4cde-0f01-23456789abcd"));
}

TEST(SessionIdValidation, NodePrefixOfLowercasesAndRefusesInvalid) {
    EXPECT_EQ(nodePrefixOf("ABCDEF01-2345-4cde-8f01-23456789abcd"), "abcdef012345");
    EXPECT_EQ(nodePrefixOf("not a session id"), "");
    EXPECT_EQ(canonicalSessionId("ABCDEF01-2345-4CDE-BF01-23456789ABCD"),
              "abcdef01-2345-4cde-bf01-23456789abcd");
}

}  // namespace
}  // namespace dwrtc
