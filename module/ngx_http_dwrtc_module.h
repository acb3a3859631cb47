
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * Shared declarations of the module's three parts:
 *   ngx_http_dwrtc_module.c     directives, the per-worker dhtcore node
 *   ngx_http_dwrtc_websocket.c  the WebSocket sessions at dwrtc_signal
 *   ngx_http_dwrtc_ice.c        dwrtc_ice_servers and TURN credentials
 *   ngx_http_dwrtc_frame.c      frame-header scanner, plain C (fuzzed)
 */


#ifndef _NGX_HTTP_DWRTC_MODULE_H_INCLUDED_
#define _NGX_HTTP_DWRTC_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dwrtc/dwrtc.h>
#include <wslay/wslay.h>


typedef struct {
    ngx_uint_t                      from;
    ngx_uint_t                      to;
} ngx_http_dwrtc_port_range_t;


typedef struct {
    ngx_http_dwrtc_port_range_t     dht_port;
    ngx_http_dwrtc_port_range_t     link_port;
    ngx_array_t                    *bootstrap;        /* of ngx_str_t */
    ngx_str_t                       public_address;
    ngx_str_t                       bind_address;
    ngx_int_t                       dht_rate_per_ip;  /* 0 OpenDHT's, -1 off */
    ngx_int_t                       dht_rate_total;
    ngx_flag_t                      dht_rate_set;
    ngx_str_t                       network_key;      /* never logged */
    ngx_msec_t                      link_handshake_timeout;
    time_t                          link_idle_timeout;

    /* largest dwrtc_max_message_size of any signal location */
    size_t                          max_message_size;
    /* some location has dwrtc_signal */
    ngx_flag_t                      enabled;
} ngx_http_dwrtc_main_conf_t;


typedef struct ngx_http_dwrtc_ice_conf_s  ngx_http_dwrtc_ice_conf_t;


typedef struct {
    ngx_flag_t                      signal;
    size_t                          max_message_size;
    ngx_uint_t                      rate;      /* messages per 1000 s, 0 off */
    ngx_uint_t                      burst;
    ngx_uint_t                      max_sessions;
    ngx_msec_t                      ping_interval;
    ngx_array_t                    *allowed_origins;  /* of ngx_str_t */
    ngx_http_dwrtc_ice_conf_t      *ice;
    ngx_http_complex_value_t       *session_user;
} ngx_http_dwrtc_loc_conf_t;


typedef struct ngx_http_dwrtc_session_s  ngx_http_dwrtc_session_t;


/* State of this worker's node; nothing here is shared between processes. */

typedef struct {
    dwrtc_node                     *node;
    ngx_connection_t               *notify;    /* wraps the core's eventfd */
    ngx_rbtree_t                    sessions;  /* ngx_str_node_t by id */
    ngx_rbtree_node_t               sentinel;
    ngx_uint_t                      nsessions;
    ngx_log_t                      *log;
    unsigned                        failed:1;  /* start failed: 503 */
} ngx_http_dwrtc_worker_t;


extern ngx_module_t             ngx_http_dwrtc_module;
extern ngx_http_dwrtc_worker_t  ngx_http_dwrtc_worker;


/* ngx_http_dwrtc_module.c */
ngx_http_dwrtc_session_t *ngx_http_dwrtc_session_lookup(u_char *id,
    size_t len);

/* ngx_http_dwrtc_websocket.c */
ngx_int_t ngx_http_dwrtc_handler(ngx_http_request_t *r);
void ngx_http_dwrtc_session_deliver(ngx_http_dwrtc_session_t *s,
    const char *data, size_t len);
void ngx_http_dwrtc_session_going_away(ngx_http_dwrtc_session_t *s);
u_char *ngx_http_dwrtc_session_id(ngx_http_request_t *r);
ngx_str_t *ngx_http_dwrtc_session_user(ngx_http_request_t *r);

/* ngx_http_dwrtc_ice.c */
char *ngx_http_dwrtc_ice_servers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
size_t ngx_http_dwrtc_ice_json_len(ngx_http_dwrtc_ice_conf_t *ice);
u_char *ngx_http_dwrtc_ice_json(ngx_http_dwrtc_ice_conf_t *ice, u_char *p,
    u_char *id, ngx_log_t *log);


#endif /* _NGX_HTTP_DWRTC_MODULE_H_INCLUDED_ */
