
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * Node-to-node links as the worker's own connections, with
 * "dwrtc_link_transport nginx": the worker listens on its link port,
 * accepts and connects (ngx_event_connect_peer), does TLS 1.3 and moves
 * bytes between the sockets and the node's DrivenLinks (dwrtc_link_*() in
 * dwrtc.h), which run the link protocol and the routing on the worker's
 * thread. The links' eventfd and one cancelable
 * timer bring the node's own work (the tick, deadlines, answers from the
 * DHT's threads) to dwrtc_links_run().
 *
 * A link's life is one state, in ngx_http_dwrtc_link_t.state:
 *
 *   CONNECTING   outbound, TCP connect in progress
 *   HANDSHAKING  TLS handshake, within dwrtc_link_handshake_timeout
 *   OPEN         bytes both ways, what dwrtc_link_take() gives is written
 *   FINISHING    the node said DWRTC_LINK_FINISH: writing the rest, then
 *                closed
 *
 * The node is never called from within its driver callbacks: connect()
 * only starts a connection and wake() only posts the write event.
 *
 * TLS: ngx_ssl_create_connection() and ngx_ssl_write() and
 * ngx_ssl_shutdown() are nginx's; the handshake and the reads call OpenSSL
 * here, because nginx (1.22) logs at "crit" what a peer can cause there
 * (plain HTTP on the link port, a record altered on the path): a stranger
 * must not fill the log with alerts. Such failures are logged once per
 * link, at "info".
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ngx_http_dwrtc_module.h"


/*
 * The transport is made of nginx's SSL connections: in a module built
 * against an nginx without OpenSSL (a bare ./configure --with-compat) it
 * is not there, and the configuration refuses "dwrtc_link_transport nginx"
 * (ngx_http_dwrtc_module.c).
 */

#if (NGX_SSL)


/* Bytes read from one link per event; the rest waits for a posted event. */
#define NGX_HTTP_DWRTC_LINK_READ_BUDGET   (256 * 1024)

/* A link with more than this unwritten is not read until it drains. */
#define NGX_HTTP_DWRTC_LINK_OUT_HIGH      (4 * 1024 * 1024)

/* A drained write buffer larger than this is given back. */
#define NGX_HTTP_DWRTC_LINK_OUT_KEEP      (256 * 1024)

/* Seconds between two log lines about links to names, at least. */
#define NGX_HTTP_DWRTC_LINK_NAME_LOG      60

/* Connections accepted per event of the listener at most. */
#define NGX_HTTP_DWRTC_LINK_ACCEPTS       32

/* accept() out of descriptors or memory: the listener rests this long. */
#define NGX_HTTP_DWRTC_LINK_ACCEPT_PAUSE  500

/* The TLS exporter the link hello is bound to (link_codec, trust.h). */
#define NGX_HTTP_DWRTC_LINK_EXPORTER      "EXPORTER-dwrtc-link-v2"
#define NGX_HTTP_DWRTC_LINK_BINDING_LEN   32


typedef enum {
    NGX_HTTP_DWRTC_LINK_CONNECTING = 0,
    NGX_HTTP_DWRTC_LINK_HANDSHAKING,
    NGX_HTTP_DWRTC_LINK_OPEN,
    NGX_HTTP_DWRTC_LINK_FINISHING
} ngx_http_dwrtc_link_state_e;


typedef struct {
    ngx_rbtree_node_t               node;      /* key: the node's link id */
    uint64_t                        id;
    ngx_uint_t                      state;     /* ngx_http_dwrtc_link_state_e */
    ngx_connection_t               *connection;
    ngx_pool_t                     *pool;
    ngx_peer_connection_t           peer;      /* outbound only */
    ngx_str_t                       name;      /* peer, for the log */
    ngx_log_t                       log;       /* the connection's */

    /* taken from the node and not written yet */
    u_char                         *out;
    size_t                          out_pos;
    size_t                          out_last;
    size_t                          out_size;

    unsigned                        outbound:1;
    unsigned                        read_stopped:1;
    unsigned                        read_on_write:1;  /* SSL_read() wants it */
} ngx_http_dwrtc_link_t;


/* This worker's links; nothing here is shared between processes. */

typedef struct {
    dwrtc_node                     *node;      /* NULL: not running */
    ngx_ssl_t                       ssl;
    ngx_socket_t                    listen_fd;
    ngx_uint_t                      port;
    ngx_addr_t                      bind;
    ngx_connection_t               *listener;
    ngx_connection_t               *notify;    /* the links' eventfd */
    ngx_event_t                     run_ev;
    ngx_event_t                     accept_ev; /* ends a rest of the listener */
    ngx_rbtree_t                    links;     /* ngx_http_dwrtc_link_t */
    ngx_rbtree_node_t               sentinel;
    ngx_msec_t                      handshake_timeout;
    ngx_log_t                      *log;
    time_t                          name_logged;

    unsigned                        ssl_ready:1;
    unsigned                        bind_ready:1;
} ngx_http_dwrtc_links_t;


static ngx_int_t ngx_http_dwrtc_link_ssl_init(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_dwrtc_link_certificate(ngx_http_dwrtc_links_t *ls);
static ngx_int_t ngx_http_dwrtc_link_bind(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf);
static int ngx_http_dwrtc_link_connect(void *ctx, uint64_t id,
    const char *host, unsigned port);
static void ngx_http_dwrtc_link_wake(void *ctx, uint64_t id);
static void ngx_http_dwrtc_link_run_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_link_accept_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_link_accept_resume(ngx_event_t *ev);
static ngx_http_dwrtc_link_t *ngx_http_dwrtc_link_create(uint64_t id);
static void ngx_http_dwrtc_link_attach(ngx_http_dwrtc_link_t *link,
    ngx_connection_t *c);
static ngx_http_dwrtc_link_t *ngx_http_dwrtc_link_lookup(uint64_t id);
static void ngx_http_dwrtc_link_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_link_handshake(ngx_http_dwrtc_link_t *link);
static void ngx_http_dwrtc_link_tls(ngx_http_dwrtc_link_t *link);
static void ngx_http_dwrtc_link_secured(ngx_http_dwrtc_link_t *link);
static ssize_t ngx_http_dwrtc_link_recv(ngx_connection_t *c, u_char *buf,
    size_t size);
static void ngx_http_dwrtc_link_tls_failed(ngx_http_dwrtc_link_t *link,
    int sslerr, ngx_err_t err, const char *what);
static void ngx_http_dwrtc_link_read(ngx_http_dwrtc_link_t *link);
static void ngx_http_dwrtc_link_flush(ngx_http_dwrtc_link_t *link);
static ngx_int_t ngx_http_dwrtc_link_keep(ngx_http_dwrtc_link_t *link,
    const char *data, size_t len);
static void ngx_http_dwrtc_link_close(ngx_http_dwrtc_link_t *link,
    ngx_uint_t reset);


static ngx_http_dwrtc_links_t  ngx_http_dwrtc_links = {
    .listen_fd = (ngx_socket_t) -1
};


static dwrtc_link_driver  ngx_http_dwrtc_link_driver = {
    ngx_http_dwrtc_link_connect,
    ngx_http_dwrtc_link_wake
};


/*
 * Before the node is made: the worker's link port, the first free one of
 * dwrtc_link_port, bound and listening, and the node's options told to
 * publish it and to run its links over this file's connections. NGX_OK,
 * NGX_BUSY when no port of the range is free, or NGX_ERROR.
 */

ngx_int_t
ngx_http_dwrtc_link_listen(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf, dwrtc_options *opt)
{
    int                      rc;
    ngx_int_t                bound;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    ls->log = cycle->log;
    ls->handshake_timeout = dmcf->link_handshake_timeout;

    if (ngx_http_dwrtc_link_ssl_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    bound = ngx_http_dwrtc_link_bind(cycle, dmcf);
    if (bound != NGX_OK) {
        return bound;
    }

    rc = dwrtc_options_set_link_ports(opt, ls->port, ls->port);

    if (rc == DWRTC_OK) {
        rc = dwrtc_options_set_link_driver(opt, &ngx_http_dwrtc_link_driver,
                                           ls);
    }

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: setting the link driver failed: %s",
                      dwrtc_strerror(rc));
        ngx_http_dwrtc_link_stop();
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* One TLS 1.3 context per worker, for both ends of its links. */

static ngx_int_t
ngx_http_dwrtc_link_ssl_init(ngx_cycle_t *cycle)
{
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    if (ls->ssl_ready) {
        return NGX_OK;
    }

    ls->ssl.log = cycle->log;

    if (ngx_ssl_create(&ls->ssl, NGX_SSL_TLSv1_3, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the unwritten rest of a write may move when it is kept */
    SSL_CTX_set_mode(ls->ssl.ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    /*
     * No peer certificate is verified: who a peer is comes from the signed
     * hello bound to this TLS session's exporter (trust.h).
     */
    SSL_CTX_set_verify(ls->ssl.ctx, SSL_VERIFY_NONE, NULL);

    if (ngx_http_dwrtc_link_certificate(ls) != NGX_OK) {
        ngx_ssl_cleanup_ctx(&ls->ssl);
        return NGX_ERROR;
    }

    ls->ssl_ready = 1;

    return NGX_OK;
}


/*
 * A fresh self-signed P-256 certificate, as LinkService makes for its
 * listener (makeTlsCredentials() in link_service.cpp): CN dwrtc-link, a
 * random serial, valid from an hour ago for ten years.
 */

static ngx_int_t
ngx_http_dwrtc_link_certificate(ngx_http_dwrtc_links_t *ls)
{
    u_char      serial[16];
    BIGNUM     *bn;
    X509       *cert;
    EVP_PKEY   *key;
    ngx_int_t   rc;
    X509_NAME  *name;

    rc = NGX_ERROR;
    cert = NULL;
    bn = NULL;

    key = EVP_EC_gen("P-256");
    if (key == NULL) {
        ngx_ssl_error(NGX_LOG_ALERT, ls->log, 0,
                      "dwrtc: making the link TLS key failed");
        return NGX_ERROR;
    }

    cert = X509_new();
    if (cert == NULL) {
        goto failed;
    }

    if (RAND_bytes(serial, sizeof(serial)) != 1) {
        goto failed;
    }

    serial[0] &= 0x7f;

    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
    {
        goto failed;
    }

    name = X509_get_subject_name(cert);

    if (X509_set_version(cert, 2) != 1
        || X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600)
           == NULL
        || X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                      (u_char *) "dwrtc-link", -1, -1, 0)
           != 1
        || X509_set_issuer_name(cert, name) != 1
        || X509_set_pubkey(cert, key) != 1
        || X509_sign(cert, key, EVP_sha256()) <= 0)
    {
        goto failed;
    }

    if (SSL_CTX_use_certificate(ls->ssl.ctx, cert) != 1
        || SSL_CTX_use_PrivateKey(ls->ssl.ctx, key) != 1)
    {
        goto failed;
    }

    rc = NGX_OK;

failed:

    if (rc != NGX_OK) {
        ngx_ssl_error(NGX_LOG_ALERT, ls->log, 0,
                      "dwrtc: making the link TLS certificate failed");
    }

    BN_free(bn);
    X509_free(cert);
    EVP_PKEY_free(key);

    return rc;
}


/*
 * Binds the first free port of dwrtc_link_port on dwrtc_bind_address and
 * listens, non-blocking.
 */

static ngx_int_t
ngx_http_dwrtc_link_bind(ngx_cycle_t *cycle, ngx_http_dwrtc_main_conf_t *dmcf)
{
    int                      reuse;
    ngx_err_t                err;
    ngx_uint_t               port;
    ngx_socket_t             s;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    if (!ls->bind_ready) {
        if (ngx_parse_addr(cycle->pool, &ls->bind, dmcf->bind_address.data,
                           dmcf->bind_address.len)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "dwrtc: dwrtc_bind_address \"%V\" is no address",
                          &dmcf->bind_address);
            return NGX_ERROR;
        }

        ls->bind_ready = 1;
    }

    for (port = dmcf->link_port.from; port <= dmcf->link_port.to; port++) {

        s = ngx_socket(ls->bind.sockaddr->sa_family, SOCK_STREAM, 0);
        if (s == (ngx_socket_t) -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                          "dwrtc: link listener " ngx_socket_n " failed");
            return NGX_ERROR;
        }

        reuse = 1;

        if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const void *) &reuse,
                       sizeof(int))
            == -1)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                          "dwrtc: setsockopt(SO_REUSEADDR) failed");
            goto failed;
        }

        if (ngx_nonblocking(s) == -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                          "dwrtc: link listener " ngx_nonblocking_n
                          " failed");
            goto failed;
        }

        ngx_inet_set_port(ls->bind.sockaddr, (in_port_t) port);

        if (bind(s, ls->bind.sockaddr, ls->bind.socklen) == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EADDRINUSE) {
                ngx_close_socket(s);
                continue;
            }

            ngx_log_error(NGX_LOG_ALERT, cycle->log, err,
                          "dwrtc: bind() of the link listener to \"%V\" "
                          "port %ui failed", &dmcf->bind_address, port);
            goto failed;
        }

        if (listen(s, NGX_LISTEN_BACKLOG) == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EADDRINUSE) {
                ngx_close_socket(s);
                continue;
            }

            ngx_log_error(NGX_LOG_ALERT, cycle->log, err,
                          "dwrtc: listen() on link port %ui failed", port);
            goto failed;
        }

        ls->listen_fd = s;
        ls->port = port;

        return NGX_OK;
    }

    return NGX_BUSY;

failed:

    ngx_close_socket(s);

    return NGX_ERROR;
}


/*
 * Once the node runs: the listener and the links' eventfd in the event loop,
 * and a first dwrtc_links_run().
 */

ngx_int_t
ngx_http_dwrtc_link_start(ngx_cycle_t *cycle, dwrtc_node *node)
{
    int                      fd;
    ngx_connection_t        *c;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    ngx_rbtree_init(&ls->links, &ls->sentinel, ngx_rbtree_insert_value);

    fd = dwrtc_links_event_fd(node);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: the node has no links event fd");
        goto failed;
    }

    c = ngx_get_connection(ls->listen_fd, cycle->log);
    if (c == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: no free connection for the link listener");
        goto failed;
    }

    ls->listen_fd = (ngx_socket_t) -1;
    ls->listener = c;

    c->data = ls;
    c->read->handler = ngx_http_dwrtc_link_accept_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    /* level-triggered: what one event leaves is accepted at the next */
    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) == NGX_ERROR) {
        goto failed;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: no free connection for the links' event fd");
        goto failed;
    }

    ls->notify = c;

    c->data = ls;
    c->read->handler = ngx_http_dwrtc_link_run_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    /* like nginx's channel: not a client, never closed as idle */
    c->read->channel = 1;
    c->write->channel = 1;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) == NGX_ERROR) {
        goto failed;
    }

    ls->accept_ev.handler = ngx_http_dwrtc_link_accept_resume;
    ls->accept_ev.log = cycle->log;
    ls->accept_ev.data = ls;
    ls->accept_ev.cancelable = 1;

    ls->run_ev.handler = ngx_http_dwrtc_link_run_handler;
    ls->run_ev.log = cycle->log;
    ls->run_ev.data = ls;
    ls->run_ev.cancelable = 1;

    ls->node = node;

    ngx_post_event(&ls->run_ev, &ngx_posted_events);

    ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                  "dwrtc: links over the worker's connections, "
                  "listening on link port %ui", ls->port);

    return NGX_OK;

failed:

    ngx_http_dwrtc_link_stop();

    return NGX_ERROR;
}


/*
 * Closes every link (the node is told), the listener and the eventfd's
 * connection; the node owns and closes the eventfd itself. A running node
 * first finishes its links: rooms are left, acknowledgements and close
 * frames are written as far as the sockets take them now.
 */

void
ngx_http_dwrtc_link_stop(void)
{
    int                      rc;
    ngx_connection_t        *c;
    ngx_rbtree_node_t       *node, *next;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    if (ls->node && ls->links.root != NULL) {
        rc = dwrtc_links_finish(ls->node);

        if (rc != DWRTC_OK) {
            ngx_log_error(NGX_LOG_ALERT, ls->log, 0,
                          "dwrtc: dwrtc_links_finish() failed: %s",
                          dwrtc_strerror(rc));
        }

        node = (ls->links.root == ls->links.sentinel)
               ? NULL : ngx_rbtree_min(ls->links.root, ls->links.sentinel);

        while (node) {
            next = ngx_rbtree_next(&ls->links, node);
            ngx_http_dwrtc_link_flush((ngx_http_dwrtc_link_t *) node);
            node = next;
        }
    }

    if (ls->links.root != NULL) {
        while (ls->links.root != ls->links.sentinel) {
            node = ngx_rbtree_min(ls->links.root, ls->links.sentinel);
            ngx_http_dwrtc_link_close((ngx_http_dwrtc_link_t *) node, 0);
        }
    }

    if (ls->listener) {
        ngx_close_connection(ls->listener);
        ls->listener = NULL;
    }

    if (ls->listen_fd != (ngx_socket_t) -1) {
        ngx_close_socket(ls->listen_fd);
        ls->listen_fd = (ngx_socket_t) -1;
    }

    c = ls->notify;

    if (c) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);
        ls->notify = NULL;
    }

    if (ls->run_ev.timer_set) {
        ngx_del_timer(&ls->run_ev);
    }

    if (ls->accept_ev.timer_set) {
        ngx_del_timer(&ls->accept_ev);
    }

    if (ls->run_ev.posted) {
        ngx_delete_posted_event(&ls->run_ev);
    }

    /* no link holds the TLS context any more: made again at a restart */

    if (ls->ssl_ready) {
        ngx_ssl_cleanup_ctx(&ls->ssl);
        ls->ssl_ready = 0;
    }

    ls->node = NULL;
}


/* The eventfd was signalled, or the wait the node asked for has passed. */

static void
ngx_http_dwrtc_link_run_handler(ngx_event_t *ev)
{
    int                      rc;
    unsigned                 wait;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    if (ls->node == NULL) {
        return;
    }

    wait = 0;

    rc = dwrtc_links_run(ls->node, &wait);

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "dwrtc: dwrtc_links_run() failed: %s",
                      dwrtc_strerror(rc));
    }

    ngx_add_timer(&ls->run_ev, wait ? (ngx_msec_t) wait : 1);
}


static void
ngx_http_dwrtc_link_accept_handler(ngx_event_t *ev)
{
    int                      rc;
    size_t                   len;
    uint64_t                 id;
    ngx_err_t                err;
    socklen_t                socklen;
    ngx_uint_t               i;
    ngx_socket_t             s;
    ngx_sockaddr_t           sa;
    ngx_connection_t        *lc, *c;
    ngx_http_dwrtc_link_t   *link;
    ngx_http_dwrtc_links_t  *ls;
    u_char                   text[NGX_SOCKADDR_STRLEN];

    lc = ev->data;
    ls = lc->data;

    for (i = 0; i < NGX_HTTP_DWRTC_LINK_ACCEPTS; i++) {

        socklen = sizeof(ngx_sockaddr_t);

        s = accept(lc->fd, &sa.sockaddr, &socklen);

        if (s == (ngx_socket_t) -1) {
            err = ngx_socket_errno;

            if (err == NGX_EAGAIN) {
                return;
            }

            if (err == NGX_ECONNABORTED) {
                continue;
            }

            /*
             * Out of descriptors or memory: the listener is level-triggered,
             * so it rests a while rather than wake the loop at once again
             */

            ngx_log_error(NGX_LOG_ALERT, ev->log, err,
                          "dwrtc: accept() on link port %ui failed, "
                          "not accepting links for %d ms",
                          ls->port, NGX_HTTP_DWRTC_LINK_ACCEPT_PAUSE);

            if (ngx_del_event(lc->read, NGX_READ_EVENT, 0) == NGX_OK) {
                ngx_add_timer(&ls->accept_ev,
                              NGX_HTTP_DWRTC_LINK_ACCEPT_PAUSE);
            }

            return;
        }

        if (ls->node == NULL) {
            ngx_close_socket(s);
            return;
        }

        len = ngx_sock_ntop(&sa.sockaddr, socklen, text, NGX_SOCKADDR_STRLEN,
                            1);

        rc = dwrtc_link_accepted(ls->node, (char *) text, len, &id);

        if (rc != DWRTC_OK) {
            /* the node logs a full cap on unproven links */
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                           "dwrtc: link from %*s refused", len, text);
            ngx_close_socket(s);
            continue;
        }

        if (ngx_nonblocking(s) == -1) {
            ngx_log_error(NGX_LOG_ALERT, ev->log, ngx_socket_errno,
                          "dwrtc: link " ngx_nonblocking_n " failed");
            ngx_close_socket(s);
            dwrtc_link_closed(ls->node, id);
            continue;
        }

        link = ngx_http_dwrtc_link_create(id);

        c = (link == NULL) ? NULL : ngx_get_connection(s, ls->log);

        if (c == NULL) {
            ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                          "dwrtc: no memory or connection for a link");
            if (link) {
                ngx_destroy_pool(link->pool);
            }
            ngx_close_socket(s);
            dwrtc_link_closed(ls->node, id);
            continue;
        }

        link->name.data = ngx_pnalloc(link->pool, len);
        if (link->name.data) {
            ngx_memcpy(link->name.data, text, len);
            link->name.len = len;
        }

        c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
        c->recv = ngx_recv;
        c->send = ngx_send;
        c->recv_chain = ngx_recv_chain;
        c->send_chain = ngx_send_chain;

        ngx_http_dwrtc_link_attach(link, c);

        /* as ngx_event_accept() does; with epoll, at the first AGAIN */
        if (ngx_add_conn && (ngx_event_flags & NGX_USE_EPOLL_EVENT) == 0
            && ngx_add_conn(c) == NGX_ERROR)
        {
            ngx_http_dwrtc_link_close(link, 1);
            continue;
        }

        ngx_add_timer(c->read, ls->handshake_timeout);

        ngx_http_dwrtc_link_handshake(link);
    }
}


static void
ngx_http_dwrtc_link_accept_resume(ngx_event_t *ev)
{
    ngx_http_dwrtc_links_t  *ls;

    ls = ev->data;

    if (ls->listener == NULL || ls->listener->read->active) {
        return;
    }

    if (ngx_add_event(ls->listener->read, NGX_READ_EVENT, 0) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "dwrtc: the link listener could not be resumed");
    }
}


/*
 * The node asks for a link to host:port. An address literal is connected at
 * once; a name is refused (nginx's resolver is the next slice).
 */

static int
ngx_http_dwrtc_link_connect(void *ctx, uint64_t id, const char *host,
    unsigned port)
{
    size_t                   len;
    u_char                  *p;
    ngx_int_t                rc;
    ngx_addr_t               addr;
    ngx_connection_t        *c;
    ngx_http_dwrtc_link_t   *link;
    ngx_http_dwrtc_links_t  *ls;

    ls = ctx;

    link = ngx_http_dwrtc_link_create(id);
    if (link == NULL) {
        return -1;
    }

    p = (u_char *) host;
    len = ngx_strlen(host);

    if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }

    if (port == 0 || port > 65535
        || ngx_parse_addr(link->pool, &addr, p, len) != NGX_OK)
    {
        /* the router tries again: said once a minute at most */

        if (ngx_time() - ls->name_logged >= NGX_HTTP_DWRTC_LINK_NAME_LOG) {
            ls->name_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, ls->log, 0,
                          "dwrtc: link to \"%s\" port %ud not opened: "
                          "dwrtc_link_transport nginx connects to addresses "
                          "only", host, port);
        }

        ngx_destroy_pool(link->pool);
        return -1;
    }

    ngx_inet_set_port(addr.sockaddr, (in_port_t) port);

    link->name.data = ngx_pnalloc(link->pool, NGX_SOCKADDR_STRLEN);
    if (link->name.data == NULL) {
        ngx_destroy_pool(link->pool);
        return -1;
    }

    link->name.len = ngx_sock_ntop(addr.sockaddr, addr.socklen,
                                   link->name.data, NGX_SOCKADDR_STRLEN, 1);

    link->outbound = 1;
    link->peer.sockaddr = addr.sockaddr;
    link->peer.socklen = addr.socklen;
    link->peer.name = &link->name;
    link->peer.get = ngx_event_get_peer;
    link->peer.log = ls->log;
    /* a node that is down is tried again by the router: not an error */
    link->peer.log_error = NGX_ERROR_INFO;

    rc = ngx_event_connect_peer(&link->peer);

    if (rc != NGX_OK && rc != NGX_AGAIN) {
        /* refused at once, logged by ngx_event_connect_peer() */
        if (link->peer.connection) {
            ngx_close_connection(link->peer.connection);
        }
        ngx_destroy_pool(link->pool);
        return -1;
    }

    c = link->peer.connection;

    ngx_http_dwrtc_link_attach(link, c);

    ngx_add_timer(c->write, ls->handshake_timeout);

    if (rc == NGX_OK) {
        /* connected already: go on from the event loop, not from here */
        ngx_post_event(c->write, &ngx_posted_events);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ls->log, 0,
                   "dwrtc: link %uL connecting to %V", id, &link->name);

    return 0;
}


/* Link `id` has bytes to take or a new status: its write event says so. */

static void
ngx_http_dwrtc_link_wake(void *ctx, uint64_t id)
{
    ngx_connection_t       *c;
    ngx_http_dwrtc_link_t  *link;

    link = ngx_http_dwrtc_link_lookup(id);

    if (link == NULL) {
        return;
    }

    c = link->connection;

    /* a link still connecting or handshaking flushes once secured */

    if (link->state >= NGX_HTTP_DWRTC_LINK_OPEN && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


static ngx_http_dwrtc_link_t *
ngx_http_dwrtc_link_create(uint64_t id)
{
    ngx_pool_t             *pool;
    ngx_http_dwrtc_link_t  *link;

    pool = ngx_create_pool(1024, ngx_http_dwrtc_links.log);
    if (pool == NULL) {
        return NULL;
    }

    link = ngx_pcalloc(pool, sizeof(ngx_http_dwrtc_link_t));
    if (link == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    link->pool = pool;
    link->id = id;
    link->node.key = (ngx_rbtree_key_t) id;

    return link;
}


/* The link owns c from here on, and is found by its id. */

static void
ngx_http_dwrtc_link_attach(ngx_http_dwrtc_link_t *link, ngx_connection_t *c)
{
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    link->connection = c;
    link->state = link->outbound ? NGX_HTTP_DWRTC_LINK_CONNECTING
                                 : NGX_HTTP_DWRTC_LINK_HANDSHAKING;

    link->log = *ls->log;

    c->data = link;
    c->pool = link->pool;
    c->log = &link->log;
    c->read->log = c->log;
    c->write->log = c->log;

    c->read->handler = ngx_http_dwrtc_link_handler;
    c->write->handler = ngx_http_dwrtc_link_handler;

    /* what a peer or the path causes is not an alert */
    c->log_error = NGX_ERROR_INFO;

    /* a gracefully exiting worker is not held by a link's deadline */
    c->read->cancelable = 1;
    c->write->cancelable = 1;

    ngx_rbtree_insert(&ls->links, &link->node);
}


static ngx_http_dwrtc_link_t *
ngx_http_dwrtc_link_lookup(uint64_t id)
{
    ngx_rbtree_key_t         key;
    ngx_rbtree_node_t       *node, *sentinel;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;

    if (ls->links.root == NULL) {
        return NULL;
    }

    key = (ngx_rbtree_key_t) id;
    node = ls->links.root;
    sentinel = ls->links.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        return (ngx_http_dwrtc_link_t *) node;
    }

    return NULL;
}


/* Both events of a link's connection, by the link's state. */

static void
ngx_http_dwrtc_link_handler(ngx_event_t *ev)
{
    int                     err;
    socklen_t               len;
    ngx_connection_t       *c;
    ngx_http_dwrtc_link_t  *link;

    c = ev->data;
    link = c->data;

    if (c->close) {
        /* worker_shutdown_timeout has passed: nginx closes what is left */
        ngx_http_dwrtc_link_close(link, 0);
        return;
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "dwrtc: link %uL with %V timed out",
                      link->id, &link->name);
        ngx_http_dwrtc_link_close(link, 1);
        return;
    }

    switch (link->state) {

    case NGX_HTTP_DWRTC_LINK_CONNECTING:

        if (!ev->write) {
            /* an error shows on the write event too */
            return;
        }

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_log_error(NGX_LOG_INFO, c->log, err,
                          "dwrtc: connect() of link %uL to %V failed",
                          link->id, &link->name);
            ngx_http_dwrtc_link_close(link, 1);
            return;
        }

        ngx_http_dwrtc_link_handshake(link);
        return;

    case NGX_HTTP_DWRTC_LINK_HANDSHAKING:
        ngx_http_dwrtc_link_tls(link);
        return;

    default: /* OPEN, FINISHING */

        if (ev->write) {
            if (link->read_on_write) {
                link->read_on_write = 0;
                ngx_post_event(c->read, &ngx_posted_events);
            }

            ngx_http_dwrtc_link_flush(link);

        } else {
            ngx_http_dwrtc_link_read(link);
        }
    }
}


static void
ngx_http_dwrtc_link_handshake(ngx_http_dwrtc_link_t *link)
{
    ngx_connection_t  *c;

    c = link->connection;

    if (ngx_ssl_create_connection(&ngx_http_dwrtc_links.ssl, c,
                                  link->outbound ? NGX_SSL_CLIENT : 0)
        != NGX_OK)
    {
        ngx_http_dwrtc_link_close(link, 1);
        return;
    }

    link->state = NGX_HTTP_DWRTC_LINK_HANDSHAKING;

    ngx_http_dwrtc_link_tls(link);
}


/* One step of the TLS handshake; the deadline timer is already set. */

static void
ngx_http_dwrtc_link_tls(ngx_http_dwrtc_link_t *link)
{
    int                n, sslerr;
    ngx_err_t          err;
    ngx_connection_t  *c;

    c = link->connection;

    ERR_clear_error();

    n = SSL_do_handshake(c->ssl->connection);

    if (n == 1) {
        ngx_http_dwrtc_link_secured(link);
        return;
    }

    sslerr = SSL_get_error(c->ssl->connection, n);
    err = (sslerr == SSL_ERROR_SYSCALL) ? ngx_socket_errno : 0;

    if (sslerr == SSL_ERROR_WANT_READ) {
        c->read->ready = 0;

        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ngx_http_dwrtc_link_close(link, 1);
        }

        return;
    }

    if (sslerr == SSL_ERROR_WANT_WRITE) {
        c->write->ready = 0;

        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_http_dwrtc_link_close(link, 1);
        }

        return;
    }

    ngx_http_dwrtc_link_tls_failed(link, sslerr, err, "TLS handshake");
    ngx_http_dwrtc_link_close(link, 1);
}


/* The TLS handshake is over: the channel binding goes to the node. */

static void
ngx_http_dwrtc_link_secured(ngx_http_dwrtc_link_t *link)
{
    int                 rc;
    ngx_connection_t   *c;
    u_char              binding[NGX_HTTP_DWRTC_LINK_BINDING_LEN];

    c = link->connection;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (SSL_export_keying_material(c->ssl->connection, binding,
                                   sizeof(binding),
                                   NGX_HTTP_DWRTC_LINK_EXPORTER,
                                   sizeof(NGX_HTTP_DWRTC_LINK_EXPORTER) - 1,
                                   NULL, 0, 0)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                      "dwrtc: SSL_export_keying_material() of link %uL "
                      "failed", link->id);
        ngx_http_dwrtc_link_close(link, 1);
        return;
    }

    /* as ngx_ssl_handshake() leaves a connection that is done */
    c->ssl->handshaked = 1;
    c->recv = ngx_http_dwrtc_link_recv;
    c->send = ngx_ssl_write;
    c->recv_chain = ngx_ssl_recv_chain;
    c->send_chain = ngx_ssl_send_chain;

    link->state = NGX_HTTP_DWRTC_LINK_OPEN;

    rc = dwrtc_link_secured(ngx_http_dwrtc_links.node, link->id,
                            (char *) binding, sizeof(binding));

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "dwrtc: dwrtc_link_secured() of link %uL failed: %s",
                      link->id, dwrtc_strerror(rc));
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: link %uL with %V secured", link->id, &link->name);

    /* bytes read with the end of the handshake wait in the TLS layer */
    ngx_post_event(c->read, &ngx_posted_events);

    /* status and the upgrade request, if the node has one */
    ngx_http_dwrtc_link_flush(link);
}


/*
 * SSL_read() for a link: NGX_AGAIN, 0 when the peer closed, NGX_ERROR
 * (logged once, at info: a peer or the path can cause it).
 */

static ssize_t
ngx_http_dwrtc_link_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    int                     n, sslerr;
    ngx_err_t               err;
    ngx_http_dwrtc_link_t  *link;

    ERR_clear_error();

    n = SSL_read(c->ssl->connection, buf,
                 (int) ngx_min(size, NGX_MAX_INT32_VALUE));

    if (n > 0) {
        return n;
    }

    sslerr = SSL_get_error(c->ssl->connection, n);
    err = (sslerr == SSL_ERROR_SYSCALL) ? ngx_socket_errno : 0;

    switch (sslerr) {

    case SSL_ERROR_WANT_READ:
        c->read->ready = 0;
        return NGX_AGAIN;

    case SSL_ERROR_WANT_WRITE:
        /* a TLS 1.3 key update to answer: read again once writable */
        link = c->data;
        link->read_on_write = 1;
        c->read->ready = 0;

        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_AGAIN;

    case SSL_ERROR_ZERO_RETURN:
        return 0;

    default:
        link = c->data;

        if (sslerr == SSL_ERROR_SYSCALL && err == 0) {
            /* the peer closed without close_notify */
            return 0;
        }

        ngx_http_dwrtc_link_tls_failed(link, sslerr, err, "TLS read");
        c->read->error = 1;
        return NGX_ERROR;
    }
}


static void
ngx_http_dwrtc_link_tls_failed(ngx_http_dwrtc_link_t *link, int sslerr,
    ngx_err_t err, const char *what)
{
    unsigned long  e;
    const char    *reason;

    e = ERR_peek_last_error();
    reason = e ? ERR_reason_error_string(e) : NULL;

    ngx_log_error(NGX_LOG_INFO, link->connection->log, err,
                  "dwrtc: %s of link %uL with %V failed (SSL error %d%s%s)",
                  what, link->id, &link->name, sslerr,
                  reason ? ": " : "", reason ? reason : "");

    ERR_clear_error();
}


static void
ngx_http_dwrtc_link_read(ngx_http_dwrtc_link_t *link)
{
    int                 rc;
    size_t              total;
    ssize_t             n;
    ngx_connection_t   *c;
    static u_char       buf[16384];

    c = link->connection;

    if (link->state != NGX_HTTP_DWRTC_LINK_OPEN) {
        return;
    }

    if (link->out_last - link->out_pos > NGX_HTTP_DWRTC_LINK_OUT_HIGH) {
        /* the peer reads too slowly: read again once the rest is written */
        link->read_stopped = 1;
        return;
    }

    for (total = 0; /* void */; total += n) {

        if (total >= NGX_HTTP_DWRTC_LINK_READ_BUDGET) {
            ngx_post_event(c->read, &ngx_posted_events);
            break;
        }

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_dwrtc_link_close(link, 1);
                return;
            }

            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "dwrtc: link %uL with %V closed by the peer",
                           link->id, &link->name);
            ngx_http_dwrtc_link_close(link, n == NGX_ERROR);
            return;
        }

        rc = dwrtc_link_received(ngx_http_dwrtc_links.node, link->id,
                                 (char *) buf, (size_t) n);

        if (rc != DWRTC_OK
            || dwrtc_link_status(ngx_http_dwrtc_links.node, link->id)
               != DWRTC_LINK_OPEN)
        {
            /* closing: the status says what is left to write */
            break;
        }
    }

    ngx_http_dwrtc_link_flush(link);
}


/*
 * Writes what the node has for the link, keeps what the socket does not
 * take for the write event, and acts on the link's status.
 */

static void
ngx_http_dwrtc_link_flush(ngx_http_dwrtc_link_t *link)
{
    int                 status;
    size_t              len;
    ssize_t             n;
    const char         *data;
    ngx_connection_t   *c;

    c = link->connection;

    if (link->state < NGX_HTTP_DWRTC_LINK_OPEN) {
        return;
    }

    len = 0;

    if (link->state == NGX_HTTP_DWRTC_LINK_OPEN
        && dwrtc_link_take(ngx_http_dwrtc_links.node, link->id, &data, &len)
           == DWRTC_OK
        && len)
    {
        if (ngx_http_dwrtc_link_keep(link, data, len) != NGX_OK) {
            ngx_http_dwrtc_link_close(link, 1);
            return;
        }
    }

    status = dwrtc_link_status(ngx_http_dwrtc_links.node, link->id);

    if (status == DWRTC_LINK_RESET || status == DWRTC_LINK_GONE) {
        ngx_http_dwrtc_link_close(link, 1);
        return;
    }

    if (status == DWRTC_LINK_FINISH) {
        link->state = NGX_HTTP_DWRTC_LINK_FINISHING;
    }

    while (link->out_pos < link->out_last) {

        n = c->send(c, link->out + link->out_pos,
                    link->out_last - link->out_pos);

        if (n == NGX_ERROR) {
            ngx_http_dwrtc_link_close(link, 1);
            return;
        }

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_http_dwrtc_link_close(link, 1);
            }

            return;
        }

        link->out_pos += n;
    }

    link->out_pos = 0;
    link->out_last = 0;

    if (link->out_size > NGX_HTTP_DWRTC_LINK_OUT_KEEP) {
        /* a large message went out: its buffer is not kept for the next */
        ngx_free(link->out);
        link->out = NULL;
        link->out_size = 0;
    }

    if (link->state == NGX_HTTP_DWRTC_LINK_FINISHING) {
        ngx_http_dwrtc_link_close(link, 0);
        return;
    }

    if (link->read_stopped) {
        link->read_stopped = 0;
        ngx_post_event(c->read, &ngx_posted_events);
    }
}


/* Appends data to the link's unwritten bytes. */

static ngx_int_t
ngx_http_dwrtc_link_keep(ngx_http_dwrtc_link_t *link, const char *data,
    size_t len)
{
    size_t   rest, size;
    u_char  *out;

    rest = link->out_last - link->out_pos;

    if (link->out_size - link->out_last < len
        && link->out_size - rest >= len)
    {
        /* room at the front: what is written is dropped */
        ngx_memmove(link->out, link->out + link->out_pos, rest);
        link->out_pos = 0;
        link->out_last = rest;
    }

    if (link->out_size - link->out_last < len) {

        size = ngx_max(2 * link->out_size, rest + len);
        size = ngx_max(size, 16384);

        out = ngx_alloc(size, link->connection->log);
        if (out == NULL) {
            return NGX_ERROR;
        }

        if (rest) {
            ngx_memcpy(out, link->out + link->out_pos, rest);
        }

        if (link->out) {
            ngx_free(link->out);
        }

        link->out = out;
        link->out_size = size;
        link->out_pos = 0;
        link->out_last = rest;
    }

    ngx_memcpy(link->out + link->out_last, data, len);
    link->out_last += len;

    return NGX_OK;
}


/*
 * Closes the link's connection, with TLS's close_notify unless reset, and
 * tells the node.
 */

static void
ngx_http_dwrtc_link_close(ngx_http_dwrtc_link_t *link, ngx_uint_t reset)
{
    ngx_connection_t        *c;
    struct linger            linger;
    ngx_http_dwrtc_links_t  *ls;

    ls = &ngx_http_dwrtc_links;
    c = link->connection;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ls->log, 0,
                   "dwrtc: closing link %uL with %V", link->id, &link->name);

    ngx_rbtree_delete(&ls->links, &link->node);

    if (ls->node) {
        dwrtc_link_closed(ls->node, link->id);
    }

    if (c) {
        if (c->ssl) {
            c->ssl->no_wait_shutdown = 1;

            if (reset) {
                /* no close_notify: SSL_shutdown() writes nothing */
                c->error = 1;
            }

            (void) ngx_ssl_shutdown(c);
        }

        if (reset) {
            linger.l_onoff = 1;
            linger.l_linger = 0;

            (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER,
                              (const void *) &linger, sizeof(struct linger));
        }

        ngx_close_connection(c);
    }

    if (link->out) {
        ngx_free(link->out);
    }

    ngx_destroy_pool(link->pool);
}

#else /* !(NGX_SSL) */


ngx_int_t
ngx_http_dwrtc_link_listen(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf, dwrtc_options *opt)
{
    return NGX_ERROR;
}


ngx_int_t
ngx_http_dwrtc_link_start(ngx_cycle_t *cycle, dwrtc_node *node)
{
    return NGX_ERROR;
}


void
ngx_http_dwrtc_link_stop(void)
{
}

#endif
