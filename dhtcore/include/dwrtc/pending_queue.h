// PendingQueue: messages waiting for one remote node while its lookup or
// link connect is pending.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

namespace dwrtc {

// Messages waiting for one remote node (lookup or link connect pending), in
// arrival order, at most `perRecipientLimit` per recipient. Touched by the
// routing thread only.
//
// One queue per node rather than per recipient keeps arrival order across
// all of that node's recipients when the link opens; the per-recipient
// limit stops one flooded recipient from starving the others.
template <typename Item>
class PendingQueue {
public:
    explicit PendingQueue(std::size_t perRecipientLimit) : limit_(perRecipientLimit) {}

    // Appends item for recipient. Returns false, storing nothing, when that
    // recipient already has perRecipientLimit items waiting.
    bool push(const std::string& recipient, Item item) {
        auto it = counts_.find(recipient);
        std::size_t count = (it == counts_.end()) ? 0 : it->second;
        if (count >= limit_) {
            return false;
        }
        items_.emplace_back(recipient, std::move(item));
        if (it == counts_.end()) {
            counts_.emplace(recipient, 1);
        } else {
            ++it->second;
        }
        return true;
    }

    // Everything, in arrival order; the queue becomes empty.
    std::deque<std::pair<std::string, Item>> takeAll() {
        std::deque<std::pair<std::string, Item>> out;
        out.swap(items_);
        counts_.clear();
        return out;
    }

    std::size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }

    std::size_t countFor(const std::string& recipient) const {
        auto it = counts_.find(recipient);
        return (it == counts_.end()) ? 0 : it->second;
    }


private:
    std::size_t limit_;
    std::deque<std::pair<std::string, Item>> items_;
    std::unordered_map<std::string, std::size_t> counts_;  // recipients with items only
};

}  // namespace dwrtc
