/* SPDX-License-Identifier: MIT */
/*
 * tests/test_frame.c - the link's frame header decoder and control payload
 * codec (channels/frame.c, channels/link_codec.cc), every refusal with its
 * exact text, and the endpoint parser (channels/transport.c).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include <weir/weir.h>

#include "channels/frame.h"
#include "channels/link_codec.h"
#include "channels/transport.h"
#include "weir_config.h"
#include "heap_check.h"

TestSuite(frame, .fini = t_heap_check);

static int dec(struct weir__frame f, size_t max_data, struct weir__frame *out)
{
    uint8_t b[WEIR__FRAME_HDR];
    weir__frame_encode(&f, b);
    return weir__frame_decode(b, sizeof b, max_data, out);
}

Test(frame, round_trip_little_endian)
{
    struct weir__frame f = {WEIR__FR_ACK, 0, 0x01020304, 0, 0x0a0b0c0d, 0x1122334455667788ull}, g;
    uint8_t b[WEIR__FRAME_HDR];
    weir__frame_encode(&f, b);
    const uint8_t want[WEIR__FRAME_HDR] = {0x46, 0x57, 5, 0, 4, 3, 2, 1, 0, 0, 0, 0,
                                           0x0d, 0x0c, 0x0b, 0x0a, 0x88, 0x77, 0x66, 0x55,
                                           0x44, 0x33, 0x22, 0x11};
    cr_assert_eq(memcmp(b, want, sizeof want), 0);
    cr_assert_eq(weir__frame_decode(b, sizeof b, 0, &g), WEIR__FRAME_HDR);
    cr_assert(f.type == g.type && f.flags == g.flags && f.stream == g.stream && f.len == g.len &&
              f.aux == g.aux && f.seq == g.seq);
    cr_assert_eq(weir__frame_decode(b, WEIR__FRAME_HDR - 1, 0, &g), 0, "needs more bytes");
}

Test(frame, refusals_name_the_field)
{
    struct weir__frame g;
    uint8_t b[WEIR__FRAME_HDR] = {0x12, 0x34};
    cr_assert_eq(weir__frame_decode(b, sizeof b, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame: bad magic 0x3412 (expected 0x5746): not a weir link");
    cr_assert_eq(dec((struct weir__frame){9, 0, 0, 0, 0, 0}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame: unknown type 9");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_ACK, 1, 1, 0, 0, 0}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame ACK: flags 0x01 not allowed");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_HEARTBEAT, 0, 3, 0, 0, 0}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame HEARTBEAT: stream 3 (must be 0)");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_DATA, 0, 0, 0, 0, 0}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame DATA: stream 0 (must be a stream id >= 1)");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_DATA, 0, 1, 0, 7, 0}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame DATA: reserved field aux = 7 (must be 0)");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_HELLO, 0, 0, 20000, 0, 0}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame HELLO: payload of 20000 bytes (control frames carry 1..16384)");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_HELLO, 0, 0, 10, 0, 1}, 0, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame HELLO: reserved field seq = 1 (must be 0)");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_DATA, 0, 1, 1001, 0, 0}, 1000, &g), -EMSGSIZE);
    cr_assert_str_eq(weir_errmsg(), "link frame DATA: payload of 1001 bytes over the limit of 1000");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_DATA, 0, 1, 1000, 0, 0}, 1000, &g), WEIR__FRAME_HDR);
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_DATA, WEIR__FRF_ERROR, 1, 0, 0, 0}, 1000, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame DATA: empty error record");
    cr_assert_eq(dec((struct weir__frame){WEIR__FR_CLOSE, 0, 1, 4, 0, 0}, 1000, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link frame CLOSE: payload of 4 bytes (must be empty)");
}

Test(frame, hello_round_trip_and_refusals)
{
    struct weir__link_hello h, g;
    memset(&h, 0, sizeof h);
    h.version = WEIR__LINK_PROTO;
    h.token_len = 3;
    memcpy(h.token, "abc", 3);
    h.sender_id = 77;
    h.max_data = 1234;
    h.nstreams = 2;
    h.streams[0] = (struct weir__link_stream_open){1, 10, "prices"};
    h.streams[1] = (struct weir__link_stream_open){2, 0, "trades"};
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_hello_encode(&h, buf, sizeof buf);
    cr_assert_gt(n, 0);
    cr_assert_eq(weir__link_hello_decode(buf, (size_t)n, &g), 0, "%s", weir_errmsg());
    cr_assert_eq(g.version, WEIR__LINK_PROTO);
    cr_assert_eq(g.token_len, 3);
    cr_assert_eq(memcmp(g.token, "abc", 3), 0);
    cr_assert_eq(g.sender_id, 77);
    cr_assert_eq(g.nstreams, 2);
    cr_assert_str_eq(g.streams[1].channel, "trades");
    cr_assert_eq(g.streams[0].next_seq, 10);
    char want[160];
    snprintf(want, sizeof want, "link HELLO: control frame failed FlatBuffers verification (%d "
             "bytes: truncated or corrupt)", n - 9);
    cr_assert_eq(weir__link_hello_decode(buf, (size_t)n - 9, &g), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), want);
    uint8_t other[16] = {12, 0, 0, 0, 'W', 'P', 'L', 'N'};
    cr_assert_eq(weir__link_hello_decode(other, sizeof other, &g), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "link HELLO: not a weir link control frame (no 'WLNK' identifier)");
    buf[n - 1] ^= 0xff;
    buf[12] ^= 0x40;
    int r = weir__link_hello_decode(buf, (size_t)n, &g);
    cr_assert(r == -EBADMSG || r == -EPROTO || r == 0, "%d", r);
    h.streams[1].stream = 1;
    n = weir__link_hello_encode(&h, buf, sizeof buf);
    cr_assert_eq(weir__link_hello_decode(buf, (size_t)n, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link HELLO: stream id 1 opened twice");
    h.nstreams = 0;
    n = weir__link_hello_encode(&h, buf, sizeof buf);
    cr_assert_eq(weir__link_hello_decode(buf, (size_t)n, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link HELLO: opens no stream");
    n = weir__link_welcome_encode(&(struct weir__link_welcome){1, 1, {{1, 8, 5}}}, buf, sizeof buf);
    cr_assert_eq(weir__link_hello_decode(buf, (size_t)n, &g), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link HELLO: the control frame holds no Hello");
    cr_assert_eq(weir__link_hello_decode(buf, 4, &g), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "link HELLO: control payload of 4 bytes (expected 8..16384)");
}

/* The largest HELLO a sender can make (every stream a connection carries,
 * each with the longest channel identity, the longest token) fits in one
 * control frame and round-trips; one stream more is refused by the encoder,
 * and a decoder given a HELLO of one stream more (built by hand) names it. */
Test(frame, largest_hello_fits_one_control_frame)
{
    static struct weir__link_hello h, g;
    memset(&h, 0, sizeof h);
    h.version = WEIR__LINK_PROTO;
    h.token_len = WEIR__LINK_MAX_TOKEN;
    memset(h.token, 0xa5, sizeof h.token);
    h.sender_id = UINT64_MAX;
    h.max_data = UINT32_MAX;
    h.nstreams = WEIR__LINK_MAX_STREAMS;
    for (unsigned i = 0; i < WEIR__LINK_MAX_STREAMS; i++) {
        h.streams[i].stream = i + 1;
        h.streams[i].next_seq = UINT64_MAX - i;
        memset(h.streams[i].channel, 'a' + (int)(i % 26), WEIR__LINK_MAX_IDENT);
    }
    static uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_hello_encode(&h, buf, sizeof buf);
    cr_assert_gt(n, 0, "%s", weir_errmsg());
    cr_assert_leq(n, (int)WEIR__FRAME_CTL_MAX);
    cr_assert_eq(weir__link_hello_decode(buf, (size_t)n, &g), 0, "%s", weir_errmsg());
    cr_assert_eq(g.nstreams, WEIR__LINK_MAX_STREAMS);
    for (unsigned i = 0; i < WEIR__LINK_MAX_STREAMS; i++) {
        cr_assert_eq(g.streams[i].stream, i + 1);
        cr_assert_eq(g.streams[i].next_seq, UINT64_MAX - i);
        cr_assert_str_eq(g.streams[i].channel, h.streams[i].channel);
    }
    cr_assert_eq(memcmp(g.token, h.token, sizeof h.token), 0);
    /* the WELCOME answering it */
    static struct weir__link_welcome w, v;
    w.version = WEIR__LINK_PROTO;
    w.nstreams = WEIR__LINK_MAX_STREAMS;
    for (unsigned i = 0; i < WEIR__LINK_MAX_STREAMS; i++)
        w.streams[i] = (struct weir__link_stream_accept){i + 1, UINT32_MAX, UINT64_MAX};
    n = weir__link_welcome_encode(&w, buf, sizeof buf);
    cr_assert_gt(n, 0, "%s", weir_errmsg());
    cr_assert_eq(weir__link_welcome_decode(buf, (size_t)n, &v), 0, "%s", weir_errmsg());
    cr_assert_eq(v.nstreams, WEIR__LINK_MAX_STREAMS);
    cr_assert_eq(v.streams[WEIR__LINK_MAX_STREAMS - 1].stream, WEIR__LINK_MAX_STREAMS);
    h.nstreams = WEIR__LINK_MAX_STREAMS + 1;
    cr_assert_eq(weir__link_hello_encode(&h, buf, sizeof buf), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link HELLO: encode: bad argument");
}

Test(frame, refuse_text_is_one_line)
{
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_refuse_encode("bad\ntoken\x01", NULL, 0, buf, sizeof buf);
    struct weir__link_refuse rf;
    cr_assert_eq(weir__link_refuse_decode(buf, (size_t)n, &rf), 0);
    cr_assert_str_eq(rf.reason, "bad?token?");
    cr_assert_eq(rf.nended, 0);
}

/* A REFUSE of an ended connection names the streams that ended cleanly;
 * the decoder takes ids >= 1, each once, at most a HELLO's worth. */
Test(frame, refuse_names_ended_streams)
{
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    struct weir__link_refuse rf;
    const uint32_t ended[3] = {1, 7, 2};
    int n = weir__link_refuse_encode("the stream has ended", ended, 3, buf, sizeof buf);
    cr_assert_gt(n, 0, "%s", weir_errmsg());
    cr_assert_eq(weir__link_refuse_decode(buf, (size_t)n, &rf), 0, "%s", weir_errmsg());
    cr_assert_str_eq(rf.reason, "the stream has ended");
    cr_assert_eq(rf.nended, 3);
    cr_assert_eq(rf.ended[0], 1);
    cr_assert_eq(rf.ended[1], 7);
    cr_assert_eq(rf.ended[2], 2);

    const uint32_t twice[2] = {3, 3};
    n = weir__link_refuse_encode("x", twice, 2, buf, sizeof buf);
    cr_assert_eq(weir__link_refuse_decode(buf, (size_t)n, &rf), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link REFUSE: stream 3 ended twice");
    const uint32_t zero[2] = {4, 0};
    n = weir__link_refuse_encode("x", zero, 2, buf, sizeof buf);
    cr_assert_eq(weir__link_refuse_decode(buf, (size_t)n, &rf), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "link REFUSE: ended stream entry 1: id 0");
    uint32_t many[WEIR__LINK_MAX_STREAMS + 1];
    for (unsigned i = 0; i <= WEIR__LINK_MAX_STREAMS; i++)
        many[i] = i + 1;
    cr_assert_eq(weir__link_refuse_encode("x", many, WEIR__LINK_MAX_STREAMS + 1, buf, sizeof buf),
                 -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link REFUSE: encode: bad argument");
    n = weir__link_refuse_encode("x", many, WEIR__LINK_MAX_STREAMS, buf, sizeof buf);
    cr_assert_eq(weir__link_refuse_decode(buf, (size_t)n, &rf), 0, "%s", weir_errmsg());
    cr_assert_eq(rf.nended, WEIR__LINK_MAX_STREAMS);
}

Test(frame, endpoints)
{
    char host[64];
    uint16_t port;
    cr_assert_eq(weir__tp_parse_endpoint("tcp://10.0.0.2:5555", host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "10.0.0.2");
    cr_assert_eq(port, 5555);
    cr_assert_eq(weir__tp_parse_endpoint("tcp://[::1]:0", host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 0);
    cr_assert_eq(weir__tp_parse_endpoint("udp://x:1", host, sizeof host, &port), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link endpoint 'udp://x:1': expected tcp://HOST:PORT");
    cr_assert_eq(weir__tp_parse_endpoint("tcp://host:70000", host, sizeof host, &port), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link endpoint 'tcp://host:70000': port 70000 over 65535");
    cr_assert_eq(weir__tp_parse_endpoint("tcp://host", host, sizeof host, &port), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link endpoint 'tcp://host': no :PORT");
    cr_assert_eq(weir__tp_parse_endpoint("tcp://:5", host, sizeof host, &port), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link endpoint 'tcp://:5': empty host");
    cr_assert_eq(weir__tp_parse_endpoint("tcp://h:5x", host, sizeof host, &port), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link endpoint 'tcp://h:5x': bad port '5x'");
}

Test(frame, link_api_bad_arguments)
{
    cr_assert_null(weir_link_listen(NULL, "tcp://127.0.0.1:0", NULL));
    cr_assert_eq(weir_errcode(), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link tcp://127.0.0.1:0: NULL channel");
    weir_chan *c = weir_chan_create(NULL, NULL);
    cr_assert_null(weir_link_connect(c, "tcp://127.0.0.1", NULL));
    cr_assert_str_eq(weir_errmsg(), "link endpoint 'tcp://127.0.0.1': no :PORT");
    cr_assert_null(weir_link_connect(c, "tcp://127.0.0.1:1", &(weir_link_opts){.transport = 7}));
    cr_assert_str_eq(weir_errmsg(), "link: unknown transport 7 (WEIR_TRANSPORT_URING or WEIR_TRANSPORT_ZMQ)");
    cr_assert_null(weir_link_connect(c, "tcp://127.0.0.1:1", &(weir_link_opts){.transport = WEIR_TRANSPORT_ZMQ}));
#if WEIR_HAVE_ZMQ_TRANSPORT
    /* nothing listens on port 1: the ZeroMQ dial learns why its connect failed */
    cr_assert_eq(weir_errcode(), -ECONNREFUSED, "%s", weir_errmsg());
    cr_assert_str_eq(weir_errmsg(), "link: cannot connect to 127.0.0.1:1: Connection refused");
#else
    cr_assert_eq(weir_errcode(), -ENOSYS);
    cr_assert_str_eq(weir_errmsg(), "link: transport zmq: this build has no libzmq (meson -Dzmq)");
#endif
    cr_assert_null(weir_link_connect(c, "tcp://127.0.0.1:1", &(weir_link_opts){.timeout_ms = 10}));
    cr_assert_str_eq(weir_errmsg(), "link tcp://127.0.0.1:1: timeout_ms 10 too short (at least 50)");
    struct weir_chan_stats st;
    weir_chan_stats(c, &st);
    cr_assert_eq(st.nreaders, 0, "no reader left behind");
    cr_assert_eq(weir_link_free(NULL), 0);
    cr_assert_eq(weir_link_status(NULL), -EINVAL);
    weir_chan_free(c);
}
