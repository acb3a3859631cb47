// libFuzzer target: addresses from the network and from configuration,
// parseHostPort() (addresses), parseBootstrapEntry() (dwrtc_bootstrap
// entries, a port or a range) and parseLinkUrl() (the links of a node
// record). An accepted address has a host and a port of 1-65535, and
// formatHostPort() writes it as text that parses to the same host and port,
// also as a link URL; a range is ordered and at most kMaxBootstrapPorts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "dwrtc/host_port.h"

namespace {

void checkAddress(const dwrtc::HostPort& address) {
    FUZZ_CHECK(!address.host.empty(), "address of no host");
    FUZZ_CHECK(address.port >= 1 && address.port <= 65535, "port out of range");

    std::string text = dwrtc::formatHostPort(address.host, address.port);
    dwrtc::HostPort reread;
    FUZZ_CHECK(dwrtc::parseHostPort(text, reread), "the address written again is refused");
    FUZZ_CHECK(reread.host == address.host, "host changed");
    FUZZ_CHECK(reread.port == address.port, "port changed");

    // A link URL ends its address at the first '/'; a host that holds one
    // (parseHostPort takes any bytes) has no link form.
    if (address.host.find('/') != std::string::npos) {
        return;
    }
    dwrtc::HostPort link;
    FUZZ_CHECK(dwrtc::parseLinkUrl("wss://" + text, link), "the address as a link is refused");
    FUZZ_CHECK(link.host == address.host && link.port == address.port,
               "the address as a link parses to another one");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    dwrtc::HostPort address;
    if (dwrtc::parseHostPort(text, address)) {
        checkAddress(address);
    }
    if (dwrtc::parseLinkUrl(text, address)) {
        checkAddress(address);
    }
    dwrtc::BootstrapTarget target;
    if (dwrtc::parseBootstrapEntry(text, target)) {
        FUZZ_CHECK(target.portFrom <= target.portTo, "a reversed range");
        FUZZ_CHECK(target.portTo - target.portFrom < dwrtc::kMaxBootstrapPorts, "a range too wide");
        checkAddress(dwrtc::HostPort{target.host, target.portFrom});
        checkAddress(dwrtc::HostPort{target.host, target.portTo});
    }
    return 0;
}
