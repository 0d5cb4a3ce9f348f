/* SPDX-License-Identifier: MIT */
/*
 * engine/prof.c - per-dag profiling state: the shared counters of the actor
 * loop and the publisher thread that refreshes the stats segment.
 *
 * Design notes. The publisher wakes every interval_ms (WEIR_STATS_INTERVAL_MS,
 * default 250), reads the channel counters (already in the rings) and the
 * per-method counters (engine/prof.h), builds a snapshot in private memory
 * and copies it into /dev/shm/weir-stats.<pid>.<graph> under the sequence
 * lock (engine/stats_shm.c). It also turns call timing on while a reader
 * has asked for it (watch_until_ns) or WEIR_STATS_TIMING=1. WEIR_STATS=0
 * disables the segment (the counters still count). Teardown publishes a
 * last snapshot (state 1) and removes the file. Across ranks each rank's
 * process publishes its own segment: its rings, plus a record per link of
 * this rank (engine/remote.c's counters, kept past a failure).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <weir/dag.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "engine/cluster.h"
#include "engine/engine.h"
#include "engine/prof.h"
#include "engine/stats_shm.h"
#include "engine/trace.h"

struct weir__prof {
    void *map; /* shared: prof_shared, actor_ctr[nactors], method_ctr[nmethods] */
    size_t map_bytes;
    struct weir__prof_shared *sh;
    unsigned nmethods;
    struct weir__stats_hdr *seg;
    size_t seg_bytes;
    struct weir__stats_hdr *snap;
    char path[192];
    unsigned interval_ms;
    int force_timing;
    pthread_t th;
    int started;
    int stop; /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct weir__trace *trace; /* WEIR_TRACE, engine/trace.c */
};

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 0 || n > 1000000 ? dflt : (int)n;
}

int weir__prof_init(struct weir_dag *d, const char *graph)
{
    (void)graph;
    const struct weir__plan *p = d->plan;
    struct weir__prof *pr = calloc(1, sizeof *pr);
    if (!pr)
        return -ENOMEM;
    pthread_mutex_init(&pr->mu, NULL);
    pthread_cond_init(&pr->cv, NULL);
    d->prof = pr;
    for (unsigned a = 0; a < p->nactors; a++)
        pr->nmethods += p->actors[a].nmethods;
    pr->map_bytes = sizeof(struct weir__prof_shared) + p->nactors * sizeof(struct weir__actor_ctr) +
                    pr->nmethods * sizeof(struct weir__method_ctr);
    pr->map = mmap(NULL, pr->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pr->map == MAP_FAILED) {
        pr->map = NULL;
        return -ENOMEM;
    }
    pr->sh = pr->map;
    struct weir__actor_ctr *ac = (struct weir__actor_ctr *)(pr->sh + 1);
    struct weir__method_ctr *mc = (struct weir__method_ctr *)(ac + p->nactors);
    for (unsigned a = 0, m = 0; a < p->nactors; a++) {
        d->actors[a].prof_shared = pr->sh;
        d->actors[a].actr = &ac[a];
        d->actors[a].mctr = &mc[m];
        m += p->actors[a].nmethods;
    }
    pr->interval_ms = (unsigned)env_int("WEIR_STATS_INTERVAL_MS", 250);
    if (pr->interval_ms == 0)
        pr->interval_ms = 1;
    pr->force_timing = env_int("WEIR_STATS_TIMING", 0) != 0;
    int terr;
    pr->trace = weir__trace_new(d, &terr);
    if (terr)
        return terr;
    if (pr->trace && pr->interval_ms > 10)
        pr->interval_ms = 10; /* occupancy counter tracks: sample often */
    if (pr->force_timing)
        pr->sh->timing = 1;
    return 0;
}

void weir__prof_actor_start(struct actor_rt *a)
{
    if (!a->actr)
        return;
    weir__store_relaxed(&a->actr->pid, (uint32_t)getpid());
    weir__store_relaxed(&a->actr->starts, a->actr->starts + 1);
}

const char *weir__prof_path(const struct weir_dag *d)
{
    return d && d->prof && d->prof->seg ? d->prof->path : "";
}

/* Build the snapshot in pr->snap from the live counters. */
static void fill(struct weir_dag *d, int final)
{
    const struct weir__plan *p = d->plan;
    struct weir__prof *pr = d->prof;
    struct weir__stats_hdr *h = pr->snap;
    h->now_ns = weir_now_ns();
    h->snapshots++;
    h->state = final ? 1 : 0;
    h->timing = (uint32_t)__atomic_load_n(&pr->sh->timing, __ATOMIC_RELAXED);
    uint64_t submitted = UINT64_MAX, collected = UINT64_MAX;
    for (unsigned c = 0; c < p->nchans; c++) {
        struct weir__stats_chan *sc = weir__stats_chan_at(h, c);
        struct weir_chan_stats cs;
        int32_t rwho[WEIR_CHAN_MAX_READERS];
        int remote = 0;
        if (!d->chans[c]) {
            /* rank 0: a ring of another rank, as it last reported it */
            if (weir__remote_chan_stats(d, c, &cs, rwho) < 0)
                continue;
            remote = 1;
        } else if (weir_chan_stats(d->chans[c], &cs) < 0) {
            continue;
        }
        sc->closed = (uint32_t)cs.closed;
        sc->messages = cs.messages;
        sc->bytes = cs.bytes;
        sc->errors = cs.errors;
        sc->writer_blocked_ns = cs.writer_blocked_ns;
        sc->slot_bytes = cs.slot_bytes;
        sc->grows = cs.grows;
        sc->depth = cs.depth;
        unsigned nr = cs.nreaders < WEIR__STATS_MAX_READERS ? cs.nreaders : WEIR__STATS_MAX_READERS;
        uint64_t slowest = cs.messages;
        for (unsigned r = 0; r < nr; r++) {
            struct weir__stats_reader *sr = &sc->readers[r];
            int id = cs.readers[r].id;
            sr->who = -2; /* not one of the plan's readers (a tool's, a link's) */
            if (remote) {
                sr->who = rwho[r] == -1 ? WEIR__STATS_DRIVER : rwho[r];
            } else {
                if (d->drv_rid[c] == id)
                    sr->who = WEIR__STATS_DRIVER;
                for (unsigned a = 0; a < p->nactors; a++)
                    if (d->actors[a].rid[c] == id)
                        sr->who = (int32_t)a;
            }
            sr->pid = (uint32_t)cs.readers[r].pid;
            sr->consumed = cs.readers[r].consumed;
            sr->starved_ns = cs.readers[r].starved_ns;
            if (sr->consumed < slowest)
                slowest = sr->consumed;
            if (sr->who == WEIR__STATS_DRIVER && sr->consumed < collected)
                collected = sr->consumed;
        }
        sc->nreaders = nr;
        sc->occupancy = cs.messages - slowest;
        if (p->chans[c].writer == WEIR__PLAN_DRIVER && cs.messages < submitted)
            submitted = cs.messages;
    }
    /* This rank's links, then (rank 0) the other ranks' as they reported them. */
    unsigned l = 0;
    for (int rem = 0; rem < 2; rem++)
        for (unsigned c = 0; c < p->nchans && l < h->nlinks; c++) {
            unsigned m = rem ? weir__remote_rlinks(d, c) : weir__remote_nlinks(d, c);
            for (unsigned k = 0; k < m && l < h->nlinks; k++, l++) {
                struct weir_dag_link_stats ls;
                struct weir__stats_link *sl = weir__stats_link_at(h, l);
                if ((rem ? weir__remote_rlink_stats(d, c, k, &ls)
                         : weir__remote_link_stats(d, c, k, &ls)) < 0) {
                    /* not reported yet: name it, counters zero */
                    sl->chan = c;
                    sl->rank = -1;
                    continue;
                }
                sl->chan = c;
                sl->rank = ls.rank;
                sl->peer_rank = ls.peer_rank;
                sl->sending = (uint32_t)ls.sending;
                sl->status = ls.status;
                sl->conn_streams = ls.conn_streams;
                sl->messages = ls.messages;
                sl->bytes = ls.bytes;
                sl->acked = ls.acked;
                sl->credit_stalls = ls.credit_stalls;
                sl->frames = ls.frames;
                sl->batches = ls.batches;
                sl->reconnects = ls.reconnects;
                sl->last_rtt_ns = ls.last_rtt_ns;
                sl->stream_frames = ls.stream_frames;
                sl->stream_batches = ls.stream_batches;
                snprintf(sl->peer, sizeof sl->peer, "%s", ls.peer);
            }
        }
    h->executions = submitted == UINT64_MAX ? 0 : submitted;
    h->collected = collected == UINT64_MAX ? 0 : collected;
    for (unsigned a = 0, m0 = 0; a < p->nactors; a++) {
        struct actor_rt *ar = &d->actors[a];
        struct weir__stats_actor *sa = weir__stats_actor_at(h, a);
        sa->rank = ar->pa->node;
        if (ar->pa->node != d->rank) {
            /* rank 0: another rank's actor, as it last reported it (else zeros) */
            struct weir__cluster_actor_stat r;
            int have = weir__remote_actor_stats(d, a, &r) == 0;
            sa->pid = have ? (uint32_t)r.pid : 0;
            sa->restarts = have ? r.restarts : 0;
            sa->input_starved_ns = have ? r.input_starved_ns : 0;
            sa->output_blocked_ns = have ? r.output_blocked_ns : 0;
            sa->report_ns = have ? r.at_ns : 0;
            sa->calls = sa->busy_ns = 0;
            for (unsigned k = 0; k < ar->pa->nmethods; k++) {
                struct weir__stats_method *sm = weir__stats_method_at(h, m0 + k);
                int in = have && k < r.nmethods;
                sm->calls = in ? r.methods[k].calls : 0;
                sm->errors = in ? r.methods[k].errors : 0;
                sm->busy_ns = in ? r.methods[k].busy_ns : 0;
                sa->calls += sm->calls;
                sa->busy_ns += sm->busy_ns;
            }
            m0 += ar->pa->nmethods;
            continue;
        }
        sa->pid = weir__load_relaxed(&ar->actr->pid);
        uint32_t starts = weir__load_relaxed(&ar->actr->starts);
        sa->restarts = starts ? starts - 1 : 0;
        sa->calls = sa->busy_ns = sa->input_starved_ns = sa->output_blocked_ns = 0;
        for (unsigned k = 0; k < ar->pa->nmethods; k++) {
            struct weir__stats_method *sm = weir__stats_method_at(h, m0 + k);
            sm->calls = weir__load_relaxed(&ar->mctr[k].calls);
            sm->errors = weir__load_relaxed(&ar->mctr[k].errors);
            sm->busy_ns = weir__load_relaxed(&ar->mctr[k].busy_ns);
            sa->calls += sm->calls;
            sa->busy_ns += sm->busy_ns;
        }
        m0 += ar->pa->nmethods;
        /* A fused actor waits when its worker does: count its lead's channels. */
        int32_t run = (int32_t)ar->runner;
        for (unsigned c = 0; c < p->nchans; c++) {
            struct weir__stats_chan *sc = weir__stats_chan_at(h, c);
            if (!d->chans[c])
                continue; /* another rank's ring (rank 0): its actors' waits are theirs */
            if (p->chans[c].writer == run)
                sa->output_blocked_ns += sc->writer_blocked_ns;
            for (unsigned r = 0; r < sc->nreaders; r++)
                if (sc->readers[r].who == run)
                    sa->input_starved_ns += sc->readers[r].starved_ns;
        }
    }
}

static void *publisher_main(void *arg)
{
    struct weir_dag *d = arg;
    struct weir__prof *pr = d->prof;
    pthread_setname_np(pthread_self(), "weir:stats");
    pthread_mutex_lock(&pr->mu);
    while (!pr->stop) {
        pthread_mutex_unlock(&pr->mu);
        uint64_t watch = weir__load_relaxed(&pr->seg->watch_until_ns);
        int want = pr->force_timing || weir_now_ns() < watch;
        __atomic_store_n(&pr->sh->timing, want, __ATOMIC_RELAXED);
        fill(d, 0);
        weir__stats_publish(pr->seg, pr->snap, pr->seg_bytes);
        if (pr->trace) {
            unsigned nc = pr->snap->nchans;
            uint64_t occ[nc ? nc : 1];
            for (unsigned c = 0; c < nc; c++)
                occ[c] = weir__stats_chan_at(pr->snap, c)->occupancy;
            weir__trace_sample(pr->trace, pr->snap->now_ns, nc, occ);
        }
        pthread_mutex_lock(&pr->mu);
        if (pr->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)pr->interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&pr->cv, &pr->mu, &ts);
    }
    pthread_mutex_unlock(&pr->mu);
    return NULL;
}

void weir__prof_start(struct weir_dag *d)
{
    struct weir__prof *pr = d->prof;
    const struct weir__plan *p = d->plan;
    if (!pr || env_int("WEIR_STATS", 1) == 0)
        return;
    unsigned nlinks = 0;
    for (unsigned c = 0; c < p->nchans; c++)
        nlinks += weir__remote_nlinks(d, c) + weir__remote_rlinks(d, c);
    size_t bytes = weir__stats_bytes(p->nchans, p->nactors, pr->nmethods, nlinks);
    pr->snap = calloc(1, bytes);
    if (!pr->snap)
        return;
    struct weir__stats_hdr *h = pr->snap;
    h->magic = WEIR__STATS_MAGIC;
    h->version = WEIR__STATS_VERSION;
    h->hdr_bytes = sizeof(struct weir__stats_hdr);
    h->chan_bytes = sizeof(struct weir__stats_chan);
    h->actor_bytes = sizeof(struct weir__stats_actor);
    h->method_bytes = sizeof(struct weir__stats_method);
    h->nchans = p->nchans;
    h->nactors = p->nactors;
    h->nmethods = pr->nmethods;
    h->nlinks = nlinks;
    h->link_bytes = sizeof(struct weir__stats_link);
    h->rank = d->rank;
    h->world = (uint32_t)weir__remote_size(d->remote);
    h->pid = (uint32_t)getpid();
    cpu_set_t set;
    h->ncpus = sched_getaffinity(0, sizeof set, &set) == 0 ? (uint32_t)CPU_COUNT(&set)
                                                             : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
    h->interval_ms = pr->interval_ms;
    h->start_ns = weir_now_ns();
    snprintf(h->graph, sizeof h->graph, "%s", p->graph);
    snprintf(h->comm, sizeof h->comm, "%s", program_invocation_short_name);
    for (unsigned c = 0; c < p->nchans; c++) {
        struct weir__stats_chan *sc = weir__stats_chan_at(h, c);
        snprintf(sc->name, sizeof sc->name, "%s", p->chans[c].name);
        /* The actor whose call produces it (a fused one too), as weir_dag_chan_writer. */
        const struct weir__plan_chan *pc = &p->chans[c];
        sc->writer = pc->writer == WEIR__PLAN_DRIVER
                         ? WEIR__PLAN_DRIVER
                         : (int32_t)p->actors[pc->writer].ops[pc->src_index].actor;
    }
    for (unsigned a = 0, m0 = 0; a < p->nactors; a++) {
        const struct weir__plan_actor *pa = &p->actors[a];
        struct weir__stats_actor *sa = weir__stats_actor_at(h, a);
        snprintf(sa->name, sizeof sa->name, "%s", pa->name);
        sa->isolation = (uint32_t)pa->isolation;
        sa->nmethods = pa->nmethods;
        sa->method0 = m0;
        for (unsigned k = 0; k < pa->nmethods; k++, m0++) {
            struct weir__stats_method *sm = weir__stats_method_at(h, m0);
            snprintf(sm->name, sizeof sm->name, "%s", pa->methods[k].name);
            sm->actor = a;
        }
    }
    /* The segment is optional: a failure leaves the dag running without it. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", weir_errmsg());
    int code = weir_errcode();
    pr->seg = weir__stats_create(h, &pr->seg_bytes, pr->path, sizeof pr->path);
    if (pr->seg) {
        /* Identity was copied by create; names travel in every snapshot. */
        fill(d, 0);
        weir__stats_publish(pr->seg, pr->snap, pr->seg_bytes);
        if (pthread_create(&pr->th, NULL, publisher_main, d) == 0)
            pr->started = 1;
    }
    weir__seterr(code, "%s", msg);
    if (!code)
        weir__clearerr();
}

void weir__prof_stop(struct weir_dag *d)
{
    struct weir__prof *pr = d->prof;
    if (!pr)
        return;
    if (pr->started) {
        pthread_mutex_lock(&pr->mu);
        pr->stop = 1;
        pthread_cond_signal(&pr->cv);
        pthread_mutex_unlock(&pr->mu);
        pthread_join(pr->th, NULL);
        pr->started = 0;
    }
    if (pr->seg) {
        fill(d, 1);
        weir__stats_publish(pr->seg, pr->snap, pr->seg_bytes);
        munmap(pr->seg, pr->seg_bytes);
        pr->seg = NULL;
        unlink(pr->path);
    }
    weir__trace_write(pr->trace, d);
}

void weir__prof_forget(struct weir_dag *d)
{
    struct weir__prof *pr = d->prof;
    if (!pr)
        return;
    if (pr->seg)
        munmap(pr->seg, pr->seg_bytes);
    pr->seg = NULL;
    if (pr->map)
        munmap(pr->map, pr->map_bytes);
    pr->map = NULL;
    weir__trace_forget(pr->trace);
}

void weir__prof_free(struct weir_dag *d)
{
    struct weir__prof *pr = d->prof;
    if (!pr)
        return;
    if (pr->map)
        munmap(pr->map, pr->map_bytes);
    free(pr->snap);
    weir__trace_free(pr->trace);
    pthread_mutex_destroy(&pr->mu);
    pthread_cond_destroy(&pr->cv);
    free(pr);
    d->prof = NULL;
}
