// The router's part in chosen PeerJS ids (dwrtc/peerjs_id.h) across nodes.
//
// Sending: a message for a chosen id goes to the node that the id's DHT
// records name as its live holder (Directory::lookupChosenId), remembered
// for a while; if it is not there any more, that node answers "notfound",
// the sender is told (the PeerJS dialect makes it an EXPIRE) and the place
// is forgotten. A session that holds a chosen id speaks as it to peers that
// take chosen ids (their hello said "chosen":1).
//
// Receiving: a node is believed to speak as a chosen id only while the
// DHT names it as the id's holder. The first message of a chosen id on a
// link waits, with those after it, for that check; a message as an id the
// peer does not hold is dropped, answered "notfound" (an honest node whose
// record had not spread yet tells its sender), and logged once per link
// and id. The verdict is checked again once it is kChosenSenderRecheck old,
// while messages keep flowing under the old one.
#include <chrono>

#include "dwrtc/peerjs_id.h"
#include "dwrtc/session_id.h"
#include "router.h"

namespace dwrtc {

namespace {

// How long where a chosen id was found is believed without a lookup. A
// chosen id moves only with its session (a reconnect on another node), and
// then its old node answers "notfound", which forgets the place at once.
constexpr auto kChosenPlaceLife = std::chrono::seconds(10);
constexpr std::size_t kMaxChosenPlaces = 4096;
// How long a peer's word that it holds a chosen id stands before the DHT
// is asked again: a node that no longer holds an id (taken over, or a rogue
// node that once did) is believed for at most this long.
constexpr auto kChosenSenderRecheck = std::chrono::seconds(10);
// A verdict unused for this long is forgotten.
constexpr auto kChosenSenderForget = std::chrono::seconds(60);

}  // namespace

void Router::routeChosen(const std::string& sender, ClientMessage message, bool quiet) {
    const std::string id = message.recipient;
    auto place = chosenPlaces_.find(id);
    if (place != chosenPlaces_.end() && now_() < place->second.until) {
        routeToNode(place->second.node, sender, std::move(message.recipient),
                    std::move(message.type), std::move(message.body), 0, HoldBudget::Charge(),
                    quiet);
        return;
    }
    // Until the lookup answers, the message waits here, charged to its
    // sender as every held message is.
    HoldBudget::Charge charge;
    if (!chargeHeld(charge, sender, id, message.type, message.body)) {
        return;
    }
    auto waiting = chosenLookups_.find(id);
    if (waiting != chosenLookups_.end()) {
        if (waiting->second.size() >= config_.queueLimit) {
            tell(sender, Answer::QueueFull, id);
            return;
        }
        waiting->second.push_back(ChosenWaiting{sender, std::move(message.type),
                                                std::move(message.body), std::move(charge), quiet});
        return;
    }
    if (!mayLookUp(sender)) {
        tell(sender, Answer::LookupLimited, id);
        return;
    }
    chosenLookups_[id].push_back(ChosenWaiting{sender, std::move(message.type),
                                               std::move(message.body), std::move(charge), quiet});
    LinkTransport* links = &links_;
    directory_.lookupChosenId(id, [this, links, id](std::optional<std::string> node) {
        links->post(
            [this, id, node = std::move(node)]() mutable { onChosenLookup(id, std::move(node)); });
    });
}

void Router::onChosenLookup(const std::string& id, std::optional<std::string> node) {
    auto it = chosenLookups_.find(id);
    if (it == chosenLookups_.end()) {
        return;
    }
    std::deque<ChosenWaiting> waiting = std::move(it->second);
    chosenLookups_.erase(it);
    // Held here: its session holds it a moment ago or from a moment on,
    // and the sessions' own thread delivers what is for it; this one came
    // in between.
    if (!node || *node == self_) {
        log_(DWRTC_LOG_DEBUG, "no node holds chosen id " + id);
        for (ChosenWaiting& w : waiting) {
            if (!w.quiet) {
                tell(w.sender, Answer::NotFound, id);
            }
        }
        return;
    }
    if (chosenPlaces_.size() < kMaxChosenPlaces || chosenPlaces_.count(id)) {
        chosenPlaces_[id] = ChosenPlace{*node, now_() + kChosenPlaceLife};
    }
    for (ChosenWaiting& w : waiting) {
        routeToNode(*node, w.sender, id, std::move(w.type), std::move(w.body), 0,
                    std::move(w.charge), w.quiet);
    }
}

void Router::admitChosen(LinkId id, LinkState& state, const LinkFrame& frame) {
    ++state.unacked;
    ++state.received;
    NodeStats::add(stats_->links.receivedOverLinks);
    const std::uint64_t number = state.received;
    auto now = now_();
    auto known = state.chosenSenders.find(frame.sender);
    bool check = false;
    if (known == state.chosenSenders.end()) {
        if (state.chosenSenders.size() + state.ownedSenders.size() >= config_.linkOwnedSenders) {
            // Verdicts no one waits for and that are old make room first.
            for (auto c = state.chosenSenders.begin(); c != state.chosenSenders.end();) {
                bool stale = c->second.state != ChosenSender::State::Checking &&
                             now - c->second.checkedAt >= kChosenSenderRecheck;
                c = stale ? state.chosenSenders.erase(c) : std::next(c);
            }
        }
        if (state.chosenSenders.size() + state.ownedSenders.size() >= config_.linkOwnedSenders) {
            NodeStats::add(stats_->links.linksRefusedForClaims);
            refuseLink(id, DWRTC_LOG_WARN,
                       "node " + frame.node + " speaks for more than " +
                           std::to_string(config_.linkOwnedSenders) +
                           " owned and chosen ids on one link (dwrtc_link_claims)");
            return;
        }
        known = state.chosenSenders.emplace(frame.sender, ChosenSender()).first;
        check = true;
    } else if (known->second.state != ChosenSender::State::Checking && !known->second.rechecking &&
               now - known->second.checkedAt >= kChosenSenderRecheck) {
        known->second.rechecking = true;
        check = true;
    }
    ChosenSender& sender = known->second;
    if (sender.state == ChosenSender::State::Checking) {
        // What waits is bounded per id and per link; past that the sending
        // node hears "notfound" and tells its sender.
        std::size_t bytes = frame.type.size() + frame.body.size();
        if (sender.waiting.size() >= config_.queueLimit ||
            state.chosenWaitingBytes + bytes > config_.sessionHoldBytes) {
            links_.send(id, serializeLinkNotFound(self_, frame.sender, frame.recipient, number));
        } else {
            state.chosenWaitingBytes += bytes;
            sender.waiting.push_back(ChosenSender::Frame{frame, number});
        }
    } else if (sender.state == ChosenSender::State::Holds) {
        deliverFromLink(id, frame, number);
    } else {
        dropChosen(id, state.node, sender, frame, number);
    }
    if (!check) {
        return;
    }
    // Each check is a DHT search: the link's claim checks pay for it. The
    // link may be refused here; nothing of its state is touched after.
    if (!spendClaimCheck(id, state)) {
        return;
    }
    LinkTransport* links = &links_;
    std::string node = state.node;
    directory_.lookupChosenId(frame.sender, [this, links, id, node, chosen = frame.sender](
                                                std::optional<std::string> holder) {
        bool holds = holder && *holder == node;
        links->post([this, id, chosen, holds] { onChosenSenderChecked(id, chosen, holds); });
    });
}

void Router::dropChosen(LinkId id, const std::string& node, ChosenSender& sender,
                        const LinkFrame& frame, std::uint64_t number) {
    if (!sender.logged) {
        sender.logged = true;
        log_(DWRTC_LOG_WARN, "node " + node + " sent a message as chosen id \"" + frame.sender +
                                 "\", which the DHT does not show it holding; dropped");
    }
    links_.send(id, serializeLinkNotFound(self_, frame.sender, frame.recipient, number));
}

void Router::onChosenSenderChecked(LinkId link, const std::string& id, bool holds) {
    auto ls = linkState_.find(link);
    if (ls == linkState_.end()) {
        return;
    }
    LinkState& state = ls->second;
    auto it = state.chosenSenders.find(id);
    if (it == state.chosenSenders.end()) {
        return;
    }
    ChosenSender& sender = it->second;
    sender.state = holds ? ChosenSender::State::Holds : ChosenSender::State::NotHeld;
    sender.checkedAt = now_();
    sender.rechecking = false;
    std::deque<ChosenSender::Frame> waiting = std::move(sender.waiting);
    sender.waiting.clear();
    for (ChosenSender::Frame& f : waiting) {
        state.chosenWaitingBytes -= f.frame.type.size() + f.frame.body.size();
        if (holds) {
            deliverFromLink(link, f.frame, f.number);
        } else {
            dropChosen(link, state.node, sender, f.frame, f.number);
        }
    }
}

void Router::handleChosenNotFound(LinkId id, LinkState& state, const LinkFrame& frame) {
    // The sender is a session here that spoke as its chosen id: the one that
    // holds it now is told (none: nobody to tell).
    LinkFrame answer = frame;
    if (isChosenPeerJsId(frame.sender)) {
        answer.sender = chosen_.sessionOf ? chosen_.sessionOf(frame.sender) : std::string();
        if (answer.sender.empty()) {
            return;
        }
    }
    if (isOwnedId(answer.recipient)) {
        handleOwnedNotFound(state, answer);
        return;
    }
    if (!isChosenPeerJsId(answer.recipient)) {
        // Only the node a message went to can say its recipient is missing.
        if (nodePrefixOfCanonical(answer.recipient) != state.node) {
            refuseLink(id, DWRTC_LOG_WARN,
                       "node " + state.node + " answered for a session of another node");
            return;
        }
    } else {
        // The id is not where it was found: look again next time.
        auto place = chosenPlaces_.find(answer.recipient);
        if (place != chosenPlaces_.end() && place->second.node == state.node) {
            chosenPlaces_.erase(place);
        }
    }
    tellNotFound(state, answer.sender, answer.recipient, answer.number);
}

void Router::forgetChosen() {
    auto now = now_();
    for (auto p = chosenPlaces_.begin(); p != chosenPlaces_.end();) {
        p = now >= p->second.until ? chosenPlaces_.erase(p) : std::next(p);
    }
    for (auto& [link, state] : linkState_) {
        for (auto c = state.chosenSenders.begin(); c != state.chosenSenders.end();) {
            bool old = c->second.state != ChosenSender::State::Checking &&
                       now - c->second.checkedAt >= kChosenSenderForget;
            c = old ? state.chosenSenders.erase(c) : std::next(c);
        }
    }
}

}  // namespace dwrtc
