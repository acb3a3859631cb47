// JsonObjectReader: reads the few top-level fields of a JSON object that a
// wire format needs, in one pass over the text and without building a tree.
// Every message a node relays is parsed once on the sending node and once on
// the receiving one, so this is on the hot path. Safe from any thread; an
// instance is used by one thread at a time.
//
// The whole text is checked against RFC 8259 (the grammar, UTF-8, escapes,
// surrogate pairs, nesting up to kMaxDepth), so a text is accepted exactly
// when a strict JSON parser accepts it: integers must fit in 64 bits and
// reals in a double, strings may hold U+0000 (the core keeps lengths) but
// keys may not, and a raw NUL byte is never accepted.
//
// Duplicate keys are refused for the keys the caller asks for, so that two
// "type" fields cannot mean different things to different readers; other
// keys, and keys inside nested values, are skipped unchecked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace dwrtc {

class JsonObjectReader {
public:
    enum class Status { Ok, NotJson, NotObject, DuplicateKey };
    enum class Kind { Absent, String, Integer, Other };

    static constexpr std::size_t kMaxFields = 16;
    static constexpr std::size_t kMaxDepth = 2048;

    // The keys to look for, at most kMaxFields, in the order later calls
    // name them by index. Keys are plain ASCII without escapes.
    JsonObjectReader(std::initializer_list<std::string_view> keys);

    // Reads text; the reader keeps views into it, so text must outlive the
    // calls below.
    Status read(std::string_view text);

    Kind kind(std::size_t field) const { return fields_[field].kind; }
    // The decoded value of a String field (escapes resolved).
    std::string string(std::size_t field) const;
    // Appends the decoded value of a String field to out.
    void appendString(std::size_t field, std::string& out) const;
    // The value of an Integer field.
    std::int64_t integer(std::size_t field) const { return fields_[field].integer; }
    // The text of a present field's value as it stands in the JSON (a
    // string with its quotes and escapes, an object with its braces), for
    // passing a value on untouched.
    std::string_view rawValue(std::size_t field) const { return fields_[field].value; }

private:
    struct Field {
        std::string_view key;
        Kind kind = Kind::Absent;
        std::string_view raw;  // a String's characters between the quotes
        bool escaped = false;  // raw holds a backslash
        std::int64_t integer = 0;
        std::string_view value;  // the whole value's text
    };

    // Parsers over text_ at pos_; false means the text is not JSON.
    bool skipWhitespace();
    bool readValue(Field* into, std::size_t base);
    bool readString(std::string_view& raw, bool& escaped, bool key);
    bool readNumber(Field* into);
    bool readLiteral(std::string_view word);
    bool readKey(std::string_view& key, bool& escaped);
    bool readTopObject(Status& status);
    static void decode(std::string_view raw, bool escaped, std::string& out);

    Field fields_[kMaxFields];
    std::size_t count_ = 0;
    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace dwrtc
