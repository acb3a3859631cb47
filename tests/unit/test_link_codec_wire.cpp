// The link codec against the real thing: over TLS 1.3 on loopback, a client
// codec links to a running in-process node (libwebsockets serving its link
// port), and a server codec takes a link that LinkService (libwebsockets as
// a client) opens. The sockets and TLS here are the test's own (OpenSSL
// directly), as the nginx transport will own them: the codec only gets and
// gives bytes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "link_codec.h"
#include "link_service.h"
#include "network.h"
#include "node_keys.h"
#include "tls_loopback.h"

using namespace std::chrono_literals;
using dwrtc::LinkCodec;
using dwrtc::test::Network;

namespace {

using Clock = std::chrono::steady_clock;

// A blocking TLS 1.3 connection on a loopback socket, either end.
class TlsSocket {
public:
    static std::unique_ptr<TlsSocket> connectTo(unsigned port) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            ::close(fd);
            return nullptr;
        }
        SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        auto s = std::unique_ptr<TlsSocket>(new TlsSocket(fd, ctx));
        return SSL_connect(s->ssl_) == 1 ? std::move(s) : nullptr;
    }

    // Takes a connection on listener within 10 s; ctx has the certificate.
    static std::unique_ptr<TlsSocket> acceptOn(int listener, SSL_CTX* ctx) {
        pollfd p{listener, POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) return nullptr;
        int fd = ::accept(listener, nullptr, nullptr);
        if (fd < 0) return nullptr;
        SSL_CTX_up_ref(ctx);
        auto s = std::unique_ptr<TlsSocket>(new TlsSocket(fd, ctx));
        SSL_set_accept_state(s->ssl_);
        return SSL_accept(s->ssl_) == 1 ? std::move(s) : nullptr;
    }

    ~TlsSocket() {
        SSL_free(ssl_);
        SSL_CTX_free(ctx_);
        ::close(fd_);
    }

    std::string binding() const {
        unsigned char out[32];
        const char* label = "EXPORTER-dwrtc-link-v2";
        SSL_export_keying_material(ssl_, out, sizeof out, label, std::strlen(label), nullptr, 0, 0);
        return std::string(reinterpret_cast<const char*>(out), sizeof out);
    }

    bool write(const std::string& bytes) {
        return bytes.empty() || SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
                                    static_cast<int>(bytes.size());
    }

    // What arrives within `ms`: "" if nothing; sets eof() at the end.
    std::string read(int ms) {
        if (SSL_pending(ssl_) == 0) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, ms) != 1) return {};
        }
        char buf[16384];
        int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) return std::string(buf, static_cast<std::size_t>(n));
        int err = SSL_get_error(ssl_, n);
        if (err != SSL_ERROR_WANT_READ) eof_ = true;
        return {};
    }

    bool eof() const { return eof_; }

private:
    TlsSocket(int fd, SSL_CTX* ctx) : fd_(fd), ctx_(ctx), ssl_(SSL_new(ctx)) {
        SSL_set_fd(ssl_, fd_);
    }

    int fd_;
    SSL_CTX* ctx_;
    SSL* ssl_;
    bool eof_ = false;
};

class Recorder : public dwrtc::LinkCodecHandler {
public:
    void onOpen() override { events.push_back("open"); }
    void onFrame(std::string_view frame) override {
        events.push_back("frame");
        frames.emplace_back(frame);
    }
    void onMessageEnd() override { events.push_back("end"); }
    void onClosed(int code, std::string_view) override {
        events.push_back("closed " + std::to_string(code));
        ended = true;
    }
    void onFailed(std::string_view reason) override {
        events.push_back("failed " + std::string(reason));
        ended = true;
    }
    bool has(const std::string& e) const {
        return std::find(events.begin(), events.end(), e) != events.end();
    }

    std::vector<std::string> events;
    std::vector<std::string> frames;
    bool ended = false;
};

// Moves bytes between a codec and its socket until done() or the time is
// up (while `idle` runs between reads); returns done().
bool drive(LinkCodec& codec, TlsSocket& socket, const std::function<bool()>& done,
           std::chrono::milliseconds limit, const std::function<void()>& idle = {}) {
    auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end && !socket.eof()) {
        if (!socket.write(codec.takeBytes())) return done();
        std::string in = socket.read(20);
        if (!in.empty()) codec.feed(in.data(), in.size());
        if (idle) idle();
    }
    socket.write(codec.takeBytes());
    return done();
}

std::string helloOf(const dwrtc::NodeKey& key, const std::string& binding, dwrtc::LinkRole role) {
    return dwrtc::serializeLinkHello(key.id(), dwrtc::makeLinkProof(key, role, binding, {}));
}

class WireToNode : public ::testing::Test {
protected:
    void SetUp() override {
        dwrtc::NodeConfig config = Network::loopbackConfig();
        config.linkHandshakeMs = 20000;  // out of the way: the tests close links themselves
        node_ = &net_.addNode(config);
        socket_ = TlsSocket::connectTo(node_->linkPort());
        ASSERT_TRUE(socket_);
        codec_ = LinkCodec::client(events_, "127.0.0.1", {}, Clock::now());
    }

    bool logHas(const std::string& text) {
        return net_.waitFor([&] { return net_.log().find(text) != std::string::npos; }, 10s);
    }

    Network net_;
    dwrtc::Node* node_ = nullptr;
    std::unique_ptr<TlsSocket> socket_;
    Recorder events_;
    std::unique_ptr<LinkCodec> codec_;
};

}  // namespace

TEST_F(WireToNode, NodeAcceptsTheUpgradeAndSpeaksTheFraming) {
    // The node's 101 passes the codec's checks (status, Upgrade, Connection,
    // Sec-WebSocket-Accept for our key, the dwrtc-link subprotocol).
    ASSERT_TRUE(drive(
        *codec_, *socket_, [&] { return events_.has("open") || events_.ended; }, 10s));
    ASSERT_EQ(events_.events, std::vector<std::string>{"open"});

    // Our hello, masked, in one message; the node answers with its own.
    dwrtc::NodeKey mine = dwrtc::test::rsaNodeKey();
    std::string binding = socket_->binding();
    codec_->sendFrame(helloOf(mine, binding, dwrtc::LinkRole::Initiator));
    ASSERT_TRUE(drive(
        *codec_, *socket_, [&] { return !events_.frames.empty() || events_.ended; }, 10s,
        [&] { net_.pump(0ms); }))
        << net_.log();
    dwrtc::LinkFrame answer;
    std::string why;
    ASSERT_TRUE(dwrtc::parseLinkFrame(events_.frames[0], answer, why)) << why;
    EXPECT_EQ(answer.kind, dwrtc::LinkFrame::Kind::Hello);
    EXPECT_EQ(answer.node, node_->id());
    EXPECT_TRUE(dwrtc::verifyLinkProof(answer.node, answer.proof, dwrtc::LinkRole::Responder,
                                       binding, {}, why))
        << why;
    codec_->setProven();

    // Two messages of our own sessions packed into one WebSocket message:
    // both delivered, and the node acknowledges them.
    std::string bob = node_->openSession();
    std::string own = dwrtc::makeSessionId(mine.id());
    codec_->sendFrame(dwrtc::serializeLinkDeliver(mine.id(), own, bob, "SignalingMessage", "one"));
    codec_->sendFrame(dwrtc::serializeLinkDeliver(mine.id(), own, bob, "SignalingMessage", "two"));
    std::size_t framesBefore = events_.frames.size();
    ASSERT_TRUE(drive(
        *codec_, *socket_,
        [&] { return net_.inbox(bob).size() == 2 && events_.frames.size() > framesBefore; }, 10s,
        [&] { net_.pump(0ms); }))
        << net_.log();
    EXPECT_NE(net_.inbox(bob)[0].find("\"one\""), std::string::npos);
    EXPECT_NE(net_.inbox(bob)[1].find("\"two\""), std::string::npos);
    dwrtc::LinkFrame ack;
    ASSERT_TRUE(dwrtc::parseLinkFrame(events_.frames.back(), ack, why)) << why;
    EXPECT_EQ(ack.kind, dwrtc::LinkFrame::Kind::Ack);

    // A close handshake: the node answers our close with its own.
    codec_->close(1000, "done");
    EXPECT_TRUE(drive(
        *codec_, *socket_, [&] { return events_.ended; }, 10s, [&] { net_.pump(0ms); }));
    EXPECT_TRUE(events_.has("closed 1000")) << events_.events.back();
}

TEST_F(WireToNode, NodeClosesALinkOnAFrameBeforeAProvenHello) {
    ASSERT_TRUE(drive(
        *codec_, *socket_, [&] { return events_.has("open") || events_.ended; }, 10s));
    ASSERT_TRUE(events_.has("open"));
    std::string bob = node_->openSession();
    std::string someone = dwrtc::makeSessionId(node_->id());
    codec_->sendFrame(
        dwrtc::serializeLinkDeliver(node_->id(), someone, bob, "SignalingMessage", "forged"));
    // The node ends the link: a close frame or the connection's end.
    drive(
        *codec_, *socket_, [&] { return events_.ended; }, 10s, [&] { net_.pump(0ms); });
    EXPECT_TRUE(events_.ended || socket_->eof());
    std::printf("the node ended the link with: %s\n",
                events_.ended ? events_.events.back().c_str() : "the connection's end");
    EXPECT_TRUE(logHas("a frame before a proven hello")) << net_.log();
    EXPECT_TRUE(net_.inbox(bob).empty());
}

namespace {

// LinkEvents that a test thread can wait on (LinkService calls them on its
// own thread).
class WaitableLinkEvents : public dwrtc::LinkEvents {
public:
    void onLinkOpen(dwrtc::LinkId id, bool outbound, std::string_view binding) override {
        // The binding first: a waiter woken by the note reads it at once.
        {
            std::lock_guard<std::mutex> lock(mutex_);
            binding_ = std::string(binding);
        }
        note("open " + std::to_string(id) + (outbound ? " out" : " in"));
    }
    void onLinkFrame(dwrtc::LinkId, std::string_view frame) override {
        note("frame " + std::string(frame));
    }
    void onLinkMessageEnd(dwrtc::LinkId) override { note("end"); }
    void onLinkClosed(dwrtc::LinkId, bool, bool opened) override {
        note(std::string("closed") + (opened ? "" : " unopened"));
    }
    void onTick() override {}
    void onSoon() override {}

    bool waitFor(const std::string& event, std::chrono::milliseconds limit) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, limit, [&] {
            return std::find(events_.begin(), events_.end(), event) != events_.end();
        });
    }
    std::vector<std::string> events() {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_;
    }
    std::string binding() {
        std::lock_guard<std::mutex> lock(mutex_);
        return binding_;
    }

private:
    void note(std::string event) {
        std::lock_guard<std::mutex> lock(mutex_);
        events_.push_back(std::move(event));
        changed_.notify_all();
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> events_;
    std::string binding_;
};

}  // namespace

TEST(WireFromLinkService, ServerCodecTakesALinkThatLinkServiceOpens) {
    // Our listener on a free loopback port.
    unsigned port = 0;
    int listener = dwrtc::test::loopbackListener(&port);
    dwrtc::test::SslCtx tls = dwrtc::test::serverTls();

    dwrtc::LinkServiceConfig config;
    config.bindAddress = "127.0.0.1";
    config.handshakeTimeout = 20s;
    config.maxUnprovenLinks = 8;
    WaitableLinkEvents linkEvents;
    dwrtc::LinkService service(config, [](int, std::string) {});
    ASSERT_TRUE(service.start(&linkEvents));
    std::atomic<dwrtc::LinkId> id{0};
    service.post([&] { id = service.connect("127.0.0.1", port); });

    auto socket = TlsSocket::acceptOn(listener, tls.get());
    ASSERT_TRUE(socket);
    Recorder events;
    auto codec = LinkCodec::server(events, {}, Clock::now());
    // libwebsockets' request passes our checks, and our 101 passes its own.
    ASSERT_TRUE(drive(
        *codec, *socket, [&] { return events.has("open") || events.ended; }, 10s));
    ASSERT_EQ(events.events, std::vector<std::string>{"open"});
    ASSERT_TRUE(linkEvents.waitFor("open " + std::to_string(id.load()) + " out", 10s))
        << ::testing::PrintToString(linkEvents.events());
    // Both ends of the one TLS session see the same channel binding.
    EXPECT_EQ(linkEvents.binding(), socket->binding());

    // Our frames, unmasked, packed into one message: LinkService splits them.
    codec->sendFrame("{\"a\":1}");
    codec->sendFrame("{\"b\":2}");
    drive(
        *codec, *socket, [] { return false; }, 200ms);
    ASSERT_TRUE(linkEvents.waitFor("end", 10s));
    std::vector<std::string> seen = linkEvents.events();
    EXPECT_EQ(std::vector<std::string>(seen.end() - 3, seen.end()),
              (std::vector<std::string>{"frame {\"a\":1}", "frame {\"b\":2}", "end"}));

    // LinkService's frames, masked, reach the codec in order.
    service.post([&] {
        service.send(id, "one");
        service.send(id, "two");
    });
    ASSERT_TRUE(drive(
        *codec, *socket, [&] { return events.frames.size() == 2; }, 10s));
    EXPECT_EQ(events.frames, (std::vector<std::string>{"one", "two"}));

    // A proven link is closed with a close handshake.
    service.post([&] {
        service.setProven(id);
        service.close(id);
    });
    EXPECT_TRUE(drive(
        *codec, *socket, [&] { return events.ended; }, 10s));
    EXPECT_TRUE(events.has("closed 1000")) << events.events.back();
    EXPECT_TRUE(linkEvents.waitFor("closed", 10s));

    service.stop();
    ::close(listener);
}
