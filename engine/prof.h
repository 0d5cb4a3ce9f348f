/* SPDX-License-Identifier: MIT */
/*
 * engine/prof.h - profiling hooks of the engine: per-method counters the
 * actor loop keeps, USDT probes around calls, and the per-dag publisher of
 * the stats segment (engine/prof.c, engine/stats_shm.h).
 *
 * Design notes. The counters live in one anonymous MAP_SHARED mapping made
 * before any actor process is forked, so a process actor (and its
 * replacements) count into the same words the driver's publisher reads.
 * Each word has one writer (the actor running the method), written with
 * relaxed stores; readers load them relaxed. Calls are timed only while
 * `timing` is set (a reader watches the stats segment): unwatched, a call
 * costs one counter increment and one predictable branch.
 */
#ifndef WEIR_ENGINE_PROF_H
#define WEIR_ENGINE_PROF_H

#include <stdint.h>

#include "channels/probes.h"
#include "engine/engine.h"

struct weir__method_ctr {
    uint64_t calls;
    uint64_t errors;
    uint64_t busy_ns;
    uint64_t pad;
};

/* Per actor, in the shared mapping: written by the actor's own process. */
struct weir__actor_ctr {
    uint32_t pid;     /* process running the actor now */
    uint32_t starts;  /* times the actor loop started (1 + restarts) */
    uint8_t pad[56];
} __attribute__((aligned(64)));

struct weir__prof_shared {
    int timing; /* atomic: time calls */
    uint8_t pad[60];
} __attribute__((aligned(64)));

/* Map the counters (before any fork). 0 or -ENOMEM. */
int weir__prof_init(struct weir_dag *d, const char *graph);
/* Create the stats segment and start the publisher (after the actors started).
 * Never fails the dag: without a segment the counters still count. */
void weir__prof_start(struct weir_dag *d);
/* Final snapshot, stop the publisher, remove the segment (teardown). */
void weir__prof_stop(struct weir_dag *d);
/* Unmap the counters (destroy, when nothing runs any more). */
void weir__prof_free(struct weir_dag *d);
/* In a process actor's child of ANOTHER dag: unmap d's shared counters,
 * stats segment and trace buffer (no file is unlinked, no thread joined). */
void weir__prof_forget(struct weir_dag *d);
/* The actor loop (re)starts in this process. */
void weir__prof_actor_start(struct actor_rt *a);
/* Path of the dag's stats segment, or "" (none). */
const char *weir__prof_path(const struct weir_dag *d);

static inline uint64_t weir__prof_call_begin(struct actor_rt *a, unsigned method, uint64_t exec)
{
    WEIR_PROBE3(call_begin, a->pa->name, a->pa->methods[method].name, exec);
    if (__builtin_expect(a->prof_shared && __atomic_load_n(&a->prof_shared->timing, __ATOMIC_RELAXED), 0))
        return weir_now_ns();
    return 0;
}

static inline void weir__prof_call_end(struct actor_rt *a, unsigned method, uint64_t exec,
                                       int failed, uint64_t t0)
{
    WEIR_PROBE4(call_end, a->pa->name, a->pa->methods[method].name, exec, failed);
    struct weir__method_ctr *m = a->mctr ? &a->mctr[method] : NULL;
    if (!m)
        return;
    __atomic_store_n(&m->calls, m->calls + 1, __ATOMIC_RELAXED);
    if (failed)
        __atomic_store_n(&m->errors, m->errors + 1, __ATOMIC_RELAXED);
    if (t0)
        __atomic_store_n(&m->busy_ns, m->busy_ns + (weir_now_ns() - t0), __ATOMIC_RELAXED);
}

#endif
