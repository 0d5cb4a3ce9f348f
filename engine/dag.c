/* SPDX-License-Identifier: MIT */
/*
 * engine/dag.c - compiling and running a dag: start, the driver, teardown.
 *
 * Design notes.
 *
 * Start. weir_compile lowers and checks the plan, creates every channel
 * (anonymous memfd segments) and registers every reader, then forks the
 * WEIR_PROCESS actors (engine/proc.c) before it starts any thread of its
 * own, then the process monitor, then one thread per WEIR_THREAD actor
 * (engine/actor.c).
 *
 * Driver. submit reserves a slot in every argument channel before it
 * commits any (so a timeout never publishes half an execution), and keeps
 * at most max_inflight executions unfinished: past that it first reads the
 * oldest execution's outputs into the buffer of finished results.
 * wait(id) returns a buffered result or reads forward until id is done.
 *
 * Death. When an actor process dies or an actor cannot start, the dag is
 * marked dead (weir__dag_mark_dead) and the pipeline is broken around the
 * actor: its outputs are closed and its readers deregistered. Every
 * pending execution then fails with -EPIPE and the death's description as
 * soon as the close reaches the driver, and every later submit fails at
 * once. Results finished before the death are still returned.
 *
 * Teardown. The driver deregisters from the output channels (writers stop
 * waiting for it) and closes the argument channels; each actor drains what
 * is in flight, gets -EPIPE on its next READ, closes its output channels
 * and deregisters its readers, so closing cascades down the graph and
 * unblocks every writer. The driver joins each thread until the dag's
 * timeout. A thread still inside a method then is named in the error and
 * detached; the dag is reference counted (driver + one per thread) so the
 * memory such a thread can touch is freed by whoever leaves last. Actor
 * processes still running at the deadline are killed and reaped.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <weir/dag.h>

#include "channels/chan_internal.h"
#include "channels/err.h"
#include "compiler/compile.h"
#include "dag/graph_internal.h"
#include "channels/probes.h"
#include "engine/engine.h"
#include "engine/prof.h"

/* ---- compile / start / teardown ----------------------------------------- */

void weir__dag_destroy(struct weir_dag *d);
void weir__dag_destroy(struct weir_dag *d)
{
    const struct weir__plan *p = d->plan;
    if (d->actors && p) {
        for (unsigned a = 0; a < p->nactors; a++) {
            struct actor_rt *ar = &d->actors[a];
            if (ar->regs)
                for (unsigned r = 0; r < ar->pa->nregs; r++) {
                    free(ar->regs[r].buf);
                    free(ar->regs[r].errtext);
                }
            free(ar->regs);
            free(ar->rid);
            free(ar->reg_chan);
            free(ar->fns);
        }
    }
    if (d->chans && p)
        for (unsigned c = 0; c < p->nchans; c++)
            weir_chan_free(d->chans[c]);
    for (unsigned i = 0; i < d->nready; i++)
        weir__result_free(d->ready[i]);
    free(d->held);
    if (d->actors && p)
        for (unsigned a = 0; a < p->nactors; a++)
            if (d->actors[a].pidfd >= 0)
                close(d->actors[a].pidfd);
    if (d->notes)
        munmap(d->notes, d->notes_bytes);
    weir__prof_free(d);
    if (d->mon_efd >= 0)
        close(d->mon_efd);
    if (d->exit_efd >= 0)
        close(d->exit_efd);
    pthread_mutex_destroy(&d->dead_mu);
    free(d->ready);
    free(d->abandoned);
    free(d->actors);
    free(d->chans);
    free(d->drv_rid);
    free(d->argch);
    free(d->outch);
    pthread_mutex_destroy(&d->mu);
    weir__plan_free(d->plan);
    free(d);
}

/* Build the runtime for plan p (owned by the dag from here on) with g's functions. */
static struct weir_dag *dag_start(struct weir__plan *p, const weir_graph *g)
{
    struct weir_dag *d = calloc(1, sizeof *d);
    if (!d) {
        weir__plan_free(p);
        weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->dead_mu, NULL);
    d->mon_efd = -1;
    d->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->plan = p;
    d->refs = 1;
    d->timeout_ms = p->timeout_ms;
    unsigned nch = p->nchans;
    d->chans = calloc(nch ? nch : 1, sizeof *d->chans);
    d->drv_rid = malloc((nch ? nch : 1) * sizeof *d->drv_rid);
    d->argch = malloc((nch ? nch : 1) * sizeof *d->argch);
    d->outch = malloc((p->nouts ? p->nouts : 1) * sizeof *d->outch);
    d->held = calloc(p->nouts ? p->nouts : 1, sizeof *d->held);
    d->actors = calloc(p->nactors ? p->nactors : 1, sizeof *d->actors);
    if (!d->chans || !d->drv_rid || !d->argch || !d->outch || !d->held || !d->actors ||
        d->exit_efd < 0)
        goto oom;
    /* Actor notes are shared with actor processes: map them before any fork. */
    d->notes_bytes = (p->nactors ? p->nactors : 1) * sizeof *d->notes;
    d->notes = mmap(NULL, d->notes_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                    0);
    if (d->notes == MAP_FAILED) {
        d->notes = NULL;
        goto oom;
    }
    for (unsigned a = 0; a < p->nactors; a++)
        d->actors[a].pidfd = -1;
    for (unsigned a = 0; a < p->nactors; a++) {
        struct actor_rt *ar = &d->actors[a];
        ar->d = d;
        ar->idx = a;
        ar->pa = &p->actors[a];
        ar->state = g->actors[a]->opts.state;
        ar->init = g->actors[a]->opts.init;
        ar->max_restarts = g->actors[a]->opts.max_restarts;
        ar->fini = g->actors[a]->opts.fini;
        ar->note = &d->notes[a];
        ar->fns = malloc((ar->pa->nmethods ? ar->pa->nmethods : 1) * sizeof *ar->fns);
        ar->regs = calloc(ar->pa->nregs ? ar->pa->nregs : 1, sizeof *ar->regs);
        ar->rid = malloc((nch ? nch : 1) * sizeof *ar->rid);
        ar->reg_chan = malloc((ar->pa->nregs ? ar->pa->nregs : 1) * sizeof *ar->reg_chan);
        if (!ar->fns || !ar->regs || !ar->rid || !ar->reg_chan)
            goto oom;
        for (unsigned m = 0; m < ar->pa->nmethods; m++)
            ar->fns[m] = g->actors[a]->methods[m].fn;
        for (unsigned c = 0; c < nch; c++)
            ar->rid[c] = -1;
        for (unsigned r = 0; r < ar->pa->nregs; r++)
            ar->reg_chan[r] = -1;
        for (unsigned i = 0; i < ar->pa->nops; i++)
            if (ar->pa->ops[i].kind == WEIR__OP_WRITE)
                ar->reg_chan[ar->pa->ops[i].reg] = (int)ar->pa->ops[i].chan;
    }
    if (weir__prof_init(d, p->graph) < 0)
        goto oom;
    for (unsigned c = 0; c < nch; c++) {
        const struct weir__plan_chan *pc = &p->chans[c];
        d->drv_rid[c] = -1;
        weir_chan_opts co = {.slot_bytes = pc->slot_bytes, .depth = pc->depth,
                             .max_readers = pc->nreaders};
        d->chans[c] = weir_chan_create(NULL, &co);
        if (!d->chans[c]) {
            char why[512];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            weir__seterr(weir_errcode(), "graph '%s': channel '%s': %s", p->graph, pc->name, why);
            goto fail;
        }
        weir__chan_set_label(d->chans[c], pc->name);
        if (pc->writer == WEIR__PLAN_DRIVER)
            d->argch[d->nargch++] = c;
        for (unsigned r = 0; r < pc->nreaders; r++) {
            int id = weir_chan_register_reader(d->chans[c]);
            if (id < 0)
                goto fail;
            if (pc->readers[r] == WEIR__PLAN_DRIVER)
                d->drv_rid[c] = id;
            else
                d->actors[pc->readers[r]].rid[c] = id;
        }
    }
    for (unsigned i = 0; i < p->nouts; i++) {
        unsigned k;
        for (k = 0; k < d->noutch; k++)
            if (d->outch[k] == p->outputs[i])
                break;
        if (k == d->noutch)
            d->outch[d->noutch++] = p->outputs[i];
    }
    /* Process actors first: fork before this dag starts any thread. */
    for (unsigned a = 0; a < p->nactors; a++) {
        if (d->actors[a].pa->isolation != WEIR_PROCESS)
            continue;
        if (weir__proc_start(d, &d->actors[a]) < 0)
            goto fail;
        d->nproc++;
    }
    if (d->nproc && weir__proc_monitor_start(d) < 0)
        goto fail;
    for (unsigned a = 0; a < p->nactors; a++) {
        struct actor_rt *ar = &d->actors[a];
        if (ar->pa->isolation == WEIR_PROCESS)
            continue;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (ar->pa->cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(ar->pa->cpu, &set);
            pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        }
        __atomic_add_fetch(&d->refs, 1, __ATOMIC_ACQ_REL);
        int rc = pthread_create(&ar->th, &attr, weir__actor_thread_main, ar);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL);
            weir__seterr(-rc, "actor '%s': cannot start its thread%s: %s", ar->pa->name,
                         ar->pa->cpu >= 0 ? " pinned to its CPU" : "", strerror(rc));
            goto fail;
        }
        ar->started = 1;
    }
    weir__prof_start(d);
    return d;
oom:
    weir__seterr(-ENOMEM, "graph '%s': out of memory starting the dag", p->graph);
fail:;
    int code = weir_errcode();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", weir_errmsg());
    /* No execution exists yet: close every channel so the actors already
     * started leave at once (the normal teardown only closes the arguments
     * and relies on every actor to pass the close on). */
    if (d->chans)
        for (unsigned c = 0; c < p->nchans; c++)
            if (d->chans[c])
                weir_chan_close(d->chans[c]);
    weir_dag_free(d);
    weir__seterr(code, "%s", msg);
    return NULL;
}

static int cpu_usable(int cpu)
{
    cpu_set_t set;
    if (cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof set, &set) < 0)
        return 0;
    return CPU_ISSET(cpu, &set) != 0;
}

WEIR_API weir_dag *weir_compile(weir_graph *g, const weir_compile_opts *opts)
{
    weir__clearerr();
    if (!g) {
        weir__seterr(-EINVAL, "weir_compile: NULL graph");
        return NULL;
    }
    for (unsigned a = 0; a < g->nactors; a++) {
        const weir_actor *ac = g->actors[a];
        if (ac->opts.max_restarts > 0 && ac->opts.isolation != WEIR_PROCESS) {
            weir__seterr(-EINVAL, "actor '%s': max_restarts %u needs WEIR_PROCESS isolation (a "
                         "thread cannot be restarted)", ac->name, ac->opts.max_restarts);
            return NULL;
        }
        if (ac->opts.cpu < -1 || (ac->opts.cpu >= 0 && !cpu_usable(ac->opts.cpu))) {
            weir__seterr(-EINVAL, "actor '%s': cpu %d is not one this process may run on "
                         "(-1 for no pinning)", ac->name, ac->opts.cpu);
            return NULL;
        }
        if (ac->opts.node != 0) {
            weir__seterr(-ENOSYS, "actor '%s': node %d: multi-node graphs are not implemented "
                         "yet (only node 0)", ac->name, ac->opts.node);
            return NULL;
        }
    }
    struct weir__plan *p = NULL;
    if (weir__compile_plan(g, opts, &p) < 0)
        return NULL;
    if (weir__plan_validate(p) < 0 || weir__plan_deadlock_check(p) < 0) {
        weir__plan_free(p);
        return NULL;
    }
    weir_dag *d = dag_start(p, g);
    if (d)
        g->frozen = true; /* only a dag that runs freezes its graph */
    return d;
}

static struct weir__deadline deadline_of(int timeout_ms)
{
    return (struct weir__deadline){timeout_ms, 0};
}

/* Milliseconds left (rounded up), reading the clock only on first need; -1: none. */
static int deadline_ms(struct weir__deadline *dl)
{
    if (dl->timeout_ms <= 0)
        return dl->timeout_ms < 0 ? -1 : 0;
    uint64_t now = weir_now_ns();
    if (!dl->at)
        dl->at = now + (uint64_t)dl->timeout_ms * 1000000ull;
    if (now >= dl->at)
        return 0;
    uint64_t ms = (dl->at - now + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/*
 * Wait until every actor thread has left and every actor process has exited,
 * or until the deadline. Waits on the thread-exit eventfd and the pidfds, no
 * sleeping loop. Returns how many are still running.
 */
static unsigned wait_actors(struct weir_dag *d, uint64_t deadline, int threads_only)
{
    const struct weir__plan *p = d->plan;
    struct pollfd *pf = calloc(p->nactors + 1, sizeof *pf);
    unsigned pending;
    for (;;) {
        unsigned n = 0;
        pending = 0;
        if (pf && d->exit_efd >= 0)
            pf[n++] = (struct pollfd){.fd = d->exit_efd, .events = POLLIN};
        for (unsigned i = 0; i < p->nactors; i++) {
            struct actor_rt *a = &d->actors[i];
            if (a->started && !a->joined) {
                if (__atomic_load_n(&a->exited, __ATOMIC_ACQUIRE)) {
                    pthread_join(a->th, NULL); /* it is returning: prompt */
                    a->joined = 1;
                } else {
                    pending++;
                }
            }
            if (threads_only || a->pidfd < 0 || __atomic_load_n(&a->reaped, __ATOMIC_ACQUIRE))
                continue;
            struct pollfd one = {.fd = a->pidfd, .events = POLLIN};
            if (poll(&one, 1, 0) > 0)
                continue;
            pending++;
            if (pf)
                pf[n++] = one;
        }
        uint64_t now = weir_now_ns();
        if (!pending || now >= deadline || !pf)
            break;
        int ms = (int)((deadline - now + 999999) / 1000000);
        if (poll(pf, n, ms) > 0 && d->exit_efd >= 0 && (pf[0].revents & POLLIN)) {
            uint64_t v;
            if (read(d->exit_efd, &v, sizeof v) < 0) {
                /* non-blocking and drained by a racing wake-up: fine */
            }
        }
    }
    free(pf);
    return pending;
}

WEIR_API int weir_dag_free(weir_dag *d)
{
    if (!d)
        return 0;
    weir__clearerr();
    pthread_mutex_lock(&d->mu);
    /* Under dead_mu: a restart in progress finishes first, none starts after. */
    pthread_mutex_lock(&d->dead_mu);
    __atomic_store_n(&d->tearing_down, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->dead_mu);
    const struct weir__plan *p = d->plan;
    if (d->chans) {
        for (unsigned c = 0; c < p->nchans; c++)
            if (d->chans[c] && d->drv_rid && d->drv_rid[c] >= 0)
                weir_chan_deregister_reader(d->chans[c], d->drv_rid[c]);
        for (unsigned k = 0; k < d->nargch; k++)
            weir_chan_close(d->chans[d->argch[k]]);
    }
    int tmo = d->timeout_ms < 0 ? WEIR_DEFAULT_TIMEOUT_MS : d->timeout_ms;
    char msg[1024] = "";
    int len = 0, stuck = 0;
    /* 1. Everyone drains and leaves through the close cascade, until the deadline. */
    uint64_t deadline = weir_now_ns() + (uint64_t)tmo * 1000000ull;
    unsigned pending = d->actors ? wait_actors(d, deadline, 0) : 0;
    /* 2. Past it: kill the processes still running and break the pipeline around
     *    them, then give the threads that waited on them a moment to leave. */
    if (pending && d->nproc)
        stuck += weir__proc_stop_all(d, msg, sizeof msg, &len);
    if (pending && d->actors)
        wait_actors(d, weir_now_ns() + 200000000ull, 1);
    /* 3. Threads still running are stuck: name them and let them go. */
    if (d->actors)
        for (unsigned a = 0; a < p->nactors; a++) {
            struct actor_rt *ar = &d->actors[a];
            if (!ar->started || ar->joined)
                continue;
            pthread_detach(ar->th);
            stuck++;
            char what[160];
            weir__note_describe(ar, what, sizeof what);
            if (len < (int)sizeof msg)
                len += snprintf(msg + len, sizeof msg - (size_t)len, "%sactor '%s' is stuck %s",
                                len > 0 ? "; " : "", ar->pa->name, what);
        }
    if (d->monitor_started)
        weir__proc_monitor_stop(d);
    if (d->nproc)
        weir__proc_reap_remaining(d);
    weir__prof_stop(d);
    char graph[WEIR_MAX_NAME + 1];
    snprintf(graph, sizeof graph, "%s", p ? p->graph : "?");
    pthread_mutex_unlock(&d->mu);
    weir__dag_unref(d);
    if (stuck)
        return weir__seterr(-ETIMEDOUT,
                            "graph '%s': teardown timed out after %d ms: %s (threads are left "
                            "running detached and freed when they return; processes are killed)",
                            graph, tmo, msg);
    return 0;
}

/* ---- driver ------------------------------------------------------------- */

static int is_abandoned(struct weir_dag *d, uint64_t e, int remove)
{
    for (unsigned i = 0; i < d->nabandoned; i++)
        if (d->abandoned[i] == e) {
            if (remove)
                d->abandoned[i] = d->abandoned[--d->nabandoned];
            return 1;
        }
    return 0;
}

/* Read (the rest of) the outputs of execution next_collect. */
/* Read (the rest of) the outputs of execution next_collect into a new ready result. */
static int collect_one(struct weir_dag *d, struct weir__deadline *dl)
{
    const struct weir__plan *p = d->plan;
    uint64_t e = d->next_collect;
    /* 1. Hold this execution's message on every output channel. */
    while (d->partial_k < d->noutch) {
        unsigned c = d->outch[d->partial_k];
        weir_chan_msg *m = &d->held[d->partial_k];
        int rc = weir_chan_read_msg(d->chans[c], d->drv_rid[c], m,
                                    weir__chan_can_read(d->chans[c], d->drv_rid[c])
                                        ? 0
                                        : deadline_ms(dl));
        if (rc < 0) {
            if (rc == -EPIPE && __atomic_load_n(&d->dead, __ATOMIC_ACQUIRE))
                return weir__seterr(-EPIPE, "graph '%s': execution %llu failed: %s", p->graph,
                                    (unsigned long long)e, d->dead_msg);
            if (rc == -ETIMEDOUT)
                return weir__seterr(-ETIMEDOUT,
                                    "graph '%s': execution %llu not finished in time (waiting "
                                    "for channel '%s')",
                                    p->graph, (unsigned long long)e, p->chans[c].name);
            return rc;
        }
        if (m->seq != e) {
            weir_chan_release(d->chans[c], d->drv_rid[c]);
            return weir__seterr(-EPROTO,
                                "graph '%s': channel '%s' delivered message %llu for execution "
                                "%llu",
                                p->graph, p->chans[c].name, (unsigned long long)m->seq,
                                (unsigned long long)e);
        }
        d->partial_k++;
    }
    /* 2. Copy them into one block, then release them all. */
    size_t bytes = sizeof(struct weir_result) + p->nouts * sizeof(((struct weir_result *)0)->outs[0]);
    int err = -1;
    for (unsigned k = 0; k < d->noutch; k++) {
        if ((d->held[k].flags & WEIR_MSG_ERROR) && err < 0)
            err = (int)k;
        for (unsigned i = 0; i < p->nouts; i++)
            if (p->outputs[i] == d->outch[k])
                bytes += (d->held[k].len + 15) & ~(size_t)15;
    }
    if (err >= 0)
        bytes += d->held[err].len + 1;
    struct weir_result *r = weir__result_alloc(bytes);
    if (!r)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory for a result of %zu bytes",
                            p->graph, bytes);
    r->exec = e;
    r->n = p->nouts;
    r->err = err >= 0;
    r->errtext = NULL;
    r->outs = (void *)(r + 1);
    char *data = (char *)(r->outs + p->nouts);
    for (unsigned i = 0; i < p->nouts; i++) {
        unsigned k = 0;
        while (d->outch[k] != p->outputs[i])
            k++;
        const weir_chan_msg *m = &d->held[k];
        r->outs[i].len = (m->flags & WEIR_MSG_ERROR) ? 0 : m->len;
        r->outs[i].data = data;
        if (r->outs[i].len)
            memcpy(data, m->data, m->len);
        data += (r->outs[i].len + 15) & ~(size_t)15;
    }
    if (err >= 0) {
        r->errtext = data;
        memcpy(data, d->held[err].data, d->held[err].len);
        data[d->held[err].len] = '\0';
    }
    for (unsigned k = 0; k < d->noutch; k++)
        weir_chan_release(d->chans[d->outch[k]], d->drv_rid[d->outch[k]]);
    d->partial_k = 0;
    d->next_collect++;
    WEIR_PROBE3(execution_done, p->graph, e, err >= 0);
    if (is_abandoned(d, e, 1)) {
        weir__result_free(r);
        return 0;
    }
    if (d->nready == d->capready) {
        unsigned nc = d->capready ? d->capready * 2 : 16;
        struct weir_result **nr = realloc(d->ready, nc * sizeof *nr);
        if (!nr) {
            weir__result_free(r);
            return weir__seterr(-ENOMEM, "graph '%s': out of memory for a result", p->graph);
        }
        d->ready = nr;
        d->capready = nc;
    }
    d->ready[d->nready++] = r;
    return 0;
}

static int submit_locked(struct weir_dag *d, const weir_buf *args, unsigned nargs,
                         uint64_t *exec_id, struct weir__deadline *dl)
{
    const struct weir__plan *p = d->plan;
    if (__atomic_load_n(&d->dead, __ATOMIC_ACQUIRE))
        return weir__seterr(-EPIPE, "graph '%s': cannot submit: %s", p->graph, d->dead_msg);
    if (nargs != p->nargs || (nargs && !args))
        return weir__seterr(-EINVAL, "graph '%s': an execution takes %u argument%s, got %u",
                            p->graph, p->nargs, p->nargs == 1 ? "" : "s", nargs);
    if (d->next_submit - d->next_collect >= p->max_inflight) {
        if (d->nready >= p->max_buffered)
            return weir__seterr(-ENOBUFS,
                                "graph '%s': %u finished results are waiting to be collected "
                                "with weir_wait (max_buffered %u)",
                                p->graph, d->nready, p->max_buffered);
        int rc = collect_one(d, dl);
        if (rc < 0)
            return rc;
    }
    /* Reserve every argument channel before committing any. */
    unsigned k;
    void *dst[d->nargch ? d->nargch : 1];
    for (k = 0; k < d->nargch; k++) {
        const struct weir__plan_chan *pc = &p->chans[d->argch[k]];
        const weir_buf *b = &args[pc->src_index];
        weir_chan *ch = d->chans[d->argch[k]];
        dst[k] = weir_chan_reserve(ch, b->len, weir__chan_can_reserve(ch, b->len) ? 0 : deadline_ms(dl));
        if (!dst[k])
            break;
    }
    if (k < d->nargch) {
        int rc = weir_errcode();
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        while (k-- > 0)
            weir__chan_unreserve(d->chans[d->argch[k]]);
        return weir__seterr(rc, "graph '%s': submit: %s", p->graph, why);
    }
    for (k = 0; k < d->nargch; k++) {
        const weir_buf *b = &args[p->chans[d->argch[k]].src_index];
        if (b->len)
            memcpy(dst[k], b->data, b->len);
        weir_chan_commit(d->chans[d->argch[k]], b->len);
    }
    *exec_id = d->next_submit++;
    WEIR_PROBE2(execution_submit, p->graph, *exec_id);
    return 0;
}

WEIR_API int weir_submit(weir_dag *d, const weir_buf *args, unsigned nargs, uint64_t *exec_id,
                         int timeout_ms)
{
    weir__clearerr();
    if (!d || !exec_id)
        return weir__seterr(-EINVAL, "weir_submit: NULL dag or exec_id");
    pthread_mutex_lock(&d->mu);
    struct weir__deadline dl = deadline_of(timeout_ms);
    int rc = submit_locked(d, args, nargs, exec_id, &dl);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int wait_locked(struct weir_dag *d, uint64_t id, weir_result **res,
                       struct weir__deadline *dl)
{
    const struct weir__plan *p = d->plan;
    if (id >= d->next_submit)
        return weir__seterr(-ENOENT, "graph '%s': execution %llu was never submitted", p->graph,
                            (unsigned long long)id);
    for (;;) {
        for (unsigned i = 0; i < d->nready; i++) {
            if (d->ready[i]->exec != id)
                continue;
            struct weir_result *r = d->ready[i];
            memmove(&d->ready[i], &d->ready[i + 1], (d->nready - i - 1) * sizeof *d->ready);
            d->nready--;
            if (r->err) {
                int rc = weir__seterr(-EREMOTEIO, "%s", r->errtext ? r->errtext : "error");
                weir__result_free(r);
                return rc;
            }
            *res = r;
            return 0;
        }
        if (id < d->next_collect || is_abandoned(d, id, 0))
            return weir__seterr(-ENOENT,
                                "graph '%s': execution %llu was already collected or discarded",
                                p->graph, (unsigned long long)id);
        int rc = collect_one(d, dl);
        if (rc < 0)
            return rc;
    }
}

WEIR_API int weir_wait(weir_dag *d, uint64_t exec_id, weir_result **res, int timeout_ms)
{
    weir__clearerr();
    if (!d || !res)
        return weir__seterr(-EINVAL, "weir_wait: NULL dag or result pointer");
    *res = NULL;
    pthread_mutex_lock(&d->mu);
    struct weir__deadline dl = deadline_of(timeout_ms);
    int rc = wait_locked(d, exec_id, res, &dl);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

WEIR_API int weir_execute(weir_dag *d, const weir_buf *args, unsigned nargs, weir_result **res,
                          int timeout_ms)
{
    weir__clearerr();
    if (!d || !res)
        return weir__seterr(-EINVAL, "weir_execute: NULL dag or result pointer");
    *res = NULL;
    struct weir__deadline dl = deadline_of(timeout_ms);
    uint64_t id;
    pthread_mutex_lock(&d->mu);
    int rc = submit_locked(d, args, nargs, &id, &dl);
    if (rc == 0) {
        rc = wait_locked(d, id, res, &dl);
        if (rc < 0 && rc != -EREMOTEIO) {
            /* Nobody will wait for it: drop its result when it arrives. */
            if (d->nabandoned == d->capabandoned) {
                unsigned nc = d->capabandoned ? d->capabandoned * 2 : 8;
                uint64_t *na = realloc(d->abandoned, nc * sizeof *na);
                if (na) {
                    d->abandoned = na;
                    d->capabandoned = nc;
                }
            }
            if (d->nabandoned < d->capabandoned)
                d->abandoned[d->nabandoned++] = id;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* ---- plan access and stats ---------------------------------------------- */

WEIR_API int weir_dag_save_plan(const weir_dag *d, const char *path)
{
    weir__clearerr();
    if (!d || !path)
        return weir__seterr(-EINVAL, "weir_dag_save_plan: NULL dag or path");
    return weir__plan_save(d->plan, path);
}

WEIR_API int weir_dag_write_dot(const weir_dag *d, FILE *out)
{
    weir__clearerr();
    if (!d || !out)
        return weir__seterr(-EINVAL, "weir_dag_write_dot: NULL dag or stream");
    return weir__plan_dot(d->plan, out);
}

WEIR_API int weir_dag_write_json(const weir_dag *d, FILE *out)
{
    weir__clearerr();
    if (!d || !out)
        return weir__seterr(-EINVAL, "weir_dag_write_json: NULL dag or stream");
    char *j = weir__plan_json(d->plan);
    if (!j)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", d->plan->graph);
    int rc = fputs(j, out) < 0 ? weir__seterr(-EIO, "graph '%s': write failed", d->plan->graph)
                               : 0;
    free(j);
    return rc;
}

WEIR_API uint64_t weir_dag_plan_hash(const weir_dag *d)
{
    return d ? weir__plan_hash(d->plan) : 0;
}

WEIR_API unsigned weir_dag_nchannels(const weir_dag *d)
{
    return d ? d->plan->nchans : 0;
}

WEIR_API int weir_dag_chan_stats(const weir_dag *d, unsigned i, struct weir_chan_stats *st)
{
    weir__clearerr();
    if (!d || !st || i >= d->plan->nchans)
        return weir__seterr(-EINVAL, "weir_dag_chan_stats: channel %u out of range (%u)", i,
                            d ? d->plan->nchans : 0);
    return weir_chan_stats(d->chans[i], st);
}

WEIR_API const char *weir_dag_chan_writer(const weir_dag *d, unsigned i)
{
    if (!d || i >= d->plan->nchans)
        return NULL;
    int32_t w = d->plan->chans[i].writer;
    return w == WEIR__PLAN_DRIVER ? "driver" : d->plan->actors[w].name;
}

WEIR_API unsigned weir_dag_nactors(const weir_dag *d)
{
    return d ? d->plan->nactors : 0;
}

WEIR_API int weir_dag_actor_stats(const weir_dag *d, unsigned i, struct weir_actor_stats *st)
{
    weir__clearerr();
    if (!d || !st || i >= d->plan->nactors)
        return weir__seterr(-EINVAL, "weir_dag_actor_stats: actor %u out of range (%u)", i,
                            d ? d->plan->nactors : 0);
    const struct actor_rt *a = &d->actors[i];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", a->pa->name);
    st->isolation = a->pa->isolation;
    st->pid = a->pa->isolation == WEIR_PROCESS ? (int)a->pid : (int)getpid();
    st->restarts = a->restarts;
    for (unsigned c = 0; c < d->plan->nchans; c++) {
        if (a->rid[c] < 0 && d->plan->chans[c].writer != (int32_t)i)
            continue;
        struct weir_chan_stats cs;
        if (weir_chan_stats(d->chans[c], &cs) < 0)
            continue;
        if (d->plan->chans[c].writer == (int32_t)i)
            st->output_blocked_ns += cs.writer_blocked_ns;
        for (unsigned r = 0; r < cs.nreaders; r++)
            if (cs.readers[r].id == a->rid[c])
                st->input_starved_ns += cs.readers[r].starved_ns;
    }
    return 0;
}
