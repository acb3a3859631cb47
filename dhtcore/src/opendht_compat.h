// What differs between the OpenDHT versions dhtcore builds with (Debian
// 12's 2.4, Debian 13's 3.0), in one place.
#pragma once

#include <opendht.h>

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
}  // namespace detail

// The address of a node of the routing table (DhtRunner::exportNodes()).
inline dht::SockAddr exportedAddress(const dht::NodeExport& n) {
    return detail::exportedAddress(n, 0);
}

}  // namespace dwrtc
