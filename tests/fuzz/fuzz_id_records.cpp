// libFuzzer target: the records of key-owned ids and rooms as the DHT and
// node links hand them back (anyone can store any value under any key),
// and the claim and room messages a browser sends. decodeIdClaim() and
// decodeRoomMember() and decodePeerJsIdRecord() must accept only what
// encodes again to the same fields; verifyClaim() and memberBindingHolds() must answer for anything
// accepted without failing, and the clock rule for any date; the client parsers must accept only what the
// node can act on (a 65-byte key and 64-byte signature, a valid room name).
#include <cstddef>
#include <cstdint>
#include <string>

#include "check.h"
#include "dwrtc/owned_id.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/protocol.h"
#include "dwrtc/session_id.h"
#include "rooms.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);

    dwrtc::IdClaim claim;
    if (dwrtc::decodeIdClaim(text, claim)) {
        FUZZ_CHECK(dwrtc::isOwnedId(claim.id), "claim of no owned id");
        FUZZ_CHECK(dwrtc::isValidNodePrefix(claim.node), "claim of no node id");
        std::string why;
        bool holds = dwrtc::verifyClaim(claim, why);
        FUZZ_CHECK(holds || !why.empty(), "a claim refused without a reason");
        // The clock rule answers for any date a stranger writes: a claim is
        // ahead by what its date exceeds now plus the skew, never wrapping.
        dwrtc::ClaimClock clock;
        clock.now = [] { return std::uint64_t{1'800'000'000'000}; };
        std::uint64_t ahead = clock.tooFarAhead(claim.time);
        FUZZ_CHECK((ahead == 0) == (claim.time <= clock.now() + clock.skewMs),
                   "the clock rule disagrees with the claim's date");
        FUZZ_CHECK(ahead == 0 || !clock.whyNot(claim.time).empty(), "refused without a reason");
        dwrtc::IdClaim again;
        FUZZ_CHECK(dwrtc::decodeIdClaim(dwrtc::encodeIdClaim(claim), again),
                   "the claim encoded again is refused");
        FUZZ_CHECK(again.id == claim.id && again.key == claim.key && again.node == claim.node &&
                       again.challenge == claim.challenge && again.time == claim.time &&
                       again.signature == claim.signature && again.links == claim.links,
                   "the claim changed");
    }

    dwrtc::RoomMember member;
    if (dwrtc::decodeRoomMember(text, member)) {
        FUZZ_CHECK(dwrtc::isValidRoomName(member.room), "member of no valid room");
        FUZZ_CHECK(dwrtc::isValidSessionId(member.id), "member of no valid id");
        std::string why;
        (void) dwrtc::memberBindingHolds(member, member.node, dwrtc::ClaimClock{}, why);
        dwrtc::RoomMember again;
        FUZZ_CHECK(dwrtc::decodeRoomMember(dwrtc::encodeRoomMember(member), again),
                   "the member encoded again is refused");
        FUZZ_CHECK(again.room == member.room && again.id == member.id &&
                       again.node == member.node && again.gone == member.gone &&
                       again.claim == member.claim,
                   "the member changed");
    }

    // A chosen PeerJS id's record: accepted only for a chosen id, a node id
    // and a hash as its node writes them, and the same again once encoded;
    // the holder rule answers for it at any date.
    dwrtc::PeerJsIdRecord peerJs;
    if (dwrtc::decodePeerJsIdRecord(text, peerJs)) {
        FUZZ_CHECK(dwrtc::isChosenPeerJsId(peerJs.id), "record of no chosen id");
        FUZZ_CHECK(dwrtc::isValidNodePrefix(peerJs.node), "record of no node id");
        FUZZ_CHECK(peerJs.tokenHash.size() == 64, "record of no token hash");
        dwrtc::PeerJsIdRecord again;
        FUZZ_CHECK(dwrtc::decodePeerJsIdRecord(dwrtc::encodePeerJsIdRecord(peerJs), again),
                   "the record encoded again is refused");
        FUZZ_CHECK(again.id == peerJs.id && again.node == peerJs.node &&
                       again.time == peerJs.time && again.tokenHash == peerJs.tokenHash &&
                       again.until == peerJs.until,
                   "the record changed");
        auto holder = dwrtc::peerJsIdHolder({peerJs, again}, peerJs.time);
        FUZZ_CHECK(holder.has_value() == peerJs.holdsAt(peerJs.time),
                   "the rule disagrees with the record's reservation");
    }

    dwrtc::ClaimMessage message;
    std::string why;
    if (dwrtc::parseClaimMessage(text, message, why)) {
        FUZZ_CHECK(message.key.size() > 0 && message.signature.size() > 0 && message.time > 0,
                   "an empty claim accepted");
    }
    dwrtc::RoomRequest request;
    if (dwrtc::parseRoomRequest(text, request, why)) {
        FUZZ_CHECK(dwrtc::isValidRoomName(request.room), "a bad room name accepted");
    }
    return 0;
}
