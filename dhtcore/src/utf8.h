// Character checks shared by the JSON reader and writer. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace dwrtc {

// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7:
// no overlongs, no surrogates, nothing above U+10FFFF), or 0 if there is
// none.
inline std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
    auto inRange = [&](std::size_t k, unsigned lo, unsigned hi) {
        return k < s.size() && byte(k) >= lo && byte(k) <= hi;
    };
    unsigned b = byte(i);
    if (b < 0x80) {
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        return inRange(i + 1, 0x80, 0xbf) ? 2 : 0;
    }
    if (b >= 0xe0 && b <= 0xef) {
        unsigned lo = (b == 0xe0) ? 0xa0 : 0x80;
        unsigned hi = (b == 0xed) ? 0x9f : 0xbf;
        return (inRange(i + 1, lo, hi) && inRange(i + 2, 0x80, 0xbf)) ? 3 : 0;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        unsigned lo = (b == 0xf0) ? 0x90 : 0x80;
        unsigned hi = (b == 0xf4) ? 0x8f : 0xbf;
        return (inRange(i + 1, lo, hi) && inRange(i + 2, 0x80, 0xbf) &&
                inRange(i + 3, 0x80, 0xbf))
                   ? 4
                   : 0;
    }
    return 0;
}

// The end of the run of bytes from s[i] on that a JSON string holds as they
// are: printable ASCII other than '"' and '\\'. Most of a signaling message
// is such a run, so it is scanned eight bytes at a time.
inline std::size_t plainJsonRun(std::string_view s, std::size_t i) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
    const std::size_t n = s.size();
    while (i + 8 <= n) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        // Each term sets a byte's high bit where the byte is special; they
        // are exact once no byte has its own high bit set, which the last
        // term checks.
        std::uint64_t control = (w - kOnes * 0x20) & ~w;
        std::uint64_t quote = w ^ (kOnes * '"');
        quote = (quote - kOnes) & ~quote;
        std::uint64_t backslash = w ^ (kOnes * '\\');
        backslash = (backslash - kOnes) & ~backslash;
        if ((control | quote | backslash | w) & kHighs) {
            break;
        }
        i += 8;
    }
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) {
            break;
        }
        ++i;
    }
    return i;
}

}  // namespace dwrtc
