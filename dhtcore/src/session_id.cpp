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
        throw std::invalid_argument("a node prefix needs at least 6 bytes");
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
        throw std::invalid_argument("malformed node prefix");
    }
    // 19 random nibbles (76 bits) of which 74 are used: the variant nibble
    // keeps only its low two bits.
    std::uint8_t random[10];
    fillRandom(random, sizeof random);
    std::size_t nibble = 0;
    auto next = [&]() -> unsigned {
        unsigned byte = random[nibble / 2];
        unsigned v = (nibble % 2 == 0) ? (byte >> 4) : (byte & 0x0f);
        ++nibble;
        return v;
    };

    std::string id;
    id.reserve(kSessionIdLength);
    id.append(nodePrefix.substr(0, 8));
    id.push_back('-');
    id.append(nodePrefix.substr(8, 4));
    id.push_back('-');
    id.push_back('4');
    for (int i = 0; i < 3; ++i) {
        id.push_back(kHexDigits[next()]);
    }
    id.push_back('-');
    id.push_back(kHexDigits[0x8 | (next() & 0x3)]);
    for (int i = 0; i < 3; ++i) {
        id.push_back(kHexDigits[next()]);
    }
    id.push_back('-');
    for (int i = 0; i < 12; ++i) {
        id.push_back(kHexDigits[next()]);
    }
    return id;
}

bool isValidSessionId(std::string_view id) {
    if (id.size() != kSessionIdLength) {
        return false;
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? id[i] != '-' : !isHex(id[i])) {
            return false;
        }
    }
    if (id[14] != '4') {
        return false;
    }
    char variant = toLowerAscii(id[19]);
    return variant == '8' || variant == '9' || variant == 'a' || variant == 'b';
}

std::string canonicalSessionId(std::string_view id) {
    std::string out(id);
    canonicalizeSessionId(out);
    return out;
}

void canonicalizeSessionId(std::string& id) {
    for (char& c : id) {
        c = toLowerAscii(c);
    }
}

std::string nodePrefixOf(std::string_view sessionId) {
    if (!isValidSessionId(sessionId)) {
        return std::string();
    }
    std::string out;
    out.reserve(kNodePrefixLength);
    for (char c : sessionId.substr(0, 8)) {
        out.push_back(toLowerAscii(c));
    }
    for (char c : sessionId.substr(9, 4)) {
        out.push_back(toLowerAscii(c));
    }
    return out;
}

std::string nodePrefixOfCanonical(std::string_view id) {
    std::string out;
    out.reserve(kNodePrefixLength);
    out.append(id.substr(0, 8));
    out.append(id.substr(9, 4));
    return out;
}

}  // namespace dwrtc
