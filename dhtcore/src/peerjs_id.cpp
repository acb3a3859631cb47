#include "dwrtc/peerjs_id.h"

#include <jansson.h>
#include <openssl/sha.h>

#include <algorithm>
#include <tuple>

#include "dwrtc/owned_id.h"
#include "dwrtc/peerjs.h"
#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "hex.h"
#include "json_text.h"

namespace dwrtc {

namespace {

constexpr int kRecordVersion = 1;
constexpr std::string_view kTokenLabel = "dwrtc-peerjs-token-v1";
constexpr std::string_view kPeerJsRecordContext = "dwrtc-peerjs-id-record-v1";
constexpr std::size_t kTokenHashHexLength = 2 * SHA256_DIGEST_LENGTH;

bool isLowerHex(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
}

// A JSON integer a record may carry: jansson's are signed 64-bit.
bool readTime(json_t* value, std::uint64_t& out) {
    if (!json_is_integer(value) || json_integer_value(value) < 0) {
        return false;
    }
    out = static_cast<std::uint64_t>(json_integer_value(value));
    return true;
}

}  // namespace

// isChosenPeerJsId() is in peerjs.cpp, beside the PeerJS id's shape: the
// link protocol reads chosen ids too, with no need of the records' code.

std::string peerJsTokenHash(std::string_view id, std::string_view token) {
    std::string salted(kTokenLabel);
    salted.push_back('\n');
    salted.append(id).push_back('\n');
    salted.append(token);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(salted.data()), salted.size(), digest);
    return toHex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string encodePeerJsIdRecord(const PeerJsIdRecord& r) {
    json_t* obj = json_object();
    json_object_set_new(obj, "v", json_integer(kRecordVersion));
    json_object_set_new(obj, "id", json_stringn(r.id.data(), r.id.size()));
    json_object_set_new(obj, "node", json_stringn(r.node.data(), r.node.size()));
    json_object_set_new(obj, "time", json_integer(static_cast<json_int_t>(r.time)));
    json_object_set_new(obj, "token", json_stringn(r.tokenHash.data(), r.tokenHash.size()));
    json_object_set_new(obj, "until", json_integer(static_cast<json_int_t>(r.until)));
    return compactJson(obj);
}

bool decodePeerJsIdRecord(std::string_view text, PeerJsIdRecord& out) {
    JsonObject record = loadRecord(text, kRecordVersion);
    if (!record) {
        return false;
    }
    json_t* obj = record.get();
    json_t* id = json_object_get(obj, "id");
    json_t* node = json_object_get(obj, "node");
    json_t* token = json_object_get(obj, "token");
    if (!json_is_string(id) || !json_is_string(node) || !json_is_string(token) ||
        !readTime(json_object_get(obj, "time"), out.time) ||
        !readTime(json_object_get(obj, "until"), out.until)) {
        return false;
    }
    out.id.assign(json_string_value(id), json_string_length(id));
    out.node.assign(json_string_value(node), json_string_length(node));
    out.tokenHash.assign(json_string_value(token), json_string_length(token));
    // The node id as its records spell it (lower-case hex), so that the
    // rule's tie-break and the signer check compare like with like.
    return isChosenPeerJsId(out.id) && isValidNodePrefix(out.node) && isLowerHex(out.node) &&
           out.tokenHash.size() == kTokenHashHexLength && isLowerHex(out.tokenHash);
}

std::string peerJsIdRecordName(std::string_view networkKey, std::string_view id) {
    return recordName("peerjs-id", kPeerJsRecordContext, networkKey, id);
}

std::optional<PeerJsIdRecord> peerJsIdHolder(std::vector<PeerJsIdRecord> records,
                                             std::uint64_t now) {
    records.erase(std::remove_if(records.begin(), records.end(),
                                 [now](const PeerJsIdRecord& r) { return !r.holdsAt(now); }),
                  records.end());
    std::sort(records.begin(), records.end(), [](const PeerJsIdRecord& a, const PeerJsIdRecord& b) {
        return std::tie(a.time, a.node) < std::tie(b.time, b.node);
    });
    std::optional<PeerJsIdRecord> holder;
    for (PeerJsIdRecord& r : records) {
        if (!holder || r.tokenHash == holder->tokenHash) {
            holder = std::move(r);
        }
    }
    return holder;
}

}  // namespace dwrtc
