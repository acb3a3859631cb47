// Chosen PeerJS ids (docs/peerjs.md, "Chosen ids"): an id the app picks
// (new Peer('alice')) is made unique across the network by a record in the
// DHT under the id, signed by the node that holds it: which node, since
// when, and a salted hash of the client's token, so that the same token can
// take the id back on any node while the token itself never leaves the
// node it was given to. Every node applies the same rule to the records it
// reads (peerJsIdHolder), so every node agrees on who holds an id. Free
// functions and a value type; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dwrtc {

// A PeerJS id a node does not give out: a valid PeerJS id that is not a
// DWRTC session id (those name their node and need no record) nor a
// key-owned id ('k' and 48 hex digits, routed by its key's claims).
bool isChosenPeerJsId(std::string_view id);

// The token's hash as stored in the DHT: SHA-256 of
//   "dwrtc-peerjs-token-v1\n" id "\n" token
// as 64 hex digits. The id and the label are the salt: one token used for
// two ids, or on another DWRTC network version, hashes apart, and no table
// computed ahead serves more than one id. A PeerJS id has no newline, so
// the text is read one way only.
std::string peerJsTokenHash(std::string_view id, std::string_view token);

// "The session with this token's hash holds `id` on `node` since `time`";
// `until` is 0 while the session lives, and once it has closed, when the
// id stops being reserved for its token (ms since 1970, node's clock).
struct PeerJsIdRecord {
    std::string id;
    std::string node;          // 32 hex digits: the node that signed the value
    std::uint64_t time = 0;    // ms since 1970: when the session asked for the id
    std::string tokenHash;     // peerJsTokenHash(id, token)
    std::uint64_t until = 0;   // 0: live; else the end of the reservation

    bool live() const { return until == 0; }
    // Live, or reserved at `now`.
    bool holdsAt(std::uint64_t now) const { return until == 0 || until > now; }
};

// {"v":1,"id":I,"node":N,"time":T,"token":H,"until":U}, compact JSON.
std::string encodePeerJsIdRecord(const PeerJsIdRecord& r);
// False unless the text is such a record with a valid chosen id, node id
// and hash (the signature is checked by whoever read the value).
bool decodePeerJsIdRecord(std::string_view text, PeerJsIdRecord& out);

// The DHT name an id's records are stored under; in a private network it
// depends on the network's secret, as node records do.
std::string peerJsIdRecordName(std::string_view networkKey, std::string_view id);

// Who holds an id, by the rule every node applies to the same records:
// records that no longer hold at `now` (a reservation that ended) are left
// out; the rest are taken in order of (time, node id); the first holds the
// id, and a later record holds it from then on only when it has the same
// token hash (the token's newer session: a reconnect or a reload, on any
// node). A later record with another token lost (its session gets
// ID-TAKEN). Two nodes asked for the same id at the same moment thus
// agree: the earlier request wins, and of two at the same millisecond the
// lower node id. nullopt when no record holds.
std::optional<PeerJsIdRecord> peerJsIdHolder(std::vector<PeerJsIdRecord> records,
                                             std::uint64_t now);

}  // namespace dwrtc
