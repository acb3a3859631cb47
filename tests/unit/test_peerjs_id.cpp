// Chosen PeerJS ids (dwrtc/peerjs_id.h): the token's salted hash, the
// record's codec, the rule every node applies to decide who holds an id,
// and PeerJsIdClaims against a fake DHT and clock.
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "dwrtc/peerjs_id.h"
#include "peerjs_id_claims.h"

namespace dwrtc {
namespace {

const std::string kNodeA(32, 'a');
const std::string kNodeB(32, 'b');

PeerJsIdRecord record(std::string node, std::uint64_t time, std::string token,
                      std::uint64_t until = 0) {
    PeerJsIdRecord r;
    r.id = "alice";
    r.node = std::move(node);
    r.time = time;
    r.tokenHash = peerJsTokenHash("alice", token);
    r.until = until;
    return r;
}

TEST(PeerJsId, ChosenIdsAreThoseNoNodeGives) {
    EXPECT_TRUE(isChosenPeerJsId("alice"));
    EXPECT_TRUE(isChosenPeerJsId("my peer-1_x"));
    EXPECT_FALSE(isChosenPeerJsId(""));
    EXPECT_FALSE(isChosenPeerJsId("-alice"));
    EXPECT_FALSE(isChosenPeerJsId(std::string(32, 'a') + "-0123456789abcdef"));
    EXPECT_FALSE(isChosenPeerJsId("k" + std::string(48, '1')));
}

TEST(PeerJsId, TheTokenHashIsSaltedByTheId) {
    std::string h = peerJsTokenHash("alice", "secret");
    EXPECT_EQ(h.size(), 64u);
    EXPECT_EQ(h, peerJsTokenHash("alice", "secret"));
    EXPECT_NE(h, peerJsTokenHash("bob", "secret"));
    EXPECT_NE(h, peerJsTokenHash("alice", "secret2"));
    EXPECT_EQ(h.find("secret"), std::string::npos);
    // The documented text (docs/peerjs.md), hashed by sha256sum: the label
    // and the id are the salt, not a plain hash of the token.
    EXPECT_EQ(h, "7753fe25711cdc4854bb1f3c13fcb73e12677a1354a27df46efc7e79c4a99085");
    EXPECT_NE(h, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
}

TEST(PeerJsId, RecordsRoundTrip) {
    PeerJsIdRecord r = record(kNodeA, 1700000000123, "t", 1700000060123);
    PeerJsIdRecord back;
    ASSERT_TRUE(decodePeerJsIdRecord(encodePeerJsIdRecord(r), back));
    EXPECT_EQ(back.id, r.id);
    EXPECT_EQ(back.node, r.node);
    EXPECT_EQ(back.time, r.time);
    EXPECT_EQ(back.tokenHash, r.tokenHash);
    EXPECT_EQ(back.until, r.until);
}

TEST(PeerJsId, MalformedRecordsAreRefused) {
    PeerJsIdRecord out;
    std::string hash = peerJsTokenHash("alice", "t");
    auto text = [&](std::string id, std::string node, std::string time, std::string token,
                    std::string until) {
        return "{\"v\":1,\"id\":\"" + id + "\",\"node\":\"" + node + "\",\"time\":" + time +
               ",\"token\":\"" + token + "\",\"until\":" + until + "}";
    };
    EXPECT_TRUE(decodePeerJsIdRecord(text("alice", kNodeA, "5", hash, "0"), out));
    EXPECT_FALSE(decodePeerJsIdRecord(text("-x", kNodeA, "5", hash, "0"), out));
    EXPECT_FALSE(decodePeerJsIdRecord(text("alice", "A" + kNodeA.substr(1), "5", hash, "0"), out));
    EXPECT_FALSE(decodePeerJsIdRecord(text("alice", kNodeA, "-5", hash, "0"), out));
    EXPECT_FALSE(decodePeerJsIdRecord(text("alice", kNodeA, "5", hash.substr(2), "0"), out));
    EXPECT_FALSE(decodePeerJsIdRecord(text("alice", kNodeA, "5", hash, "\"0\""), out));
    EXPECT_FALSE(decodePeerJsIdRecord("{\"v\":2}", out));
    EXPECT_FALSE(decodePeerJsIdRecord("[]", out));
    EXPECT_FALSE(decodePeerJsIdRecord("", out));
}

TEST(PeerJsIdHolder, TheEarliestRequestWinsAndTiesGoToTheLowerNode) {
    auto holder = peerJsIdHolder({record(kNodeB, 10, "x"), record(kNodeA, 20, "y")}, 100);
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->node, kNodeB);
    holder = peerJsIdHolder({record(kNodeB, 10, "x"), record(kNodeA, 10, "y")}, 100);
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->node, kNodeA);
    // Every order of the same records gives the same holder.
    holder = peerJsIdHolder({record(kNodeA, 10, "y"), record(kNodeB, 10, "x")}, 100);
    EXPECT_EQ(holder->node, kNodeA);
}

TEST(PeerJsIdHolder, TheSameTokenTakesOverAndAnotherDoesNot) {
    auto holder = peerJsIdHolder(
        {record(kNodeA, 10, "x"), record(kNodeB, 20, "x"), record(kNodeA, 30, "y")}, 100);
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->node, kNodeB);
    EXPECT_EQ(holder->time, 20u);
}

TEST(PeerJsIdHolder, AReservationHoldsUntilItEnds) {
    auto holder = peerJsIdHolder({record(kNodeA, 10, "x", 50), record(kNodeB, 20, "y")}, 40);
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->node, kNodeA);
    holder = peerJsIdHolder({record(kNodeA, 10, "x", 50), record(kNodeB, 20, "y")}, 50);
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->node, kNodeB);
    EXPECT_FALSE(peerJsIdHolder({record(kNodeA, 10, "x", 50)}, 60));
}

// The DHT as a map, answered at once or when the test says.
class FakeStore : public PeerJsIdStore {
public:
    std::map<std::string, PeerJsIdRecord> stored;  // by node
    bool reached = true;
    bool answerAtOnce = true;
    std::deque<std::function<void()>> later;
    std::function<void(Records)> follower;
    std::uint64_t follows = 0, unfollows = 0;

    void putPeerJsId(const PeerJsIdRecord& r) override { stored[r.node] = r; }
    void releasePeerJsId(const std::string&, std::uint64_t until) override {
        stored[kNodeA].until = until;
    }
    void dropPeerJsId(const std::string&) override { stored.erase(kNodeA); }
    void getPeerJsId(const std::string&,
                     std::function<void(Records, bool reached)> done) override {
        Records records;
        for (auto& [node, r] : stored) records.push_back(r);
        auto answer = [records, done, this] { done(records, reached); };
        if (answerAtOnce) {
            answer();
        } else {
            later.push_back(answer);
        }
    }
    std::uint64_t followPeerJsId(const std::string&,
                                 std::function<void(Records)> changed) override {
        follower = changed;
        return ++follows;
    }
    void unfollowPeerJsId(const std::string&, std::uint64_t) override { ++unfollows; }
    void tellFollower() {
        Records records;
        for (auto& [node, r] : stored) records.push_back(r);
        if (follower) follower(records);
    }
};

struct ClaimsFixture : ::testing::Test {
    FakeStore store;
    std::uint64_t wall = 1000000;
    RouterClock::time_point now{};
    std::vector<std::pair<std::string, PeerJsIdClaims::Loss>> losses;
    std::vector<std::string> logs;
    PeerJsIdConfig config;
    std::unique_ptr<PeerJsIdClaims> claims;

    void SetUp() override {
        config.reserve = std::chrono::milliseconds(60000);
        config.lookupWait = std::chrono::milliseconds(5000);
        claims = std::make_unique<PeerJsIdClaims>(
            config, kNodeA, store, [](std::function<void()> task) { task(); },
            [this](int, std::string line) { logs.push_back(line); },
            [this](const std::string& s, PeerJsIdClaims::Loss why, const PeerJsIdRecord&) {
                losses.emplace_back(s, why);
            },
            [this] { return wall; }, [this] { return now; }, &stats);
    }
    NodeStats stats;
    PeerJsIdClaims::Verdict ask(const std::string& session, const std::string& token,
                                const std::string& id = "alice") {
        std::optional<PeerJsIdClaims::Verdict> verdict;
        claims->claim(session, id, token, [&](PeerJsIdClaims::Verdict v) { verdict = v; });
        EXPECT_TRUE(verdict);
        return verdict.value_or(PeerJsIdClaims::Verdict::NotInNetwork);
    }
};

TEST_F(ClaimsFixture, AFreeIdIsTakenAndStored) {
    EXPECT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Open);
    EXPECT_EQ(claims->sessionOf("alice"), "s1");
    ASSERT_TRUE(store.stored.count(kNodeA));
    EXPECT_EQ(store.stored[kNodeA].tokenHash, peerJsTokenHash("alice", "t"));
    EXPECT_EQ(store.stored[kNodeA].time, wall);
}

TEST_F(ClaimsFixture, AnIdHeldElsewhereWithAnotherTokenIsTaken) {
    store.stored[kNodeB] = record(kNodeB, 5, "other");
    EXPECT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Taken);
    EXPECT_EQ(claims->sessionOf("alice"), "");
    EXPECT_FALSE(store.stored.count(kNodeA));
}

TEST_F(ClaimsFixture, TheSameTokenTakesTheIdFromAnotherNodeAfterItsRecord) {
    store.stored[kNodeB] = record(kNodeB, wall + 500, "t");  // B's clock is ahead
    EXPECT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Open);
    EXPECT_EQ(store.stored[kNodeA].time, wall + 501);
}

TEST_F(ClaimsFixture, ANewerSessionOfTheTokenElsewhereClosesTheOneHere) {
    ASSERT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Open);
    store.stored[kNodeB] = record(kNodeB, wall + 1, "t");
    store.tellFollower();
    ASSERT_EQ(losses.size(), 1u);
    EXPECT_EQ(losses[0].first, "s1");
    EXPECT_EQ(losses[0].second, PeerJsIdClaims::Loss::TakenOver);
    EXPECT_EQ(claims->sessionOf("alice"), "");
    EXPECT_FALSE(store.stored.count(kNodeA));
}

TEST_F(ClaimsFixture, ALostRaceYieldsButARecordDatedBackLaterOnlyWarns) {
    ASSERT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Open);
    store.stored[kNodeB] = record(kNodeB, wall - 1, "other");
    store.tellFollower();
    ASSERT_EQ(losses.size(), 1u);
    EXPECT_EQ(losses[0].second, PeerJsIdClaims::Loss::Lost);

    store.stored.clear();
    losses.clear();
    ASSERT_EQ(ask("s2", "t"), PeerJsIdClaims::Verdict::Open);
    now += std::chrono::minutes(1);
    store.stored[kNodeB] = record(kNodeB, 1, "other");
    store.tellFollower();
    store.tellFollower();
    EXPECT_TRUE(losses.empty());
    EXPECT_EQ(claims->sessionOf("alice"), "s2");
    int warnings = 0;
    for (auto& line : logs) warnings += line.find("earlier time") != std::string::npos;
    EXPECT_EQ(warnings, 1);
}

TEST_F(ClaimsFixture, AClosedSessionsIdIsReservedForItsToken) {
    ASSERT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Open);
    claims->release("s1");
    EXPECT_EQ(store.stored[kNodeA].until, wall + 60000);
    EXPECT_EQ(ask("s2", "other"), PeerJsIdClaims::Verdict::Taken);
    EXPECT_EQ(ask("s3", "t"), PeerJsIdClaims::Verdict::Open);
    claims->release("s3");
    wall += 60001;
    claims->onTick();
    EXPECT_EQ(ask("s4", "other"), PeerJsIdClaims::Verdict::Open);
}

// A stranger that opens and closes sessions with fresh ids makes the node
// keep a record for each until its reservation ends; past the cap the id
// is let go at once, and the operator sees it counted.
TEST_F(ClaimsFixture, ReservationsPastTheCapAreLetGoAtOnce) {
    config.reservations = 1;
    SetUp();
    ASSERT_EQ(ask("s1", "t", "alice"), PeerJsIdClaims::Verdict::Open);
    claims->release("s1");
    EXPECT_EQ(claims->reserved(), 1u);
    EXPECT_EQ(NodeStats::get(stats.links.peerJsIdsReserved), 1u);
    store.stored.clear();  // alice's record lives under her own key

    ASSERT_EQ(ask("s2", "t", "bob"), PeerJsIdClaims::Verdict::Open);
    claims->release("s2");
    EXPECT_FALSE(store.stored.count(kNodeA)) << "bob's record was not dropped";
    EXPECT_EQ(claims->reserved(), 1u);
    EXPECT_EQ(NodeStats::get(stats.links.peerJsIdsNotReserved), 1u);
    EXPECT_EQ(ask("s3", "other", "bob"), PeerJsIdClaims::Verdict::Open);
    EXPECT_EQ(ask("s4", "other", "alice"), PeerJsIdClaims::Verdict::Taken);
    int warnings = 0;
    for (auto& line : logs) warnings += line.find("dwrtc_peerjs_id_reservations") != std::string::npos;
    EXPECT_EQ(warnings, 1);

    // Once alice's reservation ends there is room again.
    claims->release("s3");  // bob let go again: still full
    EXPECT_EQ(NodeStats::get(stats.links.peerJsIdsNotReserved), 2u);
    wall += 60001;
    claims->onTick();
    EXPECT_EQ(claims->reserved(), 0u);
    EXPECT_EQ(NodeStats::get(stats.links.peerJsIdsReserved), 0u);
    ASSERT_EQ(ask("s5", "t", "carol"), PeerJsIdClaims::Verdict::Open);
    claims->release("s5");
    EXPECT_EQ(claims->reserved(), 1u);
}

TEST_F(ClaimsFixture, TheSameTokenHereTakesTheIdFromTheOlderSession) {
    ASSERT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::Open);
    EXPECT_EQ(ask("s2", "other"), PeerJsIdClaims::Verdict::Taken);
    EXPECT_EQ(ask("s3", "t"), PeerJsIdClaims::Verdict::Open);
    ASSERT_EQ(losses.size(), 1u);
    EXPECT_EQ(losses[0].first, "s1");
    EXPECT_EQ(claims->sessionOf("alice"), "s3");
    EXPECT_EQ(claims->idOf("s1"), "");
}

TEST_F(ClaimsFixture, NoAnswerInTimeOrNoDhtIsNotInTheNetwork) {
    store.reached = false;
    EXPECT_EQ(ask("s1", "t"), PeerJsIdClaims::Verdict::NotInNetwork);
    store.reached = true;
    store.answerAtOnce = false;
    std::optional<PeerJsIdClaims::Verdict> verdict;
    claims->claim("s2", "alice", "t", [&](PeerJsIdClaims::Verdict v) { verdict = v; });
    now += std::chrono::milliseconds(4999);
    claims->onTick();
    EXPECT_FALSE(verdict);
    EXPECT_EQ(claims->waiting(), 1u);
    now += std::chrono::milliseconds(1);
    claims->onTick();
    EXPECT_EQ(verdict, PeerJsIdClaims::Verdict::NotInNetwork);
    EXPECT_EQ(claims->waiting(), 0u);
    // The DHT's late answer changes nothing.
    store.later.front()();
    EXPECT_EQ(claims->sessionOf("alice"), "");
}

TEST_F(ClaimsFixture, AClaimOfAClosedSessionIsForgotten) {
    store.answerAtOnce = false;
    bool called = false;
    claims->claim("s1", "alice", "t", [&](PeerJsIdClaims::Verdict) { called = true; });
    claims->release("s1");
    store.later.front()();
    EXPECT_FALSE(called);
    EXPECT_EQ(claims->sessionOf("alice"), "");
}

}  // namespace
}  // namespace dwrtc
