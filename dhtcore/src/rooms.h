// Rooms: named groups of sessions that see who else is in them, on any
// node. A session joins a room by name; its node stores a member value
// under the room's key in the DHT, signed by the node, and listens to the
// key while it has members there: every member hears when another joins
// or leaves, also on other nodes, and gets the member list when it joins.
// Lives on the link service thread, beside the Router: no locks here.
#pragma once

#include <cstddef>
#include <cstdint>
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
// claim names it).
bool memberBindingHolds(const RoomMember& m, std::string_view signer, std::string& why);

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
    std::size_t membersPerRoom = 0;
    std::size_t roomsPerSession = 0;
};

class Rooms {
public:
    // claimOf: the id record of a key-owned session of this node.
    Rooms(RoomLimits limits, std::string self, RoomStore& store, HostQueue& host,
          LinkTransport& links, LogFn log, std::function<std::string(const std::string&)> claimOf);

    void join(const std::string& id, const std::string& room);
    void leave(const std::string& id, const std::string& room);
    // The session closed: it leaves every room.
    void leaveAll(const std::string& id);
    // The node stops: every member here leaves, so that the others hear it
    // now rather than when the values expire.
    void leaveEverything();

private:
    struct Room {
        std::set<std::string> local;                    // members on this node
        std::map<std::string, std::string> members;     // id -> node, all known
        // The newest sequence number seen per member and node ("id node"):
        // the DHT may hand an older value (a join) after a newer one (the
        // leave that replaced it); the older one says nothing new.
        std::map<std::string, std::uint16_t> newest;
        bool loaded = false;        // the first get is done
        std::vector<std::string> waitingForList;        // joined before it was
        std::uint64_t listenToken = 0;
    };

    void onLoaded(const std::string& room, RoomStore::Members members);
    void onChanged(const std::string& room, RoomStore::Members members, bool expired);
    void merge(Room& room, const RoomStore::Members& members, bool expired, bool announce,
               const std::string& name);
    void sendList(const std::string& room, Room& r, const std::string& to);
    void tellLocal(const Room& r, const std::string& json, const std::string& except);
    void remove(const std::string& id, const std::string& name, Room& r);
    RoomMember memberValue(const std::string& id, const std::string& room, bool gone);

    RoomLimits limits_;
    std::string self_;
    RoomStore& store_;
    HostQueue& host_;
    LinkTransport& links_;
    LogFn log_;
    std::function<std::string(const std::string&)> claimOf_;
    std::unordered_map<std::string, Room> rooms_;
    std::unordered_map<std::string, std::unordered_set<std::string>> roomsOf_;  // by session
};

}  // namespace dwrtc
