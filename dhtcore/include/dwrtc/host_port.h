// "host:port" text, the one parser and writer of it in the core: bootstrap
// addresses, link addresses in node records ("wss://host:port"), and the
// address a node publishes. An IPv6 address is written in brackets
// ("[::1]:4222"). Free functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace dwrtc {

struct HostPort {
    std::string host;  // without brackets
    unsigned port = 0;
};

// "host:port" or "[v6]:port" with a port of 1-65535 in decimal; false (out
// unspecified) for anything else, an empty host included.
bool parseHostPort(std::string_view text, HostPort& out);

// A bootstrap entry: "host:port", or "host:first-last" for a node's DHT
// port range (a node's worker may listen on any port of its range: after a
// reload the first port can stay free), at most kMaxBootstrapPorts ports.
// portTo == portFrom for a single port.
struct BootstrapTarget {
    std::string host;
    unsigned portFrom = 0;
    unsigned portTo = 0;
};
constexpr unsigned kMaxBootstrapPorts = 64;
bool parseBootstrapEntry(std::string_view text, BootstrapTarget& out);

// "wss://host:port", optionally followed by a path; false for any other
// scheme (links between nodes are always TLS).
bool parseLinkUrl(std::string_view url, HostPort& out);

// "host:port", with brackets around a host that holds a colon.
std::string formatHostPort(std::string_view host, unsigned port);

}  // namespace dwrtc
