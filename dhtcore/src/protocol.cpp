#include "dwrtc/protocol.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "dwrtc/json_reader.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/session_id.h"
#include "hex.h"
#include "utf8.h"

namespace dwrtc {

namespace {

// --- Writing ---------------------------------------------------------------

// Appends s as a JSON string literal. Valid UTF-8 is copied as is; each byte
// that does not start a valid sequence becomes U+FFFD, because browsers close
// a WebSocket whose text frame is not UTF-8. Runs of characters that need no
// escape are copied in one go: most of a signaling message is such a run.
void appendString(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    const std::size_t size = s.size();
    while (i < size) {
        std::size_t run = plainJsonRun(s, i);
        out.append(s.data() + i, run - i);
        i = run;
        if (i >= size) {
            break;
        }
        unsigned char c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '"': out += "\\\""; ++i; continue;
            case '\\': out += "\\\\"; ++i; continue;
            case '\b': out += "\\b"; ++i; continue;
            case '\f': out += "\\f"; ++i; continue;
            case '\n': out += "\\n"; ++i; continue;
            case '\r': out += "\\r"; ++i; continue;
            case '\t': out += "\\t"; ++i; continue;
            default: break;
        }
        if (c < 0x20) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0x0f]);
            ++i;
            continue;
        }
        std::size_t n = utf8SequenceLength(s, i);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        out.append(s.data() + i, n);
        i += n;
    }
    out.push_back('"');
}

// Builds one compact JSON object field by field, in the order written.
class ObjectWriter {
public:
    explicit ObjectWriter(std::size_t sizeHint) {
        out_.reserve(sizeHint + 128);  // keys, quotes and a few escapes
        out_.push_back('{');
    }
    ObjectWriter& field(std::string_view key, std::string_view value) {
        key_(key);
        appendString(out_, value);
        return *this;
    }
    ObjectWriter& field(std::string_view key, std::int64_t value) {
        key_(key);
        out_ += std::to_string(value);
        return *this;
    }
    // A value that is JSON already, copied as it is.
    ObjectWriter& rawField(std::string_view key, std::string_view json) {
        key_(key);
        out_.append(json);
        return *this;
    }
    ObjectWriter& field(std::string_view key, int value) {
        return field(key, static_cast<std::int64_t>(value));
    }
    std::string done() {
        out_.push_back('}');
        return std::move(out_);
    }

private:
    void key_(std::string_view key) {
        if (out_.size() > 1) {
            out_.push_back(',');
        }
        appendString(out_, key);
        out_.push_back(':');
    }
    std::string out_;
};

// --- Reading ---------------------------------------------------------------

// Why a text that is not the expected object was refused.
bool refuse(JsonObjectReader::Status status, std::string& why) {
    switch (status) {
        case JsonObjectReader::Status::Ok:
            return true;
        case JsonObjectReader::Status::DuplicateKey:
            why = "duplicate key";
            break;
        case JsonObjectReader::Status::NotObject:
            why = "not a JSON object";
            break;
        default:
            why = "not JSON";
            break;
    }
    return false;
}

// Client text echoed back in an error stays short; cut at a character
// boundary so the reason stays readable.
std::string excerpt(std::string_view s) {
    constexpr std::size_t kMax = 64;
    if (s.size() <= kMax) {
        return std::string(s);
    }
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) {
        --cut;
    }
    return std::string(s.substr(0, cut)) + "...";
}

// Reads string field `field` (named key) into out; on failure says why.
bool getString(const JsonObjectReader& json, std::size_t field, const char* key,
               std::string& out, std::string& why) {
    switch (json.kind(field)) {
        case JsonObjectReader::Kind::String:
            out.clear();
            json.appendString(field, out);
            return true;
        case JsonObjectReader::Kind::Absent:
            why = std::string("missing \"") + key + "\"";
            return false;
        default:
            why = std::string("\"") + key + "\" must be a string";
            return false;
    }
}

// Checks a session id read into out, and lowercases it.
bool takeSessionId(std::string& out, const char* key, std::string& why) {
    if (!isValidSessionId(out)) {
        why = std::string("malformed ") + key;
        return false;
    }
    canonicalizeSessionId(out);
    return true;
}

// A client message's recipient: a session id (stored lowercased) or an id
// the node gives PeerJS clients (a lowercase UUID, kept as it is).
bool getRecipient(const JsonObjectReader& json, std::size_t field, const char* key,
                  std::string& out, std::string& why) {
    return getString(json, field, key, out, why) &&
           (isPeerJsServerId(out) || takeSessionId(out, key, why));
}

// A link frame's sender or recipient: a session id (stored lowercased) or,
// in a frame that may name them, a chosen PeerJS id (kept as written: those
// are case-sensitive).
bool getLinkId(const JsonObjectReader& json, std::size_t field, const char* key,
               std::string& out, std::string& why) {
    return getString(json, field, key, out, why) &&
           (isChosenPeerJsId(out) || takeSessionId(out, key, why));
}

// Reads a string field of lowercase hex into out as bytes.
bool getHex(const JsonObjectReader& json, std::size_t field, const char* key, std::string& out,
            std::string& why) {
    std::string text;
    if (!getString(json, field, key, text, why)) {
        return false;
    }
    if (text.empty() || !fromHex(text, out)) {
        why = std::string("\"") + key + "\" must be lowercase hex";
        return false;
    }
    return true;
}

// Reads a message type: non-empty and not reserved for the node.
bool getType(const JsonObjectReader& json, std::size_t field, const char* key, std::string& out,
             std::string& why) {
    if (!getString(json, field, key, out, why)) {
        return false;
    }
    if (out.empty()) {
        why = std::string("\"") + key + "\" must not be empty";
        return false;
    }
    if (isReservedType(out)) {
        why = "reserved type \"" + excerpt(out) + "\"";
        return false;
    }
    return true;
}

// Fields of the client message and of link frames, by index.
enum ClientField : std::size_t { kClientType, kClientRecipient, kClientBody };
enum LinkField : std::size_t { kLinkV, kLinkT, kLinkNode, kLinkSender, kLinkRecipient,
                               kLinkType, kLinkBody, kLinkKey, kLinkProof, kLinkNet,
                               kLinkCount, kLinkClaim, kLinkNumber, kLinkSiblings,
                               kLinkChosen };
enum ClaimField : std::size_t { kClaimType, kClaimKey, kClaimTime, kClaimSignature };

// One reader per thread, so its setup stays off the per-message path; the
// views it keeps into a text are read only within the parse of that text.
JsonObjectReader& clientReader() {
    thread_local JsonObjectReader reader{"type", "recipientSessionId", "messageBody"};
    return reader;
}

JsonObjectReader& linkReader() {
    thread_local JsonObjectReader reader{"v",    "t",    "node", "sender", "recipient",
                                         "type", "body", "key",  "proof",  "net",
                                         "count", "claim", "n", "siblings", "chosen"};
    return reader;
}

JsonObjectReader& roomReader() {
    thread_local JsonObjectReader reader{"type", "room"};
    return reader;
}

JsonObjectReader& claimReader() {
    thread_local JsonObjectReader reader{"type", "key", "time", "signature"};
    return reader;
}

// "ID:PORT ID:PORT ...": node ids and link ports, one space between them.
bool parseSiblingList(std::string_view list, std::vector<LinkSibling>& out, std::string& why) {
    out.clear();
    // An empty list is no siblings; otherwise every item, the last one
    // included, is an ID:PORT.
    bool more = !list.empty();
    while (more) {
        if (out.size() == kMaxLinkSiblings) {
            why = "more than " + std::to_string(kMaxLinkSiblings) + " siblings";
            return false;
        }
        std::size_t end = list.find(' ');
        std::string_view item = list.substr(0, end);
        more = end != std::string_view::npos;
        list = more ? list.substr(end + 1) : std::string_view();
        std::size_t colon = item.find(':');
        std::string_view node = item.substr(0, colon);
        std::string_view port =
            colon == std::string_view::npos ? std::string_view() : item.substr(colon + 1);
        unsigned value = 0;
        bool portOk = !port.empty() && port.size() <= 5;
        for (char c : port) {
            portOk = portOk && c >= '0' && c <= '9';
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (!isValidNodePrefix(node) || !portOk || value == 0 || value > 65535) {
            why = "malformed sibling \"" + excerpt(item) + "\"";
            return false;
        }
        out.push_back(LinkSibling{std::string(node), value});
    }
    return true;
}

}  // namespace

bool isReservedType(std::string_view type) {
    constexpr std::string_view kReserved = "WebSocket";
    return type.substr(0, kReserved.size()) == kReserved;
}

bool parseClientMessage(std::string_view text, ClientMessage& out, std::string& why) {
    JsonObjectReader& json = clientReader();
    if (!refuse(json.read(text), why)) {
        return false;
    }
    return getType(json, kClientType, "type", out.type, why) &&
           getRecipient(json, kClientRecipient, "recipientSessionId", out.recipient, why) &&
           getString(json, kClientBody, "messageBody", out.body, why);
}

bool isRoomRequest(std::string_view text) {
    return text.find("\"WebSocketJoinMessage\"") != std::string_view::npos ||
           text.find("\"WebSocketLeaveMessage\"") != std::string_view::npos;
}

bool parseRoomRequest(std::string_view text, RoomRequest& out, std::string& why) {
    JsonObjectReader& json = roomReader();
    if (!refuse(json.read(text), why)) {
        return false;
    }
    std::string type;
    if (!getString(json, 0, "type", type, why)) {
        return false;
    }
    if (type == "WebSocketJoinMessage") {
        out.join = true;
    } else if (type == "WebSocketLeaveMessage") {
        out.join = false;
    } else {
        why = "not a room message";
        return false;
    }
    if (!getString(json, 1, "room", out.room, why)) {
        return false;
    }
    if (out.room.empty() || out.room.size() > 64) {
        why = "\"room\" must be 1 to 64 bytes";
        return false;
    }
    for (char c : out.room) {
        if (c < 0x20 || c > 0x7e) {
            why = "\"room\" must be printable ASCII";
            return false;
        }
    }
    return true;
}

std::string serializeRoomMembers(std::string_view room, const std::vector<std::string>& ids) {
    std::string list = "[";
    for (const std::string& id : ids) {
        if (list.size() > 1) {
            list.push_back(',');
        }
        appendString(list, id);
    }
    list.push_back(']');
    return ObjectWriter(room.size() + list.size())
        .field("type", "WebSocketRoomMessage")
        .field("room", room)
        .field("event", "members")
        .rawField("members", list)
        .done();
}

std::string serializeRoomEvent(std::string_view room, std::string_view event,
                               std::string_view id) {
    return ObjectWriter(room.size() + id.size())
        .field("type", "WebSocketRoomMessage")
        .field("room", room)
        .field("event", event)
        .field("id", id)
        .done();
}

std::string serializeRoomError(std::string_view error, std::string_view room) {
    return ObjectWriter(error.size() + room.size())
        .field("type", "WebSocketErrorMessage")
        .field("error", error)
        .field("room", room)
        .done();
}

bool isClaimMessage(std::string_view text) {
    return text.find("\"WebSocketClaimMessage\"") != std::string_view::npos;
}

bool parseClaimMessage(std::string_view text, ClaimMessage& out, std::string& why) {
    JsonObjectReader& json = claimReader();
    if (!refuse(json.read(text), why)) {
        return false;
    }
    std::string type;
    if (!getString(json, kClaimType, "type", type, why)) {
        return false;
    }
    if (type != "WebSocketClaimMessage") {
        why = "not a claim";
        return false;
    }
    if (!getHex(json, kClaimKey, "key", out.key, why) ||
        !getHex(json, kClaimSignature, "signature", out.signature, why)) {
        return false;
    }
    if (json.kind(kClaimTime) != JsonObjectReader::Kind::Integer || json.integer(kClaimTime) <= 0) {
        why = "\"time\" must be a positive integer";
        return false;
    }
    out.time = static_cast<std::uint64_t>(json.integer(kClaimTime));
    return true;
}

std::string serializeOwnedWelcome(std::string_view id, std::string_view nodeSessionId) {
    return ObjectWriter(id.size() + nodeSessionId.size())
        .field("type", "WebSocketIdMessage")
        .field("id", id)
        .rawField("owned", "true")
        .field("nodeSessionId", nodeSessionId)
        .done();
}

void appendJsonString(std::string& out, std::string_view s) { appendString(out, s); }

std::string serializeDelivery(std::string_view type, std::string_view sender,
                              std::string_view recipient, std::string_view body) {
    return ObjectWriter(type.size() + body.size() + 2 * kSessionIdLength)
        .field("type", type)
        .field("senderSessionId", sender)
        .field("recipientSessionId", recipient)
        .field("messageBody", body)
        .done();
}

std::string serializeNotFound(std::string_view recipient) {
    return serializeError("not found", recipient);
}

std::string serializeInvalid(std::string_view why) {
    std::string error = "invalid message: ";
    error.append(why);
    return serializeNodeError(error);
}

std::string serializeError(std::string_view error, std::string_view recipient) {
    return ObjectWriter(error.size() + recipient.size())
        .field("type", "WebSocketErrorMessage")
        .field("error", error)
        .field("recipientSessionId", recipient)
        .done();
}

std::string serializeWelcome(std::string_view id, std::string_view iceServers,
                             std::string_view challenge, std::uint64_t timeMs) {
    ObjectWriter out(id.size() + iceServers.size() + challenge.size() + 20);
    out.field("type", "WebSocketIdMessage").field("id", id);
    if (!challenge.empty()) {
        out.field("challenge", challenge).field("time", static_cast<std::int64_t>(timeMs));
    }
    if (!iceServers.empty()) {
        out.rawField("iceServers", iceServers);
    }
    return out.done();
}

std::string serializeNodeError(std::string_view error) {
    return ObjectWriter(error.size())
        .field("type", "WebSocketErrorMessage")
        .field("error", error)
        .done();
}

std::string serializeLinkHello(std::string_view node, const LinkProof& proof) {
    ObjectWriter out(node.size() + 2 * (proof.key.size() + proof.signature.size() +
                                        proof.networkMac.size()));
    out.field("v", kLinkProtocolVersion)
        .field("t", "hello")
        .field("node", node)
        .field("key", toHex(proof.key))
        .field("proof", toHex(proof.signature));
    if (!proof.networkMac.empty()) {
        out.field("net", toHex(proof.networkMac));
    }
    out.field("siblings", static_cast<std::int64_t>(1));
    out.field("chosen", static_cast<std::int64_t>(1));
    return out.done();
}

std::string serializeLinkDeliver(std::string_view node, std::string_view sender,
                                 std::string_view recipient, std::string_view type,
                                 std::string_view body, std::string_view claim) {
    ObjectWriter out(node.size() + sender.size() + recipient.size() + type.size() + body.size() +
                     claim.size());
    out.field("v", kLinkProtocolVersion)
        .field("t", "msg")
        .field("node", node)
        .field("sender", sender)
        .field("recipient", recipient)
        .field("type", type)
        .field("body", body);
    if (!claim.empty()) {
        out.field("claim", claim);
    }
    return out.done();
}

std::string serializeLinkAck(std::string_view node, std::uint32_t count) {
    return ObjectWriter(node.size())
        .field("v", kLinkProtocolVersion)
        .field("t", "ack")
        .field("node", node)
        .field("count", static_cast<std::int64_t>(count))
        .done();
}

std::string serializeLinkSiblings(std::string_view node,
                                  const std::vector<LinkSibling>& siblings) {
    std::string list;
    std::size_t count = std::min(siblings.size(), kMaxLinkSiblings);
    list.reserve(count * (kNodePrefixLength + 7));
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            list.push_back(' ');
        }
        list.append(siblings[i].node);
        list.push_back(':');
        list.append(std::to_string(siblings[i].port));
    }
    return ObjectWriter(node.size() + list.size())
        .field("v", kLinkProtocolVersion)
        .field("t", "siblings")
        .field("node", node)
        .field("siblings", list)
        .done();
}

std::string serializeLinkNotFound(std::string_view node, std::string_view sender,
                                  std::string_view recipient, std::uint64_t number) {
    ObjectWriter out(node.size() + sender.size() + recipient.size());
    out.field("v", kLinkProtocolVersion)
        .field("t", "notfound")
        .field("node", node)
        .field("sender", sender)
        .field("recipient", recipient);
    if (number > 0) {
        out.field("n", static_cast<std::int64_t>(number));
    }
    return out.done();
}

bool parseLinkFrame(std::string_view text, LinkFrame& out, std::string& why) {
    JsonObjectReader& json = linkReader();
    if (!refuse(json.read(text), why)) {
        return false;
    }
    if (json.kind(kLinkV) != JsonObjectReader::Kind::Integer) {
        why = "missing link protocol version";
        return false;
    }
    std::int64_t version = json.integer(kLinkV);
    if (version != kLinkProtocolVersion) {
        why = "unsupported link protocol version " + std::to_string(version);
        return false;
    }

    std::string t;
    if (!getString(json, kLinkT, "t", t, why)) {
        return false;
    }

    if (t == "hello") {
        out.kind = LinkFrame::Kind::Hello;
    } else if (t == "msg") {
        out.kind = LinkFrame::Kind::Deliver;
    } else if (t == "notfound") {
        out.kind = LinkFrame::Kind::NotFound;
    } else if (t == "ack") {
        out.kind = LinkFrame::Kind::Ack;
    } else if (t == "siblings") {
        out.kind = LinkFrame::Kind::Siblings;
    } else {
        why = "unknown link frame type \"" + excerpt(t) + "\"";
        return false;
    }

    if (!getString(json, kLinkNode, "node", out.node, why)) {
        return false;
    }
    if (!isValidNodePrefix(out.node)) {
        why = "malformed node";
        return false;
    }
    if (out.kind == LinkFrame::Kind::Hello) {
        if (!getHex(json, kLinkKey, "key", out.proof.key, why) ||
            !getHex(json, kLinkProof, "proof", out.proof.signature, why)) {
            return false;
        }
        out.proof.networkMac.clear();
        // Any other value (or none) is a node that does not take them.
        out.takesSiblings = json.kind(kLinkSiblings) == JsonObjectReader::Kind::Integer &&
                            json.integer(kLinkSiblings) == 1;
        out.takesChosen = json.kind(kLinkChosen) == JsonObjectReader::Kind::Integer &&
                          json.integer(kLinkChosen) == 1;
        return json.kind(kLinkNet) == JsonObjectReader::Kind::Absent ||
               getHex(json, kLinkNet, "net", out.proof.networkMac, why);
    }
    if (out.kind == LinkFrame::Kind::Siblings) {
        std::string list;
        return getString(json, kLinkSiblings, "siblings", list, why) &&
               parseSiblingList(list, out.siblings, why);
    }
    if (out.kind == LinkFrame::Kind::Ack) {
        if (json.kind(kLinkCount) != JsonObjectReader::Kind::Integer ||
            json.integer(kLinkCount) < 1 ||
            json.integer(kLinkCount) > std::numeric_limits<std::uint32_t>::max()) {
            why = "\"count\" must be a positive integer";
            return false;
        }
        out.count = static_cast<std::uint32_t>(json.integer(kLinkCount));
        return true;
    }
    if (!getLinkId(json, kLinkSender, "sender", out.sender, why) ||
        !getLinkId(json, kLinkRecipient, "recipient", out.recipient, why)) {
        return false;
    }
    if (out.kind == LinkFrame::Kind::NotFound) {
        out.number = 0;
        if (json.kind(kLinkNumber) == JsonObjectReader::Kind::Absent) {
            return true;
        }
        if (json.kind(kLinkNumber) != JsonObjectReader::Kind::Integer ||
            json.integer(kLinkNumber) < 1) {
            why = "\"n\" must be a positive integer";
            return false;
        }
        out.number = static_cast<std::uint64_t>(json.integer(kLinkNumber));
        return true;
    }
    out.claim.clear();
    bool taken = getString(json, kLinkType, "type", out.type, why) && out.type == kIdTakenType &&
                 out.sender == out.recipient && isOwnedId(out.sender);
    return (taken || getType(json, kLinkType, "type", out.type, why)) &&
           getString(json, kLinkBody, "body", out.body, why) &&
           (json.kind(kLinkClaim) == JsonObjectReader::Kind::Absent ||
            getString(json, kLinkClaim, "claim", out.claim, why));
}

}  // namespace dwrtc
