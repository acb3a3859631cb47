#include "dwrtc/json_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "utf8.h"

namespace dwrtc {

namespace {

bool isWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Four hex digits at s[i..i+4), or -1.
long hex4(std::string_view s, std::size_t i) {
    if (i + 4 > s.size()) {
        return -1;
    }
    long v = 0;
    for (std::size_t k = i; k < i + 4; ++k) {
        int h = hexValue(s[k]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

void appendUtf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

}  // namespace

JsonObjectReader::JsonObjectReader(std::initializer_list<std::string_view> keys) {
    for (std::string_view k : keys) {
        if (count_ < kMaxFields) {
            fields_[count_++].key = k;
        }
    }
}

JsonObjectReader::Status JsonObjectReader::read(std::string_view text) {
    for (std::size_t i = 0; i < count_; ++i) {
        fields_[i].kind = Kind::Absent;
        fields_[i].raw = {};
        fields_[i].escaped = false;
        fields_[i].integer = 0;
    }
    text_ = text;
    pos_ = 0;

    Status status = Status::Ok;
    if (!skipWhitespace()) {
        return Status::NotJson;  // empty
    }
    if (text_[pos_] == '{') {
        if (!readTopObject(status)) {
            return status == Status::DuplicateKey ? status : Status::NotJson;
        }
    } else {
        if (!readValue(nullptr, 0)) {
            return Status::NotJson;
        }
        status = Status::NotObject;
    }
    // Nothing but whitespace may follow the value.
    if (skipWhitespace()) {
        return Status::NotJson;
    }
    return status;
}

// Skips whitespace; false at the end of the text.
bool JsonObjectReader::skipWhitespace() {
    while (pos_ < text_.size() && isWhitespace(text_[pos_])) {
        ++pos_;
    }
    return pos_ < text_.size();
}

bool JsonObjectReader::readTopObject(Status& status) {
    ++pos_;  // '{'
    if (!skipWhitespace()) {
        return false;
    }
    if (text_[pos_] == '}') {
        ++pos_;
        return true;
    }
    std::string decodedKey;
    for (;;) {
        std::string_view key;
        bool escaped = false;
        if (!readKey(key, escaped)) {
            return false;
        }
        if (escaped) {
            decodedKey.clear();
            decode(key, true, decodedKey);
            key = decodedKey;
        }
        Field* into = nullptr;
        for (std::size_t i = 0; i < count_; ++i) {
            if (fields_[i].key == key) {
                into = &fields_[i];
                break;
            }
        }
        if (into && into->kind != Kind::Absent) {
            status = Status::DuplicateKey;
            return false;
        }
        if (!skipWhitespace()) {
            return false;
        }
        std::size_t start = pos_;
        if (!readValue(into, 1)) {
            return false;
        }
        if (into) {
            into->value = text_.substr(start, pos_ - start);
        }
        if (!skipWhitespace()) {
            return false;
        }
        char c = text_[pos_++];
        if (c == '}') {
            return true;
        }
        if (c != ',') {
            return false;
        }
    }
}

// One value of any kind, inside `base` open containers (1 for a member of
// the top-level object). Containers are walked with an explicit stack of
// their closing brackets, so deep nesting cannot exhaust the thread's stack.
// `into` (may be null) is a top-level member that learns the value's kind.
bool JsonObjectReader::readValue(Field* into, std::size_t base) {
    char closers[kMaxDepth];
    std::size_t depth = base;
    bool first = true;      // the value itself, not something inside it
    bool wantValue = true;  // else a value just ended
    std::string_view nestedKey;  // keys of nested objects are not kept
    bool nestedEscaped = false;

    for (;;) {
        if (wantValue) {
            // Values nest at most kMaxDepth deep, scalars included.
            if (depth + 1 > kMaxDepth || !skipWhitespace()) {
                return false;
            }
            Field* member = first ? into : nullptr;
            first = false;
            char c = text_[pos_];
            if (member) {
                member->kind = Kind::Other;
            }
            if (c == '{' || c == '[') {
                closers[depth++] = (c == '{') ? '}' : ']';
                ++pos_;
                if (!skipWhitespace()) {
                    return false;
                }
                if (text_[pos_] == closers[depth - 1]) {
                    ++pos_;
                    --depth;
                    wantValue = false;
                } else if (c == '{' && !readKey(nestedKey, nestedEscaped)) {
                    return false;
                }
                continue;
            }
            if (c == '"') {
                std::string_view raw;
                bool escaped = false;
                if (!readString(raw, escaped, false)) {
                    return false;
                }
                if (member) {
                    member->kind = Kind::String;
                    member->raw = raw;
                    member->escaped = escaped;
                }
            } else if (c == '-' || isDigit(c)) {
                if (!readNumber(member)) {
                    return false;
                }
            } else if (!readLiteral("true") && !readLiteral("false") && !readLiteral("null")) {
                return false;
            }
            wantValue = false;
            continue;
        }

        // After a value: done at the level we started, else a separator or
        // the end of the enclosing container.
        if (depth == base) {
            return true;
        }
        if (!skipWhitespace()) {
            return false;
        }
        char c = text_[pos_];
        if (c == closers[depth - 1]) {
            ++pos_;
            --depth;
            continue;
        }
        if (c != ',') {
            return false;
        }
        ++pos_;
        if (closers[depth - 1] == '}' && !readKey(nestedKey, nestedEscaped)) {
            return false;
        }
        wantValue = true;
    }
}

// An object's key (its raw characters, and whether they hold escapes) and
// the colon after it.
bool JsonObjectReader::readKey(std::string_view& key, bool& escaped) {
    escaped = false;
    if (!skipWhitespace() || text_[pos_] != '"' || !readString(key, escaped, true) ||
        !skipWhitespace() || text_[pos_] != ':') {
        return false;
    }
    ++pos_;
    return true;
}

// A string at pos_ (on its opening quote). raw is what lies between the
// quotes; escaped says whether it holds escapes. Keys may not hold U+0000.
bool JsonObjectReader::readString(std::string_view& raw, bool& escaped, bool key) {
    std::size_t start = ++pos_;
    const std::size_t size = text_.size();
    while ((pos_ = plainJsonRun(text_, pos_)) < size) {
        unsigned char c = static_cast<unsigned char>(text_[pos_]);
        if (c == '"') {
            raw = text_.substr(start, pos_ - start);
            ++pos_;
            return true;
        }
        if (c == '\\') {
            escaped = true;
            if (++pos_ >= size) {
                return false;
            }
            char e = text_[pos_];
            if (e == 'u') {
                long cp = hex4(text_, pos_ + 1);
                if (cp < 0 || (cp == 0 && key) || (cp >= 0xdc00 && cp <= 0xdfff)) {
                    return false;
                }
                pos_ += 5;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    // A high surrogate must pair with a low one.
                    if (pos_ + 1 >= size || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
                        return false;
                    }
                    long low = hex4(text_, pos_ + 2);
                    if (low < 0xdc00 || low > 0xdfff) {
                        return false;
                    }
                    pos_ += 6;
                }
                continue;
            }
            switch (e) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                    ++pos_;
                    continue;
                default:
                    return false;
            }
        }
        if (c < 0x20) {
            return false;
        }
        std::size_t n = utf8SequenceLength(text_, pos_);
        if (n == 0) {
            return false;
        }
        pos_ += n;
    }
    return false;
}

// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. Integers must fit in 64
// bits and reals must not overflow a double, as strict parsers demand.
bool JsonObjectReader::readNumber(Field* into) {
    const std::size_t start = pos_;
    const std::size_t size = text_.size();
    bool negative = false;
    if (text_[pos_] == '-') {
        negative = true;
        ++pos_;
    }
    if (pos_ >= size || !isDigit(text_[pos_])) {
        return false;
    }
    std::uint64_t magnitude = 0;
    bool overflow = false;
    const std::uint64_t limit =
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1 : 0);
    if (text_[pos_] == '0') {
        ++pos_;
    } else {
        while (pos_ < size && isDigit(text_[pos_])) {
            unsigned d = static_cast<unsigned>(text_[pos_] - '0');
            if (magnitude > (limit - d) / 10) {
                overflow = true;
            } else {
                magnitude = magnitude * 10 + d;
            }
            ++pos_;
        }
    }
    bool real = false;
    if (pos_ < size && text_[pos_] == '.') {
        real = true;
        ++pos_;
        if (pos_ >= size || !isDigit(text_[pos_])) {
            return false;
        }
        while (pos_ < size && isDigit(text_[pos_])) {
            ++pos_;
        }
    }
    if (pos_ < size && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
        real = true;
        ++pos_;
        if (pos_ < size && (text_[pos_] == '+' || text_[pos_] == '-')) {
            ++pos_;
        }
        if (pos_ >= size || !isDigit(text_[pos_])) {
            return false;
        }
        while (pos_ < size && isDigit(text_[pos_])) {
            ++pos_;
        }
    }
    if (real) {
        // Rare in signaling messages; a copy makes the text NUL-terminated.
        std::string copy(text_.substr(start, pos_ - start));
        errno = 0;
        double v = std::strtod(copy.c_str(), nullptr);
        if (std::isinf(v) && errno == ERANGE) {
            return false;
        }
        if (into) {
            into->kind = Kind::Other;
        }
        return true;
    }
    if (overflow) {
        return false;
    }
    if (into) {
        into->kind = Kind::Integer;
        into->integer = negative ? static_cast<std::int64_t>(0 - magnitude)
                                 : static_cast<std::int64_t>(magnitude);
    }
    return true;
}

bool JsonObjectReader::readLiteral(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) {
        return false;
    }
    pos_ += word.size();
    return true;
}

std::string JsonObjectReader::string(std::size_t field) const {
    std::string out;
    appendString(field, out);
    return out;
}

void JsonObjectReader::appendString(std::size_t field, std::string& out) const {
    decode(fields_[field].raw, fields_[field].escaped, out);
}

// Appends the characters of a string checked by readString (so every
// escape in it is complete and valid) with its escapes resolved.
void JsonObjectReader::decode(std::string_view s, bool escaped, std::string& out) {
    if (!escaped) {
        out.append(s);
        return;
    }
    out.reserve(out.size() + s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t run = s.find('\\', i);
        if (run == std::string_view::npos) {
            out.append(s.substr(i));
            return;
        }
        out.append(s.substr(i, run - i));
        char e = s[run + 1];
        i = run + 2;
        switch (e) {
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                unsigned long cp = static_cast<unsigned long>(hex4(s, i));
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned long low = static_cast<unsigned long>(hex4(s, i + 2));
                    i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                }
                appendUtf8(out, cp);
                break;
            }
            default: out.push_back(e); break;  // " \ /
        }
    }
}

}  // namespace dwrtc
