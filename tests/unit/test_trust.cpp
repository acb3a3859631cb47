// Trust between nodes, without a network: node ids from keys, hello proofs
// bound to one link and one role, private network membership.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "dwrtc/session_id.h"
#include "node_keys.h"
#include "dwrtc/trust.h"

namespace dwrtc {
namespace {

using test::pemOf;

NodeKey rsaKey() { return test::rsaNodeKey(); }

// Keys are slow to make; the tests share two.
const NodeKey& alice() {
    static const NodeKey key = rsaKey();
    return key;
}
const NodeKey& mallory() {
    static const NodeKey key = rsaKey();
    return key;
}

const std::string kBinding(32, '\x42');
const std::string kOtherBinding(32, '\x43');
const std::string kSecret = "the members' secret, 32 bytes ok";

TEST(NodeKey, IdIsTheHashOfItsPublicKey) {
    EXPECT_TRUE(isValidNodePrefix(alice().id())) << alice().id();
    EXPECT_EQ(alice().id(), nodeIdOfPublicKey(alice().publicKey()));
    EXPECT_NE(alice().id(), mallory().id());
}

TEST(NodeKey, RefusesWeakOrNonRsaKeys) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> small(EVP_RSA_gen(1024), EVP_PKEY_free);
    EXPECT_THROW(NodeKey::fromPem(pemOf(small.get())), std::runtime_error);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ec(EVP_EC_gen("P-256"), EVP_PKEY_free);
    EXPECT_THROW(NodeKey::fromPem(pemOf(ec.get())), std::runtime_error);
    EXPECT_THROW(NodeKey::fromPem("not a key"), std::runtime_error);
}

TEST(LinkProof, HoldsForItsNodeRoleAndBinding) {
    LinkProof proof = makeLinkProof(alice(), LinkRole::Initiator, kBinding, {});
    std::string why;
    EXPECT_TRUE(verifyLinkProof(alice().id(), proof, LinkRole::Initiator, kBinding, {}, why))
        << why;
    EXPECT_TRUE(proof.networkMac.empty());
}

TEST(LinkProof, DoesNotHoldOnAnotherLink) {
    // What a replayed hello is: good, but for another TLS session.
    LinkProof proof = makeLinkProof(alice(), LinkRole::Initiator, kBinding, {});
    std::string why;
    EXPECT_FALSE(verifyLinkProof(alice().id(), proof, LinkRole::Initiator, kOtherBinding, {}, why));
    EXPECT_EQ(why, "its signature does not hold for this link");
    EXPECT_FALSE(verifyLinkProof(alice().id(), proof, LinkRole::Initiator, "", {}, why));
    EXPECT_EQ(why, "no channel binding");
}

TEST(LinkProof, DoesNotHoldForTheOtherRole) {
    // A hello sent back to the node that made it.
    LinkProof proof = makeLinkProof(alice(), LinkRole::Initiator, kBinding, {});
    std::string why;
    EXPECT_FALSE(verifyLinkProof(alice().id(), proof, LinkRole::Responder, kBinding, {}, why));
    EXPECT_EQ(why, "its signature does not hold for this link");
}

TEST(LinkProof, KeyMustNameTheNode) {
    // Mallory's own proof, offered in Alice's name.
    LinkProof proof = makeLinkProof(mallory(), LinkRole::Initiator, kBinding, {});
    std::string why;
    EXPECT_FALSE(verifyLinkProof(alice().id(), proof, LinkRole::Initiator, kBinding, {}, why));
    EXPECT_EQ(why, "its key does not belong to node " + alice().id());
    // Alice's key with Mallory's signature.
    LinkProof mixed = makeLinkProof(alice(), LinkRole::Initiator, kBinding, {});
    mixed.signature = proof.signature;
    EXPECT_FALSE(verifyLinkProof(alice().id(), mixed, LinkRole::Initiator, kBinding, {}, why));
    EXPECT_EQ(why, "its signature does not hold for this link");
}

TEST(LinkProof, AnyChangedBitBreaksIt) {
    LinkProof good = makeLinkProof(alice(), LinkRole::Responder, kBinding, {});
    std::string why;
    for (std::size_t i = 0; i < good.signature.size(); i += 17) {
        LinkProof bad = good;
        bad.signature[i] = static_cast<char>(bad.signature[i] ^ 0x01);
        EXPECT_FALSE(verifyLinkProof(alice().id(), bad, LinkRole::Responder, kBinding, {}, why))
            << "byte " << i;
    }
    LinkProof truncated = good;
    truncated.signature.pop_back();
    EXPECT_FALSE(verifyLinkProof(alice().id(), truncated, LinkRole::Responder, kBinding, {}, why));
    LinkProof badKey = good;
    badKey.key.back() = static_cast<char>(badKey.key.back() ^ 0x01);
    EXPECT_FALSE(verifyLinkProof(alice().id(), badKey, LinkRole::Responder, kBinding, {}, why));
    LinkProof trailing = good;
    trailing.key.push_back('\0');
    EXPECT_FALSE(verifyLinkProof(nodeIdOfPublicKey(trailing.key), trailing, LinkRole::Responder,
                                 kBinding, {}, why));
    EXPECT_EQ(why, "its key is not a public key");
}

TEST(LinkProof, PrivateNetworkNeedsTheSecret) {
    std::string why;
    LinkProof member = makeLinkProof(alice(), LinkRole::Initiator, kBinding, kSecret);
    EXPECT_EQ(member.networkMac.size(), 32u);
    EXPECT_TRUE(verifyLinkProof(alice().id(), member, LinkRole::Initiator, kBinding, kSecret, why))
        << why;

    LinkProof outsider = makeLinkProof(alice(), LinkRole::Initiator, kBinding, {});
    EXPECT_FALSE(
        verifyLinkProof(alice().id(), outsider, LinkRole::Initiator, kBinding, kSecret, why));
    EXPECT_EQ(why, "it is not a member of this private network");

    LinkProof guessed =
        makeLinkProof(alice(), LinkRole::Initiator, kBinding, "another secret, 32 bytes long!!");
    EXPECT_FALSE(
        verifyLinkProof(alice().id(), guessed, LinkRole::Initiator, kBinding, kSecret, why));
    EXPECT_EQ(why, "it is not a member of this private network");

    // The MAC is bound to the link like the signature.
    EXPECT_FALSE(
        verifyLinkProof(alice().id(), member, LinkRole::Initiator, kOtherBinding, kSecret, why));

    // And an open-network node does not take a private network's member.
    EXPECT_FALSE(verifyLinkProof(alice().id(), member, LinkRole::Initiator, kBinding, {}, why));
    EXPECT_EQ(why, "it speaks for a private network");
}

TEST(HelloSignedBytes, KeepFieldsApart) {
    // A NUL ends every field, so no node id can run into the binding.
    EXPECT_NE(helloSignedBytes(LinkRole::Initiator, "ab", "c"),
              helloSignedBytes(LinkRole::Initiator, "a", "bc"));
    EXPECT_NE(helloSignedBytes(LinkRole::Initiator, "a", "b"),
              helloSignedBytes(LinkRole::Responder, "a", "b"));
}

TEST(PrivateNetwork, IdsAndRecordNamesDependOnTheSecret) {
    EXPECT_NE(privateNetworkId(kSecret), privateNetworkId("another secret, 32 bytes long!!"));
    EXPECT_NE(privateNetworkId(kSecret), kOpenNetworkId);
    EXPECT_NE(privateNetworkId(kSecret), 0u);
    EXPECT_EQ(privateNetworkId(kSecret), privateNetworkId(kSecret));

    const std::string node = alice().id();
    EXPECT_EQ(nodeRecordName({}, node), "dwrtc/node/" + node);
    std::string hidden = nodeRecordName(kSecret, node);
    EXPECT_EQ(hidden.find(node), std::string::npos);
    EXPECT_EQ(hidden, nodeRecordName(kSecret, node));
    EXPECT_NE(hidden, nodeRecordName("another secret, 32 bytes long!!", node));
}

TEST(Hmac, MatchesRfc4231TestCase2) {
    std::string mac = hmacSha256("Jefe", "what do ya want for nothing?");
    static const unsigned char expected[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                             0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                             0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                             0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    EXPECT_EQ(mac, std::string(reinterpret_cast<const char*>(expected), sizeof expected));
}

}  // namespace
}  // namespace dwrtc
