// PendingQueue: per-node holding area while a lookup or connect runs.
#include "dwrtc/pending_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace dwrtc {
namespace {

TEST(PendingQueue, StartsEmpty) {
    PendingQueue<int> q(4);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.countFor("a"), 0u);
    EXPECT_TRUE(q.takeAll().empty());
}

TEST(PendingQueue, KeepsArrivalOrderAcrossRecipients) {
    PendingQueue<int> q(10);
    ASSERT_TRUE(q.push("a", 1));
    ASSERT_TRUE(q.push("b", 2));
    ASSERT_TRUE(q.push("a", 3));
    ASSERT_TRUE(q.push("c", 4));
    ASSERT_TRUE(q.push("b", 5));
    EXPECT_EQ(q.size(), 5u);
    EXPECT_FALSE(q.empty());

    auto all = q.takeAll();
    std::vector<std::pair<std::string, int>> got(all.begin(), all.end());
    std::vector<std::pair<std::string, int>> want = {
        {"a", 1}, {"b", 2}, {"a", 3}, {"c", 4}, {"b", 5}};
    EXPECT_EQ(got, want);
}

TEST(PendingQueue, RefusesBeyondPerRecipientLimit) {
    PendingQueue<int> q(2);
    EXPECT_TRUE(q.push("a", 1));
    EXPECT_TRUE(q.push("a", 2));
    EXPECT_FALSE(q.push("a", 3));
    EXPECT_EQ(q.countFor("a"), 2u);
    EXPECT_EQ(q.size(), 2u);

    auto all = q.takeAll();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].second, 1);
    EXPECT_EQ(all[1].second, 2);
}

TEST(PendingQueue, LimitIsPerRecipientNotPerQueue) {
    PendingQueue<int> q(1);
    EXPECT_TRUE(q.push("a", 1));
    EXPECT_FALSE(q.push("a", 2));
    EXPECT_TRUE(q.push("b", 3));
    EXPECT_TRUE(q.push("c", 4));
    EXPECT_EQ(q.countFor("a"), 1u);
    EXPECT_EQ(q.countFor("b"), 1u);
    EXPECT_EQ(q.countFor("c"), 1u);
    EXPECT_EQ(q.size(), 3u);
}

TEST(PendingQueue, ZeroLimitRefusesEverything) {
    PendingQueue<int> q(0);
    EXPECT_FALSE(q.push("a", 1));
    EXPECT_TRUE(q.empty());
}

TEST(PendingQueue, TakeAllEmptiesAndResetsCounts) {
    PendingQueue<int> q(1);
    ASSERT_TRUE(q.push("a", 1));
    ASSERT_FALSE(q.push("a", 2));
    EXPECT_EQ(q.takeAll().size(), 1u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.countFor("a"), 0u);
    // The recipient has room again once its messages were taken.
    EXPECT_TRUE(q.push("a", 3));
    auto all = q.takeAll();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].second, 3);
}

TEST(PendingQueue, HoldsMoveOnlyItems) {
    PendingQueue<std::unique_ptr<std::string>> q(3);
    ASSERT_TRUE(q.push("a", std::make_unique<std::string>("offer")));
    ASSERT_TRUE(q.push("a", std::make_unique<std::string>("candidate")));
    auto all = q.takeAll();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(*all[0].second, "offer");
    EXPECT_EQ(*all[1].second, "candidate");
}

}  // namespace
}  // namespace dwrtc
