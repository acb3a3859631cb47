// HoldBudget: what the messages a node holds for its senders (waiting for
// a lookup or a connect, held while a key-owned id is away) may cost, per
// sending session and for the whole node. The limits per recipient bound
// one recipient; a sender that writes to many recipients is bounded here.
// Routing thread only, like the Router that owns it.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>

namespace dwrtc {

class HoldBudget {
public:
    // What one held message is charged beyond its type and body: its
    // sender and recipient ids, its place in the queues, the allocator's
    // share. Measured roughly; a message with an empty body still costs.
    static constexpr std::size_t kOverheadBytes = 256;

    struct Limits {
        std::size_t sessionMessages = 0;  // per sending session, at once
        std::size_t sessionBytes = 0;
        std::size_t nodeBytes = 0;  // all sessions of the node together
    };

    // The charge of one held message, released when it is destroyed: a
    // message that leaves the node's hands in any way (sent on a link,
    // delivered, answered, dropped) gives its share back with no code of
    // its own on that path. Move-only; an empty charge releases nothing.
    class Charge {
    public:
        Charge() = default;
        Charge(const Charge&) = delete;
        Charge& operator=(const Charge&) = delete;
        Charge(Charge&& other) noexcept { *this = std::move(other); }
        Charge& operator=(Charge&& other) noexcept {
            if (this != &other) {
                release();
                budget_ = std::exchange(other.budget_, nullptr);
                account_ = std::exchange(other.account_, nullptr);
                bytes_ = std::exchange(other.bytes_, 0);
            }
            return *this;
        }
        ~Charge() { release(); }

        explicit operator bool() const { return budget_ != nullptr; }

    private:
        friend class HoldBudget;
        void release() {
            if (budget_) {
                budget_->release(account_, bytes_);
                budget_ = nullptr;
            }
        }
        HoldBudget* budget_ = nullptr;
        void* account_ = nullptr;  // the sender's entry in accounts_
        std::size_t bytes_ = 0;
    };

    explicit HoldBudget(Limits limits) : limits_(limits) {}
    HoldBudget(const HoldBudget&) = delete;
    HoldBudget& operator=(const HoldBudget&) = delete;

    // Charges one message of `bytes` (type and body) to `sender`. Returns
    // an empty charge, charging nothing, when the sender's share or the
    // node's total would go past its limit.
    Charge charge(const std::string& sender, std::size_t bytes) {
        bytes += kOverheadBytes;
        if (totalBytes_ + bytes > limits_.nodeBytes) {
            return Charge();
        }
        auto [it, added] = accounts_.try_emplace(sender);
        Account& account = it->second;
        if (account.messages + 1 > limits_.sessionMessages ||
            account.bytes + bytes > limits_.sessionBytes) {
            if (added) {
                accounts_.erase(it);
            }
            return Charge();
        }
        ++account.messages;
        account.bytes += bytes;
        totalBytes_ += bytes;
        ++totalMessages_;
        Charge c;
        c.budget_ = this;
        c.account_ = &*it;  // element addresses survive rehashing
        c.bytes_ = bytes;
        return c;
    }

    std::size_t totalBytes() const { return totalBytes_; }
    std::size_t totalMessages() const { return totalMessages_; }
    std::size_t sessionsCharged() const { return accounts_.size(); }
    std::size_t messagesOf(const std::string& sender) const {
        auto it = accounts_.find(sender);
        return it == accounts_.end() ? 0 : it->second.messages;
    }
    std::size_t bytesOf(const std::string& sender) const {
        auto it = accounts_.find(sender);
        return it == accounts_.end() ? 0 : it->second.bytes;
    }

private:
    struct Account {
        std::size_t messages = 0;
        std::size_t bytes = 0;
    };
    using Entry = std::pair<const std::string, Account>;

    void release(void* entry, std::size_t bytes) {
        auto* e = static_cast<Entry*>(entry);
        totalBytes_ -= bytes;
        --totalMessages_;
        e->second.bytes -= bytes;
        if (--e->second.messages == 0) {
            // A session that holds nothing costs no entry: senders that
            // come and go leave nothing behind.
            accounts_.erase(accounts_.find(e->first));
        }
    }

    Limits limits_;
    std::unordered_map<std::string, Account> accounts_;  // senders holding something
    std::size_t totalBytes_ = 0;
    std::size_t totalMessages_ = 0;
};

}  // namespace dwrtc
