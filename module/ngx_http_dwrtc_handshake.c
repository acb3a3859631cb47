
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * The WebSocket handshake (RFC 6455) of a dwrtc_signal location (and of a
 * dwrtc_peerjs location's {path}peerjs, ngx_http_dwrtc_peerjs.c): the checks
 * of the upgrade request, the origin policy, the refusals with their
 * reasons, the 101 response, and the welcome message that gives the client
 * its session id. The upgraded connection is then the session's, in
 * ngx_http_dwrtc_session.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include "ngx_http_dwrtc_module.h"


#define NGX_HTTP_DWRTC_WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* bytes of a dwrtc_session_user value kept; the rest is cut off */
#define NGX_HTTP_DWRTC_USER_MAX      256


static ngx_int_t ngx_http_dwrtc_refuse(ngx_http_request_t *r,
    ngx_uint_t status, char *reason, ngx_str_t *name, ngx_str_t *value);
static ngx_table_elt_t *ngx_http_dwrtc_find_header(ngx_http_request_t *r,
    char *name, size_t len, ngx_uint_t *count);
static ngx_int_t ngx_http_dwrtc_has_token(ngx_http_request_t *r,
    char *name, size_t name_len, char *token, size_t len);
static ngx_int_t ngx_http_dwrtc_accept(ngx_http_request_t *r,
    ngx_str_t *key, ngx_http_dwrtc_loc_conf_t *dlcf);
static ngx_int_t ngx_http_dwrtc_welcome(ngx_http_request_t *r,
    ngx_http_dwrtc_session_t *s, ngx_http_dwrtc_loc_conf_t *dlcf);


static ngx_str_t  ngx_http_dwrtc_upgrade_name = ngx_string("Upgrade");
static ngx_str_t  ngx_http_dwrtc_websocket = ngx_string("websocket");
static ngx_str_t  ngx_http_dwrtc_version_name =
    ngx_string("Sec-WebSocket-Version");
static ngx_str_t  ngx_http_dwrtc_version = ngx_string("13");


ngx_int_t
ngx_http_dwrtc_handler(ngx_http_request_t *r)
{
    char                       *unavailable;
    u_char                     *p, *last, buf[18];
    ngx_str_t                   key, decoded;
    ngx_uint_t                  n;
    ngx_table_elt_t            *h;
    ngx_http_dwrtc_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_dwrtc_module);

    if (r != r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "dwrtc: dwrtc_signal in a subrequest");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->http_version > NGX_HTTP_VERSION_11) {
        /* no Upgrade in HTTP/2; browsers open WebSockets over HTTP/1.1 */
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "WebSocket needs HTTP/1.1, not HTTP/2",
                                     NULL, NULL);
    }

    h = ngx_http_dwrtc_find_header(r, "Upgrade", sizeof("Upgrade") - 1, &n);

    if (h == NULL) {

        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            return ngx_http_dwrtc_refuse(r, 426,
                                         "this location speaks WebSocket "
                                         "(DWRTC signaling)",
                                         &ngx_http_dwrtc_upgrade_name,
                                         &ngx_http_dwrtc_websocket);
        }

        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "a WebSocket handshake is a GET with "
                                     "\"Upgrade: websocket\"", NULL, NULL);
    }

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "a WebSocket handshake is a GET",
                                     NULL, NULL);
    }

    if (r->http_version != NGX_HTTP_VERSION_11) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "a WebSocket handshake needs HTTP/1.1",
                                     NULL, NULL);
    }

    if (ngx_http_dwrtc_has_token(r, "Upgrade", sizeof("Upgrade") - 1,
                                 "websocket", sizeof("websocket") - 1)
        != NGX_OK)
    {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "\"Upgrade\" is not \"websocket\"",
                                     NULL, NULL);
    }

    if (ngx_http_dwrtc_has_token(r, "Connection", sizeof("Connection") - 1,
                                 "upgrade", sizeof("upgrade") - 1)
        != NGX_OK)
    {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "\"Connection\" lacks \"upgrade\"",
                                     NULL, NULL);
    }

    h = ngx_http_dwrtc_find_header(r, "Sec-WebSocket-Version",
                                   sizeof("Sec-WebSocket-Version") - 1, &n);

    if (h == NULL || n != 1
        || h->value.len != 2 || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "\"Sec-WebSocket-Version\" must be 13",
                                     &ngx_http_dwrtc_version_name,
                                     &ngx_http_dwrtc_version);
    }

    h = ngx_http_dwrtc_find_header(r, "Sec-WebSocket-Key",
                                   sizeof("Sec-WebSocket-Key") - 1, &n);

    if (h == NULL || n != 1) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "one \"Sec-WebSocket-Key\" is required",
                                     NULL, NULL);
    }

    p = h->value.data;
    last = p + h->value.len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    key.data = p;
    key.len = last - p;

    if (key.len != 24 || key.data[22] != '=' || key.data[23] != '=') {
        goto invalid_key;
    }

    decoded.data = buf;

    if (ngx_decode_base64(&decoded, &key) != NGX_OK || decoded.len != 16) {
        goto invalid_key;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                     "a WebSocket handshake has no body",
                                     NULL, NULL);
    }

    if (ngx_http_dwrtc_origin_allowed(r, dlcf) != NGX_OK) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_FORBIDDEN,
                                     "origin not allowed", NULL, NULL);
    }

    unavailable = ngx_http_dwrtc_node_unavailable();

    if (unavailable) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     unavailable, NULL, NULL);
    }

    if (!ngx_http_dwrtc_node_ready() && !ngx_exiting && !ngx_terminate) {
        return ngx_http_dwrtc_hold(r);
    }

    if (ngx_exiting || ngx_terminate) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "server is shutting down", NULL, NULL);
    }

    /* a PeerJS client is told in its own words, after the upgrade */

    if (!dlcf->peerjs && ngx_http_dwrtc_nsessions() >= dlcf->max_sessions) {
        return ngx_http_dwrtc_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "too many sessions (dwrtc_max_sessions)",
                                     NULL, NULL);
    }

    return ngx_http_dwrtc_accept(r, &key, dlcf);

invalid_key:

    return ngx_http_dwrtc_refuse(r, NGX_HTTP_BAD_REQUEST,
                                 "\"Sec-WebSocket-Key\" is not 16 bytes "
                                 "in base64", NULL, NULL);
}
static ngx_int_t
ngx_http_dwrtc_accept(ngx_http_request_t *r, ngx_str_t *key,
    ngx_http_dwrtc_loc_conf_t *dlcf)
{
    u_char                     hash[20];
    ngx_int_t                  rc;
    ngx_str_t                  src, user;
    ngx_sha1_t                 sha1;
    ngx_table_elt_t           *h;
    ngx_connection_t          *c;
    ngx_http_dwrtc_session_t  *s;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;

    /* after every access check: auth_request_set variables are set */

    user.len = 0;

    if (dlcf->session_user
        && ngx_http_complex_value(r, dlcf->session_user, &user) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (user.len > NGX_HTTP_DWRTC_USER_MAX) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: dwrtc_session_user value of %uz bytes "
                      "cut to %d", user.len, NGX_HTTP_DWRTC_USER_MAX);
        user.len = NGX_HTTP_DWRTC_USER_MAX;
    }

    rc = ngx_http_dwrtc_session_create(r, dlcf, &user, &s);

    if (rc != NGX_OK) {
        return rc;
    }

    /* Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) */

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, NGX_HTTP_DWRTC_WS_GUID,
                    sizeof(NGX_HTTP_DWRTC_WS_GUID) - 1);
    ngx_sha1_final(hash, &sha1);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Upgrade");
    ngx_str_set(&h->value, "websocket");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(20));
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    src.data = hash;
    src.len = 20;

    h->hash = 1;
    ngx_str_set(&h->key, "Sec-WebSocket-Accept");
    ngx_encode_base64(&h->value, &src);

    /* the header filter adds "Connection: upgrade" for 101 */

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    if (ngx_http_send_header(r) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the connection is the session's now */

    ngx_http_dwrtc_session_start(s);

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->log->action = "serving dwrtc session";

    rc = dlcf->peerjs ? ngx_http_dwrtc_session_peerjs_welcome(s)
                      : ngx_http_dwrtc_welcome(r, s, dlcf);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * Who opened which session is worth an info line; a session without a
     * user is only traffic, a debug line like every other per-session one.
     */

    if (user.len) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: session %*s open, user \"%V\"",
                      (size_t) DWRTC_SESSION_ID_LEN,
                      ngx_http_dwrtc_session_id(r), &user);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "dwrtc: session %*s open",
                       (size_t) DWRTC_SESSION_ID_LEN,
                       ngx_http_dwrtc_session_id(r));
    }

    /*
     * The session outlives the content phase: hold the request, and let
     * the read handler run from the posted events, where it also takes
     * frames the client sent right behind the handshake. At the end of
     * that turn the session writes the access log line and releases the
     * request (ngx_http_dwrtc_session_upgraded()).
     */

    r->main->count++;

    ngx_post_event(c->read, &ngx_posted_events);

    return NGX_DONE;
}

/*
 * {"type":"WebSocketIdMessage","id":"...","challenge":"...","time":T,
 * "iceServers":[...]}: the core writes the message (dwrtc_format_welcome()),
 * with the challenge a client signs to claim a key-owned id; this module
 * the ICE servers of its configuration, with fresh TURN credentials.
 */

static ngx_int_t
ngx_http_dwrtc_welcome(ngx_http_request_t *r, ngx_http_dwrtc_session_t *s,
    ngx_http_dwrtc_loc_conf_t *dlcf)
{
    u_char      *ice, *end, *msg, *id;
    size_t       len, ice_len;
    uint64_t     now;
    ngx_int_t    rc;
    ngx_log_t   *log;
    ngx_time_t  *tp;

    log = r->connection->log;
    id = ngx_http_dwrtc_session_id(r);

    ice = NULL;
    ice_len = 0;

    if (dlcf->ice) {
        ice = ngx_alloc(ngx_http_dwrtc_ice_json_len(dlcf->ice), log);
        if (ice == NULL) {
            return NGX_ERROR;
        }

        end = ngx_http_dwrtc_ice_json(dlcf->ice, ice, id, log);
        if (end == NULL) {
            ngx_free(ice);
            return NGX_ERROR;
        }

        ice_len = end - ice;
    }

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;

    len = dwrtc_format_welcome(ngx_http_dwrtc_node(), (char *) id,
                               DWRTC_SESSION_ID_LEN, now, (char *) ice,
                               ice_len, NULL, 0);

    msg = len ? ngx_alloc(len, log) : NULL;

    if (msg == NULL
        || dwrtc_format_welcome(ngx_http_dwrtc_node(), (char *) id,
                                DWRTC_SESSION_ID_LEN, now, (char *) ice,
                                ice_len, (char *) msg, len)
           != len)
    {
        ngx_free(msg);
        ngx_free(ice);
        return NGX_ERROR;
    }

    ngx_free(ice);

    rc = ngx_http_dwrtc_session_send_text(s, msg, len);

    ngx_free(msg);

    return rc;
}


static ngx_int_t
ngx_http_dwrtc_refuse(ngx_http_request_t *r, ngx_uint_t status, char *reason,
    ngx_str_t *name, ngx_str_t *value)
{
    size_t            len;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "dwrtc: websocket handshake refused with %ui: %s",
                  status, reason);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the client meant to leave HTTP on this connection: end it */
    r->keepalive = 0;

    r->headers_out.status = status;

    if (status == 426) {
        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
    }

    if (name) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = *name;
        h->value = *value;
    }

    len = ngx_strlen(reason) + 1;

    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, reason, len - 1);
    *b->last++ = LF;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_table_elt_t *
ngx_http_dwrtc_find_header(ngx_http_request_t *r, char *name, size_t len,
    ngx_uint_t *count)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    found = NULL;
    *count = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            if (found == NULL) {
                found = &h[i];
            }

            (*count)++;
        }
    }

    return found;
}


/* a comma-separated header holds the token, case-insensitively */

static ngx_int_t
ngx_http_dwrtc_has_token(ngx_http_request_t *r, char *name, size_t name_len,
    char *token, size_t len)
{
    u_char           *p, *last, *start, *end;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != name_len
            || ngx_strncasecmp(h[i].key.data, (u_char *) name, name_len) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {

            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < last && *p != ',') {
                p++;
            }

            end = p;

            while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }

            if ((size_t) (end - start) == len
                && ngx_strncasecmp(start, (u_char *) token, len) == 0)
            {
                return NGX_OK;
            }
        }
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_dwrtc_origin_allowed(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf)
{
    ngx_str_t        *allowed, origin;
    ngx_uint_t        i, n;
    ngx_table_elt_t  *h;

    if (dlcf->allowed_origins == NULL) {
        return NGX_OK;
    }

    h = ngx_http_dwrtc_find_header(r, "Origin", sizeof("Origin") - 1, &n);

    if (h == NULL) {
        /* not a browser: the Origin check protects browsers' users */
        return NGX_OK;
    }

    if (n != 1) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "dwrtc: handshake with %ui Origin headers refused "
                      "with 403 (dwrtc_allowed_origins)", n);
        return NGX_DECLINED;
    }

    origin = h->value;

    if (origin.len > 1 && origin.data[origin.len - 1] == '/') {
        origin.len--;
    }

    allowed = dlcf->allowed_origins->elts;

    for (i = 0; i < dlcf->allowed_origins->nelts; i++) {
        if (allowed[i].len == origin.len
            && ngx_strncasecmp(allowed[i].data, origin.data, origin.len) == 0)
        {
            return NGX_OK;
        }
    }

    /*
     * At notice, with the origin: an origin missing from the list is an
     * operator's mistake as often as a stranger's page, and browsers show
     * their users nothing but a failed connection.
     */

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "dwrtc: origin \"%V\" is not in dwrtc_allowed_origins: "
                  "handshake refused with 403", &h->value);

    return NGX_DECLINED;
}

