
/*
 * libFuzzer harness for the frame-header scanner (ngx_http_dwrtc_frame.c).
 *
 * Before fuzzing, known headers must give known answers. Then each input
 * is a stream of client bytes, preceded by the size limit and a seed for
 * cutting the stream into pieces. The scanner must agree with a simple
 * whole-buffer parser (reference_scan() below), and it must give the same
 * answer whether the stream arrives at once, in random pieces, or byte by
 * byte.
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
} reference_result_t;


/* The same rule, written as a whole-buffer parser. */

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
            return res;
        }

        len = p[i + 1] & 0x7f;
        ext = (len == 126) ? 2 : (len == 127) ? 8 : 0;
        hlen = 2 + ext + ((p[i + 1] & 0x80) ? 4 : 0);

        if (n - i < hlen) {
            return res;
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
        }

        i += hlen;

        if (len >= n - i) {
            return res;
        }

        i += (size_t) len;
    }

    return res;
}


/* Feeds the stream in pieces; 0 as step means random pieces from seed. */

static size_t
scan_in_pieces(ngx_http_dwrtc_frame_scan_t *fs, const uint8_t *p, size_t n,
    size_t step, uint32_t seed)
{
    size_t  off, piece, got, total;

    total = 0;

    for (off = 0; off < n; off += piece) {

        if (step) {
            piece = step;

        } else {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            piece = 1 + seed % 32;
        }

        if (piece > n - off) {
            piece = n - off;
        }

        got = ngx_http_dwrtc_frame_scan(fs, p + off, piece);

        check(got <= piece);

        if (got < piece) {
            /* only an oversized header stops it, and then for good */
            check(fs->too_big);
        }

        if (fs->too_big) {
            total += got;
            check(ngx_http_dwrtc_frame_scan(fs, p + off + got,
                                            n - off - got) == 0);
            return total;
        }

        total += got;
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
    uint8_t                      buf[4096];
    ngx_http_dwrtc_frame_scan_t  fs;

    (void) argc;
    (void) argv;

    /* RFC 6455 5.7: a masked "Hello" */
    n = scan_string(&fs, 1024,
                    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    check(n == 11 && !fs.too_big && fs.hdr_len == 0
          && fs.payload_left == 0 && fs.msg_len == 0);

    /* unmasked: not the scanner's business, libwslay refuses it */
    n = scan_string(&fs, 1024, "\x81\x05Hello", 7);
    check(n == 7 && !fs.too_big);

    /* 2000 declared in 16 bits, 1024 allowed: stops after the header */
    n = scan_string(&fs, 1024, "\x81\xfe\x07\xd0\x37\xfa\x21\x3d" "abc", 11);
    check(n == 8 && fs.too_big && fs.msg_len == 2000);
    check(ngx_http_dwrtc_frame_scan(&fs, (const unsigned char *) "x", 1)
          == 0);

    /* the same, byte by byte */
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    n = scan_in_pieces(&fs, (const uint8_t *) "\x81\xfe\x07\xd0"
                       "\x37\xfa\x21\x3d" "abc", 11, 1, 0);
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

    /* 600 + 600 in two fragments with a ping between: over 1024 */
    frame_header(buf, &hl, 0x01, 600);
    len = hl + 600;
    frame_header(buf + len, &hl, 0x89, 5);
    len += hl + 5;
    frame_header(buf + len, &hl, 0x80, 600);
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    n = ngx_http_dwrtc_frame_scan(&fs, buf, len + hl + 600);
    check(n == len + hl && fs.too_big && fs.msg_len == 1200);

    /* 600 + 400 fits, and a new message starts from 0 */
    frame_header(buf, &hl, 0x01, 600);
    len = hl + 600;
    frame_header(buf + len, &hl, 0x80, 400);
    len += hl + 400;
    frame_header(buf + len, &hl, 0x81, 1000);
    len += hl + 1000;
    ngx_http_dwrtc_frame_scan_init(&fs, 1024);
    n = scan_in_pieces(&fs, buf, len, 0, 7);
    check(n == len && !fs.too_big && fs.msg_len == 0);

    /* a control frame's length is libwslay's to refuse, not ours */
    n = scan_string(&fs, 1024, "\x89\xff\0\0\x01\0\0\0\0\0\x37\xfa\x21\x3d",
                    14);
    check(n == 14 && !fs.too_big && fs.payload_left == (uint64_t) 1 << 40);

    fprintf(stderr, "frame_fuzz: known headers: ok\n");

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                          i;
    size_t                       n, len;
    uint32_t                     seed;
    uint64_t                     max;
    const uint8_t               *p;
    reference_result_t           ref;
    ngx_http_dwrtc_frame_scan_t  whole, pieces, bytes;

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

    ngx_http_dwrtc_frame_scan_init(&whole, max);
    n = ngx_http_dwrtc_frame_scan(&whole, p, len);

    check(n == ref.passed);
    check(whole.too_big == (unsigned) ref.too_big);
    check(!ref.too_big || whole.msg_len == ref.declared);
    check(whole.too_big || whole.msg_len <= max);
    check(whole.hdr_len < sizeof(whole.hdr));

    ngx_http_dwrtc_frame_scan_init(&pieces, max);
    n = scan_in_pieces(&pieces, p, len, 0, seed);

    check(n == ref.passed);
    check(pieces.too_big == whole.too_big);
    check(pieces.msg_len == whole.msg_len);
    check(pieces.payload_left == whole.payload_left);
    check(pieces.hdr_len == whole.hdr_len);

    ngx_http_dwrtc_frame_scan_init(&bytes, max);
    n = scan_in_pieces(&bytes, p, len, 1, 0);

    check(n == ref.passed);
    check(bytes.too_big == whole.too_big);
    check(bytes.msg_len == whole.msg_len);
    check(bytes.payload_left == whole.payload_left);
    check(bytes.hdr_len == whole.hdr_len);

    return 0;
}
