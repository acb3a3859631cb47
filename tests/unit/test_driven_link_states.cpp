// DrivenLinks on its own, in memory: the peer is a LinkCodec of the other
// role, the host a fake that records what it is asked, time is given. What
// a driven link does at each step of its life, in milliseconds.
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "driven_links.h"
#include "dwrtc/dwrtc.h"

using namespace std::chrono_literals;
using dwrtc::DrivenLinks;
using dwrtc::LinkCodec;
using dwrtc::LinkId;

namespace {

class Events : public dwrtc::LinkEvents {
public:
    void onLinkOpen(LinkId id, bool outbound, std::string_view b) override {
        seen.push_back("open " + std::to_string(id) + (outbound ? " out" : " in"));
        binding = std::string(b);
    }
    void onLinkFrame(LinkId, std::string_view frame) override {
        seen.push_back("frame " + std::string(frame));
    }
    void onLinkMessageEnd(LinkId) override { seen.push_back("end"); }
    void onLinkClosed(LinkId id, bool, bool opened) override {
        seen.push_back("closed " + std::to_string(id) + (opened ? "" : " unopened"));
    }
    void onTick() override { ++ticks; }
    void onSoon() override { ++soons; }

    bool has(const std::string& e) const {
        return std::find(seen.begin(), seen.end(), e) != seen.end();
    }

    std::vector<std::string> seen;
    std::string binding;
    int ticks = 0;
    int soons = 0;
};

class Driver : public dwrtc::LinkDriver {
public:
    bool connect(LinkId id, const std::string& host, unsigned port) override {
        connects.push_back(id);
        lastHost = host + ":" + std::to_string(port);
        return connectWorks;
    }
    void wake(LinkId id) override { woken.push_back(id); }

    bool connectWorks = true;
    std::vector<LinkId> connects;
    std::vector<LinkId> woken;
    std::string lastHost;
};

class Peer : public dwrtc::LinkCodecHandler {
public:
    void onOpen() override { seen.push_back("open"); }
    void onFrame(std::string_view f) override { seen.push_back("frame " + std::string(f)); }
    void onMessageEnd() override {}
    void onClosed(int code, std::string_view) override {
        seen.push_back("closed " + std::to_string(code));
    }
    void onFailed(std::string_view reason) override {
        seen.push_back("failed " + std::string(reason));
    }
    bool has(const std::string& e) const {
        return std::find(seen.begin(), seen.end(), e) != seen.end();
    }
    std::vector<std::string> seen;
};

const std::string kBinding(32, 'b');

class DrivenLinkStates : public ::testing::Test {
protected:
    DrivenLinkStates()
        : links_(config(), driver_, [this](int, std::string line) { log_ += line + "\n"; }) {
        links_.start(&events_);
    }

    static dwrtc::DrivenLinksConfig config() {
        dwrtc::DrivenLinksConfig c;
        c.port = 4321;
        c.handshakeTimeout = 5000ms;
        c.maxUnprovenLinks = 2;
        return c;
    }

    // Moves bytes between link id and the peer's codec until both are quiet.
    void exchange(LinkId id, LinkCodec& peer) {
        for (int i = 0; i < 10; ++i) {
            std::string toPeer = links_.take(id);
            std::string fromPeer = peer.takeBytes();
            if (toPeer.empty() && fromPeer.empty()) return;
            if (!toPeer.empty()) peer.feed(toPeer.data(), toPeer.size());
            if (!fromPeer.empty()) links_.received(id, fromPeer.data(), fromPeer.size());
        }
    }

    // An accepted link, upgraded by a client codec.
    LinkId openInbound(std::unique_ptr<LinkCodec>& client) {
        LinkId id = links_.accepted("192.0.2.1:5000");
        links_.secured(id, kBinding);
        client = LinkCodec::client(peer_, "node", {}, DrivenLinks::Clock::now());
        exchange(id, *client);
        return id;
    }

    Events events_;
    Driver driver_;
    Peer peer_;
    std::string log_;
    DrivenLinks links_;
};

}  // namespace

TEST_F(DrivenLinkStates, AcceptedLinkOpensAfterTheUpgradeAndCarriesFramesBothWays) {
    std::unique_ptr<LinkCodec> client;
    LinkId id = openInbound(client);
    ASSERT_NE(id, 0u);
    EXPECT_TRUE(peer_.has("open"));
    ASSERT_TRUE(events_.has("open " + std::to_string(id) + " in"));
    EXPECT_EQ(events_.binding, kBinding);
    EXPECT_EQ(links_.peerAddress(id), "192.0.2.1:5000");

    client->sendFrame("{\"a\":1}");
    client->sendFrame("{\"b\":2}");
    exchange(id, *client);
    EXPECT_EQ(std::vector<std::string>(events_.seen.end() - 3, events_.seen.end()),
              (std::vector<std::string>{"frame {\"a\":1}", "frame {\"b\":2}", "end"}));

    driver_.woken.clear();
    links_.send(id, "{\"c\":3}");
    EXPECT_EQ(driver_.woken, std::vector<LinkId>{id});
    exchange(id, *client);
    EXPECT_TRUE(peer_.has("frame {\"c\":3}"));
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Open);
}

TEST_F(DrivenLinkStates, AnOutboundLinkSendsTheFramesItGotBeforeTheUpgradeAfterIt) {
    LinkId id = links_.connect("198.51.100.7", 4230);
    ASSERT_NE(id, 0u);
    EXPECT_EQ(driver_.connects, std::vector<LinkId>{id});
    EXPECT_EQ(driver_.lastHost, "198.51.100.7:4230");
    links_.send(id, "{\"hello\":1}");  // the router's hello, before TLS is up
    EXPECT_EQ(links_.take(id), "");
    links_.secured(id, kBinding);
    auto server = LinkCodec::server(peer_, {}, DrivenLinks::Clock::now());
    exchange(id, *server);
    EXPECT_TRUE(events_.has("open " + std::to_string(id) + " out"));
    EXPECT_TRUE(peer_.has("frame {\"hello\":1}"));
}

TEST_F(DrivenLinkStates, AConnectThatFailsAtOnceIsAnsweredByTheReturnValueAlone) {
    driver_.connectWorks = false;
    EXPECT_EQ(links_.connect("198.51.100.7", 4230), 0u);
    ASSERT_EQ(driver_.connects.size(), 1u);
    EXPECT_EQ(links_.status(driver_.connects[0]), DrivenLinks::Status::Gone);
    EXPECT_TRUE(events_.seen.empty());
}

TEST_F(DrivenLinkStates, AConnectThatFailsLaterIsAClosedLinkThatNeverOpened) {
    LinkId id = links_.connect("198.51.100.7", 4230);
    links_.closed(id);
    EXPECT_EQ(events_.seen, std::vector<std::string>{"closed " + std::to_string(id) + " unopened"});
}

TEST_F(DrivenLinkStates, AnUnprovenLinkIsCutOffAtItsDeadline) {
    std::unique_ptr<LinkCodec> client;
    LinkId id = openInbound(client);
    auto now = DrivenLinks::Clock::now();
    links_.run(now + 4s);
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Open);
    links_.run(now + 6s);
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Finish);
    client->sendFrame("{\"late\":1}");
    exchange(id, *client);
    EXPECT_FALSE(events_.has("frame {\"late\":1}"));
    EXPECT_NE(log_.find("no proven hello within 5000 ms"), std::string::npos) << log_;
    EXPECT_GE(events_.ticks, 1);
}

TEST_F(DrivenLinkStates, AProvenLinkHasNoDeadlineAndClosesWithACloseFrame) {
    std::unique_ptr<LinkCodec> client;
    LinkId id = openInbound(client);
    links_.setProven(id);
    links_.run(DrivenLinks::Clock::now() + 60s);
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Open);
    links_.send(id, "{\"last\":1}");
    links_.close(id);
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Finish);
    exchange(id, *client);
    EXPECT_TRUE(peer_.has("frame {\"last\":1}"));
    EXPECT_TRUE(peer_.has("closed 1000"));
}

TEST_F(DrivenLinkStates, CloseAllFinishesEveryLinkAProvenOneWithACloseFrame) {
    std::unique_ptr<LinkCodec> client;
    LinkId proven = openInbound(client);
    links_.setProven(proven);
    LinkId unproven = links_.accepted("192.0.2.2:5000");
    links_.send(proven, "{\"last\":1}");
    links_.closeAll();
    EXPECT_EQ(links_.status(proven), DrivenLinks::Status::Finish);
    EXPECT_EQ(links_.status(unproven), DrivenLinks::Status::Finish);
    exchange(proven, *client);
    EXPECT_TRUE(peer_.has("frame {\"last\":1}"));
    EXPECT_TRUE(peer_.has("closed 1000"));
}

TEST_F(DrivenLinkStates, AbortResetsTheLinkAndDropsWhatIsQueued) {
    std::unique_ptr<LinkCodec> client;
    LinkId id = openInbound(client);
    links_.setProven(id);
    links_.send(id, "{\"lost\":1}");
    links_.abort(id);
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Reset);
    EXPECT_EQ(links_.take(id), "");
    links_.closed(id);
    EXPECT_TRUE(events_.has("closed " + std::to_string(id)));
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Gone);
}

TEST_F(DrivenLinkStates, ABindingThatIsNoTls13ExporterResetsTheLink) {
    LinkId id = links_.accepted("192.0.2.1:5000");
    links_.secured(id, "short");
    EXPECT_EQ(links_.status(id), DrivenLinks::Status::Reset);
    EXPECT_NE(log_.find("not TLS 1.3"), std::string::npos);
}

TEST_F(DrivenLinkStates, TheCapOnUnprovenLinksIsGivenBackWhenProvenOrClosed) {
    std::unique_ptr<LinkCodec> client;
    LinkId a = openInbound(client);
    LinkId b = links_.accepted("192.0.2.2:5000");
    EXPECT_NE(b, 0u);
    EXPECT_EQ(links_.accepted("192.0.2.3:5000"), 0u);
    links_.setProven(a);
    LinkId c = links_.accepted("192.0.2.3:5000");
    EXPECT_NE(c, 0u);
    EXPECT_EQ(links_.accepted("192.0.2.4:5000"), 0u);
    links_.closed(b);
    EXPECT_NE(links_.accepted("192.0.2.4:5000"), 0u);
}

TEST_F(DrivenLinkStates, APostFromAnotherThreadRunsOnTheDrivingThread) {
    std::thread::id ranOn;
    std::thread poster([&] { links_.post([&] { ranOn = std::this_thread::get_id(); }); });
    poster.join();
    pollfd p{links_.eventFd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 0), 1);
    links_.run(DrivenLinks::Clock::now());
    EXPECT_EQ(ranOn, std::this_thread::get_id());
    // The eventfd is read: quiet until the next post.
    EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST_F(DrivenLinkStates, CallSoonRunsOnceWhenItsTimeHasCome) {
    links_.callSoon(300ms);
    links_.callSoon(10ms);  // changes nothing while one is pending
    auto now = DrivenLinks::Clock::now();  // after the call: its time is at most 300 ms on
    EXPECT_LE(links_.run(now), 300ms);
    EXPECT_EQ(events_.soons, 0);
    links_.run(now + 400ms);
    links_.run(now + 500ms);
    EXPECT_EQ(events_.soons, 1);
}
