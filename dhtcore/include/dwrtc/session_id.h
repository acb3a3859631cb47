// Session ids and node ids. A session id is the id of the node that holds
// the session, a dash, and 64 bits from the kernel CSPRNG, so any node can
// tell where a session lives without a per-session lookup. A node id is the
// first 128 bits of the SHA-256 of the node's public key: making a second
// key for an id costs about 2^128 hashes. Clients treat session ids as
// opaque strings. Free functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dwrtc {

constexpr std::size_t kNodePrefixLength = 32;  // hex chars = 128 bits
constexpr std::size_t kSessionRandomLength = 16;  // hex chars = 64 bits
constexpr std::size_t kSessionIdLength = kNodePrefixLength + 1 + kSessionRandomLength;

// Node id from a hash (the SHA-256 of the node's public key): the first 16
// bytes as 32 lowercase hex chars. Throws std::invalid_argument if len < 16.
std::string nodePrefixFromBytes(const std::uint8_t* bytes, std::size_t len);

// True for exactly 32 lowercase hex chars.
bool isValidNodePrefix(std::string_view prefix);

// New session id "<node id>-<16 hex digits from getrandom(2)>", lowercase.
// Throws std::invalid_argument for a malformed node id and std::system_error
// if getrandom fails.
std::string makeSessionId(std::string_view nodePrefix);

// 32 hex digits, '-', 16 hex digits (either case): an id a node assigned.
bool isNodeSessionId(std::string_view id);

// A PeerJS id the node gives a PeerJS client that asks for one (GET
// {key}/id): a random UUID of version 4 in lowercase, as the PeerJS server
// gives them. It names no node: the session that opens it claims it in the
// DHT like an id the app chose (peerjs_id.h), so it opens on any worker of
// any node, and its token takes it back there. Throws std::system_error if
// getrandom fails.
constexpr std::size_t kPeerJsServerIdLength = 36;
std::string makePeerJsServerId();

// Shaped as makePeerJsServerId() makes them (8-4-4-4-12 lowercase hex
// digits): the PeerJS ids a native client may send to.
bool isPeerJsServerId(std::string_view id);

// A key-owned id (owned_id.h): 'k' and 48 hex digits (either case), as
// long as a node's session id so both fit the same fixed-size slots.
constexpr std::size_t kOwnedIdLength = kSessionIdLength;
bool isOwnedId(std::string_view id);

// Either kind of id: what a message may be addressed to or come from.
bool isValidSessionId(std::string_view id);

// A valid session id in canonical (lowercase) form, in place; ids are
// compared as strings, so every id that enters the core goes through this.
void canonicalizeSessionId(std::string& id);

// The node id a node's session id names, for an id already checked and
// lowercased (what the parsers of protocol.h hand out). A key-owned id
// names no node: check isOwnedId() first.
inline std::string_view nodePrefixOfCanonical(std::string_view canonicalId) {
    return canonicalId.substr(0, kNodePrefixLength);
}

}  // namespace dwrtc
