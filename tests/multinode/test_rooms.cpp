// Rooms between real nodes (OpenDHT + libwebsockets) on loopback: members
// on any node get the member list when they join, and join and leave
// events for the others, also when a member's session closes or its node
// stops; limits answer with an error. A stranger on the DHT that stores
// member values for made-up sessions fills no room: with no node record it
// is not believed at all, and with one it shows at most its few members.
#include <gtest/gtest.h>
#include <jansson.h>
#include <opendht.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <set>

#include "dwrtc/owned_id.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "network.h"
#include "node_record.h"
#include "owner_keys.h"
#include "rooms.h"

using namespace std::chrono_literals;
using dwrtc::Node;
using dwrtc::test::Network;
using dwrtc::test::OwnerKey;

namespace {

json_t* parse(const std::string& text) {
    json_error_t err;
    return json_loads(text.c_str(), 0, &err);
}

std::string str(json_t* obj, const char* name) {
    json_t* v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : "";
}

std::string join(const std::string& room) {
    return "{\"type\":\"WebSocketJoinMessage\",\"room\":\"" + room + "\"}";
}
std::string leave(const std::string& room) {
    return "{\"type\":\"WebSocketLeaveMessage\",\"room\":\"" + room + "\"}";
}

// The member list a session got for a room, if it got one.
bool memberList(const std::vector<std::string>& inbox, const std::string& room,
                std::set<std::string>& out) {
    for (const auto& m : inbox) {
        json_t* o = parse(m);
        if (o && str(o, "type") == "WebSocketRoomMessage" && str(o, "room") == room &&
            str(o, "event") == "members") {
            out.clear();
            std::size_t i;
            json_t* id;
            json_array_foreach(json_object_get(o, "members"), i, id) {
                out.insert(json_string_value(id));
            }
            json_decref(o);
            return true;
        }
        json_decref(o);
    }
    return false;
}

// Who a session knows to be in the room: its member list, then the joins
// and leaves after it, in order. A member that joined on another node a
// moment before may be missing from the list (its value was not stored
// yet): it comes as a join soon after.
std::set<std::string> view(const std::vector<std::string>& inbox, const std::string& room) {
    std::set<std::string> members;
    for (const auto& m : inbox) {
        json_t* o = parse(m);
        if (o && str(o, "type") == "WebSocketRoomMessage" && str(o, "room") == room) {
            std::string event = str(o, "event");
            if (event == "members") {
                members.clear();
                std::size_t i;
                json_t* id;
                json_array_foreach(json_object_get(o, "members"), i, id) {
                    members.insert(json_string_value(id));
                }
            } else if (event == "join") {
                members.insert(str(o, "id"));
            } else if (event == "leave") {
                members.erase(str(o, "id"));
            }
        }
        json_decref(o);
    }
    return members;
}

int events(const std::vector<std::string>& inbox, const std::string& room,
           const std::string& event, const std::string& id) {
    int n = 0;
    for (const auto& m : inbox) {
        json_t* o = parse(m);
        if (o && str(o, "type") == "WebSocketRoomMessage" && str(o, "room") == room &&
            str(o, "event") == event && str(o, "id") == id) {
            ++n;
        }
        json_decref(o);
    }
    return n;
}

bool hasError(const std::vector<std::string>& inbox, const std::string& error) {
    for (const auto& m : inbox) {
        json_t* o = parse(m);
        bool match = o && str(o, "type") == "WebSocketErrorMessage" &&
                     str(o, "error").rfind(error, 0) == 0;
        json_decref(o);
        if (match) return true;
    }
    return false;
}

// Someone on the DHT with a key of its own and no nginx: it stores what it
// likes under a room's key, signed by its key, as a node would.
class Stranger {
public:
    explicit Stranger(unsigned bootstrapPort) {
        auto identity = dht::crypto::generateIdentity("stranger", {}, 2048);
        key_ = identity.first;
        dht::Blob spki;
        identity.first->getPublicKey().pack(spki);
        id_ = dwrtc::nodeIdOfPublicKey(
            std::string_view(reinterpret_cast<const char*>(spki.data()), spki.size()));
        dht::DhtRunner::Config config;
        config.threaded = true;
        config.dht_config.id = identity;
        config.dht_config.node_config.network = dwrtc::kOpenNetworkId;
        config.dht_config.node_config.max_peer_req_per_sec = -1;
        config.dht_config.node_config.max_req_per_sec = -1;
        runner_.run(0, config);
        runner_.registerType(dht::ValueType(dwrtc::kRoomMemberValueType, "dwrtc-room-member",
                                            std::chrono::seconds(60)));
        runner_.bootstrap("127.0.0.1", std::to_string(bootstrapPort));
    }
    ~Stranger() { runner_.join(); }

    const std::string& id() const { return id_; }

    // A node record like a real node's, for a node that is not there.
    bool putRecord() {
        return put(dwrtc::nodeRecordName({}, id_), dht::ValueType::USER_DATA.id,
                   dwrtc::encodeNodeRecord(id_, {"wss://127.0.0.1:9"}, false), 1);
    }

    // Member values for n made-up sessions of its own node id (the form a
    // node's binding check takes); returns their ids.
    std::vector<std::string> fill(const std::string& room, int n) {
        std::vector<std::string> ids;
        for (int i = 0; i < n; ++i) {
            dwrtc::RoomMember m;
            m.room = room;
            m.id = dwrtc::makeSessionId(id_);
            m.node = id_;
            if (!put(dwrtc::roomRecordName({}, room), dwrtc::kRoomMemberValueType,
                     dwrtc::encodeRoomMember(m), next_++)) {
                ADD_FAILURE() << "a member value was not stored";
            }
            ids.push_back(m.id);
        }
        return ids;
    }

private:
    bool put(const std::string& name, dht::ValueType::Id type, const std::string& text,
             std::uint64_t valueId) {
        auto value = std::make_shared<dht::Value>(
            type, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), valueId);
        value->seq = 1;
        value->sign(*key_);
        auto stored = std::make_shared<std::promise<bool>>();
        auto once = std::make_shared<std::once_flag>();
        runner_.put(dht::InfoHash::get(name), value, [stored, once](bool ok) {
            std::call_once(*once, [&] { stored->set_value(ok); });
        }, dht::time_point::max(), true);
        return stored->get_future().get();
    }

    dht::DhtRunner runner_;
    std::shared_ptr<dht::crypto::PrivateKey> key_;
    std::string id_;
    std::uint64_t next_ = 100;
};

std::size_t countOf(const std::set<std::string>& members, const std::vector<std::string>& ids) {
    std::size_t n = 0;
    for (const auto& id : ids) n += members.count(id);
    return n;
}

class Rooms : public ::testing::Test {
protected:
    void SetUp() override {
        dwrtc::NodeConfig c = Network::loopbackConfig();
        c.roomMembers = 4;
        c.roomsPerSession = 2;
        c.roomMembersPerNode = 4;
        for (int i = 0; i < 3; ++i) net.addNode(c);
        ASSERT_TRUE(net.waitPublished()) << "not every node stored its DHT record";
    }

    // Opens a session on node i, joins room, waits for its list.
    std::string member(std::size_t i, const std::string& room) {
        std::string s = net.node(i).openSession();
        net.node(i).submit(s, join(room));
        std::set<std::string> list;
        EXPECT_TRUE(net.waitFor([&] { return memberList(net.inbox(s), room, list); }))
            << net.log();
        return s;
    }

    Network net;
};

}  // namespace

TEST_F(Rooms, MembersOnThreeNodesSeeEachOtherJoinAndLeave) {
    std::string a = member(0, "lobby");
    std::set<std::string> list;
    ASSERT_TRUE(memberList(net.inbox(a), "lobby", list));
    EXPECT_EQ(list, std::set<std::string>{a});

    std::string b = member(1, "lobby");
    ASSERT_TRUE(memberList(net.inbox(b), "lobby", list));
    EXPECT_TRUE(list.count(b));
    ASSERT_TRUE(net.waitFor([&] {
        return events(net.inbox(a), "lobby", "join", b) == 1 &&
               view(net.inbox(b), "lobby") == std::set<std::string>{a, b};
    })) << net.log();

    std::string c = member(2, "lobby");
    ASSERT_TRUE(net.waitFor([&] {
        return events(net.inbox(a), "lobby", "join", c) == 1 &&
               events(net.inbox(b), "lobby", "join", c) == 1 &&
               view(net.inbox(c), "lobby") == std::set<std::string>{a, b, c};
    })) << net.log();

    net.node(2).submit(c, leave("lobby"));
    ASSERT_TRUE(net.waitFor([&] {
        return events(net.inbox(a), "lobby", "leave", c) == 1 &&
               events(net.inbox(b), "lobby", "leave", c) == 1;
    })) << net.log();

    // A session that closes leaves its rooms.
    net.node(1).closeSession(b);
    ASSERT_TRUE(net.waitFor([&] { return events(net.inbox(a), "lobby", "leave", b) == 1; }))
        << net.log();
    net.pump(300ms);
    EXPECT_EQ(events(net.inbox(a), "lobby", "join", b), 1) << "each event once";
    EXPECT_EQ(events(net.inbox(a), "lobby", "leave", c), 1);
}

// A member's join and leave are one DHT value, replaced: a join after a
// leave must count as newer than that leave, where it is stored and for
// those who heard the leave.
TEST_F(Rooms, AMemberThatLeavesAndJoinsAgainIsSeenAgain) {
    std::string a = member(0, "again");
    std::string b = member(1, "again");
    ASSERT_TRUE(net.waitFor([&] { return events(net.inbox(a), "again", "join", b) == 1; }))
        << net.log();
    for (int round = 1; round <= 2; ++round) {
        net.node(1).submit(b, leave("again"));
        ASSERT_TRUE(net.waitFor([&] {
            return events(net.inbox(a), "again", "leave", b) == round;
        })) << "round " << round << "\n" << net.log();
        net.node(1).submit(b, join("again"));
        ASSERT_TRUE(net.waitFor([&] {
            return events(net.inbox(a), "again", "join", b) == round + 1;
        })) << "round " << round << "\n" << net.log();
    }
    // One who joins now finds b in the list.
    std::string c = member(2, "again");
    ASSERT_TRUE(net.waitFor([&] {
        return view(net.inbox(c), "again") == std::set<std::string>{a, b, c};
    })) << net.log();
}

TEST_F(Rooms, MembersOfAStoppedNodeLeave) {
    std::string a = member(0, "stop");
    std::string c = member(2, "stop");
    ASSERT_TRUE(net.waitFor([&] { return events(net.inbox(a), "stop", "join", c) == 1; }))
        << net.log();
    net.stopNode(2);
    ASSERT_TRUE(net.waitFor([&] { return events(net.inbox(a), "stop", "leave", c) == 1; }, 30s))
        << net.log();
}

TEST_F(Rooms, RoomsAreSeparate) {
    std::string a = member(0, "one");
    std::string b = member(1, "two");
    net.pump(500ms);
    EXPECT_EQ(events(net.inbox(a), "one", "join", b), 0);
    std::set<std::string> list;
    ASSERT_TRUE(memberList(net.inbox(b), "two", list));
    EXPECT_EQ(list, std::set<std::string>{b});
}

TEST_F(Rooms, LimitsAnswerWithAnError) {
    // rooms per session: 2
    std::string s = net.node(0).openSession();
    net.node(0).submit(s, join("r1"));
    net.node(0).submit(s, join("r2"));
    net.node(0).submit(s, join("r3"));
    ASSERT_TRUE(net.waitFor([&] { return hasError(net.inbox(s), "too many rooms"); }))
        << net.log();
    std::set<std::string> list;
    EXPECT_FALSE(memberList(net.inbox(s), "r3", list));

    // members per room: 4 of this node; members of other nodes do not count
    std::vector<std::string> in;
    for (int i = 0; i < 4; ++i) in.push_back(member(1, "full"));
    std::string elsewhere = member(0, "full");
    ASSERT_TRUE(net.waitFor([&] { return view(net.inbox(elsewhere), "full").size() == 5; }))
        << net.log();
    std::string late = net.node(1).openSession();
    net.node(1).submit(late, join("full"));
    ASSERT_TRUE(net.waitFor([&] { return hasError(net.inbox(late), "room full"); }))
        << net.log();
    net.pump(300ms);
    EXPECT_EQ(events(net.inbox(in[0]), "full", "join", late), 0);
    // node 0 knows 5 members, one of them its own: a second one gets in
    std::string second = member(0, "full");
    EXPECT_FALSE(hasError(net.inbox(second), "room full"));
}

TEST_F(Rooms, AMalformedRoomNameIsAnInvalidMessage) {
    std::string s = net.node(0).openSession();
    net.node(0).submit(s, join(""));
    net.node(0).submit(s, join(std::string(65, 'x')));
    net.node(0).submit(s, "{\"type\":\"WebSocketJoinMessage\"}");
    ASSERT_TRUE(net.waitFor([&] {
        int n = 0;
        for (const auto& m : net.inbox(s)) {
            if (m.find("invalid message") != std::string::npos) ++n;
        }
        return n == 3;
    })) << net.log();
}

TEST_F(Rooms, AKeyOwnedIdIsAMemberByItsOwnId) {
    OwnerKey alice;
    Node& home = net.node(1);
    std::string a = home.openSession();
    std::string challenge = home.challenge(a);
    auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    std::string sig = alice.sign(dwrtc::claimSignedBytes(home.id(), challenge, now));
    auto hex = [](const std::string& b) {
        static const char* d = "0123456789abcdef";
        std::string o;
        for (unsigned char c : b) { o.push_back(d[c >> 4]); o.push_back(d[c & 15]); }
        return o;
    };
    home.submit(a, "{\"type\":\"WebSocketClaimMessage\",\"key\":\"" + hex(alice.publicKey()) +
                       "\",\"time\":" + std::to_string(now) + ",\"signature\":\"" + hex(sig) +
                       "\"}");
    home.submit(a, join("keys"));
    std::string b = member(0, "keys");
    ASSERT_TRUE(net.waitFor([&] {
        return view(net.inbox(b), "keys") == std::set<std::string>{alice.id(), b};
    })) << net.log();
    // Alice hears of b by a join, or in her list if b came first.
    ASSERT_TRUE(net.waitFor([&] {
        return view(net.inbox(a), "keys") == std::set<std::string>{alice.id(), b};
    })) << net.log();
}

TEST_F(Rooms, AStrangersMemberValuesFillNoRoom) {
    // One stranger with no node record, one with a record and no node
    // behind it; both fill the room before anyone joins, and again after.
    Stranger nobody(net.node(0).dhtPort());
    Stranger recorded(net.node(1).dhtPort());
    ASSERT_TRUE(recorded.putRecord()) << "the stranger's record was not stored";
    std::vector<std::string> ghosts = nobody.fill("open", 12);
    std::vector<std::string> phantoms = recorded.fill("open", 12);

    // A real member on every node, as many as the room allows on the first.
    std::vector<std::string> real;
    for (int i = 0; i < 4; ++i) real.push_back(member(0, "open"));
    real.push_back(member(1, "open"));
    real.push_back(member(2, "open"));
    for (const auto& s : real) {
        EXPECT_FALSE(hasError(net.inbox(s), "room full")) << net.log();
    }
    std::vector<std::string> more = nobody.fill("open", 8);
    ghosts.insert(ghosts.end(), more.begin(), more.end());
    more = recorded.fill("open", 8);
    phantoms.insert(phantoms.end(), more.begin(), more.end());

    // Every real member sees every other one, on every node.
    const std::set<std::string> everyone(real.begin(), real.end());
    for (const auto& s : real) {
        ASSERT_TRUE(net.waitFor([&] {
            std::set<std::string> v = view(net.inbox(s), "open");
            return std::includes(v.begin(), v.end(), everyone.begin(), everyone.end());
        }, 30s)) << "member " << s << " does not see every real member\n" << net.log();
    }
    // The record checks run (a node with no record is looked for for the
    // router's lookup wait, 5 s): then no more of the strangers come.
    net.pump(7000ms);
    std::size_t shownPhantoms = 0;
    for (const auto& s : real) {
        std::set<std::string> v = view(net.inbox(s), "open");
        EXPECT_EQ(countOf(v, ghosts), 0u) << "a member of a node with no record is shown to " << s;
        EXPECT_LE(countOf(v, phantoms), 4u) << "more than roomMembersPerNode shown";
        shownPhantoms = std::max(shownPhantoms, countOf(v, phantoms));
    }
    std::printf("# of %zu made-up members of a stranger with a record, at most %zu shown per "
                "session (4 allowed); of %zu of a stranger with none, 0\n",
                phantoms.size(), shownPhantoms, ghosts.size());
    // And the room still takes real members.
    std::string late = member(2, "open");
    EXPECT_FALSE(hasError(net.inbox(late), "room full"));
}
