// libFuzzer target: what a peer sends on a node link, to the link codec
// (link_codec.h) in either role. The first byte chooses the role, whether
// the upgrade is done first with valid bytes (so the rest reaches the
// framing), whether the peer is proven, whether frames are echoed back, and
// the size of the pieces the rest is fed in. Whatever comes, the codec does
// not crash, holds no more input than its limits allow, reports events in a
// possible order (open first and once, nothing after the end), hands over
// only non-empty frames without a newline within the message limit, and
// says why when it fails.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "link_codec.h"

namespace {

class Checker : public dwrtc::LinkCodecHandler {
public:
    void onOpen() override {
        FUZZ_CHECK(!opened && !ended, "open twice or after the end");
        opened = true;
    }
    void onFrame(std::string_view frame) override {
        FUZZ_CHECK(opened && !ended, "a frame outside an open link");
        FUZZ_CHECK(!frame.empty(), "an empty frame");
        FUZZ_CHECK(frame.find('\n') == std::string_view::npos, "a frame with a newline");
        FUZZ_CHECK(frame.size() <= limit, "a frame over the message limit");
        if (echo && codec) {
            codec->sendFrame(std::string(frame));
        }
    }
    void onMessageEnd() override { FUZZ_CHECK(opened && !ended, "a message end outside a link"); }
    void onClosed(int code, std::string_view reason) override {
        FUZZ_CHECK(opened && !ended, "closed twice");
        FUZZ_CHECK(code >= 1000 && code <= 4999, "a close code out of range");
        FUZZ_CHECK(reason.size() <= 123, "a close reason over 123 bytes");
        ended = true;
    }
    void onFailed(std::string_view reason) override {
        FUZZ_CHECK(!ended, "failed after the end");
        FUZZ_CHECK(!reason.empty(), "failed without a reason");
        ended = true;
    }

    dwrtc::LinkCodec* codec = nullptr;
    bool opened = false;
    bool ended = false;
    bool echo = false;
    std::size_t limit = 0;
};

const dwrtc::LinkCodecClock::time_point kNow{};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    std::uint8_t flags = data[0];
    bool server = flags & 1;
    bool upgradeFirst = flags & 2;
    bool proven = flags & 4;
    std::size_t chunk = 1 + ((flags >> 3) & 7) * ((flags >> 3) & 7) * 37;  // 1 .. 1814
    const char* rest = reinterpret_cast<const char*>(data + 1);
    std::size_t restSize = size - 1;

    dwrtc::LinkCodecConfig config;
    config.messageLimit = 64 * 1024;  // small enough for the fuzzer to reach
    Checker checker;
    checker.echo = flags & 0x40;
    checker.limit = config.unprovenMessageLimit;
    auto codec = server ? dwrtc::LinkCodec::server(checker, config, kNow)
                        : dwrtc::LinkCodec::client(checker, "127.0.0.1", config, kNow);
    checker.codec = codec.get();

    if (upgradeFirst) {
        // The other side's real upgrade bytes, made by a codec of the other
        // role.
        Checker other;
        auto peer = server ? dwrtc::LinkCodec::client(other, "127.0.0.1", config, kNow)
                           : dwrtc::LinkCodec::server(other, config, kNow);
        if (!server) {
            std::string request = codec->takeBytes();
            peer->feed(request.data(), request.size());
        }
        std::string upgrade = peer->takeBytes();
        codec->feed(upgrade.data(), upgrade.size());
        FUZZ_CHECK(codec->state() == dwrtc::LinkCodec::State::Open, "a valid upgrade refused");
    }
    if (proven) {
        codec->setProven();
        checker.limit = config.messageLimit;
    }

    for (std::size_t at = 0; at < restSize; at += chunk) {
        std::size_t n = restSize - at < chunk ? restSize - at : chunk;
        codec->feed(rest + at, n);
        std::size_t bound = config.maxHeaderBytes + checker.limit;
        FUZZ_CHECK(codec->inputBuffered() <= bound, "more input held than the limits allow");
        codec->takeBytes();
        FUZZ_CHECK(codec->outputBuffered() == 0, "output left after taking it");
        if (at / chunk == 2 && (flags & 0x80) && !codec->finished()) {
            codec->close(1000, "fuzz");
        }
    }
    FUZZ_CHECK(
        !codec->finished() || checker.ended || codec->state() == dwrtc::LinkCodec::State::Closed,
        "finished without saying so");
    return 0;
}
