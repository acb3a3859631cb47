// Rooms: named groups of sessions that see who else is in them, on any
// node. A session joins a room by name; its node stores a member value
// under the room's key in the DHT, signed by the node, and listens to the
// key while it has members there: every member hears when another joins
// or leaves, also on other nodes, and gets the member list when it joins.
// Lives on the link service thread, beside the Router: no locks here.
//
// Anyone on the DHT can store values under a room's key. A member value is
// believed only when it is signed by the key of the node it names, that
// node has a live record in the DHT (so a key made up for the purpose and
// never run as a node is not enough), and that node speaks for no more than
// a few members of the room; members of other nodes are bounded apart from
// this node's own, so a join here is never refused because of them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "host_queue.h"
#include "node_stats.h"
#include "router_ports.h"

namespace dwrtc {

// The OpenDHT value type of member values (they expire a minute after their
// node stops refreshing them).
constexpr std::uint16_t kRoomMemberValueType = 0x4452;
// The OpenDHT value type of chosen PeerJS id records (node_directory.h):
// they too expire a minute after their node stops refreshing them, so the
// ids of a node that died are free again a minute later.
constexpr std::uint16_t kPeerJsIdValueType = 0x4453;
constexpr std::chrono::seconds kPeerJsIdLifetime{60};

// One member of a room as stored in the DHT: which session, on which node,
// and whether it has left. For a key-owned id, claim is the owner's claim
// naming that node (the id's record), so a reader can check that the node
// speaks for the id.
struct RoomMember {
    std::string room;
    std::string id;
    std::string node;
    std::string claim;  // key-owned ids only
    bool gone = false;
    // The DHT value's sequence number (not in the text): a node's later
    // word on a member replaces its earlier one.
    std::uint16_t seq = 0;
};

// {"v":1,"room":R,"id":I,"node":N,"gone":G[,"claim":C]}
std::string encodeRoomMember(const RoomMember& m);
bool decodeRoomMember(std::string_view text, RoomMember& out);
// Whether the node that signed the value (its id: signer) may speak for
// the member: it is the member's node, and the member's id is one of its
// sessions (a node-assigned id that names it, or a key-owned id whose
// claim names it, and is not dated further ahead than `clock` allows).
bool memberBindingHolds(const RoomMember& m, std::string_view signer, const ClaimClock& clock,
                        std::string& why);

// 1 to 64 bytes of printable ASCII.
bool isValidRoomName(std::string_view name);

// The DHT name a room's members are stored under (hashed by the store); in
// a private network it depends on the network's secret.
std::string roomRecordName(std::string_view networkKey, std::string_view room);

// What Rooms asks of the DHT (NodeDirectory); any thread.
class RoomStore {
public:
    using Members = std::vector<RoomMember>;
    virtual ~RoomStore() = default;
    // Stores this node's value for m (signed, replacing its earlier one)
    // and keeps it stored; a gone one is stored once and no longer kept.
    virtual void putMember(const RoomMember& m) = 0;
    // Every member value under the room that holds (memberBindingHolds).
    virtual void getRoom(const std::string& room, std::function<void(Members)> done) = 0;
    // Values that are stored, changed or expire under the room from now on
    // (expired: they went away without a word). Returns a token for
    // cancelRoom().
    virtual std::uint64_t listenRoom(const std::string& room,
                                     std::function<void(Members, bool expired)> changed) = 0;
    virtual void cancelRoom(const std::string& room, std::uint64_t token) = 0;
};

struct RoomLimits {
    // This node's own members per room: a join beyond gets "room full".
    std::size_t membersPerRoom = 0;
    std::size_t roomsPerSession = 0;
    // Members of other nodes followed per room, apart from this node's own.
    std::size_t remoteMembers = 0;
    // Members one other node (one signing key) may add to a room.
    std::size_t membersPerNode = 0;
    // Other nodes whose record check is remembered (or under way) at once.
    std::size_t nodeChecks = 0;
    // How long a node whose record is not found yet is looked for again
    // (once a second) before its members are refused.
    std::chrono::milliseconds recordWait{5000};
};

class Rooms {
public:
    // claimOf: the id record of a key-owned session of this node. records:
    // where the other nodes' records are looked up. now: the clock that
    // dates the record checks.
    Rooms(RoomLimits limits, std::string self, RoomStore& store, Directory& records,
          HostQueue& host, LinkTransport& links, LogFn log,
          std::function<std::string(const std::string&)> claimOf, NowFn now,
          NodeStats* stats = nullptr);

    void join(const std::string& id, const std::string& room);
    void leave(const std::string& id, const std::string& room);
    // The session closed: it leaves every room.
    void leaveAll(const std::string& id);
    // The node stops: every member here leaves, so that the others hear it
    // now rather than when the values expire.
    void leaveEverything();
    // Once a second: looks again for the records of nodes not found yet,
    // and forgets old checks.
    void onTick();

    // For tests and the status: members of other nodes followed in a room,
    // and other nodes whose record check is remembered or under way.
    std::size_t remoteMembers(const std::string& room) const;
    // Members of other nodes that wait for their node's record check.
    std::size_t heldMembers(const std::string& room) const;
    std::size_t nodesChecked() const { return signers_.size(); }

private:
    struct Room {
        std::set<std::string> local;                    // members on this node
        std::map<std::string, std::string> members;     // id -> node, all known
        // Members followed per other node, and their sum: the bounds.
        std::map<std::string, std::size_t> byNode;
        std::size_t remote = 0;
        // Members of nodes being checked that wait for the answer (Signer::
        // waiting), all nodes together: at most remoteMembers.
        std::size_t held = 0;
        // The newest sequence number seen per member and node ("id node"):
        // the DHT may hand an older value (a join) after a newer one (the
        // leave that replaced it); the older one says nothing new. Kept for
        // the members followed, and for those that left (goneOrder, oldest
        // first, when) for two minutes, at most remoteMembers of them: so it
        // cannot grow without a bound, and is gone before the member's node
        // starts its numbers again (MemberSequence).
        std::map<std::string, std::uint16_t> newest;
        std::deque<std::pair<std::string, RouterClock::time_point>> goneOrder;
        bool loaded = false;        // the first get is done, the list sent
        std::vector<std::string> waitingForList;        // joined before it was
        // Nodes whose first record check the list waits for.
        std::set<std::string> listWaitsFor;
        std::uint64_t listenToken = 0;
    };

    // What is known of another node's record, by its id (the member values'
    // signer): checked once per node, not per value.
    struct Signer {
        enum class State { Checking, Valid, Refused };
        State state = State::Checking;
        bool lookingUp = false;             // a lookup is under way
        bool answered = false;              // the first lookup was answered
        RouterClock::time_point since;      // the first lookup (Checking)
        RouterClock::time_point until;      // check again (Valid), forget (Refused)
        // Joins that came while the record was being looked for, newest
        // per member: room -> id -> value, at most membersPerNode per room.
        std::map<std::string, std::map<std::string, RoomMember>> waiting;
    };

    void onLoaded(const std::string& room, RoomStore::Members members);
    void onChanged(const std::string& room, RoomStore::Members members, bool expired);
    void merge(Room& room, const RoomStore::Members& members, bool expired, bool announce,
               const std::string& name);
    // One value of another node whose record holds.
    void apply(Room& room, const RoomMember& m, bool gone, bool announce,
               const std::string& name);
    // The signer's entry, made (and its record looked up) if there is room
    // for one; nullptr if every entry is in use.
    Signer* signerOf(const std::string& node);
    void lookUp(const std::string& node, Signer& signer);
    void onRecord(const std::string& node, bool live);
    void judge(const std::string& node, Signer& signer, bool live);
    void finishLoading(const std::string& name, Room& room);
    void hold(Signer& signer, Room& room, const std::string& name, const RoomMember& m);
    // Takes the signer's waiting values out, uncounting them in their rooms.
    std::map<std::string, std::map<std::string, RoomMember>> release(Signer& signer);
    void addMember(Room& room, const std::string& id, const std::string& node);
    void eraseMember(Room& room, std::map<std::string, std::string>::iterator it);
    void rememberGone(Room& room, const std::string& key);
    // Forgets the oldest leaves remembered while there are too many or
    // they are old enough.
    void forgetGone(Room& room, RouterClock::time_point now);
    void sendList(const std::string& room, Room& r, const std::string& to);
    void tellLocal(const Room& r, const std::string& json, const std::string& except);
    void remove(const std::string& id, const std::string& name, Room& r);
    RoomMember memberValue(const std::string& id, const std::string& room, bool gone);
    void countHit(NodeStats::Counter NodeStats::Links::*counter);

    RoomLimits limits_;
    std::string self_;
    RoomStore& store_;
    Directory& records_;
    HostQueue& host_;
    LinkTransport& links_;
    LogFn log_;
    std::function<std::string(const std::string&)> claimOf_;
    NowFn now_;
    NodeStats* stats_;  // link-thread counters; none in some tests
    std::unordered_map<std::string, Room> rooms_;
    std::unordered_map<std::string, Signer> signers_;
    std::unordered_map<std::string, std::unordered_set<std::string>> roomsOf_;  // by session
};

}  // namespace dwrtc
