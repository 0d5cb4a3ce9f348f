/* SPDX-License-Identifier: MIT */
/*
 * tests/test_chan.c - unit tests of the shared-memory ring channel
 * (include/weir/chan.h, include/weir/stats.h).
 *
 * Every test checks exact behaviour stated in the header comments: message
 * order and sequence numbers, the exact number of messages the writer may
 * be ahead, exact errno values with an errmsg naming the channel, exact
 * counters. Every test runs under the `leak` fixture: its teardown aborts
 * (which makes the test program fail) when the test leaves an fd, a
 * memfd or /dev/shm mapping, or a /dev/shm/weir.* entry behind.
 *
 * Every blocking call takes a timeout (TMO = 10 s where the call should
 * succeed) so that a bug fails a test instead of hanging it.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>

#include "chan_util.h"
#include "channels/chan_internal.h"
#include "channels/layout.h"

extern char **environ;

/* ---- fixture: nothing leaks (leak_init / leak_fini: chan_util.h) ---------- */

TestSuite(chan, .init = leak_init, .fini = leak_fini, .timeout = 90);

/* ---- helpers (main thread only: they use cr_assert) ------------------------- */

static weir_chan *mk(const char *name, size_t slot, unsigned depth, unsigned max_readers)
{
    weir_chan_opts o = {.slot_bytes = slot, .depth = depth, .max_readers = max_readers};
    weir_chan *c = weir_chan_create(name, &o);
    cr_assert_not_null(c, "weir_chan_create(%s, slot %zu, depth %u, max_readers %u): %d %s",
                       name ? name : "NULL", slot, depth, max_readers, weir_errcode(),
                       weir_errmsg());
    return c;
}

static int reg(weir_chan *c)
{
    int id = weir_chan_register_reader(c);
    cr_assert_geq(id, 0, "register_reader: %d %s", id, weir_errmsg());
    return id;
}

/* Write message seq of len bytes (pattern t_fill) through reserve + commit. */
static void wr(weir_chan *c, uint64_t seq, size_t len, int timeout_ms)
{
    void *p = weir_chan_reserve(c, len, timeout_ms);
    cr_assert_not_null(p, "reserve of message %llu (%zu bytes): %d %s", (unsigned long long)seq,
                       len, weir_errcode(), weir_errmsg());
    t_fill(p, len, seq);
    int rc = weir_chan_commit(c, len);
    cr_assert_eq(rc, 0, "commit of message %llu: %d %s", (unsigned long long)seq, rc,
                 weir_errmsg());
}

/* Read message seq of len bytes, check everything, release if asked. */
static const void *rd(weir_chan *c, int id, uint64_t seq, size_t len, int release)
{
    weir_chan_msg m;
    memset(&m, 0xa5, sizeof m);
    int rc = weir_chan_read_msg(c, id, &m, TMO);
    cr_assert_eq(rc, 0, "reader %d: read of message %llu: %d %s", id, (unsigned long long)seq, rc,
                 weir_errmsg());
    cr_assert_eq(m.seq, seq, "reader %d: got seq %llu, expected %llu", id,
                 (unsigned long long)m.seq, (unsigned long long)seq);
    cr_assert_eq(m.len, len, "reader %d: message %llu has %zu bytes, expected %zu", id,
                 (unsigned long long)seq, m.len, len);
    cr_assert_eq(m.flags, 0u, "reader %d: message %llu has flags 0x%x", id,
                 (unsigned long long)seq, m.flags);
    long bad = t_check(m.data, m.len, seq);
    cr_assert_eq(bad, -1, "reader %d: message %llu corrupt at byte %ld of %zu", id,
                 (unsigned long long)seq, bad, len);
    if (release) {
        rc = weir_chan_release(c, id);
        cr_assert_eq(rc, 0, "reader %d: release of %llu: %d %s", id, (unsigned long long)seq, rc,
                     weir_errmsg());
    }
    return m.data;
}

static void rel(weir_chan *c, int id)
{
    int rc = weir_chan_release(c, id);
    cr_assert_eq(rc, 0, "reader %d: release: %d %s", id, rc, weir_errmsg());
}

static void dereg(weir_chan *c, int id)
{
    int rc = weir_chan_deregister_reader(c, id);
    cr_assert_eq(rc, 0, "deregister reader %d: %d %s", id, rc, weir_errmsg());
}

static void stats(const weir_chan *c, struct weir_chan_stats *st)
{
    memset(st, 0xa5, sizeof *st);
    int rc = weir_chan_stats(c, st);
    cr_assert_eq(rc, 0, "weir_chan_stats: %d %s", rc, weir_errmsg());
}

/* Check a failure: return value, weir_errcode() and an errmsg naming the channel. */
#define EXPECT_ERR(expr, code, name)                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (code), "%s: expected %d (%s), got %d; errmsg '%s'", #expr, (code),     \
                     strerror(-(code)), rc_, weir_errmsg());                                       \
        cr_assert_eq(weir_errcode(), (code), "weir_errcode() is %d after %s, expected %d",        \
                     weir_errcode(), #expr, (code));                                               \
        cr_assert(strstr(weir_errmsg(), (name)) != NULL,                                           \
                  "weir_errmsg() after %s does not name channel '%s': '%s'", #expr, (name),        \
                  weir_errmsg());                                                                  \
    } while (0)

#define EXPECT_NULL_ERR(expr, code, name)                                                          \
    do {                                                                                           \
        const void *p_ = (expr);                                                                   \
        cr_assert_null(p_, "%s should fail with %d (%s)", #expr, (code), strerror(-(code)));      \
        cr_assert_eq(weir_errcode(), (code), "%s: weir_errcode() is %d, expected %d (%s); '%s'",  \
                     #expr, weir_errcode(), (code), strerror(-(code)), weir_errmsg());             \
        cr_assert(strstr(weir_errmsg(), (name)) != NULL,                                           \
                  "weir_errmsg() after %s does not name channel '%s': '%s'", #expr, (name),        \
                  weir_errmsg());                                                                  \
    } while (0)

/* ---- reader threads --------------------------------------------------------- */

struct rthread {
    pthread_t th;
    weir_chan *c;
    int id;
    uint64_t first;    /* expected seq of the first message */
    uint64_t count;    /* messages to read */
    size_t maxlen;     /* lengths: t_len_for(seq, maxlen) ... */
    const size_t *lens; /* ... or lens[seq % nlens] */
    size_t nlens;
    unsigned hold_every; /* sleep hold_ms holding a message every hold_every messages */
    unsigned hold_ms;
    int expect_end; /* after count messages, the next read must return this (0: no check) */
    /* results */
    uint64_t got;
    int deregistered;
    struct t_fail f;
};

static size_t rt_len(const struct rthread *r, uint64_t seq)
{
    return r->lens ? r->lens[seq % r->nlens] : t_len_for(seq, r->maxlen);
}

static void rt_bail(struct rthread *r)
{
    /* Let the writer go on so that the main thread reaches its asserts. */
    if (weir_chan_deregister_reader(r->c, r->id) == 0)
        r->deregistered = 1;
}

static void *rthread_main(void *arg)
{
    struct rthread *r = arg;
    for (r->got = 0; r->got < r->count; r->got++) {
        uint64_t want = r->first + r->got;
        weir_chan_msg m;
        int rc = weir_chan_read_msg(r->c, r->id, &m, TMO);
        if (rc != 0) {
            t_failf(&r->f, "reader %d: read of message %llu failed: %d", r->id,
                    (unsigned long long)want, rc);
            rt_bail(r);
            return NULL;
        }
        size_t len = rt_len(r, want);
        long bad = -1;
        if (m.seq != want || m.len != len || m.flags != 0 ||
            (bad = t_check(m.data, m.len, want)) != -1) {
            t_failf(&r->f,
                    "reader %d: message #%llu: seq %llu (expected %llu), len %zu (expected "
                    "%zu), flags 0x%x, first bad byte %ld",
                    r->id, (unsigned long long)r->got, (unsigned long long)m.seq,
                    (unsigned long long)want, m.len, len, m.flags, bad);
            weir_chan_release(r->c, r->id);
            rt_bail(r);
            return NULL;
        }
        if (r->hold_every && want % r->hold_every == r->hold_every - 1)
            t_sleep_ms(r->hold_ms);
        rc = weir_chan_release(r->c, r->id);
        if (rc != 0) {
            t_failf(&r->f, "reader %d: release of %llu: %d", r->id, (unsigned long long)want,
                    rc);
            rt_bail(r);
            return NULL;
        }
    }
    if (r->expect_end) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(r->c, r->id, &m, TMO);
        if (rc != r->expect_end) {
            t_failf(&r->f, "reader %d: after %llu messages read returned %d (seq %llu), "
                    "expected %d",
                    r->id, (unsigned long long)r->got, rc,
                    rc == 0 ? (unsigned long long)m.seq : 0ull, r->expect_end);
            if (rc == 0)
                weir_chan_release(r->c, r->id);
        }
    }
    return NULL;
}

static void rt_start(struct rthread *r)
{
    int e = pthread_create(&r->th, NULL, rthread_main, r);
    cr_assert_eq(e, 0, "pthread_create: %s", strerror(e));
}

static void rt_join(struct rthread *r)
{
    pthread_join(r->th, NULL);
    cr_assert(r->f.text[0] == '\0', "%s", r->f.text);
    cr_assert_eq(r->got, r->count, "reader %d read %llu of %llu messages", r->id,
                 (unsigned long long)r->got, (unsigned long long)r->count);
}

/*
 * Wait until a thread has set *flag, at most ms. A thread blocked forever
 * (timeout -1) by a bug then fails the test instead of hanging it (the
 * thread dies with the test process).
 */
static int t_wait_flag(atomic_int *flag, int ms)
{
    uint64_t t0 = t_now_ns();
    while (!atomic_load(flag)) {
        if (t_ms_since(t0) > ms)
            return 0;
        t_sleep_ms(1);
    }
    return 1;
}

/* One blocking reserve (+ fill + commit) on a thread. */
struct wthread {
    pthread_t th;
    weir_chan *c;
    uint64_t seq;
    size_t len;
    int timeout_ms;
    atomic_int done;
    int err; /* 0 or weir_errcode() of the failed reserve / commit's return */
    uint64_t t_ret;
    char msg[512];
};

static void *wthread_main(void *arg)
{
    struct wthread *w = arg;
    void *p = weir_chan_reserve(w->c, w->len, w->timeout_ms);
    if (!p) {
        w->err = weir_errcode();
        snprintf(w->msg, sizeof w->msg, "%s", weir_errmsg());
    } else {
        t_fill(p, w->len, w->seq);
        w->err = weir_chan_commit(w->c, w->len);
        if (w->err)
            snprintf(w->msg, sizeof w->msg, "%s", weir_errmsg());
    }
    w->t_ret = t_now_ns();
    atomic_store(&w->done, 1);
    return NULL;
}

static void wt_start(struct wthread *w)
{
    int e = pthread_create(&w->th, NULL, wthread_main, w);
    cr_assert_eq(e, 0, "pthread_create: %s", strerror(e));
}

/* One blocking read (+ check + release) on a thread. */
struct r1thread {
    pthread_t th;
    weir_chan *c;
    int id;
    int timeout_ms;
    uint64_t want_seq;
    size_t want_len;
    atomic_int done;
    int rc;
    uint64_t seq;
    size_t len;
    long bad;
    uint64_t t_ret;
};

static void *r1thread_main(void *arg)
{
    struct r1thread *r = arg;
    weir_chan_msg m;
    r->bad = -1;
    r->rc = weir_chan_read_msg(r->c, r->id, &m, r->timeout_ms);
    r->t_ret = t_now_ns();
    if (r->rc == 0) {
        r->seq = m.seq;
        r->len = m.len;
        r->bad = t_check(m.data, m.len, m.seq);
        weir_chan_release(r->c, r->id);
    }
    atomic_store(&r->done, 1);
    return NULL;
}

static void r1_start(struct r1thread *r)
{
    int e = pthread_create(&r->th, NULL, r1thread_main, r);
    cr_assert_eq(e, 0, "pthread_create: %s", strerror(e));
}

/* =========================================================================== */
/* Ordering and exactly-once                                                    */
/* =========================================================================== */

static void run_ordering(unsigned nreaders, unsigned depth, uint64_t n, size_t maxlen,
                         unsigned hold_every)
{
    weir_chan *c = mk(NULL, 64, depth, 0);
    struct rthread r[8];
    memset(r, 0, sizeof r);
    uint64_t used = 0;
    for (unsigned i = 0; i < nreaders; i++) {
        r[i].c = c;
        r[i].id = reg(c);
        cr_assert_lt(r[i].id, WEIR_CHAN_MAX_READERS);
        cr_assert_eq(used & (1ull << r[i].id), 0, "reader id %d given twice", r[i].id);
        used |= 1ull << r[i].id;
        r[i].count = n;
        r[i].maxlen = maxlen;
        r[i].hold_every = i == 0 ? hold_every : 0; /* one slow reader */
        r[i].hold_ms = 1;
        r[i].expect_end = -EPIPE;
        rt_start(&r[i]);
    }
    uint64_t bytes = 0;
    for (uint64_t s = 0; s < n; s++) {
        size_t len = t_len_for(s, maxlen);
        if (s % 3 == 0) {
            wr(c, s, len, TMO);
        } else { /* the copying convenience takes the same path */
            uint8_t buf[256];
            t_fill(buf, len, s);
            int rc = weir_chan_write(c, buf, len, TMO);
            cr_assert_eq(rc, 0, "write of message %llu: %d %s", (unsigned long long)s, rc,
                         weir_errmsg());
        }
        bytes += len;
    }
    cr_assert_eq(weir_chan_close(c), 0, "close: %s", weir_errmsg());
    for (unsigned i = 0; i < nreaders; i++)
        rt_join(&r[i]);

    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, n);
    cr_assert_eq(st.bytes, bytes);
    cr_assert_eq(st.nreaders, nreaders);
    for (unsigned i = 0; i < nreaders; i++) {
        const struct weir_chan_reader_stats *rs = t_reader_stats(&st, r[i].id);
        cr_assert_not_null(rs, "reader %d missing from stats", r[i].id);
        cr_assert_eq(rs->consumed, n, "reader %d consumed %llu", r[i].id,
                     (unsigned long long)rs->consumed);
        dereg(c, r[i].id);
    }
    weir_chan_free(c);
}

Test(chan, ordering_one_reader)
{
    run_ordering(1, 8, 20000, 64, 0);
}

Test(chan, ordering_four_readers_one_slow)
{
    run_ordering(4, 8, 20000, 64, 97);
}

Test(chan, ordering_depth1_three_readers)
{
    run_ordering(3, 1, 5000, 64, 0);
}

Test(chan, ordering_full_slot_messages)
{
    /* lengths 0..slot_bytes inclusive: a message of exactly the slot size fits */
    run_ordering(2, 3, 5000, 64, 13);
}

Test(chan, zero_length_and_partial_commit)
{
    weir_chan *c = mk(NULL, 256, 4, 0);
    int a = reg(c);
    /* reserve 200, commit 10: the reader sees exactly 10 bytes */
    void *p = weir_chan_reserve(c, 200, TMO);
    cr_assert_not_null(p, "%s", weir_errmsg());
    t_fill(p, 200, 0);
    cr_assert_eq(weir_chan_commit(c, 10), 0, "%s", weir_errmsg());
    /* zero-length message through reserve(0) + commit(0), and through write */
    p = weir_chan_reserve(c, 0, TMO);
    cr_assert_not_null(p, "reserve(0): %s", weir_errmsg());
    cr_assert_eq(weir_chan_commit(c, 0), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_write(c, "", 0, TMO), 0, "%s", weir_errmsg());
    /* reserve 100, commit 0 */
    p = weir_chan_reserve(c, 100, TMO);
    cr_assert_not_null(p, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_commit(c, 0), 0, "%s", weir_errmsg());

    rd(c, a, 0, 10, 1);
    rd(c, a, 1, 0, 1);
    rd(c, a, 2, 0, 1);
    rd(c, a, 3, 0, 1);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 4);
    cr_assert_eq(st.bytes, 10);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, read_api_returns_pointer_and_len)
{
    weir_chan *c = mk(NULL, 128, 4, 0);
    int a = reg(c);
    wr(c, 0, 77, TMO);
    wr(c, 1, 0, TMO);
    size_t len = 12345;
    const void *p = weir_chan_read(c, a, &len, TMO);
    cr_assert_not_null(p, "%s", weir_errmsg());
    cr_assert_eq(len, 77);
    cr_assert_eq(t_check(p, len, 0), -1);
    rel(c, a);
    len = 12345;
    p = weir_chan_read(c, a, &len, TMO);
    cr_assert_not_null(p, "zero-length message must not read as a failure: %s", weir_errmsg());
    cr_assert_eq(len, 0);
    rel(c, a);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, no_registered_reader_never_blocks_writer)
{
    /* the writer waits only for registered readers */
    weir_chan *c = mk(NULL, 64, 2, 0);
    for (uint64_t s = 0; s < 1000; s++)
        wr(c, s, 8, 0);
    /* a reader registered now starts at the next message */
    int a = reg(c);
    wr(c, 1000, 8, 0);
    rd(c, a, 1000, 8, 1);
    dereg(c, a);
    weir_chan_free(c);
}

/* =========================================================================== */
/* The writer blocks while a reader lags                                         */
/* =========================================================================== */

Test(chan, writer_blocks_exactly_depth_ahead)
{
    char nm[64];
    t_name(nm, sizeof nm, "blk");
    const unsigned D = 4;
    weir_chan *c = mk(nm, 64, D, 0);
    int fast = reg(c), lag = reg(c);

    for (uint64_t s = 0; s < D; s++)
        wr(c, s, 16, 0); /* timeout 0: D messages fit without waiting */
    for (uint64_t s = 0; s < D; s++)
        rd(c, fast, s, 16, 1);

    /* message D needs slot 0, still unread by `lag`: a bounded wait times out */
    uint64_t t0 = t_now_ns();
    EXPECT_NULL_ERR(weir_chan_reserve(c, 16, 50), -ETIMEDOUT, nm);
    double ms = t_ms_since(t0);
    cr_assert_geq(ms, 45.0, "reserve(timeout 50 ms) gave up after %.1f ms", ms);

    /* timeout 0 never waits */
    t0 = t_now_ns();
    EXPECT_NULL_ERR(weir_chan_reserve(c, 16, 0), -ETIMEDOUT, nm);
    ms = t_ms_since(t0);
    cr_assert_lt(ms, 30.0, "reserve(timeout 0) took %.1f ms", ms);

    /* lag reads message 0 and holds it: still no room */
    rd(c, lag, 0, 16, 0);
    EXPECT_NULL_ERR(weir_chan_reserve(c, 16, 0), -ETIMEDOUT, nm);
    rel(c, lag); /* now slot 0 is free */
    wr(c, D, 16, 0);
    EXPECT_NULL_ERR(weir_chan_reserve(c, 16, 0), -ETIMEDOUT, nm);

    /* lag releases 1 and 2 and holds 3: the writer may write up to 3 + D - 1 */
    rd(c, lag, 1, 16, 1);
    rd(c, lag, 2, 16, 1);
    rd(c, lag, 3, 16, 0);
    for (uint64_t s = D + 1; s <= 3 + D - 1; s++)
        wr(c, s, 16, 0);
    EXPECT_NULL_ERR(weir_chan_reserve(c, 16, 0), -ETIMEDOUT, nm);
    rel(c, lag);
    wr(c, 3 + D, 16, 0);

    /* both readers see everything, in order */
    for (uint64_t s = D; s <= 3 + D; s++)
        rd(c, fast, s, 16, 1);
    for (uint64_t s = 4; s <= 3 + D; s++)
        rd(c, lag, s, 16, 1);
    dereg(c, fast);
    dereg(c, lag);
    weir_chan_free(c);
}

Test(chan, depth_is_exact)
{
    const unsigned depths[] = {1, 2, 3, 5, 8, 13};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        unsigned D = depths[k];
        weir_chan *c = mk(NULL, 32, D, 0);
        struct weir_chan_stats st;
        stats(c, &st);
        cr_assert_eq(st.depth, D, "stats.depth %u for depth %u", st.depth, D);
        int a = reg(c);
        for (uint64_t s = 0; s < D; s++)
            wr(c, s, 4, 0);
        cr_assert_null(weir_chan_reserve(c, 4, 0), "depth %u: message %u fitted", D, D);
        cr_assert_eq(weir_errcode(), -ETIMEDOUT);
        rd(c, a, 0, 4, 1);
        wr(c, D, 4, 0);
        cr_assert_null(weir_chan_reserve(c, 4, 0), "depth %u: message %u fitted", D, D + 1);
        cr_assert_eq(weir_errcode(), -ETIMEDOUT);
        dereg(c, a);
        weir_chan_free(c);
    }
}

Test(chan, release_wakes_sleeping_writer)
{
    weir_chan *c = mk(NULL, 64, 2, 0);
    int a = reg(c);
    wr(c, 0, 8, 0);
    wr(c, 1, 8, 0);
    struct wthread w = {.c = c, .seq = 2, .len = 8, .timeout_ms = TMO};
    wt_start(&w);
    t_sleep_ms(150); /* past spinning and yielding: asleep on the futex */
    cr_assert_eq(atomic_load(&w.done), 0, "reserve returned (%d %s) while the ring was full",
                 w.err, w.msg);
    uint64_t t_rel = t_now_ns(); /* before: the writer may wake inside release */
    rd(c, a, 0, 8, 1);
    cr_assert(t_wait_flag(&w.done, TMO), "the writer did not wake after the release");
    pthread_join(w.th, NULL);
    cr_assert_eq(w.err, 0, "blocked reserve failed: %d %s", w.err, w.msg);
    double lat = (double)(int64_t)(w.t_ret - t_rel) / 1e6;
    cr_assert_lt(lat, 1000.0, "writer woke %.1f ms after the release", lat);
    rd(c, a, 1, 8, 1);
    rd(c, a, 2, 8, 1);

    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_geq(st.writer_blocked_ns, 100000000ull,
                  "writer_blocked_ns %llu after a ~150 ms blocked reserve",
                  (unsigned long long)st.writer_blocked_ns);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, blocked_timed_out_reserve_counts_as_blocked)
{
    weir_chan *c = mk(NULL, 64, 1, 0);
    int a = reg(c);
    wr(c, 0, 8, 0);
    struct weir_chan_stats st;
    stats(c, &st);
    uint64_t before = st.writer_blocked_ns;
    cr_assert_null(weir_chan_reserve(c, 8, 60));
    cr_assert_eq(weir_errcode(), -ETIMEDOUT);
    stats(c, &st);
    cr_assert_gt(st.writer_blocked_ns, before, "writer_blocked_ns did not grow (%llu)",
                 (unsigned long long)st.writer_blocked_ns);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, read_timeouts)
{
    char nm[64];
    t_name(nm, sizeof nm, "rto");
    weir_chan *c = mk(nm, 64, 4, 0);
    int a = reg(c);
    weir_chan_msg m;
    uint64_t t0 = t_now_ns();
    EXPECT_ERR(weir_chan_read_msg(c, a, &m, 0), -ETIMEDOUT, nm);
    cr_assert_lt(t_ms_since(t0), 30.0, "read(timeout 0) waited %.1f ms", t_ms_since(t0));
    t0 = t_now_ns();
    EXPECT_ERR(weir_chan_read_msg(c, a, &m, 50), -ETIMEDOUT, nm);
    double ms = t_ms_since(t0);
    cr_assert_geq(ms, 45.0, "read(timeout 50) gave up after %.1f ms", ms);
    size_t len;
    EXPECT_NULL_ERR(weir_chan_read(c, a, &len, 0), -ETIMEDOUT, nm);
    /* a timed-out read holds nothing */
    EXPECT_ERR(weir_chan_release(c, a), -EINVAL, nm);
    wr(c, 0, 5, 0);
    rd(c, a, 0, 5, 1);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, write_wakes_sleeping_reader)
{
    weir_chan *c = mk(NULL, 64, 4, 0);
    int a = reg(c);
    struct r1thread r = {.c = c, .id = a, .timeout_ms = TMO};
    r1_start(&r);
    t_sleep_ms(150);
    cr_assert_eq(atomic_load(&r.done), 0, "read returned %d on an empty channel", r.rc);
    uint64_t t_w = t_now_ns(); /* before: the reader may wake inside commit */
    wr(c, 0, 33, 0);
    cr_assert(t_wait_flag(&r.done, TMO), "the reader did not wake after the write");
    pthread_join(r.th, NULL);
    cr_assert_eq(r.rc, 0, "sleeping read failed: %d", r.rc);
    cr_assert_eq(r.seq, 0);
    cr_assert_eq(r.len, 33);
    cr_assert_eq(r.bad, -1);
    double lat = (double)(int64_t)(r.t_ret - t_w) / 1e6;
    cr_assert_lt(lat, 1000.0, "reader woke %.1f ms after the write", lat);

    struct weir_chan_stats st;
    stats(c, &st);
    const struct weir_chan_reader_stats *rs = t_reader_stats(&st, a);
    cr_assert_not_null(rs);
    cr_assert_geq(rs->starved_ns, 100000000ull, "starved_ns %llu after a ~150 ms wait",
                  (unsigned long long)rs->starved_ns);
    cr_assert_eq(rs->consumed, 1);
    dereg(c, a);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Idle waiters use no CPU                                                       */
/* =========================================================================== */

static double thread_cpu_ms(pthread_t th)
{
    clockid_t cid;
    int e = pthread_getcpuclockid(th, &cid);
    cr_assert_eq(e, 0, "pthread_getcpuclockid: %s", strerror(e));
    struct timespec ts;
    cr_assert_eq(clock_gettime(cid, &ts), 0);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void idle_reader(int timeout_ms)
{
    weir_chan *c = mk(NULL, 64, 4, 0);
    int a = reg(c);
    struct r1thread r = {.c = c, .id = a, .timeout_ms = timeout_ms};
    r1_start(&r);
    t_sleep_ms(50); /* the spin and yield phases are over */
    double c0 = thread_cpu_ms(r.th);
    t_sleep_ms(300);
    double c1 = thread_cpu_ms(r.th);
    cr_assert_eq(atomic_load(&r.done), 0, "read returned %d on an empty channel", r.rc);
    cr_assert_lt(c1 - c0, 30.0, "an idle reader (timeout %d) used %.1f ms of CPU in 300 ms",
                 timeout_ms, c1 - c0);
    wr(c, 0, 8, 0);
    cr_assert(t_wait_flag(&r.done, TMO), "the idle reader did not wake after a write");
    pthread_join(r.th, NULL);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.seq, 0);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, idle_reader_no_cpu_forever)
{
    idle_reader(-1);
}

Test(chan, idle_reader_no_cpu_timed)
{
    idle_reader(TMO);
}

Test(chan, idle_writer_no_cpu)
{
    weir_chan *c = mk(NULL, 64, 1, 0);
    int a = reg(c);
    wr(c, 0, 8, 0);
    struct wthread w = {.c = c, .seq = 1, .len = 8, .timeout_ms = -1};
    wt_start(&w);
    t_sleep_ms(50);
    double c0 = thread_cpu_ms(w.th);
    t_sleep_ms(300);
    double c1 = thread_cpu_ms(w.th);
    cr_assert_eq(atomic_load(&w.done), 0, "reserve returned %d on a full ring", w.err);
    cr_assert_lt(c1 - c0, 30.0, "a blocked writer used %.1f ms of CPU in 300 ms", c1 - c0);
    rd(c, a, 0, 8, 1);
    cr_assert(t_wait_flag(&w.done, TMO), "the blocked writer did not wake after a release");
    pthread_join(w.th, NULL);
    cr_assert_eq(w.err, 0, "%s", w.msg);
    rd(c, a, 1, 8, 1);
    dereg(c, a);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Registration and deregistration                                              */
/* =========================================================================== */

Test(chan, late_reader_sees_only_later_messages)
{
    weir_chan *c = mk(NULL, 64, 8, 0);
    int a = reg(c);
    for (uint64_t s = 0; s < 5; s++)
        wr(c, s, 10, 0);
    int b = reg(c);
    cr_assert_neq(a, b);
    for (uint64_t s = 5; s < 8; s++)
        wr(c, s, 10, 0);
    for (uint64_t s = 5; s < 8; s++)
        rd(c, b, s, 10, 1);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, b, &m, 0), -ETIMEDOUT, "reader b saw an extra message");
    for (uint64_t s = 0; s < 8; s++)
        rd(c, a, s, 10, 1);
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

Test(chan, late_reader_on_full_ring_does_not_block_writer)
{
    const unsigned D = 4;
    weir_chan *c = mk(NULL, 64, D, 0);
    int a = reg(c);
    for (uint64_t s = 0; s < D; s++)
        wr(c, s, 10, 0);
    int b = reg(c); /* ring is full; b starts at message D */
    for (uint64_t s = 0; s < D; s++)
        rd(c, a, s, 10, 1);
    for (uint64_t s = D; s < 2 * D; s++)
        wr(c, s, 10, 0); /* b has read nothing, but holds no slot */
    cr_assert_null(weir_chan_reserve(c, 10, 0), "writer got more than D ahead of reader b");
    for (uint64_t s = D; s < 2 * D; s++)
        rd(c, b, s, 10, 1);
    for (uint64_t s = D; s < 2 * D; s++)
        rd(c, a, s, 10, 1);
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

Test(chan, deregister_lagging_reader_unblocks_sleeping_writer)
{
    weir_chan *c = mk(NULL, 64, 2, 0);
    int fast = reg(c), lag = reg(c);
    wr(c, 0, 8, 0);
    wr(c, 1, 8, 0);
    rd(c, fast, 0, 8, 1);
    rd(c, fast, 1, 8, 1);
    struct wthread w = {.c = c, .seq = 2, .len = 8, .timeout_ms = TMO};
    wt_start(&w);
    t_sleep_ms(150);
    cr_assert_eq(atomic_load(&w.done), 0, "reserve returned %d while reader %d lags", w.err,
                 lag);
    uint64_t t_d = t_now_ns();
    dereg(c, lag);
    cr_assert(t_wait_flag(&w.done, TMO), "the writer did not wake after the deregistration");
    pthread_join(w.th, NULL);
    cr_assert_eq(w.err, 0, "%s", w.msg);
    double lat = (double)(int64_t)(w.t_ret - t_d) / 1e6;
    cr_assert_lt(lat, 1000.0, "writer woke %.1f ms after the deregistration", lat);
    /* the deregistered id is gone */
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, lag, &m, 0), -EINVAL);
    /* and no longer holds anything back */
    rd(c, fast, 2, 8, 1);
    wr(c, 3, 8, 0);
    wr(c, 4, 8, 0);
    rd(c, fast, 3, 8, 1);
    rd(c, fast, 4, 8, 1);
    dereg(c, fast);
    weir_chan_free(c);
}

Test(chan, deregister_releases_held_message)
{
    weir_chan *c = mk(NULL, 64, 1, 0);
    int a = reg(c), b = reg(c);
    wr(c, 0, 8, 0);
    rd(c, a, 0, 8, 1);
    rd(c, b, 0, 8, 0); /* b holds message 0 */
    cr_assert_null(weir_chan_reserve(c, 8, 0));
    dereg(c, b);
    wr(c, 1, 8, 0);
    cr_assert_eq(weir_chan_release(c, b), -EINVAL, "release by a deregistered reader");
    rd(c, a, 1, 8, 1);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, force_deregister_from_other_handle)
{
    char nm[64];
    t_name(nm, sizeof nm, "force");
    weir_chan *c = mk(nm, 64, 2, 0);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "open: %s", weir_errmsg());

    /* 1. registered through the opened handle, removed through the creator */
    int r1 = reg(h);
    wr(c, 0, 8, 0);
    wr(c, 1, 8, 0);
    rd(h, r1, 0, 8, 0); /* holds */
    cr_assert_null(weir_chan_reserve(c, 8, 0));
    dereg(c, r1);
    wr(c, 2, 8, 0);
    wr(c, 3, 8, 0);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(h, r1, &m, 0), -EINVAL, "removed reader could still read");
    cr_assert_eq(weir_chan_release(h, r1), -EINVAL, "removed reader could still release");

    /* 2. registered through the creator, removed through the opened handle */
    int r2 = reg(c);
    wr(c, 4, 8, 0);
    wr(c, 5, 8, 0);
    cr_assert_null(weir_chan_reserve(c, 8, 0));
    struct wthread w = {.c = c, .seq = 6, .len = 8, .timeout_ms = TMO};
    wt_start(&w);
    t_sleep_ms(100);
    cr_assert_eq(atomic_load(&w.done), 0);
    dereg(h, r2);
    cr_assert(t_wait_flag(&w.done, TMO), "the writer did not wake after the deregistration");
    pthread_join(w.th, NULL);
    cr_assert_eq(w.err, 0, "%s", w.msg);
    cr_assert_eq(weir_chan_read_msg(c, r2, &m, 0), -EINVAL);

    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 0);
    weir_chan_free(h);
    weir_chan_free(c);
}

/*
 * A handle whose reader was force-deregistered through another handle (the
 * "dead reader" case, when it was not dead after all) must not read or
 * release with that id any more: the reader is not registered (-EINVAL).
 * In particular a stale release must not move the read position of a new
 * reader that got the same id, or the writer overwrites messages that
 * reader has not read.
 */
Test(chan, stale_handle_after_force_deregister)
{
    char nm[64];
    t_name(nm, sizeof nm, "stale");
    weir_chan *c = mk(nm, 64, 2, 1); /* max_readers 1: the id is reused */
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    int r = reg(h);
    wr(c, 0, 8, 0);
    rd(h, r, 0, 8, 1);
    dereg(c, r); /* force, from the creator's handle */

    /* 1. no new registration: the stale id reads nothing */
    wr(c, 1, 8, 0);
    weir_chan_msg m;
    int rc = weir_chan_read_msg(h, r, &m, 0);
    if (rc == 0)
        weir_chan_release(h, r);
    cr_expect_eq(rc, -EINVAL, /* expect: go on to part 2 */
                 "read through a handle whose reader %d was force-deregistered: %d (seq %llu)", r,
                 rc, rc == 0 ? (unsigned long long)m.seq : 0ull);
    weir_chan_free(h);

    /* 2. the id is reused; a stale handle must not move the new reader */
    h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    dereg(c, reg(c)); /* (make sure the slot is free whatever happened above) */
    r = reg(h);
    wr(c, 2, 8, 0);
    rd(h, r, 2, 8, 1);
    dereg(c, r);
    int r2 = reg(c);
    cr_assert_eq(r2, r, "max_readers 1, yet id %d then %d", r, r2);
    wr(c, 3, 8, 0);
    wr(c, 4, 8, 0); /* r2 is now exactly depth behind */
    rc = weir_chan_read_msg(h, r, &m, 0);
    if (rc == 0)
        weir_chan_release(h, r);
    cr_expect_eq(rc, -EINVAL, "stale read after the id was reused: %d", rc);
    cr_assert_null(weir_chan_reserve(c, 8, 0),
                   "the writer overran reader %d (new registration) after a stale handle "
                   "read+released with the same id (stale read returned %d)",
                   r2, rc);
    rd(c, r2, 3, 8, 1);
    rd(c, r2, 4, 8, 1);
    weir_chan_free(h);
    dereg(c, r2);
    weir_chan_free(c);
}

/* Same bug, through weir_chan_free: it deregisters "its" readers by id. */
Test(chan, free_of_stale_handle_keeps_new_owner_of_id)
{
    char nm[64];
    t_name(nm, sizeof nm, "stalefree");
    weir_chan *c = mk(nm, 64, 2, 1); /* max_readers 1: the id is reused */
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    int r = reg(h);
    dereg(c, r); /* force, from the creator's handle */
    int r2 = reg(c);
    cr_assert_eq(r2, r);
    weir_chan_free(h); /* must not touch the registration that now owns the id */
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 1,
                 "freeing a stale handle deregistered reader %d registered through another "
                 "handle",
                 r2);
    wr(c, 0, 8, TMO);
    rd(c, r2, 0, 8, 1);
    dereg(c, r2);
    weir_chan_free(c);
}

Test(chan, reader_ids_reused_and_enospc)
{
    char nm[64];
    t_name(nm, sizeof nm, "ids");
    weir_chan *c = mk(nm, 64, 2, 3);
    int id[3];
    for (int i = 0; i < 3; i++) {
        id[i] = reg(c);
        cr_assert_lt(id[i], 3, "id %d with max_readers 3", id[i]);
        for (int j = 0; j < i; j++)
            cr_assert_neq(id[i], id[j], "id %d given twice", id[i]);
    }
    EXPECT_ERR(weir_chan_register_reader(c), -ENOSPC, nm);
    dereg(c, id[1]);
    EXPECT_ERR(weir_chan_deregister_reader(c, id[1]), -EINVAL, nm);
    int again = reg(c);
    cr_assert_eq(again, id[1], "freed id %d was not reused (got %d)", id[1], again);
    EXPECT_ERR(weir_chan_register_reader(c), -ENOSPC, nm);
    /* reuse twice more, and the reused id starts at the current message */
    dereg(c, again);
    wr(c, 0, 8, 0);
    rd(c, id[0], 0, 8, 1);
    rd(c, id[2], 0, 8, 1);
    again = reg(c);
    cr_assert_eq(again, id[1]);
    wr(c, 1, 8, 0);
    rd(c, again, 1, 8, 1);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 3);
    const struct weir_chan_reader_stats *rs = t_reader_stats(&st, again);
    cr_assert_not_null(rs);
    cr_assert_eq(rs->consumed, 1, "a reused id kept the old consumed count (%llu)",
                 (unsigned long long)rs->consumed);
    for (int i = 0; i < 3; i++)
        dereg(c, i == 1 ? again : id[i]);
    weir_chan_free(c);
}

Test(chan, default_max_readers_is_64)
{
    char nm[64];
    t_name(nm, sizeof nm, "max64");
    weir_chan *c = weir_chan_create(nm, NULL);
    cr_assert_not_null(c, "%s", weir_errmsg());
    uint64_t used = 0;
    for (int i = 0; i < WEIR_CHAN_MAX_READERS; i++) {
        int id = reg(c);
        cr_assert_lt(id, WEIR_CHAN_MAX_READERS);
        cr_assert_eq(used & (1ull << id), 0, "id %d given twice", id);
        used |= 1ull << id;
    }
    EXPECT_ERR(weir_chan_register_reader(c), -ENOSPC, nm);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, WEIR_CHAN_MAX_READERS);
    for (unsigned i = 0; i < st.nreaders; i++)
        cr_assert_eq(st.readers[i].pid, getpid());
    /* one message through 64 readers */
    wr(c, 0, 8, 0);
    for (int id = 0; id < WEIR_CHAN_MAX_READERS; id++)
        rd(c, id, 0, 8, 1);
    for (int id = 0; id < WEIR_CHAN_MAX_READERS; id++)
        dereg(c, id);
    weir_chan_free(c);
}

Test(chan, free_deregisters_readers_of_the_handle)
{
    char nm[64];
    t_name(nm, sizeof nm, "freereg");
    weir_chan *c = mk(nm, 64, 1, 0);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    int keep = reg(c);
    int r = reg(h);
    wr(c, 0, 8, 0);
    rd(h, r, 0, 8, 0); /* holds it */
    rd(c, keep, 0, 8, 1);
    cr_assert_null(weir_chan_reserve(c, 8, 0));
    weir_chan_free(h);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 1, "nreaders %u after freeing a handle with one reader",
                 st.nreaders);
    wr(c, 1, 8, 0);
    rd(c, keep, 1, 8, 1);
    dereg(c, keep);
    weir_chan_free(c);
}

/* A child registers a reader on the inherited handle, then dies without deregistering. */
Test(chan, reap_dead_readers)
{
    weir_chan *c = mk(NULL, 64, 2, 0);
    int live = reg(c);
    int up[2], down[2];
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        int id = weir_chan_register_reader(c);
        CCHECK(id >= 0, "register");
        CCHECK(t_write_full(up[1], &id, sizeof id) == 0, "pipe");
        char b;
        CCHECK(t_read_full(down[0], &b, 1, TMO) == 0, "parent never said go");
        _exit(0); /* dies registered */
    }
    close(up[1]);
    close(down[0]);
    int cid = -1;
    cr_assert_eq(t_read_full(up[0], &cid, sizeof cid, TMO), 0, "child did not register");
    cr_assert_neq(cid, live);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 2);
    const struct weir_chan_reader_stats *rs = t_reader_stats(&st, cid);
    cr_assert_not_null(rs);
    cr_assert_eq(rs->pid, pid, "reader pid %d, child is %d", rs->pid, (int)pid);
    rs = t_reader_stats(&st, live);
    cr_assert_not_null(rs);
    cr_assert_eq(rs->pid, getpid());

    /* while the child lives nothing is reaped */
    cr_assert_eq(weir_chan_reap_dead_readers(c), 0, "reaped a live reader");
    wr(c, 0, 8, 0);
    wr(c, 1, 8, 0);
    rd(c, live, 0, 8, 1);
    rd(c, live, 1, 8, 1);
    cr_assert_null(weir_chan_reserve(c, 8, 0), "the child's reader does not hold the writer");

    char go = 1;
    cr_assert_eq(t_write_full(down[1], &go, 1), 0);
    char sb[64];
    int ws = t_wait_child(pid, TMO);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: %s",
              t_status_str(ws, sb, sizeof sb));
    close(up[0]);
    close(down[1]);

    cr_assert_eq(weir_chan_reap_dead_readers(c), 1, "the dead child's reader was not reaped");
    cr_assert_eq(weir_chan_reap_dead_readers(c), 0);
    stats(c, &st);
    cr_assert_eq(st.nreaders, 1);
    cr_assert_eq(weir_chan_deregister_reader(c, cid), -EINVAL);
    wr(c, 2, 8, 0);
    rd(c, live, 2, 8, 1);
    dereg(c, live);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Close and drain                                                              */
/* =========================================================================== */

Test(chan, close_drains_then_epipe)
{
    char nm[64];
    t_name(nm, sizeof nm, "close");
    weir_chan *c = mk(nm, 64, 8, 0);
    int a = reg(c), b = reg(c);
    cr_assert_eq(weir_chan_is_closed(c), 0);
    wr(c, 0, 3, 0);
    wr(c, 1, 0, 0);
    cr_assert_eq(weir_chan_write_error(c, "last words", 0), 0, "%s", weir_errmsg());
    wr(c, 3, 64, 0);
    rd(c, b, 0, 3, 0); /* b holds message 0 across the close */
    cr_assert_eq(weir_chan_close(c), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_is_closed(c), 1);

    /* writer side is shut */
    EXPECT_NULL_ERR(weir_chan_reserve(c, 8, 0), -EPIPE, nm);
    EXPECT_NULL_ERR(weir_chan_reserve(c, 8, TMO), -EPIPE, nm);
    EXPECT_ERR(weir_chan_write(c, "x", 1, TMO), -EPIPE, nm);
    EXPECT_ERR(weir_chan_write_error(c, "x", TMO), -EPIPE, nm);
    EXPECT_ERR(weir_chan_register_reader(c), -EPIPE, nm);

    /* readers drain every committed message, then -EPIPE (repeatedly) */
    rd(c, a, 0, 3, 1);
    rd(c, a, 1, 0, 1);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, a, &m, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(m.seq, 2);
    cr_assert_eq(m.flags & WEIR_MSG_ERROR, WEIR_MSG_ERROR);
    rel(c, a);
    rd(c, a, 3, 64, 1);
    EXPECT_ERR(weir_chan_read_msg(c, a, &m, TMO), -EPIPE, nm);
    EXPECT_ERR(weir_chan_read_msg(c, a, &m, 0), -EPIPE, nm);
    size_t len;
    EXPECT_NULL_ERR(weir_chan_read(c, a, &len, TMO), -EPIPE, nm);

    rel(c, b);
    rd(c, b, 1, 0, 1);
    cr_assert_eq(weir_chan_read_msg(c, b, &m, TMO), 0);
    rel(c, b);
    rd(c, b, 3, 64, 1);
    EXPECT_ERR(weir_chan_read_msg(c, b, &m, TMO), -EPIPE, nm);

    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.closed, 1);
    cr_assert_eq(st.messages, 4);
    /* readers may still deregister after the close */
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

Test(chan, close_wakes_sleeping_readers)
{
    weir_chan *c = mk(NULL, 64, 4, 0);
    struct r1thread r[2];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 2; i++) {
        r[i].c = c;
        r[i].id = reg(c);
        r[i].timeout_ms = i == 0 ? TMO : -1;
        r1_start(&r[i]);
    }
    t_sleep_ms(150);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(atomic_load(&r[i].done), 0, "read returned %d before the close", r[i].rc);
    uint64_t t_c = t_now_ns(); /* before: readers may wake inside close */
    cr_assert_eq(weir_chan_close(c), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert(t_wait_flag(&r[i].done, TMO), "reader %d did not wake after the close", i);
        pthread_join(r[i].th, NULL);
        cr_assert_eq(r[i].rc, -EPIPE, "reader %d woke with %d, expected -EPIPE", i, r[i].rc);
        double lat = (double)(int64_t)(r[i].t_ret - t_c) / 1e6;
        cr_assert_lt(lat, 1000.0, "reader %d woke %.1f ms after the close", i, lat);
    }
    for (int i = 0; i < 2; i++)
        dereg(c, r[i].id);
    weir_chan_free(c);
}

Test(chan, close_empty_channel)
{
    weir_chan *c = mk(NULL, 64, 4, 0);
    int a = reg(c);
    cr_assert_eq(weir_chan_close(c), 0);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, a, &m, 0), -EPIPE);
    dereg(c, a);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Growth past the slot size                                                    */
/* =========================================================================== */

static const size_t g_grow_lens[] = {10,  768,   5,   0,     25600, 256, 257, 300,
                                     1,   25600, 768, 100000, 3,    64,  25600, 7};
#define G_NLENS (sizeof g_grow_lens / sizeof g_grow_lens[0])

static int is_pow2(size_t v)
{
    return v && (v & (v - 1)) == 0;
}

Test(chan, growth_two_readers_interleaved)
{
    weir_chan *c = mk(NULL, 256, 4, 0);
    struct rthread r[2];
    memset(r, 0, sizeof r);
    const uint64_t n = 3 * G_NLENS;
    for (int i = 0; i < 2; i++) {
        r[i].c = c;
        r[i].id = reg(c);
        r[i].count = n;
        r[i].lens = g_grow_lens;
        r[i].nlens = G_NLENS;
        r[i].hold_every = i == 0 ? 3 : 5; /* lag behind the writer while it grows */
        r[i].hold_ms = 2;
        r[i].expect_end = -EPIPE;
        rt_start(&r[i]);
    }
    uint64_t bytes = 0;
    size_t maxlen = 0;
    for (uint64_t s = 0; s < n; s++) {
        size_t len = g_grow_lens[s % G_NLENS];
        wr(c, s, len, TMO);
        bytes += len;
        if (len > maxlen)
            maxlen = len;
    }
    cr_assert_eq(weir_chan_close(c), 0);
    for (int i = 0; i < 2; i++)
        rt_join(&r[i]);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, n);
    cr_assert_eq(st.bytes, bytes);
    cr_assert_geq(st.grows, 1);
    cr_assert_leq(st.grows, 3, "grew %llu times for 3 distinct oversize lengths",
                  (unsigned long long)st.grows);
    cr_assert_geq(st.slot_bytes, maxlen, "slot_bytes %zu < largest message %zu", st.slot_bytes,
                  maxlen);
    cr_assert(is_pow2(st.slot_bytes), "slot_bytes %zu is not a power of two", st.slot_bytes);
    for (int i = 0; i < 2; i++)
        dereg(c, r[i].id);
    weir_chan_free(c);
}

Test(chan, growth_slot_sizes_exact)
{
    weir_chan *c = mk(NULL, 256, 4, 0);
    int a = reg(c);
    struct weir_chan_stats st;
    wr(c, 0, 256, 0); /* exactly the slot size: fits */
    stats(c, &st);
    cr_assert_eq(st.grows, 0, "a message of exactly slot_bytes made the channel grow");
    cr_assert_eq(st.slot_bytes, 256);
    wr(c, 1, 257, 0); /* doubles */
    stats(c, &st);
    cr_assert_eq(st.grows, 1);
    cr_assert_eq(st.slot_bytes, 512, "257 bytes in 256-byte slots grew to %zu", st.slot_bytes);
    wr(c, 2, 5000, 0); /* doubling is not enough: next power of two that fits */
    stats(c, &st);
    cr_assert_eq(st.grows, 2);
    cr_assert_eq(st.slot_bytes, 8192, "5000 bytes in 512-byte slots grew to %zu", st.slot_bytes);
    wr(c, 3, 8192, 0);
    stats(c, &st);
    cr_assert_eq(st.grows, 2);
    rd(c, a, 0, 256, 1);
    rd(c, a, 1, 257, 1);
    rd(c, a, 2, 5000, 1);
    rd(c, a, 3, 8192, 1);
    /* small messages keep flowing in the big slots, sequence numbers continue */
    for (uint64_t s = 4; s < 20; s++) {
        wr(c, s, (size_t)s * 3, 0);
        rd(c, a, s, (size_t)s * 3, 1);
    }
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, growth_from_odd_slot_size_is_power_of_two)
{
    /* "slot size doubles, rounded up to a power of two that fits" */
    weir_chan *c = mk(NULL, 100, 4, 0);
    int a = reg(c);
    struct weir_chan_stats st;
    wr(c, 0, 100, 0);
    stats(c, &st);
    cr_assert_eq(st.grows, 0);
    cr_assert_eq(st.slot_bytes, 100);
    wr(c, 1, 150, 0);
    stats(c, &st);
    cr_assert_eq(st.grows, 1);
    cr_expect(is_pow2(st.slot_bytes) && st.slot_bytes >= 200,
              "100-byte slots grew to %zu for a 150-byte message, expected 256 (200 rounded up "
              "to a power of two)",
              st.slot_bytes);
    rd(c, a, 0, 100, 1);
    rd(c, a, 1, 150, 1);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, growth_held_message_stays_valid)
{
    weir_chan *c = mk(NULL, 256, 4, 0);
    int a = reg(c), b = reg(c);
    wr(c, 0, 200, 0);
    const void *p0 = rd(c, a, 0, 200, 0); /* a holds message 0 of generation 0 */
    wr(c, 1, 50000, 0);                   /* grows */
    wr(c, 2, 17, 0);
    wr(c, 3, 300000, 0); /* grows again */
    cr_assert_null(weir_chan_reserve(c, 1, 0), "writer more than depth ahead of a");
    cr_assert_eq(t_check(p0, 200, 0), -1, "a held message changed while the channel grew");
    rel(c, a);
    rd(c, a, 1, 50000, 1);
    rd(c, b, 0, 200, 1);
    rd(c, b, 1, 50000, 1);
    const void *p2 = rd(c, b, 2, 17, 0);
    wr(c, 4, 600000, 0); /* a third growth while b holds message 2 */
    cr_assert_eq(t_check(p2, 17, 2), -1);
    rel(c, b);
    rd(c, a, 2, 17, 1);
    rd(c, a, 3, 300000, 1);
    rd(c, a, 4, 600000, 1);
    rd(c, b, 3, 300000, 1);
    rd(c, b, 4, 600000, 1);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.grows, 3);
    cr_assert_eq(st.messages, 5);
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

Test(chan, reserve_too_large_is_emsgsize)
{
    char nm[64];
    t_name(nm, sizeof nm, "big");
    weir_chan *c = mk(nm, 256, 4, 0);
    int a = reg(c);
    EXPECT_NULL_ERR(weir_chan_reserve(c, WEIR_CHAN_MAX_SLOT + 1, 0), -EMSGSIZE, nm);
    EXPECT_NULL_ERR(weir_chan_reserve(c, SIZE_MAX, 0), -EMSGSIZE, nm);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.grows, 0);
    cr_assert_eq(st.messages, 0);
    wr(c, 0, 100, 0);
    rd(c, a, 0, 100, 1);
    dereg(c, a);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Error records                                                                 */
/* =========================================================================== */

Test(chan, error_record_via_read_msg)
{
    weir_chan *c = mk(NULL, 64, 4, 0);
    int a = reg(c);
    const char *text = "disk on fire at sector 42";
    wr(c, 0, 5, 0);
    cr_assert_eq(weir_chan_write_error(c, text, TMO), 0, "%s", weir_errmsg());
    wr(c, 2, 6, 0);
    rd(c, a, 0, 5, 1);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, a, &m, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(m.seq, 1, "the error record did not take one sequence number");
    cr_assert_eq(m.flags, WEIR_MSG_ERROR, "flags 0x%x", m.flags);
    cr_assert_eq(m.len, strlen(text) + 1);
    cr_assert_eq(memcmp(m.data, text, strlen(text) + 1), 0, "text '%.*s'", (int)m.len,
                 (const char *)m.data);
    /* an error record must be released like any message */
    weir_chan_msg m2;
    cr_assert_eq(weir_chan_read_msg(c, a, &m2, 0), -EBUSY);
    rel(c, a);
    rd(c, a, 2, 6, 1);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, error_record_via_read_is_eremoteio)
{
    weir_chan *c = mk(NULL, 64, 4, 0);
    int a = reg(c);
    const char *text = "method 'step' of actor 3 raised: boom #7";
    cr_assert_eq(weir_chan_write_error(c, text, TMO), 0, "%s", weir_errmsg());
    wr(c, 1, 40, 0);
    size_t len = 999;
    const void *p = weir_chan_read(c, a, &len, TMO);
    cr_assert_null(p, "an error record came back as data");
    cr_assert_eq(weir_errcode(), -EREMOTEIO, "weir_errcode %d", weir_errcode());
    cr_assert(strstr(weir_errmsg(), text) != NULL, "errmsg '%s' lacks the record's text",
              weir_errmsg());
    /* consumed: no release needed, the next read gets the next message */
    cr_assert_eq(weir_chan_release(c, a), -EINVAL, "the error record was left held");
    p = weir_chan_read(c, a, &len, TMO);
    cr_assert_not_null(p, "%s", weir_errmsg());
    cr_assert_eq(len, 40);
    cr_assert_eq(t_check(p, 40, 1), -1);
    rel(c, a);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(t_reader_stats(&st, a)->consumed, 2);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, error_record_text_truncated_to_4095)
{
    weir_chan *c = mk(NULL, 64, 4, 0); /* 4096 bytes do not fit 64-byte slots: grows */
    int a = reg(c);
    char *text = malloc(10001);
    cr_assert_not_null(text);
    for (int i = 0; i < 10000; i++)
        text[i] = (char)('a' + i % 26);
    text[10000] = '\0';
    cr_assert_eq(weir_chan_write_error(c, text, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_write_error(c, "", TMO), 0, "%s", weir_errmsg());
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, a, &m, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(m.flags, WEIR_MSG_ERROR);
    cr_assert_eq(m.len, 4096, "truncated error record has %zu bytes", m.len);
    cr_assert_eq(memcmp(m.data, text, 4095), 0);
    cr_assert_eq(((const char *)m.data)[4095], '\0');
    rel(c, a);
    cr_assert_eq(weir_chan_read_msg(c, a, &m, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(m.seq, 1);
    cr_assert_eq(m.flags, WEIR_MSG_ERROR);
    cr_assert_eq(m.len, 1);
    cr_assert_eq(((const char *)m.data)[0], '\0');
    rel(c, a);
    free(text);
    dereg(c, a);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Statistics                                                                   */
/* =========================================================================== */

Test(chan, stats_defaults)
{
    weir_chan *c = weir_chan_create(NULL, NULL);
    cr_assert_not_null(c, "%s", weir_errmsg());
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_str_eq(st.name, "anon");
    cr_assert_str_eq(weir_chan_name(c), "anon");
    cr_assert_eq(st.depth, WEIR_CHAN_DEFAULT_DEPTH);
    cr_assert_eq(st.slot_bytes, WEIR_CHAN_DEFAULT_SLOT);
    cr_assert_eq(st.messages, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.errors, 0);
    cr_assert_eq(st.grows, 0);
    cr_assert_eq(st.writer_blocked_ns, 0);
    cr_assert_eq(st.nreaders, 0);
    cr_assert_eq(st.closed, 0);
    cr_assert_geq(weir_chan_fd(c), 0);
    weir_chan_free(c);
    weir_chan_free(NULL); /* no-op */
}

Test(chan, stats_exact_after_known_sequence)
{
    char nm[64];
    t_name(nm, sizeof nm, "stats");
    weir_chan *c = mk(nm, 128, 16, 4);
    int a = reg(c), b = reg(c);
    const size_t lens[] = {0, 1, 100, 128, 7};
    uint64_t bytes = 0;
    for (uint64_t s = 0; s < 5; s++) {
        wr(c, s, lens[s], 0);
        bytes += lens[s];
    }
    cr_assert_eq(weir_chan_write_error(c, "boom", 0), 0);
    cr_assert_eq(weir_chan_write_error(c, "bang", 0), 0);
    wr(c, 7, 9, 0);
    bytes += 9;
    for (uint64_t s = 0; s < 5; s++)
        rd(c, a, s, lens[s], 1);
    for (int k = 0; k < 2; k++) {
        weir_chan_msg m;
        cr_assert_eq(weir_chan_read_msg(c, a, &m, 0), 0);
        rel(c, a);
    }
    rd(c, a, 7, 9, 1);
    rd(c, b, 0, 0, 1);
    rd(c, b, 1, 1, 1);
    rd(c, b, 2, 100, 0); /* held: not consumed yet */

    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    for (int pass = 0; pass < 2; pass++) {
        struct weir_chan_stats st;
        stats(pass == 0 ? c : h, &st);
        cr_assert_str_eq(st.name, nm);
        cr_assert_eq(st.messages, 8, "messages %llu", (unsigned long long)st.messages);
        cr_assert_eq(st.errors, 2, "errors %llu", (unsigned long long)st.errors);
        /* the header does not say whether error text counts as payload bytes */
        cr_assert(st.bytes == bytes || st.bytes == bytes + 10, "bytes %llu, expected %llu",
                  (unsigned long long)st.bytes, (unsigned long long)bytes);
        cr_assert_eq(st.grows, 0);
        cr_assert_eq(st.slot_bytes, 128);
        cr_assert_eq(st.depth, 16);
        cr_assert_eq(st.nreaders, 2);
        cr_assert_eq(st.closed, 0);
        const struct weir_chan_reader_stats *ra = t_reader_stats(&st, a), *rb =
                                                                            t_reader_stats(&st, b);
        cr_assert_not_null(ra);
        cr_assert_not_null(rb);
        cr_assert_eq(ra->pid, getpid());
        cr_assert_eq(rb->pid, getpid());
        cr_assert_eq(ra->consumed, 8, "reader a consumed %llu", (unsigned long long)ra->consumed);
        cr_assert_eq(rb->consumed, 2, "reader b consumed %llu", (unsigned long long)rb->consumed);
        cr_assert_eq(st.writer_blocked_ns, 0, "the writer never waited");
    }
    rel(c, b);
    cr_assert_eq(weir_chan_close(c), 0);
    struct weir_chan_stats st;
    stats(h, &st);
    cr_assert_eq(st.closed, 1);
    cr_assert_eq(weir_chan_is_closed(h), 1);
    cr_assert_eq(t_reader_stats(&st, b)->consumed, 3);
    weir_chan_free(h);
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Bad arguments: exact errno, errmsg naming the channel                        */
/* =========================================================================== */

Test(chan, bad_options)
{
    char nm[64];
    t_name(nm, sizeof nm, "badopt");
    weir_chan_opts o = {.max_readers = WEIR_CHAN_MAX_READERS + 1};
    EXPECT_NULL_ERR(weir_chan_create(nm, &o), -EINVAL, nm);
    cr_assert_eq(t_shm_exists(nm), 0, "failed create left /dev/shm/weir.%s", nm);
    o = (weir_chan_opts){.depth = WEIR_CHAN_MAX_DEPTH + 1};
    EXPECT_NULL_ERR(weir_chan_create(nm, &o), -EINVAL, nm);
    cr_assert_eq(t_shm_exists(nm), 0);
    o = (weir_chan_opts){.max_readers = 1000};
    EXPECT_NULL_ERR(weir_chan_create(NULL, &o), -EINVAL, "anon");
    /* the largest legal values are fine */
    o = (weir_chan_opts){.max_readers = WEIR_CHAN_MAX_READERS, .depth = 1, .slot_bytes = 1};
    weir_chan *c = weir_chan_create(nm, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    weir_chan_free(c);
    cr_assert_eq(t_shm_exists(nm), 0, "free did not remove the name");
}

Test(chan, reader_misuse)
{
    char nm[64];
    t_name(nm, sizeof nm, "rmis");
    weir_chan *c = mk(nm, 64, 4, 4);
    int a = reg(c);
    weir_chan_msg m;
    size_t len;
    EXPECT_ERR(weir_chan_release(c, a), -EINVAL, nm); /* release without read */
    wr(c, 0, 8, 0);
    wr(c, 1, 8, 0);
    cr_assert_eq(weir_chan_read_msg(c, a, &m, TMO), 0);
    cr_assert_eq(m.seq, 0);
    EXPECT_ERR(weir_chan_read_msg(c, a, &m, TMO), -EBUSY, nm); /* read twice */
    EXPECT_NULL_ERR(weir_chan_read(c, a, &len, TMO), -EBUSY, nm);
    rel(c, a);
    EXPECT_ERR(weir_chan_release(c, a), -EINVAL, nm); /* release twice */
    rd(c, a, 1, 8, 1); /* the failed calls consumed nothing */

    /* ids that are not registered: free slots, out of range */
    const int bad[] = {-1, 3, 4, 63, 64, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] == a)
            continue;
        EXPECT_ERR(weir_chan_read_msg(c, bad[i], &m, 0), -EINVAL, nm);
        EXPECT_ERR(weir_chan_release(c, bad[i]), -EINVAL, nm);
        EXPECT_ERR(weir_chan_deregister_reader(c, bad[i]), -EINVAL, nm);
        EXPECT_NULL_ERR(weir_chan_read(c, bad[i], &len, 0), -EINVAL, nm);
    }
    dereg(c, a);
    EXPECT_ERR(weir_chan_deregister_reader(c, a), -EINVAL, nm);
    EXPECT_ERR(weir_chan_read_msg(c, a, &m, 0), -EINVAL, nm);
    weir_chan_free(c);
}

Test(chan, writer_misuse)
{
    char nm[64];
    t_name(nm, sizeof nm, "wmis");
    weir_chan *c = mk(nm, 64, 4, 0);
    int a = reg(c);
    EXPECT_ERR(weir_chan_commit(c, 0), -EINVAL, nm); /* commit without reserve */
    void *p = weir_chan_reserve(c, 16, TMO);
    cr_assert_not_null(p, "%s", weir_errmsg());
    t_fill(p, 16, 0);
    EXPECT_NULL_ERR(weir_chan_reserve(c, 16, TMO), -EBUSY, nm); /* reserve twice */
    EXPECT_ERR(weir_chan_write(c, "abc", 3, TMO), -EBUSY, nm);
    /* the first reservation is intact */
    cr_assert_eq(weir_chan_commit(c, 16), 0, "%s", weir_errmsg());
    EXPECT_ERR(weir_chan_commit(c, 16), -EINVAL, nm); /* commit twice */

    p = weir_chan_reserve(c, 16, TMO);
    cr_assert_not_null(p, "%s", weir_errmsg());
    t_fill(p, 16, 1);
    EXPECT_ERR(weir_chan_commit(c, 17), -EINVAL, nm); /* longer than reserved */
    /*
     * The header does not say whether the reservation survives a rejected
     * commit; either it does (commit 16 works) or it is gone (-EINVAL).
     */
    int rc = weir_chan_commit(c, 16);
    cr_assert(rc == 0 || rc == -EINVAL, "commit after a rejected commit: %d", rc);
    uint64_t next = 1;
    if (rc == 0)
        next = 2;
    wr(c, next, 5, 0);

    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, next + 1, "failed calls published messages (%llu)",
                 (unsigned long long)st.messages);
    rd(c, a, 0, 16, 1);
    if (rc == 0)
        rd(c, a, 1, 16, 1);
    rd(c, a, next, 5, 1);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(c, a, &m, 0), -ETIMEDOUT);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, open_missing_is_enoent)
{
    char nm[64];
    t_name(nm, sizeof nm, "nosuch");
    EXPECT_NULL_ERR(weir_chan_open(nm), -ENOENT, nm);
    EXPECT_ERR(weir_chan_unlink(nm), -ENOENT, nm);
}

Test(chan, create_existing_is_eexist)
{
    char nm[64];
    t_name(nm, sizeof nm, "dup");
    weir_chan *c = mk(nm, 64, 4, 0);
    int a = reg(c);
    EXPECT_NULL_ERR(weir_chan_create(nm, NULL), -EEXIST, nm);
    /* the failed create did not disturb the first channel or its name */
    cr_assert(t_shm_exists(nm), "failed create removed /dev/shm/weir.%s", nm);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    int b = reg(h);
    wr(c, 0, 9, 0);
    rd(c, a, 0, 9, 1);
    rd(h, b, 0, 9, 1);
    dereg(h, b);
    weir_chan_free(h);
    cr_assert(t_shm_exists(nm), "freeing an opened handle removed the name");
    dereg(c, a);
    weir_chan_free(c);
    cr_assert(!t_shm_exists(nm), "freeing the creator left the name");
    EXPECT_NULL_ERR(weir_chan_open(nm), -ENOENT, nm);
}

Test(chan, writer_calls_on_opened_handle_are_eperm)
{
    char nm[64];
    t_name(nm, sizeof nm, "perm");
    weir_chan *c = mk(nm, 64, 4, 0);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    EXPECT_NULL_ERR(weir_chan_reserve(h, 8, 0), -EPERM, nm);
    EXPECT_NULL_ERR(weir_chan_reserve(h, 8, TMO), -EPERM, nm);
    EXPECT_ERR(weir_chan_write(h, "abc", 3, TMO), -EPERM, nm);
    EXPECT_ERR(weir_chan_write_error(h, "abc", TMO), -EPERM, nm);
    EXPECT_ERR(weir_chan_close(h), -EPERM, nm);
    /* commit: the handle cannot write (-EPERM); -EINVAL (no reservation) is also defensible */
    int rc = weir_chan_commit(h, 0);
    cr_assert(rc == -EPERM || rc == -EINVAL, "commit on a reading handle: %d", rc);
    cr_assert_eq(weir_chan_is_closed(c), 0, "close through a reading handle closed the channel");
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 0);
    cr_assert_str_eq(weir_chan_name(h), nm);
    cr_assert_str_eq(weir_chan_name(c), nm);
    cr_assert_geq(weir_chan_fd(h), 0);
    weir_chan_free(h);
    weir_chan_free(c);
}

Test(chan, names)
{
    char nm[WEIR_CHAN_MAX_NAME + 2];
    int n = snprintf(nm, sizeof nm, "wt%d_", (int)getpid());
    memset(nm + n, 'n', WEIR_CHAN_MAX_NAME - (size_t)n);
    nm[WEIR_CHAN_MAX_NAME] = '\0';
    weir_chan *c = weir_chan_create(nm, NULL);
    cr_assert_not_null(c, "a %d-character name: %s", WEIR_CHAN_MAX_NAME, weir_errmsg());
    cr_assert_str_eq(weir_chan_name(c), nm);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_str_eq(st.name, nm);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    cr_assert_str_eq(weir_chan_name(h), nm);
    weir_chan_free(h);
    weir_chan_free(c);

    nm[WEIR_CHAN_MAX_NAME] = 'n';
    nm[WEIR_CHAN_MAX_NAME + 1] = '\0';
    weir_chan *bad = weir_chan_create(nm, NULL);
    cr_assert_null(bad, "a %d-character name was accepted", WEIR_CHAN_MAX_NAME + 1);
    cr_assert(weir_errcode() == -EINVAL || weir_errcode() == -ENAMETOOLONG, "errcode %d",
              weir_errcode());
    cr_assert_str_neq(weir_errmsg(), "");
}

Test(chan, unlink_removes_name_only)
{
    char nm[64];
    t_name(nm, sizeof nm, "unl");
    weir_chan *c = mk(nm, 64, 4, 0);
    int a = reg(c);
    cr_assert(t_shm_exists(nm));
    struct stat sb;
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/weir.%s", nm);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "segment mode %o", sb.st_mode & 0777);
    cr_assert_eq(weir_chan_unlink(nm), 0, "%s", weir_errmsg());
    cr_assert(!t_shm_exists(nm));
    EXPECT_NULL_ERR(weir_chan_open(nm), -ENOENT, nm);
    EXPECT_ERR(weir_chan_unlink(nm), -ENOENT, nm);
    /* the open handle still works */
    wr(c, 0, 12, 0);
    rd(c, a, 0, 12, 1);
    dereg(c, a);
    weir_chan_free(c); /* name already gone: must not fail or crash */
}

/* ---- foreign and corrupt segments ------------------------------------------ */

static void make_shm(const char *name, const void *bytes, size_t n)
{
    char shm[300];
    snprintf(shm, sizeof shm, "/weir.%s", name);
    int fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "shm_open %s: %s", shm, strerror(errno));
    cr_assert_eq(ftruncate(fd, (off_t)n), 0);
    if (n)
        cr_assert_eq(pwrite(fd, bytes, n, 0), (ssize_t)n);
    close(fd);
}

#define EXPECT_OPEN_REJECTED(name, why)                                                            \
    do {                                                                                           \
        weir_chan *h_ = weir_chan_open(name);                                                      \
        int e_ = weir_errcode();                                                                   \
        if (h_)                                                                                    \
            weir_chan_free(h_);                                                                    \
        cr_assert_null(h_, "weir_chan_open accepted a segment with %s", why);                    \
        cr_assert(e_ == -EPROTO || e_ == -EBADMSG,                                                 \
                  "segment with %s: errcode %d, expected -EPROTO or -EBADMSG; '%s'", why, e_,     \
                  weir_errmsg());                                                                  \
        cr_assert(strstr(weir_errmsg(), (name)) != NULL, "errmsg '%s' does not name '%s'",        \
                  weir_errmsg(), (name));                                                          \
    } while (0)

Test(chan, open_foreign_segment)
{
    char nm[64];
    t_name(nm, sizeof nm, "foreign");
    uint8_t junk[8192];
    uint64_t x = 0x12345678abcdefull;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        junk[i] = (uint8_t)x;
    }
    make_shm(nm, junk, sizeof junk);
    EXPECT_OPEN_REJECTED(nm, "random bytes");
    /* the header's reading and the brief's: a foreign segment is -EPROTO */
    weir_chan *h = weir_chan_open(nm);
    cr_assert_null(h);
    cr_assert_eq(weir_errcode(), -EPROTO, "foreign segment: %d '%s'", weir_errcode(),
                 weir_errmsg());
    cr_assert_eq(weir_chan_unlink(nm), 0, "weir_chan_unlink of a foreign segment: %s",
                 weir_errmsg());

    make_shm(nm, NULL, 0);
    EXPECT_OPEN_REJECTED(nm, "size 0");
    cr_assert_eq(weir_chan_unlink(nm), 0);
    make_shm(nm, "WEI", 3);
    EXPECT_OPEN_REJECTED(nm, "3 bytes");
    cr_assert_eq(weir_chan_unlink(nm), 0);
    memset(junk, 0, sizeof junk);
    make_shm(nm, junk, sizeof junk);
    EXPECT_OPEN_REJECTED(nm, "all zeros");
    cr_assert_eq(weir_chan_unlink(nm), 0);
}

/* Modify a field of a live channel's control segment, expect open to fail, restore. */
static void corrupt_and_check(const char *nm, int fd, size_t off, const void *val, size_t n,
                              const char *why)
{
    uint8_t save[8];
    cr_assert_leq(n, sizeof save);
    cr_assert_eq(pread(fd, save, n, (off_t)off), (ssize_t)n);
    cr_assert_eq(pwrite(fd, val, n, (off_t)off), (ssize_t)n);
    EXPECT_OPEN_REJECTED(nm, why);
    cr_assert_eq(pwrite(fd, save, n, (off_t)off), (ssize_t)n);
    weir_chan *h = weir_chan_open(nm); /* control: restored, it opens again */
    cr_assert_not_null(h, "restored segment (%s) does not open: %s", why, weir_errmsg());
    weir_chan_free(h);
}

Test(chan, open_corrupt_segment)
{
    char nm[64], path[128];
    t_name(nm, sizeof nm, "corrupt");
    weir_chan *c = mk(nm, 64, 4, 8);
    snprintf(path, sizeof path, "/dev/shm/weir.%s", nm);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    size_t size = (size_t)sb.st_size;

    /* the layout this test relies on: magic at 0, version at 4 (uint32, LE) */
    uint32_t v32;
    cr_assert_eq(pread(fd, &v32, 4, 0), 4);
    cr_assert_eq(v32, WEIR__CHAN_MAGIC);
    cr_assert_eq(pread(fd, &v32, 4, 4), 4);
    cr_assert_eq(v32, WEIR__CHAN_VERSION);

    v32 = 0x21474e50; /* "PNG!" */
    corrupt_and_check(nm, fd, 0, &v32, 4, "a wrong magic");
    v32 = WEIR__CHAN_VERSION + 1;
    corrupt_and_check(nm, fd, 4, &v32, 4, "the next version");
    v32 = 0;
    corrupt_and_check(nm, fd, 4, &v32, 4, "version 0");
    v32 = 0xffffffffu;
    corrupt_and_check(nm, fd, 4, &v32, 4, "version 0xffffffff");
    v32 = 0;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, depth), &v32, 4, "depth 0");
    v32 = WEIR_CHAN_MAX_DEPTH + 1;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, depth), &v32, 4, "a huge depth");
    v32 = 1000000;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, depth), &v32, 4,
                      "a depth whose slots do not fit the segment");
    v32 = WEIR_CHAN_MAX_READERS + 1;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, max_readers), &v32, 4,
                      "max_readers 65");
    uint64_t v64 = (uint64_t)size * 4;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, seg_bytes), &v64, 8,
                      "seg_bytes larger than the object");
    v64 = (uint64_t)1 << 40;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, slot_bytes0), &v64, 8,
                      "slots that do not fit the segment");
    v32 = (uint32_t)size + 4096;
    corrupt_and_check(nm, fd, offsetof(struct weir__chan_ctl, ctl_bytes), &v32, 4,
                      "a data offset past the end");

    /* truncated segments (the original bytes are restored afterwards) */
    uint8_t *save = malloc(size);
    cr_assert_not_null(save);
    cr_assert_eq(pread(fd, save, size, 0), (ssize_t)size);
    const size_t cuts[] = {0, 3, 8, 64, sizeof(struct weir__chan_ctl) - 1,
                           sizeof(struct weir__chan_ctl), size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= size)
            continue;
        char why[96];
        snprintf(why, sizeof why, "its size cut from %zu to %zu bytes", size, cuts[i]);
        cr_assert_eq(ftruncate(fd, (off_t)cuts[i]), 0);
        EXPECT_OPEN_REJECTED(nm, why);
        cr_assert_eq(ftruncate(fd, (off_t)size), 0);
        cr_assert_eq(pwrite(fd, save, size, 0), (ssize_t)size);
    }
    free(save);
    close(fd);

    /* the channel itself was never disturbed */
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    int a = reg(h);
    wr(c, 0, 20, 0);
    rd(h, a, 0, 20, 1);
    dereg(h, a);
    weir_chan_free(h);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Across processes                                                             */
/* =========================================================================== */

/*
 * Reader body shared by forked and exec'd children: read n messages with
 * lengths g_grow_lens[seq % G_NLENS] (so the channel grows), check each,
 * expect -EPIPE, deregister. Exits the process.
 */
static void child_read_all(weir_chan *h, int id, uint64_t n)
{
    for (uint64_t s = 0; s < n; s++) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(h, id, &m, TMO);
        CCHECK(rc == 0, "read of %llu: %d", (unsigned long long)s, rc);
        size_t len = g_grow_lens[s % G_NLENS];
        CCHECK(m.seq == s, "seq %llu, expected %llu", (unsigned long long)m.seq,
               (unsigned long long)s);
        CCHECK(m.len == len, "message %llu: %zu bytes, expected %zu", (unsigned long long)s,
               m.len, len);
        CCHECK(m.flags == 0, "flags 0x%x", m.flags);
        long bad = t_check(m.data, m.len, s);
        CCHECK(bad == -1, "message %llu corrupt at byte %ld", (unsigned long long)s, bad);
        CCHECK(weir_chan_release(h, id) == 0, "release");
    }
    weir_chan_msg m;
    int rc = weir_chan_read_msg(h, id, &m, TMO);
    CCHECK(rc == -EPIPE, "after %llu messages: %d (seq %llu)", (unsigned long long)n, rc,
           rc == 0 ? (unsigned long long)m.seq : 0ull);
    CCHECK(weir_chan_deregister_reader(h, id) == 0, "deregister");
}

/* An exec'd copy of this program: WEIR_TEST_EXEC_READER="<name> <n> <fd>". */
__attribute__((constructor)) static void exec_child_entry(void)
{
    const char *spec = getenv("WEIR_TEST_EXEC_READER");
    if (!spec)
        return;
    char name[256];
    unsigned long long n;
    int fd;
    if (sscanf(spec, "%255s %llu %d", name, &n, &fd) != 3)
        _exit(2);
    weir_chan *h = weir_chan_open(name);
    CCHECK(h != NULL, "open %s", name);
    int id = weir_chan_register_reader(h);
    CCHECK(id >= 0, "register");
    CCHECK(t_write_full(fd, &id, sizeof id) == 0, "pipe");
    close(fd);
    child_read_all(h, id, n);
    weir_chan_free(h);
    _exit(0);
}

static void parent_write_all(weir_chan *c, uint64_t n)
{
    for (uint64_t s = 0; s < n; s++)
        wr(c, s, g_grow_lens[s % G_NLENS], TMO);
    cr_assert_eq(weir_chan_close(c), 0);
}

static void expect_child_ok(pid_t pid)
{
    char sb[64];
    int ws = t_wait_child(pid, 30000);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child %d: %s (see stderr)",
              (int)pid, t_status_str(ws, sb, sizeof sb));
}

Test(chan, named_channel_opened_by_forked_child)
{
    char nm[64];
    t_name(nm, sizeof nm, "fork");
    weir_chan *c = mk(nm, 256, 4, 0);
    const uint64_t n = 4 * G_NLENS;
    int up[2];
    cr_assert_eq(pipe(up), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(up[0]);
        weir_chan *h = weir_chan_open(nm);
        CCHECK(h != NULL, "open %s", nm);
        int id = weir_chan_register_reader(h);
        CCHECK(id >= 0, "register");
        CCHECK(t_write_full(up[1], &id, sizeof id) == 0, "pipe");
        child_read_all(h, id, n);
        weir_chan_free(h);
        _exit(0);
    }
    close(up[1]);
    int id;
    cr_assert_eq(t_read_full(up[0], &id, sizeof id, TMO), 0, "child did not register");
    close(up[0]);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 1);
    cr_assert_eq(t_reader_stats(&st, id)->pid, pid);
    parent_write_all(c, n);
    expect_child_ok(pid);
    stats(c, &st);
    cr_assert_eq(st.nreaders, 0);
    cr_assert_geq(st.grows, 1);
    cr_assert(t_shm_exists(nm), "the child's free removed the creator's name");
    weir_chan_free(c);
    cr_assert(!t_shm_exists(nm));
}

Test(chan, named_channel_opened_by_exec_child)
{
    char nm[64];
    t_name(nm, sizeof nm, "exec");
    weir_chan *c = mk(nm, 256, 4, 0);
    const uint64_t n = 3 * G_NLENS;
    int up[2];
    cr_assert_eq(pipe(up), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(up[0]);
        char spec[300];
        snprintf(spec, sizeof spec, "%s %llu %d", nm, (unsigned long long)n, up[1]);
        setenv("WEIR_TEST_EXEC_READER", spec, 1);
        char *argv[] = {"test_chan", NULL};
        execve("/proc/self/exe", argv, environ);
        _exit(127);
    }
    close(up[1]);
    int id;
    cr_assert_eq(t_read_full(up[0], &id, sizeof id, TMO), 0, "exec'd child did not register");
    close(up[0]);
    parent_write_all(c, n);
    expect_child_ok(pid);
    weir_chan_free(c);
}

Test(chan, anonymous_channel_shared_over_fork)
{
    weir_chan *c = mk(NULL, 256, 4, 0);
    const uint64_t n = 4 * G_NLENS;
    pid_t pids[2];
    int up[2];
    cr_assert_eq(pipe(up), 0);
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        cr_assert_geq(pids[k], 0);
        if (pids[k] == 0) {
            close(up[0]);
            int id = weir_chan_register_reader(c); /* the inherited handle */
            CCHECK(id >= 0, "register");
            CCHECK(t_write_full(up[1], &id, sizeof id) == 0, "pipe");
            child_read_all(c, id, n);
            _exit(0); /* not weir_chan_free: the handle is the parent's writer */
        }
    }
    close(up[1]);
    int ids[2];
    cr_assert_eq(t_read_full(up[0], ids, sizeof ids, TMO), 0, "children did not register");
    close(up[0]);
    cr_assert_neq(ids[0], ids[1]);
    parent_write_all(c, n);
    for (int k = 0; k < 2; k++)
        expect_child_ok(pids[k]);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 0);
    cr_assert_geq(st.grows, 1);
    weir_chan_free(c);
}

/* A process that registers after the channel grew maps the current generation. */
Test(chan, reader_process_registers_after_growth)
{
    char nm[64];
    t_name(nm, sizeof nm, "lategrow");
    weir_chan *c = mk(nm, 256, 4, 0);
    int a = reg(c);
    wr(c, 0, 5000, 0); /* grows to 8192 */
    wr(c, 1, 40000, 0); /* grows to 65536 */
    rd(c, a, 0, 5000, 1);
    rd(c, a, 1, 40000, 1);
    int up[2];
    cr_assert_eq(pipe(up), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(up[0]);
        weir_chan *h = weir_chan_open(nm);
        CCHECK(h != NULL, "open %s", nm);
        int id = weir_chan_register_reader(h);
        CCHECK(id >= 0, "register after growth");
        CCHECK(t_write_full(up[1], &id, sizeof id) == 0, "pipe");
        for (uint64_t s = 2; s < 10; s++) {
            weir_chan_msg m;
            int rc = weir_chan_read_msg(h, id, &m, TMO);
            CCHECK(rc == 0, "read of %llu: %d", (unsigned long long)s, rc);
            CCHECK(m.seq == s, "seq %llu, expected %llu", (unsigned long long)m.seq,
                   (unsigned long long)s);
            size_t len = s * 6000;
            CCHECK(m.len == len, "len %zu, expected %zu", m.len, len);
            CCHECK(t_check(m.data, m.len, s) == -1, "message %llu corrupt",
                   (unsigned long long)s);
            CCHECK(weir_chan_release(h, id) == 0, "release");
        }
        CCHECK(weir_chan_deregister_reader(h, id) == 0, "deregister");
        weir_chan_free(h);
        _exit(0);
    }
    close(up[1]);
    int id;
    cr_assert_eq(t_read_full(up[0], &id, sizeof id, TMO), 0, "child did not register");
    close(up[0]);
    for (uint64_t s = 2; s < 10; s++) { /* up to 54000 bytes: the last growth is at 48000 */
        wr(c, s, (size_t)s * 6000, TMO);
        rd(c, a, s, (size_t)s * 6000, 1);
    }
    expect_child_ok(pid);
    dereg(c, a);
    weir_chan_free(c);
}

/*
 * The writer lives in a forked child (the way an actor process writes a
 * channel its driver created); the parent reads, the channel grows.
 */
static void writer_child(weir_chan *c, uint64_t n, int go_fd, int wait_fd)
{
    char b;
    CCHECK(t_read_full(go_fd, &b, 1, TMO) == 0, "parent never said go");
    for (uint64_t s = 0; s < n; s++) {
        size_t len = g_grow_lens[s % G_NLENS];
        void *p = weir_chan_reserve(c, len, TMO);
        CCHECK(p != NULL, "reserve of %llu (%zu bytes)", (unsigned long long)s, len);
        t_fill(p, len, s);
        CCHECK(weir_chan_commit(c, len) == 0, "commit");
    }
    CCHECK(weir_chan_close(c) == 0, "close");
    if (wait_fd >= 0)
        CCHECK(t_read_full(wait_fd, &b, 1, 30000) == 0, "parent never said done");
    _exit(0);
}

static void parent_read_all(weir_chan *c, int id, uint64_t n)
{
    for (uint64_t s = 0; s < n; s++)
        rd(c, id, s, g_grow_lens[s % G_NLENS], 1);
    weir_chan_msg m;
    int rc = weir_chan_read_msg(c, id, &m, TMO);
    cr_assert_eq(rc, -EPIPE, "after all messages: %d %s", rc, weir_errmsg());
}

Test(chan, writer_in_forked_child)
{
    weir_chan *c = mk(NULL, 256, 4, 0);
    int id = reg(c);
    const uint64_t n = 3 * G_NLENS;
    int go[2], done[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(go[1]);
        close(done[1]);
        writer_child(c, n, go[0], done[0]);
    }
    close(go[0]);
    close(done[0]);
    char b = 1;
    cr_assert_eq(t_write_full(go[1], &b, 1), 0);
    parent_read_all(c, id, n);
    cr_assert_eq(t_write_full(done[1], &b, 1), 0);
    close(go[1]);
    close(done[1]);
    expect_child_ok(pid);
    cr_assert_eq(weir_chan_is_closed(c), 1);
    dereg(c, id);
    weir_chan_free(c);
}

/*
 * "Readers still get every committed message" (weir_chan_close): also when
 * the writer process that grew the channel has exited before the reader
 * reaches the grown messages.
 */
Test(chan, drain_after_growing_writer_exited)
{
    weir_chan *c = mk(NULL, 256, 64, 0);
    int id = reg(c);
    const uint64_t n = 2 * G_NLENS; /* <= depth: the writer never waits */
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(go[1]);
        writer_child(c, n, go[0], -1);
    }
    close(go[0]);
    char b = 1;
    cr_assert_eq(t_write_full(go[1], &b, 1), 0);
    close(go[1]);
    expect_child_ok(pid); /* the writer is gone before anything is read */
    parent_read_all(c, id, n);
    dereg(c, id);
    weir_chan_free(c);
}

/* A reader handle keeps the whole channel, grown parts included, after the creator is gone. */
Test(chan, drain_after_creator_freed)
{
    char nm[64];
    t_name(nm, sizeof nm, "orphan");
    weir_chan *c = mk(nm, 256, 64, 0);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    int id = reg(h);
    const uint64_t n = 2 * G_NLENS; /* <= depth: the writer never waits */
    for (uint64_t s = 0; s < n; s++)
        wr(c, s, g_grow_lens[s % G_NLENS], 0);
    cr_assert_eq(weir_chan_close(c), 0);
    weir_chan_free(c); /* removes the name; h keeps its mapping and fd */
    cr_assert(!t_shm_exists(nm));
    parent_read_all(h, id, n);
    dereg(h, id);
    weir_chan_free(h);
}

/* A corrupt generation table fails with -EBADMSG, never a crash (SIGBUS). */
Test(chan, corrupt_generation_descriptor)
{
    char nm[64], path[128];
    t_name(nm, sizeof nm, "badgen");
    weir_chan *c = mk(nm, 256, 4, 0);
    int a = reg(c);
    wr(c, 0, 10, 0);
    wr(c, 1, 5000, 0); /* grows: generation 1 */
    rd(c, a, 0, 10, 1);
    rd(c, a, 1, 5000, 1);
    uint64_t next = 2;
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.grows, 1);
    snprintf(path, sizeof path, "/dev/shm/weir.%s", nm);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    const size_t off = offsetof(struct weir__chan_ctl, gens[1]);
    struct weir__gen_desc save, bad;
    cr_assert_eq(pread(fd, &save, sizeof save, (off_t)off), (ssize_t)sizeof save);
    const struct {
        size_t field;
        uint64_t value;
        const char *why;
    } cases[] = {
        {offsetof(struct weir__gen_desc, slot_bytes), (uint64_t)1 << 33, "huge slots"},
        {offsetof(struct weir__gen_desc, slot_bytes), 0, "zero-byte slots"},
        {offsetof(struct weir__gen_desc, seg_bytes), (uint64_t)1 << 36, "a huge size"},
        {offsetof(struct weir__gen_desc, offset), (uint64_t)1 << 36, "an offset past the end"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad = save;
        memcpy((uint8_t *)&bad + cases[i].field, &cases[i].value, 8);
        cr_assert_eq(pwrite(fd, &bad, sizeof bad, (off_t)off), (ssize_t)sizeof bad);
        /* either open rejects it, or the first use of generation 1 does */
        weir_chan *h = weir_chan_open(nm);
        int e = weir_errcode();
        if (!h) {
            cr_assert(e == -EBADMSG || e == -EPROTO, "generation with %s: open failed with %d",
                      cases[i].why, e);
        } else {
            int r = weir_chan_register_reader(h); /* may map the current generation */
            if (r < 0) {
                cr_assert_eq(r, -EBADMSG, "generation with %s: register gave %d (%s)",
                             cases[i].why, r, weir_errmsg());
            } else {
                wr(c, next, 10, 0); /* lives in generation 1 */
                weir_chan_msg m;
                e = weir_chan_read_msg(h, r, &m, TMO);
                cr_assert_eq(e, -EBADMSG, "generation with %s: read gave %d (%s)",
                             cases[i].why, e, weir_errmsg());
                rd(c, a, next, 10, 1);
                next++;
                weir_chan_deregister_reader(h, r);
            }
            weir_chan_free(h);
        }
        cr_assert_eq(pwrite(fd, &save, sizeof save, (off_t)off), (ssize_t)sizeof save);
    }
    close(fd);
    dereg(c, a);
    weir_chan_free(c);
}

/*
 * /dev/shm smaller than the channel (Docker's default is 64 MiB): creating
 * or growing a named channel must fail with an errno, never hand out slots
 * that are not backed (a write into them would kill the writer with
 * SIGBUS). Runs in a child with its own mount namespace and a 1 MiB tmpfs
 * on /dev/shm; skipped where that is not allowed.
 */
Test(chan, small_dev_shm_fails_cleanly)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
            _exit(77);
        /* 1. slots that do not fit: create fails, or every slot is usable */
        weir_chan_opts o = {.slot_bytes = 65536, .depth = 32}; /* 2 MiB of slots */
        weir_chan *c = weir_chan_create("big", &o);
        if (!c) {
            int e = weir_errcode();
            CCHECK(e == -ENOSPC || e == -ENOMEM || e == -EFBIG, "create failed with %d", e);
        } else {
            int id = weir_chan_register_reader(c);
            CCHECK(id >= 0, "register");
            for (uint64_t s = 0; s < 32; s++) {
                void *p = weir_chan_reserve(c, 65536, 0);
                if (!p) {
                    CCHECK(weir_errcode() == -ENOMEM || weir_errcode() == -ENOSPC,
                           "reserve %llu failed with %d", (unsigned long long)s, weir_errcode());
                    break;
                }
                memset(p, 0x5a, 65536); /* SIGBUS here if the slot has no memory behind it */
                CCHECK(weir_chan_commit(c, 65536) == 0, "commit");
            }
            weir_chan_free(c);
        }
        /* 2. growth that does not fit: -ENOMEM, and the channel still works */
        o = (weir_chan_opts){.slot_bytes = 4096, .depth = 4};
        c = weir_chan_create("grow", &o);
        CCHECK(c != NULL, "create a small channel");
        int id = weir_chan_register_reader(c);
        CCHECK(id >= 0, "register");
        void *p = weir_chan_reserve(c, (size_t)4 << 20, 0);
        if (p) {
            memset(p, 0x5a, (size_t)4 << 20); /* SIGBUS here */
            CCHECK(0, "a 4 MiB growth on a 1 MiB /dev/shm was granted and survived?");
        }
        CCHECK(weir_errcode() == -ENOMEM, "growth failed with %d, expected -ENOMEM",
               weir_errcode());
        CCHECK(weir_chan_write(c, "ok", 2, 0) == 0, "write after a failed growth");
        weir_chan_msg m;
        CCHECK(weir_chan_read_msg(c, id, &m, 0) == 0 && m.len == 2 && m.seq == 0,
               "read after a failed growth");
        weir_chan_free(c);
        _exit(0);
    }
    char sb[64];
    int ws = t_wait_child(pid, 30000);
    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 77)
        cr_skip_test("no private mount namespace with a small /dev/shm here");
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
              "child on a 1 MiB /dev/shm: %s%s", t_status_str(ws, sb, sizeof sb),
              ws != -1 && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGBUS
                  ? " (SIGBUS: the channel handed out memory that tmpfs could not back)"
                  : "");
}

/* ---- regressions (named after the bug they pin) ------------------------------ */

static weir_chan *g_sleepy_chan;
static int g_sleepy_id;
static atomic_int g_sleepy_rc = 999;
static void *sleepy_reader(void *arg)
{
    (void)arg;
    weir_chan_msg m;
    atomic_store(&g_sleepy_rc, weir_chan_read_msg(g_sleepy_chan, g_sleepy_id, &m, -1));
    return NULL;
}

/* A reader asleep in read_msg(-1) is woken by its deregistration and gets -EINVAL,
 * and a later commit is not handed to the dead id. */
Test(chan, regression_deregister_wakes_sleeping_reader)
{
    g_sleepy_chan = mk(NULL, 64, 4, 0);
    g_sleepy_id = reg(g_sleepy_chan);
    atomic_store(&g_sleepy_rc, 999);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, sleepy_reader, NULL), 0);
    t_sleep_ms(300); /* past the spin and yield phases: asleep on the futex */
    dereg(g_sleepy_chan, g_sleepy_id);
    uint64_t t0 = t_now_ns();
    while (atomic_load(&g_sleepy_rc) == 999 && t_ms_since(t0) < 2000)
        t_sleep_ms(5);
    cr_assert_eq(atomic_load(&g_sleepy_rc), -EINVAL, "reader still blocked or got %d",
                 atomic_load(&g_sleepy_rc));
    pthread_join(th, NULL);
    weir_chan_free(g_sleepy_chan);
}

/* read_msg(timeout 0) racing with "write, then close" must still return the
 * message before -EPIPE (it used to see the close without the commit). */
static void *write_then_close(void *arg)
{
    weir_chan *c = arg;
    uint64_t v = 7;
    weir_chan_write(c, &v, sizeof v, 0);
    weir_chan_close(c);
    return NULL;
}

Test(chan, regression_timeout0_read_drains_before_epipe)
{
    int lost = 0;
    for (int round = 0; round < 3000; round++) {
        weir_chan *c = mk(NULL, 64, 4, 0);
        int id = reg(c);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, write_then_close, c), 0);
        weir_chan_msg m;
        int rc;
        while ((rc = weir_chan_read_msg(c, id, &m, 0)) == -ETIMEDOUT)
            ;
        if (rc == 0)
            rel(c, id);
        else
            lost++;
        pthread_join(th, NULL);
        cr_assert_eq(weir_chan_read_msg(c, id, &m, 0), -EPIPE);
        weir_chan_free(c);
    }
    cr_assert_eq(lost, 0, "%d of 3000 polls lost the committed message", lost);
}

/* A registration lock held by a live process that never lets go (a stuck
 * process, or a corrupt segment that says so: found by tests/fuzz/fuzz_segment)
 * is an error after WEIR__REG_LOCK_MAX_MS, not a hang. */
Test(chan, registration_lock_held_by_a_live_process_is_an_error)
{
    weir_chan_opts o = {.slot_bytes = 64, .depth = 2};
    weir_chan *c = weir_chan_create(NULL, &o);
    cr_assert(c, "%s", weir_errmsg());
    struct weir__chan_ctl *ctl = weir__chan_ctl(c);
    uint32_t holder = (uint32_t)getppid(); /* alive for the whole test */
    __atomic_store_n(&ctl->reg_lock, holder, __ATOMIC_RELEASE);
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_chan_register_reader(c), -EDEADLK);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el >= 1900000000ull && el < 6000000000ull, "gave up after %llu ns",
              (unsigned long long)el);
    char want[256];
    snprintf(want, sizeof want,
             "registration lock held by pid %u for over 2000 ms (a stuck process or a corrupt "
             "segment)",
             holder);
    cr_assert(strstr(weir_errmsg(), want), "'%s' lacks '%s'", weir_errmsg(), want);
    __atomic_store_n(&ctl->reg_lock, 0, __ATOMIC_RELEASE);
    int r = weir_chan_register_reader(c);
    cr_assert_geq(r, 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_write(c, "x", 1, 0), 0);
    size_t n = 0;
    const char *m = weir_chan_read(c, r, &n, 0);
    cr_assert(m && n == 1 && m[0] == 'x');
    cr_assert_eq(weir_chan_release(c, r), 0);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Batches: weir_chan_reserve_n / commit_n, weir_chan_read_n / release_n         */
/* =========================================================================== */

/* An exact failure: code, weir_errcode() and the whole text "channel 'NAME': what". */
#define EXPECT_ERR_TEXT(expr, code, name, what)                                                    \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        char want_[600];                                                                           \
        snprintf(want_, sizeof want_, "channel '%s': %s", (name), (what));                         \
        cr_assert_eq(rc_, (code), "%s: expected %d, got %d; errmsg '%s'", #expr, (code), rc_,     \
                     weir_errmsg());                                                               \
        cr_assert_eq(weir_errcode(), (code), "%s: weir_errcode() %d", #expr, weir_errcode());     \
        cr_assert_str_eq(weir_errmsg(), want_, "%s", #expr);                                       \
    } while (0)

/* Reserve a batch of exactly `want` slots of len bytes, fill message first+i in slot i. */
static void wr_n(weir_chan *c, uint64_t first, size_t len, unsigned n, unsigned want,
                 void **slots)
{
    int k = weir_chan_reserve_n(c, len, n, slots, TMO);
    cr_assert_eq(k, (int)want, "reserve_n(%zu, %u) from message %llu: %d (want %u) %s", len, n,
                 (unsigned long long)first, k, want, weir_errmsg());
    for (unsigned i = 0; i < want; i++)
        t_fill(slots[i], len, first + i);
}

/* Read a batch of exactly `want` messages first.. with lens[i] (NULL: len), check each. */
static void rd_n(weir_chan *c, int id, uint64_t first, unsigned n, unsigned want,
                 const size_t *lens, size_t len, weir_chan_msg *m)
{
    memset(m, 0xa5, sizeof *m * n);
    int k = weir_chan_read_n(c, id, m, n, TMO);
    cr_assert_eq(k, (int)want, "reader %d: read_n(%u) from %llu: %d (want %u) %s", id, n,
                 (unsigned long long)first, k, want, weir_errmsg());
    for (unsigned i = 0; i < want; i++) {
        size_t l = lens ? lens[i] : len;
        cr_assert_eq(m[i].seq, first + i, "reader %d: batch message %u has seq %llu, want %llu", id,
                     i, (unsigned long long)m[i].seq, (unsigned long long)(first + i));
        cr_assert_eq(m[i].len, l, "reader %d: message %llu has %zu bytes, want %zu", id,
                     (unsigned long long)m[i].seq, m[i].len, l);
        cr_assert_eq(m[i].flags, 0u, "message %llu flags 0x%x", (unsigned long long)m[i].seq,
                     m[i].flags);
        long bad = t_check(m[i].data, l, first + i);
        cr_assert_eq(bad, -1, "reader %d: message %llu corrupt at byte %ld", id,
                     (unsigned long long)(first + i), bad);
    }
}

Test(chan, batch_exact_roundtrip_lengths_and_stats)
{
    char nm[64];
    t_name(nm, sizeof nm, "bexact");
    weir_chan *c = mk(nm, 64, 8, 2);
    int a = reg(c), b = reg(c);
    void *slots[8];
    wr_n(c, 0, 64, 5, 5, slots);
    /* consecutive slots of one generation: one stride apart, no wrap yet */
    for (unsigned i = 1; i < 5; i++)
        cr_assert_eq((uint8_t *)slots[i] - (uint8_t *)slots[i - 1], 64, "slot %u not next", i);
    const size_t lens[5] = {64, 0, 17, 1, 63};
    cr_assert_eq(weir_chan_commit_n(c, 5, lens), 0, "%s", weir_errmsg());
    weir_chan_msg m[8];
    rd_n(c, a, 0, 8, 5, lens, 0, m); /* asks 8, exactly 5 exist */
    /* the views are the writer's slots */
    for (unsigned i = 0; i < 5; i++)
        cr_assert_eq(m[i].data, slots[i], "message %u is not a zero-copy view", i);
    cr_assert_eq(weir_chan_release_n(c, a, 5), 0, "%s", weir_errmsg());
    rd_n(c, b, 0, 2, 2, lens, 0, m); /* asks 2 of 5 */
    cr_assert_eq(weir_chan_release_n(c, b, 2), 0, "%s", weir_errmsg());
    rd_n(c, b, 2, 8, 3, lens + 2, 0, m);
    cr_assert_eq(weir_chan_release_n(c, b, 3), 0, "%s", weir_errmsg());

    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 5, "messages %llu", (unsigned long long)st.messages);
    cr_assert_eq(st.bytes, 64 + 0 + 17 + 1 + 63, "bytes %llu", (unsigned long long)st.bytes);
    cr_assert_eq(t_reader_stats(&st, a)->consumed, 5);
    cr_assert_eq(t_reader_stats(&st, b)->consumed, 5);
    cr_assert_eq(st.writer_blocked_ns, 0);
    weir_chan_msg one;
    char what[128];
    snprintf(what, sizeof what, "reader %d: no message 5 yet", a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, &one, 1, 0), -ETIMEDOUT, nm, what);
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

Test(chan, batch_partial_when_ring_partly_full_and_drop)
{
    char nm[64];
    t_name(nm, sizeof nm, "bpart");
    weir_chan *c = mk(nm, 32, 8, 1);
    int a = reg(c);
    for (uint64_t s = 0; s < 3; s++)
        wr(c, s, 32, 0);
    void *slots[16];
    /* 3 of 8 slots held by the reader: asking 8 gives exactly the 5 free ones */
    wr_n(c, 3, 32, 8, 5, slots);
    cr_assert_eq(weir_chan_commit_n(c, 2, NULL), 0, "%s", weir_errmsg()); /* 3, 4; 5..7 dropped */
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 5, "dropped messages were published: %llu",
                 (unsigned long long)st.messages);
    cr_assert_eq(st.bytes, 5 * 32);
    /* the next message takes sequence number 5: nothing was used by the drop */
    wr(c, 5, 7, 0);
    /* 6 messages unread of depth 8: 2 free; wanting 4 gives 2, slots 6 and 7 */
    wr_n(c, 6, 32, 4, 2, slots);
    cr_assert_eq(weir_chan_commit_n(c, 2, NULL), 0, "%s", weir_errmsg());
    /* full: a batch reserve that may not wait says so */
    char what[128];
    snprintf(what, sizeof what, "writer would block (ring full at message 8)");
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 32, 4, slots, 0), -ETIMEDOUT, nm, what);
    weir_chan_msg m[16];
    const size_t lens[8] = {32, 32, 32, 32, 32, 7, 32, 32};
    rd_n(c, a, 0, 16, 8, lens, 0, m);
    cr_assert_eq(weir_chan_release_n(c, a, 8), 0, "%s", weir_errmsg());
    /* commit_n(0) drops the whole batch */
    wr_n(c, 8, 32, 3, 3, slots);
    cr_assert_eq(weir_chan_commit_n(c, 0, NULL), 0, "%s", weir_errmsg());
    stats(c, &st);
    cr_assert_eq(st.messages, 8);
    cr_assert_eq(weir_chan_read_n(c, a, m, 4, 0), -ETIMEDOUT);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, batch_larger_than_depth_is_partial_and_wraps)
{
    char nm[64];
    t_name(nm, sizeof nm, "bdeep");
    weir_chan *c = mk(nm, 16, 4, 1);
    int a = reg(c);
    void *slots[100];
    weir_chan_msg m[100];
    /* n beyond the depth: at most depth slots, never an error */
    wr_n(c, 0, 16, 100, 4, slots);
    cr_assert_eq(weir_chan_commit_n(c, 4, NULL), 0, "%s", weir_errmsg());
    rd_n(c, a, 0, 100, 4, NULL, 16, m);
    cr_assert_eq(weir_chan_release_n(c, a, 3), 0, "%s", weir_errmsg()); /* one still held */
    /* 3 free: slots 0, 1, 2 of the ring */
    wr_n(c, 4, 16, 100, 3, slots);
    cr_assert_eq((uint8_t *)slots[0], (uint8_t *)m[0].data, "message 4 reuses slot 0");
    cr_assert_eq(weir_chan_commit_n(c, 3, NULL), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_release(c, a), 0, "%s", weir_errmsg()); /* message 3 */
    /* a batch across the end of the ring: slot 3, then slot 0 */
    rd_n(c, a, 4, 2, 2, NULL, 16, m);
    cr_assert_eq(weir_chan_release_n(c, a, 2), 0, "%s", weir_errmsg());
    wr_n(c, 7, 16, 3, 3, slots); /* slots 3, 0, 1 */
    cr_assert_eq((uint8_t *)slots[1] - (uint8_t *)slots[0], -3 * 16, "wrap inside the batch");
    cr_assert_eq(weir_chan_commit_n(c, 3, NULL), 0, "%s", weir_errmsg());
    rd_n(c, a, 6, 100, 4, NULL, 16, m); /* 6 (slot 2), 7 (3), 8 (0), 9 (1) */
    cr_assert_eq((const uint8_t *)m[2].data - (const uint8_t *)m[1].data, -3 * 16);
    cr_assert_eq(weir_chan_release_n(c, a, 4), 0, "%s", weir_errmsg());
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 10);
    cr_assert_eq(t_reader_stats(&st, a)->consumed, 10);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, batch_writer_waits_for_every_reader)
{
    char nm[64];
    t_name(nm, sizeof nm, "bgate");
    weir_chan *c = mk(nm, 8, 4, 2);
    int a = reg(c), b = reg(c);
    void *slots[8];
    weir_chan_msg m[8];
    wr_n(c, 0, 8, 8, 4, slots);
    cr_assert_eq(weir_chan_commit_n(c, 4, NULL), 0, "%s", weir_errmsg());
    rd_n(c, a, 0, 8, 4, NULL, 8, m);
    cr_assert_eq(weir_chan_release_n(c, a, 4), 0, "%s", weir_errmsg());
    /* reader b has released nothing: no slot is free */
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 8, 8, slots, 0), -ETIMEDOUT, nm,
                    "writer would block (ring full at message 4)");
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 8, 8, slots, 30), -ETIMEDOUT, nm,
                    "writer timed out after 30 ms waiting for readers (message 4)");
    rd_n(c, b, 0, 8, 4, NULL, 8, m);
    cr_assert_eq(weir_chan_release_n(c, b, 2), 0, "%s", weir_errmsg());
    /* exactly the two slots b released */
    wr_n(c, 4, 8, 8, 2, slots);
    cr_assert_eq(weir_chan_commit_n(c, 2, NULL), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_release_n(c, b, 2), 0, "%s", weir_errmsg());
    wr_n(c, 6, 8, 8, 2, slots);
    cr_assert_eq(weir_chan_commit_n(c, 2, NULL), 0, "%s", weir_errmsg());
    rd_n(c, a, 4, 8, 4, NULL, 8, m);
    cr_assert_eq(weir_chan_release_n(c, a, 4), 0, "%s", weir_errmsg());
    rd_n(c, b, 4, 8, 4, NULL, 8, m);
    cr_assert_eq(weir_chan_release_n(c, b, 4), 0, "%s", weir_errmsg());
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 8);
    cr_assert_gt(st.writer_blocked_ns, 0, "the 30 ms wait was not counted");
    dereg(c, a);
    dereg(c, b);
    weir_chan_free(c);
}

Test(chan, batch_mixed_with_single_calls)
{
    char nm[64];
    t_name(nm, sizeof nm, "bmix");
    weir_chan *c = mk(nm, 64, 16, 1);
    int a = reg(c);
    void *slots[16];
    weir_chan_msg m[16];
    char what[200];
    wr(c, 0, 10, 0);
    wr_n(c, 1, 20, 3, 3, slots);
    /* a single commit cannot take a batch of three */
    EXPECT_ERR_TEXT(weir_chan_commit(c, 20), -EINVAL, nm,
                    "commit of one message while a batch of 3 is reserved: use "
                    "weir_chan_commit_n");
    EXPECT_NULL_ERR(weir_chan_reserve(c, 8, 0), -EBUSY, nm);
    snprintf(what, sizeof what, "channel '%s': a batch of 3 messages is already reserved; "
             "commit it first", nm);
    cr_assert_str_eq(weir_errmsg(), what);
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 8, 2, slots, 0), -EBUSY, nm,
                    "a batch of 3 messages is already reserved; commit it first");
    cr_assert_eq(weir_chan_commit_n(c, 3, NULL), 0, "%s", weir_errmsg());
    wr(c, 4, 30, 0);
    /* a batch of one commits with the single call */
    wr_n(c, 5, 40, 1, 1, slots);
    cr_assert_eq(weir_chan_commit(c, 40), 0, "%s", weir_errmsg());
    /* a single reserve commits with commit_n */
    void *p = weir_chan_reserve(c, 50, 0);
    cr_assert_not_null(p, "%s", weir_errmsg());
    t_fill(p, 50, 6);
    size_t l50 = 50;
    cr_assert_eq(weir_chan_commit_n(c, 1, &l50), 0, "%s", weir_errmsg());

    rd(c, a, 0, 10, 1);
    const size_t lens[6] = {20, 20, 20, 30, 40, 50};
    rd_n(c, a, 1, 4, 4, lens, 0, m);
    /* nothing more while a batch is held */
    weir_chan_msg one;
    EXPECT_ERR(weir_chan_read_msg(c, a, &one, 0), -EBUSY, nm);
    EXPECT_ERR(weir_chan_read_n(c, a, &one, 1, 0), -EBUSY, nm);
    /* single releases take the oldest held message */
    rel(c, a);
    rel(c, a);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(t_reader_stats(&st, a)->consumed, 3);
    snprintf(what, sizeof what, "reader %d released 3 messages but holds 2", a);
    EXPECT_ERR_TEXT(weir_chan_release_n(c, a, 3), -EINVAL, nm, what);
    cr_assert_eq(weir_chan_release_n(c, a, 2), 0, "%s", weir_errmsg());
    /* a batch of one, released with the single call */
    rd_n(c, a, 5, 1, 1, lens + 4, 0, m);
    rel(c, a);
    /* a single read, released with release_n */
    rd(c, a, 6, 50, 0);
    cr_assert_eq(weir_chan_release_n(c, a, 1), 0, "%s", weir_errmsg());
    stats(c, &st);
    cr_assert_eq(st.messages, 7);
    cr_assert_eq(st.bytes, 10 + 3 * 20 + 30 + 40 + 50);
    cr_assert_eq(t_reader_stats(&st, a)->consumed, 7);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, batch_misuse_exact_errors)
{
    char nm[64], what[200];
    t_name(nm, sizeof nm, "bmis");
    weir_chan *c = mk(nm, 64, 8, 1);
    int a = reg(c);
    void *slots[8];
    weir_chan_msg m[8];
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 8, 0, slots, 0), -EINVAL, nm,
                    "reserve_n of 0 messages into a slot array (need at least 1)");
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 8, 4, NULL, 0), -EINVAL, nm,
                    "reserve_n of 4 messages into a NULL slot array");
    cr_assert_eq(weir_chan_reserve_n(NULL, 8, 4, slots, 0), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "channel (null): reserve_n");
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, WEIR_CHAN_MAX_SLOT + 1, 4, slots, 0), -EMSGSIZE, nm,
                    "message of 17179869185 bytes exceeds the maximum 17179869184");
    EXPECT_ERR_TEXT(weir_chan_commit_n(c, 1, NULL), -EINVAL, nm, "commit without a reserve");
    wr_n(c, 0, 32, 3, 3, slots);
    EXPECT_ERR_TEXT(weir_chan_commit_n(c, 4, NULL), -EINVAL, nm,
                    "commit of 4 messages but only 3 were reserved");
    size_t bad[3] = {32, 33, 1};
    EXPECT_ERR_TEXT(weir_chan_commit_n(c, 3, bad), -EINVAL, nm,
                    "commit of message 1 of the batch with 33 bytes but only 32 were reserved "
                    "(nothing published)");
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 0, "a rejected commit_n published %llu",
                 (unsigned long long)st.messages);
    /* the reservation survives the rejected commit */
    EXPECT_ERR(weir_chan_close(c), -EBUSY, nm);
    size_t ok[3] = {32, 0, 5};
    cr_assert_eq(weir_chan_commit_n(c, 3, ok), 0, "%s", weir_errmsg());

    /* reader side */
    snprintf(what, sizeof what, "reader %d: read_n of 0 messages", a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, m, 0, 0), -EINVAL, nm, what);
    snprintf(what, sizeof what, "reader %d: NULL message pointer", a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, NULL, 4, 0), -EINVAL, nm, what);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, 7, m, 4, 0), -EINVAL, nm, "reader 7 is not registered");
    EXPECT_ERR_TEXT(weir_chan_read_n(c, -1, m, 4, 0), -EINVAL, nm,
                    "reader -1 is not registered");
    snprintf(what, sizeof what, "reader %d released without a read", a);
    EXPECT_ERR_TEXT(weir_chan_release_n(c, a, 1), -EINVAL, nm, what);
    rd_n(c, a, 0, 8, 3, ok, 0, m);
    snprintf(what, sizeof what, "reader %d already holds 3 messages from 0 on; release them first",
             a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, m, 8, 0), -EBUSY, nm, what);
    snprintf(what, sizeof what, "reader %d released 0 messages but holds 3", a);
    EXPECT_ERR_TEXT(weir_chan_release_n(c, a, 0), -EINVAL, nm, what);
    cr_assert_eq(weir_chan_release_n(c, a, 3), 0, "%s", weir_errmsg());

    /* a read handle cannot write; closed: -EPIPE both ways */
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    EXPECT_ERR_TEXT(weir_chan_reserve_n(h, 8, 2, slots, 0), -EPERM, nm,
                    "this handle was opened for reading; only the creator writes");
    EXPECT_ERR_TEXT(weir_chan_commit_n(h, 1, NULL), -EPERM, nm,
                    "this handle was opened for reading; only the creator writes");
    weir_chan_free(h);
    cr_assert_eq(weir_chan_close(c), 0);
    EXPECT_ERR_TEXT(weir_chan_reserve_n(c, 8, 2, slots, TMO), -EPIPE, nm, "closed");
    snprintf(what, sizeof what, "closed (reader %d drained 3 messages)", a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, m, 8, TMO), -EPIPE, nm, what);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, m, 8, 0), -EPIPE, nm, what);
    dereg(c, a);
    /* deregistered: the id is gone for batch calls too */
    snprintf(what, sizeof what, "reader %d was deregistered", a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, m, 8, 0), -EINVAL, nm, what);
    snprintf(what, sizeof what, "reader %d is not registered", a);
    EXPECT_ERR_TEXT(weir_chan_read_n(c, a, m, 8, 0), -EINVAL, nm, what);
    weir_chan_free(c);
}

Test(chan, batch_grows_for_large_messages_and_reads_across_the_forward)
{
    char nm[64];
    t_name(nm, sizeof nm, "bgrow");
    weir_chan *c = mk(nm, 64, 8, 1);
    int a = reg(c);
    void *slots[8];
    weir_chan_msg m[8];
    /* two small messages in generation 0, then a batch of large ones: the
     * channel grows first (2 x 64 < 1000: slots of 1024 bytes) */
    wr(c, 0, 64, 0);
    wr(c, 1, 5, 0);
    wr_n(c, 2, 1000, 4, 4, slots);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.grows, 1, "grows %llu", (unsigned long long)st.grows);
    cr_assert_eq(st.slot_bytes, 1024);
    for (unsigned i = 1; i < 4; i++)
        cr_assert_eq((uint8_t *)slots[i] - (uint8_t *)slots[i - 1], 1024,
                     "batch slot %u not in the new generation's next slot", i);
    const size_t lens[6] = {64, 5, 1000, 0, 1024 - 24, 999};
    cr_assert_eq(weir_chan_commit_n(c, 4, lens + 2), 0, "%s", weir_errmsg());
    /* one batch holds both generations' messages; every view stays valid */
    rd_n(c, a, 0, 8, 6, lens, 0, m);
    for (unsigned i = 0; i < 6; i++)
        cr_assert_eq(t_check(m[i].data, lens[i], i), -1, "message %u changed", i);
    cr_assert_eq(weir_chan_release_n(c, a, 6), 0, "%s", weir_errmsg());
    /* and after the growth small batches fill the big slots */
    wr_n(c, 6, 3, 8, 8, slots);
    cr_assert_eq(weir_chan_commit_n(c, 8, NULL), 0, "%s", weir_errmsg());
    rd_n(c, a, 6, 8, 8, NULL, 3, m);
    cr_assert_eq(weir_chan_release_n(c, a, 8), 0, "%s", weir_errmsg());
    stats(c, &st);
    cr_assert_eq(st.messages, 14);
    cr_assert_eq(st.bytes, 64 + 5 + 1000 + 0 + 1000 + 999 + 8 * 3);
    cr_assert_eq(st.grows, 1);
    dereg(c, a);
    weir_chan_free(c);
}

Test(chan, batch_read_carries_error_records)
{
    char nm[64];
    t_name(nm, sizeof nm, "berr");
    weir_chan *c = mk(nm, 64, 8, 1);
    int a = reg(c);
    wr(c, 0, 12, 0);
    cr_assert_eq(weir_chan_write_error(c, "stage 'x' failed", 0), 0);
    wr(c, 2, 12, 0);
    weir_chan_msg m[8];
    int k = weir_chan_read_n(c, a, m, 8, TMO);
    cr_assert_eq(k, 3, "read_n: %d %s", k, weir_errmsg());
    cr_assert_eq(m[0].flags, 0u);
    cr_assert_eq(m[1].flags, WEIR_MSG_ERROR);
    cr_assert_eq(m[1].seq, 1);
    cr_assert_eq(m[1].len, strlen("stage 'x' failed") + 1);
    cr_assert_str_eq((const char *)m[1].data, "stage 'x' failed");
    cr_assert_eq(m[2].flags, 0u);
    cr_assert_eq(t_check(m[2].data, 12, 2), -1);
    cr_assert_eq(weir_chan_release_n(c, a, 3), 0, "%s", weir_errmsg());
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.errors, 1);
    cr_assert_eq(st.messages, 3);
    dereg(c, a);
    weir_chan_free(c);
}
