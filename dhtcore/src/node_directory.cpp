#include "node_directory.h"

#include <opendht.h>

#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "dwrtc/dwrtc.h"
#include "dwrtc/host_port.h"
#include "node_record.h"
#include "opendht_compat.h"

namespace dwrtc {

namespace {

// How long stop() waits for the withdrawal of the record and the leaves of
// room members to be stored before leaving: a worker that exits waits this
// long at most; on a busy machine a put takes more than a second.
constexpr auto kWithdrawWait = std::chrono::milliseconds(2000);

// Room members are values of a type of their own: they expire a minute
// after their node stops refreshing them (a node that died), not after
// OpenDHT's default ten.
constexpr dht::ValueType::Id kRoomMemberType = kRoomMemberValueType;
constexpr auto kRoomMemberLifetime = std::chrono::seconds(60);

// The members under a room that hold: signed by their node, naming it.
RoomStore::Members membersOf(const std::vector<std::shared_ptr<dht::Value>>& values,
                             const std::string& room, const ClaimClock& clock,
                             const LogFn& log) {
    RoomStore::Members out;
    for (const auto& v : values) {
        RoomMember m;
        std::string why;
        if (!v || !v->owner ||
            !decodeRoomMember(std::string_view(reinterpret_cast<const char*>(v->data.data()),
                                               v->data.size()),
                              m) ||
            m.room != room) {
            log(DWRTC_LOG_DEBUG, "room \"" + room + "\": ignoring an unsigned or malformed value");
            continue;
        }
        dht::Blob owner;
        v->owner->pack(owner);
        std::string signer = nodeIdOfPublicKey(
            std::string_view(reinterpret_cast<const char*>(owner.data()), owner.size()));
        if (!memberBindingHolds(m, signer, clock, why)) {
            log(DWRTC_LOG_DEBUG, "room \"" + room + "\": ignoring member " + m.id + " (" + why +
                                     ")");
            continue;
        }
        m.seq = v->seq;
        out.push_back(std::move(m));
    }
    return out;
}

}  // namespace

std::shared_ptr<const NodeIdentity> NodeIdentity::make() {
    auto identity = dht::crypto::generateIdentity("dwrtc-node", {}, 2048);
    dht::Blob pem = identity.first->serialize();
    auto made = std::make_shared<NodeIdentity>(NodeIdentity{
        identity.first, identity.second,
        NodeKey::fromPem(std::string_view(reinterpret_cast<const char*>(pem.data()),
                                          pem.size()))});
    return made;
}

NodeDirectory::NodeDirectory(DirectoryConfig config, std::shared_ptr<const NodeIdentity> identity,
                             LogFn log, NodeStats* stats)
    : config_(std::move(config)),
      identity_(std::move(identity)),
      log_(std::move(log)),
      stats_(stats ? stats : &unusedStats_) {}

NodeDirectory::~NodeDirectory() { stop(); }

void NodeDirectory::peerCounts(unsigned& good, unsigned& dubious) const {
    good = dubious = 0;
    if (!runner_) {
        return;
    }
    for (sa_family_t af : {AF_INET, AF_INET6}) {
        dht::NodeStats s = runner_->getNodesStats(af);
        good += s.good_nodes;
        dubious += s.dubious_nodes;
    }
}

BootstrapSnapshot NodeDirectory::network() const {
    return bootstrapper_ ? bootstrapper_->snapshot() : BootstrapSnapshot{};
}

std::string NodeDirectory::recordKey(const std::string& prefix) const {
    return nodeRecordName(config_.networkKey, prefix);
}

bool NodeDirectory::start() {
    prefix_ = identity_->key.id();

    dht::DhtRunner::Config config;
    config.threaded = true;
    config.dht_config.id = {identity_->dhtKey, identity_->dhtCertificate};
    // Our nodes only talk to nodes of their own network, never to the
    // public OpenDHT network, even when bootstrapped through a wrong address.
    config.dht_config.node_config.network =
        config_.networkKey.empty() ? kOpenNetworkId : privateNetworkId(config_.networkKey);
    config.dht_config.node_config.max_req_per_sec = config_.totalRequestLimit;
    config.dht_config.node_config.max_peer_req_per_sec = config_.perIpRequestLimit;
    // Every lookup is a search that OpenDHT would keep for an hour after it
    // ends, up to a million of them: lookups of made-up ids would grow the
    // worker without bound.
    if (!setMaxSearches(config.dht_config.node_config, config_.maxSearches)) {
        log_(DWRTC_LOG_WARN, "this OpenDHT cannot cap its searches; "
                             "dwrtc_dht_max_searches has no effect");
    }

    bool v6 = config_.bindAddress.find(':') != std::string::npos;
    unsigned from = config_.portFrom, to = config_.portTo;
    for (unsigned port = from; port <= to; ++port) {
        auto runner = std::make_unique<dht::DhtRunner>();
        try {
            dht::SockAddr bind;
            bind.setFamily(v6 ? AF_INET6 : AF_INET);
            bind.setAddress(config_.bindAddress.c_str());
            bind.setPort(static_cast<in_port_t>(port));
            (v6 ? config.bind6 : config.bind4) = bind;
            dht::DhtRunner::Context context;
            auto connected = connected_;
            context.statusChangedCallback = [connected](dht::NodeStatus v4,
                                                        dht::NodeStatus v6) {
                connected->store(v4 == dht::NodeStatus::Connected ||
                                 v6 == dht::NodeStatus::Connected);
            };
            runner->run(config, std::move(context));
            unsigned bound = runner->getBoundPort(v6 ? AF_INET6 : AF_INET);
            if (bound == 0) {
                runner->join();
                continue;
            }
            runner_ = std::move(runner);
            port_ = bound;
            break;
        } catch (const std::exception& e) {
            log_(DWRTC_LOG_DEBUG, "dht port " + std::to_string(port) + " not usable: " + e.what());
            try {
                runner->join();
            } catch (...) {
            }
        }
        if (port == 65535) {
            break;
        }
    }
    if (!runner_) {
        log_(DWRTC_LOG_ERROR, "no free UDP port for the DHT in " + std::to_string(from) + "-" +
                                  std::to_string(to) + " on " + config_.bindAddress);
        return false;
    }

    bootstrapper_ = std::make_unique<Bootstrapper>(*runner_, config_.bootstrap, from, to, port_,
                                                   log_);
    bootstrapper_->start();

    runner_->registerType(dht::ValueType(kRoomMemberType, "dwrtc-room-member",
                                         kRoomMemberLifetime));
    runner_->registerType(dht::ValueType(kPeerJsIdValueType, "dwrtc-peerjs-id",
                                         kPeerJsIdLifetime));

    std::random_device rd;
    valueId_ = (static_cast<std::uint64_t>(rd()) << 32) | rd();
    log_(DWRTC_LOG_INFO, "node " + prefix_ + " joined the DHT on UDP port " +
                             std::to_string(port_));
    return true;
}

// OpenDHT's putSigned() first runs a whole get for an older version of the
// value, and only then puts: two searches in a row, each of which waits
// about a second for every node that left without a word (during a reload,
// that is every old worker). This node's value id is new at every start,
// so there is nothing older to find: sign here, with a sequence number of
// our own, and put at once. Readers check the signature as before.
void NodeDirectory::signRecord(dht::Value& value) {
    value.seq = ++seq_;
    value.sign(*identity_->dhtKey);
}

std::string NodeDirectory::encodeRecord(const std::vector<std::string>& links, bool gone) const {
    return encodeNodeRecord(prefix_, links, gone);
}

void NodeDirectory::publish(const std::vector<std::string>& links) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return;
    }
    if (&links != &links_) {
        links_ = links;
    }
    std::string text = encodeRecord(links, false);
    LogFn log = log_;
    std::string prefix = prefix_;
    auto state = publishShared_;
    bool retry = published_;
    bool failed = state->load() == kFailed;  // no DHT node stored the last put
    state->store(kStoring);
    // A retry of a put no DHT node stored counts from the first try.
    if (!failed) {
        publishStarted_ = std::chrono::steady_clock::now();
    }
    auto started = publishStarted_;
    auto took = publishMs_;
    dht::InfoHash key = dht::InfoHash::get(recordKey(prefix_));
    if (retry) {
        runner_->cancelPut(key, valueId_);
    }
    // permanent: OpenDHT keeps the record stored and refreshed while we run.
    placed_ = false;  // a new put: its schedule starts once it is stored
    // After a put that no DHT node stored, the same record goes again as
    // it was signed: a node with no DHT peer tries every tick, and a new
    // signature (RSA, a few ms of the link thread) each time took the
    // worker's core.
    std::shared_ptr<dht::Value> value = record_;
    if (!failed || !value || text != recordText_) {
        value = std::make_shared<dht::Value>(
            dht::ValueType::USER_DATA.id, reinterpret_cast<const std::uint8_t*>(text.data()),
            text.size(), valueId_);
        signRecord(*value);
        record_ = value;
        recordText_ = text;
    }
    runner_->put(
        key, value,
        [log, prefix, state, retry, started, took](bool ok) {
            if (ok) {
                took->store(std::max<long long>(
                    1, std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - started)
                           .count()));
                state->store(kStored);
                log(DWRTC_LOG_INFO, "node " + prefix + " published its record");
            } else {
                state->store(kFailed);
                if (!retry) {
                    log(DWRTC_LOG_INFO, "node " + prefix +
                                            " could not store its record yet (no DHT peers "
                                            "answered); retrying");
                }
            }
        },
        dht::time_point::max(), true);
    published_ = true;
}

void NodeDirectory::ensurePublished() {
    sweepPeerJsIds();
    int state = publishState_.load();
    if (state == kFailed) {
        publish(links_);
        return;
    }
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_ || state != kStored) {
        return;
    }
    auto now = PlacementSchedule::Clock::now();
    if (!placed_) {
        placed_ = true;
        placement_.restart(now);
        return;
    }
    if (!placement_.due(now)) {
        return;
    }
    // A get shares the put's search: its walk finds the nodes now closest
    // to the key, and OpenDHT announces the permanent record to those that
    // lack it. The values themselves are not needed.
    runner_->get(dht::InfoHash::get(recordKey(prefix_)),
                 dht::GetCallbackSimple([](const std::shared_ptr<dht::Value>&) { return true; }),
                 [](bool) {});
}

void NodeDirectory::lookup(const std::string& prefix, LookupDone done) {
    if (!runner_) {
        done(std::nullopt);
        return;
    }
    // The get callbacks may run several times; the answer is given once.
    struct State {
        std::mutex mutex;
        bool answered = false;
        std::optional<NodeRecord> best;
        bool bestGone = false;
        std::uint16_t bestSeq = 0;
        bool any = false;
        LookupDone done;
    };
    auto state = std::make_shared<State>();
    state->done = std::move(done);

    LogFn log = log_;
    auto onValue = [state, prefix, log](const std::shared_ptr<dht::Value>& v) {
        if (!v || !v->owner) {
            log(DWRTC_LOG_DEBUG, "lookup of " + prefix + ": ignoring an unsigned value");
            return true;
        }
        // Only the node itself can sign its record: the node id is the hash
        // of its key. Anything else under this key is ignored.
        dht::Blob owner;
        v->owner->pack(owner);
        std::string ownerId = nodeIdOfPublicKey(
            std::string_view(reinterpret_cast<const char*>(owner.data()), owner.size()));
        if (ownerId != prefix) {
            log(DWRTC_LOG_DEBUG, "lookup of " + prefix + ": ignoring a value signed by node " +
                                     ownerId);
            return true;
        }
        NodeRecord rec;
        bool gone = false;
        std::string text(v->data.begin(), v->data.end());
        if (!decodeNodeRecord(text, rec, gone) || rec.prefix != prefix) {
            log(DWRTC_LOG_DEBUG, "lookup of " + prefix + ": ignoring a malformed record");
            return true;
        }
        LookupDone answer;
        {
            std::lock_guard<std::mutex> lock(state->mutex);
            if (state->answered) {
                return false;
            }
            if (!state->any || v->seq >= state->bestSeq) {
                state->any = true;
                state->bestSeq = v->seq;
                state->bestGone = gone;
                state->best = rec;
            }
            // A live record is good enough to try at once; a stale one shows
            // itself when the link does not connect.
            if (!gone) {
                state->answered = true;
                answer = std::move(state->done);
            }
        }
        if (answer) {
            answer(rec);
            return false;
        }
        return true;
    };
    auto onDone = [state, log, prefix](bool ok) {
        log(DWRTC_LOG_DEBUG, "lookup of " + prefix + (ok ? " finished" : " failed"));
        LookupDone answer;
        std::optional<NodeRecord> result;
        {
            std::lock_guard<std::mutex> lock(state->mutex);
            if (state->answered) {
                return;
            }
            state->answered = true;
            answer = std::move(state->done);
            if (state->any) {
                result = state->best;
                result->gone = state->bestGone;
            }
        }
        answer(result);
    };
    runner_->get(dht::InfoHash::get(recordKey(prefix)), dht::GetCallbackSimple(onValue), onDone);
}

// Every claim is a value of its own: OpenDHT's storage does not let an
// unsigned value be replaced by a newer one under the same value id, and
// readers take the newest claim anyway. The claim put before is no longer
// refreshed and expires.
void NodeDirectory::publishId(const IdClaim& claim) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return;
    }
    dht::InfoHash key = dht::InfoHash::get(idRecordName(config_.networkKey, claim.id));
    std::uint64_t valueId = (static_cast<std::uint64_t>(random_()) << 32) | random_();
    auto old = ownedIds_.find(claim.id);
    if (old != ownedIds_.end()) {
        runner_->cancelPut(key, old->second);
    }
    ownedIds_[claim.id] = valueId;
    std::string text = encodeIdClaim(claim);
    auto value = std::make_shared<dht::Value>(
        dht::ValueType::USER_DATA.id, reinterpret_cast<const std::uint8_t*>(text.data()),
        text.size(), valueId);
    LogFn log = log_;
    std::string id = claim.id;
    runner_->put(
        key, value,
        [log, id](bool ok) {
            log(DWRTC_LOG_DEBUG, "claim of id " + id + (ok ? " stored" : " not stored yet"));
        },
        dht::time_point::max(), true);
}

// The claim is no longer refreshed and expires in the DHT; until then it
// points here, and senders learn from this node that the id is away.
void NodeDirectory::withdrawId(const std::string& id) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    auto it = ownedIds_.find(id);
    if (!runner_ || it == ownedIds_.end()) {
        return;
    }
    runner_->cancelPut(dht::InfoHash::get(idRecordName(config_.networkKey, id)), it->second);
    ownedIds_.erase(it);
}

namespace {

// What one value under a key-owned id's key says: the claim it holds, or
// nothing (malformed, another id's, on node notOn, dated too far ahead, a
// signature that does not hold). Each value's bytes are judged once
// (verdicts); a signature still to check is checked only if spend() lets
// it, which bounds what a flood of values under one id costs.
std::optional<IdClaim> judgeIdValue(const dht::Value& v, const std::string& id,
                                    const std::string& notOn, const ClaimClock& clock,
                                    ClaimVerdicts& verdicts, const LogFn& log,
                                    NodeStats& stats,
                                    const std::function<bool(const IdClaim&)>& spend) {
    using Verdict = ClaimVerdicts::Verdict;
    std::string_view bytes(reinterpret_cast<const char*>(v.data.data()), v.data.size());
    auto now = ClaimVerdicts::Clock::now();
    std::string digest = ClaimVerdicts::digestOf(bytes);
    Verdict known = verdicts.find(digest, now);
    if (known == Verdict::Refuted) {
        return std::nullopt;
    }
    IdClaim claim;
    std::string why;
    if (!decodeIdClaim(bytes, claim) || claim.id != id) {
        log(DWRTC_LOG_DEBUG, "id " + id + ": ignoring a malformed value or a claim for "
                             "another id");
        verdicts.remember(digest, Verdict::Refuted, now);
        return std::nullopt;
    }
    if (!notOn.empty() && claim.node == notOn) {
        return std::nullopt;
    }
    if (std::uint64_t ahead = clock.tooFarAhead(claim.time)) {
        // Skipped until it could be believed, not for good: a node whose
        // clock is a little fast is heard once it is not ahead.
        log(DWRTC_LOG_DEBUG, "id " + id + ": ignoring a claim (" + clock.whyNot(claim.time) + ")");
        verdicts.remember(digest, Verdict::Refuted, now, now + std::chrono::milliseconds(ahead));
        NodeStats::add(stats.directory.claimsAhead);
        return std::nullopt;
    }
    if (known == Verdict::Holds) {
        return claim;
    }
    if (!spend(claim)) {
        return std::nullopt;
    }
    // Only the id's own key can sign its claim: anything else under this
    // key is someone's attempt to take the id over.
    if (!verifyClaim(claim, why)) {
        log(DWRTC_LOG_DEBUG, "id " + id + ": ignoring a claim that does not hold (" + why + ")");
        verdicts.remember(digest, Verdict::Refuted, now);
        return std::nullopt;
    }
    verdicts.remember(digest, Verdict::Holds, now);
    return claim;
}

}  // namespace

void NodeDirectory::lookupId(const std::string& id, IdLookupDone done,
                             const std::string& notOn) {
    if (!runner_) {
        done(std::nullopt);
        return;
    }
    // Every value under the id is read: the newest good claim wins, and
    // the DHT may hand an older one first. At most lookupClaimChecks
    // signatures are checked per lookup.
    struct State {
        std::mutex mutex;
        std::optional<IdClaim> best;
        IdLookupDone done;
        std::size_t checks = 0;
        bool overBudget = false;  // logged once per lookup
    };
    auto state = std::make_shared<State>();
    state->done = std::move(done);
    LogFn log = log_;
    ClaimClock clock = config_.claimClock;
    std::shared_ptr<ClaimVerdicts> verdicts = claimVerdicts_;
    std::size_t budget = config_.lookupClaimChecks;
    NodeStats* stats = stats_;
    auto onValue = [state, id, log, notOn, clock, verdicts, budget,
                    stats](const std::shared_ptr<dht::Value>& v) {
        if (!v) {
            return true;
        }
        auto spend = [&](const IdClaim& claim) {
            std::lock_guard<std::mutex> lock(state->mutex);
            if (state->best && state->best->time >= claim.time) {
                return false;  // no news: not worth a check
            }
            if (state->checks >= budget) {
                if (!state->overBudget) {
                    state->overBudget = true;
                    NodeStats::add(stats->directory.claimChecksSpent);
                    log(DWRTC_LOG_DEBUG, "lookup of id " + id + ": more than " +
                                             std::to_string(budget) +
                                             " claims to check, the rest next time "
                                             "(dwrtc_lookup_claim_checks)");
                }
                return false;
            }
            ++state->checks;
            return true;
        };
        std::optional<IdClaim> claim =
            judgeIdValue(*v, id, notOn, clock, *verdicts, log, *stats, spend);
        if (claim) {
            std::lock_guard<std::mutex> lock(state->mutex);
            if (!state->best || state->best->time < claim->time) {
                state->best = std::move(claim);
            }
        }
        return true;
    };
    auto onDone = [state](bool) {
        IdLookupDone answer;
        std::optional<IdClaim> best;
        {
            std::lock_guard<std::mutex> lock(state->mutex);
            answer = std::move(state->done);
            best = state->best;
        }
        if (answer) {
            answer(std::move(best));
        }
    };
    runner_->get(dht::InfoHash::get(idRecordName(config_.networkKey, id)),
                 dht::GetCallbackSimple(onValue), onDone);
}

std::uint64_t NodeDirectory::followId(const std::string& id, IdClaimed claimed) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return 0;
    }
    LogFn log = log_;
    ClaimClock clock = config_.claimClock;
    std::shared_ptr<ClaimVerdicts> verdicts = claimVerdicts_;
    std::size_t budget = config_.lookupClaimChecks;
    // The values that come at once (those stored now, or a flood) get at
    // most lookupClaimChecks signature checks, as a lookup does; the rest
    // wait for the next lookup.
    NodeStats* stats = stats_;
    auto onValues = [id, log, clock, verdicts, budget, stats, claimed = std::move(claimed)](
                        const std::vector<std::shared_ptr<dht::Value>>& values, bool expired) {
        if (expired) {
            return true;  // a claim that expires says nothing new
        }
        std::size_t checks = 0;
        bool overBudget = false;
        std::optional<IdClaim> best;
        auto spend = [&](const IdClaim& claim) {
            if (best && best->time >= claim.time) {
                return false;
            }
            if (checks >= budget) {
                if (!overBudget) {
                    overBudget = true;
                    NodeStats::add(stats->directory.claimChecksSpent);
                }
                return false;
            }
            ++checks;
            return true;
        };
        for (const auto& v : values) {
            if (!v) {
                continue;
            }
            std::optional<IdClaim> claim =
                judgeIdValue(*v, id, {}, clock, *verdicts, log, *stats, spend);
            if (claim && (!best || best->time < claim->time)) {
                best = std::move(claim);
            }
        }
        if (best) {
            claimed(std::move(*best));
        }
        return true;
    };
    dht::InfoHash key = dht::InfoHash::get(idRecordName(config_.networkKey, id));
    auto future = runner_->listen(key, dht::ValueCallback(std::move(onValues)));
    std::uint64_t token = nextListen_++;
    idListens_.emplace(token, future.share());
    return token;
}

void NodeDirectory::unfollowId(const std::string& id, std::uint64_t token) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    auto it = idListens_.find(token);
    if (it == idListens_.end()) {
        return;
    }
    if (runner_) {
        runner_->cancelListen(dht::InfoHash::get(idRecordName(config_.networkKey, id)),
                              it->second);
    }
    idListens_.erase(it);
}

namespace {

// The first 8 bytes of a SHA-1, as a number: value ids and keys of maps.
std::uint64_t hashNumber(const std::string& text) {
    dht::InfoHash hash = dht::InfoHash::get(text);
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i) {
        n = (n << 8) | hash[i];
    }
    return n;
}

}  // namespace

void NodeDirectory::putMember(const RoomMember& m) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return;
    }
    std::string name = roomRecordName(config_.networkKey, m.room);
    dht::InfoHash key = dht::InfoHash::get(name);
    std::string member = name + "/" + m.id + "/" + prefix_;
    MemberSequence::Put put = memberSeq_.next(
        hashNumber(member), m.gone, std::chrono::steady_clock::now(),
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count()));
    auto valueIdOf = [&member](std::uint16_t seq) {
        return hashNumber(member + "/" + std::to_string(seq));
    };
    std::string text = encodeRoomMember(m);
    auto value = std::make_shared<dht::Value>(kRoomMemberType,
                                              reinterpret_cast<const std::uint8_t*>(text.data()),
                                              text.size(), valueIdOf(put.seq));
    value->seq = put.seq;
    value->sign(*identity_->dhtKey);
    if (m.gone) {
        auto inFlight = leavesInFlight_;
        inFlight->fetch_add(1);
        runner_->put(key, value, [inFlight](bool) { inFlight->fetch_sub(1); },
                     dht::time_point::max(), false);
    } else {
        runner_->put(key, value, [](bool) {}, dht::time_point::max(), true);
    }
    // The join this value ends is no longer refreshed, and expires. Its put
    // is cancelled after the new value's is queued: the cancel erases it
    // from this node's own storage, which tells those who listen there
    // that it expired, and they are to hear the leave first.
    if (put.replacedJoin) {
        runner_->cancelPut(key, valueIdOf(*put.replacedJoin));
    }
}

void NodeDirectory::getRoom(const std::string& room, std::function<void(Members)> done) {
    if (!runner_) {
        done({});
        return;
    }
    auto found = std::make_shared<std::vector<std::shared_ptr<dht::Value>>>();
    auto mutex = std::make_shared<std::mutex>();
    LogFn log = log_;
    ClaimClock clock = config_.claimClock;
    runner_->get(
        dht::InfoHash::get(roomRecordName(config_.networkKey, room)),
        [found, mutex](const std::vector<std::shared_ptr<dht::Value>>& values) {
            std::lock_guard<std::mutex> lock(*mutex);
            found->insert(found->end(), values.begin(), values.end());
            return true;
        },
        [found, mutex, room, log, clock, done = std::move(done)](bool) {
            std::vector<std::shared_ptr<dht::Value>> values;
            {
                std::lock_guard<std::mutex> lock(*mutex);
                values = *found;
            }
            done(membersOf(values, room, clock, log));
        });
}

std::uint64_t NodeDirectory::listenRoom(const std::string& room,
                                        std::function<void(Members, bool expired)> changed) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    if (!runner_) {
        return 0;
    }
    LogFn log = log_;
    ClaimClock clock = config_.claimClock;
    auto future = runner_->listen(
        dht::InfoHash::get(roomRecordName(config_.networkKey, room)),
        dht::ValueCallback([room, log, clock, changed = std::move(changed)](
                               const std::vector<std::shared_ptr<dht::Value>>& values,
                               bool expired) {
            changed(membersOf(values, room, clock, log), expired);
            return true;
        }));
    std::uint64_t token = nextListen_++;
    roomListens_.emplace(token, future.share());
    return token;
}

void NodeDirectory::cancelRoom(const std::string& room, std::uint64_t token) {
    std::lock_guard<std::mutex> lock(publishMutex_);
    auto it = roomListens_.find(token);
    if (it == roomListens_.end()) {
        return;
    }
    if (runner_) {
        runner_->cancelListen(dht::InfoHash::get(roomRecordName(config_.networkKey, room)),
                              it->second);
    }
    roomListens_.erase(it);
}

void NodeDirectory::stop() {
    if (!runner_) {
        return;
    }
    bootstrapper_.reset();  // its thread uses the runner
    auto deadline = std::chrono::steady_clock::now() + kWithdrawWait;
    try {
        if (published_) {
            dht::InfoHash key = dht::InfoHash::get(recordKey(prefix_));
            runner_->cancelPut(key, valueId_);
            // Replace the record with a withdrawn one so lookups stop finding
            // this node now rather than when the record expires.
            std::string text = encodeRecord({}, true);
            auto value = std::make_shared<dht::Value>(
                dht::ValueType::USER_DATA.id, reinterpret_cast<const std::uint8_t*>(text.data()),
                text.size(), valueId_);
            auto stored = std::make_shared<std::promise<void>>();
            auto future = stored->get_future();
            auto once = std::make_shared<std::once_flag>();
            signRecord(*value);
            runner_->put(key, value, [stored, once](bool) {
                std::call_once(*once, [&] { stored->set_value(); });
            });
            future.wait_until(deadline);
        }
        while (leavesInFlight_->load() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        runner_->join();
    } catch (const std::exception& e) {
        log_(DWRTC_LOG_WARN, std::string("leaving the DHT failed: ") + e.what());
    }
    runner_.reset();
    log_(DWRTC_LOG_INFO, "node " + prefix_ + " left the DHT");
}

}  // namespace dwrtc
