#include "link_codec.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace dwrtc {

namespace {

constexpr std::string_view kSubprotocol = "dwrtc-link";
// RFC 6455 section 1.3.
constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// A close frame's reason: 125 bytes of payload less the code.
constexpr std::size_t kMaxCloseReason = 123;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsNoCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// A comma-separated list (Connection, Upgrade, Sec-WebSocket-Protocol)
// holds this token.
bool listHas(const std::string* value, std::string_view token) {
    if (!value) {
        return false;
    }
    std::string_view rest(*value);
    while (true) {
        std::size_t comma = rest.find(',');
        if (equalsNoCase(trim(rest.substr(0, comma)), token)) {
            return true;
        }
        if (comma == std::string_view::npos) {
            return false;
        }
        rest.remove_prefix(comma + 1);
    }
}

bool isTokenChar(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isBase64Char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' ||
           c == '/';
}

// A Sec-WebSocket-Key is base64 of 16 bytes: 22 characters and "==".
bool isWebSocketKey(std::string_view key) {
    if (key.size() != 24 || key.substr(22) != "==") {
        return false;
    }
    return std::all_of(key.begin(), key.begin() + 22, isBase64Char);
}

std::string base64(const unsigned char* data, std::size_t len) {
    std::string out(4 * ((len + 2) / 3), '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

// The three digits of "HTTP/1.1 NNN reason", or "" if it is not one.
std::string statusOf(const std::string& line) {
    if (line.size() < 12 || line.compare(0, 9, "HTTP/1.1 ") != 0 ||
        (line.size() > 12 && line[12] != ' ')) {
        return {};
    }
    std::string code = line.substr(9, 3);
    for (char c : code) {
        if (c < '0' || c > '9') {
            return {};
        }
    }
    return code;
}

ssize_t onWslayRecv(wslay_event_context_ptr ctx, std::uint8_t* buf, std::size_t len, int,
                    void* user) {
    long n = static_cast<LinkCodec*>(user)->wslayRecv(buf, len);
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

ssize_t onWslaySend(wslay_event_context_ptr, const std::uint8_t* data, std::size_t len, int,
                    void* user) {
    static_cast<LinkCodec*>(user)->wslaySend(data, len);
    return static_cast<ssize_t>(len);
}

int onWslayMask(wslay_event_context_ptr ctx, std::uint8_t* buf, std::size_t len, void*) {
    if (RAND_bytes(buf, static_cast<int>(len)) != 1) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

void onWslayMessage(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
    static_cast<LinkCodec*>(user)->wslayMessage(arg->opcode, arg->msg, arg->msg_length,
                                                arg->status_code);
}

const wslay_event_callbacks kWslayCallbacks = {
    onWslayRecv, onWslaySend, onWslayMask, nullptr, nullptr, nullptr, onWslayMessage,
};

}  // namespace

std::string webSocketAccept(std::string_view key) {
    std::string text(key);
    text += kAcceptGuid;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha1(), nullptr) != 1) {
        throw std::runtime_error("SHA-1 failed");
    }
    return base64(digest, len);
}

std::string newWebSocketKey() {
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        throw std::runtime_error("no random bytes for a WebSocket key");
    }
    return base64(nonce, sizeof nonce);
}

// ---- HttpHeadReader

HttpHeadReader::Status HttpHeadReader::feed(const char* data, std::size_t len, std::size_t& used) {
    used = 0;
    std::size_t old = buffer_.size();
    std::size_t take = std::min(len, maxBytes_ - std::min(old, maxBytes_));
    buffer_.append(data, take);
    std::size_t end = buffer_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos) {
        used = take;
        if (buffer_.size() >= maxBytes_) {
            error_ = "an HTTP header of more than " + std::to_string(maxBytes_) + " bytes";
            buffer_.clear();
            return Status::Refused;
        }
        return Status::NeedMore;
    }
    end += 4;
    used = end - old;
    buffer_.resize(end);
    Status status = parse();
    // The head is read: its bytes are not held any longer.
    std::string().swap(buffer_);
    return status;
}

HttpHeadReader::Status HttpHeadReader::parse() {
    std::string_view rest(buffer_);
    bool first = true;
    while (!rest.empty()) {
        std::size_t eol = rest.find("\r\n");
        std::string_view line = rest.substr(0, eol);
        rest.remove_prefix(eol + 2);
        if (line.find_first_of("\r\n") != std::string_view::npos) {
            error_ = "a stray CR or LF in the HTTP header";
            return Status::Refused;
        }
        if (first) {
            startLine_ = std::string(line);
            first = false;
            continue;
        }
        if (line.empty()) {
            break;  // the blank line that ends the head
        }
        if (line.front() == ' ' || line.front() == '\t') {
            error_ = "a folded HTTP header line";
            return Status::Refused;
        }
        std::size_t colon = line.find(':');
        std::string_view name = line.substr(0, colon);
        if (colon == std::string_view::npos || name.empty() ||
            !std::all_of(name.begin(), name.end(), isTokenChar)) {
            error_ = "a malformed HTTP header line";
            return Status::Refused;
        }
        if (fields_.size() >= maxFields_) {
            error_ = "more than " + std::to_string(maxFields_) + " HTTP header fields";
            return Status::Refused;
        }
        fields_.emplace_back(std::string(name), std::string(trim(line.substr(colon + 1))));
    }
    return Status::Done;
}

const std::string* HttpHeadReader::field(std::string_view name) const {
    for (const auto& f : fields_) {
        if (equalsNoCase(f.first, name)) {
            return &f.second;
        }
    }
    return nullptr;
}

std::size_t HttpHeadReader::count(std::string_view name) const {
    return static_cast<std::size_t>(
        std::count_if(fields_.begin(), fields_.end(),
                      [&](const auto& f) { return equalsNoCase(f.first, name); }));
}

// ---- LinkUpgradeClient

LinkUpgradeClient::LinkUpgradeClient(std::string host, std::string path, std::string key,
                                     const LinkCodecConfig& config)
    : host_(std::move(host)),
      path_(std::move(path)),
      key_(std::move(key)),
      reader_(config.maxHeaderBytes, config.maxHeaderFields) {}

// What LinkService's libwebsockets client sends, less what the server side
// ignores (Origin, Pragma, Cache-Control).
std::string LinkUpgradeClient::request() const {
    std::string r;
    r.reserve(256);
    r += "GET " + path_ + " HTTP/1.1\r\n";
    r += "Host: " + host_ + "\r\n";
    r += "Upgrade: websocket\r\n";
    r += "Connection: Upgrade\r\n";
    r += "Sec-WebSocket-Key: " + key_ + "\r\n";
    r += "Sec-WebSocket-Protocol: ";
    r += kSubprotocol;
    r += "\r\n";
    r += "Sec-WebSocket-Version: 13\r\n\r\n";
    return r;
}

HttpHeadReader::Status LinkUpgradeClient::feed(const char* data, std::size_t len,
                                               std::size_t& used) {
    auto status = reader_.feed(data, len, used);
    if (status == HttpHeadReader::Status::Refused) {
        error_ = "the upgrade answer has " + reader_.error();
    } else if (status == HttpHeadReader::Status::Done) {
        error_ = check();
        if (!error_.empty()) {
            status = HttpHeadReader::Status::Refused;
        }
    }
    return status;
}

std::string LinkUpgradeClient::check() const {
    std::string status = statusOf(reader_.startLine());
    if (status.empty()) {
        return "the upgrade answer is not HTTP/1.1";
    }
    if (status != "101") {
        return "the upgrade was answered with HTTP status " + status;
    }
    if (!listHas(reader_.field("Upgrade"), "websocket")) {
        return "the upgrade answer has no Upgrade: websocket";
    }
    if (!listHas(reader_.field("Connection"), "upgrade")) {
        return "the upgrade answer has no Connection: upgrade";
    }
    const std::string* accept = reader_.field("Sec-WebSocket-Accept");
    if (!accept || reader_.count("Sec-WebSocket-Accept") != 1 || *accept != webSocketAccept(key_)) {
        return "the upgrade answer's Sec-WebSocket-Accept does not match the key";
    }
    const std::string* protocol = reader_.field("Sec-WebSocket-Protocol");
    if (!protocol || reader_.count("Sec-WebSocket-Protocol") != 1 || *protocol != kSubprotocol) {
        return "the upgrade answer does not choose the dwrtc-link subprotocol";
    }
    if (reader_.field("Sec-WebSocket-Extensions")) {
        return "the upgrade answer turns on an extension no one asked for";
    }
    return {};
}

// ---- LinkUpgradeServer

LinkUpgradeServer::LinkUpgradeServer(const LinkCodecConfig& config)
    : reader_(config.maxHeaderBytes, config.maxHeaderFields) {}

HttpHeadReader::Status LinkUpgradeServer::feed(const char* data, std::size_t len,
                                               std::size_t& used) {
    auto status = reader_.feed(data, len, used);
    if (status == HttpHeadReader::Status::Refused) {
        error_ = "the upgrade request has " + reader_.error();
    } else if (status == HttpHeadReader::Status::Done) {
        error_ = check();
        if (!error_.empty()) {
            status = HttpHeadReader::Status::Refused;
        }
    }
    return status;
}

std::string LinkUpgradeServer::check() {
    const std::string& line = reader_.startLine();
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos ||
        line.compare(sp2 + 1, std::string::npos, "HTTP/1.1") != 0) {
        return "the upgrade request is not an HTTP/1.1 request line";
    }
    if (line.compare(0, sp1, "GET") != 0) {
        return "the upgrade request's method is not GET";
    }
    if (sp2 == sp1 + 1 || line[sp1 + 1] != '/') {
        return "the upgrade request's target is not a path";
    }
    if (reader_.count("Host") != 1) {
        return "the upgrade request has no single Host";
    }
    if (!listHas(reader_.field("Upgrade"), "websocket")) {
        return "the upgrade request has no Upgrade: websocket";
    }
    if (!listHas(reader_.field("Connection"), "upgrade")) {
        return "the upgrade request has no Connection: upgrade";
    }
    const std::string* version = reader_.field("Sec-WebSocket-Version");
    if (!version || reader_.count("Sec-WebSocket-Version") != 1 || *version != "13") {
        return "the upgrade request is not for WebSocket version 13";
    }
    const std::string* key = reader_.field("Sec-WebSocket-Key");
    if (!key || reader_.count("Sec-WebSocket-Key") != 1 || !isWebSocketKey(*key)) {
        return "the upgrade request has no valid Sec-WebSocket-Key";
    }
    if (!listHas(reader_.field("Sec-WebSocket-Protocol"), kSubprotocol)) {
        return "the upgrade request does not ask for the dwrtc-link subprotocol";
    }
    accept_ = webSocketAccept(*key);
    return {};
}

std::string LinkUpgradeServer::answer() const {
    if (!error_.empty() || accept_.empty()) {
        // The version header tells a client of another WebSocket version
        // which one to speak (RFC 6455 section 4.4).
        return "HTTP/1.1 400 Bad Request\r\n"
               "Connection: close\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Content-Length: 0\r\n\r\n";
    }
    std::string a;
    a.reserve(160);
    a += "HTTP/1.1 101 Switching Protocols\r\n";
    a += "Upgrade: websocket\r\n";
    a += "Connection: Upgrade\r\n";
    a += "Sec-WebSocket-Accept: " + accept_ + "\r\n";
    a += "Sec-WebSocket-Protocol: ";
    a += kSubprotocol;
    a += "\r\n\r\n";
    return a;
}

// ---- FrameHeaderGate

std::size_t FrameHeaderGate::scan(const unsigned char* data, std::size_t len) {
    if (refused()) {
        return 0;
    }
    std::size_t i = 0;
    while (i < len) {
        if (payloadLeft_ > 0) {
            std::uint64_t skip = std::min<std::uint64_t>(payloadLeft_, len - i);
            payloadLeft_ -= skip;
            i += static_cast<std::size_t>(skip);
            continue;
        }
        header_[headerHave_++] = data[i];
        if (headerHave_ == 2) {
            std::size_t lengthBytes = (header_[1] & 0x7f) == 126   ? 2
                                      : (header_[1] & 0x7f) == 127 ? 8
                                                                   : 0;
            lengthEnd_ = 2 + lengthBytes;
            headerNeed_ = lengthEnd_ + ((header_[1] & 0x80) ? 4 : 0);
        }
        // Checked once the length is in, before the mask key: the parser
        // behind checks the length field's form there too.
        if (headerHave_ == lengthEnd_) {
            checkHeader();
            if (refused()) {
                // The byte that completed a refused length is not handed
                // on, so the parser behind never sees it whole.
                return i;
            }
        }
        ++i;
        if (headerHave_ == headerNeed_) {
            payloadLeft_ = declared_;
            headerHave_ = 0;
            headerNeed_ = 2;
            lengthEnd_ = 2;
        }
    }
    return len;
}

void FrameHeaderGate::checkHeader() {
    unsigned opcode = header_[0] & 0x0f;
    bool fin = (header_[0] & 0x80) != 0;
    bool masked = (header_[1] & 0x80) != 0;
    std::uint64_t length = header_[1] & 0x7f;
    if (length >= 126) {
        std::size_t bytes = length == 126 ? 2 : 8;
        length = 0;
        for (std::size_t k = 0; k < bytes; ++k) {
            length = (length << 8) | header_[2 + k];
        }
    }
    if (masked != requireMasked_) {
        refusedCode_ = WSLAY_CODE_PROTOCOL_ERROR;
        refusedReason_ = requireMasked_ ? "an unmasked frame from the connecting node"
                                        : "a masked frame from the accepting node";
        return;
    }
    if (opcode == WSLAY_BINARY_FRAME) {
        refusedCode_ = WSLAY_CODE_UNSUPPORTED_DATA;
        refusedReason_ = "a binary message (links carry text)";
        return;
    }
    if (opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_CONTINUATION_FRAME) {
        if (opcode == WSLAY_TEXT_FRAME && !inMessage_) {
            messageLength_ = 0;
        }
        // Compared so that a declared length near 2^64 cannot wrap.
        if (length > limit_ || messageLength_ > limit_ - length) {
            refusedCode_ = WSLAY_CODE_MESSAGE_TOO_BIG;
            refusedReason_ = "a message of more than " + std::to_string(limit_) + " bytes";
            return;
        }
        // Kept after the last frame, until the next message starts: the
        // reassembled message is held until its last byte is there.
        messageLength_ += length;
        inMessage_ = !fin;
    }
    // Control frames are small by rule (125 bytes); libwslay checks that.
    declared_ = length;
}

// ---- LinkCodec

LinkCodec::LinkCodec(LinkCodecHandler& handler, Role role, const LinkCodecConfig& config,
                     LinkCodecClock::time_point now)
    : handler_(&handler), role_(role), config_(config), started_(now), gate_(role == Role::Server) {
    gate_.setLimit(config_.unprovenMessageLimit);
}

std::unique_ptr<LinkCodec> LinkCodec::client(LinkCodecHandler& handler, const std::string& host,
                                             const LinkCodecConfig& config,
                                             LinkCodecClock::time_point now) {
    std::unique_ptr<LinkCodec> codec(new LinkCodec(handler, Role::Client, config, now));
    codec->upgradeClient_ =
        std::make_unique<LinkUpgradeClient>(host, "/", newWebSocketKey(), config);
    codec->out_ = codec->upgradeClient_->request();
    return codec;
}

std::unique_ptr<LinkCodec> LinkCodec::server(LinkCodecHandler& handler,
                                             const LinkCodecConfig& config,
                                             LinkCodecClock::time_point now) {
    std::unique_ptr<LinkCodec> codec(new LinkCodec(handler, Role::Server, config, now));
    codec->upgradeServer_ = std::make_unique<LinkUpgradeServer>(config);
    return codec;
}

LinkCodec::~LinkCodec() {
    if (ws_) {
        wslay_event_context_free(ws_);
    }
}

void LinkCodec::feed(const char* data, std::size_t len) {
    if (state_ == State::Open || state_ == State::Closing) {
        feedFrames(data, len);
        return;
    }
    if (state_ != State::Upgrading || len == 0) {
        return;  // the link is over: what the peer still sends counts for nothing
    }
    std::size_t used = 0;
    HttpHeadReader::Status status;
    if (role_ == Role::Client) {
        status = upgradeClient_->feed(data, len, used);
    } else {
        status = upgradeServer_->feed(data, len, used);
    }
    if (status == HttpHeadReader::Status::NeedMore) {
        return;
    }
    if (status == HttpHeadReader::Status::Refused) {
        if (role_ == Role::Server) {
            out_ += upgradeServer_->answer();
            fail(upgradeServer_->error());
        } else {
            fail(upgradeClient_->error());
        }
        return;
    }
    if (role_ == Role::Server) {
        out_ += upgradeServer_->answer();
    }
    open(data + used, len - used);
}

void LinkCodec::open(const char* rest, std::size_t len) {
    upgradeClient_.reset();
    upgradeServer_.reset();
    int rc = role_ == Role::Client ? wslay_event_context_client_init(&ws_, &kWslayCallbacks, this)
                                   : wslay_event_context_server_init(&ws_, &kWslayCallbacks, this);
    if (rc != 0) {
        ws_ = nullptr;
        fail("out of memory for the WebSocket parser");
        return;
    }
    std::size_t limit = proven_ ? config_.messageLimit : config_.unprovenMessageLimit;
    wslay_event_config_set_max_recv_msg_length(ws_, limit);
    state_ = State::Open;
    handler_->onOpen();
    if (len > 0 && (state_ == State::Open || state_ == State::Closing)) {
        feedFrames(rest, len);
    }
}

void LinkCodec::feedFrames(const char* data, std::size_t len) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(data);
    std::size_t passed = gate_.scan(bytes, len);
    input_ = bytes;
    inputLeft_ = passed;
    int rc = wslay_event_recv(ws_);
    input_ = nullptr;
    inputLeft_ = 0;
    if (state_ == State::Failed || state_ == State::Closed) {
        return;
    }
    if (rc == WSLAY_ERR_CALLBACK_FAILURE) {
        // A frame header libwslay cannot read (a control frame of more than
        // 125 bytes, a length not in its shortest form); it queued a close.
        failFraming(0, "a frame header that breaks RFC 6455");
        return;
    }
    if (rc != 0) {
        fail("the WebSocket parser failed (" + std::to_string(rc) + ")");
        return;
    }
    if (gate_.refused()) {
        // Said as LinkService says it: a stranger's message too big for an
        // unproven link is a different story from a node's too big for any.
        if (gate_.refusedCode() == WSLAY_CODE_MESSAGE_TOO_BIG && !proven_) {
            failFraming(gate_.refusedCode(), gate_.refusedReason() + " before its hello");
        } else {
            failFraming(gate_.refusedCode(), gate_.refusedReason());
        }
        return;
    }
    // libwslay stops reading after a fault of its own finding, with its
    // close frame queued; a close from the peer also stops it, but that was
    // reported in wslayMessage().
    if (!wslay_event_get_read_enabled(ws_) && !wslay_event_get_close_received(ws_)) {
        failFraming(0, "a frame that breaks RFC 6455 (closed with " +
                           std::to_string(wslay_event_get_status_code_sent(ws_)) + ")");
    }
}

long LinkCodec::wslayRecv(unsigned char* buf, std::size_t len) {
    std::size_t n = std::min(len, inputLeft_);
    if (n > 0) {
        std::memcpy(buf, input_, n);
        input_ += n;
        inputLeft_ -= n;
    }
    return static_cast<long>(n);
}

void LinkCodec::wslaySend(const unsigned char* data, std::size_t len) {
    out_.append(reinterpret_cast<const char*>(data), len);
}

void LinkCodec::wslayMessage(int opcode, const unsigned char* msg, std::size_t len,
                             int statusCode) {
    if (opcode == WSLAY_TEXT_FRAME) {
        if (state_ == State::Open) {
            deliver(std::string_view(reinterpret_cast<const char*>(msg), len));
        }
        return;
    }
    if (opcode != WSLAY_CONNECTION_CLOSE) {
        return;  // pings are answered by libwslay, pongs need nothing
    }
    // libwslay has queued the answering close, if ours was not sent yet.
    // Frames still queued will not go out: the router learns of the close
    // and answers for what the peer did not acknowledge.
    state_ = State::Closed;
    outbox_.clear();
    queuedBytes_ = 0;
    std::string_view reason;
    if (len > 2) {
        reason = std::string_view(reinterpret_cast<const char*>(msg) + 2, len - 2);
    }
    handler_->onClosed(statusCode == 0 ? WSLAY_CODE_NO_STATUS_RCVD : statusCode, reason);
}

void LinkCodec::deliver(std::string_view message) {
    std::size_t start = 0;
    while (start <= message.size()) {
        std::size_t end = message.find('\n', start);
        if (end == std::string_view::npos) {
            end = message.size();
        }
        if (end > start) {
            handler_->onFrame(message.substr(start, end - start));
            // The handler may have closed the link on that frame: what
            // follows it in the message is not read.
            if (state_ != State::Open) {
                return;
            }
        }
        start = end + 1;
    }
    handler_->onMessageEnd();
}

void LinkCodec::fail(std::string reason) {
    state_ = State::Failed;
    outbox_.clear();
    queuedBytes_ = 0;
    handler_->onFailed(reason);
}

void LinkCodec::failFraming(int code, std::string reason) {
    if (code != 0) {
        std::string_view text(reason);
        text = text.substr(0, std::min(text.size(), kMaxCloseReason));
        wslay_event_queue_close(ws_, static_cast<std::uint16_t>(code),
                                reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    }
    wslay_event_shutdown_read(ws_);
    fail(std::move(reason));
}

bool LinkCodec::sendFrame(std::string frame) {
    if (state_ != State::Upgrading && state_ != State::Open) {
        return false;
    }
    if (outputBuffered() + frame.size() + 1 > config_.maxQueuedBytes) {
        return false;
    }
    queuedBytes_ += frame.size() + 1;
    outbox_.push_back(std::move(frame));
    return true;
}

// Queued frames go out newline-separated, several to a message (compact
// JSON never holds a raw newline): one message, one header, one write.
void LinkCodec::packOutbox() {
    std::string message;
    while (!outbox_.empty()) {
        message.clear();
        while (!outbox_.empty()) {
            const std::string& frame = outbox_.front();
            if (!message.empty() && message.size() + 1 + frame.size() > config_.writeBatch) {
                break;
            }
            if (!message.empty()) {
                message += '\n';
            }
            message += frame;
            queuedBytes_ -= frame.size() + 1;
            outbox_.pop_front();
        }
        wslay_event_msg msg{WSLAY_TEXT_FRAME, reinterpret_cast<const std::uint8_t*>(message.data()),
                            message.size()};
        if (wslay_event_queue_msg(ws_, &msg) != 0) {
            fail("out of memory for an outgoing WebSocket message");
            return;
        }
    }
}

std::string LinkCodec::takeBytes() {
    if (state_ == State::Open) {
        packOutbox();
    }
    if (ws_ && wslay_event_want_write(ws_)) {
        wslay_event_send(ws_);
    }
    std::string bytes;
    bytes.swap(out_);
    return bytes;
}

bool LinkCodec::wantsWrite() const {
    return !out_.empty() || (state_ == State::Open && !outbox_.empty()) ||
           (ws_ && wslay_event_want_write(ws_));
}

void LinkCodec::close(int code, std::string_view reason) {
    if (state_ == State::Upgrading) {
        // No WebSocket yet, so no close frame: the transport just ends it.
        state_ = State::Closed;
        outbox_.clear();
        queuedBytes_ = 0;
        return;
    }
    if (state_ != State::Open) {
        return;
    }
    // What was queued before the close goes out before it: libwslay sends
    // control frames ahead of queued messages, so they are written now.
    packOutbox();
    if (state_ != State::Open) {
        return;
    }
    if (wslay_event_want_write(ws_)) {
        wslay_event_send(ws_);
    }
    reason = reason.substr(0, std::min(reason.size(), kMaxCloseReason));
    wslay_event_queue_close(ws_, static_cast<std::uint16_t>(code),
                            reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
    state_ = State::Closing;
}

void LinkCodec::setProven() {
    proven_ = true;
    gate_.setLimit(config_.messageLimit);
    if (ws_) {
        wslay_event_config_set_max_recv_msg_length(ws_, config_.messageLimit);
    }
}

bool LinkCodec::expired(LinkCodecClock::time_point now) const {
    return !proven_ && !finished() && now - started_ > config_.handshakeTimeout;
}

std::size_t LinkCodec::inputBuffered() const {
    if (upgradeClient_) {
        return upgradeClient_->buffered();
    }
    if (upgradeServer_) {
        return upgradeServer_->buffered();
    }
    // libwslay holds the message being reassembled: at most what its
    // headers declared, which the gate keeps within the limit.
    return static_cast<std::size_t>(gate_.messageLength());
}

// ---- UnprovenLinkCap

bool UnprovenLinkCap::tryTake() {
    if (taken_ >= max_) {
        return false;
    }
    ++taken_;
    return true;
}

void UnprovenLinkCap::giveBack() {
    if (taken_ > 0) {
        --taken_;
    }
}

}  // namespace dwrtc
