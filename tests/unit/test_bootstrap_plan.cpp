// BootstrapPlan: which bootstrap entries a node tries when, where it stands,
// and what the operator hears, driven by a clock of the test's own.
#include "bootstrap_plan.h"

#include <gtest/gtest.h>

namespace dwrtc {
namespace {

using Clock = BootstrapPlan::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::time_point T0{};

std::size_t count(const std::vector<std::size_t>& v) { return v.size(); }

TEST(BootstrapPlan, NoEntriesIsAloneAndSaysNothing) {
    BootstrapPlan plan({}, T0);
    EXPECT_EQ(plan.state(), NetworkState::Alone);
    for (int s = 0; s < 120; ++s) {
        EXPECT_TRUE(plan.due(T0 + seconds(s)).empty());
        EXPECT_TRUE(plan.observe(T0 + seconds(s), {}, 0).empty());
    }
    EXPECT_EQ(plan.state(), NetworkState::Alone);
}

TEST(BootstrapPlan, EntriesAreTriedAtOnceThenWithBackOffUpToTheLongest) {
    BootstrapPlan plan({"a:1"}, T0);
    std::vector<long> at;
    for (long ms = 0; ms <= 40000; ms += 100) {
        if (!plan.due(T0 + milliseconds(ms)).empty()) {
            at.push_back(ms);
            plan.tried(0, EntryOutcome::NoAnswer);
        }
    }
    ASSERT_GE(at.size(), 6u);
    EXPECT_EQ(at[0], 0);
    EXPECT_EQ(at[1], 1000);
    EXPECT_EQ(at[2], 3000);
    EXPECT_EQ(at[3], 7000);
    EXPECT_EQ(at[4], 15000);  // the longest wait reached
    EXPECT_EQ(at[5], 23000);
}

TEST(BootstrapPlan, OnlySiblingEntriesMeanAlone) {
    BootstrapPlan plan({"127.0.0.1:4222", "127.0.0.1:4223"}, T0);
    EXPECT_EQ(count(plan.due(T0)), 2u);
    plan.tried(0, EntryOutcome::Local);
    plan.tried(1, EntryOutcome::Local);
    EXPECT_TRUE(plan.observe(T0, {true, false}, 0).empty());
    EXPECT_EQ(plan.state(), NetworkState::Alone);
    // A sibling is not tried again, and no warning comes.
    EXPECT_TRUE(plan.due(T0 + seconds(30)).empty());
    EXPECT_TRUE(plan.observe(T0 + seconds(30), {true, true}, 0).empty());
    EXPECT_EQ(plan.remoteEntries(), 0u);
}

TEST(BootstrapPlan, JoiningWarnsOnceWithEachEntrysReason) {
    BootstrapPlan plan({"a.example:4222", "b.example:4222"}, T0);
    plan.due(T0);
    plan.tried(0, EntryOutcome::Unresolvable, "Name or service not known");
    plan.tried(1, EntryOutcome::NoAnswer, "nothing listens on UDP port 4222");
    EXPECT_TRUE(plan.observe(T0 + seconds(9), {false, false}, 0).empty());
    EXPECT_EQ(plan.state(), NetworkState::Joining);
    auto lines = plan.observe(T0 + seconds(10), {false, false}, 0);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].warning);
    EXPECT_NE(lines[0].text.find("not in the network"), std::string::npos);
    EXPECT_NE(lines[0].text.find("\"a.example:4222\" does not resolve (Name or service not known)"),
              std::string::npos)
        << lines[0].text;
    EXPECT_NE(lines[0].text.find("\"b.example:4222\" does not answer (nothing listens"),
              std::string::npos)
        << lines[0].text;
    EXPECT_TRUE(plan.observe(T0 + seconds(60), {false, false}, 0).empty());
}

TEST(BootstrapPlan, AnAnswerJoinsAndIsToldLoudlyAfterAWarning) {
    BootstrapPlan plan({"a:1", "b:2"}, T0);
    plan.due(T0);
    plan.tried(0, EntryOutcome::NoAnswer);
    plan.tried(1, EntryOutcome::NoAnswer);
    ASSERT_EQ(plan.observe(T0 + seconds(10), {false, false}, 0).size(), 1u);
    auto lines = plan.observe(T0 + seconds(12), {false, true}, 3);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].warning);
    EXPECT_NE(lines[0].text.find("in the network: 3 DHT nodes outside this nginx answer "
                                 "through \"b:2\""),
              std::string::npos)
        << lines[0].text;
    EXPECT_EQ(plan.state(), NetworkState::InNetwork);
    EXPECT_EQ(plan.answeredEntries(), 1u);
    EXPECT_EQ(plan.remoteEntries(), 2u);
}

TEST(BootstrapPlan, AQuickJoinIsInformationOnly) {
    BootstrapPlan plan({"a:1"}, T0);
    plan.due(T0);
    plan.tried(0, EntryOutcome::NoAnswer);
    auto lines = plan.observe(T0 + milliseconds(300), {true}, 1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_FALSE(lines[0].warning);
}

TEST(BootstrapPlan, LosingTheNetworkWarnsAndRetriesAtOnce) {
    BootstrapPlan plan({"a:1"}, T0);
    plan.due(T0);
    plan.tried(0, EntryOutcome::NoAnswer);
    plan.observe(T0 + seconds(1), {true}, 1);
    // In the network the entries are still pinged, at the longest interval,
    // so a bootstrap node that restarted with a new identity hears of us.
    for (long s = 1; s < 40; ++s) {
        for (std::size_t i : plan.due(T0 + seconds(s))) {
            plan.tried(i, EntryOutcome::NoAnswer);
        }
        plan.observe(T0 + seconds(s), {true}, 1);
    }
    auto lines = plan.observe(T0 + seconds(40), {false}, 0);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].warning);
    EXPECT_NE(lines[0].text.find("no DHT node outside this nginx answers any more"),
              std::string::npos);
    EXPECT_EQ(plan.state(), NetworkState::Joining);
    EXPECT_EQ(count(plan.due(T0 + seconds(40))), 1u);
    EXPECT_EQ(count(plan.due(T0 + seconds(40) + milliseconds(999))), 0u);
    EXPECT_EQ(count(plan.due(T0 + seconds(41))), 1u);
    // Back in: said loudly, as the loss was.
    lines = plan.observe(T0 + seconds(42), {true}, 2);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].warning);
    EXPECT_NE(lines[0].text.find("in the network again"), std::string::npos);
}

TEST(BootstrapPlan, AProbeIsWantedOnceAfterThreeSilentTries) {
    BootstrapPlan plan({"a:1"}, T0);
    plan.tried(0, EntryOutcome::NoAnswer);
    plan.tried(0, EntryOutcome::NoAnswer);
    EXPECT_FALSE(plan.wantsProbe(0));
    plan.tried(0, EntryOutcome::NoAnswer);
    EXPECT_TRUE(plan.wantsProbe(0));
    plan.tried(0, EntryOutcome::NoAnswer, "a reason");
    EXPECT_FALSE(plan.wantsProbe(0));
    EXPECT_EQ(plan.entries()[0].detail, "a reason");
    // Another outcome forgets the reason.
    plan.tried(0, EntryOutcome::Unresolvable, "gone from DNS");
    EXPECT_EQ(plan.entries()[0].detail, "gone from DNS");
    EXPECT_EQ(plan.entries()[0].tries, 1u);
}

}  // namespace
}  // namespace dwrtc
