#include "rooms.h"

#include <jansson.h>

#include <algorithm>
#include <cstdlib>

#include "dwrtc/dwrtc.h"
#include "dwrtc/owned_id.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "json_text.h"

namespace dwrtc {

namespace {

constexpr int kMemberVersion = 1;
constexpr std::string_view kRoomRecordContext = "dwrtc-room-record-v1";

// A node record found is believed this long: OpenDHT drops a record ten
// minutes after its node stops refreshing it, and a node that stopped
// cleanly withdraws its members itself.
constexpr auto kRecordBelieved = std::chrono::minutes(10);
// A node with no record is refused this long before it is looked for
// again: as long as its member values live in the DHT without a refresh,
// so one lookup covers what it stored.
constexpr auto kRefusalRemembered = std::chrono::seconds(60);
// A member that left is remembered this long (its leave's sequence
// number): longer than its join can still come from the DHT (a minute
// after its node stopped refreshing it), and shorter than its node
// remembers the number (MemberSequence::kForgetAfter), so that the node's
// next join of it is newer to everyone.
constexpr auto kGoneRemembered = std::chrono::minutes(2);

}  // namespace

std::string encodeRoomMember(const RoomMember& m) {
    json_t* obj = json_object();
    json_object_set_new(obj, "v", json_integer(kMemberVersion));
    json_object_set_new(obj, "room", json_stringn(m.room.data(), m.room.size()));
    json_object_set_new(obj, "id", json_string(m.id.c_str()));
    json_object_set_new(obj, "node", json_string(m.node.c_str()));
    json_object_set_new(obj, "gone", json_boolean(m.gone));
    if (!m.claim.empty()) {
        json_object_set_new(obj, "claim", json_stringn(m.claim.data(), m.claim.size()));
    }
    return compactJson(obj);
}

bool decodeRoomMember(std::string_view text, RoomMember& out) {
    JsonObject record = loadRecord(text, kMemberVersion);
    if (!record) {
        return false;
    }
    json_t* obj = record.get();
    json_t* room = json_object_get(obj, "room");
    json_t* id = json_object_get(obj, "id");
    json_t* node = json_object_get(obj, "node");
    json_t* gone = json_object_get(obj, "gone");
    json_t* claim = json_object_get(obj, "claim");
    if (!json_is_string(room) || !json_is_string(id) || !json_is_string(node) ||
        !json_is_boolean(gone) || (claim && !json_is_string(claim))) {
        return false;
    }
    out.room.assign(json_string_value(room), json_string_length(room));
    out.id = json_string_value(id);
    out.node = json_string_value(node);
    out.gone = json_is_true(gone);
    out.claim = claim ? std::string(json_string_value(claim), json_string_length(claim))
                      : std::string();
    bool ok = isValidRoomName(out.room) && isValidSessionId(out.id) &&
              isValidNodePrefix(out.node);
    canonicalizeSessionId(out.id);
    return ok;
}

bool memberBindingHolds(const RoomMember& m, std::string_view signer, const ClaimClock& clock,
                        std::string& why) {
    if (m.node != signer) {
        why = "signed by another node";
        return false;
    }
    if (isNodeSessionId(m.id)) {
        if (nodePrefixOfCanonical(m.id) != m.node) {
            why = "a session of another node";
            return false;
        }
        return true;
    }
    IdClaim claim;
    if (!decodeIdClaim(m.claim, claim) || claim.id != m.id || claim.node != m.node) {
        why = "no claim of the id naming its node";
        return false;
    }
    // Checked before the signature: the date costs nothing to compare.
    if (clock.tooFarAhead(claim.time)) {
        why = clock.whyNot(claim.time);
        return false;
    }
    return verifyClaim(claim, why);
}

bool isValidRoomName(std::string_view name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (char c : name) {
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

std::string roomRecordName(std::string_view networkKey, std::string_view room) {
    return recordName("room", kRoomRecordContext, networkKey, room);
}

Rooms::Rooms(RoomLimits limits, std::string self, RoomStore& store, Directory& records,
             HostQueue& host, LinkTransport& links, LogFn log,
             std::function<std::string(const std::string&)> claimOf, NowFn now,
             NodeStats* stats)
    : limits_(limits),
      self_(std::move(self)),
      store_(store),
      records_(records),
      host_(host),
      links_(links),
      log_(std::move(log)),
      claimOf_(std::move(claimOf)),
      now_(std::move(now)),
      stats_(stats) {}

RoomMember Rooms::memberValue(const std::string& id, const std::string& room, bool gone) {
    RoomMember m;
    m.room = room;
    m.id = id;
    m.node = self_;
    m.gone = gone;
    if (isOwnedId(id)) {
        m.claim = claimOf_(id);
    }
    return m;
}

void Rooms::join(const std::string& id, const std::string& name) {
    auto& mine = roomsOf_[id];
    if (mine.count(name)) {
        auto it = rooms_.find(name);
        if (it != rooms_.end() && it->second.loaded) {
            sendList(name, it->second, id);
        }
        return;
    }
    if (mine.size() >= limits_.roomsPerSession) {
        host_.pushDelivery(id, serializeRoomError("too many rooms", name));
        return;
    }
    auto [it, added] = rooms_.try_emplace(name);
    Room& room = it->second;
    // Only this node's own members count: members of other nodes are
    // followed within bounds of their own, so no one elsewhere, however
    // many values they store, can keep a session here out of a room.
    if (room.local.size() >= limits_.membersPerRoom) {
        host_.pushDelivery(id, serializeRoomError("room full", name));
        countHit(&NodeStats::Links::roomFull);
        if (added) {
            rooms_.erase(it);
        }
        if (mine.empty()) {
            roomsOf_.erase(id);
        }
        return;
    }
    mine.insert(name);
    room.local.insert(id);
    auto known = room.members.find(id);
    if (known != room.members.end()) {
        eraseMember(room, known);  // a key-owned id that moved here
    }
    addMember(room, id, self_);
    store_.putMember(memberValue(id, name, false));
    tellLocal(room, serializeRoomEvent(name, "join", id), id);
    if (room.loaded) {
        sendList(name, room, id);
        return;
    }
    room.waitingForList.push_back(id);
    if (!added) {
        return;  // the first lookup is under way
    }
    LinkTransport* links = &links_;
    room.listenToken = store_.listenRoom(name, [this, links, name](RoomStore::Members m,
                                                                   bool expired) {
        links->post([this, name, m = std::move(m), expired]() mutable {
            onChanged(name, std::move(m), expired);
        });
    });
    store_.getRoom(name, [this, links, name](RoomStore::Members m) {
        links->post([this, name, m = std::move(m)]() mutable { onLoaded(name, std::move(m)); });
    });
}

void Rooms::leave(const std::string& id, const std::string& name) {
    auto mine = roomsOf_.find(id);
    if (mine == roomsOf_.end() || !mine->second.erase(name)) {
        return;
    }
    if (mine->second.empty()) {
        roomsOf_.erase(mine);
    }
    auto it = rooms_.find(name);
    if (it == rooms_.end()) {
        return;
    }
    store_.putMember(memberValue(id, name, true));
    remove(id, name, it->second);
    if (it->second.local.empty()) {
        // No one here is in the room any more: stop following it.
        store_.cancelRoom(name, it->second.listenToken);
        rooms_.erase(it);
    }
}

void Rooms::leaveAll(const std::string& id) {
    auto mine = roomsOf_.find(id);
    if (mine == roomsOf_.end()) {
        return;
    }
    std::vector<std::string> names(mine->second.begin(), mine->second.end());
    for (const std::string& name : names) {
        leave(id, name);
    }
}

void Rooms::leaveEverything() {
    std::vector<std::string> ids;
    for (const auto& [id, names] : roomsOf_) {
        ids.push_back(id);
    }
    for (const std::string& id : ids) {
        leaveAll(id);
    }
}

void Rooms::remove(const std::string& id, const std::string& name, Room& room) {
    room.local.erase(id);
    auto it = room.members.find(id);
    if (it != room.members.end() && it->second == self_) {
        eraseMember(room, it);
        tellLocal(room, serializeRoomEvent(name, "leave", id), id);
    }
}

void Rooms::addMember(Room& room, const std::string& id, const std::string& node) {
    room.members[id] = node;
    if (node != self_) {
        ++room.byNode[node];
        ++room.remote;
    }
}

void Rooms::eraseMember(Room& room, std::map<std::string, std::string>::iterator it) {
    if (it->second != self_) {
        auto count = room.byNode.find(it->second);
        if (count != room.byNode.end() && --count->second == 0) {
            room.byNode.erase(count);
        }
        --room.remote;
    }
    room.members.erase(it);
}

void Rooms::rememberGone(Room& room, const std::string& key) {
    auto now = now_();
    room.goneOrder.emplace_back(key, now);
    forgetGone(room, now);
}

void Rooms::forgetGone(Room& room, RouterClock::time_point now) {
    while (!room.goneOrder.empty() &&
           (room.goneOrder.size() > limits_.remoteMembers ||
            now - room.goneOrder.front().second >= kGoneRemembered)) {
        const std::string& old = room.goneOrder.front().first;
        // Still needed while that member is followed again.
        auto space = old.find(' ');
        auto known = room.members.find(old.substr(0, space));
        if (known == room.members.end() || known->second != old.substr(space + 1)) {
            room.newest.erase(old);
        }
        room.goneOrder.pop_front();
    }
}

void Rooms::countHit(NodeStats::Counter NodeStats::Links::*counter) {
    if (stats_) {
        NodeStats::add(stats_->links.*counter);
    }
}

std::size_t Rooms::remoteMembers(const std::string& name) const {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? 0 : it->second.remote;
}

std::size_t Rooms::heldMembers(const std::string& name) const {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? 0 : it->second.held;
}

void Rooms::sendList(const std::string& name, Room& room, const std::string& to) {
    std::vector<std::string> ids;
    ids.reserve(room.members.size());
    for (const auto& [id, node] : room.members) {
        ids.push_back(id);
    }
    host_.pushDelivery(to, serializeRoomMembers(name, ids));
}

void Rooms::tellLocal(const Room& room, const std::string& json, const std::string& except) {
    for (const std::string& id : room.local) {
        if (id != except) {
            host_.pushDelivery(id, json);
        }
    }
}

void Rooms::onLoaded(const std::string& name, RoomStore::Members members) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) {
        return;
    }
    Room& room = it->second;
    // Those who were in the room before anyone here joined are no news to
    // the local members: they get them in their list.
    merge(room, members, false, false, name);
    // A member whose node is being checked for the first time belongs in
    // the list if its node holds: the list waits for that first answer (one
    // lookup; a node that has no record yet is told of later by a join).
    for (const auto& [node, signer] : signers_) {
        if (!signer.answered && signer.waiting.count(name)) {
            room.listWaitsFor.insert(node);
        }
    }
    if (room.listWaitsFor.empty()) {
        finishLoading(name, room);
    }
}

void Rooms::finishLoading(const std::string& name, Room& room) {
    room.loaded = true;
    std::vector<std::string> waiting = std::move(room.waitingForList);
    room.waitingForList.clear();
    for (const std::string& id : waiting) {
        if (room.local.count(id)) {
            sendList(name, room, id);
        }
    }
}

void Rooms::onChanged(const std::string& name, RoomStore::Members members, bool expired) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) {
        return;
    }
    merge(it->second, members, expired, it->second.loaded, name);
}

void Rooms::merge(Room& room, const RoomStore::Members& members, bool expired, bool announce,
                  const std::string& name) {
    for (const RoomMember& m : members) {
        if (m.node == self_) {
            continue;  // this node's own members are known first-hand
        }
        if (m.gone || expired) {
            // A leave can only take away a member its own node added, so it
            // needs no record check, and is never held back behind one.
            apply(room, m, true, announce, name);
            continue;
        }
        Signer* signer = signerOf(m.node);
        if (!signer) {
            log_(DWRTC_LOG_DEBUG, "room \"" + name + "\": member " + m.id + " of node " + m.node +
                                      " not followed: too many nodes to check at once");
            countHit(&NodeStats::Links::roomMembersNotFollowed);
            continue;
        }
        switch (signer->state) {
            case Signer::State::Valid:
                apply(room, m, false, announce, name);
                break;
            case Signer::State::Checking:
                hold(*signer, room, name, m);
                break;
            case Signer::State::Refused:
                log_(DWRTC_LOG_DEBUG, "room \"" + name + "\": member " + m.id +
                                          " not followed: node " + m.node +
                                          " has no record in the DHT");
                break;
        }
    }
}

void Rooms::apply(Room& room, const RoomMember& m, bool gone, bool announce,
                  const std::string& name) {
    std::string key = m.id + " " + m.node;
    auto newest = room.newest.find(key);
    // Sequence numbers wrap: older is within half the range behind.
    if (newest != room.newest.end() &&
        static_cast<std::int16_t>(m.seq - newest->second) < 0) {
        return;  // an older word of that node on this member
    }
    auto known = room.members.find(m.id);
    if (gone) {
        // Only the node the member is on can say it left: an old value
        // of a node the id has moved away from says nothing.
        if (known != room.members.end() && known->second == m.node) {
            eraseMember(room, known);
            if (announce) {
                tellLocal(room, serializeRoomEvent(name, "leave", m.id), {});
            }
        }
        if (newest != room.newest.end()) {
            newest->second = m.seq;
        } else {
            room.newest.emplace(key, m.seq);
        }
        rememberGone(room, key);
        return;
    }
    if (known != room.members.end()) {
        if (known->second != m.node && known->second != self_) {
            // The id moved to another node (its claim names that one): still
            // in. A local member stays local: this node knows it first-hand.
            std::string id = m.id;
            eraseMember(room, known);
            addMember(room, id, m.node);
        }
        room.newest[key] = m.seq;
        return;
    }
    if (room.remote >= limits_.remoteMembers) {
        log_(DWRTC_LOG_DEBUG, "room \"" + name + "\": " + std::to_string(room.remote) +
                                  " members of other nodes followed already; member " + m.id +
                                  " of node " + m.node + " is not");
        countHit(&NodeStats::Links::roomMembersNotFollowed);
        return;
    }
    auto count = room.byNode.find(m.node);
    if (count != room.byNode.end() && count->second >= limits_.membersPerNode) {
        log_(DWRTC_LOG_DEBUG, "room \"" + name + "\": node " + m.node + " has " +
                                  std::to_string(count->second) + " members followed already; " +
                                  m.id + " is not");
        countHit(&NodeStats::Links::roomMembersNotFollowed);
        return;
    }
    room.newest[key] = m.seq;
    addMember(room, m.id, m.node);
    if (announce) {
        tellLocal(room, serializeRoomEvent(name, "join", m.id), {});
    }
}

Rooms::Signer* Rooms::signerOf(const std::string& node) {
    auto it = signers_.find(node);
    if (it != signers_.end()) {
        return &it->second;
    }
    if (signers_.size() >= limits_.nodeChecks) {
        // Make room: checks whose time is up go first, then nodes found
        // without a record (checked again if their values come again, which
        // takes a new value signed by them). Nodes being checked stay.
        auto now = now_();
        for (int pass = 0; pass < 2 && signers_.size() >= limits_.nodeChecks; ++pass) {
            for (auto s = signers_.begin(); s != signers_.end();) {
                const Signer& old = s->second;
                bool expired = old.state != Signer::State::Checking && now >= old.until;
                bool refused = old.state == Signer::State::Refused;
                if (!old.lookingUp && (pass == 0 ? expired : refused)) {
                    s = signers_.erase(s);
                } else {
                    ++s;
                }
            }
        }
        if (signers_.size() >= limits_.nodeChecks) {
            return nullptr;
        }
    }
    Signer& signer = signers_[node];
    signer.since = now_();
    lookUp(node, signer);
    return &signer;
}

void Rooms::lookUp(const std::string& node, Signer& signer) {
    signer.lookingUp = true;
    LinkTransport* links = &links_;
    // Only a record signed by the key this node id names is found
    // (NodeDirectory::lookup): the same key as the member values', short of
    // a second key whose hash starts with the same 128 bits.
    records_.lookup(node, [this, links, node](std::optional<NodeRecord> record) {
        bool live = record && !record->gone;
        links->post([this, node, live] { onRecord(node, live); });
    });
}

void Rooms::onRecord(const std::string& node, bool live) {
    auto it = signers_.find(node);
    if (it == signers_.end()) {
        return;
    }
    judge(node, it->second, live);
    it->second.answered = true;
    // Lists that waited for this node's first answer go out now, with its
    // members if it holds.
    for (auto& [name, room] : rooms_) {
        if (room.listWaitsFor.erase(node) && room.listWaitsFor.empty() && !room.loaded) {
            finishLoading(name, room);
        }
    }
}

void Rooms::judge(const std::string& node, Signer& signer, bool live) {
    signer.lookingUp = false;
    auto now = now_();
    if (!live) {
        if (signer.state == Signer::State::Valid) {
            // A record not found again: look for it a while before refusing
            // the node's new members (its members followed stay until their
            // values say they left or expire, as for any node that stops).
            signer.state = Signer::State::Checking;
            signer.since = now;
            return;
        }
        if (signer.state == Signer::State::Checking && now - signer.since < limits_.recordWait) {
            return;  // a node that just started may not have stored it yet: onTick()
        }
        if (signer.state != Signer::State::Refused) {
            log_(DWRTC_LOG_INFO, "rooms: node " + node +
                                     " has no record in the DHT; its members are not followed");
        }
        signer.state = Signer::State::Refused;
        signer.until = now + kRefusalRemembered;
        release(signer);
        return;
    }
    signer.state = Signer::State::Valid;
    signer.until = now + kRecordBelieved;
    auto waiting = release(signer);
    for (auto& [name, values] : waiting) {
        auto room = rooms_.find(name);
        if (room == rooms_.end()) {
            continue;  // no one here is in it any more
        }
        for (auto& [id, m] : values) {
            apply(room->second, m, false, room->second.loaded, name);
        }
    }
}

void Rooms::hold(Signer& signer, Room& room, const std::string& name, const RoomMember& m) {
    auto& values = signer.waiting[name];
    auto held = values.find(m.id);
    if (held == values.end()) {
        // No more would be followed of this node anyway; and all the nodes
        // being checked together hold no more than the room would follow.
        if (values.size() >= limits_.membersPerNode || room.held >= limits_.remoteMembers) {
            if (values.empty()) {
                signer.waiting.erase(name);
            }
            countHit(&NodeStats::Links::roomMembersNotFollowed);
            return;
        }
        held = values.emplace(m.id, m).first;
        ++room.held;
    } else if (static_cast<std::int16_t>(m.seq - held->second.seq) < 0) {
        return;
    } else {
        held->second = m;
    }
}

std::map<std::string, std::map<std::string, RoomMember>> Rooms::release(Signer& signer) {
    auto waiting = std::move(signer.waiting);
    signer.waiting.clear();
    for (const auto& [name, values] : waiting) {
        auto room = rooms_.find(name);
        if (room != rooms_.end()) {
            // A room left and joined again meanwhile counts from zero.
            room->second.held -= std::min(room->second.held, values.size());
        }
    }
    return waiting;
}

void Rooms::onTick() {
    auto now = now_();
    for (auto& [name, room] : rooms_) {
        forgetGone(room, now);
    }
    for (auto it = signers_.begin(); it != signers_.end();) {
        Signer& signer = it->second;
        if (signer.lookingUp) {
            ++it;
            continue;
        }
        if (signer.state == Signer::State::Checking) {
            lookUp(it->first, signer);  // the last lookup found no record yet
            ++it;
        } else if (now >= signer.until) {
            if (signer.state == Signer::State::Valid) {
                lookUp(it->first, signer);  // still believed while it runs
                signer.until = now + kRecordBelieved;
                ++it;
            } else {
                it = signers_.erase(it);
            }
        } else {
            ++it;
        }
    }
}

}  // namespace dwrtc
