// LogLimiter: a burst per shape of line, then one a second, and a count of
// what was held back on the next line that gets through.
#include "log_limiter.h"

#include <gtest/gtest.h>

#include <string>

namespace dwrtc {
namespace {

using Clock = LogLimiter::Clock;

TEST(LogLimiter, ShapeTakesOutNumbersAddressesAndIds) {
    EXPECT_EQ(LogLimiter::shapeOf("closing a node link with 127.0.0.1:4231 (a frame before a "
                                  "proven hello)"),
              "closing a node link with # (a frame before a proven hello)");
    EXPECT_EQ(LogLimiter::shapeOf("node 3f2a9c0de1b24f6a8c7d9e0f1a2b3c4d is unreachable"),
              "node # is unreachable");
    EXPECT_EQ(LogLimiter::shapeOf("link from [::1]:80 broke with 12 messages"),
              "link from # broke with # messages");
    // Words of hex letters stay words.
    EXPECT_EQ(LogLimiter::shapeOf("a dead face"), "a dead face");
}

TEST(LogLimiter, LetsABurstThroughThenOneASecondAndCountsTheRest) {
    LogLimiter limiter;
    Clock::time_point t = Clock::time_point() + std::chrono::hours(1);
    int logged = 0;
    for (int i = 0; i < 25; ++i) {
        std::string line = "node " + std::to_string(1000 + i) + " is unreachable";
        logged += limiter.admit(line, t);
    }
    EXPECT_EQ(logged, static_cast<int>(LogLimiter::kBurst));

    // Another shape is not held back by the first.
    std::string other = "a link to node 7 broke";
    EXPECT_TRUE(limiter.admit(other, t));
    EXPECT_EQ(other, "a link to node 7 broke");

    std::string later = "node 42 is unreachable";
    EXPECT_FALSE(limiter.admit(later, t + std::chrono::milliseconds(500)));
    later = "node 43 is unreachable";
    ASSERT_TRUE(limiter.admit(later, t + std::chrono::milliseconds(1100)));
    EXPECT_EQ(later, "node 43 is unreachable (16 more like it not logged)");
    std::string next = "node 44 is unreachable";
    EXPECT_FALSE(limiter.admit(next, t + std::chrono::milliseconds(1200)));
}

TEST(LogLimiter, RefillsUpToTheBurstOnly) {
    LogLimiter limiter;
    Clock::time_point t = Clock::time_point() + std::chrono::hours(1);
    int logged = 0;
    for (int i = 0; i < 30; ++i) {
        std::string line = "refused " + std::to_string(i);
        logged += limiter.admit(line, t + std::chrono::hours(1));
    }
    EXPECT_EQ(logged, static_cast<int>(LogLimiter::kBurst));
}

TEST(LogLimiter, ManyShapesStayBounded) {
    LogLimiter limiter;
    Clock::time_point t = Clock::time_point() + std::chrono::hours(1);
    // Every line its own shape (letters differ): each gets through.
    for (int i = 0; i < 1000; ++i) {
        std::string line = "shape " + std::string(1 + i % 40, 'x') + std::string(i / 40, 'y');
        EXPECT_TRUE(limiter.admit(line, t));
    }
}

}  // namespace
}  // namespace dwrtc
