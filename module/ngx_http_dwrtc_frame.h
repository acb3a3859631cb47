
/*
 * DWRTC: decentralized WebRTC signaling for nginx.
 *
 * A scanner of the RFC 6455 frame headers a client sends, fed the bytes as
 * they arrive in pieces of any size. libwslay checks a message's size only
 * when the first payload byte is there; the scanner refuses it as soon as
 * the header declaring it is complete, so the session closes with 1009
 * before any of the payload is read. All other checks of a frame are
 * libwslay's. It also counts the frames read to their end and tells when
 * the bytes so far end at a message boundary
 * (ngx_http_dwrtc_frame_scan_idle()), where a fresh parser that read none
 * of them would go on exactly as the one that read them all.
 *
 * Plain C with no nginx types, so that it is fuzzed on its own
 * (tests/frame_fuzz.c).
 */


#ifndef _NGX_HTTP_DWRTC_FRAME_H_INCLUDED_
#define _NGX_HTTP_DWRTC_FRAME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint64_t                        max_message_size;
    uint64_t                        payload_left;  /* of the current frame */
    /* of the current message; once too_big, its declared size */
    uint64_t                        msg_len;
    uint64_t                        frames;        /* read to their end */
    size_t                          hdr_len;
    size_t                          hdr_need;
    unsigned char                   hdr[14];
    unsigned                        too_big:1;
    /* a data frame without FIN came: the message goes on */
    unsigned                        fragmented:1;
} ngx_http_dwrtc_frame_scan_t;


void ngx_http_dwrtc_frame_scan_init(ngx_http_dwrtc_frame_scan_t *fs,
    uint64_t max_message_size);
size_t ngx_http_dwrtc_frame_scan(ngx_http_dwrtc_frame_scan_t *fs,
    const unsigned char *p, size_t len);
int ngx_http_dwrtc_frame_scan_idle(const ngx_http_dwrtc_frame_scan_t *fs);


#endif /* _NGX_HTTP_DWRTC_FRAME_H_INCLUDED_ */
