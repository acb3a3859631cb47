// The PeerJS dialect's codec (peerjs.h): what a PeerJS client's text is to
// the node, and how the node's messages are shown to a PeerJS session.
#include <gtest/gtest.h>
#include <jansson.h>

#include <memory>
#include <string>

#include "dwrtc/peerjs.h"

namespace dwrtc {
namespace {

const std::string kSelf = "0123456789abcdef0123456789abcdef-0123456789abcdef";
const std::string kPeer = "fedcba9876543210fedcba9876543210-00112233445566aa";

// jansson, an independent reader, says whether our output is JSON.
struct Json {
    explicit Json(const std::string& text) {
        json_error_t err;
        root.reset(json_loadb(text.data(), text.size(), 0, &err));
    }
    std::unique_ptr<json_t, decltype(&json_decref)> root{nullptr, &json_decref};
};

std::string relayed(const std::string& text, ClientMessage& m) {
    std::string why;
    PeerJsInput in = readPeerJsMessage(text, m, why);
    return in == PeerJsInput::Relay       ? "relay"
           : in == PeerJsInput::Heartbeat ? "heartbeat"
                                          : "dropped: " + why;
}

TEST(PeerJsIds, TakesWhatThePeerJsClientTakes) {
    for (const char* id : {"a", "alice", "A1", "my peer", "my-peer_2", "a b-c_d", kSelf.c_str()}) {
        EXPECT_TRUE(isValidPeerJsId(id)) << id;
    }
    for (const char* id :
         {"", " a", "a ", "-a", "a-", "a--b", "a -b", "a/b", "a\"b", "é", "a\nb"}) {
        EXPECT_FALSE(isValidPeerJsId(id)) << id;
    }
    EXPECT_TRUE(isValidPeerJsId(std::string(kMaxPeerJsIdLength, 'x')));
    EXPECT_FALSE(isValidPeerJsId(std::string(kMaxPeerJsIdLength + 1, 'x')));
}

TEST(PeerJsInput, RelaysEachRelayedTypeWithThePayloadAsWritten) {
    for (const char* type : {"OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"}) {
        ClientMessage m;
        std::string payload = R"({"sdp" : {"type":"offer","sdp":"v=0\r\n"}, "n":[1, 2.5e3, null]})";
        std::string text = std::string(R"({"type":")") + type + R"(","dst":")" + kPeer +
                           R"(","payload":)" + payload + "}";
        ASSERT_EQ(relayed(text, m), "relay") << type;
        EXPECT_EQ(m.type, type);
        EXPECT_EQ(m.recipient, kPeer);
        EXPECT_EQ(m.body, payload) << "the payload's text, spaces and all";
    }
}

TEST(PeerJsInput, IgnoresSrcAndTakesAnyPayloadKind) {
    ClientMessage m;
    ASSERT_EQ(relayed(R"({"src":"forged","type":"OFFER","dst":"bob","payload":"text"})", m),
              "relay");
    EXPECT_EQ(m.recipient, "bob");
    EXPECT_EQ(m.body, R"("text")");
    ASSERT_EQ(relayed(R"({"type":"CANDIDATE","dst":"bob","payload":false})", m), "relay");
    EXPECT_EQ(m.body, "false");
    ASSERT_EQ(relayed(R"({"type":"LEAVE","dst":"bob"})", m), "relay");
    EXPECT_EQ(m.body, "") << "no payload: none passed on";
}

TEST(PeerJsInput, HeartbeatIsNotRouted) {
    ClientMessage m;
    EXPECT_EQ(relayed(R"({"type":"HEARTBEAT"})", m), "heartbeat");
    EXPECT_EQ(relayed(R"({"type":"HEARTBEAT","dst":"x","payload":1})", m), "heartbeat");
}

TEST(PeerJsInput, DropsWhatThePeerJsServerDropsAndSaysWhy) {
    ClientMessage m;
    EXPECT_EQ(relayed("not json", m), "dropped: not JSON");
    EXPECT_EQ(relayed("", m), "dropped: not JSON");
    EXPECT_EQ(relayed("[1,2]", m), "dropped: not a JSON object");
    EXPECT_EQ(relayed(R"({"type":"OFFER","type":"OFFER","dst":"b"})", m), "dropped: duplicate key");
    EXPECT_EQ(relayed(R"({"type":1,"dst":"b"})", m), "dropped: \"type\" must be a string");
    EXPECT_EQ(relayed(R"({"dst":"b"})", m), "dropped: \"type\" must be a string");
    EXPECT_EQ(relayed(R"({"type":"OPEN","dst":"b"})", m), "dropped: unknown type");
    EXPECT_EQ(relayed(R"({"type":"offer","dst":"b"})", m), "dropped: unknown type")
        << "types are case-sensitive, as the PeerJS server's";
    EXPECT_EQ(relayed(R"({"type":"WebSocketJoinMessage","room":"r"})", m), "dropped: unknown type");
    EXPECT_EQ(relayed(R"({"type":"OFFER","payload":{}})", m), "dropped: \"dst\" must be a string");
    EXPECT_EQ(relayed(R"({"type":"OFFER","dst":"a/b"})", m), "dropped: \"dst\" is not a PeerJS id");
    EXPECT_EQ(relayed(R"({"type":"OFFER","dst":""})", m), "dropped: \"dst\" is not a PeerJS id");
    EXPECT_EQ(relayed(R"({"type":"OFFER","dst":"b","payload":{"x":})", m), "dropped: not JSON");
}

TEST(PeerJsOutput, ShowsADeliveryAsTypeSrcDstPayloadWithThePayloadUntouched) {
    std::string payload = R"({"sdp" : {"type":"offer"}, "meta":"ünï 🎉"})";
    std::string out;
    ASSERT_EQ(renderForPeerJs(kPeer, serializeDelivery("OFFER", kSelf, kPeer, payload), out),
              PeerJsOutput::Send);
    EXPECT_EQ(out, R"({"type":"OFFER","src":")" + kSelf + R"(","dst":")" + kPeer +
                       R"(","payload":)" + payload + "}");
    EXPECT_TRUE(Json(out).root);
}

TEST(PeerJsOutput, LeavesOutAnEmptyPayloadAndQuotesOneThatIsNotJson) {
    std::string out;
    ASSERT_EQ(renderForPeerJs(kPeer, serializeDelivery("LEAVE", kSelf, kPeer, ""), out),
              PeerJsOutput::Send);
    EXPECT_EQ(out, R"({"type":"LEAVE","src":")" + kSelf + R"(","dst":")" + kPeer + R"("})");
    // a native client's body need not be JSON: a PeerJS client gets a string
    for (std::string body : {"plain text", "{\"open\":", "1 2", "\"a\" \"b\""}) {
        ASSERT_EQ(renderForPeerJs(kPeer, serializeDelivery("OFFER", kSelf, kPeer, body), out),
                  PeerJsOutput::Send);
        Json j(out);
        ASSERT_TRUE(j.root) << out;
        json_t* p = json_object_get(j.root.get(), "payload");
        ASSERT_TRUE(json_is_string(p)) << out;
        EXPECT_EQ(std::string(json_string_value(p)), body);
    }
}

TEST(PeerJsOutput, ABodyCannotAddFieldsToTheMessage) {
    // a native client's body that is JSON members, not one value: written
    // out raw it would give the message a second "src", which a browser's
    // JSON.parse takes over the node's
    for (std::string body :
         {R"(1,"src":"forged")", R"({},"src":"forged")", R"("x","dst":"y")", R"(1 , "a":2)"}) {
        std::string out;
        ASSERT_EQ(renderForPeerJs(kPeer, serializeDelivery("OFFER", kSelf, kPeer, body), out),
                  PeerJsOutput::Send);
        Json j(out);
        ASSERT_TRUE(j.root) << out;
        EXPECT_EQ(json_object_size(j.root.get()), 4u) << out;
        EXPECT_EQ(std::string(json_string_value(json_object_get(j.root.get(), "src"))), kSelf);
        json_t* p = json_object_get(j.root.get(), "payload");
        ASSERT_TRUE(json_is_string(p)) << out;
        EXPECT_EQ(std::string(json_string_value(p)), body);
    }
    // one value with whitespace around it is still that value
    std::string out;
    ASSERT_EQ(renderForPeerJs(kPeer, serializeDelivery("OFFER", kSelf, kPeer, " [1, 2]\n"), out),
              PeerJsOutput::Send);
    EXPECT_EQ(out, R"({"type":"OFFER","src":")" + kSelf + R"(","dst":")" + kPeer +
                       "\",\"payload\": [1, 2]\n}");
}

TEST(PeerJsOutput, NotFoundIsAnExpireForLaterNamingTheMissingId) {
    std::string out;
    ASSERT_EQ(renderForPeerJs(kSelf, serializeNotFound("nobody"), out), PeerJsOutput::ExpireLater);
    EXPECT_EQ(out, R"({"type":"EXPIRE","src":"nobody","dst":")" + kSelf + R"("})");
}

TEST(PeerJsOutput, AFailureOnTheWayIsALeaveFromTheRecipient) {
    for (const char* error : {"unreachable", "queue full", "rate limited", "not back in time"}) {
        std::string out;
        ASSERT_EQ(renderForPeerJs(kSelf, serializeError(error, kPeer), out), PeerJsOutput::Send)
            << error;
        EXPECT_EQ(out, R"({"type":"LEAVE","src":")" + kPeer + R"(","dst":")" + kSelf + R"("})");
    }
}

TEST(PeerJsOutput, ShowsNothingThatHasNoPeerJsCounterpart) {
    std::string out;
    for (const std::string& native :
         {serializeInvalid("not JSON"), serializeNodeError("rate limited"), serializeWelcome(kSelf),
          serializeRoomEvent("r", "join", kPeer), std::string("garbage"), std::string("[]"),
          serializeDelivery("WebSocketIdTaken", kSelf, kPeer, "x")}) {
        EXPECT_EQ(renderForPeerJs(kSelf, native, out), PeerJsOutput::Nothing) << native;
    }
}

TEST(PeerJsOutput, WritesValidJsonForAnyIdsAndTypes) {
    std::string out;
    ASSERT_EQ(renderForPeerJs("a\"b\\c", serializeDelivery("T\"\n", "s\x01", "r", "[1]"), out),
              PeerJsOutput::Send);
    EXPECT_TRUE(Json(out).root) << out;
}

TEST(PeerJsNodeMessages, AreThePeerJsServersOwn) {
    EXPECT_EQ(serializePeerJsOpen(), R"({"type":"OPEN"})");
    EXPECT_EQ(serializePeerJsIdTaken(), R"({"type":"ID-TAKEN","payload":{"msg":"ID is taken"}})");
    EXPECT_EQ(serializePeerJsError("Invalid key provided"),
              R"({"type":"ERROR","payload":{"msg":"Invalid key provided"}})");
    EXPECT_TRUE(Json(serializePeerJsError("a \"quoted\"\n msg")).root);
}

TEST(PeerJsOutput, AChosenIdsVerdictIsOpenIdTakenAnErrorOrAClose) {
    std::string out;
    auto verdict = [&](PeerJsIdVerdict v) {
        return renderForPeerJs(kSelf, serializePeerJsIdVerdict(kSelf, "alice", v), out);
    };
    EXPECT_EQ(verdict(PeerJsIdVerdict::Open), PeerJsOutput::Send);
    EXPECT_EQ(out, serializePeerJsOpen());
    EXPECT_EQ(verdict(PeerJsIdVerdict::Taken), PeerJsOutput::SendAndClose);
    EXPECT_EQ(out, serializePeerJsIdTaken());
    EXPECT_EQ(verdict(PeerJsIdVerdict::Lost), PeerJsOutput::SendAndClose);
    EXPECT_EQ(out, serializePeerJsIdTaken());
    EXPECT_EQ(verdict(PeerJsIdVerdict::NotInNetwork), PeerJsOutput::SendAndClose);
    EXPECT_EQ(out, serializePeerJsError(kPeerJsNotInNetwork));
    EXPECT_EQ(verdict(PeerJsIdVerdict::TakenOver), PeerJsOutput::CloseGoingAway);
    EXPECT_EQ(out, "");
    // A verdict the node does not write is nothing to the client, and a
    // client cannot send one: its type is reserved.
    std::string odd = serializePeerJsIdVerdict(kSelf, "alice", PeerJsIdVerdict::Open);
    odd.replace(odd.find("\"open\""), 6, "\"shut\"");
    EXPECT_EQ(renderForPeerJs(kSelf, odd, out), PeerJsOutput::Nothing) << odd;
    ClientMessage message;
    std::string why;
    EXPECT_FALSE(parseClientMessage(odd, message, why));
}

}  // namespace
}  // namespace dwrtc
