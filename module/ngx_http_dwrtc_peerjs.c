
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * The PeerJS server's HTTP side at a dwrtc_peerjs location (docs/peerjs.md),
 * and what a PeerJS WebSocket asks for in its query. For a location
 * "/peerjs/":
 *
 *   GET /peerjs/              a small JSON description of the server
 *   GET /peerjs/{key}/id      a fresh id, a random UUID claimed as it opens
 *   GET /peerjs/{key}/peers   the ids of this location's sessions on this
 *                             worker as a JSON array with
 *                             dwrtc_peerjs_discovery on, else 401
 *   GET /peerjs/peerjs?...    the WebSocket (ngx_http_dwrtc_handshake.c)
 *
 * with CORS as the PeerJS server answers it: the page's Origin reflected,
 * restricted by dwrtc_allowed_origins where that is set. The session
 * itself is the node's like any other (ngx_http_dwrtc_session.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dwrtc_module.h"


/* the PeerJS server's own texts, which its clients show their users */
#define NGX_HTTP_DWRTC_PEERJS_NO_PARAMS                                       \
    "No id, token, or key supplied to websocket server"
#define NGX_HTTP_DWRTC_PEERJS_BAD_KEY     "Invalid key provided"
#define NGX_HTTP_DWRTC_PEERJS_FULL                                            \
    "Server has reached its concurrent user limit"

#define NGX_HTTP_DWRTC_PEERJS_DESCRIPTION                                     \
    "{\"name\":\"PeerJS Server\",\"description\":\"DWRTC: PeerJS signaling "  \
    "across a decentralized network of nginx nodes\","                        \
    "\"website\":\"https://peerjs.com/\"}"


static ngx_int_t ngx_http_dwrtc_peerjs_cors(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf);
static ngx_int_t ngx_http_dwrtc_peerjs_preflight(ngx_http_request_t *r);
static ngx_int_t ngx_http_dwrtc_peerjs_new_id(ngx_http_request_t *r);
static ngx_int_t ngx_http_dwrtc_peerjs_peers(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf);
static size_t ngx_http_dwrtc_peerjs_ids(ngx_http_dwrtc_loc_conf_t *dlcf,
    u_char *p);
static ngx_int_t ngx_http_dwrtc_peerjs_send(ngx_http_request_t *r,
    ngx_uint_t status, char *type, u_char *body, size_t len);
static ngx_int_t ngx_http_dwrtc_peerjs_add_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
static ngx_int_t ngx_http_dwrtc_peerjs_arg(ngx_http_request_t *r, char *name,
    size_t len, ngx_str_t *value);
static ngx_int_t ngx_http_dwrtc_peerjs_refusal(ngx_http_request_t *r,
    char *msg, size_t len, ngx_str_t *refusal);


ngx_int_t
ngx_http_dwrtc_peerjs_handler(ngx_http_request_t *r)
{
    u_char                     *slash;
    ngx_int_t                   rc;
    ngx_str_t                   rest;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_dwrtc_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_dwrtc_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* what follows the location's prefix is the PeerJS server's path */

    rest = r->uri;

    if (rest.len >= clcf->name.len
        && ngx_strncmp(rest.data, clcf->name.data, clcf->name.len) == 0)
    {
        rest.data += clcf->name.len;
        rest.len -= clcf->name.len;
    }

    if (rest.len && rest.data[0] == '/') {
        rest.data++;
        rest.len--;
    }

    if (rest.len == sizeof("peerjs") - 1
        && ngx_strncmp(rest.data, "peerjs", rest.len) == 0
        && r->method != NGX_HTTP_OPTIONS)
    {
        /* the WebSocket: the handshake's checks, the origin's included */
        return ngx_http_dwrtc_handler(r);
    }

    /*
     * An id is held back until the node is published, as a handshake is:
     * an id given out before then could not be reached from other nodes.
     * Before anything is answered, since the request runs again.
     */

    if (r == r->main
        && rest.len > 3
        && ngx_strncmp(rest.data + rest.len - 3, "/id", 3) == 0
        && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && ngx_http_dwrtc_node_unavailable() == NULL
        && !ngx_http_dwrtc_node_ready() && !ngx_exiting && !ngx_terminate)
    {
        return ngx_http_dwrtc_hold(r);
    }

    rc = ngx_http_dwrtc_peerjs_cors(r, dlcf);

    if (rc != NGX_OK) {
        return rc;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_dwrtc_peerjs_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rest.len == 0) {
        return ngx_http_dwrtc_peerjs_send(r, NGX_HTTP_OK, "application/json",
                                  (u_char *) NGX_HTTP_DWRTC_PEERJS_DESCRIPTION,
                                  sizeof(NGX_HTTP_DWRTC_PEERJS_DESCRIPTION)
                                  - 1);
    }

    /*
     * {key}/id and {key}/peers: the PeerJS server answers them for any
     * key (it checks the key on the WebSocket only), and so do we.
     */

    slash = ngx_strlchr(rest.data, rest.data + rest.len, '/');

    if (slash == NULL || slash == rest.data) {
        return NGX_HTTP_NOT_FOUND;
    }

    rest.len -= slash + 1 - rest.data;
    rest.data = slash + 1;

    if (rest.len == 2 && ngx_strncmp(rest.data, "id", 2) == 0) {
        return ngx_http_dwrtc_peerjs_new_id(r);
    }

    if (rest.len == 5 && ngx_strncmp(rest.data, "peers", 5) == 0) {

        if (dlcf->peerjs_discovery) {
            return ngx_http_dwrtc_peerjs_peers(r, dlcf);
        }

        /* no discovery: the PeerJS server's answer while it is off */
        return ngx_http_dwrtc_peerjs_send(r, NGX_HTTP_UNAUTHORIZED,
                                          "text/plain",
                                          (u_char *) "Unauthorized",
                                          sizeof("Unauthorized") - 1);
    }

    return NGX_HTTP_NOT_FOUND;
}


/*
 * The page's Origin reflected, as the PeerJS server's cors() does; an
 * origin that dwrtc_allowed_origins leaves out gets 403 (logged there).
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_cors(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf)
{
    ngx_str_t         vary;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *origin;

    if (ngx_http_dwrtc_origin_allowed(r, dlcf) != NGX_OK) {
        return NGX_HTTP_FORBIDDEN;
    }

    origin = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Origin") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                               sizeof("Origin") - 1) == 0)
        {
            origin = &h[i];
            break;
        }
    }

    if (origin == NULL) {
        return NGX_OK;
    }

    ngx_str_set(&vary, "Origin");

    if (ngx_http_dwrtc_peerjs_add_header(r, "Access-Control-Allow-Origin",
                                         &origin->value)
        != NGX_OK
        || ngx_http_dwrtc_peerjs_add_header(r, "Vary", &vary) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/* the answer cors() gives a preflight by default */

static ngx_int_t
ngx_http_dwrtc_peerjs_preflight(ngx_http_request_t *r)
{
    ngx_str_t  methods;

    ngx_str_set(&methods, "GET,HEAD,PUT,PATCH,POST,DELETE");

    if (ngx_http_dwrtc_peerjs_add_header(r, "Access-Control-Allow-Methods",
                                         &methods)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_dwrtc_peerjs_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL, 0);
}


/*
 * Discovery: the ids this location's sessions on this worker hold, as the
 * JSON array the PeerJS server answers with allow_discovery. A node knows
 * only its own sessions; the network has no list of every id, and with
 * more than one worker each answers for its own. Sized in a first walk,
 * written in a second: nothing runs between them.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_peers(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf)
{
    u_char  *body;
    size_t   len;

    len = ngx_http_dwrtc_peerjs_ids(dlcf, NULL);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_http_dwrtc_peerjs_ids(dlcf, body);

    return ngx_http_dwrtc_peerjs_send(r, NGX_HTTP_OK, "application/json",
                                      body, len);
}


/* The JSON array of the ids written at p; its length (only, if p is NULL). */

static size_t
ngx_http_dwrtc_peerjs_ids(ngx_http_dwrtc_loc_conf_t *dlcf, u_char *p)
{
    size_t           len;
    ngx_str_t        id;
    ngx_uint_t       n;
    ngx_str_node_t  *sn;

    len = sizeof("[]") - 1;
    n = 0;

    if (p) {
        *p++ = '[';
    }

    for (sn = ngx_http_dwrtc_session_next(NULL);
         sn;
         sn = ngx_http_dwrtc_session_next(sn))
    {
        if (ngx_http_dwrtc_session_peerjs_id(ngx_http_dwrtc_session_of(sn),
                                             dlcf, &id)
            != NGX_OK)
        {
            continue;
        }

        len += (n ? sizeof(",\"\"") : sizeof("\"\"")) - 1 + id.len
               + ngx_escape_json(NULL, id.data, id.len);

        if (p) {
            if (n) {
                *p++ = ',';
            }

            *p++ = '"';
            p = (u_char *) ngx_escape_json(p, id.data, id.len);
            *p++ = '"';
        }

        n++;
    }

    if (p) {
        *p = ']';
    }

    return len;
}


/*
 * A fresh id, a random UUID as the PeerJS server gives: it names no node
 * and no worker, so the WebSocket that opens it may land on any worker of
 * any node, which claims it in the DHT as it claims an id the app chose.
 * Nothing is held for it until then. Not handed out while this worker's
 * node cannot serve the WebSocket that would follow.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_new_id(ngx_http_request_t *r)
{
    int      rc;
    char    *unavailable;
    u_char  *id;

    unavailable = ngx_http_dwrtc_node_unavailable();

    if (unavailable || ngx_http_dwrtc_node() == NULL
        || ngx_exiting || ngx_terminate)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "dwrtc: peerjs id refused with 503: %s",
                      unavailable ? unavailable : "server is shutting down");
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    id = ngx_pnalloc(r->pool, DWRTC_PEERJS_NEW_ID_LEN);
    if (id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = dwrtc_peerjs_new_id((char *) id);

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dwrtc: dwrtc_peerjs_new_id() failed: %s",
                      dwrtc_strerror(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_dwrtc_peerjs_send(r, NGX_HTTP_OK, "text/plain", id,
                                      DWRTC_PEERJS_NEW_ID_LEN);
}


static ngx_int_t
ngx_http_dwrtc_peerjs_send(ngx_http_request_t *r, ngx_uint_t status,
    char *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_str_t     no_store;
    ngx_chain_t   out;

    /* every answer here is made for this request: ids most of all */

    ngx_str_set(&no_store, "no-store");

    if (ngx_http_dwrtc_peerjs_add_header(r, "Cache-Control", &no_store)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (type) {
        r->headers_out.content_type.len = ngx_strlen(type);
        r->headers_out.content_type.data = (u_char *) type;
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_dwrtc_peerjs_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/*
 * What a PeerJS WebSocket asks for (?key=...&id=...&token=...), checked in
 * the PeerJS server's order: NGX_OK, the id to open the session under and
 * its token (in the request's pool), or NGX_DECLINED and the PeerJS message
 * (in refusal, in the connection's pool) to send the client instead of
 * OPEN before the session closes.
 */

ngx_int_t
ngx_http_dwrtc_peerjs_admit(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf, ngx_str_t *id, ngx_str_t *token,
    ngx_str_t *refusal)
{
    ngx_int_t  rc;
    ngx_str_t  key;

    rc = ngx_http_dwrtc_peerjs_arg(r, "id", 2, id);

    if (rc == NGX_OK) {
        rc = ngx_http_dwrtc_peerjs_arg(r, "token", 5, token);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_dwrtc_peerjs_arg(r, "key", 3, &key);
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "dwrtc: peerjs websocket without id, token or key, "
                      "refused");
        return ngx_http_dwrtc_peerjs_refusal(r,
                                NGX_HTTP_DWRTC_PEERJS_NO_PARAMS,
                                sizeof(NGX_HTTP_DWRTC_PEERJS_NO_PARAMS) - 1,
                                refusal);
    }

    if (key.len != dlcf->peerjs_key.len
        || ngx_strncmp(key.data, dlcf->peerjs_key.data, key.len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "dwrtc: peerjs websocket with a key other than "
                      "dwrtc_peerjs_key, refused");
        return ngx_http_dwrtc_peerjs_refusal(r,
                                NGX_HTTP_DWRTC_PEERJS_BAD_KEY,
                                sizeof(NGX_HTTP_DWRTC_PEERJS_BAD_KEY) - 1,
                                refusal);
    }

    if (ngx_http_dwrtc_nsessions() >= dlcf->max_sessions) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "dwrtc: peerjs websocket refused: too many sessions "
                      "(dwrtc_max_sessions)");
        return ngx_http_dwrtc_peerjs_refusal(r,
                                NGX_HTTP_DWRTC_PEERJS_FULL,
                                sizeof(NGX_HTTP_DWRTC_PEERJS_FULL) - 1,
                                refusal);
    }

    return NGX_OK;
}


/*
 * One query argument, URL-decoded as the PeerJS server's URLSearchParams
 * decodes it ('+' is a space): NGX_OK, NGX_DECLINED when it is missing or
 * empty, NGX_ERROR.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_arg(ngx_http_request_t *r, char *name, size_t len,
    ngx_str_t *value)
{
    u_char     *p, *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, len, &raw) != NGX_OK
        || raw.len == 0)
    {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, raw.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, raw.data, raw.len);

    for (dst = p; dst < p + raw.len; dst++) {
        if (*dst == '+') {
            *dst = ' ';
        }
    }

    src = p;
    dst = p;

    ngx_unescape_uri(&dst, &src, raw.len, 0);

    value->data = p;
    value->len = dst - p;

    return value->len ? NGX_OK : NGX_DECLINED;
}


/*
 * Whether an id the client sent may be written to the log as it is: at
 * most 64 bytes of letters, digits, ' ', '-' and '_' (a PeerJS id's
 * characters), so that a decoded query cannot write lines of its own.
 */

ngx_uint_t
ngx_http_dwrtc_peerjs_printable(ngx_str_t *id)
{
    u_char      c;
    ngx_uint_t  i;

    if (id->len > 64) {
        return 0;
    }

    for (i = 0; i < id->len; i++) {
        c = id->data[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || c == ' ' || c == '-' || c == '_'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_dwrtc_peerjs_refusal(ngx_http_request_t *r, char *msg, size_t len,
    ngx_str_t *refusal)
{
    size_t  n;

    n = dwrtc_peerjs_format_error(msg, len, NULL, 0);

    refusal->data = n ? ngx_pnalloc(r->connection->pool, n) : NULL;

    if (refusal->data == NULL
        || dwrtc_peerjs_format_error(msg, len, (char *) refusal->data, n)
           != n)
    {
        return NGX_ERROR;
    }

    refusal->len = n;

    return NGX_DECLINED;
}
