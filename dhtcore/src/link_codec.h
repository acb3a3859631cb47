// The node-to-node link protocol as a sans-IO codec: the HTTP/1.1 upgrade,
// RFC 6455 framing (libwslay), the split of a WebSocket message into link
// frames at '\n', and the limits an unproven peer is held to. It touches no
// socket, no TLS, no clock and no thread: the transport around it (an nginx
// connection in a worker, or a test's socket) feeds it the bytes it read and
// the time, writes out the bytes it takes from it, and hears what happened
// through LinkCodecHandler. One thread at a time per codec (the transport's).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct wslay_event_context;

namespace dwrtc {

using LinkCodecClock = std::chrono::steady_clock;

// The limits of one link. The defaults are those LinkService holds links to.
struct LinkCodecConfig {
    // A message from a peer that has not proven itself (the hello is about
    // 1.2 KB), checked against the length its frame headers declare.
    std::size_t unprovenMessageLimit = 4096;
    // A message from a proven peer (many frames packed into one).
    std::size_t messageLimit = 16 * 1024 * 1024;
    // The upgrade request or answer, all header lines together, and how
    // many header fields it may have.
    std::size_t maxHeaderBytes = 4096;
    std::size_t maxHeaderFields = 32;
    // From the codec's start (accept or connect) to setProven(), at most.
    std::chrono::milliseconds handshakeTimeout{5000};
    // Queued frames are packed into WebSocket messages of about this size.
    std::size_t writeBatch = 256 * 1024;
    // Frames queued and bytes not yet taken by the transport, at most:
    // sendFrame() refuses a frame beyond it rather than grow without end.
    std::size_t maxQueuedBytes = 64 * 1024 * 1024;
};

// What a codec reports, from inside feed() (and, for onFailed(), from the
// calls that find a fault). A handler may call sendFrame(), close() and
// setProven() on the codec from these; it must not destroy the codec.
class LinkCodecHandler {
public:
    virtual ~LinkCodecHandler() = default;
    // The upgrade is done: frames flow both ways from now on.
    virtual void onOpen() = 0;
    // One frame of the link protocol (the text between two '\n').
    virtual void onFrame(std::string_view frame) = 0;
    // The frames of one WebSocket message have all been handed over.
    virtual void onMessageEnd() = 0;
    // The peer sent a close frame (code 1005 when it gave none); ours, if
    // not sent yet, is among the bytes to write.
    virtual void onClosed(int code, std::string_view reason) = 0;
    // The peer broke the protocol or a limit. The bytes still to take hold
    // the refusal (an HTTP 400 or a close frame); then the link ends.
    // reason is one line fit for a log.
    virtual void onFailed(std::string_view reason) = 0;
};

// The header block of an HTTP/1.1 request or response, read from bytes that
// arrive in pieces of any size, within a cap on bytes and on fields.
class HttpHeadReader {
public:
    enum class Status { NeedMore, Done, Refused };

    HttpHeadReader(std::size_t maxBytes, std::size_t maxFields)
        : maxBytes_(maxBytes), maxFields_(maxFields) {}

    // Takes bytes up to the end of the head; `used` says how many, so what
    // follows the head (the first frames) stays with the caller.
    Status feed(const char* data, std::size_t len, std::size_t& used);

    const std::string& startLine() const { return startLine_; }
    // The value of a field (name case-insensitive), nullptr if absent.
    const std::string* field(std::string_view name) const;
    std::size_t count(std::string_view name) const;
    const std::string& error() const { return error_; }
    std::size_t buffered() const { return buffer_.size(); }

private:
    Status parse();

    std::size_t maxBytes_;
    std::size_t maxFields_;
    std::string buffer_;
    std::string startLine_;
    std::vector<std::pair<std::string, std::string>> fields_;
    std::string error_;
};

// The client's side of the upgrade: the request LinkService's libwebsockets
// client sends, and the checks of the server's 101.
class LinkUpgradeClient {
public:
    // key: the Sec-WebSocket-Key (base64 of 16 random bytes).
    LinkUpgradeClient(std::string host, std::string path, std::string key,
                      const LinkCodecConfig& config);
    std::string request() const;
    HttpHeadReader::Status feed(const char* data, std::size_t len, std::size_t& used);
    const std::string& error() const { return error_; }
    std::size_t buffered() const { return reader_.buffered(); }

private:
    std::string check() const;

    std::string host_;
    std::string path_;
    std::string key_;
    HttpHeadReader reader_;
    std::string error_;
};

// The server's side of the upgrade: checks the request, makes the 101 or
// the refusal (an HTTP 400).
class LinkUpgradeServer {
public:
    explicit LinkUpgradeServer(const LinkCodecConfig& config);
    HttpHeadReader::Status feed(const char* data, std::size_t len, std::size_t& used);
    // After Done: the 101. After Refused: the 400.
    std::string answer() const;
    const std::string& error() const { return error_; }
    std::size_t buffered() const { return reader_.buffered(); }

private:
    std::string check();

    HttpHeadReader reader_;
    std::string accept_;
    std::string error_;
};

// Checks each frame header the peer sends as soon as it is complete, before
// any of its payload is handed on: the mask the role requires, no binary
// data, and the length the headers of a message declare against the limit.
// libwslay checks the length only once payload has arrived (and buffered).
class FrameHeaderGate {
public:
    explicit FrameHeaderGate(bool requireMasked) : requireMasked_(requireMasked) {}
    void setLimit(std::uint64_t limit) { limit_ = limit; }
    // How many of these bytes may go on; fewer than len once a header is
    // refused (and none after that).
    std::size_t scan(const unsigned char* data, std::size_t len);
    bool refused() const { return refusedCode_ != 0; }
    int refusedCode() const { return refusedCode_; }
    const std::string& refusedReason() const { return refusedReason_; }
    // The data payload the current message's headers declared so far.
    std::uint64_t messageLength() const { return messageLength_; }

private:
    void checkHeader();

    bool requireMasked_;
    std::uint64_t limit_ = 0;
    unsigned char header_[14] = {};
    std::size_t headerHave_ = 0;
    std::size_t headerNeed_ = 2;
    std::size_t lengthEnd_ = 2;   // header bytes up to the end of the length
    std::uint64_t declared_ = 0;  // this frame's payload length
    std::uint64_t payloadLeft_ = 0;
    std::uint64_t messageLength_ = 0;
    bool inMessage_ = false;  // a data frame without FIN came
    int refusedCode_ = 0;
    std::string refusedReason_;
};

// One link's protocol state: upgrade, then framing, then close.
class LinkCodec {
public:
    enum class Role { Client, Server };
    enum class State { Upgrading, Open, Closing, Closed, Failed };

    // The connecting node: host goes in the Host header.
    // (On the heap: libwslay holds the codec's address.)
    static std::unique_ptr<LinkCodec> client(LinkCodecHandler& handler, const std::string& host,
                                             const LinkCodecConfig& config,
                                             LinkCodecClock::time_point now);
    // The accepting node.
    static std::unique_ptr<LinkCodec> server(LinkCodecHandler& handler,
                                             const LinkCodecConfig& config,
                                             LinkCodecClock::time_point now);

    ~LinkCodec();
    LinkCodec(const LinkCodec&) = delete;
    LinkCodec& operator=(const LinkCodec&) = delete;

    // Bytes read from the peer.
    void feed(const char* data, std::size_t len);
    // Queues one frame (no '\n' in it); false if the link is not open or
    // closing, or the queue is full (maxQueuedBytes).
    bool sendFrame(std::string frame);
    // Everything to write now: the upgrade request or answer, queued frames
    // packed into messages, pongs, close frames. Empty if nothing.
    std::string takeBytes();
    bool wantsWrite() const;
    // Starts the close handshake (1000 unless told); frames queued before
    // it go out first. Before the upgrade is done there is no WebSocket to
    // close: the codec just ends (Closed) and the transport drops the
    // connection.
    void close(int code = 1000, std::string_view reason = {});
    // The peer proved who it is: the larger message limit, no deadline.
    void setProven();
    bool proven() const { return proven_; }
    // The handshake deadline (to setProven()) has passed.
    bool expired(LinkCodecClock::time_point now) const;

    State state() const { return state_; }
    Role role() const { return role_; }
    // The link is over for the protocol: once the bytes taken are written,
    // the transport closes the connection.
    bool finished() const { return state_ == State::Closed || state_ == State::Failed; }
    // Bytes of the peer's input held (the head being read, the message
    // being reassembled), and of output not yet taken.
    std::size_t inputBuffered() const;
    std::size_t outputBuffered() const { return queuedBytes_ + out_.size(); }

    // libwslay's callbacks; public so the C callbacks can reach them.
    long wslayRecv(unsigned char* buf, std::size_t len);
    void wslaySend(const unsigned char* data, std::size_t len);
    void wslayMessage(int opcode, const unsigned char* msg, std::size_t len, int statusCode);

private:
    LinkCodec(LinkCodecHandler& handler, Role role, const LinkCodecConfig& config,
              LinkCodecClock::time_point now);
    void open(const char* rest, std::size_t len);
    void feedFrames(const char* data, std::size_t len);
    void fail(std::string reason);
    void failFraming(int code, std::string reason);
    void deliver(std::string_view message);
    void packOutbox();

    LinkCodecHandler* handler_;
    Role role_;
    LinkCodecConfig config_;
    LinkCodecClock::time_point started_;
    State state_ = State::Upgrading;
    bool proven_ = false;

    std::unique_ptr<LinkUpgradeClient> upgradeClient_;
    std::unique_ptr<LinkUpgradeServer> upgradeServer_;
    FrameHeaderGate gate_;
    wslay_event_context* ws_ = nullptr;

    // The bytes wslayRecv() hands to libwslay during one feed().
    const unsigned char* input_ = nullptr;
    std::size_t inputLeft_ = 0;

    std::deque<std::string> outbox_;
    std::size_t queuedBytes_ = 0;
    std::string out_;
};

// The cap on inbound links whose peer has not proven itself, one per link
// service: a link takes a place when accepted and gives it back when proven
// or gone. Not thread-safe: the transport's thread only.
class UnprovenLinkCap {
public:
    explicit UnprovenLinkCap(std::size_t max) : max_(max) {}
    // Takes a place; false when all are taken (refuse the link).
    bool tryTake();
    void giveBack();
    std::size_t taken() const { return taken_; }
    std::size_t max() const { return max_; }

private:
    std::size_t max_;
    std::size_t taken_ = 0;
};

// Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2).
std::string webSocketAccept(std::string_view key);
// A fresh Sec-WebSocket-Key.
std::string newWebSocketKey();

}  // namespace dwrtc
