// The link codec (link_codec.h) as a specification: a client codec and a
// server codec talk in memory, in chunks of any size, and hand-made bytes
// show what each refuses and how.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "link_codec.h"

using namespace std::chrono_literals;
using dwrtc::LinkCodec;
using dwrtc::LinkCodecConfig;

namespace {

// Writes down what a codec reports, one line per event.
class Recorder : public dwrtc::LinkCodecHandler {
public:
    void onOpen() override { events.push_back("open"); }
    void onFrame(std::string_view frame) override {
        events.push_back("frame " + std::string(frame));
        if (afterFrame) afterFrame(frame);
    }
    void onMessageEnd() override { events.push_back("end"); }
    void onClosed(int code, std::string_view reason) override {
        events.push_back("closed " + std::to_string(code) + " " + std::string(reason));
    }
    void onFailed(std::string_view reason) override {
        events.push_back("failed " + std::string(reason));
    }

    // The events other than "open".
    std::vector<std::string> traffic() const {
        std::vector<std::string> out;
        for (const auto& e : events) {
            if (e != "open") out.push_back(e);
        }
        return out;
    }
    bool failedWith(const std::string& text) const {
        for (const auto& e : events) {
            if (e.rfind("failed ", 0) == 0 && e.find(text) != std::string::npos) return true;
        }
        return false;
    }

    std::vector<std::string> events;
    std::function<void(std::string_view)> afterFrame;
};

using Strings = std::vector<std::string>;

const auto kStart = dwrtc::LinkCodecClock::time_point{} + 1h;

// Feeds bytes to a codec in pieces of `chunk` bytes.
void feedInChunks(LinkCodec& codec, const std::string& bytes, std::size_t chunk) {
    for (std::size_t i = 0; i < bytes.size(); i += chunk) {
        std::string piece = bytes.substr(i, chunk);
        codec.feed(piece.data(), piece.size());
    }
}

// One RFC 6455 frame as a peer would write it, `declared` overriding the
// length in its header.
std::string rawFrame(unsigned opcode, const std::string& payload, bool masked, bool fin = true,
                     std::uint64_t declared = UINT64_MAX) {
    std::uint64_t len = declared == UINT64_MAX ? payload.size() : declared;
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | opcode);
    unsigned char maskBit = masked ? 0x80 : 0;
    if (len < 126) {
        f += static_cast<char>(maskBit | len);
    } else if (len < 65536) {
        f += static_cast<char>(maskBit | 126);
        f += static_cast<char>(len >> 8);
        f += static_cast<char>(len & 0xff);
    } else {
        f += static_cast<char>(maskBit | 127);
        for (int shift = 56; shift >= 0; shift -= 8) f += static_cast<char>((len >> shift) & 0xff);
    }
    const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
    if (masked) f.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        f += static_cast<char>(masked ? payload[i] ^ mask[i % 4] : payload[i]);
    }
    return f;
}

// The frames in bytes a codec wrote: opcode and unmasked payload of each.
std::vector<std::pair<unsigned, std::string>> parseFrames(const std::string& bytes) {
    std::vector<std::pair<unsigned, std::string>> out;
    std::size_t i = 0;
    while (i + 2 <= bytes.size()) {
        unsigned opcode = static_cast<unsigned char>(bytes[i]) & 0x0f;
        bool masked = static_cast<unsigned char>(bytes[i + 1]) & 0x80;
        std::uint64_t len = static_cast<unsigned char>(bytes[i + 1]) & 0x7f;
        std::size_t head = 2;
        if (len >= 126) {
            std::size_t n = len == 126 ? 2 : 8;
            len = 0;
            for (std::size_t k = 0; k < n; ++k) {
                len = (len << 8) | static_cast<unsigned char>(bytes[i + 2 + k]);
            }
            head += n;
        }
        const char* mask = bytes.data() + i + head;
        if (masked) head += 4;
        std::string payload = bytes.substr(i + head, len);
        if (masked) {
            for (std::size_t k = 0; k < payload.size(); ++k) payload[k] ^= mask[k % 4];
        }
        out.emplace_back(opcode, payload);
        i += head + len;
    }
    return out;
}

// The code of the close frame among the bytes, 0 if none.
int closeCodeIn(const std::string& bytes) {
    for (const auto& [opcode, payload] : parseFrames(bytes)) {
        if (opcode == 8 && payload.size() >= 2) {
            return (static_cast<unsigned char>(payload[0]) << 8) |
                   static_cast<unsigned char>(payload[1]);
        }
    }
    return 0;
}

// A client codec and a server codec joined by memory.
class Pair {
public:
    explicit Pair(LinkCodecConfig config = {})
        : client(LinkCodec::client(clientEvents, "127.0.0.1", config, kStart)),
          server(LinkCodec::server(serverEvents, config, kStart)) {}

    // Moves bytes both ways, `chunk` at a time, until neither has any.
    void pump(std::size_t chunk = 65536) {
        for (int round = 0; round < 100; ++round) {
            std::string up = client->takeBytes();
            std::string down = server->takeBytes();
            if (up.empty() && down.empty()) return;
            feedInChunks(*server, up, chunk);
            feedInChunks(*client, down, chunk);
        }
        FAIL() << "the codecs never went quiet";
    }

    Recorder clientEvents, serverEvents;
    std::unique_ptr<LinkCodec> client, server;
};

// A server codec that has read a valid upgrade request (its 101 taken).
class OpenServer {
public:
    explicit OpenServer(LinkCodecConfig config = {})
        : codec(LinkCodec::server(events, config, kStart)) {
        std::string request =
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Protocol: dwrtc-link\r\nSec-WebSocket-Version: 13\r\n\r\n";
        codec->feed(request.data(), request.size());
        answer = codec->takeBytes();
    }
    void feed(const std::string& bytes) { codec->feed(bytes.data(), bytes.size()); }

    Recorder events;
    std::unique_ptr<LinkCodec> codec;
    std::string answer;
};

std::string requestWith(const std::string& replace, const std::string& by) {
    std::string r =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Protocol: dwrtc-link\r\nSec-WebSocket-Version: 13\r\n\r\n";
    std::size_t at = r.find(replace);
    if (at != std::string::npos) r.replace(at, replace.size(), by);
    return r;
}

// What a server codec answers to a request, and why it refused it.
std::pair<std::string, Recorder> serve(const std::string& request) {
    Recorder events;
    auto codec = LinkCodec::server(events, {}, kStart);
    codec->feed(request.data(), request.size());
    return {codec->takeBytes(), events};
}

}  // namespace

TEST(LinkCodec, AcceptValueFollowsRfc6455) {
    // The worked example of RFC 6455 section 1.3.
    EXPECT_EQ(dwrtc::webSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    std::string key = dwrtc::newWebSocketKey();
    EXPECT_EQ(key.size(), 24u);
    EXPECT_NE(key, dwrtc::newWebSocketKey());
}

TEST(LinkCodec, ClientRequestCarriesWhatTheServerNeeds) {
    Recorder events;
    auto client = LinkCodec::client(events, "node.example", {}, kStart);
    std::string request = client->takeBytes();
    EXPECT_EQ(request.rfind("GET / HTTP/1.1\r\n", 0), 0u) << request;
    for (const char* line :
         {"\r\nHost: node.example\r\n", "\r\nUpgrade: websocket\r\n", "\r\nConnection: Upgrade\r\n",
          "\r\nSec-WebSocket-Version: 13\r\n", "\r\nSec-WebSocket-Protocol: dwrtc-link\r\n",
          "\r\nSec-WebSocket-Key: "}) {
        EXPECT_NE(request.find(line), std::string::npos) << line;
    }
    EXPECT_EQ(request.substr(request.size() - 4), "\r\n\r\n");
    EXPECT_TRUE(client->takeBytes().empty()) << "the request goes out once";
}

TEST(LinkCodec, HandshakeOpensBothEnds) {
    Pair p;
    p.pump();
    EXPECT_EQ(p.clientEvents.events, Strings{"open"});
    EXPECT_EQ(p.serverEvents.events, Strings{"open"});
    EXPECT_EQ(p.client->state(), LinkCodec::State::Open);
    EXPECT_EQ(p.server->state(), LinkCodec::State::Open);
}

TEST(LinkCodec, ServerAnswersWith101AcceptAndSubprotocol) {
    OpenServer s;
    EXPECT_EQ(s.answer.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << s.answer;
    EXPECT_NE(s.answer.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
              std::string::npos);
    EXPECT_NE(s.answer.find("\r\nSec-WebSocket-Protocol: dwrtc-link\r\n"), std::string::npos);
    EXPECT_EQ(s.events.events, Strings{"open"});
}

TEST(LinkCodec, FramesFlowBothWays) {
    Pair p;
    p.pump();
    ASSERT_TRUE(p.client->sendFrame("{\"t\":\"hello\"}"));
    ASSERT_TRUE(p.server->sendFrame("{\"t\":\"ack\"}"));
    p.pump();
    EXPECT_EQ(p.serverEvents.traffic(), (Strings{"frame {\"t\":\"hello\"}", "end"}));
    EXPECT_EQ(p.clientEvents.traffic(), (Strings{"frame {\"t\":\"ack\"}", "end"}));
}

TEST(LinkCodec, QueuedFramesGoOutAsOneMessage) {
    Pair p;
    p.pump();
    for (const char* f : {"one", "two", "three"}) p.client->sendFrame(f);
    std::string bytes = p.client->takeBytes();
    auto frames = parseFrames(bytes);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].second, "one\ntwo\nthree");
    p.server->feed(bytes.data(), bytes.size());
    EXPECT_EQ(p.serverEvents.traffic(), (Strings{"frame one", "frame two", "frame three", "end"}));
}

TEST(LinkCodec, FramesQueuedBeforeTheUpgradeWaitForIt) {
    Pair p;
    p.client->sendFrame("early");
    p.pump();
    EXPECT_EQ(p.serverEvents.traffic(), (Strings{"frame early", "end"}));
}

TEST(LinkCodec, LargeQueuesArePackedIntoMessagesOfTheBatchSize) {
    LinkCodecConfig c;
    c.writeBatch = 100;
    Pair p(c);
    p.pump();
    p.server->setProven();
    for (int i = 0; i < 10; ++i) p.client->sendFrame(std::string(30, static_cast<char>('a' + i)));
    std::string bytes = p.client->takeBytes();
    EXPECT_EQ(parseFrames(bytes).size(), 4u);  // 3 + 3 + 3 + 1 frames of 30 bytes
    p.server->feed(bytes.data(), bytes.size());
    std::size_t frames = 0, ends = 0;
    for (const auto& e : p.serverEvents.traffic()) {
        frames += e.rfind("frame ", 0) == 0;
        ends += e == "end";
    }
    EXPECT_EQ(frames, 10u);
    EXPECT_EQ(ends, 4u);
}

TEST(LinkCodec, BytesInChunksOfAnySizeGiveTheSameEvents) {
    for (std::size_t chunk : {1u, 2u, 3u, 5u, 7u, 13u, 64u, 1000u}) {
        Pair p;
        p.client->sendFrame("a");
        p.client->sendFrame("bb");
        p.server->sendFrame(std::string(300, 'x'));
        p.pump(chunk);
        p.client->sendFrame("ccc");
        p.pump(chunk);
        EXPECT_EQ(p.serverEvents.events,
                  (Strings{"open", "frame a", "frame bb", "end", "frame ccc", "end"}))
            << "chunk " << chunk;
        EXPECT_EQ(p.clientEvents.events, (Strings{"open", "frame " + std::string(300, 'x'), "end"}))
            << "chunk " << chunk;
    }
}

TEST(LinkCodec, FramesRightBehindTheUpgradeAreRead) {
    Pair p;
    std::string request = p.client->takeBytes();
    p.server->feed(request.data(), request.size());
    p.server->sendFrame("first");
    std::string answerAndFrame = p.server->takeBytes();
    p.client->feed(answerAndFrame.data(), answerAndFrame.size());
    EXPECT_EQ(p.clientEvents.events, (Strings{"open", "frame first", "end"}));
}

TEST(LinkCodec, EmptyFramesBetweenNewlinesAreSkipped) {
    OpenServer s;
    s.feed(rawFrame(1, "\na\n\nb\n", true));
    EXPECT_EQ(s.events.traffic(), (Strings{"frame a", "frame b", "end"}));
}

TEST(LinkCodec, PingIsAnsweredWithPong) {
    OpenServer s;
    s.feed(rawFrame(9, "are you there", true));
    auto frames = parseFrames(s.codec->takeBytes());
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].first, 10u);
    EXPECT_EQ(frames[0].second, "are you there");
    EXPECT_TRUE(s.events.traffic().empty());
}

TEST(LinkCodec, CloseHandshakeEndsBothSides) {
    Pair p;
    p.pump();
    p.client->sendFrame("last words");
    p.client->close(1000, "bye");
    EXPECT_EQ(p.client->state(), LinkCodec::State::Closing);
    EXPECT_FALSE(p.client->sendFrame("too late"));
    p.pump();
    EXPECT_EQ(p.serverEvents.traffic(), (Strings{"frame last words", "end", "closed 1000 bye"}));
    EXPECT_EQ(p.clientEvents.traffic(), (Strings{"closed 1000 bye"}));
    EXPECT_TRUE(p.client->finished());
    EXPECT_TRUE(p.server->finished());
    EXPECT_EQ(p.server->state(), LinkCodec::State::Closed);
}

TEST(LinkCodec, FragmentsAreReassembledIntoOneMessage) {
    OpenServer s;
    s.feed(rawFrame(1, "a\nb", true, /*fin=*/false));
    EXPECT_TRUE(s.events.traffic().empty());
    // A ping may come between the fragments of a message.
    s.feed(rawFrame(9, "", true));
    s.feed(rawFrame(0, "c\n", true, false));
    s.feed(rawFrame(0, "d", true, true));
    EXPECT_EQ(s.events.traffic(), (Strings{"frame a", "frame bc", "frame d", "end"}));
}

TEST(LinkCodec, ServerRefusesAnUnmaskedFrame) {
    OpenServer s;
    s.feed(rawFrame(1, "hello", /*masked=*/false));
    EXPECT_TRUE(s.events.failedWith("unmasked")) << s.events.events.back();
    EXPECT_EQ(s.codec->state(), LinkCodec::State::Failed);
    EXPECT_EQ(closeCodeIn(s.codec->takeBytes()), 1002);
    EXPECT_EQ(s.events.traffic().size(), 1u) << "nothing delivered";
}

TEST(LinkCodec, ClientRefusesAMaskedFrame) {
    Pair p;
    p.pump();
    std::string bad = rawFrame(1, "hello", /*masked=*/true);
    p.client->feed(bad.data(), bad.size());
    EXPECT_TRUE(p.clientEvents.failedWith("masked frame"));
    EXPECT_EQ(closeCodeIn(p.client->takeBytes()), 1002);
}

TEST(LinkCodec, BinaryMessageClosesWith1003) {
    OpenServer s;
    s.feed(rawFrame(2, "\x01\x02", true));
    EXPECT_TRUE(s.events.failedWith("binary"));
    EXPECT_EQ(closeCodeIn(s.codec->takeBytes()), 1003);
    EXPECT_TRUE(s.codec->finished());
}

TEST(LinkCodec, InvalidUtf8TextIsRefused) {
    OpenServer s;
    s.feed(rawFrame(1, "\xff\xfe", true));
    EXPECT_TRUE(s.events.failedWith("RFC 6455"));
    EXPECT_EQ(closeCodeIn(s.codec->takeBytes()), 1007);
}

TEST(LinkCodec, UnprovenPeerIsRefusedOnTheDeclaredLengthBeforeAnyPayload) {
    OpenServer s;
    // Only the header: it declares 4097 bytes, one more than allowed.
    std::string header = rawFrame(1, "", true, true, 4097);
    s.feed(header);
    EXPECT_TRUE(s.events.failedWith("more than 4096 bytes"));
    EXPECT_EQ(closeCodeIn(s.codec->takeBytes()), 1009);
    EXPECT_EQ(s.codec->inputBuffered(), 0u);
    // What follows is not read.
    s.feed(std::string(4097, 'x'));
    EXPECT_EQ(s.events.traffic().size(), 1u);
}

TEST(LinkCodec, DeclaredLengthsOfFragmentsAddUp) {
    OpenServer s;
    s.feed(rawFrame(1, std::string(3000, 'a'), true, false));
    EXPECT_TRUE(s.events.traffic().empty());
    s.feed(rawFrame(0, "", true, true, 1097));
    EXPECT_TRUE(s.events.failedWith("more than 4096 bytes"));
}

TEST(LinkCodec, MessageOfExactlyTheLimitIsTaken) {
    OpenServer s;
    s.feed(rawFrame(1, std::string(4096, 'a'), true));
    EXPECT_EQ(s.events.traffic(), (Strings{"frame " + std::string(4096, 'a'), "end"}));
}

TEST(LinkCodec, ProofLiftsTheLimitToTheProvenOne) {
    LinkCodecConfig c;
    c.messageLimit = 100000;
    Pair p(c);
    p.pump();
    p.server->setProven();
    EXPECT_TRUE(p.server->proven());
    p.client->sendFrame(std::string(50000, 'y'));
    p.pump();
    EXPECT_EQ(p.serverEvents.traffic(), (Strings{"frame " + std::string(50000, 'y'), "end"}));
    std::string tooBig = rawFrame(1, "", true, true, 100001);
    p.server->feed(tooBig.data(), tooBig.size());
    EXPECT_TRUE(p.serverEvents.failedWith("more than 100000 bytes"));
}

TEST(LinkCodec, HeaderDeclaringHugeLengthDoesNotWrap) {
    OpenServer s;
    s.codec->setProven();
    s.feed(rawFrame(1, "abc", true, false));
    s.feed(rawFrame(0, "", true, true, UINT64_MAX - 1));
    EXPECT_TRUE(s.events.failedWith("more than"));
}

TEST(LinkCodec, HandlerClosingOnAFrameStopsTheRestOfTheMessage) {
    OpenServer s;
    s.events.afterFrame = [&](std::string_view) { s.codec->close(1008, "no"); };
    s.feed(rawFrame(1, "a\nb\nc", true));
    EXPECT_EQ(s.events.traffic(), (Strings{"frame a"}));
    EXPECT_EQ(closeCodeIn(s.codec->takeBytes()), 1008);
}

TEST(LinkCodec, QueueIsBounded) {
    LinkCodecConfig c;
    c.maxQueuedBytes = 100;
    Pair p(c);
    p.pump();
    EXPECT_TRUE(p.client->sendFrame(std::string(60, 'a')));
    EXPECT_FALSE(p.client->sendFrame(std::string(60, 'b')));
    p.pump();
    EXPECT_TRUE(p.client->sendFrame(std::string(60, 'c')));
}

TEST(LinkCodec, ServerRefusesAHeaderOverTheByteCap) {
    LinkCodecConfig c;
    c.maxHeaderBytes = 512;
    Recorder events;
    auto server = LinkCodec::server(events, c, kStart);
    std::string longRequest = requestWith("Host: 127.0.0.1", "Host: " + std::string(600, 'h'));
    feedInChunks(*server, longRequest, 100);
    EXPECT_TRUE(events.failedWith("more than 512 bytes"));
    EXPECT_EQ(server->takeBytes().rfind("HTTP/1.1 400 ", 0), 0u);
    EXPECT_LE(server->inputBuffered(), 512u);
}

TEST(LinkCodec, ServerRefusesTooManyHeaderFields) {
    std::string many;
    for (int i = 0; i < 40; ++i) many += "X-Filler-" + std::to_string(i) + ": 1\r\n";
    auto [answer, events] = serve(requestWith("Upgrade:", many + "Upgrade:"));
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
    EXPECT_TRUE(events.failedWith("more than 32 HTTP header fields"));
}

TEST(LinkCodec, ServerRefusesBadUpgradeRequestsWithAReason) {
    struct Case {
        std::string request;
        std::string why;
    };
    std::vector<Case> cases = {
        {requestWith("GET /", "POST /"), "method is not GET"},
        {requestWith("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"), "not an HTTP/1.1 request line"},
        {requestWith("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), "version 13"},
        {requestWith("Sec-WebSocket-Version: 13\r\n", ""), "version 13"},
        {requestWith("dGhlIHNhbXBsZSBub25jZQ==", "short"), "Sec-WebSocket-Key"},
        {requestWith("Sec-WebSocket-Protocol: dwrtc-link", "Sec-WebSocket-Protocol: chat"),
         "dwrtc-link subprotocol"},
        {requestWith("Upgrade: websocket", "Upgrade: h2c"), "Upgrade: websocket"},
        {requestWith("Connection: Upgrade", "Connection: close"), "Connection: upgrade"},
        {requestWith("Host: 127.0.0.1\r\n", ""), "Host"},
        {requestWith("Upgrade: websocket\r\n", "Upgrade: websocket\r\n folded\r\n"), "folded"},
        {requestWith("Upgrade: websocket\r\n", "Upgrade websocket\r\n"), "malformed"},
    };
    for (const Case& c : cases) {
        auto [answer, events] = serve(c.request);
        EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << c.why;
        EXPECT_TRUE(events.failedWith(c.why)) << c.why << ": " << events.events.back();
        EXPECT_EQ(events.events.size(), 1u);
    }
}

TEST(LinkCodec, ServerTakesTokenListsAndAnyCase) {
    auto [answer, events] =
        serve(requestWith("Upgrade: websocket\r\nConnection: Upgrade\r\n",
                          "upgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"));
    EXPECT_EQ(answer.rfind("HTTP/1.1 101 ", 0), 0u) << answer;
    auto [answer2, events2] = serve(
        requestWith("Sec-WebSocket-Protocol: dwrtc-link", "Sec-WebSocket-Protocol: x, dwrtc-link"));
    EXPECT_EQ(answer2.rfind("HTTP/1.1 101 ", 0), 0u);
}

TEST(LinkCodec, ClientRefusesAWrongAccept) {
    Recorder events;
    auto client = LinkCodec::client(events, "127.0.0.1", {}, kStart);
    client->takeBytes();
    std::string answer =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: dwrtc-link\r\n\r\n";
    client->feed(answer.data(), answer.size());
    EXPECT_TRUE(events.failedWith("Sec-WebSocket-Accept"));
    EXPECT_EQ(client->state(), LinkCodec::State::Failed);
}

TEST(LinkCodec, ClientRefusesAnswersThatAreNotItsUpgrade) {
    struct Case {
        std::string cut, by;  // what is changed in the server's own 101
        std::string why;
    };
    std::vector<Case> cases = {
        {"HTTP/1.1 101 Switching Protocols", "HTTP/1.1 403 Forbidden", "HTTP status 403"},
        {"HTTP/1.1 101 Switching Protocols", "SSH-2.0-OpenSSH", "not HTTP/1.1"},
        {"Sec-WebSocket-Protocol: dwrtc-link\r\n", "", "subprotocol"},
        {"Sec-WebSocket-Protocol: dwrtc-link", "Sec-WebSocket-Protocol: chat", "subprotocol"},
        {"Upgrade: websocket\r\n", "", "Upgrade: websocket"},
        {"Connection: Upgrade\r\n", "", "Connection: upgrade"},
        {"Sec-WebSocket-Accept: ", "Sec-WebSocket-Accept: x", "Sec-WebSocket-Accept"},
        {"\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", "extension"},
    };
    for (const Case& c : cases) {
        Pair p;
        std::string request = p.client->takeBytes();
        p.server->feed(request.data(), request.size());
        std::string answer = p.server->takeBytes();
        answer.replace(answer.find(c.cut), c.cut.size(), c.by);
        p.client->feed(answer.data(), answer.size());
        EXPECT_TRUE(p.clientEvents.failedWith(c.why))
            << c.why << ": " << p.clientEvents.events.back();
        EXPECT_EQ(p.client->state(), LinkCodec::State::Failed);
    }
    // Unchanged, it opens: the cases above fail for their change alone.
    Pair p;
    p.pump();
    EXPECT_EQ(p.clientEvents.events, Strings{"open"});
}

TEST(LinkCodec, FrameHeadersThatBreakTheRfcAreRefused) {
    // A ping of 126 bytes: control frames carry at most 125.
    OpenServer s;
    s.feed(rawFrame(9, std::string(126, 'p'), true));
    EXPECT_TRUE(s.events.failedWith("RFC 6455"));
    EXPECT_TRUE(s.codec->finished());
}

TEST(LinkCodec, HandshakeDeadlineRunsUntilProof) {
    LinkCodecConfig c;
    c.handshakeTimeout = 5000ms;
    Pair p(c);
    p.pump();
    EXPECT_FALSE(p.server->expired(kStart + 5000ms));
    EXPECT_TRUE(p.server->expired(kStart + 5001ms));
    EXPECT_TRUE(p.client->expired(kStart + 6s));
    p.server->setProven();
    EXPECT_FALSE(p.server->expired(kStart + 1h));
}

TEST(LinkCodec, SilentServerSideExpiresBeforeTheUpgrade) {
    Recorder events;
    auto server = LinkCodec::server(events, {}, kStart);
    EXPECT_FALSE(server->expired(kStart + 1s));
    EXPECT_TRUE(server->expired(kStart + 6s));
}

TEST(UnprovenLinkCap, RefusesBeyondItsMaximumAndReopensWhenGivenBack) {
    dwrtc::UnprovenLinkCap cap(2);
    EXPECT_TRUE(cap.tryTake());
    EXPECT_TRUE(cap.tryTake());
    EXPECT_FALSE(cap.tryTake());
    EXPECT_EQ(cap.taken(), 2u);
    cap.giveBack();
    EXPECT_TRUE(cap.tryTake());
    cap.giveBack();
    cap.giveBack();
    cap.giveBack();  // more than taken: stays at zero
    EXPECT_EQ(cap.taken(), 0u);
    dwrtc::UnprovenLinkCap none(0);
    EXPECT_FALSE(none.tryTake());
}
