
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * Directives and configuration: the command table, the module's context,
 * the creation and merging of its configuration, and its variables. The
 * worker's node is in ngx_http_dwrtc_worker.c, the sessions of a
 * dwrtc_signal location in ngx_http_dwrtc_handshake.c and
 * ngx_http_dwrtc_session.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dwrtc_module.h"


/*
 * dwrtc_network_key: the core's minimum (dwrtc::kMinNetworkKeyLength;
 * dwrtc_options_set_network_key() refuses shorter keys), and the largest
 * file taken for a key, against naming the wrong file.
 */
#define NGX_HTTP_DWRTC_NETWORK_KEY_MIN  16
#define NGX_HTTP_DWRTC_NETWORK_KEY_MAX  4096


static char *ngx_http_dwrtc_port_range(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_bootstrap(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_link_claims_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_dwrtc_claims_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_dwrtc_hold_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_session_hold(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_lookup_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_dht_rate_limit(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_dwrtc_check_port_ranges(ngx_conf_t *cf,
    ngx_http_dwrtc_main_conf_t *dmcf);
static ngx_int_t ngx_http_dwrtc_check_addresses(ngx_conf_t *cf,
    ngx_http_dwrtc_main_conf_t *dmcf);
static ngx_int_t ngx_http_dwrtc_normalize_origin(ngx_conf_t *cf,
    ngx_str_t *origin, ngx_str_t *name);
static char *ngx_http_dwrtc_note_where(ngx_conf_t *cf, void *post,
    void *data);
static void ngx_http_dwrtc_where_here(ngx_conf_t *cf,
    ngx_http_dwrtc_conf_where_t *where);
static void ngx_cdecl ngx_http_dwrtc_conf_error_at(ngx_uint_t level,
    ngx_conf_t *cf, ngx_http_dwrtc_conf_where_t *where, ngx_err_t err,
    const char *fmt, ...);
static ngx_int_t ngx_http_dwrtc_check_bind_address(ngx_conf_t *cf,
    ngx_http_dwrtc_main_conf_t *dmcf, ngx_addr_t *addr);
static char *ngx_http_dwrtc_network_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_dwrtc_network_key_cleanup(void *data);
static char *ngx_http_dwrtc_signal(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_peerjs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_merge_peerjs(ngx_conf_t *cf,
    ngx_http_dwrtc_loc_conf_t *prev, ngx_http_dwrtc_loc_conf_t *conf);
static char *ngx_http_dwrtc_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_ping_interval(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dwrtc_allowed_origins(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

static ngx_int_t ngx_http_dwrtc_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_dwrtc_session_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_dwrtc_session_user_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void *ngx_http_dwrtc_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_dwrtc_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_dwrtc_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_dwrtc_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


/* notes where dwrtc_public_address and dwrtc_bind_address were written */
static ngx_conf_post_t  ngx_http_dwrtc_address_post = {
    ngx_http_dwrtc_note_where
};


/* dwrtc_link_transport: who owns the sockets of node-to-node links */
static ngx_conf_enum_t  ngx_http_dwrtc_link_transports[] = {
    { ngx_string("lws"), NGX_HTTP_DWRTC_LINK_TRANSPORT_LWS },
    { ngx_string("nginx"), NGX_HTTP_DWRTC_LINK_TRANSPORT_NGINX },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_dwrtc_max_sessions_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_MAX_INT32_VALUE
};


static ngx_command_t  ngx_http_dwrtc_commands[] = {

    { ngx_string("dwrtc_dht_port"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dwrtc_port_range,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, dht_port),
      NULL },

    { ngx_string("dwrtc_link_port"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dwrtc_port_range,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_port),
      NULL },

    { ngx_string("dwrtc_bootstrap"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_dwrtc_bootstrap,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_public_address"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, public_address),
      &ngx_http_dwrtc_address_post },

    { ngx_string("dwrtc_bind_address"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, bind_address),
      &ngx_http_dwrtc_address_post },

    { ngx_string("dwrtc_dht_rate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_dwrtc_dht_rate_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_dht_max_searches"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, dht_max_searches),
      NULL },

    { ngx_string("dwrtc_network_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dwrtc_network_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_link_handshake_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_handshake_timeout),
      NULL },

    { ngx_string("dwrtc_link_transport"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_transport),
      &ngx_http_dwrtc_link_transports },

    { ngx_string("dwrtc_link_max_unproven"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_max_unproven),
      NULL },

    { ngx_string("dwrtc_link_retry_delay"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_retry_delay),
      NULL },

    { ngx_string("dwrtc_lookup_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, lookup_wait),
      NULL },

    { ngx_string("dwrtc_peerjs_id_reserve"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, peerjs_id_reserve),
      NULL },

    { ngx_string("dwrtc_peerjs_id_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, peerjs_id_wait),
      NULL },

    { ngx_string("dwrtc_peerjs_id_reservations"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, peerjs_id_reservations),
      NULL },

    { ngx_string("dwrtc_link_ack_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_ack_timeout),
      NULL },

    { ngx_string("dwrtc_queue_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, queue_limit),
      NULL },

    { ngx_string("dwrtc_hold"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_dwrtc_hold_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_session_hold"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_dwrtc_session_hold,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_lookup_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_dwrtc_lookup_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_worker_hold"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, worker_hold_size),
      NULL },

    { ngx_string("dwrtc_room_members"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, room_members),
      NULL },

    { ngx_string("dwrtc_rooms_per_session"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, rooms_per_session),
      NULL },

    { ngx_string("dwrtc_room_remote_members"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, room_remote_members),
      NULL },

    { ngx_string("dwrtc_room_members_per_node"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, room_members_per_node),
      NULL },

    { ngx_string("dwrtc_room_node_checks"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, room_node_checks),
      NULL },

    { ngx_string("dwrtc_claim_clock_skew"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, claim_clock_skew),
      NULL },

    { ngx_string("dwrtc_lookup_claim_checks"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, lookup_claim_checks),
      NULL },

    { ngx_string("dwrtc_claims"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_dwrtc_claims_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_link_claims"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_dwrtc_link_claims_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_publish_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, publish_wait),
      NULL },

    { ngx_string("dwrtc_link_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_main_conf_t, link_idle_timeout),
      NULL },

    { ngx_string("dwrtc_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dwrtc_status,
      0,
      0,
      NULL },

    { ngx_string("dwrtc_signal"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dwrtc_signal,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_peerjs"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dwrtc_peerjs,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_peerjs_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, peerjs_key),
      NULL },

    { ngx_string("dwrtc_peerjs_expire_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, peerjs_expire_timeout),
      NULL },

    { ngx_string("dwrtc_peerjs_alive_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, peerjs_alive_timeout),
      NULL },

    { ngx_string("dwrtc_peerjs_discovery"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, peerjs_discovery),
      NULL },

    { ngx_string("dwrtc_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, max_message_size),
      NULL },

    { ngx_string("dwrtc_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_dwrtc_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_max_sessions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, max_sessions),
      &ngx_http_dwrtc_max_sessions_bounds },

    { ngx_string("dwrtc_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_dwrtc_ping_interval,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, ping_interval),
      NULL },

    { ngx_string("dwrtc_allowed_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_dwrtc_allowed_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_ice_servers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_dwrtc_ice_servers,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dwrtc_session_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dwrtc_loc_conf_t, session_user),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_dwrtc_module_ctx = {
    ngx_http_dwrtc_add_variables,          /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_dwrtc_create_main_conf,       /* create main configuration */
    ngx_http_dwrtc_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_dwrtc_create_loc_conf,        /* create location configuration */
    ngx_http_dwrtc_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_dwrtc_module = {
    NGX_MODULE_V1,
    &ngx_http_dwrtc_module_ctx,            /* module context */
    ngx_http_dwrtc_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_dwrtc_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_dwrtc_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_dwrtc_vars[] = {

    { ngx_string("dwrtc_session_id"), NULL,
      ngx_http_dwrtc_session_id_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("dwrtc_session_user"), NULL,
      ngx_http_dwrtc_session_user_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_dwrtc_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_dwrtc_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* $dwrtc_session_id: the session of this request, for the access log */

static ngx_int_t
ngx_http_dwrtc_session_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *id;

    id = ngx_http_dwrtc_session_id(r);

    if (id == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = DWRTC_SESSION_ID_LEN;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = id;

    return NGX_OK;
}


/* $dwrtc_session_user: what dwrtc_session_user gave the session, if any */

static ngx_int_t
ngx_http_dwrtc_session_user_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *user;

    user = ngx_http_dwrtc_session_user(r);

    if (user == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = user->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = user->data;

    return NGX_OK;
}


static char *
ngx_http_dwrtc_port_range(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char                       *dash;
    ngx_int_t                     from, to;
    ngx_str_t                    *value;
    ngx_http_dwrtc_port_range_t  *range;

    range = (ngx_http_dwrtc_port_range_t *) (p + cmd->offset);

    if (range->from != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dash = ngx_strlchr(value[1].data, value[1].data + value[1].len, '-');

    if (dash) {
        from = ngx_atoi(value[1].data, dash - value[1].data);
        to = ngx_atoi(dash + 1, value[1].data + value[1].len - dash - 1);

    } else {
        from = ngx_atoi(value[1].data, value[1].len);
        to = from;
    }

    if (from == NGX_ERROR || to == NGX_ERROR
        || from > 65535 || to > 65535 || from > to
        || (from == 0 && to != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid port range \"%V\" in \"%V\", "
                           "expected PORT, FROM-TO (ports 1-65535, FROM "
                           "not above TO), or 0 for any",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    range->from = from;
    range->to = to;
    ngx_http_dwrtc_where_here(cf, &range->where);

    return NGX_CONF_OK;
}


static char *
ngx_http_dwrtc_bootstrap(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    u_char                       *colon, *dash, *end;
    ngx_str_t                    *value, *b;
    ngx_int_t                     port, last;
    ngx_uint_t                    i;
    ngx_http_dwrtc_conf_where_t  *where;

    if (dmcf->bootstrap == NULL) {
        dmcf->bootstrap = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (dmcf->bootstrap == NULL) {
            return NGX_CONF_ERROR;
        }

        dmcf->bootstrap_where = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_dwrtc_conf_where_t));
        if (dmcf->bootstrap_where == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        end = value[i].data + value[i].len;
        colon = NULL;

        if (value[i].len && value[i].data[0] == '[') {
            colon = ngx_strlchr(value[i].data, end, ']');
            if (colon && colon + 1 < end && colon[1] == ':') {
                colon++;

            } else {
                colon = NULL;
            }

        } else {
            for (colon = end - 1; colon > value[i].data; colon--) {
                if (*colon == ':') {
                    break;
                }
            }

            if (colon == value[i].data) {
                colon = NULL;
            }
        }

        /*
         * HOST:FIRST-LAST names a node's DHT port range: after a reload its
         * worker may listen on any port of it
         */

        dash = colon ? ngx_strlchr(colon + 1, end, '-') : NULL;

        port = colon ? ngx_atoi(colon + 1, (dash ? dash : end) - colon - 1)
                     : NGX_ERROR;
        last = dash ? ngx_atoi(dash + 1, end - dash - 1) : port;

        if (port < 1 || port > 65535 || last < 1 || last > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid bootstrap node \"%V\", "
                               "expected HOST:PORT, HOST:FIRST-LAST "
                               "(a node's dwrtc_dht_port range) or "
                               "[IPV6]:PORT", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (last < port || last - port >= DWRTC_MAX_BOOTSTRAP_PORTS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid bootstrap node \"%V\": a range "
                               "goes from its first port to its last, at "
                               "most %d ports, such as \"%*s%i-%i\"",
                               &value[i], DWRTC_MAX_BOOTSTRAP_PORTS,
                               (size_t) (colon + 1 - value[i].data),
                               value[i].data, port,
                               port + DWRTC_MAX_BOOTSTRAP_PORTS - 1 > 65535
                               ? 65535 : port + DWRTC_MAX_BOOTSTRAP_PORTS - 1);
            return NGX_CONF_ERROR;
        }

        b = ngx_array_push(dmcf->bootstrap);
        where = ngx_array_push(dmcf->bootstrap_where);
        if (b == NULL || where == NULL) {
            return NGX_CONF_ERROR;
        }

        *b = value[i];
        ngx_http_dwrtc_where_here(cf, where);
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_dwrtc_parse_dht_rate(ngx_str_t *value, ngx_int_t *n)
{
    ngx_str_t  v;

    v = *value;

    if (v.len > 7 && ngx_strncmp(v.data, "per_ip=", 7) == 0) {
        v.data += 7;
        v.len -= 7;

    } else if (v.len > 6 && ngx_strncmp(v.data, "total=", 6) == 0) {
        v.data += 6;
        v.len -= 6;
    }

    if (v.len == 3 && ngx_strncmp(v.data, "off", 3) == 0) {
        *n = -1;
        return NGX_OK;
    }

    if (v.len == 7 && ngx_strncmp(v.data, "default", 7) == 0) {
        *n = 0;
        return NGX_OK;
    }

    *n = ngx_atoi(v.data, v.len);

    if (*n == NGX_ERROR || *n == 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static char *
ngx_http_dwrtc_dht_rate_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    ngx_str_t  *value;

    if (dmcf->dht_rate_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dmcf->dht_rate_total = 0;

    if (ngx_http_dwrtc_parse_dht_rate(&value[1], &dmcf->dht_rate_per_ip)
        != NGX_OK
        || (cf->args->nelts == 3
            && ngx_http_dwrtc_parse_dht_rate(&value[2], &dmcf->dht_rate_total)
               != NGX_OK))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" value, expected "
                           "PER_IP [TOTAL] requests per second, "
                           "each a number, \"off\" or \"default\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    dmcf->dht_rate_set = 1;

    return NGX_CONF_OK;
}


/*
 * dwrtc_claims RATE REFUSALS: a session makes at most RATE claims a minute
 * (a bucket of as many), and is closed after REFUSALS refused in a row.
 */

static char *
ngx_http_dwrtc_claims_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    ngx_str_t  *value, rate;
    ngx_int_t   per_minute, refusals;

    if (dmcf->claims_per_minute != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* "6" or "6r/m", as limit_req writes a rate */

    rate = value[1];

    if (rate.len > 3
        && ngx_strncmp(rate.data + rate.len - 3, "r/m", 3) == 0)
    {
        rate.len -= 3;
    }

    per_minute = ngx_atoi(rate.data, rate.len);
    if (per_minute < 1 || per_minute > 6000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" rate must be from 1 to 6000 claims a "
                           "minute, not \"%V\"", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    refusals = ngx_atoi(value[2].data, value[2].len);
    if (refusals < 1 || refusals > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" refusals must be from 1 to 1000, "
                           "not \"%V\"", &cmd->name, &value[2]);
        return NGX_CONF_ERROR;
    }

    dmcf->claims_per_minute = per_minute;
    dmcf->claim_refusals = refusals;

    return NGX_CONF_OK;
}


/*
 * dwrtc_link_claims SENDERS CHECKS: a proven peer speaks for at most SENDERS
 * key-owned ids on one link, and makes this node check at most CHECKS claim
 * signatures a second on it; beyond either its link is closed.
 */

static char *
ngx_http_dwrtc_link_claims_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    ngx_str_t  *value;
    ngx_int_t   senders, checks;

    if (dmcf->link_owned_senders != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    senders = ngx_atoi(value[1].data, value[1].len);
    if (senders < 1 || senders > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" senders must be from 1 to 1000000, "
                           "not \"%V\"", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    checks = ngx_atoi(value[2].data, value[2].len);
    if (checks < 1 || checks > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" checks must be from 1 to 100000, "
                           "not \"%V\"", &cmd->name, &value[2]);
        return NGX_CONF_ERROR;
    }

    dmcf->link_owned_senders = senders;
    dmcf->link_claim_checks = checks;

    return NGX_CONF_OK;
}


/*
 * dwrtc_hold MESSAGES TIME | off: messages for a key-owned id whose session
 * is away wait on the sender's node, at most MESSAGES per id and TIME each.
 */

static char *
ngx_http_dwrtc_hold_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    ngx_str_t  *value;
    ngx_int_t   n;
    ngx_msec_t  t;

    if (dmcf->hold_messages != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        dmcf->hold_messages = 0;
        dmcf->hold_time = 0;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts != 3) {
        return "takes MESSAGES TIME, or off";
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1 || n > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" messages must be from 1 to 100000, "
                           "not \"%V\"", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    t = ngx_parse_time(&value[2], 0);
    if (t == (ngx_msec_t) NGX_ERROR || t < 100 || t > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" time must be from 100ms to 1h, "
                           "not \"%V\"", &cmd->name, &value[2]);
        return NGX_CONF_ERROR;
    }

    dmcf->hold_messages = n;
    dmcf->hold_time = t;

    return NGX_CONF_OK;
}


/*
 * dwrtc_lookup_rate RATE [burst=N] | off: lookups of nodes and key-owned
 * ids a session may make its worker start, per second and at once.
 */

static char *
ngx_http_dwrtc_lookup_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    ngx_int_t   rate, burst;
    ngx_str_t  *value;

    if (dmcf->lookup_rate != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        if (cf->args->nelts != 2) {
            return "takes no burst when \"off\"";
        }
        dmcf->lookup_rate = 0;
        dmcf->lookup_burst = 0;
        return NGX_CONF_OK;
    }

    rate = ngx_atoi(value[1].data, value[1].len);
    if (rate < 1 || rate > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" rate must be from 1 to 100000 lookups "
                           "per second, or off, not \"%V\"",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    burst = DWRTC_DEFAULT_LOOKUP_BURST;

    if (cf->args->nelts == 3) {
        if (value[2].len <= 6
            || ngx_strncmp(value[2].data, "burst=", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" takes RATE [burst=N], not \"%V\"",
                               &cmd->name, &value[2]);
            return NGX_CONF_ERROR;
        }

        burst = ngx_atoi(value[2].data + 6, value[2].len - 6);
        if (burst < 1 || burst > 100000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" burst must be from 1 to 100000, "
                               "not \"%V\"", &cmd->name, &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    dmcf->lookup_rate = rate;
    dmcf->lookup_burst = burst;

    return NGX_CONF_OK;
}


/*
 * dwrtc_session_hold MESSAGES SIZE: what one session may make its worker
 * hold at once, in messages waiting for a lookup or a connect and messages
 * held for away key-owned ids, whatever their recipients.
 */

static char *
ngx_http_dwrtc_session_hold(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    ngx_str_t  *value;
    ngx_int_t   n;
    ssize_t     size;

    if (dmcf->session_hold_messages != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1 || n > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" messages must be from 1 to 100000, "
                           "not \"%V\"", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    size = ngx_parse_size(&value[2]);
    if (size == NGX_ERROR || size < 1024 || size > 1024 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" size must be from 1k to 1g, "
                           "not \"%V\"", &cmd->name, &value[2]);
        return NGX_CONF_ERROR;
    }

    dmcf->session_hold_messages = n;
    dmcf->session_hold_size = (size_t) size;

    return NGX_CONF_OK;
}


/*
 * dwrtc_network_key FILE: read here, in the master (as root), like
 * ssl_certificate_key. The key is the file's bytes less trailing white
 * space; it is never logged, and is wiped when the configuration goes.
 */

static char *
ngx_http_dwrtc_network_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    u_char              *buf;
    size_t               len;
    ssize_t              n;
    ngx_str_t           *value, name;
    ngx_file_t           file;
    ngx_file_info_t      fi;
    ngx_pool_cleanup_t  *cln;

    if (dmcf->network_key.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "dwrtc_network_key: " ngx_open_file_n
                           " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    buf = NULL;
    len = 0;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "dwrtc_network_key: " ngx_fd_info_n
                           " \"%s\" failed", name.data);
        goto failed;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "dwrtc_network_key: \"%s\" is not a file",
                           name.data);
        goto failed;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_DWRTC_NETWORK_KEY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "dwrtc_network_key: \"%s\" is larger than %d "
                           "bytes, not a key file",
                           name.data, NGX_HTTP_DWRTC_NETWORK_KEY_MAX);
        goto failed;
    }

    len = (size_t) ngx_file_size(&fi);

    if (ngx_file_access(&fi) & 0044) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "dwrtc_network_key: \"%s\" is readable by other "
                           "users than its owner", name.data);
    }

    buf = ngx_pnalloc(cf->pool, len ? len : 1);
    if (buf == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, buf, len, 0);

    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "dwrtc_network_key: " ngx_read_file_n
                           " \"%s\" failed", name.data);
        goto failed;
    }

    if ((size_t) n != len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "dwrtc_network_key: " ngx_read_file_n
                           " \"%s\" returned only %z bytes instead of %uz",
                           name.data, n, len);
        goto failed;
    }

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    file.fd = NGX_INVALID_FILE;

    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'
                     || buf[n - 1] == CR || buf[n - 1] == LF))
    {
        n--;
    }

    if (n < NGX_HTTP_DWRTC_NETWORK_KEY_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "dwrtc_network_key: the key in \"%s\" is %z "
                           "bytes long, it must be at least %d "
                           "(make one with "
                           "\"openssl rand -hex 32 > FILE\")",
                           name.data, n, NGX_HTTP_DWRTC_NETWORK_KEY_MIN);
        goto failed;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        goto failed;
    }

    dmcf->network_key.data = buf;
    dmcf->network_key.len = n;

    cln->handler = ngx_http_dwrtc_network_key_cleanup;
    cln->data = &dmcf->network_key;

    /* the rest of the file, white space after the key, need not stay */

    ngx_explicit_memzero(buf + n, len - n);

    return NGX_CONF_OK;

failed:

    if (buf) {
        ngx_explicit_memzero(buf, len);
    }

    if (file.fd != NGX_INVALID_FILE
        && ngx_close_file(file.fd) == NGX_FILE_ERROR)
    {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return NGX_CONF_ERROR;
}


static void
ngx_http_dwrtc_network_key_cleanup(void *data)
{
    ngx_str_t  *key = data;

    ngx_explicit_memzero(key->data, key->len);
}


static char *
ngx_http_dwrtc_signal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_loc_conf_t *dlcf = conf;

    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_dwrtc_main_conf_t  *dmcf;

    if (dlcf->peerjs == 1) {
        return "cannot be combined with \"dwrtc_peerjs\" in one location";
    }

    if (dlcf->signal != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    dlcf->signal = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_dwrtc_handler;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dwrtc_module);
    dmcf->enabled = 1;

    return NGX_CONF_OK;
}


/*
 * A location that speaks the PeerJS server's protocol (docs/peerjs.md):
 * its sessions are sessions of the node like dwrtc_signal's, so the same
 * limits apply and the node starts for it.
 */

static char *
ngx_http_dwrtc_peerjs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_loc_conf_t *dlcf = conf;

    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_dwrtc_main_conf_t  *dmcf;

    if (dlcf->peerjs == 1) {
        return "is duplicate";
    }

    if (dlcf->signal == 1) {
        return "cannot be combined with \"dwrtc_signal\" in one location";
    }

    dlcf->signal = 1;
    dlcf->peerjs = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_dwrtc_peerjs_handler;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dwrtc_module);
    dmcf->enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_dwrtc_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_loc_conf_t *dlcf = conf;

    u_char     *p;
    size_t      len;
    ngx_int_t   rate, scale, burst;
    ngx_str_t  *value;

    if (dlcf->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {

        if (cf->args->nelts != 2) {
            return "takes no burst when \"off\"";
        }

        dlcf->rate = 0;
        dlcf->burst = 0;
        return NGX_CONF_OK;
    }

    /* "50", "50r/s" or "600r/m", as limit_req takes it */

    len = value[1].len;
    p = value[1].data + (len > 3 ? len - 3 : 0);
    scale = 1;

    if (len > 3 && ngx_strncmp(p, "r/s", 3) == 0) {
        len -= 3;

    } else if (len > 3 && ngx_strncmp(p, "r/m", 3) == 0) {
        len -= 3;
        scale = 60;
    }

    rate = ngx_atoi(value[1].data, len);
    if (rate <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\", expected messages per "
                           "second (\"50\", \"50r/s\", \"600r/m\") or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    burst = 0;

    if (cf->args->nelts == 3) {

        if (ngx_strncmp(value[2].data, "burst=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected burst=N",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        burst = ngx_atoi(value[2].data + 6, value[2].len - 6);
        if (burst <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid burst \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    dlcf->rate = rate * 1000 / scale;
    if (dlcf->rate == 0) {
        dlcf->rate = 1;
    }

    /* without burst=, a bucket holds one second's worth (at least one) */

    dlcf->burst = burst ? (ngx_uint_t) burst
                        : ngx_max((ngx_uint_t) rate / scale, 1);

    return NGX_CONF_OK;
}


static char *
ngx_http_dwrtc_ping_interval(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dwrtc_loc_conf_t *dlcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {

        if (dlcf->ping_interval != NGX_CONF_UNSET_MSEC) {
            return "is duplicate";
        }

        dlcf->ping_interval = 0;
        return NGX_CONF_OK;
    }

    return ngx_conf_set_msec_slot(cf, cmd, conf);
}


static char *
ngx_http_dwrtc_allowed_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dwrtc_loc_conf_t *dlcf = conf;

    ngx_str_t   *value, *origin;
    ngx_uint_t   i;

    if (dlcf->allowed_origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && value[1].len == 1 && value[1].data[0] == '*')
    {
        dlcf->allowed_origins = NULL;
        return NGX_CONF_OK;
    }

    dlcf->allowed_origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                             sizeof(ngx_str_t));
    if (dlcf->allowed_origins == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 1 && value[i].data[0] == '*') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"*\" must be the only origin of \"%V\"",
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_dwrtc_normalize_origin(cf, &value[i], &cmd->name)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        origin = ngx_array_push(dlcf->allowed_origins);
        if (origin == NULL) {
            return NGX_CONF_ERROR;
        }

        *origin = value[i];
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_dwrtc_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_dwrtc_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_dwrtc_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dmcf->bootstrap = NULL;
     *     dmcf->public_address = { 0, NULL };
     *     dmcf->bind_address = { 0, NULL };
     *     dmcf->dht_rate_per_ip = 0;
     *     dmcf->dht_rate_total = 0;
     *     dmcf->dht_rate_set = 0;
     *     dmcf->network_key = { 0, NULL };
     *     dmcf->max_message_size = 0;
     *     dmcf->enabled = 0;
     */

    dmcf->dht_port.from = NGX_CONF_UNSET_UINT;
    dmcf->link_port.from = NGX_CONF_UNSET_UINT;
    dmcf->link_handshake_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->link_retry_delay = NGX_CONF_UNSET_MSEC;
    dmcf->lookup_wait = NGX_CONF_UNSET_MSEC;
    dmcf->peerjs_id_reserve = NGX_CONF_UNSET_MSEC;
    dmcf->peerjs_id_wait = NGX_CONF_UNSET_MSEC;
    dmcf->peerjs_id_reservations = NGX_CONF_UNSET;
    dmcf->link_ack_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->publish_wait = NGX_CONF_UNSET_MSEC;
    dmcf->queue_limit = NGX_CONF_UNSET;
    dmcf->hold_messages = NGX_CONF_UNSET;
    dmcf->session_hold_messages = NGX_CONF_UNSET;
    dmcf->session_hold_size = NGX_CONF_UNSET_SIZE;
    dmcf->worker_hold_size = NGX_CONF_UNSET_SIZE;
    dmcf->dht_max_searches = NGX_CONF_UNSET;
    dmcf->lookup_rate = NGX_CONF_UNSET;
    dmcf->lookup_burst = NGX_CONF_UNSET;
    dmcf->room_members = NGX_CONF_UNSET;
    dmcf->rooms_per_session = NGX_CONF_UNSET;
    dmcf->room_remote_members = NGX_CONF_UNSET;
    dmcf->room_members_per_node = NGX_CONF_UNSET;
    dmcf->room_node_checks = NGX_CONF_UNSET;
    dmcf->claim_clock_skew = NGX_CONF_UNSET_MSEC;
    dmcf->link_owned_senders = NGX_CONF_UNSET;
    dmcf->claims_per_minute = NGX_CONF_UNSET;
    dmcf->lookup_claim_checks = NGX_CONF_UNSET;
    dmcf->claim_refusals = NGX_CONF_UNSET;
    dmcf->link_claim_checks = NGX_CONF_UNSET;
    dmcf->hold_time = NGX_CONF_UNSET_MSEC;
    dmcf->link_idle_timeout = NGX_CONF_UNSET;
    dmcf->link_max_unproven = NGX_CONF_UNSET;
    dmcf->link_transport = NGX_CONF_UNSET_UINT;

    return dmcf;
}


static char *
ngx_http_dwrtc_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_dwrtc_main_conf_t *dmcf = conf;

    u_char  *p;

    if (dmcf->dht_port.from == NGX_CONF_UNSET_UINT) {
        dmcf->dht_port.from = DWRTC_DEFAULT_DHT_PORT_FROM;
        dmcf->dht_port.to = DWRTC_DEFAULT_DHT_PORT_TO;
    }

    if (dmcf->link_port.from == NGX_CONF_UNSET_UINT) {
        dmcf->link_port.from = DWRTC_DEFAULT_LINK_PORT_FROM;
        dmcf->link_port.to = DWRTC_DEFAULT_LINK_PORT_TO;
    }

    if (dmcf->public_address.data == NULL) {
        ngx_str_set(&dmcf->public_address, DWRTC_DEFAULT_PUBLIC_ADDRESS);
    }

    if (dmcf->bind_address.data == NULL) {
        ngx_str_set(&dmcf->bind_address, DWRTC_DEFAULT_BIND_ADDRESS);

    } else {
        /* NUL-terminated for the comparisons in init_process */

        p = ngx_pnalloc(cf->pool, dmcf->bind_address.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, dmcf->bind_address.data, dmcf->bind_address.len);
        p[dmcf->bind_address.len] = '\0';
        dmcf->bind_address.data = p;
    }

    if (dmcf->max_message_size == 0) {
        dmcf->max_message_size = DWRTC_DEFAULT_MAX_MESSAGE_SIZE;
    }

    if (ngx_http_dwrtc_check_addresses(cf, dmcf) != NGX_OK
        || ngx_http_dwrtc_check_port_ranges(cf, dmcf) != NGX_OK
        || ngx_http_dwrtc_status_add_zone(cf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->link_handshake_timeout,
                             DWRTC_DEFAULT_LINK_HANDSHAKE_MS);

    if (dmcf->link_handshake_timeout == 0
        || dmcf->link_handshake_timeout > 24 * 86400000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_link_handshake_timeout\" must be "
                           "more than 0 and at most 24d");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->link_retry_delay,
                             DWRTC_DEFAULT_LINK_RETRY_MS);

    if (dmcf->link_retry_delay == 0 || dmcf->link_retry_delay > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_link_retry_delay\" must be "
                           "more than 0 and at most 1h");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->lookup_wait, DWRTC_DEFAULT_LOOKUP_WAIT_MS);

    if (dmcf->lookup_wait == 0 || dmcf->lookup_wait > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_lookup_wait\" must be more than 0 and "
                           "at most 60s: messages wait that long for a node "
                           "to be found");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->peerjs_id_reserve,
                             DWRTC_DEFAULT_PEERJS_ID_RESERVE_MS);

    if (dmcf->peerjs_id_reserve > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_id_reserve\" must be at most 1h: "
                           "a chosen id is kept from everyone else that long "
                           "after its session closed");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->peerjs_id_wait,
                             DWRTC_DEFAULT_PEERJS_ID_WAIT_MS);

    if (dmcf->peerjs_id_wait == 0 || dmcf->peerjs_id_wait > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_id_wait\" must be more than 0 and "
                           "at most 60s: a client with a chosen id waits "
                           "that long for its answer");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->peerjs_id_reservations,
                        DWRTC_DEFAULT_PEERJS_ID_RESERVATIONS);

    if (dmcf->peerjs_id_reservations < 0
        || dmcf->peerjs_id_reservations > 1000000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_id_reservations\" must be from 0 "
                           "to 1000000: each is a record the worker keeps "
                           "in the DHT until its reservation ends");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->link_ack_timeout,
                             DWRTC_DEFAULT_LINK_ACK_TIMEOUT_MS);

    if (dmcf->link_ack_timeout < 100 || dmcf->link_ack_timeout > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_link_ack_timeout\" must be "
                           "at least 100ms and at most 1h");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->publish_wait, 3000);

    ngx_conf_init_value(dmcf->hold_messages, DWRTC_DEFAULT_HOLD_MESSAGES);

    ngx_conf_init_value(dmcf->room_members, DWRTC_DEFAULT_ROOM_MEMBERS);

    if (dmcf->room_members < 1 || dmcf->room_members > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_room_members\" must be from 1 to 100000");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->rooms_per_session,
                        DWRTC_DEFAULT_ROOMS_PER_SESSION);

    if (dmcf->rooms_per_session < 1 || dmcf->rooms_per_session > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_rooms_per_session\" must be from 1 to 1000");
        return NGX_CONF_ERROR;
    }

    /*
     * What other nodes can make this worker follow of a room: these bound
     * the memory and the DHT lookups a stranger's member values cost.
     */

    ngx_conf_init_value(dmcf->room_remote_members,
                        DWRTC_DEFAULT_ROOM_REMOTE_MEMBERS);

    if (dmcf->room_remote_members < 1
        || dmcf->room_remote_members > 100000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_room_remote_members\" must be "
                           "from 1 to 100000");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->room_members_per_node,
                        DWRTC_DEFAULT_ROOM_MEMBERS_PER_NODE);

    if (dmcf->room_members_per_node < 1
        || dmcf->room_members_per_node > dmcf->room_remote_members)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_room_members_per_node\" must be from 1 "
                           "to \"dwrtc_room_remote_members\" (%i)",
                           dmcf->room_remote_members);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->room_node_checks,
                        DWRTC_DEFAULT_ROOM_NODE_CHECKS);

    if (dmcf->room_node_checks < 16 || dmcf->room_node_checks > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_room_node_checks\" must be "
                           "from 16 to 1000000");
        return NGX_CONF_ERROR;
    }

    /*
     * A claim dated up to this far ahead is believed: NTP-synced servers
     * need a second at most, and every second more is how long a claim
     * harvested with a time ahead may outrank its owner's (docs/security.md).
     */
    ngx_conf_init_msec_value(dmcf->claim_clock_skew,
                             DWRTC_DEFAULT_CLAIM_CLOCK_SKEW_MS);

    if (dmcf->claim_clock_skew < 1000 || dmcf->claim_clock_skew > 300000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_claim_clock_skew\" must be "
                           "from 1s to 5m");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->link_owned_senders,
                        DWRTC_DEFAULT_LINK_OWNED_SENDERS);
    ngx_conf_init_value(dmcf->link_claim_checks,
                        DWRTC_DEFAULT_LINK_CLAIM_CHECKS);
    ngx_conf_init_value(dmcf->claims_per_minute,
                        DWRTC_DEFAULT_CLAIMS_PER_MINUTE);
    ngx_conf_init_value(dmcf->claim_refusals, DWRTC_DEFAULT_CLAIM_REFUSALS);
    ngx_conf_init_value(dmcf->lookup_claim_checks,
                        DWRTC_DEFAULT_LOOKUP_CLAIM_CHECKS);

    if (dmcf->lookup_claim_checks < 1
        || dmcf->lookup_claim_checks > 100000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_lookup_claim_checks\" must be "
                           "from 1 to 100000");
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_msec_value(dmcf->hold_time, DWRTC_DEFAULT_HOLD_MS);

    ngx_conf_init_value(dmcf->session_hold_messages,
                        DWRTC_DEFAULT_SESSION_HOLD_MESSAGES);
    ngx_conf_init_size_value(dmcf->session_hold_size,
                             DWRTC_DEFAULT_SESSION_HOLD_BYTES);
    ngx_conf_init_size_value(dmcf->worker_hold_size,
                             DWRTC_DEFAULT_NODE_HOLD_BYTES);

    if (dmcf->worker_hold_size < dmcf->session_hold_size
        || dmcf->worker_hold_size > (size_t) 64 * 1024 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_worker_hold\" must be from the size of "
                           "\"dwrtc_session_hold\" (%uz) to 64g, not %uz",
                           dmcf->session_hold_size, dmcf->worker_hold_size);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->lookup_rate, DWRTC_DEFAULT_LOOKUP_RATE);
    ngx_conf_init_value(dmcf->lookup_burst, DWRTC_DEFAULT_LOOKUP_BURST);

    ngx_conf_init_value(dmcf->dht_max_searches,
                        DWRTC_DEFAULT_DHT_MAX_SEARCHES);

    if (dmcf->dht_max_searches < 64 || dmcf->dht_max_searches > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_dht_max_searches\" must be "
                           "from 64 to 1000000");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->queue_limit, DWRTC_DEFAULT_QUEUE_LIMIT);

    if (dmcf->queue_limit < 1 || dmcf->queue_limit > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_queue_limit\" must be "
                           "from 1 to 1000000");
        return NGX_CONF_ERROR;
    }

    if (dmcf->publish_wait > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_publish_wait\" must be at most 1m");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->link_idle_timeout,
                        DWRTC_DEFAULT_LINK_IDLE_SECONDS);

    if (dmcf->link_idle_timeout <= 0 || dmcf->link_idle_timeout > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_link_idle_timeout\" must be at least "
                           "1s and at most 1d");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(dmcf->link_max_unproven,
                        DWRTC_DEFAULT_LINK_MAX_UNPROVEN);

    if (dmcf->link_max_unproven <= 0 || dmcf->link_max_unproven > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_link_max_unproven\" must be at least 1 "
                           "and at most 65536");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_uint_value(dmcf->link_transport,
                             NGX_HTTP_DWRTC_LINK_TRANSPORT_LWS);

#if !(NGX_SSL)
    if (dmcf->link_transport == NGX_HTTP_DWRTC_LINK_TRANSPORT_NGINX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_link_transport nginx\" needs the module "
                           "built against an nginx configured with OpenSSL "
                           "(--with-http_ssl_module)");
        return NGX_CONF_ERROR;
    }
#endif

    return NGX_CONF_OK;
}


static void *
ngx_http_dwrtc_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_dwrtc_loc_conf_t  *dlcf;

    dlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_dwrtc_loc_conf_t));
    if (dlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dlcf->session_user = NULL;
     */

    dlcf->signal = NGX_CONF_UNSET;
    dlcf->peerjs = NGX_CONF_UNSET;
    dlcf->peerjs_expire_timeout = NGX_CONF_UNSET_MSEC;
    dlcf->peerjs_alive_timeout = NGX_CONF_UNSET_MSEC;
    dlcf->peerjs_discovery = NGX_CONF_UNSET;
    dlcf->max_message_size = NGX_CONF_UNSET_SIZE;
    dlcf->rate = NGX_CONF_UNSET_UINT;
    dlcf->burst = NGX_CONF_UNSET_UINT;
    dlcf->max_sessions = NGX_CONF_UNSET_UINT;
    dlcf->ping_interval = NGX_CONF_UNSET_MSEC;
    dlcf->allowed_origins = NGX_CONF_UNSET_PTR;
    dlcf->ice = NGX_CONF_UNSET_PTR;

    return dlcf;
}


static char *
ngx_http_dwrtc_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_dwrtc_loc_conf_t *prev = parent;
    ngx_http_dwrtc_loc_conf_t *conf = child;

    ngx_uint_t                   connections;
    ngx_event_conf_t            *ecf;
    ngx_http_dwrtc_main_conf_t  *dmcf;

    /* dwrtc_signal is not inherited: nested locations serve what they say */

    if (conf->signal == NGX_CONF_UNSET) {
        conf->signal = 0;
    }

    if (conf->peerjs == NGX_CONF_UNSET) {
        conf->peerjs = 0;
    }

    if (ngx_http_dwrtc_merge_peerjs(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_size_value(conf->max_message_size,
                              prev->max_message_size,
                              DWRTC_DEFAULT_MAX_MESSAGE_SIZE);

    if (conf->max_message_size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_max_message_size\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (conf->rate == NGX_CONF_UNSET_UINT) {
        if (prev->rate == NGX_CONF_UNSET_UINT) {
            prev->rate = 50 * 1000;
            prev->burst = 200;
        }

        conf->rate = prev->rate;
        conf->burst = prev->burst;
    }

    /*
     * Every session holds a connection of its worker. Unless set, the
     * limit is 10000, or 7/8 of worker_connections where that is lower
     * (Debian's 768 gives 672), so that a worker refuses sessions with 503
     * before it runs out of connections for its other requests.
     */

    connections = 0;

    if (cf->cycle->conf_ctx[ngx_events_module.index] != NULL) {
        ecf = ngx_event_get_conf(cf->cycle->conf_ctx, ngx_event_core_module);

        if (ecf && ecf->connections != NGX_CONF_UNSET_UINT) {
            connections = ecf->connections;
        }
    }

    ngx_conf_merge_uint_value(conf->max_sessions, prev->max_sessions,
                              connections
                              ? ngx_min(10000, connections - connections / 8)
                              : 10000);

    /* only a value written can be too high */

    if (conf->signal && connections && conf->max_sessions >= connections) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"dwrtc_max_sessions %ui\" is not below "
                           "\"worker_connections %ui\": a worker runs out "
                           "of connections before it refuses sessions with "
                           "503; raise worker_connections, or leave "
                           "dwrtc_max_sessions unset (7/8 of it)",
                           conf->max_sessions, connections);
    }

    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              30000);
    ngx_conf_merge_ptr_value(conf->allowed_origins, prev->allowed_origins,
                             NULL);

    ngx_conf_merge_ptr_value(conf->ice, prev->ice, NULL);

    if (conf->session_user == NULL) {
        conf->session_user = prev->session_user;
    }

    if (conf->signal) {
        dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dwrtc_module);

        if (conf->max_message_size > dmcf->max_message_size) {
            dmcf->max_message_size = conf->max_message_size;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The PeerJS settings: the key is part of the client's URLs (path and
 * query), so it is refused unless it is a plain word; timeouts of 0 would
 * expire every message at once or close every session.
 */

static char *
ngx_http_dwrtc_merge_peerjs(ngx_conf_t *cf, ngx_http_dwrtc_loc_conf_t *prev,
    ngx_http_dwrtc_loc_conf_t *conf)
{
    u_char     c;
    ngx_uint_t  i;

    ngx_conf_merge_str_value(conf->peerjs_key, prev->peerjs_key, "peerjs");

    if (conf->peerjs_key.len == 0 || conf->peerjs_key.len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_key\" must be 1 to 64 "
                           "characters");
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < conf->peerjs_key.len; i++) {
        c = conf->peerjs_key.data[i];

        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
            || (c >= 'A' && c <= 'Z') || c == '-' || c == '_')
        {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_key\" \"%V\" must be letters, "
                           "digits, \"-\" and \"_\" only (it is part of "
                           "the client's URLs)", &conf->peerjs_key);
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_msec_value(conf->peerjs_expire_timeout,
                              prev->peerjs_expire_timeout, 5000);
    ngx_conf_merge_msec_value(conf->peerjs_alive_timeout,
                              prev->peerjs_alive_timeout, 60000);
    ngx_conf_merge_value(conf->peerjs_discovery, prev->peerjs_discovery, 0);

    if (conf->peerjs_expire_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_expire_timeout\" must be more "
                           "than 0");
        return NGX_CONF_ERROR;
    }

    if (conf->peerjs_alive_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dwrtc_peerjs_alive_timeout\" must be more "
                           "than 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Addresses that cannot work are refused at "nginx -t"; names that do not
 * resolve here are only warned about (the resolver may come up later, and
 * the public name is for other nodes), but said loudly, because a node that
 * cannot be reached looks fine from inside.
 */

static ngx_int_t
ngx_http_dwrtc_check_addresses(ngx_conf_t *cf,
    ngx_http_dwrtc_main_conf_t *dmcf)
{
    u_char                       *p, *last, *dash;
    ngx_str_t                    *b, *pub;
    ngx_url_t                     u;
    ngx_uint_t                    i, colons;
    ngx_addr_t                    addr;
    ngx_http_dwrtc_conf_where_t  *where;

    if (ngx_parse_addr(cf->pool, &addr, dmcf->bind_address.data,
                       ngx_strlen(dmcf->bind_address.data))
        != NGX_OK)
    {
        ngx_http_dwrtc_conf_error_at(NGX_LOG_EMERG, cf,
                                     &dmcf->bind_address_where, 0,
                                     "\"dwrtc_bind_address\" must be an IP "
                                     "address of this host, or 0.0.0.0 or "
                                     "::, not \"%V\"", &dmcf->bind_address);
        return NGX_ERROR;
    }

    if (ngx_http_dwrtc_check_bind_address(cf, dmcf, &addr) != NGX_OK) {
        return NGX_ERROR;
    }

    pub = &dmcf->public_address;
    last = pub->data + pub->len;
    colons = 0;

    for (p = pub->data; p < last; p++) {

        if (*p == '/' || *p == '[' || *p == ']' || *p == '@' || *p <= ' ') {
            ngx_http_dwrtc_conf_error_at(NGX_LOG_EMERG, cf,
                                     &dmcf->public_address_where, 0,
                                     "\"dwrtc_public_address\" takes the host "
                                     "name or IP address other nodes reach "
                                     "this server at, without scheme, port, "
                                     "path or brackets, not \"%V\"", pub);
            return NGX_ERROR;
        }

        if (*p == ':') {
            colons++;
        }
    }

    if (pub->len == 0 || colons == 1) {
        ngx_http_dwrtc_conf_error_at(NGX_LOG_EMERG, cf,
                                     &dmcf->public_address_where, 0,
                                     "\"dwrtc_public_address\" takes a host "
                                     "name or IP address without a port (the "
                                     "port is dwrtc_link_port's), not \"%V\"",
                                     pub);
        return NGX_ERROR;
    }

    if (colons == 0
        && ngx_parse_addr(cf->pool, &addr, pub->data, pub->len) != NGX_OK)
    {
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = *pub;
        u.default_port = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_http_dwrtc_conf_error_at(NGX_LOG_WARN, cf,
                                     &dmcf->public_address_where, 0,
                                     "\"dwrtc_public_address\" \"%V\" does "
                                     "not resolve here (%s): other nodes must "
                                     "be able to resolve it to reach this node",
                                     pub, u.err ? u.err : "error");
        }
    }

    if (dmcf->bootstrap == NULL) {
        return NGX_OK;
    }

    b = dmcf->bootstrap->elts;
    where = dmcf->bootstrap_where->elts;

    for (i = 0; i < dmcf->bootstrap->nelts; i++) {
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = b[i];

        /* a range's first port stands for it: the host is what is checked */

        dash = ngx_strlchr(b[i].data, b[i].data + b[i].len, ']');
        dash = ngx_strlchr(dash ? dash : b[i].data, b[i].data + b[i].len, ':');
        dash = dash ? ngx_strlchr(dash, b[i].data + b[i].len, '-') : NULL;

        if (dash) {
            u.url.len = dash - b[i].data;
        }

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_http_dwrtc_conf_error_at(NGX_LOG_WARN, cf, &where[i], 0,
                                     "\"dwrtc_bootstrap\" \"%V\": %s; the "
                                     "node keeps trying it and joins through "
                                     "it once it resolves",
                                     &b[i], u.err ? u.err : "error");
        }
    }

    return NGX_OK;
}


/*
 * An origin as browsers send it in the Origin header: SCHEME://HOST or
 * SCHEME://HOST:PORT, lowercase, with no path, and without the scheme's
 * default port (a browser never sends ":443" for https). The handshake
 * compares exact strings, so what a browser would never send is refused
 * here with what to write instead, rather than answered 403 at run time.
 */

static ngx_int_t
ngx_http_dwrtc_normalize_origin(ngx_conf_t *cf, ngx_str_t *origin,
    ngx_str_t *name)
{
    u_char     *p, *last, *host, *colon;
    size_t      scheme_len;
    ngx_int_t   port;

    p = origin->data;
    last = origin->data + origin->len;

    /* "https://example.com/" and "https://example.com" are one origin */

    if (last - p > 1 && last[-1] == '/') {
        last--;
    }

    if (last - p == 4 && ngx_strncasecmp(p, (u_char *) "null", 4) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" takes no \"null\": browsers send it for "
                           "sandboxed frames, files and redirects, so any "
                           "page on any site can make it; list the real "
                           "origins, or \"*\" for any", name);
        return NGX_ERROR;
    }

    if (ngx_strlchr(p, last, '*') != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" in \"%V\": origins are matched exactly, "
                           "there are no wildcards; list every origin, "
                           "such as \"https://a.example.com "
                           "https://b.example.com\", or \"*\" alone for any",
                           origin, name);
        return NGX_ERROR;
    }

    for ( /* void */ ; p < last && *p != ':'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (p > origin->data
                  && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-'
                      || *p == '.'))))
        {
            goto invalid;
        }
    }

    scheme_len = p - origin->data;

    if (scheme_len == 0 || last - p < 4 || p[1] != '/' || p[2] != '/') {
        goto invalid;
    }

    host = p + 3;
    colon = NULL;

    for (p = host; p < last; p++) {
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || *p <= ' ') {
            goto invalid;
        }

        if (*p == ']') {
            colon = NULL;

        } else if (*p == ':') {
            colon = p;
        }
    }

    if (colon == host || (colon == NULL && host == last)) {
        goto invalid;
    }

    if (colon) {
        port = ngx_atoi(colon + 1, last - colon - 1);

        if (port < 1 || port > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" in \"%V\": the port must be a number "
                               "from 1 to 65535", origin, name);
            return NGX_ERROR;
        }

        /* the scheme's default port is never sent: drop it */

        if ((scheme_len == 5
             && ngx_strncasecmp(origin->data, (u_char *) "https", 5) == 0
             && port == 443)
            || (scheme_len == 4
                && ngx_strncasecmp(origin->data, (u_char *) "http", 4) == 0
                && port == 80))
        {
            last = colon;
        }
    }

    origin->len = last - origin->data;
    ngx_strlow(origin->data, origin->data, origin->len);

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" is not an origin: \"%V\" takes origins as "
                       "browsers send them, SCHEME://HOST[:PORT] with no "
                       "path, such as \"https://example.com\"",
                       origin, name);
    return NGX_ERROR;
}


/* Notes where a dwrtc_public_address or dwrtc_bind_address is written. */

static char *
ngx_http_dwrtc_note_where(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t                   *field = data;
    ngx_http_dwrtc_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dwrtc_module);

    ngx_http_dwrtc_where_here(cf, field == &dmcf->public_address
                                  ? &dmcf->public_address_where
                                  : &dmcf->bind_address_where);

    return NGX_CONF_OK;
}


static void
ngx_http_dwrtc_where_here(ngx_conf_t *cf, ngx_http_dwrtc_conf_where_t *where)
{
    where->file = cf->conf_file->file.name;
    where->line = cf->conf_file->line;
}


/*
 * Like ngx_conf_log_error(), for checks made after the http block: the
 * message names the file and line of the directive it is about, or, for a
 * directive not written (a default), where the http block ends.
 */

static void ngx_cdecl
ngx_http_dwrtc_conf_error_at(ngx_uint_t level, ngx_conf_t *cf,
    ngx_http_dwrtc_conf_where_t *where, ngx_err_t err, const char *fmt, ...)
{
    u_char   *p, *last, errstr[NGX_MAX_CONF_ERRSTR];
    va_list   args;

    last = errstr + NGX_MAX_CONF_ERRSTR;

    va_start(args, fmt);
    p = ngx_vslprintf(errstr, last, fmt, args);
    va_end(args);

    if (err) {
        p = ngx_log_errno(p, last, err);
    }

    if (where == NULL || where->line == 0) {
        ngx_conf_log_error(level, cf, 0, "%*s", p - errstr, errstr);
        return;
    }

    ngx_log_error(level, cf->log, 0, "%*s in %V:%ui", p - errstr, errstr,
                  &where->file, where->line);
}


/*
 * A bind address that is not one of this host's would pass "nginx -t" and
 * then leave every worker retrying its ports: try it here, as nginx tries
 * its listen addresses when it starts.
 */

static ngx_int_t
ngx_http_dwrtc_check_bind_address(ngx_conf_t *cf,
    ngx_http_dwrtc_main_conf_t *dmcf, ngx_addr_t *addr)
{
    ngx_err_t        err;
    ngx_socket_t     s;
    struct sockaddr  *sa;
    ngx_sockaddr_t   probe;

    sa = addr->sockaddr;

    if (addr->socklen > sizeof(probe)) {
        return NGX_OK;
    }

    ngx_memcpy(&probe, sa, addr->socklen);
    ngx_inet_set_port(&probe.sockaddr, 0);

    s = ngx_socket(sa->sa_family, SOCK_DGRAM, 0);
    if (s == (ngx_socket_t) -1) {
        return NGX_OK;   /* no socket to try with: the workers will say */
    }

    err = 0;

    if (bind(s, &probe.sockaddr, addr->socklen) == -1) {
        err = ngx_socket_errno;
    }

    ngx_close_socket(s);

    if (err == EADDRNOTAVAIL) {
        ngx_http_dwrtc_conf_error_at(NGX_LOG_EMERG, cf,
                                     &dmcf->bind_address_where, err,
                                     "\"dwrtc_bind_address %V\" is not an "
                                     "address of this host: write one of its "
                                     "addresses (ip -brief address), or "
                                     "0.0.0.0 or :: for all of them",
                                     &dmcf->bind_address);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Every worker's node takes a port of each range, and during a reload the
 * old workers keep theirs until they exit, so a range needs a port per
 * worker and should have two. worker_processes is read as it stands at the
 * end of the http block (it comes before it in every usual layout; unset,
 * it is 1).
 */

static ngx_int_t
ngx_http_dwrtc_check_port_ranges(ngx_conf_t *cf,
    ngx_http_dwrtc_main_conf_t *dmcf)
{
    ngx_int_t                     n;
    ngx_uint_t                    i, have, workers;
    ngx_core_conf_t              *ccf;
    ngx_http_dwrtc_port_range_t  *range;
    static const char            *names[] = { "dwrtc_dht_port",
                                              "dwrtc_link_port" };

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);
    n = ccf ? ccf->worker_processes : NGX_CONF_UNSET;
    workers = (n == NGX_CONF_UNSET || n < 1) ? 1 : (ngx_uint_t) n;

    for (i = 0; i < 2; i++) {
        range = (i == 0) ? &dmcf->dht_port : &dmcf->link_port;

        if (range->from == 0) {
            continue;   /* any port the system picks */
        }

        have = range->to - range->from + 1;

        if (have < workers) {
            ngx_http_dwrtc_conf_error_at(NGX_LOG_EMERG, cf, &range->where, 0,
                               "\"%s %ui-%ui\" has %ui port%s for %ui "
                               "workers: every worker's node needs one, and "
                               "a reload one more; give it %ui ports, such "
                               "as \"%s %ui-%ui\"", names[i], range->from,
                               range->to, have, have == 1 ? "" : "s",
                               workers, 2 * workers, names[i], range->from,
                               ngx_min(range->from + 2 * workers - 1, 65535));
            return NGX_ERROR;
        }

        if (have < 2 * workers) {
            ngx_http_dwrtc_conf_error_at(NGX_LOG_WARN, cf, &range->where, 0,
                               "\"%s %ui-%ui\" has %ui port%s for %ui "
                               "workers: during a reload the old workers "
                               "keep their ports until they exit, and new "
                               "ones wait for them; give it %ui ports, such "
                               "as \"%s %ui-%ui\"",
                               names[i], range->from, range->to, have,
                               have == 1 ? "" : "s", workers, 2 * workers,
                               names[i], range->from,
                               ngx_min(range->from + 2 * workers - 1, 65535));
        }
    }

    return NGX_OK;
}
