#include "bootstrap_plan.h"

#include <algorithm>

namespace dwrtc {

const char* networkStateName(NetworkState state) {
    switch (state) {
    case NetworkState::Alone:
        return "alone";
    case NetworkState::Joining:
        return "joining";
    case NetworkState::InNetwork:
        return "in network";
    }
    return "unknown";
}

BootstrapPlan::BootstrapPlan(const std::vector<std::string>& entries, Clock::time_point start)
    : state_(entries.empty() ? NetworkState::Alone : NetworkState::Joining), since_(start) {
    for (const std::string& text : entries) {
        BootstrapEntry e;
        e.text = text;
        entries_.push_back(std::move(e));
        schedule_.push_back(Schedule{start, kFirstRetry});
    }
}

std::vector<std::size_t> BootstrapPlan::due(Clock::time_point now) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        // A sibling worker pings this node when it starts itself: once is
        // enough.
        if (entries_[i].outcome == EntryOutcome::Local) {
            continue;
        }
        Schedule& s = schedule_[i];
        if (now < s.next) {
            continue;
        }
        out.push_back(i);
        s.next = now + s.interval;
        s.interval = std::min(s.interval * 2, kLongestRetry);
    }
    return out;
}

void BootstrapPlan::tried(std::size_t entry, EntryOutcome outcome, std::string detail) {
    if (entry >= entries_.size()) {
        return;
    }
    BootstrapEntry& e = entries_[entry];
    // tries counts the tries in a row that found the same.
    if (e.outcome != outcome) {
        e.tries = 0;
        e.detail.clear();
    }
    if (!detail.empty()) {
        e.detail = std::move(detail);
    }
    e.outcome = outcome;
    ++e.tries;
}

bool BootstrapPlan::wantsProbe(std::size_t entry) const {
    if (entry >= entries_.size()) {
        return false;
    }
    const BootstrapEntry& e = entries_[entry];
    return e.outcome == EntryOutcome::NoAnswer && e.tries >= 3 && e.detail.empty();
}

unsigned BootstrapPlan::remoteEntries() const {
    return static_cast<unsigned>(std::count_if(
        entries_.begin(), entries_.end(),
        [](const BootstrapEntry& e) { return e.outcome != EntryOutcome::Local; }));
}

unsigned BootstrapPlan::answeredEntries() const {
    return static_cast<unsigned>(std::count_if(
        entries_.begin(), entries_.end(),
        [](const BootstrapEntry& e) { return e.outcome == EntryOutcome::Answered; }));
}

std::string BootstrapPlan::entryReport() const {
    std::string out;
    for (const BootstrapEntry& e : entries_) {
        if (e.outcome == EntryOutcome::Local) {
            continue;
        }
        if (!out.empty()) {
            out += "; ";
        }
        out += "\"" + e.text + "\" ";
        switch (e.outcome) {
        case EntryOutcome::Untried:
            out += "not tried yet";
            break;
        case EntryOutcome::Unresolvable:
            out += "does not resolve";
            break;
        case EntryOutcome::NoAnswer:
            out += "does not answer";
            break;
        case EntryOutcome::Answered:
            out += "answered";
            break;
        case EntryOutcome::Local:
            break;
        }
        if (!e.detail.empty()) {
            out += " (" + e.detail + ")";
        }
    }
    return out;
}

void BootstrapPlan::restartSchedules(Clock::time_point now) {
    for (Schedule& s : schedule_) {
        s.next = now;
        s.interval = kFirstRetry;
    }
}

std::vector<BootstrapPlan::LogLine> BootstrapPlan::observe(Clock::time_point now,
                                                           const std::vector<bool>& answered,
                                                           unsigned outside) {
    std::vector<LogLine> lines;
    for (std::size_t i = 0; i < entries_.size() && i < answered.size(); ++i) {
        BootstrapEntry& e = entries_[i];
        if (answered[i] && e.outcome != EntryOutcome::Local) {
            if (e.outcome != EntryOutcome::Answered) {
                e.detail.clear();
            }
            e.outcome = EntryOutcome::Answered;
        } else if (!answered[i] && e.outcome == EntryOutcome::Answered) {
            e.outcome = EntryOutcome::NoAnswer;
        }
    }

    NetworkState next = outside > 0           ? NetworkState::InNetwork
                        : remoteEntries() > 0 ? NetworkState::Joining
                                              : NetworkState::Alone;
    auto elapsedMs = [&] {
        return std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(now - since_).count());
    };
    std::string peers = std::to_string(outside) + " DHT node" + (outside == 1 ? "" : "s");

    if (next != state_) {
        NetworkState before = state_;
        if (next == NetworkState::InNetwork) {
            std::string through;
            for (const BootstrapEntry& e : entries_) {
                if (e.outcome == EntryOutcome::Answered) {
                    through += (through.empty() ? " through \"" : ", \"") + e.text + "\"";
                }
            }
            bool loud = warned_ || everInNetwork_;
            lines.push_back(
                {loud, std::string(everInNetwork_ ? "in the network again" : "in the network") +
                           ": " + peers + " outside this nginx answer" + through + " (after " +
                           elapsedMs() + " ms " + networkStateName(before) + ")"});
            everInNetwork_ = true;
        } else if (before == NetworkState::InNetwork && next == NetworkState::Joining) {
            restartSchedules(now);
            lines.push_back({true,
                             "no DHT node outside this nginx answers any more; trying the "
                             "dwrtc_bootstrap nodes again: " +
                                 entryReport()});
        } else if (before == NetworkState::InNetwork) {
            lines.push_back({false,
                             "alone again: no DHT node outside this nginx answers (no "
                             "dwrtc_bootstrap entry names another node)"});
        }
        state_ = next;
        since_ = now;
        warned_ = false;
        return lines;
    }

    if (state_ == NetworkState::Joining && !warned_ && now - since_ >= kWarnAfter) {
        warned_ = true;
        lines.push_back({true, "not in the network after " + elapsedMs() +
                                   " ms: no dwrtc_bootstrap node answered: " + entryReport() +
                                   "; trying again every " +
                                   std::to_string(kLongestRetry.count() / 1000) +
                                   " s; sessions here reach only this nginx until one answers"});
    }
    return lines;
}

}  // namespace dwrtc
