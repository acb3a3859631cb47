#include "link_service.h"

#include <libwebsockets.h>

#include <cstddef>
#include <cstring>

#include "dwrtc/dwrtc.h"

namespace dwrtc {

namespace {

constexpr const char* kProtocolName = "dwrtc-link";
// A link message carries many frames; more than this from one peer is not a
// DWRTC node talking and the link is dropped.
constexpr std::size_t kMaxLinkMessage = 16 * 1024 * 1024;
// Frames are packed into one WebSocket message up to about this size.
constexpr std::size_t kWriteBatch = 256 * 1024;

int linkCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);

const lws_protocols kProtocols[] = {
    {kProtocolName, linkCallback, 0, 64 * 1024, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

LinkId idOf(lws* wsi) {
    return static_cast<LinkId>(reinterpret_cast<std::uintptr_t>(lws_get_opaque_user_data(wsi)));
}

int linkCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
    lws_context* ctx = lws_get_context(wsi);
    auto* service = ctx ? static_cast<LinkService*>(lws_context_user(ctx)) : nullptr;
    if (service) {
        int r = service->handle(wsi, reason, in, len);
        if (r != 0) {
            return r;
        }
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

}  // namespace

// The once-a-second timer; lws hands back the sul, we find the service.
struct LinkService::TickTimer {
    lws_sorted_usec_list_t sul;  // first member, so the sul's address is ours
    LinkService* service;
};

static void onTickTimer(lws_sorted_usec_list_t* sul) {
    auto* timer = reinterpret_cast<LinkService::TickTimer*>(sul);
    timer->service->tick();
}

LinkService::LinkService(LinkServiceConfig config, LogFn log)
    : config_(std::move(config)), log_(std::move(log)) {}

LinkService::~LinkService() { stop(); }

bool LinkService::start(LinkEvents* events) {
    events_ = events;
    // Expected failures (a busy port while scanning a range) would otherwise
    // print to the host's stderr; this node logs what matters itself.
    lws_set_log_level(0, nullptr);

    lws_context_creation_info info;
    std::memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.user = this;
    info.protocols = kProtocols;
    context_ = lws_create_context(&info);
    if (!context_) {
        log_(DWRTC_LOG_ERROR, "creating the link service (libwebsockets context) failed");
        return false;
    }

    const char* iface = config_.bindAddress == "0.0.0.0" ? nullptr : config_.bindAddress.c_str();
    for (unsigned port = config_.portFrom; port <= config_.portTo && port <= 65535; ++port) {
        lws_context_creation_info vinfo;
        std::memset(&vinfo, 0, sizeof vinfo);
        vinfo.port = static_cast<int>(port);
        vinfo.iface = iface;
        vinfo.protocols = kProtocols;
        vinfo.vhost_name = "dwrtc-link";
        vinfo.options = LWS_SERVER_OPTION_DISABLE_IPV6;
        vhost_ = lws_create_vhost(context_, &vinfo);
        if (vhost_) {
            int bound = lws_get_vhost_listen_port(vhost_);
            port_ = bound > 0 ? static_cast<unsigned>(bound) : port;
            break;
        }
    }
    if (!vhost_) {
        log_(DWRTC_LOG_ERROR, "no free TCP port for node links in " +
                                  std::to_string(config_.portFrom) + "-" +
                                  std::to_string(config_.portTo) + " on " + config_.bindAddress);
        lws_context_destroy(context_);
        context_ = nullptr;
        return false;
    }

    timer_ = std::make_unique<TickTimer>();
    std::memset(&timer_->sul, 0, sizeof timer_->sul);
    timer_->service = this;
    lws_sul_schedule(context_, 0, &timer_->sul, onTickTimer, LWS_US_PER_SEC);

    {
        std::lock_guard<std::mutex> lock(postMutex_);
        accepting_ = true;
    }
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
    log_(DWRTC_LOG_INFO, "node links listen on TCP port " + std::to_string(port_));
    return true;
}

void LinkService::run() {
    while (!stopping_.load()) {
        if (lws_service(context_, 0) < 0) {
            break;
        }
    }
}

void LinkService::stop() {
    if (!context_) {
        return;
    }
    {
        std::lock_guard<std::mutex> lock(postMutex_);
        accepting_ = false;
        posted_.clear();
    }
    stopping_ = true;
    lws_cancel_service(context_);
    if (thread_.joinable()) {
        thread_.join();
    }
    // Destroying the context closes every link; nobody listens any more.
    events_ = nullptr;
    lws_sul_cancel(&timer_->sul);
    lws_context_destroy(context_);
    context_ = nullptr;
    vhost_ = nullptr;
    links_.clear();
}

void LinkService::post(std::function<void()> task) {
    bool wake;
    {
        std::lock_guard<std::mutex> lock(postMutex_);
        if (!accepting_) {
            return;
        }
        // Tasks already waiting mean a wake-up is already on its way: the
        // service thread takes them all at once, so a burst costs one.
        wake = posted_.empty();
        posted_.push_back(std::move(task));
    }
    if (wake) {
        // The only libwebsockets call that is safe from another thread.
        lws_cancel_service(context_);
    }
}

void LinkService::runPosted() {
    std::vector<std::function<void()>> tasks;
    {
        std::lock_guard<std::mutex> lock(postMutex_);
        tasks.swap(posted_);
    }
    for (auto& task : tasks) {
        task();
    }
}

void LinkService::tick() {
    if (events_) {
        events_->onTick();
    }
    if (context_ && !stopping_) {
        lws_sul_schedule(context_, 0, &timer_->sul, onTickTimer, LWS_US_PER_SEC);
    }
}

LinkId LinkService::connect(const std::string& host, unsigned port) {
    auto link = std::make_unique<Link>();
    LinkId id = nextId_++;
    link->id = id;
    link->outbound = true;
    Link* raw = link.get();
    links_.emplace(id, std::move(link));

    lws_client_connect_info ci;
    std::memset(&ci, 0, sizeof ci);
    ci.context = context_;
    ci.vhost = vhost_;
    ci.address = host.c_str();
    ci.port = static_cast<int>(port);
    ci.path = "/";
    ci.host = host.c_str();
    ci.origin = host.c_str();
    ci.protocol = kProtocolName;
    ci.local_protocol_name = kProtocolName;
    ci.ietf_version_or_minus_one = -1;
    ci.opaque_user_data = reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
    ci.pwsi = &raw->wsi;
    // A failure inside this call is answered by the return value alone, not
    // by an onLinkClosed() for a link the caller has not seen yet.
    connecting_ = id;
    lws* wsi = lws_client_connect_via_info(&ci);
    connecting_ = 0;
    if (!wsi || links_.find(id) == links_.end()) {
        links_.erase(id);
        return 0;
    }
    return id;
}

void LinkService::send(LinkId id, std::string frame) {
    auto it = links_.find(id);
    if (it == links_.end()) {
        return;
    }
    Link& link = *it->second;
    link.outbox.push_back(std::move(frame));
    if (link.open && link.wsi) {
        lws_callback_on_writable(link.wsi);
    }
}

void LinkService::close(LinkId id) {
    auto it = links_.find(id);
    if (it == links_.end()) {
        return;
    }
    Link& link = *it->second;
    link.closing = true;
    if (link.wsi) {
        lws_callback_on_writable(link.wsi);
    }
}

bool LinkService::isOpen(LinkId id) const {
    auto it = links_.find(id);
    return it != links_.end() && it->second->open;
}

LinkService::Link* LinkService::linkOf(lws* wsi) {
    auto it = links_.find(idOf(wsi));
    return it == links_.end() ? nullptr : it->second.get();
}

void LinkService::closed(lws* wsi, bool opened) {
    auto it = links_.find(idOf(wsi));
    if (it == links_.end()) {
        return;
    }
    bool outbound = it->second->outbound;
    LinkId id = it->first;
    links_.erase(it);
    if (events_ && id != connecting_) {
        events_->onLinkClosed(id, outbound, opened);
    }
}

int LinkService::writeSome(Link& link) {
    if (link.closing) {
        lws_close_reason(link.wsi, LWS_CLOSE_STATUS_NORMAL, nullptr, 0);
        return -1;
    }
    if (link.outbox.empty()) {
        return 0;
    }
    // Pack queued frames into one message, newline separated (compact JSON
    // never holds a raw newline): one write per writable callback is the
    // libwebsockets rule, so batching is what keeps a burst fast.
    std::size_t total = 0;
    std::size_t count = 0;
    for (const std::string& f : link.outbox) {
        if (count > 0 && total + f.size() + 1 > kWriteBatch) {
            break;
        }
        total += f.size() + (count > 0 ? 1 : 0);
        ++count;
    }
    writeBuffer_.resize(LWS_PRE + total);
    unsigned char* p = writeBuffer_.data() + LWS_PRE;
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            *p++ = '\n';
        }
        const std::string& f = link.outbox.front();
        std::memcpy(p, f.data(), f.size());
        p += f.size();
        link.outbox.pop_front();
    }
    int n = lws_write(link.wsi, writeBuffer_.data() + LWS_PRE, total, LWS_WRITE_TEXT);
    if (n < static_cast<int>(total)) {
        log_(DWRTC_LOG_WARN, "writing to a node link failed; closing it");
        return -1;
    }
    if (!link.outbox.empty()) {
        lws_callback_on_writable(link.wsi);
    }
    return 0;
}

int LinkService::handle(lws* wsi, int reason, void* in, std::size_t len) {
    switch (reason) {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            runPosted();
            return 0;

        case LWS_CALLBACK_ESTABLISHED: {
            auto link = std::make_unique<Link>();
            LinkId id = nextId_++;
            link->id = id;
            link->wsi = wsi;
            link->open = true;
            lws_set_opaque_user_data(wsi, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)));
            links_.emplace(id, std::move(link));
            if (events_) {
                events_->onLinkOpen(id, false);
            }
            return 0;
        }

        case LWS_CALLBACK_CLIENT_ESTABLISHED: {
            Link* link = linkOf(wsi);
            if (!link) {
                return -1;
            }
            link->wsi = wsi;
            link->open = true;
            if (events_) {
                events_->onLinkOpen(link->id, true);
            }
            if (!link->outbox.empty() || link->closing) {
                lws_callback_on_writable(wsi);
            }
            return 0;
        }

        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            if (in && len) {
                log_(DWRTC_LOG_DEBUG, "node link connect failed: " +
                                          std::string(static_cast<const char*>(in), len));
            }
            closed(wsi, false);
            return 0;

        case LWS_CALLBACK_RECEIVE:
        case LWS_CALLBACK_CLIENT_RECEIVE: {
            Link* link = linkOf(wsi);
            if (!link) {
                return -1;
            }
            if (link->rx.size() + len > kMaxLinkMessage) {
                log_(DWRTC_LOG_WARN, "node link sent an oversized message; closing it");
                lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, nullptr, 0);
                return -1;
            }
            link->rx.append(static_cast<const char*>(in), len);
            if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) {
                return 0;
            }
            std::string message;
            message.swap(link->rx);
            LinkId id = link->id;
            std::size_t start = 0;
            while (start <= message.size() && events_) {
                std::size_t end = message.find('\n', start);
                if (end == std::string::npos) {
                    end = message.size();
                }
                if (end > start) {
                    events_->onLinkFrame(id, std::string_view(message).substr(start, end - start));
                    // The router may have closed the link while handling it.
                    if (links_.find(id) == links_.end()) {
                        break;
                    }
                }
                start = end + 1;
            }
            return 0;
        }

        case LWS_CALLBACK_SERVER_WRITEABLE:
        case LWS_CALLBACK_CLIENT_WRITEABLE: {
            Link* link = linkOf(wsi);
            if (!link) {
                return -1;
            }
            return writeSome(*link);
        }

        case LWS_CALLBACK_CLOSED:
        case LWS_CALLBACK_CLIENT_CLOSED:
            closed(wsi, true);
            return 0;

        case LWS_CALLBACK_WSI_DESTROY:
            // Catches links that end without a CLOSED callback (for example a
            // client that never finished its handshake).
            if (Link* link = linkOf(wsi)) {
                closed(wsi, link->open);
            }
            return 0;

        default:
            return 0;
    }
}

}  // namespace dwrtc
