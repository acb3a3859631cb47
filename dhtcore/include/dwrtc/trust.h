// Trust between nodes: what a node checks before it believes another one.
//
// A node's id is the first 128 bits of the SHA-256 of its public key. Two
// nodes that open a link prove to each other that each holds the private
// key of the id it speaks for, by signing the link's channel binding (a
// value both ends of one TLS session derive from its secrets, and no third
// party can make equal on two sessions). In a private network each also
// proves that it holds the network's secret. None of this knows the
// transport: LinkService hands the binding in, Router checks the hello.
// Free functions and a value type; safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace dwrtc {

// The node id of a public key (SubjectPublicKeyInfo DER).
std::string nodeIdOfPublicKey(std::string_view spkiDer);

// The side of a link a hello speaks for: the node that opened the
// connection, or the node that accepted it. Signing the role keeps a hello
// from being reflected back to its sender.
enum class LinkRole { Initiator, Responder };

// What a node puts in its hello to prove itself (raw bytes, not hex).
struct LinkProof {
    std::string key;         // the node's public key, SubjectPublicKeyInfo DER
    std::string signature;   // RSASSA-PKCS1-v1_5 SHA-256 over helloSignedBytes()
    std::string networkMac;  // private networks: HMAC-SHA256 over the same bytes
};

// A node's private key (RSA, at least 2048 bits). Movable, not copyable.
class NodeKey {
public:
    // From a PEM private key (what OpenDHT's PrivateKey::serialize() makes).
    // Throws std::runtime_error if it is not an RSA key of 2048 bits or more.
    static NodeKey fromPem(std::string_view pem);

    NodeKey(NodeKey&&) noexcept;
    NodeKey& operator=(NodeKey&&) noexcept;
    ~NodeKey();

    const std::string& id() const { return id_; }
    const std::string& publicKey() const { return publicKey_; }  // SPKI DER
    std::string sign(std::string_view data) const;

private:
    struct Key;
    NodeKey() = default;
    std::unique_ptr<Key> key_;
    std::string publicKey_;
    std::string id_;
};

// The bytes a hello signs: a context string, the role, the node id and the
// channel binding, each ended by a NUL so no field can run into the next.
std::string helloSignedBytes(LinkRole role, std::string_view node, std::string_view binding);

// The proof for this node's hello on a link with this binding.
LinkProof makeLinkProof(const NodeKey& key, LinkRole role, std::string_view binding,
                        std::string_view networkKey);

// Checks the hello of the peer that plays `role` on a link with this
// binding: its key names `node`, its signature is good, and in a private
// network (networkKey not empty) its network MAC is. False with a short
// reason in `why` otherwise.
bool verifyLinkProof(std::string_view node, const LinkProof& proof, LinkRole role,
                     std::string_view binding, std::string_view networkKey, std::string& why);

// The OpenDHT network id of the open DWRTC network ("DWRT"): our nodes
// never join OpenDHT's public network, even when bootstrapped into it.
constexpr std::uint32_t kOpenNetworkId = 0x44575254;

// HMAC-SHA256 (32 bytes).
std::string hmacSha256(std::string_view key, std::string_view data);

// The OpenDHT network id of a private network (never the open network's),
// and the name its node records are stored under: without the secret one
// can neither join its DHT by accident nor find its records.
std::uint32_t privateNetworkId(std::string_view networkKey);
std::string nodeRecordName(std::string_view networkKey, std::string_view node);

// The name of any DWRTC record: "dwrtc/<kind>/<key>" in the open network;
// in a private one the key is replaced by an HMAC of the network's secret
// over the context string and the key, so only members can find it.
std::string recordName(std::string_view kind, std::string_view context,
                       std::string_view networkKey, std::string_view key);

}  // namespace dwrtc
