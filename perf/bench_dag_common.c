/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_dag_common.c - what every implementation of `weir-bench dag`
 * (perf/bench_dag.c: floor and weir; perf/bench_dag_pthread.c) runs on:
 * the stage work and the output checks, pinning, rows, and the two
 * measurement windows (.lat and .tput), written once.
 */
#include "bench_dag.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned bench_dag_inflight(void)
{
    return bench_opts.depth ? bench_opts.depth : DAG_DEFAULT_INFLIGHT;
}

static uint64_t lat_warmup(void)
{
    return bench_opts.quick ? 20 : 100;
}

uint64_t bench_dag_tput_warmup(void)
{
    return 4u * bench_dag_inflight();
}


/* --pin-multi rr: driver on CPU 0, actor i on CPU (i + 1) % ncpu. Default: nothing pinned. */
int bench_dag_pinned(void)
{
    return bench_opts.pin_given && !bench_opts.unpinned_multi;
}

int bench_dag_actor_cpu(int i)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (!bench_dag_pinned()) return -1;
    return (int)((i + 1) % (ncpu > 0 ? ncpu : 1));
}

/* Pin the driver (this thread) for one case; restored by driver_unpin. */
int bench_dag_driver_pin(cpu_set_t *saved)
{
    if (!bench_dag_pinned()) return 0;
    if (sched_getaffinity(0, sizeof(*saved), saved)) return 0;
    bench_pin_self(0);
    return 1;
}

void bench_dag_driver_unpin(int have, const cpu_set_t *saved)
{
    if (have) sched_setaffinity(0, sizeof(*saved), saved);
}

/* Declared in bench_dag.h. */
uint64_t *bench_dag_samples;

/* ------------------------------------------------------ the stage work */

__attribute__((noinline)) void bench_dag_work_inc(void *out, const void *in, size_t n)
{
    uint64_t w;
    memcpy(out, in, n);
    memcpy(&w, in, 8);
    w += 1;
    memcpy(out, &w, 8);
}

__attribute__((noinline)) int bench_dag_work_join(void *out, const void *in0, const void *in1,
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

void bench_dag_stamp(uint8_t *arg, size_t n, uint64_t seq)
{
    uint64_t w = seq << 8;
    memcpy(arg, &w, 8);
    if (n >= 16) {
        uint64_t t = ~seq;
        memcpy(arg + n - 8, &t, 8);
    }
}

int bench_dag_check(const struct bench_dag_shape *s, int k, const void *p, size_t len, size_t n,
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

uint8_t *bench_dag_arg_buf(size_t n)
{
    uint8_t *a = NULL;
    const uint8_t *src = bench_src_buf(n);
    if (!src || posix_memalign((void **)&a, 64, n)) return NULL;
    memcpy(a, src, n);
    return a;
}

void bench_dag_row_failf(struct bench_row *r, const char *fmt, ...)
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
        bench_dag_row_failf(r, "no execution measured");
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
        bench_dag_row_failf(r, "no execution counted");
        return;
    }
    bench_row_throughput(r, counted, span);
}

void bench_dag_init_rows(struct bench_row *lat, struct bench_row *tput, const struct bench_dag_shape *s,
                      const char *mode, const char *impl, size_t n, unsigned depth)
{
    char name[48];
    snprintf(name, sizeof(name), "%s.%s.lat", s->name, mode);
    bench_row_init(lat, name, impl, n, s->nactors, depth);
    snprintf(name, sizeof(name), "%s.%s.tput", s->name, mode);
    bench_row_init(tput, name, impl, n, s->nactors, depth);
}

/* ------------------------------------------------ the measurement windows */

void bench_dag_lat(const struct bench_dag_ops *o, uint64_t *next, struct bench_row *row)
{
    uint64_t warm = lat_warmup(), k = 0, t_first = 0, t_last = 0, deadline = UINT64_MAX;
    char why[BENCH_ERR_LEN];
    for (uint64_t i = 0; k < bench_opts.pp_max_rt; i++) {
        uint64_t seq = *next;
        bench_dag_stamp(o->arg, o->n, seq);
        uint64_t t0 = bench_now_ns();
        int rc = o->exec(o->ctx, seq, why, sizeof(why));
        uint64_t t1 = bench_now_ns();
        if (rc < 0) {
            bench_dag_row_failf(row, "%s", why);
            return;
        }
        (*next)++;
        if (o->check(o->ctx, seq, why, sizeof(why))) {
            bench_dag_row_failf(row, "%s", why);
            return;
        }
        if (i == warm) {
            t_first = t0;
            deadline = t0 + bench_opts.pp_budget_ns;
        }
        if (i >= warm) {
            bench_dag_samples[k++] = t1 - t0;
            t_last = t1;
        }
        if (t1 >= deadline) break;
    }
    row_lat(row, bench_dag_samples, k, t_last - t_first);
}

void bench_dag_tput(const struct bench_dag_ops *o, uint64_t *next, struct bench_row *row)
{
    const uint64_t base = *next, warm = bench_dag_tput_warmup(), win = o->window;
    const uint64_t mask = o->n >= 4096 ? 0 : o->clock_every - 1;
    uint64_t sub = 0, col = 0, t_start = 0, deadline = UINT64_MAX, counted = 0, span = 0;
    int stop = 0;
    char why[BENCH_ERR_LEN];
    for (;;) {
        while (!stop && sub - col < win) {
            bench_dag_stamp(o->arg, o->n, base + sub);
            if (o->submit(o->ctx, base + sub, why, sizeof(why)) < 0) {
                bench_dag_row_failf(row, "%s", why);
                return;
            }
            sub++;
            *next = base + sub;
        }
        if (col == sub) break;
        if (o->collect(o->ctx, base + col, why, sizeof(why)) < 0) {
            bench_dag_row_failf(row, "%s", why);
            return;
        }
        col++;
        if (stop) continue;
        if (col == warm) {
            t_start = bench_now_ns();
            deadline = t_start + bench_opts.budget_ns;
        } else if (col > warm && (col & mask) == 0) {
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

