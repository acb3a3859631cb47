#include "bootstrap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <opendht.h>

#include "dwrtc/dwrtc.h"
#include "dwrtc/host_port.h"
#include "opendht_compat.h"

namespace dwrtc {

namespace {

constexpr std::chrono::milliseconds kStep{500};
constexpr std::chrono::seconds kLocalAddressesAge{30};
constexpr int kProbeWaitMs = 500;
static_assert(kMaxBootstrapPorts == DWRTC_MAX_BOOTSTRAP_PORTS);

// The address as text without the port; an IPv4-mapped IPv6 address as
// IPv4, so that one host is one string whichever socket saw it.
std::string ipText(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
    } else if (sa->sa_family == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
        } else {
            inet_ntop(AF_INET6, &a, buf, sizeof buf);
        }
    }
    return buf;
}

std::string addressKey(const dht::SockAddr& a) {
    return ipText(a.get()) + " " + std::to_string(a.getPort());
}

bool loopback(const std::string& ip) {
    return ip.rfind("127.", 0) == 0 || ip == "::1";
}

// One non-blocking socket, closed on every path.
struct Socket {
    int fd = -1;
    explicit Socket(int f) : fd(f) {}
    Socket(Socket&& other) noexcept : fd(other.fd) { other.fd = -1; }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    Socket& operator=(Socket&&) = delete;
    ~Socket() {
        if (fd >= 0) {
            close(fd);
        }
    }
};

// Which of the addresses refuse a datagram (an ICMP port unreachable comes
// back): nothing listens on that UDP port. All at once, so a range of ports
// behind a firewall that drops them costs one wait, not one each.
std::vector<bool> udpRefused(const std::vector<dht::SockAddr>& addresses) {
    std::vector<bool> refused(addresses.size(), false);
    std::vector<Socket> sockets;
    std::vector<pollfd> waiting;
    std::vector<std::size_t> which;
    sockets.reserve(addresses.size());
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        const dht::SockAddr& a = addresses[i];
        sockets.emplace_back(socket(a.getFamily(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int fd = sockets.back().fd;
        char byte = 0;
        if (fd < 0 || connect(fd, a.get(), a.getLength()) != 0 || send(fd, &byte, 1, 0) < 0) {
            refused[i] = errno == ECONNREFUSED;
            continue;
        }
        waiting.push_back(pollfd{fd, POLLIN, 0});
        which.push_back(i);
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kProbeWaitMs);
    std::size_t open = waiting.size();
    while (open > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        until - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0 || poll(waiting.data(), waiting.size(), static_cast<int>(left)) <= 0) {
            break;
        }
        for (std::size_t k = 0; k < waiting.size(); ++k) {
            if (waiting[k].fd >= 0 && waiting[k].revents != 0) {
                char buf[64];
                refused[which[k]] =
                    recv(waiting[k].fd, buf, sizeof buf, 0) < 0 && errno == ECONNREFUSED;
                waiting[k].fd = -1;  // poll() skips it from now on
                --open;
            }
        }
    }
    return refused;
}

bool tcpAccepts(const dht::SockAddr& a) {
    Socket s(socket(a.getFamily(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (s.fd < 0) {
        return false;
    }
    if (connect(s.fd, a.get(), a.getLength()) == 0) {
        return true;
    }
    if (errno != EINPROGRESS) {
        return false;
    }
    pollfd p{s.fd, POLLOUT, 0};
    if (poll(&p, 1, kProbeWaitMs) <= 0) {
        return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    return getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

}  // namespace

Bootstrapper::Bootstrapper(dht::DhtRunner& runner, const std::vector<std::string>& entries,
                           unsigned portFrom, unsigned portTo, unsigned ownPort, LogFn log)
    : runner_(runner),
      portFrom_(portFrom),
      portTo_(portTo),
      ownPort_(ownPort),
      log_(std::move(log)),
      plan_({}, Clock::now()) {
    std::vector<std::string> texts;
    for (const std::string& e : entries) {
        BootstrapTarget hp;
        if (!parseBootstrapEntry(e, hp)) {
            log_(DWRTC_LOG_WARN, "ignoring malformed bootstrap address \"" + e + "\"");
            continue;
        }
        hosts_.push_back(std::move(hp));
        texts.push_back(e);
    }
    plan_ = BootstrapPlan(texts, Clock::now());
    addresses_.resize(hosts_.size());
    keys_.resize(hosts_.size());
    probed_.resize(hosts_.size(), false);
    snapshot_.state = plan_.state();
    snapshot_.entries = plan_.remoteEntries();
}

Bootstrapper::~Bootstrapper() { stop(); }

void Bootstrapper::start() {
    if (thread_.joinable()) {
        return;
    }
    // The first tries go out now, before the node's record is put, so the
    // put finds peers where there are any.
    step(Clock::now());
    thread_ = std::thread([this] { run(); });
}

void Bootstrapper::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

BootstrapSnapshot Bootstrapper::snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return snapshot_;
}

void Bootstrapper::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, kStep);
        if (stopping_) {
            break;
        }
        lock.unlock();
        try {
            step(Clock::now());
        } catch (const std::exception& e) {
            log_(DWRTC_LOG_DEBUG, std::string("bootstrap step failed: ") + e.what());
        }
        lock.lock();
    }
}

void Bootstrapper::refreshLocalAddresses(Clock::time_point now) {
    if (!localIps_.empty() && now - localIpsAt_ < kLocalAddressesAge) {
        return;
    }
    localIpsAt_ = now;
    std::set<std::string> ips;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
        for (ifaddrs* i = list; i; i = i->ifa_next) {
            if (i->ifa_addr &&
                (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6)) {
                ips.insert(ipText(i->ifa_addr));
            }
        }
        freeifaddrs(list);
    }
    localIps_ = std::move(ips);
}

// The workers of this nginx (and the old ones during a reload) bind ports
// of the same range on this host.
bool Bootstrapper::thisNginx(const dht::SockAddr& address) const {
    unsigned port = address.getPort();
    bool ours = (portFrom_ == 0 && portTo_ == 0) ? port == ownPort_
                                                 : port >= portFrom_ && port <= portTo_;
    if (!ours) {
        return false;
    }
    std::string ip = ipText(address.get());
    return loopback(ip) || localIps_.count(ip) > 0;
}

void Bootstrapper::tryEntry(std::size_t i) {
    const BootstrapTarget& hp = hosts_[i];
    std::vector<dht::SockAddr> addrs;
    std::string why = "no address";
    try {
        for (const dht::SockAddr& host :
             dht::SockAddr::resolve(hp.host, std::to_string(hp.portFrom))) {
            for (unsigned port = hp.portFrom; port <= hp.portTo; ++port) {
                addrs.push_back(host);
                addrs.back().setPort(static_cast<in_port_t>(port));
            }
        }
    } catch (const std::exception& e) {
        why = e.what();
    }
    std::vector<std::string> keys;
    bool allLocal = true;
    for (const dht::SockAddr& a : addrs) {
        keys.push_back(addressKey(a));
        allLocal = allLocal && thisNginx(a);
    }
    if (keys != keys_[i]) {
        probed_[i] = false;  // new addresses: a new reason to find
        keys_[i] = std::move(keys);
    }
    addresses_[i] = addrs;
    if (addrs.empty()) {
        plan_.tried(i, EntryOutcome::Unresolvable, why);
        return;
    }
    runner_.bootstrap(std::move(addrs));
    plan_.tried(i, allLocal ? EntryOutcome::Local : EntryOutcome::NoAnswer);
}

// Once per address set of an entry that keeps silent: the addresses of its
// last try, no new lookup.
void Bootstrapper::probe(std::size_t i) {
    probed_[i] = true;
    if (addresses_[i].empty()) {
        return;
    }
    // The ports of the first address the name gave (a range: one address
    // per port).
    const BootstrapTarget& hp = hosts_[i];
    std::size_t ports = hp.portTo - hp.portFrom + 1;
    std::vector<dht::SockAddr> first(addresses_[i].begin(),
                                     addresses_[i].begin() +
                                         static_cast<std::ptrdiff_t>(
                                             std::min(ports, addresses_[i].size())));
    std::vector<bool> refused = udpRefused(first);
    auto open = std::find(refused.begin(), refused.end(), false);
    const dht::SockAddr& a = first.front();
    std::string port = std::to_string(hp.portFrom);
    std::string portText =
        ports == 1 ? "UDP port " + port
                   : "UDP ports " + port + "-" + std::to_string(hp.portTo);
    std::string detail;
    if (open != refused.end()) {
        detail = "a UDP socket at " + first[open - refused.begin()].toString() +
                 " takes packets but does not answer as a DHT node of this network: a "
                 "node with another dwrtc_network_key (or none where this node has one), "
                 "or a firewall that drops them";
    } else if (tcpAccepts(a)) {
        detail = "nothing listens on " + portText + " there, but TCP port " + port +
                 " accepts connections: dwrtc_bootstrap takes a node's DHT port "
                 "(dwrtc_dht_port, UDP), not its link port (dwrtc_link_port)";
    } else if (ports == 1) {
        detail = "nothing listens on UDP port " + port + " at " + a.toString() +
                 ": is that node running, and is " + port +
                 " in its dwrtc_dht_port range? After a reload its worker may listen on "
                 "another port of its range: name the range (host:first-last)";
    } else {
        detail = "nothing listens on " + portText + " at " + ipText(a.get()) +
                 ": is that node running, and is its dwrtc_dht_port range within these?";
    }
    plan_.tried(i, EntryOutcome::NoAnswer, detail);
}

void Bootstrapper::step(Clock::time_point now) {
    refreshLocalAddresses(now);
    for (std::size_t i : plan_.due(now)) {
        tryEntry(i);
    }

    std::set<std::string> answering;
    unsigned outside = 0;
    for (const dht::NodeExport& n : runner_.exportNodes()) {
        dht::SockAddr a = exportedAddress(n);
        answering.insert(addressKey(a));
        if (!thisNginx(a)) {
            ++outside;
        }
    }
    std::vector<bool> answered(hosts_.size(), false);
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
        for (const std::string& k : keys_[i]) {
            answered[i] = answered[i] || answering.count(k) > 0;
        }
    }
    for (const BootstrapPlan::LogLine& line : plan_.observe(now, answered, outside)) {
        log_(line.warning ? DWRTC_LOG_WARN : DWRTC_LOG_INFO, line.text);
    }
    if (plan_.state() != NetworkState::InNetwork) {
        for (std::size_t i = 0; i < hosts_.size(); ++i) {
            if (!probed_[i] && plan_.wantsProbe(i)) {
                probe(i);
            }
        }
    }

    std::lock_guard<std::mutex> lock(mutex_);
    snapshot_.state = plan_.state();
    snapshot_.outside = outside;
    snapshot_.entries = plan_.remoteEntries();
    snapshot_.answered = plan_.answeredEntries();
}

}  // namespace dwrtc
