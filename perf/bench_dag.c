/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_dag.c - `weir-bench dag`: compiled graphs end to end.
 *
 * Design notes
 *
 * Four shapes, each described once (struct shape) and run by three
 * implementations that share the stage functions (work_inc, work_join):
 *
 *   one      a                      1 actor,  1 output
 *   chain4   a -> b -> c -> d       4 actors, 1 output
 *   diamond  a -> (b, c) -> d       4 actors, 1 output (d joins b and c)
 *   fanout4  a -> (b, c, d, e)      5 actors, 4 outputs
 *
 * Every stage copies its input (msg_bytes) to its output and adds 1 to the
 * first 8-byte word; the join also checks that both inputs belong to the
 * same execution. The driver stamps seq << 8 in the first word and ~seq in
 * the last, and checks every output of every execution: first word = input
 * + stages on the path, last word = ~seq, length = msg_bytes. A mismatch
 * fails the case, so nothing is measured that did not happen.
 *
 *   floor    the stage functions called in sequence on one thread
 *   weir     the compiled dag, thread actors (.thr) or every actor
 *            WEIR_PROCESS (.proc); unpinned
 *   pthread  what users write today: one thread per actor, bounded
 *            mutex/condvar queues (capacity = max_inflight) of buffers
 *            preallocated per producer; fan-out shares one refcounted
 *            buffer between the consumers' queues
 *
 * .lat rows: one execution at a time (weir_execute; pthread: push one item
 * and pop its outputs back); p50/p99 of the whole round trip (not halved).
 * .tput rows: max_inflight executions kept in flight (weir_submit /
 * weir_wait in submit order; pthread: the same window of items), counted
 * after a warm-up until the budget ends; the tail is drained and checked
 * but not counted.
 *
 * Nothing may hang: weir calls carry opts.timeout_ms (and the dag's own
 * timeout bounds weir_dag_free), pthread queue waits are timed, pthread
 * stage threads are joined with a deadline (past it the pipeline is leaked
 * and the case fails). Dags with process actors are compiled here, on the
 * main thread, when no other thread of this program runs.
 */
#include "bench.h"

#include <weir/weir.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DAG_MAX_ACTORS 8
#define DAG_MAX_OUTS 4
#define DAG_MAX_QUEUES 16
#define DAG_DEFAULT_INFLIGHT 16

/* Ray Compiled Graphs, published figures (see /work/shared/PEERS.md). */
#define RAY_CALL_NS 50000.0
#define RAY_CHAIN4_EPS 5700.0

enum { K_INC, K_JOIN };

struct shape {
    const char *name;
    int nactors;
    struct {
        int kind;
        int nin;
        int in[2]; /* -1: the graph input; else an earlier actor */
    } a[DAG_MAX_ACTORS];
    int nouts;
    int outs[DAG_MAX_OUTS];       /* actors whose output is a graph output */
    uint64_t add[DAG_MAX_OUTS];   /* what the stages add to the first word */
};

static const struct shape shapes[] = {
    {"one", 1, {{K_INC, 1, {-1, 0}}}, 1, {0}, {1}},
    {"chain4",
     4,
     {{K_INC, 1, {-1, 0}}, {K_INC, 1, {0, 0}}, {K_INC, 1, {1, 0}}, {K_INC, 1, {2, 0}}},
     1,
     {3},
     {4}},
    {"diamond",
     4,
     {{K_INC, 1, {-1, 0}}, {K_INC, 1, {0, 0}}, {K_INC, 1, {0, 0}}, {K_JOIN, 2, {1, 2}}},
     1,
     {3},
     {3}},
    {"fanout4",
     5,
     {{K_INC, 1, {-1, 0}},
      {K_INC, 1, {0, 0}},
      {K_INC, 1, {0, 0}},
      {K_INC, 1, {0, 0}},
      {K_INC, 1, {0, 0}}},
     4,
     {1, 2, 3, 4},
     {2, 2, 2, 2}},
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const size_t dag_sizes[] = {8, 65536};
#define NDSIZES (sizeof(dag_sizes) / sizeof(dag_sizes[0]))

static unsigned inflight(void)
{
    return bench_opts.depth ? bench_opts.depth : DAG_DEFAULT_INFLIGHT;
}

static uint64_t lat_warmup(void)
{
    return bench_opts.quick ? 20 : 100;
}

static uint64_t tput_warmup(void)
{
    return 4u * inflight();
}

static const char *size_label(size_t n)
{
    return n >= 65536 ? "64k" : n >= 1024 ? "1k" : "8";
}

/* --pin-multi rr: driver on CPU 0, actor i on CPU (i + 1) % ncpu. Default: nothing pinned. */
static int pinned(void)
{
    return bench_opts.pin_given && !bench_opts.unpinned_multi;
}

static int actor_cpu(int i)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (!pinned()) return -1;
    return (int)((i + 1) % (ncpu > 0 ? ncpu : 1));
}

/* Pin the driver (this thread) for one case; restored by driver_unpin. */
static int driver_pin(cpu_set_t *saved)
{
    if (!pinned()) return 0;
    if (sched_getaffinity(0, sizeof(*saved), saved)) return 0;
    bench_pin_self(0);
    return 1;
}

static void driver_unpin(int have, const cpu_set_t *saved)
{
    if (have) sched_setaffinity(0, sizeof(*saved), saved);
}

/* Latency samples, shared by every case (pp_max_rt entries). */
static uint64_t *samples;

/* ------------------------------------------------------ the stage work */

__attribute__((noinline)) static void work_inc(void *out, const void *in, size_t n)
{
    uint64_t w;
    memcpy(out, in, n);
    memcpy(&w, in, 8);
    w += 1;
    memcpy(out, &w, 8);
}

/* 0, or -1 when the two inputs are not the same execution. */
__attribute__((noinline)) static int work_join(void *out, const void *in0, const void *in1,
                                               size_t n)
{
    uint64_t a, b;
    memcpy(&a, in0, 8);
    memcpy(&b, in1, 8);
    if (a != b) return -1;
    if (n >= 16) {
        uint64_t ta, tb;
        memcpy(&ta, (const char *)in0 + n - 8, 8);
        memcpy(&tb, (const char *)in1 + n - 8, 8);
        if (ta != tb) return -1;
    }
    memcpy(out, in0, n);
    a += 1;
    memcpy(out, &a, 8);
    return 0;
}

static void dag_stamp(uint8_t *arg, size_t n, uint64_t seq)
{
    uint64_t w = seq << 8;
    memcpy(arg, &w, 8);
    if (n >= 16) {
        uint64_t t = ~seq;
        memcpy(arg + n - 8, &t, 8);
    }
}

/* 0 if output k of execution seq is right; else -1 with why. */
static int dag_check(const struct shape *s, int k, const void *p, size_t len, size_t n,
                     uint64_t seq, char *why, size_t wl)
{
    if (!p || len != n) {
        snprintf(why, wl, "execution %llu output %d: %zu bytes, want %zu",
                 (unsigned long long)seq, k, p ? len : 0, n);
        return -1;
    }
    uint64_t w, want = (seq << 8) + s->add[k];
    memcpy(&w, p, 8);
    if (w != want) {
        snprintf(why, wl, "execution %llu output %d: first word %#llx, want %#llx",
                 (unsigned long long)seq, k, (unsigned long long)w, (unsigned long long)want);
        return -1;
    }
    if (n >= 16) {
        uint64_t t;
        memcpy(&t, (const char *)p + n - 8, 8);
        if (t != ~seq) {
            snprintf(why, wl, "execution %llu output %d: last word %#llx, want %#llx",
                     (unsigned long long)seq, k, (unsigned long long)t,
                     (unsigned long long)~seq);
            return -1;
        }
    }
    return 0;
}

static uint8_t *arg_buf(size_t n)
{
    uint8_t *a = NULL;
    const uint8_t *src = bench_src_buf(n);
    if (!src || posix_memalign((void **)&a, 64, n)) return NULL;
    memcpy(a, src, n);
    return a;
}

static void row_failf(struct bench_row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_failf(struct bench_row *r, const char *fmt, ...)
{
    if (r->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    r->failed = 1;
    r->msgs_per_s = r->mb_per_s = r->p50_ns = r->p99_ns = -1;
}

/* Round-trip percentiles (not halved) and sequential executions/s. */
static void row_lat(struct bench_row *r, uint64_t *v, size_t k, uint64_t span)
{
    if (!k) {
        row_failf(r, "no execution measured");
        return;
    }
    bench_sort_u64(v, k);
    r->p50_ns = bench_percentile_sorted(v, k, 0.50);
    r->p99_ns = bench_percentile_sorted(v, k, 0.99);
    if (span) r->msgs_per_s = (double)k * 1e9 / (double)span;
}

static void row_tput(struct bench_row *r, uint64_t counted, uint64_t span)
{
    if (!counted || !span) {
        row_failf(r, "no execution counted");
        return;
    }
    bench_row_throughput(r, counted, span);
}

static void init_rows(struct bench_row *lat, struct bench_row *tput, const struct shape *s,
                      const char *mode, const char *impl, size_t n, unsigned depth)
{
    char name[48];
    snprintf(name, sizeof(name), "%s.%s.lat", s->name, mode);
    bench_row_init(lat, name, impl, n, s->nactors, depth);
    snprintf(name, sizeof(name), "%s.%s.tput", s->name, mode);
    bench_row_init(tput, name, impl, n, s->nactors, depth);
}

/* ------------------------------------------------------------- floor */

static int floor_exec(const struct shape *s, uint8_t *const *bufs, const uint8_t *arg, size_t n)
{
    for (int i = 0; i < s->nactors; i++) {
        const void *in0 = s->a[i].in[0] < 0 ? (const void *)arg : bufs[s->a[i].in[0]];
        if (s->a[i].kind == K_INC) {
            work_inc(bufs[i], in0, n);
        } else {
            const void *in1 = s->a[i].in[1] < 0 ? (const void *)arg : bufs[s->a[i].in[1]];
            if (work_join(bufs[i], in0, in1, n)) return -1;
        }
    }
    return 0;
}

static int floor_check(const struct shape *s, uint8_t *const *bufs, size_t n, uint64_t seq,
                       char *why, size_t wl)
{
    for (int k = 0; k < s->nouts; k++)
        if (dag_check(s, k, bufs[s->outs[k]], n, n, seq, why, wl)) return -1;
    return 0;
}

static void run_floor(const struct shape *s, size_t n)
{
    struct bench_row lat, tput;
    init_rows(&lat, &tput, s, "call", "floor", n, 0);
    int want_lat = bench_begin(&lat), want_tput = bench_begin(&tput);
    if (!want_lat && !want_tput) return;
    snprintf(lat.notes, sizeof(lat.notes), "stage fns called in sequence on 1 thread");
    snprintf(tput.notes, sizeof(tput.notes), "same loop, no clock per execution");
    uint8_t *bufs[DAG_MAX_ACTORS] = {0};
    uint8_t *arg = arg_buf(n);
    int ok = arg != NULL;
    cpu_set_t saved;
    int have_saved = driver_pin(&saved);
    for (int i = 0; i < s->nactors && ok; i++)
        if (posix_memalign((void **)&bufs[i], 64, n)) bufs[i] = NULL, ok = 0;
    char why[BENCH_ERR_LEN];
    if (!ok) {
        row_failf(&lat, "out of memory");
        row_failf(&tput, "out of memory");
        goto out;
    }
    uint64_t seq = 0;
    if (want_lat) {
        uint64_t warm = lat_warmup(), k = 0, t_first = 0, t_last = 0, deadline = UINT64_MAX;
        for (uint64_t i = 0; k < bench_opts.pp_max_rt; i++, seq++) {
            dag_stamp(arg, n, seq);
            uint64_t t0 = bench_now_ns();
            int rc = floor_exec(s, bufs, arg, n);
            uint64_t t1 = bench_now_ns();
            if (rc || floor_check(s, bufs, n, seq, why, sizeof(why))) {
                if (rc) snprintf(why, sizeof(why), "execution %llu: join inputs differ",
                                 (unsigned long long)seq);
                row_failf(&lat, "%s", why);
                break;
            }
            if (i == warm) {
                t_first = t0;
                deadline = t0 + bench_opts.pp_budget_ns;
            }
            if (i >= warm) {
                samples[k++] = t1 - t0;
                t_last = t1;
            }
            if (t1 >= deadline) break;
        }
        if (!lat.failed) row_lat(&lat, samples, k, t_last - t_first);
    }
    if (want_tput) {
        uint64_t warm = tput_warmup(), t0 = 0, deadline = UINT64_MAX, counted = 0, span = 0;
        for (uint64_t i = 0;; i++, seq++) {
            dag_stamp(arg, n, seq);
            if (floor_exec(s, bufs, arg, n) || floor_check(s, bufs, n, seq, why, sizeof(why))) {
                row_failf(&tput, "execution %llu: wrong output", (unsigned long long)seq);
                break;
            }
            if (i + 1 == warm) {
                t0 = bench_now_ns();
                deadline = t0 + bench_opts.budget_ns;
            } else if (i + 1 > warm && ((i & 63) == 0 || n >= 4096)) {
                uint64_t t = bench_now_ns();
                if (t >= deadline || i + 1 - warm >= bench_opts.max_msgs) {
                    counted = i + 1 - warm;
                    span = t - t0;
                    break;
                }
            }
        }
        if (!tput.failed) row_tput(&tput, counted, span);
    }
out:
    driver_unpin(have_saved, &saved);
    if (want_lat) bench_emit(&lat);
    if (want_tput) bench_emit(&tput);
    for (int i = 0; i < s->nactors; i++)
        free(bufs[i]);
    free(arg);
}

/* -------------------------------------------------------------- weir */

static int m_inc(weir_call *c, void *st)
{
    (void)st;
    size_t n;
    const void *in = weir_call_in(c, 0, &n);
    if (!in || n < 8) return weir_call_fail(c, "input of %zu bytes", n);
    void *out = weir_call_out(c, 0, n);
    if (!out) return weir_call_fail(c, "%s", weir_errmsg());
    work_inc(out, in, n);
    return 0;
}

static int m_join(weir_call *c, void *st)
{
    (void)st;
    size_t n0, n1;
    const void *in0 = weir_call_in(c, 0, &n0), *in1 = weir_call_in(c, 1, &n1);
    if (!in0 || !in1 || n0 < 8 || n0 != n1)
        return weir_call_fail(c, "inputs of %zu and %zu bytes", n0, n1);
    void *out = weir_call_out(c, 0, n0);
    if (!out) return weir_call_fail(c, "%s", weir_errmsg());
    if (work_join(out, in0, in1, n0))
        return weir_call_fail(c, "inputs belong to different executions");
    return 0;
}

static weir_dag *weir_build(const struct shape *s, int proc, size_t n, char *why, size_t wl)
{
    weir_graph *g = weir_graph_new(s->name);
    if (!g) {
        snprintf(why, wl, "weir_graph_new: %s", weir_errmsg());
        return NULL;
    }
    weir_node *in = weir_input(g, 0), *node[DAG_MAX_ACTORS] = {0}, *outs[DAG_MAX_OUTS];
    weir_dag *d = NULL;
    if (!in) {
        snprintf(why, wl, "weir_input: %s", weir_errmsg());
        goto out;
    }
    for (int i = 0; i < s->nactors; i++) {
        char name[8];
        snprintf(name, sizeof(name), "%c", 'a' + i);
        weir_actor_opts o = {.isolation = proc ? WEIR_PROCESS : WEIR_THREAD,
                             .cpu = actor_cpu(i)};
        weir_actor *a = weir_actor_new(g, name, &o);
        if (!a) {
            snprintf(why, wl, "weir_actor_new: %s", weir_errmsg());
            goto out;
        }
        weir_node *ins[2];
        for (int j = 0; j < s->a[i].nin; j++)
            ins[j] = s->a[i].in[j] < 0 ? in : node[s->a[i].in[j]];
        int join = s->a[i].kind == K_JOIN;
        node[i] = weir_bind(a, join ? "join" : "inc", join ? m_join : m_inc, ins,
                            (unsigned)s->a[i].nin, 1);
        if (!node[i]) {
            snprintf(why, wl, "weir_bind: %s", weir_errmsg());
            goto out;
        }
    }
    for (int k = 0; k < s->nouts; k++)
        outs[k] = node[s->outs[k]];
    if (weir_output(g, outs, (unsigned)s->nouts) < 0) {
        snprintf(why, wl, "weir_output: %s", weir_errmsg());
        goto out;
    }
    weir_compile_opts co = {
        .max_inflight = inflight(), .buffer_bytes = n, .timeout_ms = bench_opts.timeout_ms};
    d = weir_compile(g, &co);
    if (!d) snprintf(why, wl, "weir_compile: %s", weir_errmsg());
out:
    weir_graph_free(g);
    return d;
}

static int weir_check(const struct shape *s, weir_result *r, size_t n, uint64_t seq, char *why,
                      size_t wl)
{
    if (weir_result_exec(r) != seq) {
        snprintf(why, wl, "result of execution %llu, want %llu",
                 (unsigned long long)weir_result_exec(r), (unsigned long long)seq);
        return -1;
    }
    if (weir_result_count(r) != (unsigned)s->nouts) {
        snprintf(why, wl, "execution %llu: %u outputs, want %d", (unsigned long long)seq,
                 weir_result_count(r), s->nouts);
        return -1;
    }
    for (int k = 0; k < s->nouts; k++) {
        size_t len = 0;
        const void *p = weir_result_data(r, (unsigned)k, &len);
        if (dag_check(s, k, p, len, n, seq, why, wl)) return -1;
    }
    return 0;
}

static void weir_lat(weir_dag *d, const struct shape *s, size_t n, uint8_t *arg, uint64_t *next,
                     struct bench_row *row)
{
    uint64_t warm = lat_warmup(), k = 0, t_first = 0, t_last = 0, deadline = UINT64_MAX;
    weir_buf b = {arg, n};
    char why[BENCH_ERR_LEN];
    for (uint64_t i = 0; k < bench_opts.pp_max_rt; i++) {
        uint64_t seq = *next;
        dag_stamp(arg, n, seq);
        weir_result *r = NULL;
        uint64_t t0 = bench_now_ns();
        int rc = weir_execute(d, &b, 1, &r, bench_opts.timeout_ms);
        uint64_t t1 = bench_now_ns();
        if (rc < 0) {
            row_failf(row, "weir_execute %llu: %s", (unsigned long long)seq, weir_errmsg());
            return;
        }
        (*next)++;
        rc = weir_check(s, r, n, seq, why, sizeof(why));
        weir_result_free(r);
        if (rc) {
            row_failf(row, "%s", why);
            return;
        }
        if (i == warm) {
            t_first = t0;
            deadline = t0 + bench_opts.pp_budget_ns;
        }
        if (i >= warm) {
            samples[k++] = t1 - t0;
            t_last = t1;
        }
        if (t1 >= deadline) break;
    }
    row_lat(row, samples, k, t_last - t_first);
}

static void weir_tput(weir_dag *d, const struct shape *s, size_t n, uint8_t *arg,
                      uint64_t *next, struct bench_row *row)
{
    const uint64_t base = *next, warm = tput_warmup(), win = inflight();
    uint64_t sub = 0, col = 0, t_start = 0, deadline = UINT64_MAX, counted = 0, span = 0;
    int stop = 0;
    weir_buf b = {arg, n};
    char why[BENCH_ERR_LEN];
    for (;;) {
        while (!stop && sub - col < win) {
            uint64_t id = UINT64_MAX;
            dag_stamp(arg, n, base + sub);
            int rc = weir_submit(d, &b, 1, &id, bench_opts.timeout_ms);
            if (rc < 0) {
                row_failf(row, "weir_submit %llu: %s", (unsigned long long)(base + sub),
                          weir_errmsg());
                return;
            }
            if (id != base + sub) {
                row_failf(row, "weir_submit gave execution id %llu, want %llu",
                          (unsigned long long)id, (unsigned long long)(base + sub));
                return;
            }
            sub++;
            *next = base + sub;
        }
        if (col == sub) break;
        weir_result *r = NULL;
        int rc = weir_wait(d, base + col, &r, bench_opts.timeout_ms);
        if (rc < 0) {
            row_failf(row, "weir_wait %llu: %s", (unsigned long long)(base + col), weir_errmsg());
            return;
        }
        rc = weir_check(s, r, n, base + col, why, sizeof(why));
        weir_result_free(r);
        if (rc) {
            row_failf(row, "%s", why);
            return;
        }
        col++;
        if (stop) continue;
        if (col == warm) {
            t_start = bench_now_ns();
            deadline = t_start + bench_opts.budget_ns;
        } else if (col > warm && ((col & 7) == 0 || n >= 4096)) {
            uint64_t t = bench_now_ns();
            if (t >= deadline || col - warm >= bench_opts.max_msgs) {
                stop = 1;
                counted = col - warm;
                span = t - t_start;
            }
        }
    }
    row_tput(row, counted, span);
}

static void run_weir(const struct shape *s, int proc, size_t n)
{
    struct bench_row lat, tput;
    unsigned win = inflight();
    init_rows(&lat, &tput, s, proc ? "proc" : "thr", "weir", n, win);
    int want_lat = bench_begin(&lat), want_tput = bench_begin(&tput);
    if (!want_lat && !want_tput) return;
    if (proc) {
        snprintf(lat.notes, sizeof(lat.notes), "%d actor procs + driver; weir_execute",
                 s->nactors);
        snprintf(tput.notes, sizeof(tput.notes), "%d actor procs + driver; %u in flight",
                 s->nactors, win);
    } else {
        snprintf(lat.notes, sizeof(lat.notes), "%d actor thr + driver; weir_execute",
                 s->nactors);
        snprintf(tput.notes, sizeof(tput.notes), "%d actor thr + driver; %u in flight",
                 s->nactors, win);
    }
    char why[BENCH_ERR_LEN] = "";
    cpu_set_t saved;
    int have_saved = driver_pin(&saved);
    uint8_t *arg = arg_buf(n);
    weir_dag *d = arg ? weir_build(s, proc, n, why, sizeof(why)) : NULL;
    if (!arg) snprintf(why, sizeof(why), "out of memory");
    if (!d) {
        row_failf(&lat, "%s", why);
        row_failf(&tput, "%s", why);
    } else {
        uint64_t next = 0;
        if (want_lat) weir_lat(d, s, n, arg, &next, &lat);
        if (want_tput && !lat.failed) weir_tput(d, s, n, arg, &next, &tput);
        if (lat.failed) row_failf(&tput, "not run: the latency case failed");
        if (weir_dag_free(d) < 0) {
            snprintf(why, sizeof(why), "weir_dag_free: %s", weir_errmsg());
            row_failf(&lat, "%s", why);
            row_failf(&tput, "%s", why);
        }
    }
    driver_unpin(have_saved, &saved);
    if (want_lat) bench_emit(&lat);
    if (want_tput) bench_emit(&tput);
    free(arg);
}

/* ----------------------------------------------------------- pthread */

struct pitem {
    struct ppool *pool; /* NULL: malloc'd (pool was empty) */
    uint64_t seq;
    atomic_int refs;
    size_t len;
    _Alignas(64) unsigned char data[];
};

struct ppool {
    pthread_mutex_t mu;
    struct pitem **free;
    unsigned nfree, n;
    struct pitem **all;
};

struct pq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct pitem **ring;
    unsigned cap, head, count;
    int closed;
};

struct pipe;

struct pstage {
    struct pipe *pl;
    int idx, kind, nin, nout;
    struct pq *in[2];
    struct pq *out[DAG_MAX_ACTORS + DAG_MAX_OUTS];
    struct ppool pool;
    pthread_t th;
    int started;
};

struct pipe {
    const struct shape *s;
    size_t n;
    unsigned cap;
    struct pq qs[DAG_MAX_QUEUES];
    int nq;
    struct pq *feed[DAG_MAX_ACTORS]; /* queues the driver writes (graph input) */
    int nfeed;
    struct pq *res[DAG_MAX_OUTS];    /* queues the driver reads (graph outputs) */
    struct ppool pool;                /* the driver's input buffers */
    struct pstage st[DAG_MAX_ACTORS];
    atomic_int abort;
    pthread_mutex_t err_mu;
    char err[BENCH_ERR_LEN];
};

static int pool_init(struct ppool *p, unsigned n, size_t bytes)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    p->free = calloc(n, sizeof(*p->free));
    p->all = calloc(n, sizeof(*p->all));
    if (!p->free || !p->all) return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct pitem *it = NULL;
        if (posix_memalign((void **)&it, 64, sizeof(*it) + bytes)) return -ENOMEM;
        memset(it->data, 0, bytes);
        it->pool = p;
        p->all[p->n++] = it;
        p->free[p->nfree++] = it;
    }
    return 0;
}

static void pool_destroy(struct ppool *p)
{
    for (unsigned i = 0; p->all && i < p->n; i++)
        free(p->all[i]);
    free(p->all);
    free(p->free);
    pthread_mutex_destroy(&p->mu);
}

static struct pitem *pool_get(struct ppool *p, size_t bytes)
{
    pthread_mutex_lock(&p->mu);
    struct pitem *it = p->nfree ? p->free[--p->nfree] : NULL;
    pthread_mutex_unlock(&p->mu);
    if (!it && !posix_memalign((void **)&it, 64, sizeof(*it) + bytes)) it->pool = NULL;
    return it;
}

static void item_release(struct pitem *it)
{
    if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1) return;
    struct ppool *p = it->pool;
    if (!p) {
        free(it);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->free[p->nfree++] = it;
    pthread_mutex_unlock(&p->mu);
}

static int pq_init(struct pq *q, unsigned cap)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    q->cap = cap;
    q->ring = calloc(cap, sizeof(*q->ring));
    return q->ring ? 0 : -ENOMEM;
}

static void pq_destroy(struct pq *q)
{
    while (q->count) {
        item_release(q->ring[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->ring);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->mu);
}

static void abs_after_ms(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int pq_push(struct pq *q, struct pitem *it, int tmo_ms)
{
    struct timespec ts;
    abs_after_ms(&ts, tmo_ms);
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap && !q->closed)
        if (pthread_cond_timedwait(&q->not_full, &q->mu, &ts) == ETIMEDOUT &&
            q->count == q->cap && !q->closed) {
            pthread_mutex_unlock(&q->mu);
            return -ETIMEDOUT;
        }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return -EPIPE;
    }
    q->ring[(q->head + q->count) % q->cap] = it;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* 0, -ETIMEDOUT, or -EPIPE (closed and empty). */
static int pq_pop(struct pq *q, struct pitem **it, int tmo_ms)
{
    struct timespec ts;
    abs_after_ms(&ts, tmo_ms);
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->closed)
        if (pthread_cond_timedwait(&q->not_empty, &q->mu, &ts) == ETIMEDOUT && q->count == 0 &&
            !q->closed) {
            pthread_mutex_unlock(&q->mu);
            return -ETIMEDOUT;
        }
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return -EPIPE;
    }
    *it = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

static void pq_close(struct pq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

static void pipe_fail(struct pipe *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pipe_fail(struct pipe *pl, const char *fmt, ...)
{
    pthread_mutex_lock(&pl->err_mu);
    if (!pl->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pl->err, sizeof(pl->err), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&pl->err_mu);
    atomic_store(&pl->abort, 1);
    for (int i = 0; i < pl->nq; i++)
        pq_close(&pl->qs[i]);
}

static void *pstage_main(void *p)
{
    struct pstage *st = p;
    struct pipe *pl = st->pl;
    const size_t n = pl->n;
    const int tmo = bench_opts.timeout_ms;
    char tname[16];
    snprintf(tname, sizeof(tname), "pipe:%c", 'a' + st->idx);
    pthread_setname_np(pthread_self(), tname);
    if (actor_cpu(st->idx) >= 0) bench_pin_self(actor_cpu(st->idx));
    for (;;) {
        struct pitem *x[2] = {NULL, NULL};
        int rc = 0, got = 0;
        for (; got < st->nin; got++) {
            /* An idle stage waits for the driver as long as it takes (the
             * driver's own waits are bounded and it closes every queue). */
            while ((rc = pq_pop(st->in[got], &x[got], tmo)) == -ETIMEDOUT &&
                   !atomic_load(&pl->abort))
                ;
            if (rc < 0) break;
        }
        if (rc < 0) {
            for (int j = 0; j < got; j++)
                item_release(x[j]);
            break; /* -EPIPE: teardown (or abort); -ETIMEDOUT only with abort set */
        }
        struct pitem *y = pool_get(&st->pool, n);
        if (!y) {
            pipe_fail(pl, "stage %c: out of memory", 'a' + st->idx);
            for (int j = 0; j < got; j++)
                item_release(x[j]);
            break;
        }
        y->seq = x[0]->seq;
        y->len = n;
        atomic_store_explicit(&y->refs, st->nout, memory_order_relaxed);
        int bad = x[0]->len != n;
        if (!bad && st->kind == K_INC)
            work_inc(y->data, x[0]->data, n);
        else if (!bad)
            bad = x[1]->seq != x[0]->seq || x[1]->len != n ||
                  work_join(y->data, x[0]->data, x[1]->data, n);
        uint64_t seq = x[0]->seq;
        for (int j = 0; j < got; j++)
            item_release(x[j]);
        if (bad) {
            pipe_fail(pl, "stage %c: inputs of execution %llu are wrong", 'a' + st->idx,
                      (unsigned long long)seq);
            for (int k = 0; k < st->nout; k++)
                item_release(y);
            break;
        }
        int k = 0;
        for (; k < st->nout; k++)
            if ((rc = pq_push(st->out[k], y, tmo)) < 0) break;
        if (k < st->nout) {
            for (int j = k; j < st->nout; j++)
                item_release(y);
            if (rc != -EPIPE)
                pipe_fail(pl, "stage %c: push of execution %llu: %s", 'a' + st->idx,
                          (unsigned long long)seq, strerror(-rc));
            break;
        }
    }
    for (int k = 0; k < st->nout; k++)
        pq_close(st->out[k]);
    for (int j = 0; j < st->nin; j++)
        pq_close(st->in[j]);
    return NULL;
}

/* Returns 0, or -1 with the pipeline leaked (a thread did not finish). */
static int pipe_stop(struct pipe *pl, char *why, size_t wl)
{
    for (int i = 0; i < pl->nq; i++)
        pq_close(&pl->qs[i]);
    int stuck = 0;
    for (int i = 0; i < pl->s->nactors; i++) {
        if (!pl->st[i].started) continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += bench_opts.timeout_ms / 1000 + 2;
        if (pthread_timedjoin_np(pl->st[i].th, NULL, &ts) != 0) {
            pthread_detach(pl->st[i].th);
            stuck++;
        }
    }
    if (stuck) {
        snprintf(why, wl, "%d pipeline thread(s) did not finish; pipeline leaked", stuck);
        return -1; /* leak: a running thread may still touch it */
    }
    for (int i = 0; i < pl->nq; i++)
        pq_destroy(&pl->qs[i]);
    for (int i = 0; i < pl->s->nactors; i++)
        pool_destroy(&pl->st[i].pool);
    pool_destroy(&pl->pool);
    pthread_mutex_destroy(&pl->err_mu);
    free(pl);
    return 0;
}

static struct pipe *pipe_start(const struct shape *s, size_t n, unsigned cap, char *why,
                               size_t wl)
{
    struct pipe *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        snprintf(why, wl, "out of memory");
        return NULL;
    }
    pl->s = s;
    pl->n = n;
    pl->cap = cap;
    pthread_mutex_init(&pl->err_mu, NULL);
    int rc = pool_init(&pl->pool, cap + 2, n);
    for (int i = 0; i < s->nactors; i++) {
        struct pstage *st = &pl->st[i];
        st->pl = pl;
        st->idx = i;
        st->kind = s->a[i].kind;
        st->nin = s->a[i].nin;
        if (pool_init(&st->pool, cap + 2, n) < 0) rc = -ENOMEM;
    }
    /* One queue per edge: actor inputs, then graph outputs. */
    for (int i = 0; i < s->nactors; i++)
        for (int j = 0; j < s->a[i].nin; j++) {
            struct pq *q = &pl->qs[pl->nq++];
            if (pq_init(q, cap) < 0) rc = -ENOMEM;
            pl->st[i].in[j] = q;
            int src = s->a[i].in[j];
            if (src < 0)
                pl->feed[pl->nfeed++] = q;
            else
                pl->st[src].out[pl->st[src].nout++] = q;
        }
    for (int k = 0; k < s->nouts; k++) {
        struct pq *q = &pl->qs[pl->nq++];
        if (pq_init(q, cap) < 0) rc = -ENOMEM;
        pl->res[k] = q;
        pl->st[s->outs[k]].out[pl->st[s->outs[k]].nout++] = q;
    }
    if (rc < 0) {
        snprintf(why, wl, "out of memory");
        pipe_stop(pl, why, wl);
        return NULL;
    }
    for (int i = 0; i < s->nactors; i++) {
        int e = pthread_create(&pl->st[i].th, NULL, pstage_main, &pl->st[i]);
        if (e) {
            snprintf(why, wl, "pthread_create: %s", strerror(e));
            char w2[BENCH_ERR_LEN];
            pipe_stop(pl, w2, sizeof(w2));
            return NULL;
        }
        pl->st[i].started = 1;
    }
    return pl;
}

static void pipe_why(struct pipe *pl, const char *what, uint64_t seq, int rc, char *why,
                     size_t wl)
{
    pthread_mutex_lock(&pl->err_mu);
    if (pl->err[0])
        snprintf(why, wl, "%s %llu: %.200s", what, (unsigned long long)seq, pl->err);
    else if (rc == -ETIMEDOUT)
        snprintf(why, wl, "%s %llu: timed out after %d ms", what, (unsigned long long)seq,
                 bench_opts.timeout_ms);
    else
        snprintf(why, wl, "%s %llu: %s", what, (unsigned long long)seq, strerror(-rc));
    pthread_mutex_unlock(&pl->err_mu);
}

static int pipe_submit(struct pipe *pl, const uint8_t *arg, uint64_t seq, char *why, size_t wl)
{
    struct pitem *it = pool_get(&pl->pool, pl->n);
    if (!it) {
        snprintf(why, wl, "submit %llu: out of memory", (unsigned long long)seq);
        return -ENOMEM;
    }
    memcpy(it->data, arg, pl->n);
    it->seq = seq;
    it->len = pl->n;
    atomic_store_explicit(&it->refs, pl->nfeed, memory_order_relaxed);
    for (int k = 0; k < pl->nfeed; k++) {
        int rc = pq_push(pl->feed[k], it, bench_opts.timeout_ms);
        if (rc < 0) {
            for (int j = k; j < pl->nfeed; j++)
                item_release(it);
            pipe_why(pl, "submit", seq, rc, why, wl);
            return rc;
        }
    }
    return 0;
}

/* Pop the outputs of the next execution into out[]. */
static int pipe_collect(struct pipe *pl, struct pitem **out, uint64_t seq, char *why, size_t wl)
{
    for (int k = 0; k < pl->s->nouts; k++) {
        int rc = pq_pop(pl->res[k], &out[k], bench_opts.timeout_ms);
        if (rc < 0) {
            for (int j = 0; j < k; j++)
                item_release(out[j]);
            pipe_why(pl, "collect", seq, rc, why, wl);
            return rc;
        }
    }
    return 0;
}

static int pipe_check_release(struct pipe *pl, struct pitem **out, uint64_t seq, char *why,
                              size_t wl)
{
    int rc = 0;
    for (int k = 0; k < pl->s->nouts; k++) {
        if (!rc && out[k]->seq != seq) {
            snprintf(why, wl, "output %d: item of execution %llu, want %llu", k,
                     (unsigned long long)out[k]->seq, (unsigned long long)seq);
            rc = -1;
        }
        if (!rc) rc = dag_check(pl->s, k, out[k]->data, out[k]->len, pl->n, seq, why, wl);
        item_release(out[k]);
    }
    return rc;
}

static void pipe_lat(struct pipe *pl, uint8_t *arg, uint64_t *next, struct bench_row *row)
{
    uint64_t warm = lat_warmup(), k = 0, t_first = 0, t_last = 0, deadline = UINT64_MAX;
    struct pitem *out[DAG_MAX_OUTS];
    char why[BENCH_ERR_LEN];
    for (uint64_t i = 0; k < bench_opts.pp_max_rt; i++) {
        uint64_t seq = (*next)++;
        dag_stamp(arg, pl->n, seq);
        uint64_t t0 = bench_now_ns();
        if (pipe_submit(pl, arg, seq, why, sizeof(why)) < 0 ||
            pipe_collect(pl, out, seq, why, sizeof(why)) < 0) {
            row_failf(row, "%s", why);
            return;
        }
        uint64_t t1 = bench_now_ns();
        if (pipe_check_release(pl, out, seq, why, sizeof(why))) {
            row_failf(row, "%s", why);
            return;
        }
        if (i == warm) {
            t_first = t0;
            deadline = t0 + bench_opts.pp_budget_ns;
        }
        if (i >= warm) {
            samples[k++] = t1 - t0;
            t_last = t1;
        }
        if (t1 >= deadline) break;
    }
    row_lat(row, samples, k, t_last - t_first);
}

static void pipe_tput(struct pipe *pl, uint8_t *arg, uint64_t *next, struct bench_row *row)
{
    const uint64_t base = *next, warm = tput_warmup(), win = pl->cap;
    uint64_t sub = 0, col = 0, t_start = 0, deadline = UINT64_MAX, counted = 0, span = 0;
    int stop = 0;
    struct pitem *out[DAG_MAX_OUTS];
    char why[BENCH_ERR_LEN];
    for (;;) {
        while (!stop && sub - col < win) {
            dag_stamp(arg, pl->n, base + sub);
            if (pipe_submit(pl, arg, base + sub, why, sizeof(why)) < 0) {
                row_failf(row, "%s", why);
                return;
            }
            sub++;
            *next = base + sub;
        }
        if (col == sub) break;
        if (pipe_collect(pl, out, base + col, why, sizeof(why)) < 0 ||
            pipe_check_release(pl, out, base + col, why, sizeof(why))) {
            row_failf(row, "%s", why);
            return;
        }
        col++;
        if (stop) continue;
        if (col == warm) {
            t_start = bench_now_ns();
            deadline = t_start + bench_opts.budget_ns;
        } else if (col > warm && ((col & 7) == 0 || pl->n >= 4096)) {
            uint64_t t = bench_now_ns();
            if (t >= deadline || col - warm >= bench_opts.max_msgs) {
                stop = 1;
                counted = col - warm;
                span = t - t_start;
            }
        }
    }
    row_tput(row, counted, span);
}

static void run_pthread(const struct shape *s, size_t n)
{
    struct bench_row lat, tput;
    unsigned cap = inflight();
    init_rows(&lat, &tput, s, "thr", "pthread", n, cap);
    int want_lat = bench_begin(&lat), want_tput = bench_begin(&tput);
    if (!want_lat && !want_tput) return;
    snprintf(lat.notes, sizeof(lat.notes), "%d thr + driver, mutex/condvar queues", s->nactors);
    snprintf(tput.notes, sizeof(tput.notes), "%d thr + driver, mutex/condvar queues; %u in flight",
             s->nactors, cap);
    char why[BENCH_ERR_LEN] = "";
    cpu_set_t saved;
    int have_saved = driver_pin(&saved);
    uint8_t *arg = arg_buf(n);
    struct pipe *pl = arg ? pipe_start(s, n, cap, why, sizeof(why)) : NULL;
    if (!arg) snprintf(why, sizeof(why), "out of memory");
    if (!pl) {
        row_failf(&lat, "%s", why);
        row_failf(&tput, "%s", why);
    } else {
        uint64_t next = 0;
        if (want_lat) pipe_lat(pl, arg, &next, &lat);
        if (want_tput && !lat.failed) pipe_tput(pl, arg, &next, &tput);
        if (lat.failed) row_failf(&tput, "not run: the latency case failed");
        if (pipe_stop(pl, why, sizeof(why)) < 0) {
            row_failf(&lat, "%s", why);
            row_failf(&tput, "%s", why);
        }
    }
    driver_unpin(have_saved, &saved);
    if (want_lat) bench_emit(&lat);
    if (want_tput) bench_emit(&tput);
    free(arg);
}

/* ------------------------------------------------------------------ plan */

static void legend(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    char load[128] = "?";
    if (f) {
        if (fgets(load, sizeof(load), f)) load[strcspn(load, "\n")] = 0;
        fclose(f);
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    bench_note("load average at start: %s (figures assume an otherwise idle machine)", load);
    bench_note("weir-bench dag%s: %d round(s) (the whole plan runs %d time(s), so cases "
               "interleave; each row is its best round), each case %llu ms per round "
               "(latency: at most %llu executions), call timeout %d ms",
               bench_opts.quick ? " --quick" : "", bench_opts.rounds, bench_opts.rounds,
               (unsigned long long)(bench_opts.budget_ns / 1000000u),
               (unsigned long long)bench_opts.pp_max_rt, bench_opts.timeout_ms);
    bench_note("this machine: %ld online CPU(s). one = 1 actor + driver (2 threads); chain4 and "
               "diamond = 4 actors + driver (5 threads); fanout4 = 5 actors + driver (6 "
               "threads): more runnable threads than CPUs, reported as is; %s",
               ncpu,
               pinned() ? "pinned (--pin-multi rr): driver on CPU 0, actor i on CPU (i+1) % ncpu, "
                          "weir and pthread alike"
                        : "nothing pinned (--pin-multi rr pins driver on CPU 0, actor i on CPU "
                          "(i+1) % ncpu)");
    bench_note("shapes: one = a; chain4 = a->b->c->d; diamond = a->(b,c)->d, d joins b and c; "
               "fanout4 = a->(b,c,d,e), 4 graph outputs; act = actors in the graph");
    bench_note("work per stage: copy the input (msg_bytes) to the output, adding 1 to the first "
               "8-byte word (the join checks both inputs are one execution); every output of "
               "every execution is checked (first word = seq<<8 + stages on the path, last "
               "word = ~seq, length); a mismatch fails the case");
    bench_note("*.lat: one execution at a time; p50/p99 = whole round trip (submit + wait, not "
               "halved); exec/s = sequential round trips/s. *.tput: depth executions kept in "
               "flight, exec/s after a warm-up of %llu, MB/s = exec/s x msg_bytes",
               (unsigned long long)tput_warmup());
    bench_note("floor = the same stage functions called in sequence on one thread (no copy in "
               "or out, no threads); weir .thr = thread actors, .proc = every actor "
               "WEIR_PROCESS (driver in this process); max_inflight = depth = %u, buffer_bytes "
               "= msg_bytes; pthread = one thread per actor, mutex/condvar bounded queues "
               "(capacity = depth) of preallocated buffers, fan-out shares one refcounted buffer",
               inflight());
    bench_note("Ray Compiled Graphs (published; Python, other hardware; /work/shared/PEERS.md): "
               "~50 us per call for one actor, 5.7k executions/s for a chain of 4 actors");
}

static void ratios(void)
{
#define V(r, f) ((r) ? (r)->f : -1)
    const struct bench_row *o8 = bench_find("one.thr.lat", "weir", 8, 0);
    const struct bench_row *o8p = bench_find("one.proc.lat", "weir", 8, 0);
    const struct bench_row *c8 = bench_find("chain4.thr.tput", "weir", 8, 0);
    const struct bench_row *c8p = bench_find("chain4.proc.tput", "weir", 8, 0);
    bench_ratio("ray_call_vs_one.thr", "Ray CG 50 us/call / weir one.thr.lat 8 B p50",
                o8 ? RAY_CALL_NS : -1, V(o8, p50_ns), ">=", 25, NULL);
    bench_ratio("ray_call_vs_one.proc", "  (info) Ray CG 50 us/call / weir one.proc.lat 8 B p50",
                o8p ? RAY_CALL_NS : -1, V(o8p, p50_ns), ">=", 25, NULL);
    bench_ratio("chain4.thr_vs_ray", "weir chain4.thr.tput 8 B exec/s / Ray CG 5.7k exec/s",
                V(c8, msgs_per_s), c8 ? RAY_CHAIN4_EPS : -1, ">=", 35, NULL);
    bench_ratio("chain4.proc_vs_ray",
                "  (info) weir chain4.proc.tput 8 B exec/s / Ray CG 5.7k exec/s",
                V(c8p, msgs_per_s), c8p ? RAY_CHAIN4_EPS : -1, ">=", 35, NULL);
    char key[48], desc[96], name[48];
    for (size_t z = 0; z < NDSIZES; z++) {
        size_t n = dag_sizes[z];
        for (size_t i = 0; i < NSHAPES; i++) {
            const char *sh = shapes[i].name;
            snprintf(name, sizeof(name), "%s.thr.lat", sh);
            const struct bench_row *wl = bench_find(name, "weir", n, 0);
            const struct bench_row *pl = bench_find(name, "pthread", n, 0);
            snprintf(name, sizeof(name), "%s.thr.tput", sh);
            const struct bench_row *wt = bench_find(name, "weir", n, 0);
            const struct bench_row *pt = bench_find(name, "pthread", n, 0);
            snprintf(key, sizeof(key), "vs_pthread.lat.%s.%s", sh, size_label(n));
            snprintf(desc, sizeof(desc), "pthread %s.thr.lat %zu B p50 / weir p50", sh, n);
            bench_ratio(key, desc, V(pl, p50_ns), V(wl, p50_ns), ">=", 3, NULL);
            snprintf(key, sizeof(key), "vs_pthread.tput.%s.%s", sh, size_label(n));
            snprintf(desc, sizeof(desc), "weir %s.thr.tput %zu B exec/s / pthread exec/s", sh, n);
            bench_ratio(key, desc, V(wt, msgs_per_s), V(pt, msgs_per_s), ">=", 3, NULL);
        }
    }
    for (size_t z = 0; z < NDSIZES; z++) {
        size_t n = dag_sizes[z];
        for (size_t i = 0; i < NSHAPES; i++) {
            const char *sh = shapes[i].name;
            snprintf(name, sizeof(name), "%s.thr.lat", sh);
            const struct bench_row *tl = bench_find(name, "weir", n, 0);
            snprintf(name, sizeof(name), "%s.proc.lat", sh);
            const struct bench_row *pl = bench_find(name, "weir", n, 0);
            snprintf(name, sizeof(name), "%s.thr.tput", sh);
            const struct bench_row *tt = bench_find(name, "weir", n, 0);
            snprintf(name, sizeof(name), "%s.proc.tput", sh);
            const struct bench_row *pt = bench_find(name, "weir", n, 0);
            snprintf(key, sizeof(key), "proc_thr.lat.%s.%s", sh, size_label(n));
            snprintf(desc, sizeof(desc), "weir %s.proc.lat %zu B p50 / %s.thr.lat p50", sh, n,
                     sh);
            bench_ratio(key, desc, V(pl, p50_ns), V(tl, p50_ns), "<=", 1.5, NULL);
            snprintf(key, sizeof(key), "proc_thr.tput.%s.%s", sh, size_label(n));
            snprintf(desc, sizeof(desc), "weir %s.proc.tput %zu B exec/s / %s.thr.tput", sh, n,
                     sh);
            bench_ratio(key, desc, V(pt, msgs_per_s), V(tt, msgs_per_s), ">=", 1 / 1.5, NULL);
        }
    }
#undef V
}

/* One pass over every case (a round). */
static void plan(void)
{
    for (size_t z = 0; z < NDSIZES; z++)
        for (size_t i = 0; i < NSHAPES; i++) {
            const struct shape *s = &shapes[i];
            run_floor(s, dag_sizes[z]);
            run_weir(s, 0, dag_sizes[z]);
            run_weir(s, 1, dag_sizes[z]);
            run_pthread(s, dag_sizes[z]);
        }
}

int bench_cmd_dag(int argc, char **argv)
{
    int rc = bench_parse_opts(argc, argv, "dag");
    if (rc) return rc > 0 ? 0 : 2;
    bench_set_columns("executions_per_s", "exec/s", "act");
    if (bench_opts.quick && !bench_opts.budget_given) {
        /* 64 cases of 40 ms per round are too noisy on a shared 2-CPU VM:
         * 250 ms per case (shared by the rounds) keeps --quick near 20 s. */
        bench_opts.budget_ns = 250ull * 1000000u / (uint64_t)bench_opts.rounds;
        bench_opts.pp_budget_ns = bench_opts.budget_ns;
    }
    if (bench_opts.list) {
        plan();
        return 0;
    }
    samples = malloc((bench_opts.pp_max_rt ? bench_opts.pp_max_rt : 1) * sizeof(*samples));
    if (!samples) {
        fprintf(stderr, "weir-bench dag: out of memory\n");
        return 1;
    }
    uint64_t t0 = bench_now_ns();
    legend();
    for (bench_opts.round = 0; bench_opts.round < bench_opts.rounds; bench_opts.round++) {
        double par0 = bench_parallelism();
        plan();
        double par1 = bench_parallelism();
        bench_note("round %d/%d: CPU parallelism %.2f before, %.2f after (2.00: both CPUs ran "
                   "at once; near 1: the VM's vCPUs shared a core)",
                   bench_opts.round + 1, bench_opts.rounds, par0, par1);
    }
    ratios();
    bench_note("wall time %.1f s", (double)(bench_now_ns() - t0) / 1e9);
    free(samples);
    return bench_finish("dag");
}
