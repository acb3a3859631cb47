// Bootstrapper: keeps a node joined to its network. Its own thread tries
// the bootstrap entries as BootstrapPlan says (resolving names again at
// every try, so a name that resolves only later, or a bootstrap node that
// starts after this one, is joined within seconds), watches OpenDHT's
// routing table for DHT nodes outside this nginx, and when an entry keeps
// silent probes it once to say why (nothing listens there, a TCP port such
// as a link port, or a node of another network). OpenDHT retries its own
// bootstrap nodes only while it has no peer at all; the sibling workers of
// one nginx are peers, so without this a node started before its bootstrap
// node stayed a network of its own.
//
// start() and stop() from the owner's thread; snapshot() from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap_plan.h"
#include "dwrtc/host_port.h"
#include "router_ports.h"  // LogFn

namespace dht {
class DhtRunner;
class SockAddr;
}  // namespace dht

namespace dwrtc {

struct BootstrapSnapshot {
    NetworkState state = NetworkState::Alone;
    unsigned outside = 0;   // DHT nodes outside this nginx that answer
    unsigned entries = 0;   // bootstrap entries that name other nodes
    unsigned answered = 0;  // of those, answered
};

class Bootstrapper {
public:
    // entries: "host:port" or "host:first-last" as configured (malformed
    // ones are left out, with a warning); every port of a range is tried. Ports portFrom-portTo on this host are this nginx's own
    // workers (0-0: only ownPort).
    Bootstrapper(dht::DhtRunner& runner, const std::vector<std::string>& entries,
                 unsigned portFrom, unsigned portTo, unsigned ownPort, LogFn log);
    ~Bootstrapper();
    Bootstrapper(const Bootstrapper&) = delete;
    Bootstrapper& operator=(const Bootstrapper&) = delete;

    void start();
    void stop();
    BootstrapSnapshot snapshot() const;

private:
    using Clock = BootstrapPlan::Clock;
    void run();
    void step(Clock::time_point now);
    void tryEntry(std::size_t i);
    void probe(std::size_t i);
    bool thisNginx(const dht::SockAddr& address) const;
    void refreshLocalAddresses(Clock::time_point now);

    dht::DhtRunner& runner_;
    std::vector<BootstrapTarget> hosts_;  // the well-formed entries, parsed once
    unsigned portFrom_, portTo_, ownPort_;
    LogFn log_;

    // The run thread's own state.
    BootstrapPlan plan_;
    // Per entry: its addresses as last resolved, one per port of its range
    // (the probe uses them), and as "ip port" keys, to find them in the
    // routing table.
    std::vector<std::vector<dht::SockAddr>> addresses_;
    std::vector<std::vector<std::string>> keys_;
    std::vector<bool> probed_;
    std::set<std::string> localIps_;
    Clock::time_point localIpsAt_{};

    mutable std::mutex mutex_;  // guards the below
    std::condition_variable wake_;
    bool stopping_ = false;
    BootstrapSnapshot snapshot_;
    std::thread thread_;
};

}  // namespace dwrtc
