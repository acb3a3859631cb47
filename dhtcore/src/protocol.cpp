#include "dwrtc/protocol.h"

#include <jansson.h>

#include <limits>
#include <memory>

#include "dwrtc/session_id.h"

namespace dwrtc {

namespace {

// --- Writing ---------------------------------------------------------------

// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7:
// no overlongs, no surrogates, nothing above U+10FFFF), or 0 if there is
// none.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
    auto inRange = [&](std::size_t k, unsigned lo, unsigned hi) {
        return k < s.size() && byte(k) >= lo && byte(k) <= hi;
    };
    unsigned b = byte(i);
    if (b < 0x80) {
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        return inRange(i + 1, 0x80, 0xbf) ? 2 : 0;
    }
    if (b >= 0xe0 && b <= 0xef) {
        unsigned lo = (b == 0xe0) ? 0xa0 : 0x80;
        unsigned hi = (b == 0xed) ? 0x9f : 0xbf;
        return (inRange(i + 1, lo, hi) && inRange(i + 2, 0x80, 0xbf)) ? 3 : 0;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        unsigned lo = (b == 0xf0) ? 0x90 : 0x80;
        unsigned hi = (b == 0xf4) ? 0x8f : 0xbf;
        return (inRange(i + 1, lo, hi) && inRange(i + 2, 0x80, 0xbf) &&
                inRange(i + 3, 0x80, 0xbf))
                   ? 4
                   : 0;
    }
    return 0;
}

// Appends s as a JSON string literal. Valid UTF-8 is copied as is; each byte
// that does not start a valid sequence becomes U+FFFD, because browsers close
// a WebSocket whose text frame is not UTF-8.
void appendString(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
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
        out_.reserve(sizeHint + 64);
        out_.push_back('{');
    }
    ObjectWriter& field(std::string_view key, std::string_view value) {
        key_(key);
        appendString(out_, value);
        return *this;
    }
    ObjectWriter& field(std::string_view key, int value) {
        key_(key);
        out_ += std::to_string(value);
        return *this;
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

struct JsonDeleter {
    void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

// Loads any JSON value (not only objects, so a bare string can be told
// apart from a syntax error). Strings may hold U+0000 because the core keeps
// lengths; duplicate keys are refused so two "type" fields cannot mean
// different things to different readers.
JsonPtr load(std::string_view text, std::string& why) {
    json_error_t err;
    JsonPtr root(json_loadb(text.data(), text.size(),
                            JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err));
    if (!root) {
        why = (json_error_code(&err) == json_error_duplicate_key) ? "duplicate key" : "not JSON";
        return nullptr;
    }
    if (!json_is_object(root.get())) {
        why = "not a JSON object";
        return nullptr;
    }
    return root;
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

// Reads string field `key` into out; on failure says why.
bool getString(json_t* obj, const char* key, std::string& out, std::string& why) {
    json_t* v = json_object_get(obj, key);
    if (v == nullptr) {
        why = std::string("missing \"") + key + "\"";
        return false;
    }
    if (!json_is_string(v)) {
        why = std::string("\"") + key + "\" must be a string";
        return false;
    }
    out.assign(json_string_value(v), json_string_length(v));
    return true;
}

// Reads a session id field into out, lowercased.
bool getSessionId(json_t* obj, const char* key, std::string& out, std::string& why) {
    std::string raw;
    if (!getString(obj, key, raw, why)) {
        return false;
    }
    if (!isValidSessionId(raw)) {
        why = std::string("malformed ") + key;
        return false;
    }
    out = canonicalSessionId(raw);
    return true;
}

// Reads a message type: non-empty and not reserved for the node.
bool getType(json_t* obj, const char* key, std::string& out, std::string& why) {
    if (!getString(obj, key, out, why)) {
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

}  // namespace

bool isReservedType(std::string_view type) {
    constexpr std::string_view kReserved = "WebSocket";
    return type.substr(0, kReserved.size()) == kReserved;
}

bool parseClientMessage(std::string_view json, ClientMessage& out, std::string& why) {
    JsonPtr root = load(json, why);
    if (!root) {
        return false;
    }
    json_t* obj = root.get();
    return getType(obj, "type", out.type, why) &&
           getSessionId(obj, "recipientSessionId", out.recipient, why) &&
           getString(obj, "messageBody", out.body, why);
}

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
    return ObjectWriter(error.size())
        .field("type", "WebSocketErrorMessage")
        .field("error", error)
        .done();
}

std::string serializeError(std::string_view error, std::string_view recipient) {
    return ObjectWriter(error.size() + recipient.size())
        .field("type", "WebSocketErrorMessage")
        .field("error", error)
        .field("recipientSessionId", recipient)
        .done();
}

std::string serializeWelcome(std::string_view id) {
    return ObjectWriter(id.size()).field("type", "WebSocketIdMessage").field("id", id).done();
}

std::string serializeLinkHello(std::string_view node) {
    return ObjectWriter(node.size())
        .field("v", kLinkProtocolVersion)
        .field("t", "hello")
        .field("node", node)
        .done();
}

std::string serializeLinkDeliver(std::string_view node, std::string_view sender,
                                 std::string_view recipient, std::string_view type,
                                 std::string_view body) {
    return ObjectWriter(node.size() + sender.size() + recipient.size() + type.size() + body.size())
        .field("v", kLinkProtocolVersion)
        .field("t", "msg")
        .field("node", node)
        .field("sender", sender)
        .field("recipient", recipient)
        .field("type", type)
        .field("body", body)
        .done();
}

std::string serializeLinkNotFound(std::string_view node, std::string_view sender,
                                  std::string_view recipient) {
    return ObjectWriter(node.size() + sender.size() + recipient.size())
        .field("v", kLinkProtocolVersion)
        .field("t", "notfound")
        .field("node", node)
        .field("sender", sender)
        .field("recipient", recipient)
        .done();
}

bool parseLinkFrame(std::string_view json, LinkFrame& out, std::string& why) {
    JsonPtr root = load(json, why);
    if (!root) {
        return false;
    }
    json_t* obj = root.get();

    json_t* v = json_object_get(obj, "v");
    if (v == nullptr || !json_is_integer(v)) {
        why = "missing link protocol version";
        return false;
    }
    json_int_t version = json_integer_value(v);
    if (version != kLinkProtocolVersion) {
        // Filled as far as they can be so the caller can log who speaks
        // which version; the rest of a newer frame may mean anything.
        bool fits = version >= std::numeric_limits<int>::min() &&
                    version <= std::numeric_limits<int>::max();
        out.version = fits ? static_cast<int>(version) : -1;
        std::string t;
        std::string node;
        std::string ignored;
        if (getString(obj, "t", t, ignored) && t == "hello") {
            out.kind = LinkFrame::Kind::Hello;
        }
        if (getString(obj, "node", node, ignored)) {
            out.node = std::move(node);
        }
        why = "unsupported link protocol version " + std::to_string(version);
        return false;
    }
    out.version = kLinkProtocolVersion;

    std::string t;
    if (!getString(obj, "t", t, why)) {
        return false;
    }

    if (t == "hello") {
        out.kind = LinkFrame::Kind::Hello;
    } else if (t == "msg") {
        out.kind = LinkFrame::Kind::Deliver;
    } else if (t == "notfound") {
        out.kind = LinkFrame::Kind::NotFound;
    } else {
        why = "unknown link frame type \"" + excerpt(t) + "\"";
        return false;
    }

    if (!getString(obj, "node", out.node, why)) {
        return false;
    }
    if (!isValidNodePrefix(out.node)) {
        why = "malformed node";
        return false;
    }
    if (out.kind == LinkFrame::Kind::Hello) {
        return true;
    }
    if (!getSessionId(obj, "sender", out.sender, why) ||
        !getSessionId(obj, "recipient", out.recipient, why)) {
        return false;
    }
    if (out.kind == LinkFrame::Kind::NotFound) {
        return true;
    }
    return getType(obj, "type", out.type, why) && getString(obj, "body", out.body, why);
}

}  // namespace dwrtc
