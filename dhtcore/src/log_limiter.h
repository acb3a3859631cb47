// LogLimiter: keeps a node's log readable when something repeats. Lines
// are grouped by their shape (the text with its numbers, addresses and ids
// taken out); each shape may log a burst, then one line a second, and the
// next line that gets through says how many like it were held back. A peer
// that repeats one refused attempt, or a dead node that many messages were
// meant for, then costs a few lines, not one per attempt.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dwrtc {

class LogLimiter {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kBurst = 10;
    static constexpr std::chrono::milliseconds kInterval{1000};
    // Shapes remembered at most; beyond, the oldest counts start afresh.
    static constexpr std::size_t kMaxShapes = 256;

    // Whether `line` may be logged at `now`. If so, and lines of its shape
    // were held back since the last one logged, a note saying how many is
    // appended to it. Any thread.
    bool admit(std::string& line, Clock::time_point now);

    // The line with every run of digits, hex, dots, colons, dashes and
    // brackets that holds a digit replaced by '#'.
    static std::string shapeOf(std::string_view line);

private:
    struct Bucket {
        double tokens = kBurst;
        Clock::time_point refilled;
        std::size_t held = 0;
    };
    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace dwrtc
