#include "rooms.h"

#include <jansson.h>

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

bool memberBindingHolds(const RoomMember& m, std::string_view signer, std::string& why) {
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

Rooms::Rooms(RoomLimits limits, std::string self, RoomStore& store, HostQueue& host,
             LinkTransport& links, LogFn log,
             std::function<std::string(const std::string&)> claimOf)
    : limits_(limits),
      self_(std::move(self)),
      store_(store),
      host_(host),
      links_(links),
      log_(std::move(log)),
      claimOf_(std::move(claimOf)) {}

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
    if (room.members.size() >= limits_.membersPerRoom) {
        host_.pushDelivery(id, serializeRoomError("room full", name));
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
    room.members[id] = self_;
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
    if (room.members.erase(id)) {
        tellLocal(room, serializeRoomEvent(name, "leave", id), id);
    }
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
        // Sequence numbers wrap: older is within half the range behind.
        auto [newest, first] = room.newest.try_emplace(m.id + " " + m.node, m.seq);
        if (!first) {
            if (static_cast<std::int16_t>(m.seq - newest->second) < 0) {
                continue;  // an older word of that node on this member
            }
            newest->second = m.seq;
        }
        auto known = room.members.find(m.id);
        if (m.gone || expired) {
            // Only the node the member is on can say it left: an old value
            // of a node the id has moved away from says nothing.
            if (known != room.members.end() && known->second == m.node) {
                room.members.erase(known);
                if (announce) {
                    tellLocal(room, serializeRoomEvent(name, "leave", m.id), {});
                }
            }
            continue;
        }
        if (known != room.members.end()) {
            known->second = m.node;  // the id moved to another node: still in
            continue;
        }
        if (room.members.size() >= limits_.membersPerRoom) {
            log_(DWRTC_LOG_DEBUG, "room \"" + name + "\" is full here; member " + m.id +
                                      " of node " + m.node + " is not followed");
            continue;
        }
        room.members.emplace(m.id, m.node);
        if (announce) {
            tellLocal(room, serializeRoomEvent(name, "join", m.id), {});
        }
    }
}

}  // namespace dwrtc
