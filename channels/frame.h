/* SPDX-License-Identifier: MIT */
/*
 * channels/frame.h - the frames a link lays over a transport's byte stream.
 *
 * Design notes.
 *
 * Every frame is a fixed 24-byte little-endian header followed by `len`
 * payload bytes. The header is decoded and validated (magic, known type,
 * flags allowed for the type, reserved bits zero, len within the limit the
 * receiver chose, len consistent with the type) BEFORE anything is
 * allocated or copied, so no attacker-sized allocation is ever made:
 * a DATA payload goes straight into a slot of the receiving channel (whose
 * size the receiver checks against its own limit), a control payload into
 * a fixed buffer of WEIR__FRAME_CTL_MAX bytes.
 *
 *   off size field
 *     0    2 magic   0x5746 ("FW" on the wire: bytes 0x46 0x57)
 *     2    1 type    WEIR__FR_*
 *     3    1 flags   WEIR__FRF_*
 *     4    4 stream  stream id on this connection (0: the connection itself)
 *     8    4 len     payload bytes that follow
 *    12    4 aux     per type (ACK: credits beyond seq; else 0)
 *    16    8 seq     per type (DATA: message sequence number; ACK: messages
 *                    committed by the receiver; HEARTBEAT/ECHO: sender's clock
 *                    in ns; CLOSE: messages in the stream)
 *
 * Frame types and their payloads:
 *   HELLO      (dialer -> listener, first frame, stream 0): FlatBuffers
 *              weir.link.Hello (channels/link.fbs): protocol version, token,
 *              sender instance id, the streams it opens.
 *   WELCOME    (listener -> dialer, stream 0): weir.link.Welcome: per stream
 *              the next sequence number the receiver expects (resume point)
 *              and its credits.
 *   REFUSE     (either way, stream 0 or a stream): weir.link.Refuse: a
 *              one-line reason; the sender of it closes afterwards.
 *   DATA       (stream >= 1): one message; flags ERROR: an error record
 *              (payload is NUL-terminated text).
 *   ACK        (receiver -> sender, stream >= 1, len 0): seq = messages of the
 *              stream committed into the receiving channel; the sender may
 *              send up to seq + aux.
 *   CLOSE      (sender -> receiver, stream >= 1, len 0): the channel closed
 *              after seq messages.
 *   HEARTBEAT  (either way, stream 0, len 0): seq = sender's monotonic ns.
 *   ECHO       (answer to a heartbeat, stream 0, len 0): seq copied back (RTT).
 */
#ifndef WEIR_FRAME_H
#define WEIR_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WEIR__FRAME_MAGIC 0x5746u
#define WEIR__FRAME_HDR 24u
#define WEIR__LINK_PROTO 2u          /* protocol version carried in HELLO / WELCOME (2: 64
                                        streams, 16 KiB control frames, ECHO both ways) */
#define WEIR__FRAME_CTL_MAX 16384u   /* largest control payload (HELLO, WELCOME, REFUSE; the largest HELLO: 15456 B) */
#define WEIR__FRAME_DATA_MAX (1u << 30) /* hard cap on one DATA payload (1 GiB) */

enum weir__frame_type {
    WEIR__FR_HELLO = 1,
    WEIR__FR_WELCOME = 2,
    WEIR__FR_REFUSE = 3,
    WEIR__FR_DATA = 4,
    WEIR__FR_ACK = 5,
    WEIR__FR_CLOSE = 6,
    WEIR__FR_HEARTBEAT = 7,
    WEIR__FR_ECHO = 8,
};
#define WEIR__FR_MAX_TYPE 8

#define WEIR__FRF_ERROR 0x01u /* DATA: an error record */

struct weir__frame {
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
    uint32_t len;
    uint32_t aux;
    uint64_t seq;
};

/*
 * Encode f into exactly WEIR__FRAME_HDR bytes at out (little endian
 * whatever the host). Never fails; f is assumed valid (the caller built it).
 */
void weir__frame_encode(const struct weir__frame *f, uint8_t out[WEIR__FRAME_HDR]);

/*
 * Decode and validate the header in buf[0..n). Pure: no I/O, no
 * allocation, no global state except weir_errmsg() on failure.
 * max_data: the largest DATA payload the caller accepts (<= WEIR__FRAME_DATA_MAX).
 * Returns WEIR__FRAME_HDR and *f filled; 0 if n < WEIR__FRAME_HDR (need
 * more bytes; nothing is judged yet); or -EPROTO (bad magic, unknown type,
 * bad flags, reserved field set, control payload over WEIR__FRAME_CTL_MAX,
 * payload where none belongs, stream 0 / nonzero where the type needs the
 * other) or -EMSGSIZE (DATA over max_data), with one line in
 * weir_errmsg() saying which field is wrong and its value.
 */
int weir__frame_decode(const uint8_t *buf, size_t n, size_t max_data, struct weir__frame *f);

/* The type's name ("DATA") for messages; "?" for an unknown one. */
const char *weir__frame_type_name(unsigned type);

#endif
