// The narrow interfaces through which the Router sees the rest of a node:
// the links (LinkService), the directory (NodeDirectory) and the clock. The
// real ones need sockets and a DHT; the router's unit tests put fakes in
// their place and run its whole state machine in milliseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dwrtc/owned_id.h"

namespace dwrtc {

using LogFn = std::function<void(int level, std::string line)>;

using LinkId = std::uint64_t;

// What the link service reports about links, on its thread.
class LinkEvents {
public:
    virtual ~LinkEvents() = default;
    // The TLS and WebSocket handshakes are done. binding is the TLS session's
    // channel binding: both ends of one session see the same bytes.
    virtual void onLinkOpen(LinkId id, bool outbound, std::string_view binding) = 0;
    // One frame of the link protocol (a JSON object as text).
    virtual void onLinkFrame(LinkId id, std::string_view frame) = 0;
    // The frames of one WebSocket message have all been handed over.
    virtual void onLinkMessageEnd(LinkId id) = 0;
    // The link is gone; opened says whether onLinkOpen() was called for it.
    virtual void onLinkClosed(LinkId id, bool outbound, bool opened) = 0;
    // Once a second, for timers such as closing idle links.
    virtual void onTick() = 0;
    // Once, after the delay a callSoon() asked for.
    virtual void onSoon() = 0;
};

// What the router asks of the links. All calls on the link thread, except
// post(), which any thread may call.
class LinkTransport {
public:
    virtual ~LinkTransport() = default;
    // Starts connecting; returns 0 if that failed at once.
    virtual LinkId connect(const std::string& host, unsigned port) = 0;
    // Queues one frame; frames go out in order.
    virtual void send(LinkId id, std::string frame) = 0;
    virtual void close(LinkId id) = 0;
    // Ends the link at once and throws away what it has not sent yet (a
    // TCP reset): for a link taken as broken, whose senders are told, so
    // that nothing on it arrives late, after they were told.
    virtual void abort(LinkId id) = 0;
    // The peer proved who it is: lift the limits of an unproven link.
    virtual void setProven(LinkId id) = 0;
    // The peer's address, for log lines ("" once the link is gone).
    virtual std::string peerAddress(LinkId id) const = 0;
    // Runs task on the link thread soon.
    virtual void post(std::function<void()> task) = 0;
    // Calls LinkEvents::onSoon() once after delay; asking again before it
    // has run changes nothing.
    virtual void callSoon(std::chrono::milliseconds delay) = 0;
};

// Where a node can be reached: its id and link URLs ("wss://h:p").
struct NodeRecord {
    std::string prefix;
    std::vector<std::string> links;
    // The node withdrew its record: it stopped, and its sessions with it.
    bool gone = false;
};

// What the router asks of the directory; any thread.
class Directory {
public:
    using LookupDone = std::function<void(std::optional<NodeRecord>)>;
    virtual ~Directory() = default;
    // Finds the live record of the node with this id; done gets nullopt when
    // there is none. done may run on any thread.
    virtual void lookup(const std::string& prefix, LookupDone done) = 0;
    // Keeps this node's own record stored (called once a second).
    virtual void ensurePublished() = 0;

    using IdLookupDone = std::function<void(std::optional<IdClaim>)>;
    // Finds the newest claim of a key-owned id that its own key signed and
    // whose time is not ahead of this node's clock by more than the skew
    // allowed (and, if notOn is given, that names another node); nullopt
    // when there is none. done may run on any thread.
    virtual void lookupId(const std::string& id, IdLookupDone done,
                          const std::string& notOn = {}) = 0;
    // Stores the claim of a session here, and keeps it stored until
    // withdrawId(): an id's newest claim is where it is.
    virtual void publishId(const IdClaim& claim) = 0;
    virtual void withdrawId(const std::string& id) = 0;

    using IdClaimed = std::function<void(IdClaim)>;
    // Follows a key-owned id that is away: claimed gets each claim stored
    // under it from now on (and those there now) that holds by the rules
    // of lookupId(), on any thread, until unfollowId() with the token
    // returned. A token of 0: this directory cannot follow, and the id is
    // looked up now and then instead.
    virtual std::uint64_t followId(const std::string& id, IdClaimed claimed) {
        (void)id;
        (void)claimed;
        return 0;
    }
    virtual void unfollowId(const std::string& id, std::uint64_t token) {
        (void)id;
        (void)token;
    }

    using ChosenLookupDone = std::function<void(std::optional<std::string> node)>;
    // Finds the node whose live session holds a chosen PeerJS id
    // (peerjs_id.h): the holder by peerJsIdHolder() of the id's records,
    // each signed by the node it names; nullopt when none holds it live (a
    // reserved id has no session to reach). done may run on any thread.
    virtual void lookupChosenId(const std::string& id, ChosenLookupDone done) {
        (void)id;
        done(std::nullopt);
    }
};

// Which chosen PeerJS ids sessions of this node hold (PeerJsIdClaims), asked
// on the router's thread. Empty functions: no session here holds any.
struct ChosenIdsHere {
    // The chosen id a session holds, or "".
    std::function<std::string(const std::string& session)> idOf;
    // The session that holds a chosen id, or "".
    std::function<std::string(const std::string& id)> sessionOf;
};

using RouterClock = std::chrono::steady_clock;
using NowFn = std::function<RouterClock::time_point()>;

}  // namespace dwrtc
