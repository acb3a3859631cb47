#include "router.h"

#include <openssl/sha.h>

#include <algorithm>
#include <vector>

#include "dwrtc/dwrtc.h"
#include "dwrtc/host_port.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/session_id.h"

namespace dwrtc {

namespace {

// How often a node whose record is missing is looked up again while its
// messages wait (RouterConfig::lookupWait): 0.5, 1, then every 2 s after
// the misses before, and once more when the wait ends. A node welcomes
// sessions once its record is stored, or after dwrtc_publish_wait when
// storing takes longer, as it can while many nodes have just left (each
// silent departure costs a DHT search about a second): a session that
// exists must not be answered "not found" because its node's record is
// late. A node that left on purpose has a withdrawn record, answered "not
// found" at once. Key-owned ids (below) use the first three delays. The
// retries run from the once-a-second tick, so the delays are lower bounds.
constexpr int kMissingLookupRetries = 3;
constexpr auto kMissingLookupDelay = std::chrono::milliseconds(500);
constexpr auto kMissingLookupLongest = std::chrono::milliseconds(2000);

// A receiver acknowledges at the end of a WebSocket message once this many
// msg frames wait for it, and the rest after kAckDelay: an ack per
// message cost a third more CPU per message at low load (each message is
// its own WebSocket message then, and each ack wakes both link threads),
// while an ack that waits long makes a sender whose link breaks hear
// "unreachable" for messages that did arrive.
constexpr std::uint32_t kAckBatch = 64;
constexpr auto kAckDelay = std::chrono::milliseconds(25);

// A node found missing is remembered this long after its last message, so
// that messages for it are answered at once rather than each costing a
// lookup; then it is forgotten, so ids that no one uses take no memory.
constexpr auto kForgetMissingAfter = std::chrono::seconds(30);

// Never-claimed key-owned ids remembered at once (each for the retry
// delay): beyond, the next one is not remembered and costs lookups again.
constexpr std::size_t kMaxUnclaimedIds = 4096;

// While a key-owned id is away, its claims are looked up this often: the
// time from its return (a new claim) to the delivery of what waited for it.
constexpr auto kAwayLookupInterval = std::chrono::milliseconds(250);
// ... unless the DHT tells of its claims as they are stored (a listen on
// the id, Directory::followId): then a lookup now and then only covers a
// claim the listen missed, and a flood of values under the id is read once
// rather than four times a second.
constexpr auto kAwayFollowedLookupInterval = std::chrono::seconds(2);

// A message to a key-owned id is kept this long after its acknowledgement
// (and at most this many per link): the receiving node hands it to its
// session a moment after it acknowledges it, and a session that is just
// closing cannot take it. Then it comes back, numbered, and is held.
constexpr auto kKeepAcked = std::chrono::seconds(5);
constexpr std::size_t kKeepAckedMax = 1024;

// Hints where peers' siblings are ("siblings" frames): at most this many,
// each for this long. A hint costs a connect at most, whose hello proves
// who answers, and only when a message waits for that node: a proven peer
// that lies makes this node try an address on the peer's own host, once.
constexpr std::size_t kMaxSiblingHints = 1024;
constexpr auto kSiblingHintLife = std::chrono::seconds(60);

// The SHA-256 of a claim's text: what a link remembers of a claim that
// held. A digest, not a weaker hash, since a claim that matched it would
// be believed without a check.
std::string sha256(std::string_view text) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

// An address for log lines and hints: IPv4 peers of a dual-stack socket
// show as "::ffff:a.b.c.d".
std::string plainAddress(std::string address) {
    constexpr std::string_view kMapped = "::ffff:";
    if (address.compare(0, kMapped.size(), kMapped) == 0 &&
        address.find('.') != std::string::npos) {
        address.erase(0, kMapped.size());
    }
    return address;
}

}  // namespace

Router::Router(RouterConfig config, std::shared_ptr<const NodeKey> key, LinkTransport& links,
               Directory& directory, HostQueue& host, LogFn log, NowFn now, NodeStats* stats)
    : stats_(stats ? stats : &unusedStats_),
      config_(std::move(config)),
      key_(std::move(key)),
      self_(key_->id()),
      links_(links),
      directory_(directory),
      host_(host),
      log_(std::move(log)),
      now_(std::move(now)),
      budget_(HoldBudget::Limits{config_.sessionHoldMessages, config_.sessionHoldBytes,
                                 config_.nodeHoldBytes}) {
    // The public host as a record's link address spells it.
    HostPort own;
    if (!config_.publicHost.empty() &&
        parseLinkUrl("wss://" + formatHostPort(config_.publicHost, 1), own)) {
        publicHost_ = own.host;
    }
}

void Router::openSession(const std::string& id) { sessions_.insert(id); }

void Router::closeSession(const std::string& id) {
    sessions_.erase(id);
    lookupTokens_.erase(id);
}

bool Router::mayLookUp(const std::string& sender) {
    if (config_.lookupRate == 0) {
        return true;
    }
    auto now = now_();
    auto [it, added] = lookupTokens_.try_emplace(sender);
    LookupTokens& t = it->second;
    double burst = config_.lookupBurst;
    if (added) {
        t.tokens = burst;
    } else {
        double seconds = std::chrono::duration<double>(now - t.at).count();
        t.tokens = std::min(burst, t.tokens + seconds * config_.lookupRate);
    }
    t.at = now;
    if (t.tokens < 1) {
        return false;
    }
    t.tokens -= 1;
    return true;
}

// Every answer to a local sender about a message it sent goes through here,
// and is counted.
void Router::tell(const std::string& session, Answer answer, std::string_view recipient) {
    // A session's message to itself is a node's notice to another node
    // (kIdTakenType): whether it arrives is no news to the session.
    if (!sessions_.count(session) || session == recipient) {
        return;
    }
    switch (answer) {
        case Answer::NotFound:
            NodeStats::add(stats_->links.notFound);
            host_.pushDelivery(session, serializeNotFound(recipient));
            return;
        case Answer::Unreachable:
            NodeStats::add(stats_->links.unreachable);
            host_.pushDelivery(session, serializeError("unreachable", recipient));
            return;
        case Answer::BudgetFull:
            NodeStats::add(stats_->links.budgetFull);
            [[fallthrough]];
        case Answer::QueueFull:
            NodeStats::add(stats_->links.queueFull);
            host_.pushDelivery(session, serializeError("queue full", recipient));
            return;
        case Answer::NotBackInTime:
            NodeStats::add(stats_->links.notFound);
            host_.pushDelivery(session, serializeError("not back in time", recipient));
            return;
        case Answer::LookupLimited:
            NodeStats::add(stats_->links.lookupsLimited);
            host_.pushDelivery(session, serializeError("rate limited", recipient));
            return;
    }
}

void Router::tellRemoteNotFound(const std::string& sender, const std::string& recipient,
                                LinkId link, std::uint64_t number) {
    if (link != 0 && number != 0) {
        auto it = linkState_.find(link);
        if (it != linkState_.end() && !it->second.node.empty()) {
            links_.send(link, serializeLinkNotFound(self_, sender, recipient, number));
            return;
        }
    }
    // Any proven link with the sender's node will do: it knows who we are.
    // A key-owned sender's node is the one whose link brought its claim; a
    // chosen id's, one whose link it was believed on.
    bool owned = isOwnedId(sender);
    bool chosen = isChosenPeerJsId(sender);
    std::string_view node = owned || chosen ? std::string_view() : nodePrefixOfCanonical(sender);
    for (auto& [id, state] : linkState_) {
        auto speaksAs = [&] {
            auto c = state.chosenSenders.find(sender);
            return c != state.chosenSenders.end() &&
                   c->second.state == ChosenSender::State::Holds;
        };
        if (owned ? state.ownedSenders.count(sender) > 0
                  : chosen ? speaksAs() : state.node == node) {
            links_.send(id, serializeLinkNotFound(self_, sender, recipient));
            return;
        }
    }
    log_(DWRTC_LOG_DEBUG, "no link left to node " + std::string(node) +
                              " to say session " + recipient + " is gone");
}

void Router::routeRemote(const std::string& sender, ClientMessage message, bool quiet) {
    if (isOwnedId(message.recipient)) {
        routeOwned(sender, std::move(message));
        return;
    }
    if (isChosenPeerJsId(message.recipient)) {
        routeChosen(sender, std::move(message), quiet);
        return;
    }
    std::string prefix(nodePrefixOfCanonical(message.recipient));
    routeToNode(prefix, sender, std::move(message.recipient), std::move(message.type),
                std::move(message.body), 0, HoldBudget::Charge(), quiet);
}

bool Router::chargeHeld(HoldBudget::Charge& charge, const std::string& sender,
                        const std::string& recipient, const std::string& type,
                        const std::string& body) {
    if (!charge) {
        charge = budget_.charge(sender, type.size() + body.size());
    }
    if (charge) {
        return true;
    }
    tell(sender, Answer::BudgetFull, recipient);
    return false;
}

void Router::routeToNode(const std::string& prefix, const std::string& sender,
                         std::string recipient, std::string type, std::string body,
                         std::uint64_t seq, HoldBudget::Charge charge, bool quiet) {
    auto it = peers_.find(prefix);
    if (it == peers_.end()) {
        // A node this one knows nothing of costs an entry and a lookup, and
        // the message waits for them: a sender past its budget or its
        // lookups costs neither. Messages of key-owned ids (seq) go where a
        // claim said, which was looked up already; a session's notice to
        // itself is the node's own.
        if (!chargeHeld(charge, sender, recipient, type, body)) {
            return;
        }
        if (seq == 0 && sender != recipient && !mayLookUp(sender)) {
            tell(sender, Answer::LookupLimited, recipient);
            return;
        }
        it = peers_.emplace(prefix, Peer(config_.queueLimit)).first;
    }
    Peer& peer = it->second;
    auto now = now_();
    peer.lastUsed = now;

    if (peer.state == Peer::State::Unreachable || peer.state == Peer::State::Missing) {
        bool missing = peer.state == Peer::State::Missing;
        if (now < peer.retryAt) {
            Answer answer = missing && peer.gone ? Answer::NotFound : Answer::Unreachable;
            if (quiet && answer == Answer::NotFound) {
                return;
            }
            if (seq != 0) {
                bounced(recipient,
                        Held{seq, sender, std::move(type), std::move(body), now,
                             std::move(charge)},
                        answer);
            } else {
                tell(sender, answer, recipient);
            }
            return;
        }
        // Time to try again, once: one lookup, or one connect to the
        // address just looked up, decides.
        peer.state = Peer::State::Idle;
        if (missing) {
            // One lookup decides: the wait was spent already.
            peer.missingLookups = 1;
            peer.missingSince = now - config_.lookupWait;
        } else {
            peer.lookedUpAgain = true;
        }
    }

    if (peer.state == Peer::State::Open) {
        sendMessage(peer.link, sender, recipient, type, body, seq, quiet);
        return;
    }
    // Until the link is up, messages wait here in arrival order, so one
    // recipient sees them in the order they were sent.
    if (!chargeHeld(charge, sender, recipient, type, body)) {
        return;
    }
    if (!peer.waiting.push(recipient, Waiting{sender, std::move(type), std::move(body), seq,
                                              std::move(charge), quiet})) {
        tell(sender, Answer::QueueFull, recipient);
        return;
    }
    if (peer.state == Peer::State::Idle) {
        if (peer.record) {
            connect(prefix, peer);
        } else {
            startLookup(prefix, peer);
        }
    }
}

// --- Key-owned ids -----------------------------------------------------------
//
// A message to a key-owned id goes where the id's newest claim says. If it
// comes back (the session there closed, the node is gone), it is held, in
// the order its sender sent it, until a newer claim shows where the id is
// now, or the hold time runs out. All of it stays on this node, with the
// sender: no node hands another node's messages on.

void Router::openOwned(const IdClaim& claim) {
    sessions_.insert(claim.id);
    ownedSessions_[claim.id] = encodeIdClaim(claim);
    directory_.publishId(claim);
    // A session of the id on another node is told that it was taken over,
    // by its node: through a message of the id to itself, with this claim.
    LinkTransport* links = &links_;
    std::uint64_t time = claim.time;
    std::string id = claim.id;
    directory_.lookupId(
        id,
        [this, links, id, time](std::optional<IdClaim> older) {
            if (!older || older->time >= time) {
                return;
            }
            links->post([this, id, node = older->node] {
                auto mine = ownedSessions_.find(id);
                if (mine != ownedSessions_.end()) {
                    routeToNode(node, id, id, std::string(kIdTakenType), mine->second, 0);
                }
            });
        },
        self_);
    unclaimedIds_.erase(claim.id);
    auto it = idRoutes_.find(claim.id);
    if (it == idRoutes_.end()) {
        return;
    }
    IdRoute& route = it->second;
    route.state = IdRoute::State::Known;
    route.node = self_;
    route.time = std::max(route.time, claim.time);
    flushHeld(claim.id, route);
}

std::string Router::claimOf(const std::string& id) const {
    auto it = ownedSessions_.find(id);
    return it == ownedSessions_.end() ? std::string() : it->second;
}

void Router::closeOwned(const std::string& id) {
    sessions_.erase(id);
    lookupTokens_.erase(id);
    ownedSessions_.erase(id);
    directory_.withdrawId(id);
}

void Router::routeOwned(const std::string& sender, ClientMessage message) {
    const std::string& id = message.recipient;
    auto now = now_();
    auto unclaimed = unclaimedIds_.find(id);
    if (unclaimed != unclaimedIds_.end()) {
        if (now < unclaimed->second) {
            tell(sender, Answer::NotFound, id);
            return;
        }
        unclaimedIds_.erase(unclaimed);  // time to look again
    }
    if (!idRoutes_.count(id) && !mayLookUp(sender)) {
        tell(sender, Answer::LookupLimited, id);
        return;
    }
    auto [it, added] = idRoutes_.try_emplace(id);
    IdRoute& route = it->second;
    route.lastUsed = now;
    Held held{route.nextSeq++, sender, std::move(message.type), std::move(message.body), now,
              HoldBudget::Charge()};
    if (route.state == IdRoute::State::Known && route.held.empty()) {
        dispatchOwned(id, route, std::move(held));
        return;
    }
    std::size_t limit =
        route.state == IdRoute::State::Away ? config_.holdMessages : config_.queueLimit;
    if (route.held.size() >= limit) {
        tell(sender, Answer::QueueFull, id);
        return;
    }
    if (!chargeHeld(held.charge, sender, id, held.type, held.body)) {
        if (added) {
            idRoutes_.erase(it);  // nothing waits for it: no lookup
        }
        return;
    }
    route.held.push_back(std::move(held));
    if (added) {
        startIdLookup(id, route);
    }
}

void Router::dispatchOwned(const std::string& id, IdRoute& route, Held message) {
    if (route.node == self_) {
        if (sessions_.count(id)) {
            NodeStats::add(stats_->links.deliveredFromLinks);
            host_.pushDelivery(id, serializeDelivery(message.type, message.sender, id,
                                                     message.body));
            return;
        }
        bounced(id, std::move(message), Answer::NotFound);
        return;
    }
    std::string node = route.node;
    routeToNode(node, message.sender, id, std::move(message.type), std::move(message.body),
                message.seq, std::move(message.charge));
}

void Router::bounced(const std::string& id, Held message, Answer answer) {
    auto it = idRoutes_.find(id);
    if (it == idRoutes_.end() || config_.holdMessages == 0) {
        if (it != idRoutes_.end()) {
            it->second.state = IdRoute::State::LookingUp;  // ask the DHT next time
            if (!it->second.looking) {
                startIdLookup(id, it->second);
            }
        }
        tell(message.sender, answer, id);
        return;
    }
    IdRoute& route = it->second;
    auto now = now_();
    if (route.state != IdRoute::State::Away) {
        route.state = IdRoute::State::Away;
        route.awaySince = now;
        startFollowing(id, route);
        route.lookupAt = now + awayLookupInterval(route);
        links_.callSoon(kAwayLookupInterval);
    }
    if (route.held.size() >= config_.holdMessages) {
        tell(message.sender, Answer::QueueFull, id);
        return;
    }
    // A message that comes back from a link was not charged while it was
    // in flight: it is now, and may find its sender's share spent.
    if (!chargeHeld(message.charge, message.sender, id, message.type, message.body)) {
        return;
    }
    // In sequence order: messages that were in flight come back after
    // later ones were held.
    auto at = std::find_if(route.held.begin(), route.held.end(),
                           [&](const Held& h) { return h.seq > message.seq; });
    route.held.insert(at, std::move(message));
}

void Router::flushHeld(const std::string& id, IdRoute& route) {
    // What is still on a link may yet come back: sending the rest first
    // would let it overtake them.
    if (route.inflight > 0 || route.state != IdRoute::State::Known) {
        return;
    }
    std::deque<Held> held = std::move(route.held);
    route.held.clear();
    for (Held& h : held) {
        dispatchOwned(id, route, std::move(h));
    }
}

void Router::startIdLookup(const std::string& id, IdRoute& route) {
    route.looking = true;
    LinkTransport* links = &links_;
    directory_.lookupId(id, [this, links, id](std::optional<IdClaim> claim) {
        links->post([this, id, claim = std::move(claim)]() mutable {
            onIdLookup(id, std::move(claim));
        });
    });
}

void Router::onIdLookup(const std::string& id, std::optional<IdClaim> claim) {
    auto it = idRoutes_.find(id);
    if (it == idRoutes_.end()) {
        return;
    }
    IdRoute& route = it->second;
    route.looking = false;
    if (claim && config_.claimClock.tooFarAhead(claim->time)) {
        // The directory leaves such claims out; any other source is held
        // to the same rule.
        claim.reset();
    }
    bool away = route.state == IdRoute::State::Away;
    if (claim && (!away || claim->time > route.time)) {
        takeClaim(id, route, *claim);
        return;
    }
    if (away) {
        route.lookupAt = now_() + awayLookupInterval(route);
        return;
    }
    // A claim made a moment ago may not be stored yet: ask again a few
    // times, as for a node's record, before "not found".
    if (route.missingLookups < kMissingLookupRetries) {
        route.lookupAt = now_() + kMissingLookupDelay * (1 << route.missingLookups);
        ++route.missingLookups;
        links_.callSoon(kAwayLookupInterval);
        return;
    }
    // No one ever claimed the id, or not where this node can see it.
    log_(DWRTC_LOG_DEBUG, "no claim of id " + id + " in the DHT");
    auto now = now_();
    if (unclaimedIds_.size() >= kMaxUnclaimedIds) {
        for (auto u = unclaimedIds_.begin(); u != unclaimedIds_.end();) {
            u = now >= u->second ? unclaimedIds_.erase(u) : std::next(u);
        }
    }
    if (unclaimedIds_.size() < kMaxUnclaimedIds) {
        unclaimedIds_[id] = now + config_.retryDelay;
    }
    std::deque<Held> held = std::move(route.held);
    idRoutes_.erase(it);
    for (Held& h : held) {
        tell(h.sender, Answer::NotFound, id);
    }
}

void Router::takeClaim(const std::string& id, IdRoute& route, const IdClaim& claim) {
    route.state = IdRoute::State::Known;
    route.follow.reset();
    route.missingLookups = 0;
    route.node = claim.node;
    route.time = claim.time;
    if (claim.node != self_) {
        // The claim names the node's link address: a hint that saves a
        // lookup of the node. The link's hello proves the node or not.
        auto [peer, added] = peers_.try_emplace(claim.node, config_.queueLimit);
        if (!peer->second.record && peer->second.state == Peer::State::Idle &&
            !claim.links.empty()) {
            peer->second.record = NodeRecord{claim.node, claim.links};
        }
    }
    flushHeld(id, route);
}

void Router::startFollowing(const std::string& id, IdRoute& route) {
    LinkTransport* links = &links_;
    std::uint64_t token = directory_.followId(id, [this, links, id](IdClaim claim) {
        // On an OpenDHT thread: hand the claim to the routing thread.
        links->post([this, id, claim = std::move(claim)]() mutable {
            onIdClaimed(id, std::move(claim));
        });
    });
    route.follow = token ? IdFollow(directory_, id, token) : IdFollow();
}

Router::Clock::duration Router::awayLookupInterval(const IdRoute& route) const {
    return route.follow.active() ? Clock::duration(kAwayFollowedLookupInterval)
                                 : Clock::duration(kAwayLookupInterval);
}

void Router::onIdClaimed(const std::string& id, IdClaim claim) {
    auto it = idRoutes_.find(id);
    if (it == idRoutes_.end() || it->second.state != IdRoute::State::Away) {
        return;  // back already, or nothing waits for it any more
    }
    // The directory held it to the clock rule; any other source is too.
    if (config_.claimClock.tooFarAhead(claim.time) || claim.time <= it->second.time) {
        return;  // the claim the id left, or an older one
    }
    takeClaim(id, it->second, claim);
}

// Runs from onSoon() and onTick(): lookups of ids that are away or not
// found yet, the end of their hold time, and forgetting ids unused.
void Router::pollAway() {
    auto now = now_();
    bool again = false;
    for (auto it = idRoutes_.begin(); it != idRoutes_.end();) {
        const std::string& id = it->first;
        IdRoute& route = it->second;
        if (route.state == IdRoute::State::LookingUp) {
            if (!route.looking && route.missingLookups > 0) {
                if (now >= route.lookupAt) {
                    startIdLookup(id, route);
                }
                again = true;
            }
            ++it;
            continue;
        }
        if (route.state == IdRoute::State::Known) {
            // An id no one has written to for a while is forgotten: the
            // next message looks it up again.
            bool idle = route.held.empty() && route.inflight == 0 &&
                        now - route.lastUsed > config_.linkIdleTimeout;
            it = idle ? idRoutes_.erase(it) : std::next(it);
            continue;
        }
        while (!route.held.empty() && now - route.held.front().since >= config_.holdTime) {
            Held h = std::move(route.held.front());
            route.held.pop_front();
            tell(h.sender, Answer::NotBackInTime, id);
        }
        if (route.held.empty() && route.inflight == 0) {
            // Nothing waits: the next message looks the id up afresh.
            it = idRoutes_.erase(it);
            continue;
        }
        if (!route.looking && now >= route.lookupAt) {
            startIdLookup(id, route);
        }
        again = true;
        ++it;
    }
    if (again) {
        links_.callSoon(kAwayLookupInterval);
    }
}

void Router::startLookup(const std::string& prefix, Peer& peer) {
    peer.record.reset();
    peer.lookupStarted = now_();
    if (connectByHint(prefix, peer)) {
        return;
    }
    peer.state = Peer::State::LookingUp;
    LinkTransport* links = &links_;
    directory_.lookup(prefix, [this, links, prefix](std::optional<NodeRecord> record) {
        // On an OpenDHT thread: hand the answer to the routing thread.
        links->post([this, prefix, record] { onLookup(prefix, record); });
    });
}

void Router::onLookup(const std::string& prefix, std::optional<NodeRecord> record) {
    auto it = peers_.find(prefix);
    if (it == peers_.end() || it->second.state != Peer::State::LookingUp) {
        return;
    }
    Peer& peer = it->second;
    bool gone = record && record->gone;
    bool found = record && !gone && !record->links.empty();
    auto now = now_();
    stats_->addLookup(now - peer.lookupStarted, found);
    if (gone) {
        // The node stopped and said so: its sessions are gone with it.
        log_(DWRTC_LOG_DEBUG, "node " + prefix + " withdrew its record");
        markMissing(peer, true);
        return;
    }
    if (!found) {
        // A node hands out session ids as soon as it runs, a moment before
        // its record is stored or can be found: its messages wait while it
        // is looked for, and are delivered once its record appears.
        if (peer.missingLookups == 0) {
            peer.missingSince = now;
        }
        auto deadline = peer.missingSince + config_.lookupWait;
        if (now < deadline) {
            auto delay = std::min<RouterClock::duration>(
                kMissingLookupDelay * (1 << std::min(peer.missingLookups, 2)),
                kMissingLookupLongest);
            peer.state = Peer::State::WaitingToRetry;
            peer.retryAt = std::min(now + delay, deadline);
            ++peer.missingLookups;
            return;
        }
        log_(DWRTC_LOG_DEBUG, "node " + prefix + " is not in the DHT after " +
                                  std::to_string(config_.lookupWait.count()) + " ms");
        markMissing(peer, false);
        return;
    }
    peer.gone = false;
    peer.missingLookups = 0;
    peer.record = std::move(record);
    if (connectOnThisHost(prefix, peer)) {
        return;
    }
    connect(prefix, peer);
}

// No record of the node: its waiting senders hear "not found" if it
// withdrew its record (it stopped), else "unreachable", and so does every
// message for it until the retry delay has passed.
void Router::markMissing(Peer& peer, bool gone) {
    failWaiting(peer, gone ? Answer::NotFound : Answer::Unreachable);
    peer.state = Peer::State::Missing;
    peer.gone = gone;
    peer.missingLookups = 0;
    peer.retryAt = now_() + config_.retryDelay;
}

void Router::connect(const std::string& prefix, Peer& peer) {
    HostPort address;
    if (!parseLinkUrl(peer.record->links.front(), address)) {
        log_(DWRTC_LOG_WARN, "node " + prefix + " published an unusable link address \"" +
                                 peer.record->links.front() + "\"");
        peer.record.reset();
        connectFailed(prefix, peer, "its link address is unusable");
        return;
    }
    peer.state = Peer::State::Connecting;
    LinkId id = links_.connect(address.host, address.port);
    if (id == 0) {
        connectFailed(prefix, peer, "the connect failed at once");
        return;
    }
    peer.link = id;
    outbound_[id] = prefix;
}

void Router::connectFailed(const std::string& prefix, Peer& peer, const char* why) {
    peer.link = 0;
    if (peer.viaHint) {
        // The hint was wrong or is stale: the DHT decides, as if there had
        // been none.
        log_(DWRTC_LOG_DEBUG, "node " + prefix + " not reached where its sibling said (" +
                                  why + "); looking it up");
        peer.viaHint = false;
        auto hint = hints_.find(prefix);
        if (hint != hints_.end() && peer.record && !peer.record->links.empty() &&
            hint->second.url == peer.record->links.front()) {
            hints_.erase(hint);
        }
        startLookup(prefix, peer);
        return;
    }
    // A key-owned id on a node that cannot be reached may be back on
    // another node already: its messages wait for its next claim rather
    // than for this node to be looked up again and again.
    if (config_.holdMessages > 0) {
        holdOwnedWaiting(peer, Answer::Unreachable);
    }
    if (!peer.lookedUpAgain) {
        // The cached address may be stale (the node moved or restarted):
        // drop it and ask the DHT once more.
        peer.lookedUpAgain = true;
        log_(DWRTC_LOG_DEBUG, "node " + prefix + " unreachable; looking it up again");
        startLookup(prefix, peer);
        return;
    }
    markUnreachable(prefix, peer, why);
}

// Its link could not be made or broke: messages for it are answered at once
// until the retry delay has passed, and it is logged once, not per message,
// with where it was tried and what went wrong: the operator's first clue
// to a firewall or a wrong dwrtc_public_address on the other side.
void Router::markUnreachable(const std::string& prefix, Peer& peer, const std::string& why) {
    if (!peer.toldUnreachable) {
        peer.toldUnreachable = true;
        std::string at = peer.record && !peer.record->links.empty()
                             ? " at " + peer.record->links.front()
                             : std::string();
        log_(DWRTC_LOG_WARN, "node " + prefix + at + " is unreachable (" + why +
                                 "); messages for it are answered \"unreachable\" "
                                 "and it is tried again at most every " +
                                 std::to_string(config_.retryDelay.count()) + " ms");
    }
    failWaiting(peer, Answer::Unreachable);
    peer.state = Peer::State::Unreachable;
    peer.link = 0;
    peer.retryAt = now_() + config_.retryDelay;
}

void Router::sendMessage(LinkId id, const std::string& sender, const std::string& recipient,
                         std::string_view type, std::string_view body, std::uint64_t seq,
                         bool quiet) {
    LinkState& state = linkState_[id];
    bool toChosen = isChosenPeerJsId(recipient);
    if (toChosen && !state.takesChosen) {
        // A node of an older version would close the link on the frame.
        log_(DWRTC_LOG_DEBUG, "node " + state.node + " does not take chosen ids; " +
                                  "a message for " + recipient + " is answered \"not found\"");
        if (!quiet) {
            tell(sender, Answer::NotFound, recipient);
        }
        return;
    }
    // A session that holds a chosen id speaks as it where the peer
    // understands it, and as its session id elsewhere (still answerable).
    std::string chosenSender;
    if (state.takesChosen && chosen_.idOf && isNodeSessionId(sender)) {
        chosenSender = chosen_.idOf(sender);
    }
    std::string_view claim;
    if (isOwnedId(sender) && !state.claimsSent.count(sender)) {
        // The first message of a key-owned id on a link carries the claim
        // that lets this node speak for it.
        auto c = ownedSessions_.find(sender);
        if (c == ownedSessions_.end()) {
            return;  // the session closed meanwhile: there is no one to tell
        }
        claim = c->second;
        state.claimsSent.insert(sender);
    }
    links_.send(id, serializeLinkDeliver(self_, chosenSender.empty() ? sender : chosenSender,
                                         recipient, type, body, claim));
    NodeStats::add(stats_->links.sentOverLinks);
    InFlight sent;
    sent.quiet = quiet;
    sender.copy(sent.sender, sizeof sent.sender);
    if (toChosen) {
        sent.chosenRecipient = std::make_unique<std::string>(recipient);
    } else {
        recipient.copy(sent.recipient, sizeof sent.recipient);
    }
    if (seq != 0) {
        sent.copy = std::make_unique<Held>(
            Held{seq, sender, std::string(type), std::string(body), now_(), HoldBudget::Charge()});
        auto route = idRoutes_.find(recipient);
        if (route != idRoutes_.end()) {
            ++route->second.inflight;
        }
    }
    if (state.inflight.empty()) {
        state.ackAwaitedSince = now_();
    }
    state.inflight.push_back(std::move(sent));
}

void Router::flush(Peer& peer) {
    for (auto& [recipient, w] : peer.waiting.takeAll()) {
        sendMessage(peer.link, w.sender, recipient, w.type, w.body, w.seq, w.quiet);
    }
}

// A message in flight to a key-owned id is settled (acknowledged, or come
// back): once none is left, what was held for the id may go.
void Router::settled(InFlight& message) {
    if (!message.copy) {
        return;
    }
    message.copy.reset();
    auto route = idRoutes_.find(std::string(message.recipient, sizeof message.recipient));
    if (route != idRoutes_.end() && route->second.inflight > 0 &&
        --route->second.inflight == 0) {
        flushHeld(route->first, route->second);
    }
}

void Router::forgetLink(LinkId id) {
    auto it = linkState_.find(id);
    if (it == linkState_.end()) {
        return;
    }
    std::deque<InFlight> lost = std::move(it->second.inflight);
    std::string node = std::move(it->second.node);
    linkState_.erase(it);
    if (!lost.empty()) {
        log_(DWRTC_LOG_INFO, "a link to node " + node + " broke with " +
                                 std::to_string(lost.size()) +
                                 " messages not acknowledged; their senders are told");
    }
    for (InFlight& m : lost) {
        if (m.answered) {
            continue;
        }
        std::string recipient = m.recipientName();
        if (m.copy) {
            Held held = std::move(*m.copy);
            settled(m);
            bounced(recipient, std::move(held), Answer::Unreachable);
            continue;
        }
        tell(std::string(m.sender, sizeof m.sender), Answer::Unreachable, recipient);
    }
}

// A "not found" came back, on the link the message went out on, before its
// ack: if the link breaks before the ack, the sender must not hear
// "unreachable" too.
Router::InFlight* Router::markAnswered(LinkState& state, const std::string& sender,
                                       const std::string& recipient) {
    for (InFlight& m : state.inflight) {
        if (!m.answered && m.is(sender, recipient)) {
            m.answered = true;
            return &m;
        }
    }
    return nullptr;
}

// A "not found" from the node a message went to: its sender hears it,
// unless the message was one whose sender is not to be told (routeRemote).
// The frame numbers the message (0: a node that cannot say which); it may
// come after the message's ack.
void Router::tellNotFound(LinkState& state, const std::string& sender,
                          const std::string& recipient, std::uint64_t number) {
    bool quiet = false;
    if (number > 0 && number <= state.acked) {
        quiet = std::binary_search(state.quietAcked.begin(), state.quietAcked.end(), number);
    } else {
        InFlight* message = nullptr;
        if (number > state.acked && number - state.acked <= state.inflight.size()) {
            InFlight& candidate = state.inflight[number - state.acked - 1];
            if (!candidate.answered && candidate.is(sender, recipient)) {
                candidate.answered = true;
                message = &candidate;
            }
        } else if (number == 0) {
            message = markAnswered(state, sender, recipient);
        }
        quiet = message && message->quiet;
    }
    if (!quiet) {
        tell(sender, Answer::NotFound, recipient);
    }
}

// What waited for the node is answered, each to its sender; messages to
// key-owned ids are held instead when the id may turn up elsewhere.
void Router::failWaiting(Peer& peer, Answer answer) {
    holdOwnedWaiting(peer, answer);
    for (auto& [recipient, w] : peer.waiting.takeAll()) {
        if (!w.quiet || answer != Answer::NotFound) {
            tell(w.sender, answer, recipient);
        }
    }
}

void Router::holdOwnedWaiting(Peer& peer, Answer answer) {
    for (auto& [recipient, w] : peer.waiting.takeAll()) {
        if (w.seq != 0) {
            bounced(recipient,
                    Held{w.seq, w.sender, std::move(w.type), std::move(w.body), now_(),
                         std::move(w.charge)},
                    answer);
        } else {
            peer.waiting.push(recipient, std::move(w));
        }
    }
}

void Router::onLinkOpen(LinkId id, bool outbound, std::string_view binding) {
    NodeStats::add(outbound ? stats_->links.linksOut : stats_->links.linksIn);
    LinkState& state = linkState_[id];
    state = LinkState();
    state.outbound = outbound;
    state.binding.assign(binding);
    // The node that opened the link speaks first. The other answers only
    // once that hello is proven, so an unproven peer never makes this node
    // sign anything.
    if (outbound) {
        links_.send(id, serializeLinkHello(self_, makeLinkProof(*key_,
                                                                LinkRole::Initiator, binding,
                                                                config_.networkKey)));
    }
}

void Router::refuseLink(LinkId id, int level, const std::string& why) {
    std::string peer = links_.peerAddress(id);
    log_(level, "closing a node link " + std::string(peer.empty() ? "" : "with " + peer + " ") +
                    "(" + why + ")");
    forgetLink(id);
    links_.close(id);
}

void Router::onLinkFrame(LinkId id, std::string_view text) {
    auto state = linkState_.find(id);
    if (state == linkState_.end()) {
        return;  // refused a moment ago; the close is under way
    }
    LinkFrame frame;
    std::string why;
    if (!parseLinkFrame(text, frame, why)) {
        refuseLink(id, state->second.node.empty() ? DWRTC_LOG_INFO : DWRTC_LOG_WARN, why);
        return;
    }
    if (state->second.node.empty()) {
        if (frame.kind != LinkFrame::Kind::Hello) {
            refuseLink(id, DWRTC_LOG_INFO, "a frame before a proven hello");
            return;
        }
        handleHello(id, state->second, frame);
        return;
    }
    const std::string& node = state->second.node;
    if (frame.kind == LinkFrame::Kind::Hello) {
        refuseLink(id, DWRTC_LOG_WARN, "node " + node + " said hello twice");
    } else if (frame.node != node) {
        refuseLink(id, DWRTC_LOG_WARN,
                   "node " + node + " sent a frame in the name of node " + frame.node);
    } else if (frame.kind == LinkFrame::Kind::Deliver) {
        handleDeliver(id, state->second, frame);
    } else if (frame.kind == LinkFrame::Kind::Ack) {
        handleAck(id, state->second, frame.count);
    } else if (frame.kind == LinkFrame::Kind::Siblings) {
        handleSiblings(id, frame);
    } else if (frame.kind == LinkFrame::Kind::NotFound &&
               (isChosenPeerJsId(frame.recipient) || isChosenPeerJsId(frame.sender))) {
        handleChosenNotFound(id, state->second, frame);
    } else if (frame.kind == LinkFrame::Kind::NotFound && isOwnedId(frame.recipient)) {
        handleOwnedNotFound(state->second, frame);
    } else if (frame.kind == LinkFrame::Kind::NotFound) {
        // Only the node a message went to can say its recipient is missing.
        if (nodePrefixOfCanonical(frame.recipient) != node) {
            refuseLink(id, DWRTC_LOG_WARN,
                       "node " + node + " answered for a session of another node");
            return;
        }
        tellNotFound(state->second, frame.sender, frame.recipient, frame.number);
    }
}

void Router::handleHello(LinkId id, LinkState& state, const LinkFrame& frame) {
    // The peer plays the role opposite to ours.
    LinkRole peerRole = state.outbound ? LinkRole::Responder : LinkRole::Initiator;
    std::string why;
    if (frame.node == self_) {
        refuseLink(id, DWRTC_LOG_INFO, "a hello in this node's own name");
        return;
    }
    if (!verifyLinkProof(frame.node, frame.proof, peerRole, state.binding, config_.networkKey,
                         why)) {
        refuseLink(id, DWRTC_LOG_INFO,
                   "a hello for node " + frame.node + " that does not prove it: " + why);
        return;
    }
    std::string binding = std::move(state.binding);
    state.binding.clear();
    state.node = frame.node;
    state.takesSiblings = frame.takesSiblings;
    state.takesChosen = frame.takesChosen;
    links_.setProven(id);
    if (!state.outbound) {
        links_.send(id, serializeLinkHello(self_, makeLinkProof(*key_,
                                                                LinkRole::Responder, binding,
                                                                config_.networkKey)));
        sendSiblings(id, state);
        return;
    }
    sendSiblings(id, state);
    helloFromPeer(id, frame.node);
}

// The node at the far end of one of our links has proven who it is.
void Router::helloFromPeer(LinkId id, const std::string& node) {
    auto out = outbound_.find(id);
    if (out == outbound_.end()) {
        return;
    }
    auto it = peers_.find(out->second);
    if (it == peers_.end() || it->second.link != id) {
        return;
    }
    Peer& peer = it->second;
    if (node != out->second) {
        // Another node now holds that address: the record was stale.
        log_(DWRTC_LOG_INFO, "link to node " + out->second + " reached node " + node +
                                 " instead; looking it up again");
        outbound_.erase(out);
        forgetLink(id);
        links_.close(id);
        connectFailed(it->first, peer, "another node answers at its address");
        return;
    }
    peer.state = Peer::State::Open;
    peer.lookedUpAgain = false;
    if (peer.viaHint) {
        peer.viaHint = false;
        // Right this time: the next link to it (after an idle close or a
        // break) may start there again.
        peer.hintTried = false;
        NodeStats::add(stats_->links.linksViaSiblings);
        log_(DWRTC_LOG_DEBUG, "node " + node + " reached where its sibling said, at " +
                                  peer.record->links.front());
    }
    if (peer.toldUnreachable) {
        peer.toldUnreachable = false;
        log_(DWRTC_LOG_INFO, "node " + node + " is reachable again");
    }
    flush(peer);
}

void Router::handleDeliver(LinkId id, LinkState& state, const LinkFrame& frame) {
    // A node speaks only for its own sessions: one that speaks for another
    // node's is not to be believed in anything else either. For a key-owned
    // id, its own session is one whose owner signed a claim naming it; for
    // a chosen id, one the DHT names the node as the holder of.
    if (isChosenPeerJsId(frame.sender)) {
        admitChosen(id, state, frame);
        return;
    }
    if (isOwnedId(frame.sender)) {
        auto known = state.ownedSenders.find(frame.sender);
        std::string digest = frame.claim.empty() ? std::string() : sha256(frame.claim);
        if (!frame.claim.empty() && (known == state.ownedSenders.end() || known->second != digest)) {
            // A claim this link has not shown yet: checked (the same one
            // again, replayed or not, is not: its signature held).
            if (known == state.ownedSenders.end() &&
                state.ownedSenders.size() >= config_.linkOwnedSenders) {
                refuseLink(id, DWRTC_LOG_WARN,
                           "node " + frame.node + " speaks for more than " +
                               std::to_string(config_.linkOwnedSenders) +
                               " key-owned ids on one link (dwrtc_link_claims)");
                NodeStats::add(stats_->links.linksRefusedForClaims);
                return;
            }
            IdClaim claim;
            std::string why = "malformed";
            bool decoded = decodeIdClaim(frame.claim, claim);
            if (decoded && config_.claimClock.tooFarAhead(claim.time)) {
                // A replayed claim harvested with a time ahead, or a node
                // whose clock is off: believed, it would outrank the
                // owner's own claims.
                NodeStats::add(stats_->links.claimsAhead);
                refuseLink(id, DWRTC_LOG_WARN,
                           "node " + frame.node + " sent a message as id " + frame.sender +
                               " with a claim that is not believed (" +
                               config_.claimClock.whyNot(claim.time) + ")");
                return;
            }
            if (decoded && claim.id == frame.sender && claim.node == frame.node &&
                !spendClaimCheck(id, state)) {
                return;
            }
            if (!decoded || claim.id != frame.sender || claim.node != frame.node ||
                !verifyClaim(claim, why)) {
                refuseLink(id, DWRTC_LOG_WARN,
                           "node " + frame.node + " sent a message as id " + frame.sender +
                               " with a claim that does not hold (" + why + ")");
                return;
            }
            state.ownedSenders[frame.sender] = std::move(digest);
        } else if (known == state.ownedSenders.end()) {
            refuseLink(id, DWRTC_LOG_WARN,
                       "node " + frame.node + " sent a message as id " + frame.sender +
                           " without its claim");
            return;
        }
    } else if (nodePrefixOfCanonical(frame.sender) != frame.node) {
        refuseLink(id, DWRTC_LOG_WARN,
                   "node " + frame.node + " sent a message as session " + frame.sender +
                       " of another node");
        return;
    }
    ++state.unacked;
    ++state.received;
    NodeStats::add(stats_->links.receivedOverLinks);
    if (frame.type == kIdTakenType) {
        takenOver(id, state, frame);
        return;
    }
    deliverFromLink(id, frame, state.received);
}

void Router::deliverFromLink(LinkId id, const LinkFrame& frame, std::uint64_t number) {
    // The host knows a chosen id's session by its session id.
    std::string session;
    if (isChosenPeerJsId(frame.recipient)) {
        session = chosen_.sessionOf ? chosen_.sessionOf(frame.recipient) : std::string();
    } else if (isOwnedId(frame.recipient) || nodePrefixOfCanonical(frame.recipient) == self_) {
        session = frame.recipient;
    }
    if (!session.empty() && sessions_.count(session)) {
        NodeStats::add(stats_->links.deliveredFromLinks);
        host_.pushDelivery(session,
                           serializeDelivery(frame.type, frame.sender, frame.recipient, frame.body),
                           id, number);
        return;
    }
    links_.send(id, serializeLinkNotFound(self_, frame.sender, frame.recipient, number));
}

void Router::handleOwnedNotFound(LinkState& state, const LinkFrame& frame) {
    // Only about a message that went out on this link, and the very one the
    // frame numbers: another to the same id may have arrived.
    InFlight* m = nullptr;
    if (frame.number > state.acked && frame.number - state.acked <= state.inflight.size()) {
        InFlight& candidate = state.inflight[frame.number - state.acked - 1];
        if (!candidate.answered && candidate.is(frame.sender, frame.recipient)) {
            candidate.answered = true;
            m = &candidate;
        }
    }
    if (!m && frame.number > 0 && frame.number <= state.acked) {
        // Acknowledged, then not taken: its session was closing.
        for (auto a = state.recentlyAcked.begin(); a != state.recentlyAcked.end(); ++a) {
            if (a->number == frame.number && a->recipient == frame.recipient &&
                a->message.sender == frame.sender) {
                Held held = std::move(a->message);
                state.recentlyAcked.erase(a);
                bounced(frame.recipient, std::move(held), Answer::NotFound);
                return;
            }
        }
    }
    if (!m || !m->copy) {
        if (m || frame.number == 0) {
            // Unnumbered: a node that cannot say which; the sender at least
            // hears of it.
            tell(frame.sender, Answer::NotFound, frame.recipient);
        }
        return;
    }
    Held held = std::move(*m->copy);
    settled(*m);
    bounced(frame.recipient, std::move(held), Answer::NotFound);
}

// A newer session of a key-owned id on the frame's node: if the id is
// here, under an older claim, its session here is told and unbound.
void Router::takenOver(LinkId link, LinkState& state, const LinkFrame& frame) {
    const std::string& id = frame.sender;
    auto mine = ownedSessions_.find(id);
    if (mine == ownedSessions_.end()) {
        return;
    }
    IdClaim newer, ours;
    std::string why;
    if (decodeIdClaim(frame.body, newer) && config_.claimClock.tooFarAhead(newer.time)) {
        // Dated in the future, it would be "newer" than the owner's claim
        // here however recent: replayed, it would take the id away.
        NodeStats::add(stats_->links.claimsAhead);
        log_(DWRTC_LOG_INFO, "node " + frame.node + " said id " + id +
                                 " was taken over, with a claim that is not believed (" +
                                 config_.claimClock.whyNot(newer.time) + "); the id stays here");
        return;
    }
    if (!decodeIdClaim(frame.body, newer) || newer.id != id || newer.node != frame.node ||
        !decodeIdClaim(mine->second, ours) || newer.time <= ours.time) {
        log_(DWRTC_LOG_DEBUG, "node " + frame.node + " said id " + id +
                                  " was taken over, without a newer claim");
        return;
    }
    // Usually the very claim the sender came with on this link, checked
    // then; any other costs a check from the link's budget.
    auto known = state.ownedSenders.find(id);
    bool checked = known != state.ownedSenders.end() && known->second == sha256(frame.body);
    if (!checked && !spendClaimCheck(link, state)) {
        return;
    }
    if (!checked && !verifyClaim(newer, why)) {
        log_(DWRTC_LOG_DEBUG, "node " + frame.node + " said id " + id +
                                  " was taken over, without a newer claim");
        return;
    }
    log_(DWRTC_LOG_DEBUG, "id " + id + " was taken over by a session on node " + frame.node);
    sessions_.erase(id);
    ownedSessions_.erase(mine);
    directory_.withdrawId(id);
    host_.pushUnbind(id, serializeNodeError("id taken over by a newer session"));
}

bool Router::spendClaimCheck(LinkId id, LinkState& state) {
    // A bucket of a second's checks, full when the link is new: a peer that
    // opens a link for many senders at once is not refused for it.
    auto now = now_();
    double rate = config_.linkClaimChecks;
    if (state.claimChecksRefilled == Clock::time_point()) {
        state.claimChecks = rate;
    } else {
        double seconds = std::chrono::duration<double>(now - state.claimChecksRefilled).count();
        state.claimChecks = std::min(rate, state.claimChecks + seconds * rate);
    }
    state.claimChecksRefilled = now;
    if (state.claimChecks < 1) {
        refuseLink(id, DWRTC_LOG_WARN,
                   "node " + state.node + " needs more than " +
                       std::to_string(config_.linkClaimChecks) +
                       " claim checks a second on one link (dwrtc_link_claims)");
        NodeStats::add(stats_->links.linksRefusedForClaims);
        return false;
    }
    state.claimChecks -= 1;
    NodeStats::add(stats_->links.claimChecks);
    return true;
}

void Router::handleAck(LinkId id, LinkState& state, std::uint32_t count) {
    auto& inflight = state.inflight;
    if (count > inflight.size()) {
        refuseLink(id, DWRTC_LOG_WARN,
                   "node " + state.node + " acknowledged more than it was sent");
        return;
    }
    auto now = now_();
    for (std::uint32_t i = 0; i < count; ++i) {
        InFlight& m = inflight[i];
        if (m.copy) {
            state.recentlyAcked.push_back(LinkState::Acked{
                state.acked + i + 1, m.recipientName(), std::move(*m.copy)});
            state.recentlyAcked.back().message.since = now;
        }
        if (m.quiet) {
            state.quietAcked.push_back(state.acked + i + 1);
            if (state.quietAcked.size() > kKeepAckedMax) {
                state.quietAcked.pop_front();
            }
        }
        settled(m);
    }
    state.acked += count;
    while (!state.recentlyAcked.empty() &&
           (state.recentlyAcked.size() > kKeepAckedMax ||
            now - state.recentlyAcked.front().message.since > kKeepAcked)) {
        state.recentlyAcked.pop_front();
    }
    inflight.erase(inflight.begin(), inflight.begin() + count);
    if (count > 0) {
        state.ackAwaitedSince = now_();  // the link moves: wait afresh for the rest
    }
}

// A link that takes messages and acknowledges none for a while is as good
// as broken: a partition, or a peer that hangs, can leave TCP silent for
// many minutes. Its senders are told, and the node is tried again later.
void Router::closeUnacknowledged() {
    auto now = now_();
    std::vector<LinkId> broken;
    for (auto& [id, state] : linkState_) {
        if (!state.inflight.empty() && now - state.ackAwaitedSince > config_.ackTimeout) {
            broken.push_back(id);
        }
    }
    for (LinkId id : broken) {
        log_(DWRTC_LOG_INFO, "node " + linkState_[id].node + " acknowledged nothing for " +
                                 std::to_string(config_.ackTimeout.count()) +
                                 " ms; closing its link");
        forgetLink(id);
        links_.abort(id);
        auto out = outbound_.find(id);
        if (out == outbound_.end()) {
            continue;
        }
        std::string prefix = out->second;
        outbound_.erase(out);
        auto it = peers_.find(prefix);
        if (it != peers_.end() && it->second.link == id) {
            it->second.lookedUpAgain = true;  // its address is known; it did not answer
            markUnreachable(prefix, it->second,
                            "it acknowledged nothing for " +
                                std::to_string(config_.ackTimeout.count()) + " ms");
        }
    }
}

void Router::sendAck(LinkId id, LinkState& state) {
    links_.send(id, serializeLinkAck(self_, state.unacked));
    state.unacked = 0;
}

void Router::onLinkMessageEnd(LinkId id) {
    auto it = linkState_.find(id);
    if (it == linkState_.end() || it->second.unacked == 0) {
        return;
    }
    if (it->second.unacked >= kAckBatch) {
        sendAck(id, it->second);
    } else if (!acksDue_) {
        acksDue_ = true;
        links_.callSoon(kAckDelay);
    }
}

void Router::onSoon() {
    acksDue_ = false;
    for (auto& [id, state] : linkState_) {
        if (state.unacked > 0) {
            sendAck(id, state);
        }
    }
    pollAway();
}

void Router::onLinkClosed(LinkId id, bool outbound, bool opened) {
    if (opened) {
        (outbound ? stats_->links.linksOut : stats_->links.linksIn)
            .fetch_sub(1, std::memory_order_relaxed);
    }
    forgetLink(id);
    if (!outbound) {
        return;
    }
    auto out = outbound_.find(id);
    if (out == outbound_.end()) {
        return;
    }
    std::string prefix = out->second;
    outbound_.erase(out);
    auto it = peers_.find(prefix);
    if (it == peers_.end() || it->second.link != id) {
        return;
    }
    Peer& peer = it->second;
    if (peer.state == Peer::State::Connecting) {
        connectFailed(prefix, peer,
                      "no proven link: refused, timed out, or the TLS or hello failed");
        return;
    }
    // An open link went away (idle close, or the node left). Keep the
    // address: the next message reconnects, and looks up again if needed.
    peer.state = Peer::State::Idle;
    peer.link = 0;
    peer.lookedUpAgain = false;
}

void Router::onTick() {
    directory_.ensurePublished();
    closeUnacknowledged();
    pollAway();
    auto now = now_();
    for (auto hint = hints_.begin(); hint != hints_.end();) {
        hint = now >= hint->second.until ? hints_.erase(hint) : std::next(hint);
    }
    std::uint64_t outside = 0;
    for (const auto& [id, state] : linkState_) {
        bool sibling = std::any_of(siblings_.begin(), siblings_.end(),
                                   [&](const LinkSibling& s) { return s.node == state.node; });
        outside += !state.node.empty() && !sibling;
    }
    stats_->links.linksOutside.store(outside, std::memory_order_relaxed);
    for (auto u = unclaimedIds_.begin(); u != unclaimedIds_.end();) {
        u = now >= u->second ? unclaimedIds_.erase(u) : std::next(u);
    }
    forgetChosen();
    for (auto it = peers_.begin(); it != peers_.end();) {
        Peer& peer = it->second;
        auto unused = now - peer.lastUsed;
        if (peer.state == Peer::State::WaitingToRetry && now >= peer.retryAt) {
            startLookup(it->first, peer);
        } else if (peer.state == Peer::State::LookingUp &&
                   now >= (peer.missingLookups > 0 ? peer.missingSince : peer.lookupStarted) +
                              config_.lookupWait) {
            // A DHT search can go on for long without an answer (a node
            // whose only peers do not answer it): the wait bounds what the
            // senders wait, answered or not. A late answer is ignored.
            log_(DWRTC_LOG_DEBUG, "lookup of node " + it->first + " not answered within " +
                                      std::to_string(config_.lookupWait.count()) + " ms");
            markMissing(peer, false);
        } else if (peer.state == Peer::State::Open && unused > config_.linkIdleTimeout) {
            log_(DWRTC_LOG_DEBUG, "closing idle link to node " + it->first);
            // Forget the link now, not when its close completes: a message
            // that comes in meanwhile must open a new link, not wait in the
            // outbox of one that is going away. Frames still coming in on
            // it (an answer to an earlier message) are still read.
            outbound_.erase(peer.link);
            links_.close(peer.link);
            peer.state = Peer::State::Idle;
            peer.link = 0;
        } else if ((peer.state == Peer::State::Idle || peer.state == Peer::State::Unreachable) &&
                   unused > 10 * config_.linkIdleTimeout) {
            it = peers_.erase(it);
            continue;
        } else if (peer.state == Peer::State::Missing && unused > kForgetMissingAfter) {
            it = peers_.erase(it);
            continue;
        }
        ++it;
    }
}

// --- Siblings ----------------------------------------------------------------
//
// A new worker's node is reachable before its record is in the DHT: its
// siblings (the other workers of the same nginx, the old workers of a
// reload among them) tell the nodes they have links with where it listens.
// Storing a record can take seconds while the DHT's routing tables still
// hold the nodes of the workers that just exited.

void Router::setSiblings(std::vector<LinkSibling> siblings) {
    if (siblings.size() > kMaxLinkSiblings) {
        siblings.resize(kMaxLinkSiblings);
    }
    if (siblings == siblings_) {
        return;
    }
    siblings_ = std::move(siblings);
    std::string frame = serializeLinkSiblings(self_, siblings_);
    for (const auto& [id, state] : linkState_) {
        if (!state.node.empty() && state.takesSiblings) {
            links_.send(id, frame);
        }
    }
    if (!config_.siblingHost.empty()) {
        for (const LinkSibling& sibling : siblings_) {
            addressLearned(sibling.node);
        }
    }
}

std::string Router::ownSiblingUrl(const std::string& prefix) const {
    if (config_.siblingHost.empty()) {
        return {};
    }
    for (const LinkSibling& sibling : siblings_) {
        if (sibling.node == prefix) {
            return "wss://" + formatHostPort(config_.siblingHost, sibling.port);
        }
    }
    return {};
}

void Router::sendSiblings(LinkId id, const LinkState& state) {
    if (!siblings_.empty() && state.takesSiblings) {
        links_.send(id, serializeLinkSiblings(self_, siblings_));
    }
}

std::string Router::announcerHost(LinkId id) const {
    auto out = outbound_.find(id);
    if (out != outbound_.end()) {
        auto peer = peers_.find(out->second);
        HostPort address;
        if (peer != peers_.end() && peer->second.record && !peer->second.record->links.empty() &&
            parseLinkUrl(peer->second.record->links.front(), address)) {
            return address.host;
        }
    }
    return plainAddress(links_.peerAddress(id));
}

void Router::handleSiblings(LinkId id, const LinkFrame& frame) {
    std::string host = announcerHost(id);
    if (host.empty()) {
        return;
    }
    // The newest list of a peer replaces what it said before.
    for (auto hint = hints_.begin(); hint != hints_.end();) {
        hint = hint->second.from == id ? hints_.erase(hint) : std::next(hint);
    }
    auto until = now_() + kSiblingHintLife;
    for (const LinkSibling& sibling : frame.siblings) {
        if (sibling.node == self_ || sibling.node == frame.node) {
            continue;
        }
        auto hint = hints_.find(sibling.node);
        if (hint == hints_.end() && hints_.size() >= kMaxSiblingHints) {
            continue;  // full: the DHT still finds it
        }
        std::string url = "wss://" + formatHostPort(host, sibling.port);
        if (hint != hints_.end() && hint->second.url == url) {
            hint->second.from = id;
            hint->second.until = until;
            continue;
        }
        hints_[sibling.node] = Hint{url, id, until};
        addressLearned(sibling.node);
    }
}

void Router::addressLearned(const std::string& prefix) {
    auto it = peers_.find(prefix);
    if (it == peers_.end()) {
        return;
    }
    // Messages that wait for this node try the new address at once.
    Peer& peer = it->second;
    peer.hintTried = false;
    switch (peer.state) {
        case Peer::State::LookingUp:
        case Peer::State::WaitingToRetry:
            connectByHint(prefix, peer);
            break;
        case Peer::State::Missing:
        case Peer::State::Unreachable:
            if (!peer.gone) {
                // The next message tries again, at the hint first.
                peer.state = Peer::State::Idle;
                peer.record.reset();
                peer.lookedUpAgain = false;
            }
            break;
        default:
            break;
    }
}

bool Router::connectByHint(const std::string& prefix, Peer& peer) {
    if (peer.hintTried) {
        return false;
    }
    // A sibling of this node is on this host: its own address first, which
    // a sibling's hint or a record (the public address) may not be.
    std::string url = ownSiblingUrl(prefix);
    if (url.empty()) {
        auto hint = hints_.find(prefix);
        if (hint == hints_.end() || now_() >= hint->second.until) {
            return false;
        }
        url = hint->second.url;
    }
    peer.hintTried = true;
    peer.viaHint = true;
    peer.record = NodeRecord{prefix, {std::move(url)}, false};
    connect(prefix, peer);
    return true;
}

// A sibling that started a moment ago is in the DHT before this worker has
// read its status slot (once every 250 ms): its record names this node's
// own public address, which may not lead back to this host. Tried here
// first, once; if no one, or another node, answers, the record decides.
bool Router::connectOnThisHost(const std::string& prefix, Peer& peer) {
    if (peer.hintTried || config_.siblingHost.empty() || publicHost_.empty()) {
        return false;
    }
    HostPort address;
    if (!parseLinkUrl(peer.record->links.front(), address) || address.host != publicHost_ ||
        address.host == config_.siblingHost || address.port < config_.siblingPortFrom ||
        address.port > config_.siblingPortTo) {
        return false;
    }
    peer.hintTried = true;
    peer.viaHint = true;
    peer.record = NodeRecord{
        prefix, {"wss://" + formatHostPort(config_.siblingHost, address.port)}, false};
    connect(prefix, peer);
    return true;
}

}  // namespace dwrtc
