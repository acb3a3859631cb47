
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * A session: the upgraded connection of a dwrtc_signal location after its
 * handshake (ngx_http_dwrtc_handshake.c), driven by libwslay's event API
 * inside the worker's event loop. Reading, writing, pings, the rate limit,
 * and the messages into dwrtc_submit() and out of the node's deliveries.
 *
 * The session lives in the connection's pool. Until the handshake is done
 * the request is held (r->main->count, as nginx's upgraded proxy
 * connections do) and its read and write event handlers drive the session.
 * At the end of the first turn that finds the 101 response out and the
 * bytes behind the handshake read, the request's access log line is
 * written (ngx_http_dwrtc_session_upgraded()); then, unless something else
 * holds the request (a pool cleanup such as limit_conn's, a subrequest),
 * the request is freed as ngx_http_set_keepalive() frees an idle keepalive
 * connection's: its pool, the header buffers, TLS buffers. From then on
 * the connection's own event handlers drive the session, which ends the
 * connection itself (ngx_http_dwrtc_session_close()).
 *
 * libwslay parses and checks frames (masking, opcodes, fragmentation with
 * control frames in between, UTF-8 of text, message size, close codes) and
 * answers pings; the scanner of ngx_http_dwrtc_frame.c refuses an oversized
 * message from the frame header that declares it, before its payload.
 * libwslay's send callback only appends whole frames to the session's
 * output buffer, which is then written with c->send(); so the buffer always
 * holds complete frames, and a close frame of our own can follow them when
 * libwslay cannot send it (see ngx_http_dwrtc_session_read()).
 *
 * A session at rest holds no libwslay context and no output buffer. The
 * context (two 4 KB buffers) is freed whenever the session rests at a
 * message boundary with nothing queued (ngx_http_dwrtc_ws_release()); a
 * fresh one, which then goes on exactly as the old one would have, is made
 * when the client sends again, a message is delivered or a ping is due
 * (ngx_http_dwrtc_ws_get()). The output buffer is freed once all of it is
 * written. So an idle session with its request released holds only the
 * connection, its pool (with the session in it) and the kernel's socket.
 *
 * A session speaks one of two dialects: DWRTC's own (dwrtc_signal) or
 * PeerJS's (dwrtc_peerjs, docs/peerjs.md). Everything above is the same
 * for both; a PeerJS session differs only where its messages are read and
 * written (dwrtc_peerjs_submit(), dwrtc_peerjs_render()), in what it is
 * sent on open (for an id the client chose, the network's verdict, which
 * comes later as a delivery), and in the PeerJS server's two timers it
 * keeps: the alive timeout and the EXPIREs it is owed (its
 * ngx_http_dwrtc_peerjs_part_t).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <wslay/wslay.h>

#include "ngx_http_dwrtc_module.h"
#include "ngx_http_dwrtc_frame.h"


/* bytes read from one session before other events get their turn */
#define NGX_HTTP_DWRTC_READ_BUDGET   (256 * 1024)

/* output a slow client may leave unread before it is disconnected */
#define NGX_HTTP_DWRTC_OUT_MIN       (4 * 1024 * 1024)

/* liveness tick while dwrtc_ping_interval is off, for worker shutdown */
#define NGX_HTTP_DWRTC_IDLE_TICK     30000

/* EXPIREs a PeerJS session may wait for at once; more go out at once */
#define NGX_HTTP_DWRTC_PEERJS_EXPIRING  32


/*
 * A session's life. It moves only in ngx_http_dwrtc_session_set_state(),
 * which knows the legal moves:
 *
 *   NEW -> REGISTERED -> OPEN -> CLOSE_SENT -> RAW_CLOSE
 *                          \____________________^
 *   REGISTERED, OPEN, CLOSE_SENT, RAW_CLOSE -> LOST
 *   any but DONE -> DONE
 *
 * NEW         allocated; not known to the node.
 * REGISTERED  open in the node and in the worker's table; no 101 yet.
 * OPEN        101 sent; messages go both ways.
 * CLOSE_SENT  libwslay wrote our close frame to the output, and reads on
 *             for the client's; nothing more is delivered.
 * RAW_CLOSE   a close frame of our own (1002 for a malformed header, 1001
 *             going away) went around libwslay, which is done with: nothing
 *             more is read, queued or delivered.
 * LOST        the connection failed (the client's FIN, a read error), or no
 *             libwslay context could be made: the next run ends it.
 * DONE        out of the node and the table; context, output and timer
 *             freed. Only the pooled memory is left, until the connection
 *             closes; no handler acts.
 *
 * Invariants: the session is in the node and the worker's table exactly in
 * REGISTERED, OPEN, CLOSE_SENT, RAW_CLOSE and LOST; its request's handlers
 * and ctx are the session's from OPEN on, and the request is released only
 * in OPEN (then c->data is the session); "closing" is CLOSE_SENT or
 * RAW_CLOSE and nothing else; libwslay's context is freed at rest only in
 * OPEN; wslay_event_send() is followed by the move to CLOSE_SENT when it
 * wrote our close, so libwslay's close_sent and CLOSE_SENT never disagree
 * between two events.
 */

typedef enum {
    NGX_HTTP_DWRTC_NEW = 0,
    NGX_HTTP_DWRTC_REGISTERED,
    NGX_HTTP_DWRTC_OPEN,
    NGX_HTTP_DWRTC_CLOSE_SENT,
    NGX_HTTP_DWRTC_RAW_CLOSE,
    NGX_HTTP_DWRTC_LOST,
    NGX_HTTP_DWRTC_DONE
} ngx_http_dwrtc_state_e;


struct ngx_http_dwrtc_session_s {
    ngx_str_node_t                  sn;        /* first: keyed by the id */
    u_char                          id[DWRTC_SESSION_ID_LEN];

    ngx_connection_t               *connection;
    ngx_http_request_t             *request;   /* NULL once released */
    ngx_http_dwrtc_loc_conf_t      *conf;
    ngx_http_core_loc_conf_t       *clcf;      /* the request's location */
    ngx_str_t                      *server;    /* its server_name, for logs */
    wslay_event_context_ptr         ws;        /* NULL while idle */

    /* output: whole frames waiting for c->send() */
    u_char                         *out;
    u_char                         *out_pos;
    u_char                         *out_last;
    u_char                         *out_end;

    ngx_event_t                     ping;

    /* frame headers as they arrive, to refuse a size before its payload */
    ngx_http_dwrtc_frame_scan_t     scan;
    uint64_t                        frames;    /* libwslay read to the end */

    ngx_uint_t                      tokens;    /* rate bucket, 1/1000 msgs */
    ngx_msec_t                      refilled;
    ngx_msec_t                      rate_error_sent;
    ngx_msec_t                      registered;   /* for the close line */
    size_t                          read_budget;
    time_t                          lingering_time;

    unsigned                        state:3;   /* ngx_http_dwrtc_state_e */
    unsigned                        eof:1;     /* LOST by the client's FIN */
    unsigned                        pong_wait:1;
    unsigned                        active:1;  /* a message since last tick */
    unsigned                        close_logged:1;
    unsigned                        rate_logged:1;
    unsigned                        rate_error:1;
    unsigned                        budget_spent:1;
    unsigned                        submit_logged:1;
    unsigned                        sent:1;    /* flush() wrote something */
    unsigned                        has_user:1;   /* a user session, below */
    unsigned                        keep_request:1;  /* held by others */
    unsigned                        stat_writing:1;  /* as r->stat_writing */

    /* NULL for a DWRTC session: other sessions pay a pointer for PeerJS */
    struct ngx_http_dwrtc_peerjs_part_s  *peerjs;
};


/*
 * Where a PeerJS session stands with its id. It moves only in
 * ngx_http_dwrtc_peerjs_set_phase():
 *
 *   NEW -> HOLDING
 *   NEW -> CLAIMING -> HOLDING -> TOLD
 *   NEW, CLAIMING -> TOLD
 *
 * NEW       not admitted yet.
 * HOLDING   the session speaks for its id, and OPEN is sent (at once for
 *           an id this node gave out).
 * CLAIMING  a chosen id was asked of the network; the client is sent
 *           nothing until the node's verdict, and what it sends is not
 *           relayed, since it speaks for no one yet.
 * TOLD      refused (bad parameters, an id taken or not ours) or let go
 *           (the network gave the id to another session): it was told why
 *           or is closing 1001, and speaks for no one.
 */

typedef enum {
    NGX_HTTP_DWRTC_PEERJS_NEW = 0,
    NGX_HTTP_DWRTC_PEERJS_HOLDING,
    NGX_HTTP_DWRTC_PEERJS_CLAIMING,
    NGX_HTTP_DWRTC_PEERJS_TOLD
} ngx_http_dwrtc_peerjs_phase_e;


/*
 * What a PeerJS session holds besides: its phase; why it is refused, if it
 * is (sent instead of OPEN, then the session closes); the id it chose, for
 * the log; when it was last heard from, for dwrtc_peerjs_alive_timeout;
 * and the EXPIREs it is owed, one per missing id, each sent
 * dwrtc_peerjs_expire_timeout after the id was first found nowhere, as the
 * PeerJS server sends them.
 */

typedef struct ngx_http_dwrtc_peerjs_part_s {
    ngx_str_t                       refusal;
    ngx_str_t                       chosen;    /* empty unless chosen */
    ngx_str_t                       token;     /* takes the id back */
    ngx_msec_t                      heard;
    ngx_event_t                     alive;
    ngx_event_t                     expire;
    ngx_queue_t                     expiring;  /* due order */
    ngx_uint_t                      nexpiring;
    unsigned                        phase:2;  /* ..._peerjs_phase_e */
    unsigned                        drop_logged:1;
    unsigned                        counted:1;  /* in the status page's */
} ngx_http_dwrtc_peerjs_part_t;


typedef struct {
    ngx_queue_t                     queue;
    ngx_msec_t                      due;
    size_t                          len;
    u_char                          text[1];
} ngx_http_dwrtc_expiry_t;


/*
 * A session that dwrtc_session_user gave a value: the user follows the
 * session in the same allocation, so that other sessions pay nothing for
 * it. The value is copied to the connection's pool, as the session is.
 */

typedef struct {
    ngx_http_dwrtc_session_t        session;  /* first */
    ngx_str_t                       user;
} ngx_http_dwrtc_user_session_t;


static void ngx_http_dwrtc_read_handler(ngx_http_request_t *r);
static void ngx_http_dwrtc_write_handler(ngx_http_request_t *r);
static void ngx_http_dwrtc_read_event(ngx_event_t *rev);
static void ngx_http_dwrtc_write_event(ngx_event_t *wev);
static void ngx_http_dwrtc_session_upgraded(ngx_http_dwrtc_session_t *s);
static ngx_uint_t ngx_http_dwrtc_request_held(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_session_release(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_session_close(ngx_http_dwrtc_session_t *s,
    ngx_int_t rc);
static void ngx_http_dwrtc_lingering_close(ngx_connection_t *c);
static void ngx_http_dwrtc_lingering_handler(ngx_event_t *rev);
static u_char *ngx_http_dwrtc_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static ngx_uint_t ngx_http_dwrtc_in_pending(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_ping_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_dwrtc_no_shutdown_timeout(void);
static void ngx_http_dwrtc_session_set_state(ngx_http_dwrtc_session_t *s,
    ngx_uint_t state);
static ngx_uint_t ngx_http_dwrtc_session_closing(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_session_run(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_session_read(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_session_write(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_session_finish(ngx_http_dwrtc_session_t *s,
    ngx_int_t flushed);
static void ngx_http_dwrtc_session_abort(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_flush(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_close(ngx_http_dwrtc_session_t *s,
    uint16_t code, char *reason);
static void ngx_http_dwrtc_post_write(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_session_free(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_session_cleanup(void *data);
static void ngx_http_dwrtc_message(ngx_http_dwrtc_session_t *s,
    const uint8_t *msg, size_t len);
static ngx_int_t ngx_http_dwrtc_rate_check(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_session_queue(ngx_http_dwrtc_session_t *s,
    const char *data, size_t len);
static ngx_int_t ngx_http_dwrtc_peerjs_register(ngx_http_dwrtc_session_t *s,
    ngx_http_request_t *r);
static void ngx_http_dwrtc_peerjs_message(ngx_http_dwrtc_session_t *s,
    const uint8_t *msg, size_t len);
static ngx_int_t ngx_http_dwrtc_peerjs_deliver(ngx_http_dwrtc_session_t *s,
    const char *data, size_t len);
static ngx_int_t ngx_http_dwrtc_peerjs_expire_later(
    ngx_http_dwrtc_session_t *s, u_char *text, size_t len);
static void ngx_http_dwrtc_peerjs_expire_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_peerjs_alive_handler(ngx_event_t *ev);
static void ngx_http_dwrtc_peerjs_free(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_peerjs_take_back(ngx_str_t *id,
    ngx_str_t *token, ngx_log_t *log);
static ngx_int_t ngx_http_dwrtc_peerjs_verdict(ngx_http_dwrtc_session_t *s,
    int what, u_char *text, size_t len);
static void ngx_http_dwrtc_peerjs_set_phase(ngx_http_dwrtc_session_t *s,
    ngx_uint_t phase);
static ngx_int_t ngx_http_dwrtc_out_reserve(ngx_http_dwrtc_session_t *s,
    size_t len);
static size_t ngx_http_dwrtc_out_limit(ngx_http_dwrtc_session_t *s);
static ngx_int_t ngx_http_dwrtc_ws_get(ngx_http_dwrtc_session_t *s);
static void ngx_http_dwrtc_ws_release(ngx_http_dwrtc_session_t *s);
static ngx_uint_t ngx_http_dwrtc_ws_idle(wslay_event_context_ptr ws);

static ssize_t ngx_http_dwrtc_ws_recv(wslay_event_context_ptr ctx,
    uint8_t *buf, size_t len, int flags, void *user_data);
static ssize_t ngx_http_dwrtc_ws_send(wslay_event_context_ptr ctx,
    const uint8_t *data, size_t len, int flags, void *user_data);
static void ngx_http_dwrtc_ws_frame_start(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data);
static void ngx_http_dwrtc_ws_frame_end(wslay_event_context_ptr ctx,
    void *user_data);
static void ngx_http_dwrtc_ws_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user_data);


static struct wslay_event_callbacks  ngx_http_dwrtc_ws_callbacks = {
    ngx_http_dwrtc_ws_recv,
    ngx_http_dwrtc_ws_send,
    NULL,                                  /* genmask: clients mask */
    ngx_http_dwrtc_ws_frame_start,
    NULL,
    ngx_http_dwrtc_ws_frame_end,
    ngx_http_dwrtc_ws_msg
};


/*
 * Makes the session of an upgrade request and registers it with the node:
 * NGX_OK and *sp, or the HTTP status to answer with.
 */

ngx_int_t
ngx_http_dwrtc_session_create(ngx_http_request_t *r,
    ngx_http_dwrtc_loc_conf_t *dlcf, ngx_str_t *user,
    ngx_http_dwrtc_session_t **sp)
{
    ngx_int_t                       rc;
    ngx_connection_t               *c;
    ngx_http_cleanup_t             *cln;
    ngx_http_dwrtc_session_t       *s;
    ngx_http_core_srv_conf_t       *cscf;
    ngx_http_dwrtc_user_session_t  *us;

    /* the session outlives the request: it lives with the connection */

    c = r->connection;

    if (user->len) {
        us = ngx_pcalloc(c->pool, sizeof(ngx_http_dwrtc_user_session_t));
        if (us == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        us->user.data = ngx_pnalloc(c->pool, user->len);
        if (us->user.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        us->user.len = user->len;
        ngx_memcpy(us->user.data, user->data, user->len);

        s = &us->session;
        s->has_user = 1;

    } else {
        s = ngx_pcalloc(c->pool, sizeof(ngx_http_dwrtc_session_t));
        if (s == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    s->connection = c;
    s->request = r;
    s->conf = dlcf;
    s->clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    s->server = &cscf->server_name;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_dwrtc_session_cleanup;
    cln->data = s;

    if (ngx_http_dwrtc_ws_get(s) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_dwrtc_frame_scan_init(&s->scan, dlcf->max_message_size);

    if (dlcf->peerjs) {
        rc = ngx_http_dwrtc_peerjs_register(s, r);

    } else {
        rc = ngx_http_dwrtc_session_register(&s->sn, s->id, c->log);
    }

    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_HTTP_SERVICE_UNAVAILABLE
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_REGISTERED);

    s->registered = ngx_current_msec;

    *sp = s;

    return NGX_OK;
}


/*
 * The 101 response is out: the connection's events are the session's from
 * now on.
 */

void
ngx_http_dwrtc_session_start(ngx_http_dwrtc_session_t *s)
{
    ngx_http_request_t         *r;
    ngx_http_dwrtc_loc_conf_t  *dlcf;

    r = s->request;
    dlcf = s->conf;

    ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_OPEN);

    ngx_http_set_ctx(r, s, ngx_http_dwrtc_module);

    r->read_event_handler = ngx_http_dwrtc_read_handler;
    r->write_event_handler = ngx_http_dwrtc_write_handler;

    s->tokens = dlcf->burst * 1000;
    s->refilled = ngx_current_msec;

    s->ping.handler = ngx_http_dwrtc_ping_handler;
    s->ping.data = s;
    s->ping.log = s->connection->log;

    ngx_add_timer(&s->ping, dlcf->ping_interval ? dlcf->ping_interval
                                                : NGX_HTTP_DWRTC_IDLE_TICK);
}


/*
 * The one place a session changes state. A move that is not in the table
 * is a bug: it is logged as an alert (which fails every test that reads the
 * error log) and made anyway, so that the session still ends.
 */

static void
ngx_http_dwrtc_session_set_state(ngx_http_dwrtc_session_t *s,
    ngx_uint_t state)
{
#define ngx_http_dwrtc_from(st)  (1 << NGX_HTTP_DWRTC_##st)

    /* by new state, the states it may be entered from */

    static ngx_uint_t  legal[] = {
        0,                                              /* NEW */
        ngx_http_dwrtc_from(NEW),                       /* REGISTERED */
        ngx_http_dwrtc_from(REGISTERED),                /* OPEN */
        ngx_http_dwrtc_from(OPEN),                      /* CLOSE_SENT */
        ngx_http_dwrtc_from(OPEN)                       /* RAW_CLOSE */
            | ngx_http_dwrtc_from(CLOSE_SENT),
        ngx_http_dwrtc_from(REGISTERED)                 /* LOST */
            | ngx_http_dwrtc_from(OPEN)
            | ngx_http_dwrtc_from(CLOSE_SENT)
            | ngx_http_dwrtc_from(RAW_CLOSE),
        ngx_http_dwrtc_from(NEW)                        /* DONE */
            | ngx_http_dwrtc_from(REGISTERED)
            | ngx_http_dwrtc_from(OPEN)
            | ngx_http_dwrtc_from(CLOSE_SENT)
            | ngx_http_dwrtc_from(RAW_CLOSE)
            | ngx_http_dwrtc_from(LOST)
    };

#undef ngx_http_dwrtc_from

    static char  *names[] = {
        "new", "registered", "open", "close sent", "raw close", "lost",
        "done"
    };

    if ((legal[state] & (1 << s->state)) == 0) {
        ngx_log_error(NGX_LOG_ALERT, s->connection->log, 0,
                      "dwrtc: session %*s: illegal state move %s -> %s",
                      (size_t) DWRTC_SESSION_ID_LEN, s->id,
                      names[s->state], names[state]);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                   "dwrtc: session %*s: %s -> %s",
                   (size_t) DWRTC_SESSION_ID_LEN, s->id,
                   names[s->state], names[state]);

    s->state = state;
}


/* Our close frame is in the output or out: the session waits to end. */

static ngx_uint_t
ngx_http_dwrtc_session_closing(ngx_http_dwrtc_session_t *s)
{
    return s->state == NGX_HTTP_DWRTC_CLOSE_SENT
           || s->state == NGX_HTTP_DWRTC_RAW_CLOSE;
}


/* The session whose registry node sn is. */

ngx_http_dwrtc_session_t *
ngx_http_dwrtc_session_of(ngx_str_node_t *sn)
{
    return (ngx_http_dwrtc_session_t *)
               ((u_char *) sn - offsetof(ngx_http_dwrtc_session_t, sn));
}


static void
ngx_http_dwrtc_read_handler(ngx_http_request_t *r)
{
    ngx_http_dwrtc_session_t  *s;

    s = ngx_http_get_module_ctx(r, ngx_http_dwrtc_module);

    if (s == NULL || s->state == NGX_HTTP_DWRTC_DONE) {
        return;
    }

    ngx_http_dwrtc_session_run(s);
}


static void
ngx_http_dwrtc_write_handler(ngx_http_request_t *r)
{
    ngx_connection_t          *c;
    ngx_http_dwrtc_session_t  *s;

    c = r->connection;
    s = ngx_http_get_module_ctx(r, ngx_http_dwrtc_module);

    if (s == NULL || s->state == NGX_HTTP_DWRTC_DONE) {
        return;
    }

    if (c->write->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "dwrtc: client timed out reading its messages");
        c->timedout = 1;
        ngx_http_dwrtc_session_free(s);
        ngx_http_dwrtc_session_close(s, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    ngx_http_dwrtc_session_run(s);
}


/*
 * The connection's read and write handlers once the request is released
 * (c->data is the session then), as ngx_http_request_handler() is before.
 */

static void
ngx_http_dwrtc_read_event(ngx_event_t *rev)
{
    ngx_connection_t          *c;
    ngx_http_dwrtc_session_t  *s;

    c = rev->data;
    s = c->data;

    if (c->close) {
        /*
         * worker_shutdown_timeout, as the request's cleanup handler does
         * for a session that still has its request
         */

        ngx_http_dwrtc_session_going_away(s);
        ngx_http_dwrtc_session_free(s);
        ngx_http_dwrtc_session_close(s, NGX_ERROR);
        return;
    }

    if (s->state == NGX_HTTP_DWRTC_DONE) {
        return;
    }

    ngx_http_dwrtc_session_run(s);
}


static void
ngx_http_dwrtc_write_event(ngx_event_t *wev)
{
    ngx_connection_t          *c;
    ngx_http_dwrtc_session_t  *s;

    c = wev->data;
    s = c->data;

    if (s->state == NGX_HTTP_DWRTC_DONE) {
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "dwrtc: client timed out reading its messages");
        c->timedout = 1;
        ngx_http_dwrtc_session_free(s);
        ngx_http_dwrtc_session_close(s, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    ngx_http_dwrtc_session_run(s);
}


/*
 * Reads what the client sent, writes what is queued, and ends the session
 * when its close handshake is done or the connection failed. The session
 * (allocated from the request's pool) may be gone when this returns.
 */

static void
ngx_http_dwrtc_session_run(ngx_http_dwrtc_session_t *s)
{
    size_t                     limit;
    ngx_int_t                  flushed;
    ngx_uint_t                 throttled;
    ngx_connection_t          *c;

    c = s->connection;

    if (s->state == NGX_HTTP_DWRTC_LOST) {
        ngx_http_dwrtc_session_abort(s);
        return;
    }

    /*
     * A client that does not read what it is sent is not read from either
     * (its pings would queue pongs without bound); send_timeout ends it.
     */

    limit = ngx_http_dwrtc_out_limit(s);
    throttled = ((size_t) (s->out_last - s->out_pos) >= limit);

    if (!throttled && ngx_http_dwrtc_session_read(s) != NGX_OK) {
        ngx_http_dwrtc_session_abort(s);
        return;
    }

    flushed = ngx_http_dwrtc_session_write(s);

    if (flushed == NGX_ERROR) {
        ngx_http_dwrtc_session_abort(s);
        return;
    }

    if (ngx_http_dwrtc_session_finish(s, flushed) == NGX_DONE) {
        return;
    }

    if (throttled
        && (size_t) (s->out_last - s->out_pos) < limit
        && (c->read->ready || ngx_http_dwrtc_in_pending(s)))
    {
        /* the client took its data: read what it sent meanwhile */
        ngx_post_event(c->read, &ngx_posted_events);
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_dwrtc_session_abort(s);
        return;
    }

    if (flushed == NGX_AGAIN) {
        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_http_dwrtc_session_abort(s);
            return;
        }

        /* send_timeout is between two writes, as in ngx_http_writer() */

        if (!c->write->timer_set || s->sent) {
            ngx_add_timer(c->write, s->clcf->send_timeout);
        }

    } else if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_http_dwrtc_ws_release(s);

    if (s->request) {
        ngx_http_dwrtc_session_upgraded(s);
    }

    /* the end of a turn: what was read is dealt with (tests wait for it) */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: session %*s: turn done",
                   (size_t) DWRTC_SESSION_ID_LEN, s->id);
}


/*
 * Hands what the client sent to libwslay, up to the read budget: NGX_OK,
 * or NGX_ERROR when the session is lost.
 */

static ngx_int_t
ngx_http_dwrtc_session_read(ngx_http_dwrtc_session_t *s)
{
    int                  rc;
    ngx_connection_t    *c;

    static u_char  protocol_error[] = { 0x88, 0x02, 0x03, 0xea };

    c = s->connection;

    if (s->state == NGX_HTTP_DWRTC_RAW_CLOSE
        || !(c->read->ready || ngx_http_dwrtc_in_pending(s))
        || ngx_http_dwrtc_ws_get(s) != NGX_OK
        || !wslay_event_want_read(s->ws))
    {
        return (s->state == NGX_HTTP_DWRTC_LOST) ? NGX_ERROR : NGX_OK;
    }

    s->read_budget = NGX_HTTP_DWRTC_READ_BUDGET;
    s->budget_spent = 0;

    rc = wslay_event_recv(s->ws);

    if (s->state == NGX_HTTP_DWRTC_LOST) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "dwrtc: session %*s: client closed connection",
                       (size_t) DWRTC_SESSION_ID_LEN, s->id);
        return NGX_ERROR;
    }

    if (rc != 0) {
        /*
         * libwslay stops at a malformed frame header (a control frame that
         * is fragmented or longer than 125 bytes, a length not in its
         * shortest form) with an empty close frame; RFC 6455 asks for 1002.
         * The output holds whole frames only, so ours follows.
         */

        if (ngx_http_dwrtc_out_reserve(s, sizeof(protocol_error)) != NGX_OK) {
            return NGX_ERROR;
        }

        s->out_last = ngx_cpymem(s->out_last, protocol_error,
                                 sizeof(protocol_error));

        ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_RAW_CLOSE);

        if (!s->close_logged) {
            s->close_logged = 1;
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "dwrtc: client sent invalid frame (malformed "
                          "header), closing with 1002");
        }
    }

    if (s->scan.too_big && !s->close_logged) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: client sent invalid frame (message too big, "
                      "%uL bytes declared), closing with 1009",
                      s->scan.msg_len);

        ngx_http_dwrtc_close(s, WSLAY_CODE_MESSAGE_TOO_BIG, NULL);
    }

    if (s->budget_spent) {
        /* more to read: after the other ready events had their turn */
        ngx_post_event(c->read, &ngx_posted_next_events);
    }

    return (s->state == NGX_HTTP_DWRTC_LOST) ? NGX_ERROR : NGX_OK;
}


/*
 * Lets libwslay frame what is queued, and writes the output: NGX_OK when
 * all is out, NGX_AGAIN, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_dwrtc_session_write(ngx_http_dwrtc_session_t *s)
{
    int                rc;
    uint16_t           code;
    ngx_connection_t  *c;

    c = s->connection;

    /* without a context nothing is queued */

    if (s->state != NGX_HTTP_DWRTC_RAW_CLOSE && s->ws) {
        rc = wslay_event_send(s->ws);

        if (rc != 0) {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "dwrtc: wslay_event_send() failed: %d", rc);
            return NGX_ERROR;
        }

        if (s->state == NGX_HTTP_DWRTC_OPEN
            && wslay_event_get_close_sent(s->ws))
        {
            ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_CLOSE_SENT);
        }

        if (s->state == NGX_HTTP_DWRTC_CLOSE_SENT && !s->close_logged) {
            s->close_logged = 1;
            code = wslay_event_get_status_code_sent(s->ws);

            if (wslay_event_get_close_received(s->ws)) {
                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                               "dwrtc: session %*s: client closed",
                               (size_t) DWRTC_SESSION_ID_LEN, s->id);

            } else {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "dwrtc: client sent invalid frame (%s), "
                              "closing with %d",
                              code == WSLAY_CODE_PROTOCOL_ERROR
                                  ? "protocol error" :
                              code == WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA
                                  ? "invalid UTF-8" :
                              code == WSLAY_CODE_MESSAGE_TOO_BIG
                                  ? "message too big" :
                              code == WSLAY_CODE_UNSUPPORTED_DATA
                                  ? "binary data" : "other",
                              (int) code);
            }
        }
    }

    s->sent = 0;

    return ngx_http_dwrtc_flush(s);
}


/*
 * Ends a closing session once its close frame is out: nginx's lingering
 * close then shuts down our side and reads until the client's close and
 * FIN. NGX_DONE when the session is gone, NGX_OK when it lives on.
 */

static ngx_int_t
ngx_http_dwrtc_session_finish(ngx_http_dwrtc_session_t *s, ngx_int_t flushed)
{
    ngx_connection_t  *c;

    if (!ngx_http_dwrtc_session_closing(s)) {
        return NGX_OK;
    }

    c = s->connection;

    if (s->ping.timer_set) {
        ngx_del_timer(&s->ping);
    }

    if (flushed != NGX_OK) {
        return NGX_OK;
    }

    ngx_http_dwrtc_session_free(s);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_http_dwrtc_session_close(s, NGX_DONE);

    return NGX_DONE;
}


/* Ends the session and its request at once, without a close handshake. */

static void
ngx_http_dwrtc_session_abort(ngx_http_dwrtc_session_t *s)
{
    ngx_http_dwrtc_session_free(s);
    ngx_http_dwrtc_session_close(s, s->eof ? NGX_HTTP_CLIENT_CLOSED_REQUEST
                                           : NGX_ERROR);
}


/*
 * The end of a turn of a session that still has its request. Once the 101
 * response is out (nothing buffered in the request's filters or TLS) and
 * every byte the client sent behind its handshake is read, the handshake
 * is done: its access log line is written now, with the request's
 * variables ($status 101, $request_time of the handshake, $bytes_sent up
 * to here, $dwrtc_session_id), since a released request cannot be logged
 * at the end. Then the request is released, unless something else holds
 * it (ngx_http_dwrtc_request_held()): such a session keeps it to the end.
 */

static void
ngx_http_dwrtc_session_upgraded(ngx_http_dwrtc_session_t *s)
{
    ngx_uint_t                  i, n;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_handler_pt        *log_handler;
    ngx_http_core_main_conf_t  *cmcf;

    r = s->request;
    c = s->connection;

    if (s->state != NGX_HTTP_DWRTC_OPEN || s->keep_request
        || c->buffered || r->out || ngx_http_dwrtc_in_pending(s))
    {
        return;
    }

    if (!r->logged) {
        /* as ngx_http_free_request() would, at the end of the session */

        cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

        log_handler = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
        n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;

        c->log->action = "logging request";

        for (i = 0; i < n; i++) {
            log_handler[i](r);
        }

        r->logged = 1;

        c->log->action = "serving dwrtc session";
    }

    if (ngx_http_dwrtc_request_held(s)) {
        s->keep_request = 1;
        return;
    }

    ngx_http_dwrtc_session_release(s);
}


/*
 * Something other than the session holds its request, and would lose it
 * if the request were freed before the session ends: a pool cleanup with
 * a handler (limit_conn counts the session until its request's pool goes),
 * a cleanup handler other than the session's, a subrequest or a posted
 * request, a blocked (AIO, thread) operation.
 */

static ngx_uint_t
ngx_http_dwrtc_request_held(ngx_http_dwrtc_session_t *s)
{
    ngx_pool_cleanup_t  *pcln;
    ngx_http_cleanup_t  *cln;
    ngx_http_request_t  *r;

    r = s->request;

    for (pcln = r->pool->cleanup; pcln; pcln = pcln->next) {
        if (pcln->handler) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                           "dwrtc: session %*s keeps its request: "
                           "pool cleanup",
                           (size_t) DWRTC_SESSION_ID_LEN, s->id);
            return 1;
        }
    }

    for (cln = r->cleanup; cln; cln = cln->next) {
        if (cln->handler
            && !(cln->handler == ngx_http_dwrtc_session_cleanup
                 && cln->data == s))
        {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                           "dwrtc: session %*s keeps its request: cleanup",
                           (size_t) DWRTC_SESSION_ID_LEN, s->id);
            return 1;
        }
    }

    if (r != r->main || r->count != 1 || r->blocked || r->postponed
        || r->posted_requests)
    {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                       "dwrtc: session %*s keeps its request: count:%d "
                       "blk:%d",
                       (size_t) DWRTC_SESSION_ID_LEN, s->id,
                       r->count, r->blocked);
        return 1;
    }

    return 0;
}


/*
 * Frees the request of an OPEN session whose handshake is done, as
 * ngx_http_set_keepalive() frees a request before the connection waits
 * for the next one: the request's pool with everything in it, the
 * connection's header buffer and large header buffers (all read, see
 * ngx_http_dwrtc_session_upgraded()), the TLS buffers. The connection's
 * pool and the session in it stay; the connection's handlers and its
 * error log context become the session's.
 */

static void
ngx_http_dwrtc_session_release(ngx_http_dwrtc_session_t *s)
{
    ngx_buf_t              *b;
    ngx_chain_t            *cl, *ln;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    r = s->request;
    c = s->connection;
    hc = r->http_connection;

    /* the session's cleanup is for a request that ends with the session */

    r->cleanup = NULL;
    s->request = NULL;

#if (NGX_STAT_STUB)
    s->stat_writing = r->stat_writing;
#endif

    ngx_http_free_request(r, 0);

#if (NGX_STAT_STUB)
    /* stub_status counts the session as "writing", as it did its request */

    if (s->stat_writing) {
        (void) ngx_atomic_fetch_add(ngx_stat_writing, 1);
    }
#endif

    /*
     * The log's context becomes the session (in the connection's pool, as
     * the log is): c->data changes once the connection is closed, while
     * the pool's debug lines still use the log.
     */

    c->data = s;
    c->log->data = s;
    c->log->handler = ngx_http_dwrtc_log_error;
    c->log->action = "serving dwrtc session";

    c->read->handler = ngx_http_dwrtc_read_event;
    c->write->handler = ngx_http_dwrtc_write_event;

    b = c->buffer;

    if (b && b->start && ngx_pfree(c->pool, b->start) == NGX_OK) {
        b->start = NULL;
        b->pos = NULL;
        b->last = NULL;
        b->end = NULL;
    }

    for (cl = hc->free; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }

    hc->free = NULL;

    for (cl = hc->busy; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }

    hc->busy = NULL;
    hc->nbusy = 0;

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        ngx_ssl_free_buffer(c);
    }
#endif

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: session %*s: request released",
                   (size_t) DWRTC_SESSION_ID_LEN, s->id);
}


/*
 * Ends the connection of a session that is DONE. While the session has
 * its request, through the request (which is logged then, if the
 * handshake's line was not written yet). Without one, as nginx ends an
 * idle keepalive connection, with the lingering close and
 * reset_timedout_connection of the request's location. rc: NGX_DONE for a
 * lingering close after our close frame, else the status of the request.
 */

static void
ngx_http_dwrtc_session_close(ngx_http_dwrtc_session_t *s, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    struct linger        linger;

    r = s->request;
    c = s->connection;

    if (r) {
        if (rc == NGX_DONE) {
            r->lingering_close = 1;
        }

        ngx_http_finalize_request(r, rc);
        return;
    }

    if (rc == NGX_DONE && s->clcf->lingering_close != NGX_HTTP_LINGERING_OFF)
    {
        ngx_http_dwrtc_lingering_close(c);
        return;
    }

    if (c->timedout && s->clcf->reset_timedout_connection) {
        linger.l_onoff = 1;
        linger.l_linger = 0;

        if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER,
                       (const void *) &linger, sizeof(struct linger)) == -1)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, ngx_socket_errno,
                          "setsockopt(SO_LINGER) failed");
        }
    }

    ngx_http_close_connection(c);
}


/*
 * ngx_http_set_lingering_close() for a connection without a request: our
 * side is shut down, and what the client still sends is read and dropped
 * until its FIN, lingering_timeout between reads or lingering_time in all.
 */

static void
ngx_http_dwrtc_lingering_close(ngx_connection_t *c)
{
    ngx_event_t               *rev, *wev;
    ngx_http_dwrtc_session_t  *s;

    s = c->data;

    if (s->lingering_time == 0) {
        s->lingering_time = ngx_time()
                            + (time_t) (s->clcf->lingering_time / 1000);
    }

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        ngx_int_t  rc;

        c->ssl->shutdown_without_free = 1;

        rc = ngx_ssl_shutdown(c);

        if (rc == NGX_ERROR) {
            ngx_http_close_connection(c);
            return;
        }

        if (rc == NGX_AGAIN) {
            c->ssl->handler = ngx_http_dwrtc_lingering_close;
            return;
        }
    }
#endif

    rev = c->read;
    rev->handler = ngx_http_dwrtc_lingering_handler;

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_close_connection(c);
        return;
    }

    wev = c->write;
    wev->handler = ngx_http_empty_handler;

    if (wev->active && (ngx_event_flags & NGX_USE_LEVEL_EVENT)) {
        if (ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
            ngx_http_close_connection(c);
            return;
        }
    }

    if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
        ngx_connection_error(c, ngx_socket_errno,
                             ngx_shutdown_socket_n " failed");
        ngx_http_close_connection(c);
        return;
    }

    c->close = 0;
    ngx_reusable_connection(c, 1);

    ngx_add_timer(rev, s->clcf->lingering_timeout);

    if (rev->ready) {
        ngx_http_dwrtc_lingering_handler(rev);
    }
}


static void
ngx_http_dwrtc_lingering_handler(ngx_event_t *rev)
{
    ssize_t                    n;
    ngx_msec_t                 timer;
    ngx_connection_t          *c;
    ngx_http_dwrtc_session_t  *s;
    u_char                     buffer[NGX_HTTP_LINGERING_BUFFER_SIZE];

    c = rev->data;
    s = c->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: lingering close handler");

    if (rev->timedout || c->close) {
        ngx_http_close_connection(c);
        return;
    }

    timer = (ngx_msec_t) s->lingering_time - (ngx_msec_t) ngx_time();

    if ((ngx_msec_int_t) timer <= 0) {
        ngx_http_close_connection(c);
        return;
    }

    do {
        n = c->recv(c, buffer, NGX_HTTP_LINGERING_BUFFER_SIZE);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "dwrtc: lingering read: %z", n);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_close_connection(c);
            return;
        }

    } while (rev->ready);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_close_connection(c);
        return;
    }

    timer *= 1000;

    if (timer > s->clcf->lingering_timeout) {
        timer = s->clcf->lingering_timeout;
    }

    ngx_add_timer(rev, timer);
}


/*
 * The error log context of a session without its request: the client,
 * the server and the session, where a request's lines have the request
 * line and the host.
 */

static u_char *
ngx_http_dwrtc_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char                    *p;
    ngx_http_dwrtc_session_t  *s;

    if (log->action) {
        p = ngx_snprintf(buf, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    s = log->data;

    return ngx_snprintf(buf, len, ", client: %V, server: %V, session: %*s",
                        &s->connection->addr_text, s->server,
                        (size_t) DWRTC_SESSION_ID_LEN, s->id);
}


/* Bytes the client sent right behind its handshake, not yet read. */

static ngx_uint_t
ngx_http_dwrtc_in_pending(ngx_http_dwrtc_session_t *s)
{
    ngx_buf_t  *b;

    if (s->request == NULL) {
        return 0;
    }

    b = s->request->header_in;

    return b->pos < b->last;
}


/* Writes the output buffer: NGX_OK when all is out, NGX_AGAIN, NGX_ERROR */

static ngx_int_t
ngx_http_dwrtc_flush(ngx_http_dwrtc_session_t *s)
{
    ssize_t              n;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = s->request;
    c = s->connection;

    /* a released request left nothing buffered */

    if (r && c->buffered) {
        /* the 101 response, or TLS records, not yet out */

        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (c->buffered) {
            return NGX_AGAIN;
        }
    }

    while (s->out_pos < s->out_last) {

        if (!c->write->ready) {
            return NGX_AGAIN;
        }

        n = c->send(c, s->out_pos, s->out_last - s->out_pos);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "dwrtc: sent %z of %uz bytes", n,
                       (size_t) (s->out_last - s->out_pos));

        if (n == NGX_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        s->out_pos += n;
        s->sent = 1;
    }

    /* all out: an idle session keeps no buffer */

    if (s->out) {
        ngx_free(s->out);
        s->out = NULL;
        s->out_pos = NULL;
        s->out_last = NULL;
        s->out_end = NULL;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_dwrtc_out_reserve(ngx_http_dwrtc_session_t *s, size_t len)
{
    u_char  *p;
    size_t   used, size;

    if ((size_t) (s->out_end - s->out_last) >= len) {
        return NGX_OK;
    }

    used = s->out_last - s->out_pos;
    size = s->out_end - s->out;

    if (s->out && size - used >= len && used <= size / 2) {
        ngx_memmove(s->out, s->out_pos, used);
        s->out_pos = s->out;
        s->out_last = s->out + used;
        return NGX_OK;
    }

    size = ngx_max(ngx_max(size * 2, used + len), 4096);

    p = ngx_alloc(size, s->connection->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (used) {
        ngx_memcpy(p, s->out_pos, used);
    }

    if (s->out) {
        ngx_free(s->out);
    }

    s->out = p;
    s->out_pos = p;
    s->out_last = p + used;
    s->out_end = p + size;

    return NGX_OK;
}


/* output a client may leave unread: max(4 MiB, 64 messages) */

static size_t
ngx_http_dwrtc_out_limit(ngx_http_dwrtc_session_t *s)
{
    return ngx_max(NGX_HTTP_DWRTC_OUT_MIN, 64 * s->conf->max_message_size);
}


/*
 * Makes the session's libwslay context if it has none: at the handshake,
 * and after ngx_http_dwrtc_ws_release() when the session has work again.
 */

static ngx_int_t
ngx_http_dwrtc_ws_get(ngx_http_dwrtc_session_t *s)
{
    if (s->ws) {
        return NGX_OK;
    }

    if (s->state == NGX_HTTP_DWRTC_LOST || s->state == NGX_HTTP_DWRTC_DONE) {
        return NGX_ERROR;
    }

    if (wslay_event_context_server_init(&s->ws, &ngx_http_dwrtc_ws_callbacks,
                                        s)
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, s->connection->log, 0,
                      "dwrtc: wslay_event_context_server_init() failed");
        s->ws = NULL;

        if (s->state != NGX_HTTP_DWRTC_NEW) {
            ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_LOST);
        }

        return NGX_ERROR;
    }

    wslay_event_config_set_max_recv_msg_length(s->ws,
                                               s->conf->max_message_size);

    return NGX_OK;
}


/*
 * Frees the libwslay context of a session at rest, when a fresh one would
 * behave the same: the client's bytes so far end at a message boundary (no
 * fragment, frame or header is half read) and libwslay has parsed them all
 * (it saw the end of as many frames as the scanner), the session is OPEN
 * (not closing), and libwslay itself is idle. The output is written too,
 * so our own close frame never has to follow frames of a context that is
 * gone.
 */

static void
ngx_http_dwrtc_ws_release(ngx_http_dwrtc_session_t *s)
{
    if (s->ws == NULL
        || s->state != NGX_HTTP_DWRTC_OPEN
        || s->out_pos != s->out_last
        || !ngx_http_dwrtc_frame_scan_idle(&s->scan)
        || s->frames != s->scan.frames
        || !ngx_http_dwrtc_ws_idle(s->ws))
    {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                   "dwrtc: session %*s at rest, context freed",
                   (size_t) DWRTC_SESSION_ID_LEN, s->id);

    wslay_event_context_free(s->ws);
    s->ws = NULL;
}


/*
 * libwslay holds nothing: no message queued or half sent, no close queued,
 * sent or received, reading and writing on.
 */

static ngx_uint_t
ngx_http_dwrtc_ws_idle(wslay_event_context_ptr ws)
{
    return wslay_event_get_read_enabled(ws)
           && wslay_event_get_write_enabled(ws)
           && !wslay_event_get_close_received(ws)
           && !wslay_event_get_close_sent(ws)
           && wslay_event_get_queued_msg_count(ws) == 0
           && !wslay_event_want_write(ws);
}


ngx_int_t
ngx_http_dwrtc_session_send_text(ngx_http_dwrtc_session_t *s, u_char *data,
    size_t len)
{
    int                     rc;
    struct wslay_event_msg  msg;

    if (ngx_http_dwrtc_ws_get(s) != NGX_OK) {
        return NGX_ERROR;
    }

    msg.opcode = WSLAY_TEXT_FRAME;
    msg.msg = data;
    msg.msg_length = len;

    rc = wslay_event_queue_msg(s->ws, &msg);

    if (rc == WSLAY_ERR_NO_MORE_MSG) {
        /* closing: the message goes nowhere */
        return NGX_OK;
    }

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, s->connection->log, 0,
                      "dwrtc: wslay_event_queue_msg() failed: %d", rc);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_dwrtc_session_deliver(ngx_http_dwrtc_session_t *s, const char *data,
    size_t len)
{
    if (s->state != NGX_HTTP_DWRTC_OPEN
        || (s->ws && !wslay_event_get_write_enabled(s->ws)))
    {
        return NGX_DECLINED;
    }

    if (s->peerjs) {
        return ngx_http_dwrtc_peerjs_deliver(s, data, len);
    }

    return ngx_http_dwrtc_session_queue(s, data, len);
}


/* a message for the client, in its dialect, onto the output */

static ngx_int_t
ngx_http_dwrtc_session_queue(ngx_http_dwrtc_session_t *s, const char *data,
    size_t len)
{
    size_t             pending, limit;
    ngx_connection_t  *c;

    c = s->connection;

    pending = (s->ws ? wslay_event_get_queued_msg_length(s->ws) : 0)
              + (s->out_last - s->out_pos);
    limit = ngx_http_dwrtc_out_limit(s);

    if (pending + len > limit) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: client does not read its messages "
                      "(%uz bytes waiting), closing with 1008", pending);
        ngx_http_dwrtc_close(s, WSLAY_CODE_POLICY_VIOLATION, "too slow");
        ngx_http_dwrtc_post_write(s);
        return NGX_DECLINED;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: session %*s: delivery of %uz bytes",
                   (size_t) DWRTC_SESSION_ID_LEN, s->id, len);

    if (ngx_http_dwrtc_session_send_text(s, (u_char *) data, len) != NGX_OK) {
        ngx_http_dwrtc_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, NULL);
        ngx_http_dwrtc_post_write(s);
        return NGX_DECLINED;
    }

    ngx_http_dwrtc_post_write(s);

    return NGX_OK;
}


/* one write per session for all deliveries of one drain */

static void
ngx_http_dwrtc_post_write(ngx_http_dwrtc_session_t *s)
{
    ngx_connection_t  *c;

    c = s->connection;

    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


static void
ngx_http_dwrtc_close(ngx_http_dwrtc_session_t *s, uint16_t code, char *reason)
{
    if (s->state == NGX_HTTP_DWRTC_RAW_CLOSE
        || ngx_http_dwrtc_ws_get(s) != NGX_OK)
    {
        return;
    }

    s->close_logged = 1;

    (void) wslay_event_queue_close(s->ws, code, (uint8_t *) reason,
                                   reason ? ngx_strlen(reason) : 0);

    wslay_event_shutdown_read(s->ws);
}


static void
ngx_http_dwrtc_ping_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_dwrtc_session_t   *s;
    ngx_http_dwrtc_loc_conf_t  *dlcf;
    struct wslay_event_msg      ping;

    s = ev->data;
    r = s->request;
    c = s->connection;
    dlcf = s->conf;

    if (s->state == NGX_HTTP_DWRTC_DONE) {
        return;
    }

    if (r) {
        ngx_http_set_log_request(c->log, r);
    }

    if (s->pong_wait) {
        /*
         * The client did not answer the last ping within the interval:
         * presumably gone, so no close handshake (it sees 1006).
         */

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: client did not answer ping within %M ms, "
                      "closing connection", dlcf->ping_interval);

        c->timedout = 1;
        ngx_http_dwrtc_session_free(s);
        ngx_http_dwrtc_session_close(s, NGX_HTTP_REQUEST_TIME_OUT);

        if (r) {
            ngx_http_run_posted_requests(c);
        }

        return;
    }

    if (ngx_exiting && !s->active && ngx_http_dwrtc_no_shutdown_timeout()) {
        /*
         * Without worker_shutdown_timeout an old worker would wait for its
         * idle sessions forever: it lets them go, active ones live on.
         */

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: worker is exiting and the session is idle, "
                      "closing with 1001");

        ngx_http_dwrtc_close(s, WSLAY_CODE_GOING_AWAY, "server restarting");
        ngx_http_dwrtc_session_run(s);

        if (r) {
            ngx_http_run_posted_requests(c);
        }

        return;
    }

    s->active = 0;

    if (dlcf->ping_interval) {
        ping.opcode = WSLAY_PING;
        ping.msg = (uint8_t *) "dwrtc";
        ping.msg_length = sizeof("dwrtc") - 1;

        if (ngx_http_dwrtc_ws_get(s) == NGX_OK
            && wslay_event_queue_msg(s->ws, &ping) == 0)
        {
            s->pong_wait = 1;
        }
    }

    ngx_add_timer(&s->ping, dlcf->ping_interval ? dlcf->ping_interval
                                                : NGX_HTTP_DWRTC_IDLE_TICK);

    ngx_http_dwrtc_session_run(s);

    if (r) {
        ngx_http_run_posted_requests(c);
    }
}


static ngx_int_t
ngx_http_dwrtc_no_shutdown_timeout(void)
{
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    return ccf->shutdown_timeout == 0;
}


/* Leaves the core and the worker's table; frees what is not pooled. */

static void
ngx_http_dwrtc_session_free(ngx_http_dwrtc_session_t *s)
{
    if (s->state == NGX_HTTP_DWRTC_DONE) {
        return;
    }

    if (s->state != NGX_HTTP_DWRTC_NEW) {
        ngx_http_dwrtc_session_unregister(&s->sn);

        /*
         * How long it lasted, which its access log line (written at the
         * handshake) cannot say: at info for a session with a user, as its
         * "open" line is.
         */

        if (s->has_user) {
            ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                          "dwrtc: session %*s closed after %M ms, "
                          "%O bytes sent, user \"%V\"",
                          (size_t) DWRTC_SESSION_ID_LEN, s->id,
                          ngx_current_msec - s->registered,
                          s->connection->sent,
                          &((ngx_http_dwrtc_user_session_t *) s)->user);

        } else {
            ngx_log_debug4(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                           "dwrtc: session %*s closed after %M ms, "
                           "%O bytes sent",
                           (size_t) DWRTC_SESSION_ID_LEN, s->id,
                           ngx_current_msec - s->registered,
                           s->connection->sent);
        }
    }

#if (NGX_STAT_STUB)
    if (s->stat_writing) {
        (void) ngx_atomic_fetch_add(ngx_stat_writing, -1);
        s->stat_writing = 0;
    }
#endif

    if (s->ping.timer_set) {
        ngx_del_timer(&s->ping);
    }

    if (s->ping.posted) {
        ngx_delete_posted_event(&s->ping);
    }

    if (s->peerjs) {
        ngx_http_dwrtc_peerjs_free(s);
    }

    if (s->ws) {
        wslay_event_context_free(s->ws);
        s->ws = NULL;
    }

    if (s->out) {
        ngx_free(s->out);
        s->out = NULL;
        s->out_pos = NULL;
        s->out_last = NULL;
        s->out_end = NULL;
    }

    ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_DONE);
}


static void
ngx_http_dwrtc_session_cleanup(void *data)
{
    ngx_http_dwrtc_session_t *s = data;

    /*
     * The request ends without our close frame: worker_shutdown_timeout
     * or another forced close.
     */

    ngx_http_dwrtc_session_going_away(s);
    ngx_http_dwrtc_session_free(s);
}


/* The id of the request's session, or NULL. */

u_char *
ngx_http_dwrtc_session_id(ngx_http_request_t *r)
{
    ngx_http_dwrtc_session_t  *s;

    s = ngx_http_get_module_ctx(r->main, ngx_http_dwrtc_module);

    return s ? s->id : NULL;
}


/* The dwrtc_session_user value of the request's session, or NULL. */

ngx_str_t *
ngx_http_dwrtc_session_user(ngx_http_request_t *r)
{
    ngx_http_dwrtc_session_t  *s;

    s = ngx_http_get_module_ctx(r->main, ngx_http_dwrtc_module);

    if (s == NULL || !s->has_user) {
        return NULL;
    }

    return &((ngx_http_dwrtc_user_session_t *) s)->user;
}


/*
 * Says 1001 to a client that can still hear it, without waiting. Not
 * c->error: worker_shutdown_timeout sets it on every connection it ends.
 */

void
ngx_http_dwrtc_session_going_away(ngx_http_dwrtc_session_t *s)
{
    ssize_t            n;
    ngx_connection_t  *c;

    static u_char  going_away[] = { 0x88, 0x02, 0x03, 0xe9 };

    c = s->connection;

    if (s->state != NGX_HTTP_DWRTC_OPEN || c->fd == (ngx_socket_t) -1
        || s->out_pos != s->out_last || c->buffered || !c->write->ready)
    {
        return;
    }

    n = c->send(c, going_away, sizeof(going_away));

    if (n == sizeof(going_away)) {
        ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_RAW_CLOSE);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: going away frame sent: %z", n);
}


static void
ngx_http_dwrtc_message(ngx_http_dwrtc_session_t *s, const uint8_t *msg,
    size_t len)
{
    int                 rc;
    size_t              n;
    u_char              error[96];
    dwrtc_node         *node;
    ngx_connection_t   *c;

    c = s->connection;
    s->active = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "dwrtc: session %*s: message of %uz bytes",
                   (size_t) DWRTC_SESSION_ID_LEN, s->id, len);

    if (ngx_http_dwrtc_rate_check(s) != NGX_OK) {

        ngx_http_dwrtc_rate_limited++;

        if (!s->rate_logged) {
            s->rate_logged = 1;
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "dwrtc: client exceeds dwrtc_rate, "
                          "dropping messages");
        }

        /* the PeerJS server has no such message: its clients are not told */

        if (s->peerjs == NULL
            && (!s->rate_error
                || ngx_current_msec - s->rate_error_sent >= 1000))
        {
            s->rate_error = 1;
            s->rate_error_sent = ngx_current_msec;

            n = dwrtc_format_error("rate limited",
                                   sizeof("rate limited") - 1,
                                   (char *) error,
                                   sizeof(error));

            if (n && n <= sizeof(error)) {
                (void) ngx_http_dwrtc_session_send_text(s, error, n);
            }
        }

        return;
    }

    if (s->peerjs) {
        ngx_http_dwrtc_peerjs_message(s, msg, len);
        return;
    }

    node = ngx_http_dwrtc_node();

    rc = node ? dwrtc_submit(node, (char *) s->id,
                             DWRTC_SESSION_ID_LEN, (char *) msg, len)
              : DWRTC_ESTATE;

    if (rc == DWRTC_OK) {
        return;
    }

    if (rc == DWRTC_ELIMIT) {
        /*
         * its claims were refused dwrtc_claims times in a row: each costs a
         * signature check, so a client that keeps trying is closed
         */
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: client's claims were refused too often "
                      "(dwrtc_claims), closing with 1008");
        ngx_http_dwrtc_close(s, WSLAY_CODE_POLICY_VIOLATION,
                             "claims refused");
        return;
    }

    if (!s->submit_logged) {
        s->submit_logged = 1;
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "dwrtc: dwrtc_submit() failed: %s", dwrtc_strerror(rc));
    }

    /* the node did not take the message (it is stopping): say so */

    n = dwrtc_format_error("not sent: node unavailable",
                           sizeof("not sent: node unavailable") - 1,
                           (char *) error, sizeof(error));

    if (n && n <= sizeof(error)) {
        (void) ngx_http_dwrtc_session_send_text(s, error, n);
    }
}


/* token bucket: dwrtc_rate messages per second, up to burst at once */

static ngx_int_t
ngx_http_dwrtc_rate_check(ngx_http_dwrtc_session_t *s)
{
    uint64_t                    add;
    ngx_uint_t                  cap;
    ngx_msec_t                  elapsed;
    ngx_http_dwrtc_loc_conf_t  *dlcf;

    dlcf = s->conf;

    if (dlcf->rate == 0) {
        return NGX_OK;
    }

    cap = dlcf->burst * 1000;
    elapsed = ngx_current_msec - s->refilled;

    if (elapsed) {
        s->refilled = ngx_current_msec;

        /* rate is in messages per 1000 s: per ms, in 1/1000 messages */

        add = (elapsed > 86400000) ? cap
                                   : (uint64_t) elapsed * dlcf->rate / 1000;

        s->tokens = (s->tokens + add > cap) ? cap : s->tokens + add;
    }

    if (s->tokens < 1000) {
        return NGX_DECLINED;
    }

    s->tokens -= 1000;

    return NGX_OK;
}


static ssize_t
ngx_http_dwrtc_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    int flags, void *user_data)
{
    ngx_http_dwrtc_session_t *s = user_data;

    ssize_t              n;
    ngx_buf_t           *b;
    ngx_connection_t    *c;

    c = s->connection;
    b = s->request ? s->request->header_in : NULL;

    if (s->scan.too_big) {
        /* nothing more until the 1009 close is queued */
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    /* frames the client sent right behind its handshake */

    if (b && b->pos < b->last) {
        n = ngx_min((size_t) (b->last - b->pos), len);
        ngx_memcpy(buf, b->pos, n);
        b->pos += n;

    } else {
        if (s->read_budget == 0) {
            s->budget_spent = 1;
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }

        n = c->recv(c, buf, ngx_min(len, s->read_budget));

        if (n == NGX_AGAIN) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }

        if (n == 0) {
            s->eof = 1;
            ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_LOST);
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }

        if (n == NGX_ERROR) {
            ngx_http_dwrtc_session_set_state(s, NGX_HTTP_DWRTC_LOST);
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }

        s->read_budget -= n;
    }

    /* after a header declaring too big a message, the rest is not read */

    n = ngx_http_dwrtc_frame_scan(&s->scan, buf, n);

    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    return n;
}


static ssize_t
ngx_http_dwrtc_ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
    size_t len, int flags, void *user_data)
{
    ngx_http_dwrtc_session_t *s = user_data;

    if (ngx_http_dwrtc_out_reserve(s, len) != NGX_OK) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }

    s->out_last = ngx_cpymem(s->out_last, data, len);

    return len;
}


static void
ngx_http_dwrtc_ws_frame_start(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data)
{
    ngx_http_dwrtc_session_t *s = user_data;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                   "dwrtc: frame opcode:%ud fin:%ud rsv:%ud len:%uL",
                   (unsigned) arg->opcode, (unsigned) arg->fin,
                   (unsigned) arg->rsv, arg->payload_length);

    if (arg->opcode == WSLAY_BINARY_FRAME) {
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "dwrtc: client sent invalid frame (binary data), "
                      "closing with 1003");

        ngx_http_dwrtc_close(s, WSLAY_CODE_UNSUPPORTED_DATA,
                             "binary messages are not supported");
    }
}


static void
ngx_http_dwrtc_ws_frame_end(wslay_event_context_ptr ctx, void *user_data)
{
    ngx_http_dwrtc_session_t *s = user_data;

    s->frames++;
}


static void
ngx_http_dwrtc_ws_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    ngx_http_dwrtc_session_t *s = user_data;

    switch (arg->opcode) {

    case WSLAY_TEXT_FRAME:
        ngx_http_dwrtc_message(s, arg->msg, arg->msg_length);
        break;

    case WSLAY_PONG:
        s->pong_wait = 0;
        break;

    case WSLAY_CONNECTION_CLOSE:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                       "dwrtc: client close frame, status %ud",
                       (unsigned) arg->status_code);
        break;

    default:
        /* pings are answered by libwslay; binary closed at frame start */
        break;
    }
}



/*
 * The PeerJS dialect's part of a session (docs/peerjs.md). An id this node
 * gave out is the id the session opens under (ngx_http_dwrtc_peerjs_admit()
 * reads it); a chosen id is the network's to grant, so the session opens
 * under an id of its own and claims it (CLAIMING). A session refused (bad
 * parameters, an id taken or not ours) opens under an id of its own only
 * to be told why and closed, as the PeerJS server accepts the WebSocket,
 * sends ERROR or ID-TAKEN and closes.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_register(ngx_http_dwrtc_session_t *s,
    ngx_http_request_t *r)
{
    size_t                         n;
    u_char                         buf[256];
    ngx_int_t                      rc;
    ngx_str_t                      id, token;
    ngx_connection_t              *c;
    ngx_http_dwrtc_peerjs_part_t  *p;

    c = s->connection;

    p = ngx_pcalloc(c->pool, sizeof(ngx_http_dwrtc_peerjs_part_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&p->expiring);
    s->peerjs = p;

    rc = ngx_http_dwrtc_peerjs_admit(r, s->conf, &id, &token, &p->refusal);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        p->token.data = ngx_pnalloc(c->pool, token.len);
        if (p->token.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p->token.data, token.data, token.len);
        p->token.len = token.len;

        rc = ngx_http_dwrtc_session_register_as(&s->sn, s->id, &id, c->log);

        if (rc == NGX_BUSY
            && ngx_http_dwrtc_peerjs_take_back(&id, &token, c->log) == NGX_OK)
        {
            rc = ngx_http_dwrtc_session_register_as(&s->sn, s->id, &id,
                                                    c->log);
        }

        if (rc == NGX_OK) {
            ngx_http_dwrtc_peerjs_set_phase(s, NGX_HTTP_DWRTC_PEERJS_HOLDING);
            return NGX_OK;
        }

        if (rc == NGX_ABORT) {
            /* for the log; the session's is in the connection's pool */

            p->chosen.data = ngx_pnalloc(c->pool, id.len);
            if (p->chosen.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(p->chosen.data, id.data, id.len);
            p->chosen.len = id.len;

            rc = ngx_http_dwrtc_session_register_chosen(&s->sn, s->id, &id,
                                                        &token, c->log);

            if (rc == NGX_OK) {
                ngx_http_dwrtc_peerjs_set_phase(s,
                                               NGX_HTTP_DWRTC_PEERJS_CLAIMING);
                return NGX_OK;
            }
        }

        if (rc == NGX_ERROR) {
            return rc;
        }

        if (rc == NGX_BUSY) {
            /* the PeerJS server's answer to an id held by another token */

            n = dwrtc_peerjs_format_id_taken((char *) buf, sizeof(buf));

            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "dwrtc: peerjs id \"%V\" is taken", &id);

        } else {
            /*
             * Neither ours nor one a client may choose: another node's id
             * (only that node may open it), one of ours in other letters,
             * or not a PeerJS id.
             */

            n = dwrtc_peerjs_format_error(NGX_HTTP_DWRTC_PEERJS_NOT_OURS,
                                 sizeof(NGX_HTTP_DWRTC_PEERJS_NOT_OURS) - 1,
                                 (char *) buf, sizeof(buf));

            if (ngx_http_dwrtc_peerjs_printable(&id)) {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "dwrtc: peerjs id \"%V\" was not given out by "
                              "this node and may not be chosen: refused",
                              &id);

            } else {
                /* decoded from the query: never written to the log as is */
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "dwrtc: peerjs id of %uz bytes that is not a "
                              "PeerJS id refused", id.len);
            }
        }

        if (n == 0 || n > sizeof(buf)) {
            return NGX_ERROR;
        }

        p->refusal.data = ngx_pnalloc(c->pool, n);
        if (p->refusal.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p->refusal.data, buf, n);
        p->refusal.len = n;
    }

    /* refused: a session of its own, to say why and close */

    ngx_http_dwrtc_peerjs_set_phase(s, NGX_HTTP_DWRTC_PEERJS_TOLD);

    return ngx_http_dwrtc_session_register(&s->sn, s->id, c->log);
}


/*
 * OPEN, or why not and the close, or for a chosen id nothing until the
 * network's verdict; then the alive timeout runs
 */

ngx_int_t
ngx_http_dwrtc_session_peerjs_welcome(ngx_http_dwrtc_session_t *s)
{
    size_t                         n;
    u_char                         open[32];
    ngx_http_dwrtc_peerjs_part_t  *p;

    p = s->peerjs;

    p->heard = ngx_current_msec;

    p->alive.handler = ngx_http_dwrtc_peerjs_alive_handler;
    p->alive.data = s;
    p->alive.log = s->connection->log;
    p->alive.cancelable = 1;

    p->expire.handler = ngx_http_dwrtc_peerjs_expire_handler;
    p->expire.data = s;
    p->expire.log = s->connection->log;
    p->expire.cancelable = 1;

    if (p->phase == NGX_HTTP_DWRTC_PEERJS_CLAIMING) {
        /*
         * The node answers within its claim wait (5 s), well inside the
         * alive timeout; a client gone meanwhile is closed by it as any.
         */

        ngx_add_timer(&p->alive, s->conf->peerjs_alive_timeout);
        return NGX_OK;
    }

    if (p->phase == NGX_HTTP_DWRTC_PEERJS_TOLD) {
        if (ngx_http_dwrtc_session_send_text(s, p->refusal.data,
                                             p->refusal.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /*
         * libwslay sends a close frame before messages still queued: the
         * close waits until the refusal is out (the alive handler).
         */

        ngx_add_timer(&p->alive, 1);
        return NGX_OK;
    }

    n = dwrtc_peerjs_format_open((char *) open, sizeof(open));

    if (n == 0 || n > sizeof(open)
        || ngx_http_dwrtc_session_send_text(s, open, n) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_add_timer(&p->alive, s->conf->peerjs_alive_timeout);

    p->counted = 1;
    ngx_http_dwrtc_peerjs_sessions++;

    return NGX_OK;
}


static void
ngx_http_dwrtc_peerjs_message(ngx_http_dwrtc_session_t *s,
    const uint8_t *msg, size_t len)
{
    int                            rc;
    dwrtc_node                    *node;
    const char                    *why;
    ngx_connection_t              *c;
    ngx_http_dwrtc_peerjs_part_t  *p;

    c = s->connection;
    p = s->peerjs;

    if (p->phase == NGX_HTTP_DWRTC_PEERJS_TOLD) {
        /* refused, and closing: it speaks for no one */
        return;
    }

    /* any message shows the client alive, HEARTBEAT only says so */

    p->heard = ngx_current_msec;

    if (p->phase == NGX_HTTP_DWRTC_PEERJS_CLAIMING) {
        /* no id yet to speak for; the peerjs client waits for OPEN too */

        if (!p->drop_logged) {
            p->drop_logged = 1;
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "dwrtc: peerjs message dropped: sent before OPEN");
        }

        return;
    }

    node = ngx_http_dwrtc_node();
    why = NULL;

    rc = node ? dwrtc_peerjs_submit(node, (char *) s->id,
                                    DWRTC_SESSION_ID_LEN, (char *) msg, len,
                                    &why)
              : DWRTC_ESTATE;

    if (rc == DWRTC_PEERJS_TAKEN) {
        ngx_http_dwrtc_peerjs_messages++;
        return;
    }

    if (rc == DWRTC_PEERJS_HEARTBEAT) {
        return;
    }

    if (rc == DWRTC_PEERJS_DROPPED) {
        /* where the PeerJS server drops a message silently, so do we */

        if (!p->drop_logged) {
            p->drop_logged = 1;
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "dwrtc: peerjs message dropped: %s",
                          why ? why : "unreadable");
        }

        return;
    }

    if (!s->submit_logged) {
        s->submit_logged = 1;
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "dwrtc: dwrtc_peerjs_submit() failed: %s",
                      dwrtc_strerror(rc));
    }
}


static ngx_int_t
ngx_http_dwrtc_peerjs_deliver(ngx_http_dwrtc_session_t *s, const char *data,
    size_t len)
{
    int        what;
    size_t     n;
    u_char    *text, buf[1024];
    ngx_str_t  self;
    ngx_int_t  rc;

    if (s->peerjs->phase == NGX_HTTP_DWRTC_PEERJS_TOLD) {
        /* closing: the core tells a sender it is gone */
        return NGX_DECLINED;
    }

    /* the client knows itself by the id it chose, if it chose one */

    self = s->peerjs->chosen;

    if (self.len == 0) {
        self.data = s->id;
        self.len = DWRTC_SESSION_ID_LEN;
    }

    n = dwrtc_peerjs_render((char *) self.data, self.len, data, len,
                            (char *) buf, sizeof(buf), &what);

    if (what == DWRTC_PEERJS_CLOSE_AWAY) {
        /* a close, with no text to send */
        return ngx_http_dwrtc_peerjs_verdict(s, what, buf, 0);
    }

    if (n == 0 || what == DWRTC_PEERJS_NOTHING) {
        /* taken, and not shown: a PeerJS client has no such message */
        return NGX_OK;
    }

    text = buf;

    if (n > sizeof(buf)) {
        text = ngx_alloc(n, s->connection->log);
        if (text == NULL) {
            return NGX_DECLINED;
        }

        if (dwrtc_peerjs_render((char *) self.data, self.len, data,
                                len, (char *) text, n, &what)
            != n)
        {
            ngx_free(text);
            return NGX_DECLINED;
        }
    }

    if (what == DWRTC_PEERJS_SEND_CLOSE
        || s->peerjs->phase == NGX_HTTP_DWRTC_PEERJS_CLAIMING)
    {
        rc = ngx_http_dwrtc_peerjs_verdict(s, what, text, n);

    } else if (what == DWRTC_PEERJS_EXPIRE_LATER) {
        rc = ngx_http_dwrtc_peerjs_expire_later(s, text, n);

    } else {
        rc = ngx_http_dwrtc_session_queue(s, (char *) text, n);
    }

    if (text != buf) {
        ngx_free(text);
    }

    return rc;
}


/*
 * An id the session's message went to is found nowhere: the EXPIRE that
 * says so goes out after the expire timeout, once for all the messages to
 * that id in the meantime, as the PeerJS server sends it.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_expire_later(ngx_http_dwrtc_session_t *s, u_char *text,
    size_t len)
{
    ngx_queue_t                   *q;
    ngx_http_dwrtc_expiry_t       *e;
    ngx_http_dwrtc_peerjs_part_t  *p;

    p = s->peerjs;

    for (q = ngx_queue_head(&p->expiring);
         q != ngx_queue_sentinel(&p->expiring);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_dwrtc_expiry_t, queue);

        if (e->len == len && ngx_memcmp(e->text, text, len) == 0) {
            return NGX_OK;
        }
    }

    if (p->nexpiring >= NGX_HTTP_DWRTC_PEERJS_EXPIRING) {
        /* told early rather than not at all */
        return ngx_http_dwrtc_session_queue(s, (char *) text, len);
    }

    e = ngx_alloc(offsetof(ngx_http_dwrtc_expiry_t, text) + len,
                  s->connection->log);
    if (e == NULL) {
        return ngx_http_dwrtc_session_queue(s, (char *) text, len);
    }

    e->due = ngx_current_msec + s->conf->peerjs_expire_timeout;
    e->len = len;
    ngx_memcpy(e->text, text, len);

    /* one timeout for all: the tail is the latest */

    ngx_queue_insert_tail(&p->expiring, &e->queue);
    p->nexpiring++;

    if (!p->expire.timer_set) {
        ngx_add_timer(&p->expire, s->conf->peerjs_expire_timeout);
    }

    return NGX_OK;
}


static void
ngx_http_dwrtc_peerjs_expire_handler(ngx_event_t *ev)
{
    ngx_queue_t                   *q;
    ngx_http_dwrtc_session_t      *s;
    ngx_http_dwrtc_expiry_t       *e;
    ngx_http_dwrtc_peerjs_part_t  *p;

    s = ev->data;
    p = s->peerjs;

    while (!ngx_queue_empty(&p->expiring)) {
        q = ngx_queue_head(&p->expiring);
        e = ngx_queue_data(q, ngx_http_dwrtc_expiry_t, queue);

        if ((ngx_msec_int_t) (e->due - ngx_current_msec) > 0) {
            ngx_add_timer(&p->expire, e->due - ngx_current_msec);
            break;
        }

        ngx_queue_remove(q);
        p->nexpiring--;

        if (s->state == NGX_HTTP_DWRTC_OPEN) {
            (void) ngx_http_dwrtc_session_queue(s, (char *) e->text, e->len);
        }

        ngx_free(e);
    }
}


static void
ngx_http_dwrtc_peerjs_alive_handler(ngx_event_t *ev)
{
    ngx_msec_t                     silent, timeout;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_dwrtc_session_t      *s;
    ngx_http_dwrtc_peerjs_part_t  *p;

    s = ev->data;
    p = s->peerjs;
    c = s->connection;
    r = s->request;   /* the run below may free the session */
    timeout = s->conf->peerjs_alive_timeout;

    if (s->state != NGX_HTTP_DWRTC_OPEN) {
        return;
    }

    if (r) {
        ngx_http_set_log_request(c->log, r);
    }

    if (p->phase == NGX_HTTP_DWRTC_PEERJS_TOLD) {
        /* told why: closes once that has left libwslay's queue */

        if (s->ws && wslay_event_get_queued_msg_count(s->ws)) {
            ngx_add_timer(&p->alive, 10);
            return;
        }

        ngx_http_dwrtc_close(s, WSLAY_CODE_NORMAL_CLOSURE, NULL);

    } else {
        silent = ngx_current_msec - p->heard;

        if (silent < timeout) {
            ngx_add_timer(&p->alive, timeout - silent);
            return;
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: peerjs client silent for %M ms "
                      "(dwrtc_peerjs_alive_timeout), closing", silent);

        ngx_http_dwrtc_close(s, WSLAY_CODE_NORMAL_CLOSURE, "alive timeout");
    }

    ngx_http_dwrtc_session_run(s);

    if (r) {
        ngx_http_run_posted_requests(c);
    }
}


/*
 * The same id with the same token (the client's reconnect(), a reload that
 * kept its token): the new WebSocket takes the id back, as the PeerJS
 * server lets it. The older session, most often a connection whose client
 * is gone without a word, is ended here (told 1001 if it can still hear),
 * so that the id is free at once. NGX_OK when it was; NGX_DECLINED when
 * the holder is not a PeerJS session of that token, open.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_take_back(ngx_str_t *id, ngx_str_t *token,
    ngx_log_t *log)
{
    ngx_str_node_t                *sn;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_dwrtc_session_t      *old;
    ngx_http_dwrtc_peerjs_part_t  *p;

    sn = ngx_http_dwrtc_session_lookup(id->data, id->len);
    if (sn == NULL) {
        return NGX_DECLINED;
    }

    old = ngx_http_dwrtc_session_of(sn);
    p = old->peerjs;

    if (p == NULL || p->phase != NGX_HTTP_DWRTC_PEERJS_HOLDING
        || old->state != NGX_HTTP_DWRTC_OPEN
        || p->token.len != token->len
        || ngx_memcmp(p->token.data, token->data, token->len) != 0)
    {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "dwrtc: peerjs id \"%V\" taken back with its token, "
                  "its older session is closed", id);

    c = old->connection;
    r = old->request;

    ngx_http_dwrtc_session_going_away(old);
    ngx_http_dwrtc_session_free(old);
    ngx_http_dwrtc_session_close(old, NGX_HTTP_CLOSE);

    if (r) {
        ngx_http_run_posted_requests(c);
    }

    return NGX_OK;
}


/*
 * The network's word on a chosen id (dhtcore's claims, docs/peerjs.md):
 * OPEN, and the session holds it; ID-TAKEN or an ERROR, sent before the
 * session closes (1000), at once or later when the id went to an earlier
 * claim; or a close (1001) when a newer session of the same token holds
 * it, here or on another node. Nothing else is shown while it claims.
 */

static ngx_int_t
ngx_http_dwrtc_peerjs_verdict(ngx_http_dwrtc_session_t *s, int what,
    u_char *text, size_t len)
{
    size_t                         n;
    u_char                         open[32];
    ngx_connection_t              *c;
    ngx_http_dwrtc_peerjs_part_t  *p;

    c = s->connection;
    p = s->peerjs;

    switch (what) {

    case DWRTC_PEERJS_SEND:
        n = dwrtc_peerjs_format_open((char *) open, sizeof(open));

        if (n != len || ngx_memcmp(open, text, n) != 0) {
            /* not the verdict: nothing is shown before it */
            return NGX_DECLINED;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "dwrtc: peerjs chosen id \"%V\" open", &p->chosen);

        ngx_http_dwrtc_peerjs_set_phase(s, NGX_HTTP_DWRTC_PEERJS_HOLDING);

        p->counted = 1;
        ngx_http_dwrtc_peerjs_sessions++;

        return ngx_http_dwrtc_session_queue(s, (char *) text, len);

    case DWRTC_PEERJS_SEND_CLOSE:
        /* our own text: {"type":"ID-TAKEN",...} or {"type":"ERROR",...} */

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: peerjs chosen id \"%V\" not held: %*s, "
                      "closing", &p->chosen, len, text);

        ngx_http_dwrtc_peerjs_set_phase(s, NGX_HTTP_DWRTC_PEERJS_TOLD);

        if (ngx_http_dwrtc_session_queue(s, (char *) text, len) != NGX_OK) {
            return NGX_OK;
        }

        /* the close waits until the text is out (the alive handler) */

        ngx_add_timer(&p->alive, 1);

        return NGX_OK;

    case DWRTC_PEERJS_CLOSE_AWAY:
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "dwrtc: peerjs chosen id \"%V\" taken back by a "
                      "newer session of its token, closing", &p->chosen);

        ngx_http_dwrtc_peerjs_set_phase(s, NGX_HTTP_DWRTC_PEERJS_TOLD);

        ngx_http_dwrtc_close(s, WSLAY_CODE_GOING_AWAY, NULL);
        ngx_http_dwrtc_post_write(s);

        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}


/*
 * The one place a PeerJS session's phase changes; a move that is not in
 * the table is a bug, logged as an alert as the session's own are.
 */

static void
ngx_http_dwrtc_peerjs_set_phase(ngx_http_dwrtc_session_t *s,
    ngx_uint_t phase)
{
#define ngx_http_dwrtc_from(ph)  (1 << NGX_HTTP_DWRTC_PEERJS_##ph)

    /* by new phase, the phases it may be entered from */

    static ngx_uint_t  legal[] = {
        0,                                              /* NEW */
        ngx_http_dwrtc_from(NEW)                        /* HOLDING */
            | ngx_http_dwrtc_from(CLAIMING),
        ngx_http_dwrtc_from(NEW),                       /* CLAIMING */
        ngx_http_dwrtc_from(NEW)                        /* TOLD */
            | ngx_http_dwrtc_from(CLAIMING)
            | ngx_http_dwrtc_from(HOLDING)
    };

#undef ngx_http_dwrtc_from

    ngx_http_dwrtc_peerjs_part_t  *p;

    p = s->peerjs;

    if ((legal[phase] & (1 << p->phase)) == 0) {
        ngx_log_error(NGX_LOG_ALERT, s->connection->log, 0,
                      "dwrtc: session %*s: illegal peerjs phase move "
                      "%ui -> %ui", (size_t) DWRTC_SESSION_ID_LEN, s->id,
                      (ngx_uint_t) p->phase, phase);
    }

    p->phase = phase;
}


static void
ngx_http_dwrtc_peerjs_free(ngx_http_dwrtc_session_t *s)
{
    ngx_queue_t                   *q;
    ngx_http_dwrtc_peerjs_part_t  *p;

    p = s->peerjs;

    if (p->counted) {
        p->counted = 0;
        ngx_http_dwrtc_peerjs_sessions--;
    }

    if (p->alive.timer_set) {
        ngx_del_timer(&p->alive);
    }

    if (p->expire.timer_set) {
        ngx_del_timer(&p->expire);
    }

    while (!ngx_queue_empty(&p->expiring)) {
        q = ngx_queue_head(&p->expiring);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_dwrtc_expiry_t, queue));
    }

    p->nexpiring = 0;
}


/*
 * The id a PeerJS session of the location dlcf answers to, for
 * dwrtc_peerjs_discovery: the one it chose or was given, once it holds it.
 * NGX_DECLINED for a DWRTC session, another location's, or one that holds
 * no id (waiting for the network's verdict, or refused).
 */

ngx_int_t
ngx_http_dwrtc_session_peerjs_id(ngx_http_dwrtc_session_t *s,
    ngx_http_dwrtc_loc_conf_t *dlcf, ngx_str_t *id)
{
    if (s->peerjs == NULL
        || s->conf != dlcf
        || s->peerjs->phase != NGX_HTTP_DWRTC_PEERJS_HOLDING)
    {
        return NGX_DECLINED;
    }

    if (s->peerjs->chosen.len) {
        *id = s->peerjs->chosen;

    } else {
        id->data = s->id;
        id->len = DWRTC_SESSION_ID_LEN;
    }

    return NGX_OK;
}
