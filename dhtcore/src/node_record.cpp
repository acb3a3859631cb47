#include "node_record.h"

#include <jansson.h>

#include <cstdlib>

#include "dwrtc/session_id.h"
#include "json_text.h"

namespace dwrtc {

namespace {

constexpr int kRecordVersion = 2;

}  // namespace

std::string encodeNodeRecord(const std::string& prefix, const std::vector<std::string>& links,
                             bool gone) {
    json_t* obj = json_object();
    json_object_set_new(obj, "v", json_integer(kRecordVersion));
    json_object_set_new(obj, "node", json_string(prefix.c_str()));
    json_t* arr = json_array();
    for (const std::string& l : links) {
        json_array_append_new(arr, json_string(l.c_str()));
    }
    json_object_set_new(obj, "links", arr);
    json_object_set_new(obj, "gone", json_boolean(gone));
    return compactJson(obj);
}

bool decodeNodeRecord(const std::string& text, NodeRecord& out, bool& gone) {
    JsonObject record = loadRecord(text, kRecordVersion);
    if (!record) {
        return false;
    }
    json_t* node = json_object_get(record.get(), "node");
    json_t* links = json_object_get(record.get(), "links");
    if (!json_is_string(node) || !json_is_array(links)) {
        return false;
    }
    out.prefix = json_string_value(node);
    out.links.clear();
    std::size_t i;
    json_t* l;
    json_array_foreach(links, i, l) {
        if (json_is_string(l)) {
            out.links.emplace_back(json_string_value(l));
        }
    }
    gone = json_is_true(json_object_get(record.get(), "gone"));
    return isValidNodePrefix(out.prefix);
}

}  // namespace dwrtc
