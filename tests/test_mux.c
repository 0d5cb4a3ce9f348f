/* SPDX-License-Identifier: MIT */
/*
 * tests/test_mux.c - many streams on one link connection (channels/link.h,
 * channels/link_conn.c) over the io_uring TCP transport on loopback.
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

#include "channels/link.h"
#include "chan_util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef SANITIZED
#define SANITIZED 1
#endif
#endif

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

/* ---- tests ---------------------------------------------------------------------- */

Test(mux, four_streams_one_connection, .timeout = 120)
{
    const uint64_t n = SANITIZED ? 4000 : 40000;
    struct pair p;
    pair_init(&p, 4, n, 8);
    int sock0 = count_sockets();
    pair_listen(&p, &(weir_link_opts){.timeout_ms = 5000});
    cr_assert_eq(count_sockets(), sock0 + 1, "the listener holds one socket");
    pair_dial(&p, weir__conn_endpoint(p.rx), &(weir_link_opts){.timeout_ms = 5000});
    pair_run(&p);
    /* both ends of ONE TCP connection, beside the listener */
    cr_assert_eq(count_sockets(), sock0 + 3, "%d sockets for 4 streams", count_sockets() - sock0);
    for (unsigned i = 0; i < p.ns; i++)
        side_check(&p.s[i]);
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
