#include "dwrtc/peerjs.h"

#include "dwrtc/json_reader.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/session_id.h"

namespace dwrtc {

namespace {

bool isAlnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool isRelayedType(std::string_view type) {
    return type == "OFFER" || type == "ANSWER" || type == "CANDIDATE" || type == "LEAVE" ||
           type == "EXPIRE";
}

// One reader per thread for each shape, as the native parsers keep theirs:
// a reader holds views only, so reuse costs nothing.
JsonObjectReader& clientReader() {
    thread_local JsonObjectReader reader({"type", "dst", "payload"});
    return reader;
}
enum { kInType, kInDst, kInPayload };

JsonObjectReader& nativeReader() {
    thread_local JsonObjectReader reader(
        {"type", "senderSessionId", "recipientSessionId", "messageBody", "error", "verdict"});
    return reader;
}
enum { kNativeType, kNativeSender, kNativeRecipient, kNativeBody, kNativeError, kNativeVerdict };

constexpr std::string_view kIdVerdictType = "WebSocketPeerJsIdMessage";

struct VerdictName {
    PeerJsIdVerdict verdict;
    std::string_view name;
};
constexpr VerdictName kVerdictNames[] = {
    {PeerJsIdVerdict::Open, "open"},
    {PeerJsIdVerdict::Taken, "taken"},
    {PeerJsIdVerdict::NotInNetwork, "not-in-network"},
    {PeerJsIdVerdict::Lost, "lost"},
    {PeerJsIdVerdict::TakenOver, "taken-over"},
};

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Is text exactly one JSON value? The reader reads objects, so the value is
// read as an object's member, and must be all of the member: a body such as
// 1,"src":"x" reads as a member and another, which written out as a payload
// would add a second "src" to the message.
bool isJsonValue(std::string_view text) {
    while (!text.empty() && isJsonSpace(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && isJsonSpace(text.back())) {
        text.remove_suffix(1);
    }
    std::string wrapped;
    wrapped.reserve(text.size() + 8);
    wrapped.append("{\"v\":").append(text).push_back('}');
    JsonObjectReader reader({"v"});
    return reader.read(wrapped) == JsonObjectReader::Status::Ok &&
           reader.kind(0) != JsonObjectReader::Kind::Absent &&
           reader.rawValue(0).size() == text.size();
}

std::string typedFromTo(std::string_view type, std::string_view src, std::string_view dst) {
    std::string out;
    out.reserve(type.size() + src.size() + dst.size() + 32);
    out.append("{\"type\":");
    appendJsonString(out, type);
    out.append(",\"src\":");
    appendJsonString(out, src);
    out.append(",\"dst\":");
    appendJsonString(out, dst);
    return out;
}

}  // namespace

bool isChosenPeerJsId(std::string_view id) {
    // Key-owned ids are routed by their own claims: a PeerJS id of that
    // shape would be looked for there, never here.
    return isValidPeerJsId(id) && !isNodeSessionId(id) && !isOwnedId(id);
}

bool isValidPeerJsId(std::string_view id) {
    if (id.empty() || id.size() > kMaxPeerJsIdLength || !isAlnum(id.front()) ||
        !isAlnum(id.back())) {
        return false;
    }
    for (std::size_t i = 1; i < id.size(); ++i) {
        char c = id[i];
        if (isAlnum(c)) {
            continue;
        }
        if ((c != ' ' && c != '-' && c != '_') || !isAlnum(id[i - 1])) {
            return false;  // one separator at a time, between letters or digits
        }
    }
    return true;
}

PeerJsInput readPeerJsMessage(std::string_view text, ClientMessage& message, std::string& why) {
    JsonObjectReader& json = clientReader();
    switch (json.read(text)) {
        case JsonObjectReader::Status::Ok:
            break;
        case JsonObjectReader::Status::NotObject:
            why = "not a JSON object";
            return PeerJsInput::Dropped;
        case JsonObjectReader::Status::DuplicateKey:
            why = "duplicate key";
            return PeerJsInput::Dropped;
        default:
            why = "not JSON";
            return PeerJsInput::Dropped;
    }
    if (json.kind(kInType) != JsonObjectReader::Kind::String) {
        why = "\"type\" must be a string";
        return PeerJsInput::Dropped;
    }
    message.type = json.string(kInType);
    if (message.type == "HEARTBEAT") {
        return PeerJsInput::Heartbeat;
    }
    if (!isRelayedType(message.type)) {
        why = "unknown type";
        return PeerJsInput::Dropped;
    }
    if (json.kind(kInDst) != JsonObjectReader::Kind::String) {
        why = "\"dst\" must be a string";
        return PeerJsInput::Dropped;
    }
    message.recipient = json.string(kInDst);
    if (!isValidPeerJsId(message.recipient)) {
        why = "\"dst\" is not a PeerJS id";
        return PeerJsInput::Dropped;
    }
    message.body.clear();
    if (json.kind(kInPayload) != JsonObjectReader::Kind::Absent) {
        message.body.assign(json.rawValue(kInPayload));
    }
    return PeerJsInput::Relay;
}

PeerJsOutput renderForPeerJs(std::string_view self, std::string_view native, std::string& out) {
    JsonObjectReader& json = nativeReader();
    if (json.read(native) != JsonObjectReader::Status::Ok ||
        json.kind(kNativeType) != JsonObjectReader::Kind::String ||
        json.kind(kNativeRecipient) != JsonObjectReader::Kind::String) {
        return PeerJsOutput::Nothing;
    }
    std::string type = json.string(kNativeType);
    std::string recipient = json.string(kNativeRecipient);
    if (type == kIdVerdictType) {
        if (json.kind(kNativeVerdict) != JsonObjectReader::Kind::String) {
            return PeerJsOutput::Nothing;
        }
        std::string name = json.string(kNativeVerdict);
        for (const VerdictName& v : kVerdictNames) {
            if (v.name != name) {
                continue;
            }
            switch (v.verdict) {
                case PeerJsIdVerdict::Open:
                    out = serializePeerJsOpen();
                    return PeerJsOutput::Send;
                case PeerJsIdVerdict::Taken:
                case PeerJsIdVerdict::Lost:
                    out = serializePeerJsIdTaken();
                    return PeerJsOutput::SendAndClose;
                case PeerJsIdVerdict::NotInNetwork:
                    out = serializePeerJsError(kPeerJsNotInNetwork);
                    return PeerJsOutput::SendAndClose;
                case PeerJsIdVerdict::TakenOver:
                    out.clear();
                    return PeerJsOutput::CloseGoingAway;
            }
        }
        return PeerJsOutput::Nothing;
    }
    if (type == "WebSocketErrorMessage") {
        if (json.kind(kNativeError) != JsonObjectReader::Kind::String) {
            return PeerJsOutput::Nothing;
        }
        bool notFound = json.string(kNativeError) == "not found";
        out = typedFromTo(notFound ? "EXPIRE" : "LEAVE", recipient, self);
        out.push_back('}');
        return notFound ? PeerJsOutput::ExpireLater : PeerJsOutput::Send;
    }
    if (isReservedType(type) || json.kind(kNativeSender) != JsonObjectReader::Kind::String ||
        json.kind(kNativeBody) != JsonObjectReader::Kind::String) {
        return PeerJsOutput::Nothing;
    }
    std::string body = json.string(kNativeBody);
    out = typedFromTo(type, json.string(kNativeSender), recipient);
    if (!body.empty()) {
        out.append(",\"payload\":");
        if (isJsonValue(body)) {
            out.append(body);
        } else {
            appendJsonString(out, body);
        }
    }
    out.push_back('}');
    return PeerJsOutput::Send;
}

std::string serializePeerJsOpen() { return "{\"type\":\"OPEN\"}"; }

std::string serializePeerJsError(std::string_view msg) {
    std::string out = "{\"type\":\"ERROR\",\"payload\":{\"msg\":";
    appendJsonString(out, msg);
    out.append("}}");
    return out;
}

std::string serializePeerJsIdVerdict(std::string_view session, std::string_view id,
                                     PeerJsIdVerdict verdict) {
    std::string out = "{\"type\":\"";
    out.append(kIdVerdictType).append("\",\"recipientSessionId\":");
    appendJsonString(out, session);
    out.append(",\"id\":");
    appendJsonString(out, id);
    out.append(",\"verdict\":");
    for (const VerdictName& v : kVerdictNames) {
        if (v.verdict == verdict) {
            appendJsonString(out, v.name);
        }
    }
    out.push_back('}');
    return out;
}

std::string serializePeerJsIdTaken() {
    return "{\"type\":\"ID-TAKEN\",\"payload\":{\"msg\":\"ID is taken\"}}";
}

}  // namespace dwrtc
