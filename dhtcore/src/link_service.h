// LinkService: the libwebsockets side of node-to-node links, WebSocket over
// TLS 1.3. One service thread owns the lws context, the link listener and
// every link; other threads reach it only through post(). It hands each
// link's channel binding to its events and keeps a link that has not been
// proven (see trust.h) small and short-lived: few bytes, a deadline, a cap
// on how many there are at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "link_codec.h"
#include "router_ports.h"
#include "task_inbox.h"

struct lws;
struct lws_context;
struct lws_vhost;
struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace dwrtc {

// Filled from NodeConfig, where the defaults are.
struct LinkServiceConfig {
    unsigned portFrom = 0;
    unsigned portTo = 0;
    std::string bindAddress;
    // From accept (or connect) to setProven(), at most.
    std::chrono::milliseconds handshakeTimeout{0};
    // Inbound links not yet proven, at most, at once; more are refused.
    std::size_t maxUnprovenLinks = 0;
};

// start(), stop() and post() from any one owner thread (post from any
// thread); connect(), send() and close() on the service thread only.
class LinkService : public LinkTransport {
public:
    LinkService(LinkServiceConfig config, LogFn log);
    ~LinkService();
    LinkService(const LinkService&) = delete;
    LinkService& operator=(const LinkService&) = delete;

    // Binds the first free port of the range and starts the service thread.
    bool start(LinkEvents* events);
    // Closes every link and joins the service thread. Idempotent.
    void stop();

    unsigned port() const { return port_; }

    // Runs task on the service thread soon. Dropped once stop() has begun.
    void post(std::function<void()> task) override;

    LinkId connect(const std::string& host, unsigned port) override;
    // Frames go out in order, several per WebSocket message.
    void send(LinkId id, std::string frame) override;
    void close(LinkId id) override;
    void abort(LinkId id) override;
    void setProven(LinkId id) override;
    std::string peerAddress(LinkId id) const override;
    void callSoon(std::chrono::milliseconds delay) override;

    // lws protocol callback; public so the C callback can reach it.
    int handle(lws* wsi, int reason, void* user, void* in, std::size_t len);
    void tick();
    void soon();

    struct TickTimer;

private:
    struct Link {
        LinkId id = 0;
        lws* wsi = nullptr;
        bool outbound = false;
        bool open = false;
        bool closing = false;
        bool aborting = false;  // closing with a reset, the outbox dropped
        bool proven = false;
        std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
        std::string peer;  // address, for log lines
        std::deque<std::string> outbox;
        std::string rx;
    };

    bool setUp(LinkEvents* events);
    void run();
    void runPosted();
    Link* linkOf(lws* wsi);
    void closed(lws* wsi, bool opened);
    int writeSome(Link& link);
    int receive(lws* wsi, Link& link, const char* data, std::size_t len);
    bool opened(lws* wsi, Link& link);
    void closeOverdue();

    // This node's TLS certificate and key (PEM), made at start().
    std::string tlsCertificate_;
    std::string tlsKey_;
    // The TLS context of outbound links, ours rather than lws's: lws would
    // load the system's CA store into it (and not free it), and links check
    // no certificates.
    struct SslCtxFree {
        void operator()(ssl_ctx_st* ctx) const;
    };
    std::unique_ptr<ssl_ctx_st, SslCtxFree> clientTls_;

    LinkServiceConfig config_;
    LogFn log_;
    LinkEvents* events_ = nullptr;
    lws_context* context_ = nullptr;
    lws_vhost* vhost_ = nullptr;
    unsigned port_ = 0;
    std::thread thread_;
    std::atomic<bool> stopping_{false};

    TaskInbox inbox_;

    // Service thread only.
    LinkId nextId_ = 1;
    LinkId connecting_ = 0;  // link being set up inside connect()
    std::unordered_map<LinkId, std::unique_ptr<Link>> links_;
    // Inbound links still to prove themselves, against maxUnprovenLinks.
    UnprovenLinkCap unprovenInbound_;
    std::unique_ptr<TickTimer> timer_;
    std::unique_ptr<TickTimer> soon_;
    bool soonPending_ = false;
    std::vector<unsigned char> writeBuffer_;
};

}  // namespace dwrtc
