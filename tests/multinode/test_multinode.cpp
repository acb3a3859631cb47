// Several real dhtcore nodes (OpenDHT + libwebsockets) on loopback in one
// process: routing between them, ordering, and nodes that come and go.
#include <gtest/gtest.h>
#include <jansson.h>
#include <opendht.h>

#include <future>

#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "network.h"

using namespace std::chrono_literals;
using dwrtc::Node;
using dwrtc::test::clientMessage;
using dwrtc::test::field;
using dwrtc::test::Network;

namespace {

bool hasErrorFor(const std::vector<std::string>& inbox, const std::string& error,
                 const std::string& recipient) {
    for (const auto& m : inbox) {
        if (field(m, "type") == "WebSocketErrorMessage" && field(m, "error") == error &&
            field(m, "recipientSessionId") == recipient) {
            return true;
        }
    }
    return false;
}

bool hasNotFoundFor(const std::vector<std::string>& inbox, const std::string& recipient) {
    return hasErrorFor(inbox, "not found", recipient);
}

class MultiNode : public ::testing::Test {
protected:
    void SetUp() override {
        for (int i = 0; i < 5; ++i) net.addNode();
        ASSERT_TRUE(net.waitPublished()) << "not every node stored its DHT record";
    }
    Network net;
};

}  // namespace

TEST_F(MultiNode, SessionIdsNameTheirNode) {
    for (std::size_t i = 0; i < net.size(); ++i) {
        std::string id = net.node(i).openSession();
        EXPECT_TRUE(dwrtc::isValidSessionId(id)) << id;
        EXPECT_EQ(dwrtc::nodePrefixOfCanonical(id), net.node(i).id());
    }
}

TEST_F(MultiNode, DeliversBetweenSessionsOnDifferentNodes) {
    std::string alice = net.node(0).openSession();
    std::string bob = net.node(3).openSession();
    ASSERT_EQ(net.node(0).submit(alice, clientMessage(bob, "hello bob")), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(bob).empty(); }));
    const std::string& got = net.inbox(bob).front();
    EXPECT_EQ(field(got, "type"), "SignalingMessage");
    EXPECT_EQ(field(got, "senderSessionId"), alice);
    EXPECT_EQ(field(got, "recipientSessionId"), bob);
    EXPECT_EQ(field(got, "messageBody"), "hello bob");

    // And back, over the other direction.
    ASSERT_EQ(net.node(3).submit(bob, clientMessage(alice, "hi alice")), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(alice).empty(); }));
    EXPECT_EQ(field(net.inbox(alice).front(), "messageBody"), "hi alice");
    EXPECT_EQ(field(net.inbox(alice).front(), "senderSessionId"), bob);
}

TEST_F(MultiNode, BurstToColdNodeArrivesCompleteAndInOrder) {
    // A sender whose hold budget takes the whole burst: the default (64
    // messages) answers the rest "queue full", as RouterBudgetTest shows.
    dwrtc::NodeConfig roomy = Network::loopbackConfig();
    roomy.sessionHoldMessages = 1024;
    roomy.sessionHoldBytes = 4 * 1024 * 1024;
    Node& sender = net.addNode(roomy);
    ASSERT_TRUE(net.waitPublished());
    std::string alice = sender.openSession();
    std::string bob = net.node(4).openSession();
    const int count = 1000;
    // Sent before the sender has looked node 4 up: all of it queues behind
    // the lookup and the link connect.
    for (int i = 0; i < count; ++i) {
        ASSERT_EQ(sender.submit(alice, clientMessage(bob, std::to_string(i))),
                  Node::Submit::Ok);
    }
    ASSERT_TRUE(net.waitFor([&] { return net.inbox(bob).size() >= count; }))
        << "got " << net.inbox(bob).size() << " of " << count;
    ASSERT_EQ(net.inbox(bob).size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        ASSERT_EQ(field(net.inbox(bob)[i], "messageBody"), std::to_string(i)) << "at " << i;
    }
    EXPECT_TRUE(net.inbox(alice).empty()) << "sender got errors: " << net.inbox(alice).front();
}

TEST_F(MultiNode, UnknownRecipientOnLiveNodeGetsNotFound) {
    std::string alice = net.node(0).openSession();
    std::string ghost = dwrtc::makeSessionId(net.node(2).id());
    net.node(0).submit(alice, clientMessage(ghost, "anyone?"));
    EXPECT_TRUE(net.waitFor([&] { return hasNotFoundFor(net.inbox(alice), ghost); }));
}

// A node whose record cannot be found may be one that has just started:
// its messages wait the lookup wait, and then the answer says what is
// known ("unreachable"), never "not found" (no node said so).
TEST_F(MultiNode, UnknownNodeGetsUnreachableAfterTheLookupWait) {
    std::string alice = net.node(0).openSession();
    std::string nowhere = dwrtc::makeSessionId("0123456789abcdef0123456789abcdef");
    auto sent = Network::Clock::now();
    net.node(0).submit(alice, clientMessage(nowhere, "anyone?"));
    ASSERT_TRUE(net.waitFor([&] { return hasErrorFor(net.inbox(alice), "unreachable", nowhere); },
                            60s));
    EXPECT_GE(Network::Clock::now() - sent, std::chrono::milliseconds(DWRTC_DEFAULT_LOOKUP_WAIT_MS));
    EXPECT_FALSE(hasNotFoundFor(net.inbox(alice), nowhere));
}

TEST_F(MultiNode, SessionClosedOnOtherNodeIsNotFound) {
    std::string alice = net.node(0).openSession();
    std::string carol = net.node(2).openSession();
    net.node(0).submit(alice, clientMessage(carol, "before"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(carol).empty(); }));
    ASSERT_TRUE(net.node(2).closeSession(carol));
    net.node(0).submit(alice, clientMessage(carol, "after"));
    EXPECT_TRUE(net.waitFor([&] { return hasNotFoundFor(net.inbox(alice), carol); }));
    EXPECT_EQ(net.inbox(carol).size(), 1u);
}

TEST_F(MultiNode, StoppedNodeGivesNotFoundAndOthersKeepWorking) {
    std::string alice = net.node(0).openSession();
    std::string bob = net.node(1).openSession();
    std::string dave = net.node(3).openSession();
    net.node(0).submit(alice, clientMessage(dave, "1"));
    net.node(0).submit(alice, clientMessage(bob, "1"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(dave).empty() && !net.inbox(bob).empty(); }));

    net.stopNode(3);
    net.node(0).submit(alice, clientMessage(dave, "2"));
    EXPECT_TRUE(net.waitFor([&] { return hasNotFoundFor(net.inbox(alice), dave); }, 60s));

    net.node(0).submit(alice, clientMessage(bob, "2"));
    ASSERT_TRUE(net.waitFor([&] { return net.inbox(bob).size() == 2; }));
    EXPECT_EQ(field(net.inbox(bob)[1], "messageBody"), "2");
}

TEST_F(MultiNode, LateNodeReachesSessionsOnOldNodes) {
    std::string old = net.node(2).openSession();
    Node& late = net.addNode();
    ASSERT_TRUE(net.waitPublished());
    std::string newcomer = late.openSession();
    late.submit(newcomer, clientMessage(old, "hello from the new node"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(old).empty(); }));
    EXPECT_EQ(field(net.inbox(old).front(), "senderSessionId"), newcomer);

    net.node(2).submit(old, clientMessage(newcomer, "welcome"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(newcomer).empty(); }));
    EXPECT_EQ(field(net.inbox(newcomer).front(), "messageBody"), "welcome");
}

TEST_F(MultiNode, SenderIdIsStampedNotTakenFromClient) {
    std::string alice = net.node(0).openSession();
    std::string bob = net.node(1).openSession();
    std::string mallory = net.node(0).openSession();
    std::string forged = "{\"type\":\"SignalingMessage\",\"senderSessionId\":\"" + alice +
                         "\",\"recipientSessionId\":\"" + bob + "\",\"messageBody\":\"x\"}";
    net.node(0).submit(mallory, forged);
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(bob).empty(); }));
    EXPECT_EQ(field(net.inbox(bob).front(), "senderSessionId"), mallory);
}

TEST_F(MultiNode, InvalidMessageGetsErrorAndSessionLivesOn) {
    std::string alice = net.node(0).openSession();
    std::string bob = net.node(1).openSession();
    net.node(0).submit(alice, "{not json");
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(alice).empty(); }));
    EXPECT_EQ(field(net.inbox(alice).front(), "type"), "WebSocketErrorMessage");
    EXPECT_EQ(field(net.inbox(alice).front(), "error").rfind("invalid message: ", 0), 0u);

    net.node(0).submit(alice, clientMessage(bob, "still here"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(bob).empty(); }));
}

TEST_F(MultiNode, SameNodeDeliveryNeedsNoLink) {
    std::string a = net.node(4).openSession();
    std::string b = net.node(4).openSession();
    net.node(4).submit(a, clientMessage(b, "local"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(b).empty(); }));
    EXPECT_EQ(field(net.inbox(b).front(), "senderSessionId"), a);
}

TEST(NodeLifecycle, PortRangeExhaustedFailsStartWithReason) {
    Network net;
    Node& first = net.addNode();
    dwrtc::NodeConfig config = Network::loopbackConfig();
    config.dhtPortFrom = config.dhtPortTo = first.dhtPort();
    Node second(config);
    EXPECT_FALSE(second.start());
    std::string log;
    second.drain(0, nullptr, [&](int, std::string_view line) { log += std::string(line) + "\n"; });
    EXPECT_NE(log.find("no free UDP port"), std::string::npos) << log;
}

TEST(NodeLifecycle, TakesNextFreePortOfRange) {
    Network net;
    Node& first = net.addNode();
    unsigned taken = first.dhtPort();
    dwrtc::NodeConfig config = Network::loopbackConfig();
    config.dhtPortFrom = taken;
    config.dhtPortTo = taken + 20 > 65535 ? 65535 : taken + 20;
    Node second(config);
    ASSERT_TRUE(second.start());
    EXPECT_GT(second.dhtPort(), taken);
    second.stop();
}

TEST_F(MultiNode, SessionOnJustStartedNodeIsReachable) {
    // The new node's first session exists before its record is stored; a
    // message sent at once must wait for the record, not bounce.
    Node& fresh = net.addNode();
    std::string early = fresh.openSession();
    std::string alice = net.node(0).openSession();
    net.node(0).submit(alice, clientMessage(early, "are you there yet?"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(early).empty(); }, 30s))
        << (net.inbox(alice).empty() ? "" : net.inbox(alice).front());
    EXPECT_EQ(field(net.inbox(early).front(), "senderSessionId"), alice);
}

// The sessions of a node whose record the DHT does not show (a new worker
// whose put is not stored yet; here a node in a DHT of its own) are
// reachable from the nodes its sibling has links with, once the sibling
// says where it is. Without that word they would be "unreachable" after
// the lookup wait.
TEST(NodeSiblings, NodeTheDhtDoesNotShowIsReachedWhereItsSiblingSaid) {
    Network net;
    dwrtc::NodeConfig config = Network::loopbackConfig();
    config.logLevel = 3;  // how the link was found is a debug record
    Node& a = net.addNode(config);
    Node& b1 = net.addNode(config);
    ASSERT_TRUE(net.waitPublished());
    Node& b2 = net.addNode(config, false);  // alone: its record is nowhere a can look

    std::string alice = a.openSession();
    std::string bob = b1.openSession();
    std::string carol = b2.openSession();
    a.submit(alice, clientMessage(bob, "to bob"));
    ASSERT_TRUE(net.waitFor([&] { return net.inbox(bob).size() == 1; }));

    b1.setSiblings({{b2.id(), b2.linkPort()}});
    a.submit(alice, clientMessage(carol, "to carol"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(carol).empty() || !net.inbox(alice).empty(); },
                            30s));
    ASSERT_EQ(net.inbox(carol).size(), 1u)
        << (net.inbox(alice).empty() ? "" : net.inbox(alice).front());
    EXPECT_EQ(field(net.inbox(carol).front(), "messageBody"), "to carol");
    EXPECT_NE(net.log().find("node " + b2.id() + " reached where its sibling said"),
              std::string::npos)
        << net.log();
}

TEST(NodeLinks, IdleLinkIsClosedAndReopenedOnDemand) {
    Network net;
    dwrtc::NodeConfig config = Network::loopbackConfig();
    config.linkIdleSeconds = 1;
    config.logLevel = 3;  // the idle close is a debug record
    net.addNode(config);
    net.addNode(config);
    ASSERT_TRUE(net.waitPublished());
    std::string alice = net.node(0).openSession();
    std::string bob = net.node(1).openSession();

    net.node(0).submit(alice, clientMessage(bob, "first"));
    ASSERT_TRUE(net.waitFor([&] { return net.inbox(bob).size() == 1; }));
    ASSERT_TRUE(net.waitFor([&] {
        return net.log().find("closing idle link to node " + net.node(1).id()) !=
               std::string::npos;
    }, 10s)) << net.log();

    net.node(0).submit(alice, clientMessage(bob, "second"));
    ASSERT_TRUE(net.waitFor([&] { return net.inbox(bob).size() == 2; }));
    EXPECT_EQ(field(net.inbox(bob)[1], "messageBody"), "second");
}

// Another identity puts records under node ids, pointing at an address of
// its own: readers ignore them. A real node stays reachable; an id with no
// real node behind it is "unreachable" once the lookup wait is over (no
// node said the session does not exist), without a connect to the forged
// address.
TEST(NodeRecords, RecordsPutByAnotherIdentityAreIgnored) {
    Network net;
    dwrtc::NodeConfig debug = Network::loopbackConfig();
    debug.logLevel = 3;  // lookups and connects are debug records
    Node& sender = net.addNode(debug);
    Node& victim = net.addNode();
    ASSERT_TRUE(net.waitPublished());

    dht::DhtRunner rogue;
    dht::DhtRunner::Config config;
    config.threaded = true;
    config.dht_config.id = dht::crypto::generateIdentity("rogue", {}, 2048);
    config.dht_config.node_config.network = dwrtc::kOpenNetworkId;
    config.dht_config.node_config.max_peer_req_per_sec = -1;
    config.dht_config.node_config.max_req_per_sec = -1;
    rogue.run(0, config);
    rogue.bootstrap("127.0.0.1", std::to_string(sender.dhtPort()));

    const std::string ghost = "0123456789abcdef0123456789abcdef";
    for (const std::string& id : {victim.id(), ghost}) {
        const std::string fake = "{\"v\":2,\"node\":\"" + id +
                                 "\",\"links\":[\"wss://127.0.0.1:1\"],\"gone\":false}";
        auto key = dht::InfoHash::get(dwrtc::nodeRecordName({}, id));
        std::promise<bool> signedStored, plainStored;
        rogue.putSigned(key,
                        dht::Value(dht::ValueType::USER_DATA.id,
                                   reinterpret_cast<const uint8_t*>(fake.data()), fake.size()),
                        [&](bool ok) { signedStored.set_value(ok); });
        rogue.put(key,
                  dht::Value(dht::ValueType::USER_DATA.id,
                             reinterpret_cast<const uint8_t*>(fake.data()), fake.size()),
                  [&](bool ok) { plainStored.set_value(ok); });
        ASSERT_TRUE(signedStored.get_future().get()) << "the forged record was not even stored";
        ASSERT_TRUE(plainStored.get_future().get());
    }

    std::string alice = sender.openSession();
    std::string bob = victim.openSession();
    sender.submit(alice, clientMessage(bob, "to the real bob"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(bob).empty(); }, 30s)) << net.log();
    EXPECT_EQ(field(net.inbox(bob).front(), "messageBody"), "to the real bob");

    std::string nobody = dwrtc::makeSessionId(ghost);
    sender.submit(alice, clientMessage(nobody, "anyone?"));
    ASSERT_TRUE(
        net.waitFor([&] { return hasErrorFor(net.inbox(alice), "unreachable", nobody); }, 30s))
        << net.log();
    EXPECT_NE(net.log().find("node " + ghost + " is not in the DHT"), std::string::npos)
        << net.log();
    EXPECT_EQ(net.log().find("node " + ghost + " unreachable"), std::string::npos) << net.log();
    EXPECT_EQ(net.log().find("published an unusable link address"), std::string::npos);
    rogue.join();
}

// Two private networks bootstrapped into each other on one machine: each
// reaches its own members and none of the other's.
TEST(PrivateNetworks, MembersReachEachOtherAndNoOneElse) {
    Network net;
    dwrtc::NodeConfig red = Network::loopbackConfig();
    red.networkKey = "red network secret, 32 bytes ok!";
    dwrtc::NodeConfig blue = Network::loopbackConfig();
    blue.networkKey = "blue network secret, 32 bytes ok";
    Node& red1 = net.addNode(red);
    Node& blue1 = net.addNode(blue);  // told only of red1: it hears nothing back
    Node& red2 = net.addNode(red);
    dwrtc::NodeConfig blueJoin = blue;  // also told of a blue node
    blueJoin.bootstrap.push_back("127.0.0.1:" + std::to_string(blue1.dhtPort()));
    Node& blue2 = net.addNode(blueJoin);
    Node& open = net.addNode();
    std::string r1 = red1.openSession(), r2 = red2.openSession();
    std::string b1 = blue1.openSession(), b2 = blue2.openSession();
    std::string o = open.openSession();

    // The open node hears from no one (it was told only of a red node), so
    // it has nowhere to store its record; the members do.
    ASSERT_TRUE(net.waitFor([&] {
        return red1.published() && red2.published() && blue1.published() && blue2.published();
    }, 30s)) << net.log();
    red1.submit(r1, clientMessage(r2, "red to red"));
    blue2.submit(b2, clientMessage(b1, "blue to blue"));
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(r2).empty() && !net.inbox(b1).empty(); },
                            30s))
        << net.log();

    red1.submit(r1, clientMessage(b2, "red to blue"));
    red1.submit(r1, clientMessage(o, "red to open"));
    open.submit(o, clientMessage(r2, "open to red"));
    // No node of the other network can be found: "unreachable" once the
    // lookup wait is over.
    EXPECT_TRUE(net.waitFor([&] {
        return hasErrorFor(net.inbox(r1), "unreachable", b2) &&
               hasErrorFor(net.inbox(r1), "unreachable", o) &&
               hasErrorFor(net.inbox(o), "unreachable", r2);
    }, 60s)) << net.log();
    // Nothing crossed: each got only its own errors.
    auto relayed = [&](const std::string& session) {
        std::size_t n = 0;
        for (const auto& m : net.inbox(session)) {
            n += field(m, "type") == "SignalingMessage";
        }
        return n;
    };
    EXPECT_EQ(relayed(b2), 0u);
    EXPECT_EQ(relayed(o), 0u);
    EXPECT_EQ(relayed(r2), 1u);
}
