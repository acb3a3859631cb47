// What differs between the OpenDHT versions dhtcore builds with (Debian
// 12's 2.4, Debian 13's 3.0), in one place.
#pragma once

#include <opendht.h>

#include <cstddef>

namespace dwrtc {

namespace detail {
// OpenDHT 3 keeps a node's address as a SockAddr (NodeExport::addr).
template <typename Export>
auto exportedAddress(const Export& n, int) -> decltype(dht::SockAddr(n.addr)) {
    return dht::SockAddr(n.addr);
}
// OpenDHT 2 as a sockaddr_storage and its length (NodeExport::ss, sslen).
template <typename Export>
dht::SockAddr exportedAddress(const Export& n, long) {
    return dht::SockAddr(n.ss, n.sslen);
}

// OpenDHT 2.4 and 3.0 both take Config::max_searches; a version without it
// keeps its own cap (a million searches), and the caller says so in the log.
template <typename Config>
auto setMaxSearches(Config& c, std::size_t n, int) -> decltype(c.max_searches = 0, bool()) {
    c.max_searches = static_cast<decltype(c.max_searches)>(n);
    return true;
}
template <typename Config>
bool setMaxSearches(Config&, std::size_t, long) {
    return false;
}
}  // namespace detail

// Caps the searches a DHT node keeps. Past the cap OpenDHT reuses the place
// of a search that has ended and announces and listens to nothing; when
// none has ended, the new search fails at once (a lookup that finds
// nothing). False when this OpenDHT cannot be told.
inline bool setMaxSearches(dht::Config& config, std::size_t n) {
    return detail::setMaxSearches(config, n, 0);
}

// The address of a node of the routing table (DhtRunner::exportNodes()).
inline dht::SockAddr exportedAddress(const dht::NodeExport& n) {
    return detail::exportedAddress(n, 0);
}

}  // namespace dwrtc
