// The Router's peer state machine without a network: fake links, a fake
// directory and a clock the test moves. Lookup, connect, proven hello,
// retries, a stale record, a wrong hello, a full queue, idle close and a
// node that goes away, each in milliseconds.
#include "router.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dwrtc/dwrtc.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "node_keys.h"
#include "owner_keys.h"

namespace dwrtc {
namespace {

std::shared_ptr<const NodeKey> makeKey() {
    return std::make_shared<const NodeKey>(test::rsaNodeKey());
}

// Keys are slow to make: this node, a peer, and a node that took over the
// peer's address.
const std::shared_ptr<const NodeKey>& selfKey() {
    static const auto key = makeKey();
    return key;
}
const std::shared_ptr<const NodeKey>& peerKey() {
    static const auto key = makeKey();
    return key;
}
const std::shared_ptr<const NodeKey>& otherKey() {
    static const auto key = makeKey();
    return key;
}

class FakeLinks : public LinkTransport {
public:
    struct Link {
        std::string host;
        unsigned port = 0;
        std::vector<std::string> sent;
        bool closed = false;
        bool proven = false;
        bool aborted = false;
    };

    LinkId connect(const std::string& host, unsigned port) override {
        if (refuseConnects > 0) {
            --refuseConnects;
            return 0;
        }
        LinkId id = next_++;
        links[id] = Link{host, port, {}, false, false, false};
        connects.push_back(id);
        return id;
    }
    void send(LinkId id, std::string frame) override { links[id].sent.push_back(std::move(frame)); }
    void close(LinkId id) override { links[id].closed = true; }
    void abort(LinkId id) override { links[id].closed = links[id].aborted = true; }
    void setProven(LinkId id) override { links[id].proven = true; }
    std::string peerAddress(LinkId) const override { return "192.0.2.1"; }
    void post(std::function<void()> task) override { posted.push_back(std::move(task)); }
    void callSoon(std::chrono::milliseconds delay) override { soon.push_back(delay); }

    void runPosted() {
        while (!posted.empty()) {
            auto task = std::move(posted.front());
            posted.pop_front();
            task();
        }
    }

    int refuseConnects = 0;
    std::vector<std::chrono::milliseconds> soon;
    std::map<LinkId, Link> links;
    std::vector<LinkId> connects;
    std::deque<std::function<void()>> posted;

private:
    LinkId next_ = 1;
};

class FakeDirectory : public Directory {
public:
    void lookup(const std::string& prefix, LookupDone done) override {
        asked.push_back(prefix);
        pending.push_back(std::move(done));
    }
    void ensurePublished() override { ++ticks; }
    void lookupId(const std::string& id, IdLookupDone done, const std::string& = {}) override {
        askedIds.push_back(id);
        pendingIds.push_back(std::move(done));
    }
    void publishId(const IdClaim& claim) override { published.push_back(claim); }
    void withdrawId(const std::string& id) override { withdrawn.push_back(id); }
    void lookupChosenId(const std::string& id, ChosenLookupDone done) override {
        askedChosen.push_back(id);
        pendingChosen.push_back(std::move(done));
    }

    // Answers the oldest lookup of a chosen id with the node that holds it.
    void answerChosen(std::optional<std::string> node) {
        ASSERT_FALSE(pendingChosen.empty()) << "no lookup of a chosen id to answer";
        auto done = std::move(pendingChosen.front());
        pendingChosen.pop_front();
        done(std::move(node));
    }

    std::vector<std::string> askedChosen;
    std::deque<ChosenLookupDone> pendingChosen;

    // Answers the oldest lookup of an id.
    void answerId(std::optional<IdClaim> claim) {
        ASSERT_FALSE(pendingIds.empty()) << "no lookup of an id to answer";
        auto done = std::move(pendingIds.front());
        pendingIds.pop_front();
        done(std::move(claim));
    }

    std::vector<std::string> askedIds;
    std::deque<IdLookupDone> pendingIds;
    std::vector<IdClaim> published;
    std::vector<std::string> withdrawn;

    // Answers the oldest lookup.
    void answer(std::optional<NodeRecord> record) {
        ASSERT_FALSE(pending.empty()) << "no lookup to answer";
        auto done = std::move(pending.front());
        pending.pop_front();
        done(std::move(record));
    }

    std::vector<std::string> asked;
    std::deque<LookupDone> pending;
    int ticks = 0;
};

class RouterTest : public ::testing::Test {
protected:
    explicit RouterTest(RouterConfig c = config())
        : router_(std::move(c), selfKey(), links_, directory_, host_,
                  [this](int, std::string line) { log_ += line + "\n"; }, [this] { return now_; },
                  &stats_) {
        alice_ = makeSessionId(selfKey()->id());
        bob_ = makeSessionId(peerKey()->id());
        router_.openSession(alice_);
    }

    static RouterConfig config() {
        RouterConfig c;
        c.queueLimit = 3;
        c.linkIdleTimeout = std::chrono::seconds(60);
        c.retryDelay = std::chrono::seconds(1);
        c.ackTimeout = std::chrono::seconds(3);
        c.claimClock.skewMs = 30'000;
        c.claimClock.now = [] { return kWallNow; };
        return c;
    }

    // This node's wall clock, which dates claims (ms since 1970).
    static constexpr std::uint64_t kWallNow = 1'800'000'000'000;

    NodeRecord peerRecord(unsigned port = 4230) {
        return NodeRecord{peerKey()->id(), {"wss://127.0.0.1:" + std::to_string(port)}};
    }

    void send(const std::string& to, const std::string& body) {
        ClientMessage m;
        m.type = "SignalingMessage";
        m.recipient = to;
        m.body = body;
        router_.routeRemote(alice_, std::move(m));
    }

    void answerLookup(std::optional<NodeRecord> record) {
        directory_.answer(std::move(record));
        links_.runPosted();
    }

    // The lookup asked for now, and every retry after it, finds no record:
    // four lookups, 0.5, 1 and 2 s apart.
    // Answers every lookup of the record "none" until the lookup wait (5 s
    // by default) is over, in ticks of 250 ms.
    void missEveryLookup() {
        answerLookup(std::nullopt);
        for (int i = 0; i < 21; ++i) {
            tick(std::chrono::milliseconds(250));
            if (!directory_.pending.empty()) {
                answerLookup(std::nullopt);
            }
        }
    }

    NodeRecord goneRecord() { return NodeRecord{peerKey()->id(), {}, true}; }

    // The far end of link `id` answers our hello with its own, as `key`.
    void peerSaysHello(LinkId id, const NodeKey& key, LinkRole role = LinkRole::Responder,
                       const std::string& binding = kBinding) {
        router_.onLinkFrame(id, serializeLinkHello(key.id(), makeLinkProof(key, role, binding, {})));
    }

    // Opens the next connect()ed link and proves the peer.
    LinkId openAndProve(const NodeKey& key = *peerKey()) {
        LinkId id = links_.connects.back();
        router_.onLinkOpen(id, true, kBinding);
        peerSaysHello(id, key);
        return id;
    }

    // The one link connect()ed so far, made to host:port.
    LinkId onlyConnectTo(const std::string& host, unsigned port) {
        EXPECT_EQ(links_.connects.size(), 1u);
        if (links_.connects.empty()) {
            return 0;
        }
        LinkId id = links_.connects[0];
        EXPECT_EQ(links_.links[id].host, host);
        EXPECT_EQ(links_.links[id].port, port);
        return id;
    }

    // Another node (the peer) answers where carol's node (otherKey) was
    // tried first: that link is closed, the DHT asked, and the message
    // "hi" goes to the address the DHT gives. Returns that link.
    LinkId wrongNodeThenTheDht() {
        LinkId wrong = openAndProve(*peerKey());
        EXPECT_TRUE(links_.links[wrong].closed);
        EXPECT_EQ(directory_.asked, std::vector<std::string>{otherKey()->id()});
        answerLookup(NodeRecord{otherKey()->id(), {"wss://127.0.0.1:4250"}});
        EXPECT_EQ(links_.connects.size(), 2u);
        EXPECT_EQ(links_.links[links_.connects.back()].port, 4250u);
        LinkId id = openAndProve(*otherKey());
        EXPECT_EQ(messageFrames(id), std::vector<std::string>{"hi"});
        return id;
    }

    std::vector<std::string> messageFrames(LinkId id) {
        std::vector<std::string> out;
        for (const std::string& f : links_.links[id].sent) {
            LinkFrame frame;
            std::string why;
            if (parseLinkFrame(f, frame, why) && frame.kind == LinkFrame::Kind::Deliver) {
                out.push_back(frame.body);
            }
        }
        return out;
    }

    std::vector<std::string> deliveries(const std::string& session) {
        std::vector<std::string> out;
        host_.drain(0, [&](const HostRecord& r) {
            if (r.kind == HostRecord::Kind::Delivery && r.sessionId == session) {
                out.push_back(r.data);
            }
        });
        return out;
    }

    void tick(std::chrono::milliseconds later) {
        now_ += later;
        router_.onTick();
        links_.runPosted();
    }

    static inline const std::string kBinding = std::string(32, '\x07');

    FakeLinks links_;
    FakeDirectory directory_;
    HostQueue host_;
    std::string log_;
    RouterClock::time_point now_ = RouterClock::time_point() + std::chrono::hours(1);
    NodeStats stats_;
    Router router_;
    std::string alice_, bob_;
};

TEST_F(RouterTest, LooksUpConnectsProvesThenSendsWhatWaitedInOrder) {
    send(bob_, "one");
    send(bob_, "two");
    ASSERT_EQ(directory_.asked, std::vector<std::string>{peerKey()->id()});
    answerLookup(peerRecord(4231));
    ASSERT_EQ(links_.connects.size(), 1u);
    LinkId id = links_.connects[0];
    EXPECT_EQ(links_.links[id].host, "127.0.0.1");
    EXPECT_EQ(links_.links[id].port, 4231u);

    // Our hello goes out once the link is open, as the initiator's proof.
    router_.onLinkOpen(id, true, kBinding);
    ASSERT_EQ(links_.links[id].sent.size(), 1u);
    LinkFrame hello;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(links_.links[id].sent[0], hello, why)) << why;
    EXPECT_TRUE(verifyLinkProof(selfKey()->id(), hello.proof, LinkRole::Initiator, kBinding, {},
                                why))
        << why;
    // Nothing else before the peer is proven.
    EXPECT_TRUE(messageFrames(id).empty());

    peerSaysHello(id, *peerKey());
    EXPECT_TRUE(links_.links[id].proven);
    EXPECT_EQ(messageFrames(id), (std::vector<std::string>{"one", "two"}));
    send(bob_, "three");
    EXPECT_EQ(messageFrames(id), (std::vector<std::string>{"one", "two", "three"}));
    EXPECT_EQ(directory_.asked.size(), 1u);
}

TEST_F(RouterTest, QueueFullTellsTheSender) {
    for (const char* body : {"1", "2", "3", "4"}) {
        send(bob_, body);
    }
    auto got = deliveries(alice_);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], serializeError("queue full", bob_));
    answerLookup(peerRecord());
    openAndProve();
    EXPECT_EQ(messageFrames(links_.connects[0]), (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(RouterTest, MissingRecordIsLookedForDuringTheWaitThenUnreachable) {
    send(bob_, "hello?");
    answerLookup(std::nullopt);
    EXPECT_EQ(directory_.asked.size(), 1u);
    tick(std::chrono::milliseconds(100));  // not yet: the retry waits 500 ms
    EXPECT_EQ(directory_.asked.size(), 1u);
    tick(std::chrono::milliseconds(500));  // 0.6 s
    EXPECT_EQ(directory_.asked.size(), 2u);
    answerLookup(std::nullopt);
    tick(std::chrono::milliseconds(600));  // now 1 s between them
    EXPECT_EQ(directory_.asked.size(), 2u);
    tick(std::chrono::milliseconds(500));  // 1.7 s
    EXPECT_EQ(directory_.asked.size(), 3u);
    answerLookup(std::nullopt);
    tick(std::chrono::milliseconds(2100));  // then 2 s: 3.8 s
    EXPECT_EQ(directory_.asked.size(), 4u);
    answerLookup(std::nullopt);
    tick(std::chrono::milliseconds(1100));  // the last at the end of the wait
    EXPECT_EQ(directory_.asked.size(), 4u);
    tick(std::chrono::milliseconds(100));  // 5 s
    EXPECT_EQ(directory_.asked.size(), 5u);
    EXPECT_TRUE(deliveries(alice_).empty()) << "nothing is answered while the wait lasts";
    answerLookup(std::nullopt);
    // The node may be live and not yet findable: "unreachable", never "not
    // found", which would tell the sender the session does not exist.
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeError("unreachable", bob_)});
    EXPECT_TRUE(links_.connects.empty());
}

TEST_F(RouterTest, RecordThatAppearsLateInTheWaitDeliversEverythingInOrder) {
    send(bob_, "1");
    answerLookup(std::nullopt);
    tick(std::chrono::milliseconds(600));
    send(bob_, "2");
    answerLookup(std::nullopt);
    tick(std::chrono::milliseconds(1100));
    answerLookup(std::nullopt);
    send(bob_, "3");
    tick(std::chrono::milliseconds(2100));
    answerLookup(peerRecord());  // 3.8 s after the first message
    LinkId id = openAndProve();
    EXPECT_EQ(messageFrames(id), (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, LookupThatIsNeverAnsweredEndsWithTheWait) {
    send(bob_, "hello?");
    tick(std::chrono::milliseconds(4900));
    EXPECT_TRUE(deliveries(alice_).empty());
    tick(std::chrono::milliseconds(200));
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeError("unreachable", bob_)});
    answerLookup(peerRecord());  // too late: ignored
    EXPECT_TRUE(links_.connects.empty());
}

TEST_F(RouterTest, WithdrawnRecordIsNotFoundAtOnce) {
    send(bob_, "hello?");
    answerLookup(goneRecord());
    EXPECT_EQ(directory_.asked.size(), 1u);
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(bob_)});
    send(bob_, "again");  // remembered for the retry delay
    EXPECT_EQ(directory_.asked.size(), 1u);
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(bob_)});
}

TEST_F(RouterTest, RecordThatAppearsOnRetryIsUsed) {
    send(bob_, "early");
    answerLookup(std::nullopt);
    tick(std::chrono::milliseconds(600));
    answerLookup(peerRecord());
    openAndProve();
    EXPECT_EQ(messageFrames(links_.connects[0]), std::vector<std::string>{"early"});
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, UnreachableNodeIsLookedUpOnceMoreThenReportedUnreachable) {
    links_.refuseConnects = 2;
    send(bob_, "anyone?");
    answerLookup(peerRecord());
    EXPECT_EQ(directory_.asked.size(), 2u);  // the cached address may be stale
    answerLookup(peerRecord());
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("unreachable", bob_)});
}

TEST_F(RouterTest, UnreachableNodeIsAnsweredAtOnceUntilTheRetryDelayThenTriedAgain) {
    links_.refuseConnects = 2;
    send(bob_, "1");
    answerLookup(peerRecord());
    answerLookup(peerRecord());
    ASSERT_EQ(deliveries(alice_).size(), 1u);
    // Within the retry delay: no lookup, no connect, no new log line.
    std::string logged = log_;
    for (const char* body : {"2", "3", "4", "5"}) {
        send(bob_, body);
    }
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>(4, serializeError("unreachable", bob_)));
    EXPECT_EQ(directory_.asked.size(), 2u);
    EXPECT_TRUE(links_.connects.empty());
    EXPECT_EQ(log_, logged);
    // After it, the next message tries the known address once, without a
    // lookup; the node is back.
    now_ += std::chrono::milliseconds(1001);
    send(bob_, "6");
    ASSERT_EQ(links_.connects.size(), 1u);
    EXPECT_EQ(directory_.asked.size(), 2u);
    LinkId id = openAndProve();
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"6"});
    EXPECT_NE(log_.find("is reachable again"), std::string::npos);
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, RetryThatFailsAgainIsAnsweredAtOnceAgainAndLoggedOnce) {
    links_.refuseConnects = 3;
    send(bob_, "1");
    answerLookup(peerRecord());
    answerLookup(peerRecord());
    now_ += std::chrono::milliseconds(1001);
    send(bob_, "2");  // one connect, refused: no second lookup
    EXPECT_EQ(directory_.asked.size(), 2u);
    send(bob_, "3");
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>(3, serializeError("unreachable", bob_)));
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = log_.find("is unreachable", at)) != std::string::npos; ++at) {
        ++lines;
    }
    EXPECT_EQ(lines, 1u);
}

TEST_F(RouterTest, MissingNodeIsAnsweredUnreachableAtOnceThenLookedUpOnce) {
    const std::vector<std::string> unreachable{serializeError("unreachable", bob_)};
    send(bob_, "1");
    missEveryLookup();
    ASSERT_EQ(deliveries(alice_), unreachable);
    ASSERT_EQ(directory_.asked.size(), 5u);
    send(bob_, "2");
    EXPECT_EQ(deliveries(alice_), unreachable);
    EXPECT_EQ(directory_.asked.size(), 5u);
    now_ += std::chrono::milliseconds(1001);
    send(bob_, "3");
    ASSERT_EQ(directory_.asked.size(), 6u);
    answerLookup(std::nullopt);  // one miss is the answer now
    EXPECT_EQ(deliveries(alice_), unreachable);
    // Forgotten once unused for a while: a later message starts afresh.
    tick(std::chrono::seconds(31));
    send(bob_, "4");
    EXPECT_EQ(directory_.asked.size(), 7u);
}

TEST_F(RouterTest, LinkThatAcknowledgesNothingIsClosedAndItsSendersTold) {
    send(bob_, "1");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    send(bob_, "2");
    tick(std::chrono::seconds(2));
    EXPECT_FALSE(links_.links[id].closed);
    tick(std::chrono::milliseconds(1500));
    EXPECT_TRUE(links_.links[id].aborted);  // what it still holds is dropped
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>(2, serializeError("unreachable", bob_)));
    // Answered at once for the retry delay, then tried again.
    send(bob_, "3");
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("unreachable", bob_)});
    EXPECT_EQ(links_.connects.size(), 1u);
    now_ += std::chrono::milliseconds(1001);
    send(bob_, "4");
    ASSERT_EQ(links_.connects.size(), 2u);
    LinkId second = openAndProve();
    EXPECT_EQ(messageFrames(second), std::vector<std::string>{"4"});
}

TEST_F(RouterTest, AcknowledgementsKeepABusyLinkOpen) {
    send(bob_, "1");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    for (int i = 0; i < 5; ++i) {
        send(bob_, "more");
        router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
        tick(std::chrono::seconds(2));
    }
    EXPECT_FALSE(links_.links[id].closed);
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, ConnectThatFailsLaterCountsAsUnreachable) {
    send(bob_, "x");
    answerLookup(peerRecord());
    router_.onLinkClosed(links_.connects[0], true, false);
    ASSERT_EQ(directory_.asked.size(), 2u);
    answerLookup(peerRecord(4232));
    ASSERT_EQ(links_.connects.size(), 2u);
    openAndProve();
    EXPECT_EQ(messageFrames(links_.connects[1]), std::vector<std::string>{"x"});
}

TEST_F(RouterTest, StaleRecordThatReachesAnotherNodeIsLookedUpAgain) {
    send(bob_, "for bob");
    answerLookup(peerRecord());
    LinkId first = links_.connects[0];
    router_.onLinkOpen(first, true, kBinding);
    peerSaysHello(first, *otherKey());  // a valid hello, but of another node
    EXPECT_TRUE(links_.links[first].closed);
    EXPECT_TRUE(messageFrames(first).empty());
    EXPECT_NE(log_.find("reached node " + otherKey()->id() + " instead"), std::string::npos);
    ASSERT_EQ(directory_.asked.size(), 2u);
    answerLookup(peerRecord(4299));
    openAndProve();
    EXPECT_EQ(messageFrames(links_.connects[1]), std::vector<std::string>{"for bob"});
}

TEST_F(RouterTest, HelloThatProvesNothingClosesTheLinkAndSendsNothing) {
    send(bob_, "secret");
    answerLookup(peerRecord());
    LinkId id = links_.connects[0];
    router_.onLinkOpen(id, true, kBinding);
    // Signed for another TLS session, and then in the initiator's role.
    peerSaysHello(id, *peerKey(), LinkRole::Responder, std::string(32, '\x08'));
    EXPECT_TRUE(links_.links[id].closed);
    EXPECT_FALSE(links_.links[id].proven);
    EXPECT_TRUE(messageFrames(id).empty());
    EXPECT_NE(log_.find("does not prove it"), std::string::npos);
    router_.onLinkClosed(id, true, true);  // the close completes: look up again
    answerLookup(peerRecord());
    LinkId second = links_.connects[1];
    router_.onLinkOpen(second, true, kBinding);
    peerSaysHello(second, *peerKey(), LinkRole::Initiator);
    EXPECT_TRUE(links_.links[second].closed);
    router_.onLinkClosed(second, true, true);
    // Two links that proved nothing: the sender is told.
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("unreachable", bob_)});
}

TEST_F(RouterTest, IdleLinkIsClosedAndTheNextMessageReconnectsWithoutLookup) {
    send(bob_, "first");
    answerLookup(peerRecord());
    LinkId first = openAndProve();
    router_.onLinkFrame(first, serializeLinkAck(peerKey()->id(), 1));
    tick(std::chrono::seconds(30));
    EXPECT_FALSE(links_.links[first].closed);
    tick(std::chrono::seconds(31));
    EXPECT_TRUE(links_.links[first].closed);
    // A message sent before the close completes opens a new link rather
    // than waiting in the old one's outbox.
    send(bob_, "second");
    ASSERT_EQ(links_.connects.size(), 2u);
    router_.onLinkClosed(first, true, true);
    LinkId second = openAndProve();
    EXPECT_EQ(messageFrames(second), std::vector<std::string>{"second"});
    EXPECT_EQ(directory_.asked.size(), 1u);
}

TEST_F(RouterTest, NodeThatWentAwayIsReconnectedAndThenLookedUp) {
    send(bob_, "1");
    answerLookup(peerRecord());
    LinkId first = openAndProve();
    router_.onLinkFrame(first, serializeLinkAck(peerKey()->id(), 1));
    router_.onLinkClosed(first, true, true);  // the far node closed it
    send(bob_, "2");
    ASSERT_EQ(links_.connects.size(), 2u);  // the cached address first
    router_.onLinkClosed(links_.connects[1], true, false);
    ASSERT_EQ(directory_.asked.size(), 2u);  // then the DHT
    answerLookup(goneRecord());              // it stopped, and said so
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(bob_)});
}

TEST_F(RouterTest, InboundPeerIsAnsweredOnlyOnceProvenAndSpeaksForItsOwnSessions) {
    const LinkId in = 1000;
    router_.onLinkOpen(in, false, kBinding);
    EXPECT_TRUE(links_.links[in].sent.empty());  // the initiator speaks first
    peerSaysHello(in, *peerKey(), LinkRole::Initiator);
    ASSERT_EQ(links_.links[in].sent.size(), 1u);
    LinkFrame answer;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(links_.links[in].sent[0], answer, why)) << why;
    EXPECT_TRUE(
        verifyLinkProof(selfKey()->id(), answer.proof, LinkRole::Responder, kBinding, {}, why))
        << why;

    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, alice_, "offer", "sdp"));
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeDelivery("offer", bob_, alice_, "sdp")});
    // A session that is not here is answered on the same link, naming the
    // message: the second on this link.
    std::string gone = makeSessionId(selfKey()->id());
    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, gone, "offer", "sdp"));
    EXPECT_EQ(links_.links[in].sent.back(),
              serializeLinkNotFound(selfKey()->id(), bob_, gone, 2));

    std::string carol = makeSessionId(otherKey()->id());
    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), carol, alice_, "offer", "x"));
    EXPECT_TRUE(links_.links[in].closed);
    EXPECT_TRUE(deliveries(alice_).empty());
    // Frames after the refusal are not read.
    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, alice_, "offer", "late"));
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, NotFoundFromThePeerReachesTheSender) {
    send(bob_, "to a closed session");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), alice_, bob_));
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(bob_)});
    // But not about sessions of a third node.
    std::string carol = makeSessionId(otherKey()->id());
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), alice_, carol));
    EXPECT_TRUE(links_.links[id].closed);
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, NotFoundBeforeTheAckIsTheOnlyAnswerWhenTheLinkThenBreaks) {
    send(bob_, "to a closed session");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    send(bob_, "to a closed session, again");
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), alice_, bob_));
    router_.onLinkClosed(id, true, true);  // before the ack
    // One "not found" for the first, one "unreachable" for the second.
    EXPECT_EQ(deliveries(alice_),
              (std::vector<std::string>{serializeNotFound(bob_),
                                        serializeError("unreachable", bob_)}));
}

TEST_F(RouterTest, WhatTheLinkLostBeforeItsAckIsReportedToItsSenders) {
    send(bob_, "1");
    send(bob_, "2");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    send(bob_, "3");
    // The peer handled the first two, then the link broke.
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 2));
    router_.onLinkClosed(id, true, true);
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeError("unreachable", bob_)});
    EXPECT_NE(log_.find("1 messages not acknowledged"), std::string::npos) << log_;
}

TEST_F(RouterTest, AcknowledgedMessagesAreNotReportedLost) {
    send(bob_, "1");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    send(bob_, "2");
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
    router_.onLinkClosed(id, true, true);
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterTest, AckForMoreThanWasSentEndsTheLink) {
    send(bob_, "1");
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 2));
    EXPECT_TRUE(links_.links[id].closed);
    EXPECT_NE(log_.find("acknowledged more than it was sent"), std::string::npos);
    // The one message on it was not acknowledged: its sender hears.
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeError("unreachable", bob_)});
}

TEST_F(RouterTest, ReceiverAcksBatchesAtOnceAndTheRestMomentsLater) {
    const LinkId in = 1000;
    router_.onLinkOpen(in, false, kBinding);
    peerSaysHello(in, *peerKey(), LinkRole::Initiator);
    auto acks = [&] {
        std::vector<std::uint32_t> out;
        for (const std::string& f : links_.links[in].sent) {
            LinkFrame frame;
            std::string why;
            if (parseLinkFrame(f, frame, why) && frame.kind == LinkFrame::Kind::Ack) {
                out.push_back(frame.count);
            }
        }
        return out;
    };
    router_.onLinkMessageEnd(in);  // nothing handled: nothing to say
    EXPECT_TRUE(links_.soon.empty());
    std::string gone = makeSessionId(selfKey()->id());
    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, alice_, "offer", "a"));
    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, gone, "offer", "b"));
    router_.onLinkMessageEnd(in);
    router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, alice_, "offer", "c"));
    router_.onLinkMessageEnd(in);
    EXPECT_TRUE(acks().empty());  // three wait: a moment later, in one ack
    ASSERT_EQ(links_.soon.size(), 1u);
    EXPECT_LE(links_.soon[0], std::chrono::milliseconds(50));
    router_.onSoon();
    EXPECT_EQ(acks(), std::vector<std::uint32_t>{3});
    for (int i = 0; i < 70; ++i) {
        router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), bob_, alice_, "c", "x"));
    }
    router_.onLinkMessageEnd(in);  // a batch: acknowledged at once
    EXPECT_EQ(acks(), (std::vector<std::uint32_t>{3, 70}));
    router_.onSoon();
    EXPECT_EQ(acks().size(), 2u);
}

TEST_F(RouterTest, TickKeepsTheRecordPublished) {
    tick(std::chrono::seconds(1));
    tick(std::chrono::seconds(1));
    EXPECT_EQ(directory_.ticks, 2);
}

TEST_F(RouterTest, CountsWhatItDoesForTheStatusPage) {
    auto get = [](const NodeStats::Counter& c) { return NodeStats::get(c); };
    send(bob_, "1");
    now_ += std::chrono::milliseconds(7);  // the lookup takes 7 ms
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    send(bob_, "2");
    EXPECT_EQ(get(stats_.links.sentOverLinks), 2u);
    EXPECT_EQ(get(stats_.links.linksOut), 1u);
    EXPECT_EQ(get(stats_.links.lookups), 1u);
    EXPECT_EQ(get(stats_.links.lookupsFailed), 0u);
    EXPECT_EQ(get(stats_.links.lookupUsSum), 7000u);
    EXPECT_EQ(get(stats_.links.lookupBuckets[2]), 1u);  // (5, 10] ms
    // A message in from the peer for alice, one for a closed session.
    router_.onLinkFrame(id, serializeLinkDeliver(peerKey()->id(), bob_, alice_, "t", "hi"));
    router_.onLinkFrame(id, serializeLinkDeliver(peerKey()->id(), bob_,
                                                 makeSessionId(selfKey()->id()), "t", "?"));
    EXPECT_EQ(get(stats_.links.receivedOverLinks), 2u);
    EXPECT_EQ(get(stats_.links.deliveredFromLinks), 1u);
    // The link breaks with both unacknowledged: two "unreachable".
    router_.onLinkClosed(id, true, true);
    EXPECT_EQ(get(stats_.links.unreachable), 2u);
    EXPECT_EQ(get(stats_.links.linksOut), 0u);
    std::string carol = makeSessionId(otherKey()->id());  // a node to look up: waits
    for (const char* body : {"3", "4", "5", "6"}) {
        send(carol, body);
    }
    EXPECT_EQ(get(stats_.links.queueFull), 1u);
}

// --- Siblings ----------------------------------------------------------------

// The frames of one kind a link carried, parsed.
std::vector<LinkFrame> framesOf(const std::vector<std::string>& sent, LinkFrame::Kind kind) {
    std::vector<LinkFrame> out;
    for (const std::string& text : sent) {
        LinkFrame f;
        std::string why;
        if (parseLinkFrame(text, f, why) && f.kind == kind) {
            out.push_back(f);
        }
    }
    return out;
}

TEST_F(RouterTest, SiblingsGoToProvenPeersThatTakeThemWhenTheyChange) {
    std::vector<LinkSibling> siblings{{otherKey()->id(), 4240}};
    router_.setSiblings(siblings);  // no link yet: nothing to send on
    const LinkId in = 1000;
    router_.onLinkOpen(in, false, kBinding);
    EXPECT_TRUE(links_.links[in].sent.empty());  // not before the peer is proven
    peerSaysHello(in, *peerKey(), LinkRole::Initiator);
    auto sent = framesOf(links_.links[in].sent, LinkFrame::Kind::Siblings);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].node, selfKey()->id());
    EXPECT_EQ(sent[0].siblings, siblings);

    router_.setSiblings(siblings);  // the same: nothing new
    EXPECT_EQ(framesOf(links_.links[in].sent, LinkFrame::Kind::Siblings).size(), 1u);
    router_.setSiblings({});  // the sibling exited
    sent = framesOf(links_.links[in].sent, LinkFrame::Kind::Siblings);
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_TRUE(sent[1].siblings.empty());

    // A peer whose hello does not say it takes them gets none: it would
    // close the link on a frame it does not know.
    const LinkId old = 1001;
    router_.onLinkOpen(old, false, kBinding);
    std::string hello = serializeLinkHello(
        peerKey()->id(), makeLinkProof(*peerKey(), LinkRole::Initiator, kBinding, {}));
    hello.replace(hello.find(",\"siblings\":1"), 13, "");
    router_.onLinkFrame(old, hello);
    ASSERT_TRUE(links_.links[old].proven);
    router_.setSiblings(siblings);
    EXPECT_TRUE(framesOf(links_.links[old].sent, LinkFrame::Kind::Siblings).empty());
    EXPECT_EQ(framesOf(links_.links[in].sent, LinkFrame::Kind::Siblings).size(), 3u);
}

TEST_F(RouterTest, LinksOutsideCountProvenPeersThatAreNotSiblings) {
    const LinkId in = 1000;
    router_.onLinkOpen(in, false, kBinding);
    tick(std::chrono::seconds(1));
    EXPECT_EQ(NodeStats::get(stats_.links.linksOutside), 0u);  // not proven yet
    peerSaysHello(in, *peerKey(), LinkRole::Initiator);
    tick(std::chrono::seconds(1));
    EXPECT_EQ(NodeStats::get(stats_.links.linksOutside), 1u);
    router_.setSiblings({{peerKey()->id(), 4240}});  // another worker of this nginx
    tick(std::chrono::seconds(1));
    EXPECT_EQ(NodeStats::get(stats_.links.linksOutside), 0u);
}

class RouterSiblingTest : public RouterTest {
protected:
    RouterSiblingTest() { carol_ = makeSessionId(otherKey()->id()); }

    // The peer (bob's node) connected to this node and says that carol's
    // node is its sibling, at port on its own host.
    LinkId peerNamesSibling(unsigned port) {
        const LinkId in = 1000;
        router_.onLinkOpen(in, false, kBinding);
        peerSaysHello(in, *peerKey(), LinkRole::Initiator);
        router_.onLinkFrame(in, serializeLinkSiblings(peerKey()->id(),
                                                      {{otherKey()->id(), port}}));
        return in;
    }

    std::string carol_;
};

TEST_F(RouterSiblingTest, NodeIsReachedWhereItsSiblingSaidWithoutALookup) {
    peerNamesSibling(4241);
    send(carol_, "hi");
    EXPECT_TRUE(directory_.asked.empty());
    // The host the peer's link came from; the port it named.
    LinkId id = onlyConnectTo("192.0.2.1", 4241);
    openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"hi"});
}

TEST_F(RouterSiblingTest, SiblingNamedWhileALookupWaitsIsTriedAtOnce) {
    send(carol_, "1");
    ASSERT_EQ(directory_.asked.size(), 1u);
    answerLookup(std::nullopt);  // its record is not stored yet
    send(carol_, "2");
    peerNamesSibling(4241);
    ASSERT_EQ(links_.connects.size(), 1u);
    LinkId id = openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), (std::vector<std::string>{"1", "2"}));
    tick(std::chrono::seconds(2));
    EXPECT_EQ(directory_.asked.size(), 1u);  // no more lookups
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterSiblingTest, WrongSiblingAddressFallsBackToTheDht) {
    peerNamesSibling(4241);
    send(carol_, "hi");
    ASSERT_EQ(links_.connects.size(), 1u);
    LinkId id = wrongNodeThenTheDht();
    EXPECT_TRUE(deliveries(alice_).empty());

    // A hint that no one answers at costs one connect, then the DHT.
    send(bob_, "to bob");
    answerLookup(peerRecord());
    openAndProve();
    router_.onLinkFrame(links_.connects.back(),
                        serializeLinkSiblings(peerKey()->id(), {{otherKey()->id(), 4242}}));
    router_.onLinkClosed(id, true, true);  // carol's node's link breaks
    send(carol_, "again");  // the cached address first
    ASSERT_EQ(links_.connects.size(), 4u);
    router_.onLinkClosed(links_.connects[3], true, false);
    ASSERT_EQ(links_.connects.size(), 5u);  // then where the sibling said
    EXPECT_EQ(links_.links[links_.connects[4]].port, 4242u);
    router_.onLinkClosed(links_.connects[4], true, false);
    EXPECT_EQ(directory_.asked.size(), 3u);  // then the DHT
}

TEST_F(RouterSiblingTest, SiblingsOfAPeerThisNodeConnectedToAreOnItsRecordsHost) {
    send(bob_, "to bob");
    answerLookup(peerRecord(4230));  // at 127.0.0.1
    LinkId toBob = openAndProve();
    router_.onLinkFrame(toBob,
                        serializeLinkSiblings(peerKey()->id(), {{otherKey()->id(), 4241}}));
    send(carol_, "hi");
    ASSERT_EQ(links_.connects.size(), 2u);
    EXPECT_EQ(links_.links[links_.connects[1]].host, "127.0.0.1");
    EXPECT_EQ(links_.links[links_.connects[1]].port, 4241u);
}

TEST_F(RouterSiblingTest, HintsExpireAndMalformedListsEndTheLink) {
    LinkId in = peerNamesSibling(4241);
    tick(std::chrono::seconds(61));
    send(carol_, "hi");
    EXPECT_TRUE(links_.connects.empty());
    EXPECT_EQ(directory_.asked.size(), 1u);

    router_.onLinkFrame(in, "{\"v\":2,\"t\":\"siblings\",\"node\":\"" + peerKey()->id() +
                                "\",\"siblings\":\"nonsense\"}");
    EXPECT_TRUE(links_.links[in].closed);
}

// This node's own siblings (the other workers of its nginx) are on its host:
// reached at siblingHost and their port, whatever their records say.
class RouterOwnSiblingTest : public RouterTest {
protected:
    RouterOwnSiblingTest() : RouterTest(withSiblingHost()) {
        carol_ = makeSessionId(otherKey()->id());
    }

    static RouterConfig withSiblingHost() {
        RouterConfig c = config();
        c.siblingHost = "127.0.0.1";
        c.publicHost = "198.51.100.7";
        c.siblingPortFrom = 4240;
        c.siblingPortTo = 4250;
        return c;
    }

    // carol's node is another worker of this nginx, its links at port.
    void carolIsASibling(unsigned port = 4241) { router_.setSiblings({{otherKey()->id(), port}}); }

    std::string carol_;
};

TEST_F(RouterOwnSiblingTest, SiblingIsReachedOnThisHostWithoutALookup) {
    carolIsASibling();
    send(carol_, "hi");
    EXPECT_TRUE(directory_.asked.empty());
    LinkId id = onlyConnectTo("127.0.0.1", 4241);
    openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"hi"});
    router_.onLinkFrame(id, serializeLinkAck(otherKey()->id(), 1));

    // The link breaks: the next message goes to the same place.
    router_.onLinkClosed(id, true, true);
    send(carol_, "again");
    ASSERT_EQ(links_.connects.size(), 2u);
    EXPECT_EQ(links_.links[links_.connects[1]].host, "127.0.0.1");
    EXPECT_EQ(links_.links[links_.connects[1]].port, 4241u);
    LinkId again = openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(again), std::vector<std::string>{"again"});
    EXPECT_TRUE(directory_.asked.empty());
    EXPECT_TRUE(deliveries(alice_).empty());
}

// The public address a sibling publishes does not lead back to this host
// (here: nothing answers there). Once the sibling is listed, the messages
// that follow reach it here, and its senders hear nothing more.
TEST_F(RouterOwnSiblingTest, SiblingWhosePublicAddressFailsIsReachedOnceListed) {
    send(carol_, "1");
    answerLookup(NodeRecord{otherKey()->id(), {"wss://198.51.100.7:4300"}});
    ASSERT_EQ(links_.connects.size(), 1u);
    router_.onLinkClosed(links_.connects[0], true, false);
    answerLookup(NodeRecord{otherKey()->id(), {"wss://198.51.100.7:4300"}});
    ASSERT_EQ(links_.connects.size(), 2u);
    router_.onLinkClosed(links_.connects[1], true, false);
    auto told = deliveries(alice_);
    ASSERT_EQ(told.size(), 1u);  // "1" was answered unreachable
    EXPECT_NE(told[0].find("unreachable"), std::string::npos);

    carolIsASibling();
    send(carol_, "2");
    ASSERT_EQ(links_.connects.size(), 3u);
    EXPECT_EQ(links_.links[links_.connects[2]].host, "127.0.0.1");
    LinkId id = openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"2"});
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterOwnSiblingTest, SiblingListedWhileALookupWaitsIsTriedAtOnce) {
    send(carol_, "1");
    ASSERT_EQ(directory_.asked.size(), 1u);
    answerLookup(std::nullopt);  // its record is not stored yet
    carolIsASibling();
    ASSERT_EQ(links_.connects.size(), 1u);
    EXPECT_EQ(links_.links[links_.connects[0]].port, 4241u);
    LinkId id = openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"1"});
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterOwnSiblingTest, AnotherNodeAtTheSiblingsPortFallsBackToTheDht) {
    carolIsASibling();
    send(carol_, "hi");
    onlyConnectTo("127.0.0.1", 4241);
    wrongNodeThenTheDht();
    EXPECT_TRUE(deliveries(alice_).empty());
}

// A sibling that has just started is in the DHT before it is listed: its
// record, at this node's public host and one of this nginx's link ports, is
// tried on this host first.
TEST_F(RouterOwnSiblingTest, UnlistedSiblingAtThisNodesPublicHostIsReachedHere) {
    send(carol_, "1");
    answerLookup(NodeRecord{otherKey()->id(), {"wss://198.51.100.7:4243"}});
    LinkId id = onlyConnectTo("127.0.0.1", 4243);
    openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"1"});
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterOwnSiblingTest, UnlistedSiblingNotAnsweringHereIsTriedAtItsRecord) {
    send(carol_, "1");
    answerLookup(NodeRecord{otherKey()->id(), {"wss://198.51.100.7:4243"}});
    onlyConnectTo("127.0.0.1", 4243);
    router_.onLinkClosed(links_.connects[0], true, false);
    answerLookup(NodeRecord{otherKey()->id(), {"wss://198.51.100.7:4243"}});
    ASSERT_EQ(links_.connects.size(), 2u);
    EXPECT_EQ(links_.links[links_.connects[1]].host, "198.51.100.7");
    LinkId id = openAndProve(*otherKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"1"});
    EXPECT_TRUE(deliveries(alice_).empty());
}

// A record at another host, or at a port that is not one of this nginx's
// link ports, is not a sibling: no stranger's record makes this node
// connect to other ports of its own host.
TEST_F(RouterOwnSiblingTest, RecordsOfOtherHostsOrPortsAreTakenAsTheyAre) {
    send(carol_, "1");
    answerLookup(NodeRecord{otherKey()->id(), {"wss://198.51.100.7:6379"}});
    onlyConnectTo("198.51.100.7", 6379);
    send(bob_, "2");
    answerLookup(NodeRecord{peerKey()->id(), {"wss://203.0.113.9:4243"}});
    ASSERT_EQ(links_.connects.size(), 2u);
    EXPECT_EQ(links_.links[links_.connects[1]].host, "203.0.113.9");
}

// --- Key-owned ids -------------------------------------------------------------

// A router of its own per test (r), which holds messages for ids that are
// away: up to 4 per id, for 2 s.
class RouterOwnedIdTest : public RouterTest {
protected:
    static RouterConfig ownedConfig() {
        RouterConfig c = config();
        c.holdMessages = 4;
        c.holdTime = std::chrono::seconds(2);
        return c;
    }

    IdClaim claimOn(const NodeKey& node, std::uint64_t time) {
        IdClaim c = carol_.claim(node.id(), "challenge", time);
        c.links = {"wss://127.0.0.1:4230"};
        return c;
    }

    void sendTo(Router& r, const std::string& to, const std::string& body) {
        ClientMessage m;
        m.type = "SignalingMessage";
        m.recipient = to;
        m.body = body;
        r.routeRemote(alice_, std::move(m));
    }

    void answerId(std::optional<IdClaim> claim) {
        directory_.answerId(std::move(claim));
        links_.runPosted();
    }

    test::OwnerKey carol_;
};

TEST_F(RouterOwnedIdTest, IsRoutedByItsClaimWithoutALookupOfTheNode) {
    Router r(ownedConfig(), selfKey(), links_, directory_, host_, [](int, std::string) {},
             [this] { return now_; });
    r.openSession(alice_);
    sendTo(r, carol_.id(), "hi carol");
    ASSERT_EQ(directory_.askedIds, std::vector<std::string>{carol_.id()});
    answerId(claimOn(*peerKey(), 1000));
    EXPECT_TRUE(directory_.asked.empty()) << "the claim's link address is used";
    ASSERT_EQ(links_.connects.size(), 1u);
    LinkId id = links_.connects[0];
    r.onLinkOpen(id, true, kBinding);
    r.onLinkFrame(id, serializeLinkHello(peerKey()->id(),
                                         makeLinkProof(*peerKey(), LinkRole::Responder, kBinding, {})));
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"hi carol"});
}

TEST_F(RouterOwnedIdTest, WhatComesBackIsHeldInOrderAndGoesWhereTheNewerClaimSays) {
    Router r(ownedConfig(), selfKey(), links_, directory_, host_, [](int, std::string) {},
             [this] { return now_; });
    r.openSession(alice_);
    sendTo(r, carol_.id(), "m1");
    answerId(claimOn(*peerKey(), 1000));
    LinkId first = links_.connects[0];
    r.onLinkOpen(first, true, kBinding);
    r.onLinkFrame(first, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                            LinkRole::Responder, kBinding, {})));
    sendTo(r, carol_.id(), "m2");
    ASSERT_EQ(messageFrames(first), (std::vector<std::string>{"m1", "m2"}));
    // Carol's session there closed: the node answers both, the second first.
    r.onLinkFrame(first, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 2));
    sendTo(r, carol_.id(), "m3");  // while she is away: held, after m2
    r.onLinkFrame(first, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 1));
    r.onLinkFrame(first, serializeLinkAck(peerKey()->id(), 2));
    EXPECT_TRUE(deliveries(alice_).empty()) << "no one is told while the id may come back";

    // The id's claim is looked up while it is away: the same claim is no news.
    now_ += std::chrono::milliseconds(300);
    r.onSoon();
    ASSERT_EQ(directory_.askedIds.size(), 2u);
    answerId(claimOn(*peerKey(), 1000));
    EXPECT_EQ(links_.connects.size(), 1u);
    // Then she claims the id on another node.
    now_ += std::chrono::milliseconds(300);
    r.onSoon();
    ASSERT_EQ(directory_.askedIds.size(), 3u);
    answerId(claimOn(*otherKey(), 2000));
    ASSERT_EQ(links_.connects.size(), 2u);
    LinkId second = links_.connects[1];
    r.onLinkOpen(second, true, kBinding);
    r.onLinkFrame(second, serializeLinkHello(otherKey()->id(), makeLinkProof(*otherKey(),
                                             LinkRole::Responder, kBinding, {})));
    EXPECT_EQ(messageFrames(second), (std::vector<std::string>{"m1", "m2", "m3"}));
    EXPECT_TRUE(deliveries(alice_).empty());
}

// A directory that can follow ids (a DHT listen): tell() is a claim
// stored under a followed id.
class FollowingDirectory : public FakeDirectory {
public:
    std::uint64_t followId(const std::string& id, IdClaimed claimed) override {
        followed[id] = std::move(claimed);
        return ++lastToken;
    }
    void unfollowId(const std::string& id, std::uint64_t) override {
        followed.erase(id);
        unfollowed.push_back(id);
    }
    void tell(const std::string& id, const IdClaim& claim) {
        ASSERT_TRUE(followed.count(id)) << id << " is not followed";
        followed[id](claim);
    }

    std::map<std::string, IdClaimed> followed;
    std::vector<std::string> unfollowed;
    std::uint64_t lastToken = 0;
};

TEST_F(RouterOwnedIdTest, AnAwayIdIsFollowedAndItsNextClaimIsTakenAtOnce) {
    FollowingDirectory directory;
    RouterConfig config = ownedConfig();
    config.holdTime = std::chrono::seconds(10);
    Router r(config, selfKey(), links_, directory, host_, [](int, std::string) {},
             [this] { return now_; });
    r.openSession(alice_);
    sendTo(r, carol_.id(), "m1");
    directory.answerId(claimOn(*peerKey(), 1000));
    links_.runPosted();
    LinkId first = links_.connects[0];
    r.onLinkOpen(first, true, kBinding);
    r.onLinkFrame(first, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                            LinkRole::Responder, kBinding, {})));
    EXPECT_TRUE(directory.followed.empty()) << "an id that is where it is is not followed";
    r.onLinkFrame(first, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 1));
    ASSERT_TRUE(directory.followed.count(carol_.id())) << "away: followed";

    // Followed, it is not looked up four times a second, only now and then.
    now_ += std::chrono::milliseconds(300);
    r.onSoon();
    EXPECT_EQ(directory.askedIds.size(), 1u);
    now_ += std::chrono::milliseconds(1800);
    r.onSoon();
    ASSERT_EQ(directory.askedIds.size(), 2u) << "a lookup covers what a listen missed";
    directory.answerId(claimOn(*peerKey(), 1000));
    links_.runPosted();

    // The claim it left is no news; her next one is taken as it comes.
    directory.tell(carol_.id(), claimOn(*peerKey(), 1000));
    links_.runPosted();
    EXPECT_EQ(links_.connects.size(), 1u);
    directory.tell(carol_.id(), claimOn(*otherKey(), 2000));
    links_.runPosted();
    ASSERT_EQ(links_.connects.size(), 2u);
    EXPECT_TRUE(directory.followed.empty()) << "back: no longer followed";
    EXPECT_EQ(directory.unfollowed, std::vector<std::string>{carol_.id()});
    LinkId second = links_.connects[1];
    r.onLinkOpen(second, true, kBinding);
    r.onLinkFrame(second, serializeLinkHello(otherKey()->id(), makeLinkProof(*otherKey(),
                                             LinkRole::Responder, kBinding, {})));
    EXPECT_EQ(messageFrames(second), std::vector<std::string>{"m1"});
}

TEST_F(RouterOwnedIdTest, AFollowEndsWhenNothingWaitsForTheIdAnyMore) {
    FollowingDirectory directory;
    Router r(ownedConfig(), selfKey(), links_, directory, host_, [](int, std::string) {},
             [this] { return now_; });
    r.openSession(alice_);
    sendTo(r, carol_.id(), "m1");
    directory.answerId(claimOn(*peerKey(), 1000));
    links_.runPosted();
    LinkId id = links_.connects[0];
    r.onLinkOpen(id, true, kBinding);
    r.onLinkFrame(id, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                         LinkRole::Responder, kBinding, {})));
    r.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 1));
    ASSERT_TRUE(directory.followed.count(carol_.id()));
    now_ += std::chrono::milliseconds(2100);
    r.onSoon();
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("not back in time", carol_.id())});
    EXPECT_TRUE(directory.followed.empty()) << "the hold ended: the listen with it";
}

TEST_F(RouterOwnedIdTest, TheSenderHearsNotBackInTimeWhenTheHoldEnds) {
    Router r(ownedConfig(), selfKey(), links_, directory_, host_, [](int, std::string) {},
             [this] { return now_; });
    r.openSession(alice_);
    sendTo(r, carol_.id(), "m1");
    answerId(claimOn(*peerKey(), 1000));
    LinkId id = links_.connects[0];
    r.onLinkOpen(id, true, kBinding);
    r.onLinkFrame(id, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                         LinkRole::Responder, kBinding, {})));
    r.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 1));
    now_ += std::chrono::milliseconds(1900);
    r.onSoon();
    EXPECT_TRUE(deliveries(alice_).empty());
    now_ += std::chrono::milliseconds(200);
    r.onSoon();
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("not back in time", carol_.id())});
}

TEST_F(RouterOwnedIdTest, ANodeSpeaksForAKeyOwnedIdOnlyWithItsClaim) {
    router_.onLinkOpen(7, false, kBinding);
    router_.onLinkFrame(7, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                              LinkRole::Initiator, kBinding, {})));
    ASSERT_TRUE(links_.links[7].proven);
    // A claim that names another node: the link is refused.
    std::string elsewhere = encodeIdClaim(claimOn(*otherKey(), 1000));
    router_.onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                                elsewhere));
    EXPECT_TRUE(links_.links[7].closed);
    EXPECT_TRUE(deliveries(alice_).empty());

    // Without any claim: refused too.
    router_.onLinkOpen(8, false, kBinding);
    router_.onLinkFrame(8, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                              LinkRole::Initiator, kBinding, {})));
    router_.onLinkFrame(8, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x"));
    EXPECT_TRUE(links_.links[8].closed);

    // With her claim naming the node: delivered, and later ones need none.
    router_.onLinkOpen(9, false, kBinding);
    router_.onLinkFrame(9, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                              LinkRole::Initiator, kBinding, {})));
    std::string here = encodeIdClaim(claimOn(*peerKey(), 1000));
    router_.onLinkFrame(9, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "1",
                                                here));
    router_.onLinkFrame(9, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "2"));
    EXPECT_FALSE(links_.links[9].closed);
    EXPECT_EQ(deliveries(alice_),
              (std::vector<std::string>{serializeDelivery("t", carol_.id(), alice_, "1"),
                                        serializeDelivery("t", carol_.id(), alice_, "2")}));
}

// --- What held messages may cost (HoldBudget) -----------------------------------

// A router of its own per test, whose senders may hold 3 messages of at
// most 2 KiB in all, and the node 4 KiB; the limits per recipient and per
// id are far above, so that only the budget bites.
class RouterBudgetTest : public RouterOwnedIdTest {
protected:
    static constexpr std::size_t kSessionBytes = 2048;
    static constexpr std::size_t kNodeBytes = 4096;

    RouterBudgetTest()
        : r_(budgetConfig(), selfKey(), links_, directory_, host_, [](int, std::string) {},
             [this] { return now_; }, &stats_) {
        dave_ = makeSessionId(selfKey()->id());
        r_.openSession(alice_);
        r_.openSession(dave_);
    }

    static RouterConfig budgetConfig() {
        RouterConfig c = ownedConfig();
        c.queueLimit = 100;
        c.holdMessages = 100;
        c.sessionHoldMessages = 3;
        c.sessionHoldBytes = kSessionBytes;
        c.nodeHoldBytes = kNodeBytes;
        return c;
    }

    // Session n on a node of its own, never seen before: each costs a
    // lookup. The same n names the same session.
    std::string sessionOnNewNode(int n) {
        auto it = strangers_.find(n);
        if (it == strangers_.end()) {
            char prefix[33];
            std::snprintf(prefix, sizeof prefix, "%032x", 0xab000 + n);
            it = strangers_.emplace(n, makeSessionId(prefix)).first;
        }
        return it->second;
    }

    void sendAs(const std::string& from, const std::string& to, const std::string& body) {
        ClientMessage m;
        m.type = "SignalingMessage";
        m.recipient = to;
        m.body = body;
        r_.routeRemote(from, std::move(m));
    }

    void later(std::chrono::milliseconds by) {
        now_ += by;
        r_.onTick();
        r_.onSoon();
        links_.runPosted();
    }

    LinkId openAndProveOn(Router& r, const NodeKey& key) {
        LinkId id = links_.connects.back();
        r.onLinkOpen(id, true, kBinding);
        r.onLinkFrame(id, serializeLinkHello(key.id(), makeLinkProof(key, LinkRole::Responder,
                                                                     kBinding, {})));
        return id;
    }

    std::size_t heldNow() const { return r_.holdBudget().totalMessages(); }

    Router r_;
    std::string dave_;
    std::map<int, std::string> strangers_;
};

TEST_F(RouterBudgetTest, SenderWritingToManyNodesHearsQueueFullPastItsShare) {
    for (int n = 0; n < 4; ++n) {
        sendAs(alice_, sessionOnNewNode(n), "x");
    }
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("queue full", sessionOnNewNode(3))});
    EXPECT_EQ(heldNow(), 3u);
    EXPECT_EQ(directory_.asked.size(), 3u) << "a refused message costs no lookup";
    EXPECT_EQ(NodeStats::get(stats_.links.budgetFull), 1u);
    EXPECT_EQ(NodeStats::get(stats_.links.queueFull), 1u);
    // Another session of the node has a share of its own.
    sendAs(dave_, sessionOnNewNode(9), "y");
    EXPECT_TRUE(deliveries(dave_).empty());
    EXPECT_EQ(heldNow(), 4u);
}

TEST_F(RouterBudgetTest, LargeBodiesSpendTheShareInBytes) {
    std::string big(kSessionBytes / 2, 'b');
    sendAs(alice_, sessionOnNewNode(0), big);
    EXPECT_TRUE(deliveries(alice_).empty());
    sendAs(alice_, sessionOnNewNode(1), big);  // with the overhead, past 2 KiB
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("queue full", sessionOnNewNode(1))});
    EXPECT_EQ(heldNow(), 1u);
    EXPECT_LE(r_.holdBudget().bytesOf(alice_), kSessionBytes);
}

TEST_F(RouterBudgetTest, TheNodesTotalBoundsAllSendersTogether) {
    std::string body(1500, 'n');
    sendAs(alice_, sessionOnNewNode(0), body);
    sendAs(dave_, sessionOnNewNode(1), body);
    std::string eve = makeSessionId(selfKey()->id());
    r_.openSession(eve);
    sendAs(eve, sessionOnNewNode(2), body);  // 3 x (1500 + overhead) > 4 KiB
    EXPECT_EQ(deliveries(eve),
              std::vector<std::string>{serializeError("queue full", sessionOnNewNode(2))});
    EXPECT_LE(r_.holdBudget().totalBytes(), kNodeBytes);
    EXPECT_EQ(heldNow(), 2u);
}

TEST_F(RouterBudgetTest, SentOnALinkGivesTheShareBack) {
    for (const char* body : {"1", "2", "3"}) {
        sendAs(alice_, bob_, body);
    }
    EXPECT_EQ(heldNow(), 3u);
    directory_.answer(peerRecord());
    links_.runPosted();
    LinkId id = openAndProveOn(r_, *peerKey());
    EXPECT_EQ(messageFrames(id), (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(heldNow(), 0u);
    EXPECT_EQ(r_.holdBudget().sessionsCharged(), 0u) << "no entry is kept for a sender";
    // Messages that go straight to an open link are never charged.
    for (int i = 0; i < 10; ++i) {
        sendAs(alice_, bob_, "more");
    }
    EXPECT_EQ(heldNow(), 0u);
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterBudgetTest, AnsweredUnreachableOrNotFoundGivesTheShareBack) {
    sendAs(alice_, bob_, "to a node that does not answer");
    later(std::chrono::milliseconds(5100));  // the lookup wait ends unanswered
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeError("unreachable", bob_)});
    EXPECT_EQ(heldNow(), 0u);

    std::string gone = sessionOnNewNode(1);
    sendAs(alice_, gone, "to a node that left");
    directory_.pending.pop_front();  // the first lookup's answer is ignored now
    directory_.answer(NodeRecord{std::string(nodePrefixOfCanonical(gone)), {}, true});
    links_.runPosted();
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(gone)});
    EXPECT_EQ(heldNow(), 0u);
}

TEST_F(RouterBudgetTest, ConnectThatFailsGivesTheShareBack) {
    links_.refuseConnects = 2;
    sendAs(alice_, bob_, "x");
    directory_.answer(peerRecord());
    links_.runPosted();  // refused; looked up once more
    directory_.answer(peerRecord());
    links_.runPosted();  // refused again: unreachable
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeError("unreachable", bob_)});
    EXPECT_EQ(heldNow(), 0u);
}

TEST_F(RouterBudgetTest, HeldForAnAwayIdIsChargedAndDeliveredOnItsReturn) {
    sendAs(alice_, carol_.id(), "m1");
    EXPECT_EQ(heldNow(), 1u) << "waits for the id's lookup";
    answerId(claimOn(*peerKey(), 1000));
    EXPECT_EQ(heldNow(), 1u) << "waits for the link";
    LinkId first = openAndProveOn(r_, *peerKey());
    EXPECT_EQ(heldNow(), 0u) << "in flight: the link bounds it, not the budget";
    // Her session there closed: the message comes back and is held, charged.
    r_.onLinkFrame(first, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 1));
    EXPECT_EQ(heldNow(), 1u);
    sendAs(alice_, carol_.id(), "m2");
    sendAs(alice_, carol_.id(), "m3");
    sendAs(alice_, carol_.id(), "m4");  // her fourth: past her share
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("queue full", carol_.id())});
    EXPECT_EQ(heldNow(), 3u);
    // Carol is back, on another node: all of it goes, and the share is free.
    later(std::chrono::milliseconds(300));
    answerId(claimOn(*otherKey(), 2000));
    LinkId second = openAndProveOn(r_, *otherKey());
    EXPECT_EQ(messageFrames(second), (std::vector<std::string>{"m1", "m2", "m3"}));
    EXPECT_EQ(heldNow(), 0u);
}

TEST_F(RouterBudgetTest, HeldThenDeliveredHereGivesTheShareBack) {
    sendAs(alice_, carol_.id(), "for you");
    EXPECT_EQ(heldNow(), 1u);
    // Carol claims her id on this node while the lookup runs.
    r_.openOwned(carol_.claim(selfKey()->id(), "challenge", 1000));
    EXPECT_EQ(deliveries(carol_.id()),
              std::vector<std::string>{
                  serializeDelivery("SignalingMessage", alice_, carol_.id(), "for you")});
    EXPECT_EQ(heldNow(), 0u);
}

TEST_F(RouterBudgetTest, HoldThatEndsGivesTheShareBack) {
    sendAs(alice_, carol_.id(), "m1");
    answerId(claimOn(*peerKey(), 1000));
    LinkId id = openAndProveOn(r_, *peerKey());
    r_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), alice_, carol_.id(), 1));
    EXPECT_EQ(heldNow(), 1u);
    now_ += std::chrono::milliseconds(2100);
    r_.onSoon();
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("not back in time", carol_.id())});
    EXPECT_EQ(heldNow(), 0u);
}

TEST_F(RouterBudgetTest, IdNeverClaimedGivesTheShareBack) {
    sendAs(alice_, carol_.id(), "anyone?");
    answerId(std::nullopt);
    for (int i = 0; i < 3; ++i) {
        later(std::chrono::milliseconds(2100));
        answerId(std::nullopt);
    }
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(carol_.id())});
    EXPECT_EQ(heldNow(), 0u);
}

TEST_F(RouterBudgetTest, IdNeverClaimedIsNotFoundAtOnceForTheRetryDelayThenLookedUpAgain) {
    sendAs(alice_, carol_.id(), "anyone?");
    answerId(std::nullopt);
    for (int i = 0; i < 3; ++i) {
        later(std::chrono::milliseconds(2100));
        answerId(std::nullopt);
    }
    ASSERT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(carol_.id())});
    std::size_t lookups = directory_.askedIds.size();
    // Within the retry delay (1 s here): answered at once, no lookup, nothing held.
    sendAs(alice_, carol_.id(), "still no one?");
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(carol_.id())});
    sendAs(dave_, carol_.id(), "no one?");
    EXPECT_EQ(deliveries(dave_), std::vector<std::string>{serializeNotFound(carol_.id())});
    EXPECT_EQ(directory_.askedIds.size(), lookups);
    EXPECT_EQ(heldNow(), 0u);
    // Then the id is looked up again: it may have been claimed meanwhile.
    later(std::chrono::milliseconds(1100));
    sendAs(alice_, carol_.id(), "now?");
    EXPECT_EQ(directory_.askedIds.size(), lookups + 1);
    answerId(claimOn(*peerKey(), 1000));
    LinkId id = openAndProveOn(r_, *peerKey());
    EXPECT_EQ(messageFrames(id), std::vector<std::string>{"now?"});
}

TEST_F(RouterBudgetTest, IdClaimedHereIsNoLongerAnsweredFromTheMemory) {
    sendAs(alice_, carol_.id(), "anyone?");
    answerId(std::nullopt);
    for (int i = 0; i < 3; ++i) {
        later(std::chrono::milliseconds(2100));
        answerId(std::nullopt);
    }
    ASSERT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(carol_.id())});
    // Carol claims her id here, and her session closes again at once: the
    // id is looked up afresh, not answered from the memory of before.
    r_.openOwned(carol_.claim(selfKey()->id(), "challenge", 1000));
    r_.closeOwned(carol_.id());
    std::size_t lookups = directory_.askedIds.size();
    sendAs(alice_, carol_.id(), "carol?");
    EXPECT_TRUE(deliveries(alice_).empty());
    EXPECT_EQ(directory_.askedIds.size(), lookups + 1);
}

// Its own router: 2 new lookups per second, 3 at once.
TEST_F(RouterBudgetTest, NewLookupsPastTheSendersRateAreAnsweredRateLimited) {
    RouterConfig c = budgetConfig();
    c.sessionHoldMessages = 100;
    c.sessionHoldBytes = c.nodeHoldBytes = 1 << 20;
    c.lookupRate = 2;
    c.lookupBurst = 3;
    Router r(c, selfKey(), links_, directory_, host_, [](int, std::string) {},
             [this] { return now_; }, &stats_);
    r.openSession(alice_);
    r.openSession(dave_);
    auto sendVia = [&](const std::string& from, const std::string& to) {
        ClientMessage m;
        m.type = "t";
        m.recipient = to;
        m.body = "x";
        r.routeRemote(from, std::move(m));
    };
    for (int n = 0; n < 3; ++n) {
        sendVia(alice_, sessionOnNewNode(n));
    }
    sendVia(alice_, carol_.id());  // an id is a lookup too
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("rate limited", carol_.id())});
    EXPECT_EQ(directory_.asked.size(), 3u);
    EXPECT_TRUE(directory_.askedIds.empty());
    EXPECT_EQ(NodeStats::get(stats_.links.lookupsLimited), 1u);
    // More to a node already being looked up costs no lookup: it waits.
    sendVia(alice_, sessionOnNewNode(0));
    EXPECT_TRUE(deliveries(alice_).empty());
    // Another session has tokens of its own.
    sendVia(dave_, sessionOnNewNode(7));
    EXPECT_TRUE(deliveries(dave_).empty());
    // Half a second gives one token back.
    now_ += std::chrono::milliseconds(500);
    sendVia(alice_, sessionOnNewNode(4));
    sendVia(alice_, sessionOnNewNode(5));
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeError("rate limited", sessionOnNewNode(5))});
    EXPECT_EQ(directory_.asked.size(), 5u);
}

TEST_F(RouterBudgetTest, LinkThatBreaksHoldsWhatWasInFlightWithinTheShare) {
    sendAs(alice_, carol_.id(), "m1");
    answerId(claimOn(*peerKey(), 1000));
    LinkId id = openAndProveOn(r_, *peerKey());
    sendAs(alice_, carol_.id(), "m2");
    EXPECT_EQ(heldNow(), 0u);
    r_.onLinkClosed(id, true, true);  // both lost in flight: held for her return
    EXPECT_EQ(heldNow(), 2u);
    EXPECT_EQ(r_.holdBudget().messagesOf(alice_), 2u);
    EXPECT_TRUE(deliveries(alice_).empty());
    now_ += std::chrono::milliseconds(2100);
    r_.onSoon();
    EXPECT_EQ(heldNow(), 0u);
}

// --- Claims and the clock --------------------------------------------------

class RouterClaimClockTest : public RouterOwnedIdTest {
protected:
    // Carol's id is on this node, under a claim made a minute ago; node
    // `peer` is proven on inbound link `link` and speaks as Carol with an
    // old claim of hers that names it (a rogue node she once used).
    void carolHereAndARoguePeer(LinkId link) {
        router_.openOwned(claimOn(*selfKey(), kWallNow - 60'000));
        ASSERT_FALSE(router_.claimOf(carol_.id()).empty());
        router_.onLinkOpen(link, false, kBinding);
        router_.onLinkFrame(link, serializeLinkHello(peerKey()->id(),
                                                     makeLinkProof(*peerKey(), LinkRole::Initiator,
                                                                   kBinding, {})));
        ASSERT_TRUE(links_.links[link].proven);
    }

    // A takeover notice for Carol's id from the peer, whose body is a claim
    // of `time` naming the peer; the frame's own claim is her old one.
    void takeoverFrom(LinkId link, std::uint64_t time) {
        std::string old = encodeIdClaim(claimOn(*peerKey(), kWallNow - 3'600'000));
        router_.onLinkFrame(link, serializeLinkDeliver(peerKey()->id(), carol_.id(), carol_.id(),
                                                       std::string(kIdTakenType),
                                                       encodeIdClaim(claimOn(*peerKey(), time)),
                                                       old));
    }

    bool unbound(const std::string& id) {
        bool found = false;
        host_.drain(0, [&](const HostRecord& r) { found = found || (r.unbind && r.sessionId == id); });
        return found;
    }
};

TEST_F(RouterClaimClockTest, AReplayedClaimDatedInTheFutureDoesNotTakeTheIdFromItsOwner) {
    carolHereAndARoguePeer(7);
    // Harvested a day ahead: "newer" than hers, but not believed.
    takeoverFrom(7, kWallNow + 24 * 3'600'000ull);
    EXPECT_FALSE(unbound(carol_.id()));
    EXPECT_TRUE(directory_.withdrawn.empty());
    EXPECT_FALSE(router_.claimOf(carol_.id()).empty()) << "the owner keeps the id";
    EXPECT_NE(log_.find("not believed"), std::string::npos) << log_;
    // Just beyond the allowed skew: still refused.
    takeoverFrom(7, kWallNow + 30'001);
    EXPECT_FALSE(unbound(carol_.id()));
    EXPECT_FALSE(router_.claimOf(carol_.id()).empty());

    // A newer claim within the skew (a real session of hers there, on a
    // clock a little ahead) does take it over.
    takeoverFrom(7, kWallNow + 20'000);
    EXPECT_TRUE(unbound(carol_.id()));
    EXPECT_TRUE(router_.claimOf(carol_.id()).empty());
    EXPECT_EQ(directory_.withdrawn, std::vector<std::string>{carol_.id()});
}

TEST_F(RouterClaimClockTest, ASenderWhoseClaimIsDatedAheadIsNotBelievedOnALink) {
    router_.onLinkOpen(7, false, kBinding);
    router_.onLinkFrame(7, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                              LinkRole::Initiator, kBinding, {})));
    std::string ahead = encodeIdClaim(claimOn(*peerKey(), kWallNow + 3'600'000));
    router_.onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                                ahead));
    EXPECT_TRUE(links_.links[7].closed);
    EXPECT_TRUE(deliveries(alice_).empty());
    EXPECT_NE(log_.find("dwrtc_claim_clock_skew"), std::string::npos) << log_;
}

TEST_F(RouterClaimClockTest, ALookupThatFindsOnlyAClaimDatedAheadFindsNothing) {
    Router r(ownedConfig(), selfKey(), links_, directory_, host_, [](int, std::string) {},
             [this] { return now_; });
    r.openSession(alice_);
    sendTo(r, carol_.id(), "hi");
    answerId(claimOn(*peerKey(), kWallNow + 3'600'000));
    EXPECT_TRUE(links_.connects.empty()) << "a claim from the future points nowhere";
}

// --- What a link's claims cost ------------------------------------------------

class RouterLinkClaimTest : public RouterOwnedIdTest {
protected:
    // A router of its own with these bounds, alice on it, and peer proven on
    // inbound link 7.
    std::unique_ptr<Router> routerWith(std::size_t senders, unsigned checksPerSecond) {
        RouterConfig c = ownedConfig();
        c.linkOwnedSenders = senders;
        c.linkClaimChecks = checksPerSecond;
        auto r = std::make_unique<Router>(c, selfKey(), links_, directory_, host_,
                                          [this](int, std::string line) { log_ += line + "\n"; },
                                          [this] { return now_; }, &stats_);
        r->openSession(alice_);
        r->onLinkOpen(7, false, kBinding);
        r->onLinkFrame(7, serializeLinkHello(peerKey()->id(), makeLinkProof(*peerKey(),
                                             LinkRole::Initiator, kBinding, {})));
        EXPECT_TRUE(links_.links[7].proven);
        return r;
    }

    std::uint64_t checks() const { return NodeStats::get(stats_.links.claimChecks); }
    std::uint64_t refused() const {
        return NodeStats::get(stats_.links.linksRefusedForClaims);
    }
};

TEST_F(RouterLinkClaimTest, ReplayedFramesWithTheSameClaimCostNoSignatureCheck) {
    auto r = routerWith(16, 5);
    std::string frame = serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                             encodeIdClaim(claimOn(*peerKey(), 1000)));
    for (int i = 0; i < 200; ++i) {
        r->onLinkFrame(7, frame);
    }
    EXPECT_FALSE(links_.links[7].closed) << log_;
    EXPECT_EQ(checks(), 1u) << "checked once, believed for the link after";
    EXPECT_EQ(deliveries(alice_).size(), 200u);
    // A takeover notice carrying that same claim costs none either.
    r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), carol_.id(),
                                           std::string(kIdTakenType),
                                           encodeIdClaim(claimOn(*peerKey(), 1000))));
    EXPECT_EQ(checks(), 1u) << "Carol's id is not here: nothing to check";
}

TEST_F(RouterLinkClaimTest, ClaimChecksPerSecondAreBoundedPerLink) {
    auto r = routerWith(16, 5);
    // Every frame a new claim (ECDSA signatures differ each time): a
    // second's worth is checked, the next closes the link.
    for (int i = 0; i < 5; ++i) {
        r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                               encodeIdClaim(claimOn(*peerKey(), 1000 + i))));
    }
    EXPECT_FALSE(links_.links[7].closed) << log_;
    EXPECT_EQ(checks(), 5u);
    r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                           encodeIdClaim(claimOn(*peerKey(), 2000))));
    EXPECT_TRUE(links_.links[7].closed);
    EXPECT_EQ(checks(), 5u) << "the one beyond the budget was not checked";
    EXPECT_EQ(refused(), 1u) << "counted for the status page";
    EXPECT_NE(log_.find("claim checks a second on one link (dwrtc_link_claims)"),
              std::string::npos)
        << log_;
}

TEST_F(RouterLinkClaimTest, TheBudgetRefillsWithTime) {
    auto r = routerWith(16, 2);
    for (int i = 0; i < 2; ++i) {
        r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                               encodeIdClaim(claimOn(*peerKey(), 1000 + i))));
    }
    now_ += std::chrono::seconds(1);
    for (int i = 0; i < 2; ++i) {
        r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), carol_.id(), alice_, "t", "x",
                                               encodeIdClaim(claimOn(*peerKey(), 3000 + i))));
    }
    EXPECT_FALSE(links_.links[7].closed) << log_;
    EXPECT_EQ(checks(), 4u);
}

TEST_F(RouterLinkClaimTest, APeerSpeaksForAtMostSoManyKeyOwnedIdsOnALink) {
    auto r = routerWith(2, 100);
    test::OwnerKey dave, erin;
    for (const test::OwnerKey* owner : {&carol_, &dave}) {
        IdClaim c = owner->claim(peerKey()->id(), "challenge", 1000);
        r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), owner->id(), alice_, "t", "x",
                                               encodeIdClaim(c)));
    }
    EXPECT_FALSE(links_.links[7].closed) << log_;
    IdClaim third = erin.claim(peerKey()->id(), "challenge", 1000);
    r->onLinkFrame(7, serializeLinkDeliver(peerKey()->id(), erin.id(), alice_, "t", "x",
                                           encodeIdClaim(third)));
    EXPECT_TRUE(links_.links[7].closed);
    EXPECT_EQ(checks(), 2u);
    EXPECT_EQ(refused(), 1u);
    EXPECT_NE(log_.find("more than 2 key-owned ids on one link"), std::string::npos) << log_;
}

// --- Chosen PeerJS ids across nodes ------------------------------------------

class RouterChosenTest : public RouterTest {
protected:
    RouterChosenTest() {
        // alice_ holds the chosen id "alice" here.
        router_.setChosenIds(ChosenIdsHere{
            [this](const std::string& session) { return session == alice_ ? "alice" : ""; },
            [this](const std::string& id) { return id == "alice" ? alice_ : ""; }});
    }

    std::vector<LinkFrame> deliverFrames(LinkId id) { return framesOf(links_.links[id].sent,
                                                                      LinkFrame::Kind::Deliver); }

    // An inbound link from the peer, proven; its hello says "chosen":1
    // unless told otherwise.
    LinkId provenInbound(bool takesChosen = true) {
        const LinkId in = 1000;
        router_.onLinkOpen(in, false, kBinding);
        std::string hello = serializeLinkHello(
            peerKey()->id(), makeLinkProof(*peerKey(), LinkRole::Initiator, kBinding, {}));
        if (!takesChosen) {
            hello.replace(hello.find(",\"chosen\":1"), 11, "");
        }
        router_.onLinkFrame(in, hello);
        EXPECT_TRUE(links_.links[in].proven);
        return in;
    }

    void fromPeer(LinkId in, const std::string& sender, const std::string& recipient,
                  const std::string& body) {
        router_.onLinkFrame(in, serializeLinkDeliver(peerKey()->id(), sender, recipient, "OFFER",
                                                     body));
    }
};

TEST_F(RouterChosenTest, AChosenIdIsReachedWhereItsRecordSaysAndItsHolderSpeaksAsIt) {
    send("bob", "first");
    send("bob", "second");
    // One lookup of the id for both; then the node, as for any session.
    ASSERT_EQ(directory_.askedChosen, std::vector<std::string>{"bob"});
    directory_.answerChosen(peerKey()->id());
    links_.runPosted();
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    auto frames = deliverFrames(id);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].sender, "alice");
    EXPECT_EQ(frames[0].recipient, "bob");
    EXPECT_EQ(frames[0].body, "first");
    EXPECT_EQ(frames[1].body, "second");

    // Where it is is remembered: no lookup for the next one.
    send("bob", "third");
    EXPECT_EQ(directory_.askedChosen.size(), 1u);
    ASSERT_EQ(deliverFrames(id).size(), 3u);

    // bob is gone from there: alice_ hears "not found", named as it was
    // sent, and the next message looks bob up again.
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), "alice", "bob", 3));
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound("bob")});
    send("bob", "fourth");
    EXPECT_EQ(directory_.askedChosen.size(), 2u);
}

TEST_F(RouterChosenTest, AChosenIdHeldNowhereIsNotFound) {
    send("nobody", "hello?");
    directory_.answerChosen(std::nullopt);
    links_.runPosted();
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound("nobody")});
    EXPECT_TRUE(directory_.asked.empty()) << "a node was looked up for no one";

    // A quiet message (PeerJS's LEAVE) to an id held nowhere gets no answer.
    ClientMessage leave;
    leave.type = "LEAVE";
    leave.recipient = "nobody";
    router_.routeRemote(alice_, std::move(leave), /*quiet=*/true);
    directory_.answerChosen(std::nullopt);
    links_.runPosted();
    EXPECT_TRUE(deliveries(alice_).empty());
}

// PeerJS's LEAVE and EXPIRE to an id that is gone get no answer, also when
// the id was on another node: its "not found" comes back before or after
// the ack, numbered, and is not told for them; for another message it is.
TEST_F(RouterChosenTest, QuietMessagesAreNotAnsweredNotFoundFromAnotherNode) {
    auto quiet = [this](const std::string& to) {
        ClientMessage leave;
        leave.type = "LEAVE";
        leave.recipient = to;
        router_.routeRemote(alice_, std::move(leave), /*quiet=*/true);
    };
    quiet("bob");  // a chosen id, found on the peer
    directory_.answerChosen(peerKey()->id());
    links_.runPosted();
    answerLookup(peerRecord());
    LinkId id = openAndProve();
    ASSERT_EQ(deliverFrames(id).size(), 1u);
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), "alice", "bob", 1));
    EXPECT_TRUE(deliveries(alice_).empty()) << "told after the ack";

    quiet(bob_);  // a session id of the peer, answered before the ack
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), "alice", bob_, 2));
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
    EXPECT_TRUE(deliveries(alice_).empty()) << "told before the ack";

    send(bob_, "an offer");
    router_.onLinkFrame(id, serializeLinkAck(peerKey()->id(), 1));
    router_.onLinkFrame(id, serializeLinkNotFound(peerKey()->id(), "alice", bob_, 3));
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound(bob_)});
}

TEST_F(RouterChosenTest, APeerThatDoesNotTakeChosenIdsIsSentNoneAndTheSenderIsTold) {
    send("bob", "to a chosen id");
    send(bob_, "to a session");
    directory_.answerChosen(peerKey()->id());
    links_.runPosted();
    answerLookup(peerRecord());
    LinkId id = links_.connects.back();
    router_.onLinkOpen(id, true, kBinding);
    std::string hello = serializeLinkHello(
        peerKey()->id(), makeLinkProof(*peerKey(), LinkRole::Responder, kBinding, {}));
    hello.replace(hello.find(",\"chosen\":1"), 11, "");
    router_.onLinkFrame(id, hello);
    ASSERT_TRUE(links_.links[id].proven);
    // The session id's message goes, as the session id; the chosen one is
    // answered "not found" (EXPIRE in PeerJS) instead of closing the link.
    auto frames = deliverFrames(id);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].sender, alice_);
    EXPECT_EQ(frames[0].recipient, bob_);
    for (const std::string& f : links_.links[id].sent) {
        EXPECT_EQ(f.find("\"alice\""), std::string::npos) << f;
        EXPECT_EQ(f.find("\"bob\""), std::string::npos) << f;
    }
    EXPECT_EQ(deliveries(alice_), std::vector<std::string>{serializeNotFound("bob")});
    EXPECT_FALSE(links_.links[id].closed);
}

TEST_F(RouterChosenTest, APeerSpeaksAsAChosenIdOnlyWhileTheDhtNamesItTheHolder) {
    LinkId in = provenInbound();
    // zed's messages wait, in order, for the check that the peer holds zed.
    fromPeer(in, "zed", "alice", "1");
    fromPeer(in, "zed", alice_, "2");
    EXPECT_TRUE(deliveries(alice_).empty());
    ASSERT_EQ(directory_.askedChosen, std::vector<std::string>{"zed"});
    directory_.answerChosen(peerKey()->id());
    links_.runPosted();
    EXPECT_EQ(deliveries(alice_),
              (std::vector<std::string>{serializeDelivery("OFFER", "zed", "alice", "1"),
                                        serializeDelivery("OFFER", "zed", alice_, "2")}));
    fromPeer(in, "zed", "alice", "3");
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeDelivery("OFFER", "zed", "alice", "3")});
    EXPECT_EQ(directory_.askedChosen.size(), 1u) << "a believed sender was checked again at once";

    // mallory is held by another node: dropped, answered "notfound" with
    // the message's number, logged once.
    fromPeer(in, "mallory", "alice", "forged");
    directory_.answerChosen(otherKey()->id());
    links_.runPosted();
    fromPeer(in, "mallory", "alice", "forged again");
    EXPECT_TRUE(deliveries(alice_).empty());
    EXPECT_EQ(links_.links[in].sent.back(),
              serializeLinkNotFound(selfKey()->id(), "mallory", "alice", 5));
    EXPECT_EQ(directory_.askedChosen.size(), 2u);
    std::size_t logged = 0;
    for (std::size_t at = 0; (at = log_.find("as chosen id \"mallory\"", at)) != std::string::npos;
         ++at) {
        ++logged;
    }
    EXPECT_EQ(logged, 1u) << log_;
    EXPECT_FALSE(links_.links[in].closed);

    // An old verdict is checked again, while messages still flow under it;
    // a peer that no longer holds the id is believed no more.
    now_ += std::chrono::seconds(11);
    fromPeer(in, "zed", "alice", "4");
    EXPECT_EQ(deliveries(alice_),
              std::vector<std::string>{serializeDelivery("OFFER", "zed", "alice", "4")});
    ASSERT_EQ(directory_.askedChosen.size(), 3u);
    directory_.answerChosen(otherKey()->id());
    links_.runPosted();
    fromPeer(in, "zed", "alice", "5");
    EXPECT_TRUE(deliveries(alice_).empty());
}

TEST_F(RouterChosenTest, WhatWaitsForACheckIsBoundedPerLink) {
    LinkId in = provenInbound();
    // Two ids under check, each with more than half of what a link may
    // have waiting (dwrtc's session hold bytes): the second is answered.
    const std::string big(DWRTC_DEFAULT_SESSION_HOLD_BYTES / 2 + 1, 'x');
    fromPeer(in, "zed", "alice", big);
    fromPeer(in, "yan", "alice", big);
    EXPECT_EQ(links_.links[in].sent.back(),
              serializeLinkNotFound(selfKey()->id(), "yan", "alice", 2));
    // Checked, what waited is delivered, and the room is back.
    directory_.answerChosen(peerKey()->id());
    directory_.answerChosen(peerKey()->id());
    links_.runPosted();
    EXPECT_EQ(deliveries(alice_).size(), 1u);
    fromPeer(in, "wil", "alice", big);
    EXPECT_EQ(links_.links[in].sent.back(),
              serializeLinkNotFound(selfKey()->id(), "yan", "alice", 2))
        << "wil was answered though there was room";
}

TEST_F(RouterChosenTest, AChosenIdThatLeftIsAnsweredToItsSendersNode) {
    LinkId in = provenInbound();
    fromPeer(in, "zed", "gone", "1");
    directory_.answerChosen(peerKey()->id());
    links_.runPosted();
    EXPECT_EQ(links_.links[in].sent.back(),
              serializeLinkNotFound(selfKey()->id(), "zed", "gone", 1));
    // And a session closed before the host took it: told on the link that
    // believed zed.
    router_.tellRemoteNotFound("zed", "alice");
    EXPECT_EQ(links_.links[in].sent.back(), serializeLinkNotFound(selfKey()->id(), "zed", "alice"));
}

}  // namespace
}  // namespace dwrtc
