/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_tensor.c - `weir-bench tensor`: CPU tensors through compiled
 * graphs beside memcpy of the same size in the same run, and the
 * simulated device's copies per message.
 *
 * Design notes
 *   - one:    the driver's tensor argument (weir_tensor_arg: one copy into
 *             the argument's slot) read whole by one actor (it sums every
 *             64-bit word and returns the sum): one write, one read.
 *   - chain2: a small argument; actor 'a' fills a tensor of the size in its
 *             output slot (weir_call_out_tensor: one write), actor 'b' reads
 *             it whole (one read) and returns the sum.
 *   Either way every byte is written once and read once, as a memcpy reads
 *   once and writes once; MB/s counts the tensor's bytes per execution, so
 *   weir / memcpy is the round trip's share of memcpy bandwidth (target
 *   >= 0.8 at 16 MiB and up). Every result's sum is checked.
 *   - Threads and process actors; depth 2 and 2 executions in flight, so
 *     a 256 MiB case holds at most 2 slots per channel.
 *   - sim: a chain up -> down over a WEIR_TENSOR_DEVICE_SIM edge, thread
 *     and process actors (the device buffers shared across processes
 *     through the exported handles); the methods copy host->device and
 *     device->host themselves, weir copies nothing; the counts per message
 *     are printed (minimum: 1 and 1 by the methods, 0 by weir), beside the
 *     simulated device's own h2d + d2h of the same size (sim.copy).
 *   - d2d: device to device across two processes (see run_d2d), on the
 *     simulated device and, where a GPU is present, on CUDA.
 *   Every sim and CUDA case runs in a child process of its own (sim_case),
 *   so the bench process never initialises a device and can fork process
 *   actors that use one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weir/weir.h>

#include "channels/device.h"
#include "channels/err.h"
#include "engine/engine.h"
#include "perf/bench.h"

static const size_t sizes[] = {64 << 10, 1 << 20, 16 << 20, 256 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static uint64_t sum_words(const void *p, size_t n)
{
    return bench_sum64(p, n & ~(size_t)7);
}

static DLTensor bytes_tensor(void *data, int64_t *shape, size_t n)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = 1;
    t.dtype.code = kDLUInt;
    t.dtype.bits = 64;
    t.dtype.lanes = 1;
    shape[0] = (int64_t)(n / 8);
    t.shape = shape;
    return t;
}

/* one: sum of the input tensor. */
static int m_sum(weir_call *c, void *st)
{
    (void)st;
    DLTensor t;
    if (weir_call_in_tensor(c, 0, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    uint64_t *o = weir_call_out(c, 0, sizeof *o);
    if (!o)
        return weir_call_fail(c, "%s", weir_errmsg());
    *o = sum_words(t.data, (size_t)t.shape[0] * 8);
    return 0;
}

/* chain2 'a': fill a tensor of n bytes with the argument's value. */
static int m_fill(weir_call *c, void *st)
{
    size_t n = *(const size_t *)st;
    const uint64_t *v = weir_call_in(c, 0, NULL);
    int64_t shape[1];
    DLTensor m = bytes_tensor(NULL, shape, n);
    uint64_t *p = weir_call_out_tensor(c, 0, &m);
    if (!p)
        return weir_call_fail(c, "%s", weir_errmsg());
    for (size_t i = 0; i < n / 8; i++)
        p[i] = *v;
    return 0;
}

static void run_memcpy(size_t n)
{
    struct bench_row row;
    bench_row_init(&row, "memcpy", "memcpy", n, 1, 0);
    if (!bench_begin(&row))
        return;
    char *a = aligned_alloc(64, n), *b = aligned_alloc(64, n);
    if (!a || !b) {
        free(a);
        free(b);
        row.failed = 1;
        snprintf(row.error, sizeof row.error, "out of memory for 2 x %zu bytes", n);
        bench_emit(&row);
        return;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    uint64_t k = 0, t0 = bench_now_ns(), t = t0;
    while (k < 3 || t - t0 < bench_opts.budget_ns) {
        memcpy(b, a, n);
        bench_escape(b);
        k++;
        t = bench_now_ns();
    }
    bench_row_throughput(&row, k, t - t0);
    bench_emit(&row);
    free(a);
    free(b);
}

static void run_weir(int chain, int proc, size_t n)
{
    char name[48];
    snprintf(name, sizeof name, "%s.%s", chain ? "chain2" : "one", proc ? "proc" : "thr");
    struct bench_row row;
    bench_row_init(&row, name, "weir", n, chain ? 2 : 1, 2);
    if (!bench_begin(&row))
        return;
    static size_t fill_n;
    fill_n = n;
    weir_graph *g = weir_graph_new("tbench");
    weir_actor_opts o = {.isolation = proc ? WEIR_PROCESS : WEIR_THREAD,
                         .state = &fill_n};
    weir_node *in = weir_input(g, 0), *out;
    if (chain) {
        weir_actor *a = weir_actor_new(g, "a", &o), *b = weir_actor_new(g, "b", &o);
        weir_node *y = weir_bind(a, "fill", m_fill, &in, 1, 1);
        weir_node_tensor(y, kDLCPU, n);
        out = weir_bind(b, "sum", m_sum, &y, 1, 1);
    } else {
        weir_actor *a = weir_actor_new(g, "a", &o);
        weir_node_tensor(in, kDLCPU, n);
        out = weir_bind(a, "sum", m_sum, &in, 1, 1);
    }
    weir_output(g, &out, 1);
    weir_compile_opts co = {.max_inflight = 2, .depth = 2};
    weir_dag *d = weir_compile(g, &co);
    uint64_t *src = NULL;
    if (!d)
        goto fail;
    if (!chain && !(src = aligned_alloc(64, n))) {
        weir__seterr(-ENOMEM, "out of memory for %zu bytes", n);
        goto fail;
    }
    for (size_t i = 0; src && i < n / 8; i++)
        src[i] = i * 7;
    uint64_t want_one = src ? sum_words(src, n) : 0;
    int64_t shape[1];
    DLTensor t = bytes_tensor(src, shape, n);
    uint64_t next = 0, done = 0, t0 = 0, warm = 2;
    for (;;) {
        uint64_t now = bench_now_ns();
        int more = next < warm + 8 || now - t0 < bench_opts.budget_ns;
        while (more && next - done < 2) {
            uint64_t v = next + 1, id;
            weir_buf arg = chain ? (weir_buf){&v, sizeof v} : weir_tensor_arg(&t);
            if (weir_submit(d, &arg, 1, &id, bench_opts.timeout_ms) < 0)
                goto fail;
            next++;
        }
        if (done == next)
            break;
        weir_result *r;
        if (weir_wait(d, done, &r, bench_opts.timeout_ms) < 0)
            goto fail;
        uint64_t got = *(const uint64_t *)weir_result_data(r, 0, NULL);
        uint64_t want = chain ? (done + 1) * (uint64_t)(n / 8) : want_one;
        weir_result_free(r);
        if (got != want) {
            weir__seterr(-EBADMSG, "execution %llu: sum %llu, expected %llu",
                         (unsigned long long)done, (unsigned long long)got,
                         (unsigned long long)want);
            goto fail;
        }
        done++;
        if (done == warm)
            t0 = bench_now_ns();
    }
    bench_row_throughput(&row, done - warm, bench_now_ns() - t0);
    snprintf(row.notes, sizeof row.notes, "%llu executions, every sum checked",
             (unsigned long long)(done - warm));
    bench_emit(&row);
    weir_dag_free(d);
    weir_graph_free(g);
    free(src);
    return;
fail:
    row.failed = 1;
    row.msgs_per_s = row.mb_per_s = -1;
    snprintf(row.error, sizeof row.error, "%s", weir_errmsg());
    bench_emit(&row);
    weir_dag_free(d);
    weir_graph_free(g);
    free(src);
}

/* ---- the simulated device: copies per message ---------------------------- */

struct simst {
    weir__device *dev;
    weir__dev_counters ctr; /* at fini (thread actors: read by the bench) */
};

static int sim_init(void *p)
{
    return weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "bench", &((struct simst *)p)->dev) < 0
               ? -1
               : 0;
}

static void sim_fini(void *p)
{
    struct simst *s = p;
    s->dev->ops->counters(s->dev->impl, &s->ctr);
    weir__device_close(s->dev);
}

#define SIM_BYTES 4096

static int m_up(weir_call *c, void *p)
{
    struct simst *s = p;
    uint64_t v[SIM_BYTES / 8];
    uint64_t x = *(const uint64_t *)weir_call_in(c, 0, NULL);
    for (size_t i = 0; i < SIM_BYTES / 8; i++)
        v[i] = x;
    int64_t shape[1];
    DLTensor m = bytes_tensor(NULL, shape, SIM_BYTES);
    m.device.device_type = WEIR_TENSOR_DEVICE_SIM;
    void *dp = weir_call_out_tensor(c, 0, &m);
    if (!dp || s->dev->ops->copy(s->dev->impl, dp, v, SIM_BYTES, WEIR__COPY_H2D) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    return 0;
}

static int m_down(weir_call *c, void *p)
{
    struct simst *s = p;
    DLTensor t;
    uint64_t v[SIM_BYTES / 8];
    if (weir_call_in_tensor(c, 0, &t) < 0 ||
        s->dev->ops->copy(s->dev->impl, v, t.data, SIM_BYTES, WEIR__COPY_D2H) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    uint64_t *o = weir_call_out(c, 0, sizeof *o);
    *o = sum_words(v, SIM_BYTES);
    return 0;
}

static double sim_copies[2] = {-1, -1}; /* h2d + d2h per message by the methods: thr, proc */

/* The simulated device keeps CUDA's rule (a process that used it cannot
 * fork actors that use it), so each sim case runs in a child of its own
 * and hands its row back: the bench process never opens the device. */
struct sim_back {
    int has;
    struct bench_row row;
    double copies;
};
static struct sim_back *sim_back; /* in a case's child: where its row goes */

static void sim_emit(const struct bench_row *r, double copies)
{
    if (!sim_back) {
        bench_emit(r);
        return;
    }
    sim_back->row = *r;
    sim_back->copies = copies;
    sim_back->has = 1;
}

/* Baseline: the simulated device's own h2d + d2h of SIM_BYTES in a loop
 * (what the methods of the chain do per message, without weir). */
static void run_sim_copy(void)
{
    struct bench_row row;
    bench_row_init(&row, "sim.copy", "sim-copy", SIM_BYTES, 1, 0);
    if (!bench_begin(&row))
        return;
    weir__device *dev = NULL;
    void *mem = NULL, *dp = NULL;
    uint64_t v[SIM_BYTES / 8], back[SIM_BYTES / 8], n = 0, t0 = bench_now_ns();
    if (weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "bench", &dev) < 0 ||
        dev->ops->mem_alloc(dev->impl, SIM_BYTES, &mem, &dp) < 0)
        goto fail;
    while (n < 100 || bench_now_ns() - t0 < bench_opts.budget_ns) {
        for (size_t i = 0; i < SIM_BYTES / 8; i++)
            v[i] = n;
        if (dev->ops->copy(dev->impl, dp, v, SIM_BYTES, WEIR__COPY_H2D) < 0 ||
            dev->ops->copy(dev->impl, back, dp, SIM_BYTES, WEIR__COPY_D2H) < 0)
            goto fail;
        if (sum_words(back, SIM_BYTES) != n * (SIM_BYTES / 8)) {
            weir__seterr(-EBADMSG, "copy %llu: wrong sum", (unsigned long long)n);
            goto fail;
        }
        n++;
    }
    bench_row_throughput(&row, n, bench_now_ns() - t0);
    snprintf(row.notes, sizeof row.notes, "1 h2d + 1 d2h per message, every sum checked");
    sim_emit(&row, -1);
    dev->ops->mem_free(dev->impl, mem);
    weir__device_close(dev);
    return;
fail:
    row.failed = 1;
    snprintf(row.error, sizeof row.error, "%s", weir_errmsg());
    sim_emit(&row, -1);
    if (mem)
        dev->ops->mem_free(dev->impl, mem);
    weir__device_close(dev);
}

/* up -> down over a device edge of `bytes` (a thread or process actor each,
 * states st0 and st1), up's output to down, down's to the driver. */
static weir_dag *dev_chain(weir_graph *g, void *st0, void *st1, int (*init)(void *),
                           void (*fini)(void *), int iso, weir_method_fn up, weir_method_fn down,
                           int dev, size_t bytes)
{
    weir_actor_opts o = {.state = st0, .init = init, .fini = fini, .isolation = iso};
    weir_actor *a = weir_actor_new(g, "up", &o);
    o.state = st1;
    weir_actor *b = weir_actor_new(g, "down", &o);
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(a, "up", up, &in, 1, 1);
    weir_node_tensor(y, (DLDeviceType)dev, bytes);
    weir_node *z = weir_bind(b, "down", down, &y, 1, 1);
    weir_output(g, &z, 1);
    return weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR});
}

/* Execute d with arguments 0, 1, ... for the budget (at least min_n times);
 * result n must be n * mul. Frees d either way (which publishes the device
 * counters). 0 and the count and span, or -1 (weir_errmsg). */
static int dev_run(weir_dag *d, uint64_t min_n, uint64_t mul, uint64_t *n_out, uint64_t *span)
{
    uint64_t n = 0, t0 = bench_now_ns();
    int rc = 0;
    while (rc == 0 && (n < min_n || bench_now_ns() - t0 < bench_opts.budget_ns)) {
        uint64_t v = n;
        weir_buf arg = {&v, sizeof v};
        weir_result *r;
        if ((rc = weir_execute(d, &arg, 1, &r, bench_opts.timeout_ms)) < 0)
            break;
        uint64_t got = *(const uint64_t *)weir_result_data(r, 0, NULL);
        weir_result_free(r);
        if (got != n * mul)
            rc = weir__seterr(-EBADMSG, "execution %llu: result %llu, expected %llu",
                              (unsigned long long)n, (unsigned long long)got,
                              (unsigned long long)(n * mul));
        n++;
    }
    *span = bench_now_ns() - t0;
    *n_out = n;
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        weir_dag_free(d);
        weir__seterr(rc, "%s", why);
        return -1;
    }
    return weir_dag_free(d) < 0 ? -1 : 0;
}

/* Two actors' states of `bytes` each in memory shared with actor processes
 * (a process actor's fini writes its counters there), zeroed; NULL with
 * the reason. */
static void *shared_states(size_t bytes)
{
    void *st = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) {
        weir__seterr(-ENOMEM, "mmap of the actors' states: %s", strerror(errno));
        return NULL;
    }
    return memset(st, 0, 2 * bytes);
}

/* A chain case failed: its row says why; free its graph and states. */
static void chain_failed(struct bench_row *row, weir_graph *g, void *st, size_t bytes)
{
    row->failed = 1;
    snprintf(row->error, sizeof row->error, "%s", weir_errmsg());
    sim_emit(row, -1);
    weir_graph_free(g);
    if (st)
        munmap(st, 2 * bytes);
}

/* The chain up -> down over a simulated-device edge, thread or process
 * actors. The actors' states live in shared memory, so a process actor's
 * counters (written at fini, in the child) reach the bench; weir's own
 * copies come from the engine's counters (actors and driver). */
static void run_sim(int proc)
{
    struct bench_row row;
    bench_row_init(&row, proc ? "sim.chain2.proc" : "sim.chain2.thr", "weir", SIM_BYTES, 2, 8);
    if (!bench_begin(&row))
        return;
    struct simst *st = shared_states(sizeof *st);
    weir_graph *g = weir_graph_new("tsim");
    weir_dag *d = st ? dev_chain(g, &st[0], &st[1], sim_init, sim_fini,
                                 proc ? WEIR_PROCESS : WEIR_THREAD, m_up, m_down,
                                 WEIR_TENSOR_DEVICE_SIM, SIM_BYTES)
                     : NULL;
    uint64_t n, span;
    if (!d || dev_run(d, 100, SIM_BYTES / 8, &n, &span) < 0) {
        chain_failed(&row, g, st, sizeof *st);
        return;
    }
    bench_row_throughput(&row, n, span);
    weir__dev_counters ka, kd;
    weir__tensor_last_counters(&ka);
    weir__tensor_last_driver_counters(&kd);
    double h2d = (double)st[0].ctr.copies[WEIR__COPY_H2D] / (double)n;
    double d2h = (double)st[1].ctr.copies[WEIR__COPY_D2H] / (double)n;
    uint64_t own = 0;
    for (int k = 0; k < 3; k++)
        own += ka.copies[k] + kd.copies[k];
    snprintf(row.notes, sizeof row.notes,
             "per message: %.2f h2d, %.2f d2h by the methods (minimum 1, 1), %.2f by weir "
             "(minimum 0); %llu imports",
             h2d, d2h, (double)own / (double)n, (unsigned long long)ka.imports);
    sim_emit(&row, h2d + d2h);
    weir_graph_free(g);
    munmap(st, 2 * sizeof *st);
}

/* ---- device to device across two processes --------------------------------- */

/*
 * d2d.<dev>: process actor 'up' copies D2D_BYTES device-to-device from a
 * buffer of its own into its output's pool buffer and stamps the
 * execution number into the first 8 bytes (a tiny host-to-device copy);
 * process actor 'down' reads the buffer in place (its first and last 8
 * bytes, device-to-host) and returns the stamp: the bytes cross from one
 * process to the other with one device copy. Beside it, d2d-copy: the
 * same device's own device-to-device copy of D2D_BYTES plus the same
 * small copies, in one process (cuMemcpyDtoD on a GPU). Runs on the
 * simulated device always and on CUDA where a GPU is present.
 */
#define D2D_BYTES (16u << 20)
#define D2D_FILL 0x5157454952ull /* every word of up's source buffer */

struct d2dst {
    int type;
    weir__device *dev;
    void *mem, *src;
};

static const char *dev_tag(int type)
{
    return type == kDLCUDA ? "cuda" : "sim";
}

static int d2d_init(void *p)
{
    struct d2dst *s = p;
    if (weir__device_open((DLDeviceType)s->type, 0, "bench", &s->dev) < 0)
        return -1;
    if (s->dev->ops->mem_alloc(s->dev->impl, D2D_BYTES, &s->mem, &s->src) < 0)
        return -1;
    uint64_t *w = malloc(D2D_BYTES);
    if (!w)
        return -1;
    for (size_t i = 0; i < D2D_BYTES / 8; i++)
        w[i] = D2D_FILL;
    int rc = s->dev->ops->copy(s->dev->impl, s->src, w, D2D_BYTES, WEIR__COPY_H2D);
    free(w);
    return rc < 0 || s->dev->ops->sync(s->dev->impl) < 0 ? -1 : 0;
}

static void d2d_fini(void *p)
{
    struct d2dst *s = p;
    if (s->mem)
        s->dev->ops->mem_free(s->dev->impl, s->mem);
    weir__device_close(s->dev);
}

static int m_d2d_up(weir_call *c, void *p)
{
    struct d2dst *s = p;
    uint64_t x = *(const uint64_t *)weir_call_in(c, 0, NULL);
    int64_t shape[1];
    DLTensor m = bytes_tensor(NULL, shape, D2D_BYTES);
    m.device.device_type = (DLDeviceType)s->type;
    void *dp = weir_call_out_tensor(c, 0, &m);
    const weir__device_ops *o = s->dev->ops;
    if (!dp || o->copy(s->dev->impl, dp, s->src, D2D_BYTES, WEIR__COPY_D2D) < 0 ||
        o->copy(s->dev->impl, dp, &x, sizeof x, WEIR__COPY_H2D) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    return 0;
}

static int m_d2d_down(weir_call *c, void *p)
{
    struct d2dst *s = p;
    DLTensor t;
    uint64_t head, tail;
    const weir__device_ops *o = s->dev->ops;
    if (weir_call_in_tensor(c, 0, &t) < 0 ||
        o->copy(s->dev->impl, &head, t.data, 8, WEIR__COPY_D2H) < 0 ||
        o->copy(s->dev->impl, &tail, (char *)t.data + D2D_BYTES - 8, 8, WEIR__COPY_D2H) < 0 ||
        o->sync(s->dev->impl) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (tail != D2D_FILL)
        return weir_call_fail(c, "execution %llu: last word %llx",
                              (unsigned long long)weir_call_exec(c), (unsigned long long)tail);
    *(uint64_t *)weir_call_out(c, 0, sizeof head) = head;
    return 0;
}

static void run_d2d(int type)
{
    char name[32];
    snprintf(name, sizeof name, "d2d.%s.proc", dev_tag(type));
    struct bench_row row;
    bench_row_init(&row, name, "weir", D2D_BYTES, 2, 2);
    if (!bench_begin(&row))
        return;
    struct d2dst *st = shared_states(sizeof *st);
    weir_graph *g = weir_graph_new("td2d");
    if (st)
        st[0].type = st[1].type = type;
    weir_dag *d = st ? dev_chain(g, &st[0], &st[1], d2d_init, d2d_fini, WEIR_PROCESS, m_d2d_up,
                                 m_d2d_down, type, D2D_BYTES)
                     : NULL;
    uint64_t n, span;
    if (!d || dev_run(d, 20, 1, &n, &span) < 0) {
        chain_failed(&row, g, st, sizeof *st);
        return;
    }
    bench_row_throughput(&row, n, span);
    snprintf(row.notes, sizeof row.notes,
             "process actors, %s device: one d2d of the tensor per message (up), read in place "
             "(down), every stamp checked",
             dev_tag(type));
    sim_emit(&row, -1);
    weir_graph_free(g);
    munmap(st, 2 * sizeof *st);
}

/* Baseline: the device's own d2d of D2D_BYTES plus the case's small copies,
 * into two destination buffers in turn (the pool's depth: the same working
 * set, which a 32 MiB L3 would otherwise flatter). */
static void run_d2d_copy(int type)
{
    char name[32];
    snprintf(name, sizeof name, "d2d.%s.copy", dev_tag(type));
    struct bench_row row;
    bench_row_init(&row, name, "d2d-copy", D2D_BYTES, 1, 0);
    if (!bench_begin(&row))
        return;
    struct d2dst s = {.type = type};
    void *mem[2] = {NULL, NULL}, *dst[2];
    uint64_t n = 0, t0 = bench_now_ns(), head = 0, tail = 0;
    if (d2d_init(&s) < 0 || s.dev->ops->mem_alloc(s.dev->impl, D2D_BYTES, &mem[0], &dst[0]) < 0 ||
        s.dev->ops->mem_alloc(s.dev->impl, D2D_BYTES, &mem[1], &dst[1]) < 0)
        goto fail;
    const weir__device_ops *o = s.dev->ops;
    while (n < 20 || bench_now_ns() - t0 < bench_opts.budget_ns) {
        char *to = dst[n % 2];
        if (o->copy(s.dev->impl, to, s.src, D2D_BYTES, WEIR__COPY_D2D) < 0 ||
            o->copy(s.dev->impl, to, &n, 8, WEIR__COPY_H2D) < 0 ||
            o->copy(s.dev->impl, &head, to, 8, WEIR__COPY_D2H) < 0 ||
            o->copy(s.dev->impl, &tail, to + D2D_BYTES - 8, 8, WEIR__COPY_D2H) < 0 ||
            o->sync(s.dev->impl) < 0)
            goto fail;
        if (head != n || tail != D2D_FILL) {
            weir__seterr(-EBADMSG, "copy %llu: wrong words", (unsigned long long)n);
            goto fail;
        }
        n++;
    }
    bench_row_throughput(&row, n, bench_now_ns() - t0);
    snprintf(row.notes, sizeof row.notes,
             "%s device, one process: 1 d2d into 2 buffers in turn + the same small copies",
             dev_tag(type));
    sim_emit(&row, -1);
    goto out;
fail:
    row.failed = 1;
    snprintf(row.error, sizeof row.error, "%s", weir_errmsg());
    sim_emit(&row, -1);
out:
    for (int k = 0; k < 2; k++)
        if (mem[k])
            s.dev->ops->mem_free(s.dev->impl, mem[k]);
    if (s.dev)
        d2d_fini(&s);
}

/* Is a CUDA device there? Asked in a child, so this process stays clean. */
static int cuda_present(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        weir__device *dv;
        _exit(weir__device_open(kDLCUDA, 0, "probe", &dv) == 0 ? 0 : 1);
    }
    int st = 0;
    known = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    return known;
}

/* Run case fn(arg) in a child (see sim_back); copies: its sim_copies slot or -1. */
static void sim_case(void (*fn)(int), int arg, int copies)
{
    struct sim_back *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                              -1, 0);
    if (b == MAP_FAILED)
        return;
    memset(b, 0, sizeof *b);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sim_back = b;
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    int st = 0;
    if (pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    if (b->has) {
        bench_emit(&b->row);
        if (copies >= 0 && !b->row.failed)
            sim_copies[copies] = b->copies;
    } else if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "weir-bench: a simulated-device case's process failed (status %d)\n", st);
    }
    munmap(b, sizeof *b);
}

static void sim_copy_case(int unused)
{
    (void)unused;
    run_sim_copy();
}

static void ratios(void)
{
    char key[64], desc[120];
    static const char *iso[2] = {"thr", "proc"};
    for (int k = 0; k < 2; k++) {
        snprintf(key, sizeof key, "sim.copies_per_msg.%s", iso[k]);
        snprintf(desc, sizeof desc, "sim chain2.%s: copies per message (h2d + d2h) / minimum 2",
                 iso[k]);
        bench_ratio(key, desc, sim_copies[k], 2, "<=", 1.0, NULL);
    }
    const struct bench_row *sc = bench_find("sim.copy", "sim-copy", SIM_BYTES, 0);
    for (int k = 0; k < 2; k++) {
        snprintf(key, sizeof key, "sim.vs_copy.%s", iso[k]);
        snprintf(desc, sizeof desc, "  (info) weir sim.chain2.%s exec/s / sim-copy msgs/s",
                 iso[k]);
        const struct bench_row *w = bench_find(k ? "sim.chain2.proc" : "sim.chain2.thr", "weir",
                                               SIM_BYTES, 0);
        bench_ratio(key, desc, w && !w->failed ? w->msgs_per_s : -1,
                    sc && !sc->failed ? sc->msgs_per_s : -1, ">=", 0.0, NULL);
    }
    /* Device to device across two processes / the device's own copy: the
     * issue's target (>= 0.8) is for a GPU; the simulated device's is info. */
    for (int k = 0; k < 2; k++) {
        int type = k ? kDLCUDA : WEIR_TENSOR_DEVICE_SIM;
        if (k && !cuda_present())
            continue;
        char nw[32], nc[32];
        snprintf(nw, sizeof nw, "d2d.%s.proc", dev_tag(type));
        snprintf(nc, sizeof nc, "d2d.%s.copy", dev_tag(type));
        const struct bench_row *w = bench_find(nw, "weir", D2D_BYTES, 0);
        const struct bench_row *c = bench_find(nc, "d2d-copy", D2D_BYTES, 0);
        snprintf(key, sizeof key, "d2d.%s.vs_copy", dev_tag(type));
        snprintf(desc, sizeof desc, "%s%s 16 MiB d2d across two processes / its own d2d copy",
                 k ? "" : "  (info) ", dev_tag(type));
        bench_ratio(key, desc, w && !w->failed ? w->msgs_per_s : -1,
                    c && !c->failed ? c->msgs_per_s : -1, ">=", k ? 0.8 : 0.0, NULL);
    }
    for (size_t z = 0; z < NSIZES; z++) {
        size_t n = sizes[z];
        if (n < (16u << 20) || (bench_opts.quick && n > (16u << 20)))
            continue;
        const struct bench_row *m = bench_find("memcpy", "memcpy", n, 0);
        static const char *cases[] = {"one.thr", "one.proc", "chain2.thr", "chain2.proc"};
        for (size_t i = 0; i < 4; i++) {
            const struct bench_row *w = bench_find(cases[i], "weir", n, 0);
            snprintf(key, sizeof key, "vs_memcpy.%s.%zuM", cases[i], n >> 20);
            snprintf(desc, sizeof desc, "weir %s %zu MiB MB/s / memcpy MB/s", cases[i], n >> 20);
            bench_ratio(key, desc, w && !w->failed ? w->mb_per_s : -1,
                        m && !m->failed ? m->mb_per_s : -1, ">=", 0.8, NULL);
        }
    }
}

static void plan(void)
{
    for (size_t z = 0; z < NSIZES; z++) {
        size_t n = sizes[z];
        if (bench_opts.quick && n > (16u << 20))
            continue;
        run_memcpy(n);
        for (int chain = 0; chain < 2; chain++)
            for (int proc = 0; proc < 2; proc++)
                run_weir(chain, proc, n);
    }
    sim_case(run_sim, 0, 0);
    sim_case(run_sim, 1, 1);
    sim_case(sim_copy_case, 0, -1);
    sim_case(run_d2d, WEIR_TENSOR_DEVICE_SIM, -1);
    sim_case(run_d2d_copy, WEIR_TENSOR_DEVICE_SIM, -1);
    if (cuda_present()) {
        sim_case(run_d2d, kDLCUDA, -1);
        sim_case(run_d2d_copy, kDLCUDA, -1);
    }
}

int bench_cmd_tensor(int argc, char **argv)
{
    int rc = bench_parse_opts(argc, argv, "tensor");
    if (rc)
        return rc > 0 ? 0 : 2;
    bench_set_columns("executions_per_s", "exec/s", "act");
    if (bench_opts.list) {
        plan();
        return 0;
    }
    uint64_t t0 = bench_now_ns();
    for (bench_opts.round = 0; bench_opts.round < bench_opts.rounds; bench_opts.round++) {
        double par0 = bench_parallelism();
        plan();
        double par1 = bench_parallelism();
        bench_note("round %d/%d: CPU parallelism %.2f before, %.2f after", bench_opts.round + 1,
                   bench_opts.rounds, par0, par1);
    }
    ratios();
    if (!cuda_present())
        bench_note("no GPU here (or no CUDA in this build): the d2d.cuda rows run only where "
                   "libcuda.so.1 and a GPU are present; d2d.sim ran the same case on the "
                   "simulated device");
    bench_note("wall time %.1f s", (double)(bench_now_ns() - t0) / 1e9);
    return bench_finish("tensor");
}
