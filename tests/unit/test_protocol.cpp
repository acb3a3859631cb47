// Client wire protocol and node-to-node link protocol.
#include "dwrtc/protocol.h"

#include <gtest/gtest.h>
#include <jansson.h>

#include <memory>
#include <random>
#include <string>

namespace dwrtc {
namespace {

const std::string kSender = "0123456789abcdef0123456789abcdef-0123456789abcdef";
const std::string kRecipient = "fedcba9876543210fedcba9876543210-00112233445566aa";
const std::string kNode = "0123456789abcdef0123456789abcdef";

// Parses serializer output with jansson, an independent reader, so escaping
// is checked against a real JSON parser rather than against our own.
struct Json {
    explicit Json(const std::string& text) {
        json_error_t err;
        root.reset(json_loadb(text.data(), text.size(), JSON_ALLOW_NUL, &err));
        if (!root) {
            error = err.text;
        }
    }
    std::string str(const char* key) const {
        json_t* v = json_object_get(root.get(), key);
        if (!json_is_string(v)) {
            return "<absent>";
        }
        return std::string(json_string_value(v), json_string_length(v));
    }
    bool has(const char* key) const { return json_object_get(root.get(), key) != nullptr; }
    std::size_t fields() const { return json_object_size(root.get()); }

    struct Deleter {
        void operator()(json_t* j) const { json_decref(j); }
    };
    std::unique_ptr<json_t, Deleter> root;
    std::string error;
};

std::string clientJson(const std::string& type, const std::string& recipient,
                       const std::string& body) {
    return "{\"type\":\"" + type + "\",\"recipientSessionId\":\"" + recipient +
           "\",\"messageBody\":\"" + body + "\"}";
}

// Expects parseClientMessage to refuse text with exactly this reason.
void expectInvalid(const std::string& text, const std::string& reason) {
    ClientMessage m;
    std::string why;
    EXPECT_FALSE(parseClientMessage(text, m, why)) << text;
    EXPECT_EQ(why, reason) << text;
}

// A body with every character class an escaper can get wrong.
const std::string kTrickyBody = std::string("say \"hi\" \\ back\\slash\nnew line\r\ttab ") +
                                "\x01\x1f\x7f" + std::string(1, '\0') + " nul " +
                                "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 " +
                                "\xe2\x80\xa8 </script> {\"sdp\":\"v=0\\r\\n\"}";

// --- Client messages -------------------------------------------------------

TEST(ClientMessage, AcceptsWellFormedMessage) {
    ClientMessage m;
    std::string why;
    ASSERT_TRUE(parseClientMessage(clientJson("offer", kRecipient, "{\\\"sdp\\\":\\\"x\\\"}"), m,
                                   why))
        << why;
    EXPECT_EQ(m.type, "offer");
    EXPECT_EQ(m.recipient, kRecipient);
    EXPECT_EQ(m.body, "{\"sdp\":\"x\"}");
}

TEST(ClientMessage, IgnoresExtraFields) {
    ClientMessage m;
    std::string why;
    std::string text = "{\"extra\":[1,2,{\"x\":null}],\"type\":\"t\",\"recipientSessionId\":\"" +
                       kRecipient + "\",\"messageBody\":\"\",\"n\":5}";
    ASSERT_TRUE(parseClientMessage(text, m, why)) << why;
    EXPECT_EQ(m.type, "t");
    EXPECT_EQ(m.body, "");
}

TEST(ClientMessage, IgnoresForgedSenderSessionId) {
    const std::string forged = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-aaaaaaaaaaaaaaaa";
    std::string text = "{\"type\":\"offer\",\"senderSessionId\":\"" + forged +
                       "\",\"recipientSessionId\":\"" + kRecipient +
                       "\",\"messageBody\":\"hello\"}";
    ClientMessage m;
    std::string why;
    ASSERT_TRUE(parseClientMessage(text, m, why)) << why;
    // The delivery carries the sender the node stamps, and nothing of the
    // forged one.
    std::string out = serializeDelivery(m.type, kSender, m.recipient, m.body);
    EXPECT_EQ(Json(out).str("senderSessionId"), kSender);
    EXPECT_EQ(out.find(forged), std::string::npos);
}

TEST(ClientMessage, LowercasesRecipient) {
    ClientMessage m;
    std::string why;
    ASSERT_TRUE(parseClientMessage(clientJson("t", "FEDCBA9876543210FEDCBA9876543210-00112233445566AA", "b"),
                                   m, why))
        << why;
    EXPECT_EQ(m.recipient, kRecipient);
}

TEST(ClientMessage, RejectsBadJson) {
    expectInvalid("", "not JSON");
    expectInvalid("{", "not JSON");
    expectInvalid("hello", "not JSON");
    expectInvalid("{\"type\":\"t\",}", "not JSON");
    expectInvalid("{\"type\":'t'}", "not JSON");
    expectInvalid(clientJson("t", kRecipient, "b") + " {}", "not JSON");
    expectInvalid(clientJson("t", kRecipient, "bad \xff utf-8"), "not JSON");
    expectInvalid(clientJson("t", kRecipient, "raw\nnewline"), "not JSON");
}

TEST(ClientMessage, RejectsNonObject) {
    expectInvalid("[]", "not a JSON object");
    expectInvalid("[{\"type\":\"t\"}]", "not a JSON object");
    expectInvalid("\"offer\"", "not a JSON object");
    expectInvalid("42", "not a JSON object");
    expectInvalid("null", "not a JSON object");
    expectInvalid("true", "not a JSON object");
}

TEST(ClientMessage, RejectsDuplicateKeys) {
    expectInvalid("{\"type\":\"a\",\"type\":\"b\",\"recipientSessionId\":\"" + kRecipient +
                      "\",\"messageBody\":\"\"}",
                  "duplicate key");
}

TEST(ClientMessage, RejectsMissingType) {
    expectInvalid("{\"recipientSessionId\":\"" + kRecipient + "\",\"messageBody\":\"b\"}",
                  "missing \"type\"");
    expectInvalid("{}", "missing \"type\"");
}

TEST(ClientMessage, RejectsNonStringType) {
    const std::string rest = ",\"recipientSessionId\":\"" + kRecipient + "\",\"messageBody\":\"b\"}";
    expectInvalid("{\"type\":1" + rest, "\"type\" must be a string");
    expectInvalid("{\"type\":null" + rest, "\"type\" must be a string");
    expectInvalid("{\"type\":{\"a\":1}" + rest, "\"type\" must be a string");
    expectInvalid("{\"type\":[\"offer\"]" + rest, "\"type\" must be a string");
}

TEST(ClientMessage, RejectsEmptyType) {
    expectInvalid(clientJson("", kRecipient, "b"), "\"type\" must not be empty");
}

TEST(ClientMessage, RejectsReservedType) {
    expectInvalid(clientJson("WebSocketFoo", kRecipient, "b"), "reserved type \"WebSocketFoo\"");
    expectInvalid(clientJson("WebSocketIdMessage", kRecipient, "b"),
                  "reserved type \"WebSocketIdMessage\"");
    expectInvalid(clientJson("WebSocket", kRecipient, "b"), "reserved type \"WebSocket\"");
}

TEST(ClientMessage, AcceptsTypesThatOnlyMentionWebSocket) {
    ClientMessage m;
    std::string why;
    EXPECT_TRUE(parseClientMessage(clientJson("myWebSocketThing", kRecipient, "b"), m, why)) << why;
    EXPECT_TRUE(parseClientMessage(clientJson("WebSocke", kRecipient, "b"), m, why)) << why;
}

TEST(ClientMessage, LongReservedTypeIsShortenedInReason) {
    std::string type = "WebSocket" + std::string(500, 'x');
    ClientMessage m;
    std::string why;
    ASSERT_FALSE(parseClientMessage(clientJson(type, kRecipient, "b"), m, why));
    EXPECT_EQ(why.rfind("reserved type \"WebSocket", 0), 0u) << why;
    EXPECT_LT(why.size(), 100u);
}

TEST(ClientMessage, RejectsMissingRecipient) {
    expectInvalid("{\"type\":\"t\",\"messageBody\":\"b\"}", "missing \"recipientSessionId\"");
}

TEST(ClientMessage, RejectsNonStringRecipient) {
    expectInvalid("{\"type\":\"t\",\"recipientSessionId\":12,\"messageBody\":\"b\"}",
                  "\"recipientSessionId\" must be a string");
    expectInvalid("{\"type\":\"t\",\"recipientSessionId\":null,\"messageBody\":\"b\"}",
                  "\"recipientSessionId\" must be a string");
}

// The ids the node gives PeerJS clients are recipients too, kept as they
// are: PeerJS ids are case-sensitive, and the node gives them lowercase.
TEST(ClientMessage, AcceptsAPeerJsIdTheNodeGives) {
    ClientMessage m;
    std::string why;
    ASSERT_TRUE(parseClientMessage(clientJson("t", "3f2b8c1e-9d4a-4e6f-8a7b-0c1d2e3f4a5b", "b"), m,
                                   why))
        << why;
    EXPECT_EQ(m.recipient, "3f2b8c1e-9d4a-4e6f-8a7b-0c1d2e3f4a5b");
    expectInvalid(clientJson("t", "3F2B8C1E-9D4A-4E6F-8A7B-0C1D2E3F4A5B", "b"),
                  "malformed recipientSessionId");
    expectInvalid(clientJson("t", "3f2b8c1e9d4a-4e6f-8a7b-0c1d2e3f4a5b-", "b"),
                  "malformed recipientSessionId");
}

TEST(ClientMessage, RejectsMalformedRecipient) {
    expectInvalid(clientJson("t", "", "b"), "malformed recipientSessionId");
    expectInvalid(clientJson("t", "bob", "b"), "malformed recipientSessionId");
    expectInvalid(clientJson("t", "fedcba9876543210fedcba9876543210_00112233445566aa", "b"),
                  "malformed recipientSessionId");  // version 1
    expectInvalid(clientJson("t", "fedcba9876543210fedcba9876543210-00112233445566aa ", "b"),
                  "malformed recipientSessionId");  // trailing space
    expectInvalid(clientJson("t", "fedcba9876543210fedcba9876543210-00112233445566a\\u0000", "b"),
                  "malformed recipientSessionId");  // embedded NUL
}

TEST(ClientMessage, RejectsMissingBody) {
    expectInvalid("{\"type\":\"t\",\"recipientSessionId\":\"" + kRecipient + "\"}",
                  "missing \"messageBody\"");
}

TEST(ClientMessage, RejectsNonStringBody) {
    const std::string head = "{\"type\":\"t\",\"recipientSessionId\":\"" + kRecipient + "\",";
    expectInvalid(head + "\"messageBody\":{\"sdp\":\"x\"}}", "\"messageBody\" must be a string");
    expectInvalid(head + "\"messageBody\":7}", "\"messageBody\" must be a string");
    expectInvalid(head + "\"messageBody\":null}", "\"messageBody\" must be a string");
}

TEST(ClientMessage, ReadsEscapesInBody) {
    ClientMessage m;
    std::string why;
    std::string text = clientJson("t", kRecipient,
                                  "q\\\" b\\\\ n\\n u\\u00e9 s\\ud83d\\ude00 z\\u0000.");
    ASSERT_TRUE(parseClientMessage(text, m, why)) << why;
    EXPECT_EQ(m.body, std::string("q\" b\\ n\n u\xc3\xa9 s\xf0\x9f\x98\x80 z") +
                          std::string(1, '\0') + ".");
}

// --- Client-bound serializers ---------------------------------------------

TEST(ClientSerializers, DeliveryHasTheOriginalDwrtcShape) {
    EXPECT_EQ(serializeDelivery("offer", kSender, kRecipient, "sdp"),
              "{\"type\":\"offer\",\"senderSessionId\":\"" + kSender +
                  "\",\"recipientSessionId\":\"" + kRecipient + "\",\"messageBody\":\"sdp\"}");
}

TEST(ClientSerializers, NotFoundNamesTheRecipient) {
    EXPECT_EQ(serializeNotFound(kRecipient),
              "{\"type\":\"WebSocketErrorMessage\",\"error\":\"not found\","
              "\"recipientSessionId\":\"" +
                  kRecipient + "\"}");
}

TEST(ClientSerializers, InvalidCarriesTheReason) {
    EXPECT_EQ(serializeInvalid("missing \"type\""),
              "{\"type\":\"WebSocketErrorMessage\","
              "\"error\":\"invalid message: missing \\\"type\\\"\"}");
}

TEST(ClientSerializers, ErrorNamesTheRecipient) {
    EXPECT_EQ(serializeError("queue full", kRecipient),
              "{\"type\":\"WebSocketErrorMessage\",\"error\":\"queue full\","
              "\"recipientSessionId\":\"" +
                  kRecipient + "\"}");
}

TEST(ClientSerializers, WelcomeCarriesTheIdAndTheHostsIceServers) {
    EXPECT_EQ(serializeWelcome(kSender),
              "{\"type\":\"WebSocketIdMessage\",\"id\":\"" + kSender + "\"}");
    EXPECT_EQ(serializeWelcome(kSender, "[{\"urls\":[\"stun:stun.example.org\"]}]"),
              "{\"type\":\"WebSocketIdMessage\",\"id\":\"" + kSender +
                  "\",\"iceServers\":[{\"urls\":[\"stun:stun.example.org\"]}]}");
}

TEST(ClientSerializers, NodeErrorNamesNoRecipient) {
    EXPECT_EQ(serializeNodeError("rate limited"),
              "{\"type\":\"WebSocketErrorMessage\",\"error\":\"rate limited\"}");
}

TEST(ClientSerializers, EscapingRoundTripsAnyText) {
    std::string out = serializeDelivery("type \"q\"\n", kSender, kRecipient, kTrickyBody);
    Json j(out);
    ASSERT_TRUE(j.root) << j.error << "\n" << out;
    EXPECT_EQ(j.fields(), 4u);
    EXPECT_EQ(j.str("type"), "type \"q\"\n");
    EXPECT_EQ(j.str("messageBody"), kTrickyBody);
    // Control characters never appear raw in the frame.
    for (char c : out) {
        EXPECT_GE(static_cast<unsigned char>(c), 0x20u);
    }
}

TEST(ClientSerializers, ClientMessageSurvivesParseAndDelivery) {
    // A body a client escaped, through the node, back out to the recipient.
    std::string clientText = serializeDelivery("offer", kSender, kRecipient, kTrickyBody);
    ClientMessage m;
    std::string why;
    ASSERT_TRUE(parseClientMessage(clientText, m, why)) << why;
    EXPECT_EQ(m.body, kTrickyBody);
    EXPECT_EQ(Json(serializeDelivery(m.type, kSender, m.recipient, m.body)).str("messageBody"),
              kTrickyBody);
}

TEST(ClientSerializers, InvalidUtf8BecomesReplacementCharacter) {
    const std::string replacement = "\xef\xbf\xbd";
    struct Case {
        std::string in;
        std::string want;
    } cases[] = {
        {"a\xff" "b", "a" + replacement + "b"},                                   // never valid
        {"\xc0\xaf", replacement + replacement},                                  // overlong '/'
        {"\xed\xa0\x80", replacement + replacement + replacement},                // surrogate
        {"\xf4\x90\x80\x80", replacement + replacement + replacement + replacement},  // > U+10FFFF
        {"end \xe4\xb8", "end " + replacement + replacement},                     // truncated
        {"\x80", replacement},                                                    // lone continuation
        {"ok \xf4\x8f\xbf\xbf", "ok \xf4\x8f\xbf\xbf"},                           // U+10FFFF is fine
    };
    for (const Case& c : cases) {
        std::string out = serializeInvalid(c.in);
        Json j(out);
        ASSERT_TRUE(j.root) << j.error << " for " << out;
        EXPECT_EQ(j.str("error"), "invalid message: " + c.want);
    }
}

TEST(ClientSerializers, OutputIsValidJsonForArbitraryBytes) {
    // Fixed seed: the same inputs every run. Bytes are drawn mostly from the
    // ranges that matter to an escaper (controls, quotes, UTF-8 lead and
    // continuation bytes) so invalid and valid sequences both occur often.
    std::mt19937 rng(20261123);
    const std::string interesting = std::string("\"\\/\b\f\n\r\t\x01\x1f\x7f") +
                                    std::string(1, '\0') + "aZ\x80\xbf\xc2\xdf\xe0\xed\xef"
                                    "\xf0\xf4\xf5\xff\xa0\x9f\x8f\x90";
    int valid = 0;
    for (int round = 0; round < 5000; ++round) {
        std::string in(rng() % 24, '\0');
        for (char& c : in) {
            c = (rng() % 4 == 0) ? static_cast<char>(rng() % 256)
                                 : interesting[rng() % interesting.size()];
        }
        std::string out = serializeDelivery(in, kSender, kRecipient, in);
        Json j(out);
        ASSERT_TRUE(j.root) << j.error << " for " << out;
        // jansson accepts only valid UTF-8, so an input it can read must
        // come back unchanged.
        json_t* plain = json_stringn(in.data(), in.size());
        if (plain != nullptr) {
            EXPECT_EQ(j.str("messageBody"), in);
            json_decref(plain);
            ++valid;
        }
    }
    // Both branches were exercised many times.
    EXPECT_GT(valid, 200);
    EXPECT_LT(valid, 4800);
}

// --- Link protocol ---------------------------------------------------------

LinkProof someProof(bool withNet) {
    LinkProof p;
    p.key = std::string("\x30\x82\x01\x22\x00\xff", 6);
    p.signature = std::string(256, '\x5a');
    if (withNet) {
        p.networkMac = std::string(32, '\x01');
    }
    return p;
}

TEST(LinkFrame, HelloRoundTripsItsProofAsHex) {
    std::string text = serializeLinkHello(kNode, someProof(false));
    std::string signatureHex;
    for (int i = 0; i < 256; ++i) {
        signatureHex += "5a";
    }
    EXPECT_EQ(text, "{\"v\":2,\"t\":\"hello\",\"node\":\"" + kNode +
                        "\",\"key\":\"3082012200ff\",\"proof\":\"" + signatureHex +
                        "\",\"siblings\":1,\"chosen\":1}");
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(text, f, why)) << why;
    EXPECT_EQ(f.kind, LinkFrame::Kind::Hello);
    EXPECT_EQ(f.node, kNode);
    EXPECT_EQ(f.proof.key, someProof(false).key);
    EXPECT_EQ(f.proof.signature, someProof(false).signature);
    EXPECT_TRUE(f.proof.networkMac.empty());

    ASSERT_TRUE(parseLinkFrame(serializeLinkHello(kNode, someProof(true)), f, why)) << why;
    EXPECT_EQ(f.proof.networkMac, std::string(32, '\x01'));
}

TEST(LinkFrame, HelloSaysWhetherThePeerTakesSiblings) {
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(serializeLinkHello(kNode, someProof(false)), f, why)) << why;
    EXPECT_TRUE(f.takesSiblings);
    // A node that does not know "siblings" frames sends no such field.
    const std::string head = "{\"v\":2,\"t\":\"hello\",\"node\":\"" + kNode +
                             "\",\"key\":\"00\",\"proof\":\"00\"";
    ASSERT_TRUE(parseLinkFrame(head + "}", f, why)) << why;
    EXPECT_FALSE(f.takesSiblings);
    ASSERT_TRUE(parseLinkFrame(head + ",\"siblings\":2}", f, why)) << why;
    EXPECT_FALSE(f.takesSiblings);
}

TEST(LinkFrame, SiblingsRoundTripAndAreBounded) {
    const std::string other(32, 'e');
    std::vector<LinkSibling> siblings{{other, 4231}, {std::string(32, '1'), 65535}};
    std::string text = serializeLinkSiblings(kNode, siblings);
    EXPECT_EQ(text, "{\"v\":2,\"t\":\"siblings\",\"node\":\"" + kNode + "\",\"siblings\":\"" +
                        other + ":4231 " + std::string(32, '1') + ":65535\"}");
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(text, f, why)) << why;
    EXPECT_EQ(f.kind, LinkFrame::Kind::Siblings);
    EXPECT_EQ(f.siblings, siblings);

    // None is a list too: the node has no siblings (any more).
    ASSERT_TRUE(parseLinkFrame(serializeLinkSiblings(kNode, {}), f, why)) << why;
    EXPECT_TRUE(f.siblings.empty());

    // At most kMaxLinkSiblings are written, and more are refused.
    std::vector<LinkSibling> many(kMaxLinkSiblings + 1, LinkSibling{other, 4231});
    ASSERT_TRUE(parseLinkFrame(serializeLinkSiblings(kNode, many), f, why)) << why;
    EXPECT_EQ(f.siblings.size(), kMaxLinkSiblings);
    std::string list;
    for (std::size_t i = 0; i <= kMaxLinkSiblings; ++i) {
        list += (i ? " " : "") + other + ":4231";
    }
    const std::string head = "{\"v\":2,\"t\":\"siblings\",\"node\":\"" + kNode + "\",\"siblings\":";
    EXPECT_FALSE(parseLinkFrame(head + "\"" + list + "\"}", f, why));
    EXPECT_EQ(why, "more than 64 siblings");

    for (const std::string& bad :
         {other + ":0", other + ":65536", other + ":123456", other + ":", other,
          other + ":42x", std::string(31, 'e') + ":4231", std::string(32, 'E') + ":4231",
          other + ":4231 ", other + ":4231  " + other + ":4232"}) {
        EXPECT_FALSE(parseLinkFrame(head + "\"" + bad + "\"}", f, why)) << bad;
        EXPECT_EQ(why.rfind("malformed sibling", 0), 0u) << bad << ": " << why;
    }
    EXPECT_FALSE(parseLinkFrame(head + "1}", f, why));
    EXPECT_EQ(why, "\"siblings\" must be a string");
}

TEST(LinkFrame, RefusesHelloWithoutItsProof) {
    LinkFrame f;
    std::string why;
    const std::string head = "{\"v\":2,\"t\":\"hello\",\"node\":\"" + kNode + "\"";
    EXPECT_FALSE(parseLinkFrame(head + "}", f, why));
    EXPECT_EQ(why, "missing \"key\"");
    EXPECT_FALSE(parseLinkFrame(head + ",\"key\":\"00\"}", f, why));
    EXPECT_EQ(why, "missing \"proof\"");
    EXPECT_FALSE(parseLinkFrame(head + ",\"key\":\"0A\",\"proof\":\"00\"}", f, why));
    EXPECT_EQ(why, "\"key\" must be lowercase hex");
    EXPECT_FALSE(parseLinkFrame(head + ",\"key\":\"000\",\"proof\":\"00\"}", f, why));
    EXPECT_EQ(why, "\"key\" must be lowercase hex");
    EXPECT_FALSE(parseLinkFrame(head + ",\"key\":\"00\",\"proof\":\"\"}", f, why));
    EXPECT_EQ(why, "\"proof\" must be lowercase hex");
    EXPECT_FALSE(parseLinkFrame(head + ",\"key\":\"00\",\"proof\":\"00\",\"net\":1}", f, why));
    EXPECT_EQ(why, "\"net\" must be a string");
}

TEST(LinkFrame, DeliverRoundTripsAnyBody) {
    std::string text = serializeLinkDeliver(kNode, kSender, kRecipient, "candidate", kTrickyBody);
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(text, f, why)) << why;
    EXPECT_EQ(f.kind, LinkFrame::Kind::Deliver);
    EXPECT_EQ(f.node, kNode);
    EXPECT_EQ(f.sender, kSender);
    EXPECT_EQ(f.recipient, kRecipient);
    EXPECT_EQ(f.type, "candidate");
    EXPECT_EQ(f.body, kTrickyBody);
}

TEST(LinkFrame, NotFoundRoundTrips) {
    std::string text = serializeLinkNotFound(kNode, kSender, kRecipient);
    Json j(text);
    ASSERT_TRUE(j.root) << j.error;
    EXPECT_EQ(j.str("t"), "notfound");
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(text, f, why)) << why;
    EXPECT_EQ(f.kind, LinkFrame::Kind::NotFound);
    EXPECT_EQ(f.node, kNode);
    EXPECT_EQ(f.sender, kSender);
    EXPECT_EQ(f.recipient, kRecipient);
}

TEST(LinkFrame, AckRoundTripsAndNeedsAPositiveCount) {
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(serializeLinkAck(kNode, 42), f, why)) << why;
    EXPECT_EQ(f.kind, LinkFrame::Kind::Ack);
    EXPECT_EQ(f.node, kNode);
    EXPECT_EQ(f.count, 42u);
    const std::string head = "{\"v\":2,\"t\":\"ack\",\"node\":\"" + kNode + "\"";
    for (const char* bad : {"}", ",\"count\":0}", ",\"count\":-1}", ",\"count\":\"3\"}",
                            ",\"count\":1.5}", ",\"count\":4294967296}"}) {
        EXPECT_FALSE(parseLinkFrame(head + bad, f, why)) << bad;
        EXPECT_EQ(why, "\"count\" must be a positive integer") << bad;
    }
}

TEST(LinkFrame, RejectsWrongVersion) {
    LinkFrame f;
    std::string why;
    // Version 1 links were plain text with an unproven hello.
    EXPECT_FALSE(parseLinkFrame("{\"v\":1,\"t\":\"hello\",\"node\":\"" + kNode + "\"}", f, why));
    EXPECT_EQ(why, "unsupported link protocol version 1");
    EXPECT_FALSE(parseLinkFrame("{\"v\":0,\"t\":\"msg\",\"node\":\"" + kNode + "\"}", f, why));
    EXPECT_EQ(why, "unsupported link protocol version 0");
    // A newer version may change everything but "v".
    EXPECT_FALSE(parseLinkFrame("{\"v\":99,\"kind\":\"x\"}", f, why));
    EXPECT_EQ(why, "unsupported link protocol version 99");
}

TEST(LinkFrame, RejectsMissingOrNonIntegerVersion) {
    LinkFrame f;
    std::string why;
    const std::string rest = "\"t\":\"hello\",\"node\":\"" + kNode + "\"}";
    EXPECT_FALSE(parseLinkFrame("{" + rest, f, why));
    EXPECT_EQ(why, "missing link protocol version");
    EXPECT_FALSE(parseLinkFrame("{\"v\":\"1\"," + rest, f, why));
    EXPECT_EQ(why, "missing link protocol version");
    EXPECT_FALSE(parseLinkFrame("{\"v\":2.0," + rest, f, why));
    EXPECT_EQ(why, "missing link protocol version");
}

TEST(LinkFrame, RejectsNonJsonAndNonObject) {
    LinkFrame f;
    std::string why;
    EXPECT_FALSE(parseLinkFrame("{\"v\":2,", f, why));
    EXPECT_EQ(why, "not JSON");
    EXPECT_FALSE(parseLinkFrame("[1]", f, why));
    EXPECT_EQ(why, "not a JSON object");
}

TEST(LinkFrame, RejectsUnknownOrMissingFrameType) {
    LinkFrame f;
    std::string why;
    EXPECT_FALSE(parseLinkFrame("{\"v\":2,\"t\":\"bye\",\"node\":\"" + kNode + "\"}", f, why));
    EXPECT_EQ(why, "unknown link frame type \"bye\"");
    EXPECT_FALSE(parseLinkFrame("{\"v\":2,\"node\":\"" + kNode + "\"}", f, why));
    EXPECT_EQ(why, "missing \"t\"");
    EXPECT_FALSE(parseLinkFrame("{\"v\":2,\"t\":3,\"node\":\"" + kNode + "\"}", f, why));
    EXPECT_EQ(why, "\"t\" must be a string");
}

TEST(LinkFrame, RejectsMalformedNode) {
    LinkFrame f;
    std::string why;
    EXPECT_FALSE(parseLinkFrame("{\"v\":2,\"t\":\"hello\"}", f, why));
    EXPECT_EQ(why, "missing \"node\"");
    EXPECT_FALSE(parseLinkFrame(serializeLinkHello("0123456789ABCDEF0123456789ABCDEF", someProof(false)), f, why));
    EXPECT_EQ(why, "malformed node");
    EXPECT_FALSE(parseLinkFrame(serializeLinkHello("0123456789ab", someProof(false)), f, why));
    EXPECT_EQ(why, "malformed node");
    EXPECT_FALSE(parseLinkFrame(serializeLinkNotFound("", kSender, kRecipient), f, why));
    EXPECT_EQ(why, "malformed node");
}

TEST(LinkFrame, RejectsMalformedSessionIds) {
    LinkFrame f;
    std::string why;
    // Neither a session id nor a chosen PeerJS id.
    EXPECT_FALSE(parseLinkFrame(serializeLinkDeliver(kNode, "x!", kRecipient, "t", "b"), f, why));
    EXPECT_EQ(why, "malformed sender");
    EXPECT_FALSE(parseLinkFrame(serializeLinkDeliver(kNode, kSender, "-y", "t", "b"), f, why));
    EXPECT_EQ(why, "malformed recipient");
    EXPECT_FALSE(parseLinkFrame(serializeLinkNotFound(kNode, kSender, ""), f, why));
    EXPECT_EQ(why, "malformed recipient");
    EXPECT_FALSE(parseLinkFrame("{\"v\":2,\"t\":\"notfound\",\"node\":\"" + kNode +
                                    "\",\"recipient\":\"" + kRecipient + "\"}",
                                f, why));
    EXPECT_EQ(why, "missing \"sender\"");
}

TEST(LinkFrame, HelloSaysWhetherThePeerTakesChosenIds) {
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(serializeLinkHello(kNode, someProof(false)), f, why)) << why;
    EXPECT_TRUE(f.takesChosen);
    // A node of the version before sends no such field.
    const std::string head = "{\"v\":2,\"t\":\"hello\",\"node\":\"" + kNode +
                             "\",\"key\":\"00\",\"proof\":\"00\",\"siblings\":1";
    ASSERT_TRUE(parseLinkFrame(head + "}", f, why)) << why;
    EXPECT_FALSE(f.takesChosen);
    EXPECT_TRUE(f.takesSiblings);
    ASSERT_TRUE(parseLinkFrame(head + ",\"chosen\":true}", f, why)) << why;
    EXPECT_FALSE(f.takesChosen);
}

TEST(LinkFrame, ChosenPeerJsIdsAreSendersAndRecipientsAsWritten) {
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(serializeLinkDeliver(kNode, "Alice", "bob_2", "OFFER", "{}"), f,
                               why))
        << why;
    EXPECT_EQ(f.sender, "Alice");  // PeerJS ids are case-sensitive
    EXPECT_EQ(f.recipient, "bob_2");
    ASSERT_TRUE(parseLinkFrame(serializeLinkDeliver(kNode, kSender, "carol x", "OFFER", "{}"), f,
                               why))
        << why;
    EXPECT_EQ(f.recipient, "carol x");
    ASSERT_TRUE(parseLinkFrame(serializeLinkNotFound(kNode, "Alice", "Bob", 3), f, why)) << why;
    EXPECT_EQ(f.sender, "Alice");
    EXPECT_EQ(f.recipient, "Bob");
    EXPECT_EQ(f.number, 3u);
    // Longer than a PeerJS id may be, or with what one may not hold.
    EXPECT_FALSE(parseLinkFrame(serializeLinkDeliver(kNode, std::string(257, 'a'), kRecipient,
                                                     "OFFER", "{}"),
                                f, why));
    EXPECT_EQ(why, "malformed sender");
    EXPECT_FALSE(
        parseLinkFrame(serializeLinkDeliver(kNode, kSender, "a  b", "OFFER", "{}"), f, why));
    EXPECT_EQ(why, "malformed recipient");
    // The takeover notice stays a key-owned id's own.
    EXPECT_FALSE(parseLinkFrame(
        serializeLinkDeliver(kNode, "alice", "alice", std::string(kIdTakenType), "{}"), f, why));
}

TEST(LinkFrame, LowercasesSessionIds) {
    LinkFrame f;
    std::string why;
    ASSERT_TRUE(parseLinkFrame(serializeLinkNotFound(kNode, "0123456789ABCDEF0123456789ABCDEF-0123456789ABCDEF",
                                                     "FEDCBA9876543210FEDCBA9876543210-00112233445566AA"),
                               f, why))
        << why;
    EXPECT_EQ(f.sender, kSender);
    EXPECT_EQ(f.recipient, kRecipient);
}

TEST(LinkFrame, RejectsDeliverWithBadTypeOrBody) {
    LinkFrame f;
    std::string why;
    EXPECT_FALSE(
        parseLinkFrame(serializeLinkDeliver(kNode, kSender, kRecipient, "WebSocketIdMessage", "b"),
                       f, why));
    EXPECT_EQ(why, "reserved type \"WebSocketIdMessage\"");
    EXPECT_FALSE(parseLinkFrame(serializeLinkDeliver(kNode, kSender, kRecipient, "", "b"), f, why));
    EXPECT_EQ(why, "\"type\" must not be empty");
    const std::string head = "{\"v\":2,\"t\":\"msg\",\"node\":\"" + kNode + "\",\"sender\":\"" +
                             kSender + "\",\"recipient\":\"" + kRecipient + "\",\"type\":\"t\"";
    EXPECT_FALSE(parseLinkFrame(head + "}", f, why));
    EXPECT_EQ(why, "missing \"body\"");
    EXPECT_FALSE(parseLinkFrame(head + ",\"body\":{}}", f, why));
    EXPECT_EQ(why, "\"body\" must be a string");
}

}  // namespace
}  // namespace dwrtc
