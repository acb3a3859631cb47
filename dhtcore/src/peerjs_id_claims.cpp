#include "peerjs_id_claims.h"

#include <algorithm>

namespace dwrtc {

PeerJsIdClaims::PeerJsIdClaims(PeerJsIdConfig config, std::string self, PeerJsIdStore& store,
                               Post post, LogFn log, Lost lost, WallClock wallNow, NowFn now,
                               NodeStats* stats)
    : config_(config),
      self_(std::move(self)),
      store_(store),
      post_(std::move(post)),
      log_(std::move(log)),
      lost_(std::move(lost)),
      wallNow_(std::move(wallNow)),
      now_(std::move(now)),
      stats_(stats) {}

PeerJsIdClaims::~PeerJsIdClaims() {
    *alive_ = false;
    for (auto& [id, held] : held_) {
        if (held.follow) {
            store_.unfollowPeerJsId(id, held.follow);
        }
    }
}

std::string PeerJsIdClaims::idOf(const std::string& session) const {
    auto it = idOfSession_.find(session);
    return it == idOfSession_.end() ? std::string() : it->second;
}

std::string PeerJsIdClaims::sessionOf(const std::string& id) const {
    auto it = held_.find(id);
    return it == held_.end() ? std::string() : it->second.session;
}

void PeerJsIdClaims::claim(const std::string& session, const std::string& id,
                           const std::string& token, Done done) {
    std::string tokenHash = peerJsTokenHash(id, token);
    auto held = held_.find(id);
    if (held != held_.end()) {
        if (held->second.record.tokenHash != tokenHash) {
            done(Verdict::Taken);
            return;
        }
        // The same token again on this node (the client's reconnect()
        // before the node saw its old connection go): the newer session
        // takes the id, and the older one is told.
        std::string older = held->second.session;
        std::uint64_t after = held->second.record.time;
        idOfSession_.erase(older);
        held->second.session = session;
        idOfSession_[session] = id;
        held->second.record.time = std::max(wallNow_(), after + 1);
        held->second.since = now_();
        store_.putPeerJsId(held->second.record);
        log_(DWRTC_LOG_INFO, "peerjs id " + id + " taken over by a newer session of its token");
        lost_(older, Loss::TakenOver, held->second.record);
        done(Verdict::Open);
        return;
    }
    auto reserved = reserved_.find(id);
    if (reserved != reserved_.end()) {
        if (!reserved->second.holdsAt(wallNow_())) {
            reserved_.erase(reserved);
            countReserved();
        } else if (reserved->second.tokenHash != tokenHash) {
            done(Verdict::Taken);
            return;
        }
    }
    for (const auto& [other, waiting] : pending_) {
        if (waiting.second.id == id && waiting.second.tokenHash != tokenHash) {
            // Two sessions here want one id with two tokens: the first asked
            // first, and the rule would give it to the first as well.
            done(Verdict::Taken);
            return;
        }
    }
    std::uint64_t attempt = ++attempts_;
    pending_[session] = {attempt, Pending{id, tokenHash, std::move(done), now_()}};
    std::weak_ptr<bool> alive = alive_;
    Post post = post_;
    store_.getPeerJsId(id, [this, alive, post, session, attempt](PeerJsIdStore::Records records,
                                                                  bool reached) {
        post([this, alive, session, attempt, records = std::move(records), reached]() mutable {
            auto live = alive.lock();
            if (live && *live) {
                answered(session, attempt, std::move(records), reached);
            }
        });
    });
}

void PeerJsIdClaims::answered(const std::string& session, std::uint64_t attempt,
                              PeerJsIdStore::Records records, bool reached) {
    auto it = pending_.find(session);
    if (it == pending_.end() || it->second.first != attempt) {
        return;  // closed, or refused for its time, meanwhile
    }
    Pending pending = std::move(it->second.second);
    pending_.erase(it);
    if (!reached) {
        log_(DWRTC_LOG_INFO, "peerjs id " + pending.id +
                                 " not given: no other DHT node answered (is this node in "
                                 "the network?)");
        pending.done(Verdict::NotInNetwork);
        return;
    }
    // This node's own records are known here better than the DHT says.
    records.erase(std::remove_if(records.begin(), records.end(),
                                 [this](const PeerJsIdRecord& r) { return r.node == self_; }),
                  records.end());
    auto reserved = reserved_.find(pending.id);
    if (reserved != reserved_.end()) {
        records.push_back(reserved->second);
    }
    auto held = held_.find(pending.id);
    if (held != held_.end()) {
        records.push_back(held->second.record);
    }
    std::optional<PeerJsIdRecord> holder = peerJsIdHolder(records, wallNow_());
    if (holder && holder->tokenHash != pending.tokenHash) {
        log_(DWRTC_LOG_DEBUG, "peerjs id " + pending.id + " is taken (node " + holder->node + ")");
        pending.done(Verdict::Taken);
        return;
    }
    if (held != held_.end()) {
        // Taken here with the same token while this claim waited: the
        // newer session has it, as claim() gives it at once.
        std::string older = held->second.session;
        idOfSession_.erase(older);
        held->second.session = session;
        idOfSession_[session] = pending.id;
        held->second.record.time = std::max(wallNow_(), held->second.record.time + 1);
        store_.putPeerJsId(held->second.record);
        lost_(older, Loss::TakenOver, held->second.record);
        pending.done(Verdict::Open);
        return;
    }
    take(session, pending.id, pending.tokenHash, holder ? holder->time : 0);
    pending.done(Verdict::Open);
}

void PeerJsIdClaims::take(const std::string& session, const std::string& id,
                          const std::string& tokenHash, std::uint64_t after) {
    reserved_.erase(id);
    countReserved();
    Held held;
    held.session = session;
    held.record.id = id;
    held.record.node = self_;
    held.record.tokenHash = tokenHash;
    // After the token's record it takes over, so that every node's rule
    // sees this one as the newer.
    held.record.time = std::max(wallNow_(), after + 1);
    held.since = now_();
    store_.putPeerJsId(held.record);
    std::weak_ptr<bool> alive = alive_;
    Post post = post_;
    held.follow = store_.followPeerJsId(id, [this, alive, post, id](PeerJsIdStore::Records records) {
        post([this, alive, id, records = std::move(records)]() mutable {
            auto live = alive.lock();
            if (live && *live) {
                auto it = held_.find(id);
                if (it != held_.end()) {
                    changed(id, it->second.follow, std::move(records));
                }
            }
        });
    });
    idOfSession_[session] = id;
    held_[id] = std::move(held);
}

void PeerJsIdClaims::changed(const std::string& id, std::uint64_t follow,
                             PeerJsIdStore::Records records) {
    auto it = held_.find(id);
    if (it == held_.end() || it->second.follow != follow) {
        return;
    }
    Held& held = it->second;
    records.erase(std::remove_if(records.begin(), records.end(),
                                 [this](const PeerJsIdRecord& r) { return r.node == self_; }),
                  records.end());
    records.push_back(held.record);
    std::optional<PeerJsIdRecord> holder = peerJsIdHolder(records, wallNow_());
    if (!holder || (holder->node == self_ && holder->time == held.record.time)) {
        return;
    }
    if (holder->tokenHash == held.record.tokenHash) {
        // The token's newer session, elsewhere: a reconnect or a reload
        // that landed on another node. Its record covers the id now.
        log_(DWRTC_LOG_INFO, "peerjs id " + id + " taken over by a newer session of its token "
                                                 "on node " + holder->node);
        std::string session = held.session;
        forget(id);
        store_.dropPeerJsId(id);
        lost_(session, Loss::TakenOver, *holder);
        return;
    }
    if (now_() - held.since <= config_.raceWindow) {
        // Two nodes were asked for the id at about the same time, and each
        // looked before the other's record was there: the rule gives it to
        // the earlier request, and this one yields.
        log_(DWRTC_LOG_INFO, "peerjs id " + id + " lost to an earlier request on node " +
                                 holder->node);
        std::string session = held.session;
        forget(id);
        store_.dropPeerJsId(id);
        lost_(session, Loss::Lost, *holder);
        return;
    }
    // Dated before a claim this node made and has held for longer than any
    // race: a record written back in time (a rogue node, or a clock far
    // off). The session here keeps the id and its record; other nodes that
    // follow the rule may route to the other node meanwhile.
    if (!held.warned) {
        held.warned = true;
        log_(DWRTC_LOG_WARN, "peerjs id " + id + ", held here, is claimed by node " +
                                 holder->node + " with another token and an earlier time; "
                                 "the session here keeps it");
    }
}

void PeerJsIdClaims::forget(const std::string& id) {
    auto it = held_.find(id);
    if (it == held_.end()) {
        return;
    }
    if (it->second.follow) {
        store_.unfollowPeerJsId(id, it->second.follow);
    }
    idOfSession_.erase(it->second.session);
    held_.erase(it);
}

void PeerJsIdClaims::release(const std::string& session) {
    pending_.erase(session);
    auto mine = idOfSession_.find(session);
    if (mine == idOfSession_.end()) {
        return;
    }
    std::string id = mine->second;
    auto it = held_.find(id);
    if (it == held_.end() || it->second.session != session) {
        idOfSession_.erase(mine);
        return;
    }
    PeerJsIdRecord record = it->second.record;
    record.until = wallNow_() + static_cast<std::uint64_t>(config_.reserve.count());
    forget(id);
    if (config_.reserve.count() > 0 && reserved_.size() >= config_.reservations) {
        if (stats_) {
            NodeStats::add(stats_->links.peerJsIdsNotReserved);
        }
        log_(DWRTC_LOG_WARN, "peerjs id " + id + " not reserved for its token: " +
                                 std::to_string(config_.reservations) +
                                 " ids are reserved already (dwrtc_peerjs_id_reservations)");
        store_.dropPeerJsId(id);
    } else if (config_.reserve.count() > 0) {
        reserved_[id] = record;
        store_.releasePeerJsId(id, record.until);
    } else {
        store_.dropPeerJsId(id);
    }
    countReserved();
}

void PeerJsIdClaims::countReserved() {
    if (stats_) {
        stats_->links.peerJsIdsReserved.store(reserved_.size(), std::memory_order_relaxed);
    }
}

void PeerJsIdClaims::onTick() {
    auto now = now_();
    std::vector<std::string> late;
    for (const auto& [session, entry] : pending_) {
        if (now - entry.second.started >= config_.lookupWait) {
            late.push_back(session);
        }
    }
    for (const std::string& session : late) {
        auto it = pending_.find(session);
        Pending pending = std::move(it->second.second);
        pending_.erase(it);
        log_(DWRTC_LOG_INFO, "peerjs id " + pending.id + " not given: the DHT did not answer in " +
                                 std::to_string(config_.lookupWait.count()) +
                                 " ms (dwrtc_peerjs_id_wait)");
        pending.done(Verdict::NotInNetwork);
    }
    std::uint64_t wall = wallNow_();
    for (auto it = reserved_.begin(); it != reserved_.end();) {
        it = it->second.holdsAt(wall) ? std::next(it) : reserved_.erase(it);
    }
    countReserved();
}

}  // namespace dwrtc
