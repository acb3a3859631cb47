// Session ids and node prefixes. A session id is a UUID v4 string whose
// first 12 hex digits are the prefix of the node that holds the session, so
// any node can tell where a session lives without a per-session lookup.
// Free functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dwrtc {

constexpr std::size_t kSessionIdLength = 36;   // UUID v4 text
constexpr std::size_t kNodePrefixLength = 12;  // hex chars = 48 bits

// Node prefix from a hash (e.g. the node's public key id): the first 6 bytes
// as 12 lowercase hex chars. Throws std::invalid_argument if len < 6.
std::string nodePrefixFromBytes(const std::uint8_t* bytes, std::size_t len);

// True for exactly 12 lowercase hex chars.
bool isValidNodePrefix(std::string_view prefix);

// New session id "PPPPPPPP-PPPP-4xxx-yxxx-xxxxxxxxxxxx": P is the node
// prefix, every x comes from the kernel CSPRNG (getrandom(2)) and y is one of
// 8, 9, a, b, so 74 bits are random. Lowercase. Throws std::invalid_argument
// for a malformed prefix and std::system_error if getrandom fails.
std::string makeSessionId(std::string_view nodePrefix);

// Canonical UUID v4 text: 8-4-4-4-12 hex digits (either case), version
// nibble 4, variant nibble 8, 9, a or b.
bool isValidSessionId(std::string_view id);

// A valid session id in canonical (lowercase) form; ids are compared as
// strings, so every id that enters the core goes through this.
std::string canonicalSessionId(std::string_view id);
// The same in place, without a copy.
void canonicalizeSessionId(std::string& id);

// The node prefix a valid session id names (lowercase id[0..8) + id[9..13)),
// or an empty string if id is not a valid session id.
std::string nodePrefixOf(std::string_view sessionId);

// The same for an id already checked and lowercased (what the parsers of
// protocol.h hand out): no second check on the per-message path.
std::string nodePrefixOfCanonical(std::string_view canonicalId);

}  // namespace dwrtc
