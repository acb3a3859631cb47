// The records the core stores in the DHT are written with jansson (off
// the hot path): an object built field by field, then its compact text.
#pragma once

#include <jansson.h>

#include <cstdlib>
#include <string>

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

}  // namespace dwrtc
