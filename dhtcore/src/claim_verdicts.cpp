#include "claim_verdicts.h"

#include <openssl/sha.h>

#include <algorithm>

namespace dwrtc {

ClaimVerdicts::ClaimVerdicts(std::size_t capacity, std::chrono::seconds life)
    : capacity_(std::max<std::size_t>(capacity, 1)), life_(life) {}

std::string ClaimVerdicts::digestOf(std::string_view value) {
    // A digest, not a weaker hash: a value that matched a remembered "holds"
    // would be believed without a check.
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(value.data()), value.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

ClaimVerdicts::Verdict ClaimVerdicts::find(const std::string& digest, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(digest);
    if (it == entries_.end()) {
        return Verdict::Unknown;
    }
    if (now >= it->second.until) {
        entries_.erase(it);  // its place in order_ goes when it comes up
        return Verdict::Unknown;
    }
    return it->second.verdict;
}

void ClaimVerdicts::remember(const std::string& digest, Verdict verdict, Clock::time_point now,
                             Clock::time_point until) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry entry{verdict, std::min(until, now + life_)};
    auto [it, added] = entries_.try_emplace(digest, entry);
    if (!added) {
        it->second = entry;
        return;
    }
    order_.push_back(digest);
    // The oldest make way; entries forgotten already only leave their name.
    while (entries_.size() > capacity_ || order_.size() > 2 * capacity_) {
        entries_.erase(order_.front());
        order_.pop_front();
    }
}

std::size_t ClaimVerdicts::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

}  // namespace dwrtc
