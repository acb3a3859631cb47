// The records the core stores in the DHT are written with jansson (off
// the hot path): an object built field by field, then its compact text.
#pragma once

#include <jansson.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace dwrtc {

// The compact JSON text of obj, which this takes (and frees); "" if jansson
// cannot write it.
inline std::string compactJson(json_t* obj) {
    char* text = json_dumps(obj, JSON_COMPACT);
    std::string out = text ? text : "";
    std::free(text);
    json_decref(obj);
    return out;
}

struct JsonFree {
    void operator()(json_t* obj) const { json_decref(obj); }
};
using JsonObject = std::unique_ptr<json_t, JsonFree>;

// The object a record's text holds if it is an object whose "v" is
// version; null otherwise (not JSON, another shape, another version).
inline JsonObject loadRecord(std::string_view text, int version) {
    json_error_t err;
    JsonObject obj(json_loadb(text.data(), text.size(), 0, &err));
    json_t* v = obj ? json_object_get(obj.get(), "v") : nullptr;
    if (!json_is_object(obj.get()) || !json_is_integer(v) || json_integer_value(v) != version) {
        return nullptr;
    }
    return obj;
}

}  // namespace dwrtc
