/* SPDX-License-Identifier: MIT */
/*
 * engine/dag.c - the dag's lifecycle: weir_compile (lower through compiler/,
 * then instantiate: channels, actor processes and threads), plan access and
 * stats, and teardown. Calls run one way, down from here: into the driver
 * (driver.c), the actor loop (actor.c), process isolation (proc.c) and the
 * failure state (fail.c); none of them calls back.
 *
 * Design notes.
 *
 * Start. weir_compile lowers and checks the plan, creates every channel
 * (anonymous memfd segments) and registers every reader, then forks the
 * WEIR_PROCESS actors (engine/proc.c) before it starts any thread of its
 * own, then the process monitor, then one thread per worker of WEIR_THREAD
 * actors (engine/actor.c), which runs the fused schedule of the actors the
 * compiler placed on it (compiler/plan.h); a worker's thread takes its
 * actors' CPU pin.
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
#include "dag/cpulist.h"
#include "dag/graph_internal.h"
#include "engine/cluster.h"
#include "engine/engine.h"
#include "engine/prof.h"

/* ---- compile / start / teardown ----------------------------------------- */

/* Free everything the dag owns; called by whoever drops the last reference. */
static void dag_destroy(struct weir_dag *d)
{
    const struct weir__plan *p = d->plan;
    weir__proc_untrack(d);
    if (d->actors && p) {
        for (unsigned a = 0; a < p->nactors; a++) {
            struct actor_rt *ar = &d->actors[a];
            if (ar->regs)
                for (unsigned r = 0; r < ar->pa->nregs; r++) {
                    free(ar->regs[r].buf);
                    free(ar->regs[r].errtext);
                }
            free(ar->regs);
            free(ar->members);
            free(ar->rid);
            free(ar->reg_chan);
            free(ar->fns);
        }
    }
    weir__driver_fini(d); /* may take output channels over: before they are freed */
    if (d->chans && p)
        for (unsigned c = 0; c < p->nchans; c++)
            weir_chan_free(d->chans[c]);
    free(d->held);
    if (d->actors && p)
        for (unsigned a = 0; a < p->nactors; a++)
            if (d->actors[a].pidfd >= 0)
                close(d->actors[a].pidfd);
    if (d->notes)
        munmap(d->notes, d->notes_bytes);
    weir__prof_free(d);
    weir__tensor_dag_free(d);
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
    weir__remote_free(d->remote);
    weir__plan_free(d->plan);
    free(d);
}

/* Build the runtime for plan p (owned by the dag from here on) with g's functions. */
/* The driver holds one reference and every actor thread one (a stuck thread
 * detached at teardown may outlive weir_dag_free). */
static void dag_unref(struct weir_dag *d)
{
    if (weir__sub_fetch_acq_rel(&d->refs, 1) == 0)
        dag_destroy(d);
}

static void *actor_thread_main(void *arg)
{
    struct actor_rt *a = arg;
    struct weir_dag *d = a->d;
    char tname[16];
    if (a->nmembers > 1)
        snprintf(tname, sizeof tname, "weir:w%u", ((unsigned)a->pa->worker + 1u) % 100000u);
    else
        snprintf(tname, sizeof tname, "weir:%s", a->pa->name);
    pthread_setname_np(pthread_self(), tname);
    if (weir__actor_run(a) != 0) {
        const struct actor_rt *f = &d->actors[a->init_failed];
        weir__dag_mark_dead(d, (int)a->idx, "actor '%s' (thread) could not start: %s",
                            f->pa->name, f->note->text);
    }
    /* Tell a teardown waiting for us (it then joins); the dag may be freed
     * by the unref below, so nothing after it touches the dag. */
    weir__store_release(&a->exited, 1);
    uint64_t one = 1;
    if (d->exit_efd >= 0 && write(d->exit_efd, &one, sizeof one) < 0) {
        /* an eventfd write of 1 does not fail; teardown polls with a deadline anyway */
    }
    dag_unref(d);
    return NULL;
}

/*
 * The worker whose schedule the driver runs (weir_compile_opts.driver_worker):
 * the lowest-numbered worker of this rank with calls, none of whose actors is
 * pinned to CPUs or asked for a thread of its own. NULL if there is none.
 */
static struct actor_rt *pick_driver_worker(struct weir_dag *d, const weir_graph *g)
{
    struct actor_rt *best = NULL;
    for (unsigned a = 0; a < d->plan->nactors; a++) {
        struct actor_rt *ar = &d->actors[a];
        if (ar->pa->isolation == WEIR_PROCESS || !ar->nmembers || !ar->pa->nops ||
            !WEIR__ACTOR_HERE(d, a) || (best && best->pa->worker <= ar->pa->worker))
            continue;
        unsigned k = 0;
        while (k < ar->nmembers && !d->actors[ar->members[k]].pa->cpus &&
               g->actors[ar->members[k]]->opts.worker != WEIR_WORKER_ALONE)
            k++;
        if (k == ar->nmembers)
            best = ar;
    }
    return best;
}

static struct weir_dag *dag_start(struct weir__plan *p, const weir_graph *g,
                                  const weir_compile_opts *opts, struct weir__remote *rm)
{
    struct weir_dag *d = calloc(1, sizeof *d);
    if (!d) {
        weir__remote_free(rm);
        weir__plan_free(p);
        weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->dead_mu, NULL);
    d->mon_efd = -1;
    d->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->plan = p;
    d->remote = rm;
    d->rank = weir__remote_rank(rm);
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
        int32_t r = weir__plan_runner(p, a); /* >= 0: the plan is validated */
        ar->runner = (unsigned)r;
        ar->init_failed = -1;
        if (r == (int32_t)a) {
            ar->members = malloc(p->nactors * sizeof *ar->members);
            if (!ar->members)
                goto oom;
        }
    }
    for (unsigned a = 0; a < p->nactors; a++) {
        struct actor_rt *run = &d->actors[d->actors[a].runner];
        run->members[run->nmembers++] = a;
    }
    d->trace_opt = opts ? opts->trace_path : NULL;
    int prc = weir__prof_init(d, p->graph);
    d->trace_opt = NULL;
    if (prc < 0)
        goto oom;
    if (weir__tensor_dag_init(d, g) < 0)
        goto fail;
    for (unsigned c = 0; c < nch; c++) {
        const struct weir__plan_chan *pc = &p->chans[c];
        d->drv_rid[c] = -1;
        int nring = weir__remote_chan_ring(d, c);
        if (nring < 0)
            continue; /* neither written nor read on this rank */
        weir_chan_opts co = {.slot_bytes = pc->slot_bytes, .depth = pc->depth,
                             .max_readers = (unsigned)nring};
        d->chans[c] = weir_chan_create(NULL, &co);
        if (!d->chans[c]) {
            char why[512];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            weir__seterr(weir_errcode(), "graph '%s': channel '%s': %s", p->graph, pc->name, why);
            goto fail;
        }
        weir__chan_set_label(d->chans[c], pc->name);
        if (pc->writer == WEIR__PLAN_DRIVER && d->rank == 0) /* elsewhere a link writes it */
            d->argch[d->nargch++] = c;
        for (unsigned r = 0; r < pc->nreaders; r++) {
            if (weir__plan_party_rank(p, pc->readers[r]) != d->rank)
                continue;
            int id = weir_chan_register_reader(d->chans[c]);
            if (id < 0)
                goto fail;
            if (pc->readers[r] == WEIR__PLAN_DRIVER)
                d->drv_rid[c] = id;
            else
                d->actors[pc->readers[r]].rid[c] = id;
        }
        if (weir__remote_register(d, c) < 0)
            goto fail;
    }
    /* The driver reads the outputs on rank 0 only. */
    for (unsigned i = 0; d->rank == 0 && i < p->nouts; i++) {
        unsigned k;
        for (k = 0; k < d->noutch; k++)
            if (d->outch[k] == p->outputs[i])
                break;
        if (k == d->noutch)
            d->outch[d->noutch++] = p->outputs[i];
    }
    d->view_bytes = opts && opts->result_view_bytes ? opts->result_view_bytes
                                                    : WEIR_DEFAULT_RESULT_VIEW_BYTES;
    if (weir__driver_init(d) < 0)
        goto fail;
    /* Its fds and mappings all exist now: children of other dags drop them. */
    weir__proc_track(d);
    /* Process actors first: fork before this dag starts any thread. */
    for (unsigned a = 0; a < p->nactors; a++) {
        if (d->actors[a].pa->isolation != WEIR_PROCESS || !WEIR__ACTOR_HERE(d, a))
            continue;
        if (weir__proc_start(d, &d->actors[a]) < 0)
            goto fail;
        d->nproc++;
    }
    if (d->nproc && weir__proc_monitor_start(d) < 0)
        goto fail;
    if (opts && opts->driver_worker && d->rank == 0)
        d->inl = pick_driver_worker(d, g);
    for (unsigned a = 0; a < p->nactors; a++) {
        struct actor_rt *ar = &d->actors[a];
        if (ar->pa->isolation == WEIR_PROCESS || !ar->nmembers || !WEIR__ACTOR_HERE(d, a) ||
            ar == d->inl)
            continue; /* a process, an actor its worker's lead runs, another rank's, or
                         the driver's worker */
        const char *cpus = NULL; /* the compiler checked that a worker's pins agree */
        for (unsigned k = 0; k < ar->nmembers; k++)
            if (d->actors[ar->members[k]].pa->cpus)
                cpus = d->actors[ar->members[k]].pa->cpus;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        cpu_set_t set;
        char why[160];
        if (cpus && weir__cpulist_parse(cpus, &set, why, sizeof why) == 0)
            pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        weir__add_fetch_acq_rel(&d->refs, 1);
        int rc = pthread_create(&ar->th, &attr, actor_thread_main, ar);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            weir__sub_fetch_acq_rel(&d->refs, 1);
            weir__seterr(-rc, "actor '%s': cannot start its thread%s%s%s: %s", ar->pa->name,
                         cpus ? " pinned to cpus '" : "", cpus ? cpus : "", cpus ? "'" : "",
                         strerror(rc));
            goto fail;
        }
        ar->started = 1;
    }
    /* The driver's worker starts here, after the threads: its init runs in
     * this thread, and fails the compile as a thread's would. */
    if (d->inl && weir__actor_inline_start(d->inl) != 0) {
        const struct actor_rt *f = &d->actors[d->inl->init_failed];
        weir__dag_mark_dead(d, (int)d->inl->idx, "actor '%s' (thread) could not start: %s",
                            f->pa->name, f->note->text);
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

/*
 * The ready barrier: weir_compile returns only once every actor's init has
 * returned 0, so an init failure is the compile's error, not the first
 * execution's. A thread or process whose init fails (or that dies in it)
 * marks the dag dead with its text; an init still running at the dag's
 * timeout is named. Cold path: polls the actors' notes every 200 us.
 */
static int wait_ready(struct weir_dag *d)
{
    const struct weir__plan *p = d->plan;
    uint64_t t0 = weir_now_ns();
    for (;;) {
        unsigned a = 0;
        while (a < p->nactors &&
               (!WEIR__ACTOR_HERE(d, a) || weir__load_acquire(&d->actors[a].note->ready)))
            a++;
        if (a == p->nactors)
            return 0;
        if (weir__load_acquire(&d->dead)) {
            pthread_mutex_lock(&d->dead_mu);
            int rc = weir__seterr(-EREMOTEIO, "graph '%s': %s", p->graph, d->dead_msg);
            pthread_mutex_unlock(&d->dead_mu);
            return rc;
        }
        if (d->timeout_ms >= 0 && weir_now_ns() - t0 > (uint64_t)d->timeout_ms * 1000000ull)
            return weir__seterr(-ETIMEDOUT, "graph '%s': actor '%s' still in init after %d ms",
                                p->graph, p->actors[a].name, d->timeout_ms);
        struct timespec ts = {0, 200000L};
        nanosleep(&ts, NULL);
    }
}

WEIR_API weir_dag *weir_compile(weir_graph *g, const weir_compile_opts *opts)
{
    weir__clearerr();
    if (!g) {
        weir__seterr(-EINVAL, "weir_compile: NULL graph");
        return NULL;
    }
    if (weir__graph_check_actors(g) < 0)
        return NULL;
    struct weir__plan *p = NULL;
    if (weir__compile_plan(g, opts, &p) < 0)
        return NULL;
    struct weir__remote *rm = NULL;
    if (weir__plan_validate(p) < 0 || weir__plan_deadlock_check(p) < 0 ||
        weir__remote_check(p, &rm) < 0) {
        weir__plan_free(p);
        return NULL;
    }
    weir_dag *d = dag_start(p, g, opts, rm);
    if (d && (wait_ready(d) < 0 || (d->remote && weir__remote_start(d) < 0))) {
        char msg[DEAD_MSG_MAX + 128];
        int rc = weir_errcode();
        snprintf(msg, sizeof msg, "%s", weir_errmsg());
        weir_dag_free(d);
        weir__seterr(rc, "%s", msg);
        return NULL;
    }
    if (d)
        g->frozen = true; /* only a dag that runs freezes its graph */
    return d;
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
                if (weir__load_acquire(&a->exited)) {
                    pthread_join(a->th, NULL); /* it is returning: prompt */
                    a->joined = 1;
                } else {
                    pending++;
                }
            }
            if (threads_only || a->pidfd < 0 || weir__load_acquire(&a->reaped))
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
        uint64_t left = (deadline - now + 999999) / 1000000;
        int ms = deadline == UINT64_MAX ? -1 : left > INT32_MAX ? INT32_MAX : (int)left;
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
    weir__store_release(&d->tearing_down, 1);
    pthread_mutex_unlock(&d->dead_mu);
    weir__driver_stop(d);
    const struct weir__plan *p = d->plan;
    if (d->chans) {
        for (unsigned c = 0; c < p->nchans; c++)
            if (d->chans[c] && d->drv_rid && d->drv_rid[c] >= 0)
                weir_chan_deregister_reader(d->chans[c], d->drv_rid[c]);
        for (unsigned k = 0; k < d->nargch; k++)
            weir_chan_close(d->chans[d->argch[k]]);
    }
    /* Actors without calls have no channel the close above could reach. */
    for (unsigned a = 0; d->notes && a < p->nactors; a++)
        weir__flag_raise(&d->notes[a].stop);
    int tmo = d->timeout_ms; /* -1 (WEIR_FOREVER): wait for as long as the actors take */
    char msg[1024] = "";
    int len = 0, stuck = 0;
    /* 1. Everyone drains and leaves through the close cascade, until the deadline. */
    uint64_t deadline = tmo < 0 ? UINT64_MAX : weir_now_ns() + (uint64_t)tmo * 1000000ull;
    weir__remote_quiesce(d);
    /* The driver's worker drains in this thread, as the threads do in theirs. */
    int inl_waits = d->inl && weir__driver_inline_finish(d, deadline) < 0;
    unsigned pending = d->actors ? wait_actors(d, deadline, 0) : 0;
    /* 2. Past it: kill the processes still running and break the pipeline around
     *    them, then give the threads that waited on them a moment to leave. */
    if ((pending || inl_waits) && d->nproc)
        stuck += weir__proc_stop_all(d, msg, sizeof msg, &len);
    if (inl_waits)
        inl_waits = weir__driver_inline_finish(d, weir_now_ns() + 200000000ull) < 0;
    if (pending && d->actors)
        wait_actors(d, weir_now_ns() + 200000000ull, 1);
    /* Still waiting: it leaves now (fini, close), named among the stuck. */
    if (inl_waits) {
        stuck++;
        if (len < (int)sizeof msg)
            len += snprintf(msg + len, sizeof msg - (size_t)len,
                            "%sactor '%s' (the driver's worker) is stuck waiting on a channel",
                            len > 0 ? "; " : "", d->inl->pa->name);
        weir__actor_inline_abandon(d->inl);
    }
    /* 3. Threads still running are stuck: name them and let them go. */
    if (d->actors)
        for (unsigned a = 0; a < p->nactors; a++) {
            struct actor_rt *ar = &d->actors[a];
            if (!ar->started || ar->joined)
                continue;
            pthread_detach(ar->th);
            stuck++;
            /* Name the member the worker is stuck in a method of (else the lead). */
            const struct actor_rt *in = ar;
            for (unsigned k = 0; k < ar->nmembers; k++)
                if (weir__load_acquire(&d->actors[ar->members[k]].note->in_call)) {
                    in = &d->actors[ar->members[k]];
                    break;
                }
            char what[160];
            weir__note_describe(in, what, sizeof what);
            if (len < (int)sizeof msg)
                len += snprintf(msg + len, sizeof msg - (size_t)len, "%sactor '%s' is stuck %s",
                                len > 0 ? "; " : "", in->pa->name, what);
        }
    if (d->monitor_started)
        weir__proc_monitor_stop(d);
    if (d->nproc)
        weir__proc_reap_remaining(d);
    /* 4. Several ranks: the links finish, then the cluster is torn down. */
    int crc = 0;
    char cmsg[512] = "";
    if (d->remote && (crc = weir__remote_stop(d, deadline)) < 0)
        snprintf(cmsg, sizeof cmsg, "%s", weir_errmsg());
    weir__prof_stop(d);
    char graph[WEIR_MAX_NAME + 1];
    snprintf(graph, sizeof graph, "%s", p ? p->graph : "?");
    pthread_mutex_unlock(&d->mu);
    dag_unref(d);
    if (stuck)
        return weir__seterr(-ETIMEDOUT,
                            "graph '%s': teardown timed out after %d ms: %s (threads are left "
                            "running detached and freed when they return; processes are killed)",
                            graph, tmo, msg);
    if (crc < 0)
        return weir__seterr(crc, "graph '%s': teardown: %s", graph, cmsg);
    return 0;
}


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
    if (!d->chans[i])
        return weir__seterr(-ENOENT, "graph '%s': channel '%s' has no ring on rank %d (neither "
                            "written nor read here)", d->plan->graph, d->plan->chans[i].name,
                            d->rank);
    return weir_chan_stats(d->chans[i], st);
}

WEIR_API int weir_dag_chan_remote_stats(const weir_dag *d, unsigned i,
                                        struct weir_chan_stats *st)
{
    weir__clearerr();
    if (!d || !st || i >= d->plan->nchans)
        return weir__seterr(-EINVAL, "weir_dag_chan_remote_stats: channel %u out of range (%u)",
                            i, d ? d->plan->nchans : 0);
    const char *g = d->plan->graph, *name = d->plan->chans[i].name;
    if (d->rank != 0)
        return weir__seterr(-EINVAL, "graph '%s': channel '%s': weir_dag_chan_remote_stats is "
                            "for rank 0 (this is rank %d)", g, name, d->rank);
    if (d->chans[i])
        return weir__seterr(-ENOENT, "graph '%s': channel '%s' has a ring on rank 0 "
                            "(weir_dag_chan_stats)", g, name);
    if (weir__remote_chan_stats(d, i, st, NULL) < 0)
        return weir__seterr(-ENOENT, "graph '%s': channel '%s': rank %d has not reported it yet",
                            g, name, weir__plan_writer_rank(d->plan, i));
    return 0;
}

WEIR_API const char *weir_dag_chan_writer(const weir_dag *d, unsigned i)
{
    if (!d || i >= d->plan->nchans)
        return NULL;
    const struct weir__plan_chan *c = &d->plan->chans[i];
    if (c->writer == WEIR__PLAN_DRIVER)
        return "driver";
    /* The actor whose call produces it (in a fused worker, not always the lead). */
    const struct weir__plan_actor *lead = &d->plan->actors[c->writer];
    return d->plan->actors[lead->ops[c->src_index].actor].name;
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
    /* A fused actor waits when its worker waits: the worker's channels count. */
    const struct actor_rt *run = &d->actors[a->runner];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", a->pa->name);
    st->isolation = a->pa->isolation;
    st->worker = a->pa->worker >= 0 ? a->pa->worker + 1 : 0;
    if (a->pa->node != d->rank) {
        /* Hosted by another rank: rank 0 has its reports, the others nothing. */
        struct weir__cluster_actor_stat r;
        if (weir__remote_actor_stats(d, i, &r) == 0) {
            st->pid = r.pid;
            st->restarts = r.restarts;
            st->input_starved_ns = r.input_starved_ns;
            st->output_blocked_ns = r.output_blocked_ns;
        }
        return 0;
    }
    /* pid and restarts change under dead_mu when the monitor restarts a process. */
    pthread_mutex_lock((pthread_mutex_t *)&d->dead_mu);
    st->pid = a->pa->isolation == WEIR_PROCESS ? (int)a->pid : (int)getpid();
    st->restarts = a->restarts;
    pthread_mutex_unlock((pthread_mutex_t *)&d->dead_mu);
    for (unsigned c = 0; c < d->plan->nchans; c++) {
        if (!d->chans[c] || (run->rid[c] < 0 && d->plan->chans[c].writer != (int32_t)run->idx))
            continue;
        struct weir_chan_stats cs;
        if (weir_chan_stats(d->chans[c], &cs) < 0)
            continue;
        if (d->plan->chans[c].writer == (int32_t)run->idx)
            st->output_blocked_ns += cs.writer_blocked_ns;
        for (unsigned r = 0; r < cs.nreaders; r++)
            if (cs.readers[r].id == run->rid[c])
                st->input_starved_ns += cs.readers[r].starved_ns;
    }
    return 0;
}
