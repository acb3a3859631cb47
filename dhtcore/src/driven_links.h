// DrivenLinks: node-to-node links whose sockets and TLS belong to the host
// (an nginx worker's connections, or a test's sockets), with the link
// protocol (LinkCodec) and the router on the host's own thread. The host
// accepts and connects, does TLS 1.3, and then only moves bytes: what it
// reads goes in through received(), what take() gives goes out. Nothing
// here blocks and there is no thread of its own: the driving thread (the
// one that calls everything below but post()) is where the router's events
// run. post() is for any thread; it wakes the driver through eventFd().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "link_codec.h"
#include "router_ports.h"
#include "task_inbox.h"

namespace dwrtc {

// What the links ask of the host, on the driving thread, from inside the
// calls the host makes: it must not call back into DrivenLinks from here.
class LinkDriver {
public:
    virtual ~LinkDriver() = default;
    // Open a TCP connection and TLS 1.3 to host:port for link `id`, then
    // call secured() (or closed() if it fails). false: it failed at once;
    // no closed() follows.
    virtual bool connect(LinkId id, const std::string& host, unsigned port) = 0;
    // Link `id` has bytes to take, or its status() changed.
    virtual void wake(LinkId id) = 0;
};

struct DrivenLinksConfig {
    // The port the host listens on for links (published in the node's
    // record); the host binds it, not this class.
    unsigned port = 0;
    // From accepted() (or connect) to setProven(), at most.
    std::chrono::milliseconds handshakeTimeout{5000};
    // Inbound links not yet proven, at most, at once; more are refused.
    std::size_t maxUnprovenLinks = 64;
};

// Driving thread only, but post() (any thread) and eventFd().
class DrivenLinks : public LinkTransport {
public:
    using Clock = LinkCodecClock;
    enum class Status {
        Open,    // keep the connection; write what take() gives
        Finish,  // write what take() gave, then close the connection
        Reset,   // close it now, with a reset, writing nothing more
        Gone,    // no such link (closed() was called for it)
    };

    DrivenLinks(DrivenLinksConfig config, LinkDriver& driver, LogFn log);
    ~DrivenLinks();
    DrivenLinks(const DrivenLinks&) = delete;
    DrivenLinks& operator=(const DrivenLinks&) = delete;

    // Where the events go from now on; tasks may be posted from here on.
    void start(LinkEvents* events);
    // Drops every link (the host closes its connections) and every task.
    void stop();
    // close() of every link: the host writes what they take, then closes.
    void closeAll();
    unsigned port() const { return config_.port; }
    // Readable when posted tasks wait: then call run().
    int eventFd() const { return eventFd_; }

    // The host took a TCP connection on its link port (before TLS); 0:
    // refused, close it (too many links are still to prove who they are).
    LinkId accepted(std::string peer);
    // TLS 1.3 is up on link id; binding is the session's exporter
    // (EXPORTER-dwrtc-link-v2, 32 bytes). The upgrade starts.
    void secured(LinkId id, std::string_view binding, std::string peer = {});
    // Bytes read from link id's TLS connection.
    void received(LinkId id, const char* data, std::size_t len);
    // Bytes to write to link id now ("" if none).
    std::string take(LinkId id);
    Status status(LinkId id) const;
    // The connection of link id is gone (closed by the peer, failed, or
    // closed by the host after Finish or Reset).
    void closed(LinkId id);
    // Runs posted tasks and, when due, the tick, callSoon() and the
    // handshake deadlines; returns how long the host may wait before
    // calling it again (it calls it sooner when eventFd() is readable).
    std::chrono::milliseconds run(Clock::time_point now);

    // LinkTransport, for the router (driving thread; post() any thread).
    LinkId connect(const std::string& host, unsigned port) override;
    void send(LinkId id, std::string frame) override;
    void close(LinkId id) override;
    void abort(LinkId id) override;
    void setProven(LinkId id) override;
    std::string peerAddress(LinkId id) const override;
    void post(std::function<void()> task) override;
    void callSoon(std::chrono::milliseconds delay) override;

private:
    struct Link;
    Link* find(LinkId id) const;
    void end(Link& link, Status status);
    void runPosted();
    void signal();
    void closeOverdue(Clock::time_point now);

    DrivenLinksConfig config_;
    LinkDriver& driver_;
    LogFn log_;
    LinkEvents* events_ = nullptr;
    int eventFd_ = -1;

    TaskInbox inbox_;

    LinkId nextId_ = 1;
    LinkId connecting_ = 0;  // link being set up inside connect()
    std::unordered_map<LinkId, std::unique_ptr<Link>> links_;
    UnprovenLinkCap unprovenInbound_;
    Clock::time_point nextTick_{};
    bool soonPending_ = false;
    Clock::time_point soonAt_{};
};

}  // namespace dwrtc
