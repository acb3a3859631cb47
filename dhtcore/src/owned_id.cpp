#include "dwrtc/owned_id.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>

#include "dwrtc/session_id.h"
#include "dwrtc/trust.h"
#include "hex.h"
#include "json_text.h"

namespace dwrtc {

namespace {

constexpr int kClaimVersion = 1;
constexpr std::size_t kRawKeyLength = 65;    // 0x04, X, Y
constexpr std::size_t kSignatureLength = 64;  // r, s
constexpr std::size_t kLinkHintsMax = 4;
constexpr std::size_t kLinkHintMaxLength = 300;
constexpr std::string_view kClaimContext = "dwrtc-claim-v1";
constexpr std::string_view kIdRecordContext = "dwrtc-id-record-v1";

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct ParamBldFree {
    void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
    void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct SigFree {
    void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// The public key as OpenSSL's object; null if the bytes are not a point on
// P-256.
std::unique_ptr<EVP_PKEY, PkeyFree> p256PublicKey(std::string_view raw) {
    std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> build(OSSL_PARAM_BLD_new());
    if (!build ||
        !OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
                                         0) ||
        !OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, raw.data(),
                                          raw.size())) {
        return nullptr;
    }
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(build.get()));
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        return nullptr;
    }
    std::unique_ptr<EVP_PKEY, PkeyFree> owned(key);
    // fromdata takes the point as given: check it is on the curve.
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(EVP_PKEY_CTX_new(owned.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
        return nullptr;
    }
    return owned;
}

// WebCrypto signs as r||s; OpenSSL verifies DER.
std::string derSignature(std::string_view raw) {
    std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(bytes(raw), 32, nullptr);
    BIGNUM* s = BN_bin2bn(bytes(raw) + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return {};
    }
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig.get(), &der);
    if (len <= 0) {
        return {};
    }
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

std::atomic<std::uint64_t> signatureChecks{0};

bool hexField(json_t* obj, const char* name, std::string& out, std::size_t bytesWanted) {
    json_t* v = json_object_get(obj, name);
    return json_is_string(v) && fromHex(json_string_value(v), out) && out.size() == bytesWanted;
}

}  // namespace

std::string ownedIdOfKey(std::string_view raw) {
    if (raw.size() != kRawKeyLength || raw[0] != 0x04) {
        return {};
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(bytes(raw), raw.size(), digest);
    return "k" + toHex(std::string_view(reinterpret_cast<const char*>(digest),
                                        (kOwnedIdLength - 1) / 2));
}

std::string claimChallenge(std::string_view nodeSecret, std::string_view sessionId) {
    return toHex(hmacSha256(nodeSecret, sessionId).substr(0, 16));
}

std::string claimSignedBytes(std::string_view node, std::string_view challenge,
                             std::uint64_t time) {
    std::string out(kClaimContext);
    out.push_back('\n');
    out.append(node).push_back('\n');
    out.append(challenge).push_back('\n');
    out.append(std::to_string(time));
    return out;
}

bool verifyClaim(const IdClaim& claim, std::string& why) {
    if (ownedIdOfKey(claim.key) != claim.id || claim.id.empty()) {
        why = "the key does not give the id";
        return false;
    }
    if (claim.signature.size() != kSignatureLength) {
        why = "the signature is not 64 bytes";
        return false;
    }
    auto key = p256PublicKey(claim.key);
    if (!key) {
        why = "the key is not a P-256 public key";
        return false;
    }
    signatureChecks.fetch_add(1, std::memory_order_relaxed);
    std::string der = derSignature(claim.signature);
    std::string signed_ = claimSignedBytes(claim.node, claim.challenge, claim.time);
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    if (der.empty() || !ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), bytes(der), der.size(), bytes(signed_), signed_.size()) != 1) {
        why = "the signature does not hold";
        return false;
    }
    return true;
}

std::uint64_t claimSignatureChecks() {
    return signatureChecks.load(std::memory_order_relaxed);
}

std::string encodeIdClaim(const IdClaim& claim) {
    json_t* obj = json_object();
    json_object_set_new(obj, "v", json_integer(kClaimVersion));
    json_object_set_new(obj, "id", json_string(claim.id.c_str()));
    json_object_set_new(obj, "key", json_string(toHex(claim.key).c_str()));
    json_object_set_new(obj, "node", json_string(claim.node.c_str()));
    json_object_set_new(obj, "challenge", json_string(claim.challenge.c_str()));
    json_object_set_new(obj, "time", json_integer(static_cast<json_int_t>(claim.time)));
    json_object_set_new(obj, "sig", json_string(toHex(claim.signature).c_str()));
    json_t* links = json_array();
    for (const std::string& l : claim.links) {
        json_array_append_new(links, json_string(l.c_str()));
    }
    json_object_set_new(obj, "links", links);
    return compactJson(obj);
}

bool decodeIdClaim(std::string_view text, IdClaim& out) {
    JsonObject record = loadRecord(text, kClaimVersion);
    if (!record) {
        return false;
    }
    json_t* obj = record.get();
    json_t* id = json_object_get(obj, "id");
    json_t* node = json_object_get(obj, "node");
    json_t* challenge = json_object_get(obj, "challenge");
    json_t* time = json_object_get(obj, "time");
    json_t* links = json_object_get(obj, "links");
    if (!json_is_string(id) || !json_is_string(node) || !json_is_string(challenge) ||
        !json_is_integer(time) || json_integer_value(time) <= 0 ||
        !hexField(obj, "key", out.key, kRawKeyLength) ||
        !hexField(obj, "sig", out.signature, kSignatureLength)) {
        return false;
    }
    out.id = json_string_value(id);
    out.node = json_string_value(node);
    out.challenge = json_string_value(challenge);
    out.time = static_cast<std::uint64_t>(json_integer_value(time));
    out.links.clear();
    if (json_is_array(links)) {
        std::size_t i;
        json_t* l;
        json_array_foreach(links, i, l) {
            if (json_is_string(l) && out.links.size() < kLinkHintsMax &&
                json_string_length(l) <= kLinkHintMaxLength) {
                out.links.emplace_back(json_string_value(l));
            }
        }
    }
    bool ok = isOwnedId(out.id) && isValidNodePrefix(out.node) && out.challenge.size() <= 64;
    canonicalizeSessionId(out.id);
    return ok;
}

std::uint64_t wallClockMs() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::string ClaimClock::whyNot(std::uint64_t time) const {
    std::uint64_t now = this->now();
    std::uint64_t ahead = time > now ? time - now : 0;
    return "the claim is dated " + std::to_string(ahead / 1000) +
           " s ahead of this node's clock, more than the allowed skew of " +
           std::to_string(skewMs / 1000) + " s (dwrtc_claim_clock_skew)";
}

std::string idRecordName(std::string_view networkKey, std::string_view id) {
    return recordName("id", kIdRecordContext, networkKey, id);
}

}  // namespace dwrtc
