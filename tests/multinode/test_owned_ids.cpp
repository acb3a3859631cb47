// Key-owned ids between real nodes (OpenDHT + libwebsockets) on loopback:
// a claimed id is reached from any node, no one else can take it, and
// messages sent while it is away arrive once each, in order, when it is
// claimed again on the same node or another.
#include <gtest/gtest.h>
#include <jansson.h>
#include <opendht.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <thread>
#include <vector>

#include "dwrtc/owned_id.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "network.h"
#include "owner_keys.h"

using namespace std::chrono_literals;
using dwrtc::IdClaim;
using dwrtc::Node;
using dwrtc::test::clientMessage;
using dwrtc::test::field;
using dwrtc::test::Network;
using dwrtc::test::OwnerKey;

namespace {

std::string hex(const std::string& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::uint64_t nowMs() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// The claim message a browser sends after its welcome.
std::string claimMessage(const OwnerKey& key, Node& node, const std::string& session,
                         std::uint64_t time = nowMs()) {
    std::string challenge = node.challenge(session);
    std::string sig = key.sign(dwrtc::claimSignedBytes(node.id(), challenge, time));
    return "{\"type\":\"WebSocketClaimMessage\",\"key\":\"" + hex(key.publicKey()) +
           "\",\"time\":" + std::to_string(time) + ",\"signature\":\"" + hex(sig) + "\"}";
}

// Bodies of the messages a session got, in order.
std::vector<std::string> bodies(const std::vector<std::string>& inbox) {
    std::vector<std::string> out;
    for (const auto& m : inbox) {
        if (field(m, "type") == "SignalingMessage") out.push_back(field(m, "messageBody"));
    }
    return out;
}

bool hasError(const std::vector<std::string>& inbox, const std::string& error,
              const std::string& recipient = {}) {
    for (const auto& m : inbox) {
        if (field(m, "type") == "WebSocketErrorMessage" &&
            field(m, "error").rfind(error, 0) == 0 &&
            (recipient.empty() || field(m, "recipientSessionId") == recipient)) {
            return true;
        }
    }
    return false;
}

class OwnedIds : public ::testing::Test {
protected:
    void SetUp() override {
        for (int i = 0; i < 4; ++i) {
            dwrtc::NodeConfig c = Network::loopbackConfig();
            c.holdMs = 20000;
            net.addNode(c);
        }
        ASSERT_TRUE(net.waitPublished()) << "not every node stored its DHT record";
    }

    // Opens a session on node i and claims key's id with it; returns the
    // node's session id (how the host knows it).
    std::string claimOn(std::size_t i, const OwnerKey& key) {
        Node& node = net.node(i);
        std::string session = node.openSession();
        EXPECT_EQ(node.submit(session, claimMessage(key, node, session)), Node::Submit::Ok);
        EXPECT_TRUE(net.waitFor([&] {
            for (const auto& m : net.inbox(session)) {
                if (field(m, "type") == "WebSocketIdMessage" && field(m, "id") == key.id())
                    return true;
            }
            return false;
        })) << net.log();
        return session;
    }

    Network net;
};

}  // namespace

TEST_F(OwnedIds, AClaimedIdIsReachedFromAnotherNodeAndSpeaksAsItself) {
    OwnerKey alice;
    std::string a = claimOn(0, alice);
    std::string bob = net.node(2).openSession();
    net.node(2).submit(bob, clientMessage(alice.id(), "hello alice"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(a)).empty(); })) << net.log();
    EXPECT_EQ(bodies(net.inbox(a)), std::vector<std::string>{"hello alice"});
    const std::string& got = net.inbox(a).back();
    EXPECT_EQ(field(got, "recipientSessionId"), alice.id());
    EXPECT_EQ(field(got, "senderSessionId"), bob);

    // Her answer carries her owned id, proven to node 2 by her claim.
    net.node(0).submit(a, clientMessage(bob, "hi bob"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(bob)).empty(); })) << net.log();
    EXPECT_EQ(field(net.inbox(bob).back(), "senderSessionId"), alice.id());
}

TEST_F(OwnedIds, SameNodeMessagesToAnOwnedIdArrive) {
    OwnerKey alice;
    std::string a = claimOn(1, alice);
    std::string bob = net.node(1).openSession();
    net.node(1).submit(bob, clientMessage(alice.id(), "next door"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(a)).empty(); })) << net.log();
    EXPECT_EQ(bodies(net.inbox(a)).front(), "next door");
}

TEST_F(OwnedIds, AClaimThatDoesNotHoldIsRefused) {
    OwnerKey alice;
    Node& node = net.node(0);
    std::string s1 = node.openSession();
    std::string s2 = node.openSession();
    // Signed for another session's challenge (a replay).
    node.submit(s1, claimMessage(alice, node, s2));
    // Signed for another node.
    std::string otherNodeClaim = claimMessage(alice, net.node(1), s2);
    node.submit(s2, otherNodeClaim);
    // Dated an hour ago.
    node.submit(s1, claimMessage(alice, node, s1, nowMs() - 3600 * 1000));
    // Dated a minute ahead: it would outrank her later claims.
    node.submit(s2, claimMessage(alice, node, s2, nowMs() + 60 * 1000));
    ASSERT_TRUE(net.waitFor([&] {
        return hasError(net.inbox(s1), "claim refused: the signature does not hold") &&
               hasError(net.inbox(s2), "claim refused: the signature does not hold") &&
               hasError(net.inbox(s1), "claim refused: its time is more than 5 minutes behind") &&
               hasError(net.inbox(s2), "claim refused: the claim is dated ");
    })) << net.log();
    // The id stays unclaimed: a message to it is "not found".
    std::string bob = net.node(3).openSession();
    net.node(3).submit(bob, clientMessage(alice.id(), "anyone?"));
    ASSERT_TRUE(net.waitFor([&] { return hasError(net.inbox(bob), "not found", alice.id()); }))
        << net.log();
}

TEST_F(OwnedIds, ASessionThatKeepsMakingBadClaimsIsClosed) {
    OwnerKey alice;
    Node& node = net.node(0);
    std::string s1 = node.openSession();
    std::string s2 = node.openSession();
    // Signed for another session's challenge: refused, twice the session
    // stays; the third refusal in a row (dwrtc_claims' default) ends it.
    EXPECT_EQ(node.submit(s1, claimMessage(alice, node, s2)), Node::Submit::Ok);
    EXPECT_EQ(node.submit(s1, claimMessage(alice, node, s2)), Node::Submit::Ok);
    EXPECT_EQ(node.submit(s1, claimMessage(alice, node, s2)), Node::Submit::ClaimsRefused);
    // A claim that holds in between starts the count again.
    OwnerKey bob;
    EXPECT_EQ(node.submit(s2, claimMessage(alice, node, s1)), Node::Submit::Ok);
    EXPECT_EQ(node.submit(s2, claimMessage(alice, node, s1)), Node::Submit::Ok);
    EXPECT_EQ(node.submit(s2, claimMessage(alice, node, s2)), Node::Submit::Ok);  // holds
    EXPECT_EQ(node.submit(s2, claimMessage(bob, node, s1)), Node::Submit::Ok);
    EXPECT_EQ(node.submit(s2, claimMessage(bob, node, s1)), Node::Submit::Ok);
    EXPECT_EQ(node.submit(s2, claimMessage(bob, node, s1)), Node::Submit::ClaimsRefused);
}

TEST_F(OwnedIds, ClaimsHaveABucketOfTheirOwnAndAClaimOfTheOwnIdChangesNothing) {
    OwnerKey alice;
    Node& node = net.node(0);
    std::string a = claimOn(0, alice);  // one claim of the bucket's six
    // Again, for the id the session owns: answered with its welcome, not
    // checked (this one's signature does not even hold), nothing written.
    std::string junk = claimMessage(alice, node, a);
    junk.replace(junk.rfind("\"}") - 8, 8, "00000000");
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(node.submit(a, junk), Node::Submit::Ok);
    }
    ASSERT_TRUE(net.waitFor([&] {
        int welcomes = 0;
        for (const auto& m : net.inbox(a)) {
            welcomes += field(m, "type") == "WebSocketIdMessage" && field(m, "id") == alice.id();
        }
        return welcomes == 6;
    })) << net.log();
    EXPECT_FALSE(hasError(net.inbox(a), "claim refused")) << net.log();
    // The seventh within the minute is refused without a check.
    EXPECT_EQ(node.submit(a, claimMessage(alice, node, a)), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] {
        return hasError(net.inbox(a), "claim refused: more than 6 claims a minute (dwrtc_claims)");
    })) << net.log();
}

TEST_F(OwnedIds, AClaimSignedByAnotherKeyIsIgnored) {
    OwnerKey alice, mallory;
    std::string a = claimOn(0, alice);

    // Mallory stores, under Alice's id, a newer claim naming node 1, signed
    // with her own key (and one with Alice's key beside her signature).
    dht::DhtRunner rogue;
    dht::DhtRunner::Config config;
    config.threaded = true;
    config.dht_config.node_config.network = dwrtc::kOpenNetworkId;
    config.dht_config.node_config.max_peer_req_per_sec = -1;
    config.dht_config.node_config.max_req_per_sec = -1;
    rogue.run(0, config);
    rogue.bootstrap("127.0.0.1", std::to_string(net.node(0).dhtPort()));
    auto key = dht::InfoHash::get(dwrtc::idRecordName({}, alice.id()));
    IdClaim forged = mallory.claim(net.node(1).id(), "x", nowMs() + 1000);
    forged.id = alice.id();
    IdClaim borrowed = forged;
    borrowed.key = alice.publicKey();
    for (const IdClaim& c : {forged, borrowed}) {
        std::string text = dwrtc::encodeIdClaim(c);
        std::promise<bool> stored;
        rogue.put(key,
                  dht::Value(dht::ValueType::USER_DATA.id,
                             reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                  [&](bool ok) { stored.set_value(ok); });
        ASSERT_TRUE(stored.get_future().get()) << "the forged claim was not even stored";
    }

    std::string bob = net.node(3).openSession();
    net.node(3).submit(bob, clientMessage(alice.id(), "to the real alice"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(a)).empty(); }, 30s)) << net.log();
    EXPECT_EQ(bodies(net.inbox(a)).front(), "to the real alice");
    rogue.join();
}

// A stranger stores many values under an id that is away, each with the
// id's key, newer than its real claim and with a signature that does not
// hold: while messages for it are held, the id is looked up every 250 ms,
// and each value must cost one signature check in all, not one per lookup.
TEST_F(OwnedIds, AFloodedAwayIdCostsOneCheckPerValueNotOnePerLookup) {
    constexpr int kFlood = 40;
    OwnerKey alice;
    std::string a = claimOn(0, alice);
    std::string bob = net.node(3).openSession();
    net.node(3).submit(bob, clientMessage(alice.id(), "m0"));
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a)).size() == 1; })) << net.log();

    dht::DhtRunner rogue;
    dht::DhtRunner::Config config;
    config.threaded = true;
    config.dht_config.node_config.network = dwrtc::kOpenNetworkId;
    config.dht_config.node_config.max_peer_req_per_sec = -1;
    config.dht_config.node_config.max_req_per_sec = -1;
    rogue.run(0, config);
    rogue.bootstrap("127.0.0.1", std::to_string(net.node(0).dhtPort()));
    auto key = dht::InfoHash::get(dwrtc::idRecordName({}, alice.id()));
    std::vector<std::future<bool>> stored;
    std::vector<std::shared_ptr<std::promise<bool>>> promises;
    for (int i = 0; i < kFlood; ++i) {
        IdClaim c = alice.claim(net.node(1).id(), "x", nowMs() + 1000 + i);
        c.signature[5] = static_cast<char>(c.signature[5] ^ 1);
        std::string text = dwrtc::encodeIdClaim(c);
        auto p = std::make_shared<std::promise<bool>>();
        stored.push_back(p->get_future());
        rogue.put(key,
                  dht::Value(dht::ValueType::USER_DATA.id,
                             reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                  [p](bool ok) { p->set_value(ok); });
    }
    // And one her key did sign, harvested with a time ten minutes ahead:
    // believed, it would outrank her next claim.
    {
        IdClaim ahead = alice.claim(net.node(1).id(), "x", nowMs() + 600 * 1000);
        std::string text = dwrtc::encodeIdClaim(ahead);
        auto p = std::make_shared<std::promise<bool>>();
        stored.push_back(p->get_future());
        rogue.put(key,
                  dht::Value(dht::ValueType::USER_DATA.id,
                             reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                  [p](bool ok) { p->set_value(ok); });
    }
    for (auto& f : stored) {
        ASSERT_TRUE(f.get()) << "a value of the flood was not stored";
    }

    net.node(0).closeSession(a);
    std::uint64_t before = dwrtc::claimSignatureChecks();
    net.node(3).submit(bob, clientMessage(alice.id(), "m1"));  // held: she is away
    std::this_thread::sleep_for(3s);  // a dozen lookups of her id
    std::uint64_t spent = dwrtc::claimSignatureChecks() - before;
    std::printf("signature checks in 3 s of lookups of an id flooded with %d values: %llu\n",
                kFlood, static_cast<unsigned long long>(spent));
    EXPECT_GT(spent, 0u) << "the lookups never saw the flood";
    EXPECT_LE(spent, static_cast<std::uint64_t>(kFlood) + 4) << net.log();
    // The status page shows both bounds hit: more claims than
    // dwrtc_lookup_claim_checks (32) at once, and the claim dated ahead.
    dwrtc::NodeStatsSnapshot st = net.node(3).stats();
    EXPECT_GE(st.claimChecksSpent, 1u);
    EXPECT_GE(st.claimsAhead, 1u);

    // The flood took nothing from her: back on node 2, she gets m1.
    std::string again = claimOn(2, alice);
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(again)).empty(); }, 30s))
        << net.log();
    EXPECT_EQ(bodies(net.inbox(again)), std::vector<std::string>{"m1"});
    rogue.join();
}

TEST_F(OwnedIds, AwayMessagesArriveInOrderAfterAReconnectOnAnotherNode) {
    OwnerKey alice;
    std::string a = claimOn(0, alice);
    std::string bob = net.node(3).openSession();
    net.node(3).submit(bob, clientMessage(alice.id(), "m0"));
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a)).size() == 1; })) << net.log();

    net.node(0).closeSession(a);
    for (int i = 1; i <= 5; ++i) {
        net.node(3).submit(bob, clientMessage(alice.id(), "m" + std::to_string(i)));
        net.pump(20ms);
    }
    net.pump(300ms);
    EXPECT_FALSE(hasError(net.inbox(bob), "not found")) << "held messages were refused";

    auto claimed = std::chrono::steady_clock::now();
    std::string a2 = claimOn(2, alice);
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a2)).size() >= 5; })) << net.log();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - claimed)
                  .count();
    std::printf("reconnect on another node: claim to all held messages delivered %lld ms\n",
                static_cast<long long>(ms));
    net.pump(300ms);
    EXPECT_EQ(bodies(net.inbox(a2)), (std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"}));
    EXPECT_FALSE(hasError(net.inbox(bob), "")) << "bob was told something went wrong";

    // And the next message goes straight there.
    net.node(3).submit(bob, clientMessage(alice.id(), "m6"));
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a2)).size() == 6; })) << net.log();
}

TEST_F(OwnedIds, AwayMessagesArriveAfterAReconnectOnTheSameNode) {
    OwnerKey alice;
    std::string a = claimOn(1, alice);
    std::string remote = net.node(0).openSession();
    std::string local = net.node(1).openSession();
    net.node(0).submit(remote, clientMessage(alice.id(), "r0"));
    net.node(1).submit(local, clientMessage(alice.id(), "l0"));
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a)).size() == 2; })) << net.log();

    net.node(1).closeSession(a);
    net.node(0).submit(remote, clientMessage(alice.id(), "r1"));
    net.node(1).submit(local, clientMessage(alice.id(), "l1"));
    net.node(0).submit(remote, clientMessage(alice.id(), "r2"));
    net.node(1).submit(local, clientMessage(alice.id(), "l2"));
    net.pump(500ms);
    std::string a2 = claimOn(1, alice);
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a2)).size() >= 4; })) << net.log();
    net.pump(300ms);
    std::vector<std::string> got = bodies(net.inbox(a2));
    ASSERT_EQ(got.size(), 4u);
    // Each sender's messages in the order it sent them.
    auto before = [&](const char* x, const char* y) {
        return std::find(got.begin(), got.end(), x) < std::find(got.begin(), got.end(), y);
    };
    EXPECT_TRUE(before("r1", "r2"));
    EXPECT_TRUE(before("l1", "l2"));
}

// Two nodes with this hold: Alice's id on node 0 has had one message from
// Bob on node 1, and then her session closes.
class OwnedIdHold : public ::testing::Test {
protected:
    void awayWith(std::size_t holdMessages, unsigned holdMs) {
        dwrtc::NodeConfig c = Network::loopbackConfig();
        c.holdMessages = holdMessages;
        c.holdMs = holdMs;
        net.addNode(c);
        net.addNode(c);
        ASSERT_TRUE(net.waitPublished());
        Node& home = net.node(0);
        std::string a = home.openSession();
        home.submit(a, claimMessage(alice, home, a));
        ASSERT_TRUE(net.waitFor([&] { return !net.inbox(a).empty(); }));
        bob = net.node(1).openSession();
        net.node(1).submit(bob, clientMessage(alice.id(), "first"));
        ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(a)).size() == 1; })) << net.log();
        home.closeSession(a);
    }

    Network net;
    OwnerKey alice;
    std::string bob;
};

TEST_F(OwnedIdHold, TheSenderHearsWhenTheHoldTimeRunsOut) {
    awayWith(DWRTC_DEFAULT_HOLD_MESSAGES, 1500);
    net.node(1).submit(bob, clientMessage(alice.id(), "into the void"));
    net.pump(800ms);
    EXPECT_FALSE(hasError(net.inbox(bob), "")) << "told before the hold time ran out";
    ASSERT_TRUE(net.waitFor([&] { return hasError(net.inbox(bob), "not back in time", alice.id()); },
                            10s))
        << net.log();
}

TEST_F(OwnedIdHold, WithoutAHoldTheSenderHearsNotFound) {
    awayWith(0, DWRTC_DEFAULT_HOLD_MS);
    net.node(1).submit(bob, clientMessage(alice.id(), "gone?"));
    ASSERT_TRUE(net.waitFor([&] { return hasError(net.inbox(bob), "not found", alice.id()); }))
        << net.log();
}

TEST_F(OwnedIds, ANewerSessionTakesTheIdOverAndTheOlderIsTold) {
    OwnerKey alice;
    std::string first = claimOn(0, alice);
    std::string second = claimOn(0, alice);
    ASSERT_TRUE(net.waitFor(
        [&] { return hasError(net.inbox(first), "id taken over by a newer session"); }))
        << net.log();
    std::string bob = net.node(1).openSession();
    net.node(1).submit(bob, clientMessage(alice.id(), "to the newer"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(second)).empty(); })) << net.log();
    EXPECT_TRUE(bodies(net.inbox(first)).empty());
    // The older one speaks as its own node session id again.
    net.node(0).submit(first, clientMessage(bob, "still here"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(bob)).empty(); })) << net.log();
    EXPECT_EQ(field(net.inbox(bob).back(), "senderSessionId"), first);
}

TEST_F(OwnedIds, ANewerSessionOnAnotherNodeTakesTheIdOverAndTheOlderIsTold) {
    OwnerKey alice;
    std::string first = claimOn(0, alice);
    std::string local = net.node(0).openSession();
    net.node(0).submit(local, clientMessage(alice.id(), "before"));
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(first)).size() == 1; })) << net.log();

    std::string second = claimOn(2, alice);
    ASSERT_TRUE(net.waitFor(
        [&] { return hasError(net.inbox(first), "id taken over by a newer session"); }))
        << net.log();
    // The older session speaks as its own id again, and what is sent to the
    // id, from the older session's own node too, reaches the newer one.
    net.node(0).submit(local, clientMessage(alice.id(), "after"));
    ASSERT_TRUE(net.waitFor([&] { return bodies(net.inbox(second)).size() == 1; })) << net.log();
    EXPECT_EQ(bodies(net.inbox(second)).front(), "after");
    EXPECT_EQ(bodies(net.inbox(first)).size(), 1u);
    std::string bob = net.node(3).openSession();
    net.node(0).submit(first, clientMessage(bob, "as myself"));
    ASSERT_TRUE(net.waitFor([&] { return !bodies(net.inbox(bob)).empty(); })) << net.log();
    EXPECT_EQ(field(net.inbox(bob).back(), "senderSessionId"), first);
}
