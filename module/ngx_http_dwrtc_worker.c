
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * The worker's node adapter: every worker process runs one dhtcore node,
 * started in init_process and stopped and joined in exit_process. The
 * node's threads hand deliveries and log records back through an eventfd,
 * which is wrapped as an nginx connection and drained in the worker's event
 * loop; nothing from the core's threads touches nginx objects. The table of
 * this worker's sessions (register, unregister, lookup by id) lives here
 * too, and so does the bookkeeping of session ids with the node.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dwrtc_module.h"


/* Records handed out per eventfd wakeup; the rest wait for the next one. */
#define NGX_HTTP_DWRTC_DRAIN_MAX        1024

/* Local DHT ports of sibling workers tried as bootstrap nodes at most. */
#define NGX_HTTP_DWRTC_SIBLINGS_MAX     16

/*
 * A worker whose port ranges are all taken (during a reload the old workers
 * hold theirs until they exit) tries again after this long, doubling up to
 * the longest.
 */
#define NGX_HTTP_DWRTC_RETRY_FIRST      250
#define NGX_HTTP_DWRTC_RETRY_LONGEST    5000

/*
 * How often a worker looks at its siblings' status slots (a new worker is
 * announced to the nodes this one has links with within this long); its
 * own slot is written every fourth tick, once a second.
 */
#define NGX_HTTP_DWRTC_STATUS_TICK      250

/* How often held handshakes look whether the node is published yet. */
#define NGX_HTTP_DWRTC_READY_POLL       10

/*
 * A node that no other DHT node has answered by then is taken to be alone
 * (the first node of a network): there is no one to store its record on,
 * and no one who could route to its sessions, so it need not wait.
 */
#define NGX_HTTP_DWRTC_ALONE_AFTER      200


/* State of this worker's node; nothing here is shared between processes. */

typedef struct {
    dwrtc_node                     *node;
    ngx_connection_t               *notify;    /* wraps the core's eventfd */
    ngx_rbtree_t                    sessions;  /* ngx_str_node_t by id */
    ngx_rbtree_node_t               sentinel;
    ngx_uint_t                      nsessions;
    ngx_log_t                      *log;

    /* handshakes held until the node's record is stored */
    ngx_queue_t                     held;      /* of ngx_http_dwrtc_held_t */
    ngx_event_t                     ready_ev;
    ngx_msec_t                      started;
    ngx_msec_t                      publish_wait;

    /* a start that found no free port, tried again */
    ngx_event_t                     retry_ev;
    ngx_msec_t                      retry_delay;
    ngx_uint_t                      retries;
    ngx_cycle_t                    *cycle;

    /*
     * the status page's slot, written every second; the siblings (the
     * other workers' nodes) checked every tick
     */
    ngx_event_t                     status_ev;
    ngx_uint_t                      status_ticks;
    ngx_uint_t                      state;     /* ngx_http_dwrtc_node_state_e */
    const char                     *reason;

    unsigned                        failed:1;  /* start failed: 503 */
    unsigned                        ready:1;   /* sessions welcomed at once */
} ngx_http_dwrtc_worker_t;


typedef struct {
    ngx_queue_t                     queue;
    ngx_http_request_t             *request;   /* NULL once resumed */
    ngx_pool_cleanup_t             *cleanup;   /* no handler once resumed */
} ngx_http_dwrtc_held_t;


static ngx_int_t ngx_http_dwrtc_node_up(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf);
static void ngx_http_dwrtc_retry_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_status_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_set_state(ngx_uint_t state, const char *reason);
static ngx_int_t ngx_http_dwrtc_node_start(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf);
static ngx_int_t ngx_http_dwrtc_set_options(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf, dwrtc_options *opt);
static ngx_int_t ngx_http_dwrtc_notify_add(ngx_cycle_t *cycle);
static void ngx_http_dwrtc_notify_del(void);
static void ngx_http_dwrtc_notify_handler(ngx_event_t *rev);
static int ngx_http_dwrtc_on_delivery(void *ctx, const char *session_id,
    size_t id_len, const char *data, size_t len);
static void ngx_http_dwrtc_on_log(void *ctx, int level, const char *msg,
    size_t len);
static void ngx_http_dwrtc_ready_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_held_cleanup(void *data);


static ngx_http_dwrtc_worker_t  ngx_http_dwrtc_worker;


/*
 * The options that are one number of the main configuration, an
 * ngx_msec_t or an ngx_int_t (both ngx_uint_t wide), checked when the
 * configuration was read.
 */

typedef int (*ngx_http_dwrtc_set_number_pt)(dwrtc_options *opt,
    unsigned value);

typedef struct {
    ngx_http_dwrtc_set_number_pt    set;
    size_t                          offset;
} ngx_http_dwrtc_number_option_t;


static ngx_http_dwrtc_number_option_t  ngx_http_dwrtc_number_options[] = {

    { dwrtc_options_set_link_handshake_timeout,
      offsetof(ngx_http_dwrtc_main_conf_t, link_handshake_timeout) },

    { dwrtc_options_set_link_retry_delay,
      offsetof(ngx_http_dwrtc_main_conf_t, link_retry_delay) },

    { dwrtc_options_set_link_ack_timeout,
      offsetof(ngx_http_dwrtc_main_conf_t, link_ack_timeout) },

    { dwrtc_options_set_link_max_unproven,
      offsetof(ngx_http_dwrtc_main_conf_t, link_max_unproven) },

    { dwrtc_options_set_lookup_wait,
      offsetof(ngx_http_dwrtc_main_conf_t, lookup_wait) },

    { dwrtc_options_set_lookup_claim_checks,
      offsetof(ngx_http_dwrtc_main_conf_t, lookup_claim_checks) },

    { dwrtc_options_set_claim_clock_skew,
      offsetof(ngx_http_dwrtc_main_conf_t, claim_clock_skew) },

    { dwrtc_options_set_peerjs_id_reserve,
      offsetof(ngx_http_dwrtc_main_conf_t, peerjs_id_reserve) },

    { dwrtc_options_set_peerjs_id_wait,
      offsetof(ngx_http_dwrtc_main_conf_t, peerjs_id_wait) },

    { dwrtc_options_set_peerjs_id_reservations,
      offsetof(ngx_http_dwrtc_main_conf_t, peerjs_id_reservations) },

    { NULL, 0 }
};



ngx_int_t
ngx_http_dwrtc_init_process(ngx_cycle_t *cycle)
{
    ngx_http_dwrtc_worker_t     *w;
    ngx_http_dwrtc_main_conf_t  *dmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        /* cache manager and loader processes are not nodes */
        return NGX_OK;
    }

    w = &ngx_http_dwrtc_worker;

    ngx_memzero(w, sizeof(ngx_http_dwrtc_worker_t));
    ngx_rbtree_init(&w->sessions, &w->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&w->held);
    w->log = cycle->log;

    /*
     * Not cancelable: a worker that shuts down while handshakes are held
     * lets them run once more, to be refused with 503.
     */
    w->ready_ev.handler = ngx_http_dwrtc_ready_handler;
    w->ready_ev.log = cycle->log;
    w->ready_ev.data = w;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_dwrtc_module);

    if (dmcf == NULL) {
        return NGX_OK;
    }

    w->status_ev.handler = ngx_http_dwrtc_status_handler;
    w->status_ev.log = cycle->log;
    w->status_ev.data = w;
    w->status_ev.cancelable = 1;

    ngx_http_dwrtc_status_publish(NGX_HTTP_DWRTC_NODE_STARTING, NULL, NULL);

    if (!dmcf->enabled) {
        ngx_http_dwrtc_set_state(NGX_HTTP_DWRTC_NODE_DISABLED,
                                 "no location has dwrtc_signal "
                                 "or dwrtc_peerjs");
        return NGX_OK;
    }

    /* from here on, a failure leaves the node out and the worker serving */

    w->failed = 1;
    w->cycle = cycle;
    w->state = NGX_HTTP_DWRTC_NODE_STARTING;
    ngx_add_timer(&w->status_ev, NGX_HTTP_DWRTC_STATUS_TICK);

    w->retry_ev.handler = ngx_http_dwrtc_retry_handler;
    w->retry_ev.log = cycle->log;
    w->retry_ev.data = w;
    w->retry_ev.cancelable = 1;

    switch (ngx_http_dwrtc_node_up(cycle, dmcf)) {

    case NGX_OK:
        break;

    case NGX_BUSY:
        w->retry_delay = NGX_HTTP_DWRTC_RETRY_FIRST;
        ngx_add_timer(&w->retry_ev, w->retry_delay);
        ngx_http_dwrtc_set_state(NGX_HTTP_DWRTC_NODE_WAITING,
                                 "no free port in dwrtc_dht_port or "
                                 "dwrtc_link_port yet");
        break;

    default:
        ngx_http_dwrtc_set_state(NGX_HTTP_DWRTC_NODE_FAILED,
                                 "the node did not start: see the error log");
    }

    return NGX_OK;
}


/*
 * Starts the node and hooks it into the event loop: NGX_OK, NGX_BUSY when
 * no port of a range was free, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_dwrtc_node_up(ngx_cycle_t *cycle, ngx_http_dwrtc_main_conf_t *dmcf)
{
    int                       rc;
    ngx_int_t                 started;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    started = ngx_http_dwrtc_node_start(cycle, dmcf);

    if (started != NGX_OK) {
        return started;
    }

    if (ngx_http_dwrtc_notify_add(cycle) != NGX_OK) {
        ngx_http_dwrtc_link_stop();
        dwrtc_node_destroy(w->node);
        w->node = NULL;
        return NGX_ERROR;
    }

    if (dmcf->link_transport == NGX_HTTP_DWRTC_LINK_TRANSPORT_NGINX
        && ngx_http_dwrtc_link_start(cycle, w->node) != NGX_OK)
    {
        ngx_http_dwrtc_notify_del();
        dwrtc_node_destroy(w->node);
        w->node = NULL;
        return NGX_ERROR;
    }

    /*
     * A message between two sessions of this worker, and an answer to the
     * sender, go to their session within dwrtc_submit(): no eventfd and no
     * extra turn of the event loop.
     */

    rc = dwrtc_node_set_local_delivery(w->node, ngx_http_dwrtc_on_delivery,
                                       NULL);

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: dwrtc_node_set_local_delivery() failed: %s",
                      dwrtc_strerror(rc));
    }

    w->failed = 0;
    w->started = ngx_current_msec;
    w->publish_wait = dmcf->publish_wait;
    w->ready = (dmcf->publish_wait == 0);

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "dwrtc: node %s started, dht port %ud, link port %ud"
                  "%s (DWRTC %s)", dwrtc_node_id(w->node),
                  dwrtc_node_dht_port(w->node), dwrtc_node_link_port(w->node),
                  w->retries ? " after waiting for a free port" : "",
                  DWRTC_VERSION);

    ngx_http_dwrtc_set_state(NGX_HTTP_DWRTC_NODE_RUNNING, NULL);

    /* look for the record being stored, to say "ready" when it is */

    if (!w->ready && !w->ready_ev.timer_set) {
        ngx_add_timer(&w->ready_ev, NGX_HTTP_DWRTC_READY_POLL);
    }

    /* records logged while starting */
    ngx_http_dwrtc_notify_handler(w->notify->read);

    return NGX_OK;
}


static void
ngx_http_dwrtc_set_state(ngx_uint_t state, const char *reason)
{
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    w->state = state;
    w->reason = reason;

    ngx_http_dwrtc_status_refresh();
}


/* This worker's slot of the status page, as of now. */

void
ngx_http_dwrtc_status_refresh(void)
{
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->state != NGX_HTTP_DWRTC_NODE_NONE) {
        ngx_http_dwrtc_status_publish(w->state, w->reason, w->node);
    }
}


/*
 * Also while an old worker of a reload serves its sessions on: it stays on
 * the status page, marked as exiting, until it exits, and tells the nodes
 * it has links with where the new workers are within a tick of their start
 * (a new worker's record may take seconds to be found in the DHT). The
 * timer is cancelable, so it never holds a worker that has nothing else.
 */

static void
ngx_http_dwrtc_status_handler(ngx_event_t *ev)
{
    ngx_http_dwrtc_worker_t  *w;

    if (ngx_terminate) {
        return;
    }

    w = ev->data;

    if (w->state == NGX_HTTP_DWRTC_NODE_RUNNING && w->node) {
        ngx_http_dwrtc_status_share_siblings(w->node);
    }

    if (++w->status_ticks * NGX_HTTP_DWRTC_STATUS_TICK >= 1000) {
        w->status_ticks = 0;
        ngx_http_dwrtc_status_refresh();
    }

    ngx_add_timer(ev, NGX_HTTP_DWRTC_STATUS_TICK);
}


static void
ngx_http_dwrtc_retry_handler(ngx_event_t *ev)
{
    ngx_int_t                    rc;
    ngx_http_dwrtc_worker_t     *w;
    ngx_http_dwrtc_main_conf_t  *dmcf;

    w = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    w->retries++;

    dmcf = ngx_http_cycle_get_module_main_conf(w->cycle,
                                               ngx_http_dwrtc_module);

    rc = ngx_http_dwrtc_node_up(w->cycle, dmcf);

    if (rc != NGX_BUSY) {
        return;
    }

    w->retry_delay = ngx_min(2 * w->retry_delay,
                             NGX_HTTP_DWRTC_RETRY_LONGEST);
    ngx_add_timer(ev, w->retry_delay);
}


/* Makes and starts the node with the options of the configuration. */

static ngx_int_t
ngx_http_dwrtc_node_start(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf)
{
    int                       rc;
    ngx_int_t                 started;
    ngx_uint_t                level;
    dwrtc_options            *opt;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    opt = dwrtc_options_create();
    if (opt == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: dwrtc_options_create() failed");
        return NGX_ERROR;
    }

    if (ngx_http_dwrtc_set_options(cycle, dmcf, opt) != NGX_OK) {
        dwrtc_options_destroy(opt);
        return NGX_ERROR;
    }

    if (dmcf->link_transport == NGX_HTTP_DWRTC_LINK_TRANSPORT_NGINX) {

        /* the worker binds the link port itself and runs the links */

        started = ngx_http_dwrtc_link_listen(cycle, dmcf, opt);

        if (started != NGX_OK) {
            dwrtc_options_destroy(opt);

            if (started == NGX_BUSY && w->retries == 0) {
                ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                              "dwrtc: no free port in dwrtc_link_port "
                              "%ui-%ui on \"%V\"; trying again (the old "
                              "workers of a reload hold their ports until "
                              "they exit); meanwhile this worker answers 503 "
                              "at dwrtc_signal locations",
                              dmcf->link_port.from, dmcf->link_port.to,
                              &dmcf->bind_address);
            }

            return started;
        }
    }

    rc = dwrtc_node_create(opt, &w->node);

    dwrtc_options_destroy(opt);

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: dwrtc_node_create() failed: %s",
                      dwrtc_strerror(rc));
        ngx_http_dwrtc_link_stop();
        w->node = NULL;
        return NGX_ERROR;
    }

    rc = dwrtc_node_start(w->node);

    if (rc != DWRTC_OK) {
        /* the link listener, if any, is bound again at the next attempt */
        ngx_http_dwrtc_link_stop();
    }

    if (rc == DWRTC_EBIND && w->retries > 0) {
        /* still no port: said once already, at the first attempt */
        (void) dwrtc_node_drain(w->node, 0, NULL, NULL, NULL);
        dwrtc_node_destroy(w->node);
        w->node = NULL;
        return NGX_BUSY;
    }

    if (rc != DWRTC_OK) {
        /* the core's own log records say which port or step failed */
        (void) dwrtc_node_drain(w->node, 0, NULL, ngx_http_dwrtc_on_log, NULL);

        /*
         * No free port is what a reload with tight ranges looks like until
         * the old workers exit: it is tried again. Anything else is final.
         */

        level = (rc == DWRTC_EBIND) ? NGX_LOG_WARN : NGX_LOG_ALERT;

        ngx_log_error(level, cycle->log, 0,
                      "dwrtc: node did not start: %s "
                      "(dwrtc_dht_port %ui-%ui, dwrtc_link_port %ui-%ui, "
                      "dwrtc_bind_address \"%V\"); %s"
                      "this worker answers 503 at dwrtc_signal locations",
                      dwrtc_strerror(rc),
                      dmcf->dht_port.from, dmcf->dht_port.to,
                      dmcf->link_port.from, dmcf->link_port.to,
                      &dmcf->bind_address,
                      rc == DWRTC_EBIND
                          ? "trying again (the old workers of a reload hold "
                            "their ports until they exit); meanwhile "
                          : "");

        dwrtc_node_destroy(w->node);
        w->node = NULL;
        return (rc == DWRTC_EBIND) ? NGX_BUSY : NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_dwrtc_set_options(ngx_cycle_t *cycle,
    ngx_http_dwrtc_main_conf_t *dmcf, dwrtc_options *opt)
{
    int                              rc, level;
    u_char                          *p, buf[NGX_SOCKADDR_STRLEN
                                            + sizeof(":65535")];
    ngx_str_t                       *b, host;
    ngx_uint_t                       i, port, last, value;
    ngx_http_dwrtc_number_option_t  *n;

    rc = dwrtc_options_set_dht_ports(opt, dmcf->dht_port.from,
                                     dmcf->dht_port.to);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_link_ports(opt, dmcf->link_port.from,
                                      dmcf->link_port.to);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_bind_address(opt,
                                        (char *) dmcf->bind_address.data,
                                        dmcf->bind_address.len);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_public_address(opt,
                                          (char *) dmcf->public_address.data,
                                          dmcf->public_address.len);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_max_message_size(opt, dmcf->max_message_size);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    if (dmcf->dht_rate_set) {
        rc = dwrtc_options_set_dht_rate_limits(opt, dmcf->dht_rate_per_ip,
                                               dmcf->dht_rate_total);
        if (rc != DWRTC_OK) {
            goto failed;
        }
    }

    if (dmcf->network_key.len) {
        rc = dwrtc_options_set_network_key(opt,
                                           (char *) dmcf->network_key.data,
                                           dmcf->network_key.len);
        if (rc != DWRTC_OK) {
            goto failed;
        }
    }

    rc = dwrtc_options_set_link_idle_timeout(opt,
                                       (unsigned) dmcf->link_idle_timeout);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_queue_limit(opt, (size_t) dmcf->queue_limit);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_hold(opt, (size_t) dmcf->hold_messages,
                                (unsigned) dmcf->hold_time);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_dht_max_searches(opt,
                                            (size_t) dmcf->dht_max_searches);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_lookup_rate(opt, (unsigned) dmcf->lookup_rate,
                                       (unsigned) dmcf->lookup_burst);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_hold_budget(opt,
                                       (size_t) dmcf->session_hold_messages,
                                       dmcf->session_hold_size,
                                       dmcf->worker_hold_size);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_room_limits(opt, (size_t) dmcf->room_members,
                                       (size_t) dmcf->rooms_per_session);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_room_bounds(opt,
                                       (size_t) dmcf->room_remote_members,
                                       (size_t) dmcf->room_members_per_node,
                                       (size_t) dmcf->room_node_checks);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_link_claim_bounds(opt,
                                        (size_t) dmcf->link_owned_senders,
                                        (unsigned) dmcf->link_claim_checks);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    rc = dwrtc_options_set_claim_limits(opt,
                                        (unsigned) dmcf->claims_per_minute,
                                        (unsigned) dmcf->claim_refusals);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    for (n = ngx_http_dwrtc_number_options; n->set; n++) {
        value = *(ngx_uint_t *) ((u_char *) dmcf + n->offset);

        rc = n->set(opt, (unsigned) value);
        if (rc != DWRTC_OK) {
            goto failed;
        }
    }

    if (dmcf->bootstrap) {
        b = dmcf->bootstrap->elts;
        for (i = 0; i < dmcf->bootstrap->nelts; i++) {
            rc = dwrtc_options_add_bootstrap(opt, (char *) b[i].data,
                                             b[i].len);
            if (rc != DWRTC_OK) {
                goto failed;
            }
        }
    }

    /*
     * The workers of one nginx (and, during a reload, the old and the new
     * ones) are nodes of one network: each also joins through the first
     * ports of its own DHT range on this host. A node ignores itself.
     */

    if (dmcf->dht_port.from != 0) {

        if (ngx_strcmp(dmcf->bind_address.data, "0.0.0.0") == 0) {
            ngx_str_set(&host, "127.0.0.1");

        } else if (ngx_strcmp(dmcf->bind_address.data, "::") == 0) {
            ngx_str_set(&host, "[::1]");

        } else {
            host = dmcf->bind_address;
        }

        last = ngx_min(dmcf->dht_port.to,
                       dmcf->dht_port.from + NGX_HTTP_DWRTC_SIBLINGS_MAX - 1);

        for (port = dmcf->dht_port.from; port <= last; port++) {

            if (ngx_strlchr(host.data, host.data + host.len, ':') != NULL
                && host.data[0] != '[')
            {
                p = ngx_snprintf(buf, sizeof(buf), "[%V]:%ui", &host, port);

            } else {
                p = ngx_snprintf(buf, sizeof(buf), "%V:%ui", &host, port);
            }

            rc = dwrtc_options_add_bootstrap(opt, (char *) buf, p - buf);
            if (rc != DWRTC_OK) {
                goto failed;
            }
        }
    }

    if (cycle->log->log_level & NGX_LOG_DEBUG_ALL
        || cycle->log->log_level >= NGX_LOG_DEBUG)
    {
        level = DWRTC_LOG_DEBUG;

    } else if (cycle->log->log_level >= NGX_LOG_INFO) {
        level = DWRTC_LOG_INFO;

    } else if (cycle->log->log_level >= NGX_LOG_WARN) {
        level = DWRTC_LOG_WARN;

    } else {
        level = DWRTC_LOG_ERROR;
    }

    rc = dwrtc_options_set_log_level(opt, level);
    if (rc != DWRTC_OK) {
        goto failed;
    }

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                  "dwrtc: setting node options failed: %s",
                  dwrtc_strerror(rc));

    return NGX_ERROR;
}

/*
 * Registers the node's eventfd in the worker's event loop, wrapped as a
 * connection as nginx's channel is.
 */

static ngx_int_t
ngx_http_dwrtc_notify_add(ngx_cycle_t *cycle)
{
    ngx_int_t                 rc;
    ngx_connection_t         *c;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    c = ngx_get_connection(dwrtc_node_event_fd(w->node), cycle->log);
    if (c == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: no free connection for the node's event fd");
        return NGX_ERROR;
    }

    c->pool = cycle->pool;

    c->read->log = cycle->log;
    c->write->log = cycle->log;

    /* like nginx's channel: not a client, never closed as idle */
    c->read->channel = 1;
    c->write->channel = 1;

    c->read->handler = ngx_http_dwrtc_notify_handler;

    if (ngx_add_conn && (ngx_event_flags & NGX_USE_EPOLL_EVENT) == 0) {
        rc = ngx_add_conn(c);

    } else {
        /* level-triggered: drain() may leave records for the next round */
        rc = ngx_add_event(c->read, NGX_READ_EVENT, 0);
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dwrtc: adding the node's event fd failed");
        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);
        return NGX_ERROR;
    }

    w->notify = c;

    return NGX_OK;
}


/* Takes the eventfd out of the event loop; the core owns and closes it. */

static void
ngx_http_dwrtc_notify_del(void)
{
    ngx_connection_t         *c;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;
    c = w->notify;

    if (c == NULL) {
        return;
    }

    if (ngx_del_conn) {
        (void) ngx_del_conn(c, 0);

    } else {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);

    w->notify = NULL;
}


void
ngx_http_dwrtc_exit_process(ngx_cycle_t *cycle)
{
    ngx_rbtree_node_t        *node;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    ngx_http_dwrtc_status_release();

    if (w->node == NULL) {
        return;
    }

    /* a fast shutdown leaves sessions open: tell their clients */

    if (w->sessions.root != w->sessions.sentinel) {
        for (node = ngx_rbtree_min(w->sessions.root, w->sessions.sentinel);
             node;
             node = ngx_rbtree_next(&w->sessions, node))
        {
            ngx_http_dwrtc_session_going_away(
                           ngx_http_dwrtc_session_of((ngx_str_node_t *) node));
        }
    }

    ngx_http_dwrtc_notify_del();

    /* links over the worker's connections, if any, close while it runs */
    ngx_http_dwrtc_link_stop();

    /* joins the core's threads; then hand out what they logged last */

    dwrtc_node_stop(w->node);
    (void) dwrtc_node_drain(w->node, 0, NULL, ngx_http_dwrtc_on_log, NULL);

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "dwrtc: node %s stopped", dwrtc_node_id(w->node));

    dwrtc_node_destroy(w->node);
    w->node = NULL;
}


static void
ngx_http_dwrtc_notify_handler(ngx_event_t *rev)
{
    size_t                    n;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->node == NULL) {
        return;
    }

    n = dwrtc_node_drain(w->node, NGX_HTTP_DWRTC_DRAIN_MAX,
                         ngx_http_dwrtc_on_delivery, ngx_http_dwrtc_on_log,
                         NULL);

    if (n == NGX_HTTP_DWRTC_DRAIN_MAX) {
        /* the core signals the eventfd again for the rest */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rev->log, 0,
                       "dwrtc: drained %uz records, more wait", n);
    }
}


static int
ngx_http_dwrtc_on_delivery(void *ctx, const char *session_id, size_t id_len,
    const char *data, size_t len)
{
    ngx_str_node_t  *sn;

    sn = ngx_http_dwrtc_session_lookup((u_char *) session_id, id_len);

    if (sn == NULL) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_http_dwrtc_worker.log, 0,
                       "dwrtc: delivery for gone session %*s",
                       id_len, session_id);
        return 1;
    }

    /* a session that is closing takes nothing: the core tells the sender */

    return ngx_http_dwrtc_session_deliver(ngx_http_dwrtc_session_of(sn),
                                          data, len) == NGX_OK ? 0 : 1;
}


static void
ngx_http_dwrtc_on_log(void *ctx, int level, const char *msg, size_t len)
{
    ngx_uint_t  ngx_level;

    switch (level) {

    case DWRTC_LOG_ERROR:
        ngx_level = NGX_LOG_ERR;
        break;

    case DWRTC_LOG_WARN:
        ngx_level = NGX_LOG_WARN;
        break;

    case DWRTC_LOG_INFO:
        ngx_level = NGX_LOG_INFO;
        break;

    default:
        ngx_level = NGX_LOG_DEBUG;
        break;
    }

    ngx_log_error(ngx_level, ngx_cycle->log, 0, "dwrtc: %*s", len, msg);
}

/* The node, or NULL when it is not running in this worker. */

dwrtc_node *
ngx_http_dwrtc_node(void)
{
    return ngx_http_dwrtc_worker.node;
}


/* Why this worker takes no sessions, or NULL when it does. */

char *
ngx_http_dwrtc_node_unavailable(void)
{
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->node) {
        return NULL;
    }

    return w->failed ? "signaling node not running" : "signaling not enabled";
}


/*
 * Whether a new session may be welcomed now. A session id is only worth
 * having once other nodes can route to it: that is, once this node's
 * record is stored in the DHT. Until then (a worker that has just started,
 * after a reload or a respawn, for a few hundred milliseconds) handshakes
 * wait, at most dwrtc_publish_wait from the worker's start; a node that no
 * DHT peer answers is alone and does not wait.
 */

ngx_int_t
ngx_http_dwrtc_node_ready(void)
{
    int                       status;
    ngx_msec_t                elapsed;
    dwrtc_stats               stats;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->ready || w->node == NULL) {
        return 1;
    }

    status = dwrtc_node_status(w->node);
    elapsed = ngx_current_msec - w->started;

    if (status == DWRTC_NODE_PUBLISHED) {
        ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                      "dwrtc: node %s ready: its record is stored, other "
                      "nodes reach its sessions (%M ms after its start)",
                      dwrtc_node_id(w->node), elapsed);
        w->ready = 1;
        return 1;
    }

    if (status == DWRTC_NODE_ALONE && elapsed >= NGX_HTTP_DWRTC_ALONE_AFTER) {

        if (dwrtc_node_stats(w->node, &stats) == DWRTC_OK
            && stats.bootstrap_entries > 0)
        {
            ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                          "dwrtc: node %s ready, not in the network yet: no "
                          "dwrtc_bootstrap node answered within %M ms; it "
                          "keeps trying and logs when one answers",
                          dwrtc_node_id(w->node), elapsed);

        } else {
            ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                          "dwrtc: node %s ready, the first node of its "
                          "network: no dwrtc_bootstrap names another node",
                          dwrtc_node_id(w->node));
        }

        w->ready = 1;
        return 1;
    }

    if (elapsed >= w->publish_wait) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "dwrtc: node record not stored within "
                      "dwrtc_publish_wait (%M ms); welcoming sessions that "
                      "other nodes may not reach for a while", elapsed);
        w->ready = 1;
        return 1;
    }

    return 0;
}


/*
 * Holds a handshake (or a PeerJS client's request for an id) until
 * ngx_http_dwrtc_node_ready(): the request waits (its client may go away
 * meanwhile), then its location's handler runs for it again from the start.
 */

ngx_int_t
ngx_http_dwrtc_hold(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_dwrtc_held_t    *held;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    held = ngx_palloc(r->pool, sizeof(ngx_http_dwrtc_held_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (held == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    held->request = r;
    held->cleanup = cln;
    ngx_queue_insert_tail(&w->held, &held->queue);

    cln->handler = ngx_http_dwrtc_held_cleanup;
    cln->data = held;

    /* a client that closes while held ends its request */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;
    r->main->count++;

    if (!w->ready_ev.timer_set) {
        ngx_add_timer(&w->ready_ev, NGX_HTTP_DWRTC_READY_POLL);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "dwrtc: handshake held until the node is published");

    return NGX_DONE;
}


static void
ngx_http_dwrtc_ready_handler(ngx_event_t *ev)
{
    ngx_queue_t               *q;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_dwrtc_held_t     *held;
    ngx_http_dwrtc_worker_t   *w;
    ngx_http_core_loc_conf_t  *clcf;

    w = ev->data;

    if (!ngx_http_dwrtc_node_ready() && !ngx_exiting && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_DWRTC_READY_POLL);
        return;
    }

    while (!ngx_queue_empty(&w->held)) {
        q = ngx_queue_head(&w->held);
        ngx_queue_remove(q);

        held = ngx_queue_data(q, ngx_http_dwrtc_held_t, queue);
        r = held->request;
        held->request = NULL;

        /* nothing to clean up: the session may release the request */
        held->cleanup->handler = NULL;

        c = r->connection;
        ngx_http_set_log_request(c->log, r);

        /* the location's own handler: dwrtc_signal's, or dwrtc_peerjs's */

        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        ngx_http_finalize_request(r, clcf->handler(r));
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_dwrtc_held_cleanup(void *data)
{
    ngx_http_dwrtc_held_t  *held = data;

    if (held->request) {
        ngx_queue_remove(&held->queue);
        held->request = NULL;
    }
}


ngx_uint_t
ngx_http_dwrtc_nsessions(void)
{
    return ngx_http_dwrtc_worker.nsessions;
}


/*
 * Opens a session with the node, which writes its id to id, and enters it
 * in the worker's table under that id: NGX_OK, NGX_DECLINED when the node
 * takes no more sessions, or NGX_ERROR.
 */

ngx_int_t
ngx_http_dwrtc_session_register(ngx_str_node_t *sn, u_char *id,
    ngx_log_t *log)
{
    int                       rc;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->node == NULL) {
        return NGX_ERROR;
    }

    rc = dwrtc_session_open(w->node, (char *) id);

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "dwrtc: dwrtc_session_open() failed: %s",
                      dwrtc_strerror(rc));

        return (rc == DWRTC_ELIMIT) ? NGX_DECLINED : NGX_ERROR;
    }

    sn->str.data = id;
    sn->str.len = DWRTC_SESSION_ID_LEN;
    sn->node.key = ngx_crc32_short(id, DWRTC_SESSION_ID_LEN);

    ngx_rbtree_insert(&w->sessions, &sn->node);
    w->nsessions++;

    return NGX_OK;
}


/*
 * As ngx_http_dwrtc_session_register(), under the id a PeerJS client asks
 * for (want): NGX_OK, NGX_BUSY when a session holds it, NGX_ABORT when it
 * is not an id this node gave out, or NGX_ERROR.
 */

ngx_int_t
ngx_http_dwrtc_session_register_as(ngx_str_node_t *sn, u_char *id,
    ngx_str_t *want, ngx_log_t *log)
{
    int                       rc;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->node == NULL) {
        return NGX_ERROR;
    }

    if (want->len != DWRTC_SESSION_ID_LEN) {
        return NGX_ABORT;
    }

    rc = dwrtc_session_open_as(w->node, (char *) want->data, want->len);

    if (rc == DWRTC_EEXIST) {
        return NGX_BUSY;
    }

    if (rc == DWRTC_EINVAL) {
        return NGX_ABORT;
    }

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "dwrtc: dwrtc_session_open_as() failed: %s",
                      dwrtc_strerror(rc));
        return NGX_ERROR;
    }

    ngx_memcpy(id, want->data, DWRTC_SESSION_ID_LEN);

    sn->str.data = id;
    sn->str.len = DWRTC_SESSION_ID_LEN;
    sn->node.key = ngx_crc32_short(id, DWRTC_SESSION_ID_LEN);

    ngx_rbtree_insert(&w->sessions, &sn->node);
    w->nsessions++;

    return NGX_OK;
}


/*
 * As ngx_http_dwrtc_session_register(), for a PeerJS client that chose its
 * id (want) with its token: the session is open under an id of its own at
 * once, and the node's verdict on the chosen id comes later as a delivery
 * to it. NGX_OK, NGX_ABORT when want is not an id a client may choose, or
 * NGX_ERROR.
 */

ngx_int_t
ngx_http_dwrtc_session_register_chosen(ngx_str_node_t *sn, u_char *id,
    ngx_str_t *want, ngx_str_t *token, ngx_log_t *log)
{
    int                       rc;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (w->node == NULL) {
        return NGX_ERROR;
    }

    rc = dwrtc_peerjs_open_chosen(w->node, (char *) want->data, want->len,
                                  (char *) token->data, token->len,
                                  (char *) id);

    if (rc == DWRTC_EINVAL) {
        return NGX_ABORT;
    }

    if (rc != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "dwrtc: dwrtc_peerjs_open_chosen() failed: %s",
                      dwrtc_strerror(rc));
        return NGX_ERROR;
    }

    sn->str.data = id;
    sn->str.len = DWRTC_SESSION_ID_LEN;
    sn->node.key = ngx_crc32_short(id, DWRTC_SESSION_ID_LEN);

    ngx_rbtree_insert(&w->sessions, &sn->node);
    w->nsessions++;

    return NGX_OK;
}


/* Takes a registered session out of the table and closes it in the node. */

void
ngx_http_dwrtc_session_unregister(ngx_str_node_t *sn)
{
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    ngx_rbtree_delete(&w->sessions, &sn->node);
    w->nsessions--;

    if (w->node) {
        (void) dwrtc_session_close(w->node, (char *) sn->str.data,
                                   sn->str.len);
    }
}


ngx_str_node_t *
ngx_http_dwrtc_session_lookup(u_char *id, size_t len)
{
    ngx_str_t  key;

    key.data = id;
    key.len = len;

    return ngx_str_rbtree_lookup(&ngx_http_dwrtc_worker.sessions, &key,
                                 ngx_crc32_short(id, len));
}


/* The worker's sessions in the order of their ids: the first after sn. */

ngx_str_node_t *
ngx_http_dwrtc_session_next(ngx_str_node_t *sn)
{
    ngx_rbtree_node_t        *node;
    ngx_http_dwrtc_worker_t  *w;

    w = &ngx_http_dwrtc_worker;

    if (sn == NULL) {
        if (w->sessions.root == w->sessions.sentinel) {
            return NULL;
        }

        node = ngx_rbtree_min(w->sessions.root, w->sessions.sentinel);

    } else {
        node = ngx_rbtree_next(&w->sessions, &sn->node);
    }

    return (ngx_str_node_t *) node;
}
