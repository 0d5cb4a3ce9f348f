/* SPDX-License-Identifier: MIT */
/*
 * engine/trace.h - the timeline (WEIR_TRACE=FILE.json): Chrome trace events
 * that Perfetto's UI opens (engine/trace.c).
 *
 * Design notes. Each actor records into its own bounded buffer
 * (WEIR_TRACE_EVENTS events, default 65536) in memory shared with actor
 * processes (mapped before any fork), so process actors' events reach the
 * file too. The buffer has one writer (the actor); the driver reads it at
 * teardown, after the actors left. Events past the bound are counted, not
 * stored, and the file says how many were dropped. Off, the actor loop pays
 * one load and a predictable branch per operation (a->trace is NULL).
 */
#ifndef WEIR_ENGINE_TRACE_H
#define WEIR_ENGINE_TRACE_H

#include <stdint.h>

#include "engine/engine.h"

struct weir__trace_ev {
    uint64_t t0, t1;
    uint64_t exec;
    uint32_t op; /* index in the actor's schedule */
    uint32_t pad;
};

struct weir__trace_buf {
    uint64_t n;       /* events stored (written by the actor, relaxed) */
    uint64_t dropped; /* events past cap */
    uint64_t cap;
    uint64_t pad[5];
    struct weir__trace_ev ev[];
};

struct weir__trace;

/* If WEIR_TRACE is set: map every actor's buffer (before any fork) and set
 * a->trace. NULL when not tracing (*err 0) or on failure (*err -ENOMEM). */
struct weir__trace *weir__trace_new(struct weir_dag *d, int *err);
/* Occupancy of every channel at time now (the stats publisher, while tracing). */
void weir__trace_sample(struct weir__trace *t, uint64_t now, unsigned nchans,
                        const uint64_t *occupancy);
/* Write the file (teardown, after the actors left). */
void weir__trace_write(struct weir__trace *t, const struct weir_dag *d);
void weir__trace_free(struct weir__trace *t);
/* In a forked child of another dag: unmap t's shared buffer, nothing else. */
void weir__trace_forget(struct weir__trace *t);

static inline void weir__trace_op(struct actor_rt *a, unsigned op, uint64_t exec, uint64_t t0)
{
    if (a->pa->ops[op].kind == WEIR__OP_RELEASE)
        return; /* part of the READ's slice */
    struct weir__trace_buf *b = a->trace;
    uint64_t n = b->n;
    if (n >= b->cap) {
        __atomic_store_n(&b->dropped, b->dropped + 1, __ATOMIC_RELAXED);
        return;
    }
    struct weir__trace_ev *e = &b->ev[n];
    e->t0 = t0;
    e->t1 = weir_now_ns();
    e->exec = exec;
    e->op = op;
    __atomic_store_n(&b->n, n + 1, __ATOMIC_RELEASE);
}

#endif
