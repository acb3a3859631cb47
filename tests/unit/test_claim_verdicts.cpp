// ClaimVerdicts: a node remembers what it judged of the values under
// key-owned ids, so a value is checked once, not on every lookup; verdicts
// end (a value dated ahead when it could be believed), and the memory is
// bounded. And the clock rule as room members meet it.
#include "claim_verdicts.h"

#include <gtest/gtest.h>

#include <string>

#include "owner_keys.h"
#include "rooms.h"

namespace dwrtc {
namespace {

using Verdict = ClaimVerdicts::Verdict;
using Clock = ClaimVerdicts::Clock;

TEST(ClaimVerdicts, RemembersWhatWasJudgedByTheValuesBytes) {
    ClaimVerdicts verdicts(16);
    auto now = Clock::now();
    std::string good = ClaimVerdicts::digestOf("a claim that holds");
    std::string bad = ClaimVerdicts::digestOf("a claim that does not");
    EXPECT_EQ(verdicts.find(good, now), Verdict::Unknown);
    verdicts.remember(good, Verdict::Holds, now);
    verdicts.remember(bad, Verdict::Refuted, now);
    EXPECT_EQ(verdicts.find(good, now), Verdict::Holds);
    EXPECT_EQ(verdicts.find(bad, now), Verdict::Refuted);
    EXPECT_EQ(verdicts.find(ClaimVerdicts::digestOf("a claim that holds!"), now),
              Verdict::Unknown)
        << "one byte more is another value";
    EXPECT_EQ(good.size(), 32u);
}

TEST(ClaimVerdicts, AVerdictEndsWithItsLifeOrSoonerWhenGivenAnEnd) {
    ClaimVerdicts verdicts(16, std::chrono::seconds(600));
    auto now = Clock::now();
    std::string ahead = ClaimVerdicts::digestOf("dated 40 s ahead");
    std::string bad = ClaimVerdicts::digestOf("bad signature");
    verdicts.remember(ahead, Verdict::Refuted, now, now + std::chrono::seconds(10));
    verdicts.remember(bad, Verdict::Refuted, now);
    EXPECT_EQ(verdicts.find(ahead, now + std::chrono::seconds(9)), Verdict::Refuted);
    EXPECT_EQ(verdicts.find(ahead, now + std::chrono::seconds(10)), Verdict::Unknown)
        << "judged again once it could be believed";
    EXPECT_EQ(verdicts.find(bad, now + std::chrono::seconds(599)), Verdict::Refuted);
    EXPECT_EQ(verdicts.find(bad, now + std::chrono::seconds(600)), Verdict::Unknown);
}

TEST(ClaimVerdicts, HoldsAtMostItsCapacityTheOldestMakingWay) {
    ClaimVerdicts verdicts(100);
    auto now = Clock::now();
    for (int i = 0; i < 1000; ++i) {
        verdicts.remember(ClaimVerdicts::digestOf("value " + std::to_string(i)),
                          Verdict::Refuted, now);
    }
    EXPECT_EQ(verdicts.size(), 100u);
    EXPECT_EQ(verdicts.find(ClaimVerdicts::digestOf("value 0"), now), Verdict::Unknown);
    EXPECT_EQ(verdicts.find(ClaimVerdicts::digestOf("value 999"), now), Verdict::Refuted);
}

// The clock rule holds for room members too: a member value that names a
// key-owned id comes with the id's claim, and one dated ahead is believed
// nowhere.
TEST(ClaimClock, ARoomMemberWhoseClaimIsDatedAheadIsNotBelieved) {
    test::OwnerKey carol;
    const std::string node(32, 'a');
    ClaimClock clock;
    clock.skewMs = 30'000;
    clock.now = [] { return std::uint64_t{1'800'000'000'000}; };
    RoomMember m;
    m.room = "lobby";
    m.id = carol.id();
    m.node = node;
    std::string why;
    m.claim = encodeIdClaim(carol.claim(node, "challenge", 1'800'000'000'000 + 20'000));
    EXPECT_TRUE(memberBindingHolds(m, node, clock, why)) << why;
    m.claim = encodeIdClaim(carol.claim(node, "challenge", 1'800'000'000'000 + 86'400'000));
    EXPECT_FALSE(memberBindingHolds(m, node, clock, why));
    EXPECT_NE(why.find("ahead of this node's clock"), std::string::npos) << why;
}

}  // namespace
}  // namespace dwrtc
