// libFuzzer target: what another node sends on a link, parseLinkFrame(). An
// accepted frame must carry what its kind needs (a hello its key and proof,
// an ack a count of at least one, a msg or notfound valid lowercase session
// ids or chosen PeerJS ids as written, a siblings list node ids with ports, at most kMaxLinkSiblings), and writing it again with the serializer of its kind must give a
// frame that parses to the same fields.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"

namespace {

using Kind = dwrtc::LinkFrame::Kind;

bool isCanonicalSessionId(std::string_view id) {
    if (!dwrtc::isValidSessionId(id)) {
        return false;
    }
    for (char c : id) {
        if (std::isupper(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

// What a link frame may name as a sender or recipient.
bool isLinkId(std::string_view id) {
    return isCanonicalSessionId(id) || dwrtc::isChosenPeerJsId(id);
}

std::string serialize(const dwrtc::LinkFrame& f) {
    switch (f.kind) {
        case Kind::Hello:
            return dwrtc::serializeLinkHello(f.node, f.proof);
        case Kind::Deliver:
            return dwrtc::serializeLinkDeliver(f.node, f.sender, f.recipient, f.type, f.body);
        case Kind::NotFound:
            return dwrtc::serializeLinkNotFound(f.node, f.sender, f.recipient);
        case Kind::Ack:
            return dwrtc::serializeLinkAck(f.node, f.count);
        case Kind::Siblings:
            return dwrtc::serializeLinkSiblings(f.node, f.siblings);
    }
    return {};
}

// The fields a frame of this kind carries are equal.
bool sameFrame(const dwrtc::LinkFrame& a, const dwrtc::LinkFrame& b) {
    if (a.kind != b.kind || a.node != b.node) {
        return false;
    }
    switch (a.kind) {
        case Kind::Hello:
            // takesSiblings and takesChosen are this node's to say when
            // written again: not compared.
            return a.proof.key == b.proof.key && a.proof.signature == b.proof.signature &&
                   a.proof.networkMac == b.proof.networkMac;
        case Kind::Deliver:
            return a.sender == b.sender && a.recipient == b.recipient && a.type == b.type &&
                   a.body == b.body;
        case Kind::NotFound:
            return a.sender == b.sender && a.recipient == b.recipient;
        case Kind::Ack:
            return a.count == b.count;
        case Kind::Siblings:
            return a.siblings == b.siblings;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    dwrtc::LinkFrame frame;
    std::string why;
    if (!dwrtc::parseLinkFrame(text, frame, why)) {
        FUZZ_CHECK(!why.empty(), "refused without a reason");
        return 0;
    }

    FUZZ_CHECK(dwrtc::isValidNodePrefix(frame.node), "node is not a node id");
    switch (frame.kind) {
        case Kind::Hello:
            FUZZ_CHECK(!frame.proof.key.empty(), "hello without a key");
            FUZZ_CHECK(!frame.proof.signature.empty(), "hello without a proof");
            break;
        case Kind::Ack:
            FUZZ_CHECK(frame.count >= 1, "ack of no message");
            break;
        case Kind::Siblings:
            FUZZ_CHECK(frame.siblings.size() <= dwrtc::kMaxLinkSiblings, "too many siblings");
            for (const auto& sibling : frame.siblings) {
                FUZZ_CHECK(dwrtc::isValidNodePrefix(sibling.node), "sibling is not a node id");
                FUZZ_CHECK(sibling.port >= 1 && sibling.port <= 65535, "sibling port out of range");
            }
            break;
        case Kind::Deliver:
            FUZZ_CHECK(!frame.type.empty(), "msg without a type");
            FUZZ_CHECK(!dwrtc::isReservedType(frame.type), "msg of a reserved type");
            [[fallthrough]];
        case Kind::NotFound:
            FUZZ_CHECK(isLinkId(frame.sender),
                       "sender is not a lowercase session id or a chosen PeerJS id");
            FUZZ_CHECK(isLinkId(frame.recipient),
                       "recipient is not a lowercase session id or a chosen PeerJS id");
            break;
    }

    std::string again = serialize(frame);
    dwrtc::LinkFrame reread;
    FUZZ_CHECK(dwrtc::parseLinkFrame(again, reread, why), "the frame written again is refused");
    FUZZ_CHECK(sameFrame(frame, reread), "the frame written again parses to other fields");
    FUZZ_CHECK(serialize(reread) == again, "writing is not stable");
    return 0;
}
