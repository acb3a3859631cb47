// A browser's key pair as the tests need it: an ECDSA P-256 key made with
// OpenSSL that signs claims the way WebCrypto does (r||s, 64 bytes), so the
// core's tests check exactly what a browser sends.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "dwrtc/owned_id.h"

namespace dwrtc::test {

class OwnerKey {
public:
    OwnerKey() : key_(EVP_EC_gen("P-256"), EVP_PKEY_free) {
        if (!key_) {
            throw std::runtime_error("making a P-256 key failed");
        }
        unsigned char raw[65];
        std::size_t len = 0;
        if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof raw,
                                            &len) != 1 ||
            len != sizeof raw) {
            throw std::runtime_error("reading the public key failed");
        }
        publicKey_.assign(reinterpret_cast<char*>(raw), len);
        id_ = ownedIdOfKey(publicKey_);
    }

    const std::string& id() const { return id_; }
    const std::string& publicKey() const { return publicKey_; }

    // r||s over data, as WebCrypto's ECDSA with SHA-256 gives it.
    std::string sign(const std::string& data) const {
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                     EVP_MD_CTX_free);
        std::size_t len = 0;
        if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
            EVP_DigestSign(ctx.get(), nullptr, &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
            throw std::runtime_error("signing failed");
        }
        std::string der(len, '\0');
        if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
            throw std::runtime_error("signing failed");
        }
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
        std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
            d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)), ECDSA_SIG_free);
        std::string out(64, '\0');
        BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(out.data()), 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()),
                     reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
        return out;
    }

    // A claim of this key's id on `node`, signed.
    IdClaim claim(const std::string& node, const std::string& challenge,
                  std::uint64_t time) const {
        IdClaim c;
        c.id = id_;
        c.key = publicKey_;
        c.node = node;
        c.challenge = challenge;
        c.time = time;
        c.signature = sign(claimSignedBytes(node, challenge, time));
        return c;
    }

private:
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
    std::string publicKey_;
    std::string id_;
};

}  // namespace dwrtc::test
