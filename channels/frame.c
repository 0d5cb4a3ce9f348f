/* SPDX-License-Identifier: MIT */
/*
 * channels/frame.c - encode and validate the fixed frame header
 * (channels/frame.h). Pure functions: no I/O and no allocation, so the
 * decoder can be fuzzed on its own (tests/fuzz/fuzz_frame.c).
 */
#include "channels/frame.h"

#include <errno.h>

#include "channels/err.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

void weir__frame_encode(const struct weir__frame *f, uint8_t out[WEIR__FRAME_HDR])
{
    put16(out, WEIR__FRAME_MAGIC);
    out[2] = f->type;
    out[3] = f->flags;
    put32(out + 4, f->stream);
    put32(out + 8, f->len);
    put32(out + 12, f->aux);
    put64(out + 16, f->seq);
}

const char *weir__frame_type_name(unsigned type)
{
    static const char *const names[] = {"?",    "HELLO", "WELCOME",   "REFUSE", "DATA",
                                        "ACK",  "CLOSE", "HEARTBEAT", "ECHO"};
    return type <= WEIR__FR_MAX_TYPE ? names[type] : "?";
}

int weir__frame_decode(const uint8_t *buf, size_t n, size_t max_data, struct weir__frame *f)
{
    if (n < WEIR__FRAME_HDR)
        return 0;
    uint16_t magic = get16(buf);
    if (magic != WEIR__FRAME_MAGIC)
        return weir__seterr(-EPROTO, "link frame: bad magic 0x%04x (expected 0x%04x): not a weir "
                            "link", magic, WEIR__FRAME_MAGIC);
    struct weir__frame g;
    g.type = buf[2];
    g.flags = buf[3];
    g.stream = get32(buf + 4);
    g.len = get32(buf + 8);
    g.aux = get32(buf + 12);
    g.seq = get64(buf + 16);
    const char *tn = weir__frame_type_name(g.type);
    if (g.type == 0 || g.type > WEIR__FR_MAX_TYPE)
        return weir__seterr(-EPROTO, "link frame: unknown type %u", g.type);
    if (g.flags & ~(g.type == WEIR__FR_DATA ? WEIR__FRF_ERROR : 0u))
        return weir__seterr(-EPROTO, "link frame %s: flags 0x%02x not allowed", tn, g.flags);
    int conn_level = g.type == WEIR__FR_HELLO || g.type == WEIR__FR_WELCOME ||
                     g.type == WEIR__FR_HEARTBEAT || g.type == WEIR__FR_ECHO;
    if (conn_level && g.stream != 0)
        return weir__seterr(-EPROTO, "link frame %s: stream %u (must be 0)", tn, g.stream);
    if ((g.type == WEIR__FR_DATA || g.type == WEIR__FR_ACK || g.type == WEIR__FR_CLOSE) &&
        g.stream == 0)
        return weir__seterr(-EPROTO, "link frame %s: stream 0 (must be a stream id >= 1)", tn);
    if (g.aux && g.type != WEIR__FR_ACK)
        return weir__seterr(-EPROTO, "link frame %s: reserved field aux = %u (must be 0)", tn,
                            g.aux);
    switch (g.type) {
    case WEIR__FR_HELLO:
    case WEIR__FR_WELCOME:
    case WEIR__FR_REFUSE:
        if (g.seq)
            return weir__seterr(-EPROTO, "link frame %s: reserved field seq = %llu (must be 0)",
                                tn, (unsigned long long)g.seq);
        if (g.len == 0 || g.len > WEIR__FRAME_CTL_MAX)
            return weir__seterr(-EPROTO, "link frame %s: payload of %u bytes (control frames "
                                "carry 1..%u)", tn, g.len, WEIR__FRAME_CTL_MAX);
        break;
    case WEIR__FR_DATA:
        if (max_data > WEIR__FRAME_DATA_MAX)
            max_data = WEIR__FRAME_DATA_MAX;
        if (g.len > max_data)
            return weir__seterr(-EMSGSIZE, "link frame DATA: payload of %u bytes over the limit "
                                "of %zu", g.len, max_data);
        if ((g.flags & WEIR__FRF_ERROR) && g.len == 0)
            return weir__seterr(-EPROTO, "link frame DATA: empty error record");
        break;
    default:
        if (g.len)
            return weir__seterr(-EPROTO, "link frame %s: payload of %u bytes (must be empty)",
                                tn, g.len);
        break;
    }
    *f = g;
    return WEIR__FRAME_HDR;
}
