// The C interface (dwrtc.h) over dwrtc::Node. Every entry point catches
// everything: no exception crosses into the C host.
#include <openssl/err.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "dwrtc/dwrtc.h"
#include "dwrtc/node.h"
#include "dwrtc/peerjs.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "driven_links.h"
#include "node_stats.h"

using dwrtc::Node;
using dwrtc::NodeConfig;

namespace {

// The host's C callbacks as the links' driver.
class CLinkDriver : public dwrtc::LinkDriver {
public:
    CLinkDriver(dwrtc_link_driver driver, void* ctx) : driver_(driver), ctx_(ctx) {}
    bool connect(dwrtc::LinkId id, const std::string& host, unsigned port) override {
        return driver_.connect && driver_.connect(ctx_, id, host.c_str(), port) == 0;
    }
    void wake(dwrtc::LinkId id) override {
        if (driver_.wake) driver_.wake(ctx_, id);
    }

private:
    dwrtc_link_driver driver_;
    void* ctx_;
};

}  // namespace

struct dwrtc_options {
    NodeConfig config;
    bool hasDriver = false;
    dwrtc_link_driver driver{};
    void* driverCtx = nullptr;
};

struct dwrtc_node {
    explicit dwrtc_node(const dwrtc_options* opt)
        : driver(opt && opt->hasDriver ? std::make_unique<CLinkDriver>(opt->driver, opt->driverCtx)
                                       : nullptr),
          node(configOf(opt, driver.get())) {}

    static NodeConfig configOf(const dwrtc_options* opt, dwrtc::LinkDriver* driver) {
        NodeConfig c = opt ? opt->config : NodeConfig{};
        c.linkDriver = driver;
        return c;
    }

    // Before the node, which calls it until it stops.
    std::unique_ptr<CLinkDriver> driver;
    Node node;
    // What the last dwrtc_link_take() handed out.
    std::string taken;
};

namespace {

// The core checks signatures with OpenSSL on the caller thread (with a
// link driver, the router runs there); a check that fails leaves errors in
// that thread's OpenSSL error queue, which the host's own TLS (nginx's)
// would find later and report as stale. Every guarded call leaves it empty.
struct OpenSslErrorsCleared {
    ~OpenSslErrorsCleared() { ERR_clear_error(); }
};

template <typename F>
int guarded(F&& f) {
    OpenSslErrorsCleared cleared;
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return DWRTC_ENOMEM;
    } catch (...) {
        return DWRTC_ERROR;
    }
}

// Writes what format() makes into out when it fits in cap; returns its
// length either way, 0 if making it failed.
template <typename F>
std::size_t copyOut(F&& format, char* out, std::size_t cap) {
    try {
        std::string text = format();
        if (text.size() <= cap) {
            std::memcpy(out, text.data(), text.size());
        }
        return text.size();
    } catch (...) {
        return 0;
    }
}

int setRange(unsigned from, unsigned to, unsigned& outFrom, unsigned& outTo) {
    if (from > to || to > 65535 || (from == 0 && to != 0)) {
        return DWRTC_EINVAL;
    }
    outFrom = from;
    outTo = to;
    return DWRTC_OK;
}

}  // namespace

extern "C" {

const char* dwrtc_strerror(int status) {
    switch (status) {
        case DWRTC_OK:
            return "ok";
        case DWRTC_ERROR:
            return "unexpected error";
        case DWRTC_EINVAL:
            return "invalid argument";
        case DWRTC_ENOTFOUND:
            return "no such session";
        case DWRTC_ELIMIT:
            return "limit reached";
        case DWRTC_ESTATE:
            return "node not running";
        case DWRTC_EBIND:
            return "no free port in the configured range";
        case DWRTC_ENOMEM:
            return "out of memory";
        case DWRTC_EEXIST:
            return "id already held";
        default:
            return "unknown status";
    }
}

dwrtc_options* dwrtc_options_create(void) {
    try {
        return new dwrtc_options();
    } catch (...) {
        return nullptr;
    }
}

void dwrtc_options_destroy(dwrtc_options* opt) { delete opt; }

int dwrtc_options_set_dht_ports(dwrtc_options* opt, unsigned from, unsigned to) {
    if (!opt) return DWRTC_EINVAL;
    return setRange(from, to, opt->config.dhtPortFrom, opt->config.dhtPortTo);
}

int dwrtc_options_set_link_ports(dwrtc_options* opt, unsigned from, unsigned to) {
    if (!opt) return DWRTC_EINVAL;
    return setRange(from, to, opt->config.linkPortFrom, opt->config.linkPortTo);
}

int dwrtc_options_set_bind_address(dwrtc_options* opt, const char* addr, size_t len) {
    if (!opt || !addr || len == 0) return DWRTC_EINVAL;
    return guarded([&] {
        opt->config.bindAddress.assign(addr, len);
        return DWRTC_OK;
    });
}

int dwrtc_options_add_bootstrap(dwrtc_options* opt, const char* hostport, size_t len) {
    if (!opt || !hostport || len == 0) return DWRTC_EINVAL;
    return guarded([&] {
        opt->config.bootstrap.emplace_back(hostport, len);
        return DWRTC_OK;
    });
}

int dwrtc_options_set_public_address(dwrtc_options* opt, const char* host, size_t len) {
    if (!opt || !host || len == 0) return DWRTC_EINVAL;
    return guarded([&] {
        opt->config.publicAddress.assign(host, len);
        return DWRTC_OK;
    });
}

int dwrtc_options_set_max_message_size(dwrtc_options* opt, size_t bytes) {
    if (!opt || bytes == 0) return DWRTC_EINVAL;
    opt->config.maxMessageSize = bytes;
    return DWRTC_OK;
}

int dwrtc_options_set_queue_limit(dwrtc_options* opt, size_t messages) {
    if (!opt || messages == 0) return DWRTC_EINVAL;
    opt->config.queueLimit = messages;
    return DWRTC_OK;
}

int dwrtc_options_set_dht_rate_limits(dwrtc_options* opt, long per_ip, long total) {
    if (!opt || per_ip < -1 || total < -1) return DWRTC_EINVAL;
    opt->config.dhtPerIpRequestLimit = per_ip;
    opt->config.dhtTotalRequestLimit = total;
    return DWRTC_OK;
}

int dwrtc_options_set_network_key(dwrtc_options* opt, const char* secret, size_t len) {
    if (!opt || !secret || len < dwrtc::kMinNetworkKeyLength) return DWRTC_EINVAL;
    return guarded([&] {
        opt->config.networkKey.assign(secret, len);
        return DWRTC_OK;
    });
}

int dwrtc_options_set_link_handshake_timeout(dwrtc_options* opt, unsigned ms) {
    if (!opt || ms == 0) return DWRTC_EINVAL;
    opt->config.linkHandshakeMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_link_max_unproven(dwrtc_options* opt, unsigned links) {
    if (!opt || links == 0) return DWRTC_EINVAL;
    opt->config.linkMaxUnproven = links;
    return DWRTC_OK;
}

int dwrtc_options_set_link_retry_delay(dwrtc_options* opt, unsigned ms) {
    if (!opt || ms == 0) return DWRTC_EINVAL;
    opt->config.linkRetryMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_lookup_wait(dwrtc_options* opt, unsigned ms) {
    if (!opt || ms == 0) return DWRTC_EINVAL;
    opt->config.lookupWaitMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_link_ack_timeout(dwrtc_options* opt, unsigned ms) {
    if (!opt || ms == 0) return DWRTC_EINVAL;
    opt->config.linkAckTimeoutMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_hold(dwrtc_options* opt, size_t messages, unsigned ms) {
    if (!opt || (messages > 0 && ms == 0)) return DWRTC_EINVAL;
    opt->config.holdMessages = messages;
    opt->config.holdMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_peerjs_id_reserve(dwrtc_options* opt, unsigned ms) {
    if (!opt) return DWRTC_EINVAL;
    opt->config.peerJsIdReserveMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_peerjs_id_wait(dwrtc_options* opt, unsigned ms) {
    if (!opt || ms == 0) return DWRTC_EINVAL;
    opt->config.peerJsIdWaitMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_peerjs_id_reservations(dwrtc_options* opt, unsigned n) {
    if (!opt || n > 1000000) return DWRTC_EINVAL;
    opt->config.peerJsIdReservations = n;
    return DWRTC_OK;
}

int dwrtc_options_set_dht_max_searches(dwrtc_options* opt, size_t searches) {
    if (!opt || searches < 64) return DWRTC_EINVAL;
    opt->config.dhtMaxSearches = searches;
    return DWRTC_OK;
}

int dwrtc_options_set_lookup_rate(dwrtc_options* opt, unsigned per_second, unsigned burst) {
    if (!opt || (per_second > 0 && burst == 0)) return DWRTC_EINVAL;
    opt->config.lookupRate = per_second;
    opt->config.lookupBurst = burst;
    return DWRTC_OK;
}

int dwrtc_options_set_hold_budget(dwrtc_options* opt, size_t session_messages,
                                  size_t session_bytes, size_t worker_bytes) {
    if (!opt || session_messages == 0 || session_bytes == 0 || worker_bytes < session_bytes) {
        return DWRTC_EINVAL;
    }
    opt->config.sessionHoldMessages = session_messages;
    opt->config.sessionHoldBytes = session_bytes;
    opt->config.nodeHoldBytes = worker_bytes;
    return DWRTC_OK;
}

int dwrtc_options_set_room_limits(dwrtc_options* opt, size_t members, size_t per_session) {
    if (!opt || members == 0 || per_session == 0) return DWRTC_EINVAL;
    opt->config.roomMembers = members;
    opt->config.roomsPerSession = per_session;
    return DWRTC_OK;
}

int dwrtc_options_set_room_bounds(dwrtc_options* opt, size_t remote, size_t per_node,
                                  size_t node_checks) {
    if (!opt || remote == 0 || per_node == 0 || node_checks == 0) return DWRTC_EINVAL;
    opt->config.roomRemoteMembers = remote;
    opt->config.roomMembersPerNode = per_node;
    opt->config.roomNodeChecks = node_checks;
    return DWRTC_OK;
}

int dwrtc_options_set_claim_clock_skew(dwrtc_options* opt, unsigned ms) {
    if (!opt || ms == 0) return DWRTC_EINVAL;
    opt->config.claimClockSkewMs = ms;
    return DWRTC_OK;
}

int dwrtc_options_set_link_claim_bounds(dwrtc_options* opt, size_t senders,
                                        unsigned checks_per_second) {
    if (!opt || senders == 0 || checks_per_second == 0) return DWRTC_EINVAL;
    opt->config.linkOwnedSenders = senders;
    opt->config.linkClaimChecks = checks_per_second;
    return DWRTC_OK;
}

int dwrtc_options_set_claim_limits(dwrtc_options* opt, unsigned per_minute, unsigned refusals) {
    if (!opt || per_minute == 0 || refusals == 0) return DWRTC_EINVAL;
    opt->config.claimsPerMinute = per_minute;
    opt->config.claimRefusals = refusals;
    return DWRTC_OK;
}

int dwrtc_options_set_lookup_claim_checks(dwrtc_options* opt, unsigned checks) {
    if (!opt || checks == 0) return DWRTC_EINVAL;
    opt->config.lookupClaimChecks = checks;
    return DWRTC_OK;
}

int dwrtc_options_set_link_idle_timeout(dwrtc_options* opt, unsigned seconds) {
    if (!opt || seconds == 0) return DWRTC_EINVAL;
    opt->config.linkIdleSeconds = seconds;
    return DWRTC_OK;
}

int dwrtc_options_set_log_level(dwrtc_options* opt, int level) {
    if (!opt || level < DWRTC_LOG_ERROR || level > DWRTC_LOG_DEBUG) return DWRTC_EINVAL;
    opt->config.logLevel = level;
    return DWRTC_OK;
}

size_t dwrtc_format_welcome(dwrtc_node* node, const char* id, size_t id_len,
                            uint64_t time_ms, const char* ice, size_t ice_len, char* out,
                            size_t cap) {
    if (!node || !id || id_len == 0 || (!ice && ice_len) || (!out && cap)) return 0;
    std::string challenge;
    try {
        challenge = node->node.challenge(std::string_view(id, id_len));
    } catch (...) {
        return 0;
    }
    if (challenge.empty()) return 0;
    return copyOut(
        [&] {
            return dwrtc::serializeWelcome(std::string_view(id, id_len),
                                           std::string_view(ice ? ice : "", ice_len), challenge,
                                           time_ms);
        },
        out, cap);
}

size_t dwrtc_format_error(const char* error, size_t len, char* out, size_t cap) {
    if (!error || len == 0 || (!out && cap)) return 0;
    return copyOut([&] { return dwrtc::serializeNodeError(std::string_view(error, len)); }, out,
                   cap);
}

int dwrtc_node_create(const dwrtc_options* opt, dwrtc_node** out) {
    if (!out) return DWRTC_EINVAL;
    *out = nullptr;
    return guarded([&] {
        *out = new dwrtc_node(opt);
        return DWRTC_OK;
    });
}

int dwrtc_node_start(dwrtc_node* node) {
    if (!node) return DWRTC_EINVAL;
    return guarded([&] { return node->node.start() ? DWRTC_OK : DWRTC_EBIND; });
}

void dwrtc_node_stop(dwrtc_node* node) {
    if (!node) return;
    try {
        node->node.stop();
    } catch (...) {
    }
}

void dwrtc_node_destroy(dwrtc_node* node) {
    try {
        delete node;
    } catch (...) {
    }
}

unsigned dwrtc_node_dht_port(const dwrtc_node* node) { return node ? node->node.dhtPort() : 0; }

unsigned dwrtc_node_link_port(const dwrtc_node* node) { return node ? node->node.linkPort() : 0; }

const char* dwrtc_node_id(const dwrtc_node* node) { return node ? node->node.id().c_str() : ""; }

int dwrtc_node_event_fd(const dwrtc_node* node) { return node ? node->node.eventFd() : -1; }

int dwrtc_options_set_link_driver(dwrtc_options* opt, const dwrtc_link_driver* driver,
                                  void* ctx) {
    if (!opt || !driver || !driver->connect) return DWRTC_EINVAL;
    opt->hasDriver = true;
    opt->driver = *driver;
    opt->driverCtx = ctx;
    return DWRTC_OK;
}

int dwrtc_links_event_fd(const dwrtc_node* node) {
    dwrtc::DrivenLinks* links = node ? node->node.drivenLinks() : nullptr;
    return links ? links->eventFd() : -1;
}

int dwrtc_links_finish(dwrtc_node* node) {
    if (!node) return DWRTC_EINVAL;
    return guarded([&] {
        if (!node->node.drivenLinks()) return DWRTC_ESTATE;
        node->node.finishLinks();
        return DWRTC_OK;
    });
}

int dwrtc_links_run(dwrtc_node* node, unsigned* wait_ms) {
    if (!node || !wait_ms) return DWRTC_EINVAL;
    return guarded([&] {
        dwrtc::DrivenLinks* links = node->node.drivenLinks();
        if (!links) return DWRTC_ESTATE;
        auto wait = links->run(dwrtc::DrivenLinks::Clock::now());
        *wait_ms = static_cast<unsigned>(wait.count());
        return DWRTC_OK;
    });
}

int dwrtc_link_accepted(dwrtc_node* node, const char* peer, size_t len, uint64_t* link) {
    if (!node || !link || (!peer && len)) return DWRTC_EINVAL;
    *link = 0;
    return guarded([&] {
        dwrtc::DrivenLinks* links = node->node.drivenLinks();
        if (!links) return DWRTC_ESTATE;
        *link = links->accepted(std::string(peer ? peer : "", len));
        return *link ? DWRTC_OK : DWRTC_ELIMIT;
    });
}

int dwrtc_link_secured(dwrtc_node* node, uint64_t link, const char* binding, size_t len) {
    if (!node || (!binding && len)) return DWRTC_EINVAL;
    return guarded([&] {
        dwrtc::DrivenLinks* links = node->node.drivenLinks();
        if (!links) return DWRTC_ESTATE;
        links->secured(link, std::string_view(binding ? binding : "", len));
        return DWRTC_OK;
    });
}

int dwrtc_link_received(dwrtc_node* node, uint64_t link, const char* data, size_t len) {
    if (!node || (!data && len)) return DWRTC_EINVAL;
    return guarded([&] {
        dwrtc::DrivenLinks* links = node->node.drivenLinks();
        if (!links) return DWRTC_ESTATE;
        links->received(link, data, len);
        return DWRTC_OK;
    });
}

int dwrtc_link_take(dwrtc_node* node, uint64_t link, const char** data, size_t* len) {
    if (!node || !data || !len) return DWRTC_EINVAL;
    *data = nullptr;
    *len = 0;
    return guarded([&] {
        dwrtc::DrivenLinks* links = node->node.drivenLinks();
        if (!links) return DWRTC_ESTATE;
        node->taken = links->take(link);
        *data = node->taken.data();
        *len = node->taken.size();
        return DWRTC_OK;
    });
}

int dwrtc_link_status(const dwrtc_node* node, uint64_t link) {
    dwrtc::DrivenLinks* links = node ? node->node.drivenLinks() : nullptr;
    if (!links) return DWRTC_LINK_GONE;
    switch (links->status(link)) {
        case dwrtc::DrivenLinks::Status::Open:
            return DWRTC_LINK_OPEN;
        case dwrtc::DrivenLinks::Status::Finish:
            return DWRTC_LINK_FINISH;
        case dwrtc::DrivenLinks::Status::Reset:
            return DWRTC_LINK_RESET;
        case dwrtc::DrivenLinks::Status::Gone:
            break;
    }
    return DWRTC_LINK_GONE;
}

void dwrtc_link_closed(dwrtc_node* node, uint64_t link) {
    if (!node) return;
    try {
        if (dwrtc::DrivenLinks* links = node->node.drivenLinks()) links->closed(link);
    } catch (...) {
    }
}

unsigned dwrtc_lookup_bucket_ms(size_t i) {
    return i < dwrtc::kLookupBucketsMs.size() ? dwrtc::kLookupBucketsMs[i] : 0;
}

int dwrtc_node_stats(const dwrtc_node* node, dwrtc_stats* out) {
    if (!node || !out) return DWRTC_EINVAL;
    if (!node->node.running()) return DWRTC_ESTATE;
    return guarded([&] {
        dwrtc::NodeStatsSnapshot s = node->node.stats();
        std::memset(out, 0, sizeof *out);
        out->sessions = s.sessions;
        out->links_in = s.linksIn;
        out->links_out = s.linksOut;
        out->links_via_siblings = s.linksViaSiblings;
        out->links_outside = s.linksOutside;
        out->budget_full = s.budgetFull;
        out->lookups_limited = s.lookupsLimited;
        out->claims_refused = s.claimsRefused;
        out->links_refused_for_claims = s.linksRefusedForClaims;
        out->room_full = s.roomFull;
        out->room_members_not_followed = s.roomMembersNotFollowed;
        out->claims_ahead = s.claimsAhead;
        out->claim_checks_spent = s.claimChecksSpent;
        out->peerjs_ids_reserved = s.peerJsIdsReserved;
        out->peerjs_ids_not_reserved = s.peerJsIdsNotReserved;
        out->from_clients = s.fromClients;
        out->delivered_locally = s.deliveredLocally;
        out->sent_over_links = s.sentOverLinks;
        out->received_over_links = s.receivedOverLinks;
        out->not_found = s.notFound;
        out->unreachable = s.unreachable;
        out->invalid = s.invalid;
        out->queue_full = s.queueFull;
        out->lookups = s.lookups;
        out->lookups_failed = s.lookupsFailed;
        out->lookup_us_sum = s.lookupUsSum;
        for (std::size_t i = 0; i < DWRTC_LOOKUP_BUCKETS; ++i) {
            out->lookup_buckets[i] = s.lookupBuckets[i];
        }
        out->dht_good = s.dhtGood;
        out->dht_dubious = s.dhtDubious;
        out->network_state = s.networkState;
        out->dht_outside = s.dhtOutside;
        out->bootstrap_entries = s.bootstrapEntries;
        out->bootstrap_answered = s.bootstrapAnswered;
        out->last_publish_ms = s.lastPublishMs;
        return DWRTC_OK;
    });
}

int dwrtc_node_status(const dwrtc_node* node) {
    if (!node) return DWRTC_NODE_ALONE;
    if (node->node.published()) return DWRTC_NODE_PUBLISHED;
    return node->node.hasDhtPeers() ? DWRTC_NODE_JOINING : DWRTC_NODE_ALONE;
}

int dwrtc_peerjs_new_id(char id[DWRTC_PEERJS_NEW_ID_LEN]) {
    if (!id) return DWRTC_EINVAL;
    static_assert(DWRTC_PEERJS_NEW_ID_LEN == dwrtc::kPeerJsServerIdLength, "one length");
    return guarded([&] {
        std::string s = dwrtc::makePeerJsServerId();
        std::memcpy(id, s.data(), s.size());
        return DWRTC_OK;
    });
}

int dwrtc_session_open_as(dwrtc_node* node, const char* id, size_t id_len) {
    if (!node || !id) return DWRTC_EINVAL;
    return guarded([&] {
        switch (node->node.openSessionAs(std::string_view(id, id_len))) {
            case Node::OpenAs::Opened:
                return DWRTC_OK;
            case Node::OpenAs::NotOurs:
                return DWRTC_EINVAL;
            case Node::OpenAs::Taken:
                return DWRTC_EEXIST;
            default:
                return DWRTC_ESTATE;
        }
    });
}

int dwrtc_peerjs_open_chosen(dwrtc_node* node, const char* id, size_t id_len, const char* token,
                             size_t token_len, char session[DWRTC_SESSION_ID_LEN]) {
    if (!node || !id || !token || !session) return DWRTC_EINVAL;
    return guarded([&] {
        std::string_view chosen(id, id_len);
        if (!dwrtc::isChosenPeerJsId(chosen)) {
            return DWRTC_EINVAL;
        }
        std::string s = node->node.openPeerJsChosen(chosen, std::string_view(token, token_len));
        if (s.size() != DWRTC_SESSION_ID_LEN) {
            return DWRTC_ESTATE;
        }
        std::memcpy(session, s.data(), s.size());
        return DWRTC_OK;
    });
}

int dwrtc_peerjs_submit(dwrtc_node* node, const char* id, size_t id_len, const char* msg,
                        size_t len, const char** why) {
    if (!node || !id || (!msg && len)) return DWRTC_EINVAL;
    return guarded([&] {
        // the reasons are few and fixed: static strings for the host's log
        thread_local std::string reason;
        dwrtc::ClientMessage message;
        switch (dwrtc::readPeerJsMessage(std::string_view(msg, len), message, reason)) {
            case dwrtc::PeerJsInput::Heartbeat:
                return DWRTC_PEERJS_HEARTBEAT;
            case dwrtc::PeerJsInput::Dropped:
                if (why) *why = reason.c_str();
                return DWRTC_PEERJS_DROPPED;
            default:
                break;
        }
        switch (node->node.submitPeerJs(std::string_view(id, id_len), std::move(message))) {
            case Node::Submit::Ok:
                return DWRTC_PEERJS_TAKEN;
            case Node::Submit::UnknownSession:
                return DWRTC_ENOTFOUND;
            default:
                return DWRTC_ESTATE;
        }
    });
}

size_t dwrtc_peerjs_render(const char* id, size_t id_len, const char* data, size_t len, char* out,
                           size_t cap, int* what) {
    int verdict = DWRTC_PEERJS_NOTHING;
    size_t n = 0;
    if (id && data) {
        n = copyOut(
            [&] {
                std::string text;
                switch (dwrtc::renderForPeerJs(std::string_view(id, id_len),
                                               std::string_view(data, len), text)) {
                    case dwrtc::PeerJsOutput::Send:
                        verdict = DWRTC_PEERJS_SEND;
                        break;
                    case dwrtc::PeerJsOutput::ExpireLater:
                        verdict = DWRTC_PEERJS_EXPIRE_LATER;
                        break;
                    case dwrtc::PeerJsOutput::SendAndClose:
                        verdict = DWRTC_PEERJS_SEND_CLOSE;
                        break;
                    case dwrtc::PeerJsOutput::CloseGoingAway:
                        verdict = DWRTC_PEERJS_CLOSE_AWAY;
                        text.clear();
                        break;
                    default:
                        text.clear();
                        break;
                }
                return text;
            },
            out, cap);
    }
    if (what) {
        *what = n || verdict == DWRTC_PEERJS_CLOSE_AWAY ? verdict : DWRTC_PEERJS_NOTHING;
    }
    return n;
}

size_t dwrtc_peerjs_format_open(char* out, size_t cap) {
    return copyOut([] { return dwrtc::serializePeerJsOpen(); }, out, cap);
}

size_t dwrtc_peerjs_format_id_taken(char* out, size_t cap) {
    return copyOut([] { return dwrtc::serializePeerJsIdTaken(); }, out, cap);
}

size_t dwrtc_peerjs_format_error(const char* msg, size_t len, char* out, size_t cap) {
    if (!msg) return 0;
    return copyOut([&] { return dwrtc::serializePeerJsError(std::string_view(msg, len)); }, out,
                   cap);
}

int dwrtc_session_open(dwrtc_node* node, char id[DWRTC_SESSION_ID_LEN]) {
    if (!node || !id) return DWRTC_EINVAL;
    return guarded([&] {
        std::string s = node->node.openSession();
        if (s.size() != DWRTC_SESSION_ID_LEN) {
            return DWRTC_ESTATE;
        }
        std::memcpy(id, s.data(), DWRTC_SESSION_ID_LEN);
        return DWRTC_OK;
    });
}

int dwrtc_session_close(dwrtc_node* node, const char* id, size_t id_len) {
    if (!node || !id) return DWRTC_EINVAL;
    return guarded([&] {
        return node->node.closeSession(std::string_view(id, id_len)) ? DWRTC_OK
                                                                     : DWRTC_ENOTFOUND;
    });
}

int dwrtc_submit(dwrtc_node* node, const char* id, size_t id_len, const char* msg, size_t len) {
    if (!node || !id || (!msg && len)) return DWRTC_EINVAL;
    return guarded([&] {
        switch (node->node.submit(std::string_view(id, id_len),
                                  std::string_view(msg ? msg : "", len))) {
            case Node::Submit::Ok:
                return DWRTC_OK;
            case Node::Submit::UnknownSession:
                return DWRTC_ENOTFOUND;
            case Node::Submit::ClaimsRefused:
                return DWRTC_ELIMIT;
            default:
                return DWRTC_ESTATE;
        }
    });
}

int dwrtc_node_set_siblings(dwrtc_node* node, const char* const* node_ids,
                            const unsigned* link_ports, size_t count) {
    if (!node || (count > 0 && (!node_ids || !link_ports))) return DWRTC_EINVAL;
    static_assert(DWRTC_MAX_SIBLINGS == dwrtc::kMaxLinkSiblings);
    return guarded([&] {
        std::vector<dwrtc::LinkSibling> siblings;
        for (size_t i = 0; i < count && siblings.size() < DWRTC_MAX_SIBLINGS; ++i) {
            if (!node_ids[i] || !dwrtc::isValidNodePrefix(node_ids[i]) || link_ports[i] == 0 ||
                link_ports[i] > 65535) {
                return DWRTC_EINVAL;
            }
            siblings.push_back(dwrtc::LinkSibling{node_ids[i], link_ports[i]});
        }
        node->node.setSiblings(std::move(siblings));
        return DWRTC_OK;
    });
}

int dwrtc_node_set_local_delivery(dwrtc_node* node, dwrtc_delivery_fn on_delivery, void* ctx) {
    if (!node) return DWRTC_EINVAL;
    return guarded([&] {
        if (!on_delivery) {
            node->node.setLocalDelivery(nullptr);
        } else {
            dwrtc::Node* n = &node->node;
            n->setLocalDelivery([n, on_delivery, ctx](std::string_view s, std::string_view d) {
                if (on_delivery(ctx, s.data(), s.size(), d.data(), d.size()) != 0) {
                    n->undeliverable(s, d);
                }
            });
        }
        return DWRTC_OK;
    });
}

size_t dwrtc_node_drain(dwrtc_node* node, size_t max, dwrtc_delivery_fn on_delivery,
                        dwrtc_log_fn on_log, void* ctx) {
    if (!node) return 0;
    try {
        return node->node.drain(
            max,
            [&](std::string_view session, std::string_view data) {
                if (on_delivery &&
                    on_delivery(ctx, session.data(), session.size(), data.data(), data.size()) !=
                        0) {
                    node->node.undeliverable(session, data);
                }
            },
            [&](int level, std::string_view line) {
                if (on_log) {
                    on_log(ctx, level, line.data(), line.size());
                }
            });
    } catch (...) {
        return 0;
    }
}

}  // extern "C"
