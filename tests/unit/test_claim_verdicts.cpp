// ClaimVerdicts: a node remembers what it judged of the values under
// key-owned ids, so a value is checked once, not on every lookup; verdicts
// end (a value dated ahead when it could be believed), and the memory is
// bounded.
#include "claim_verdicts.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace dwrtc
