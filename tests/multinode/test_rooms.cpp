// Rooms between real nodes (OpenDHT + libwebsockets) on loopback: members
// on any node get the member list when they join, and join and leave
// events for the others, also when a member's session closes or its node
// stops; limits answer with an error.
#include <gtest/gtest.h>
#include <jansson.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "dwrtc/owned_id.h"
#include "dwrtc/session_id.h"
#include "network.h"
#include "owner_keys.h"

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

class Rooms : public ::testing::Test {
protected:
    void SetUp() override {
        dwrtc::NodeConfig c = Network::loopbackConfig();
        c.roomMembers = 4;
        c.roomsPerSession = 2;
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

    // members per room: 4, as this node knows them
    std::vector<std::string> in;
    for (int i = 0; i < 4; ++i) in.push_back(member(i % 3, "full"));
    std::string late = net.node(1).openSession();
    // node 1 has heard of the others by now
    ASSERT_TRUE(net.waitFor([&] { return view(net.inbox(in[1]), "full").size() == 4; }))
        << net.log();
    net.node(1).submit(late, join("full"));
    ASSERT_TRUE(net.waitFor([&] { return hasError(net.inbox(late), "room full"); }))
        << net.log();
    net.pump(300ms);
    EXPECT_EQ(events(net.inbox(in[0]), "full", "join", late), 0);
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
