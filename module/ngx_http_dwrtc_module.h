
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * Shared declarations of the module's parts:
 *   ngx_http_dwrtc_module.c     directives, configuration, variables
 *   ngx_http_dwrtc_worker.c     the worker's dhtcore node and its sessions
 *   ngx_http_dwrtc_link.c       node-to-node links as the worker's own
 *                               connections (dwrtc_link_transport nginx)
 *   ngx_http_dwrtc_handshake.c  the WebSocket handshake at dwrtc_signal
 *   ngx_http_dwrtc_peerjs.c     the PeerJS server's HTTP side at dwrtc_peerjs
 *   ngx_http_dwrtc_session.c    an upgraded session: frames in and out
 *   ngx_http_dwrtc_ice.c        dwrtc_ice_servers and TURN credentials
 *   ngx_http_dwrtc_frame.c      frame-header scanner, plain C (fuzzed)
 *
 * No file reaches into another's structures: a session is opaque outside
 * ngx_http_dwrtc_session.c, the worker's state outside
 * ngx_http_dwrtc_worker.c.
 */


#ifndef _NGX_HTTP_DWRTC_MODULE_H_INCLUDED_
#define _NGX_HTTP_DWRTC_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dwrtc/dwrtc.h>


/*
 * Where a directive was written (line 0: not written, a default), so that
 * checks made when the http block ends name the directive's own file and
 * line, as nginx does for its own.
 */

typedef struct {
    ngx_str_t                       file;
    ngx_uint_t                      line;
} ngx_http_dwrtc_conf_where_t;


typedef struct {
    ngx_uint_t                      from;
    ngx_uint_t                      to;
    ngx_http_dwrtc_conf_where_t     where;
} ngx_http_dwrtc_port_range_t;


typedef struct {
    ngx_http_dwrtc_port_range_t     dht_port;
    ngx_http_dwrtc_port_range_t     link_port;
    ngx_array_t                    *bootstrap;        /* of ngx_str_t */
    ngx_array_t                    *bootstrap_where;  /* one per entry */
    ngx_str_t                       public_address;
    ngx_str_t                       bind_address;
    ngx_http_dwrtc_conf_where_t     public_address_where;
    ngx_http_dwrtc_conf_where_t     bind_address_where;
    ngx_int_t                       dht_rate_per_ip;  /* 0 OpenDHT's, -1 off */
    ngx_int_t                       dht_rate_total;
    ngx_flag_t                      dht_rate_set;
    ngx_str_t                       network_key;      /* never logged */
    ngx_msec_t                      link_handshake_timeout;
    ngx_msec_t                      link_retry_delay;
    ngx_msec_t                      lookup_wait;
    ngx_msec_t                      peerjs_id_reserve;
    ngx_msec_t                      peerjs_id_wait;
    ngx_int_t                       peerjs_id_reservations;
    ngx_msec_t                      link_ack_timeout;
    ngx_msec_t                      publish_wait;
    ngx_int_t                       queue_limit;
    ngx_int_t                       hold_messages;    /* 0: off */
    ngx_msec_t                      hold_time;
    ngx_int_t                       session_hold_messages;
    size_t                          session_hold_size;
    size_t                          worker_hold_size;
    ngx_int_t                       dht_max_searches;
    ngx_int_t                       lookup_rate;      /* 0: off */
    ngx_int_t                       lookup_burst;
    ngx_int_t                       room_members;
    ngx_int_t                       rooms_per_session;
    ngx_int_t                       room_remote_members;
    ngx_int_t                       room_members_per_node;
    ngx_int_t                       room_node_checks;
    ngx_msec_t                      claim_clock_skew;
    ngx_int_t                       link_owned_senders;
    ngx_int_t                       link_claim_checks;
    ngx_int_t                       claims_per_minute;
    ngx_int_t                       claim_refusals;
    ngx_int_t                       lookup_claim_checks;
    time_t                          link_idle_timeout;
    ngx_int_t                       link_max_unproven;
    ngx_uint_t                      link_transport;   /* _LINK_TRANSPORT_* */

    /* largest dwrtc_max_message_size of any signal location */
    size_t                          max_message_size;
    /* some location has dwrtc_signal */
    ngx_flag_t                      enabled;
} ngx_http_dwrtc_main_conf_t;


/* dwrtc_link_transport */
#define NGX_HTTP_DWRTC_LINK_TRANSPORT_LWS    0  /* the core's own thread */
#define NGX_HTTP_DWRTC_LINK_TRANSPORT_NGINX  1  /* the worker's event loop */


typedef struct ngx_http_dwrtc_ice_conf_s  ngx_http_dwrtc_ice_conf_t;


/*
 * What a PeerJS client is told when it asks for an id that is neither one
 * this node gave out nor one a client may choose (docs/peerjs.md): another
 * node's id, one of ours in other letters, or not a PeerJS id at all.
 */

#define NGX_HTTP_DWRTC_PEERJS_NOT_OURS                                        \
    "ID not given out by this server and not one a client may choose: "       \
    "choose another ID, or leave the ID out to get one"


typedef struct {
    ngx_flag_t                      signal;    /* sessions here, any dialect */
    ngx_flag_t                      peerjs;    /* in the PeerJS dialect */
    ngx_str_t                       peerjs_key;
    ngx_msec_t                      peerjs_expire_timeout;
    ngx_msec_t                      peerjs_alive_timeout;
    ngx_flag_t                      peerjs_discovery;  /* {key}/peers */
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


/* Where a worker's node stands, as the status page shows it. */
typedef enum {
    NGX_HTTP_DWRTC_NODE_NONE = 0,
    NGX_HTTP_DWRTC_NODE_STARTING,
    NGX_HTTP_DWRTC_NODE_WAITING,      /* for a free port */
    NGX_HTTP_DWRTC_NODE_RUNNING,
    NGX_HTTP_DWRTC_NODE_FAILED,
    NGX_HTTP_DWRTC_NODE_DISABLED      /* no dwrtc_signal location */
} ngx_http_dwrtc_node_state_e;


extern ngx_module_t  ngx_http_dwrtc_module;


/* ngx_http_dwrtc_worker.c */
ngx_int_t ngx_http_dwrtc_init_process(ngx_cycle_t *cycle);
void ngx_http_dwrtc_exit_process(ngx_cycle_t *cycle);
dwrtc_node *ngx_http_dwrtc_node(void);
char *ngx_http_dwrtc_node_unavailable(void);
ngx_int_t ngx_http_dwrtc_node_ready(void);
ngx_int_t ngx_http_dwrtc_hold(ngx_http_request_t *r);
ngx_uint_t ngx_http_dwrtc_nsessions(void);
ngx_int_t ngx_http_dwrtc_session_register(ngx_str_node_t *sn, u_char *id,
    ngx_log_t *log);
void ngx_http_dwrtc_session_unregister(ngx_str_node_t *sn);
ngx_int_t ngx_http_dwrtc_session_register_as(ngx_str_node_t *sn, u_char *id,
    ngx_str_t *want, ngx_log_t *log);
ngx_int_t ngx_http_dwrtc_session_register_chosen(ngx_str_node_t *sn,
    u_char *id, ngx_str_t *want, ngx_str_t *token, ngx_log_t *log);
ngx_str_node_t *ngx_http_dwrtc_session_lookup(u_char *id, size_t len);
ngx_str_node_t *ngx_http_dwrtc_session_next(ngx_str_node_t *sn);

void ngx_http_dwrtc_status_refresh(void);
void ngx_http_dwrtc_status_release(void);

/* ngx_http_dwrtc_link.c */
ngx_int_t ngx_http_dwrtc_link_listen(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf, dwrtc_options *opt);
ngx_int_t ngx_http_dwrtc_link_start(ngx_cycle_t *cycle, dwrtc_node *node);
void ngx_http_dwrtc_link_stop(void);

/* ngx_http_dwrtc_status.c */
ngx_int_t ngx_http_dwrtc_status_add_zone(ngx_conf_t *cf);
void ngx_http_dwrtc_status_publish(ngx_uint_t state, const char *reason,
    dwrtc_node *node);
void ngx_http_dwrtc_status_share_siblings(dwrtc_node *node);
char *ngx_http_dwrtc_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
extern uint64_t  ngx_http_dwrtc_rate_limited;
extern uint64_t  ngx_http_dwrtc_peerjs_sessions;
extern uint64_t  ngx_http_dwrtc_peerjs_messages;

/* ngx_http_dwrtc_handshake.c */
ngx_int_t ngx_http_dwrtc_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_dwrtc_origin_allowed(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf);

/* ngx_http_dwrtc_peerjs.c */
ngx_int_t ngx_http_dwrtc_peerjs_handler(ngx_http_request_t *r);
ngx_uint_t ngx_http_dwrtc_peerjs_printable(ngx_str_t *id);
ngx_int_t ngx_http_dwrtc_peerjs_admit(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf, ngx_str_t *id, ngx_str_t *token,
    ngx_str_t *refusal);

/* ngx_http_dwrtc_session.c */
ngx_int_t ngx_http_dwrtc_session_create(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf, ngx_str_t *user,
    ngx_http_dwrtc_session_t **sp);
void ngx_http_dwrtc_session_start(ngx_http_dwrtc_session_t *s);
ngx_int_t ngx_http_dwrtc_session_peerjs_welcome(ngx_http_dwrtc_session_t *s);
ngx_int_t ngx_http_dwrtc_session_send_text(ngx_http_dwrtc_session_t *s,
    u_char *data, size_t len);
ngx_http_dwrtc_session_t *ngx_http_dwrtc_session_of(ngx_str_node_t *sn);
ngx_int_t ngx_http_dwrtc_session_peerjs_id(ngx_http_dwrtc_session_t *s,
    ngx_http_dwrtc_loc_conf_t *dlcf, ngx_str_t *id);
ngx_int_t ngx_http_dwrtc_session_deliver(ngx_http_dwrtc_session_t *s,
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
