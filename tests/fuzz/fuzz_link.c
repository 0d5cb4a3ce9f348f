/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_link.c - libFuzzer target for what a link reads from an
 * unauthenticated peer: the fixed frame header decoder (channels/frame.c)
 * over a byte stream, and the HELLO / WELCOME / REFUSE control payloads
 * (channels/link_codec.cc).
 *
 * The input is read as a stream of frames, exactly as a receiver would:
 * decode a header, check the documented invariants of an accepted one, feed
 * a control payload to its decoder, skip a DATA payload. Any return code or
 * state the headers do not document traps.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <weir/weir.h>

#include "channels/frame.h"
#include "channels/link_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(void)
{
    const char *m = weir_errmsg();
    if (m[0] == '\0' || strchr(m, '\n'))
        __builtin_trap(); /* every refusal is one non-empty line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    /* The first byte picks the DATA limit the receiver applies. */
    size_t max_data = size ? (size_t)data[0] * 97 : 0;
    while (off < size) {
        struct weir__frame f;
        int r = weir__frame_decode(data + off, size - off, max_data, &f);
        if (r == 0)
            break; /* need more bytes */
        if (r < 0) {
            if (r != -EPROTO && r != -EMSGSIZE)
                __builtin_trap();
            check_msg();
            break;
        }
        if (r != (int)WEIR__FRAME_HDR || f.type == 0 || f.type > WEIR__FR_MAX_TYPE)
            __builtin_trap();
        uint8_t again[WEIR__FRAME_HDR];
        weir__frame_encode(&f, again);
        if (memcmp(again, data + off, WEIR__FRAME_HDR) != 0)
            __builtin_trap(); /* accepted headers round-trip exactly */
        off += WEIR__FRAME_HDR;
        if (f.type == WEIR__FR_DATA && f.len > max_data)
            __builtin_trap();
        size_t avail = size - off < f.len ? size - off : f.len;
        if (f.type == WEIR__FR_HELLO || f.type == WEIR__FR_WELCOME || f.type == WEIR__FR_REFUSE) {
            if (f.len > WEIR__FRAME_CTL_MAX)
                __builtin_trap();
            int d;
            if (f.type == WEIR__FR_HELLO) {
                struct weir__link_hello h;
                d = weir__link_hello_decode(data + off, avail, &h);
                if (d == 0 && (h.nstreams == 0 || h.nstreams > WEIR__LINK_MAX_STREAMS ||
                               h.token_len > WEIR__LINK_MAX_TOKEN))
                    __builtin_trap();
                for (uint32_t i = 0; d == 0 && i < h.nstreams; i++)
                    if (h.streams[i].stream == 0 ||
                        strlen(h.streams[i].channel) > WEIR__LINK_MAX_IDENT)
                        __builtin_trap();
            } else if (f.type == WEIR__FR_WELCOME) {
                struct weir__link_welcome w;
                d = weir__link_welcome_decode(data + off, avail, &w);
                if (d == 0 && w.nstreams > WEIR__LINK_MAX_STREAMS)
                    __builtin_trap();
            } else {
                struct weir__link_refuse rf;
                d = weir__link_refuse_decode(data + off, avail, &rf);
                if (d == 0 && (strlen(rf.reason) > WEIR__LINK_MAX_REASON ||
                               strchr(rf.reason, '\n') || rf.nended > WEIR__LINK_MAX_STREAMS))
                    __builtin_trap();
                for (uint32_t i = 0; d == 0 && i < rf.nended; i++) {
                    if (rf.ended[i] == 0)
                        __builtin_trap();
                    for (uint32_t j = 0; j < i; j++)
                        if (rf.ended[j] == rf.ended[i])
                            __builtin_trap();
                }
            }
            if (d < 0) {
                if (d != -EBADMSG && d != -EPROTO)
                    __builtin_trap();
                check_msg();
            }
        }
        off += avail;
    }
    return 0;
}
