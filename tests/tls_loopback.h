// TLS 1.3 on loopback for the tests that own their links' sockets, as the
// nginx transport will (the link codec's wire tests, the driven links): a
// server context with a throwaway certificate, a client context, and a
// listener on a port the system picks. No one checks the certificate:
// the link's hello proves the node.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>

namespace dwrtc::test {

struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A TLS 1.3 server context with a fresh self-signed P-256 certificate.
inline SslCtx serverTls() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_sign(cert, key, EVP_sha256());
    SslCtx ctx(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    SSL_CTX_use_certificate(ctx.get(), cert);
    SSL_CTX_use_PrivateKey(ctx.get(), key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

inline SslCtx clientTls() {
    SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    return ctx;
}

// A TCP listener on 127.0.0.1 and a port the system picks (*port); `flags`
// go to socket() with SOCK_STREAM (SOCK_NONBLOCK, say). Throws if it fails.
inline int loopbackListener(unsigned* port, int flags = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM | flags, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(fd, 16) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("the test's loopback listener failed");
    }
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

}  // namespace dwrtc::test
