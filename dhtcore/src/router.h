// Router: where every message goes. Holds the routing state (local
// sessions, known nodes, links to them, messages waiting for a lookup or a
// connect) and lives on the link service thread: no locks in here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dwrtc/dwrtc.h"  // the defaults
#include "dwrtc/pending_queue.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "hold_budget.h"
#include "host_queue.h"
#include "node_stats.h"
#include "router_ports.h"

namespace dwrtc {

// Filled from NodeConfig, where the defaults are.
struct RouterConfig {
    std::size_t queueLimit = 0;  // waiting messages per recipient
    std::chrono::seconds linkIdleTimeout{0};
    // How long a node that could not be reached, or could not be found, is
    // answered for at once before the next message tries it again.
    std::chrono::milliseconds retryDelay{0};
    // A link whose messages have waited this long for an acknowledgement
    // is taken as broken (a partition, a peer that hangs).
    std::chrono::milliseconds ackTimeout{0};
    std::string networkKey;  // a private network's secret, or empty
    // Messages for a key-owned id that is away (its session closed, its
    // node gone) wait this long, at most this many per id, for the id to
    // be claimed again; 0 messages: its senders hear "not found" at once.
    std::size_t holdMessages = 0;
    std::chrono::milliseconds holdTime{0};
    // A node whose record is not in the DHT (yet: a node that has just
    // started, its record not stored or not yet found) is looked for this
    // long while its messages wait; then they are answered "unreachable".
    // "not found" is for a node that withdrew its record, or that says
    // the session is not there.
    std::chrono::milliseconds lookupWait{DWRTC_DEFAULT_LOOKUP_WAIT_MS};
    // What all the messages above (waiting and held) may cost, per sending
    // session and for the node: the limits per recipient and per id do not
    // bound a sender that writes to many of them.
    std::size_t sessionHoldMessages = DWRTC_DEFAULT_SESSION_HOLD_MESSAGES;
    std::size_t sessionHoldBytes = DWRTC_DEFAULT_SESSION_HOLD_BYTES;
    std::size_t nodeHoldBytes = DWRTC_DEFAULT_NODE_HOLD_BYTES;
    // Lookups of nodes and ids not known yet that one session may start:
    // per second on average, and at once. 0 per second: no limit. Each is a
    // DHT search, which costs the network and OpenDHT's memory.
    unsigned lookupRate = DWRTC_DEFAULT_LOOKUP_RATE;
    unsigned lookupBurst = DWRTC_DEFAULT_LOOKUP_BURST;
    // A claim dated further ahead of this node's clock is believed neither
    // from a link's sender nor in a takeover (owned_id.h).
    ClaimClock claimClock;
    // Key-owned ids a peer may speak for on one link, and claim signatures
    // checked per second per link (a second's worth at once); a peer that
    // needs more has its link closed.
    std::size_t linkOwnedSenders = DWRTC_DEFAULT_LINK_OWNED_SENDERS;
    unsigned linkClaimChecks = DWRTC_DEFAULT_LINK_CLAIM_CHECKS;
    // The address at which this node reaches its siblings' links: they are
    // on this host, and the address they publish (dwrtc_public_address)
    // may not lead back to it. Empty: siblings are found like other nodes.
    std::string siblingHost;
    // The host this node publishes (dwrtc_public_address) and the ports the
    // workers of its nginx take links on (dwrtc_link_port). A record at
    // that host and one of those ports is a sibling not listed yet (it has
    // just started): it is tried at siblingHost first, as a listed one is.
    // Only those ports: what a stranger's record may make this node connect
    // to on its own host is its own link ports.
    std::string publicHost;
    unsigned siblingPortFrom = 0;
    unsigned siblingPortTo = 0;
};

// Service thread only, except the constructor and destructor. Sees the
// links, the directory and the time only through router_ports.h.
class Router : public LinkEvents {
public:
    Router(RouterConfig config, std::shared_ptr<const NodeKey> key, LinkTransport& links,
           Directory& directory, HostQueue& host, LogFn log,
           NowFn now = [] { return RouterClock::now(); }, NodeStats* stats = nullptr);

    void openSession(const std::string& id);
    void closeSession(const std::string& id);
    // A session here now owns a key-owned id (the node checked the claim):
    // the claim is stored in the DHT and sent along with the id's messages,
    // and what waited for the id is delivered.
    void openOwned(const IdClaim& claim);
    void closeOwned(const std::string& id);
    // The id record (claim) of a key-owned session here, or "".
    std::string claimOf(const std::string& id) const;
    // A validated message from local session `sender` to a session on
    // another node.
    // quiet: a sender that is not told when the recipient is found nowhere
    // (PeerJS's LEAVE and EXPIRE, as the PeerJS server answers them).
    void routeRemote(const std::string& sender, ClientMessage message, bool quiet = false);
    // A message from remote session `sender` reached this node but not its
    // local recipient (it closed meanwhile): tell the sender's node.
    // link and number, when known, say which message it was (the delivery
    // came over that link as that msg frame).
    void tellRemoteNotFound(const std::string& sender, const std::string& recipient,
                            LinkId link = 0, std::uint64_t number = 0);

    // The other nodes of this node's host (its nginx's other workers, and
    // after a reload its successors). Sent to every proven peer that takes
    // them when the list changes, and to each peer once it is proven: a
    // node whose record the DHT does not show yet is reachable at once from
    // the nodes this one talks to. This node itself reaches them at
    // config.siblingHost, before and without their records.
    void setSiblings(std::vector<LinkSibling> siblings);

    // Which chosen PeerJS ids sessions here hold: a session that holds one
    // speaks as it to peers that take chosen ids, and messages for one
    // reach its session.
    void setChosenIds(ChosenIdsHere chosen) { chosen_ = std::move(chosen); }

    void onLinkOpen(LinkId id, bool outbound, std::string_view binding) override;
    void onLinkFrame(LinkId id, std::string_view frame) override;
    void onLinkMessageEnd(LinkId id) override;
    void onLinkClosed(LinkId id, bool outbound, bool opened) override;
    void onTick() override;
    void onSoon() override;

    // What held and waiting messages cost now, per sender and in all.
    const HoldBudget& holdBudget() const { return budget_; }

private:
    struct Waiting {
        std::string sender;
        std::string type;
        std::string body;
        std::uint64_t seq = 0;  // to a key-owned id: its place in the id's order
        HoldBudget::Charge charge;  // to sender, while this node holds it
        bool quiet = false;  // its sender is not told "not found"
    };
    using Clock = RouterClock;
    // A message to a key-owned id this node still has in hand: waiting for
    // a lookup of the id, held while the id is away, or in flight.
    struct Held {
        std::uint64_t seq = 0;  // messages to one id are delivered in this order
        std::string sender;
        std::string type;
        std::string body;
        Clock::time_point since;
        // To sender while held here (empty in a link's in-flight copies:
        // those are bounded per link).
        HoldBudget::Charge charge;
    };
    // Where a key-owned id is, as far as this node knows.
    // While a key-owned id is away the DHT tells of its next claim
    // (Directory::followId): the follow ends with its route, or when the
    // id is back.
    class IdFollow {
    public:
        IdFollow() = default;
        IdFollow(Directory& directory, std::string id, std::uint64_t token)
            : directory_(&directory), id_(std::move(id)), token_(token) {}
        IdFollow(IdFollow&& other) noexcept { *this = std::move(other); }
        IdFollow& operator=(IdFollow&& other) noexcept {
            if (this != &other) {
                reset();
                directory_ = other.directory_;
                id_ = std::move(other.id_);
                token_ = other.token_;
                other.token_ = 0;
            }
            return *this;
        }
        IdFollow(const IdFollow&) = delete;
        IdFollow& operator=(const IdFollow&) = delete;
        ~IdFollow() { reset(); }

        void reset() {
            if (token_ != 0) {
                directory_->unfollowId(id_, token_);
                token_ = 0;
            }
        }
        bool active() const { return token_ != 0; }

    private:
        Directory* directory_ = nullptr;
        std::string id_;
        std::uint64_t token_ = 0;
    };

    struct IdRoute {
        enum class State { LookingUp, Known, Away };
        State state = State::LookingUp;
        std::string node;        // of the newest claim known
        std::uint64_t time = 0;  // that claim's time
        std::deque<Held> held;   // by seq
        std::uint64_t nextSeq = 1;
        std::uint32_t inflight = 0;  // on links, not acknowledged or answered
        bool looking = false;        // a lookup is under way
        int missingLookups = 0;      // lookups in a row that found no claim
        Clock::time_point awaySince;
        Clock::time_point lookupAt;  // while away: the next lookup
        Clock::time_point lastUsed;
        IdFollow follow;  // while away
    };

    // A remote node as this node knows it.
    struct Peer {
        // Unreachable and Missing are remembered failures: until retryAt,
        // messages for the node are answered at once ("unreachable", "not
        // found") without a lookup, a connect or a log line each.
        enum class State {
            Idle,
            LookingUp,
            WaitingToRetry,
            Connecting,
            Open,
            Unreachable,
            Missing
        };
        explicit Peer(std::size_t limit) : waiting(limit) {}
        State state = State::Idle;
        std::optional<NodeRecord> record;  // cached address, kept while it works
        LinkId link = 0;
        bool lookedUpAgain = false;  // an unreachable node is looked up once more
        int missingLookups = 0;      // lookups in a row that found no record
        Clock::time_point missingSince;  // the first of them
        bool gone = false;           // Missing: the node withdrew its record
        bool viaHint = false;    // record is a sibling's hint, not from the DHT
        bool hintTried = false;  // the hint known now was tried already
        bool toldUnreachable = false;  // logged as unreachable, not reached since
        Clock::time_point retryAt;
        Clock::time_point lookupStarted;
        PendingQueue<Waiting> waiting;
        Clock::time_point lastUsed;
    };

    // What a local sender is told about one of its messages.
    // BudgetFull is "queue full" too, for the sender's share or the node's
    // total of held messages (HoldBudget) rather than the recipient's queue.
    // LookupLimited is "rate limited": the sender started too many lookups.
    enum class Answer {
        NotFound,
        Unreachable,
        QueueFull,
        NotBackInTime,
        BudgetFull,
        LookupLimited
    };
    // Takes one of the sender's lookup tokens (RouterConfig::lookupRate);
    // false, taking none, when it has none left.
    bool mayLookUp(const std::string& sender);

    // charge: what the message is charged already, when it was held here
    // before (a message that waited for a key-owned id's claim). quiet: its
    // sender is not told "not found" (routeRemote).
    void routeToNode(const std::string& prefix, const std::string& sender, std::string recipient,
                     std::string type, std::string body, std::uint64_t seq,
                     HoldBudget::Charge charge = HoldBudget::Charge(), bool quiet = false);
    // Charges a message that is about to be held, unless it is charged
    // already; false (the sender is told) when its sender's share or the
    // node's total is spent.
    bool chargeHeld(HoldBudget::Charge& charge, const std::string& sender,
                    const std::string& recipient, const std::string& type,
                    const std::string& body);
    void routeOwned(const std::string& sender, ClientMessage message);
    void dispatchOwned(const std::string& id, IdRoute& route, Held message);
    // A message to a key-owned id came back undelivered: hold it while the
    // id is away, or tell its sender.
    void bounced(const std::string& id, Held message, Answer answer);
    void flushHeld(const std::string& id, IdRoute& route);
    void startIdLookup(const std::string& id, IdRoute& route);
    void onIdLookup(const std::string& id, std::optional<IdClaim> claim);
    // A claim the DHT told of while the id is away (followId).
    void onIdClaimed(const std::string& id, IdClaim claim);
    // The id is where claim says: its held messages go there.
    void takeClaim(const std::string& id, IdRoute& route, const IdClaim& claim);
    void startFollowing(const std::string& id, IdRoute& route);
    Clock::duration awayLookupInterval(const IdRoute& route) const;
    void pollAway();
    void startLookup(const std::string& prefix, Peer& peer);
    void markMissing(Peer& peer, bool gone);
    void onLookup(const std::string& prefix, std::optional<NodeRecord> record);
    void connect(const std::string& prefix, Peer& peer);
    void connectFailed(const std::string& prefix, Peer& peer, const char* why);
    void flush(Peer& peer);
    void tell(const std::string& session, Answer answer, std::string_view recipient);
    void failWaiting(Peer& peer, Answer answer);
    // What waits for the node for key-owned ids goes to their holds; the
    // rest stays.
    void holdOwnedWaiting(Peer& peer, Answer answer);
    void markUnreachable(const std::string& prefix, Peer& peer, const std::string& why);

    void closeUnacknowledged();
    void sendMessage(LinkId id, const std::string& sender, const std::string& recipient,
                     std::string_view type, std::string_view body, std::uint64_t seq = 0,
                     bool quiet = false);
    void helloFromPeer(LinkId id, const std::string& node);
    void refuseLink(LinkId id, int level, const std::string& why);

    // A message written to a link and not acknowledged yet: if the link
    // breaks first, its sender is told. Fixed size, so holding one costs no
    // allocation of its own.
    struct InFlight {
        char sender[kSessionIdLength];
        char recipient[kSessionIdLength];
        bool answered = false;  // its sender heard "not found" already
        bool quiet = false;     // its sender is not told "not found"
        // To a key-owned id: the message itself, so that it can be held if
        // it comes back (null once it has).
        std::unique_ptr<Held> copy;
        // To a chosen PeerJS id, of any length: its name (recipient is
        // then unused). Only these messages pay for an allocation.
        std::unique_ptr<std::string> chosenRecipient;

        bool is(const std::string& from, const std::string& to) const {
            return from.compare(0, from.size(), sender, sizeof sender) == 0 &&
                   (chosenRecipient ? *chosenRecipient == to
                                    : to.compare(0, to.size(), recipient, sizeof recipient) == 0);
        }
        std::string recipientName() const {
            return chosenRecipient ? *chosenRecipient : std::string(recipient, sizeof recipient);
        }
    };

    // A chosen id a peer speaks as: checked against the DHT (the id's
    // holder must be the peer) before its messages are delivered, and again
    // once the check is old. Its messages wait, in order, while it is
    // checked.
    struct ChosenSender {
        enum class State { Checking, Holds, NotHeld };
        State state = State::Checking;
        Clock::time_point checkedAt;
        struct Frame {
            LinkFrame frame;
            std::uint64_t number = 0;  // its place among the link's msg frames
        };
        std::deque<Frame> waiting;
        bool rechecking = false;  // a check of an old verdict is under way
        bool logged = false;  // a message dropped as not the peer's: logged once
    };
    // A link as the router sees it: who opened it, the TLS session's
    // channel binding until the peer is proven, then the proven node, and
    // the acknowledgements owed and awaited.
    struct LinkState {
        bool outbound = false;
        std::string binding;
        std::string node;            // set once the peer's hello is proven
        std::uint32_t unacked = 0;   // msg frames handled, not acknowledged yet
        std::uint64_t received = 0;  // msg frames got on this link
        std::uint64_t acked = 0;     // msg frames sent and acknowledged
        std::deque<InFlight> inflight;  // msg frames sent, not acknowledged yet
        Clock::time_point ackAwaitedSince;  // of the oldest of them, or the last ack
        // Messages to key-owned ids that were acknowledged a moment ago, by
        // their number on the link: the node that acknowledged one may
        // still find that its session closed before it could take it.
        struct Acked {
            std::uint64_t number;
            std::string recipient;
            Held message;
        };
        std::deque<Acked> recentlyAcked;
        // The numbers of the last quiet messages acknowledged (ascending): a
        // "not found" may come after the ack, and is not told for them.
        std::deque<std::uint64_t> quietAcked;
        // Key-owned ids whose claim went out on this link.
        std::unordered_set<std::string> claimsSent;
        // Key-owned ids the peer speaks for, with the SHA-256 of the claim
        // that held: the same claim again (a replayed frame, a sender's
        // first message after a reconnect of the link's far end) costs no
        // signature check. At most RouterConfig::linkOwnedSenders.
        std::unordered_map<std::string, std::string> ownedSenders;
        // Claim signatures this link may still have checked: a token bucket
        // of RouterConfig::linkClaimChecks a second.
        double claimChecks = 0;
        Clock::time_point claimChecksRefilled;
        bool takesSiblings = false;  // its hello said it understands "siblings"
        bool takesChosen = false;    // its hello said it takes chosen PeerJS ids
        // Chosen PeerJS ids the peer speaks as, each believed while the
        // DHT names the peer as its holder (router_chosen.cpp). Counted
        // against RouterConfig::linkOwnedSenders with ownedSenders.
        std::unordered_map<std::string, ChosenSender> chosenSenders;
        // What their messages waiting for a check cost, in bytes: at most
        // RouterConfig::sessionHoldBytes a link, as for one sending session.
        std::size_t chosenWaitingBytes = 0;
    };
    // The frame handlers get the link's state that onLinkFrame() found; it
    // is gone once they refuse the link.
    void handleHello(LinkId id, LinkState& state, const LinkFrame& frame);
    void handleDeliver(LinkId id, LinkState& state, const LinkFrame& frame);
    void handleAck(LinkId id, LinkState& state, std::uint32_t count);
    // A proven peer says where the other nodes of its host are.
    void handleSiblings(LinkId id, const LinkFrame& frame);
    // The host a peer's siblings are on: the one of its record when this
    // node connected to it, else the address its link came from.
    std::string announcerHost(LinkId id) const;
    // Connects to the node at its sibling's hint, or at this host's address
    // if it is a sibling of this node, unless that was tried already; false
    // when there is none.
    bool connectByHint(const std::string& prefix, Peer& peer);
    // Where a sibling of this node listens (wss://siblingHost:port), or
    // empty for a node that is not one.
    std::string ownSiblingUrl(const std::string& prefix) const;
    bool connectOnThisHost(const std::string& prefix, Peer& peer);
    // A new address for a node: messages that wait for it try there at
    // once, and one that failed lately is tried again with the next message.
    void addressLearned(const std::string& prefix);
    void sendSiblings(LinkId id, const LinkState& state);
    void takenOver(LinkId id, LinkState& state, const LinkFrame& frame);
    // Takes one claim check from the link's budget; false, with the link
    // refused, when the peer has spent it.
    bool spendClaimCheck(LinkId id, LinkState& state);
    // A "notfound" for a message to a key-owned id: the message it numbers
    // comes back to its id's hold.
    void handleOwnedNotFound(LinkState& state, const LinkFrame& frame);
    void tellNotFound(LinkState& state, const std::string& sender, const std::string& recipient,
                      std::uint64_t number);
    InFlight* markAnswered(LinkState& state, const std::string& sender,
                           const std::string& recipient);
    void settled(InFlight& message);
    // The link is gone: whatever was in flight on it was lost.
    void forgetLink(LinkId id);
    void sendAck(LinkId id, LinkState& state);

    // Chosen PeerJS ids (router_chosen.cpp).
    // Sending: a message for a chosen id goes to the node the DHT names as
    // its holder, found once and remembered for a while.
    void routeChosen(const std::string& sender, ClientMessage message, bool quiet);
    void onChosenLookup(const std::string& id, std::optional<std::string> node);
    // Receiving: a peer's message as a chosen id waits for, or is let
    // through by, the check that the peer holds the id.
    void admitChosen(LinkId id, LinkState& state, const LinkFrame& frame);
    void onChosenSenderChecked(LinkId link, const std::string& id, bool holds);
    // A message as a chosen id the peer does not hold: answered "notfound"
    // (an honest peer tells its sender) and logged once per link and id.
    void dropChosen(LinkId id, const std::string& node, ChosenSender& sender,
                    const LinkFrame& frame, std::uint64_t number);
    void handleChosenNotFound(LinkId id, LinkState& state, const LinkFrame& frame);
    // A msg frame from a believed sender: to its session here, or answered
    // "notfound" with its number.
    void deliverFromLink(LinkId id, const LinkFrame& frame, std::uint64_t number);
    void forgetChosen();

    NodeStats unusedStats_;  // counted into when no stats are given
    NodeStats* stats_;
    RouterConfig config_;
    std::shared_ptr<const NodeKey> key_;
    std::string self_;
    std::string publicHost_;  // config_.publicHost as parseLinkUrl spells hosts
    LinkTransport& links_;
    Directory& directory_;
    HostQueue& host_;
    LogFn log_;
    NowFn now_;
    // Declared before everything that holds charged messages, so that it
    // outlives them.
    HoldBudget budget_;

    std::unordered_set<std::string> sessions_;
    std::unordered_map<std::string, Peer> peers_;            // by node prefix
    std::unordered_map<LinkId, std::string> outbound_;       // link -> node prefix
    std::unordered_map<LinkId, LinkState> linkState_;
    bool acksDue_ = false;  // a callSoon() for the acks waiting is pending
    // Key-owned ids of sessions here, with their claims as sent on links.
    std::unordered_map<std::string, std::string> ownedSessions_;
    std::unordered_map<std::string, IdRoute> idRoutes_;
    // Key-owned ids whose lookups found no claim, until when their messages
    // are answered "not found" at once, as for a missing node: a sender
    // that writes to one again and again costs no lookup each.
    std::unordered_map<std::string, Clock::time_point> unclaimedIds_;
    // Lookup tokens of local sessions that started lookups lately.
    struct LookupTokens {
        double tokens = 0;
        Clock::time_point at;
    };
    std::unordered_map<std::string, LookupTokens> lookupTokens_;
    std::vector<LinkSibling> siblings_;
    ChosenIdsHere chosen_;
    // Chosen ids whose holders are being looked up, with the messages that
    // wait for the answer (charged to their senders), in order.
    struct ChosenWaiting {
        std::string sender;
        std::string type;
        std::string body;
        HoldBudget::Charge charge;
        bool quiet = false;  // not told if the id is held nowhere
    };
    std::unordered_map<std::string, std::deque<ChosenWaiting>> chosenLookups_;
    // Where chosen ids were found lately, until when this is believed
    // without a lookup; a "notfound" for one forgets it.
    struct ChosenPlace {
        std::string node;
        Clock::time_point until;
    };
    std::unordered_map<std::string, ChosenPlace> chosenPlaces_;
    // Where proven peers said their siblings are, by node id: tried before
    // the DHT, never trusted (the link proves who answers). Bounded in
    // number, each kept for a minute.
    struct Hint {
        std::string url;  // wss://host:port
        LinkId from = 0;  // the link it came on
        Clock::time_point until;
    };
    std::unordered_map<std::string, Hint> hints_;
};

}  // namespace dwrtc
