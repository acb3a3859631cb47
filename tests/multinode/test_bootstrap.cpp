// Joining and staying in the network, with real nodes on loopback: a node
// started before its bootstrap node joins it once it comes up, a restarted
// bootstrap node is found again, and a bootstrap entry that is wrong says
// how it is wrong.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "dwrtc/session_id.h"
#include "network.h"

namespace dwrtc::test {
namespace {

using namespace std::chrono_literals;

// A UDP port nothing listens on now (the system's pick, released).
unsigned freeUdpPort() {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

// Whether nothing listens on this loopback UDP port now.
bool udpPortFree(unsigned port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return free;
}

// The first of `count` consecutive UDP ports that nothing listens on now.
unsigned freeUdpPorts(unsigned count) {
    for (;;) {
        unsigned first = freeUdpPort();
        bool all = first + count <= 65536;
        for (unsigned p = first + 1; all && p < first + count; ++p) {
            all = udpPortFree(p);
        }
        if (all) {
            return first;
        }
    }
}

NodeConfig onPort(unsigned port) {
    NodeConfig c = Network::loopbackConfig();
    c.dhtPortFrom = c.dhtPortTo = port;
    return c;
}

NodeConfig bootstrappingFrom(const std::string& entry) {
    NodeConfig c = Network::loopbackConfig();
    c.bootstrap.push_back(entry);
    return c;
}

// A's session and B's session reach each other, both ways.
void expectMessagesCross(Network& net, Node& a, Node& b) {
    std::string sa = a.openSession(), sb = b.openSession();
    bool ok = net.waitFor(
        [&] {
            a.submit(sa, clientMessage(sb, "ping"));
            net.pump(200ms);
            for (const std::string& m : net.inbox(sb)) {
                if (field(m, "messageBody") == "ping") return true;
            }
            return false;
        },
        15s);
    ASSERT_TRUE(ok) << "a message from A never reached B\n" << net.log();
    b.submit(sb, clientMessage(sa, "pong"));
    ASSERT_TRUE(net.waitFor([&] {
        for (const std::string& m : net.inbox(sa)) {
            if (field(m, "messageBody") == "pong") return true;
        }
        return false;
    })) << net.log();
}

TEST(Bootstrap, FirstNodeWithoutBootstrapIsAloneAndDoesNotWarn) {
    Network net;
    Node& a = net.addNode();
    net.waitFor([] { return false; }, 1500ms);
    EXPECT_EQ(a.stats().networkState, DWRTC_NETWORK_ALONE);
    EXPECT_EQ(a.stats().bootstrapEntries, 0u);
    EXPECT_EQ(net.log().find("not in the network"), std::string::npos) << net.log();
}

TEST(Bootstrap, NodeStartedBeforeItsBootstrapNodeJoinsItWhenItComesUp) {
    unsigned port = freeUdpPort();
    Network net;
    Node& b = net.addNode(bootstrappingFrom("127.0.0.1:" + std::to_string(port)));
    // Past the warning: the node says it is not in the network, and why.
    ASSERT_TRUE(net.waitFor([&] { return net.log().find("not in the network") != std::string::npos; },
                            15s))
        << net.log();
    EXPECT_EQ(b.stats().networkState, DWRTC_NETWORK_JOINING);
    EXPECT_NE(net.log().find("nothing listens on UDP port " + std::to_string(port)),
              std::string::npos)
        << net.log();

    auto up = Network::Clock::now();
    Node& a = net.addNode(onPort(port), false);
    ASSERT_TRUE(net.waitFor([&] { return b.stats().networkState == DWRTC_NETWORK_IN; }, 15s))
        << net.log();
    auto joined = Network::Clock::now() - up;
    std::printf("joined %lld ms after the bootstrap node came up\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(joined).count()));
    EXPECT_EQ(b.stats().bootstrapAnswered, 1u);
    EXPECT_NE(net.log().find("in the network: "), std::string::npos) << net.log();
    ASSERT_TRUE(net.waitPublished()) << net.log();
    expectMessagesCross(net, b, a);
}

// After a reload a node's worker may listen on any port of its DHT range
// (the first stays with the old worker until it exits): an entry that
// names the range finds it on whichever port it is.
TEST(Bootstrap, EntryNamingARangeFindsTheNodeOnAnyPortOfIt) {
    unsigned first = freeUdpPorts(4);
    std::string range = std::to_string(first) + "-" + std::to_string(first + 3);
    Network net;
    Node& b = net.addNode(bootstrappingFrom("127.0.0.1:" + range));
    ASSERT_TRUE(net.waitFor([&] { return net.log().find("not in the network") != std::string::npos; },
                            15s))
        << net.log();
    EXPECT_NE(net.log().find("nothing listens on UDP ports " + range), std::string::npos)
        << net.log();

    Node& a = net.addNode(onPort(first + 2), false);
    ASSERT_TRUE(net.waitFor([&] { return b.stats().networkState == DWRTC_NETWORK_IN; }, 15s))
        << net.log();
    EXPECT_EQ(b.stats().bootstrapAnswered, 1u);
    ASSERT_TRUE(net.waitPublished()) << net.log();
    expectMessagesCross(net, b, a);
}

// /etc/hosts of this process only: a mount namespace of its own (the test
// runs as root, as CI does) with a file of the test's bound over it. The
// system's resolver reads /etc/hosts at every lookup.
class PrivateHosts {
public:
    PrivateHosts() {
        char dir[] = "/tmp/dwrtc-hosts-XXXXXX";
        path_ = std::string(mkdtemp(dir)) + "/hosts";
        write("127.0.0.1 localhost\n");
        if (unshare(CLONE_NEWNS) != 0 ||
            mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            mount(path_.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
            error_ = std::string("cannot bind a file over /etc/hosts in a mount namespace "
                                 "(the multinode tests run as root): ") +
                     std::strerror(errno);
        }
    }
    ~PrivateHosts() { umount("/etc/hosts"); }
    const std::string& error() const { return error_; }
    // Rewrites the file in place: the bound inode stays.
    void write(const std::string& text) {
        std::ofstream(path_, std::ios::trunc) << text;
    }

private:
    std::string path_;
    std::string error_;
};

TEST(Bootstrap, NameThatResolvesOnlyLaterIsJoined) {
    PrivateHosts hosts;
    ASSERT_EQ(hosts.error(), "");
    unsigned port = freeUdpPort();
    Network net;
    Node& b = net.addNode(bootstrappingFrom("late.bootstrap.dwrtc.test:" + std::to_string(port)));
    Node& a = net.addNode(onPort(port), false);
    ASSERT_TRUE(net.waitFor(
        [&] {
            return b.stats().networkState == DWRTC_NETWORK_JOINING &&
                   b.stats().bootstrapEntries == 1;
        },
        5s));
    net.waitFor([] { return false; }, 2s);
    EXPECT_EQ(b.stats().networkState, DWRTC_NETWORK_JOINING) << net.log();

    hosts.write("127.0.0.1 localhost\n127.0.0.1 late.bootstrap.dwrtc.test\n");
    auto named = Network::Clock::now();
    ASSERT_TRUE(net.waitFor([&] { return b.stats().networkState == DWRTC_NETWORK_IN; }, 15s))
        << net.log();
    std::printf("joined %lld ms after the name resolved\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           Network::Clock::now() - named)
                                           .count()));
    ASSERT_TRUE(net.waitPublished()) << net.log();
    expectMessagesCross(net, b, a);
}

TEST(Bootstrap, RestartedBootstrapNodeIsFoundAgain) {
    unsigned port = freeUdpPort();
    Network net;
    net.addNode(onPort(port));
    Node& b = net.addNode();  // bootstraps through the first
    ASSERT_TRUE(net.waitFor([&] { return b.stats().networkState == DWRTC_NETWORK_IN; }))
        << net.log();
    net.stopNode(0);
    // A new identity on the same port, knowing no one.
    auto up = Network::Clock::now();
    Node& a2 = net.addNode(onPort(port), false);
    ASSERT_TRUE(net.waitFor([&] { return a2.stats().networkState == DWRTC_NETWORK_IN; }, 20s))
        << net.log();
    std::printf("the restarted node was found again after %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           Network::Clock::now() - up)
                                           .count()));
    ASSERT_TRUE(net.waitPublished()) << net.log();
    expectMessagesCross(net, a2, b);
}

TEST(Bootstrap, WrongEntriesAreToldApart) {
    Network net;
    Node& a = net.addNode();
    // b: a's link port (TCP) instead of its DHT port; c: a's DHT port, but
    // another network key.
    NodeConfig toLink = bootstrappingFrom("127.0.0.1:" + std::to_string(a.linkPort()));
    NodeConfig otherNetwork = bootstrappingFrom("127.0.0.1:" + std::to_string(a.dhtPort()));
    otherNetwork.networkKey = "another network's secret, 32 bytes";
    Node& b = net.addNode(toLink, false);
    net.addNode(otherNetwork, false);
    ASSERT_TRUE(net.waitFor(
        [&] {
            const std::string& log = net.log();
            return log.find("not its link port") != std::string::npos &&
                   log.find("another dwrtc_network_key") != std::string::npos;
        },
        20s))
        << net.log();
    EXPECT_EQ(b.stats().networkState, DWRTC_NETWORK_JOINING);
    EXPECT_EQ(a.stats().networkState, DWRTC_NETWORK_ALONE);
}

}  // namespace
}  // namespace dwrtc::test

namespace dwrtc::test {
namespace {

// A node that no other DHT node answers still answers its senders: its
// lookups give up, and after the lookup wait they hear "unreachable".
TEST(Bootstrap, NodeAloneAnswersUnreachableForOtherNodes) {
    Network net;
    Node& a = net.addNode();
    std::string alice = a.openSession();
    std::string nowhere = dwrtc::makeSessionId("0123456789abcdef0123456789abcdef");
    a.submit(alice, clientMessage(nowhere, "anyone?"));
    EXPECT_TRUE(net.waitFor(
        [&] {
            for (const std::string& m : net.inbox(alice)) {
                if (field(m, "error") == "unreachable") return true;
            }
            return false;
        },
        30s))
        << net.log();
}

}  // namespace
}  // namespace dwrtc::test
