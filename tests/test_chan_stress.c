/* SPDX-License-Identifier: MIT */
/*
 * tests/test_chan_stress.c - the ring channel under load: one writer and
 * three readers (threads, then processes), a million messages of random
 * sizes with a few growths, and a reader process killed mid-stream.
 *
 * Message format. A message of len >= 16 bytes is [seq u64][fnv u64] then
 * len - 16 random bytes, fnv being FNV-1a 64 of those bytes; a shorter
 * message holds t_fill's pattern for its seq. Every reader checks every
 * message (seq from the channel, seq in the bytes, checksum or pattern)
 * and keeps a running checksum over (seq, len, message hash) of all
 * messages; at the end the count and the running checksum must equal the
 * writer's.
 *
 * WEIR_STRESS_MSGS overrides the message count (default 10^6) for quick
 * local runs. Every blocking call has a timeout, so a bug fails the test
 * instead of hanging it.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "chan_util.h"

/* ---- fixture: nothing leaks (leak_init / leak_fini: chan_util.h) ---------- */

TestSuite(stress, .init = leak_init, .fini = leak_fini, .timeout = 150);

/* ---- the message stream ---------------------------------------------------- */

/* The batched streams run 2 x 10^5 messages under sanitizers (as test_net.c
 * reduces its counts), 10^6 otherwise. */
#include "sanitized.h"

static uint64_t nmsgs(uint64_t dflt)
{
    const char *e = getenv("WEIR_STRESS_MSGS");
    if (e && *e) {
        unsigned long long v = strtoull(e, NULL, 10);
        if (v >= 100)
            return v;
    }
    return dflt;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Four growths from 4096-byte slots: 8192, 32768, 131072, 524288. */
static const size_t g_big[4] = {6000, 20000, 70000, 300000};

static size_t stream_len(uint64_t seq, uint64_t n, uint64_t *rng)
{
    for (int k = 0; k < 4; k++)
        if (seq == n / 5 * (uint64_t)(k + 1))
            return g_big[k];
    if (seq > n / 5 * 4 && seq % 50000 == 49999)
        return 100000; /* large, after the last growth: fits */
    uint64_t r = xorshift(rng);
    if ((r & 63) == 0)
        return (size_t)((r >> 8) % 16); /* short: pattern only */
    return (size_t)((r >> 8) % 2049);
}

static uint64_t running_add(uint64_t run, uint64_t seq, uint64_t len, uint64_t h)
{
    run = t_fnv_u64(run, seq);
    run = t_fnv_u64(run, len);
    return t_fnv_u64(run, h);
}

/* Fill message s of len bytes (format above); its hash. */
static uint64_t fill_msg(uint8_t *p, size_t len, uint64_t s, uint64_t *rng)
{
    uint64_t h;
    if (len < 16) {
        t_fill(p, len, s);
        return t_fnv(T_FNV_OFF, p, len);
    }
    size_t i = 16;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = xorshift(rng);
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++)
        p[i] = (uint8_t)xorshift(rng);
    h = t_fnv(T_FNV_OFF, p + 16, len - 16);
    memcpy(p, &s, 8);
    memcpy(p + 8, &h, 8);
    return h;
}

/*
 * Check message s (format above): 0 and its hash in *h, or -1 with the
 * reason in *f.
 */
static int check_msg(int id, const weir_chan_msg *m, uint64_t s, uint64_t *h, struct t_fail *f)
{
    if (m->seq != s || m->flags != 0) {
        t_failf(f, "reader %d: message #%llu has seq %llu, flags 0x%x", id, (unsigned long long)s,
                (unsigned long long)m->seq, m->flags);
        return -1;
    }
    const uint8_t *p = m->data;
    if (m->len < 16) {
        long bad = t_check(p, m->len, s);
        if (bad != -1) {
            t_failf(f, "reader %d: short message %llu (%zu bytes) corrupt at %ld", id,
                    (unsigned long long)s, m->len, bad);
            return -1;
        }
        *h = t_fnv(T_FNV_OFF, p, m->len);
        return 0;
    }
    uint64_t hs, hh;
    memcpy(&hs, p, 8);
    memcpy(&hh, p + 8, 8);
    *h = t_fnv(T_FNV_OFF, p + 16, m->len - 16);
    if (hs != s || hh != *h) {
        t_failf(f,
                "reader %d: message %llu (%zu bytes): carries seq %llu, checksum %016llx, "
                "content hashes to %016llx",
                id, (unsigned long long)s, m->len, (unsigned long long)hs, (unsigned long long)hh,
                (unsigned long long)*h);
        return -1;
    }
    return 0;
}

/*
 * Write messages 0..n-1 and close. Returns 0 and the running checksum, or
 * -1 with the reason in *f (the channel is then closed anyway so that the
 * readers finish).
 */
static int stream_write(weir_chan *c, uint64_t n, uint64_t seed, uint64_t *running,
                        struct t_fail *f)
{
    uint64_t rng = seed | 1, run = T_FNV_OFF;
    for (uint64_t s = 0; s < n; s++) {
        size_t len = stream_len(s, n, &rng);
        uint8_t *p = weir_chan_reserve(c, len, TMO);
        if (!p) {
            t_failf(f, "writer: reserve of message %llu (%zu bytes) failed: %d",
                    (unsigned long long)s, len, weir_errcode());
            weir_chan_close(c);
            return -1;
        }
        uint64_t h = fill_msg(p, len, s, &rng);
        int rc = weir_chan_commit(c, len);
        if (rc != 0) {
            t_failf(f, "writer: commit of message %llu: %d", (unsigned long long)s, rc);
            weir_chan_close(c);
            return -1;
        }
        run = running_add(run, s, len, h);
        if (s % 100000 == 99999)
            t_sleep_ms(2); /* let the readers run dry and sleep */
    }
    int rc = weir_chan_close(c);
    if (rc != 0) {
        t_failf(f, "writer: close: %d", rc);
        return -1;
    }
    *running = run;
    return 0;
}

struct sres {
    uint64_t count;
    uint64_t running;
    int ok;
    char text[600];
};

/*
 * Read until -EPIPE, checking every message. `lag_every`: sleep 1 ms while
 * holding a message every that many messages (0: never), phase-shifted per
 * reader so that the writer waits for different readers.
 */
static void stream_read(weir_chan *c, int id, uint64_t n, unsigned lag_every, unsigned phase,
                        struct sres *res)
{
    struct t_fail f = {{0}};
    uint64_t run = T_FNV_OFF, s = 0;
    for (;; s++) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(c, id, &m, TMO);
        if (rc == -EPIPE)
            break;
        if (rc != 0) {
            t_failf(&f, "reader %d: read of message %llu failed: %d", id, (unsigned long long)s,
                    rc);
            break;
        }
        if (s >= n) {
            t_failf(&f, "reader %d: an extra message (seq %llu) after %llu", id,
                    (unsigned long long)m.seq, (unsigned long long)n);
            weir_chan_release(c, id);
            break;
        }
        uint64_t h;
        if (check_msg(id, &m, s, &h, &f) < 0) {
            weir_chan_release(c, id);
            break;
        }
        run = running_add(run, s, m.len, h);
        if (lag_every && s % lag_every == phase)
            t_sleep_ms(1);
        rc = weir_chan_release(c, id);
        if (rc != 0) {
            t_failf(&f, "reader %d: release of %llu: %d", id, (unsigned long long)s, rc);
            break;
        }
    }
    res->count = s;
    res->running = run;
    res->ok = f.text[0] == '\0';
    snprintf(res->text, sizeof res->text, "%s", f.text);
    /* whatever happened, stop holding the writer back */
    weir_chan_deregister_reader(c, id);
}

/*
 * The same stream through the batch calls: batches of 1..48 messages
 * reserved at the largest length among them (so the growths happen inside
 * batches), one in eight committed short (the rest dropped and written by
 * the next batch). Lengths are drawn per sequence number, so the stream
 * is the one stream_len gives whatever the batches.
 */
#define BATCH_MAX 48
static int stream_write_batched(weir_chan *c, uint64_t n, uint64_t seed, uint64_t *running,
                                struct t_fail *f)
{
    uint64_t rng = seed | 1, brng = seed ^ 0x5851F42D4C957F2Dull, run = T_FNV_OFF;
    size_t lens[BATCH_MAX];
    unsigned have = 0; /* lens[0..have-1]: lengths of messages s.. */
    void *slots[BATCH_MAX];
    for (uint64_t s = 0; s < n;) {
        unsigned want = 1 + (unsigned)(xorshift(&brng) % BATCH_MAX);
        if (want > n - s)
            want = (unsigned)(n - s);
        for (; have < want; have++)
            lens[have] = stream_len(s + have, n, &rng);
        size_t maxlen = 0;
        for (unsigned i = 0; i < want; i++)
            if (lens[i] > maxlen)
                maxlen = lens[i];
        int k = weir_chan_reserve_n(c, maxlen, want, slots, TMO);
        if (k < 1 || (unsigned)k > want) {
            t_failf(f, "writer: reserve_n of %u messages from %llu (%zu bytes): %d", want,
                    (unsigned long long)s, maxlen, k);
            weir_chan_close(c);
            return -1;
        }
        unsigned j = (unsigned)k;
        if (j > 1 && (xorshift(&brng) & 7) == 0)
            j = j / 2; /* commit a prefix, drop the rest */
        uint64_t h[BATCH_MAX];
        for (unsigned i = 0; i < j; i++)
            h[i] = fill_msg(slots[i], lens[i], s + i, &rng);
        int rc = weir_chan_commit_n(c, j, lens);
        if (rc != 0) {
            t_failf(f, "writer: commit_n of %u from %llu: %d", j, (unsigned long long)s, rc);
            weir_chan_close(c);
            return -1;
        }
        for (unsigned i = 0; i < j; i++)
            run = running_add(run, s + i, lens[i], h[i]);
        uint64_t before = s;
        s += j;
        have -= j;
        memmove(lens, lens + j, have * sizeof *lens);
        if (s / 100000 != before / 100000)
            t_sleep_ms(2); /* let the readers run dry and sleep */
    }
    int rc = weir_chan_close(c);
    if (rc != 0) {
        t_failf(f, "writer: close: %d", rc);
        return -1;
    }
    *running = run;
    return 0;
}

/* Read the stream with read_n of 1..80 (one call in six a single read_msg),
 * releasing each batch in one call, in two parts or one message at a time. */
static void stream_read_batched(weir_chan *c, int id, uint64_t n, unsigned lag_every,
                                unsigned phase, struct sres *res)
{
    struct t_fail f = {{0}};
    uint64_t run = T_FNV_OFF, s = 0, rng = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    weir_chan_msg m[80];
    for (;;) {
        uint64_t r = xorshift(&rng);
        unsigned want = 1 + (unsigned)(r % 80);
        int k;
        if ((r >> 8) % 6 == 0)
            k = weir_chan_read_msg(c, id, m, TMO) == 0 ? 1 : weir_errcode();
        else
            k = weir_chan_read_n(c, id, m, want, TMO);
        if (k == -EPIPE)
            break;
        if (k < 1 || (unsigned)k > want) {
            t_failf(&f, "reader %d: read_n(%u) at message %llu: %d", id, want,
                    (unsigned long long)s, k);
            break;
        }
        if (s + (unsigned)k > n) {
            t_failf(&f, "reader %d: %d messages from %llu, past the %llu written", id, k,
                    (unsigned long long)s, (unsigned long long)n);
            weir_chan_release_n(c, id, (unsigned)k);
            break;
        }
        int bad = 0;
        for (int i = 0; i < k && !bad; i++) {
            uint64_t h;
            if (check_msg(id, &m[i], s + (uint64_t)i, &h, &f) < 0)
                bad = 1;
            else
                run = running_add(run, s + (uint64_t)i, m[i].len, h);
            if (lag_every && (s + (uint64_t)i) % lag_every == phase)
                t_sleep_ms(1);
        }
        if (bad) {
            weir_chan_release_n(c, id, (unsigned)k);
            break;
        }
        int rc = 0;
        switch ((r >> 16) % 3) {
        case 0:
            rc = weir_chan_release_n(c, id, (unsigned)k);
            break;
        case 1:
            rc = weir_chan_release_n(c, id, (unsigned)(k + 1) / 2);
            if (rc == 0 && k > 1)
                rc = weir_chan_release_n(c, id, (unsigned)k / 2);
            break;
        default:
            for (int i = 0; i < k && rc == 0; i++)
                rc = weir_chan_release(c, id);
        }
        if (rc != 0) {
            t_failf(&f, "reader %d: release of %d from %llu: %d", id, k, (unsigned long long)s,
                    rc);
            break;
        }
        s += (uint64_t)k;
    }
    res->count = s;
    res->running = run;
    res->ok = f.text[0] == '\0';
    snprintf(res->text, sizeof res->text, "%s", f.text);
    weir_chan_deregister_reader(c, id);
}

static void check_result(const struct sres *r, int k, uint64_t n, uint64_t running)
{
    cr_assert(r->ok, "reader %d: %s", k, r->text);
    cr_assert_eq(r->count, n, "reader %d got %llu of %llu messages", k,
                 (unsigned long long)r->count, (unsigned long long)n);
    cr_assert_eq(r->running, running, "reader %d: running checksum %016llx, writer's %016llx", k,
                 (unsigned long long)r->running, (unsigned long long)running);
}

static void check_final_stats(weir_chan *c, uint64_t n)
{
    struct weir_chan_stats st;
    cr_assert_eq(weir_chan_stats(c, &st), 0);
    cr_assert_eq(st.messages, n, "stats.messages %llu", (unsigned long long)st.messages);
    cr_assert_eq(st.errors, 0);
    cr_assert_eq(st.grows, 4, "stats.grows %llu, expected 4", (unsigned long long)st.grows);
    cr_assert_eq(st.slot_bytes, 524288, "stats.slot_bytes %zu", st.slot_bytes);
    cr_assert_eq(st.closed, 1);
}

/* =========================================================================== */
/* 1 writer, 3 reader threads                                                   */
/* =========================================================================== */

struct rth {
    pthread_t th;
    weir_chan *c;
    int id;
    uint64_t n;
    unsigned phase;
    int batched;
    struct sres res;
};

static void *rth_main(void *arg)
{
    struct rth *r = arg;
    if (r->batched)
        stream_read_batched(r->c, r->id, r->n, 65536, r->phase, &r->res);
    else
        stream_read(r->c, r->id, r->n, 65536, r->phase, &r->res);
    return NULL;
}

/* batched: the writer and every reader use the batch calls (mixed with single ones). */
static void run_three_reader_threads(int batched)
{
    const uint64_t n = nmsgs(batched && SANITIZED ? 200000 : 1000000);
    weir_chan_opts o = {.slot_bytes = 4096, .depth = 16};
    weir_chan *c = weir_chan_create(NULL, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    struct rth r[3];
    memset(r, 0, sizeof r);
    for (int k = 0; k < 3; k++) {
        r[k].c = c;
        r[k].id = weir_chan_register_reader(c);
        cr_assert_geq(r[k].id, 0, "%s", weir_errmsg());
        r[k].n = n;
        r[k].phase = (unsigned)k * 20000;
        r[k].batched = batched;
        cr_assert_eq(pthread_create(&r[k].th, NULL, rth_main, &r[k]), 0);
    }
    struct t_fail f = {{0}};
    uint64_t running = 0;
    uint64_t t0 = t_now_ns();
    int wrc = batched ? stream_write_batched(c, n, 0x9e3779b97f4a7c15ull, &running, &f)
                      : stream_write(c, n, 0x9e3779b97f4a7c15ull, &running, &f);
    for (int k = 0; k < 3; k++)
        pthread_join(r[k].th, NULL);
    double secs = (double)(t_now_ns() - t0) / 1e9;
    cr_log_info("%llu messages to 3 reader threads%s in %.2f s", (unsigned long long)n,
                batched ? " in batches" : "", secs);
    cr_assert_eq(wrc, 0, "%s", f.text);
    for (int k = 0; k < 3; k++)
        check_result(&r[k].res, k, n, running);
    check_final_stats(c, n);
    struct weir_chan_stats st;
    weir_chan_stats(c, &st);
    cr_assert_eq(st.nreaders, 0);
    weir_chan_free(c);
}

Test(stress, one_writer_three_reader_threads)
{
    run_three_reader_threads(0);
}

Test(stress, one_writer_three_reader_threads_batched)
{
    run_three_reader_threads(1);
}

/* =========================================================================== */
/* 1 writer, 3 reader processes                                                  */
/* =========================================================================== */

struct kid {
    pid_t pid;
    int res_fd; /* parent's end of the result pipe */
    int id;
};

/*
 * Fork a reader process. It opens the channel by name (or uses the
 * inherited handle if name is NULL), registers, sends its id on ready_fd,
 * reads the stream, and sends a struct sres on its result pipe.
 */
static void spawn_reader(struct kid *k, weir_chan *c, const char *name, int ready_fd, uint64_t n,
                         unsigned phase, int batched)
{
    int res[2];
    cr_assert_eq(pipe(res), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(res[0]);
        weir_chan *h = name ? weir_chan_open(name) : c;
        CCHECK(h != NULL, "open %s", name);
        int id = weir_chan_register_reader(h);
        CCHECK(id >= 0, "register");
        CCHECK(t_write_full(ready_fd, &id, sizeof id) == 0, "ready pipe");
        struct sres r;
        memset(&r, 0, sizeof r);
        if (batched)
            stream_read_batched(h, id, n, 65536, phase, &r);
        else
            stream_read(h, id, n, 65536, phase, &r);
        CCHECK(t_write_full(res[1], &r, sizeof r) == 0, "result pipe");
        if (name)
            weir_chan_free(h);
        _exit(r.ok ? 0 : 1);
    }
    close(res[1]);
    k->pid = pid;
    k->res_fd = res[0];
}

static void kill_all(struct kid *k, int nk)
{
    for (int i = 0; i < nk; i++) {
        kill(k[i].pid, SIGKILL);
        waitpid(k[i].pid, NULL, 0);
        close(k[i].res_fd);
    }
}

static void collect_reader(struct kid *k, int idx, uint64_t n, uint64_t running)
{
    struct sres r;
    memset(&r, 0, sizeof r);
    int got = t_read_full(k->res_fd, &r, sizeof r, 60000);
    close(k->res_fd);
    char sb[64];
    int ws = t_wait_child(k->pid, 30000);
    cr_assert_eq(got, 0, "reader process %d sent no result (%s)", idx,
                 t_status_str(ws, sb, sizeof sb));
    check_result(&r, idx, n, running);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "reader process %d: %s", idx,
              t_status_str(ws, sb, sizeof sb));
}

static void run_three_reader_processes(int batched)
{
    const uint64_t n = nmsgs(batched && SANITIZED ? 200000 : 1000000);
    char nm[64];
    t_name(nm, sizeof nm, batched ? "bprocs" : "procs");
    weir_chan_opts o = {.slot_bytes = 4096, .depth = 8};
    weir_chan *c = weir_chan_create(nm, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    struct kid k[3];
    for (int i = 0; i < 3; i++)
        spawn_reader(&k[i], c, nm, ready[1], n, (unsigned)i * 20000, batched);
    close(ready[1]);
    int ids[3];
    cr_assert_eq(t_read_full(ready[0], ids, sizeof ids, TMO), 0,
                 "reader processes did not register");
    close(ready[0]);
    struct weir_chan_stats st;
    cr_assert_eq(weir_chan_stats(c, &st), 0);
    cr_assert_eq(st.nreaders, 3);

    struct t_fail f = {{0}};
    uint64_t running = 0;
    uint64_t t0 = t_now_ns();
    int wrc = batched ? stream_write_batched(c, n, 0x2545F4914F6CDD1Dull, &running, &f)
                      : stream_write(c, n, 0x2545F4914F6CDD1Dull, &running, &f);
    if (wrc != 0)
        kill_all(k, 3);
    cr_assert_eq(wrc, 0, "%s", f.text);
    for (int i = 0; i < 3; i++)
        collect_reader(&k[i], i, n, running);
    double secs = (double)(t_now_ns() - t0) / 1e9;
    cr_log_info("%llu messages to 3 reader processes%s in %.2f s", (unsigned long long)n,
                batched ? " in batches" : "", secs);
    check_final_stats(c, n);
    cr_assert_eq(weir_chan_stats(c, &st), 0);
    cr_assert_eq(st.nreaders, 0);
    weir_chan_free(c);
}

Test(stress, one_writer_three_reader_processes)
{
    run_three_reader_processes(0);
}

/* Batches across processes: named channel, readers open it by name. */
Test(stress, one_writer_three_reader_processes_batched)
{
    run_three_reader_processes(1);
}

/* =========================================================================== */
/* Sleep and wake: hunting lost wake-ups                                        */
/* =========================================================================== */

/*
 * Both sides pause at random for 0..400 us, long enough to get past the
 * spin and yield phases, so that most waits end in a futex sleep and most
 * commits and releases race with a sleeper announcing itself. A lost
 * wake-up shows as a wait that runs into its 3-second timeout (a real wait
 * here is under a millisecond).
 */
#define PP_TMO 3000

static void pp_pause(uint64_t *rng)
{
    static const unsigned us[8] = {0, 0, 0, 0, 90, 150, 250, 400};
    unsigned d = us[xorshift(rng) & 7];
    if (d) {
        struct timespec ts = {0, (long)d * 1000L};
        nanosleep(&ts, NULL);
    }
}

static void pp_read(weir_chan *c, int id, uint64_t n, uint64_t seed, struct sres *res)
{
    struct t_fail f = {{0}};
    uint64_t rng = seed | 1, s = 0;
    for (; s < n; s++) {
        weir_chan_msg m;
        uint64_t t0 = t_now_ns();
        int rc = weir_chan_read_msg(c, id, &m, PP_TMO);
        if (rc != 0) {
            t_failf(&f, "reader %d: read of message %llu: %d after %.0f ms", id,
                    (unsigned long long)s, rc, t_ms_since(t0));
            break;
        }
        uint64_t v = ~0ull;
        if (m.len == 8)
            memcpy(&v, m.data, 8);
        if (m.seq != s || v != s) {
            t_failf(&f, "reader %d: message %llu: seq %llu, len %zu, content %llu", id,
                    (unsigned long long)s, (unsigned long long)m.seq, m.len,
                    (unsigned long long)v);
            weir_chan_release(c, id);
            break;
        }
        pp_pause(&rng);
        rc = weir_chan_release(c, id);
        if (rc != 0) {
            t_failf(&f, "reader %d: release of %llu: %d", id, (unsigned long long)s, rc);
            break;
        }
    }
    if (!f.text[0]) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(c, id, &m, PP_TMO);
        if (rc != -EPIPE)
            t_failf(&f, "reader %d: after the last message: %d", id, rc);
    }
    res->count = s;
    res->running = 0;
    res->ok = f.text[0] == '\0';
    snprintf(res->text, sizeof res->text, "%s", f.text);
    weir_chan_deregister_reader(c, id);
}

static int pp_write(weir_chan *c, uint64_t n, struct t_fail *f)
{
    uint64_t rng = 0x1234567, t0;
    for (uint64_t s = 0; s < n; s++) {
        pp_pause(&rng);
        t0 = t_now_ns();
        int rc = weir_chan_write(c, &s, 8, PP_TMO);
        if (rc != 0) {
            t_failf(f, "writer: write of message %llu: %d after %.0f ms", (unsigned long long)s,
                    rc, t_ms_since(t0));
            weir_chan_close(c);
            return -1;
        }
    }
    return weir_chan_close(c);
}

struct ppth {
    pthread_t th;
    weir_chan *c;
    int id;
    uint64_t n;
    struct sres res;
};

static void *ppth_main(void *arg)
{
    struct ppth *p = arg;
    pp_read(p->c, p->id, p->n, (uint64_t)p->id * 7919 + 17, &p->res);
    return NULL;
}

Test(stress, sleep_wake_threads)
{
    const uint64_t n = nmsgs(1000000) / 50; /* 20000 */
    weir_chan_opts o = {.slot_bytes = 64, .depth = 2};
    weir_chan *c = weir_chan_create(NULL, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    struct ppth r[2];
    memset(r, 0, sizeof r);
    for (int k = 0; k < 2; k++) {
        r[k].c = c;
        r[k].id = weir_chan_register_reader(c);
        cr_assert_geq(r[k].id, 0);
        r[k].n = n;
        cr_assert_eq(pthread_create(&r[k].th, NULL, ppth_main, &r[k]), 0);
    }
    struct t_fail f = {{0}};
    int wrc = pp_write(c, n, &f);
    for (int k = 0; k < 2; k++)
        pthread_join(r[k].th, NULL);
    cr_assert_eq(wrc, 0, "%s", f.text);
    for (int k = 0; k < 2; k++) {
        cr_assert(r[k].res.ok, "%s", r[k].res.text);
        cr_assert_eq(r[k].res.count, n);
    }
    struct weir_chan_stats st;
    weir_chan_stats(c, &st);
    cr_log_info("sleep/wake threads: writer blocked %.0f ms in total",
                (double)st.writer_blocked_ns / 1e6);
    weir_chan_free(c);
}

Test(stress, sleep_wake_processes)
{
    const uint64_t n = nmsgs(1000000) / 50;
    weir_chan_opts o = {.slot_bytes = 64, .depth = 1};
    weir_chan *c = weir_chan_create(NULL, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    struct kid k[2];
    for (int i = 0; i < 2; i++) {
        int res[2];
        cr_assert_eq(pipe(res), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(res[0]);
            int id = weir_chan_register_reader(c);
            CCHECK(id >= 0, "register");
            CCHECK(t_write_full(ready[1], &id, sizeof id) == 0, "ready pipe");
            struct sres r;
            memset(&r, 0, sizeof r);
            pp_read(c, id, n, (uint64_t)i * 104729 + 3, &r);
            CCHECK(t_write_full(res[1], &r, sizeof r) == 0, "result pipe");
            _exit(r.ok ? 0 : 1);
        }
        close(res[1]);
        k[i].pid = pid;
        k[i].res_fd = res[0];
    }
    close(ready[1]);
    int ids[2];
    cr_assert_eq(t_read_full(ready[0], ids, sizeof ids, TMO), 0, "readers did not register");
    close(ready[0]);
    struct t_fail f = {{0}};
    int wrc = pp_write(c, n, &f);
    if (wrc != 0)
        kill_all(k, 2);
    cr_assert_eq(wrc, 0, "%s", f.text);
    for (int i = 0; i < 2; i++) {
        struct sres r;
        memset(&r, 0, sizeof r);
        int got = t_read_full(k[i].res_fd, &r, sizeof r, 60000);
        close(k[i].res_fd);
        char sb[64];
        int ws = t_wait_child(k[i].pid, 30000);
        cr_assert_eq(got, 0, "reader process %d sent no result (%s)", i,
                     t_status_str(ws, sb, sizeof sb));
        cr_assert(r.ok, "%s", r.text);
        cr_assert_eq(r.count, n);
        cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "reader %d: %s", i,
                  t_status_str(ws, sb, sizeof sb));
    }
    weir_chan_free(c);
}

/* =========================================================================== */
/* A reader process killed mid-stream                                           */
/* =========================================================================== */

#define VICTIM_AT 5000u /* the victim holds this message when it is killed */

/* The victim: read and release messages 0..VICTIM_AT-1, hold VICTIM_AT, report, wait to die. */
static pid_t spawn_victim(weir_chan *c, const char *name, int ready_fd, int *holding_fd)
{
    int hold[2];
    cr_assert_eq(pipe(hold), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(hold[0]);
        weir_chan *h = name ? weir_chan_open(name) : c;
        CCHECK(h != NULL, "open %s", name);
        int id = weir_chan_register_reader(h);
        CCHECK(id >= 0, "register");
        CCHECK(t_write_full(ready_fd, &id, sizeof id) == 0, "ready pipe");
        for (uint64_t s = 0; s <= VICTIM_AT; s++) {
            weir_chan_msg m;
            int rc = weir_chan_read_msg(h, id, &m, TMO);
            CCHECK(rc == 0, "read of %llu: %d", (unsigned long long)s, rc);
            CCHECK(m.seq == s, "seq %llu, expected %llu", (unsigned long long)m.seq,
                   (unsigned long long)s);
            if (s < VICTIM_AT)
                CCHECK(weir_chan_release(h, id) == 0, "release");
        }
        char b = 1;
        CCHECK(t_write_full(hold[1], &b, 1) == 0, "holding pipe");
        t_sleep_ms(60000); /* SIGKILL comes long before */
        _exit(3);
    }
    close(hold[1]);
    *holding_fd = hold[0];
    return pid;
}

struct killer {
    pthread_t th;
    weir_chan *c;      /* writer handle: stats */
    weir_chan *via;    /* handle used to remove the victim */
    int use_reap;      /* weir_chan_reap_dead_readers, else deregister by id */
    pid_t victim;
    int victim_id;
    int holding_fd;
    unsigned depth;
    /* results */
    uint64_t stalled_at; /* stats.messages while the writer was stuck */
    int remove_rc;
    unsigned nreaders_after;
    struct t_fail f;
};

static void *killer_main(void *arg)
{
    struct killer *k = arg;
    char b;
    if (t_read_full(k->holding_fd, &b, 1, TMO) != 0) {
        t_failf(&k->f, "the victim never reported that it holds message %u", VICTIM_AT);
        kill(k->victim, SIGKILL);
        waitpid(k->victim, NULL, 0);
        return NULL;
    }
    /* The writer fills the ring up to exactly depth messages past the victim. */
    const uint64_t limit = VICTIM_AT + k->depth;
    struct weir_chan_stats st;
    uint64_t t0 = t_now_ns();
    for (;;) {
        weir_chan_stats(k->c, &st);
        if (st.messages > limit) {
            t_failf(&k->f, "the writer got %llu messages ahead of a reader holding %u (depth %u)",
                    (unsigned long long)st.messages, VICTIM_AT, k->depth);
            break;
        }
        if (st.messages == limit || t_ms_since(t0) > 5000)
            break;
        t_sleep_ms(1);
    }
    t_sleep_ms(100);
    weir_chan_stats(k->c, &st);
    k->stalled_at = st.messages;

    kill(k->victim, SIGKILL);
    int ws;
    waitpid(k->victim, &ws, 0);
    if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL)
        t_failf(&k->f, "the victim was not killed by SIGKILL (status 0x%x)", ws);

    if (k->use_reap)
        k->remove_rc = weir_chan_reap_dead_readers(k->via);
    else
        k->remove_rc = weir_chan_deregister_reader(k->via, k->victim_id);
    weir_chan_stats(k->c, &st);
    k->nreaders_after = st.nreaders;
    return NULL;
}

static void run_kill(int use_reap)
{
    const uint64_t n = nmsgs(1000000) / 5;
    const unsigned depth = 8;
    char nm[64];
    t_name(nm, sizeof nm, use_reap ? "reap" : "kill");
    weir_chan_opts o = {.slot_bytes = 4096, .depth = depth};
    /* reap: anonymous channel shared over fork; deregister: named, opened by everyone */
    weir_chan *c = weir_chan_create(use_reap ? NULL : nm, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    const char *open_name = use_reap ? NULL : nm;
    weir_chan *via = c;
    if (!use_reap) {
        via = weir_chan_open(nm); /* force-deregistration through another handle */
        cr_assert_not_null(via, "%s", weir_errmsg());
    }

    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    struct kid k[2];
    for (int i = 0; i < 2; i++)
        spawn_reader(&k[i], c, open_name, ready[1], n, (unsigned)i * 30000, 0);
    int holding_fd;
    pid_t victim = spawn_victim(c, open_name, ready[1], &holding_fd);
    close(ready[1]);
    int ids[3];
    cr_assert_eq(t_read_full(ready[0], ids, sizeof ids, TMO), 0, "readers did not register");
    close(ready[0]);

    /* which id is the victim's: the one whose pid is the victim's */
    struct weir_chan_stats st;
    cr_assert_eq(weir_chan_stats(c, &st), 0);
    cr_assert_eq(st.nreaders, 3);
    int victim_id = -1;
    for (unsigned i = 0; i < st.nreaders; i++)
        if (st.readers[i].pid == victim)
            victim_id = st.readers[i].id;
    cr_assert_geq(victim_id, 0, "no reader registered by the victim's pid %d", (int)victim);
    cr_assert_eq(weir_chan_reap_dead_readers(via), 0, "reaped live readers");

    struct killer kl = {.c = c,
                        .via = via,
                        .use_reap = use_reap,
                        .victim = victim,
                        .victim_id = victim_id,
                        .holding_fd = holding_fd,
                        .depth = depth};
    cr_assert_eq(pthread_create(&kl.th, NULL, killer_main, &kl), 0);

    struct t_fail f = {{0}};
    uint64_t running = 0;
    int wrc = stream_write(c, n, 0x5851F42D4C957F2Dull, &running, &f);
    pthread_join(kl.th, NULL);
    close(holding_fd);
    if (wrc != 0)
        kill_all(k, 2);
    cr_assert_eq(wrc, 0, "%s; killer: %s", f.text, kl.f.text);
    for (int i = 0; i < 2; i++)
        collect_reader(&k[i], i, n, running);
    cr_assert(kl.f.text[0] == '\0', "%s", kl.f.text);
    cr_assert_eq(kl.stalled_at, VICTIM_AT + depth,
                 "while the victim held message %u the writer stood at %llu messages, "
                 "expected %u",
                 VICTIM_AT, (unsigned long long)kl.stalled_at, VICTIM_AT + depth);
    if (use_reap)
        cr_assert_eq(kl.remove_rc, 1, "weir_chan_reap_dead_readers returned %d", kl.remove_rc);
    else
        cr_assert_eq(kl.remove_rc, 0, "weir_chan_deregister_reader returned %d", kl.remove_rc);
    cr_assert_eq(kl.nreaders_after, 2, "%u readers after removing the dead one",
                 kl.nreaders_after);
    cr_assert_eq(weir_chan_stats(c, &st), 0);
    cr_assert_eq(st.messages, n);
    cr_assert_eq(st.nreaders, 0);
    cr_assert_geq(st.writer_blocked_ns, 100000000ull,
                  "the writer was stuck >= 100 ms on the victim, writer_blocked_ns %llu",
                  (unsigned long long)st.writer_blocked_ns);
    if (via != c)
        weir_chan_free(via);
    weir_chan_free(c);
}

Test(stress, killed_reader_process_reaped)
{
    run_kill(1);
}

Test(stress, killed_reader_process_deregistered_by_id)
{
    run_kill(0);
}
