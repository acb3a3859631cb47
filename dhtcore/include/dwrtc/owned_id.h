// Key-owned ids: an id that belongs to whoever holds a private key, not to
// the node that happens to hold the session.
//
// A browser makes an ECDSA P-256 key pair (WebCrypto). Its id is 'k' and
// the first 192 bits of the SHA-256 of its public key, as 48 hex digits:
// finding a second key for an id costs about 2^192 hashes. To use the id on
// a node it signs a claim: the node's id, the challenge the node gave its
// session, and a time. The node checks the claim, binds the id to the
// session and stores the claim in the DHT under the id, refreshed while
// the session lives. Whoever routes to the id believes only claims signed
// by the id's own key, and of those the newest: no node can point someone
// else's id at itself. Free functions and a value type; safe from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dwrtc/dwrtc.h"  // the defaults

namespace dwrtc {

// The id of a P-256 public key in uncompressed form (65 bytes, 0x04 X Y).
// Empty if the bytes are not that shape.
std::string ownedIdOfKey(std::string_view rawPublicKey);

// The challenge a node gives one of its sessions: an HMAC of the session id
// under a secret the node made at start, as 32 hex digits. Fresh for every
// session and kept nowhere: the node computes it again to check a claim.
std::string claimChallenge(std::string_view nodeSecret, std::string_view sessionId);

// A signed statement: "the holder of `key` is on node `node`, since `time`".
struct IdClaim {
    std::string id;         // ownedIdOfKey(key)
    std::string key;        // raw P-256 public key, 65 bytes
    std::string node;       // the node's id, 32 hex digits
    std::string challenge;  // what the node asked the session to sign
    std::uint64_t time = 0;  // milliseconds since 1970, the owner's clock
    std::string signature;  // ECDSA P-256 SHA-256, r||s (64 bytes, WebCrypto's form)
    // Where the node's links listen, as the node says: a hint that saves a
    // lookup, not signed by the owner. A wrong one fails at the link's
    // hello, which proves the node, and the node is then looked up.
    std::vector<std::string> links;
};

// The bytes the owner signs, as UTF-8 text:
//   "dwrtc-claim-v1\n" node "\n" challenge "\n" time (decimal)
std::string claimSignedBytes(std::string_view node, std::string_view challenge,
                             std::uint64_t time);

// Checks that the claim's key gives its id and that its signature is good.
// False with a short reason otherwise.
bool verifyClaim(const IdClaim& claim, std::string& why);
// Signature checks verifyClaim() made in this process so far: what
// strangers' claims cost, for tests and benchmarks.
std::uint64_t claimSignatureChecks();

// A claim as JSON, key and signature as hex:
//   {"v":1,"id":I,"key":K,"node":N,"challenge":C,"time":T,"sig":S,"links":[L,...]}
// This is the value stored in the DHT and sent on links.
std::string encodeIdClaim(const IdClaim& claim);
// Parses the JSON form (the signature is not checked here). False if it is
// not a well-formed claim.
bool decodeIdClaim(std::string_view text, IdClaim& out);

// How old a claim made on this node may be: the browser signs the time of
// its welcome and sends the claim at once, so a claim older than this is
// one signed for another session's welcome, or kept back.
constexpr std::uint64_t kClaimMaxAgeMs = 5 * 60 * 1000;

// Milliseconds since 1970 on this host's clock: the clock claims are dated by.
std::uint64_t wallClockMs();

// The rule every reader of a claim applies (a node checking a session's
// claim, a link's sender, a takeover, a room member, a lookup): a claim
// dated further ahead of this node's clock than `skewMs` is not believed.
// Routing follows the newest claim, so one dated in the future would
// outrank every claim its owner makes until that date: harvested by a
// rogue node (dwrtc.js signs the time its node's welcome gives), it would
// take the id from its owner. NTP-synced servers are well within the
// default (dwrtc_claim_clock_skew).
struct ClaimClock {
    std::uint64_t skewMs = DWRTC_DEFAULT_CLAIM_CLOCK_SKEW_MS;
    std::function<std::uint64_t()> now = wallClockMs;

    // By how many ms `time` is ahead of now beyond the skew; 0 if it may be
    // believed.
    std::uint64_t tooFarAhead(std::uint64_t time) const {
        std::uint64_t limit = now() + skewMs;
        return time > limit ? time - limit : 0;
    }
    // Why a claim of `time` is not believed, for log lines and errors.
    std::string whyNot(std::uint64_t time) const;
};

// The DHT name an id's claims are stored under (hashed by the directory);
// in a private network it depends on the network's secret, as node records
// do.
std::string idRecordName(std::string_view networkKey, std::string_view id);

}  // namespace dwrtc
