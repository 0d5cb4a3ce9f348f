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
 *   weir     the compiled dag: a thread per actor (.thr, threads =
 *            WEIR_THREADS_PER_ACTOR), the thread actors fused on
 *            --threads N workers (.fused, threads = N, default 2), the same
 *            with the first worker run by the driver (.drvw, driver_worker
 *            = 1), or every actor WEIR_PROCESS (.proc); unpinned
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
#include "bench_dag.h"

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

/* Ray Compiled Graphs, published figures (see /work/shared/PEERS.md). */
#define RAY_CALL_NS 50000.0
#define RAY_CHAIN4_EPS 5700.0

static const struct bench_dag_shape shapes[] = {
    {"one", 1, {{BENCH_DAG_INC, 1, {-1, 0}}}, 1, {0}, {1}},
    {"chain4",
     4,
     {{BENCH_DAG_INC, 1, {-1, 0}}, {BENCH_DAG_INC, 1, {0, 0}}, {BENCH_DAG_INC, 1, {1, 0}}, {BENCH_DAG_INC, 1, {2, 0}}},
     1,
     {3},
     {4}},
    {"diamond",
     4,
     {{BENCH_DAG_INC, 1, {-1, 0}}, {BENCH_DAG_INC, 1, {0, 0}}, {BENCH_DAG_INC, 1, {0, 0}}, {BENCH_DAG_JOIN, 2, {1, 2}}},
     1,
     {3},
     {3}},
    {"fanout4",
     5,
     {{BENCH_DAG_INC, 1, {-1, 0}},
      {BENCH_DAG_INC, 1, {0, 0}},
      {BENCH_DAG_INC, 1, {0, 0}},
      {BENCH_DAG_INC, 1, {0, 0}},
      {BENCH_DAG_INC, 1, {0, 0}}},
     4,
     {1, 2, 3, 4},
     {2, 2, 2, 2}},
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const size_t dag_sizes[] = {8, 65536};
#define NDSIZES (sizeof(dag_sizes) / sizeof(dag_sizes[0]))

static const char *size_label(size_t n)
{
    return n >= 65536 ? "64k" : n >= 1024 ? "1k" : "8";
}

/* ------------------------------------------------------------- floor */

static int floor_exec(const struct bench_dag_shape *s, uint8_t *const *bufs, const uint8_t *arg, size_t n)
{
    for (int i = 0; i < s->nactors; i++) {
        const void *in0 = s->a[i].in[0] < 0 ? (const void *)arg : bufs[s->a[i].in[0]];
        if (s->a[i].kind == BENCH_DAG_INC) {
            bench_dag_work_inc(bufs[i], in0, n);
        } else {
            const void *in1 = s->a[i].in[1] < 0 ? (const void *)arg : bufs[s->a[i].in[1]];
            if (bench_dag_work_join(bufs[i], in0, in1, n)) return -1;
        }
    }
    return 0;
}

static int floor_check(const struct bench_dag_shape *s, uint8_t *const *bufs, size_t n, uint64_t seq,
                       char *why, size_t wl)
{
    for (int k = 0; k < s->nouts; k++)
        if (bench_dag_check(s, k, bufs[s->outs[k]], n, n, seq, why, wl)) return -1;
    return 0;
}

/* The floor as the measurement windows drive it: one execution at a time. */
struct floor_run {
    const struct bench_dag_shape *s;
    uint8_t *const *bufs;
    const uint8_t *arg;
    size_t n;
};

static int fl_exec(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct floor_run *f = ctx;
    if (floor_exec(f->s, f->bufs, f->arg, f->n) == 0) return 0;
    snprintf(why, wl, "execution %llu: join inputs differ", (unsigned long long)seq);
    return -1;
}

static int fl_check(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct floor_run *f = ctx;
    return floor_check(f->s, f->bufs, f->n, seq, why, wl);
}

static void run_floor(const struct bench_dag_shape *s, size_t n)
{
    struct bench_row lat, tput;
    bench_dag_init_rows(&lat, &tput, s, "call", "floor", n, 0);
    int want_lat = bench_begin(&lat), want_tput = bench_begin(&tput);
    if (!want_lat && !want_tput) return;
    snprintf(lat.notes, sizeof(lat.notes), "stage fns called in sequence on 1 thread");
    snprintf(tput.notes, sizeof(tput.notes), "same loop, no clock per execution");
    uint8_t *bufs[BENCH_DAG_MAX_ACTORS] = {0};
    uint8_t *arg = bench_dag_arg_buf(n);
    int ok = arg != NULL;
    cpu_set_t saved;
    int have_saved = bench_dag_driver_pin(&saved);
    for (int i = 0; i < s->nactors && ok; i++)
        if (posix_memalign((void **)&bufs[i], 64, n)) bufs[i] = NULL, ok = 0;
    if (!ok) {
        bench_dag_row_failf(&lat, "out of memory");
        bench_dag_row_failf(&tput, "out of memory");
        goto out;
    }
    struct floor_run fr = {s, bufs, arg, n};
    struct bench_dag_ops o = {.ctx = &fr, .arg = arg, .n = n,
                              .exec = fl_exec, .check = fl_check,
                              .submit = fl_exec, .collect = fl_check,
                              .window = 1, .clock_every = 64};
    uint64_t seq = 0;
    if (want_lat) bench_dag_lat(&o, &seq, &lat);
    if (want_tput) bench_dag_tput(&o, &seq, &tput);
out:
    bench_dag_driver_unpin(have_saved, &saved);
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
    bench_dag_work_inc(out, in, n);
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
    if (bench_dag_work_join(out, in0, in1, n0))
        return weir_call_fail(c, "inputs belong to different executions");
    return 0;
}

enum { MODE_THR, MODE_PROC, MODE_FUSED, MODE_DRVW };

const struct bench_dag_shape *bench_dag_shape(const char *name)
{
    for (size_t i = 0; i < NSHAPES; i++)
        if (!strcmp(shapes[i].name, name)) return &shapes[i];
    return NULL;
}

static weir_dag *weir_build_on(const struct bench_dag_shape *s, int mode, size_t n,
                               const int *rank_of, int transport, char *why, size_t wl);

weir_dag *bench_dag_build_on(const struct bench_dag_shape *s, size_t n, const int *node,
                             int transport, int threads, int drvw, char *why, size_t wl)
{
    int save = bench_opts.threads;
    bench_opts.threads = threads;
    int mode = drvw ? MODE_DRVW : threads ? MODE_FUSED : MODE_THR;
    weir_dag *d = weir_build_on(s, mode, n, node, transport, why, wl);
    bench_opts.threads = save;
    return d;
}

static weir_dag *weir_build(const struct bench_dag_shape *s, int mode, size_t n, char *why, size_t wl)
{
    return weir_build_on(s, mode, n, NULL, WEIR_TRANSPORT_URING, why, wl);
}

static weir_dag *weir_build_on(const struct bench_dag_shape *s, int mode, size_t n,
                               const int *rank_of, int transport, char *why, size_t wl)
{
    weir_graph *g = weir_graph_new(s->name);
    if (!g) {
        snprintf(why, wl, "weir_graph_new: %s", weir_errmsg());
        return NULL;
    }
    weir_node *in = weir_input(g, 0), *node[BENCH_DAG_MAX_ACTORS] = {0}, *outs[BENCH_DAG_MAX_OUTS];
    weir_dag *d = NULL;
    if (!in) {
        snprintf(why, wl, "weir_input: %s", weir_errmsg());
        goto out;
    }
    for (int i = 0; i < s->nactors; i++) {
        char name[8];
        snprintf(name, sizeof(name), "%c", 'a' + i);
        char cpus[16];
        int cpu = bench_dag_actor_cpu(i);
        snprintf(cpus, sizeof cpus, "%d", cpu);
        weir_actor_opts o = {.isolation = mode == MODE_PROC ? WEIR_PROCESS : WEIR_THREAD,
                             .cpus = cpu >= 0 ? cpus : NULL, .node = rank_of ? rank_of[i] : 0};
        weir_actor *a = weir_actor_new(g, name, &o);
        if (!a) {
            snprintf(why, wl, "weir_actor_new: %s", weir_errmsg());
            goto out;
        }
        weir_node *ins[2];
        for (int j = 0; j < s->a[i].nin; j++)
            ins[j] = s->a[i].in[j] < 0 ? in : node[s->a[i].in[j]];
        int join = s->a[i].kind == BENCH_DAG_JOIN;
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
        .max_inflight = bench_dag_inflight(), .buffer_bytes = n, .timeout_ms = bench_opts.timeout_ms,
        .threads = mode == MODE_FUSED || mode == MODE_DRVW ? bench_opts.threads
                                                           : WEIR_THREADS_PER_ACTOR,
        .transport = transport, .driver_worker = mode == MODE_DRVW};
    d = weir_compile(g, &co);
    if (!d) snprintf(why, wl, "weir_compile: %s", weir_errmsg());
out:
    weir_graph_free(g);
    return d;
}

static int weir_check(const struct bench_dag_shape *s, weir_result *r, size_t n, uint64_t seq, char *why,
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
        if (bench_dag_check(s, k, p, len, n, seq, why, wl)) return -1;
    }
    return 0;
}


static int wr_exec(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct bench_dag_weir *w = ctx;
    w->r = NULL;
    if (weir_execute(w->d, &w->arg, 1, &w->r, bench_opts.timeout_ms) == 0) return 0;
    snprintf(why, wl, "weir_execute %llu: %s", (unsigned long long)seq, weir_errmsg());
    return -1;
}

static int wr_check(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct bench_dag_weir *w = ctx;
    int rc = weir_check(w->s, w->r, w->n, seq, why, wl);
    weir_result_free(w->r);
    w->r = NULL;
    return rc;
}

static int wr_submit(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct bench_dag_weir *w = ctx;
    uint64_t id = UINT64_MAX;
    if (weir_submit(w->d, &w->arg, 1, &id, bench_opts.timeout_ms) < 0) {
        snprintf(why, wl, "weir_submit %llu: %s", (unsigned long long)seq, weir_errmsg());
        return -1;
    }
    if (id != seq) {
        snprintf(why, wl, "weir_submit gave execution id %llu, want %llu", (unsigned long long)id,
                 (unsigned long long)seq);
        return -1;
    }
    return 0;
}

static int wr_collect(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct bench_dag_weir *w = ctx;
    w->r = NULL;
    if (weir_wait(w->d, seq, &w->r, bench_opts.timeout_ms) < 0) {
        snprintf(why, wl, "weir_wait %llu: %s", (unsigned long long)seq, weir_errmsg());
        return -1;
    }
    return wr_check(ctx, seq, why, wl);
}

static void run_weir(const struct bench_dag_shape *s, int mode, size_t n)
{
    struct bench_row lat, tput;
    unsigned win = bench_dag_inflight();
    bench_dag_init_rows(&lat, &tput, s,
                        mode == MODE_PROC    ? "proc"
                        : mode == MODE_FUSED ? "fused"
                        : mode == MODE_DRVW  ? "drvw"
                                             : "thr",
                        "weir", n, win);
    int want_lat = bench_begin(&lat), want_tput = bench_begin(&tput);
    if (!want_lat && !want_tput) return;
    if (mode == MODE_FUSED) {
        int w = bench_opts.threads < s->nactors ? bench_opts.threads : s->nactors;
        snprintf(lat.notes, sizeof(lat.notes), "%d actors fused on %d worker%s + driver; "
                 "weir_execute", s->nactors, w, w == 1 ? "" : "s");
        snprintf(tput.notes, sizeof(tput.notes), "%d actors fused on %d worker%s + driver; "
                 "%u in flight", s->nactors, w, w == 1 ? "" : "s", win);
    } else if (mode == MODE_DRVW) {
        int w = bench_opts.threads < s->nactors ? bench_opts.threads : s->nactors;
        snprintf(lat.notes, sizeof(lat.notes), "%d actors fused on %d worker%s, the first run "
                 "by the driver; weir_execute", s->nactors, w, w == 1 ? "" : "s");
        snprintf(tput.notes, sizeof(tput.notes), "%d actors fused on %d worker%s, the first run "
                 "by the driver; %u in flight", s->nactors, w, w == 1 ? "" : "s", win);
    } else if (mode == MODE_PROC) {
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
    int have_saved = bench_dag_driver_pin(&saved);
    uint8_t *arg = bench_dag_arg_buf(n);
    weir_dag *d = arg ? weir_build(s, mode, n, why, sizeof(why)) : NULL;
    if (!arg) snprintf(why, sizeof(why), "out of memory");
    if (!d) {
        bench_dag_row_failf(&lat, "%s", why);
        bench_dag_row_failf(&tput, "%s", why);
    } else {
        struct bench_dag_weir wr = {d, s, n, {arg, n}, NULL};
        struct bench_dag_ops o = bench_dag_weir_ops(&wr, arg, n);
        uint64_t next = 0;
        if (want_lat) bench_dag_lat(&o, &next, &lat);
        if (want_tput && !lat.failed) bench_dag_tput(&o, &next, &tput);
        if (lat.failed) bench_dag_row_failf(&tput, "not run: the latency case failed");
        if (weir_dag_free(d) < 0) {
            snprintf(why, sizeof(why), "weir_dag_free: %s", weir_errmsg());
            bench_dag_row_failf(&lat, "%s", why);
            bench_dag_row_failf(&tput, "%s", why);
        }
    }
    bench_dag_driver_unpin(have_saved, &saved);
    if (want_lat) bench_emit(&lat);
    if (want_tput) bench_emit(&tput);
    free(arg);
}

struct bench_dag_ops bench_dag_weir_ops(struct bench_dag_weir *w, uint8_t *arg, size_t n)
{
    return (struct bench_dag_ops){.ctx = w, .arg = arg, .n = n,
                                  .exec = wr_exec, .check = wr_check,
                                  .submit = wr_submit, .collect = wr_collect,
                                  .window = bench_dag_inflight(), .clock_every = 8};
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
               bench_dag_pinned() ? "pinned (--pin-multi rr): driver on CPU 0, actor i on CPU (i+1) % ncpu, "
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
               (unsigned long long)bench_dag_tput_warmup());
    bench_note("floor = the same stage functions called in sequence on one thread (no copy in "
               "or out, no threads); weir .thr = a thread per actor, .fused = the actors fused "
               "on --threads %d workers (weir_compile_opts.threads; chain4 a,b | c,d), .drvw = the "
               "same with the first worker run by the driver's calls (driver_worker = 1), .proc = "
               "every actor WEIR_PROCESS (driver in this process); max_inflight = depth = %u, "
               "buffer_bytes = msg_bytes; pthread = one thread per actor, mutex/condvar bounded "
               "queues (capacity = depth) of preallocated buffers, fan-out shares one refcounted "
               "buffer",
               bench_opts.threads, bench_dag_inflight());
    bench_note("Ray Compiled Graphs (published; Python, other hardware; /work/shared/PEERS.md): "
               "~50 us per call for one actor, 5.7k executions/s for a chain of 4 actors");
}

/* The co-scheduling targets for chain4.<mode> (fused, drvw: the first worker
 * run by the driver) at --threads N: beside a thread per actor (thr), the
 * call loop, and 2 us of round trip. */
static void fused_ratios(const char *mode, const struct bench_row *thr)
{
    char name[64], d1[112], key[48];
    snprintf(name, sizeof name, "chain4.%s.tput", mode);
    const struct bench_row *cf = bench_find(name, "weir", 8, 0);
    snprintf(name, sizeof name, "chain4.%s.lat", mode);
    const struct bench_row *cfl = bench_find(name, "weir", 8, 0);
    const struct bench_row *cfloor = bench_find("chain4.call.tput", "floor", 8, 0);
    double tp = cf ? cf->msgs_per_s : -1;
    snprintf(key, sizeof key, "chain4.%s_vs_thr", mode);
    snprintf(d1, sizeof d1, "weir chain4.%s.tput 8 B (threads %d) / chain4.thr.tput", mode,
             bench_opts.threads);
    bench_ratio(key, d1, tp, thr ? thr->msgs_per_s : -1, ">=", 10, NULL);
    snprintf(key, sizeof key, "chain4.%s_vs_floor", mode);
    snprintf(d1, sizeof d1, "weir chain4.%s.tput 8 B (threads %d) / floor chain4.call.tput", mode,
             bench_opts.threads);
    bench_ratio(key, d1, tp, cfloor ? cfloor->msgs_per_s : -1, ">=", 0.25, NULL);
    snprintf(key, sizeof key, "chain4.%s_lat_2us", mode);
    snprintf(d1, sizeof d1, "weir chain4.%s.lat 8 B (threads %d) p50 ns / 2000 ns", mode,
             bench_opts.threads);
    bench_ratio(key, d1, cfl ? cfl->p50_ns : -1, cfl ? 2000 : -1, "<=", 1, NULL);
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
    fused_ratios("fused", c8);
    fused_ratios("drvw", c8);
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
            if (n != 65536)
                continue;
            /* The same ratio against the co-scheduling issue's target for
             * zero-copy results (outputs read in place, as the pthread
             * driver reads its own). */
            snprintf(key, sizeof(key), "results_64k.%s", sh);
            snprintf(desc, sizeof(desc), "weir %s.thr.tput 64 KiB (result views) / pthread", sh);
            bench_ratio(key, desc, V(wt, msgs_per_s), V(pt, msgs_per_s), ">=", 1.5, NULL);
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
            const struct bench_dag_shape *s = &shapes[i];
            run_floor(s, dag_sizes[z]);
            run_weir(s, MODE_THR, dag_sizes[z]);
            run_weir(s, MODE_FUSED, dag_sizes[z]);
            run_weir(s, MODE_DRVW, dag_sizes[z]);
            run_weir(s, MODE_PROC, dag_sizes[z]);
            bench_dag_run_pthread(s, dag_sizes[z]);
        }
}

int bench_cmd_dag(int argc, char **argv)
{
    int rc = bench_parse_opts(argc, argv, "dag");
    if (rc) return rc > 0 ? 0 : 2;
    if (bench_opts.nodes) return bench_dag_nodes(argc, argv);
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
    bench_dag_samples = malloc((bench_opts.pp_max_rt ? bench_opts.pp_max_rt : 1) *
                               sizeof(*bench_dag_samples));
    if (!bench_dag_samples) {
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
    free(bench_dag_samples);
    return bench_finish("dag");
}

