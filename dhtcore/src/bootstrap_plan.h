// BootstrapPlan: the decisions of joining the network and staying in it,
// with no sockets and no clock of its own. Which bootstrap entries to try
// now (each on its own back-off, so a bootstrap node that starts later is
// joined within seconds of it coming up), where the node stands (alone,
// joining, in the network) and which state changes the operator hears of,
// once each. Bootstrapper (bootstrap.h) does the resolving, pinging and
// probing and reports here. Not thread-safe: one thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace dwrtc {

enum class NetworkState {
    Alone,      // no DHT node outside this nginx answers, and none is expected:
                // no bootstrap entry names one (the first node of a network)
    Joining,    // bootstrap entries name other nodes; none of them answers yet
    InNetwork,  // some DHT node outside this nginx answers
};
const char* networkStateName(NetworkState state);

// What the last try of one bootstrap entry found.
enum class EntryOutcome {
    Untried,
    Local,         // it names this nginx's own DHT ports (a sibling worker)
    Unresolvable,  // the name has no address (yet)
    NoAnswer,      // pinged, no DHT node of this network answered from there
    Answered,      // a DHT node answered from one of its addresses
};

struct BootstrapEntry {
    std::string text;  // as configured, "host:port"
    EntryOutcome outcome = EntryOutcome::Untried;
    std::string detail;  // why it did not answer, when known
    unsigned tries = 0;
};

class BootstrapPlan {
public:
    using Clock = std::chrono::steady_clock;
    // The first retry of an entry, doubled at every try up to the longest.
    static constexpr std::chrono::milliseconds kFirstRetry{1000};
    static constexpr std::chrono::milliseconds kLongestRetry{8000};
    // Joining this long without an answer is worth a warning.
    static constexpr std::chrono::seconds kWarnAfter{10};

    struct LogLine {
        bool warning;
        std::string text;
    };

    BootstrapPlan(const std::vector<std::string>& entries, Clock::time_point start);

    // Entries whose next try is due; each one's next try moves back by its
    // back-off. In the network too, at the longest interval: a bootstrap
    // node that restarted (a new identity at the same address, knowing no
    // one) hears of this node again within seconds. One datagram an entry.
    std::vector<std::size_t> due(Clock::time_point now);

    // What a try found (Local, Unresolvable, NoAnswer), or a later probe's
    // finer reason for a NoAnswer. Answered comes from observe().
    void tried(std::size_t entry, EntryOutcome outcome, std::string detail = {});

    // Whether the entry has gone unanswered long enough that the reason is
    // worth a probe (once per address set; the Bootstrapper remembers).
    bool wantsProbe(std::size_t entry) const;

    // The routing table now: which entries answered, how many DHT nodes
    // outside this nginx answer. Returns what the operator should hear of
    // the change, if anything (once per state change).
    std::vector<LogLine> observe(Clock::time_point now, const std::vector<bool>& answered,
                                 unsigned outside);

    NetworkState state() const { return state_; }
    const std::vector<BootstrapEntry>& entries() const { return entries_; }
    // Entries that name other nodes (not this nginx, not yet known to be).
    unsigned remoteEntries() const;
    unsigned answeredEntries() const;

private:
    struct Schedule {
        Clock::time_point next;
        std::chrono::milliseconds interval = kFirstRetry;
    };
    std::string entryReport() const;
    void restartSchedules(Clock::time_point now);

    std::vector<BootstrapEntry> entries_;
    std::vector<Schedule> schedule_;
    NetworkState state_;
    Clock::time_point since_;  // of the current state
    bool warned_ = false;      // about the current Joining spell
    bool everInNetwork_ = false;
};

}  // namespace dwrtc
