// A node whose links run over connections its host owns (DrivenLinks), as
// an nginx worker will own them, linked with a node that uses LinkService
// (libwebsockets). The host here is a small driver over non-blocking
// loopback sockets and OpenSSL: it listens, accepts, connects, does the TLS
// 1.3 handshake, hands over the channel binding and moves bytes. The hello
// and its proof are the router's, unchanged: a binding that differed on the
// two ends would fail the proof and no message would pass.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "driven_links.h"
#include "network.h"
#include "tls_loopback.h"

using namespace std::chrono_literals;
using dwrtc::DrivenLinks;
using dwrtc::LinkId;
using dwrtc::Node;
using dwrtc::test::clientMessage;
using dwrtc::test::field;
using dwrtc::test::clientTls;
using dwrtc::test::Network;
using dwrtc::test::serverTls;
using dwrtc::test::SslCtx;

namespace {

// One non-blocking TLS connection of a link.
struct Connection {
    Connection(int fd, SSL_CTX* ctx, bool outbound) : fd(fd), ssl(SSL_new(ctx)) {
        SSL_set_fd(ssl, fd);
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (outbound) {
            SSL_set_connect_state(ssl);
        } else {
            SSL_set_accept_state(ssl);
        }
    }
    ~Connection() {
        SSL_free(ssl);
        ::close(fd);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    int fd;
    SSL* ssl;
    bool secured = false;
    std::string out;  // taken from the links, not written yet
};

// The host's side: a listener on a loopback port and the connections of
// links, all on the test's thread, which is also the driven node's owner.
class LoopbackDriver : public dwrtc::LinkDriver {
public:
    LoopbackDriver() : server_(serverTls()), client_(clientTls()) {
        listener_ = dwrtc::test::loopbackListener(&port_, SOCK_NONBLOCK);
    }
    ~LoopbackDriver() override { ::close(listener_); }

    unsigned port() const { return port_; }
    void attach(DrivenLinks* links) { links_ = links; }

    bool connect(LinkId id, const std::string& host, unsigned port) override {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1 ||
            (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 &&
             errno != EINPROGRESS)) {
            ::close(fd);
            return false;
        }
        connections_.emplace(id, std::make_unique<Connection>(fd, client_.get(), true));
        ++connects;
        return true;
    }
    void wake(LinkId id) override { woken.push_back(id); }

    // One round: waits up to `limit` (less when the links want to run
    // sooner) for any socket or the links' eventfd, then serves them all.
    void step(std::chrono::milliseconds limit) {
        auto wait = std::min(limit, links_->run(DrivenLinks::Clock::now()));
        std::vector<pollfd> fds{{listener_, POLLIN, 0}, {links_->eventFd(), POLLIN, 0}};
        for (auto& [id, c] : connections_) {
            short want = POLLIN;
            if (!c->secured || !c->out.empty()) want |= POLLOUT;
            fds.push_back({c->fd, want, 0});
        }
        ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
        links_->run(DrivenLinks::Clock::now());
        acceptAll();
        for (auto it = connections_.begin(); it != connections_.end();) {
            if (serve(it->first, *it->second)) {
                ++it;
            } else {
                links_->closed(it->first);
                it = connections_.erase(it);
            }
        }
    }

    int accepts = 0;
    int connects = 0;
    // Hands over a binding with one byte changed: not this TLS session's.
    bool wrongBinding = false;
    std::vector<LinkId> woken;

private:
    void acceptAll() {
        for (;;) {
            sockaddr_in sa{};
            socklen_t len = sizeof sa;
            int fd = ::accept4(listener_, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK);
            if (fd < 0) return;
            char ip[INET_ADDRSTRLEN] = "";
            ::inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
            LinkId id =
                links_->accepted(std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port)));
            if (id == 0) {
                ::close(fd);
                continue;
            }
            ++accepts;
            connections_.emplace(id, std::make_unique<Connection>(fd, server_.get(), false));
        }
    }

    // Moves what there is to move on one connection; false: it is over.
    bool serve(LinkId id, Connection& c) {
        if (!c.secured) {
            int r = SSL_do_handshake(c.ssl);
            if (r != 1) {
                int err = SSL_get_error(c.ssl, r);
                return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
            }
            c.secured = true;
            unsigned char binding[32];
            const char* label = "EXPORTER-dwrtc-link-v2";
            if (SSL_version(c.ssl) != TLS1_3_VERSION ||
                SSL_export_keying_material(c.ssl, binding, sizeof binding, label,
                                           std::strlen(label), nullptr, 0, 0) != 1) {
                return false;
            }
            if (wrongBinding) binding[0] ^= 1;
            links_->secured(id, std::string_view(reinterpret_cast<char*>(binding), sizeof binding));
        }
        char buf[16384];
        for (;;) {
            int n = SSL_read(c.ssl, buf, sizeof buf);
            if (n > 0) {
                links_->received(id, buf, static_cast<std::size_t>(n));
                continue;
            }
            int err = SSL_get_error(c.ssl, n);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
            break;
        }
        DrivenLinks::Status status = links_->status(id);
        if (status == DrivenLinks::Status::Reset || status == DrivenLinks::Status::Gone) {
            linger off{1, 0};
            ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
            return false;
        }
        c.out += links_->take(id);
        while (!c.out.empty()) {
            int n = SSL_write(c.ssl, c.out.data(), static_cast<int>(c.out.size()));
            if (n <= 0) {
                int err = SSL_get_error(c.ssl, n);
                if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
                break;
            }
            c.out.erase(0, static_cast<std::size_t>(n));
        }
        if (status == DrivenLinks::Status::Finish && c.out.empty()) {
            SSL_shutdown(c.ssl);
            return false;
        }
        return true;
    }

    SslCtx server_;
    SslCtx client_;
    int listener_ = -1;
    unsigned port_ = 0;
    DrivenLinks* links_ = nullptr;
    std::map<LinkId, std::unique_ptr<Connection>> connections_;
};

// Node 0 runs LinkService (and is the DHT's first node); node 1's links
// are driven by the test's driver.
class DrivenLinksTest : public ::testing::Test {
protected:
    void SetUp() override {
        lws_ = &net_.addNode();
        dwrtc::NodeConfig config = Network::loopbackConfig();
        config.linkPortFrom = config.linkPortTo = driver_.port();
        config.linkDriver = &driver_;
        driven_ = &net_.addNode(config);
        ASSERT_NE(driven_->drivenLinks(), nullptr);
        driver_.attach(driven_->drivenLinks());
        ASSERT_EQ(driven_->linkPort(), driver_.port());
        ASSERT_TRUE(until([&] { return lws_->published() && driven_->published(); }, 30s))
            << net_.log();
    }

    // Drives the links and drains both nodes until pred() holds or the
    // time is up; returns pred().
    bool until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 20s) {
        auto end = Network::Clock::now() + limit;
        while (!pred()) {
            if (Network::Clock::now() >= end) return pred();
            driver_.step(10ms);
            net_.pump(0ms);
        }
        return true;
    }

    // Before net_: the nodes stop (and run their last tasks) while the
    // driver is still there.
    LoopbackDriver driver_;
    Network net_;
    Node* lws_ = nullptr;
    Node* driven_ = nullptr;
};

}  // namespace

TEST_F(DrivenLinksTest, LinkServiceNodeLinksToADrivenNodeAndBothTalk) {
    std::string alice = lws_->openSession();
    std::string bob = driven_->openSession();
    until([] { return false; }, 50ms);  // the sessions reach the routers

    // Alice's node finds Bob's record, connects to the driver's listener and
    // proves itself over the driven link; Bob gets the message.
    ASSERT_EQ(lws_->submit(alice, clientMessage(bob, "hello bob")), Node::Submit::Ok);
    ASSERT_TRUE(until([&] { return !net_.inbox(bob).empty(); })) << net_.log();
    EXPECT_EQ(field(net_.inbox(bob).front(), "senderSessionId"), alice);
    EXPECT_EQ(field(net_.inbox(bob).front(), "messageBody"), "hello bob");
    EXPECT_EQ(driver_.accepts, 1);
    EXPECT_EQ(driver_.connects, 0);

    // Bob answers: a node sends over links it opened itself, so the driven
    // router asks its host for a connection to Alice's node.
    ASSERT_EQ(driven_->submit(bob, clientMessage(alice, "hi alice")), Node::Submit::Ok);
    ASSERT_TRUE(until([&] { return !net_.inbox(alice).empty(); })) << net_.log();
    EXPECT_EQ(field(net_.inbox(alice).front(), "senderSessionId"), bob);
    EXPECT_EQ(field(net_.inbox(alice).front(), "messageBody"), "hi alice");
    EXPECT_EQ(driver_.connects, 1);
    EXPECT_EQ(driven_->stats().linksIn, 1u);
    EXPECT_EQ(driven_->stats().linksOut, 1u);
}

TEST_F(DrivenLinksTest, DrivenNodeConnectsToALinkServiceNodeAndBothTalk) {
    std::string alice = lws_->openSession();
    std::string bob = driven_->openSession();
    until([] { return false; }, 50ms);

    // The driven router asks its host to connect; TLS, the upgrade (the
    // codec's client against libwebsockets' server) and the hellos follow.
    ASSERT_EQ(driven_->submit(bob, clientMessage(alice, "hi alice")), Node::Submit::Ok);
    ASSERT_TRUE(until([&] { return !net_.inbox(alice).empty(); })) << net_.log();
    EXPECT_EQ(field(net_.inbox(alice).front(), "messageBody"), "hi alice");
    EXPECT_EQ(driver_.connects, 1);
    EXPECT_EQ(driver_.accepts, 0);

    // The router runs inside submit() on the owner thread: with the link
    // open, the frame is ready for the host before submit() returns.
    driver_.woken.clear();
    ASSERT_EQ(driven_->submit(bob, clientMessage(alice, "at once")), Node::Submit::Ok);
    EXPECT_FALSE(driver_.woken.empty());
    ASSERT_TRUE(until([&] { return net_.inbox(alice).size() == 2; })) << net_.log();
    EXPECT_EQ(field(net_.inbox(alice).back(), "messageBody"), "at once");

    // A burst back (over a link Alice's node opens to the driver's
    // listener), packed into few WebSocket messages, arrives in order.
    for (int i = 0; i < 50; ++i) {
        ASSERT_EQ(lws_->submit(alice, clientMessage(bob, "m" + std::to_string(i))),
                  Node::Submit::Ok);
    }
    ASSERT_TRUE(until([&] { return net_.inbox(bob).size() == 50; })) << net_.log();
    for (int i = 0; i < 50; ++i) {
        EXPECT_EQ(field(net_.inbox(bob)[i], "messageBody"), "m" + std::to_string(i));
    }
    EXPECT_EQ(driver_.accepts, 1);
    EXPECT_EQ(driven_->stats().linksOut, 1u);
    EXPECT_EQ(driven_->stats().linksIn, 1u);
}

TEST_F(DrivenLinksTest, AHelloBoundToAnotherSessionIsRefused) {
    // The proof signs the channel binding: one the host got wrong (another
    // session's) fails it, and nothing passes over that link.
    driver_.wrongBinding = true;
    std::string alice = lws_->openSession();
    std::string bob = driven_->openSession();
    until([] { return false; }, 50ms);
    ASSERT_EQ(lws_->submit(alice, clientMessage(bob, "hello bob")), Node::Submit::Ok);
    ASSERT_TRUE(until([&] { return net_.log().find("does not prove it") != std::string::npos; }))
        << net_.log();
    until([] { return false; }, 200ms);
    EXPECT_TRUE(net_.inbox(bob).empty());
    EXPECT_GE(driver_.accepts, 1);
}
