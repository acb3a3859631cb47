// NodeDirectory's part in chosen PeerJS ids (dwrtc/peerjs_id.h): the
// node's own records, signed by its key, and reading everyone's.
#include <opendht.h>

#include <map>
#include <utility>

#include "dwrtc/dwrtc.h"
#include "dwrtc/owned_id.h"
#include "node_directory.h"
#include "node_record.h"

namespace dwrtc {

namespace {

// A record whose reservation has ended is still kept (refreshed) this long
// before the node lets it go, so that its last version, which no longer
// holds, has reached the nodes that store the id.
constexpr std::uint64_t kPeerJsIdLetGoMs = 10000;

// The record a value holds if it holds one for `id` and the node it names
// signed it: anyone can store anything under an id's key, and only the
// holder's own node may speak for it.
std::optional<PeerJsIdRecord> recordOf(const dht::Value& v, const std::string& id,
                                       const LogFn& log) {
    PeerJsIdRecord r;
    if (!v.owner || v.type != kPeerJsIdValueType ||
        !decodePeerJsIdRecord(
            std::string_view(reinterpret_cast<const char*>(v.data.data()), v.data.size()), r) ||
        r.id != id) {
        log(DWRTC_LOG_DEBUG, "peerjs id " + id + ": ignoring an unsigned or malformed value");
        return std::nullopt;
    }
    dht::Blob owner;
    v.owner->pack(owner);
    std::string signer =
        nodeIdOfPublicKey(std::string_view(reinterpret_cast<const char*>(owner.data()), owner.size()));
    if (signer != r.node) {
        log(DWRTC_LOG_DEBUG, "peerjs id " + id + ": ignoring a record of node " + r.node +
                                 " signed by node " + signer);
        return std::nullopt;
    }
    return r;
}

}  // namespace

void NodeDirectory::putPeerJsIdLocked(PeerJsIdPut& put) {
    std::string text = encodePeerJsIdRecord(put.record);
    auto value = std::make_shared<dht::Value>(kPeerJsIdValueType,
                                              reinterpret_cast<const std::uint8_t*>(text.data()),
                                              text.size(), put.valueId);
    value->seq = ++put.seq;
    value->sign(*identity_->dhtKey);
    LogFn log = log_;
    std::string id = put.record.id;
    runner_->put(
        dht::InfoHash::get(peerJsIdRecordName(config_.networkKey, id)), value,
        [log, id](bool ok) {
            log(DWRTC_LOG_DEBUG, "record of peerjs id " + id + (ok ? " stored" : " not stored yet"));
        },
        dht::time_point::max(), true);
}

void NodeDirectory::putPeerJsId(const PeerJsIdRecord& record) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return;
    }
    PeerJsIdPut& put = peerJsIds_[record.id];
    if (put.valueId == 0) {
        put.valueId = (static_cast<std::uint64_t>(random_()) << 32) | random_() | 1;
    }
    put.record = record;
    put.record.node = prefix_;
    put.letGoAt = 0;
    putPeerJsIdLocked(put);
}

void NodeDirectory::releasePeerJsId(const std::string& id, std::uint64_t until) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    auto it = peerJsIds_.find(id);
    if (!runner_ || it == peerJsIds_.end()) {
        return;
    }
    it->second.record.until = std::max<std::uint64_t>(until, 1);
    it->second.letGoAt = it->second.record.until + kPeerJsIdLetGoMs;
    putPeerJsIdLocked(it->second);
}

void NodeDirectory::dropPeerJsId(const std::string& id) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    auto it = peerJsIds_.find(id);
    if (!runner_ || it == peerJsIds_.end()) {
        return;
    }
    // A record whose reservation ended at once: readers drop it now rather
    // than when its value expires a minute after the last refresh. It is
    // kept a little longer (sweepPeerJsIds) so that it replaces the live
    // one where that was stored: a put cancelled at once may never leave.
    it->second.record.until = 1;
    it->second.letGoAt = wallClockMs() + kPeerJsIdLetGoMs;
    putPeerJsIdLocked(it->second);
}

void NodeDirectory::sweepPeerJsIds() {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return;
    }
    std::uint64_t now = wallClockMs();
    for (auto it = peerJsIds_.begin(); it != peerJsIds_.end();) {
        if (it->second.letGoAt == 0 || now < it->second.letGoAt) {
            ++it;
            continue;
        }
        // No longer refreshed: the value expires with its type's lifetime,
        // and readers ignore it already (its `until` has passed).
        runner_->cancelPut(dht::InfoHash::get(peerJsIdRecordName(config_.networkKey, it->first)),
                           it->second.valueId);
        it = peerJsIds_.erase(it);
    }
}

void NodeDirectory::lookupChosenId(const std::string& id, ChosenLookupDone done) {
    getPeerJsId(id, [done = std::move(done)](Records records, bool) {
        std::optional<PeerJsIdRecord> holder = peerJsIdHolder(std::move(records), wallClockMs());
        // A reserved id (its session closed) has no one to deliver to.
        if (!holder || holder->until != 0) {
            done(std::nullopt);
            return;
        }
        done(std::move(holder->node));
    });
}

void NodeDirectory::getPeerJsId(const std::string& id,
                                std::function<void(Records, bool reached)> done) {
    if (!runner_) {
        done({}, false);
        return;
    }
    // By value id and signer: the DHT may hand one node's value in two
    // versions; the later sequence number is its word.
    struct State {
        std::mutex mutex;
        std::map<std::pair<std::string, std::uint64_t>, std::pair<std::uint16_t, PeerJsIdRecord>>
            found;
    };
    // A node that no bootstrap entry joins to others, and that no DHT node
    // outside its nginx has found, is its whole network (its first node):
    // no one else can hold the id, so no answer is an answer. With no DHT
    // node at all (not even another worker's) there is no one to ask, and
    // OpenDHT's search would wait out its timeouts for nothing.
    bool whole = network().state == NetworkState::Alone;
    if (whole && !hasPeers()) {
        done({}, true);
        return;
    }
    auto state = std::make_shared<State>();
    LogFn log = log_;
    runner_->get(
        dht::InfoHash::get(peerJsIdRecordName(config_.networkKey, id)),
        dht::GetCallbackSimple([state, id, log](const std::shared_ptr<dht::Value>& v) {
            std::optional<PeerJsIdRecord> r = v ? recordOf(*v, id, log) : std::nullopt;
            if (r) {
                std::lock_guard<std::mutex> lock(state->mutex);
                auto key = std::make_pair(r->node, v->id);
                auto it = state->found.find(key);
                if (it == state->found.end() || it->second.first < v->seq) {
                    state->found[key] = {v->seq, std::move(*r)};
                }
            }
            return true;
        }),
        [state, whole, done = std::move(done)](bool reached) {
            Records records;
            {
                std::lock_guard<std::mutex> lock(state->mutex);
                for (auto& [key, entry] : state->found) {
                    records.push_back(entry.second);
                }
            }
            done(std::move(records), reached || whole);
        });
}

std::uint64_t NodeDirectory::followPeerJsId(const std::string& id,
                                            std::function<void(Records)> changed) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return 0;
    }
    // What the listen has shown so far, by signer and value id; OpenDHT
    // calls one listen's callback from its own thread, one call at a time.
    using Seen =
        std::map<std::pair<std::string, std::uint64_t>, std::pair<std::uint16_t, PeerJsIdRecord>>;
    auto seen = std::make_shared<Seen>();
    LogFn log = log_;
    auto onValues = [seen, id, log, changed = std::move(changed)](
                        const std::vector<std::shared_ptr<dht::Value>>& values, bool expired) {
        for (const auto& v : values) {
            std::optional<PeerJsIdRecord> r = v ? recordOf(*v, id, log) : std::nullopt;
            if (!r) {
                continue;
            }
            auto key = std::make_pair(r->node, v->id);
            auto it = seen->find(key);
            if (expired) {
                if (it != seen->end() && it->second.first <= v->seq) {
                    seen->erase(it);
                }
            } else if (it == seen->end() || it->second.first < v->seq) {
                (*seen)[key] = {v->seq, std::move(*r)};
            }
        }
        Records records;
        for (auto& [key, entry] : *seen) {
            records.push_back(entry.second);
        }
        changed(std::move(records));
        return true;
    };
    auto future = runner_->listen(dht::InfoHash::get(peerJsIdRecordName(config_.networkKey, id)),
                                  dht::ValueCallback(std::move(onValues)));
    std::uint64_t token = nextListen_++;
    peerJsListens_.emplace(token, future.share());
    return token;
}

void NodeDirectory::unfollowPeerJsId(const std::string& id, std::uint64_t token) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    auto it = peerJsListens_.find(token);
    if (it == peerJsListens_.end()) {
        return;
    }
    if (runner_) {
        runner_->cancelListen(dht::InfoHash::get(peerJsIdRecordName(config_.networkKey, id)),
                              it->second);
    }
    peerJsListens_.erase(it);
}

}  // namespace dwrtc
