// Chosen PeerJS ids across real DHT nodes in this process, on loopback:
// each site is a node's directory (its own key and OpenDHT runner) with
// the PeerJsIdClaims that decide the ids of its sessions. One id is held
// by one token across the network, the same token takes it over on
// another node, two nodes asked at once agree on one holder, and a closed
// session's id is reserved for its token until the reservation ends. The
// last test does it through whole nodes (Node::openPeerJsChosen), as the
// module will, and reads the verdicts as a PeerJS client is shown them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "dwrtc/peerjs.h"
#include "network.h"
#include "node_directory.h"
#include "peerjs_id_claims.h"

namespace dwrtc {
namespace {

using Clock = std::chrono::steady_clock;
using Verdict = PeerJsIdClaims::Verdict;
using Loss = PeerJsIdClaims::Loss;

class Site {
public:
    Site(const std::string& name, std::vector<std::string> bootstrap, PeerJsIdConfig config)
        : name_(name) {
        DirectoryConfig dc;
        dc.bindAddress = "127.0.0.1";
        dc.bootstrap = std::move(bootstrap);
        dc.perIpRequestLimit = -1;
        dc.totalRequestLimit = -1;
        bool verbose = std::getenv("DWRTC_TEST_LOG") != nullptr;
        LogFn log = [name, verbose](int level, std::string line) {
            if (verbose || level <= DWRTC_LOG_WARN) {
                std::printf("# [%s %d] %s\n", name.c_str(), level, line.c_str());
            }
            if (level == DWRTC_LOG_WARN) {
                std::lock_guard<std::mutex> lock(warnMutex());
                warnings().push_back(line);
            }
        };
        directory_ = std::make_unique<NodeDirectory>(dc, NodeIdentity::make(), log);
        if (!directory_->start()) {
            throw std::runtime_error("the directory did not start");
        }
        claims_ = std::make_unique<PeerJsIdClaims>(
            config, directory_->prefix(), *directory_,
            [this](std::function<void()> task) {
                std::lock_guard<std::mutex> lock(mutex_);
                tasks_.push_back(std::move(task));
            },
            log,
            [this](const std::string& session, Loss why, const PeerJsIdRecord&) {
                losses[session] = why;
            },
            wallClockMs, [] { return RouterClock::now(); });
    }
    ~Site() {
        claims_.reset();
        directory_->stop();
    }

    static std::vector<std::string>& warnings() {
        static std::vector<std::string> w;
        return w;
    }
    static std::mutex& warnMutex() {
        static std::mutex m;
        return m;
    }

    // Runs what the DHT answered, on this (the test's) thread, as the
    // node's own thread would.
    void pump() {
        std::deque<std::function<void()>> tasks;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            tasks.swap(tasks_);
        }
        for (auto& t : tasks) t();
        claims_->onTick();
        directory_->ensurePublished();
    }

    void claim(const std::string& session, const std::string& id, const std::string& token) {
        verdicts.erase(session);
        claims_->claim(session, id, token, [this, session](Verdict v) { verdicts[session] = v; });
    }

    // The records of id this site reads in the DHT now (a get of its own).
    std::optional<PeerJsIdStore::Records> read(const std::string& id,
                                               std::chrono::milliseconds limit) {
        auto done = std::make_shared<std::promise<PeerJsIdStore::Records>>();
        auto future = done->get_future();
        directory_->getPeerJsId(id, [done](PeerJsIdStore::Records r, bool) {
            done->set_value(std::move(r));
        });
        if (future.wait_for(limit) != std::future_status::ready) return std::nullopt;
        return future.get();
    }

    PeerJsIdClaims& claims() { return *claims_; }
    NodeDirectory& directory() { return *directory_; }
    const std::string& id() const { return directory_->prefix(); }

    std::map<std::string, Verdict> verdicts;
    std::map<std::string, Loss> losses;

private:
    std::string name_;
    std::mutex mutex_;
    std::deque<std::function<void()>> tasks_;
    std::unique_ptr<NodeDirectory> directory_;
    std::unique_ptr<PeerJsIdClaims> claims_;
};

// A UDP port on loopback that nothing listens on (it was free a moment
// ago, and nothing here takes ports it is not given).
unsigned silentUdpPort() {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("no UDP port on loopback");
    }
    close(fd);
    return ntohs(addr.sin_port);
}

class PeerJsIds : public ::testing::Test {
protected:
    static PeerJsIdConfig quick() {
        PeerJsIdConfig config;
        config.lookupWait = std::chrono::milliseconds(3000);
        return config;
    }

    void start(std::size_t n, PeerJsIdConfig config = {}) {
        sites_.push_back(std::make_unique<Site>("A", std::vector<std::string>{}, config));
        std::string first = "127.0.0.1:" + std::to_string(sites_[0]->directory().port());
        for (std::size_t i = 1; i < n; ++i) {
            std::string name(1, static_cast<char>('A' + i));
            sites_.push_back(std::make_unique<Site>(name, std::vector<std::string>{first}, config));
        }
        ASSERT_TRUE(waitFor([&] {
            for (auto& s : sites_) {
                if (!s->directory().hasPeers()) return false;
            }
            return true;
        })) << "the DHT nodes did not meet";
    }

    bool waitFor(const std::function<bool()>& pred,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        auto end = Clock::now() + limit;
        while (!pred()) {
            if (Clock::now() >= end) return pred();
            for (auto& s : sites_) s->pump();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }

    // Waits until `site` reads a record of `id` from node `node` that
    // satisfies `what`: the DHT has carried it there.
    bool waitSeen(Site& site, const std::string& id, const std::string& node,
                  const std::function<bool(const PeerJsIdRecord&)>& what) {
        auto started = Clock::now();
        bool seen = waitFor([&] {
            auto records = site.read(id, std::chrono::seconds(5));
            if (!records) return false;
            for (const auto& r : *records) {
                if (r.node == node && what(r)) return true;
            }
            return false;
        });
        std::printf("# the record of %s reached the other node in %lld ms\n", id.c_str(),
                    static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               Clock::now() - started)
                                               .count()));
        return seen;
    }

    Site& site(std::size_t i) { return *sites_.at(i); }

    std::vector<std::unique_ptr<Site>> sites_;
};

TEST_F(PeerJsIds, AnIdHeldOnOneNodeIsTakenOnAnother) {
    start(3);
    Site& a = site(0);
    Site& b = site(1);
    a.claim("a1", "alice", "token-1");
    ASSERT_TRUE(waitFor([&] { return a.verdicts.count("a1"); }));
    ASSERT_EQ(a.verdicts["a1"], Verdict::Open);
    EXPECT_EQ(a.claims().sessionOf("alice"), "a1");
    ASSERT_TRUE(waitSeen(b, "alice", a.id(), [](const PeerJsIdRecord& r) { return r.live(); }));

    b.claim("b1", "alice", "token-2");
    ASSERT_TRUE(waitFor([&] { return b.verdicts.count("b1"); }));
    EXPECT_EQ(b.verdicts["b1"], Verdict::Taken);
    EXPECT_EQ(b.claims().sessionOf("alice"), "");
    // And the holder was not disturbed.
    EXPECT_EQ(a.claims().sessionOf("alice"), "a1");
    EXPECT_TRUE(a.losses.empty());
}

TEST_F(PeerJsIds, TheSameTokenTakesTheIdBackOnAnotherNode) {
    start(3);
    Site& a = site(0);
    Site& c = site(2);
    a.claim("a1", "alice", "token-1");
    ASSERT_TRUE(waitFor([&] { return a.verdicts.count("a1"); }));
    ASSERT_EQ(a.verdicts["a1"], Verdict::Open);
    ASSERT_TRUE(waitSeen(c, "alice", a.id(), [](const PeerJsIdRecord& r) { return r.live(); }));

    auto started = Clock::now();
    c.claim("c1", "alice", "token-1");
    ASSERT_TRUE(waitFor([&] { return c.verdicts.count("c1"); }));
    EXPECT_EQ(c.verdicts["c1"], Verdict::Open);
    EXPECT_EQ(c.claims().sessionOf("alice"), "c1");
    // The old node hears the newer record and lets its session go.
    ASSERT_TRUE(waitFor([&] { return a.losses.count("a1"); }));
    std::printf("# the old node closed its session %lld ms after the reconnect\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started)
                        .count()));
    EXPECT_EQ(a.losses["a1"], Loss::TakenOver);
    EXPECT_EQ(a.claims().sessionOf("alice"), "");
    // Every node's rule now names the new holder.
    for (std::size_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(waitFor([&] {
            auto records = site(i).read("alice", std::chrono::seconds(5));
            if (!records) return false;
            auto holder = peerJsIdHolder(*records, wallClockMs());
            return holder && holder->node == c.id();
        })) << "node " << i << " does not see the new holder";
    }
}

TEST_F(PeerJsIds, NodesAskedAtOnceAgreeOnOneHolder) {
    start(3);
    // The three lookups cross: none of them sees another's record.
    for (std::size_t i = 0; i < 3; ++i) {
        site(i).claim("s" + std::to_string(i), "bob", "token-" + std::to_string(i));
    }
    ASSERT_TRUE(waitFor([&] {
        for (std::size_t i = 0; i < 3; ++i) {
            if (!site(i).verdicts.count("s" + std::to_string(i))) return false;
        }
        return true;
    }));
    int opened = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        opened += site(i).verdicts["s" + std::to_string(i)] == Verdict::Open;
    }
    std::printf("# %d of 3 simultaneous claims were granted at first\n", opened);
    EXPECT_GE(opened, 1);
    // Those that lost hear it; one holder stays.
    auto holders = [&] {
        int n = 0;
        for (std::size_t i = 0; i < 3; ++i) n += !site(i).claims().sessionOf("bob").empty();
        return n;
    };
    EXPECT_TRUE(waitFor([&] { return holders() == 1; })) << holders() << " holders";
    std::size_t winner = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        if (!site(i).claims().sessionOf("bob").empty()) winner = i;
    }
    for (std::size_t i = 0; i < 3; ++i) {
        if (i == winner) continue;
        std::string s = "s" + std::to_string(i);
        bool told = site(i).verdicts[s] == Verdict::Taken ||
                    (site(i).losses.count(s) && site(i).losses[s] == Loss::Lost);
        EXPECT_TRUE(told) << "the losing session on node " << i << " was not told";
    }
    // Every node reads the same holder: the winner.
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(waitFor([&] {
            auto records = site(i).read("bob", std::chrono::seconds(5));
            if (!records) return false;
            auto holder = peerJsIdHolder(*records, wallClockMs());
            return holder && holder->node == site(winner).id();
        })) << "node " << i << " reads another holder";
    }
}

TEST_F(PeerJsIds, AClosedSessionsIdIsReservedForItsTokenUntilTheReservationEnds) {
    PeerJsIdConfig config;
    config.reserve = std::chrono::milliseconds(3000);
    start(3, config);
    Site& a = site(0);
    Site& b = site(1);
    Site& c = site(2);
    a.claim("a1", "carol", "token-1");
    ASSERT_TRUE(waitFor([&] { return a.verdicts.count("a1"); }));
    ASSERT_EQ(a.verdicts["a1"], Verdict::Open);
    a.claims().release("a1");
    auto released = Clock::now();
    ASSERT_TRUE(waitSeen(b, "carol", a.id(), [](const PeerJsIdRecord& r) { return !r.live(); }));
    ASSERT_LT(Clock::now() - released, std::chrono::milliseconds(2500))
        << "the machine is too slow to check the reservation before it ends";

    b.claim("b1", "carol", "token-2");
    ASSERT_TRUE(waitFor([&] { return b.verdicts.count("b1"); }));
    EXPECT_EQ(b.verdicts["b1"], Verdict::Taken) << "another token got a reserved id";

    // Its own token still gets it, on another node, and lets it go again.
    b.claim("b2", "carol", "token-1");
    ASSERT_TRUE(waitFor([&] { return b.verdicts.count("b2"); }));
    EXPECT_EQ(b.verdicts["b2"], Verdict::Open);
    b.claims().release("b2");
    auto releasedAgain = Clock::now();

    // Once the reservation has ended, the id is anyone's.
    auto reservationEnd = releasedAgain + std::chrono::milliseconds(3200);
    waitFor([&] { return Clock::now() >= reservationEnd; }, std::chrono::seconds(5));
    c.claim("c1", "carol", "token-2");
    ASSERT_TRUE(waitFor([&] { return c.verdicts.count("c1"); }));
    EXPECT_EQ(c.verdicts["c1"], Verdict::Open);
}

TEST_F(PeerJsIds, AnIdLetGoIsStoredAgainWhenItsNodeTakesItAgain) {
    PeerJsIdConfig config;
    config.reserve = std::chrono::milliseconds(0);  // freed when the session closes
    start(2, config);
    Site& a = site(0);
    Site& b = site(1);
    a.claim("a1", "erin", "token-1");
    ASSERT_TRUE(waitFor([&] { return a.verdicts.count("a1"); }));
    ASSERT_EQ(a.verdicts["a1"], Verdict::Open);
    ASSERT_TRUE(waitSeen(b, "erin", a.id(), [](const PeerJsIdRecord& r) { return r.live(); }));
    a.claims().release("a1");
    ASSERT_TRUE(waitSeen(b, "erin", a.id(), [](const PeerJsIdRecord& r) { return !r.live(); }));

    // The taken-back value is still stored; the new record must not lose
    // to it (a value of its own, not a lower sequence number of the old).
    a.claim("a2", "erin", "token-2");
    ASSERT_TRUE(waitFor([&] { return a.verdicts.count("a2"); }));
    ASSERT_EQ(a.verdicts["a2"], Verdict::Open);
    std::string hash = peerJsTokenHash("erin", "token-2");
    ASSERT_TRUE(waitSeen(b, "erin", a.id(), [&](const PeerJsIdRecord& r) {
        return r.live() && r.tokenHash == hash;
    }));
    b.claim("b1", "erin", "token-1");
    ASSERT_TRUE(waitFor([&] { return b.verdicts.count("b1"); }));
    EXPECT_EQ(b.verdicts["b1"], Verdict::Taken);
}

// A node that no bootstrap entry joins to others is its whole network (its
// first node): no one else can hold an id, so it gives them itself.
TEST_F(PeerJsIds, ANodeThatIsItsWholeNetworkGivesChosenIds) {
    sites_.push_back(std::make_unique<Site>("first", std::vector<std::string>{}, quick()));
    Site& first = site(0);
    first.claim("s1", "dave", "token-1");
    ASSERT_TRUE(waitFor([&] { return first.verdicts.count("s1"); }));
    EXPECT_EQ(first.verdicts["s1"], Verdict::Open);
    EXPECT_EQ(first.claims().sessionOf("dave"), "s1");
    first.claim("s2", "dave", "token-2");
    ASSERT_TRUE(waitFor([&] { return first.verdicts.count("s2"); }));
    EXPECT_EQ(first.verdicts["s2"], Verdict::Taken);
}

// A node whose bootstrap entries name others, none of which answers, cannot
// tell whether one of them holds the id: it refuses rather than guess.
TEST_F(PeerJsIds, ANodeCutOffFromItsNetworkCannotGiveAChosenId) {
    PeerJsIdConfig config;
    config.lookupWait = std::chrono::milliseconds(3000);
    sites_.push_back(std::make_unique<Site>(
        "cut-off", std::vector<std::string>{"127.0.0.1:" + std::to_string(silentUdpPort())},
        config));
    Site& cutOff = site(0);
    auto started = Clock::now();
    cutOff.claim("s1", "dave", "token-1");
    ASSERT_TRUE(waitFor([&] { return cutOff.verdicts.count("s1"); }));
    std::printf("# a node cut off from its network answered in %lld ms\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started)
                        .count()));
    EXPECT_EQ(cutOff.verdicts["s1"], Verdict::NotInNetwork);
    EXPECT_EQ(cutOff.claims().sessionOf("dave"), "");
}

// What a PeerJS client of `id` is shown of what its session got so far:
// OPEN, ID-TAKEN, ERROR texts, and "close 1001" for a takeover.
std::vector<std::string> shown(test::Network& net, const std::string& session,
                               const std::string& id) {
    std::vector<std::string> out;
    for (const auto& data : net.inbox(session)) {
        std::string text;
        switch (renderForPeerJs(id, data, text)) {
            case PeerJsOutput::Send:
                out.push_back(text);
                break;
            case PeerJsOutput::SendAndClose:
                out.push_back(text + " close");
                break;
            case PeerJsOutput::CloseGoingAway:
                out.push_back("close 1001");
                break;
            default:
                break;
        }
    }
    return out;
}

TEST(PeerJsIdsOnNodes, ChosenIdsAreOpenedTakenAndTakenBackThroughNodes) {
    test::Network net;
    for (int i = 0; i < 3; ++i) net.addNode();
    ASSERT_TRUE(net.waitPublished());
    const std::string open = "{\"type\":\"OPEN\"}";
    const std::string taken =
        "{\"type\":\"ID-TAKEN\",\"payload\":{\"msg\":\"ID is taken\"}} close";

    std::string a = net.node(0).openPeerJsChosen("alice", "token-1");
    ASSERT_FALSE(a.empty());
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, a, "alice").empty(); }));
    EXPECT_EQ(shown(net, a, "alice"), std::vector<std::string>{open});

    // Another token on another node: ID-TAKEN and close, at once if the
    // record is there, or once the two records meet.
    std::string b = net.node(1).openPeerJsChosen("alice", "token-2");
    ASSERT_TRUE(net.waitFor([&] {
        auto s = shown(net, b, "alice");
        return !s.empty() && s.back() != open;
    }));
    EXPECT_EQ(shown(net, b, "alice").back(), taken);
    EXPECT_EQ(shown(net, a, "alice"), std::vector<std::string>{open}) << "the holder was disturbed";

    // The same token on a third node (a reconnect elsewhere): OPEN there,
    // and the old session is closed with 1001.
    auto started = Clock::now();
    std::string c = net.node(2).openPeerJsChosen("alice", "token-1");
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, c, "alice").empty(); }));
    EXPECT_EQ(shown(net, c, "alice"), std::vector<std::string>{open});
    ASSERT_TRUE(net.waitFor([&] { return shown(net, a, "alice").size() == 2; }));
    std::printf("# the old session was closed %lld ms after the reconnect\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           Clock::now() - started)
                                           .count()));
    EXPECT_EQ(shown(net, a, "alice").back(), "close 1001");

    // Closed, the id stays reserved for its token: another token is refused.
    net.node(2).closeSession(c);
    net.pump(std::chrono::milliseconds(200));
    std::string d = net.node(0).openPeerJsChosen("alice", "token-3");
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, d, "alice").empty(); }));
    EXPECT_EQ(shown(net, d, "alice").back(), taken);
    // Ids a node gives are not chosen ones.
    EXPECT_EQ(net.node(0).openPeerJsChosen(net.node(0).newSessionId(), "t"), "");
}

// What a PeerJS client sends: {"type":T,"dst":D,"payload":P}, read.
ClientMessage peerJsMessage(const std::string& type, const std::string& dst,
                            const std::string& payload) {
    ClientMessage m;
    m.type = type;
    m.recipient = dst;
    m.body = payload;
    return m;
}

// Opens a chosen id on a node and waits until its session is shown OPEN.
std::string openChosen(test::Network& net, std::size_t node, const std::string& id,
                       const std::string& token) {
    std::string session = net.node(node).openPeerJsChosen(id, token);
    if (session.empty() || !net.waitFor([&] { return !shown(net, session, id).empty(); }) ||
        shown(net, session, id).front() != "{\"type\":\"OPEN\"}") {
        return {};
    }
    net.inbox(session).clear();
    return session;
}

TEST(PeerJsIdsOnNodes, MessagesToAChosenIdHeldOnTheSameNodeReachItFromItsChosenId) {
    test::Network net;
    for (int i = 0; i < 2; ++i) net.addNode();
    ASSERT_TRUE(net.waitPublished());
    Node& node = net.node(0);
    std::string alice = openChosen(net, 0, "alice", "token-a");
    std::string bob = openChosen(net, 0, "bob", "token-b");
    ASSERT_FALSE(alice.empty());
    ASSERT_FALSE(bob.empty());

    ASSERT_EQ(node.submitPeerJs(alice, peerJsMessage("OFFER", "bob", "{\"sdp\":\"o\"}")),
              Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, bob, "bob").empty(); }));
    EXPECT_EQ(
        shown(net, bob, "bob"),
        std::vector<std::string>{
            "{\"type\":\"OFFER\",\"src\":\"alice\",\"dst\":\"bob\",\"payload\":{\"sdp\":\"o\"}}"});
    ASSERT_EQ(node.submitPeerJs(bob, peerJsMessage("ANSWER", "alice", "{\"sdp\":\"a\"}")),
              Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, alice, "alice").empty(); }));
    EXPECT_EQ(
        shown(net, alice, "alice"),
        std::vector<std::string>{
            "{\"type\":\"ANSWER\",\"src\":\"bob\",\"dst\":\"alice\",\"payload\":{\"sdp\":\"a\"}}"});

    // A session with an id the node gave speaks as that id, and a chosen
    // id speaks as itself to it too.
    std::string plain = node.newSessionId();
    ASSERT_EQ(node.openSessionAs(plain), Node::OpenAs::Opened);
    net.inbox(bob).clear();
    ASSERT_EQ(node.submitPeerJs(plain, peerJsMessage("CANDIDATE", "bob", "1")), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, bob, "bob").empty(); }));
    EXPECT_EQ(shown(net, bob, "bob"),
              std::vector<std::string>{"{\"type\":\"CANDIDATE\",\"src\":\"" + plain +
                                       "\",\"dst\":\"bob\",\"payload\":1}"});
    ASSERT_EQ(node.submitPeerJs(bob, peerJsMessage("CANDIDATE", plain, "2")), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, plain, plain).empty(); }));
    EXPECT_EQ(shown(net, plain, plain),
              std::vector<std::string>{"{\"type\":\"CANDIDATE\",\"src\":\"bob\",\"dst\":\"" +
                                       plain + "\",\"payload\":2}"});

    // bob reconnects with its token: what is for bob reaches the new
    // session, not the one it took the id from.
    std::string bob2 = node.openPeerJsChosen("bob", "token-b");
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, bob2, "bob").empty(); }));
    ASSERT_TRUE(net.waitFor([&] {
        return !shown(net, bob, "bob").empty() && shown(net, bob, "bob").back() == "close 1001";
    }));
    net.inbox(bob).clear();
    net.inbox(bob2).clear();
    ASSERT_EQ(node.submitPeerJs(alice, peerJsMessage("OFFER", "bob", "3")), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, bob2, "bob").empty(); }));
    EXPECT_EQ(shown(net, bob2, "bob"),
              std::vector<std::string>{
                  "{\"type\":\"OFFER\",\"src\":\"alice\",\"dst\":\"bob\",\"payload\":3}"});
    EXPECT_TRUE(shown(net, bob, "bob").empty()) << "the old session still got bob's messages";

    // Closed, bob is nobody here: alice is told it expired.
    node.closeSession(bob2);
    net.inbox(alice).clear();
    ASSERT_EQ(node.submitPeerJs(alice, peerJsMessage("OFFER", "bob", "4")), Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(alice).empty(); }));
    std::string expire;
    EXPECT_EQ(renderForPeerJs("alice", net.inbox(alice).front(), expire),
              PeerJsOutput::ExpireLater);
    EXPECT_EQ(expire, "{\"type\":\"EXPIRE\",\"src\":\"bob\",\"dst\":\"alice\"}");
}

TEST(PeerJsIdsOnNodes, ChosenIdsOnDifferentNodesReachEachOtherAsTheirChosenIds) {
    test::Network net;
    for (int i = 0; i < 3; ++i) net.addNode();
    ASSERT_TRUE(net.waitPublished());
    std::string alice = openChosen(net, 0, "alice", "token-a");
    std::string bob = openChosen(net, 1, "bob", "token-b");
    ASSERT_FALSE(alice.empty());
    ASSERT_FALSE(bob.empty());

    // node 0 finds bob's node from bob's record; node 1 checks that node 0
    // holds alice before it believes the sender.
    ASSERT_EQ(net.node(0).submitPeerJs(alice, peerJsMessage("OFFER", "bob", "{\"sdp\":\"o\"}")),
              Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, bob, "bob").empty(); })) << net.log();
    EXPECT_EQ(
        shown(net, bob, "bob"),
        std::vector<std::string>{
            "{\"type\":\"OFFER\",\"src\":\"alice\",\"dst\":\"bob\",\"payload\":{\"sdp\":\"o\"}}"});
    ASSERT_EQ(net.node(1).submitPeerJs(bob, peerJsMessage("ANSWER", "alice", "{\"sdp\":\"a\"}")),
              Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, alice, "alice").empty(); })) << net.log();
    EXPECT_EQ(
        shown(net, alice, "alice"),
        std::vector<std::string>{
            "{\"type\":\"ANSWER\",\"src\":\"bob\",\"dst\":\"alice\",\"payload\":{\"sdp\":\"a\"}}"});

    // In order, many at once.
    net.inbox(bob).clear();
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(net.node(0).submitPeerJs(alice,
                                           peerJsMessage("CANDIDATE", "bob", std::to_string(i))),
                  Node::Submit::Ok);
    }
    ASSERT_TRUE(net.waitFor([&] { return shown(net, bob, "bob").size() == 20; })) << net.log();
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(shown(net, bob, "bob")[i],
                  "{\"type\":\"CANDIDATE\",\"src\":\"alice\",\"dst\":\"bob\",\"payload\":" +
                      std::to_string(i) + "}");
    }

    // A session with an id its node gave reaches a chosen id on another node.
    std::string plain = net.node(2).newSessionId();
    ASSERT_EQ(net.node(2).openSessionAs(plain), Node::OpenAs::Opened);
    net.inbox(alice).clear();
    ASSERT_EQ(net.node(2).submitPeerJs(plain, peerJsMessage("OFFER", "alice", "1")),
              Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !shown(net, alice, "alice").empty(); })) << net.log();
    EXPECT_EQ(shown(net, alice, "alice"),
              std::vector<std::string>{"{\"type\":\"OFFER\",\"src\":\"" + plain +
                                       "\",\"dst\":\"alice\",\"payload\":1}"});

    // bob reconnects on node 2 with its token: alice's next message reaches
    // it there (node 1 answers that bob left, and node 0 looks again).
    std::string bob2 = openChosen(net, 2, "bob", "token-b");
    ASSERT_FALSE(bob2.empty());
    ASSERT_TRUE(net.waitFor([&] {
        return !shown(net, bob, "bob").empty() && shown(net, bob, "bob").back() == "close 1001";
    }));
    net.inbox(alice).clear();
    bool reached = net.waitFor(
        [&] {
            if (!shown(net, bob2, "bob").empty()) return true;
            net.node(0).submitPeerJs(alice, peerJsMessage("OFFER", "bob", "\"again\""));
            net.pump(std::chrono::milliseconds(300));
            return !shown(net, bob2, "bob").empty();
        },
        std::chrono::seconds(20));
    ASSERT_TRUE(reached) << net.log();
    EXPECT_EQ(shown(net, bob2, "bob").front(),
              "{\"type\":\"OFFER\",\"src\":\"alice\",\"dst\":\"bob\",\"payload\":\"again\"}");

    // bob closed: alice is told it expired, as PeerJS tells it.
    net.node(2).closeSession(bob2);
    net.pump(std::chrono::milliseconds(300));
    net.inbox(alice).clear();
    ASSERT_EQ(net.node(0).submitPeerJs(alice, peerJsMessage("OFFER", "bob", "4")),
              Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(alice).empty(); }, std::chrono::seconds(20)))
        << net.log();
    std::string expire;
    EXPECT_EQ(renderForPeerJs("alice", net.inbox(alice).back(), expire),
              PeerJsOutput::ExpireLater);
    EXPECT_EQ(expire, "{\"type\":\"EXPIRE\",\"src\":\"bob\",\"dst\":\"alice\"}");
}

}  // namespace
}  // namespace dwrtc
