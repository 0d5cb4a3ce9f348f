/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_chan.c - `weir-bench chan`: weir channel throughput and
 * ping-pong cases, the plan of the whole subcommand and its ratios.
 *
 * Design notes
 *
 * Throughput: one anonymous channel (slot_bytes = message size, depth
 * from bench_depth_for), readers registered by this process before the
 * parties start (so every reader sees message 0), then the writer
 * (party 0, this process) writes until the time or message budget, and
 * closes; readers stop at -EPIPE. The first 2 x depth messages are a
 * warm-up (page faults, caches): the clock starts at the writer's reserve
 * of the first timed message and stops when the last reader saw -EPIPE.
 * Every reader checks length and sequence number of every message (and
 * the stamp in its first and last 8 bytes), and must have seen exactly
 * what the writer wrote, so a broken channel cannot measure nothing.
 *
 * Ping-pong: two channels, ping (party 0 writes) and pong (party 1
 * writes); one message in flight. Party 0 reads the clock once per round
 * trip; one-way latency = round trip / 2.
 *
 * Process mode: channels are anonymous (memfd) and created before fork.
 * Children never free their copy of a handle (that would deregister the
 * readers registered through it); they _exit and the parent frees.
 */
#include "bench.h"

#include <weir/chan.h>
#include <weir/stats.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPUs for n parties: 2 parties on CPUs 0 and 1; more (than the 2 cores
 * of the target machine) round-robin: party i on CPU i % 2. */
static void pin_plan(int n, int *cpus, char *note, size_t note_len)
{
    for (int i = 0; i < n; i++)
        cpus[i] = n > 2 && bench_opts.unpinned_multi ? -1 : i % 2;
    if (n <= 2) {
        snprintf(note, note_len, "pin 0/1");
    } else if (bench_opts.unpinned_multi) {
        snprintf(note, note_len, "unpinned");
    } else {
        size_t off = (size_t)snprintf(note, note_len, "pin rr w0 r");
        for (int i = 1; i < n && off < note_len; i++)
            off += (size_t)snprintf(note + off, note_len - off, "%s%d", i > 1 ? "," : "", cpus[i]);
    }
}

static const char *mode_str(enum bench_mode m)
{
    return m == BENCH_THREADS ? "thr" : "proc";
}

/* ------------------------------------------------------------ throughput */

#define BENCH_BATCH 64 /* messages per batch call of the .batch rows */

struct tput_arg {
    weir_chan *c;
    int ids[WEIR_CHAN_MAX_READERS];
    int readers;
    size_t n;
    int zc;
    int batch; /* .batch rows: reserve_n/commit_n, read_n/release_n of up to BENCH_BATCH */
    uint64_t warm;
    const uint8_t *src;
};

/* Write messages seq.. (up to want of them, one unless a->batch): how many, or < 0. */
static inline __attribute__((always_inline)) int tput_write(struct bench_shared *sh, int idx,
                                                            struct tput_arg *a, uint64_t seq,
                      unsigned want, int tmo)
{
    if (!a->batch) {
        void *p = weir_chan_reserve(a->c, a->n, tmo);
        if (!p)
            return bench_fail(sh, idx, weir_errcode(), "writer: weir_chan_reserve (seq %llu): %s",
                              (unsigned long long)seq, weir_errmsg());
        if (!a->zc) memcpy(p, a->src, a->n);
        bench_stamp(p, a->n, seq);
        int rc = weir_chan_commit(a->c, a->n);
        if (rc < 0)
            return bench_fail(sh, idx, rc, "writer: weir_chan_commit (seq %llu): %s",
                              (unsigned long long)seq, weir_errmsg());
        return 1;
    }
    void *slots[BENCH_BATCH];
    int k = weir_chan_reserve_n(a->c, a->n, want, slots, tmo);
    if (k < 1)
        return bench_fail(sh, idx, k, "writer: weir_chan_reserve_n (seq %llu): %s",
                          (unsigned long long)seq, weir_errmsg());
    for (int i = 0; i < k; i++) {
        if (!a->zc) memcpy(slots[i], a->src, a->n);
        bench_stamp(slots[i], a->n, seq + (uint64_t)i);
    }
    int rc = weir_chan_commit_n(a->c, (unsigned)k, NULL);
    if (rc < 0)
        return bench_fail(sh, idx, rc, "writer: weir_chan_commit_n (seq %llu): %s",
                          (unsigned long long)seq, weir_errmsg());
    return k;
}

static int tput_writer(struct bench_shared *sh, int idx, struct tput_arg *a)
{
    int gen = 0, tmo = bench_opts.timeout_ms;
    int rc = bench_barrier(sh, a->readers + 1, &gen);
    if (rc < 0) {
        weir_chan_close(a->c);
        return bench_fail(sh, idx, rc, "writer: barrier: %s", strerror(-rc));
    }
    const uint64_t limit = a->warm + bench_opts.max_msgs;
    const uint64_t every = a->n >= 4096 ? 1 : 256; /* how often to read the clock */
    uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX, next_clock = UINT64_MAX;
    for (;;) {
        if (seq == a->warm) {
            t0 = bench_now_ns();
            deadline = t0 + bench_opts.budget_ns;
            next_clock = seq + every;
        } else if (seq >= next_clock) {
            if (bench_now_ns() >= deadline) break;
            next_clock += every * ((seq - next_clock) / every + 1);
        }
        if (seq >= limit || atomic_load_explicit(&sh->abort, memory_order_relaxed)) break;
        /* A batch never runs past the warm-up mark or the limit, so the clock
         * starts and stops at the same messages as with single calls. */
        uint64_t until = seq < a->warm ? a->warm : limit;
        unsigned want = until - seq < BENCH_BATCH ? (unsigned)(until - seq) : BENCH_BATCH;
        rc = tput_write(sh, idx, a, seq, want, tmo);
        if (rc < 0) break;
        seq += (uint64_t)rc;
    }
    uint64_t t_close = bench_now_ns();
    weir_chan_close(a->c);
    sh->res[idx].msgs = seq;
    sh->res[idx].t_start = t0;
    sh->res[idx].t_end = t_close;
    return sh->res[idx].err;
}

static int tput_reader(struct bench_shared *sh, int idx, struct tput_arg *a)
{
    int gen = 0, tmo = bench_opts.timeout_ms;
    int id = a->ids[idx - 1];
    int rc = bench_barrier(sh, a->readers + 1, &gen);
    if (rc < 0) return bench_fail(sh, idx, rc, "reader %d: barrier: %s", id, strerror(-rc));
    uint64_t expect = 0, sum = 0;
    while (a->batch) {
        weir_chan_msg ms[BENCH_BATCH];
        int k = weir_chan_read_n(a->c, id, ms, BENCH_BATCH, tmo);
        if (k == -EPIPE) goto done;
        if (k < 1)
            return bench_fail(sh, idx, k, "reader %d: weir_chan_read_n (seq %llu): %s", id,
                              (unsigned long long)expect, weir_errmsg());
        for (int i = 0; i < k; i++, expect++) {
            const weir_chan_msg *m = &ms[i];
            if (m->len != a->n || m->seq != expect || m->flags ||
                !bench_check(m->data, a->n, expect)) {
                weir_chan_release_n(a->c, id, (unsigned)k);
                return bench_fail(sh, idx, -EBADMSG,
                                  "reader %d: message %llu is wrong: len %zu (want %zu), seq %llu, "
                                  "flags %u",
                                  id, (unsigned long long)expect, m->len, a->n,
                                  (unsigned long long)m->seq, m->flags);
            }
            if (!a->zc) sum += bench_sum64(m->data, a->n);
        }
        rc = weir_chan_release_n(a->c, id, (unsigned)k);
        if (rc < 0)
            return bench_fail(sh, idx, rc, "reader %d: weir_chan_release_n: %s", id,
                              weir_errmsg());
    }
    for (;;) {
        weir_chan_msg m;
        rc = weir_chan_read_msg(a->c, id, &m, tmo);
        if (rc == -EPIPE) break;
        if (rc < 0)
            return bench_fail(sh, idx, rc, "reader %d: weir_chan_read_msg (seq %llu): %s", id,
                              (unsigned long long)expect, weir_errmsg());
        if (m.len != a->n || m.seq != expect || m.flags || !bench_check(m.data, a->n, expect)) {
            uint64_t got = 0;
            if (m.len >= 8) memcpy(&got, m.data, 8);
            weir_chan_release(a->c, id);
            return bench_fail(sh, idx, -EBADMSG,
                              "reader %d: message %llu is wrong: len %zu (want %zu), seq %llu, "
                              "stamp %llu, flags %u",
                              id, (unsigned long long)expect, m.len, a->n,
                              (unsigned long long)m.seq, (unsigned long long)got, m.flags);
        }
        if (!a->zc) sum += bench_sum64(m.data, a->n);
        rc = weir_chan_release(a->c, id);
        if (rc < 0)
            return bench_fail(sh, idx, rc, "reader %d: weir_chan_release: %s", id, weir_errmsg());
        expect++;
    }
done:
    sh->res[idx].t_end = bench_now_ns();
    sh->res[idx].msgs = expect;
    sh->res[idx].sink = sum;
    return 0;
}

static int tput_party(struct bench_shared *sh, int idx, void *arg)
{
    return idx == 0 ? tput_writer(sh, idx, arg) : tput_reader(sh, idx, arg);
}

void bench_chan_tput(enum bench_mode mode, int zc, size_t n, int readers)
{
    bench_chan_tput_batch(mode, zc, 0, n, readers);
}

void bench_chan_tput_batch(enum bench_mode mode, int zc, int batch, size_t n, int readers)
{
    char name[48];
    snprintf(name, sizeof(name), "tput.%s.%s%s", mode_str(mode), zc ? "zc" : "read",
             batch ? ".batch" : "");
    unsigned depth = bench_depth_for(n);
    struct bench_row row;
    bench_row_init(&row, name, "weir", n, readers, depth);
    if (!bench_begin(&row)) return;

    struct bench_run run = {.mode = mode, .nparties = readers + 1, .fn = tput_party};
    pin_plan(run.nparties, run.cpus, row.notes, sizeof(row.notes));
    size_t nl = strlen(row.notes);
    snprintf(row.notes + nl, sizeof(row.notes) - nl, "; %s",
             zc ? "zero-copy: seq stamped/checked only" : "memcpy in, readers sum every byte");
    if (batch) {
        nl = strlen(row.notes);
        snprintf(row.notes + nl, sizeof(row.notes) - nl, "; batches <= %d", BENCH_BATCH);
    }

    struct tput_arg a = {.readers = readers,
                         .n = n,
                         .zc = zc,
                         .batch = batch,
                         .warm = bench_warmup_for(n, depth),
                         .src = bench_src_buf(n)};
    weir_chan_opts o = {.slot_bytes = n, .depth = depth, .max_readers = (unsigned)readers};
    struct bench_shared *sh = bench_shared_new();
    if (!sh || !a.src) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        bench_emit(&row);
        bench_shared_free(sh);
        return;
    }
    a.c = weir_chan_create(NULL, &o);
    if (!a.c) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "weir_chan_create: %s", weir_errmsg());
        goto out;
    }
    for (int i = 0; i < readers; i++) {
        a.ids[i] = weir_chan_register_reader(a.c);
        if (a.ids[i] < 0) {
            row.failed = 1;
            snprintf(row.error, sizeof(row.error), "weir_chan_register_reader: %s", weir_errmsg());
            goto out;
        }
    }
    run.arg = &a;
    int rc = bench_run_parties(sh, &run);
    if (rc < 0) {
        bench_row_fail_from(&row, sh, run.nparties, rc);
        goto out;
    }
    const struct bench_res *w = &sh->res[0];
    uint64_t t_end = 0;
    for (int i = 1; i <= readers; i++) {
        const struct bench_res *r = &sh->res[i];
        if (r->msgs != w->msgs) {
            row.failed = 1;
            snprintf(row.error, sizeof(row.error),
                     "reader %d received %llu messages, the writer wrote %llu", i - 1,
                     (unsigned long long)r->msgs, (unsigned long long)w->msgs);
            goto out;
        }
        if (r->t_end > t_end) t_end = r->t_end;
    }
    if (w->msgs <= a.warm || t_end <= w->t_start) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "only %llu messages written",
                 (unsigned long long)w->msgs);
        goto out;
    }
    bench_row_throughput(&row, w->msgs - a.warm, t_end - w->t_start);
    if (zc) row.mb_per_s = -1; /* the payload was not moved: no bandwidth to speak of */
    {
        struct weir_chan_stats st;
        if (weir_chan_stats(a.c, &st) == 0 && st.messages != w->msgs) {
            row.failed = 1;
            snprintf(row.error, sizeof(row.error),
                     "weir_chan_stats says %llu messages, the writer wrote %llu",
                     (unsigned long long)st.messages, (unsigned long long)w->msgs);
        }
    }
out:
    bench_emit(&row);
    weir_chan_free(a.c);
    bench_shared_free(sh);
}

/* ------------------------------------------------------------- ping-pong */

struct pp_arg {
    weir_chan *ping, *pong;
    int ping_id, pong_id;
    size_t n;
    int zc;
    uint64_t warm;
    uint64_t *samples; /* shared; pp_max_rt entries */
    const uint8_t *src;
};

static int pp_send(weir_chan *c, const struct pp_arg *a, uint64_t seq, int tmo)
{
    void *p = weir_chan_reserve(c, a->n, tmo);
    if (!p) return weir_errcode() ? weir_errcode() : -EIO;
    if (!a->zc) memcpy(p, a->src, a->n);
    bench_stamp(p, a->n, seq);
    return weir_chan_commit(c, a->n);
}

/* 0, -EPIPE, or another negative error; *sum accumulates what was read. */
static int pp_recv(weir_chan *c, int id, const struct pp_arg *a, uint64_t seq, uint64_t *sum,
                   int tmo)
{
    weir_chan_msg m;
    int rc = weir_chan_read_msg(c, id, &m, tmo);
    if (rc < 0) return rc;
    if (m.len != a->n || m.seq != seq || !bench_check(m.data, a->n, seq)) {
        weir_chan_release(c, id);
        return -EBADMSG;
    }
    if (!a->zc) *sum += bench_sum64(m.data, a->n);
    return weir_chan_release(c, id);
}

static int pp_pinger(struct bench_shared *sh, int idx, struct pp_arg *a)
{
    int gen = 0, tmo = bench_opts.timeout_ms, rc;
    uint64_t sum = 0;
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        weir_chan_close(a->ping);
        return bench_fail(sh, idx, rc, "pinger: barrier: %s", strerror(-rc));
    }
    struct bench_pp pp = bench_pp_start(a->warm, a->samples);
    for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
        if ((rc = pp_send(a->ping, a, i, tmo)) < 0) {
            bench_fail(sh, idx, rc, "pinger: send %llu: %s", (unsigned long long)i, weir_errmsg());
            break;
        }
        if ((rc = pp_recv(a->pong, a->pong_id, a, i, &sum, tmo)) < 0) {
            bench_fail(sh, idx, rc, "pinger: receive %llu: %s", (unsigned long long)i,
                       rc == -EBADMSG ? "wrong message" : weir_errmsg());
            break;
        }
        if (bench_pp_tick(&pp, i)) break;
    }
    weir_chan_close(a->ping);
    bench_pp_finish(&pp, &sh->res[idx]);
    sh->res[idx].sink = sum;
    return sh->res[idx].err;
}

static int pp_echo(struct bench_shared *sh, int idx, struct pp_arg *a)
{
    int gen = 0, tmo = bench_opts.timeout_ms, rc;
    uint64_t sum = 0, i = 0;
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        weir_chan_close(a->pong);
        return bench_fail(sh, idx, rc, "echo: barrier: %s", strerror(-rc));
    }
    for (;; i++) {
        rc = pp_recv(a->ping, a->ping_id, a, i, &sum, tmo);
        if (rc == -EPIPE) break;
        if (rc < 0) {
            bench_fail(sh, idx, rc, "echo: receive %llu: %s", (unsigned long long)i,
                       rc == -EBADMSG ? "wrong message" : weir_errmsg());
            break;
        }
        if ((rc = pp_send(a->pong, a, i, tmo)) < 0) {
            bench_fail(sh, idx, rc, "echo: send %llu: %s", (unsigned long long)i, weir_errmsg());
            break;
        }
    }
    weir_chan_close(a->pong);
    sh->res[idx].msgs = i;
    sh->res[idx].sink = sum;
    return sh->res[idx].err;
}

static int pp_party(struct bench_shared *sh, int idx, void *arg)
{
    return idx == 0 ? pp_pinger(sh, idx, arg) : pp_echo(sh, idx, arg);
}

void bench_chan_pingpong(enum bench_mode mode, int zc, size_t n)
{
    char name[48];
    snprintf(name, sizeof(name), "pingpong.%s.%s", mode_str(mode), zc ? "zc" : "read");
    unsigned depth = bench_depth_for(n);
    struct bench_row row;
    bench_row_init(&row, name, "weir", n, 1, depth);
    if (!bench_begin(&row)) return;
    struct bench_run run = {.mode = mode, .nparties = 2, .fn = pp_party};
    pin_plan(2, run.cpus, row.notes, sizeof(row.notes));
    size_t nl = strlen(row.notes);
    snprintf(row.notes + nl, sizeof(row.notes) - nl, "; %s",
             zc ? "zero-copy: seq stamped/checked only" : "memcpy in, receiver sums every byte");

    size_t sbytes = bench_opts.pp_max_rt * sizeof(uint64_t);
    struct pp_arg a = {
        .n = n, .zc = zc, .warm = bench_opts.quick ? 200 : 2000, .src = bench_src_buf(n)};
    a.samples = bench_shm_alloc(sbytes);
    weir_chan_opts o = {.slot_bytes = n, .depth = depth, .max_readers = 1};
    struct bench_shared *sh = bench_shared_new();
    if (!sh || !a.samples || !a.src) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    a.ping = weir_chan_create(NULL, &o);
    a.pong = a.ping ? weir_chan_create(NULL, &o) : NULL;
    if (!a.ping || !a.pong) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "weir_chan_create: %s", weir_errmsg());
        goto out;
    }
    a.ping_id = weir_chan_register_reader(a.ping);
    a.pong_id = weir_chan_register_reader(a.pong);
    if (a.ping_id < 0 || a.pong_id < 0) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "weir_chan_register_reader: %s", weir_errmsg());
        goto out;
    }
    run.arg = &a;
    int rc = bench_run_parties(sh, &run);
    if (rc < 0) {
        bench_row_fail_from(&row, sh, 2, rc);
        goto out;
    }
    if (sh->res[0].nsamples == 0) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "no round trip measured");
        goto out;
    }
    bench_row_latency(&row, a.samples, sh->res[0].nsamples, sh->res[0].t_end - sh->res[0].t_start);
out:
    bench_emit(&row);
    weir_chan_free(a.ping);
    weir_chan_free(a.pong);
    bench_shm_free(a.samples, sbytes);
    bench_shared_free(sh);
}

/* ------------------------------------------------------------------ plan */

static const size_t sizes[] = {8, 64, 1024, 65536, 1048576};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void legend(void)
{
    bench_note_load();
    bench_note("weir-bench chan%s: %d round(s) (the whole plan runs %d time(s), so cases "
               "interleave; each row is its best round), each case %llu ms or %llu messages per "
               "round (ping-pong: %llu round trips), call timeout %d ms",
               bench_opts.quick ? " --quick" : "", bench_opts.rounds, bench_opts.rounds,
               (unsigned long long)(bench_opts.budget_ns / 1000000u),
               (unsigned long long)bench_opts.max_msgs, (unsigned long long)bench_opts.pp_max_rt,
               bench_opts.timeout_ms);
    bench_note("tput.*: 1 writer -> rd readers, each reader gets every message; msgs/s counted "
               "at the writer, MB/s = msgs/s x msg_bytes (per reader)");
    bench_note("  .read: writer memcpy's the payload in, each reader reads it whole in place "
               "(sums every 64-bit word); .zc: writer stamps the seq only, readers check "
               "first/last 8 B (channel overhead alone, no MB/s); .copy: copy in and copy out "
               "(kernel/lib)");
    bench_note("pingpong.*: two channels (one per direction), one message in flight; p50/p99 = "
               "one way = round trip / 2; msgs/s = round trips/s");
    bench_note("depth = slots of the ring (weir), queue capacity (iceoryx), HWM (zmq); "
               "2 parties pinned to CPUs 0/1, 3-4 parties (more than 2 cores) round-robin");
}

static void ratios(void)
{
    const struct bench_row *pp = bench_find("pingpong.thr.read", "weir", 8, 0);
    const struct bench_row *ppp = bench_find("pingpong.proc.read", "weir", 8, 0);
    const struct bench_row *fl = bench_find("floor.1line", "atomics", 0, 0);
    const struct bench_row *fl2 = bench_find("floor.2lines", "atomics", 0, 0);
    const struct bench_row *ict = bench_find("pingpong.thr.read", "iceoryx", 8, 0);
    const struct bench_row *icp = bench_find("pingpong.proc.read", "iceoryx", 8, 0);
    const struct bench_row *t8 = bench_find("tput.thr.read", "weir", 8, 1);
    const struct bench_row *z8 = bench_find("tput.thr.copy", "zmq-inproc", 8, 1);
    const struct bench_row *id8 = bench_find("tput.thr.read", "ideal-ring", 8, 1);
    const struct bench_row *t1m = bench_find("tput.thr.read", "weir", 1048576, 1);
    const struct bench_row *t1mp = bench_find("tput.proc.read", "weir", 1048576, 1);
    const struct bench_row *m1m = bench_find("memcpy", "libc", 1048576, 0);
    const struct bench_row *mc3 = bench_find("tput.thr.read", "weir", 64, 3);
    const struct bench_row *mc1 = bench_find("tput.thr.read", "weir", 64, 1);
    const struct bench_row *mp3 = bench_find("tput.proc.read", "weir", 64, 3);
    const struct bench_row *mp1 = bench_find("tput.proc.read", "weir", 64, 1);
    const struct bench_row *b8 = bench_find("tput.thr.read.batch", "weir", 8, 1);
    const struct bench_row *bp8 = bench_find("tput.proc.read.batch", "weir", 8, 1);
    const struct bench_row *bc3 = bench_find("tput.thr.read.batch", "weir", 64, 3);
    const struct bench_row *bc1 = bench_find("tput.thr.read.batch", "weir", 64, 1);
    const struct bench_row *bpc3 = bench_find("tput.proc.read.batch", "weir", 64, 3);
    const struct bench_row *bpc1 = bench_find("tput.proc.read.batch", "weir", 64, 1);
#define V(r, f) ((r) ? (r)->f : -1)
    bench_ratio("pingpong_vs_floor", "weir pingpong.thr 8 B p50 / floor.1line p50", V(pp, p50_ns),
                V(fl, p50_ns), "<=", 2, NULL);
    bench_ratio("pingpong_vs_floor2", "  (info) same / floor.2lines p50 (one line per direction)",
                V(pp, p50_ns), V(fl2, p50_ns), "<=", 2, NULL);
    bench_ratio("pingpong_vs_iceoryx_thr", "weir pingpong.thr 8 B p50 / iceoryx pingpong.thr p50",
                V(pp, p50_ns), V(ict, p50_ns), "<=", 0.5,
                bench_have_iceoryx() ? NULL : "iceoryx not available");
    bench_ratio("pingpong_vs_iceoryx_proc",
                "weir pingpong.proc 8 B p50 / iceoryx pingpong.proc p50", V(ppp, p50_ns),
                V(icp, p50_ns), "<=", 0.5, bench_have_iceoryx() ? NULL : "iceoryx not available");
    bench_ratio("tput8_vs_zmq_inproc", "weir tput.thr 8 B 1->1 msgs/s / zmq-inproc msgs/s",
                V(t8, msgs_per_s), V(z8, msgs_per_s), ">=", 10,
                bench_have_zmq() ? NULL : "ZeroMQ not available");
    bench_ratio("tput8_batch_vs_ideal",
                "weir tput.thr.read.batch 8 B 1->1 / ideal-ring msgs/s (same run)",
                V(b8, msgs_per_s), V(id8, msgs_per_s), ">=", 0.3, NULL);
    bench_ratio("tput8_batch_proc_vs_ideal",
                "  (info) weir tput.proc.read.batch 8 B 1->1 / ideal-ring (threads)",
                V(bp8, msgs_per_s), V(id8, msgs_per_s), ">=", 0.3, NULL);
    bench_ratio("tput8_single_vs_ideal",
                "  (info) weir tput.thr.read 8 B 1->1, one message per call / ideal-ring",
                V(t8, msgs_per_s), V(id8, msgs_per_s), ">=", 0.3, NULL);
    bench_ratio("tput1m_vs_memcpy", "weir tput.thr.read 1 MiB 1->1 MB/s / memcpy 1 MiB MB/s",
                V(t1m, mb_per_s), V(m1m, mb_per_s), ">=", 0.8, NULL);
    bench_ratio("tput1m_proc_vs_memcpy", "  (info) weir tput.proc.read 1 MiB / memcpy 1 MiB",
                V(t1mp, mb_per_s), V(m1m, mb_per_s), ">=", 0.8, NULL);
    bench_ratio("multicast3_vs_1", "weir tput.thr.read 64 B 1->3 / 1->1 msgs/s", V(mc3, msgs_per_s),
                V(mc1, msgs_per_s), ">=", 0.5, NULL);
    bench_ratio("multicast3_vs_1_proc", "weir tput.proc.read 64 B 1->3 / 1->1 msgs/s",
                V(mp3, msgs_per_s), V(mp1, msgs_per_s), ">=", 0.5, NULL);
    bench_ratio("multicast3_vs_1_batch", "weir tput.thr.read.batch 64 B 1->3 / 1->1 msgs/s",
                V(bc3, msgs_per_s), V(bc1, msgs_per_s), ">=", 0.5, NULL);
    bench_ratio("multicast3_vs_1_batch_proc", "weir tput.proc.read.batch 64 B 1->3 / 1->1 msgs/s",
                V(bpc3, msgs_per_s), V(bpc1, msgs_per_s), ">=", 0.5, NULL);
#undef V
}

/* One pass over every case (a round). */
static void plan(void)
{
    /* Throughput, by message size, each beside its memcpy baseline. */
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        bench_baseline_memcpy(n);
        bench_baseline_ideal_ring(n);
        for (int rd = 1; rd <= 3; rd++) {
            bench_chan_tput(BENCH_THREADS, 0, n, rd);
            bench_chan_tput(BENCH_PROCS, 0, n, rd);
        }
        if (n <= 1024)
            for (int rd = 1; rd <= 3; rd++) {
                bench_chan_tput_batch(BENCH_THREADS, 0, 1, n, rd);
                bench_chan_tput_batch(BENCH_PROCS, 0, 1, n, rd);
            }
        if (n >= 1024) {
            bench_chan_tput(BENCH_THREADS, 1, n, 1);
            bench_chan_tput(BENCH_PROCS, 1, n, 1);
        }
        if (n >= 65536) {
            bench_chan_tput(BENCH_THREADS, 1, n, 3);
            bench_chan_tput(BENCH_PROCS, 1, n, 3);
        }
        bench_baseline_fd_tput(0, n);
        bench_baseline_fd_tput(1, n);
        bench_baseline_zmq_tput(0, n);
        bench_baseline_zmq_tput(1, n);
        bench_iceoryx_tput(0, n);
        if (n >= 65536) bench_iceoryx_tput(1, n);
    }

    /* Ping-pong latency, after the cache-line floor. */
    bench_baseline_floor();
    for (size_t i = 0; i < 3; i++) {
        bench_chan_pingpong(BENCH_THREADS, 0, sizes[i]);
        bench_chan_pingpong(BENCH_PROCS, 0, sizes[i]);
    }
    bench_chan_pingpong(BENCH_THREADS, 0, 65536);
    bench_chan_pingpong(BENCH_PROCS, 0, 65536);
    bench_chan_pingpong(BENCH_THREADS, 1, 65536);
    bench_chan_pingpong(BENCH_PROCS, 1, 65536);
    bench_baseline_fd_pingpong(0, 0, 8);
    bench_baseline_fd_pingpong(0, 1, 8);
    bench_baseline_fd_pingpong(1, 0, 8);
    bench_baseline_fd_pingpong(1, 1, 8);
    bench_baseline_zmq_pingpong(0, 8);
    bench_baseline_zmq_pingpong(1, 8);
    bench_iceoryx_pingpong(BENCH_THREADS, 0, 8);
    bench_iceoryx_pingpong(BENCH_PROCS, 0, 8);
    bench_iceoryx_pingpong(BENCH_PROCS, 0, 65536);
    bench_iceoryx_pingpong(BENCH_PROCS, 1, 65536);
}

int bench_cmd_chan(int argc, char **argv)
{
    int rc = bench_parse_opts(argc, argv, "chan");
    if (rc) return rc > 0 ? 0 : 2;
    if (bench_opts.list) {
        plan();
        return 0;
    }
    uint64_t t0 = bench_now_ns();
    legend();
    bench_rounds(plan);
    bench_iceoryx_stop();
    ratios();
    bench_note("wall time %.1f s", (double)(bench_now_ns() - t0) / 1e9);
    return bench_finish("chan");
}
