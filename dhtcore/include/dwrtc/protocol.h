// Wire formats: the client protocol (compatible with the original DWRTC)
// and the node-to-node link protocol. Pure functions, safe from any thread.
//
// Serializers write compact JSON with every string escaped; bytes that are
// not valid UTF-8 are written as U+FFFD, so the output is always valid
// UTF-8 and always a legal WebSocket text frame. Parsers read the text in
// one pass (JsonObjectReader, a strict RFC 8259 reader) and never throw for
// bad input: they return false and say why.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dwrtc/trust.h"

namespace dwrtc {

// --- Client protocol -------------------------------------------------------

struct ClientMessage {
    std::string type;
    std::string recipient;  // canonical (lowercase) session id
    std::string body;
};

// Types that start with "WebSocket" are the node's own messages.
bool isReservedType(std::string_view type);

// Client sends {"type":T,"recipientSessionId":R,"messageBody":B}. Valid when
// the text is a JSON object without duplicate keys; type is a non-empty
// string not starting with "WebSocket"; recipientSessionId is a string that
// isValidSessionId (stored lowercased in out.recipient); messageBody is a
// string. Extra fields are ignored, and so is any senderSessionId: the node
// stamps the sender itself. On failure fills `why` with a short reason such
// as "not JSON" or "\"type\" must be a string" and leaves out unspecified.
bool parseClientMessage(std::string_view json, ClientMessage& out, std::string& why);

// A claim of a key-owned id (owned_id.h), sent by a client after the
// welcome: {"type":"WebSocketClaimMessage","key":K,"time":T,"signature":S}
// with the raw P-256 public key and the r||s signature as lowercase hex,
// and T in milliseconds since 1970.
struct ClaimMessage {
    std::string key;
    std::uint64_t time = 0;
    std::string signature;
};
// A cheap test: may this text be a claim? (Then parseClaimMessage decides.)
bool isClaimMessage(std::string_view text);
bool parseClaimMessage(std::string_view json, ClaimMessage& out, std::string& why);
// {"type":"WebSocketIdMessage","id":ID,"owned":true,"nodeSessionId":S}: the
// claim holds, and the session is known by ID from now on.
std::string serializeOwnedWelcome(std::string_view id, std::string_view nodeSessionId);

// Rooms: {"type":"WebSocketJoinMessage","room":R} and
// {"type":"WebSocketLeaveMessage","room":R}; R is 1 to 64 bytes of
// printable ASCII.
struct RoomRequest {
    bool join = true;
    std::string room;
};
bool isRoomRequest(std::string_view text);
bool parseRoomRequest(std::string_view json, RoomRequest& out, std::string& why);
// {"type":"WebSocketRoomMessage","room":R,"event":"members","members":[ID,...]}:
// who is in the room (the joiner too), for the session that joined.
std::string serializeRoomMembers(std::string_view room, const std::vector<std::string>& ids);
// {"type":"WebSocketRoomMessage","room":R,"event":"join"|"leave","id":ID}
std::string serializeRoomEvent(std::string_view room, std::string_view event,
                               std::string_view id);
// {"type":"WebSocketErrorMessage","error":ERROR,"room":R}: "room full",
// "too many rooms".
std::string serializeRoomError(std::string_view error, std::string_view room);

// Appends s to out as a JSON string literal, as every serializer here
// writes strings (bytes that are not UTF-8 become U+FFFD).
void appendJsonString(std::string& out, std::string_view s);

// {"type":T,"senderSessionId":S,"recipientSessionId":R,"messageBody":B}
std::string serializeDelivery(std::string_view type, std::string_view sender,
                              std::string_view recipient, std::string_view body);
// {"type":"WebSocketErrorMessage","error":"not found","recipientSessionId":R}
std::string serializeNotFound(std::string_view recipient);
// {"type":"WebSocketErrorMessage","error":"invalid message: <why>"}
std::string serializeInvalid(std::string_view why);
// {"type":"WebSocketErrorMessage","error":"<error>","recipientSessionId":R}
std::string serializeError(std::string_view error, std::string_view recipient);
// {"type":"WebSocketIdMessage","id":ID[,"challenge":C,"time":T]
//  [,"iceServers":ICE]}; ICE, when not empty, is a JSON array the host made
// (from its configuration) and is copied as it is. C is what a client signs
// to claim a key-owned id, T the node's clock (ms since 1970) for the
// claim's time.
std::string serializeWelcome(std::string_view id, std::string_view iceServers = {},
                             std::string_view challenge = {}, std::uint64_t timeMs = 0);
// {"type":"WebSocketErrorMessage","error":ERROR}, about no one recipient
// ("rate limited").
std::string serializeNodeError(std::string_view error);

// --- Link protocol ---------------------------------------------------------
//
// Frames are JSON objects, several per WebSocket message separated by "\n".
// Every frame has "v" (protocol version), "t" (frame type) and "node" (the
// sending node's id):
//   {"v":2,"t":"hello","node":N,"key":K,"proof":P[,"net":M][,"siblings":1][,"chosen":1]}
//   {"v":2,"t":"msg","node":N,"sender":S,"recipient":R,"type":T,"body":B[,"claim":C]}
//   {"v":2,"t":"notfound","node":N,"sender":S,"recipient":R[,"n":K]}
//   {"v":2,"t":"ack","node":N,"count":K}
//   {"v":2,"t":"siblings","node":N,"siblings":L}
// In a hello, K, P and M are the LinkProof's key, signature and network MAC
// as lowercase hex (see trust.h). In "notfound", sender is the session that
// must be told and recipient the session that does not exist; K, when
// given, says which "msg" it answers: the K-th this node got on the link
// (a sender holding messages for a key-owned id takes back that one). An "ack" says
// that the node has handled the next K "msg" frames it got on this link
// (delivered them, or answered "notfound"); a node sends one once 64 wait
// for it at the end of a WebSocket message, and 25 ms later for fewer. What a sender has written and not seen acknowledged when a link
// breaks may be lost, and its senders are told. A "msg" whose sender is a
// key-owned id carries, the first time on a link, that id's claim (the
// encodeIdClaim() JSON as a string): the receiver believes a node speaks
// for a key-owned id only with the owner's signature naming that node.
// A "siblings" frame lists the other nodes of the sender's nginx (its other
// workers; after a reload, its successors) as L = "ID:PORT ID:PORT ...",
// node ids and link ports, at most kMaxLinkSiblings: a hint where a node
// whose record the DHT does not show yet can be tried. A hint is not
// trusted: the link to it proves who answers. It goes only to a peer whose
// hello said "siblings":1 (a node that does not know the frame would close
// the link on it).
// A "msg" or "notfound" may name a chosen PeerJS id (peerjs_id.h, kept as
// written) as sender or recipient, but only to a peer whose hello said
// "chosen":1: a node that does not know them closes the link on such a
// frame. The receiver believes a node speaks as a chosen id only while the
// id's DHT record names that node as its holder (peerJsIdHolder).

constexpr int kLinkProtocolVersion = 2;
constexpr std::size_t kMaxLinkSiblings = 64;

// Another node of the same nginx: its id and the link port it listens on.
struct LinkSibling {
    std::string node;
    unsigned port = 0;
    bool operator==(const LinkSibling& o) const { return node == o.node && port == o.port; }
};

// The one reserved type a "msg" may carry: from a key-owned id to the same
// id, on the node where an older session of it is, with the newer claim as
// body. That node tells its session the id was taken over, and unbinds it.
constexpr std::string_view kIdTakenType = "WebSocketIdTaken";

struct LinkFrame {
    enum class Kind { Hello, Deliver, NotFound, Ack, Siblings };
    Kind kind = Kind::Hello;
    std::string node;       // sender node id
    std::string sender;     // Deliver: senderSessionId. NotFound: the session that must be told
    std::string recipient;  // Deliver: recipientSessionId. NotFound: the missing recipient
    std::string type;       // Deliver only
    std::string body;       // Deliver only
    std::string claim;      // Deliver only, may be empty: the sender's IdClaim as JSON
    LinkProof proof;        // Hello only
    std::uint32_t count = 0;  // Ack only
    std::uint64_t number = 0;  // NotFound only: which msg on the link it answers, 0 if not said
    bool takesSiblings = false;          // Hello only: the peer understands "siblings"
    bool takesChosen = false;            // Hello only: the peer takes chosen PeerJS ids
    std::vector<LinkSibling> siblings;  // Siblings only
};

std::string serializeLinkHello(std::string_view node, const LinkProof& proof);
std::string serializeLinkDeliver(std::string_view node, std::string_view sender,
                                 std::string_view recipient, std::string_view type,
                                 std::string_view body, std::string_view claim = {});
std::string serializeLinkNotFound(std::string_view node, std::string_view sender,
                                  std::string_view recipient, std::uint64_t number = 0);
std::string serializeLinkAck(std::string_view node, std::uint32_t count);
// At most kMaxLinkSiblings of them are written.
std::string serializeLinkSiblings(std::string_view node, const std::vector<LinkSibling>& siblings);

// Parses one link frame. Returns false with why "unsupported link protocol
// version N" when "v" is not kLinkProtocolVersion. Also checks that node is
// a node id, that session ids are valid (and stores them lowercased) or
// chosen PeerJS ids (kept as written), that
// a hello carries its proof as hex, that a "msg" carries a
// non-reserved, non-empty type and a string body, and that a "siblings"
// list holds at most kMaxLinkSiblings node ids with ports.
bool parseLinkFrame(std::string_view json, LinkFrame& out, std::string& why);

}  // namespace dwrtc
