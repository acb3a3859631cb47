// dwrtc::Node: one DWRTC signaling node. It joins the DHT, publishes where
// it can be reached, accepts sessions and routes their messages, locally or
// over links to other nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dwrtc/dwrtc.h"  // the defaults
#include "dwrtc/protocol.h"  // LinkSibling

namespace dwrtc {

class LinkDriver;
class DrivenLinks;

// A private network's secret is at least this long (bytes).
constexpr std::size_t kMinNetworkKeyLength = 16;

struct NodeConfig {
    // Port ranges; 0-0: the system picks.
    unsigned dhtPortFrom = DWRTC_DEFAULT_DHT_PORT_FROM, dhtPortTo = DWRTC_DEFAULT_DHT_PORT_TO;
    unsigned linkPortFrom = DWRTC_DEFAULT_LINK_PORT_FROM, linkPortTo = DWRTC_DEFAULT_LINK_PORT_TO;
    std::string bindAddress = DWRTC_DEFAULT_BIND_ADDRESS;
    std::vector<std::string> bootstrap;  // "host:port" of DHT nodes
    std::string publicAddress = DWRTC_DEFAULT_PUBLIC_ADDRESS;
    std::size_t maxMessageSize = DWRTC_DEFAULT_MAX_MESSAGE_SIZE;
    std::size_t queueLimit = DWRTC_DEFAULT_QUEUE_LIMIT;
    long dhtPerIpRequestLimit = 0;  // 0: OpenDHT default, -1: none
    long dhtTotalRequestLimit = 0;
    // DHT searches OpenDHT keeps at once (OpenDHT's own cap is a million).
    std::size_t dhtMaxSearches = DWRTC_DEFAULT_DHT_MAX_SEARCHES;
    unsigned linkIdleSeconds = DWRTC_DEFAULT_LINK_IDLE_SECONDS;
    // Accept to proven hello, at most; then the link is closed.
    unsigned linkHandshakeMs = DWRTC_DEFAULT_LINK_HANDSHAKE_MS;
    // Inbound links not proven yet, at most at once.
    unsigned linkMaxUnproven = DWRTC_DEFAULT_LINK_MAX_UNPROVEN;
    // A node that could not be reached or found is answered for at once
    // this long before the next message tries it again.
    unsigned linkRetryMs = DWRTC_DEFAULT_LINK_RETRY_MS;
    // Messages unacknowledged this long mean a broken link.
    unsigned linkAckTimeoutMs = DWRTC_DEFAULT_LINK_ACK_TIMEOUT_MS;
    // A node whose record is not in the DHT is looked for this long while
    // its messages wait; then they are answered "unreachable".
    unsigned lookupWaitMs = DWRTC_DEFAULT_LOOKUP_WAIT_MS;
    // Messages for a key-owned id that is away are held this many per id,
    // this long; 0 messages: its senders hear "not found" at once.
    std::size_t holdMessages = DWRTC_DEFAULT_HOLD_MESSAGES;
    unsigned holdMs = DWRTC_DEFAULT_HOLD_MS;
    // All the messages above, waiting and held, charged to their sending
    // session (messages, bytes) and to the node (bytes).
    std::size_t sessionHoldMessages = DWRTC_DEFAULT_SESSION_HOLD_MESSAGES;
    std::size_t sessionHoldBytes = DWRTC_DEFAULT_SESSION_HOLD_BYTES;
    std::size_t nodeHoldBytes = DWRTC_DEFAULT_NODE_HOLD_BYTES;
    // New lookups one session may start: per second, and at once; 0: no limit.
    unsigned lookupRate = DWRTC_DEFAULT_LOOKUP_RATE;
    unsigned lookupBurst = DWRTC_DEFAULT_LOOKUP_BURST;
    // This node's own members of a room; rooms of one session.
    std::size_t roomMembers = DWRTC_DEFAULT_ROOM_MEMBERS;
    std::size_t roomsPerSession = DWRTC_DEFAULT_ROOMS_PER_SESSION;
    // Members of other nodes followed per room; of them, per other node;
    // other nodes' record checks remembered at once.
    std::size_t roomRemoteMembers = DWRTC_DEFAULT_ROOM_REMOTE_MEMBERS;
    std::size_t roomMembersPerNode = DWRTC_DEFAULT_ROOM_MEMBERS_PER_NODE;
    std::size_t roomNodeChecks = DWRTC_DEFAULT_ROOM_NODE_CHECKS;
    // How far ahead of this node's clock a claim may be dated and still be
    // believed (owned_id.h, ClaimClock).
    unsigned claimClockSkewMs = DWRTC_DEFAULT_CLAIM_CLOCK_SKEW_MS;
    // Key-owned ids a peer may speak for on one link, and claim signatures
    // checked per second per link; beyond either the link is closed.
    std::size_t linkOwnedSenders = DWRTC_DEFAULT_LINK_OWNED_SENDERS;
    unsigned linkClaimChecks = DWRTC_DEFAULT_LINK_CLAIM_CHECKS;
    // Claims one session may make a minute (a bucket of as many), and the
    // refusals in a row after which it is closed.
    unsigned claimsPerMinute = DWRTC_DEFAULT_CLAIMS_PER_MINUTE;
    unsigned claimRefusals = DWRTC_DEFAULT_CLAIM_REFUSALS;
    // Claim signatures checked per lookup of a key-owned id.
    unsigned lookupClaimChecks = DWRTC_DEFAULT_LOOKUP_CLAIM_CHECKS;
    // A closed PeerJS session's chosen id stays reserved for its token this
    // long (0: freed at once); a chosen id's claim waits this long for the
    // DHT (docs/peerjs.md, "Chosen ids across the network").
    unsigned peerJsIdReserveMs = DWRTC_DEFAULT_PEERJS_ID_RESERVE_MS;
    unsigned peerJsIdWaitMs = DWRTC_DEFAULT_PEERJS_ID_WAIT_MS;
    unsigned peerJsIdReservations = DWRTC_DEFAULT_PEERJS_ID_RESERVATIONS;
    // Shared secret of a private network; empty: the open network.
    std::string networkKey;
    int logLevel = 2;  // DWRTC_LOG_INFO
    // When set, links run over the host's own connections (DrivenLinks,
    // driven_links.h) on the owner thread instead of libwebsockets' thread:
    // the host listens on linkPortFrom, which the node publishes, and
    // connects when the driver is asked to. Not owned; outlives the node.
    LinkDriver* linkDriver = nullptr;
};

// Owner thread: the one thread that calls the methods below (an nginx
// worker's event loop). The node runs its own threads between start() and
// stop(); results come back through eventFd() and drain().
struct NodeStatsSnapshot {
    std::uint64_t sessions = 0, linksIn = 0, linksOut = 0;
    // Links opened where a sibling of the node said it was (counter), and
    // proven links open now with nodes that are not siblings.
    std::uint64_t linksViaSiblings = 0, linksOutside = 0;
    std::uint64_t fromClients = 0, deliveredLocally = 0, sentOverLinks = 0, receivedOverLinks = 0;
    std::uint64_t notFound = 0, unreachable = 0, invalid = 0, queueFull = 0;
    // Of queueFull, told because a sender's or the node's hold budget was spent.
    std::uint64_t budgetFull = 0;
    // Messages answered "rate limited": their sender started too many lookups.
    std::uint64_t lookupsLimited = 0;
    // Bounds hit: claims of sessions here refused (dwrtc_claims), links
    // closed for their claims (dwrtc_link_claims), joins answered "room
    // full", members of other nodes not followed (the room bounds).
    std::uint64_t claimsRefused = 0, linksRefusedForClaims = 0, roomFull = 0,
                  roomMembersNotFollowed = 0;
    // Claims dated too far ahead, not believed (from the DHT and links);
    // lookups that had more claims to check than allowed.
    std::uint64_t claimsAhead = 0, claimChecksSpent = 0;
    // Chosen PeerJS ids reserved now; ids not reserved for the cap.
    std::uint64_t peerJsIdsReserved = 0, peerJsIdsNotReserved = 0;
    std::uint64_t lookups = 0, lookupsFailed = 0, lookupUsSum = 0;
    std::uint64_t lookupBuckets[DWRTC_LOOKUP_BUCKETS] = {};
    unsigned dhtGood = 0, dhtDubious = 0;
    // Whether the node is in the network: DWRTC_NETWORK_*; DHT nodes
    // outside this nginx that answer; bootstrap entries that name other
    // nodes, and how many of them answered.
    int networkState = DWRTC_NETWORK_ALONE;
    unsigned dhtOutside = 0, bootstrapEntries = 0, bootstrapAnswered = 0;
    // How long the last put of the node's record took until it was stored
    // (from its first try), in ms; 0 while none was stored.
    std::uint64_t lastPublishMs = 0;
};

class Node {
public:
    // ClaimsRefused: taken, but the session's claims were refused
    // NodeConfig::claimRefusals times in a row: close the session.
    enum class Submit { Ok, UnknownSession, NotRunning, ClaimsRefused };
    using DeliveryFn = std::function<void(std::string_view session, std::string_view data)>;
    using LogFn = std::function<void(int level, std::string_view line)>;

    explicit Node(NodeConfig config);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // Binds ports, joins the DHT, publishes the node, starts the threads.
    // False (reason in the log records) if a port range is exhausted.
    bool start();
    // Withdraws the node's record, closes links, joins threads. Idempotent.
    void stop();
    // With a link driver, the first part of stop() for a host that still
    // has its connections: members of rooms leave, the acknowledgements
    // owed go out, and every link is closed (DrivenLinks::Status::Finish,
    // with a close frame for a proven peer). The host writes what they
    // take, then calls stop(). Nothing without a driver.
    void finishLinks();
    bool running() const;
    // True once the node's record is stored in the DHT: from then on other
    // nodes can reach its sessions.
    bool published() const;
    // Whether some other DHT node answers this one (before the record is
    // stored: whether there is anyone to store it on).
    bool hasDhtPeers() const;
    // What the node counted since it started, and where it stands now.
    NodeStatsSnapshot stats() const;

    const std::string& id() const;  // 32 hex characters, valid after start()
    unsigned dhtPort() const;
    unsigned linkPort() const;
    int eventFd() const;
    // With NodeConfig::linkDriver: the links the owner thread drives (its
    // eventFd() and run() as well as the connections); nullptr otherwise.
    DrivenLinks* drivenLinks() const;

    // A new session on this node; empty when the node is not running.
    std::string openSession();
    // What the session signs to claim a key-owned id (owned_id.h); empty
    // for a session that is not open.
    std::string challenge(std::string_view session);
    bool closeSession(std::string_view id);
    // A fresh session id of this node, not yet open (a PeerJS client asks
    // for one before it connects); empty when the node is not running.
    std::string newSessionId() const;
    // Opens a session under an id this node assigned (newSessionId()).
    enum class OpenAs { Opened, NotOurs, Taken, NotRunning };
    OpenAs openSessionAs(std::string_view id);
    // Opens a session for a PeerJS client that chose its id (a chosen id,
    // peerjs_id.h) with its token; returns the session's node id, "" when
    // the node is not running or the id is not a chosen one. The session
    // is open at once; whether it holds the id comes later as a delivery
    // to it (serializePeerJsIdVerdict, shown by renderForPeerJs): open,
    // taken, not in the network, and while it holds the id, lost (a race)
    // or taken over (its token's newer session, on any node). Closing the
    // session reserves the id for its token (peerJsIdReserveMs).
    std::string openPeerJsChosen(std::string_view id, std::string_view token);
    // One client message (WebSocket text) from a session.
    Submit submit(std::string_view session, std::string_view message);
    // One message of a PeerJS session (peerjs.h), already read: routed as a
    // native message; a recipient that is not a session id of the network
    // is "not found" to the sender. A LEAVE or EXPIRE for a recipient this
    // node knows is gone gets no answer, as the PeerJS server gives none.
    Submit submitPeerJs(std::string_view session, ClientMessage message);

    // When set, what submit() has for this node's own sessions (a message
    // to a session on this node, an error for the sender) is handed to fn
    // before submit() returns, instead of waiting for drain(): no queue, no
    // eventfd and no trip round the host's event loop. fn runs on the owner
    // thread inside submit(); it must not call back into the node.
    void setLocalDelivery(DeliveryFn fn);
    // A delivery the owner could not hand to its session (gone, closing):
    // the message's sender hears "not found", wherever it is. Deliveries
    // that are the node's own answers (errors) have no sender; nothing
    // happens for them.
    void undeliverable(std::string_view session, std::string_view data);

    // The other nodes of this node's host (node id and link port each),
    // for example the other workers of its nginx: the nodes this one has
    // links with learn where they are before the DHT shows their records.
    // Owner thread; only a change is sent.
    void setSiblings(std::vector<LinkSibling> siblings);

    // Hands out waiting deliveries and log records, up to max (0: all).
    std::size_t drain(std::size_t max, const DeliveryFn& onDelivery, const LogFn& onLog);

private:
    void deliverLocal(const std::string& session, std::string data);
    // Routes a read message from the session `source`; `quiet`: no "not
    // found" for a recipient known here to be gone.
    void route(const std::string& source, ClientMessage message, bool quiet);
    void routeToChosen(const std::string& source, ClientMessage message, bool quiet);
    // False when the session is to be closed (refused too often).
    bool claim(const std::string& session, std::string_view text);
    void roomRequest(const std::string& session, std::string_view text);

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dwrtc
