// The node-to-node link as a stranger sees it: a plain WebSocket client on
// the link port that speaks the wrong protocol version is refused.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "network.h"

using namespace std::chrono_literals;
using dwrtc::test::Network;

namespace {

// A blocking loopback client that speaks just enough RFC 6455.
class RawLinkClient {
public:
    explicit RawLinkClient(unsigned port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ~RawLinkClient() { ::close(fd_); }

    bool connected() const { return connected_; }

    bool handshake() {
        std::string req =
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: dwrtc-link\r\n\r\n";
        if (::write(fd_, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
            return false;
        }
        std::string resp;
        char c;
        while (resp.find("\r\n\r\n") == std::string::npos && readSome(&c, 1) == 1) {
            resp += c;
        }
        return resp.rfind("HTTP/1.1 101", 0) == 0;
    }

    void sendText(const std::string& text) {
        std::string frame;
        frame += static_cast<char>(0x81);
        const unsigned char mask[4] = {1, 2, 3, 4};
        if (text.size() < 126) {
            frame += static_cast<char>(0x80 | text.size());
        } else {
            frame += static_cast<char>(0x80 | 126);
            frame += static_cast<char>(text.size() >> 8);
            frame += static_cast<char>(text.size() & 0xff);
        }
        frame.append(reinterpret_cast<const char*>(mask), 4);
        for (std::size_t i = 0; i < text.size(); ++i) {
            frame += static_cast<char>(text[i] ^ mask[i % 4]);
        }
        ASSERT_EQ(::write(fd_, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
    }

    // Reads until the server closes (close frame or EOF); false on timeout.
    bool waitClosed(std::chrono::milliseconds limit) {
        auto end = Network::Clock::now() + limit;
        char buf[4096];
        while (Network::Clock::now() < end) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n <= 0) return true;
            for (ssize_t i = 0; i + 1 < n; ++i) {
                // A close frame from the server (unmasked, opcode 8).
                if (static_cast<unsigned char>(buf[i]) == 0x88) return true;
            }
        }
        return false;
    }

private:
    ssize_t readSome(char* out, std::size_t n) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) return -1;
        return ::read(fd_, out, n);
    }
    int fd_ = -1;
    bool connected_ = false;
};

}  // namespace

TEST(LinkProtocol, RefusesLinkWithWrongVersion) {
    Network net;
    dwrtc::Node& node = net.addNode();
    RawLinkClient client(node.linkPort());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.handshake());
    client.sendText("{\"v\":2,\"t\":\"hello\",\"node\":\"0123456789ab\"}");
    EXPECT_TRUE(client.waitClosed(10s));
    EXPECT_TRUE(net.waitFor([&] {
        return net.log().find("unsupported link protocol version 2") != std::string::npos;
    }, 10s)) << net.log();
}

TEST(LinkProtocol, RefusesMessagesBeforeHello) {
    Network net;
    dwrtc::Node& node = net.addNode();
    std::string bob = node.openSession();
    RawLinkClient client(node.linkPort());
    ASSERT_TRUE(client.handshake());
    // A frame that would deliver to bob, from a link that never said hello.
    client.sendText("{\"v\":1,\"t\":\"msg\",\"node\":\"0123456789ab\",\"sender\":"
                    "\"01234567-89ab-4000-8000-000000000000\",\"recipient\":\"" + bob +
                    "\",\"type\":\"SignalingMessage\",\"body\":\"x\"}");
    EXPECT_TRUE(client.waitClosed(10s));
    net.pump(100ms);
    EXPECT_TRUE(net.inbox(bob).empty());
}
