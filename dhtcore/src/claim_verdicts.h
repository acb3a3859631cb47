// ClaimVerdicts: what a node has already judged of the values under
// key-owned ids in the DHT. Anyone can store values under an id's key; a
// reader that checked every one of them on every lookup (every 250 ms while
// the id is away) would spend a signature check per value each time. A
// value is known by the SHA-256 of its bytes: one whose signature held is
// not checked again, one that was refuted (no claim, another key, a bad
// signature) is skipped without even being parsed, and one dated too far
// ahead is skipped until it could be believed. Bounded in number; each
// verdict is kept for a while (a value's life in the DHT), so one that is
// still stored is judged again now and then. Any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dwrtc {

class ClaimVerdicts {
public:
    using Clock = std::chrono::steady_clock;
    enum class Verdict { Unknown, Holds, Refuted };

    // At most `capacity` values remembered, each for at most `life`.
    explicit ClaimVerdicts(std::size_t capacity,
                           std::chrono::seconds life = std::chrono::minutes(10));

    // The SHA-256 of a value's bytes: what it is remembered by.
    static std::string digestOf(std::string_view value);

    Verdict find(const std::string& digest, Clock::time_point now);
    // Remembers a verdict until `now + life`, or `until` if sooner (a claim
    // dated ahead is Refuted only until it could be believed).
    void remember(const std::string& digest, Verdict verdict, Clock::time_point now,
                  Clock::time_point until = Clock::time_point::max());

    std::size_t size() const;

private:
    struct Entry {
        Verdict verdict;
        Clock::time_point until;
    };
    const std::size_t capacity_;
    const std::chrono::seconds life_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    std::deque<std::string> order_;  // oldest first, for eviction
};

}  // namespace dwrtc
