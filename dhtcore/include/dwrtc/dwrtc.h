/*
 * dwrtc.h: the C interface of dhtcore, the DWRTC signaling node.
 *
 * This is the whole surface the nginx module sees of the core. It is plain
 * C so that the module never sees a C++ type.
 *
 * Conventions
 *
 *   - Objects are opaque handles. Whatever dwrtc_X_create() makes,
 *     dwrtc_X_destroy() frees. Destroy functions accept NULL.
 *
 *   - Byte strings are passed as (const char *data, size_t len); they need
 *     not be NUL-terminated, and the core copies what it keeps before the
 *     call returns. They map onto nginx's ngx_str_t.
 *
 *   - Functions that can fail return an int status: DWRTC_OK (0) or one of
 *     the negative DWRTC_E* codes below. dwrtc_strerror() names a code.
 *
 *   - No function lets an exception or a signal escape: every entry point
 *     catches everything and returns DWRTC_ERROR (or logs the reason as a log
 *     record, see dwrtc_node_drain()).
 *
 *   - Threads: a dwrtc_node may be used from one caller thread at a time
 *     (the nginx worker's event loop). Nothing here blocks the caller except
 *     dwrtc_node_stop() and dwrtc_node_destroy(), which join the core's
 *     threads. The core runs its own threads between start and stop (with
 *     a link driver, see the end of this file, the links and the routing
 *     run on the caller thread instead; the DHT keeps its threads).
 *
 *   - Session ids are DWRTC_SESSION_ID_LEN (49) ASCII characters: the
 *     node's id (32 hex digits), a dash, 16 random hex digits. Clients treat
 *     them as opaque strings. They are not NUL-terminated unless a function
 *     says so. A session may claim a key-owned id ('k' and 48 hex digits,
 *     as long) by a message to the node; the host keeps knowing it by the
 *     id it opened, and the core translates.
 *
 *   - Data handed to drain callbacks is valid only for the duration of the
 *     callback; copy what you keep.
 */

#ifndef DWRTC_DWRTC_H
#define DWRTC_DWRTC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's version: the one place it is written (CMake reads it). */
#define DWRTC_VERSION "0.1.0"

#define DWRTC_SESSION_ID_LEN 49

/* Status codes. */
#define DWRTC_OK 0
#define DWRTC_ERROR (-1)     /* unexpected failure, details were logged */
#define DWRTC_EINVAL (-2)    /* an argument is out of range or malformed */
#define DWRTC_ENOTFOUND (-3) /* no such session */
#define DWRTC_ELIMIT (-4)    /* a configured limit was reached */
#define DWRTC_ESTATE (-5)    /* wrong state: not started, or stopped */
#define DWRTC_EBIND (-6)     /* no free port in a configured range */
#define DWRTC_ENOMEM (-7)    /* out of memory */

/*
 * Defaults, in one place: the core's options start from these, and the
 * nginx module's directives default to them.
 */
#define DWRTC_DEFAULT_DHT_PORT_FROM 4222
#define DWRTC_DEFAULT_DHT_PORT_TO 4229
#define DWRTC_DEFAULT_LINK_PORT_FROM 4230
#define DWRTC_DEFAULT_LINK_PORT_TO 4237
#define DWRTC_DEFAULT_BIND_ADDRESS "0.0.0.0"
#define DWRTC_DEFAULT_PUBLIC_ADDRESS "127.0.0.1"
#define DWRTC_DEFAULT_MAX_MESSAGE_SIZE 65536
#define DWRTC_DEFAULT_QUEUE_LIMIT 1024
#define DWRTC_DEFAULT_LINK_IDLE_SECONDS 60
#define DWRTC_DEFAULT_LINK_HANDSHAKE_MS 5000
#define DWRTC_DEFAULT_LINK_MAX_UNPROVEN 64
#define DWRTC_DEFAULT_LINK_RETRY_MS 500
#define DWRTC_DEFAULT_LINK_ACK_TIMEOUT_MS 3000
#define DWRTC_DEFAULT_LOOKUP_WAIT_MS 5000
#define DWRTC_DEFAULT_HOLD_MESSAGES 64
#define DWRTC_DEFAULT_HOLD_MS 30000
/* A closed PeerJS session's chosen id stays reserved for its token this
 * long (as long as the PeerJS alive timeout: a client that lost its
 * connection without a word is given up after that long too); a claim of a
 * chosen id waits this long for the DHT's answer. */
#define DWRTC_DEFAULT_PEERJS_ID_RESERVE_MS 60000
#define DWRTC_DEFAULT_PEERJS_ID_WAIT_MS 5000
#define DWRTC_DEFAULT_PEERJS_ID_RESERVATIONS 1000
#define DWRTC_DEFAULT_SESSION_HOLD_MESSAGES 256
#define DWRTC_DEFAULT_SESSION_HOLD_BYTES (1024 * 1024)
#define DWRTC_DEFAULT_NODE_HOLD_BYTES (64 * 1024 * 1024)
#define DWRTC_DEFAULT_DHT_MAX_SEARCHES 2048
#define DWRTC_DEFAULT_LOOKUP_RATE 10
#define DWRTC_DEFAULT_LOOKUP_BURST 64
#define DWRTC_DEFAULT_ROOM_MEMBERS 64
#define DWRTC_DEFAULT_ROOMS_PER_SESSION 8
#define DWRTC_DEFAULT_ROOM_REMOTE_MEMBERS 64
#define DWRTC_DEFAULT_ROOM_MEMBERS_PER_NODE 8
#define DWRTC_DEFAULT_ROOM_NODE_CHECKS 1024
#define DWRTC_DEFAULT_CLAIM_CLOCK_SKEW_MS 30000
#define DWRTC_DEFAULT_LINK_OWNED_SENDERS 4096
#define DWRTC_DEFAULT_LINK_CLAIM_CHECKS 500
#define DWRTC_DEFAULT_CLAIMS_PER_MINUTE 6
#define DWRTC_DEFAULT_CLAIM_REFUSALS 3
#define DWRTC_DEFAULT_LOOKUP_CLAIM_CHECKS 32

/* Log levels of the records the core hands out through drain(). */
#define DWRTC_LOG_ERROR 0
#define DWRTC_LOG_WARN 1
#define DWRTC_LOG_INFO 2
#define DWRTC_LOG_DEBUG 3

typedef struct dwrtc_options dwrtc_options;
typedef struct dwrtc_node dwrtc_node;

/* Returns a static, NUL-terminated description of a status code. */
const char *dwrtc_strerror(int status);

/*
 * Options. Defaults: the DWRTC_DEFAULT_* values above, no bootstrap nodes
 * (a network of its own), the open network (no network key), OpenDHT's
 * default rate limits, log level INFO.
 */
dwrtc_options *dwrtc_options_create(void);
void dwrtc_options_destroy(dwrtc_options *opt);

/* Port ranges, inclusive; each node takes the first free port. 0-0 lets
 * the system choose one (tests). */
int dwrtc_options_set_dht_ports(dwrtc_options *opt, unsigned from,
                                unsigned to);
int dwrtc_options_set_link_ports(dwrtc_options *opt, unsigned from,
                                 unsigned to);

/* Local address the DHT socket and the link listener bind to ("127.0.0.1",
 * "0.0.0.0"). */
int dwrtc_options_set_bind_address(dwrtc_options *opt, const char *addr,
                                   size_t len);

/* Adds a DHT node to join through, "host:port" or "[v6]:port". */
int dwrtc_options_add_bootstrap(dwrtc_options *opt, const char *hostport,
                                size_t len);

/* Host name or address other nodes use to open links to this node. */
int dwrtc_options_set_public_address(dwrtc_options *opt, const char *host,
                                     size_t len);

/* Largest client message accepted by dwrtc_submit(), in bytes. */
int dwrtc_options_set_max_message_size(dwrtc_options *opt, size_t bytes);

/* Messages held per recipient while its node is looked up or connected. */
int dwrtc_options_set_queue_limit(dwrtc_options *opt, size_t messages);

/* OpenDHT request limits: per peer IP and in total, requests per second;
 * 0 keeps OpenDHT's default, -1 means no limit. Tests on loopback put every
 * node on one IP, so they raise the per-IP limit. */
int dwrtc_options_set_dht_rate_limits(dwrtc_options *opt, long per_ip,
                                      long total);

/* DHT searches the node's OpenDHT keeps at once. Each lookup is one, kept
 * after it ends until its place is needed; past the cap a lookup fails at
 * once while every search kept is still running, announcing or listening.
 * At least 64. */
int dwrtc_options_set_dht_max_searches(dwrtc_options *opt, size_t searches);

/*
 * Makes the node a member of a private network: only nodes that hold the
 * same secret (at least 16 bytes, from a file the operator keeps) can find
 * its record in the DHT or open a link to it, and it accepts links from no
 * other node. Without it the node is on the open network.
 */
int dwrtc_options_set_network_key(dwrtc_options *opt, const char *secret,
                                  size_t len);

/* Milliseconds a node-to-node link may take from accept to a proven hello
 * before it is closed. */
int dwrtc_options_set_link_handshake_timeout(dwrtc_options *opt,
                                             unsigned ms);

/* Inbound node-to-node links that have not proven their node yet, at most
 * at once; more are refused at accept. */
int dwrtc_options_set_link_max_unproven(dwrtc_options *opt, unsigned links);

/* Milliseconds a node that could not be reached (or whose record could not
 * be found) is remembered so: messages for it are answered "unreachable"
 * (or "not found") at once, and the first message after that tries it
 * again. Bounds both the cost of a dead node and the time to heal. */
int dwrtc_options_set_link_retry_delay(dwrtc_options *opt, unsigned ms);

/* Milliseconds a node whose record is not in the DHT is looked for while
 * its messages wait (a node that has just started, after a reload or a
 * respawn, may welcome sessions a moment before its record can be found).
 * They are delivered as soon as the record appears; when the time is up
 * their senders hear "unreachable". A node that withdrew its record (it
 * stopped) is "not found" at once. At least 1. */
int dwrtc_options_set_lookup_wait(dwrtc_options *opt, unsigned ms);

/* Milliseconds messages on a link may wait for their acknowledgement
 * before the link is taken as broken: it is closed and the senders of what
 * it held are told "unreachable". */
int dwrtc_options_set_link_ack_timeout(dwrtc_options *opt, unsigned ms);

/* Messages for a key-owned id whose session is away (closed, or its node
 * gone) are held on the sender's node, at most `messages` per id and `ms`
 * milliseconds each, and delivered in order when the id is claimed again;
 * when the time runs out the sender hears "not back in time". 0 messages:
 * "not found" at once. */
int dwrtc_options_set_hold(dwrtc_options *opt, size_t messages, unsigned ms);

/* Milliseconds a closed PeerJS session's chosen id stays reserved for its
 * token (0: it is free when the session closes), and milliseconds a claim
 * of a chosen id waits for the DHT's answer before the client is told the
 * network could not be asked (at least 1). docs/peerjs.md. */
int dwrtc_options_set_peerjs_id_reserve(dwrtc_options *opt, unsigned ms);
int dwrtc_options_set_peerjs_id_wait(dwrtc_options *opt, unsigned ms);
/* Closed sessions' chosen ids reserved at most at once (0 to 1000000);
 * past it a closed session's id is let go at once. */
int dwrtc_options_set_peerjs_id_reservations(dwrtc_options *opt, unsigned n);

/* What all the messages a node holds for its senders (waiting for a lookup
 * or a connect, held for an away key-owned id) may cost: at most
 * `session_messages` and `session_bytes` per sending session, and
 * `worker_bytes` for the node. Each message costs its type and body and a
 * fixed overhead of 256 bytes. Past either, the sender hears "queue full"
 * naming the recipient. All at least 1; worker_bytes at least
 * session_bytes. */
int dwrtc_options_set_hold_budget(dwrtc_options *opt, size_t session_messages,
                                  size_t session_bytes, size_t worker_bytes);

/* Lookups a session may make the node start, of nodes and key-owned ids it
 * knows nothing of yet: `per_second` on average, `burst` at once. A
 * message past them gets "rate limited" naming the recipient. per_second
 * 0: no limit; else burst at least 1. */
int dwrtc_options_set_lookup_rate(dwrtc_options *opt, unsigned per_second,
                                  unsigned burst);

/* Rooms (docs/dhtcore.md, "Rooms"): a room holds at most `members`
 * members of this node (a join beyond gets "room full"; members of other
 * nodes never count), and a session is in at most `per_session` rooms at
 * once ("too many rooms"). Both at least 1. */
int dwrtc_options_set_room_limits(dwrtc_options *opt, size_t members,
                                  size_t per_session);

/* What other nodes can make this one follow of a room: at most `remote`
 * members of other nodes per room, at most `per_node` of them signed by
 * any one node, and member values are believed only from nodes whose
 * record is in the DHT, checked once per node; `node_checks` such checks
 * are remembered at once. All at least 1. */
int dwrtc_options_set_room_bounds(dwrtc_options *opt, size_t remote,
                                  size_t per_node, size_t node_checks);

/* Milliseconds a key-owned id's claim may be dated ahead of this node's
 * clock and still be believed, wherever a claim is read (a session's claim,
 * a link's sender, a takeover, a room member, a DHT lookup). A claim from
 * further ahead would outrank its owner's later claims. At least 1. */
int dwrtc_options_set_claim_clock_skew(dwrtc_options *opt, unsigned ms);

/* A proven peer speaks for a key-owned id on a link with the id's claim,
 * whose signature this node checks once per link and claim (about 15 times
 * the cost of routing a message). At most `senders` key-owned ids per link,
 * and at most `checks_per_second` claim signatures checked per link (a
 * second's worth at once); a peer that goes beyond has its link closed.
 * Both at least 1. */
int dwrtc_options_set_link_claim_bounds(dwrtc_options *opt, size_t senders,
                                        unsigned checks_per_second);

/* A session's claims (each costs a signature check, about 15 messages'
 * worth) have a bucket of their own: `per_minute` claims, refilled at that
 * rate; a claim beyond is refused without a check. After `refusals` claims
 * refused in a row, dwrtc_submit() answers DWRTC_ELIMIT: the host closes
 * the session. A claim of the id the session already owns changes nothing
 * (no DHT write, no lookup). Both at least 1. */
int dwrtc_options_set_claim_limits(dwrtc_options *opt, unsigned per_minute,
                                   unsigned refusals);

/* A lookup of a key-owned id reads every value under the id's key, which
 * anyone can store: at most `checks` claim signatures are checked per
 * lookup, and a value judged once is not checked again for a while (a
 * refuted one not even parsed). At least 1. */
int dwrtc_options_set_lookup_claim_checks(dwrtc_options *opt, unsigned checks);

/* Seconds an unused node-to-node link stays open. */
int dwrtc_options_set_link_idle_timeout(dwrtc_options *opt, unsigned seconds);

/* Records above this level are not produced at all. */
int dwrtc_options_set_log_level(dwrtc_options *opt, int level);

/* Where a running node stands in the DHT (dwrtc_node_status()). */
#define DWRTC_NODE_ALONE 0      /* no other DHT node answers it (yet) */
#define DWRTC_NODE_JOINING 1    /* it has DHT peers; its record is not stored */
#define DWRTC_NODE_PUBLISHED 2  /* its record is stored: others can reach it */

/* Whether a node is in the network (dwrtc_stats.network_state). The DHT
 * nodes of this nginx's other workers (ports of its own DHT range on this
 * host) do not count: they are the same server. */
#define DWRTC_NETWORK_ALONE 0    /* no outside DHT node, and no bootstrap
                                    entry names one: a network's first node */
#define DWRTC_NETWORK_JOINING 1  /* bootstrap entries name other nodes, none
                                    answers yet: tried again every few s */
#define DWRTC_NETWORK_IN 2       /* some DHT node outside this nginx answers */

/* Lookup latency buckets of dwrtc_stats: bucket i holds lookups of at most
 * dwrtc_lookup_bucket_ms(i) milliseconds (and more than bucket i-1's); the
 * last, for which it returns 0, holds the rest. */
#define DWRTC_LOOKUP_BUCKETS 10
unsigned dwrtc_lookup_bucket_ms(size_t i);

/* What a node counted since it started (counters) and holds now (the rest). */
typedef struct {
    uint64_t sessions;             /* open now */
    uint64_t links_in;             /* node links open now, accepted */
    uint64_t links_out;            /* node links open now, opened by us */
    uint64_t from_clients;         /* client messages taken */
    uint64_t delivered_locally;    /* messages delivered to sessions here */
    uint64_t sent_over_links;      /* messages written to node links */
    uint64_t received_over_links;  /* messages read from node links */
    uint64_t not_found;            /* "not found" told to senders here */
    uint64_t unreachable;          /* "unreachable" told to senders here */
    uint64_t invalid;              /* client messages refused as invalid */
    uint64_t queue_full;           /* "queue full" told to senders here */
    uint64_t lookups;              /* DHT lookups of node records */
    uint64_t lookups_failed;       /* of those, no record found */
    uint64_t lookup_us_sum;        /* their total time, microseconds */
    uint64_t lookup_buckets[DWRTC_LOOKUP_BUCKETS];
    unsigned dht_good;             /* DHT nodes known, answering lately */
    unsigned dht_dubious;          /* DHT nodes known, not heard lately */
    int network_state;             /* DWRTC_NETWORK_ALONE, _JOINING or _IN */
    unsigned dht_outside;          /* DHT nodes outside this nginx answering */
    unsigned bootstrap_entries;    /* bootstrap entries naming other nodes */
    unsigned bootstrap_answered;   /* of those, answered */
    uint64_t last_publish_ms;      /* the last put of the node's record until
                                      it was stored, from its first try; 0
                                      while none was stored */
    uint64_t links_via_siblings;   /* links opened where a sibling of the
                                      node said it was (see
                                      dwrtc_node_set_siblings()) */
    uint64_t links_outside;        /* proven links open now with nodes that
                                      are not siblings (other nginx servers);
                                      counted once a second */
    uint64_t budget_full;          /* of queue_full, told because the
                                      sender's or the node's hold budget
                                      (dwrtc_options_set_hold_budget()) was
                                      spent */
    uint64_t lookups_limited;      /* messages answered "rate limited"
                                      because their sender started too many
                                      lookups (dwrtc_options_set_lookup_rate()) */
    uint64_t claims_refused;       /* claims of sessions here refused */
    uint64_t links_refused_for_claims;  /* links closed: their peer needed
                                      more key-owned senders or claim checks
                                      than dwrtc_options_set_link_claim_bounds()
                                      allows */
    uint64_t room_full;            /* joins answered "room full" */
    uint64_t room_members_not_followed;  /* member values of other nodes
                                      not followed: past the room bounds
                                      (dwrtc_options_set_room_bounds()) */
    uint64_t claims_ahead;         /* claims dated further ahead than the
                                      clock skew allows, not believed */
    uint64_t claim_checks_spent;   /* lookups of key-owned ids that had more
                                      claims to check than
                                      dwrtc_options_set_lookup_claim_checks()
                                      allows */
    uint64_t peerjs_ids_reserved;  /* closed PeerJS sessions' chosen ids
                                      reserved for their tokens now */
    uint64_t peerjs_ids_not_reserved;  /* chosen ids let go at once: as
                                      many were reserved as
                                      dwrtc_options_set_peerjs_id_reservations()
                                      allows */
} dwrtc_stats;

/* Fills *out. Call from the owner thread; DWRTC_ESTATE if not running. */
int dwrtc_node_stats(const dwrtc_node *node, dwrtc_stats *out);

/* Node lifecycle. create() only allocates and checks the options; start()
 * binds the ports, joins the DHT and starts the core's threads; stop()
 * withdraws the node's DHT record, closes every link and joins the threads.
 * stop() is idempotent; destroy() stops first if needed. */
int dwrtc_node_create(const dwrtc_options *opt, dwrtc_node **out);
int dwrtc_node_start(dwrtc_node *node);
void dwrtc_node_stop(dwrtc_node *node);
void dwrtc_node_destroy(dwrtc_node *node);

/* Ports actually bound after start() (0 before). */
unsigned dwrtc_node_dht_port(const dwrtc_node *node);
unsigned dwrtc_node_link_port(const dwrtc_node *node);

/* The node's id (32 lowercase hex characters, the first 32 of every session
 * id on this node), NUL-terminated; valid while the node lives. */
const char *dwrtc_node_id(const dwrtc_node *node);

/* An eventfd, valid from create() to destroy(), that becomes readable when
 * deliveries or log records are waiting. Register it for reading and call
 * dwrtc_node_drain() when it fires. Never read or close it yourself. */
int dwrtc_node_event_fd(const dwrtc_node *node);

/* DWRTC_NODE_ALONE, _JOINING or _PUBLISHED. A host can hold new sessions
 * back until the node is published, so that every session it welcomes can
 * be reached from other nodes at once. Call from the owner thread. */
int dwrtc_node_status(const dwrtc_node *node);

/* Opens a session on this node and writes its new id (DWRTC_SESSION_ID_LEN
 * characters, not NUL-terminated) into id. */
int dwrtc_session_open(dwrtc_node *node, char id[DWRTC_SESSION_ID_LEN]);

/*
 * The PeerJS dialect (docs/peerjs.md): a PeerJS session is a session of the
 * node like any other; these calls read and write its wire format.
 */

/* A fresh PeerJS id (a PeerJS client's GET {path}{key}/id): a random
 * UUID, DWRTC_PEERJS_NEW_ID_LEN characters into id. It names no node: the
 * session that opens it claims it as a chosen id (dwrtc_peerjs_open_chosen()),
 * on any worker of any node. */
#define DWRTC_PEERJS_NEW_ID_LEN 36
int dwrtc_peerjs_new_id(char id[DWRTC_PEERJS_NEW_ID_LEN]);

/* Opens a session under a session id of this node, exactly as written:
 * DWRTC_OK, DWRTC_EINVAL when the id is not one this node assigns (a
 * chosen PeerJS id, another node's id), DWRTC_EEXIST when a session holds
 * it. */
#define DWRTC_EEXIST (-8)     /* the id is held by an open session */
int dwrtc_session_open_as(dwrtc_node *node, const char *id, size_t id_len);

/* Opens a session for a PeerJS client that chose its id (one this node
 * does not give out; docs/peerjs.md, "Chosen ids across the network") with
 * its token: the session's own id, DWRTC_SESSION_ID_LEN characters, goes
 * into session, and the session is open at once. Whether it holds the id
 * comes later as a delivery to it, which dwrtc_peerjs_render() shows as
 * OPEN (DWRTC_PEERJS_SEND), ID-TAKEN or an ERROR (DWRTC_PEERJS_SEND_CLOSE),
 * or a close (DWRTC_PEERJS_CLOSE_AWAY); until then send the client
 * nothing. DWRTC_EINVAL for an id that is not a chosen one. */
int dwrtc_peerjs_open_chosen(dwrtc_node *node, const char *id, size_t id_len,
                             const char *token, size_t token_len,
                             char session[DWRTC_SESSION_ID_LEN]);

/* What dwrtc_peerjs_submit() made of a PeerJS client's text. */
#define DWRTC_PEERJS_TAKEN      0  /* routed, or answered to the sender */
#define DWRTC_PEERJS_HEARTBEAT  1  /* the client is alive; nothing else */
#define DWRTC_PEERJS_DROPPED    2  /* dropped, as the PeerJS server drops
                                      it: *why says what it was (NUL-
                                      terminated, valid until the next call
                                      on this thread) */

/* Submits a PeerJS client's text from a session: returns one of the
 * DWRTC_PEERJS_* verdicts, or a negative status as dwrtc_submit(). */
int dwrtc_peerjs_submit(dwrtc_node *node, const char *id, size_t id_len,
                        const char *msg, size_t len, const char **why);

/* What a PeerJS session is shown of a message the node has for it. */
#define DWRTC_PEERJS_SEND          0  /* send out now */
#define DWRTC_PEERJS_EXPIRE_LATER  1  /* the EXPIRE for a recipient found
                                         nowhere: send out once the expire
                                         timeout passes (once per id) */
#define DWRTC_PEERJS_NOTHING       2  /* not shown to a PeerJS client */
#define DWRTC_PEERJS_SEND_CLOSE    3  /* send out (ID-TAKEN, ERROR), then
                                         close the session (1000) */
#define DWRTC_PEERJS_CLOSE_AWAY    4  /* nothing to send: close the session
                                         (1001), a newer session of its
                                         token holds its id */

/* Rewrites a delivery (data, as a drain or local delivery hands it to the
 * session id) in the PeerJS format into out, as dwrtc_format_error() does
 * (the length, also when more than cap), and its verdict into *what; 0
 * with DWRTC_PEERJS_NOTHING. */
size_t dwrtc_peerjs_render(const char *id, size_t id_len, const char *data,
                           size_t len, char *out, size_t cap, int *what);

/* {"type":"OPEN"}, {"type":"ID-TAKEN",...} and
 * {"type":"ERROR","payload":{"msg":MSG}}, as dwrtc_format_error(). */
size_t dwrtc_peerjs_format_open(char *out, size_t cap);
size_t dwrtc_peerjs_format_id_taken(char *out, size_t cap);
size_t dwrtc_peerjs_format_error(const char *msg, size_t len, char *out,
                                 size_t cap);

/* Closes a session: later messages to it get "not found". Messages that were
 * already waiting for it are dropped. */
int dwrtc_session_close(dwrtc_node *node, const char *id, size_t id_len);

/* Submits one client message (a WebSocket text payload) from a session.
 * The core validates it, stamps the sender and routes it; any answer for
 * the sender (an error message) comes back as a delivery to the sender.
 * Returns DWRTC_OK when the message was taken, DWRTC_ENOTFOUND when the
 * session is not open, DWRTC_ELIMIT when the session must be closed: its
 * claims were refused too many times in a row (dwrtc_options_set_claim_limits;
 * the last refusal was delivered to it). */
int dwrtc_submit(dwrtc_node *node, const char *id, size_t id_len,
                 const char *msg, size_t len);

/*
 * The node's own messages to a client, written here so that one place
 * writes the wire format. Each writes the message into out if it fits in
 * cap bytes, and returns its length either way (call again with a buffer
 * that large when it is more than cap); 0 for bad arguments.
 */

/* The welcome of a session of this node:
 * {"type":"WebSocketIdMessage","id":ID,"challenge":C,"time":T[,"iceServers":ICE]}.
 * C is what the session signs to claim a key-owned id (docs/dhtcore.md,
 * "Key-owned ids"), T is time_ms (the host's clock, milliseconds since
 * 1970) for the client to date its claim by; pass the same time_ms to both
 * calls of a length query and a write. ice (may be NULL) is a JSON array
 * the host wrote, copied as it is. 0 also for a session that is not open. */
size_t dwrtc_format_welcome(dwrtc_node *node, const char *id, size_t id_len,
                            uint64_t time_ms, const char *ice, size_t ice_len,
                            char *out, size_t cap);

/* {"type":"WebSocketErrorMessage","error":ERROR}, for an error about no
 * one recipient, such as "rate limited". */
size_t dwrtc_format_error(const char *error, size_t len, char *out,
                          size_t cap);

/* A message for a local session: write data as one WebSocket text frame.
 * Return 0 when the session took it; nonzero when it is gone or cannot take
 * it (it is closing), and the core tells the message's sender "not found". */
typedef int (*dwrtc_delivery_fn)(void *ctx, const char *session_id,
                                 size_t id_len, const char *data,
                                 size_t len);

/*
 * Optional: deliveries that a dwrtc_submit() call produces for sessions of
 * this node (a message to a session on this node, an error for the sender)
 * are handed to on_delivery before dwrtc_submit() returns, instead of
 * waiting in the queue for dwrtc_node_drain(). Saves the eventfd round trip
 * for same-node traffic. on_delivery runs inside dwrtc_submit() and must not
 * call any dwrtc_* function of this node. NULL turns it off again.
 */
int dwrtc_node_set_local_delivery(dwrtc_node *node,
                                  dwrtc_delivery_fn on_delivery, void *ctx);

/*
 * The other nodes on this host that share its address (the other workers of
 * one nginx, and after a reload its new workers): count node ids (32 hex
 * characters each, NUL-terminated) and their link ports. The nodes this one
 * has links with learn from it where they are, so a new worker's sessions
 * are reachable from them before its record is found in the DHT. Call
 * whenever the set may have changed (only a change is sent); at most
 * DWRTC_MAX_SIBLINGS are used. DWRTC_EINVAL for a malformed id or port.
 */
#define DWRTC_MAX_SIBLINGS  64

/* A dwrtc_bootstrap entry names one port or a range of at most this many
 * ports ("host:first-last", a node's DHT port range). */
#define DWRTC_MAX_BOOTSTRAP_PORTS  64

int dwrtc_node_set_siblings(dwrtc_node *node, const char *const *node_ids,
                            const unsigned *link_ports, size_t count);

/* A log record from the core threads, for the host's log. */
typedef void (*dwrtc_log_fn)(void *ctx, int level, const char *msg,
                             size_t len);

/* Hands out up to max waiting deliveries and log records (0 means all) and
 * returns how many were handed out. Resets the eventfd; if records remain
 * after max, the eventfd becomes readable again. Either callback may be
 * NULL (the records are then dropped). Call from the caller thread only. */
size_t dwrtc_node_drain(dwrtc_node *node, size_t max,
                        dwrtc_delivery_fn on_delivery, dwrtc_log_fn on_log,
                        void *ctx);

/*
 * Links over the host's own connections (the nginx transport).
 *
 * With a link driver in the options, the node opens no link socket and runs
 * no link thread: the host listens on the link port (the first of
 * dwrtc_options_set_link_ports(), which the node publishes), accepts and
 * connects, does TLS 1.3 and moves bytes, and the link protocol and the
 * routing run inside the calls below, on the caller thread. Links are named
 * by ids (never 0) that the host maps to its connections. Everything here is
 * for the caller thread, between dwrtc_node_start() and dwrtc_node_stop().
 * The driver's callbacks are called from inside calls on the node (these,
 * and dwrtc_submit(), dwrtc_session_*() and the others that reach the
 * router, which runs within them) and must not call back into the node.
 */
typedef struct {
    /* Open TCP and TLS 1.3 to host:port (host NUL-terminated) for link
     * `link`, then call dwrtc_link_secured(), or dwrtc_link_closed() if it
     * fails. Returns 0, or nonzero when it failed at once (then no
     * dwrtc_link_closed() follows). */
    int (*connect)(void *ctx, uint64_t link, const char *host, unsigned port);
    /* Link `link` has bytes to take or a new status. */
    void (*wake)(void *ctx, uint64_t link);
} dwrtc_link_driver;

/* The node's links run over the host's connections, through driver (copied;
 * ctx is passed to its callbacks and must outlive the node). */
int dwrtc_options_set_link_driver(dwrtc_options *opt,
                                  const dwrtc_link_driver *driver, void *ctx);

/* What the host does with a link's connection (dwrtc_link_status()). */
#define DWRTC_LINK_OPEN 0   /* keep it; write what dwrtc_link_take() gives */
#define DWRTC_LINK_FINISH 1 /* write what was taken, then close it */
#define DWRTC_LINK_RESET 2  /* close it now with a reset, write nothing */
#define DWRTC_LINK_GONE 3   /* no such link (closed, or node stopped) */

/* An eventfd that becomes readable when the links want dwrtc_links_run();
 * -1 without a driver or before start. Never read or close it yourself. */
int dwrtc_links_event_fd(const dwrtc_node *node);

/* Runs what waits (tasks from the core's threads, the once-a-second tick,
 * deadlines) and writes into *wait_ms how long the host may wait before
 * calling it again if the eventfd stays quiet. */
int dwrtc_links_run(dwrtc_node *node, unsigned *wait_ms);

/* The host took a TCP connection on the link port (before TLS); peer is its
 * address, for log lines. DWRTC_ELIMIT: refused (too many links are still
 * to prove who they are): close it. */
int dwrtc_link_accepted(dwrtc_node *node, const char *peer, size_t len,
                        uint64_t *link);

/* TLS 1.3 is up on link: binding is the TLS exporter with the label
 * "EXPORTER-dwrtc-link-v2", no context, 32 bytes. Anything else (another
 * length: not TLS 1.3) gets the link the status DWRTC_LINK_RESET. */
int dwrtc_link_secured(dwrtc_node *node, uint64_t link, const char *binding,
                       size_t len);

/* Bytes read from link's TLS connection. */
int dwrtc_link_received(dwrtc_node *node, uint64_t link, const char *data,
                        size_t len);

/* The bytes to write to link now (*len 0 if none), valid until the next
 * dwrtc_link_take() on this node. */
int dwrtc_link_take(dwrtc_node *node, uint64_t link, const char **data,
                    size_t *len);

/* DWRTC_LINK_*: what to do with link's connection after writing. */
int dwrtc_link_status(const dwrtc_node *node, uint64_t link);

/* link's connection is gone (the peer closed it, it failed, or the host
 * closed it for DWRTC_LINK_FINISH or DWRTC_LINK_RESET). */
void dwrtc_link_closed(dwrtc_node *node, uint64_t link);

/* Before dwrtc_node_stop(), for a host that still has its connections:
 * members of rooms leave, the acknowledgements owed are queued, and every
 * link gets the status DWRTC_LINK_FINISH (a proven peer a close frame
 * first). The host writes what dwrtc_link_take() gives, closes, and stops
 * the node. */
int dwrtc_links_finish(dwrtc_node *node);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DWRTC_DWRTC_H */
