
/*
 * libFuzzer harness for the frame-header scanner (ngx_http_dwrtc_frame.c).
 *
 * Before fuzzing, known headers must give known answers. Then each input
 * is a stream of client bytes, preceded by the size limit and a seed for
 * cutting the stream into pieces. The scanner must agree with a simple
 * whole-buffer parser (reference_scan() below): on what it passes and
 * refuses, on the frames read to their end, on whether a fragmented
 * message goes on and on whether the bytes end at a message boundary
 * (ngx_http_dwrtc_frame_scan_idle()). It must give the same answer whether
 * the stream arrives at once, in random pieces, in pieces whose sizes are
 * taken from the input, or byte by byte, and the same answer after every
 * piece as the reference parser given the bytes up to there. Where it says
 * idle, a fresh scanner fed the rest must end as the one fed it all.
 *
 * Input: 1 byte mode, 8 bytes limit, 1 byte seed, then the stream.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I module \
 *            module/tests/frame_fuzz.c module/ngx_http_dwrtc_frame.c
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_dwrtc_frame.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define check(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n",                     \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


typedef struct {
    size_t      passed;     /* bytes up to the end of an oversized header */
    int         too_big;
    uint64_t    declared;   /* the oversized message's declared size */
    uint64_t    msg_len;    /* else the current message's size so far */
    uint64_t    frames;     /* header and whole payload read */
    int         fragmented; /* a data frame without FIN is the last one */
    size_t      hdr_len;    /* bytes of an incomplete header at the end */
    uint64_t    payload_left;   /* of a frame cut short at the end */
    int         idle;       /* the bytes end at a message boundary */
} reference_result_t;


/*
 * The same rule, written as a whole-buffer parser. A data frame without
 * FIN leaves its message open and one with FIN ends it; in a valid stream
 * the first is a text or binary frame or a continuation and the second a
 * continuation, or a text or binary frame alone. The other orders are
 * protocol errors libwslay refuses; here, as in the scanner, the FIN bit
 * of the last data frame decides. A refused header changes nothing but
 * too_big.
 */

static reference_result_t
reference_scan(const uint8_t *p, size_t n, uint64_t max)
{
    size_t              i, k, ext, hlen;
    uint64_t            len, msg;
    reference_result_t  res;

    memset(&res, 0, sizeof(res));
    res.passed = n;

    i = 0;
    msg = 0;

    while (i < n) {

        if (n - i < 2) {
            res.hdr_len = n - i;
            break;
        }

        len = p[i + 1] & 0x7f;
        ext = (len == 126) ? 2 : (len == 127) ? 8 : 0;
        hlen = 2 + ext + ((p[i + 1] & 0x80) ? 4 : 0);

        if (n - i < hlen) {
            res.hdr_len = n - i;
            break;
        }

        if (ext) {
            len = 0;
            for (k = 0; k < ext; k++) {
                len = len * 256 + p[i + 2 + k];
            }
        }

        if ((p[i] & 0x08) == 0) {
            if ((p[i] & 0x0f) != 0) {
                msg = 0;
            }

            if (msg + len < msg || msg + len > max) {
                res.too_big = 1;
                res.declared = (msg + len < msg) ? UINT64_MAX : msg + len;
                res.passed = i + hlen;
                return res;
            }

            msg = (p[i] & 0x80) ? 0 : msg + len;
            res.fragmented = (p[i] & 0x80) ? 0 : 1;
        }

        i += hlen;

        if (len > n - i) {
            res.payload_left = len - (n - i);
            break;
        }

        i += (size_t) len;
        res.frames++;
    }

    res.msg_len = msg;
    res.idle = !res.fragmented && res.hdr_len == 0 && res.payload_left == 0;

    return res;
}


/* The scanner's state must be the one the reference parser expects. */

static void
check_state(const ngx_http_dwrtc_frame_scan_t *fs,
    const reference_result_t *ref)
{
    check(fs->too_big == (unsigned) ref->too_big);
    check(fs->frames == ref->frames);
    check(fs->fragmented == (unsigned) ref->fragmented);
    check(ngx_http_dwrtc_frame_scan_idle(fs) == ref->idle);
    check(fs->hdr_len < sizeof(fs->hdr));

    if (ref->too_big) {
        check(fs->msg_len == ref->declared);
        return;
    }

    check(fs->msg_len == ref->msg_len);
    check(fs->msg_len <= fs->max_message_size);
    check(fs->hdr_len == ref->hdr_len);
    check(fs->payload_left == ref->payload_left);
}


/* Two scanners fed the same bytes must be in the same state. */

static void
check_same(const ngx_http_dwrtc_frame_scan_t *a,
    const ngx_http_dwrtc_frame_scan_t *b)
{
    check(a->too_big == b->too_big);
    check(a->msg_len == b->msg_len);
    check(a->payload_left == b->payload_left);
    check(a->hdr_len == b->hdr_len);
    check(a->frames == b->frames);
    check(a->fragmented == b->fragmented);
    check(ngx_http_dwrtc_frame_scan_idle(a)
          == ngx_http_dwrtc_frame_scan_idle(b));
}


typedef struct {
    /* how to cut: pieces of step bytes; or, with step 0, of the sizes */
    size_t          step;
    const uint8_t  *cuts;   /* of these bytes from the last back; or */
    size_t          ncuts;
    uint32_t        seed;   /* random sizes from this seed */
    int             verify; /* check against the reference after each */

    /* the last point after a piece where the scanner said idle */
    size_t          idle_off;
    uint64_t        idle_frames;
} split_t;


/*
 * A byte of cuts gives the size of a piece: 0 to 127, or 0 to 1016 in
 * steps of 8 with the high bit. A piece of 0 bytes must pass nothing and
 * change nothing.
 */

static size_t
next_piece(split_t *sp, size_t *k)
{
    uint8_t  b;

    if (sp->step) {
        return sp->step;
    }

    if (sp->cuts) {
        b = sp->cuts[sp->ncuts - 1 - *k % sp->ncuts];
        (*k)++;

        return (b & 0x80) ? (size_t) (b & 0x7f) << 3 : b;
    }

    sp->seed ^= sp->seed << 13;
    sp->seed ^= sp->seed >> 17;
    sp->seed ^= sp->seed << 5;

    return 1 + sp->seed % 32;
}


/* Feeds the stream in pieces cut as sp says. */

static size_t
scan_in_pieces(ngx_http_dwrtc_frame_scan_t *fs, const uint8_t *p, size_t n,
    split_t *sp)
{
    size_t                       off, piece, got, total, k, empty;
    reference_result_t           ref;
    ngx_http_dwrtc_frame_scan_t  before;

    total = 0;
    k = 0;
    empty = 0;

    sp->idle_off = 0;
    sp->idle_frames = 0;

    for (off = 0; off < n; off += piece) {

        piece = next_piece(sp, &k);

        if (piece == 0) {
            memcpy(&before, fs, sizeof(ngx_http_dwrtc_frame_scan_t));
            check(ngx_http_dwrtc_frame_scan(fs, p + off, 0) == 0);
            check(memcmp(&before, fs, sizeof(ngx_http_dwrtc_frame_scan_t))
                  == 0);

            if (++empty < sp->ncuts) {
                continue;
            }

            /* the cuts are all 0 */
            piece = n - off;
        }

        empty = 0;

        if (piece > n - off) {
            piece = n - off;
        }

        got = ngx_http_dwrtc_frame_scan(fs, p + off, piece);

        check(got <= piece);

        if (got < piece) {
            /* only an oversized header stops it, and then for good */
            check(fs->too_big);
        }

        total += got;

        if (sp->verify) {
            ref = reference_scan(p, off + piece, fs->max_message_size);
            check(total == ref.passed);
            check_state(fs, &ref);
        }

        if (fs->too_big) {
            check(ngx_http_dwrtc_frame_scan(fs, p + off + got,
                                            n - off - got) == 0);
            check(ngx_http_dwrtc_frame_scan_idle(fs) == 0);
            return total;
        }

        if (ngx_http_dwrtc_frame_scan_idle(fs)) {
            sp->idle_off = off + piece;
            sp->idle_frames = fs->frames;
        }
    }

    return total;
}


static size_t
scan_string(ngx_http_dwrtc_frame_scan_t *fs, uint64_t max, const char *s,
    size_t len)
{
    ngx_http_dwrtc_frame_scan_init(fs, max);

    return ngx_http_dwrtc_frame_scan(fs, (const unsigned char *) s, len);
}


static void
frame_header(uint8_t *p, size_t *len, uint8_t b0, uint64_t plen)
{
    int  i;

    p[0] = b0;

    if (plen < 126) {
        p[1] = (uint8_t) (0x80 | plen);
        *len = 2;

    } else if (plen < 65536) {
        p[1] = 0x80 | 126;
        p[2] = (uint8_t) (plen >> 8);
        p[3] = (uint8_t) plen;
        *len = 4;

    } else {
        p[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            p[2 + i] = (uint8_t) (plen >> (56 - 8 * i));
        }
        *len = 10;
    }

    memcpy(p + *len, "\x37\xfa\x21\x3d", 4);     /* masking key */
    *len += 4;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t                       n, len, hl;
    split_t                      sp;
    uint8_t                      buf[4096];
    ngx_http_dwrtc_frame_scan_t  fs;

    (void) argc;
    (void) argv;

    /* RFC 6455 5.7: a masked "Hello" */
    n = scan_string(&fs, 1024,
                    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    check(n == 11 && !fs.too_big && fs.hdr_len == 0
          && fs.payload_left == 0 && fs.msg_len == 0);
    check(fs.frames == 1 && !fs.fragmented
          && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* the same but its last byte: read, yet not to its end */
    n = scan_string(&fs, 1024,
                    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51", 10);
    check(n == 10 && fs.frames == 0 && fs.payload_left == 1
          && !ngx_http_dwrtc_frame_scan_idle(&fs));

    /* half a header */
    n = scan_string(&fs, 1024, "\x81\x85\x37", 3);
    check(n == 3 && fs.frames == 0 && fs.hdr_len == 3
          && !ngx_http_dwrtc_frame_scan_idle(&fs));

    /* nothing yet is a boundary */
    n = scan_string(&fs, 1024, "", 0);
    check(n == 0 && fs.frames == 0 && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* unmasked: not the scanner's business, libwslay refuses it */
    n = scan_string(&fs, 1024, "\x81\x05Hello", 7);
    check(n == 7 && !fs.too_big);
    check(fs.frames == 1 && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* "Hel" without FIN and "lo" to end it (RFC 6455 5.7) */
    n = scan_string(&fs, 1024, "\x01\x03Hel", 5);
    check(n == 5 && fs.frames == 1 && fs.fragmented && fs.msg_len == 3
          && !ngx_http_dwrtc_frame_scan_idle(&fs));
    n = ngx_http_dwrtc_frame_scan(&fs, (const unsigned char *) "\x80\x02lo",
                                  4);
    check(n == 4 && fs.frames == 2 && !fs.fragmented && fs.msg_len == 0
          && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* an empty final frame ends it too, as soon as its header is there */
    n = scan_string(&fs, 1024, "\x01\x03Hel" "\x80\x80\x37\xfa\x21", 10);
    check(n == 10 && fs.frames == 1 && fs.fragmented && fs.hdr_len == 5
          && !ngx_http_dwrtc_frame_scan_idle(&fs));
    n = ngx_http_dwrtc_frame_scan(&fs, (const unsigned char *) "\x3d", 1);
    check(n == 1 && fs.frames == 2 && !fs.fragmented
          && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* a ping between the fragments ends no message */
    n = scan_string(&fs, 1024, "\x01\x03Hel" "\x89\x00", 7);
    check(n == 7 && fs.frames == 2 && fs.fragmented
          && !ngx_http_dwrtc_frame_scan_idle(&fs));

    /* nor does the FIN of a ping */
    n = scan_string(&fs, 1024, "\x01\x03Hel" "\x89\x00" "\x00\x01l", 10);
    check(n == 10 && fs.frames == 3 && fs.fragmented && fs.msg_len == 4
          && !ngx_http_dwrtc_frame_scan_idle(&fs));

    /* 2000 declared in 16 bits, 1024 allowed: stops after the header */
    n = scan_string(&fs, 1024, "\x81\xfe\x07\xd0\x37\xfa\x21\x3d" "abc", 11);
    check(n == 8 && fs.too_big && fs.msg_len == 2000);
    check(fs.frames == 0 && !ngx_http_dwrtc_frame_scan_idle(&fs));
    check(ngx_http_dwrtc_frame_scan(&fs, (const unsigned char *) "x", 1)
          == 0);

    /* the same, byte by byte */
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    memset(&sp, 0, sizeof(split_t));
    sp.step = 1;
    n = scan_in_pieces(&fs, (const uint8_t *) "\x81\xfe\x07\xd0"
                       "\x37\xfa\x21\x3d" "abc", 11, &sp);
    check(n == 8 && fs.too_big && fs.msg_len == 2000);

    /* 2^63 declared in 64 bits */
    n = scan_string(&fs, 65536, "\x81\xff\x80\0\0\0\0\0\0\0\x37\xfa\x21\x3d",
                    14);
    check(n == 14 && fs.too_big && fs.msg_len == (uint64_t) 1 << 63);

    /* exactly the limit, twice: each message alone counts */
    memset(buf, 'a', sizeof(buf));
    frame_header(buf, &hl, 0x81, 1024);
    len = hl + 1024;
    memcpy(buf + len, buf, len);
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    n = ngx_http_dwrtc_frame_scan(&fs, buf, 2 * len);
    check(n == 2 * len && !fs.too_big && fs.msg_len == 0);
    check(fs.frames == 2 && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* 600 + 600 in two fragments with a ping between: over 1024 */
    frame_header(buf, &hl, 0x01, 600);
    len = hl + 600;
    frame_header(buf + len, &hl, 0x89, 5);
    len += hl + 5;
    frame_header(buf + len, &hl, 0x80, 600);
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    n = ngx_http_dwrtc_frame_scan(&fs, buf, len + hl + 600);
    check(n == len + hl && fs.too_big && fs.msg_len == 1200);
    check(fs.frames == 2 && fs.fragmented
          && !ngx_http_dwrtc_frame_scan_idle(&fs));

    /* 600 + 400 fits, and a new message starts from 0 */
    frame_header(buf, &hl, 0x01, 600);
    len = hl + 600;
    frame_header(buf + len, &hl, 0x80, 400);
    len += hl + 400;
    frame_header(buf + len, &hl, 0x81, 1000);
    len += hl + 1000;
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    memset(&sp, 0, sizeof(split_t));
    sp.seed = 7;
    sp.verify = 1;
    n = scan_in_pieces(&fs, buf, len, &sp);
    check(n == len && !fs.too_big && fs.msg_len == 0);
    check(fs.frames == 3 && ngx_http_dwrtc_frame_scan_idle(&fs));

    /* a control frame's length is libwslay's to refuse, not ours */
    n = scan_string(&fs, 1024, "\x89\xff\0\0\x01\0\0\0\0\0\x37\xfa\x21\x3d",
                    14);
    check(n == 14 && !fs.too_big && fs.payload_left == (uint64_t) 1 << 40);
    check(fs.frames == 0 && !ngx_http_dwrtc_frame_scan_idle(&fs));

    fprintf(stderr, "frame_fuzz: known headers: ok\n");

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                          i;
    size_t                       n, len;
    split_t                      sp;
    uint32_t                     seed;
    uint64_t                     max;
    const uint8_t               *p;
    reference_result_t           ref;
    ngx_http_dwrtc_frame_scan_t  whole, pieces, cut, bytes, rest;

    if (size < 10) {
        return 0;
    }

    max = 0;
    for (i = 0; i < 8; i++) {
        max = (max << 8) | data[1 + i];
    }

    switch (data[0] & 3) {
    case 0:
        max &= 0xff;
        break;
    case 1:
        max &= 0xffff;
        break;
    case 2:
        break;
    default:
        max = UINT64_MAX - (max & 0xff);
    }

    seed = 1 + data[9];
    p = data + 10;
    len = size - 10;

    ref = reference_scan(p, len, max);

    /* at once */

    ngx_http_dwrtc_frame_scan_init(&whole, max);
    n = ngx_http_dwrtc_frame_scan(&whole, p, len);

    check(n == ref.passed);
    check(whole.too_big == (unsigned) ref.too_big);
    check(!ref.too_big || whole.msg_len == ref.declared);
    check(whole.too_big || whole.msg_len <= max);
    check(whole.hdr_len < sizeof(whole.hdr));
    check_state(&whole, &ref);

    /* in random pieces, checked after each */

    ngx_http_dwrtc_frame_scan_init(&pieces, max);
    memset(&sp, 0, sizeof(split_t));
    sp.seed = seed;
    sp.verify = 1;
    n = scan_in_pieces(&pieces, p, len, &sp);

    check(n == ref.passed);
    check_same(&pieces, &whole);

    /* where it was idle, a fresh scanner goes on as this one did */

    if (sp.idle_off) {
        ngx_http_dwrtc_frame_scan_init(&rest, max);
        n = ngx_http_dwrtc_frame_scan(&rest, p + sp.idle_off,
                                      len - sp.idle_off);

        check(sp.idle_off + n == ref.passed);
        check(rest.frames + sp.idle_frames == whole.frames);
        rest.frames = whole.frames;
        check_same(&rest, &whole);
    }

    /* in pieces of sizes taken from the input, checked after each */

    ngx_http_dwrtc_frame_scan_init(&cut, max);
    memset(&sp, 0, sizeof(split_t));
    sp.cuts = data;
    sp.ncuts = size;
    sp.verify = 1;
    n = scan_in_pieces(&cut, p, len, &sp);

    check(n == ref.passed);
    check_same(&cut, &whole);

    /* byte by byte */

    ngx_http_dwrtc_frame_scan_init(&bytes, max);
    memset(&sp, 0, sizeof(split_t));
    sp.step = 1;
    sp.verify = (len <= 256);
    n = scan_in_pieces(&bytes, p, len, &sp);

    check(n == ref.passed);
    check_same(&bytes, &whole);

    return 0;
}
