#include "link_service.h"

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "dwrtc/dwrtc.h"

namespace dwrtc {

namespace {

constexpr const char* kProtocolName = "dwrtc-link";
// A link message carries many frames; more than this from one peer is not a
// DWRTC node talking and the link is dropped.
constexpr std::size_t kMaxLinkMessage = 16 * 1024 * 1024;
// Until its peer is proven a link carries only the hello (about 1.2 KB).
constexpr std::size_t kMaxUnprovenMessage = 4096;
// The channel binding: a TLS 1.3 exporter (RFC 8446 section 7.5) with a
// label of our own, as tls-exporter channel bindings are made (RFC 9266).
constexpr const char* kBindingLabel = "EXPORTER-dwrtc-link-v2";
constexpr std::size_t kBindingLength = 32;
// Frames are packed into one WebSocket message up to about this size.
constexpr std::size_t kWriteBatch = 256 * 1024;

int linkCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);

const lws_protocols kProtocols[] = {
    // rx_buffer_size is allocated per link, unproven ones too: 16 KiB.
    {kProtocolName, linkCallback, 0, 16 * 1024, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

LinkId idOf(lws* wsi) {
    return static_cast<LinkId>(reinterpret_cast<std::uintptr_t>(lws_get_opaque_user_data(wsi)));
}

int linkCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
    lws_context* ctx = lws_get_context(wsi);
    auto* service = ctx ? static_cast<LinkService*>(lws_context_user(ctx)) : nullptr;
    if (service) {
        int r = service->handle(wsi, reason, user, in, len);
        if (r != 0) {
            return r;
        }
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};

std::string bioText(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

// A self-signed P-256 certificate for the link listener, made at start. TLS
// here gives secrecy and integrity; who a peer is comes from the signed
// hello bound to the session (trust.h), so no one checks this certificate.
void makeTlsCredentials(std::string& certificatePem, std::string& keyPem) {
    std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
    std::unique_ptr<X509, X509Free> cert(X509_new());
    if (!key || !cert) {
        throw std::runtime_error("making the link TLS key failed");
    }
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_set_version(cert.get(), 2);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("dwrtc-link"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key.get());
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
        throw std::runtime_error("signing the link TLS certificate failed");
    }
    std::unique_ptr<BIO, BioFree> certBio(BIO_new(BIO_s_mem()));
    std::unique_ptr<BIO, BioFree> keyBio(BIO_new(BIO_s_mem()));
    if (!certBio || !keyBio || PEM_write_bio_X509(certBio.get(), cert.get()) != 1 ||
        PEM_write_bio_PrivateKey_traditional(keyBio.get(), key.get(), nullptr, nullptr, 0,
                                             nullptr, nullptr) != 1) {
        throw std::runtime_error("writing the link TLS certificate failed");
    }
    certificatePem = bioText(certBio.get());
    keyPem = bioText(keyBio.get());
}

}  // namespace

// The service's timers (the once-a-second tick, callSoon()); lws hands back
// the sul, we find the service.
struct LinkService::TickTimer {
    lws_sorted_usec_list_t sul;  // first member, so the sul's address is ours
    LinkService* service;
};

static void onTickTimer(lws_sorted_usec_list_t* sul) {
    auto* timer = reinterpret_cast<LinkService::TickTimer*>(sul);
    timer->service->tick();
}

static void onSoonTimer(lws_sorted_usec_list_t* sul) {
    auto* timer = reinterpret_cast<LinkService::TickTimer*>(sul);
    timer->service->soon();
}

void LinkService::SslCtxFree::operator()(ssl_ctx_st* ctx) const { SSL_CTX_free(ctx); }

LinkService::LinkService(LinkServiceConfig config, LogFn log)
    : config_(std::move(config)),
      log_(std::move(log)),
      unprovenInbound_(config_.maxUnprovenLinks) {}

LinkService::~LinkService() { stop(); }

bool LinkService::start(LinkEvents* events) {
    bool started = setUp(events);
    // OpenSSL keeps its errors per thread, and this is the host's thread:
    // lws tries the listener's key as RSA before EC and leaves the failures
    // queued, where nginx's own TLS would find them and log them as stale
    // errors ([alert]) on its next handshake.
    ERR_clear_error();
    return started;
}

bool LinkService::setUp(LinkEvents* events) {
    events_ = events;
    // Expected failures (a busy port while scanning a range) would otherwise
    // print to the host's stderr; this node logs what matters itself.
    lws_set_log_level(0, nullptr);

    try {
        makeTlsCredentials(tlsCertificate_, tlsKey_);
    } catch (const std::exception& e) {
        log_(DWRTC_LOG_ERROR, e.what());
        return false;
    }

    // The listener's TLS context (made by lws) takes only P-256 for key
    // exchange: offering that first saves TLS 1.3 a HelloRetryRequest, a
    // round trip and a key pair on every link.
    clientTls_.reset(SSL_CTX_new(TLS_client_method()));
    if (!clientTls_ || SSL_CTX_set_min_proto_version(clientTls_.get(), TLS1_3_VERSION) != 1 ||
        SSL_CTX_set1_groups_list(clientTls_.get(), "P-256:X25519") != 1) {
        log_(DWRTC_LOG_ERROR, "making the TLS context of node links failed");
        return false;
    }

    lws_context_creation_info info;
    std::memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.user = this;
    info.protocols = kProtocols;
    // lws's own deadline for the TCP, TLS and HTTP upgrade steps; ours, in
    // closeOverdue(), runs from there to the proven hello.
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(config_.handshakeTimeout);
    info.timeout_secs = static_cast<unsigned>(std::max<long long>(1, seconds.count()));
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
        vinfo.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vinfo.server_ssl_cert_mem = tlsCertificate_.data();
        vinfo.server_ssl_cert_mem_len = static_cast<unsigned>(tlsCertificate_.size());
        vinfo.server_ssl_private_key_mem = tlsKey_.data();
        vinfo.server_ssl_private_key_mem_len = static_cast<unsigned>(tlsKey_.size());
        vinfo.provided_client_ssl_ctx = clientTls_.get();
        // The server's TLS context gets TLS 1.3 as its lowest version in
        // the LOAD_EXTRA callback (see handle()).
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
    soon_ = std::make_unique<TickTimer>();
    std::memset(&soon_->sul, 0, sizeof soon_->sul);
    soon_->service = this;

    inbox_.open();
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
    inbox_.close();
    stopping_ = true;
    lws_cancel_service(context_);
    if (thread_.joinable()) {
        thread_.join();
    }
    // Destroying the context closes every link; nobody listens any more.
    events_ = nullptr;
    lws_sul_cancel(&timer_->sul);
    lws_sul_cancel(&soon_->sul);
    soonPending_ = false;
    lws_context_destroy(context_);
    context_ = nullptr;
    vhost_ = nullptr;
    clientTls_.reset();
    links_.clear();
}

void LinkService::post(std::function<void()> task) {
    if (inbox_.post(std::move(task)) == TaskInbox::Posted::Wake) {
        // The only libwebsockets call that is safe from another thread.
        lws_cancel_service(context_);
    }
}

void LinkService::runPosted() {
    for (auto& task : inbox_.takeAll()) {
        task();
    }
}

void LinkService::tick() {
    closeOverdue();
    if (events_) {
        events_->onTick();
    }
    if (context_ && !stopping_) {
        lws_sul_schedule(context_, 0, &timer_->sul, onTickTimer, LWS_US_PER_SEC);
    }
}

void LinkService::callSoon(std::chrono::milliseconds delay) {
    if (soonPending_ || !context_ || stopping_) {
        return;
    }
    soonPending_ = true;
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
    lws_sul_schedule(context_, 0, &soon_->sul, onSoonTimer, static_cast<lws_usec_t>(usec));
}

void LinkService::soon() {
    soonPending_ = false;
    if (events_) {
        events_->onSoon();
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
    // TLS always; the certificate is not what proves the peer (the signed
    // hello is), so lws is told to take any.
    ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_INSECURE |
                        LCCSCF_ALLOW_EXPIRED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
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

void LinkService::setProven(LinkId id) {
    auto it = links_.find(id);
    if (it == links_.end() || it->second->proven) {
        return;
    }
    it->second->proven = true;
    if (!it->second->outbound) {
        unprovenInbound_.giveBack();
    }
}

std::string LinkService::peerAddress(LinkId id) const {
    auto it = links_.find(id);
    return it == links_.end() ? std::string() : it->second->peer;
}

// Links whose peer has not proven itself in time are closed: an unproven
// peer may hold a little memory for a few seconds, no more.
void LinkService::abort(LinkId id) {
    auto it = links_.find(id);
    if (it == links_.end()) {
        return;
    }
    Link& link = *it->second;
    link.closing = true;
    link.aborting = true;
    link.outbox.clear();
    if (link.wsi) {
        lws_callback_on_writable(link.wsi);
    }
}

void LinkService::closeOverdue() {
    auto now = std::chrono::steady_clock::now();
    for (auto& [id, link] : links_) {
        if (!link->proven && !link->closing && now - link->started > config_.handshakeTimeout) {
            std::string direction = link->outbound ? "to " : "from ";
            log_(DWRTC_LOG_INFO, "closing a node link " + direction + link->peer +
                                     ": no proven hello within " +
                                     std::to_string(config_.handshakeTimeout.count()) + " ms");
            link->closing = true;
            if (link->wsi) {
                lws_callback_on_writable(link->wsi);
            }
        }
    }
}

// TLS and WebSocket are up: check what TLS gave, take the channel binding.
bool LinkService::opened(lws* wsi, Link& link) {
    char peer[64] = "";
    lws_get_peer_simple(wsi, peer, sizeof peer);
    link.peer = peer;
    SSL* ssl = lws_get_ssl(wsi);
    unsigned char binding[kBindingLength];
    if (!ssl || SSL_version(ssl) != TLS1_3_VERSION ||
        SSL_export_keying_material(ssl, binding, sizeof binding, kBindingLabel,
                                   std::strlen(kBindingLabel), nullptr, 0, 0) != 1) {
        log_(DWRTC_LOG_INFO, "closing a node link with " + link.peer + ": not TLS 1.3");
        return false;
    }
    link.open = true;
    if (events_) {
        std::string_view view(reinterpret_cast<const char*>(binding), sizeof binding);
        events_->onLinkOpen(link.id, link.outbound, view);
    }
    return true;
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
    if (!outbound && !it->second->proven) {
        unprovenInbound_.giveBack();
    }
    LinkId id = it->first;
    links_.erase(it);
    if (events_ && id != connecting_) {
        events_->onLinkClosed(id, outbound, opened);
    }
}

int LinkService::writeSome(Link& link) {
    if (link.closing) {
        // A proven peer gets a proper close. An unproven one is cut off at
        // once: a close handshake would have lws read (and throw away)
        // whatever it still sends for seconds.
        if (link.aborting) {
            // No linger: the close resets the connection and the kernel
            // drops what it still holds for the peer.
            linger off{1, 0};
            int fd = lws_get_socket_fd(link.wsi);
            if (fd >= 0) {
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
            }
        } else if (link.proven) {
            lws_close_reason(link.wsi, LWS_CLOSE_STATUS_NORMAL, nullptr, 0);
        }
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

int LinkService::receive(lws* wsi, Link& link, const char* data, std::size_t len) {
    // The limit holds for what the frame header declares, not only for what
    // has arrived: a peer that announces more is cut off before it sends it.
    std::size_t limit = link.proven ? kMaxLinkMessage : kMaxUnprovenMessage;
    std::size_t declared = link.rx.size() + len + lws_remaining_packet_payload(wsi);
    if (declared > limit) {
        log_(link.proven ? DWRTC_LOG_WARN : DWRTC_LOG_INFO,
             "closing a node link with " + link.peer + ": a message of more than " +
                 std::to_string(limit) + " bytes" + (link.proven ? "" : " before its hello"));
        if (link.proven) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, nullptr, 0);
        }
        return -1;
    }
    link.rx.append(data, len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) {
        return 0;
    }
    // The message leaves the link: its buffer is freed once it is handled.
    std::string message;
    message.swap(link.rx);
    LinkId id = link.id;
    std::size_t start = 0;
    while (start <= message.size() && events_) {
        std::size_t end = message.find('\n', start);
        if (end == std::string::npos) {
            end = message.size();
        }
        if (end > start) {
            events_->onLinkFrame(id, std::string_view(message).substr(start, end - start));
            // The router may have closed the link while handling it.
            auto it = links_.find(id);
            if (it == links_.end() || it->second->closing) {
                return 0;
            }
        }
        start = end + 1;
    }
    if (events_) {
        events_->onLinkMessageEnd(id);
    }
    return 0;
}

int LinkService::handle(lws* wsi, int reason, void* user, void* in, std::size_t len) {
    switch (reason) {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            runPosted();
            return 0;

        case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
            // user is the SSL_CTX: links speak TLS 1.3 and nothing older, so
            // every link has an exporter fit for channel binding.
            if (user && SSL_CTX_set_min_proto_version(static_cast<SSL_CTX*>(user),
                                                      TLS1_3_VERSION) != 1) {
                return 1;
            }
            return 0;

        case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
            // user is the X509_STORE_CTX. Any certificate will do: the peer
            // proves itself in its hello, bound to this TLS session.
            X509_STORE_CTX_set_error(static_cast<X509_STORE_CTX*>(user), X509_V_OK);
            return 0;

        case LWS_CALLBACK_ESTABLISHED: {
            if (!unprovenInbound_.tryTake()) {
                log_(DWRTC_LOG_INFO, "refusing a node link: " +
                                         std::to_string(unprovenInbound_.taken()) +
                                         " links are still to prove who they are");
                return -1;
            }
            auto link = std::make_unique<Link>();
            LinkId id = nextId_++;
            link->id = id;
            link->wsi = wsi;
            lws_set_opaque_user_data(wsi, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)));
            Link* raw = link.get();
            links_.emplace(id, std::move(link));
            return opened(wsi, *raw) ? 0 : -1;
        }

        case LWS_CALLBACK_CLIENT_ESTABLISHED: {
            Link* link = linkOf(wsi);
            if (!link) {
                return -1;
            }
            link->wsi = wsi;
            if (!opened(wsi, *link)) {
                return -1;
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
            return receive(wsi, *link, static_cast<const char*>(in), len);
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
            // "opened" means the router heard onLinkOpen() for it: not so
            // for a link refused in opened() (not TLS 1.3).
            if (Link* link = linkOf(wsi)) {
                closed(wsi, link->open);
            }
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
