#include "dwrtc/trust.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "dwrtc/session_id.h"
#include "hex.h"

namespace dwrtc {

namespace {

constexpr std::string_view kHelloContext = "dwrtc-link-hello-v2";
constexpr std::string_view kNetIdContext = "dwrtc-network-id-v2";
constexpr std::string_view kRecordContext = "dwrtc-node-record-v2";
constexpr int kMinRsaBits = 2048;

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

bool isStrongRsa(EVP_PKEY* key) {
    return key && EVP_PKEY_base_id(key) == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= kMinRsaBits;
}

}  // namespace

struct NodeKey::Key {
    Pkey pkey;
};

NodeKey::NodeKey(NodeKey&&) noexcept = default;
NodeKey& NodeKey::operator=(NodeKey&&) noexcept = default;
NodeKey::~NodeKey() = default;

std::string nodeIdOfPublicKey(std::string_view spkiDer) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(bytes(spkiDer), spkiDer.size(), digest);
    return nodePrefixFromBytes(digest, sizeof digest);
}

NodeKey NodeKey::fromPem(std::string_view pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (!bio) {
        throw std::runtime_error("out of memory reading the node key");
    }
    Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!isStrongRsa(pkey.get())) {
        throw std::runtime_error("the node key is not an RSA key of 2048 bits or more");
    }
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(pkey.get(), &der);
    if (len <= 0) {
        throw std::runtime_error("encoding the node's public key failed");
    }
    NodeKey key;
    key.publicKey_.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    key.id_ = nodeIdOfPublicKey(key.publicKey_);
    key.key_ = std::make_unique<Key>();
    key.key_->pkey = std::move(pkey);
    return key;
}

std::string NodeKey::sign(std::string_view data) const {
    MdCtx ctx(EVP_MD_CTX_new());
    std::size_t len = 0;
    if (!ctx ||
        EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, bytes(data), data.size()) != 1) {
        throw std::runtime_error("signing with the node key failed");
    }
    std::string signature(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len,
                       bytes(data), data.size()) != 1) {
        throw std::runtime_error("signing with the node key failed");
    }
    signature.resize(len);
    return signature;
}

std::string helloSignedBytes(LinkRole role, std::string_view node, std::string_view binding) {
    std::string out;
    out.reserve(kHelloContext.size() + node.size() + binding.size() + 16);
    out.append(kHelloContext).push_back('\0');
    out.append(role == LinkRole::Initiator ? "initiator" : "responder").push_back('\0');
    out.append(node).push_back('\0');
    out.append(binding);
    return out;
}

std::string hmacSha256(std::string_view key, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), mac,
              &len)) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<const char*>(mac), len);
}

LinkProof makeLinkProof(const NodeKey& key, LinkRole role, std::string_view binding,
                        std::string_view networkKey) {
    std::string signed_ = helloSignedBytes(role, key.id(), binding);
    LinkProof proof;
    proof.key = key.publicKey();
    proof.signature = key.sign(signed_);
    if (!networkKey.empty()) {
        proof.networkMac = hmacSha256(networkKey, signed_);
    }
    return proof;
}

bool verifyLinkProof(std::string_view node, const LinkProof& proof, LinkRole role,
                     std::string_view binding, std::string_view networkKey, std::string& why) {
    if (binding.empty()) {
        why = "no channel binding";
        return false;
    }
    if (nodeIdOfPublicKey(proof.key) != node) {
        why = "its key does not belong to node " + std::string(node);
        return false;
    }
    const unsigned char* der = bytes(proof.key);
    Pkey pkey(d2i_PUBKEY(nullptr, &der, static_cast<long>(proof.key.size())));
    if (!pkey || der != bytes(proof.key) + proof.key.size()) {
        why = "its key is not a public key";
        return false;
    }
    if (!isStrongRsa(pkey.get())) {
        why = "its key is not an RSA key of 2048 bits or more";
        return false;
    }
    std::string signed_ = helloSignedBytes(role, node, binding);
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), bytes(proof.signature), proof.signature.size(), bytes(signed_),
                         signed_.size()) != 1) {
        why = "its signature does not hold for this link";
        return false;
    }
    if (networkKey.empty()) {
        if (!proof.networkMac.empty()) {
            why = "it speaks for a private network";
            return false;
        }
        return true;
    }
    std::string expected = hmacSha256(networkKey, signed_);
    if (proof.networkMac.size() != expected.size() ||
        CRYPTO_memcmp(proof.networkMac.data(), expected.data(), expected.size()) != 0) {
        why = "it is not a member of this private network";
        return false;
    }
    return true;
}

std::uint32_t privateNetworkId(std::string_view networkKey) {
    std::string mac = hmacSha256(networkKey, kNetIdContext);
    std::uint32_t id = 0;
    for (int i = 0; i < 4; ++i) {
        id = (id << 8) | static_cast<unsigned char>(mac[i]);
    }
    // 0 is OpenDHT's public network; the open DWRTC network has its own.
    if (id == 0 || id == kOpenNetworkId) {
        id ^= 0x5a5a5a5a;
    }
    return id;
}

std::string recordName(std::string_view kind, std::string_view context,
                       std::string_view networkKey, std::string_view key) {
    std::string name = "dwrtc/";
    name.append(kind).push_back('/');
    if (networkKey.empty()) {
        return name.append(key);
    }
    std::string data(context);
    data.push_back('\0');
    data.append(key);
    return name.append(toHex(hmacSha256(networkKey, data)));
}

std::string nodeRecordName(std::string_view networkKey, std::string_view node) {
    return recordName("node", kRecordContext, networkKey, node);
}

}  // namespace dwrtc
