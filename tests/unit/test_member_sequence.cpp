// MemberSequence: a room member's values (join, leave, join again) carry
// ever higher numbers while anyone may remember the last one, start from
// the clock when none is remembered, and the memory of leaves is bounded
// in time and number.
#include "member_sequence.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace dwrtc {
namespace {

using Clock = MemberSequence::Clock;
using namespace std::chrono_literals;

constexpr std::uint64_t kUnix = 1'796'000'000;  // a wall clock reading, in seconds

bool newer(std::uint16_t a, std::uint16_t b) { return static_cast<std::int16_t>(a - b) > 0; }

TEST(MemberSequence, AJoinAfterALeaveIsNewerThanTheLeave) {
    MemberSequence seq;
    auto now = Clock::now();
    auto join = seq.next(7, false, now, kUnix);
    EXPECT_EQ(join.seq, static_cast<std::uint16_t>(kUnix)) << "a first value starts from the clock";
    EXPECT_FALSE(join.replacedJoin);
    auto leave = seq.next(7, true, now, kUnix);
    EXPECT_EQ(leave.replacedJoin, join.seq) << "a leave ends the join";
    auto again = seq.next(7, false, now, kUnix);
    EXPECT_FALSE(again.replacedJoin) << "a leave is not refreshed: nothing to cancel";
    auto leaveAgain = seq.next(7, true, now + 1s, kUnix + 1);
    EXPECT_EQ(leaveAgain.replacedJoin, again.seq);
    EXPECT_TRUE(newer(leave.seq, join.seq));
    EXPECT_TRUE(newer(again.seq, leave.seq));
    EXPECT_TRUE(newer(leaveAgain.seq, again.seq));
    // Members are counted apart.
    EXPECT_EQ(seq.next(8, false, now, kUnix).seq, static_cast<std::uint16_t>(kUnix));
}

TEST(MemberSequence, ALeaveAfterHoursInTheRoomIsStillNewerThanItsJoin) {
    MemberSequence seq;
    auto now = Clock::now();
    auto join = seq.next(7, false, now, kUnix);
    // Ten hours: past half the 16-bit range in seconds, where a number from
    // the clock would read as older than the join.
    auto leave = seq.next(7, true, now + 10h, kUnix + 36'000);
    EXPECT_TRUE(newer(leave.seq, join.seq));
}

TEST(MemberSequence, ALeaveIsForgottenAfterAWhileAndAMemberInARoomIsNot) {
    MemberSequence seq;
    auto now = Clock::now();
    seq.next(1, false, now, kUnix);
    seq.next(1, true, now, kUnix);   // left
    seq.next(2, false, now, kUnix);  // stays
    seq.next(3, false, now, kUnix);
    seq.next(3, true, now, kUnix);
    seq.next(3, false, now + 1min, kUnix + 60);  // left, then joined again
    EXPECT_EQ(seq.size(), 3u);
    auto later = now + MemberSequence::kForgetAfter;
    // Forgotten: the number starts from the clock again, which has gone on.
    EXPECT_EQ(seq.next(1, false, later, kUnix + 300).seq,
              static_cast<std::uint16_t>(kUnix + 300));
    EXPECT_EQ(seq.next(2, true, later, kUnix + 300).seq, static_cast<std::uint16_t>(kUnix + 1));
    EXPECT_EQ(seq.next(3, true, later, kUnix + 300).seq, static_cast<std::uint16_t>(kUnix + 3));
}

TEST(MemberSequence, RemembersABoundedNumberOfLeaves) {
    MemberSequence seq;
    auto now = Clock::now();
    for (std::uint64_t id = 0; id < MemberSequence::kMaxLeft + 100; ++id) {
        seq.next(id, false, now, kUnix);
        seq.next(id, true, now, kUnix);
    }
    EXPECT_LE(seq.size(), MemberSequence::kMaxLeft + 1);
}

}  // namespace
}  // namespace dwrtc
