#include "dwrtc/node.h"

#include <netdb.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <unordered_map>
#include <unordered_set>

#include "dwrtc/dwrtc.h"
#include "dwrtc/host_port.h"
#include "dwrtc/json_reader.h"
#include "dwrtc/owned_id.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "host_queue.h"
#include "driven_links.h"
#include "link_service.h"
#include "log_limiter.h"
#include "node_directory.h"
#include "dwrtc/peerjs.h"
#include "dwrtc/peerjs_id.h"
#include "node_stats.h"
#include "peerjs_id_claims.h"
#include "rooms.h"
#include "router.h"

namespace dwrtc {

namespace {

// Other nodes connect to the public address this node publishes. A name
// that does not resolve here most likely does not resolve for them either:
// the node would run, and no one could reach it.
void warnIfUnresolvable(const std::string& host, const LogFn& log) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0) {
        log(DWRTC_LOG_WARN, "dwrtc_public_address \"" + host + "\" does not resolve here (" +
                                gai_strerror(rc) +
                                "); other nodes must resolve it to reach this node");
        return;
    }
    freeaddrinfo(found);
}

// The other workers of this nginx listen on this host, on the bind address:
// loopback for a wildcard one. Their public address may not lead back here
// (a NAT without hairpin, a name that resolves elsewhere or nowhere here).
std::string siblingHostFor(const std::string& bindAddress) {
    if (bindAddress.empty() || bindAddress == "0.0.0.0") {
        return "127.0.0.1";
    }
    if (bindAddress == "::" || bindAddress == "[::]") {
        return "::1";
    }
    return bindAddress;
}

// What the link thread reports goes to the router; its once-a-second tick
// also drives the rooms' record checks, which live on the same thread.
class NodeEvents : public LinkEvents {
public:
    NodeEvents(Router& router, Rooms& rooms, PeerJsIdClaims& peerJsIds)
        : router_(router), rooms_(rooms), peerJsIds_(peerJsIds) {}
    void onLinkOpen(LinkId id, bool outbound, std::string_view binding) override {
        router_.onLinkOpen(id, outbound, binding);
    }
    void onLinkFrame(LinkId id, std::string_view frame) override {
        router_.onLinkFrame(id, frame);
    }
    void onLinkMessageEnd(LinkId id) override { router_.onLinkMessageEnd(id); }
    void onLinkClosed(LinkId id, bool outbound, bool opened) override {
        router_.onLinkClosed(id, outbound, opened);
    }
    void onTick() override {
        router_.onTick();
        rooms_.onTick();
        peerJsIds_.onTick();
    }
    void onSoon() override { router_.onSoon(); }

private:
    Router& router_;
    Rooms& rooms_;
    PeerJsIdClaims& peerJsIds_;
};

}  // namespace

struct Node::Impl {
    NodeConfig config;
    HostQueue host;
    NodeStats stats;
    // Before the parts that log through it, so it outlives them.
    LogLimiter limiter;
    std::unique_ptr<NodeDirectory> directory;
    // One of the two link transports: libwebsockets on its own thread, or
    // the host's connections (NodeConfig::linkDriver). links is the one in use.
    std::unique_ptr<LinkService> service;
    std::unique_ptr<DrivenLinks> driven;
    LinkTransport* links = nullptr;
    std::unique_ptr<Router> router;
    std::unique_ptr<Rooms> rooms;
    // Chosen PeerJS ids of sessions here; on the links' thread, as rooms.
    std::unique_ptr<PeerJsIdClaims> peerJsIds;
    std::unique_ptr<NodeEvents> events;  // the links' view of router and rooms
    std::string id;
    bool running = false;
    // Sessions open on this node, as the owner thread sees them: lets
    // submit() answer at once and deliver same-node messages without a hop
    // through the routing thread.
    std::unordered_set<std::string> sessions;
    // Same-node deliveries made at once (setLocalDelivery), if set.
    Node::DeliveryFn localDelivery;
    // Key-owned ids of sessions here: by the node's session id and back.
    // Sessions are opened, closed and addressed by the host with the
    // node's id; the core speaks of them by their owned id.
    std::unordered_map<std::string, std::string> ownedIdOf;
    std::unordered_map<std::string, std::string> sessionOfOwned;
    // Chosen PeerJS ids sessions here hold, by session and back, as the
    // owner thread learns them from the verdicts it hands on (drain()): a
    // message to one is delivered here without asking the links' thread.
    // Other nodes do not know these ids as senders yet (docs/peerjs.md), so
    // a session speaks as its chosen id only to sessions here.
    std::unordered_map<std::string, std::string> chosenIdOf;
    std::unordered_map<std::string, std::string> sessionOfChosen;
    // What each session's claims cost so far (Node::claim): a bucket of
    // NodeConfig::claimsPerMinute, and its refusals in a row. Only for
    // sessions that claimed.
    struct ClaimBudget {
        double tokens = 0;
        std::chrono::steady_clock::time_point refilled;
        unsigned refusals = 0;
    };
    std::unordered_map<std::string, ClaimBudget> claimBudgets;
    // Keys the challenges of this node's sessions (owned_id.h).
    std::string claimSecret;
    std::string linkUrl;  // this node's, as its claims name it
    // Reused to look sessions up by a string_view without an allocation.
    std::string lookupKey;
    // The delivery drain() is handing out, for undeliverable() called from
    // within its callback.
    const HostRecord* handingOut = nullptr;

    // Runs task where routing lives: with driven links that is this, the
    // owner's, thread, and it runs at once, with no trip through the
    // links' eventfd; otherwise it is posted to the link service's thread.
    void toRouter(std::function<void()> task) {
        if (driven) {
            task();
        } else {
            links->post(std::move(task));
        }
    }

    // The id a session speaks as: its owned id if it has one.
    const std::string& speaksAs(const std::string& session) const {
        auto it = ownedIdOf.find(session);
        return it == ownedIdOf.end() ? session : it->second;
    }

    // The id a session speaks as to sessions of this node: its chosen
    // PeerJS id if it holds one, else as to everyone.
    const std::string& speaksAsHere(const std::string& session) const {
        auto it = chosenIdOf.find(session);
        return it == chosenIdOf.end() ? speaksAs(session) : it->second;
    }

    // A session's chosen id is held, or not any more; a verdict for a
    // session that has closed meanwhile changes nothing.
    void chosenVerdict(const std::string& session, const std::string& chosen, bool held) {
        if (held) {
            if (!sessions.count(session)) {
                return;
            }
            // The id's older session here (its token's reconnect) may hear
            // that it lost the id only after this: it no longer has it.
            auto older = sessionOfChosen.find(chosen);
            if (older != sessionOfChosen.end() && older->second != session) {
                chosenIdOf.erase(older->second);
            }
            chosenIdOf[session] = chosen;
            sessionOfChosen[chosen] = session;
            return;
        }
        auto holder = sessionOfChosen.find(chosen);
        if (holder != sessionOfChosen.end() && holder->second == session) {
            sessionOfChosen.erase(holder);
        }
        auto mine = chosenIdOf.find(session);
        if (mine != chosenIdOf.end() && mine->second == chosen) {
            chosenIdOf.erase(mine);
        }
    }

    const std::string& key(std::string_view id) {
        lookupKey.assign(id.data(), id.size());
        return lookupKey;
    }

    explicit Impl(NodeConfig c) : config(std::move(c)) {}

    dwrtc::LogFn logger() {
        int max = config.logLevel;
        HostQueue* h = &host;
        LogLimiter* limiter = &this->limiter;
        // Debug lines are for whoever turned them on: all of them.
        return [h, max, limiter](int level, std::string line) {
            if (level > max) {
                return;
            }
            if (level < DWRTC_LOG_DEBUG && !limiter->admit(line, LogLimiter::Clock::now())) {
                return;
            }
            h->pushLog(level, std::move(line));
        };
    }
};

Node::Node(NodeConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Node::~Node() { stop(); }

bool Node::start() {
    Impl& d = *impl_;
    if (d.running) {
        return true;
    }
    dwrtc::LogFn log = d.logger();

    DirectoryConfig dc;
    dc.portFrom = d.config.dhtPortFrom;
    dc.portTo = d.config.dhtPortTo;
    dc.bindAddress = d.config.bindAddress;
    dc.bootstrap = d.config.bootstrap;
    dc.perIpRequestLimit = d.config.dhtPerIpRequestLimit;
    dc.totalRequestLimit = d.config.dhtTotalRequestLimit;
    dc.maxSearches = d.config.dhtMaxSearches;
    dc.networkKey = d.config.networkKey;
    dc.claimClock.skewMs = d.config.claimClockSkewMs;
    dc.lookupClaimChecks = d.config.lookupClaimChecks;
    std::shared_ptr<const NodeIdentity> identity;
    try {
        identity = NodeIdentity::make();
    } catch (const std::exception& e) {
        log(DWRTC_LOG_ERROR, std::string("making the node's key failed: ") + e.what());
        return false;
    }
    d.directory = std::make_unique<NodeDirectory>(dc, identity, log, &d.stats);
    if (!d.directory->start()) {
        d.directory.reset();
        return false;
    }
    d.id = d.directory->prefix();

    LinkServiceConfig lc;
    lc.portFrom = d.config.linkPortFrom;
    lc.portTo = d.config.linkPortTo;
    lc.bindAddress = d.config.bindAddress;
    lc.handshakeTimeout = std::chrono::milliseconds(d.config.linkHandshakeMs);
    lc.maxUnprovenLinks = d.config.linkMaxUnproven;
    if (d.config.linkDriver) {
        DrivenLinksConfig dl;
        dl.port = d.config.linkPortFrom;
        dl.handshakeTimeout = lc.handshakeTimeout;
        dl.maxUnprovenLinks = lc.maxUnprovenLinks;
        d.driven = std::make_unique<DrivenLinks>(dl, *d.config.linkDriver, log);
        d.links = d.driven.get();
    } else {
        d.service = std::make_unique<LinkService>(lc, log);
        d.links = d.service.get();
    }

    RouterConfig rc;
    rc.queueLimit = d.config.queueLimit;
    rc.linkIdleTimeout = std::chrono::seconds(d.config.linkIdleSeconds);
    rc.retryDelay = std::chrono::milliseconds(d.config.linkRetryMs);
    rc.ackTimeout = std::chrono::milliseconds(d.config.linkAckTimeoutMs);
    rc.lookupWait = std::chrono::milliseconds(d.config.lookupWaitMs);
    rc.networkKey = d.config.networkKey;
    rc.holdMessages = d.config.holdMessages;
    rc.holdTime = std::chrono::milliseconds(d.config.holdMs);
    rc.sessionHoldMessages = d.config.sessionHoldMessages;
    rc.sessionHoldBytes = d.config.sessionHoldBytes;
    rc.nodeHoldBytes = d.config.nodeHoldBytes;
    rc.lookupRate = d.config.lookupRate;
    rc.lookupBurst = d.config.lookupBurst;
    rc.claimClock.skewMs = d.config.claimClockSkewMs;
    rc.linkOwnedSenders = d.config.linkOwnedSenders;
    rc.linkClaimChecks = d.config.linkClaimChecks;
    rc.siblingHost = siblingHostFor(d.config.bindAddress);
    rc.publicHost = d.config.publicAddress;
    rc.siblingPortFrom = d.config.linkPortFrom;
    rc.siblingPortTo = d.config.linkPortTo;
    d.claimSecret.assign(32, '\0');
    if (getrandom(d.claimSecret.data(), d.claimSecret.size(), 0) !=
        static_cast<ssize_t>(d.claimSecret.size())) {
        log(DWRTC_LOG_ERROR, "getrandom failed; the node does not start");
        d.directory->stop();
        d.directory.reset();
        return false;
    }
    std::shared_ptr<const NodeKey> key(identity, &identity->key);
    d.router = std::make_unique<Router>(
        rc, key, *d.links, *d.directory, d.host, log, [] { return RouterClock::now(); },
        &d.stats);

    Router* routing = d.router.get();
    RoomLimits limits;
    limits.membersPerRoom = d.config.roomMembers;
    limits.roomsPerSession = d.config.roomsPerSession;
    limits.remoteMembers = d.config.roomRemoteMembers;
    limits.membersPerNode = d.config.roomMembersPerNode;
    limits.nodeChecks = d.config.roomNodeChecks;
    // As long as the router looks for a node whose record is not stored
    // yet: a node that just started is believed for its members as soon as
    // for its messages.
    limits.recordWait = std::chrono::milliseconds(d.config.lookupWaitMs);
    d.rooms = std::make_unique<Rooms>(
        limits, d.id, *d.directory, *d.directory, d.host, *d.links, log,
        [routing](const std::string& id) { return routing->claimOf(id); },
        [] { return RouterClock::now(); }, &d.stats);
    PeerJsIdConfig pc;
    pc.reserve = std::chrono::milliseconds(d.config.peerJsIdReserveMs);
    pc.lookupWait = std::chrono::milliseconds(d.config.peerJsIdWaitMs);
    pc.reservations = d.config.peerJsIdReservations;
    // The DHT's answers reach the claims where routing lives (either transport).
    LinkTransport* links = d.links;
    HostQueue* host = &d.host;
    d.peerJsIds = std::make_unique<PeerJsIdClaims>(
        pc, d.id, *d.directory,
        [links](std::function<void()> task) { links->post(std::move(task)); }, log,
        [host](const std::string& session, PeerJsIdClaims::Loss why, const PeerJsIdRecord& r) {
            host->pushChosenVerdict(session,
                                    serializePeerJsIdVerdict(session, r.id,
                                                             why == PeerJsIdClaims::Loss::TakenOver
                                                                 ? PeerJsIdVerdict::TakenOver
                                                                 : PeerJsIdVerdict::Lost),
                                    r.id, false);
        },
        wallClockMs, [] { return RouterClock::now(); }, &d.stats);
    // Both on the links' thread: the router asks the claims which chosen
    // ids sessions here hold.
    PeerJsIdClaims* claims = d.peerJsIds.get();
    d.router->setChosenIds(ChosenIdsHere{
        [claims](const std::string& session) { return claims->idOf(session); },
        [claims](const std::string& id) { return claims->sessionOf(id); }});
    d.events = std::make_unique<NodeEvents>(*d.router, *d.rooms, *d.peerJsIds);

    if (d.driven) {
        d.driven->start(d.events.get());
    } else if (!d.service->start(d.events.get())) {
        d.events.reset();
        d.peerJsIds.reset();
        d.rooms.reset();
        d.router.reset();
        d.service.reset();
        d.links = nullptr;
        d.directory->stop();
        d.directory.reset();
        return false;
    }

    warnIfUnresolvable(d.config.publicAddress, log);
    d.linkUrl = "wss://" + formatHostPort(d.config.publicAddress, linkPort());
    d.directory->publish({d.linkUrl});
    d.running = true;
    return true;
}

void Node::finishLinks() {
    Impl& d = *impl_;
    if (!d.running || !d.driven) {
        return;
    }
    d.rooms->leaveEverything();
    d.router->onSoon();  // the acknowledgements owed, now
    d.driven->closeAll();
}

void Node::stop() {
    Impl& d = *impl_;
    if (!d.running) {
        return;
    }
    d.running = false;
    // Members of rooms leave first, while the links' thread (where rooms
    // live) still runs, so that the others hear it now.
    auto left = std::make_shared<std::promise<void>>();
    std::future<void> leaving = left->get_future();
    Rooms* rooms = d.rooms.get();
    d.toRouter([rooms, left] {
        rooms->leaveEverything();
        left->set_value();
    });
    leaving.wait_for(std::chrono::seconds(1));
    // Links next: after this no routing runs, and DHT answers that still
    // arrive are dropped by the stopped service. Then leave the DHT, which
    // withdraws the record and joins OpenDHT's threads.
    if (d.driven) {
        d.driven->stop();
    } else {
        d.service->stop();
    }
    d.events.reset();
    d.peerJsIds.reset();  // its follows end while the DHT still runs
    d.directory->stop();
    d.rooms.reset();
    d.router.reset();
    d.service.reset();
    d.driven.reset();
    d.links = nullptr;
    d.directory.reset();
    d.sessions.clear();
    d.ownedIdOf.clear();
    d.sessionOfOwned.clear();
    d.chosenIdOf.clear();
    d.sessionOfChosen.clear();
}

bool Node::running() const { return impl_->running; }
NodeStatsSnapshot Node::stats() const {
    const Impl& d = *impl_;
    const NodeStats& s = d.stats;
    auto get = [](const NodeStats::Counter& c) { return NodeStats::get(c); };
    NodeStatsSnapshot out;
    out.sessions = d.sessions.size();
    out.linksIn = get(s.links.linksIn);
    out.linksOut = get(s.links.linksOut);
    out.linksViaSiblings = get(s.links.linksViaSiblings);
    out.linksOutside = get(s.links.linksOutside);
    out.fromClients = get(s.owner.fromClients);
    out.deliveredLocally = get(s.owner.deliveredLocally) + get(s.links.deliveredFromLinks);
    out.sentOverLinks = get(s.links.sentOverLinks);
    out.receivedOverLinks = get(s.links.receivedOverLinks);
    out.notFound = get(s.owner.notFound) + get(s.links.notFound);
    out.unreachable = get(s.links.unreachable);
    out.invalid = get(s.owner.invalid);
    out.queueFull = get(s.links.queueFull);
    out.budgetFull = get(s.links.budgetFull);
    out.lookupsLimited = get(s.links.lookupsLimited);
    out.claimsRefused = get(s.owner.claimsRefused);
    out.linksRefusedForClaims = get(s.links.linksRefusedForClaims);
    out.roomFull = get(s.links.roomFull);
    out.roomMembersNotFollowed = get(s.links.roomMembersNotFollowed);
    out.claimsAhead = get(s.links.claimsAhead) + get(s.directory.claimsAhead);
    out.claimChecksSpent = get(s.directory.claimChecksSpent);
    out.peerJsIdsReserved = get(s.links.peerJsIdsReserved);
    out.peerJsIdsNotReserved = get(s.links.peerJsIdsNotReserved);
    out.lookups = get(s.links.lookups);
    out.lookupsFailed = get(s.links.lookupsFailed);
    out.lookupUsSum = get(s.links.lookupUsSum);
    static_assert(DWRTC_LOOKUP_BUCKETS == kLookupBucketsMs.size() + 1);
    for (std::size_t i = 0; i < DWRTC_LOOKUP_BUCKETS; ++i) {
        out.lookupBuckets[i] = get(s.links.lookupBuckets[i]);
    }
    if (d.directory) {
        d.directory->peerCounts(out.dhtGood, out.dhtDubious);
        BootstrapSnapshot net = d.directory->network();
        out.networkState = net.state == NetworkState::InNetwork ? DWRTC_NETWORK_IN
                           : net.state == NetworkState::Joining ? DWRTC_NETWORK_JOINING
                                                                : DWRTC_NETWORK_ALONE;
        out.dhtOutside = net.outside;
        out.lastPublishMs = static_cast<std::uint64_t>(d.directory->lastPublishMs());
        out.bootstrapEntries = net.entries;
        out.bootstrapAnswered = net.answered;
    }
    return out;
}

bool Node::hasDhtPeers() const {
    return impl_->directory && impl_->directory->hasPeers();
}

bool Node::published() const {
    return impl_->directory && impl_->directory->published();
}
const std::string& Node::id() const { return impl_->id; }
unsigned Node::dhtPort() const { return impl_->directory ? impl_->directory->port() : 0; }
unsigned Node::linkPort() const {
    if (impl_->driven) {
        return impl_->driven->port();
    }
    return impl_->service ? impl_->service->port() : 0;
}
DrivenLinks* Node::drivenLinks() const { return impl_->driven.get(); }
int Node::eventFd() const { return impl_->host.fd(); }

std::string Node::openSession() {
    Impl& d = *impl_;
    if (!d.running) {
        return {};
    }
    std::string id = makeSessionId(d.id);
    d.sessions.insert(id);
    Router* router = d.router.get();
    d.toRouter([router, id] { router->openSession(id); });
    return id;
}

void Node::setSiblings(std::vector<LinkSibling> siblings) {
    Impl& d = *impl_;
    if (!d.running) {
        return;
    }
    Router* router = d.router.get();
    d.toRouter([router, siblings = std::move(siblings)]() mutable {
        router->setSiblings(std::move(siblings));
    });
}

bool Node::closeSession(std::string_view id) {
    Impl& d = *impl_;
    auto it = d.sessions.find(d.key(id));
    if (it == d.sessions.end()) {
        return false;
    }
    std::string closed = *it;
    d.sessions.erase(it);
    d.claimBudgets.erase(closed);
    std::string owned;
    auto o = d.ownedIdOf.find(closed);
    if (o != d.ownedIdOf.end()) {
        owned = std::move(o->second);
        d.ownedIdOf.erase(o);
        d.sessionOfOwned.erase(owned);
    }
    auto chosen = d.chosenIdOf.find(closed);
    if (chosen != d.chosenIdOf.end()) {
        d.sessionOfChosen.erase(chosen->second);
        d.chosenIdOf.erase(chosen);
    }
    if (d.running) {
        Router* router = d.router.get();
        Rooms* rooms = d.rooms.get();
        PeerJsIdClaims* peerJsIds = d.peerJsIds.get();
        d.toRouter([router, rooms, peerJsIds, closed, owned] {
            peerJsIds->release(closed);
            rooms->leaveAll(closed);
            router->closeSession(closed);
            if (!owned.empty()) {
                rooms->leaveAll(owned);
                router->closeOwned(owned);
            }
        });
    }
    return true;
}

// A session joins or leaves a room; what comes of it (the member list, an
// error) comes back as deliveries.
void Node::roomRequest(const std::string& session, std::string_view text) {
    Impl& d = *impl_;
    RoomRequest request;
    std::string why;
    if (!parseRoomRequest(text, request, why)) {
        NodeStats::add(d.stats.owner.invalid);
        deliverLocal(session, serializeInvalid(why));
        return;
    }
    Rooms* rooms = d.rooms.get();
    std::string id = d.speaksAs(session);
    d.toRouter([rooms, id, request = std::move(request)] {
        if (request.join) {
            rooms->join(id, request.room);
        } else {
            rooms->leave(id, request.room);
        }
    });
}

std::string Node::challenge(std::string_view session) {
    Impl& d = *impl_;
    if (!d.running || !d.sessions.count(d.key(session))) {
        return {};
    }
    return claimChallenge(d.claimSecret, session);
}

// A session claims a key-owned id. The claim must name this node and this
// session's challenge, be signed by the id's key, and carry a time close to
// this node's clock. A newer claim of an id wins over an older one: a
// session here that had the id is told and speaks as itself again.
bool Node::claim(const std::string& session, std::string_view text) {
    Impl& d = *impl_;
    // A claim costs a signature check (some 15 messages' worth of CPU), and
    // one that holds a DHT write and a lookup: its own bucket, beside the
    // session's message rate, and a session that keeps making claims that
    // do not hold is closed.
    Impl::ClaimBudget& budget = d.claimBudgets[session];
    auto now = std::chrono::steady_clock::now();
    double perMinute = d.config.claimsPerMinute;
    if (budget.refilled == std::chrono::steady_clock::time_point()) {
        budget.tokens = perMinute;
    } else {
        double minutes = std::chrono::duration<double>(now - budget.refilled).count() / 60;
        budget.tokens = std::min(perMinute, budget.tokens + minutes * perMinute);
    }
    budget.refilled = now;
    bool refused = false;
    auto refuse = [&](const std::string& reason) {
        refused = true;
        NodeStats::add(d.stats.owner.invalid);
        NodeStats::add(d.stats.owner.claimsRefused);
        deliverLocal(session, serializeNodeError("claim refused: " + reason));
    };
    auto verdict = [&] {
        if (!refused) {
            budget.refusals = 0;
            return true;
        }
        return ++budget.refusals < d.config.claimRefusals;
    };
    if (budget.tokens < 1) {
        refuse("more than " + std::to_string(d.config.claimsPerMinute) +
               " claims a minute (dwrtc_claims)");
        return verdict();
    }
    budget.tokens -= 1;

    ClaimMessage message;
    std::string why;
    if (!parseClaimMessage(text, message, why)) {
        NodeStats::add(d.stats.owner.invalid);
        deliverLocal(session, serializeInvalid(why));
        refused = true;
        return verdict();
    }
    IdClaim claim;
    claim.id = ownedIdOfKey(message.key);
    auto mine = d.ownedIdOf.find(session);
    if (mine != d.ownedIdOf.end() && mine->second == claim.id) {
        // The session owns this id already: the claim it made holds and is
        // stored. Answered as before, and nothing is written or looked up.
        deliverLocal(session, serializeOwnedWelcome(claim.id, session));
        return verdict();
    }
    claim.key = std::move(message.key);
    claim.node = d.id;
    claim.challenge = claimChallenge(d.claimSecret, session);
    claim.time = message.time;
    claim.signature = std::move(message.signature);
    claim.links = {d.linkUrl};
    std::uint64_t wallNow = wallClockMs();
    ClaimClock clock;
    clock.skewMs = d.config.claimClockSkewMs;
    if (clock.tooFarAhead(claim.time)) {
        refuse(clock.whyNot(claim.time));
        return verdict();
    }
    if (claim.time + kClaimMaxAgeMs < wallNow) {
        refuse("its time is more than 5 minutes behind this node's clock");
        return verdict();
    }
    if (mine != d.ownedIdOf.end()) {
        refuse("this session owns id " + mine->second + " already");
        return verdict();
    }
    if (!verifyClaim(claim, why)) {
        refuse(why);
        return verdict();
    }
    auto holder = d.sessionOfOwned.find(claim.id);
    if (holder != d.sessionOfOwned.end() && holder->second != session) {
        std::string older = holder->second;
        d.ownedIdOf.erase(older);
        d.sessionOfOwned.erase(holder);
        deliverLocal(older, serializeNodeError("id taken over by a newer session"));
    }
    d.ownedIdOf[session] = claim.id;
    d.sessionOfOwned[claim.id] = session;
    deliverLocal(session, serializeOwnedWelcome(claim.id, session));
    Router* router = d.router.get();
    d.toRouter([router, claim = std::move(claim)] { router->openOwned(claim); });
    return verdict();
}

void Node::setLocalDelivery(DeliveryFn fn) { impl_->localDelivery = std::move(fn); }

// A delivery to a session of this node produced on the owner thread.
void Node::deliverLocal(const std::string& session, std::string data) {
    Impl& d = *impl_;
    if (d.localDelivery) {
        d.localDelivery(session, data);
    } else {
        d.host.pushDelivery(session, std::move(data));
    }
}

Node::Submit Node::submit(std::string_view session, std::string_view text) {
    Impl& d = *impl_;
    if (!d.running) {
        return Submit::NotRunning;
    }
    auto it = d.sessions.find(d.key(session));
    if (it == d.sessions.end()) {
        return Submit::UnknownSession;
    }
    const std::string& source = *it;
    NodeStats::add(d.stats.owner.fromClients);
    if (text.size() > d.config.maxMessageSize) {
        NodeStats::add(d.stats.owner.invalid);
        deliverLocal(source, serializeInvalid("larger than " +
                                                     std::to_string(d.config.maxMessageSize) +
                                                     " bytes"));
        return Submit::Ok;
    }
    ClientMessage message;
    std::string why;
    if (!parseClientMessage(text, message, why)) {
        // The node's own messages (reserved types) are not client messages:
        // looked for only here, off the path every message takes.
        if (isClaimMessage(text)) {
            if (!claim(source, text)) {
                return Submit::ClaimsRefused;
            }
        } else if (isRoomRequest(text)) {
            roomRequest(source, text);
        } else {
            NodeStats::add(d.stats.owner.invalid);
            deliverLocal(source, serializeInvalid(why));
        }
        return Submit::Ok;
    }
    if (isPeerJsServerId(message.recipient)) {
        routeToChosen(source, std::move(message), false);
        return Submit::Ok;
    }
    route(source, std::move(message), false);
    return Submit::Ok;
}

Node::Submit Node::submitPeerJs(std::string_view session, ClientMessage message) {
    Impl& d = *impl_;
    if (!d.running) {
        return Submit::NotRunning;
    }
    auto it = d.sessions.find(d.key(session));
    if (it == d.sessions.end()) {
        return Submit::UnknownSession;
    }
    const std::string& source = *it;
    NodeStats::add(d.stats.owner.fromClients);
    bool quiet = message.type == "LEAVE" || message.type == "EXPIRE";
    if (message.type.size() + message.body.size() > d.config.maxMessageSize) {
        NodeStats::add(d.stats.owner.invalid);
        deliverLocal(source, serializeInvalid("larger than " +
                                              std::to_string(d.config.maxMessageSize) + " bytes"));
        return Submit::Ok;
    }
    if (!isNodeSessionId(message.recipient)) {
        if (isChosenPeerJsId(message.recipient)) {
            routeToChosen(source, std::move(message), quiet);
            return Submit::Ok;
        }
        if (!quiet) {
            NodeStats::add(d.stats.owner.notFound);
            deliverLocal(source, serializeNotFound(message.recipient));
        }
        return Submit::Ok;
    }
    canonicalizeSessionId(message.recipient);
    route(source, std::move(message), quiet);
    return Submit::Ok;
}

// A chosen PeerJS id (also one the node gave out: a UUID) is delivered at
// once when a session here holds it; else the router finds its holder's
// node in the DHT.
void Node::routeToChosen(const std::string& source, ClientMessage message, bool quiet) {
    Impl& d = *impl_;
    auto holder = d.sessionOfChosen.find(message.recipient);
    if (holder != d.sessionOfChosen.end()) {
        NodeStats::add(d.stats.owner.deliveredLocally);
        deliverLocal(holder->second, serializeDelivery(message.type, d.speaksAsHere(source),
                                                       message.recipient, message.body));
        return;
    }
    Router* router = d.router.get();
    d.toRouter([router, sender = d.speaksAs(source), m = std::move(message), quiet]() mutable {
        router->routeRemote(sender, std::move(m), quiet);
    });
}

void Node::route(const std::string& source, ClientMessage message, bool quiet) {
    Impl& d = *impl_;
    const std::string& sender = d.speaksAs(source);
    // Key-owned ids always go through the router, even to a session here:
    // it holds what waits for an id that is away, in order.
    if (!isOwnedId(message.recipient) && nodePrefixOfCanonical(message.recipient) == d.id) {
        std::string recipient = message.recipient;
        if (d.sessions.count(recipient)) {
            NodeStats::add(d.stats.owner.deliveredLocally);
            deliverLocal(recipient, serializeDelivery(message.type, d.speaksAsHere(source),
                                                      recipient, message.body));
        } else if (!quiet) {
            NodeStats::add(d.stats.owner.notFound);
            deliverLocal(source, serializeNotFound(recipient));
        }
        return;
    }
    Router* router = d.router.get();
    d.toRouter([router, sender, m = std::move(message), quiet]() mutable {
        router->routeRemote(sender, std::move(m), quiet);
    });
}

std::string Node::newSessionId() const {
    const Impl& d = *impl_;
    if (!d.running) {
        return {};
    }
    return makeSessionId(d.id);
}

Node::OpenAs Node::openSessionAs(std::string_view id) {
    Impl& d = *impl_;
    if (!d.running) {
        return OpenAs::NotRunning;
    }
    if (!isNodeSessionId(id)) {
        return OpenAs::NotOurs;
    }
    // PeerJS ids are case-sensitive: only the id as this node wrote it.
    std::string canonical(id);
    canonicalizeSessionId(canonical);
    if (canonical != id || nodePrefixOfCanonical(canonical) != d.id) {
        return OpenAs::NotOurs;
    }
    if (!d.sessions.insert(canonical).second) {
        return OpenAs::Taken;
    }
    Router* router = d.router.get();
    d.toRouter([router, canonical] { router->openSession(canonical); });
    return OpenAs::Opened;
}

std::string Node::openPeerJsChosen(std::string_view id, std::string_view token) {
    Impl& d = *impl_;
    if (!d.running || !isChosenPeerJsId(id)) {
        return {};
    }
    std::string session = makeSessionId(d.id);
    d.sessions.insert(session);
    Router* router = d.router.get();
    PeerJsIdClaims* peerJsIds = d.peerJsIds.get();
    HostQueue* host = &d.host;
    d.toRouter([router, peerJsIds, host, session, id = std::string(id),
                token = std::string(token)] {
        router->openSession(session);
        peerJsIds->claim(session, id, token, [host, session, id](PeerJsIdClaims::Verdict v) {
            PeerJsIdVerdict verdict = v == PeerJsIdClaims::Verdict::Open ? PeerJsIdVerdict::Open
                                      : v == PeerJsIdClaims::Verdict::Taken
                                          ? PeerJsIdVerdict::Taken
                                          : PeerJsIdVerdict::NotInNetwork;
            host->pushChosenVerdict(session, serializePeerJsIdVerdict(session, id, verdict), id,
                                    verdict == PeerJsIdVerdict::Open);
        });
    });
    return session;
}

void Node::undeliverable(std::string_view session, std::string_view data) {
    Impl& d = *impl_;
    if (!d.running) {
        return;
    }
    JsonObjectReader json({"senderSessionId", "recipientSessionId"});
    if (json.read(data) != JsonObjectReader::Status::Ok ||
        json.kind(0) != JsonObjectReader::Kind::String) {
        return;
    }
    std::string sender = json.string(0);
    // A chosen id of this node spoke to a session here.
    auto chosen = d.sessionOfChosen.find(sender);
    if (chosen != d.sessionOfChosen.end()) {
        // Named as the sender named it: the recipient's chosen id is gone
        // with its session.
        if (json.kind(1) == JsonObjectReader::Kind::String) {
            NodeStats::add(d.stats.owner.notFound);
            deliverLocal(chosen->second, serializeNotFound(json.string(1)));
        }
        return;
    }
    // A chosen recipient is named as the message named it: its session
    // here no longer holds it.
    bool chosenRecipient = json.kind(1) == JsonObjectReader::Kind::String &&
                           isChosenPeerJsId(json.string(1));
    // A chosen sender here is one of another node (this node's are above).
    bool chosenSender = isChosenPeerJsId(sender);
    if (!chosenSender && (!isValidSessionId(sender) || !isValidSessionId(session))) {
        return;
    }
    std::string recipient = chosenRecipient ? std::string(json.string(1))
                                            : d.speaksAs(std::string(session));
    if (!chosenSender && (isOwnedId(sender) ? d.sessionOfOwned.count(sender) > 0
                                            : nodePrefixOfCanonical(sender) == d.id)) {
        auto owner = d.sessionOfOwned.find(sender);
        const std::string& to = owner == d.sessionOfOwned.end() ? sender : owner->second;
        if (d.sessions.count(to)) {
            NodeStats::add(d.stats.owner.notFound);
            deliverLocal(to, serializeNotFound(recipient));
        }
        return;
    }
    LinkId link = 0;
    std::uint64_t number = 0;
    if (d.handingOut && d.handingOut->data == data) {
        link = d.handingOut->link;
        number = d.handingOut->number;
    }
    Router* router = d.router.get();
    d.toRouter([router, sender = std::move(sender), recipient = std::move(recipient), link,
                   number] { router->tellRemoteNotFound(sender, recipient, link, number); });
}

std::size_t Node::drain(std::size_t max, const DeliveryFn& onDelivery, const LogFn& onLog) {
    Impl& d = *impl_;
    return d.host.drain(max, [&](const HostRecord& r) {
        if (r.kind == HostRecord::Kind::Delivery) {
            if (!onDelivery) {
                return;
            }
            struct HandingOut {
                const HostRecord*& slot;
                ~HandingOut() { slot = nullptr; }
            } handing{d.handingOut};
            d.handingOut = &r;
            if (!r.chosen.empty()) {
                d.chosenVerdict(r.sessionId, r.chosen, r.chosenHeld);
            }
            if (r.unbind) {
                auto owner = d.sessionOfOwned.find(r.sessionId);
                if (owner == d.sessionOfOwned.end()) {
                    return;
                }
                std::string session = owner->second;
                d.sessionOfOwned.erase(owner);
                d.ownedIdOf.erase(session);
                // Its rooms are the newer session's business now.
                Rooms* rooms = d.rooms.get();
                d.toRouter([rooms, id = r.sessionId] { rooms->leaveAll(id); });
                onDelivery(session, r.data);
                return;
            }
            // The host knows its sessions by the node's ids.
            if (isOwnedId(r.sessionId)) {
                auto owner = d.sessionOfOwned.find(r.sessionId);
                if (owner == d.sessionOfOwned.end()) {
                    undeliverable(r.sessionId, r.data);
                    return;
                }
                onDelivery(owner->second, r.data);
                return;
            }
            onDelivery(r.sessionId, r.data);
        } else if (onLog) {
            onLog(r.level, r.data);
        }
    });
}

}  // namespace dwrtc
