/* SPDX-License-Identifier: MIT */
/*
 * engine/fail.c - the dag's failure state, shared by every layer of the engine:
 * marking the dag dead, breaking the pipeline around a dead actor, and
 * describing what an actor was doing when it died or got stuck.
 *
 * Design notes. This is the bottom of the engine: it calls only into
 * channels/, so the lifecycle (dag.c), process isolation (proc.c) and the
 * driver (driver.c) can all use it and calls still run one way.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include <weir/dag.h>

#include "channels/chan_internal.h"
#include "engine/engine.h"

void weir__note_describe(const struct actor_rt *a, char *buf, size_t cap)
{
    const struct weir__actor_note *n = a->note;
    int phase = weir__load_acquire(&n->phase);
    unsigned m = weir__load_relaxed(&n->cur_method);
    uint64_t e = weir__load_relaxed(&n->cur_exec);
    if (phase == WEIR__PHASE_INIT)
        snprintf(buf, cap, "in init");
    else if (phase == WEIR__PHASE_FINI)
        snprintf(buf, cap, "in fini");
    else if (weir__load_acquire(&n->in_call))
        snprintf(buf, cap, "in method '%s' (execution %llu)",
                 m < a->pa->nmethods ? a->pa->methods[m].name : "?", (unsigned long long)e);
    else
        snprintf(buf, cap, "waiting for a message or a free slot");
}

void weir__dag_mark_dead(struct weir_dag *d, int who, const char *fmt, ...)
{
    pthread_mutex_lock(&d->dead_mu);
    if (!weir__load_acquire(&d->dead)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->dead_msg, sizeof d->dead_msg, fmt, ap);
        va_end(ap);
        weir__store_release(&d->dead, 1);
    }
    pthread_mutex_unlock(&d->dead_mu);
    if (who >= 0)
        weir__dag_break_around(d, who);
}

void weir__dag_break_around(struct weir_dag *d, int who)
{
    /* Through the driver's handles (the creator may close any channel and
     * deregister any id): readers of its outputs drain and get -EPIPE,
     * writers to its inputs stop waiting for it. */
    for (unsigned c = 0; c < d->plan->nchans; c++) {
        if (d->plan->chans[c].writer == who)
            weir_chan_close(d->chans[c]);
        if (d->actors[who].rid[c] >= 0)
            weir_chan_deregister_reader(d->chans[c], d->actors[who].rid[c]);
    }
}
