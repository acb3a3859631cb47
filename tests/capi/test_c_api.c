/*
 * The dhtcore C interface, compiled and called as plain C: this is how the
 * nginx module sees the core, so it must stay C.
 */

#include <dwrtc/dwrtc.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                   \
    do {                                                              \
        if (cond) {                                                   \
            passed++;                                                 \
        } else {                                                      \
            failed++;                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                 \
        }                                                             \
    } while (0)

typedef struct {
    char session[DWRTC_SESSION_ID_LEN];
    char data[1024];
    int deliveries;
    int logs;
    const char *closing;  /* a session that takes no deliveries, or NULL */
} inbox_t;

static int
on_delivery(void *ctx, const char *id, size_t id_len, const char *data,
    size_t len)
{
    inbox_t *in = ctx;

    if (in->closing && id_len == DWRTC_SESSION_ID_LEN
        && memcmp(id, in->closing, id_len) == 0)
    {
        return 1;
    }

    if (id_len == DWRTC_SESSION_ID_LEN && len < sizeof(in->data)) {
        memcpy(in->session, id, id_len);
        memcpy(in->data, data, len);
        in->data[len] = '\0';
    }
    in->deliveries++;
    return 0;
}

static void
on_log(void *ctx, int level, const char *msg, size_t len)
{
    inbox_t *in = ctx;

    (void) level;
    (void) msg;
    (void) len;
    in->logs++;
}

/* Waits (bounded: 10 s) for the eventfd and drains until `want` deliveries
 * have come. */
static void
wait_for_deliveries(dwrtc_node *node, inbox_t *in, int want)
{
    struct pollfd  pfd;
    int            i;

    for (i = 0; i < 200 && in->deliveries < want; i++) {
        pfd.fd = dwrtc_node_event_fd(node);
        pfd.events = POLLIN;
        poll(&pfd, 1, 50);
        dwrtc_node_drain(node, 0, on_delivery, on_log, in);
    }
}

static void
wait_and_drain(dwrtc_node *node, inbox_t *in)
{
    wait_for_deliveries(node, in, 1);
}

/* The host's side of driven links: counts what the node asks of it. */
typedef struct {
    int  connects;
    int  wakes;
} driver_log_t;

static int
driver_connect(void *ctx, uint64_t link, const char *host, unsigned port)
{
    driver_log_t *log = ctx;

    (void) link;
    (void) host;
    (void) port;
    log->connects++;
    return -1;
}

static void
driver_wake(void *ctx, uint64_t link)
{
    driver_log_t *log = ctx;

    (void) link;
    log->wakes++;
}

/* A node whose links run over the host's connections: the host hands over
 * what it accepted, the TLS exporter and the bytes, and takes the answer. */
static void
check_driven_links(void)
{
    dwrtc_options      *opt;
    dwrtc_node         *node;
    dwrtc_link_driver   driver = { driver_connect, driver_wake };
    dwrtc_link_driver   no_connect = { NULL, driver_wake };
    driver_log_t        log = { 0, 0 };
    uint64_t            a, b;
    unsigned            wait;
    char                binding[32];
    const char         *data;
    size_t              len;
    const char         *request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    opt = dwrtc_options_create();
    CHECK(dwrtc_options_set_link_driver(opt, NULL, &log) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_driver(opt, &no_connect, &log)
          == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_driver(opt, &driver, &log) == DWRTC_OK);
    CHECK(dwrtc_options_set_dht_ports(opt, 0, 0) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_ports(opt, 4999, 4999) == DWRTC_OK);
    CHECK(dwrtc_options_set_bind_address(opt, "127.0.0.1", 9) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_max_unproven(opt, 1) == DWRTC_OK);
    CHECK(dwrtc_node_create(opt, &node) == DWRTC_OK);
    dwrtc_options_destroy(opt);

    /* Before start there are no links to drive. */
    CHECK(dwrtc_links_event_fd(node) == -1);
    CHECK(dwrtc_link_accepted(node, "p", 1, &a) == DWRTC_ESTATE);

    CHECK(dwrtc_node_start(node) == DWRTC_OK);
    /* The port the host listens on is the one published; none is bound. */
    CHECK(dwrtc_node_link_port(node) == 4999);
    CHECK(dwrtc_links_event_fd(node) >= 0);
    CHECK(dwrtc_links_run(node, &wait) == DWRTC_OK && wait <= 1000);
    CHECK(dwrtc_links_run(node, NULL) == DWRTC_EINVAL);

    /* One unproven link at a time here: a second is refused. */
    CHECK(dwrtc_link_accepted(node, "127.0.0.1:1", 11, &a) == DWRTC_OK);
    CHECK(a != 0);
    CHECK(dwrtc_link_accepted(node, "127.0.0.1:2", 11, &b) == DWRTC_ELIMIT);
    CHECK(b == 0);
    CHECK(dwrtc_link_status(node, a) == DWRTC_LINK_OPEN);

    /* A binding of another length is no TLS 1.3 exporter: cut off. */
    CHECK(dwrtc_link_secured(node, a, "short", 5) == DWRTC_OK);
    CHECK(dwrtc_link_status(node, a) == DWRTC_LINK_RESET);
    dwrtc_link_closed(node, a);
    CHECK(dwrtc_link_status(node, a) == DWRTC_LINK_GONE);

    /* Its place is free again. A request that is no upgrade is answered
     * 400, and the link is to end once that is written. */
    CHECK(dwrtc_link_accepted(node, "127.0.0.1:2", 11, &b) == DWRTC_OK);
    memset(binding, 7, sizeof(binding));
    CHECK(dwrtc_link_secured(node, b, binding, sizeof(binding)) == DWRTC_OK);
    CHECK(dwrtc_link_status(node, b) == DWRTC_LINK_OPEN);
    log.wakes = 0;
    CHECK(dwrtc_link_received(node, b, request, strlen(request))
          == DWRTC_OK);
    CHECK(log.wakes > 0);
    CHECK(dwrtc_link_take(node, b, &data, &len) == DWRTC_OK);
    CHECK(len > 12 && memcmp(data, "HTTP/1.1 400", 12) == 0);
    CHECK(dwrtc_link_status(node, b) == DWRTC_LINK_FINISH);
    CHECK(dwrtc_link_take(node, b, &data, &len) == DWRTC_OK && len == 0);
    dwrtc_link_closed(node, b);
    CHECK(log.connects == 0);

    /* Before the node stops, every link left is to end once written. */
    CHECK(dwrtc_link_accepted(node, "127.0.0.1:3", 11, &a) == DWRTC_OK);
    CHECK(dwrtc_link_status(node, a) == DWRTC_LINK_OPEN);
    CHECK(dwrtc_links_finish(NULL) == DWRTC_EINVAL);
    CHECK(dwrtc_links_finish(node) == DWRTC_OK);
    CHECK(dwrtc_link_status(node, a) == DWRTC_LINK_FINISH);
    dwrtc_link_closed(node, a);

    dwrtc_node_stop(node);
    CHECK(dwrtc_link_status(node, b) == DWRTC_LINK_GONE);
    CHECK(dwrtc_links_event_fd(node) == -1);
    dwrtc_node_destroy(node);
}

int
main(void)
{
    dwrtc_options  *opt;
    dwrtc_node     *node;
    char            alice[DWRTC_SESSION_ID_LEN], bob[DWRTC_SESSION_ID_LEN];
    const char     *named;
    char            msg[256];
    int             n;
    inbox_t         in;

    CHECK(strcmp(dwrtc_strerror(DWRTC_OK), "ok") == 0);

    /* The node's own messages: the length is told even when out is short. */
    {
        char  buf[160];
        const char *ice = "[{\"urls\":[\"stun:s.example.org\"]}]";
        const char *want = "{\"type\":\"WebSocketErrorMessage\","
                           "\"error\":\"rate limited\"}";

        CHECK(dwrtc_format_error("rate limited", 12, NULL, 0) == strlen(want));
        CHECK(dwrtc_format_error("rate limited", 12, buf, sizeof(buf))
              == strlen(want));
        CHECK(memcmp(buf, want, strlen(want)) == 0);
        CHECK(dwrtc_format_error(NULL, 3, buf, sizeof(buf)) == 0);
        CHECK(dwrtc_format_welcome(NULL, "abc", 3, 1, ice, strlen(ice), buf,
                                   sizeof(buf))
              == 0);
    }
    CHECK(dwrtc_strerror(12345) != NULL);

    opt = dwrtc_options_create();
    CHECK(opt != NULL);
    CHECK(dwrtc_options_set_hold(opt, 8, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_hold(opt, 0, 0) == DWRTC_OK);
    CHECK(dwrtc_options_set_hold(opt, 64, 30000) == DWRTC_OK);
    CHECK(dwrtc_options_set_peerjs_id_reserve(NULL, 1000) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_peerjs_id_reserve(opt, 0) == DWRTC_OK);
    CHECK(dwrtc_options_set_peerjs_id_reserve(opt, 60000) == DWRTC_OK);
    CHECK(dwrtc_options_set_peerjs_id_wait(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_peerjs_id_wait(opt, 5000) == DWRTC_OK);
    CHECK(dwrtc_options_set_peerjs_id_reservations(NULL, 10) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_peerjs_id_reservations(opt, 1000001) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_peerjs_id_reservations(opt, 0) == DWRTC_OK);
    CHECK(dwrtc_options_set_peerjs_id_reservations(opt, 1000) == DWRTC_OK);
    CHECK(dwrtc_options_set_room_limits(opt, 0, 1) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_room_limits(opt, 1, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_room_limits(opt, 64, 8) == DWRTC_OK);
    CHECK(dwrtc_options_set_room_bounds(opt, 0, 1, 16) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_room_bounds(opt, 64, 0, 16) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_room_bounds(opt, 64, 8, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_room_bounds(NULL, 64, 8, 16) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_room_bounds(opt, 64, 8, 1024) == DWRTC_OK);
    CHECK(dwrtc_options_set_claim_clock_skew(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_claim_clock_skew(opt, 30000) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_claim_bounds(opt, 0, 500) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_claim_bounds(opt, 4096, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_claim_bounds(opt, 4096, 500) == DWRTC_OK);
    CHECK(dwrtc_options_set_claim_limits(opt, 0, 3) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_claim_limits(opt, 6, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_claim_limits(opt, 6, 3) == DWRTC_OK);
    CHECK(dwrtc_options_set_lookup_claim_checks(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_lookup_claim_checks(opt, 32) == DWRTC_OK);
    CHECK(dwrtc_options_set_dht_ports(opt, 10, 5) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_dht_ports(opt, 1, 70000) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_dht_ports(opt, 0, 0) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_ports(opt, 0, 0) == DWRTC_OK);
    CHECK(dwrtc_options_set_bind_address(opt, "127.0.0.1", 9) == DWRTC_OK);
    CHECK(dwrtc_options_set_log_level(opt, 99) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_max_message_size(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_max_message_size(opt, 4096) == DWRTC_OK);
    /* A private network's secret has at least 16 bytes. */
    CHECK(dwrtc_options_set_network_key(opt, "short", 5) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_network_key(opt, NULL, 16) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_network_key(opt, "0123456789abcdef", 16)
          == DWRTC_OK);
    CHECK(dwrtc_options_set_link_handshake_timeout(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_handshake_timeout(opt, 2000) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_max_unproven(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_max_unproven(opt, 8) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_retry_delay(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_retry_delay(opt, 500) == DWRTC_OK);
    CHECK(dwrtc_options_set_link_ack_timeout(opt, 0) == DWRTC_EINVAL);
    CHECK(dwrtc_options_set_link_ack_timeout(opt, 2000) == DWRTC_OK);

    CHECK(dwrtc_node_create(opt, &node) == DWRTC_OK);
    dwrtc_options_destroy(opt);
    CHECK(dwrtc_node_event_fd(node) >= 0);

    /* Before start: nothing can be opened. */
    CHECK(dwrtc_session_open(node, alice) == DWRTC_ESTATE);

    CHECK(dwrtc_node_start(node) == DWRTC_OK);
    CHECK(dwrtc_node_dht_port(node) != 0);
    CHECK(dwrtc_node_link_port(node) != 0);
    CHECK(strlen(dwrtc_node_id(node)) == 32);
    /* A node with no bootstrap has no one to store its record on. */
    CHECK(dwrtc_node_status(node) == DWRTC_NODE_ALONE);
    CHECK(dwrtc_node_status(NULL) == DWRTC_NODE_ALONE);

    CHECK(dwrtc_session_open(node, alice) == DWRTC_OK);
    CHECK(dwrtc_session_open(node, bob) == DWRTC_OK);

    /* The welcome: the length is told even when out is short; it carries
     * a challenge of 32 hex digits and the time given; none for a session
     * that is not open. */
    {
        char        buf[256];
        const char *ice = "[{\"urls\":[\"stun:s.example.org\"]}]";
        char        want[200];
        size_t      wn;

        CHECK(dwrtc_format_welcome(node, alice, DWRTC_SESSION_ID_LEN,
                                   1700000000123ULL, ice, strlen(ice), buf, 10)
              > 10);
        n = (int) dwrtc_format_welcome(node, alice, DWRTC_SESSION_ID_LEN,
                                       1700000000123ULL, ice, strlen(ice),
                                       buf, sizeof(buf));
        CHECK(n > 0 && (size_t) n < sizeof(buf));
        buf[n] = '\0';
        wn = (size_t) snprintf(want, sizeof(want),
                               "{\"type\":\"WebSocketIdMessage\",\"id\":\"%.*s\","
                               "\"challenge\":\"",
                               DWRTC_SESSION_ID_LEN, alice);
        CHECK(strncmp(buf, want, wn) == 0);
        CHECK(strspn(buf + wn, "0123456789abcdef") == 32);
        CHECK(strcmp(buf + wn + 32, "\",\"time\":1700000000123,"
                     "\"iceServers\":[{\"urls\":[\"stun:s.example.org\"]}]}")
              == 0);
        CHECK(dwrtc_format_welcome(node, "abc", 3, 1, NULL, 0, buf,
                                   sizeof(buf))
              == 0);
    }
    CHECK(memcmp(alice, dwrtc_node_id(node), 32) == 0);
    CHECK(memcmp(alice, bob, DWRTC_SESSION_ID_LEN) != 0);

    /* A message from alice to bob comes out of drain() for bob. */
    n = snprintf(msg, sizeof(msg),
                 "{\"type\":\"SignalingMessage\",\"recipientSessionId\":"
                 "\"%.*s\",\"messageBody\":\"hi\"}", DWRTC_SESSION_ID_LEN, bob);
    memset(&in, 0, sizeof(in));
    CHECK(dwrtc_submit(node, alice, DWRTC_SESSION_ID_LEN, msg, n) == DWRTC_OK);
    wait_and_drain(node, &in);
    CHECK(in.deliveries == 1);
    CHECK(memcmp(in.session, bob, DWRTC_SESSION_ID_LEN) == 0);
    CHECK(strstr(in.data, "\"senderSessionId\":\"") != NULL);
    CHECK(strstr(in.data, "\"messageBody\":\"hi\"") != NULL);

    /* Bad input answers the sender and is not an error of the call. */
    memset(&in, 0, sizeof(in));
    CHECK(dwrtc_submit(node, alice, DWRTC_SESSION_ID_LEN, "[1,2", 4)
          == DWRTC_OK);
    wait_and_drain(node, &in);
    CHECK(in.deliveries == 1);
    CHECK(memcmp(in.session, alice, DWRTC_SESSION_ID_LEN) == 0);
    CHECK(strstr(in.data, "invalid message: ") != NULL);

    /*
     * With local delivery set, same-node messages and answers to the sender
     * arrive before dwrtc_submit() returns, and nothing waits in drain().
     */
    memset(&in, 0, sizeof(in));
    CHECK(dwrtc_node_set_local_delivery(NULL, on_delivery, &in)
          == DWRTC_EINVAL);
    CHECK(dwrtc_node_set_local_delivery(node, on_delivery, &in) == DWRTC_OK);
    CHECK(dwrtc_submit(node, alice, DWRTC_SESSION_ID_LEN, msg, n) == DWRTC_OK);
    CHECK(in.deliveries == 1);
    CHECK(memcmp(in.session, bob, DWRTC_SESSION_ID_LEN) == 0);
    CHECK(strstr(in.data, "\"messageBody\":\"hi\"") != NULL);
    CHECK(dwrtc_submit(node, alice, DWRTC_SESSION_ID_LEN, "[1,2", 4)
          == DWRTC_OK);
    CHECK(in.deliveries == 2);
    CHECK(memcmp(in.session, alice, DWRTC_SESSION_ID_LEN) == 0);
    CHECK(dwrtc_node_drain(node, 0, on_delivery, NULL, &in) == 0
          || in.deliveries == 2);
    CHECK(in.deliveries == 2);

    /* A session that cannot take a delivery: its sender hears "not found". */
    in.closing = bob;
    CHECK(dwrtc_submit(node, alice, DWRTC_SESSION_ID_LEN, msg, n) == DWRTC_OK);
    CHECK(in.deliveries == 3);
    CHECK(memcmp(in.session, alice, DWRTC_SESSION_ID_LEN) == 0);
    CHECK(strstr(in.data, "\"error\":\"not found\"") != NULL);
    named = strstr(in.data, "\"recipientSessionId\":\"");
    CHECK(named != NULL && memcmp(named + 22, bob, DWRTC_SESSION_ID_LEN) == 0);
    in.closing = NULL;
    CHECK(dwrtc_node_set_local_delivery(node, NULL, NULL) == DWRTC_OK);

    /* What the node counted: the messages submitted above, one delivered
     * here and one refused as invalid at least, no lookups. */
    {
        dwrtc_stats st;

        CHECK(dwrtc_node_stats(NULL, &st) == DWRTC_EINVAL);
        CHECK(dwrtc_node_stats(node, &st) == DWRTC_OK);
        CHECK(st.sessions == 2);
        CHECK(st.from_clients >= 4);
        CHECK(st.delivered_locally >= 2);
        CHECK(st.invalid >= 2);
        CHECK(st.not_found >= 1);
        CHECK(st.lookups == 0 && st.links_out == 0);
        CHECK(dwrtc_lookup_bucket_ms(0) == 1);
        CHECK(dwrtc_lookup_bucket_ms(DWRTC_LOOKUP_BUCKETS - 1) == 0);
    }

    /*
     * The PeerJS dialect: an id the node gives out opens once; a PeerJS
     * message is routed with its payload as the client wrote it, and shown
     * in PeerJS's words; a recipient found nowhere is an EXPIRE for later,
     * a LEAVE to one gets no answer, what the PeerJS server drops is
     * dropped with why.
     */
    {
        char         carol[DWRTC_SESSION_ID_LEN], out[512], pj[256];
        char         want[512];
        const char  *why;
        int          what, i, delivered;
        size_t       len;

        /* a session id of this node that no session has */
        memcpy(carol, dwrtc_node_id(node), 32);
        memcpy(carol + 32, "-0123456789abcdef", 17);
        CHECK(dwrtc_session_open_as(node, "alice", 5) == DWRTC_EINVAL);
        CHECK(dwrtc_session_open_as(node, carol, DWRTC_SESSION_ID_LEN)
              == DWRTC_OK);
        CHECK(dwrtc_session_open_as(node, carol, DWRTC_SESSION_ID_LEN)
              == DWRTC_EEXIST);
        CHECK(dwrtc_session_open_as(node, alice, DWRTC_SESSION_ID_LEN)
              == DWRTC_EEXIST);

        /* a chosen id opens a session of the node's own; ids the node
         * gives, and ids that are no PeerJS ids, are not chosen ones */
        {
            char  dave[DWRTC_SESSION_ID_LEN];

            CHECK(dwrtc_peerjs_open_chosen(node, "dave", 4, "tok", 3, dave)
                  == DWRTC_OK);
            CHECK(memcmp(dave, dwrtc_node_id(node), 32) == 0);
            CHECK(dwrtc_session_close(node, dave, DWRTC_SESSION_ID_LEN)
                  == DWRTC_OK);
            CHECK(dwrtc_peerjs_open_chosen(node, carol, DWRTC_SESSION_ID_LEN,
                                           "tok", 3, dave)
                  == DWRTC_EINVAL);
            CHECK(dwrtc_peerjs_open_chosen(node, "-x", 2, "tok", 3, dave)
                  == DWRTC_EINVAL);
        }

        /* an id the node gives a PeerJS client: a UUID of version 4,
         * fresh each time, which opens as a chosen one */
        {
            char  given[DWRTC_PEERJS_NEW_ID_LEN], again[DWRTC_PEERJS_NEW_ID_LEN];
            char  erin[DWRTC_SESSION_ID_LEN];

            CHECK(dwrtc_peerjs_new_id(given) == DWRTC_OK);
            CHECK(dwrtc_peerjs_new_id(again) == DWRTC_OK);
            CHECK(memcmp(given, again, DWRTC_PEERJS_NEW_ID_LEN) != 0);
            CHECK(given[8] == '-' && given[13] == '-' && given[18] == '-'
                  && given[23] == '-');
            CHECK(given[14] == '4');
            CHECK(strchr("89ab", given[19]) != NULL);
            CHECK(dwrtc_peerjs_open_chosen(node, given, DWRTC_PEERJS_NEW_ID_LEN,
                                           "tok", 3, erin)
                  == DWRTC_OK);
            CHECK(dwrtc_session_close(node, erin, DWRTC_SESSION_ID_LEN)
                  == DWRTC_OK);
        }

        memset(&in, 0, sizeof(in));
        CHECK(dwrtc_node_set_local_delivery(node, on_delivery, &in)
              == DWRTC_OK);
        n = snprintf(pj, sizeof(pj),
                     "{\"type\":\"OFFER\",\"src\":\"forged\",\"dst\":\"%.*s\","
                     "\"payload\":{\"sdp\": [1, 2.5 ,\"\\u00e9\"]}}",
                     DWRTC_SESSION_ID_LEN, bob);
        why = NULL;
        CHECK(dwrtc_peerjs_submit(node, carol, DWRTC_SESSION_ID_LEN, pj, n,
                                  &why)
              == DWRTC_PEERJS_TAKEN);
        CHECK(in.deliveries == 1);
        CHECK(memcmp(in.session, bob, DWRTC_SESSION_ID_LEN) == 0);

        len = dwrtc_peerjs_render(bob, DWRTC_SESSION_ID_LEN, in.data,
                                  strlen(in.data), out, sizeof(out), &what);
        CHECK(what == DWRTC_PEERJS_SEND);
        n = snprintf(want, sizeof(want),
                     "{\"type\":\"OFFER\",\"src\":\"%.*s\",\"dst\":\"%.*s\","
                     "\"payload\":{\"sdp\": [1, 2.5 ,\"\\u00e9\"]}}",
                     DWRTC_SESSION_ID_LEN, carol, DWRTC_SESSION_ID_LEN, bob);
        CHECK(len == (size_t) n && memcmp(out, want, len) == 0);
        CHECK(dwrtc_peerjs_render(bob, DWRTC_SESSION_ID_LEN, in.data,
                                  strlen(in.data), out, 4, &what)
              == len);

        /*
         * a chosen id held nowhere: the node looks for its holder in the
         * DHT, finds none and answers "not found", shown as a later EXPIRE
         */
        n = snprintf(pj, sizeof(pj),
                     "{\"type\":\"OFFER\",\"dst\":\"nobody\",\"payload\":1}");
        CHECK(dwrtc_peerjs_submit(node, carol, DWRTC_SESSION_ID_LEN, pj, n,
                                  &why)
              == DWRTC_PEERJS_TAKEN);
        /* (the verdict on dave's claim may come through the same drain) */
        for (i = 2; i <= 3; i++) {
            wait_for_deliveries(node, &in, i);
            if (memcmp(in.session, carol, DWRTC_SESSION_ID_LEN) == 0) {
                break;
            }
        }
        CHECK(memcmp(in.session, carol, DWRTC_SESSION_ID_LEN) == 0);
        delivered = in.deliveries;
        len = dwrtc_peerjs_render(carol, DWRTC_SESSION_ID_LEN, in.data,
                                  strlen(in.data), out, sizeof(out), &what);
        CHECK(what == DWRTC_PEERJS_EXPIRE_LATER);
        n = snprintf(want, sizeof(want),
                     "{\"type\":\"EXPIRE\",\"src\":\"nobody\",\"dst\":\"%.*s\"}",
                     DWRTC_SESSION_ID_LEN, carol);
        CHECK(len == (size_t) n && memcmp(out, want, len) == 0);

        /* LEAVE to an id that is gone: no answer, as the PeerJS server */
        CHECK(dwrtc_peerjs_submit(node, carol, DWRTC_SESSION_ID_LEN,
                                  "{\"type\":\"LEAVE\",\"dst\":\"gone\"}", 29,
                                  &why)
              == DWRTC_PEERJS_TAKEN);
        CHECK(in.deliveries == delivered);

        CHECK(dwrtc_peerjs_submit(node, carol, DWRTC_SESSION_ID_LEN,
                                  "{\"type\":\"HEARTBEAT\"}", 20, &why)
              == DWRTC_PEERJS_HEARTBEAT);
        why = NULL;
        CHECK(dwrtc_peerjs_submit(node, carol, DWRTC_SESSION_ID_LEN,
                                  "[1,2", 4, &why)
              == DWRTC_PEERJS_DROPPED);
        CHECK(why != NULL && strcmp(why, "not JSON") == 0);
        CHECK(dwrtc_peerjs_submit(node, "nope", 4, "{\"type\":\"HEARTBEAT\"}",
                                  20, &why)
              == DWRTC_PEERJS_HEARTBEAT);
        CHECK(dwrtc_peerjs_submit(node, "nope", 4,
                                  "{\"type\":\"LEAVE\",\"dst\":\"gone\"}", 29,
                                  &why)
              == DWRTC_ENOTFOUND);
        CHECK(in.deliveries == delivered);

        /* the node's own messages */
        CHECK(dwrtc_peerjs_format_open(out, sizeof(out)) == 15
              && memcmp(out, "{\"type\":\"OPEN\"}", 15) == 0);
        len = dwrtc_peerjs_format_error("Invalid key provided", 20, out,
                                        sizeof(out));
        CHECK(len == 57 && memcmp(out, "{\"type\":\"ERROR\",\"payload\":"
                                  "{\"msg\":\"Invalid key provided\"}}", len)
                           == 0);
        CHECK(dwrtc_peerjs_format_id_taken(out, sizeof(out)) > 0);

        CHECK(dwrtc_node_set_local_delivery(node, NULL, NULL) == DWRTC_OK);
        CHECK(dwrtc_session_close(node, carol, DWRTC_SESSION_ID_LEN)
              == DWRTC_OK);
    }

    /* Unknown and closed sessions. */
    CHECK(dwrtc_submit(node, "nope", 4, "{}", 2) == DWRTC_ENOTFOUND);
    CHECK(dwrtc_session_close(node, bob, DWRTC_SESSION_ID_LEN) == DWRTC_OK);
    CHECK(dwrtc_session_close(node, bob, DWRTC_SESSION_ID_LEN)
          == DWRTC_ENOTFOUND);
    CHECK(dwrtc_submit(node, NULL, 0, NULL, 0) == DWRTC_EINVAL);

    /* Log records arrive through the same drain. */
    memset(&in, 0, sizeof(in));
    dwrtc_node_drain(node, 0, NULL, on_log, &in);

    dwrtc_node_stop(node);
    dwrtc_node_stop(node);
    CHECK(dwrtc_session_open(node, alice) == DWRTC_ESTATE);
    dwrtc_node_destroy(node);
    dwrtc_node_destroy(NULL);

    check_driven_links();

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
