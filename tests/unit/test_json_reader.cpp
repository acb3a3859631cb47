// JsonObjectReader against jansson: the reader must accept and refuse
// exactly the texts a strict JSON parser does, and read the same values.
#include "dwrtc/json_reader.h"

#include <gtest/gtest.h>
#include <jansson.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace dwrtc {
namespace {

using Status = JsonObjectReader::Status;
using Kind = JsonObjectReader::Kind;

struct JsonDeleter {
    void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

JsonPtr janssonLoad(const std::string& text, std::size_t extraFlags = 0) {
    json_error_t err;
    return JsonPtr(
        json_loadb(text.data(), text.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL | extraFlags, &err));
}

JsonObjectReader makeReader() { return JsonObjectReader{"type", "recipientSessionId", "v", "body"}; }
const char* const kKeys[] = {"type", "recipientSessionId", "v", "body"};

// Compares the reader with jansson on one text; returns a description of
// the first disagreement, or "" when they agree.
std::string disagreement(const std::string& text) {
    JsonObjectReader reader = makeReader();
    Status ours = reader.read(text);
    if (text.find('\0') != std::string::npos) {
        // RFC 8259 has no place for a raw NUL byte; jansson 2.14 skips some
        // of them, so here the grammar is the judge, not jansson.
        return (ours == Status::NotJson || ours == Status::DuplicateKey) ? "" : "reader accepts a raw NUL";
    }
    JsonPtr theirs = janssonLoad(text);
    if (!theirs) {
        if (ours == Status::NotJson || ours == Status::DuplicateKey) {
            return "";
        }
        return "jansson refuses, reader accepts";
    }
    if (!json_is_object(theirs.get())) {
        return ours == Status::NotObject ? "" : "jansson reads a non-object, reader does not say so";
    }
    if (ours == Status::DuplicateKey) {
        // A wanted key twice: jansson must see a duplicate too.
        return janssonLoad(text, JSON_REJECT_DUPLICATES) ? "reader saw a duplicate jansson did not"
                                                         : "";
    }
    if (ours != Status::Ok) {
        return "jansson accepts, reader refuses";
    }
    for (std::size_t i = 0; i < 4; ++i) {
        json_t* v = json_object_get(theirs.get(), kKeys[i]);
        Kind kind = reader.kind(i);
        if (v == nullptr) {
            if (kind != Kind::Absent) return std::string(kKeys[i]) + ": reader found a value";
        } else if (json_is_string(v)) {
            if (kind != Kind::String) return std::string(kKeys[i]) + ": reader missed a string";
            std::string expected(json_string_value(v), json_string_length(v));
            if (reader.string(i) != expected) return std::string(kKeys[i]) + ": strings differ";
        } else if (json_is_integer(v)) {
            if (kind != Kind::Integer) return std::string(kKeys[i]) + ": reader missed an integer";
            if (reader.integer(i) != json_integer_value(v))
                return std::string(kKeys[i]) + ": integers differ";
        } else if (kind != Kind::Other) {
            return std::string(kKeys[i]) + ": kinds differ";
        }
    }
    return "";
}

#define EXPECT_AGREES(text)                                      \
    do {                                                         \
        std::string t_ = (text);                                 \
        EXPECT_EQ(disagreement(t_), "") << "text: " << t_.substr(0, 200); \
    } while (0)

TEST(JsonObjectReader, ReadsTheFieldsItIsAskedFor) {
    JsonObjectReader r = makeReader();
    ASSERT_EQ(r.read(R"({"x":[1,{"type":2}],"type":"offer","v":-12,"body":"a\"b\u00e9\ud83d\ude00"})"),
              Status::Ok);
    EXPECT_EQ(r.kind(0), Kind::String);
    EXPECT_EQ(r.string(0), "offer");
    EXPECT_EQ(r.kind(1), Kind::Absent);
    EXPECT_EQ(r.kind(2), Kind::Integer);
    EXPECT_EQ(r.integer(2), -12);
    EXPECT_EQ(r.string(3), "a\"b\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(JsonObjectReader, GivesAValueItsTextAsWrittenForPassingOn) {
    JsonObjectReader r({"a", "b", "c", "d"});
    ASSERT_EQ(r.read(R"({ "a" : {"x" : [1, 2.5e3]} , "b":"q\"\u00e9","c":-7 ,"d":null})"),
              Status::Ok);
    EXPECT_EQ(r.rawValue(0), R"({"x" : [1, 2.5e3]})");
    EXPECT_EQ(r.rawValue(1), R"("q\"\u00e9")");
    EXPECT_EQ(r.rawValue(2), "-7");
    EXPECT_EQ(r.rawValue(3), "null");
    ASSERT_EQ(r.read(R"({"a":true})"), Status::Ok);
    EXPECT_EQ(r.rawValue(0), "true");
    EXPECT_EQ(r.kind(1), Kind::Absent);
}

TEST(JsonObjectReader, TellsNonObjectsFromNonJson) {
    JsonObjectReader r = makeReader();
    EXPECT_EQ(r.read("[1, 2]"), Status::NotObject);
    EXPECT_EQ(r.read(" \"s\" "), Status::NotObject);
    EXPECT_EQ(r.read("null"), Status::NotObject);
    EXPECT_EQ(r.read("-0.5e3"), Status::NotObject);
    EXPECT_EQ(r.read(""), Status::NotJson);
    EXPECT_EQ(r.read("   "), Status::NotJson);
    EXPECT_EQ(r.read("[1,]"), Status::NotJson);
    EXPECT_EQ(r.read("{} {}"), Status::NotJson);
    EXPECT_EQ(r.read("nul"), Status::NotJson);
}

TEST(JsonObjectReader, RefusesDuplicatesOfWantedKeysOnly) {
    JsonObjectReader r = makeReader();
    EXPECT_EQ(r.read(R"({"type":"a","type":"b"})"), Status::DuplicateKey);
    EXPECT_EQ(r.read(R"({"type":"a","typ\u0065":"b"})"), Status::DuplicateKey);
    EXPECT_EQ(r.read(R"({"other":1,"other":2,"type":"a"})"), Status::Ok);
    EXPECT_EQ(r.read(R"({"x":{"type":1,"type":2}})"), Status::Ok);
}

TEST(JsonObjectReader, AgreesWithJanssonOnEdgeCases) {
    const char* cases[] = {
        "{}", "{ }", "{\"type\":\"t\"}", "{\"type\":\"t\",}", "{,}", "{\"type\"}",
        "{\"type\":}", "{\"type\" \"t\"}", "{\"type\":\"t\"", "{\"type\":'t'}",
        "{\"type\":\"\\u0000\"}", "{\"\\u0000\":1}", "{\"type\":\"\\ud800\"}",
        "{\"type\":\"\\udc00\"}", "{\"type\":\"\\ud800\\u0041\"}", "{\"type\":\"\\ud800\\udbff\"}",
        "{\"type\":\"\\ud83d\\ude00\"}", "{\"type\":\"\\x\"}", "{\"type\":\"\\u12\"}",
        "{\"type\":\"\\u12g4\"}", "{\"type\":\"\\\"}", "{\"v\":01}", "{\"v\":-}", "{\"v\":-0}",
        "{\"v\":1.}", "{\"v\":.5}", "{\"v\":1e}", "{\"v\":1e+}", "{\"v\":1E-5}", "{\"v\":1.5e99}",
        "{\"v\":1e999}", "{\"v\":-1e999}", "{\"v\":1e-999}", "{\"v\":9223372036854775807}",
        "{\"v\":9223372036854775808}", "{\"v\":-9223372036854775808}",
        "{\"v\":-9223372036854775809}", "{\"v\":99999999999999999999}", "{\"v\":true}",
        "{\"v\":tru}", "{\"v\":nulll}", "{\"v\":[]}", "{\"v\":{}}", "{\"v\":[1 2]}",
        "{\"v\":[1,,2]}", "{\"v\":{\"a\" 1}}", "{\"v\":{1:2}}", "\t{\r\n\"type\"\n:\t\"t\"\r}\n",
        "{\"type\":\"a\xc3\xa9\"}", "{\"type\":\"\xc3\"}", "{\"type\":\"\xed\xa0\x80\"}",
        "{\"type\":\"\xf4\x90\x80\x80\"}", "{\"type\":\"\xc0\xaf\"}", "{\"type\":\"\x7f\"}",
        "{\"type\":\"tab\there\"}", "\xef\xbb\xbf{}", "{\"body\":\"\\/\\b\\f\\n\\r\\t\"}",
    };
    for (const char* c : cases) {
        EXPECT_AGREES(c);
    }
    EXPECT_AGREES(std::string("{\"type\":\"a\0b\"}", 14));
    EXPECT_AGREES(std::string("{\"type\":\"a\"}\0", 13));
}

TEST(JsonObjectReader, AgreesWithJanssonOnNestingDepth) {
    for (std::size_t depth : {100u, 2046u, 2047u, 2048u, 2049u, 5000u}) {
        std::string open(depth, '[');
        std::string close(depth, ']');
        EXPECT_AGREES(open + close);
        EXPECT_AGREES(open + "1" + close);
        EXPECT_AGREES("{\"v\":" + open.substr(1) + close.substr(1) + "}");
        EXPECT_AGREES("{\"v\":" + open.substr(1) + "\"s\"" + close.substr(1) + "}");
        // the same under a key the reader does not look for
        EXPECT_AGREES("{\"x\":" + open.substr(1) + close.substr(1) + "}");
        EXPECT_AGREES("{\"x\":" + open.substr(1) + "\"s\"" + close.substr(1) + "}");
    }
}

// Texts near valid messages, made by random edits of valid ones: every
// reader bug that a byte-level change can reach shows up as a disagreement.
TEST(JsonObjectReader, AgreesWithJanssonOnMutatedMessages) {
    const std::vector<std::string> seeds = {
        R"({"type":"offer","recipientSessionId":"fedcba98-7654-4321-b000-0123456789ab","messageBody":"{\"sdp\":\"v=0\\r\\n\"}"})",
        R"({"v":1,"t":"msg","node":"0123456789ab","type":"candidate","body":"caf\u00e9 \ud83d\ude00","x":[1,-2.5e3,true,false,null,{"a":{"b":[]}}]})",
        "{\"type\":\"\xe4\xb8\xad\xe6\x96\x87\",\"v\":-42,\"body\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\"}",
        R"([{"type":"t"},"s",0,1.0])",
    };
    const std::string alphabet = std::string("{}[]\",:\\/u0123456789abcdefABCDEF.eE+-tfnrlsu \t\n\r") +
                                 std::string("\0\x01\x1f\x7f\x80\xbf\xc2\xc3\xe0\xed\xf0\xf4\xff", 13);
    std::mt19937 rng(20261201);
    std::size_t checked = 0;
    std::size_t accepted = 0;
    for (int iteration = 0; iteration < 200000; ++iteration) {
        std::string text = seeds[rng() % seeds.size()];
        int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits && !text.empty(); ++e) {
            std::size_t at = rng() % text.size();
            switch (rng() % 4) {
                case 0: text.erase(at, 1); break;
                case 1: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
                case 2: text[at] = alphabet[rng() % alphabet.size()]; break;
                default: {
                    std::size_t len = 1 + rng() % 8;
                    text.insert(at, text.substr(rng() % text.size(), len));
                    break;
                }
            }
        }
        std::string d = disagreement(text);
        ASSERT_EQ(d, "") << "text: " << text;
        ++checked;
        if (janssonLoad(text)) {
            ++accepted;
        }
    }
    // The edits must reach both sides of the grammar to mean anything.
    EXPECT_GT(accepted, checked / 50);
    EXPECT_LT(accepted, checked / 2);
}

}  // namespace
}  // namespace dwrtc
