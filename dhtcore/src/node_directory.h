// NodeDirectory: this node's place in the DHT. It owns the OpenDHT runner
// and the node's identity, publishes the node's signed record, and looks up
// the records of other nodes by their id prefix.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "bootstrap.h"
#include "dwrtc/dwrtc.h"
#include "claim_verdicts.h"
#include "dwrtc/peerjs_id.h"
#include "dwrtc/trust.h"
#include "member_sequence.h"
#include "node_stats.h"
#include "peerjs_id_claims.h"
#include "rooms.h"
#include "router_ports.h"

namespace dht {
class DhtRunner;
struct Value;
namespace crypto {
class PrivateKey;
class Certificate;
}  // namespace crypto
}  // namespace dht

namespace dwrtc {

// The key pair a node proves itself with, made fresh at every start so old
// and new nginx workers never share one during a reload. Held in the two
// forms its users need: OpenDHT's, which signs the node's DHT record, and
// NodeKey, which signs its link hellos. Immutable once made; any thread.
struct NodeIdentity {
    std::shared_ptr<dht::crypto::PrivateKey> dhtKey;
    std::shared_ptr<dht::crypto::Certificate> dhtCertificate;
    NodeKey key;

    // A new 2048-bit RSA identity. RSA, not EC: with Debian's OpenDHT 2.4
    // values signed by an EC identity fail verification on every reader
    // (they are silently dropped); a 2048-bit RSA key takes tens of
    // milliseconds to make.
    static std::shared_ptr<const NodeIdentity> make();
};

struct DirectoryConfig {
    // Filled from NodeConfig, where the defaults are.
    unsigned portFrom = 0;
    unsigned portTo = 0;
    std::string bindAddress;
    std::vector<std::string> bootstrap;  // "host:port"
    long perIpRequestLimit = 0;          // 0: OpenDHT default, -1: none
    long totalRequestLimit = 0;
    // DHT searches OpenDHT keeps at once (each lookup is one, kept for an
    // hour after it ends unless a newer one needs its place).
    std::size_t maxSearches = DWRTC_DEFAULT_DHT_MAX_SEARCHES;
    std::string networkKey;              // a private network's secret, or empty
    // Claims dated further ahead than this allows are not believed, in
    // lookups of ids and in room members.
    ClaimClock claimClock;
    // Claim signatures checked per lookup of an id, at most; values judged
    // before (ClaimVerdicts) cost none.
    std::size_t lookupClaimChecks = DWRTC_DEFAULT_LOOKUP_CLAIM_CHECKS;
};

// When a stored record should be walked to again. OpenDHT stores a record
// on the nodes closest to its key as the publisher saw them when it put it,
// and moves it only when the put is refreshed, about ten minutes later.
// Nodes that join in between and are closer to the key never get it, and a
// lookup ends once the eight closest nodes have answered: a holder further
// out that answers a moment later is ignored, and a live node is "not
// found". A node that published into a small or changing network (the
// first nodes of a deployment, every node during a reload) sees the most
// change soon after, so the walks start often and spread out. Not
// thread-safe: NodeDirectory uses it under its publish mutex.
class PlacementSchedule {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds kFirst{2};
    static constexpr std::chrono::seconds kLongest{120};

    // The record was (re)stored at `now`: start again from kFirst.
    void restart(Clock::time_point now) {
        interval_ = kFirst;
        next_ = now + interval_;
    }
    // True once per due walk; each walk doubles the wait up to kLongest.
    bool due(Clock::time_point now) {
        if (!next_ || now < *next_) {
            return false;
        }
        interval_ = std::min(interval_ * 2, std::chrono::seconds(kLongest));
        next_ = now + interval_;
        return true;
    }

private:
    std::optional<Clock::time_point> next_;
    std::chrono::seconds interval_ = kFirst;
};

// Values under key-owned ids whose verdict a node remembers, at most: about
// 150 bytes each, so 2.4 MB when full.
constexpr std::size_t kClaimVerdictsRemembered = 16384;

// start() and stop() from the owner's thread; publish() and lookup() from any
// thread. Lookup callbacks run on an OpenDHT thread.
class NodeDirectory : public Directory, public RoomStore, public PeerJsIdStore {
public:
    // stats: where claims not believed and lookups over their check budget
    // are counted (none in some tests).
    NodeDirectory(DirectoryConfig config, std::shared_ptr<const NodeIdentity> identity,
                  LogFn log, NodeStats* stats = nullptr);
    ~NodeDirectory();
    NodeDirectory(const NodeDirectory&) = delete;
    NodeDirectory& operator=(const NodeDirectory&) = delete;

    // Binds the first free UDP port of the range and joins the network.
    // Returns false, after logging why, if no port could be bound.
    bool start();

    // Withdraws the record, leaves the network and joins OpenDHT's threads.
    void stop();

    const std::string& prefix() const { return prefix_; }
    unsigned port() const { return port_; }

    // Publishes (and keeps refreshing) this node's record.
    void publish(const std::vector<std::string>& links);
    // Publishes again if the last attempt could not be stored (a node that
    // starts before its peers has nowhere to store its record), and walks
    // to the record's key again now and then so the record follows the
    // nodes that are closest to it now (see PlacementSchedule). Called
    // periodically by the owner.
    void ensurePublished() override;
    bool published() const { return publishState_.load() == kStored; }
    // How long the last put of the record took until a DHT node stored it,
    // from its first try; 0 while none was stored.
    long long lastPublishMs() const { return publishMs_->load(); }
    // True while some other DHT node answers this one.
    bool hasPeers() const { return connected_->load(); }
    // The DHT nodes this one knows, good (answered lately) and dubious.
    void peerCounts(unsigned& good, unsigned& dubious) const;
    // Whether the node is in the network, and what its bootstrap entries did.
    BootstrapSnapshot network() const;

    // Finds the live record of the node with this id. The callback gets
    // nullopt when no record signed by that node's key exists or it was
    // withdrawn.
    void lookup(const std::string& prefix, LookupDone done) override;

    void lookupId(const std::string& id, IdLookupDone done,
                  const std::string& notOn = {}) override;
    void publishId(const IdClaim& claim) override;
    void withdrawId(const std::string& id) override;
    std::uint64_t followId(const std::string& id, IdClaimed claimed) override;
    void unfollowId(const std::string& id, std::uint64_t token) override;
    void lookupChosenId(const std::string& id, ChosenLookupDone done) override;

    // Chosen PeerJS ids (dwrtc/peerjs_id.h, node_directory_peerjs.cpp).
    // putPeerJsId stores this node's record for an id, signed, and keeps it
    // stored (a newer put of the same id replaces it); releasePeerJsId
    // stores it again with `until` and keeps it until then (ensurePublished
    // lets it go after); dropPeerJsId takes it back at once. getPeerJsId
    // and followPeerJsId hand over every record under the id that the node
    // it names signed.
    void putPeerJsId(const PeerJsIdRecord& record) override;
    void releasePeerJsId(const std::string& id, std::uint64_t until) override;
    void dropPeerJsId(const std::string& id) override;
    void getPeerJsId(const std::string& id,
                     std::function<void(Records, bool reached)> done) override;
    std::uint64_t followPeerJsId(const std::string& id,
                                 std::function<void(Records)> changed) override;
    void unfollowPeerJsId(const std::string& id, std::uint64_t token) override;

    void putMember(const RoomMember& m) override;
    void getRoom(const std::string& room, std::function<void(Members)> done) override;
    std::uint64_t listenRoom(const std::string& room,
                             std::function<void(Members, bool expired)> changed) override;
    void cancelRoom(const std::string& room, std::uint64_t token) override;

private:
    std::string recordKey(const std::string& prefix) const;
    std::string encodeRecord(const std::vector<std::string>& links, bool gone) const;
    void signRecord(dht::Value& value);  // under publishMutex_, or in stop()

    DirectoryConfig config_;
    std::shared_ptr<const NodeIdentity> identity_;
    LogFn log_;
    NodeStats unusedStats_;
    NodeStats* stats_;  // stats given, or unusedStats_; outlives the lookups
    std::unique_ptr<dht::DhtRunner> runner_;
    std::unique_ptr<Bootstrapper> bootstrapper_;  // while runner_ runs
    std::string prefix_;
    unsigned port_ = 0;
    std::uint64_t valueId_ = 0;
    std::uint16_t seq_ = 0;  // of the last version of the record put
    // The last record signed and its text: a put that failed (no DHT peer
    // answered, as for a node alone) is tried again with it, unsigned
    // again. Under publishMutex_.
    std::shared_ptr<dht::Value> record_;
    std::string recordText_;
    bool published_ = false;
    enum : int { kNone, kStoring, kStored, kFailed };
    std::shared_ptr<std::atomic<int>> publishShared_ = std::make_shared<std::atomic<int>>(kNone);
    std::atomic<int>& publishState_ = *publishShared_;
    std::chrono::steady_clock::time_point publishStarted_;  // under publishMutex_
    std::shared_ptr<std::atomic<long long>> publishMs_ =
        std::make_shared<std::atomic<long long>>(0);
    std::mutex publishMutex_;
    // Set by OpenDHT's status callback, on its thread.
    std::shared_ptr<std::atomic<bool>> connected_ = std::make_shared<std::atomic<bool>>(false);
    std::vector<std::string> links_;
    bool placed_ = false;  // the schedule runs for the record stored now
    PlacementSchedule placement_;
    // Key-owned ids whose claims this node keeps stored, with the value id
    // each is stored under. Under publishMutex_.
    std::unordered_map<std::string, std::uint64_t> ownedIds_;
    // Values under ids already judged, shared with the lookups under way.
    std::shared_ptr<ClaimVerdicts> claimVerdicts_ =
        std::make_shared<ClaimVerdicts>(kClaimVerdictsRemembered);
    std::mt19937 random_{std::random_device{}()};  // value ids, not secrets
    // Room members: the sequence numbers of the member values put; the
    // listens, by token. Under publishMutex_.
    MemberSequence memberSeq_;
    // Leaves of room members put and not answered yet: stop() waits for
    // them as for the record's withdrawal, so that the others hear them now
    // rather than when the members' values expire a minute later.
    std::shared_ptr<std::atomic<int>> leavesInFlight_ = std::make_shared<std::atomic<int>>(0);
    std::unordered_map<std::uint64_t, std::shared_future<std::size_t>> roomListens_;
    // Key-owned ids followed while away (followId), by token. Under
    // publishMutex_.
    std::unordered_map<std::uint64_t, std::shared_future<std::size_t>> idListens_;
    std::uint64_t nextListen_ = 1;
    // Chosen PeerJS ids this node keeps a record of: the value's sequence
    // number, and for a released id when its reservation ends. Under
    // publishMutex_.
    // Each record a value id of its own, fresh when the node starts
    // keeping the id, so that a value put before (taken back, or past its
    // reservation, and still stored until it expires) never outranks it by
    // its sequence number; the old one no longer holds, and readers skip
    // it.
    struct PeerJsIdPut {
        PeerJsIdRecord record;
        std::uint64_t valueId = 0;
        std::uint16_t seq = 0;
        // While live, 0; else when (ms since 1970) the node stops keeping
        // the record: a while after it stopped holding, so that its last
        // version has replaced the live one where that was stored.
        std::uint64_t letGoAt = 0;
    };
    std::unordered_map<std::string, PeerJsIdPut> peerJsIds_;
    std::unordered_map<std::uint64_t, std::shared_future<std::size_t>> peerJsListens_;
    void putPeerJsIdLocked(PeerJsIdPut& put);
    void sweepPeerJsIds();
};

}  // namespace dwrtc
