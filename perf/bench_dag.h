/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_dag.h - what the files of `weir-bench dag` share: the shapes,
 * the stage work and its checks, the rows, and the two measurement windows
 * (bench_dag_common.c) that every implementation runs through.
 */
#ifndef WEIR_BENCH_DAG_H
#define WEIR_BENCH_DAG_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include <weir/dag.h>

#include "bench.h"

#define BENCH_DAG_MAX_ACTORS 8
#define BENCH_DAG_MAX_OUTS 4
#define BENCH_DAG_MAX_QUEUES 16
#define DAG_DEFAULT_INFLIGHT 16

enum { BENCH_DAG_INC, BENCH_DAG_JOIN };

struct bench_dag_shape {
    const char *name;
    int nactors;
    struct {
        int kind;
        int nin;
        int in[2]; /* -1: the graph input; else an earlier actor */
    } a[BENCH_DAG_MAX_ACTORS];
    int nouts;
    int outs[BENCH_DAG_MAX_OUTS];       /* actors whose output is a graph output */
    uint64_t add[BENCH_DAG_MAX_OUTS];   /* what the stages add to the first word */
};

/* The stage functions every implementation calls (never inlined into a loop). */
void bench_dag_work_inc(void *out, const void *in, size_t n);
/* 0, or -1 when the two inputs are not the same execution. */
int bench_dag_work_join(void *out, const void *in0, const void *in1, size_t n);
/* The driver's stamp of execution seq in its argument. */
void bench_dag_stamp(uint8_t *arg, size_t n, uint64_t seq);
/* 0 if output k of execution seq is right; else -1 with why. */
int bench_dag_check(const struct bench_dag_shape *s, int k, const void *p, size_t len, size_t n,
                    uint64_t seq, char *why, size_t wl);

unsigned bench_dag_inflight(void);
uint64_t bench_dag_tput_warmup(void);   /* executions before .tput starts counting */
int bench_dag_pinned(void);               /* --pin-multi rr given */        /* executions in flight (--depth, default 16) */
int bench_dag_actor_cpu(int i);           /* CPU of actor i with --pin-multi rr, else -1 */
int bench_dag_driver_pin(cpu_set_t *saved); /* pin this thread for one case; 1 if pinned */
void bench_dag_driver_unpin(int have, const cpu_set_t *saved);
uint8_t *bench_dag_arg_buf(size_t n);     /* a 64-byte aligned argument; free() it */
void bench_dag_row_failf(struct bench_row *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bench_dag_init_rows(struct bench_row *lat, struct bench_row *tput,
                         const struct bench_dag_shape *s, const char *mode, const char *impl,
                         size_t n, unsigned depth);

/*
 * One implementation as the measurement windows drive it. Each call gets
 * the execution's sequence number and fills why on failure (returning < 0).
 * The windows stamp the argument (arg, n bytes) before exec and submit.
 */
struct bench_dag_ops {
    void *ctx;
    uint8_t *arg;
    size_t n;
    /* .lat: run execution seq to its results (timed), then check and free them (not timed) */
    int (*exec)(void *ctx, uint64_t seq, char *why, size_t wl);
    int (*check)(void *ctx, uint64_t seq, char *why, size_t wl);
    /* .tput: start execution seq; wait for the oldest one (seq), check and free it */
    int (*submit)(void *ctx, uint64_t seq, char *why, size_t wl);
    int (*collect)(void *ctx, uint64_t seq, char *why, size_t wl);
    uint64_t window;      /* executions in flight at once */
    uint64_t clock_every; /* read the clock every this many collections (a power of 2;
                             every one from 4 KiB messages on) */
};

/* .lat: one execution at a time after a warm-up, until the ping-pong budget or
 * pp_max_rt samples; *next: the next sequence number (advanced). */
void bench_dag_lat(const struct bench_dag_ops *o, uint64_t *next, struct bench_row *row);
/* .tput: o->window executions in flight, counted after a warm-up until the budget;
 * the tail is drained and checked but not counted. */
void bench_dag_tput(const struct bench_dag_ops *o, uint64_t *next, struct bench_row *row);

/* The weir implementation (bench_dag.c), for bench_dag_nodes.c. */
struct bench_dag_weir {
    weir_dag *d;
    const struct bench_dag_shape *s;
    size_t n;
    weir_buf arg;
    weir_result *r; /* results of the execution in hand */
};
/* A shape by name ("chain4"), or NULL. */
const struct bench_dag_shape *bench_dag_shape(const char *name);
/* Compile shape s (max_inflight = depth, buffer_bytes n) with actor i on rank
 * node[i] (NULL: all on rank 0), links over transport (WEIR_TRANSPORT_*), the
 * actors on `threads` workers per rank (0: a thread per actor), rank 0's first
 * worker run by its driver if drvw (weir_compile_opts.driver_worker). NULL
 * with why. */
weir_dag *bench_dag_build_on(const struct bench_dag_shape *s, size_t n, const int *node,
                             int transport, int threads, int drvw, char *why, size_t wl);
/* The measurement windows' ops over w (execute / submit / wait, every output checked). */
struct bench_dag_ops bench_dag_weir_ops(struct bench_dag_weir *w, uint8_t *arg, size_t n);
/* `weir-bench dag --nodes N` (bench_dag_nodes.c): the whole command. */
int bench_dag_nodes(int argc, char **argv);

/* Latency samples, shared by every case (pp_max_rt entries; bench_dag.c allocates them). */
extern uint64_t *bench_dag_samples;

/* The pthread pipeline baseline (bench_dag_pthread.c): both rows of one shape and size. */
void bench_dag_run_pthread(const struct bench_dag_shape *s, size_t n);

#endif
