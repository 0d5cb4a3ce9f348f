/* SPDX-License-Identifier: MIT */
/*
 * tests/test_mux.c - many streams on one link connection (channels/link.h,
 * channels/link_conn.c) on loopback: every test twice, over the io_uring TCP
 * transport (mux::NAME) and over ZeroMQ (mux::zmq_NAME).
 *
 * Every stream k writes messages whose bytes follow t_fill's pattern for
 * (k << 40) + seq (so a message delivered to the wrong stream fails its
 * check) and whose length is msg_len(k, seq), some larger than the slot;
 * each reader checks every byte of every message and keeps a running FNV
 * hash over (seq, len, bytes) that must equal its writer's.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "channels/chan_internal.h"
#include "channels/link.h"
#include "channels/link_codec.h"
#include "chan_util.h"
#include "weir_config.h"

#include "sanitized.h"

static int g_tp; /* the transport of the running test */

#include "both_tp.h"
#define BOTH(name, ...) BOTH_TP(mux, name, __VA_ARGS__)
TestSuite(mux, .fini = t_heap_check);

#define NS 3          /* streams in most tests */
#define MAXS 4
#define SLOT 4096
#define MAXLEN 70000  /* 8 B .. 70 KB: one in 32 larger than the slot */

static size_t msg_len(unsigned k, uint64_t seq)
{
    if ((seq + k) % 32 == 31)
        return SLOT + t_len_for(seq * 7 + k, MAXLEN - SLOT);
    return 8 + t_len_for(seq + 1000u * k, 2000);
}

static uint64_t pat(unsigned k, uint64_t seq)
{
    return ((uint64_t)k << 40) + seq;
}

static uint64_t hash_msg(uint64_t h, uint64_t seq, const void *p, size_t len)
{
    h = t_fnv_u64(h, seq);
    h = t_fnv_u64(h, len);
    return t_fnv(h, p, len);
}

/* ---- one stream's writer and reader ------------------------------------------- */

struct side {
    unsigned k;               /* stream id */
    weir_chan *c, *w;
    int id;                   /* reader of w */
    uint64_t n;               /* messages to write */
    uint64_t err_at;          /* write an error record instead of message err_at and close
                                 (0: none) */
    unsigned pace_us;         /* writer sleeps this every 16 messages */
    uint64_t stall_at;        /* reader stops before message stall_at until `go` (0: never) */
    int go;                   /* atomic */
    int stalled;              /* atomic: the reader reached stall_at */
    uint64_t whash, rhash, got;
    int end;                  /* reader: -EPIPE at the end, or the error */
    char errtext[300];        /* text of an error record read */
    uint64_t err_seq;         /* its position among the messages */
    struct t_fail wf, rf;
    pthread_t wt, rt;
};

static void *writer_thr(void *p)
{
    struct side *s = p;
    uint64_t h = T_FNV_OFF;
    for (uint64_t q = 0; q < s->n; q++) {
        if (s->err_at && q == s->err_at) {
            char text[100];
            snprintf(text, sizeof text, "actor 'a%u' failed at message %llu", s->k,
                     (unsigned long long)q);
            if (weir_chan_write_error(s->c, text, TMO) < 0)
                t_failf(&s->wf, "stream %u: error record", s->k);
            break;
        }
        size_t len = msg_len(s->k, q);
        void *slot = weir_chan_reserve(s->c, len, TMO);
        if (!slot) {
            t_failf(&s->wf, "stream %u: reserve of message %llu", s->k, (unsigned long long)q);
            return NULL;
        }
        t_fill(slot, len, pat(s->k, q));
        h = hash_msg(h, q, slot, len);
        if (weir_chan_commit(s->c, len) < 0) {
            t_failf(&s->wf, "stream %u: commit of message %llu", s->k, (unsigned long long)q);
            return NULL;
        }
        if (s->pace_us && q % 16 == 0)
            usleep(s->pace_us);
    }
    s->whash = h;
    weir_chan_close(s->c);
    return NULL;
}

static void *reader_thr(void *p)
{
    struct side *s = p;
    uint64_t h = T_FNV_OFF;
    for (;;) {
        if (s->stall_at && s->got == s->stall_at && !__atomic_load_n(&s->go, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&s->stalled, 1, __ATOMIC_RELEASE);
            while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE))
                t_sleep_ms(1);
        }
        weir_chan_msg m;
        int r = weir_chan_read_msg(s->w, s->id, &m, 2 * TMO);
        if (r < 0) {
            s->end = r;
            break;
        }
        if (m.flags & WEIR_MSG_ERROR) {
            snprintf(s->errtext, sizeof s->errtext, "%s", (const char *)m.data);
            s->err_seq = s->got;
            weir_chan_release(s->w, s->id);
            continue;
        }
        size_t want = msg_len(s->k, s->got);
        if (m.len != want) {
            t_failf(&s->rf, "stream %u: message %llu has %zu bytes, expected %zu", s->k,
                    (unsigned long long)s->got, m.len, want);
            break;
        }
        long bad = t_check(m.data, m.len, pat(s->k, s->got));
        if (bad >= 0) {
            t_failf(&s->rf, "stream %u: message %llu byte %ld wrong", s->k,
                    (unsigned long long)s->got, bad);
            break;
        }
        h = hash_msg(h, s->got, m.data, m.len);
        s->got++;
        weir_chan_release(s->w, s->id);
    }
    s->rhash = h;
    return NULL;
}

/* ---- a connection pair --------------------------------------------------------- */

struct pair {
    weir__conn *rx, *tx;
    struct side s[MAXS];
    unsigned ns;
};

static weir_chan *mkchan(unsigned depth)
{
    weir_chan *c = weir_chan_create(NULL, &(weir_chan_opts){.slot_bytes = SLOT, .depth = depth});
    cr_assert_not_null(c, "chan create: %s", weir_errmsg());
    return c;
}

/* Streams 1..ns with n messages each; both ends' channels of depth `depth`. */
static void pair_init(struct pair *p, unsigned ns, uint64_t n, unsigned depth)
{
    memset(p, 0, sizeof *p);
    p->ns = ns;
    for (unsigned i = 0; i < ns; i++) {
        struct side *s = &p->s[i];
        s->k = i + 1;
        s->n = n;
        s->c = mkchan(depth);
        s->w = mkchan(depth);
        s->id = weir_chan_register_reader(s->w);
        cr_assert_geq(s->id, 0);
    }
}

static void pair_listen(struct pair *p, const weir_link_opts *lo)
{
    p->rx = weir__conn_listen("tcp://127.0.0.1:0", lo);
    cr_assert_not_null(p->rx, "listen: %s", weir_errmsg());
    for (unsigned i = 0; i < p->ns; i++)
        cr_assert_eq(weir__conn_add_recv_stream(p->rx, p->s[i].k, p->s[i].w), 0, "%s",
                     weir_errmsg());
    cr_assert_eq(weir__conn_start(p->rx), 0, "%s", weir_errmsg());
}

static void pair_dial(struct pair *p, const char *ep, const weir_link_opts *lo)
{
    p->tx = weir__conn_dial(ep, lo);
    cr_assert_not_null(p->tx, "dial: %s", weir_errmsg());
    for (unsigned i = 0; i < p->ns; i++)
        cr_assert_eq(weir__conn_add_send_stream(p->tx, p->s[i].k, p->s[i].c, -1), 0, "%s",
                     weir_errmsg());
    cr_assert_eq(weir__conn_start(p->tx), 0, "start: %s", weir_errmsg());
}

static void pair_run(struct pair *p)
{
    for (unsigned i = 0; i < p->ns; i++) {
        pthread_create(&p->s[i].rt, NULL, reader_thr, &p->s[i]);
        pthread_create(&p->s[i].wt, NULL, writer_thr, &p->s[i]);
    }
}

/* Join stream i's threads and assert it arrived whole. */
static void side_check(struct side *s)
{
    pthread_join(s->wt, NULL);
    pthread_join(s->rt, NULL);
    cr_assert_eq(s->wf.text[0], 0, "%s", s->wf.text);
    cr_assert_eq(s->rf.text[0], 0, "%s", s->rf.text);
    cr_assert_eq(s->end, -EPIPE, "stream %u: reader ended with %d", s->k, s->end);
    uint64_t want = s->err_at ? s->err_at : s->n;
    cr_assert_eq(s->got, want, "stream %u: got %llu of %llu", s->k, (unsigned long long)s->got,
                 (unsigned long long)want);
    cr_assert_eq(s->rhash, s->whash, "stream %u: running checksum differs", s->k);
}

/* Wait until cn's status is no longer 0 (bounded); return it. */
static int wait_status(weir__conn *cn, int ms)
{
    uint64_t t0 = t_now_ns();
    while (weir__conn_status(cn) == 0 && t_ms_since(t0) < ms)
        t_sleep_ms(2);
    return weir__conn_status(cn);
}

/* Wait until stream k of cn is no longer running (bounded); return its status. */
static int wait_stream(weir__conn *cn, uint32_t k, int ms)
{
    uint64_t t0 = t_now_ns();
    while (weir__conn_stream_status(cn, k) == 0 && t_ms_since(t0) < ms)
        t_sleep_ms(2);
    return weir__conn_stream_status(cn, k);
}

static void pair_free(struct pair *p)
{
    weir__conn_free(p->tx);
    weir__conn_free(p->rx);
    for (unsigned i = 0; i < p->ns; i++) {
        weir_chan_free(p->s[i].c);
        weir_chan_free(p->s[i].w);
    }
}

/* Open sockets of this process (TCP connections and listeners). */
static int count_sockets(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* The socket count once it is `want` or holds still for 200 ms (at most
 * 3 s): libzmq's reaper closes a socket's fds a moment after zmq_close. */
static int settled_sockets(int want)
{
    return t_settled(count_sockets, want, 200, 3000);
}

/* ---- tests ---------------------------------------------------------------------- */

BOTH(four_streams_one_connection, 120)
{
    const uint64_t n = SANITIZED ? 4000 : 40000;
    struct pair p;
    pair_init(&p, 4, n, 8);
    int sock0 = count_sockets();
    pair_listen(&p, &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    cr_assert_eq(count_sockets(), sock0 + 1, "the listener holds one socket");
    pair_dial(&p, weir__conn_endpoint(p.rx), &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    uint64_t t0 = t_now_ns();
    pair_run(&p);
    /* both ends of ONE TCP connection, beside the listener */
    cr_assert_eq(count_sockets(), sock0 + 3, "%d sockets for 4 streams", count_sockets() - sock0);
    for (unsigned i = 0; i < p.ns; i++)
        side_check(&p.s[i]);
    double ms = t_ms_since(t0);
    fprintf(stderr, "4 streams x %llu messages on one connection: %.0f ms, %.0f k msgs/s\n",
            (unsigned long long)n, ms, 4.0 * (double)n / ms);
    char want[160];
    snprintf(want, sizeof want, "link %s: every stream ended (0 of 4 failed)",
             weir__conn_endpoint(p.rx));
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_str_eq(weir_errmsg(), want);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < p.ns; i++) {
        struct weir__conn_stream_stats st;
        cr_assert_eq(weir__conn_stream_stats(p.tx, p.s[i].k, &st), 0);
        cr_assert_eq(st.status, -EPIPE);
        cr_assert_eq(st.messages, n, "stream %u sent %llu", p.s[i].k,
                     (unsigned long long)st.messages);
        cr_assert_eq(st.acked, n);
        bytes += st.bytes;
        cr_assert_eq(weir__conn_stream_stats(p.rx, p.s[i].k, &st), 0);
        cr_assert_eq(st.messages, n);
        cr_assert_eq(weir__conn_stream_status(p.rx, p.s[i].k), -EPIPE);
        cr_assert(strstr(weir_errmsg(), "ended (the sender's channel closed)"), "%s",
                  weir_errmsg());
    }
    struct weir_link_stats ls;
    cr_assert_eq(weir__conn_stats(p.tx, &ls), 0);
    cr_assert_eq(ls.messages, 4 * n);
    cr_assert_eq(ls.bytes, bytes);
    cr_assert_eq(ls.reconnects, 0);
    cr_assert_eq(weir__conn_stats(p.rx, &ls), 0);
    cr_assert_eq(ls.messages, 4 * n);
    cr_assert_eq(ls.bytes, bytes);
    cr_assert_eq(ls.reconnects, 0);
    cr_assert_eq(ls.refused, 0);
    struct weir__conn_stream_stats st;
    cr_assert_eq(weir__conn_stream_stats(p.tx, 9, &st), -ENOENT);
    pair_free(&p);
}

/* A connection that is never idle for a heartbeat period still measures
 * its round trip: the sender sends without pause for ~1 s (timeout 1 s:
 * heartbeat period 31 ms), and its last RTT is set while the stream runs. */
/* Threads of this process (/proc/self/status). */
static int count_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* A connection's threads do not grow with its streams: each end runs one
 * connection thread (dialer: reconnects and heartbeats; listener: accepts),
 * one receive thread and one thread for every stream's sending (dialer) or
 * credits (listener): 3 + 3 with 1 stream and with 4. */
BOTH(threads_per_connection_do_not_grow_with_streams, 60)
{
    /* Round 0 warms up (ZeroMQ's context starts its own threads once). */
    int extra[3];
    const unsigned ns[3] = {1, 1, MAXS};
    for (int t = 0; t < 3; t++) {
        struct pair p;
        pair_init(&p, ns[t], 100, 8);
        int th0 = count_threads();
        pair_listen(&p, &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
        pair_dial(&p, weir__conn_endpoint(p.rx),
                  &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
        /* the listener's rx thread starts once it has judged the HELLO */
        extra[t] = t_settled(count_threads, th0 + 6, 200, 3000) - th0;
        pair_run(&p);
        for (unsigned i = 0; i < p.ns; i++)
            side_check(&p.s[i]);
        pair_free(&p);
    }
    fprintf(stderr, "threads of a connection pair: %d with 1 stream, %d with %u\n", extra[1],
            extra[2], MAXS);
    cr_assert_eq(extra[2], extra[1], "%d threads with 1 stream, %d with %u", extra[1], extra[2],
                 MAXS);
    if (g_tp == WEIR_TRANSPORT_URING)
        cr_assert_eq(extra[1], 6, "%d threads for a connection pair", extra[1]);
}

/* Without futex_waitv (a kernel before 5.16, a seccomp filter) the
 * connection's send and credit threads poll every 100 us instead: every
 * stream still arrives whole, one of them through a stalled reader. */
BOTH(streams_whole_without_futex_waitv, 120)
{
    weir__wait_many_force_poll();
    const uint64_t n = SANITIZED ? 2000 : 20000;
    struct pair p;
    pair_init(&p, 3, n, 8);
    p.s[1].stall_at = n / 2;
    pair_listen(&p, &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_dial(&p, weir__conn_endpoint(p.rx), &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_run(&p);
    uint64_t t0 = t_now_ns();
    while (!__atomic_load_n(&p.s[1].stalled, __ATOMIC_ACQUIRE) && t_ms_since(t0) < 20000)
        t_sleep_ms(1);
    cr_assert(__atomic_load_n(&p.s[1].stalled, __ATOMIC_ACQUIRE), "stream 2 never stalled");
    t_sleep_ms(50);
    __atomic_store_n(&p.s[1].go, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < p.ns; i++)
        side_check(&p.s[i]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    struct weir__conn_stream_stats st;
    cr_assert_eq(weir__conn_stream_stats(p.tx, 2, &st), 0);
    cr_assert_gt(st.credit_stalls, 0, "the stalled stream ran out of credit");
    pair_free(&p);
}

BOTH(busy_connection_measures_its_round_trip, 60)
{
    const uint64_t n = 16 * 800;
    struct pair p;
    pair_init(&p, 1, n, 8);
    p.s[0].pace_us = 1000; /* 16 messages per ms: ~0.8 s, never idle for 31 ms */
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 1000};
    pair_listen(&p, &lo);
    pair_dial(&p, weir__conn_endpoint(p.rx), &lo);
    pair_run(&p);
    struct weir_link_stats ls;
    struct weir__conn_stream_stats st = {0};
    uint64_t rtt = 0;
    while (rtt == 0 && st.messages < n / 2) {
        t_sleep_ms(5);
        cr_assert_eq(weir__conn_stats(p.tx, &ls), 0);
        rtt = ls.last_rtt_ns;
        cr_assert_eq(weir__conn_stream_stats(p.rx, 1, &st), 0); /* what arrived by then */
    }
    cr_assert_gt(rtt, 0, "no round trip measured in the first half of a busy stream");
    cr_assert_lt(rtt, 1000000000ull, "round trip %llu ns", (unsigned long long)rtt);
    cr_assert_lt(st.messages, n, "measured while the stream ran");
    side_check(&p.s[0]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    pair_free(&p);
}

BOTH(stalled_stream_does_not_stall_the_others, 120)
{
    const uint64_t n = SANITIZED ? 3000 : 20000;
    struct pair p;
    pair_init(&p, NS, n, 8);
    p.s[1].stall_at = 100; /* stream 2's reader stops after 100 messages */
    pair_listen(&p, &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_dial(&p, weir__conn_endpoint(p.rx), &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_run(&p);
    side_check(&p.s[0]);
    side_check(&p.s[2]);
    /* streams 1 and 3 are done; stream 2 is stalled, alive, on the same connection */
    cr_assert(__atomic_load_n(&p.s[1].stalled, __ATOMIC_ACQUIRE), "stream 2 never stalled");
    cr_assert_eq(wait_stream(p.tx, 1, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(wait_stream(p.tx, 3, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_stream_status(p.tx, 2), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_stream_status(p.rx, 2), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_status(p.tx), 0);
    struct weir__conn_stream_stats st;
    for (int k = 0; k < 2500; k++) { /* stream 2 fills w, then nothing moves */
        weir__conn_stream_stats(p.rx, 2, &st);
        if (st.messages >= 100 + 8)
            break;
        t_sleep_ms(2);
    }
    t_sleep_ms(50);
    cr_assert_eq(weir__conn_stream_stats(p.rx, 2, &st), 0);
    /* w of stream 2 is full (depth 8 past the reader's 100) and nothing more was granted */
    cr_assert_eq(st.messages, 100 + 8, "stream 2 committed %llu", (unsigned long long)st.messages);
    cr_assert_eq(st.limit, 100 + 8, "stream 2 granted up to %llu", (unsigned long long)st.limit);
    cr_assert_eq(weir__conn_stream_stats(p.tx, 2, &st), 0);
    cr_assert_eq(st.messages, 100 + 8);
    cr_assert_geq(st.credit_stalls, 1);
    /* the reader resumes: the credit thread grants again, stream 2 completes */
    __atomic_store_n(&p.s[1].go, 1, __ATOMIC_RELEASE);
    side_check(&p.s[1]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    struct weir_link_stats ls;
    weir__conn_stats(p.tx, &ls);
    cr_assert_eq(ls.reconnects, 0);
    cr_assert_eq(ls.messages, 3 * n);
    pair_free(&p);
}

/*
 * A sender whose own ring is shallower than the receiver's ACK step (c of
 * depth 4, w of depth 64: an ACK every 32 messages) on a connection kept
 * busy by another stream: its messages are acknowledged within ACK_DELAY_MS
 * all the same, so it finishes while the busy stream still runs.
 */
BOTH(shallow_sender_acknowledged_under_load, 120)
{
    const uint64_t nbusy = SANITIZED ? 100000 : 600000, nshallow = SANITIZED ? 100 : 500;
    struct pair p;
    pair_init(&p, 2, nbusy, 64);
    weir_chan_free(p.s[1].c);
    p.s[1].c = mkchan(4);
    p.s[1].n = nshallow;
    pair_listen(&p, &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_dial(&p, weir__conn_endpoint(p.rx), &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    uint64_t t0 = t_now_ns();
    pair_run(&p);
    side_check(&p.s[1]);
    double ms = t_ms_since(t0);
    struct weir__conn_stream_stats st;
    cr_assert_eq(weir__conn_stream_stats(p.rx, 1, &st), 0);
    fprintf(stderr, "%s: shallow stream: %llu messages in %.0f ms, the busy one at %llu of %llu\n",
            g_tp == WEIR_TRANSPORT_ZMQ ? "zmq" : "uring", (unsigned long long)nshallow, ms,
            (unsigned long long)st.messages, (unsigned long long)nbusy);
    cr_assert_lt(st.messages, nbusy, "the busy stream ended first: the shallow one waited for it");
    side_check(&p.s[0]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    pair_free(&p);
}

BOTH(stream_error_record_ends_it_alone, 120)
{
    const uint64_t n = SANITIZED ? 3000 : 20000;
    struct pair p;
    pair_init(&p, NS, n, 8);
    p.s[1].err_at = 500; /* stream 2: 500 messages, an error record, then close */
    /* streams 1 and 3 last ~0.25 s (~1.1 s sanitized, where n is smaller and
     * stream 2's end takes longer to see): still running when it ends */
    p.s[0].pace_us = p.s[2].pace_us = SANITIZED ? 6000 : 200;
    pair_listen(&p, &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_dial(&p, weir__conn_endpoint(p.rx), &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000});
    pair_run(&p);
    side_check(&p.s[1]);
    cr_assert_str_eq(p.s[1].errtext, "actor 'a2' failed at message 500");
    cr_assert_eq(p.s[1].err_seq, 500);
    /* stream 2 ended at both ends while the others still run */
    cr_assert_eq(wait_stream(p.tx, 2, 5000), -EPIPE, "%s", weir_errmsg());
    char want[200];
    snprintf(want, sizeof want, "link %s: stream 2 ended (channel closed, every message "
             "acknowledged)", weir__conn_endpoint(p.rx));
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(weir__conn_stream_status(p.rx, 2), -EPIPE);
    snprintf(want, sizeof want, "link %s: stream 2 ended (the sender's channel closed)",
             weir__conn_endpoint(p.rx));
    cr_assert_str_eq(weir_errmsg(), want);
    struct weir__conn_stream_stats st;
    weir__conn_stream_stats(p.rx, 1, &st);
    cr_assert_lt(st.messages, n, "stream 1 was still running when stream 2 ended");
    cr_assert_eq(weir__conn_stream_status(p.tx, 1), 0);
    cr_assert_eq(weir__conn_status(p.tx), 0);
    cr_assert_eq(weir__conn_status(p.rx), 0);
    side_check(&p.s[0]);
    side_check(&p.s[2]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    weir__conn_stream_stats(p.rx, 2, &st);
    cr_assert_eq(st.messages, 501, "500 messages and the error record");
    pair_free(&p);
}

/* HELLO that names a stream the listener does not carry, or misses one. */
static void refused_plan(const uint32_t *ids, unsigned nids, const char *why)
{
    struct pair p;
    pair_init(&p, 2, 1, 4);
    pair_listen(&p, &(weir_link_opts){.transport = g_tp});
    weir_chan *cs[4];
    weir__conn *tx = weir__conn_dial(weir__conn_endpoint(p.rx), &(weir_link_opts){.transport = g_tp});
    cr_assert_not_null(tx, "%s", weir_errmsg());
    for (unsigned i = 0; i < nids; i++) {
        cs[i] = mkchan(4);
        cr_assert_eq(weir__conn_add_send_stream(tx, ids[i], cs[i], -1), 0, "%s", weir_errmsg());
    }
    {
        int rc_ = weir__conn_start(tx);
        cr_assert_eq(rc_, -ECONNREFUSED, "start: %d %s", rc_, weir_errmsg());
    }
    char want[300];
    snprintf(want, sizeof want, "link %s: refused by the peer: %s", weir__conn_endpoint(p.rx),
             why);
    cr_assert_str_eq(weir_errmsg(), want);
    struct weir_link_stats ls;
    weir__conn_stats(p.rx, &ls);
    cr_assert_eq(ls.refused, 1);
    cr_assert(strncmp(ls.last_refusal, "refused 127.0.0.1:", 18) == 0, "%s", ls.last_refusal);
    cr_assert(strstr(ls.last_refusal, why) && strlen(strstr(ls.last_refusal, why)) == strlen(why),
              "refusal '%s' does not end with '%s'", ls.last_refusal, why);
    cr_assert_eq(weir__conn_status(p.rx), 0, "the listener still waits for its sender");
    weir__conn_free(tx);
    for (unsigned i = 0; i < nids; i++) {
        struct weir_chan_stats cst;
        weir_chan_stats(cs[i], &cst);
        cr_assert_eq(cst.nreaders, 0, "the dialer gave its reader back");
        weir_chan_free(cs[i]);
    }
    pair_free(&p);
}

BOTH(unknown_stream_refused, 30)
{
    refused_plan((const uint32_t[]){1, 2, 7}, 3, "opens stream 7, which this end does not carry");
}

BOTH(missing_stream_refused, 30)
{
    refused_plan((const uint32_t[]){1}, 1, "does not open stream 2 (channel 'anon')");
}

BOTH(declaration_errors, 30)
{
    weir_chan *c = mkchan(4);
    weir__conn *rx = weir__conn_listen("tcp://127.0.0.1:0", &(weir_link_opts){.transport = g_tp});
    cr_assert_not_null(rx);
    const char *ep = weir__conn_endpoint(rx);
    char want[200];
    cr_assert_eq(weir__conn_add_recv_stream(rx, 0, c), -EINVAL);
    snprintf(want, sizeof want, "link %s: stream id 0 (ids start at 1; 0 is the connection)", ep);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(weir__conn_add_send_stream(rx, 1, c, -1), -EINVAL);
    snprintf(want, sizeof want, "link %s: stream 1: a listening end carries receiving streams", ep);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(weir__conn_add_recv_stream(rx, 1, NULL), -EINVAL);
    snprintf(want, sizeof want, "link %s: stream 1: NULL channel", ep);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(weir__conn_add_recv_stream(rx, 1, c), 0);
    cr_assert_eq(weir__conn_add_recv_stream(rx, 1, c), -EINVAL);
    snprintf(want, sizeof want, "link %s: stream 1 declared twice", ep);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(weir__conn_start(rx), 0);
    cr_assert_eq(weir__conn_add_recv_stream(rx, 2, c), -EINVAL);
    snprintf(want, sizeof want, "link %s: stream 2: streams are declared before start", ep);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(weir__conn_stream_status(rx, 5), -ENOENT);
    snprintf(want, sizeof want, "link %s: no stream 5", ep);
    cr_assert_str_eq(weir_errmsg(), want);
    weir__conn *tx = weir__conn_dial("tcp://127.0.0.1:1", &(weir_link_opts){.transport = g_tp});
    cr_assert_not_null(tx);
    cr_assert_eq(weir__conn_start(tx), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link tcp://127.0.0.1:1: no stream declared");
    weir__conn_free(tx);
    tx = weir__conn_dial("tcp://127.0.0.1:1", &(weir_link_opts){.transport = g_tp});
    cr_assert_eq(weir__conn_add_send_stream(tx, 3, c, 5), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link tcp://127.0.0.1:1: stream 3: reader 5 of channel 'anon' "
                     "is not registered here");
    _Static_assert(WEIR__LINK_MAX_STREAMS == 64 && WEIR_CHAN_MAX_READERS >= 64, "64 readers of c");
    for (uint32_t i = 1; i <= 64; i++)
        cr_assert_eq(weir__conn_add_send_stream(tx, i, c, -1), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_add_send_stream(tx, 65, c, -1), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "link tcp://127.0.0.1:1: stream 65: a connection carries at "
                     "most 64 streams");
    struct weir_chan_stats cst;
    weir_chan_stats(c, &cst);
    cr_assert_eq(cst.nreaders, 64);
    weir__conn_free(tx);
    weir_chan_stats(c, &cst);
    cr_assert_eq(cst.nreaders, 0, "free gave every reader back");
    cr_assert_eq(weir__conn_free(rx), 0);
    weir_chan_free(c);
}

/* ---- a TCP proxy that can reset the connection (tcp_proxy.h) ------------- */

#include "tcp_proxy.h"

/* Once tx has more than acked messages acknowledged: swallow what is in
 * flight for a moment (every stream must resend from its last ack), then
 * reset the connection through the proxy. */
static void reset_after_acks(struct proxy *px, weir__conn *tx, uint64_t acked)
{
    struct weir_link_stats ls;
    for (int k = 0; k < 2000; k++) {
        weir__conn_stats(tx, &ls);
        if (ls.acked > acked)
            break;
        t_sleep_ms(2);
    }
    cr_assert_gt(ls.acked, acked);
    __atomic_store_n(&px->mode, 1, __ATOMIC_RELEASE);
    t_sleep_ms(30);
    __atomic_store_n(&px->cut, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&px->mode, 0, __ATOMIC_RELEASE);
}

BOTH(resume_after_reset_every_stream_whole, 120)
{
    const uint64_t n = SANITIZED ? 4000 : 15000;
    struct pair p;
    pair_init(&p, NS, n, 16);
    for (unsigned i = 0; i < NS; i++)
        p.s[i].pace_us = 300;
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 3000};
    pair_listen(&p, &lo);
    struct proxy px;
    proxy_start(&px, weir__conn_endpoint(p.rx));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", px.port);
    pair_dial(&p, ep, &lo);
    pair_run(&p);
    struct weir_link_stats ls;
    reset_after_acks(&px, p.tx, 3000);
    for (unsigned i = 0; i < NS; i++)
        side_check(&p.s[i]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    weir__conn_stats(p.tx, &ls);
    cr_assert_eq(ls.reconnects, 1, "sender reconnects %llu", (unsigned long long)ls.reconnects);
    cr_assert_geq(ls.messages, 3 * n, "resent messages count as sent");
    weir__conn_stats(p.rx, &ls);
    cr_assert_eq(ls.reconnects, 1, "receiver reconnects %llu", (unsigned long long)ls.reconnects);
    cr_assert_eq(ls.messages, 3 * n, "the receiver committed each message once");
    for (unsigned i = 0; i < NS; i++) {
        struct weir__conn_stream_stats st;
        weir__conn_stream_stats(p.rx, p.s[i].k, &st);
        cr_assert_eq(st.messages, n, "stream %u committed %llu", p.s[i].k,
                     (unsigned long long)st.messages);
    }
    proxy_stop(&px);
    pair_free(&p);
}

/* Two streams through a proxy (stream 1: 8 messages, within its first
 * credits; stream 2: more), connected, then the receiver's answers lost
 * (proxy mode 2) until the test cuts the connection. */
static void lost_answers_pair(struct pair *p, struct proxy *px)
{
    pair_init(p, 2, 8, 16);
    p->s[1].n = SANITIZED ? 1000 : 4000;
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 20000};
    pair_listen(p, &lo);
    proxy_start(px, weir__conn_endpoint(p->rx));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", px->port);
    pair_dial(p, ep, &lo);
    t_sleep_ms(200); /* HELLO and WELCOME through */
    __atomic_store_n(&px->mode, 2, __ATOMIC_RELEASE);
}

/* The receiver ended stream 1 but its answer was lost (the sender's stream
 * still runs): cut the connection; after the reconnect the sender's stream
 * 1 ends with `want` within 3 s (a reconnect, not a timeout). */
static void cut_then_stream1_ends(struct pair *p, struct proxy *px, int want)
{
    t_sleep_ms(50);
    cr_assert_eq(weir__conn_stream_status(p->tx, 1), 0, "the sender never heard its answer");
    __atomic_store_n(&px->cut, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&px->mode, 0, __ATOMIC_RELEASE);
    uint64_t t0 = t_now_ns();
    cr_assert_eq(wait_stream(p->tx, 1, 5000), want, "sender's stream 1: %d",
                 weir__conn_stream_status(p->tx, 1));
    cr_assert_lt(t_ms_since(t0), 3000, "it ended within a reconnect, not a timeout");
}

/* A stream the receiver ended (every message and the CLOSE arrived) whose
 * last ACK was lost in a cut: after the reconnect the receiver grants it
 * nothing, and the sender closes it again without credit (a CLOSE takes
 * none); the receiver acknowledges that, and the stream ends cleanly at
 * once, while the connection's other stream goes on. */
BOTH(ended_stream_ends_after_its_last_ack_was_lost, 60)
{
    struct pair p;
    struct proxy px;
    lost_answers_pair(&p, &px);
    struct side *a = &p.s[0], *b = &p.s[1];
    pthread_create(&a->rt, NULL, reader_thr, a);
    pthread_create(&a->wt, NULL, writer_thr, a);
    cr_assert_eq(wait_stream(p.rx, 1, 5000), -EPIPE, "the receiver ended stream 1: %s",
                 weir_errmsg());
    cut_then_stream1_ends(&p, &px, -EPIPE);
    side_check(a);
    pthread_create(&b->rt, NULL, reader_thr, b);
    pthread_create(&b->wt, NULL, writer_thr, b);
    side_check(b);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    struct weir_link_stats ls;
    weir__conn_stats(p.tx, &ls);
    cr_assert_eq(ls.reconnects, 1, "sender reconnects %llu", (unsigned long long)ls.reconnects);
    struct weir__conn_stream_stats st;
    weir__conn_stream_stats(p.tx, 1, &st);
    cr_assert_eq(st.frames, 8 + 2, "8 DATA, nothing resent, and the CLOSE twice: %llu frames",
                 (unsigned long long)st.frames);
    weir__conn_stream_stats(p.rx, 1, &st);
    cr_assert_eq(st.messages, 8);
    cr_assert_eq(st.frames, 8 + 2, "the receiver got both CLOSEs: %llu frames",
                 (unsigned long long)st.frames);
    proxy_stop(&px);
    pair_free(&p);
}

/* The same with the connection's only stream: the receiver has ended the
 * whole connection, so it refuses the reconnect ("the stream has ended"),
 * but its REFUSE names the stream as ended cleanly (its CLOSE came after
 * every message), and the sender ends it as if the lost ACK had come:
 * -EPIPE with the clean text, not -ECONNREFUSED. */
BOTH(last_stream_ends_cleanly_after_its_last_ack_was_lost, 60)
{
    struct pair p;
    struct proxy px;
    pair_init(&p, 1, 8, 16);
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 20000};
    pair_listen(&p, &lo);
    proxy_start(&px, weir__conn_endpoint(p.rx));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", px.port);
    pair_dial(&p, ep, &lo);
    t_sleep_ms(200); /* HELLO and WELCOME through */
    __atomic_store_n(&px.mode, 2, __ATOMIC_RELEASE);
    struct side *a = &p.s[0];
    pthread_create(&a->rt, NULL, reader_thr, a);
    pthread_create(&a->wt, NULL, writer_thr, a);
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "the receiver ended: %s", weir_errmsg());
    cut_then_stream1_ends(&p, &px, -EPIPE);
    side_check(a);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    char want[200];
    snprintf(want, sizeof want,
             "link %s: stream ended (channel closed, every message acknowledged)", ep);
    struct weir__conn_stream_stats st;
    weir__conn_stream_stats(p.tx, 1, &st);
    cr_assert_eq(st.frames, 8 + 1, "8 DATA and one CLOSE, nothing resent: %llu frames",
                 (unsigned long long)st.frames);
    cr_assert_eq(weir__conn_status(p.tx), -EPIPE);
    cr_assert_str_eq(weir_errmsg(), want);
    struct weir_link_stats ls;
    weir__conn_stats(p.rx, &ls);
    /* Once per reconnect: the proxy dropped the answers to those made before the cut. */
    cr_assert_geq(ls.refused, 1);
    const char *tail = ": the stream has ended";
    size_t lr = strlen(ls.last_refusal);
    cr_assert(lr > strlen(tail) && !strcmp(ls.last_refusal + lr - strlen(tail), tail), "%s",
              ls.last_refusal);
    proxy_stop(&px);
    pair_free(&p);
}

/* A stream the receiver refused (its channel w was closed by its user) whose
 * REFUSE was lost in a cut: the receiver says it again after the WELCOME,
 * and the sender's stream fails at once with the receiver's reason, while
 * the other stream goes on. */
BOTH(refused_stream_fails_after_its_refuse_was_lost, 60)
{
    struct pair p;
    struct proxy px;
    lost_answers_pair(&p, &px);
    struct side *a = &p.s[0], *b = &p.s[1];
    weir_chan_close(a->w); /* stream 1 cannot be delivered: the receiver refuses it */
    pthread_create(&a->wt, NULL, writer_thr, a);
    pthread_join(a->wt, NULL);
    cr_assert_eq(a->wf.text[0], 0, "%s", a->wf.text);
    int st1 = wait_stream(p.rx, 1, 5000);
    cr_assert_eq(st1, -ECONNABORTED, "the receiver failed stream 1 (w closed under it): %d", st1);
    cut_then_stream1_ends(&p, &px, -ECONNABORTED);
    struct weir__conn_stream_stats st;
    weir__conn_stream_stats(p.tx, 1, &st);
    cr_assert_eq(st.status, -ECONNABORTED);
    pthread_create(&b->rt, NULL, reader_thr, b);
    pthread_create(&b->wt, NULL, writer_thr, b);
    side_check(b);
    cr_assert_eq(wait_stream(p.tx, 2, 5000), -EPIPE, "stream 2 ended cleanly");
    struct weir_link_stats ls;
    weir__conn_stats(p.tx, &ls);
    cr_assert_eq(ls.reconnects, 1, "sender reconnects %llu", (unsigned long long)ls.reconnects);
    proxy_stop(&px);
    pair_free(&p);
}

/* ---- a port shared by several listeners (weir__conn_port) ------------------------ */

/* Three senders, each with its own streams, into one port: one listening
 * socket; every stream arrives whole; each listener counts only its own. */
BOTH(port_three_senders_one_socket, 120)
{
    const uint64_t n = SANITIZED ? 3000 : 30000;
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 5000};
    int sock0 = count_sockets();
    weir__conn_port *pt = weir__conn_port_listen("tcp://127.0.0.1:0", &lo);
    cr_assert_not_null(pt, "%s", weir_errmsg());
    cr_assert_eq(count_sockets(), sock0 + 1, "the port holds one socket");
    struct pair p[3];
    const unsigned ns[3] = {2, 1, 2};
    unsigned next = 1;
    for (int i = 0; i < 3; i++) {
        pair_init(&p[i], ns[i], n, 8);
        for (unsigned k = 0; k < ns[i]; k++)
            p[i].s[k].k = next++; /* stream ids unique among the port's listeners */
        p[i].rx = weir__conn_listen_on(pt, &lo);
        cr_assert_not_null(p[i].rx, "%s", weir_errmsg());
        for (unsigned k = 0; k < ns[i]; k++)
            cr_assert_eq(weir__conn_add_recv_stream(p[i].rx, p[i].s[k].k, p[i].s[k].w), 0, "%s",
                         weir_errmsg());
        cr_assert_eq(weir__conn_start(p[i].rx), 0, "%s", weir_errmsg());
        cr_assert_str_eq(weir__conn_endpoint(p[i].rx), weir__conn_port_endpoint(pt));
    }
    cr_assert_eq(weir__conn_port_start(pt), 0, "%s", weir_errmsg());
    for (int i = 0; i < 3; i++)
        pair_dial(&p[i], weir__conn_port_endpoint(pt), &lo);
    for (int i = 0; i < 3; i++)
        pair_run(&p[i]);
    cr_assert_eq(count_sockets(), sock0 + 1 + 3 * 2, "%d sockets", count_sockets() - sock0);
    for (int i = 0; i < 3; i++) {
        for (unsigned k = 0; k < ns[i]; k++)
            side_check(&p[i].s[k]);
        cr_assert_eq(wait_status(p[i].tx, 5000), -EPIPE, "%s", weir_errmsg());
        cr_assert_eq(wait_status(p[i].rx, 5000), -EPIPE, "%s", weir_errmsg());
        struct weir_link_stats ls;
        cr_assert_eq(weir__conn_stats(p[i].rx, &ls), 0);
        cr_assert_eq(ls.messages, ns[i] * n, "listener %d: %llu", i,
                     (unsigned long long)ls.messages);
        cr_assert_eq(ls.refused, 0);
        cr_assert_eq(ls.reconnects, 0);
    }
    char last[256];
    cr_assert_eq(weir__conn_port_refusals(pt, last, sizeof last), 0);
    cr_assert_str_eq(last, "");
    for (int i = 0; i < 3; i++)
        pair_free(&p[i]);
    weir__conn_port_free(pt);
    int left = settled_sockets(sock0);
    cr_assert_eq(left, sock0, "sockets left behind (%d)", left - sock0);
}

/* The port refuses what no listener of it carries, and garbage, naming the
 * reason; a listener's own checks still run (a wrong token); the stream
 * that is running meanwhile arrives whole. */
BOTH(port_refusals_leave_the_others_alone, 120)
{
    const uint64_t n = SANITIZED ? 2000 : 20000;
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 5000, .token = "secret"};
    weir__conn_port *pt = weir__conn_port_listen("tcp://127.0.0.1:0", &lo);
    cr_assert_not_null(pt, "%s", weir_errmsg());
    struct pair p;
    pair_init(&p, 1, n, 8);
    p.s[0].pace_us = 100;
    p.rx = weir__conn_listen_on(pt, &lo);
    cr_assert_not_null(p.rx, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_add_recv_stream(p.rx, 1, p.s[0].w), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_start(p.rx), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_port_start(pt), 0, "%s", weir_errmsg());
    pair_dial(&p, weir__conn_port_endpoint(pt), &lo);
    pair_run(&p);

    /* 1. a stream no listener here carries */
    weir_chan *c = mkchan(4);
    weir__conn *tx = weir__conn_dial(weir__conn_port_endpoint(pt), &lo);
    cr_assert_not_null(tx, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_add_send_stream(tx, 7, c, -1), 0, "%s", weir_errmsg());
    {
        int rc_ = weir__conn_start(tx);
        cr_assert_eq(rc_, -ECONNREFUSED, "start: %d %s", rc_, weir_errmsg());
    }
    char want[300];
    snprintf(want, sizeof want, "link %s: refused by the peer: opens stream 7, which this end "
             "does not carry", weir__conn_port_endpoint(pt));
    cr_assert_str_eq(weir_errmsg(), want);
    weir__conn_free(tx);
    char last[256];
    cr_assert_eq(weir__conn_port_refusals(pt, last, sizeof last), 1);
    cr_assert(strncmp(last, "refused 127.0.0.1:", 18) == 0, "%s", last);
    cr_assert(strstr(last, ": opens stream 7, which this end does not carry"), "%s", last);

    /* 2. garbage instead of a HELLO */
    uint16_t port = (uint16_t)atoi(strrchr(weir__conn_port_endpoint(pt), ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char junk[64] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    uint64_t t0 = t_now_ns();
    while (weir__conn_port_refusals(pt, NULL, 0) < 2 && t_ms_since(t0) < 5000)
        t_sleep_ms(2);
    close(fd);
    cr_assert_eq(weir__conn_port_refusals(pt, last, sizeof last), 2);
    cr_assert(strstr(last, "magic"), "%s", last);

    /* 3. the right stream with a wrong token: the listener judges it */
    tx = weir__conn_dial(weir__conn_port_endpoint(pt),
                         &(weir_link_opts){.transport = g_tp, .timeout_ms = 5000, .token = "guess"});
    cr_assert_not_null(tx, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_add_send_stream(tx, 1, c, -1), 0, "%s", weir_errmsg());
    {
        int rc_ = weir__conn_start(tx);
        cr_assert_eq(rc_, -ECONNREFUSED, "start: %d %s", rc_, weir_errmsg());
    }
    snprintf(want, sizeof want, "link %s: refused by the peer: wrong token",
             weir__conn_port_endpoint(pt));
    cr_assert_str_eq(weir_errmsg(), want);
    weir__conn_free(tx);
    weir_chan_free(c);

    side_check(&p.s[0]);
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    struct weir_link_stats ls;
    cr_assert_eq(weir__conn_stats(p.rx, &ls), 0);
    cr_assert_eq(ls.messages, n);
    cr_assert_eq(ls.refused, 1, "the listener refused the wrong token");
    cr_assert_eq(ls.reconnects, 0);
    pair_free(&p);
    weir__conn_port_free(pt);
}

/* A reset connection comes back through the port to the same listener and
 * resumes from the last acknowledged message. */
BOTH(port_resume_after_reset, 120)
{
    const uint64_t n = SANITIZED ? 3000 : 12000;
    weir_link_opts lo = {.transport = g_tp, .timeout_ms = 3000};
    weir__conn_port *pt = weir__conn_port_listen("tcp://127.0.0.1:0", &lo);
    cr_assert_not_null(pt, "%s", weir_errmsg());
    struct pair p;
    pair_init(&p, 2, n, 16);
    for (unsigned i = 0; i < 2; i++)
        p.s[i].pace_us = 300;
    p.rx = weir__conn_listen_on(pt, &lo);
    cr_assert_not_null(p.rx, "%s", weir_errmsg());
    for (unsigned i = 0; i < 2; i++)
        cr_assert_eq(weir__conn_add_recv_stream(p.rx, p.s[i].k, p.s[i].w), 0, "%s",
                     weir_errmsg());
    cr_assert_eq(weir__conn_start(p.rx), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__conn_port_start(pt), 0, "%s", weir_errmsg());
    struct proxy px;
    proxy_start(&px, weir__conn_port_endpoint(pt));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", px.port);
    pair_dial(&p, ep, &lo);
    pair_run(&p);
    struct weir_link_stats ls;
    reset_after_acks(&px, p.tx, 2000);
    for (unsigned i = 0; i < 2; i++)
        side_check(&p.s[i]);
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    weir__conn_stats(p.rx, &ls);
    cr_assert_eq(ls.reconnects, 1, "receiver reconnects %llu", (unsigned long long)ls.reconnects);
    cr_assert_eq(ls.messages, 2 * n, "the receiver committed each message once");
    cr_assert_eq(weir__conn_port_refusals(pt, NULL, 0), 0);
    proxy_stop(&px);
    pair_free(&p);
    weir__conn_port_free(pt);
}
