// The value a node stores in the DHT under its record key: which node it
// is, where its links listen, and whether it has left. Written by the
// node's own NodeDirectory, read from whatever the DHT hands back, so the
// decoder is a parser of network input. Free functions, safe from any
// thread.
#pragma once

#include <string>
#include <vector>

#include "router_ports.h"

namespace dwrtc {

// {"v":2,"node":N,"links":[L,...],"gone":G}, compact JSON.
std::string encodeNodeRecord(const std::string& prefix, const std::vector<std::string>& links,
                             bool gone);

// Decodes a record value; false if it is not a well-formed DWRTC record.
bool decodeNodeRecord(const std::string& text, NodeRecord& out, bool& gone);

}  // namespace dwrtc
