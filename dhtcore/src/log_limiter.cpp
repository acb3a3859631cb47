#include "log_limiter.h"

#include <algorithm>

namespace dwrtc {

namespace {

bool partOfValue(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           c == '.' || c == ':' || c == '-' || c == '[' || c == ']';
}

}  // namespace

std::string LogLimiter::shapeOf(std::string_view line) {
    std::string shape;
    shape.reserve(line.size());
    std::size_t i = 0;
    while (i < line.size()) {
        if (!partOfValue(line[i])) {
            shape += line[i++];
            continue;
        }
        std::size_t end = i;
        bool digit = false;
        while (end < line.size() && partOfValue(line[end])) {
            digit = digit || (line[end] >= '0' && line[end] <= '9');
            ++end;
        }
        if (digit) {
            shape += '#';
        } else {
            shape.append(line.substr(i, end - i));
        }
        i = end;
    }
    return shape;
}

bool LogLimiter::admit(std::string& line, Clock::time_point now) {
    std::string shape = shapeOf(line);
    std::lock_guard<std::mutex> lock(mutex_);
    if (buckets_.size() >= kMaxShapes && !buckets_.count(shape)) {
        buckets_.clear();
    }
    auto [it, fresh] = buckets_.try_emplace(std::move(shape));
    Bucket& b = it->second;
    if (fresh) {
        b.refilled = now;
    }
    double earned = std::chrono::duration<double>(now - b.refilled) /
                    std::chrono::duration<double>(kInterval);
    b.tokens = std::min<double>(kBurst, b.tokens + earned);
    b.refilled = now;
    if (b.tokens < 1) {
        ++b.held;
        return false;
    }
    b.tokens -= 1;
    if (b.held > 0) {
        line += " (" + std::to_string(b.held) + " more like it not logged)";
        b.held = 0;
    }
    return true;
}

}  // namespace dwrtc
