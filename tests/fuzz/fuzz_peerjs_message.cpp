// libFuzzer target: the PeerJS dialect's codec (peerjs.h). What a PeerJS
// client sends, readPeerJsMessage(): a text it relays is a JSON object (as
// jansson reads it) with a relayed type, a PeerJS id as dst and a payload
// that is one JSON value; rendered back for the recipient, the payload is
// the same value. What a node hands a PeerJS session, renderForPeerJs():
// whatever the native text, what it writes is JSON.
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "check.h"
#include "dwrtc/json_reader.h"
#include "dwrtc/peerjs.h"
#include "dwrtc/protocol.h"

namespace {

constexpr std::string_view kSelf = "0123456789abcdef0123456789abcdef-0011223344556677";
constexpr std::string_view kSender = "fedcba9876543210fedcba9876543210-8899aabbccddeeff";

using Json = std::unique_ptr<json_t, decltype(&json_decref)>;

Json load(std::string_view text, std::size_t flags = 0) {
    json_error_t err;
    return Json(json_loadb(text.data(), text.size(), flags, &err), &json_decref);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    dwrtc::ClientMessage m;
    std::string why;
    dwrtc::PeerJsInput in = dwrtc::readPeerJsMessage(text, m, why);
    if (in == dwrtc::PeerJsInput::Dropped) {
        FUZZ_CHECK(!why.empty(), "a dropped message says why");
    }
    if (in == dwrtc::PeerJsInput::Relay) {
        FUZZ_CHECK(m.type == "OFFER" || m.type == "ANSWER" || m.type == "CANDIDATE" ||
                       m.type == "LEAVE" || m.type == "EXPIRE",
                   "only relayed types are relayed");
        FUZZ_CHECK(dwrtc::isValidPeerJsId(m.recipient), "dst is a PeerJS id");
        Json whole = load(text, JSON_ALLOW_NUL);
        FUZZ_CHECK(json_is_object(whole.get()), "jansson reads a relayed text as an object");
        Json payload = m.body.empty() ? Json(nullptr, &json_decref)
                                      : load(m.body, JSON_DECODE_ANY | JSON_ALLOW_NUL);
        FUZZ_CHECK(m.body.empty() || payload, "the payload is one JSON value");
        FUZZ_CHECK(m.body.empty() == (json_object_get(whole.get(), "payload") == nullptr),
                   "no payload exactly when the text has none");

        // as the recipient sees it: the same payload
        std::string out;
        FUZZ_CHECK(dwrtc::renderForPeerJs(
                       m.recipient, dwrtc::serializeDelivery(m.type, kSender, m.recipient, m.body),
                       out) == dwrtc::PeerJsOutput::Send,
                   "a relayed message is shown");
        Json shown = load(out, JSON_ALLOW_NUL);
        FUZZ_CHECK(json_is_object(shown.get()), "what is shown is JSON");
        if (payload) {
            FUZZ_CHECK(json_equal(json_object_get(shown.get(), "payload"), payload.get()),
                       "the payload arrives as it was sent");
        }
    }

    // the input as a native message for a PeerJS session
    std::string out;
    dwrtc::PeerJsOutput shownAs = dwrtc::renderForPeerJs(kSelf, text, out);
    if (shownAs != dwrtc::PeerJsOutput::Nothing) {
        FUZZ_CHECK(json_is_object(load(out, JSON_ALLOW_NUL).get()),
                   "what a PeerJS session is shown is JSON");
    }

    // the input as the body a native client sends a PeerJS session: it is
    // the payload and nothing else, whatever it holds
    std::string body(text);
    if (dwrtc::renderForPeerJs(kSelf, dwrtc::serializeDelivery("OFFER", kSender, kSelf, body),
                               out) == dwrtc::PeerJsOutput::Send) {
        Json shown = load(out, JSON_ALLOW_NUL);
        FUZZ_CHECK(json_is_object(shown.get()), "a body keeps the message JSON");
        FUZZ_CHECK(json_object_size(shown.get()) == (body.empty() ? 3u : 4u),
                   "a body adds no field but the payload");
        // jansson keeps the last of duplicate keys: ours refuses them at the
        // top level (the payload's own objects are the payload's business)
        dwrtc::JsonObjectReader top({"type", "src", "dst", "payload"});
        FUZZ_CHECK(top.read(out) == dwrtc::JsonObjectReader::Status::Ok,
                   "a body repeats no field of the message");
        json_t* src = json_object_get(shown.get(), "src");
        FUZZ_CHECK(json_is_string(src) && kSender == json_string_value(src),
                   "src is the sender the node says");
    }
    return 0;
}
