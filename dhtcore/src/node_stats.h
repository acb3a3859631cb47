// NodeStats: what a node counts for its operator (dwrtc_node_stats(), the
// module's dwrtc_status page). Plain relaxed atomics: each is written by
// one thread and read now and then by the owner; the counters of the owner
// thread and of the link thread sit on cache lines of their own, so
// counting costs neither of them a shared line.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace dwrtc {

// Upper bounds of the lookup latency buckets, in milliseconds; one more
// bucket holds the rest.
inline constexpr std::array<std::uint32_t, 9> kLookupBucketsMs = {1,   5,   10,   25,  50,
                                                                  100, 250, 1000, 5000};

struct NodeStats {
    using Counter = std::atomic<std::uint64_t>;

    static void add(Counter& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
    static std::uint64_t get(const Counter& c) { return c.load(std::memory_order_relaxed); }

    // Owner thread (Node::submit() and the deliveries it makes).
    struct alignas(64) Owner {
        Counter fromClients{0};      // client messages taken
        Counter invalid{0};          // refused as invalid
        Counter deliveredLocally{0};  // to a session of this node, sender here
        Counter notFound{0};         // "not found" for a recipient of this node
        Counter claimsRefused{0};    // claims of sessions here refused (dwrtc_claims)
    } owner;

    // Link thread (Router, LinkService).
    struct alignas(64) Links {
        Counter linksIn{0};  // open now
        Counter linksOut{0};
        Counter linksViaSiblings{0};  // opened where a sibling said the node was
        // Proven links open now with nodes that are not siblings (workers of
        // this nginx): the links that make this node part of the network.
        Counter linksOutside{0};
        Counter sentOverLinks{0};      // msg frames written
        Counter receivedOverLinks{0};  // msg frames taken from proven nodes
        Counter deliveredFromLinks{0};  // of those, to a session here
        Counter notFound{0};           // "not found" told to a sender here
        Counter unreachable{0};
        Counter queueFull{0};
        Counter budgetFull{0};  // of those, for a sender's or the node's hold budget
        Counter lookupsLimited{0};  // "rate limited": a sender's new lookups
        Counter lookups{0};
        Counter lookupsFailed{0};  // found no record
        Counter lookupUsSum{0};
        std::array<Counter, kLookupBucketsMs.size() + 1> lookupBuckets{};
        Counter claimChecks{0};  // claim signatures checked for links' senders
        // Links closed because their peer needed more senders or claim
        // checks than dwrtc_link_claims allows.
        Counter linksRefusedForClaims{0};
        Counter roomFull{0};  // joins answered "room full"
        // Member values of other nodes not followed: past a room's bounds
        // (dwrtc_room_remote_members, dwrtc_room_members_per_node) or with
        // every node check in use (dwrtc_room_node_checks).
        Counter roomMembersNotFollowed{0};
        Counter claimsAhead{0};  // in link frames: the link was closed
        // Chosen PeerJS ids reserved for their tokens now, and ids let go
        // at once because dwrtc_peerjs_id_reservations were held already.
        Counter peerJsIdsReserved{0};
        Counter peerJsIdsNotReserved{0};
    } links;

    // OpenDHT's threads (NodeDirectory's lookups and listens).
    struct alignas(64) Directory {
        // Claims under key-owned ids dated too far ahead (dwrtc_claim_clock_skew):
        // not believed until they could be.
        Counter claimsAhead{0};
        // Lookups (and batches a listen handed over) that had more claims
        // to check than dwrtc_lookup_claim_checks: the rest waited.
        Counter claimChecksSpent{0};
    } directory;

    void addLookup(std::chrono::steady_clock::duration took, bool found) {
        auto us = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(took).count());
        add(links.lookups);
        if (!found) {
            add(links.lookupsFailed);
        }
        add(links.lookupUsSum, us);
        std::size_t i = 0;
        while (i < kLookupBucketsMs.size() && us > 1000u * kLookupBucketsMs[i]) {
            ++i;
        }
        add(links.lookupBuckets[i]);
    }
};

}  // namespace dwrtc
