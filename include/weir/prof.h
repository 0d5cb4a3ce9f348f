/* SPDX-License-Identifier: MIT */
/*
 * weir/prof.h (implemented in engine/: prof.c, stats_shm.c, bottleneck.c,
 * trace.c) - profiling: the dag's stats segment and the bottleneck rule
 * that weir-top and the examples share.
 *
 * Every dag publishes its counters in /dev/shm/weir-stats.<pid>.<graph>
 * (mode 0600; refreshed every WEIR_STATS_INTERVAL_MS, default 250;
 * WEIR_STATS=0 turns it off), read by `weir-top` without stopping anything.
 */
#ifndef WEIR_PROF_H
#define WEIR_PROF_H

#include <stddef.h>

#include <weir/dag.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Path of d's stats segment, or "" if it has none (WEIR_STATS=0, /dev/shm
 * unavailable). A static string of the dag, valid until weir_dag_free(). */
WEIR_API const char *weir_dag_stats_path(const weir_dag *d);

/* Remove the stats segments of processes that no longer exist (a driver
 * killed before its teardown leaves its segment; the next dag created on the
 * machine removes it too). Any thread. Returns how many were removed, or a
 * negative errno (cannot list /dev/shm). */
WEIR_API int weir_stats_remove_stale(void);

/* One actor's share of an interval: busy = 1 - waiting-for-input - blocked-on-output. */
struct weir_actor_load {
    const char *name;
    double busy; /* 0 .. 1 */
};

/*
 * The bottleneck, named honestly, as one line into buf (cap bytes):
 * - an actor busy at least half the time is the bottleneck (the others wait for it);
 * - when every stage mostly waits and the actors outnumber ncpus, the
 *   hand-offs are (each message waits for a context switch);
 * - otherwise no actor is saturated: the driver's submit rate limits.
 * Returns the bottleneck actor's index, or -1 when no actor is it.
 */
WEIR_API int weir_bottleneck(const struct weir_actor_load *a, unsigned n, unsigned ncpus,
                             char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
