// The PeerJS dialect's wire format (docs/peerjs.md): what a PeerJS client
// sends over its WebSocket, and what a PeerJS session is shown of the
// node's messages. A thin adapter over the native client protocol
// (protocol.h): a relayed PeerJS message travels the network as a native
// message whose body is the PeerJS payload's JSON text, so routing, limits
// and links are the same for both dialects. Pure functions, safe from any
// thread; parsers never throw for bad input.
#pragma once

#include <string>
#include <string_view>

#include "dwrtc/protocol.h"

namespace dwrtc {

// The PeerJS client's own rule for ids: letters and digits, with single
// spaces, '-' or '_' between them; at most kMaxPeerJsIdLength bytes here.
constexpr std::size_t kMaxPeerJsIdLength = 256;
bool isValidPeerJsId(std::string_view id);

// What a PeerJS client's text is to the node.
enum class PeerJsInput {
    Relay,      // OFFER, ANSWER, CANDIDATE, LEAVE or EXPIRE: route `message`
    Heartbeat,  // HEARTBEAT: the client is alive, nothing to route
    Dropped,    // what the PeerJS server drops too (why says what it was)
};

// Reads {"type":T,"dst":D,"payload":P}. Relay when T is a relayed type and
// D a valid PeerJS id: message.type is T, message.recipient D as sent, and
// message.body P's JSON text exactly as the client wrote it ("" when there
// is no payload). Any "src" is ignored: the node stamps the sender.
PeerJsInput readPeerJsMessage(std::string_view text, ClientMessage& message, std::string& why);

// What a PeerJS session is to be shown of a native message for it.
enum class PeerJsOutput {
    Send,         // out holds the PeerJS message: send it now
    ExpireLater,  // "not found": out holds the EXPIRE to send the session
                  // once the expire timeout passes without the id showing
    Nothing,      // no PeerJS counterpart: the client is not told
};

// Renders a native message (a delivery, or an error naming a recipient)
// for the PeerJS session `self`:
//   delivery  -> {"type":T,"src":S,"dst":R,"payload":P}, P the body's JSON
//                text untouched (a body that is not JSON, from a native
//                client, as a JSON string; no payload for an empty body)
//   not found -> ExpireLater, {"type":"EXPIRE","src":R,"dst":self}
//   any other error naming R (unreachable, queue full, rate limited, not
//                back in time) -> {"type":"LEAVE","src":R,"dst":self}
//   the rest (invalid input, room and welcome messages) -> Nothing
PeerJsOutput renderForPeerJs(std::string_view self, std::string_view native, std::string& out);

// {"type":"OPEN"}
std::string serializePeerJsOpen();
// {"type":"ERROR","payload":{"msg":M}}
std::string serializePeerJsError(std::string_view msg);
// {"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}
std::string serializePeerJsIdTaken();

}  // namespace dwrtc
