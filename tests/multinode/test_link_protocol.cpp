// The node-to-node link as a stranger sees it: a TLS client on the link
// port that speaks for no node, for someone else's node, with a replayed
// hello, or for sessions or chosen ids that are not its own, delivers
// nothing, and the node goes on serving its real links.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "network.h"
#include "node_keys.h"

using namespace std::chrono_literals;
using dwrtc::test::Network;

namespace {

// A fresh RSA key, as a stranger would make one.
dwrtc::NodeKey strangerKey() { return dwrtc::test::rsaNodeKey(); }

// A blocking loopback client for the link port that speaks just enough
// RFC 6455, over TLS 1.3 unless told to stay plain.
class LinkClient {
public:
    explicit LinkClient(unsigned port, bool tls = true) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            return;
        }
        if (!tls) {
            connected_ = true;
            return;
        }
        ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_);
        connected_ = SSL_connect(ssl_) == 1;
    }
    ~LinkClient() {
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        ::close(fd_);
    }

    bool connected() const { return connected_; }

    // The TLS session's channel binding, as the node computes it.
    std::string binding() const {
        unsigned char out[32];
        const char* label = "EXPORTER-dwrtc-link-v2";
        if (SSL_export_keying_material(ssl_, out, sizeof out, label, std::strlen(label), nullptr, 0,
                                       0) != 1) {
            return {};
        }
        return std::string(reinterpret_cast<const char*>(out), sizeof out);
    }

    bool handshake() {
        std::string req =
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: dwrtc-link\r\n\r\n";
        if (!writeAll(req)) {
            return false;
        }
        std::string resp;
        char c;
        while (resp.find("\r\n\r\n") == std::string::npos && readSome(&c, 1, 5000) == 1) {
            resp += c;
        }
        return resp.rfind("HTTP/1.1 101", 0) == 0;
    }

    // One masked text frame; `declared` overrides the length in its header.
    bool sendText(const std::string& text, std::uint64_t declared = 0) {
        std::uint64_t len = declared ? declared : text.size();
        std::string frame;
        frame += static_cast<char>(0x81);
        if (len < 126) {
            frame += static_cast<char>(0x80 | len);
        } else if (len < 65536) {
            frame += static_cast<char>(0x80 | 126);
            frame += static_cast<char>(len >> 8);
            frame += static_cast<char>(len & 0xff);
        } else {
            frame += static_cast<char>(0x80 | 127);
            for (int shift = 56; shift >= 0; shift -= 8) {
                frame += static_cast<char>((len >> shift) & 0xff);
            }
        }
        const unsigned char mask[4] = {1, 2, 3, 4};
        frame.append(reinterpret_cast<const char*>(mask), 4);
        for (std::size_t i = 0; i < text.size(); ++i) {
            frame += static_cast<char>(text[i] ^ mask[i % 4]);
        }
        return writeAll(frame);
    }

    // The next text message from the node (unmasked frames, one frame each);
    // empty on close or timeout.
    std::string readText(std::chrono::milliseconds limit) {
        auto end = Network::Clock::now() + limit;
        while (Network::Clock::now() < end) {
            while (buffer_.size() >= 2) {
                unsigned opcode = static_cast<unsigned char>(buffer_[0]) & 0x0f;
                std::uint64_t len = static_cast<unsigned char>(buffer_[1]) & 0x7f;
                std::size_t head = 2;
                if (len == 126 || len == 127) {
                    std::size_t bytes = len == 126 ? 2 : 8;
                    if (buffer_.size() < 2 + bytes) break;
                    len = 0;
                    for (std::size_t i = 0; i < bytes; ++i) {
                        len = (len << 8) | static_cast<unsigned char>(buffer_[2 + i]);
                    }
                    head += bytes;
                }
                if (buffer_.size() < head + len) break;
                std::string payload = buffer_.substr(head, len);
                buffer_.erase(0, head + len);
                if (opcode == 8) {
                    closed_ = true;
                    return {};
                }
                if (opcode == 1) return payload;
            }
            char buf[4096];
            ssize_t n = readSome(buf, sizeof buf, 100);
            if (n == 0) {
                closed_ = true;
                return {};
            }
            if (n > 0) buffer_.append(buf, static_cast<std::size_t>(n));
        }
        return {};
    }

    // Reads until the node closes (close frame or EOF); false on timeout.
    bool waitClosed(std::chrono::milliseconds limit) {
        auto end = Network::Clock::now() + limit;
        while (!closed_ && Network::Clock::now() < end) {
            readText(50ms);
        }
        return closed_;
    }

    // Writes `bytes` of payload in pieces until the node stops taking them;
    // returns how many it took.
    std::size_t stream(std::size_t bytes) {
        std::string chunk(16 * 1024, 'x');
        std::size_t sent = 0;
        while (sent < bytes) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, 2000) <= 0 || (p.revents & (POLLERR | POLLHUP))) break;
            int n = ssl_ ? SSL_write(ssl_, chunk.data(), static_cast<int>(chunk.size()))
                         : static_cast<int>(::write(fd_, chunk.data(), chunk.size()));
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        return sent;
    }

private:
    bool writeAll(const std::string& data) {
        if (ssl_) {
            return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
                   static_cast<int>(data.size());
        }
        return ::write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    }
    ssize_t readSome(char* out, std::size_t n, int ms) {
        if (!(ssl_ && SSL_pending(ssl_) > 0)) {
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, ms);
            if (r < 0) return 0;
            if (r == 0) return -1;
        }
        if (!ssl_) return ::read(fd_, out, n);
        int r = SSL_read(ssl_, out, static_cast<int>(n));
        if (r > 0) return r;
        int err = SSL_get_error(ssl_, r);
        return err == SSL_ERROR_WANT_READ ? -1 : 0;
    }

    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    bool connected_ = false;
    bool closed_ = false;
    std::string buffer_;
};

std::string hello(const dwrtc::NodeKey& key, const std::string& binding,
                  dwrtc::LinkRole role = dwrtc::LinkRole::Initiator,
                  const std::string& networkKey = {}) {
    return dwrtc::serializeLinkHello(key.id(),
                                     dwrtc::makeLinkProof(key, role, binding, networkKey));
}

std::string msgFrame(const std::string& node, const std::string& sender,
                     const std::string& recipient, const std::string& body = "forged") {
    return dwrtc::serializeLinkDeliver(node, sender, recipient, "SignalingMessage", body);
}

class Links : public ::testing::Test {
protected:
    static dwrtc::NodeConfig quickHandshake() {
        dwrtc::NodeConfig c = Network::loopbackConfig();
        c.linkHandshakeMs = 1500;
        return c;
    }
    void SetUp() override {
        target_ = &net.addNode(quickHandshake());
        other_ = &net.addNode(quickHandshake());
        bob = target_->openSession();
        carol = other_->openSession();
    }

    // After an attack: the node still relays between its real peers.
    void expectRealLinksStillWork() {
        std::string alice = other_->openSession();
        other_->submit(alice, dwrtc::test::clientMessage(bob, "real"));
        ASSERT_TRUE(net.waitFor(
            [&] {
                for (const std::string& m : net.inbox(bob)) {
                    if (m.find("\"real\"") != std::string::npos) return true;
                }
                return false;
            },
            30s))
            << net.log();
    }

    bool logHas(const std::string& text) {
        return net.waitFor([&] { return net.log().find(text) != std::string::npos; }, 10s);
    }

    Network net;
    dwrtc::Node* target_ = nullptr;
    dwrtc::Node* other_ = nullptr;
    std::string bob, carol;
};

}  // namespace

TEST_F(Links, PlainTextClientGetsNoLink) {
    LinkClient client(target_->linkPort(), /*tls=*/false);
    ASSERT_TRUE(client.connected());
    EXPECT_FALSE(client.handshake());
    net.pump(100ms);
    EXPECT_TRUE(net.inbox(bob).empty());
    expectRealLinksStillWork();
}

TEST_F(Links, FramesBeforeHelloAreRefused) {
    LinkClient client(target_->linkPort());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.handshake());
    ASSERT_TRUE(client.sendText(msgFrame(other_->id(), carol, bob)));
    EXPECT_TRUE(client.waitClosed(10s));
    EXPECT_TRUE(logHas("a frame before a proven hello")) << net.log();
    net.pump(100ms);
    EXPECT_TRUE(net.inbox(bob).empty());
    expectRealLinksStillWork();
}

TEST_F(Links, OldProtocolVersionIsRefused) {
    LinkClient client(target_->linkPort());
    ASSERT_TRUE(client.handshake());
    ASSERT_TRUE(client.sendText("{\"v\":1,\"t\":\"hello\",\"node\":\"0123456789ab\"}"));
    EXPECT_TRUE(client.waitClosed(10s));
    EXPECT_TRUE(logHas("unsupported link protocol version 1")) << net.log();
}

TEST_F(Links, HelloForAnotherNodesIdIsRefused) {
    dwrtc::NodeKey mine = strangerKey();
    LinkClient client(target_->linkPort());
    ASSERT_TRUE(client.handshake());
    // The other node's id, with a proof made by a key of our own.
    std::string forged = dwrtc::serializeLinkHello(
        other_->id(), dwrtc::makeLinkProof(mine, dwrtc::LinkRole::Initiator, client.binding(), {}));
    ASSERT_TRUE(client.sendText(forged + "\n" + msgFrame(other_->id(), carol, bob)));
    EXPECT_TRUE(client.waitClosed(10s));
    EXPECT_TRUE(logHas("its key does not belong to node " + other_->id())) << net.log();
    net.pump(100ms);
    EXPECT_TRUE(net.inbox(bob).empty());
    expectRealLinksStillWork();
}

TEST_F(Links, ReplayedOrReflectedHelloIsRefused) {
    dwrtc::NodeKey mine = strangerKey();
    std::string firstBinding;
    {
        LinkClient first(target_->linkPort());
        ASSERT_TRUE(first.handshake());
        firstBinding = first.binding();
    }
    // A hello that was good for another TLS session proves nothing here.
    LinkClient replay(target_->linkPort());
    ASSERT_TRUE(replay.handshake());
    ASSERT_NE(replay.binding(), firstBinding);
    ASSERT_TRUE(replay.sendText(hello(mine, firstBinding)));
    EXPECT_TRUE(replay.waitClosed(10s));
    // Nor does one signed for the other end's role on this session.
    LinkClient reflect(target_->linkPort());
    ASSERT_TRUE(reflect.handshake());
    ASSERT_TRUE(reflect.sendText(hello(mine, reflect.binding(), dwrtc::LinkRole::Responder)));
    EXPECT_TRUE(reflect.waitClosed(10s));
    EXPECT_TRUE(net.waitFor(
        [&] {
            std::size_t count = 0;
            for (std::size_t at = 0;
                 (at = net.log().find("its signature does not hold", at)) != std::string::npos;
                 ++at) {
                ++count;
            }
            return count == 2;
        },
        10s))
        << net.log();
    expectRealLinksStillWork();
}

TEST_F(Links, ProvenStrangerSpeaksOnlyForItsOwnSessions) {
    dwrtc::NodeKey mine = strangerKey();
    LinkClient client(target_->linkPort());
    ASSERT_TRUE(client.handshake());
    std::string binding = client.binding();
    ASSERT_TRUE(client.sendText(hello(mine, binding)));

    // The node answers with a hello of its own that proves it is the node
    // whose sessions we want to reach.
    dwrtc::LinkFrame answer;
    std::string why;
    ASSERT_TRUE(dwrtc::parseLinkFrame(client.readText(10s), answer, why)) << why;
    EXPECT_EQ(answer.node, target_->id());
    EXPECT_TRUE(dwrtc::verifyLinkProof(answer.node, answer.proof, dwrtc::LinkRole::Responder,
                                       binding, {}, why))
        << why;

    // Its own session may speak: that is what an open network allows.
    std::string own = dwrtc::makeSessionId(mine.id());
    ASSERT_TRUE(client.sendText(msgFrame(mine.id(), own, bob, "from a stranger")));
    ASSERT_TRUE(net.waitFor([&] { return net.inbox(bob).size() == 1; }, 10s));
    EXPECT_NE(net.inbox(bob)[0].find("\"senderSessionId\":\"" + own + "\""), std::string::npos);

    // Speaking as a session of another node ends the link.
    ASSERT_TRUE(client.sendText(msgFrame(mine.id(), carol, bob)));
    EXPECT_TRUE(client.waitClosed(10s));
    EXPECT_TRUE(logHas("sent a message as session " + carol + " of another node")) << net.log();
    net.pump(100ms);
    EXPECT_EQ(net.inbox(bob).size(), 1u);
    expectRealLinksStillWork();
}

// A rogue node speaks as a chosen PeerJS id another node holds: the node
// asks the DHT who holds it, drops the message, says "notfound" and logs it
// once; the id's real holder still reaches its peers.
TEST_F(Links, ProvenStrangerCannotSpeakAsAChosenIdAnotherNodeHolds) {
    auto openChosen = [&](dwrtc::Node& node, const std::string& id) {
        std::string session = node.openPeerJsChosen(id, "token-" + id);
        EXPECT_FALSE(session.empty());
        EXPECT_TRUE(net.waitFor([&] { return !net.inbox(session).empty(); }, 10s));
        EXPECT_NE(net.inbox(session).front().find("\"open\""), std::string::npos)
            << net.inbox(session).front();
        net.inbox(session).clear();
        return session;
    };
    std::string bobChosen = openChosen(*target_, "bob");
    std::string alice = openChosen(*other_, "alice");

    dwrtc::NodeKey mine = strangerKey();
    LinkClient client(target_->linkPort());
    ASSERT_TRUE(client.handshake());
    ASSERT_TRUE(client.sendText(hello(mine, client.binding())));
    ASSERT_FALSE(client.readText(10s).empty());  // the node's own hello
    ASSERT_TRUE(client.sendText(msgFrame(mine.id(), "alice", "bob", "\"forged\"") + "\n" +
                                msgFrame(mine.id(), "alice", "bob", "\"forged again\"")));
    bool answered = false;
    auto end = Network::Clock::now() + 15s;
    while (!answered && Network::Clock::now() < end) {
        std::string text = client.readText(200ms);
        answered = text.find("\"t\":\"notfound\"") != std::string::npos &&
                   text.find("\"sender\":\"alice\"") != std::string::npos;
        net.pump(10ms);
    }
    EXPECT_TRUE(answered) << net.log();
    EXPECT_TRUE(logHas("sent a message as chosen id \"alice\", which the DHT does not show it "
                       "holding"))
        << net.log();
    net.pump(200ms);
    EXPECT_TRUE(net.inbox(bobChosen).empty()) << net.inbox(bobChosen).front();
    std::size_t logged = 0;
    for (std::size_t at = 0; (at = net.log().find("as chosen id \"alice\"", at)) != std::string::npos;
         ++at) {
        ++logged;
    }
    EXPECT_EQ(logged, 1u) << net.log();

    // The node that holds alice speaks as it.
    dwrtc::ClientMessage m;
    m.type = "OFFER";
    m.recipient = "bob";
    m.body = "\"real\"";
    ASSERT_EQ(other_->submitPeerJs(alice, m), dwrtc::Node::Submit::Ok);
    ASSERT_TRUE(net.waitFor([&] { return !net.inbox(bobChosen).empty(); }, 20s)) << net.log();
    EXPECT_NE(net.inbox(bobChosen).front().find("\"senderSessionId\":\"alice\""),
              std::string::npos)
        << net.inbox(bobChosen).front();
    EXPECT_NE(net.inbox(bobChosen).front().find("real"), std::string::npos);
}

TEST_F(Links, OversizedMessageBeforeHelloIsCutOffByItsHeader) {
    for (std::uint64_t declared : {std::uint64_t{15} << 20, std::uint64_t{1} << 40}) {
        LinkClient client(target_->linkPort());
        ASSERT_TRUE(client.handshake());
        ASSERT_TRUE(client.sendText("", declared));
        std::size_t taken = client.stream(64u << 20);
        // The kernel's socket buffers take some before the close is seen.
        EXPECT_LT(taken, 8u << 20) << "declared " << declared;
        EXPECT_TRUE(client.waitClosed(10s));
    }
    EXPECT_TRUE(logHas("a message of more than 4096 bytes before its hello")) << net.log();
    expectRealLinksStillWork();
}

TEST_F(Links, SilentPeerIsClosedAtTheHandshakeDeadline) {
    LinkClient client(target_->linkPort());
    ASSERT_TRUE(client.handshake());
    auto start = Network::Clock::now();
    EXPECT_TRUE(client.waitClosed(10s));
    auto took = Network::Clock::now() - start;
    // The deadline is 1.5 s, checked once a second.
    EXPECT_GE(took, 1s);
    EXPECT_TRUE(logHas("no proven hello within 1500 ms")) << net.log();
}

TEST(PrivateNetwork, RefusesLinksWithoutTheSecret) {
    Network net;
    dwrtc::NodeConfig config = Network::loopbackConfig();
    config.networkKey = "a secret of the members, 32 bytes";
    dwrtc::Node& node = net.addNode(config);
    std::string bob = node.openSession();
    dwrtc::NodeKey mine = strangerKey();
    std::string own = dwrtc::makeSessionId(mine.id());

    // A valid identity of its own is not enough in a private network,
    for (const std::string& secret :
         {std::string(), std::string("a guessed secret of 32 bytes!!")}) {
        LinkClient client(node.linkPort());
        ASSERT_TRUE(client.handshake());
        ASSERT_TRUE(
            client.sendText(hello(mine, client.binding(), dwrtc::LinkRole::Initiator, secret) +
                            "\n" + msgFrame(mine.id(), own, bob)));
        EXPECT_TRUE(client.waitClosed(10s));
    }
    EXPECT_TRUE(net.waitFor(
        [&] { return net.log().find("not a member of this private network") != std::string::npos; },
        10s))
        << net.log();
    net.pump(100ms);
    EXPECT_TRUE(net.inbox(bob).empty());

    // but with the secret it is.
    LinkClient member(node.linkPort());
    ASSERT_TRUE(member.handshake());
    ASSERT_TRUE(member.sendText(
        hello(mine, member.binding(), dwrtc::LinkRole::Initiator, config.networkKey) + "\n" +
        msgFrame(mine.id(), own, bob)));
    EXPECT_TRUE(net.waitFor([&] { return net.inbox(bob).size() == 1; }, 10s)) << net.log();
}

TEST(LinkLimits, RefusesLinksBeyondTheUnprovenCap) {
    Network net;
    dwrtc::NodeConfig config = Network::loopbackConfig();
    config.linkMaxUnproven = 2;
    config.linkHandshakeMs = 20000;  // the deadline stays out of the way
    dwrtc::Node& node = net.addNode(config);
    LinkClient first(node.linkPort());
    LinkClient second(node.linkPort());
    ASSERT_TRUE(first.handshake());
    ASSERT_TRUE(second.handshake());
    // Two wait to prove themselves: a third is refused at once.
    LinkClient third(node.linkPort());
    third.handshake();
    EXPECT_TRUE(third.waitClosed(5s));
    EXPECT_TRUE(net.waitFor(
        [&] {
            return net.log().find("refusing a node link: 2 links are still to prove") !=
                   std::string::npos;
        },
        5s))
        << net.log();
    // Once one of them proves itself, a place is free again.
    dwrtc::NodeKey mine = strangerKey();
    ASSERT_TRUE(first.sendText(hello(mine, first.binding())));
    ASSERT_FALSE(first.readText(10s).empty());  // the node's own hello
    LinkClient fourth(node.linkPort());
    ASSERT_TRUE(fourth.handshake());
    EXPECT_FALSE(fourth.waitClosed(1s));
}
