
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * dwrtc_ice_servers: the STUN and TURN servers a session's browser uses,
 * sent in the welcome message as "iceServers", an array of RTCIceServer
 * objects. A TURN server takes static credentials, or a secret it shares
 * with the node, from which the node makes short-lived credentials in the
 * TURN REST form (draft-uberti-behave-turn-rest-00, coturn's
 * use-auth-secret):
 *
 *     username   = "<expiry, unix time>:<name>"
 *     credential = base64(HMAC-SHA1(secret, username))
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_dwrtc_module.h"


#define NGX_HTTP_DWRTC_ICE_TTL        86400


typedef struct {
    ngx_str_t                       head;      /* {"urls":[...] */
    ngx_str_t                       tail;      /* static credentials and } */
    ngx_str_t                       secret;    /* REST credentials if set */
    ngx_str_t                       name;      /* raw; empty: session id */
    ngx_str_t                       name_json;
    time_t                          ttl;
} ngx_http_dwrtc_ice_server_t;


struct ngx_http_dwrtc_ice_conf_s {
    ngx_array_t                     servers;   /* ngx_http_dwrtc_ice_server_t */
};


static ngx_int_t ngx_http_dwrtc_json_string(ngx_conf_t *cf, ngx_str_t *src,
    ngx_str_t *dst);


char *
ngx_http_dwrtc_ice_servers(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_loc_conf_t *dlcf = conf;

    u_char                       *p;
    size_t                        len;
    ngx_str_t                    *value, username, credential, *urls, v;
    ngx_int_t                     ttl;
    ngx_uint_t                    i, nurls, turn;
    ngx_http_dwrtc_ice_server_t  *server;

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        if (dlcf->ice != NGX_CONF_UNSET_PTR) {
            return "is duplicate";
        }

        dlcf->ice = NULL;
        return NGX_CONF_OK;
    }

    if (dlcf->ice == NULL) {
        return "is duplicate: \"off\" was given";
    }

    if (dlcf->ice == NGX_CONF_UNSET_PTR) {
        dlcf->ice = ngx_pcalloc(cf->pool, sizeof(ngx_http_dwrtc_ice_conf_t));
        if (dlcf->ice == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_array_init(&dlcf->ice->servers, cf->pool, 2,
                           sizeof(ngx_http_dwrtc_ice_server_t))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    server = ngx_array_push(&dlcf->ice->servers);
    if (server == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(server, sizeof(ngx_http_dwrtc_ice_server_t));
    server->ttl = NGX_HTTP_DWRTC_ICE_TTL;

    ngx_str_null(&username);
    ngx_str_null(&credential);

    urls = &value[1];
    nurls = 0;
    turn = 0;
    ttl = NGX_CONF_UNSET;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "stun:", 5) == 0
            || ngx_strncmp(value[i].data, "stuns:", 6) == 0)
        {
            if (nurls != i - 1) {
                goto urls_first;
            }

            nurls++;
            continue;
        }

        if (ngx_strncmp(value[i].data, "turn:", 5) == 0
            || ngx_strncmp(value[i].data, "turns:", 6) == 0)
        {
            if (nurls != i - 1) {
                goto urls_first;
            }

            nurls++;
            turn = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "username=", 9) == 0) {
            username.data = value[i].data + 9;
            username.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "credential=", 11) == 0) {
            credential.data = value[i].data + 11;
            credential.len = value[i].len - 11;
            continue;
        }

        if (ngx_strncmp(value[i].data, "secret=", 7) == 0) {
            server->secret.data = value[i].data + 7;
            server->secret.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            server->name.data = value[i].data + 5;
            server->name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            v.data = value[i].data + 4;
            v.len = value[i].len - 4;

            ttl = ngx_parse_time(&v, 1);
            if (ttl == NGX_ERROR || ttl == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid ttl \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            server->ttl = ttl;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected stun:, "
                           "stuns:, turn: or turns: URLs, then username=, "
                           "credential=, secret=, name= or ttl=",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (nurls == 0) {
        return "needs at least one stun:, stuns:, turn: or turns: URL";
    }

    if (server->secret.len && (username.len || credential.len)) {
        return "takes either secret= or username= and credential=";
    }

    if ((username.len == 0) != (credential.len == 0)) {
        return "needs both username= and credential=";
    }

    if ((server->name.len || ttl != NGX_CONF_UNSET) && !server->secret.len) {
        return "takes name= and ttl= only with secret=";
    }

    if (turn && !server->secret.len && !username.len) {
        /* browsers refuse a TURN server without credentials */
        return "needs username= and credential=, or secret=, for turn: URLs";
    }

    /* {"urls":["...",...] */

    len = sizeof("{\"urls\":[]") - 1;

    for (i = 0; i < nurls; i++) {
        len += 3 + urls[i].len + ngx_escape_json(NULL, urls[i].data,
                                                 urls[i].len);
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    server->head.data = p;

    p = ngx_cpymem(p, "{\"urls\":[", sizeof("{\"urls\":[") - 1);

    for (i = 0; i < nurls; i++) {
        if (i) {
            *p++ = ',';
        }

        *p++ = '"';
        p = (u_char *) ngx_escape_json(p, urls[i].data, urls[i].len);
        *p++ = '"';
    }

    *p++ = ']';

    server->head.len = p - server->head.data;

    /* ,"username":"...","credential":"..."} or } */

    if (username.len) {
        if (ngx_http_dwrtc_json_string(cf, &username, &username) != NGX_OK
            || ngx_http_dwrtc_json_string(cf, &credential, &credential)
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        len = sizeof(",\"username\":\"\",\"credential\":\"\"}") - 1
              + username.len + credential.len;

        p = ngx_pnalloc(cf->pool, len);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        server->tail.data = p;
        server->tail.len = ngx_sprintf(p,
                                       ",\"username\":\"%V\","
                                       "\"credential\":\"%V\"}",
                                       &username, &credential)
                           - p;

    } else if (!server->secret.len) {
        ngx_str_set(&server->tail, "}");
    }

    if (server->name.len) {
        if (ngx_strlchr(server->name.data,
                        server->name.data + server->name.len, ':'))
        {
            return "takes a name= without \":\"";
        }

        if (ngx_http_dwrtc_json_string(cf, &server->name, &server->name_json)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

urls_first:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "URL \"%V\" after parameters: URLs come first",
                       &value[i]);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_dwrtc_json_string(ngx_conf_t *cf, ngx_str_t *src, ngx_str_t *dst)
{
    u_char     *p;
    uintptr_t   escape;

    escape = ngx_escape_json(NULL, src->data, src->len);

    if (escape == 0) {
        *dst = *src;
        return NGX_OK;
    }

    p = ngx_pnalloc(cf->pool, src->len + escape);
    if (p == NULL) {
        return NGX_ERROR;
    }

    dst->len = (u_char *) ngx_escape_json(p, src->data, src->len) - p;
    dst->data = p;

    return NGX_OK;
}


/* Most bytes ngx_http_dwrtc_ice_json() writes. */

size_t
ngx_http_dwrtc_ice_json_len(ngx_http_dwrtc_ice_conf_t *ice)
{
    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_dwrtc_ice_server_t  *server;

    server = ice->servers.elts;
    len = sizeof("[]") - 1;

    for (i = 0; i < ice->servers.nelts; i++) {
        len += 1 + server[i].head.len;

        if (server[i].secret.len) {
            len += sizeof(",\"username\":\":\",\"credential\":\"\"}") - 1
                   + NGX_TIME_T_LEN
                   + ngx_max(server[i].name_json.len, DWRTC_SESSION_ID_LEN)
                   + ngx_base64_encoded_length(EVP_MAX_MD_SIZE);

        } else {
            len += server[i].tail.len;
        }
    }

    return len;
}


/*
 * Writes the "iceServers" array for one session: REST credentials are made
 * now, valid for the server's ttl, named by name= or else the session id.
 * Returns the end of what it wrote, or NULL.
 */

u_char *
ngx_http_dwrtc_ice_json(ngx_http_dwrtc_ice_conf_t *ice, u_char *p,
    u_char *id, ngx_log_t *log)
{
    u_char                        user[NGX_TIME_T_LEN + 1 + 1024];
    u_char                        md[EVP_MAX_MD_SIZE];
    u_char                       *u;
    time_t                        expiry;
    ngx_str_t                     src, dst;
    ngx_uint_t                    i;
    unsigned int                  md_len;
    ngx_http_dwrtc_ice_server_t  *server;

    server = ice->servers.elts;

    *p++ = '[';

    for (i = 0; i < ice->servers.nelts; i++) {

        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, server[i].head.data, server[i].head.len);

        if (!server[i].secret.len) {
            p = ngx_cpymem(p, server[i].tail.data, server[i].tail.len);
            continue;
        }

        /* the raw username is what the TURN server signs */

        expiry = ngx_time() + server[i].ttl;

        if (server[i].name.len) {
            if (server[i].name.len > 1024) {
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "dwrtc: TURN name too long");
                return NULL;
            }

            u = ngx_sprintf(user, "%T:%V", expiry, &server[i].name);

        } else {
            u = ngx_sprintf(user, "%T:%*s", expiry,
                            (size_t) DWRTC_SESSION_ID_LEN, id);
        }

        if (HMAC(EVP_sha1(), server[i].secret.data, (int) server[i].secret.len,
                 user, u - user, md, &md_len)
            == NULL)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "dwrtc: HMAC-SHA1 for TURN credentials failed");
            return NULL;
        }

        p = ngx_cpymem(p, ",\"username\":\"", sizeof(",\"username\":\"") - 1);

        if (server[i].name.len) {
            p = ngx_sprintf(p, "%T:%V", expiry, &server[i].name_json);

        } else {
            p = ngx_cpymem(p, user, u - user);
        }

        p = ngx_cpymem(p, "\",\"credential\":\"",
                       sizeof("\",\"credential\":\"") - 1);

        src.data = md;
        src.len = md_len;
        dst.data = p;

        ngx_encode_base64(&dst, &src);

        p += dst.len;
        *p++ = '"';
        *p++ = '}';
    }

    *p++ = ']';

    return p;
}
