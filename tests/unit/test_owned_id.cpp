// Key-owned ids without a network: ids from keys, claims that hold and
// claims that do not, their JSON form, challenges.
#include <gtest/gtest.h>

#include <string>

#include "dwrtc/owned_id.h"
#include "dwrtc/session_id.h"
#include "owner_keys.h"

namespace dwrtc {
namespace {

const std::string kNode(32, 'a');
const std::string kOtherNode(32, 'b');

TEST(OwnedId, IsTheHashOfTheKeyAndLooksLikeNoNodeSessionId) {
    test::OwnerKey key;
    EXPECT_TRUE(isOwnedId(key.id())) << key.id();
    EXPECT_TRUE(isValidSessionId(key.id()));
    EXPECT_FALSE(isNodeSessionId(key.id()));
    EXPECT_EQ(key.id().size(), kSessionIdLength);
    EXPECT_EQ(ownedIdOfKey(key.publicKey()), key.id());
    test::OwnerKey other;
    EXPECT_NE(other.id(), key.id());
    EXPECT_EQ(ownedIdOfKey(key.publicKey().substr(1)), "");
    std::string compressed = key.publicKey();
    compressed[0] = 0x02;
    EXPECT_EQ(ownedIdOfKey(compressed), "");
}

TEST(OwnedId, ShapesThatAreNotOwnedIds) {
    EXPECT_FALSE(isOwnedId("k" + std::string(47, '0')));
    EXPECT_FALSE(isOwnedId("k" + std::string(49, '0')));
    EXPECT_FALSE(isOwnedId("x" + std::string(48, '0')));
    EXPECT_FALSE(isOwnedId("k" + std::string(47, '0') + "g"));
    EXPECT_TRUE(isOwnedId("K" + std::string(48, 'A')));
}

TEST(OwnedId, AGoodClaimHolds) {
    test::OwnerKey key;
    IdClaim claim = key.claim(kNode, "00112233445566778899aabbccddeeff", 1700000000000);
    std::string why;
    EXPECT_TRUE(verifyClaim(claim, why)) << why;
}

TEST(OwnedId, AClaimForAnotherNodeChallengeOrTimeDoesNotHold) {
    test::OwnerKey key;
    IdClaim claim = key.claim(kNode, "c1", 1700000000000);
    std::string why;
    IdClaim moved = claim;
    moved.node = kOtherNode;
    EXPECT_FALSE(verifyClaim(moved, why));
    EXPECT_EQ(why, "the signature does not hold");
    IdClaim replayed = claim;
    replayed.challenge = "c2";
    EXPECT_FALSE(verifyClaim(replayed, why));
    IdClaim newer = claim;
    newer.time += 1;
    EXPECT_FALSE(verifyClaim(newer, why));
}

TEST(OwnedId, AnotherKeyCannotClaimTheId) {
    test::OwnerKey owner, mallory;
    // Mallory signs with her key but names the owner's id.
    IdClaim claim = mallory.claim(kNode, "c", 1700000000000);
    claim.id = owner.id();
    std::string why;
    EXPECT_FALSE(verifyClaim(claim, why));
    EXPECT_EQ(why, "the key does not give the id");
    // Or she puts the owner's key beside her signature.
    IdClaim borrowed = mallory.claim(kNode, "c", 1700000000000);
    borrowed.id = owner.id();
    borrowed.key = owner.publicKey();
    EXPECT_FALSE(verifyClaim(borrowed, why));
    EXPECT_EQ(why, "the signature does not hold");
}

TEST(OwnedId, AFlippedBitInTheSignatureOrKeyFails) {
    test::OwnerKey key;
    IdClaim claim = key.claim(kNode, "c", 1700000000000);
    std::string why;
    IdClaim bad = claim;
    bad.signature[10] ^= 1;
    EXPECT_FALSE(verifyClaim(bad, why));
    bad = claim;
    bad.key[40] ^= 1;
    bad.id = ownedIdOfKey(bad.key);
    EXPECT_FALSE(verifyClaim(bad, why));  // not on the curve, or not the signer
    bad = claim;
    bad.signature.resize(63);
    EXPECT_FALSE(verifyClaim(bad, why));
}

TEST(OwnedId, JsonRoundTrip) {
    test::OwnerKey key;
    IdClaim claim = key.claim(kNode, "0123", 1700000000001);
    claim.links = {"wss://127.0.0.1:4230"};
    IdClaim back;
    ASSERT_TRUE(decodeIdClaim(encodeIdClaim(claim), back));
    EXPECT_EQ(back.id, claim.id);
    EXPECT_EQ(back.key, claim.key);
    EXPECT_EQ(back.node, claim.node);
    EXPECT_EQ(back.challenge, claim.challenge);
    EXPECT_EQ(back.time, claim.time);
    EXPECT_EQ(back.signature, claim.signature);
    EXPECT_EQ(back.links, claim.links);
    std::string why;
    EXPECT_TRUE(verifyClaim(back, why)) << why;
}

TEST(OwnedId, MalformedJsonIsRefused) {
    IdClaim out;
    EXPECT_FALSE(decodeIdClaim("", out));
    EXPECT_FALSE(decodeIdClaim("[]", out));
    EXPECT_FALSE(decodeIdClaim("{\"v\":1}", out));
    test::OwnerKey key;
    std::string good = encodeIdClaim(key.claim(kNode, "c", 5));
    ASSERT_TRUE(decodeIdClaim(good, out));
    std::string wrongVersion = good;
    wrongVersion.replace(wrongVersion.find("\"v\":1"), 5, "\"v\":9");
    EXPECT_FALSE(decodeIdClaim(wrongVersion, out));
}

TEST(OwnedId, ChallengesDifferBySessionAndSecret) {
    std::string a = claimChallenge("secret one, 32 bytes long.......", "s1");
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a, claimChallenge("secret one, 32 bytes long.......", "s1"));
    EXPECT_NE(a, claimChallenge("secret one, 32 bytes long.......", "s2"));
    EXPECT_NE(a, claimChallenge("secret two, 32 bytes long.......", "s1"));
}

TEST(OwnedId, RecordNamesOfPrivateNetworksHideTheId) {
    std::string id = "k" + std::string(48, '1');
    EXPECT_EQ(idRecordName("", id), "dwrtc/id/" + id);
    std::string hidden = idRecordName("a private network's secret", id);
    EXPECT_EQ(hidden.find(id), std::string::npos);
    EXPECT_NE(hidden, idRecordName("another network's secret!!", id));
}

}  // namespace
}  // namespace dwrtc
