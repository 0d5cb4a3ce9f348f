/* SPDX-License-Identifier: MIT */
/*
 * engine/driver.c - the driver: weir_submit, weir_wait, weir_execute, and the
 * results they return (weir_result_*), with the reuse cache of result blocks.
 *
 * Design notes. submit reserves a slot in every argument channel before it
 * commits any (so a timeout never publishes half an execution), and keeps
 * at most max_inflight executions unfinished: past that it first reads the
 * oldest execution's outputs into the buffer of finished results.
 * wait(id) returns a buffered result or reads forward until id is done.
 * The driver only reads the dag's state (channels, the dead flag and text);
 * it calls nothing above it (dag.c owns the lifecycle).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/dag.h>

#include "channels/chan_internal.h"
#include "channels/err.h"
#include "channels/probes.h"
#include "engine/engine.h"

/* Timeouts mean what <weir/common.h> says; below -1 is a caller's mistake. */
/* The driver runs on rank 0 only. */
static int not_driver(const struct weir_dag *d, const char *fn)
{
    return weir__seterr(-EINVAL, "graph '%s': %s: this is rank %d; the driver is rank 0 (the "
                        "other ranks call weir_dag_join)", d->plan->graph, fn, d->rank);
}

static int bad_timeout(const char *fn, int timeout_ms)
{
    return weir__seterr(-EINVAL, "%s: timeout_ms %d (use -1 to wait without bound, 0 not to wait)",
                        fn, timeout_ms);
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

/* ---- results ------------------------------------------------------------ */

/*
 * Result blocks are recycled through a small global cache: an execute loop
 * then allocates nothing in steady state, and large results do not make
 * glibc shrink and regrow the heap on every execution. Global rather than
 * per dag because a result may outlive its dag.
 */
#define RESULT_CACHE 16
#define RESULT_CACHE_MAX_BYTES ((size_t)4 << 20)
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct weir_result *cache[RESULT_CACHE];

struct weir_result *weir__result_alloc(size_t bytes)
{
    pthread_mutex_lock(&cache_mu);
    for (unsigned i = 0; i < RESULT_CACHE; i++)
        if (cache[i] && cache[i]->cap >= bytes) {
            struct weir_result *r = cache[i];
            cache[i] = NULL;
            pthread_mutex_unlock(&cache_mu);
            return r;
        }
    pthread_mutex_unlock(&cache_mu);
    size_t cap = bytes < 256 ? 256 : bytes;
    struct weir_result *r = malloc(cap);
    if (r)
        r->cap = cap;
    return r;
}

void weir__result_free(struct weir_result *r)
{
    if (!r)
        return;
    if (r->cap <= RESULT_CACHE_MAX_BYTES) {
        pthread_mutex_lock(&cache_mu);
        for (unsigned i = 0; i < RESULT_CACHE; i++)
            if (!cache[i]) {
                cache[i] = r;
                pthread_mutex_unlock(&cache_mu);
                return;
            }
        /* Full: replace the smallest block if this one is larger. */
        unsigned small = 0;
        for (unsigned i = 1; i < RESULT_CACHE; i++)
            if (cache[i]->cap < cache[small]->cap)
                small = i;
        if (cache[small]->cap < r->cap) {
            struct weir_result *old = cache[small];
            cache[small] = r;
            r = old;
        }
        pthread_mutex_unlock(&cache_mu);
    }
    free(r);
}

WEIR_API void weir_result_free(weir_result *r)
{
    weir__result_free(r);
}

WEIR_API unsigned weir_result_count(const weir_result *r)
{
    return r ? r->n : 0;
}

WEIR_API uint64_t weir_result_exec(const weir_result *r)
{
    return r ? r->exec : 0;
}

WEIR_API const void *weir_result_data(const weir_result *r, unsigned i, size_t *len)
{
    if (!r || i >= r->n) {
        weir__seterr(-EINVAL, "result: output %u out of range (%u outputs)", i, r ? r->n : 0);
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = r->outs[i].len;
    return r->outs[i].data;
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
            if (rc == -EPIPE && weir__load_acquire(&d->dead))
                return weir__seterr(-EPIPE, "%s", d->dead_msg);
            if (rc == -ETIMEDOUT)
                return weir__seterr(-ETIMEDOUT,
                                    "not finished in time (waiting for execution %llu on channel "
                                    "'%s')",
                                    (unsigned long long)e, p->chans[c].name);
            return rc;
        }
        if (m->seq != e) {
            weir_chan_release(d->chans[c], d->drv_rid[c]);
            return weir__seterr(-EPROTO, "channel '%s' delivered message %llu for execution %llu",
                                p->chans[c].name, (unsigned long long)m->seq,
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
        return weir__seterr(-ENOMEM, "out of memory for a result of %zu bytes", bytes);
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
            return weir__seterr(-ENOMEM, "out of memory for a result");
        }
        d->ready = nr;
        d->capready = nc;
    }
    d->ready[d->nready++] = r;
    return 0;
}

/*
 * The one shape of an execution's failure (documented in <weir/dag.h>):
 * "graph 'G': execution ID: CAUSE" for the execution the caller asked
 * about, "graph 'G': submit: CAUSE" when submit itself failed. CAUSE (the
 * current message) names the failing actor and its own execution.
 */
static int exec_error(struct weir_dag *d, int rc, const char *what, uint64_t id)
{
    char cause[DEAD_MSG_MAX + 128];
    snprintf(cause, sizeof cause, "%s", weir_errmsg());
    if (what)
        return weir__seterr(rc, "graph '%s': %s: %s", d->plan->graph, what, cause);
    return weir__seterr(rc, "graph '%s': execution %llu: %s", d->plan->graph,
                        (unsigned long long)id, cause);
}

static int submit_locked(struct weir_dag *d, const weir_buf *args, unsigned nargs,
                         uint64_t *exec_id, struct weir__deadline *dl)
{
    const struct weir__plan *p = d->plan;
    if (weir__load_acquire(&d->dead))
        return weir__seterr(-EPIPE, "graph '%s': submit: %s", p->graph, d->dead_msg);
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
            return exec_error(d, rc, "submit", 0);
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
    if (timeout_ms < -1)
        return bad_timeout("weir_submit", timeout_ms);
    if (d->rank != 0)
        return not_driver(d, "weir_submit");
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
                int rc = weir__seterr(-EREMOTEIO, "graph '%s': execution %llu: %s", p->graph,
                                      (unsigned long long)id, r->errtext ? r->errtext : "error");
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
            return exec_error(d, rc, NULL, id);
    }
}

WEIR_API int weir_wait(weir_dag *d, uint64_t exec_id, weir_result **res, int timeout_ms)
{
    weir__clearerr();
    if (!d || !res)
        return weir__seterr(-EINVAL, "weir_wait: NULL dag or result pointer");
    if (timeout_ms < -1)
        return bad_timeout("weir_wait", timeout_ms);
    if (d->rank != 0)
        return not_driver(d, "weir_wait");
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
    if (timeout_ms < -1)
        return bad_timeout("weir_execute", timeout_ms);
    if (d->rank != 0)
        return not_driver(d, "weir_execute");
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
