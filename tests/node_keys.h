// Node keys for tests, made the way a stranger would make one: a fresh RSA
// (or other) key from OpenSSL, as PEM, read back as a NodeKey.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "dwrtc/trust.h"

namespace dwrtc::test {

inline std::string pemOf(EVP_PKEY* key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

inline NodeKey rsaNodeKey(unsigned bits = 2048) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(bits), EVP_PKEY_free);
    return NodeKey::fromPem(pemOf(key.get()));
}

}  // namespace dwrtc::test
