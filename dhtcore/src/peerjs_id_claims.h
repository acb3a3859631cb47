// PeerJsIdClaims: which of this node's PeerJS sessions hold which chosen
// ids (dwrtc/peerjs_id.h), kept unique across the network through the
// DHT. A session asks for an id with its token; the claims look the id up,
// decide by the rule every node applies (peerJsIdHolder), store this
// node's record, and follow the id while the session holds it, so that a
// newer session of the same token on another node (a reconnect, a reload)
// takes it over, and a claim that lost a race hears it. When the session
// closes, the id stays reserved for its token for a while.
//
// Thread-confined: every call on one thread, and everything the store
// answers on other threads comes back through `post`. Time is injected.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dwrtc/dwrtc.h"
#include "dwrtc/peerjs_id.h"
#include "node_stats.h"
#include "router_ports.h"

namespace dwrtc {

// What the claims ask of the DHT (NodeDirectory); any thread.
class PeerJsIdStore {
public:
    using Records = std::vector<PeerJsIdRecord>;
    virtual ~PeerJsIdStore() = default;
    virtual void putPeerJsId(const PeerJsIdRecord& record) = 0;
    virtual void releasePeerJsId(const std::string& id, std::uint64_t until) = 0;
    virtual void dropPeerJsId(const std::string& id) = 0;
    // done(records, reached): reached is false when no DHT node answered
    // and the node expects others (a bootstrap entry names one): it cannot
    // tell whether the id is held elsewhere. A node that is its whole
    // network by configuration is answered by its own silence.
    virtual void getPeerJsId(const std::string& id,
                             std::function<void(Records, bool reached)> done) = 0;
    virtual std::uint64_t followPeerJsId(const std::string& id,
                                         std::function<void(Records)> changed) = 0;
    virtual void unfollowPeerJsId(const std::string& id, std::uint64_t token) = 0;
};

struct PeerJsIdConfig {
    // How long a closed session's id stays reserved for its token
    // (dwrtc_peerjs_id_reserve).
    std::chrono::milliseconds reserve{DWRTC_DEFAULT_PEERJS_ID_RESERVE_MS};
    // How long a claim waits for the DHT's answer before it is refused as
    // "not in the network" (dwrtc_peerjs_id_wait).
    std::chrono::milliseconds lookupWait{DWRTC_DEFAULT_PEERJS_ID_WAIT_MS};
    // Reservations held at most (dwrtc_peerjs_id_reservations). Each one is
    // a record the node keeps putting to the DHT until it ends, and a
    // stranger can make them as fast as it can open and close sessions
    // with fresh ids; past the cap a closed session's id is let go at once.
    std::size_t reservations = DWRTC_DEFAULT_PEERJS_ID_RESERVATIONS;
    // A record of another token that wins over a session's own record
    // within this long of the session's claim lost a race (the two lookups
    // crossed) and the session yields; one that comes later was dated back
    // (a rogue node, or a clock far off), and the session keeps the id.
    std::chrono::milliseconds raceWindow{10000};
};

class PeerJsIdClaims {
public:
    enum class Verdict {
        Open,          // the session holds the id
        Taken,         // another token holds it, live or reserved: ID-TAKEN
        NotInNetwork,  // the DHT did not answer (in time): an ERROR
    };
    using Done = std::function<void(Verdict)>;
    enum class Loss {
        TakenOver,  // a newer session of the same token holds it now (close, 1001)
        Lost,       // another token won a race for it (ID-TAKEN)
    };
    // A session here no longer holds its id; holder is who does.
    using Lost = std::function<void(const std::string& session, Loss why,
                                    const PeerJsIdRecord& holder)>;
    using Post = std::function<void(std::function<void()>)>;
    using WallClock = std::function<std::uint64_t()>;

    PeerJsIdClaims(PeerJsIdConfig config, std::string self, PeerJsIdStore& store, Post post,
                   LogFn log, Lost lost, WallClock wallNow, NowFn now,
                   NodeStats* stats = nullptr);
    ~PeerJsIdClaims();
    PeerJsIdClaims(const PeerJsIdClaims&) = delete;
    PeerJsIdClaims& operator=(const PeerJsIdClaims&) = delete;

    // Session `session` asks for chosen id `id` with `token`; done runs
    // once, on this thread (later, or at once for an answer known here).
    void claim(const std::string& session, const std::string& id, const std::string& token,
               Done done);
    // The session closed: its id is reserved for its token for
    // config.reserve; a claim still waiting is forgotten (done never runs).
    void release(const std::string& session);
    // The id a session holds here, or "".
    std::string idOf(const std::string& session) const;
    // The session here that holds an id, or "".
    std::string sessionOf(const std::string& id) const;
    // Claims waiting for the DHT now.
    std::size_t waiting() const { return pending_.size(); }
    // Closed sessions' ids reserved for their tokens now.
    std::size_t reserved() const { return reserved_.size(); }
    // Once a second: claims waiting past config.lookupWait are refused.
    void onTick();

private:
    struct Pending {
        std::string id;
        std::string tokenHash;
        Done done;
        RouterClock::time_point started;
    };
    struct Held {
        std::string session;
        PeerJsIdRecord record;
        std::uint64_t follow = 0;
        RouterClock::time_point since;
        bool warned = false;  // of a record dated back: once per id
    };

    void answered(const std::string& session, std::uint64_t attempt,
                  PeerJsIdStore::Records records, bool reached);
    void take(const std::string& session, const std::string& id, const std::string& tokenHash,
              std::uint64_t after);
    void changed(const std::string& id, std::uint64_t follow, PeerJsIdStore::Records records);
    void forget(const std::string& id);
    void countReserved();

    PeerJsIdConfig config_;
    std::string self_;
    PeerJsIdStore& store_;
    Post post_;
    LogFn log_;
    Lost lost_;
    WallClock wallNow_;
    NowFn now_;
    NodeStats* stats_;
    // While the claims live: store answers posted after they are gone are
    // dropped.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::uint64_t attempts_ = 0;
    std::unordered_map<std::string, std::pair<std::uint64_t, Pending>> pending_;  // by session
    std::unordered_map<std::string, Held> held_;                                  // by id
    std::unordered_map<std::string, std::string> idOfSession_;
    // Ids released here and still reserved: answered here without a lookup
    // for another token.
    std::unordered_map<std::string, PeerJsIdRecord> reserved_;
};

}  // namespace dwrtc
