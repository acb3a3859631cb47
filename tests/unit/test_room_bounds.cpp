// Rooms' counting rules against a fake DHT (RoomStore, Directory), fake
// links and a clock the test turns: a local join is never refused because
// of members of other nodes, one node counts for at most a few members of
// a room, members of other nodes are bounded apart, and a member value is
// believed only from a node whose record is in the DHT, looked up once per
// node however many values it signs.
#include <gtest/gtest.h>
#include <jansson.h>

#include <deque>
#include <map>
#include <set>

#include "host_queue.h"
#include "rooms.h"

using namespace std::chrono_literals;
using namespace dwrtc;

namespace {

class FakeStore : public RoomStore {
public:
    void putMember(const RoomMember& m) override { puts.push_back(m); }
    void getRoom(const std::string& room, std::function<void(Members)> done) override {
        gets[room] = std::move(done);
    }
    std::uint64_t listenRoom(const std::string& room,
                             std::function<void(Members, bool)> changed) override {
        listens[room] = std::move(changed);
        return ++tokens;
    }
    void cancelRoom(const std::string& room, std::uint64_t) override { listens.erase(room); }

    std::vector<RoomMember> puts;
    std::map<std::string, std::function<void(Members)>> gets;
    std::map<std::string, std::function<void(Members, bool)>> listens;
    std::uint64_t tokens = 0;
};

// Node records: which nodes have a live one; every lookup is counted and
// answered at once, or when answer() is called if `deferred`.
class FakeRecords : public Directory {
public:
    void lookup(const std::string& prefix, LookupDone done) override {
        ++lookups[prefix];
        if (deferred) {
            pending.emplace_back(prefix, std::move(done));
            return;
        }
        reply(prefix, done);
    }
    void answer() {
        auto all = std::move(pending);
        pending.clear();
        for (auto& [prefix, done] : all) reply(prefix, done);
    }
    void reply(const std::string& prefix, const LookupDone& done) {
        if (live.count(prefix)) {
            done(NodeRecord{prefix, {"wss://127.0.0.1:1"}, false});
        } else {
            done(std::nullopt);
        }
    }
    void ensurePublished() override {}
    void lookupId(const std::string&, IdLookupDone done, const std::string&) override {
        done(std::nullopt);
    }
    void publishId(const IdClaim&) override {}
    void withdrawId(const std::string&) override {}

    std::set<std::string> live;
    std::map<std::string, int> lookups;
    bool deferred = false;
    std::vector<std::pair<std::string, LookupDone>> pending;
};

class FakeLinks : public LinkTransport {
public:
    LinkId connect(const std::string&, unsigned) override { return 0; }
    void send(LinkId, std::string) override {}
    void close(LinkId) override {}
    void abort(LinkId) override {}
    void setProven(LinkId) override {}
    std::string peerAddress(LinkId) const override { return {}; }
    void post(std::function<void()> task) override { posted.push_back(std::move(task)); }
    void callSoon(std::chrono::milliseconds) override {}
    void run() {
        while (!posted.empty()) {
            auto task = std::move(posted.front());
            posted.pop_front();
            task();
        }
    }
    std::deque<std::function<void()>> posted;
};

std::string nodeId(int n) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032x", n);
    return buf;
}

std::string sessionOf(int node, int n) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016x", n);
    return nodeId(node) + "-" + buf;
}

RoomMember member(const std::string& room, int node, int n, bool gone = false,
                  std::uint16_t seq = 1) {
    RoomMember m;
    m.room = room;
    m.id = sessionOf(node, n);
    m.node = nodeId(node);
    m.gone = gone;
    m.seq = seq;
    return m;
}

class RoomsTest : public ::testing::Test {
protected:
    static constexpr int kSelf = 1;

    RoomsTest() { make(); }

    void make() {
        rooms = std::make_unique<Rooms>(
            limits, nodeId(kSelf), store, records, host, links,
            [](int, std::string) {}, [](const std::string&) { return std::string(); },
            [this] { return now; }, &stats);
    }

    // A session of this node joins; the first join of a room is answered
    // with what the DHT holds (loaded).
    void join(const std::string& id, const std::string& room,
              RoomStore::Members loaded = {}) {
        rooms->join(id, room);
        links.run();
        auto get = store.gets.find(room);
        if (get != store.gets.end()) {
            auto done = std::move(get->second);
            store.gets.erase(get);
            done(std::move(loaded));
            links.run();
        }
    }

    void heard(const std::string& room, RoomStore::Members members, bool expired = false) {
        store.listens.at(room)(std::move(members), expired);
        links.run();
    }

    void tick(std::chrono::milliseconds later) {
        now += later;
        rooms->onTick();
        links.run();
    }

    // What a session knows of the room: its list, then joins and leaves.
    std::set<std::string> view(const std::string& session, const std::string& room) {
        host.drain(0, [&](const HostRecord& r) {
            if (r.kind == HostRecord::Kind::Delivery) inbox[r.sessionId].push_back(r.data);
        });
        std::set<std::string> out;
        for (const std::string& text : inbox[session]) {
            json_t* o = json_loads(text.c_str(), 0, nullptr);
            auto str = [&](const char* k) {
                json_t* v = json_object_get(o, k);
                return std::string(json_is_string(v) ? json_string_value(v) : "");
            };
            if (str("room") == room && str("type") == "WebSocketRoomMessage") {
                if (str("event") == "members") {
                    out.clear();
                    std::size_t i;
                    json_t* id;
                    json_array_foreach(json_object_get(o, "members"), i, id) {
                        out.insert(json_string_value(id));
                    }
                } else if (str("event") == "join") {
                    out.insert(str("id"));
                } else if (str("event") == "leave") {
                    out.erase(str("id"));
                }
            }
            json_decref(o);
        }
        return out;
    }

    bool refused(const std::string& session, const std::string& error) {
        view(session, "");
        for (const std::string& text : inbox[session]) {
            if (text.find("\"error\":\"" + error + "\"") != std::string::npos) return true;
        }
        return false;
    }

    // Members of node `node` in `members`.
    static std::size_t ofNode(const std::set<std::string>& members, int node) {
        std::size_t n = 0;
        for (const auto& id : members) n += id.rfind(nodeId(node), 0) == 0;
        return n;
    }

    RoomLimits limits{2, 8, 6, 4, 16, 5000ms};
    FakeStore store;
    FakeRecords records;
    HostQueue host;
    FakeLinks links;
    RouterClock::time_point now{};
    NodeStats stats;
    std::unique_ptr<Rooms> rooms;
    std::map<std::string, std::vector<std::string>> inbox;
};

}  // namespace

TEST_F(RoomsTest, ALocalJoinIsNeverRefusedBecauseOfMembersOfOtherNodes) {
    for (int n : {2, 3}) records.live.insert(nodeId(n));
    RoomStore::Members crowd;
    for (int n : {2, 3}) {
        for (int i = 0; i < 4; ++i) crowd.push_back(member("r", n, i));
    }
    std::string a = sessionOf(kSelf, 1), b = sessionOf(kSelf, 2), c = sessionOf(kSelf, 3);
    join(a, "r", crowd);
    join(b, "r");
    EXPECT_FALSE(refused(b, "room full")) << "two local members of two allowed";
    std::set<std::string> list = view(b, "r");
    EXPECT_TRUE(list.count(a) && list.count(b));
    EXPECT_EQ(list.size(), 2u + limits.remoteMembers) << "6 of the 8 remote members followed";
    join(c, "r");
    EXPECT_TRUE(refused(c, "room full")) << "the third local member is beyond the limit";
    // The status page counts both bounds.
    EXPECT_EQ(NodeStats::get(stats.links.roomFull), 1u);
    EXPECT_EQ(NodeStats::get(stats.links.roomMembersNotFollowed), 8u - limits.remoteMembers);
}

TEST_F(RoomsTest, ANodeCountsForAtMostMembersPerNode) {
    records.live.insert(nodeId(2));
    records.live.insert(nodeId(3));
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    RoomStore::Members flood;
    for (int i = 0; i < 50; ++i) flood.push_back(member("r", 2, i));
    heard("r", flood);  // while its record is looked up
    std::set<std::string> seen = view(a, "r");
    EXPECT_EQ(ofNode(seen, 2), limits.membersPerNode);
    flood.clear();
    for (int i = 50; i < 100; ++i) flood.push_back(member("r", 2, i));
    heard("r", flood);  // once it is known
    seen = view(a, "r");
    EXPECT_EQ(ofNode(seen, 2), limits.membersPerNode);
    EXPECT_EQ(rooms->remoteMembers("r"), limits.membersPerNode);

    // Another node's member still gets in: the remote bound is not reached.
    heard("r", {member("r", 3, 1)});
    EXPECT_TRUE(view(a, "r").count(sessionOf(3, 1)));

    // A leave frees the place: the node's next member is followed.
    heard("r", {member("r", 2, 0, true, 2)});
    heard("r", {member("r", 2, 99)});
    seen = view(a, "r");
    EXPECT_FALSE(seen.count(sessionOf(2, 0)));
    EXPECT_TRUE(seen.count(sessionOf(2, 99)));
    EXPECT_EQ(ofNode(seen, 2), limits.membersPerNode);
}

TEST_F(RoomsTest, MembersOfOtherNodesAreBoundedApartFromLocalOnes) {
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    RoomStore::Members many;
    for (int n = 2; n < 10; ++n) {
        records.live.insert(nodeId(n));
        many.push_back(member("r", n, 1));
    }
    heard("r", many);
    EXPECT_EQ(rooms->remoteMembers("r"), limits.remoteMembers);
    EXPECT_EQ(view(a, "r").size(), 1u + limits.remoteMembers);
}

TEST_F(RoomsTest, AMemberOfANodeWithNoRecordIsNeverShown) {
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    heard("r", {member("r", 7, 1), member("r", 7, 2)});
    EXPECT_EQ(view(a, "r"), std::set<std::string>{a}) << "not shown while it is looked for";
    EXPECT_EQ(records.lookups[nodeId(7)], 1) << "one lookup for both values";
    // Looked for once a second while a node that just started could still
    // be storing its record, then refused.
    for (int i = 0; i < 6; ++i) tick(1000ms);
    int looked = records.lookups[nodeId(7)];
    EXPECT_GE(looked, 5);
    EXPECT_LE(looked, 7);
    heard("r", {member("r", 7, 3)});
    tick(1000ms);
    EXPECT_EQ(records.lookups[nodeId(7)], looked) << "the refusal is remembered";
    EXPECT_EQ(view(a, "r"), std::set<std::string>{a});
    EXPECT_EQ(rooms->remoteMembers("r"), 0u);
}

TEST_F(RoomsTest, ANodeWhoseRecordIsStoredLateIsShownOnceItIs) {
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    heard("r", {member("r", 4, 1)});
    tick(1000ms);
    EXPECT_EQ(view(a, "r"), std::set<std::string>{a});
    records.live.insert(nodeId(4));
    tick(1000ms);
    EXPECT_EQ(view(a, "r"), (std::set<std::string>{a, sessionOf(4, 1)}));
}

TEST_F(RoomsTest, ANodeIsLookedUpOncePerNodeNotPerValue) {
    records.live.insert(nodeId(5));
    std::string a = sessionOf(kSelf, 1), b = sessionOf(kSelf, 2);
    join(a, "one");
    join(b, "two");
    for (int i = 0; i < 30; ++i) {
        heard(i % 2 ? "one" : "two", {member(i % 2 ? "one" : "two", 5, i)});
    }
    EXPECT_EQ(records.lookups[nodeId(5)], 1);
    EXPECT_EQ(ofNode(view(a, "one"), 5), limits.membersPerNode);
    EXPECT_EQ(ofNode(view(b, "two"), 5), limits.membersPerNode);
    // Believed for minutes, then checked again.
    tick(60000ms);
    EXPECT_EQ(records.lookups[nodeId(5)], 1);
    tick(600000ms);
    EXPECT_EQ(records.lookups[nodeId(5)], 2);
}

TEST_F(RoomsTest, TheNodesCheckedAreBounded) {
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    RoomStore::Members strangers;
    for (int n = 100; n < 200; ++n) strangers.push_back(member("r", n, 1));
    heard("r", strangers);
    EXPECT_EQ(rooms->nodesChecked(), limits.nodeChecks);
    int lookups = 0;
    for (const auto& [node, n] : records.lookups) lookups += n;
    EXPECT_EQ(lookups, static_cast<int>(limits.nodeChecks));
    // Counted: all but the few held while their nodes are checked.
    EXPECT_EQ(NodeStats::get(stats.links.roomMembersNotFollowed), 100u - limits.remoteMembers);
    // Once refused, strangers make way for a real node.
    for (int i = 0; i < 6; ++i) tick(1000ms);
    records.live.insert(nodeId(2));
    heard("r", {member("r", 2, 1)});
    EXPECT_TRUE(view(a, "r").count(sessionOf(2, 1)));
    EXPECT_LE(rooms->nodesChecked(), limits.nodeChecks);
}

TEST_F(RoomsTest, AnOlderJoinAfterALeaveSaysNothing) {
    records.live.insert(nodeId(2));
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    heard("r", {member("r", 2, 1, false, 1)});
    heard("r", {member("r", 2, 1, true, 2)});
    heard("r", {member("r", 2, 1, false, 1)});
    EXPECT_EQ(view(a, "r"), std::set<std::string>{a});
}

// A leave is remembered for two minutes: after that its member's node
// numbers the member's values from its clock again (MemberSequence), and a
// join with any number is news.
TEST_F(RoomsTest, ALeaveIsRememberedForTwoMinutes) {
    records.live.insert(nodeId(2));
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    heard("r", {member("r", 2, 1, false, 5)});
    heard("r", {member("r", 2, 1, true, 6)});
    tick(119s);
    heard("r", {member("r", 2, 1, false, 1)});
    EXPECT_EQ(view(a, "r"), std::set<std::string>{a}) << "older than the leave";
    tick(2s);
    heard("r", {member("r", 2, 1, false, 1)});
    EXPECT_EQ(view(a, "r"), (std::set<std::string>{a, sessionOf(2, 1)}));
}

TEST_F(RoomsTest, ALeaveWhileTheRecordIsLookedForWins) {
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    heard("r", {member("r", 6, 1, false, 1)});
    heard("r", {member("r", 6, 1, true, 2)});
    records.live.insert(nodeId(6));
    tick(1000ms);
    EXPECT_EQ(view(a, "r"), std::set<std::string>{a});
}

TEST_F(RoomsTest, TheListWaitsForTheFirstCheckOfTheNodesInIt) {
    records.live.insert(nodeId(2));
    records.deferred = true;
    std::string a = sessionOf(kSelf, 1);
    join(a, "r", {member("r", 2, 1), member("r", 9, 1)});
    EXPECT_TRUE(view(a, "r").empty()) << "no list before the nodes' records are looked up";
    records.answer();
    links.run();
    // Node 2 holds and is in the list; node 9 has no record (yet): the list
    // does not wait for its retries.
    EXPECT_EQ(view(a, "r"), (std::set<std::string>{a, sessionOf(2, 1)}));
}

TEST_F(RoomsTest, MembersWaitingForTheirNodesCheckAreBounded) {
    records.deferred = true;
    std::string a = sessionOf(kSelf, 1);
    join(a, "r");
    RoomStore::Members strangers;
    for (int n = 100; n < 110; ++n) {
        for (int i = 0; i < 8; ++i) strangers.push_back(member("r", n, i));
    }
    heard("r", strangers);
    // Ten nodes, eight values each, all being checked: the room holds
    // remoteMembers (6) of them, not 80 (nor the 40 of four per node);
    // once the nodes are all found live, no more than that is followed.
    EXPECT_EQ(rooms->heldMembers("r"), limits.remoteMembers);
    for (int n = 100; n < 110; ++n) records.live.insert(nodeId(n));
    records.answer();
    links.run();
    EXPECT_EQ(rooms->heldMembers("r"), 0u);
    EXPECT_EQ(rooms->remoteMembers("r"), limits.remoteMembers);
    EXPECT_EQ(view(a, "r").size(), 1u + limits.remoteMembers);
}
