// libFuzzer target: what a browser sends, parseClientMessage(). A message
// that is accepted must be one the node can route and relay as is: a valid,
// lowercase recipient, a type the client may use, and a delivery that reads
// back as the same fields. For texts up to kJanssonLimit bytes jansson, the
// strict parser the reader is held against, must agree on what is JSON and
// on what the fields hold.
#include <jansson.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "dwrtc/json_reader.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"

namespace {

constexpr std::size_t kJanssonLimit = 4096;
constexpr std::string_view kSender = "0123456789abcdef0123456789abcdef-0011223344556677";

bool isLowercase(std::string_view s) {
    for (char c : s) {
        if (std::isupper(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

// jansson's string field key of obj, if it is a string: the bytes it holds.
bool janssonString(json_t* obj, const char* key, std::string& out) {
    json_t* v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        return false;
    }
    out.assign(json_string_value(v), json_string_length(v));
    return true;
}

// The message as jansson reads it; false where parseClientMessage must
// refuse it too. Duplicates are looked at separately.
bool janssonMessage(json_t* obj, dwrtc::ClientMessage& out) {
    if (!json_is_object(obj) || !janssonString(obj, "type", out.type) ||
        !janssonString(obj, "recipientSessionId", out.recipient) ||
        !janssonString(obj, "messageBody", out.body)) {
        return false;
    }
    if (out.type.empty() || dwrtc::isReservedType(out.type) ||
        !dwrtc::isValidSessionId(out.recipient)) {
        return false;
    }
    dwrtc::canonicalizeSessionId(out.recipient);
    return true;
}

void compareWithJansson(std::string_view text, bool accepted, const dwrtc::ClientMessage& ours,
                        const std::string& why) {
    // RFC 8259 has no raw NUL byte and jansson 2.14 skips some of them; the
    // reader refuses every one, checked here and in test_json_reader.
    if (text.find('\0') != std::string_view::npos) {
        FUZZ_CHECK(!accepted, "a raw NUL byte was accepted");
        return;
    }
    json_error_t err;
    json_t* loose = json_loadb(text.data(), text.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!loose) {
        FUZZ_CHECK(!accepted, "accepted a text jansson does not read as JSON");
        FUZZ_CHECK(why == "not JSON" || why == "duplicate key",
                   "a text jansson refuses was refused for another reason");
        return;
    }
    FUZZ_CHECK(why != "not JSON", "refused as not JSON a text jansson reads");
    FUZZ_CHECK((why == "not a JSON object") == !json_is_object(loose),
               "JSON object or not: reader and jansson disagree");
    dwrtc::ClientMessage theirs;
    bool janssonAccepts = janssonMessage(loose, theirs);
    json_decref(loose);
    if (why == "duplicate key") {
        json_t* strict = json_loadb(text.data(), text.size(),
                                    JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
                                    &err);
        FUZZ_CHECK(strict == nullptr, "reader saw a duplicate key jansson did not");
        json_decref(strict);
        return;
    }
    FUZZ_CHECK(accepted == janssonAccepts, "reader and jansson disagree on the message");
    if (accepted) {
        FUZZ_CHECK(ours.type == theirs.type, "type differs from jansson's");
        FUZZ_CHECK(ours.recipient == theirs.recipient, "recipient differs from jansson's");
        FUZZ_CHECK(ours.body == theirs.body, "body differs from jansson's");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    dwrtc::ClientMessage msg;
    std::string why;
    bool accepted = dwrtc::parseClientMessage(text, msg, why);

    if (size <= kJanssonLimit) {
        compareWithJansson(text, accepted, msg, why);
    }
    if (!accepted) {
        FUZZ_CHECK(!why.empty(), "refused without a reason");
        return 0;
    }

    FUZZ_CHECK(dwrtc::isValidSessionId(msg.recipient), "recipient is not a session id");
    FUZZ_CHECK(isLowercase(msg.recipient), "recipient is not lowercase");
    FUZZ_CHECK(!msg.type.empty(), "type is empty");
    FUZZ_CHECK(!dwrtc::isReservedType(msg.type), "type is reserved for the node");

    // What the recipient gets reads back as the same object.
    std::string delivery = dwrtc::serializeDelivery(msg.type, kSender, msg.recipient, msg.body);
    dwrtc::JsonObjectReader reader{"type", "senderSessionId", "recipientSessionId",
                                   "messageBody"};
    FUZZ_CHECK(reader.read(delivery) == dwrtc::JsonObjectReader::Status::Ok,
               "the delivery is not a JSON object");
    FUZZ_CHECK(reader.string(0) == msg.type, "delivery changed the type");
    FUZZ_CHECK(reader.string(1) == kSender, "delivery changed the sender");
    FUZZ_CHECK(reader.string(2) == msg.recipient, "delivery changed the recipient");
    FUZZ_CHECK(reader.string(3) == msg.body, "delivery changed the body");

    // ...and would be accepted again if a client sent it on.
    dwrtc::ClientMessage again;
    FUZZ_CHECK(dwrtc::parseClientMessage(delivery, again, why), "the delivery is refused");
    FUZZ_CHECK(again.type == msg.type && again.recipient == msg.recipient &&
                   again.body == msg.body,
               "the delivery parses to other fields");
    return 0;
}
