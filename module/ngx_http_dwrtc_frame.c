
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * The frame-header scanner (see ngx_http_dwrtc_frame.h). No nginx types.
 */


#include <string.h>

#include "ngx_http_dwrtc_frame.h"


void
ngx_http_dwrtc_frame_scan_init(ngx_http_dwrtc_frame_scan_t *fs,
    uint64_t max_message_size)
{
    memset(fs, 0, sizeof(ngx_http_dwrtc_frame_scan_t));
    fs->max_message_size = max_message_size;
}


/*
 * Follows frame boundaries in the next len received bytes. Returns how many
 * of them may be parsed further: all, or, when a header declares a message
 * over max_message_size, those up to the end of that header (too_big is set
 * then, and later calls return 0).
 */

size_t
ngx_http_dwrtc_frame_scan(ngx_http_dwrtc_frame_scan_t *fs,
    const unsigned char *p, size_t len)
{
    size_t                i;
    uint64_t              n, plen;
    const unsigned char  *start, *last;

    if (fs->too_big) {
        return 0;
    }

    start = p;
    last = p + len;

    while (p < last) {

        if (fs->payload_left) {
            n = (uint64_t) (last - p);

            if (n > fs->payload_left) {
                n = fs->payload_left;
            }

            p += (size_t) n;
            fs->payload_left -= n;

            if (fs->payload_left == 0) {
                fs->frames++;
            }

            continue;
        }

        fs->hdr[fs->hdr_len++] = *p++;

        if (fs->hdr_len == 2) {
            plen = fs->hdr[1] & 0x7f;

            fs->hdr_need = 2 + (plen == 126 ? 2 : (plen == 127 ? 8 : 0))
                           + ((fs->hdr[1] & 0x80) ? 4 : 0);
        }

        if (fs->hdr_len < 2 || fs->hdr_len < fs->hdr_need) {
            continue;
        }

        plen = fs->hdr[1] & 0x7f;

        if (plen == 126) {
            plen = ((uint64_t) fs->hdr[2] << 8) | fs->hdr[3];

        } else if (plen == 127) {
            plen = 0;

            for (i = 2; i < 10; i++) {
                plen = (plen << 8) | fs->hdr[i];
            }
        }

        fs->hdr_len = 0;
        fs->payload_left = plen;

        if (plen == 0) {
            fs->frames++;
        }

        if (fs->hdr[0] & 0x08) {
            /* a control frame, maybe between the fragments of a message */
            continue;
        }

        if ((fs->hdr[0] & 0x0f) != 0) {
            /* not a continuation: a new message */
            fs->msg_len = 0;
        }

        /* msg_len <= max_message_size holds here */

        if (plen > fs->max_message_size - fs->msg_len) {
            fs->msg_len = (plen > UINT64_MAX - fs->msg_len)
                          ? UINT64_MAX : fs->msg_len + plen;
            fs->too_big = 1;
            break;
        }

        if (fs->hdr[0] & 0x80) {
            fs->msg_len = 0;
            fs->fragmented = 0;

        } else {
            fs->msg_len += plen;
            fs->fragmented = 1;
        }
    }

    return (size_t) (p - start);
}


/*
 * 1 when the bytes scanned so far end at a message boundary: no frame
 * header or payload is incomplete, no fragmented message goes on, and
 * nothing was refused. 0 otherwise.
 */

int
ngx_http_dwrtc_frame_scan_idle(const ngx_http_dwrtc_frame_scan_t *fs)
{
    return !fs->too_big && !fs->fragmented
           && fs->hdr_len == 0 && fs->payload_left == 0;
}
