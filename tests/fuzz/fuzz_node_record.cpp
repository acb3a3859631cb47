// libFuzzer target: a node record as the DHT hands it back,
// decodeNodeRecord() (any node can store any value under any key; only the
// signature check before it keeps strangers out). An accepted record names
// a node id, encodes again to a record that decodes to the same node, links
// and state, and each link is given to parseLinkUrl() as the router does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "check.h"
#include "dwrtc/host_port.h"
#include "dwrtc/session_id.h"
#include "node_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    dwrtc::NodeRecord record;
    bool gone = false;
    if (!dwrtc::decodeNodeRecord(text, record, gone)) {
        return 0;
    }
    FUZZ_CHECK(dwrtc::isValidNodePrefix(record.prefix), "record of no node id");

    std::string again = dwrtc::encodeNodeRecord(record.prefix, record.links, gone);
    FUZZ_CHECK(!again.empty(), "an accepted record cannot be encoded");
    dwrtc::NodeRecord reread;
    bool goneAgain = !gone;
    FUZZ_CHECK(dwrtc::decodeNodeRecord(again, reread, goneAgain),
               "the record encoded again is refused");
    FUZZ_CHECK(reread.prefix == record.prefix, "node changed");
    FUZZ_CHECK(reread.links == record.links, "links changed");
    FUZZ_CHECK(goneAgain == gone, "gone changed");

    for (const std::string& link : record.links) {
        dwrtc::HostPort address;
        if (dwrtc::parseLinkUrl(link, address)) {
            FUZZ_CHECK(!address.host.empty(), "link of no host");
            FUZZ_CHECK(address.port >= 1 && address.port <= 65535, "link port out of range");
        }
    }
    return 0;
}
