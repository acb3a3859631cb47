
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * The status page: "dwrtc_status" in a location answers with the state of
 * every worker's node of this nginx, as JSON, or as Prometheus text with
 * "?format=prometheus" (or an Accept header that asks for text/plain and
 * not JSON). Workers are separate processes: each writes its own slot of a
 * shared memory zone (ngx_http_dwrtc_status_zone) once a second and when
 * its node's state changes, the way stub_status shares its counters, and
 * the worker that answers reads all the slots. It answers 503 while any
 * worker's node is not running, so it is also the health check.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dwrtc_module.h"


/* Slots in the zone: workers beyond this many are not shown. */
#define NGX_HTTP_DWRTC_STATUS_SLOTS     128

/* A slot not written for this long belongs to a worker that is stuck. */
#define NGX_HTTP_DWRTC_STATUS_STALE     10


/*
 * One worker's slot. A seqlock keeps readers from seeing half a write: the
 * writer makes seq odd, writes, and makes it even again; a reader copies
 * the slot and keeps the copy only if seq was even and unchanged.
 */

typedef struct {
    ngx_atomic_t                    seq;
    ngx_atomic_t                    owner;     /* the pid that claimed it */
    ngx_pid_t                       pid;
    ngx_uint_t                      worker;    /* its ngx_worker */
    ngx_uint_t                      exiting;   /* an old worker, serving on */
    ngx_uint_t                      state;     /* ngx_http_dwrtc_node_state_e */
    time_t                          started;
    time_t                          updated;
    ngx_uint_t                      dht_port;
    ngx_uint_t                      link_port;
    u_char                          node[33];
    u_char                          reason[95];
    uint64_t                        rate_limited;
    uint64_t                        peerjs_sessions;
    uint64_t                        peerjs_messages;
    dwrtc_stats                     stats;
    /* a reader's copy only: its Prometheus labels, see _read() */
    u_char                          label[32];
} ngx_http_dwrtc_status_slot_t;


static ngx_int_t ngx_http_dwrtc_status_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_dwrtc_status_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_dwrtc_status_read(ngx_http_dwrtc_status_slot_t *out,
    ngx_uint_t n);
static ngx_uint_t ngx_http_dwrtc_status_wants_prometheus(
    ngx_http_request_t *r);
static u_char *ngx_http_dwrtc_status_json(u_char *p,
    ngx_http_dwrtc_status_slot_t *slots, ngx_uint_t n);
static u_char *ngx_http_dwrtc_status_prometheus(u_char *p,
    ngx_http_dwrtc_status_slot_t *slots, ngx_uint_t n);


static ngx_http_dwrtc_status_slot_t *ngx_http_dwrtc_status_claim(void);
static ngx_uint_t ngx_http_dwrtc_status_alive(ngx_atomic_uint_t pid);


static ngx_shm_zone_t                *ngx_http_dwrtc_status_zone;
/* this worker's slot, once claimed */
static ngx_http_dwrtc_status_slot_t  *ngx_http_dwrtc_status_own;

/* counted by the sessions of this worker, published with its slot */
uint64_t  ngx_http_dwrtc_rate_limited;
uint64_t  ngx_http_dwrtc_peerjs_sessions;   /* open now */
uint64_t  ngx_http_dwrtc_peerjs_messages;   /* taken from PeerJS clients */


static const char  *ngx_http_dwrtc_state_names[] = {
    "none", "starting", "waiting for a port", "running", "failed",
    "disabled"
};

/* by DWRTC_NETWORK_ALONE, _JOINING, _IN */
static const char  *ngx_http_dwrtc_network_names[] = {
    "alone", "joining", "in network"
};

#define ngx_http_dwrtc_network_name(st)                                       \
    ((st)->network_state >= 0 && (st)->network_state <= DWRTC_NETWORK_IN     \
     ? ngx_http_dwrtc_network_names[(st)->network_state] : "unknown")


/* Adds the zone; from the http block's main configuration. */

ngx_int_t
ngx_http_dwrtc_status_add_zone(ngx_conf_t *cf)
{
    ngx_str_t  name = ngx_string("dwrtc_status");

    ngx_http_dwrtc_status_zone = ngx_shared_memory_add(cf, &name,
        8 * ngx_pagesize
        + NGX_HTTP_DWRTC_STATUS_SLOTS * sizeof(ngx_http_dwrtc_status_slot_t),
        &ngx_http_dwrtc_module);

    if (ngx_http_dwrtc_status_zone == NULL) {
        return NGX_ERROR;
    }

    ngx_http_dwrtc_status_zone->init = ngx_http_dwrtc_status_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_dwrtc_status_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        /* a reload: the new workers take over the slots as they start */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shm_zone->data = ngx_slab_calloc(shpool, NGX_HTTP_DWRTC_STATUS_SLOTS
                                     * sizeof(ngx_http_dwrtc_status_slot_t));
    if (shm_zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm_zone->data;

    return NGX_OK;
}


/*
 * Writes this worker's slot: its node's state, why it is not running (or
 * NULL), and the node's figures when it runs. A worker of an older
 * configuration, on its way out, leaves the slot to the one that took it.
 */

void
ngx_http_dwrtc_status_publish(ngx_uint_t state, const char *reason,
    dwrtc_node *node)
{
    size_t                         len;
    ngx_http_dwrtc_status_slot_t  *slot;

    if (ngx_http_dwrtc_status_zone == NULL
        || ngx_http_dwrtc_status_zone->data == NULL)
    {
        return;
    }

    if (state == NGX_HTTP_DWRTC_NODE_STARTING) {
        ngx_http_dwrtc_status_own = ngx_http_dwrtc_status_claim();
    }

    slot = ngx_http_dwrtc_status_own;

    if (slot == NULL || slot->owner != (ngx_atomic_uint_t) ngx_pid) {
        return;
    }

    (void) ngx_atomic_fetch_add(&slot->seq, 1);
    ngx_memory_barrier();

    /*
     * A worker of an older configuration, on its way out, stays on the
     * page, marked, for as long as it serves sessions.
     */

    slot->exiting = (ngx_exiting || ngx_quit) ? 1 : 0;

    if (state == NGX_HTTP_DWRTC_NODE_STARTING) {
        slot->pid = ngx_pid;
        slot->worker = ngx_worker;
        slot->started = ngx_time();
        slot->rate_limited = 0;
        slot->peerjs_sessions = 0;
        slot->peerjs_messages = 0;
        ngx_memzero(&slot->stats, sizeof(dwrtc_stats));
        ngx_memzero(slot->node, sizeof(slot->node));
        slot->dht_port = 0;
        slot->link_port = 0;
    }

    slot->state = state;
    slot->updated = ngx_time();
    slot->rate_limited = ngx_http_dwrtc_rate_limited;
    slot->peerjs_sessions = ngx_http_dwrtc_peerjs_sessions;
    slot->peerjs_messages = ngx_http_dwrtc_peerjs_messages;

    len = reason ? ngx_min(ngx_strlen(reason), sizeof(slot->reason) - 1) : 0;
    ngx_memcpy(slot->reason, reason ? reason : "", len);
    slot->reason[len] = '\0';

    if (node && state == NGX_HTTP_DWRTC_NODE_RUNNING) {
        ngx_cpystrn(slot->node, (u_char *) dwrtc_node_id(node),
                    sizeof(slot->node));
        slot->dht_port = dwrtc_node_dht_port(node);
        slot->link_port = dwrtc_node_link_port(node);
        (void) dwrtc_node_stats(node, &slot->stats);
    }

    ngx_memory_barrier();
    (void) ngx_atomic_fetch_add(&slot->seq, 1);
}



/*
 * A slot for this worker: its own number's, unless another live worker
 * holds it (an old worker of a reload, still serving sessions), else any
 * slot whose worker is gone. Claimed with compare-and-set: new workers
 * start at once.
 */

static ngx_http_dwrtc_status_slot_t *
ngx_http_dwrtc_status_claim(void)
{
    ngx_uint_t                     i, k;
    ngx_atomic_uint_t              owner;
    ngx_http_dwrtc_status_slot_t  *slots;

    slots = ngx_http_dwrtc_status_zone->data;

    for (k = 0; k <= NGX_HTTP_DWRTC_STATUS_SLOTS; k++) {

        /* first our own number, then every slot in order */
        i = (k == 0) ? ngx_worker : k - 1;

        if (i >= NGX_HTTP_DWRTC_STATUS_SLOTS) {
            continue;
        }

        owner = slots[i].owner;

        if (owner == (ngx_atomic_uint_t) ngx_pid) {
            return &slots[i];
        }

        if (owner != 0 && ngx_http_dwrtc_status_alive(owner)) {
            continue;
        }

        if (ngx_atomic_cmp_set(&slots[i].owner, owner, ngx_pid)) {
            return &slots[i];
        }
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "dwrtc: no free slot on the status page for this worker "
                  "(%d workers at most, old ones of reloads included)",
                  NGX_HTTP_DWRTC_STATUS_SLOTS);

    return NULL;
}


/* Whether the worker of this pid runs (a killed one leaves its slot). */

static ngx_uint_t
ngx_http_dwrtc_status_alive(ngx_atomic_uint_t pid)
{
    return kill((ngx_pid_t) pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


/*
 * Tells this worker's node where the other running workers of this nginx
 * are (their node ids and link ports, from their slots): the nodes it has
 * links with learn them, and reach a new worker's sessions before its
 * record is found in the DHT, as after a reload or a respawn. Old workers
 * of a reload are not listed: they are on their way out, and their records
 * are in the DHT.
 */

void
ngx_http_dwrtc_status_share_siblings(dwrtc_node *node)
{
    u_char                         ids[DWRTC_MAX_SIBLINGS][33];
    unsigned                       ports[DWRTC_MAX_SIBLINGS], port;
    const char                    *names[DWRTC_MAX_SIBLINGS];
    ngx_uint_t                     i, n, tries, usable;
    ngx_atomic_uint_t              seq;
    ngx_http_dwrtc_status_slot_t  *slot;

    if (ngx_http_dwrtc_status_zone == NULL
        || ngx_http_dwrtc_status_zone->data == NULL)
    {
        return;
    }

    slot = ngx_http_dwrtc_status_zone->data;
    n = 0;

    for (i = 0; i < NGX_HTTP_DWRTC_STATUS_SLOTS && n < DWRTC_MAX_SIBLINGS; i++) {

        if (slot[i].owner == 0
            || slot[i].owner == (ngx_atomic_uint_t) ngx_pid
            || !ngx_http_dwrtc_status_alive(slot[i].owner))
        {
            continue;
        }

        usable = 0;
        port = 0;

        for (tries = 0; tries < 100; tries++) {
            seq = slot[i].seq;
            ngx_memory_barrier();

            usable = slot[i].pid != 0 && !slot[i].exiting
                     && slot[i].state == NGX_HTTP_DWRTC_NODE_RUNNING;
            port = (unsigned) slot[i].link_port;
            ngx_memcpy(ids[n], slot[i].node, sizeof(ids[n]));

            ngx_memory_barrier();

            if ((seq & 1) == 0 && seq == slot[i].seq) {
                break;
            }

            ngx_cpu_pause();
        }

        ids[n][32] = '\0';

        if (tries == 100 || !usable || port == 0 || ngx_strlen(ids[n]) != 32) {
            continue;
        }

        names[n] = (const char *) ids[n];
        ports[n] = port;
        n++;
    }

    if (dwrtc_node_set_siblings(node, names, ports, n) != DWRTC_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "dwrtc: dwrtc_node_set_siblings() failed");
    }
}


/* An exiting worker gives its slot back. */

void
ngx_http_dwrtc_status_release(void)
{
    ngx_http_dwrtc_status_slot_t  *slot;

    slot = ngx_http_dwrtc_status_own;

    if (slot == NULL || slot->owner != (ngx_atomic_uint_t) ngx_pid) {
        return;
    }

    (void) ngx_atomic_fetch_add(&slot->seq, 1);
    ngx_memory_barrier();
    slot->pid = 0;
    ngx_memory_barrier();
    (void) ngx_atomic_fetch_add(&slot->seq, 1);

    (void) ngx_atomic_cmp_set(&slot->owner, ngx_pid, 0);
    ngx_http_dwrtc_status_own = NULL;
}

char *
ngx_http_dwrtc_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_dwrtc_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_dwrtc_status_handler(ngx_http_request_t *r)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_uint_t                     i, n, workers, current, prometheus,
                                   healthy;
    ngx_buf_t                     *b;
    ngx_chain_t                    out;
    ngx_core_conf_t               *ccf;
    ngx_http_dwrtc_status_slot_t  *slots;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);
    workers = (ccf->master && ccf->worker_processes > 0)
              ? (ngx_uint_t) ccf->worker_processes : 1;
    workers = ngx_min(workers, NGX_HTTP_DWRTC_STATUS_SLOTS);

    /* this worker's own figures as of now */
    ngx_http_dwrtc_status_refresh();

    slots = ngx_palloc(r->pool, NGX_HTTP_DWRTC_STATUS_SLOTS
                                * sizeof(ngx_http_dwrtc_status_slot_t));
    if (slots == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = ngx_http_dwrtc_status_read(slots, NGX_HTTP_DWRTC_STATUS_SLOTS);

    /* healthy: the workers of the current configuration all run */

    current = 0;
    healthy = 1;

    for (i = 0; i < n; i++) {
        if (slots[i].exiting) {
            continue;
        }

        current++;

        if (slots[i].state != NGX_HTTP_DWRTC_NODE_RUNNING
            || ngx_time() - slots[i].updated > NGX_HTTP_DWRTC_STATUS_STALE)
        {
            healthy = 0;
        }
    }

    /*
     * More than the configured number for a moment after a reload: the
     * old workers mark themselves exiting when they get the master's
     * signal, a moment after the new ones start.
     */

    if (current < workers) {
        healthy = 0;
    }

    prometheus = ngx_http_dwrtc_status_wants_prometheus(r);

    /* generous: every figure at its longest */
    size = 1536 + n * (prometheus ? 11264 : 3584);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = prometheus ? ngx_http_dwrtc_status_prometheus(b->pos, slots, n)
                         : ngx_http_dwrtc_status_json(b->pos, slots, n);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = healthy ? NGX_HTTP_OK
                                    : NGX_HTTP_SERVICE_UNAVAILABLE;
    r->headers_out.content_length_n = b->last - b->pos;

    if (prometheus) {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* figures of the moment: no cache may keep them */
    r->headers_out.last_modified_time = -1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * Copies the slots of live workers, at most n: those of the current
 * configuration first, then old ones still serving sessions, each by
 * worker number. Returns how many.
 */

static ngx_uint_t
ngx_http_dwrtc_status_read(ngx_http_dwrtc_status_slot_t *out, ngx_uint_t n)
{
    ngx_uint_t                     i, j, tries, seen;
    ngx_atomic_uint_t              seq;
    ngx_http_dwrtc_status_slot_t  *slot, tmp;

    if (ngx_http_dwrtc_status_zone == NULL
        || ngx_http_dwrtc_status_zone->data == NULL)
    {
        return 0;
    }

    slot = ngx_http_dwrtc_status_zone->data;
    seen = 0;

    for (i = 0; i < NGX_HTTP_DWRTC_STATUS_SLOTS && seen < n; i++) {

        if (slot[i].owner == 0
            || !ngx_http_dwrtc_status_alive(slot[i].owner))
        {
            continue;
        }

        for (tries = 0; tries < 100; tries++) {
            seq = slot[i].seq;
            ngx_memory_barrier();
            ngx_memcpy(&out[seen], &slot[i],
                       sizeof(ngx_http_dwrtc_status_slot_t));
            ngx_memory_barrier();

            if ((seq & 1) == 0 && seq == slot[i].seq) {
                break;
            }

            ngx_cpu_pause();
        }

        if (out[seen].pid == 0) {
            continue;   /* claimed, not written yet, or given back */
        }

        /*
         * The Prometheus labels of its series: an old worker's carry
         * exiting="1" beside its number, so they differ from those of the
         * new worker of the same number.
         */

        ngx_snprintf(out[seen].label, sizeof(out[seen].label), "%ui%s%Z",
                     out[seen].worker,
                     out[seen].exiting ? "\",exiting=\"1" : "");

        seen++;
    }

    for (i = 1; i < seen; i++) {
        for (j = i; j > 0; j--) {
            if (out[j - 1].exiting < out[j].exiting
                || (out[j - 1].exiting == out[j].exiting
                    && out[j - 1].worker <= out[j].worker))
            {
                break;
            }

            tmp = out[j - 1];
            out[j - 1] = out[j];
            out[j] = tmp;
        }
    }

    return seen;
}


static ngx_uint_t
ngx_http_dwrtc_status_wants_prometheus(ngx_http_request_t *r)
{
    ngx_str_t         format;
    ngx_table_elt_t  *accept;

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK) {
        return format.len == 10
               && ngx_strncasecmp(format.data, (u_char *) "prometheus", 10)
                  == 0;
    }

#if (NGX_HTTP_HEADERS)
    accept = r->headers_in.accept;
#else
    accept = NULL;
#endif

    if (accept == NULL) {
        return 0;
    }

    return ngx_strlcasestrn(accept->value.data,
                            accept->value.data + accept->value.len,
                            (u_char *) "text/plain", 10 - 1) != NULL
           && ngx_strlcasestrn(accept->value.data,
                               accept->value.data + accept->value.len,
                               (u_char *) "json", 4 - 1) == NULL;
}


static u_char *
ngx_http_dwrtc_status_json(u_char *p, ngx_http_dwrtc_status_slot_t *slots,
    ngx_uint_t n)
{
    ngx_uint_t     i, k;
    dwrtc_stats   *st;

    p = ngx_sprintf(p, "{\"version\":\"%s\",\"nginx\":\"%s\",\"workers\":[",
                    DWRTC_VERSION, NGINX_VERSION);

    for (i = 0; i < n; i++) {
        st = &slots[i].stats;

        p = ngx_sprintf(p, "%s{\"worker\":%ui,\"exiting\":%s,"
                        "\"pid\":%P,\"state\":\"%s\","
                        "\"reason\":\"%s\",\"node\":\"%s\","
                        "\"dht_port\":%ui,\"link_port\":%ui,"
                        "\"uptime\":%T,\"updated_ago\":%T,",
                        i ? "," : "", slots[i].worker,
                        slots[i].exiting ? "true" : "false", slots[i].pid,
                        ngx_http_dwrtc_state_names[slots[i].state],
                        slots[i].reason, slots[i].node,
                        slots[i].dht_port, slots[i].link_port,
                        slots[i].started ? ngx_time() - slots[i].started : 0,
                        slots[i].updated ? ngx_time() - slots[i].updated : 0);

        p = ngx_sprintf(p, "\"network\":{\"state\":\"%s\","
                        "\"dht_outside\":%ud,\"bootstrap_entries\":%ud,"
                        "\"bootstrap_answered\":%ud},\"last_publish_ms\":%uL,",
                        ngx_http_dwrtc_network_name(st), st->dht_outside,
                        st->bootstrap_entries, st->bootstrap_answered,
                        st->last_publish_ms);

        p = ngx_sprintf(p, "\"dht_peers\":{\"good\":%ud,\"dubious\":%ud},"
                        "\"sessions\":%uL,"
                        "\"links\":{\"in\":%uL,\"out\":%uL,"
                        "\"outside\":%uL,\"via_siblings\":%uL},"
                        "\"messages\":{\"from_clients\":%uL,"
                        "\"delivered_locally\":%uL,"
                        "\"sent_over_links\":%uL,"
                        "\"received_over_links\":%uL},"
                        "\"errors\":{\"not_found\":%uL,\"unreachable\":%uL,"
                        "\"invalid\":%uL,\"rate_limited\":%uL,"
                        "\"queue_full\":%uL,\"budget_full\":%uL},"
                        "\"peerjs\":{\"sessions\":%uL,\"messages\":%uL,"
                        "\"ids_reserved\":%uL},",
                        st->dht_good, st->dht_dubious, st->sessions,
                        st->links_in, st->links_out, st->links_outside,
                        st->links_via_siblings,
                        st->from_clients,
                        st->delivered_locally, st->sent_over_links,
                        st->received_over_links, st->not_found,
                        st->unreachable, st->invalid, slots[i].rate_limited,
                        st->queue_full, st->budget_full,
                        slots[i].peerjs_sessions, slots[i].peerjs_messages,
                        st->peerjs_ids_reserved);

        p = ngx_sprintf(p, "\"bounds\":{\"claims_refused\":%uL,"
                        "\"links_refused_for_claims\":%uL,"
                        "\"room_full\":%uL,"
                        "\"room_members_not_followed\":%uL,"
                        "\"claims_ahead\":%uL,\"claim_checks_spent\":%uL,"
                        "\"peerjs_ids_not_reserved\":%uL},",
                        st->claims_refused, st->links_refused_for_claims,
                        st->room_full, st->room_members_not_followed,
                        st->claims_ahead, st->claim_checks_spent,
                        st->peerjs_ids_not_reserved);

        p = ngx_sprintf(p, "\"lookups\":{\"total\":%uL,\"failed\":%uL,"
                        "\"limited\":%uL,"
                        "\"us_total\":%uL,\"latency_ms\":{",
                        st->lookups, st->lookups_failed, st->lookups_limited,
                        st->lookup_us_sum);

        for (k = 0; k < DWRTC_LOOKUP_BUCKETS; k++) {
            if (dwrtc_lookup_bucket_ms(k)) {
                p = ngx_sprintf(p, "%s\"le_%ud\":%uL", k ? "," : "",
                                dwrtc_lookup_bucket_ms(k),
                                st->lookup_buckets[k]);

            } else {
                p = ngx_sprintf(p, ",\"more\":%uL", st->lookup_buckets[k]);
            }
        }

        *p++ = '}'; *p++ = '}'; *p++ = '}';
    }

    p = ngx_sprintf(p, "]}\n");

    return p;
}


/*
 * The Prometheus text format, version 0.0.4. Each worker is a series
 * labelled worker="N"; its pid and node id, which change with every start,
 * are labels of dwrtc_node_info only, so the other series last across
 * reloads.
 */

static u_char *
ngx_http_dwrtc_status_prometheus(u_char *p,
    ngx_http_dwrtc_status_slot_t *slots, ngx_uint_t n)
{
    uint64_t       sum;
    ngx_uint_t     i, k;
    dwrtc_stats   *st;

#define ngx_http_dwrtc_metric_head(name, type, help)                          \
    p = ngx_sprintf(p, "# HELP " name " " help "\n# TYPE " name " " type "\n")

#define ngx_http_dwrtc_metric_each(name, fmt, value)                          \
    for (i = 0; i < n; i++) {                                                 \
        st = &slots[i].stats;                                                 \
        p = ngx_sprintf(p, name "{worker=\"%s\"} " fmt "\n",                  \
                        slots[i].label, value);                               \
    }

    /* a metric with a label of two values, a and b */
#define ngx_http_dwrtc_metric_two(name, lname, a, va, b, vb)                  \
    for (i = 0; i < n; i++) {                                                 \
        st = &slots[i].stats;                                                 \
        p = ngx_sprintf(p, name "{worker=\"%s\"," lname "=\"" a "\"} %uL\n"   \
                        name "{worker=\"%s\"," lname "=\"" b "\"} %uL\n",     \
                        slots[i].label, (uint64_t) (va), slots[i].label,      \
                        (uint64_t) (vb));                                     \
    }

    (void) st;

    ngx_http_dwrtc_metric_head("dwrtc_info", "gauge",
                               "The DWRTC module's version.");
    p = ngx_sprintf(p, "dwrtc_info{version=\"%s\",nginx=\"%s\"} 1\n",
                    DWRTC_VERSION, NGINX_VERSION);

    ngx_http_dwrtc_metric_head("dwrtc_node_info", "gauge",
                               "The node each worker runs, by pid and id.");
    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "dwrtc_node_info{worker=\"%s\",pid=\"%P\","
                        "node=\"%s\",state=\"%s\"} 1\n", slots[i].label,
                        slots[i].pid, slots[i].node,
                        ngx_http_dwrtc_state_names[slots[i].state]);
    }

    ngx_http_dwrtc_metric_head("dwrtc_node_up", "gauge",
                               "1 while the worker's node runs, else 0.");
    ngx_http_dwrtc_metric_each("dwrtc_node_up", "%d",
        slots[i].state == NGX_HTTP_DWRTC_NODE_RUNNING ? 1 : 0);

    ngx_http_dwrtc_metric_head("dwrtc_uptime_seconds", "gauge",
                               "Seconds since the worker started.");
    ngx_http_dwrtc_metric_each("dwrtc_uptime_seconds", "%T",
        slots[i].started ? ngx_time() - slots[i].started : 0);

    ngx_http_dwrtc_metric_head("dwrtc_sessions", "gauge",
                               "Client sessions open.");
    ngx_http_dwrtc_metric_each("dwrtc_sessions", "%uL", st->sessions);

    ngx_http_dwrtc_metric_head("dwrtc_peerjs_sessions", "gauge",
                               "Of the sessions, those of dwrtc_peerjs "
                               "locations.");
    ngx_http_dwrtc_metric_each("dwrtc_peerjs_sessions", "%uL",
                               slots[i].peerjs_sessions);

    ngx_http_dwrtc_metric_head("dwrtc_peerjs_messages_total", "counter",
                               "Messages taken from PeerJS clients to "
                               "relay.");
    ngx_http_dwrtc_metric_each("dwrtc_peerjs_messages_total", "%uL",
                               slots[i].peerjs_messages);

    ngx_http_dwrtc_metric_head("dwrtc_peerjs_ids_reserved", "gauge",
                               "Chosen ids of closed PeerJS sessions "
                               "reserved for their tokens "
                               "(dwrtc_peerjs_id_reserve).");
    ngx_http_dwrtc_metric_each("dwrtc_peerjs_ids_reserved", "%uL",
                               st->peerjs_ids_reserved);

    ngx_http_dwrtc_metric_head("dwrtc_dht_peers", "gauge",
                               "DHT nodes known, by whether they answered "
                               "lately.");
    ngx_http_dwrtc_metric_two("dwrtc_dht_peers", "kind", "good",
                              st->dht_good, "dubious", st->dht_dubious);

    ngx_http_dwrtc_metric_head("dwrtc_network_state", "gauge",
                               "1 for the state the worker's node is in: "
                               "alone (no bootstrap names another node), "
                               "joining (none answers yet), in_network.");
    for (i = 0; i < n; i++) {
        st = &slots[i].stats;
        p = ngx_sprintf(p,
            "dwrtc_network_state{worker=\"%s\",state=\"alone\"} %d\n"
            "dwrtc_network_state{worker=\"%s\",state=\"joining\"} %d\n"
            "dwrtc_network_state{worker=\"%s\",state=\"in_network\"} %d\n",
            slots[i].label, st->network_state == DWRTC_NETWORK_ALONE,
            slots[i].label, st->network_state == DWRTC_NETWORK_JOINING,
            slots[i].label, st->network_state == DWRTC_NETWORK_IN);
    }

    ngx_http_dwrtc_metric_head("dwrtc_dht_outside_peers", "gauge",
                               "DHT nodes outside this nginx that answer.");
    ngx_http_dwrtc_metric_each("dwrtc_dht_outside_peers", "%ud",
                               st->dht_outside);

    ngx_http_dwrtc_metric_head("dwrtc_last_publish_seconds", "gauge",
                               "How long the last put of the node's record "
                               "took until a DHT node stored it; 0 while "
                               "none was stored.");
    for (i = 0; i < n; i++) {
        st = &slots[i].stats;
        p = ngx_sprintf(p, "dwrtc_last_publish_seconds{worker=\"%s\"} "
                        "%uL.%03uL\n", slots[i].label,
                        st->last_publish_ms / 1000, st->last_publish_ms % 1000);
    }

    ngx_http_dwrtc_metric_head("dwrtc_bootstrap_entries", "gauge",
                               "dwrtc_bootstrap entries that name other "
                               "nodes, by whether they answered.");
    ngx_http_dwrtc_metric_two("dwrtc_bootstrap_entries", "kind", "total",
                              st->bootstrap_entries, "answered",
                              st->bootstrap_answered);

    ngx_http_dwrtc_metric_head("dwrtc_links", "gauge",
                               "Links to other nodes open, by who opened "
                               "them.");
    ngx_http_dwrtc_metric_two("dwrtc_links", "direction", "in", st->links_in,
                              "out", st->links_out);

    ngx_http_dwrtc_metric_head("dwrtc_links_outside", "gauge",
                               "Proven links open with nodes outside this "
                               "nginx (not its other workers).");
    ngx_http_dwrtc_metric_each("dwrtc_links_outside", "%uL",
                               st->links_outside);

    ngx_http_dwrtc_metric_head("dwrtc_links_via_siblings_total", "counter",
                               "Links opened where a sibling of the other "
                               "node said it was, before the DHT showed "
                               "its record.");
    ngx_http_dwrtc_metric_each("dwrtc_links_via_siblings_total", "%uL",
                               st->links_via_siblings);

    ngx_http_dwrtc_metric_head("dwrtc_client_messages_total", "counter",
                               "Messages taken from clients.");
    ngx_http_dwrtc_metric_each("dwrtc_client_messages_total", "%uL",
                               st->from_clients);

    ngx_http_dwrtc_metric_head("dwrtc_delivered_total", "counter",
                               "Messages delivered to clients of this "
                               "worker.");
    ngx_http_dwrtc_metric_each("dwrtc_delivered_total", "%uL",
                               st->delivered_locally);

    ngx_http_dwrtc_metric_head("dwrtc_link_messages_total", "counter",
                               "Messages over links to other nodes, by "
                               "direction.");
    ngx_http_dwrtc_metric_two("dwrtc_link_messages_total", "direction",
                              "sent", st->sent_over_links,
                              "received", st->received_over_links);

    ngx_http_dwrtc_metric_head("dwrtc_errors_total", "counter",
                               "Errors told to clients, by error.");
    for (i = 0; i < n; i++) {
        st = &slots[i].stats;
        p = ngx_sprintf(p,
            "dwrtc_errors_total{worker=\"%s\",error=\"not_found\"} %uL\n"
            "dwrtc_errors_total{worker=\"%s\",error=\"unreachable\"} %uL\n"
            "dwrtc_errors_total{worker=\"%s\",error=\"invalid\"} %uL\n"
            "dwrtc_errors_total{worker=\"%s\",error=\"rate_limited\"} %uL\n"
            "dwrtc_errors_total{worker=\"%s\",error=\"queue_full\"} %uL\n",
            slots[i].label, st->not_found, slots[i].label, st->unreachable,
            slots[i].label, st->invalid, slots[i].label, slots[i].rate_limited,
            slots[i].label, st->queue_full);
    }

    ngx_http_dwrtc_metric_head("dwrtc_budget_full_total", "counter",
                               "Of queue_full errors, those told because "
                               "the sender's or the worker's hold budget "
                               "(dwrtc_session_hold, dwrtc_worker_hold) "
                               "was spent.");
    ngx_http_dwrtc_metric_each("dwrtc_budget_full_total", "%uL",
                               st->budget_full);

    ngx_http_dwrtc_metric_head("dwrtc_lookups_limited_total", "counter",
                               "Messages answered \"rate limited\" because "
                               "their sender started more lookups than "
                               "dwrtc_lookup_rate allows.");
    ngx_http_dwrtc_metric_each("dwrtc_lookups_limited_total", "%uL",
                               st->lookups_limited);

    ngx_http_dwrtc_metric_head("dwrtc_bounds_hit_total", "counter",
                               "Times a bound against strangers was hit, "
                               "by bound: claims refused (dwrtc_claims), "
                               "links closed for their claims "
                               "(dwrtc_link_claims), joins answered "
                               "\"room full\" (dwrtc_room_members), members "
                               "of other nodes not followed "
                               "(dwrtc_room_remote_members, "
                               "dwrtc_room_members_per_node, "
                               "dwrtc_room_node_checks), claims dated "
                               "too far ahead (dwrtc_claim_clock_skew), "
                               "lookups with more claims to check than "
                               "dwrtc_lookup_claim_checks.");
    for (i = 0; i < n; i++) {
        st = &slots[i].stats;
        p = ngx_sprintf(p,
            "dwrtc_bounds_hit_total{worker=\"%s\",bound=\"claims_refused\"} %uL\n"
            "dwrtc_bounds_hit_total{worker=\"%s\","
            "bound=\"links_refused_for_claims\"} %uL\n"
            "dwrtc_bounds_hit_total{worker=\"%s\",bound=\"room_full\"} %uL\n"
            "dwrtc_bounds_hit_total{worker=\"%s\","
            "bound=\"room_members_not_followed\"} %uL\n"
            "dwrtc_bounds_hit_total{worker=\"%s\",bound=\"claims_ahead\"} %uL\n"
            "dwrtc_bounds_hit_total{worker=\"%s\","
            "bound=\"claim_checks_spent\"} %uL\n"
            "dwrtc_bounds_hit_total{worker=\"%s\","
            "bound=\"peerjs_ids_not_reserved\"} %uL\n",
            slots[i].label, st->claims_refused,
            slots[i].label, st->links_refused_for_claims,
            slots[i].label, st->room_full,
            slots[i].label, st->room_members_not_followed,
            slots[i].label, st->claims_ahead,
            slots[i].label, st->claim_checks_spent,
            slots[i].label, st->peerjs_ids_not_reserved);
    }

    ngx_http_dwrtc_metric_head("dwrtc_lookup_failures_total", "counter",
                               "DHT lookups of node records that found "
                               "none.");
    ngx_http_dwrtc_metric_each("dwrtc_lookup_failures_total", "%uL",
                               st->lookups_failed);

    ngx_http_dwrtc_metric_head("dwrtc_lookup_duration_seconds", "histogram",
                               "DHT lookups of node records, by how long "
                               "they took.");
    for (i = 0; i < n; i++) {
        st = &slots[i].stats;
        sum = 0;

        for (k = 0; k < DWRTC_LOOKUP_BUCKETS; k++) {
            sum += st->lookup_buckets[k];

            if (dwrtc_lookup_bucket_ms(k)) {
                p = ngx_sprintf(p, "dwrtc_lookup_duration_seconds_bucket"
                                "{worker=\"%s\",le=\"%ud.%03ud\"} %uL\n",
                                slots[i].label, dwrtc_lookup_bucket_ms(k) / 1000,
                                dwrtc_lookup_bucket_ms(k) % 1000, sum);

            } else {
                p = ngx_sprintf(p, "dwrtc_lookup_duration_seconds_bucket"
                                "{worker=\"%s\",le=\"+Inf\"} %uL\n",
                                slots[i].label, sum);
            }
        }

        p = ngx_sprintf(p, "dwrtc_lookup_duration_seconds_sum{worker=\"%s\"}"
                        " %uL.%06uL\n"
                        "dwrtc_lookup_duration_seconds_count{worker=\"%s\"}"
                        " %uL\n", slots[i].label, st->lookup_us_sum / 1000000,
                        st->lookup_us_sum % 1000000, slots[i].label,
                        st->lookups);
    }

#undef ngx_http_dwrtc_metric_head
#undef ngx_http_dwrtc_metric_each
#undef ngx_http_dwrtc_metric_two

    return p;
}
