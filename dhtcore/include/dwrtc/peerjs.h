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
    SendAndClose,    // out holds ID-TAKEN or an ERROR: send it, then close (1000)
    CloseGoingAway,  // the session's id went to a newer session of its
                     // token: close (1001), nothing to send
};

// Renders a native message (a delivery, or an error naming a recipient)
// for the PeerJS session `self`:
//   delivery  -> {"type":T,"src":S,"dst":R,"payload":P}, P the body's JSON
//                text untouched (a body that is not JSON, from a native
//                client, as a JSON string; no payload for an empty body)
//   not found -> ExpireLater, {"type":"EXPIRE","src":R,"dst":self}
//   any other error naming R (unreachable, queue full, rate limited, not
//                back in time) -> {"type":"LEAVE","src":R,"dst":self}
//   a chosen id's verdict (serializePeerJsIdVerdict) -> OPEN (Send),
//                ID-TAKEN or an ERROR (SendAndClose), CloseGoingAway
//   the rest (invalid input, room and welcome messages) -> Nothing
PeerJsOutput renderForPeerJs(std::string_view self, std::string_view native, std::string& out);

// {"type":"OPEN"}
std::string serializePeerJsOpen();
// {"type":"ERROR","payload":{"msg":M}}
std::string serializePeerJsError(std::string_view msg);
// {"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}
std::string serializePeerJsIdTaken();

// What the network made of a session's chosen id (peerjs_id.h), handed to
// the session as a delivery of the node's own (a reserved type, never from
// a client, never relayed):
//   {"type":"WebSocketPeerJsIdMessage","recipientSessionId":S,"id":I,"verdict":V}
enum class PeerJsIdVerdict {
    Open,          // the session holds the id: OPEN
    Taken,         // another token holds it: ID-TAKEN, close
    NotInNetwork,  // the DHT did not answer: ERROR, close
    Lost,          // it lost a race for the id to an earlier request: ID-TAKEN, close
    TakenOver,     // a newer session of its token holds it: close (1001)
};
std::string serializePeerJsIdVerdict(std::string_view session, std::string_view id,
                                     PeerJsIdVerdict verdict);
// The ERROR's text for NotInNetwork.
constexpr std::string_view kPeerJsNotInNetwork =
    "ID not available: this server could not reach its network to check the ID, try again";

}  // namespace dwrtc
