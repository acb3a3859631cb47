#include "driven_links.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <stdexcept>

#include "dwrtc/dwrtc.h"

namespace dwrtc {

namespace {
// The channel binding LinkService takes from TLS (EXPORTER-dwrtc-link-v2).
constexpr std::size_t kBindingLength = 32;
constexpr auto kTickPeriod = std::chrono::seconds(1);
}  // namespace

// One link: its codec, and the codec's events turned into the router's.
struct DrivenLinks::Link : LinkCodecHandler {
    DrivenLinks* owner = nullptr;
    LinkId id = 0;
    bool outbound = false;
    std::string host;  // outbound: the Host of the upgrade
    std::string peer;  // address, for log lines
    std::string binding;
    Clock::time_point started;
    bool opened = false;  // onLinkOpen() was called
    bool proven = false;
    Status ending = Status::Open;  // Finish or Reset once the link is ended
    bool discard = false;          // ended without a goodbye: write nothing more
    std::unique_ptr<LinkCodec> codec;
    // Frames the router sent before the upgrade was done.
    std::deque<std::string> early;

    void onOpen() override {
        while (!early.empty()) {
            codec->sendFrame(std::move(early.front()));
            early.pop_front();
        }
        opened = true;
        if (owner->events_) {
            owner->events_->onLinkOpen(id, outbound, binding);
        }
    }
    void onFrame(std::string_view frame) override {
        // The router may have ended the link on an earlier frame of this
        // message: nothing more of it is handed over.
        if (ending == Status::Open && owner->events_) {
            owner->events_->onLinkFrame(id, frame);
        }
    }
    void onMessageEnd() override {
        if (ending == Status::Open && owner->events_) {
            owner->events_->onLinkMessageEnd(id);
        }
    }
    void onClosed(int code, std::string_view reason) override {
        owner->log_(DWRTC_LOG_DEBUG, "node link with " + peer + " closed by the peer (" +
                                         std::to_string(code) + " " + std::string(reason) + ")");
        owner->driver_.wake(id);
    }
    void onFailed(std::string_view reason) override {
        owner->log_(proven ? DWRTC_LOG_WARN : DWRTC_LOG_INFO,
                    "closing a node link with " + peer + ": " + std::string(reason));
        owner->driver_.wake(id);
    }
};

DrivenLinks::DrivenLinks(DrivenLinksConfig config, LinkDriver& driver, LogFn log)
    : config_(config),
      driver_(driver),
      log_(std::move(log)),
      unprovenInbound_(config_.maxUnprovenLinks) {
    eventFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (eventFd_ < 0) {
        throw std::runtime_error("eventfd for node links failed");
    }
}

DrivenLinks::~DrivenLinks() {
    stop();
    ::close(eventFd_);
}

void DrivenLinks::start(LinkEvents* events) {
    events_ = events;
    nextTick_ = Clock::now() + kTickPeriod;
    inbox_.open();
}

void DrivenLinks::stop() {
    inbox_.close();
    events_ = nullptr;
    soonPending_ = false;
    links_.clear();
}

void DrivenLinks::closeAll() {
    std::vector<LinkId> ids;
    ids.reserve(links_.size());
    for (const auto& [id, link] : links_) {
        ids.push_back(id);
    }
    for (LinkId id : ids) {
        close(id);
    }
}

DrivenLinks::Link* DrivenLinks::find(LinkId id) const {
    auto it = links_.find(id);
    return it == links_.end() ? nullptr : it->second.get();
}

LinkId DrivenLinks::accepted(std::string peer) {
    if (!events_) {
        return 0;
    }
    if (!unprovenInbound_.tryTake()) {
        log_(DWRTC_LOG_INFO, "refusing a node link: " + std::to_string(unprovenInbound_.taken()) +
                                 " links are still to prove who they are");
        return 0;
    }
    auto link = std::make_unique<Link>();
    link->owner = this;
    link->id = nextId_++;
    link->peer = std::move(peer);
    link->started = Clock::now();
    LinkId id = link->id;
    links_.emplace(id, std::move(link));
    return id;
}

void DrivenLinks::secured(LinkId id, std::string_view binding, std::string peer) {
    Link* link = find(id);
    if (!link || link->codec || link->ending != Status::Open) {
        return;
    }
    if (!peer.empty()) {
        link->peer = std::move(peer);
    }
    if (binding.size() != kBindingLength) {
        // No TLS 1.3 exporter: nothing to bind the hello to.
        log_(DWRTC_LOG_INFO, "closing a node link with " + link->peer + ": not TLS 1.3");
        end(*link, Status::Reset);
        return;
    }
    link->binding.assign(binding.data(), binding.size());
    LinkCodecConfig cc;
    cc.handshakeTimeout = config_.handshakeTimeout;
    link->codec = link->outbound ? LinkCodec::client(*link, link->host, cc, Clock::now())
                                 : LinkCodec::server(*link, cc, Clock::now());
    if (link->outbound) {
        driver_.wake(id);  // the upgrade request is to be written
    }
}

void DrivenLinks::received(LinkId id, const char* data, std::size_t len) {
    Link* link = find(id);
    if (!link || !link->codec || link->ending != Status::Open) {
        return;
    }
    link->codec->feed(data, len);
}

std::string DrivenLinks::take(LinkId id) {
    Link* link = find(id);
    if (!link || !link->codec || link->discard) {
        return {};
    }
    return link->codec->takeBytes();
}

DrivenLinks::Status DrivenLinks::status(LinkId id) const {
    Link* link = find(id);
    if (!link) {
        return Status::Gone;
    }
    if (link->ending != Status::Open) {
        return link->ending;
    }
    return link->codec && link->codec->finished() ? Status::Finish : Status::Open;
}

void DrivenLinks::closed(LinkId id) {
    auto it = links_.find(id);
    if (it == links_.end()) {
        return;
    }
    bool outbound = it->second->outbound;
    bool opened = it->second->opened;
    if (!outbound && !it->second->proven) {
        unprovenInbound_.giveBack();
    }
    links_.erase(it);
    if (events_ && id != connecting_) {
        events_->onLinkClosed(id, outbound, opened);
    }
}

void DrivenLinks::end(Link& link, Status status) {
    if (link.ending != Status::Open && status != Status::Reset) {
        return;
    }
    link.ending = status;
    driver_.wake(link.id);
}

LinkId DrivenLinks::connect(const std::string& host, unsigned port) {
    auto link = std::make_unique<Link>();
    link->owner = this;
    link->id = nextId_++;
    link->outbound = true;
    link->host = host;
    link->peer = host + ":" + std::to_string(port);
    link->started = Clock::now();
    LinkId id = link->id;
    links_.emplace(id, std::move(link));
    // A failure inside this call is answered by the return value alone,
    // not by an onLinkClosed() for a link the router has not seen yet.
    connecting_ = id;
    bool started = driver_.connect(id, host, port);
    connecting_ = 0;
    if (!started || !find(id)) {
        links_.erase(id);
        return 0;
    }
    return id;
}

void DrivenLinks::send(LinkId id, std::string frame) {
    Link* link = find(id);
    if (!link || link->ending != Status::Open) {
        return;
    }
    if (!link->codec || link->codec->state() == LinkCodec::State::Upgrading) {
        link->early.push_back(std::move(frame));
        return;
    }
    if (link->codec->state() != LinkCodec::State::Open) {
        return;  // closing: the router hears onLinkClosed() soon
    }
    if (!link->codec->sendFrame(std::move(frame))) {
        log_(DWRTC_LOG_WARN, "a node link with " + link->peer +
                                 " has too much unwritten; closing it");
        end(*link, Status::Reset);
        return;
    }
    driver_.wake(id);
}

void DrivenLinks::close(LinkId id) {
    Link* link = find(id);
    if (!link || link->ending != Status::Open) {
        return;
    }
    if (link->proven && link->codec) {
        // A proven peer gets a proper close frame after what is queued.
        link->codec->close(1000);
    } else {
        // An unproven one is cut off at once, as LinkService does: a close
        // handshake would keep reading whatever it still sends.
        link->discard = true;
    }
    end(*link, Status::Finish);
}

void DrivenLinks::abort(LinkId id) {
    Link* link = find(id);
    if (!link) {
        return;
    }
    link->discard = true;
    link->early.clear();
    end(*link, Status::Reset);
}

void DrivenLinks::setProven(LinkId id) {
    Link* link = find(id);
    if (!link || link->proven) {
        return;
    }
    link->proven = true;
    if (link->codec) {
        link->codec->setProven();
    }
    if (!link->outbound) {
        unprovenInbound_.giveBack();
    }
}

std::string DrivenLinks::peerAddress(LinkId id) const {
    Link* link = find(id);
    return link ? link->peer : std::string();
}

void DrivenLinks::signal() {
    std::uint64_t one = 1;
    // EAGAIN: the counter is full, the host is woken anyway.
    ssize_t n = ::write(eventFd_, &one, sizeof one);
    (void)n;
}

void DrivenLinks::post(std::function<void()> task) {
    if (inbox_.post(std::move(task)) == TaskInbox::Posted::Wake) {
        signal();
    }
}

void DrivenLinks::callSoon(std::chrono::milliseconds delay) {
    if (soonPending_ || !events_) {
        return;
    }
    soonPending_ = true;
    soonAt_ = Clock::now() + delay;
    // The host's wait was computed before this: have it ask run() again.
    signal();
}

void DrivenLinks::runPosted() {
    std::uint64_t count;
    ssize_t n = ::read(eventFd_, &count, sizeof count);
    (void)n;
    for (auto& task : inbox_.takeAll()) {
        task();
    }
}

// Links whose peer has not proven itself in time are cut off: an unproven
// peer may hold a little memory for a few seconds, no more.
void DrivenLinks::closeOverdue(Clock::time_point now) {
    for (auto& [id, link] : links_) {
        if (!link->proven && link->ending == Status::Open &&
            now - link->started > config_.handshakeTimeout) {
            std::string direction = link->outbound ? "to " : "from ";
            log_(DWRTC_LOG_INFO, "closing a node link " + direction + link->peer +
                                     ": no proven hello within " +
                                     std::to_string(config_.handshakeTimeout.count()) + " ms");
            link->discard = true;
            end(*link, Status::Finish);
        }
    }
}

std::chrono::milliseconds DrivenLinks::run(Clock::time_point now) {
    runPosted();
    if (now >= nextTick_) {
        nextTick_ = now + kTickPeriod;
        closeOverdue(now);
        if (events_) {
            events_->onTick();
        }
    }
    if (soonPending_ && now >= soonAt_) {
        soonPending_ = false;
        if (events_) {
            events_->onSoon();
        }
    }
    Clock::time_point next = nextTick_;
    if (soonPending_) {
        next = std::min(next, soonAt_);
    }
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now);
    return std::max(wait, std::chrono::milliseconds(0));
}

}  // namespace dwrtc
