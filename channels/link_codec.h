/* SPDX-License-Identifier: MIT */
/*
 * channels/link_codec.h - the control payloads of a link (HELLO, WELCOME,
 * REFUSE; channels/link.fbs) as plain C, encoded and verified by the one
 * C++ file channels/link_codec.cc. No C++ type or exception crosses this
 * header. Decoding trusts nothing: size, identifier, the FlatBuffers
 * verifier, then every field's range; strings are copied into fixed C
 * arrays (no allocation sized by the peer).
 */
#ifndef WEIR_LINK_CODEC_H
#define WEIR_LINK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define WEIR__LINK_MAX_STREAMS 64   /* streams one HELLO may open (one connection carries) */
#define WEIR__LINK_MAX_TOKEN 256    /* token bytes */
#define WEIR__LINK_MAX_IDENT 200    /* channel identity bytes (WEIR_CHAN_MAX_NAME) */
#define WEIR__LINK_MAX_REASON 240   /* refusal text */

struct weir__link_stream_open {
    uint32_t stream;
    uint64_t next_seq;
    char channel[WEIR__LINK_MAX_IDENT + 1];
};

struct weir__link_hello {
    uint32_t version;
    uint32_t token_len;
    uint8_t token[WEIR__LINK_MAX_TOKEN];
    uint64_t sender_id;
    uint32_t max_data;
    uint32_t nstreams;
    struct weir__link_stream_open streams[WEIR__LINK_MAX_STREAMS];
};

struct weir__link_stream_accept {
    uint32_t stream;
    uint32_t credits;
    uint64_t next_seq;
};

struct weir__link_welcome {
    uint32_t version;
    uint32_t nstreams;
    struct weir__link_stream_accept streams[WEIR__LINK_MAX_STREAMS];
};

struct weir__link_refuse {
    char reason[WEIR__LINK_MAX_REASON + 1]; /* one line of printable text */
    uint32_t nended;                        /* streams the refusing end saw end cleanly */
    uint32_t ended[WEIR__LINK_MAX_STREAMS]; /* their ids: >= 1, each once */
};

/* Encoders: write the payload into out[0..cap) and return its length, or
 * -EMSGSIZE if it does not fit in cap (WEIR__FRAME_CTL_MAX is always
 * enough for valid input), -EINVAL for out-of-range input, -ENOMEM. */
int weir__link_hello_encode(const struct weir__link_hello *h, uint8_t *out, size_t cap);
int weir__link_welcome_encode(const struct weir__link_welcome *w, uint8_t *out, size_t cap);
/* ended: nended stream ids (NULL and 0: none), at most WEIR__LINK_MAX_STREAMS. */
int weir__link_refuse_encode(const char *reason, const uint32_t *ended, uint32_t nended,
                             uint8_t *out, size_t cap);

/* Decoders: verify buf[0..len) and fill *out. 0, or -EBADMSG / -EPROTO with
 * one line in weir_errmsg() (not a weir link frame, failed verification,
 * wrong table, a field out of range, a string too long or with a NUL).
 * A version mismatch is NOT judged here (the caller names both versions). */
int weir__link_hello_decode(const uint8_t *buf, size_t len, struct weir__link_hello *out);
int weir__link_welcome_decode(const uint8_t *buf, size_t len, struct weir__link_welcome *out);
int weir__link_refuse_decode(const uint8_t *buf, size_t len, struct weir__link_refuse *out);

#endif
