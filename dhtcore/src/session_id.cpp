#include "dwrtc/session_id.h"

#include <sys/random.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace dwrtc {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

bool isHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char toLowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Fills buf from the kernel CSPRNG. getrandom may return short counts for
// large requests or be interrupted by a signal, so it loops.
void fillRandom(std::uint8_t* buf, std::size_t len) {
    std::size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

std::string nodePrefixFromBytes(const std::uint8_t* bytes, std::size_t len) {
    constexpr std::size_t kBytes = kNodePrefixLength / 2;
    if (bytes == nullptr || len < kBytes) {
        throw std::invalid_argument("a node id needs at least 16 bytes");
    }
    std::string out;
    out.reserve(kNodePrefixLength);
    for (std::size_t i = 0; i < kBytes; ++i) {
        out.push_back(kHexDigits[bytes[i] >> 4]);
        out.push_back(kHexDigits[bytes[i] & 0x0f]);
    }
    return out;
}

bool isValidNodePrefix(std::string_view prefix) {
    if (prefix.size() != kNodePrefixLength) {
        return false;
    }
    for (char c : prefix) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

std::string makeSessionId(std::string_view nodePrefix) {
    if (!isValidNodePrefix(nodePrefix)) {
        throw std::invalid_argument("malformed node id");
    }
    std::uint8_t random[kSessionRandomLength / 2];
    fillRandom(random, sizeof random);
    std::string id;
    id.reserve(kSessionIdLength);
    id.append(nodePrefix);
    id.push_back('-');
    for (std::uint8_t byte : random) {
        id.push_back(kHexDigits[byte >> 4]);
        id.push_back(kHexDigits[byte & 0x0f]);
    }
    return id;
}

std::string makePeerJsServerId() {
    std::uint8_t random[16];
    fillRandom(random, sizeof random);
    random[6] = static_cast<std::uint8_t>((random[6] & 0x0f) | 0x40);  // version 4
    random[8] = static_cast<std::uint8_t>((random[8] & 0x3f) | 0x80);  // RFC 4122 variant
    std::string id;
    id.reserve(kPeerJsServerIdLength);
    for (std::size_t i = 0; i < sizeof random; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            id.push_back('-');
        }
        id.push_back(kHexDigits[random[i] >> 4]);
        id.push_back(kHexDigits[random[i] & 0x0f]);
    }
    return id;
}

bool isPeerJsServerId(std::string_view id) {
    if (id.size() != kPeerJsServerIdLength) {
        return false;
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        char c = id[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool isOwnedId(std::string_view id) {
    if (id.size() != kOwnedIdLength || (id[0] != 'k' && id[0] != 'K')) {
        return false;
    }
    for (std::size_t i = 1; i < id.size(); ++i) {
        if (!isHex(id[i])) {
            return false;
        }
    }
    return true;
}

bool isValidSessionId(std::string_view id) { return isNodeSessionId(id) || isOwnedId(id); }

bool isNodeSessionId(std::string_view id) {
    if (id.size() != kSessionIdLength) {
        return false;
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        bool dash = i == kNodePrefixLength;
        if (dash ? id[i] != '-' : !isHex(id[i])) {
            return false;
        }
    }
    return true;
}

void canonicalizeSessionId(std::string& id) {
    for (char& c : id) {
        c = toLowerAscii(c);
    }
}

}  // namespace dwrtc
