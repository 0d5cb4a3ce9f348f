/* SPDX-License-Identifier: MIT */
/*
 * engine/bottleneck.c - the one rule that names a pipeline's bottleneck
 * (weir_bottleneck, <weir/prof.h>), shared by weir-top and the examples;
 * and the public accessor of the stats segment's path.
 *
 * Why the rule is not "the busiest actor": with more actors than CPUs every
 * stage spends most of its time waiting for a context switch to the stage
 * that has the message, so the busiest stage at 16 % is no bottleneck; the
 * hand-offs are.
 */
#include <stdio.h>

#include <weir/prof.h>

#include "engine/prof.h"

#define SATURATED 0.5 /* busy at least half the time: the others wait for it */

WEIR_API int weir_bottleneck(const struct weir_actor_load *a, unsigned n, unsigned ncpus,
                             char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return -1;
    if (!a || n == 0) {
        snprintf(buf, cap, "bottleneck: none (no actors)");
        return -1;
    }
    unsigned b = 0;
    for (unsigned i = 1; i < n; i++)
        if (a[i].busy > a[b].busy)
            b = i;
    double pct = 100.0 * (a[b].busy < 0 ? 0 : a[b].busy);
    if (a[b].busy >= SATURATED) {
        snprintf(buf, cap, "bottleneck: actor '%s' (busy %.0f %%; the other stages wait for it)",
                 a[b].name, pct);
        return (int)b;
    }
    if (ncpus > 0 && n > ncpus)
        snprintf(buf, cap,
                 "bottleneck: the hand-offs (every stage mostly waits, busiest '%s' %.0f %%; "
                 "%u actors share %u CPUs, so each message waits for a context switch; fused "
                 "schedules on fewer workers would remove them)",
                 a[b].name, pct, n, ncpus);
    else
        snprintf(buf, cap,
                 "bottleneck: the driver (no actor is saturated, busiest '%s' %.0f %%; "
                 "executions arrive slower than the stages run)",
                 a[b].name, pct);
    return -1;
}

WEIR_API const char *weir_dag_stats_path(const weir_dag *d)
{
    return weir__prof_path(d);
}
