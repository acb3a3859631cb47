// MemberSequence: the sequence numbers of this node's room member values.
// Each join and each leave of a member is a value of its own under the
// room's key (OpenDHT 2.4 does not pass a value replaced under the same
// value id on to those who listen), and those who listen take the member's
// newest value by this number (16 bits, compared with wrap-around). So
// every value of a member must carry a higher number than its last one,
// or the others take a join after a leave for an old one.
//
// The last number of each member is remembered while it is in the room
// and for kForgetAfter after it left: longer than a leave lives in the
// DHT (a minute) and than others remember it (Rooms, two minutes), so past
// that any number is new to everyone. A member with no number remembered
// starts from the wall clock's seconds: a node that restarts does not go
// back to numbers a leave of its last life may still hold. Sessions that
// join and leave many rooms make it remember at most kMaxLeft leaves: past
// that the oldest are forgotten early, which costs nothing unless that
// member put more values than seconds went by since its first (its next
// number then starts from the clock again).
// Not thread-safe: NodeDirectory holds it under its publish lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>

namespace dwrtc {

class MemberSequence {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::minutes kForgetAfter{5};
    static constexpr std::size_t kMaxLeft = 16384;

    struct Put {
        std::uint16_t seq = 0;
        // The number of the member's join this value ends (a leave, or a
        // join over a join): its put is to be cancelled.
        std::optional<std::uint16_t> replacedJoin;
    };

    // The number of the next value put for member (one id in one room;
    // gone: it is a leave). now dates the leave; unixSeconds is the wall
    // clock.
    Put next(std::uint64_t member, bool gone, Clock::time_point now, std::uint64_t unixSeconds) {
        forgetOld(now);
        Put put;
        auto it = entries_.find(member);
        if (it == entries_.end()) {
            put.seq = static_cast<std::uint16_t>(unixSeconds);
        } else {
            put.seq = static_cast<std::uint16_t>(it->second.seq + 1);
            if (!it->second.gone) {
                put.replacedJoin = it->second.seq;
            }
        }
        Entry& entry = entries_[member];
        entry.seq = put.seq;
        entry.gone = gone;
        if (gone) {
            entry.left = now;
            left_.emplace_back(now, member);
        }
        return put;
    }

    // Members whose number is remembered: those in a room, and those that
    // left less than kForgetAfter ago.
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::uint16_t seq = 0;
        bool gone = false;
        Clock::time_point left;
    };

    void forgetOld(Clock::time_point now) {
        while (!left_.empty() &&
               (now - left_.front().first >= kForgetAfter || left_.size() > kMaxLeft)) {
            auto it = entries_.find(left_.front().second);
            // Still remembered if it joined again (or left again since).
            if (it != entries_.end() && it->second.gone &&
                it->second.left == left_.front().first) {
                entries_.erase(it);
            }
            left_.pop_front();
        }
    }

    std::unordered_map<std::uint64_t, Entry> entries_;
    std::deque<std::pair<Clock::time_point, std::uint64_t>> left_;  // oldest first
};

}  // namespace dwrtc
