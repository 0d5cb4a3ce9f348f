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
 *
 * Copies. A result that is no view is one 64-byte aligned block with each
 * output at a 64-byte aligned offset, so a tensor output's data is as
 * aligned as it was in its slot (weir_result_tensor).
 *
 * Zero-copy results. The driver reads each output channel through a window
 * (channels/ring_window.h), so a message can stay held after the driver
 * moved on: a result of result_view_bytes or more is a view (its outs point
 * into the slots) and weir_result_free releases its execution's message on
 * every output channel with release_one, in any order, from any thread.
 * The windows, a table of which result pins which execution (`pin`, indexed
 * by execution % span, span = the smallest output depth: the pinned
 * executions of a channel lie within its depth), and a reference count live
 * in one struct weir__outs, shared by the dag and its views; its lock
 * covers releases and the pin table. Lock order: d->mu, then outs->mu,
 * then the result cache's lock. weir_result_free takes only outs->mu, so a
 * thread blocked in weir_wait never stops another from freeing a result.
 *
 * The writer of an output channel can write execution e only once every
 * execution before e - depth + 1 is released, so a pinned slot can stall
 * the graph. Two rules keep that from ever becoming a hang:
 *   - a view in the ready buffer (driver-held, the caller has no pointer
 *     into it) is copied out and released whenever an execution the driver
 *     submits or collects needs its slot (make_room);
 *   - a view handed to the caller (held) pins execution F for good, so the
 *     driver never submits F + depth or later while it is held (-ENOBUFS at
 *     once), and weir_wait hands a result out as a copy when submits already
 *     went past that bound.
 * Hence every submitted execution can be written and collected without the
 * caller freeing anything, and (as nothing past next_submit is ever
 * written) no writer ever reuses a held slot, before or during teardown. A
 * view that outlives the dag keeps its channels: weir__driver_fini hands
 * them to the struct weir__outs, whose last reference frees them.
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
#include "channels/ring_window.h"
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

/* ---- the driver's worker -------------------------------------------------- */

/*
 * With a driver's worker (d->inl, weir_compile_opts.driver_worker) nothing
 * runs its schedule but the driver's own calls, so every wait of the driver
 * runs it: until ready(arg) says the driver can go on, step the worker
 * (engine/actor.c); when neither can move, sleep on both words at once (the
 * one the driver waits on and the one the worker's next op waits on), under
 * the policy of every channel wait (spin, yield, sleep). 0 once ready,
 * -ETIMEDOUT past the deadline (no text: the caller says what timed out).
 */
struct inl_wait {
    struct weir_dag *d;
    int (*ready)(void *arg);
    void *arg;
};

static int inl_own(void *p)
{
    const struct inl_wait *iw = p;
    return iw->ready(iw->arg);
}

static int inl_either(void *p)
{
    const struct inl_wait *iw = p;
    return iw->ready(iw->arg) || weir__actor_inline_ready(iw->d->inl);
}

/* own.futex NULL: the driver waits on nothing of its own (teardown). */
static int run_inline_until(struct weir_dag *d, int (*ready)(void *), void *arg,
                            struct weir__wait_word own, struct weir__deadline *dl)
{
    struct inl_wait iw = {d, ready, arg};
    struct weir__wait_word w[2] = {own, {0}};
    struct weir__wait_word *wv = own.futex ? w : &w[1];
    for (;;) {
        if (ready(arg))
            return 0;
        int s = weir__actor_inline_step(d->inl, &w[1]);
        if (s > 0)
            continue;
        if (ready(arg))
            return 0;
        uint64_t t0 = weir_now_ns();
        /* s < 0 (the worker left) with no word of our own: ready() said so above. */
        unsigned n = (own.futex != NULL) + (s == 0);
        int rc = weir__wait_many(wv, n, s == 0 ? inl_either : inl_own, &iw, &d->inl_spin,
                                 deadline_ms(dl));
        /* The worker waited too: its channel's stats say so, as a thread's would. */
        if (s == 0)
            weir__chan_count_wait(d->chans[d->inl->blk_chan], d->inl->blk_rid,
                                  weir_now_ns() - t0);
        if (rc < 0)
            return -ETIMEDOUT;
    }
}

/* What a driver's wait on a message of window w (engine/driver.c's collect) is for. */
static int win_ready(void *w)
{
    return weir__window_ready(w);
}

/* Take the next message of window w (of channel c), stepping the driver's
 * worker while there is none: 1, or < 0 as weir__window_poll (-ETIMEDOUT). */
static int inline_take(struct weir_dag *d, unsigned c, struct weir__window *w, weir_chan_msg *m,
                       struct weir__deadline *dl)
{
    struct weir__wait_word own;
    weir__chan_wait_word(d->chans[c], 0, &own);
    for (;;) {
        int rc = weir__window_poll(w, m);
        if (rc != 0)
            return rc;
        if (run_inline_until(d, win_ready, w, own, dl) < 0)
            return -ETIMEDOUT;
    }
}

static int space_ready(void *ch)
{
    return weir__chan_space_now(ch);
}

/* A slot of argument channel ch, stepping the driver's worker while there is
 * none (it may be the reader that frees one): as weir_chan_reserve. */
static void *inline_reserve(struct weir_dag *d, weir_chan *ch, size_t len,
                            struct weir__deadline *dl)
{
    struct weir__wait_word own;
    weir__chan_wait_word(ch, 1, &own);
    if (!weir__chan_space_now(ch) && run_inline_until(d, space_ready, ch, own, dl) < 0) {
        weir__seterr(-ETIMEDOUT, "channel '%s': timed out after %d ms waiting for its readers",
                     weir_chan_name(ch), dl->timeout_ms);
        return NULL;
    }
    return weir_chan_reserve(ch, len, 0);
}

static int inl_left(void *a)
{
    return ((const struct actor_rt *)a)->pc_state != WEIR__PC_RUN;
}

/* Teardown (dag.c): run the driver's worker until its schedule ends (its
 * inputs closed and drained) or the deadline (UINT64_MAX: none). 0 once it
 * left, -ETIMEDOUT if it still waits. */
int weir__driver_inline_finish(struct weir_dag *d, uint64_t deadline)
{
    /* An absolute deadline in the driver's form: at set, timeout_ms only its sign. */
    struct weir__deadline dl = {deadline == UINT64_MAX ? -1 : 1, deadline};
    return run_inline_until(d, inl_left, d->inl, (struct weir__wait_word){0}, &dl);
}

/* ---- results ------------------------------------------------------------ */

/*
 * Result blocks are recycled: an execute loop then allocates nothing in
 * steady state, and large results do not make glibc shrink and regrow the
 * heap on every execution. Small blocks (at most TCACHE_MAX_BYTES, the
 * header of a view and small copies: the common case) go through a few
 * slots per thread, with no lock (a result is freed by whichever thread
 * frees it, into that thread's slots); the others through a small global
 * cache under a mutex. Not per dag: a result may outlive its dag. A
 * thread's slots are freed when it exits (a pthread key's destructor); the
 * main thread's stay reachable until the process ends.
 */
#define RESULT_CACHE 16
#define RESULT_ALIGN 64 /* blocks and the outputs copied into them */
#define RESULT_ROUND(n) (((n) + RESULT_ALIGN - 1) & ~(size_t)(RESULT_ALIGN - 1))
#define RESULT_CACHE_MAX_BYTES ((size_t)4 << 20)
#define TCACHE 4                 /* small blocks kept per thread */
#define TCACHE_MAX_BYTES 1024u   /* at most 4 KiB per thread */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct weir_result *cache[RESULT_CACHE];
static size_t cache_cap[RESULT_CACHE]; /* cache[i]->cap, 0 if empty: a scan reads one line */

struct tcache {
    unsigned n;
    struct weir_result *blk[TCACHE];
};
static __thread struct tcache tcache;
static pthread_key_t tcache_key;
static pthread_once_t tcache_once = PTHREAD_ONCE_INIT;
static int tcache_ok;

static void tcache_exit(void *arg)
{
    struct tcache *t = arg;
    while (t->n)
        free(t->blk[--t->n]);
}

static void tcache_init(void)
{
    tcache_ok = pthread_key_create(&tcache_key, tcache_exit) == 0;
}

/* This thread's slots, registered for its exit; NULL if that failed. */
static struct tcache *tcache_get(void)
{
    struct tcache *t = &tcache;
    if (__builtin_expect(t->n == 0, 0)) {
        pthread_once(&tcache_once, tcache_init);
        if (!tcache_ok)
            return NULL;
        if (pthread_getspecific(tcache_key) != t && pthread_setspecific(tcache_key, t) != 0)
            return NULL;
    }
    return t;
}

struct weir_result *weir__result_alloc(size_t bytes)
{
    if (bytes <= TCACHE_MAX_BYTES && tcache.n) /* every small block has cap TCACHE_MAX_BYTES */
        return tcache.blk[--tcache.n];
    /* The smallest block that fits: a view's header must not take a block
     * a large copy could use. */
    pthread_mutex_lock(&cache_mu);
    unsigned best = RESULT_CACHE;
    for (unsigned i = 0; i < RESULT_CACHE; i++)
        if (cache_cap[i] >= bytes && cache_cap[i] &&
            (best == RESULT_CACHE || cache_cap[i] < cache_cap[best]))
            best = i;
    if (best < RESULT_CACHE) {
        struct weir_result *r = cache[best];
        cache[best] = NULL;
        cache_cap[best] = 0;
        pthread_mutex_unlock(&cache_mu);
        return r;
    }
    pthread_mutex_unlock(&cache_mu);
    size_t cap = bytes <= TCACHE_MAX_BYTES ? TCACHE_MAX_BYTES : bytes;
    struct weir_result *r = NULL;
    /* 64-byte aligned, so a copied output keeps its data's alignment
     * (tensor data is 64-byte aligned in its slot: weir_result_tensor). */
    if (posix_memalign((void **)&r, RESULT_ALIGN, cap) != 0)
        r = NULL;
    if (r) {
        r->cap = cap;
        r->view = NULL;
        r->held = 0;
    }
    return r;
}

/* Back to the cache (or to the heap); the block holds nothing any more. */
static void cache_put(struct weir_result *r)
{
    r->view = NULL;
    r->held = 0;
    if (r->cap == TCACHE_MAX_BYTES) {
        struct tcache *t = tcache_get();
        if (t && t->n < TCACHE) {
            t->blk[t->n++] = r;
            return;
        }
    }
    if (r->cap <= RESULT_CACHE_MAX_BYTES) {
        pthread_mutex_lock(&cache_mu);
        for (unsigned i = 0; i < RESULT_CACHE; i++)
            if (!cache_cap[i]) {
                cache[i] = r;
                cache_cap[i] = r->cap;
                pthread_mutex_unlock(&cache_mu);
                return;
            }
        /* Full: replace the smallest block if this one is larger. */
        unsigned small = 0;
        for (unsigned i = 1; i < RESULT_CACHE; i++)
            if (cache_cap[i] < cache_cap[small])
                small = i;
        if (cache_cap[small] < r->cap) {
            struct weir_result *old = cache[small];
            cache[small] = r;
            cache_cap[small] = r->cap;
            r = old;
        }
        pthread_mutex_unlock(&cache_mu);
    }
    free(r);
}

/* ---- the driver's windows (zero-copy results) ---------------------------- */

struct outs_chan {
    weir_chan *c;  /* the dag's handle of the channel; owned here once the dag is gone */
    int owned;
    int open;      /* w is open */
    unsigned depth;
    struct weir__window w;
};

struct weir__outs {
    pthread_mutex_t mu; /* releases, the pin table, `held` of views, detached */
    int refs;           /* atomic: the dag's, plus one per view */
    int detached;       /* weir_dag_free began: releases touch no channel */
    unsigned n;         /* output channels, as d->outch */
    unsigned span;      /* the smallest depth among them */
    struct weir_result **pin; /* [span]: the view of execution e at e % span, or NULL */
    struct outs_chan ch[];
};

static void outs_unref(struct weir__outs *o)
{
    if (weir__sub_fetch_acq_rel(&o->refs, 1) != 0)
        return;
    for (unsigned k = 0; k < o->n; k++) {
        if (o->ch[k].open)
            weir__window_fini(&o->ch[k].w);
        if (o->ch[k].owned)
            weir_chan_free(o->ch[k].c);
    }
    pthread_mutex_destroy(&o->mu);
    free(o->pin);
    free(o);
}

/* Release execution e on every output channel (o->mu held). */
static void release_locked(struct weir__outs *o, uint64_t e)
{
    if (o->detached)
        return;
    for (unsigned k = 0; k < o->n; k++) {
        struct weir__window *w = &o->ch[k].w;
        weir__window_release_one(w, e, weir__window_taken(w));
    }
}

/* A view gives its slots back (o->mu held); the caller then drops the header and the ref. */
static void unpin_locked(struct weir__outs *o, struct weir_result *r)
{
    release_locked(o, r->exec);
    if (o->pin[r->exec % o->span] == r)
        o->pin[r->exec % o->span] = NULL;
}

void weir__result_free(struct weir_result *r)
{
    if (!r)
        return;
    struct weir__outs *o = r->view;
    if (o) {
        pthread_mutex_lock(&o->mu);
        unpin_locked(o, r);
        pthread_mutex_unlock(&o->mu);
    }
    cache_put(r);
    if (o)
        outs_unref(o);
}

WEIR_API void weir_result_free(weir_result *r)
{
    weir__result_free(r);
}

int weir__driver_init(struct weir_dag *d)
{
    const struct weir__plan *p = d->plan;
    struct weir__outs *o = calloc(1, sizeof *o + d->noutch * sizeof o->ch[0]);
    if (!o)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory for the driver's windows",
                            p->graph);
    pthread_mutex_init(&o->mu, NULL);
    o->refs = 1;
    o->n = d->noutch;
    o->span = 0;
    d->outs = o;
    for (unsigned k = 0; k < o->n; k++) {
        unsigned c = d->outch[k];
        o->ch[k].c = d->chans[c];
        o->ch[k].depth = p->chans[c].depth;
        if (!o->span || o->ch[k].depth < o->span)
            o->span = o->ch[k].depth;
        int rc = weir__window_open(&o->ch[k].w, d->chans[c], d->drv_rid[c]);
        if (rc < 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            return weir__seterr(rc, "graph '%s': output channel '%s': %s", p->graph,
                                p->chans[c].name, why);
        }
        o->ch[k].open = 1;
        o->ch[k].w.kicks = 0; /* nobody kicks the driver: wait for messages only */
    }
    if (!o->span)
        o->span = 1;
    o->pin = calloc(o->span, sizeof *o->pin);
    if (!o->pin)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory for the driver's windows",
                            p->graph);
    return 0;
}

void weir__driver_stop(struct weir_dag *d)
{
    struct weir__outs *o = d->outs;
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->detached = 1;
    pthread_mutex_unlock(&o->mu);
}

void weir__driver_fini(struct weir_dag *d)
{
    for (unsigned i = 0; i < d->nready; i++)
        weir__result_free(d->ready[i]);
    d->nready = 0;
    struct weir__outs *o = d->outs;
    if (!o)
        return;
    d->outs = NULL;
    pthread_mutex_lock(&o->mu);
    o->detached = 1;
    /* Views still out point into these channels: they keep them (no new
     * view can appear, so a count of 1 stays 1). */
    if (weir__load_acquire(&o->refs) > 1)
        for (unsigned k = 0; k < o->n; k++) {
            o->ch[k].owned = 1;
            d->chans[d->outch[k]] = NULL;
        }
    pthread_mutex_unlock(&o->mu);
    outs_unref(o);
}

/* A result block's header and outs array, before any output bytes. */
static size_t result_header_bytes(unsigned nouts)
{
    return sizeof(struct weir_result) + nouts * sizeof(((struct weir_result *)0)->outs[0]);
}

/* A copy of one execution's outputs: data[i]/len[i] per output, errtext (errlen
 * bytes) or NULL. -ENOMEM leaves *out alone. */
static int copy_result(const struct weir_dag *d, uint64_t e, const void *const *data,
                       const size_t *len, const char *errtext, size_t errlen,
                       struct weir_result **out)
{
    const struct weir__plan *p = d->plan;
    size_t bytes = RESULT_ROUND(result_header_bytes(p->nouts));
    for (unsigned i = 0; i < p->nouts; i++)
        bytes += RESULT_ROUND(len[i]);
    if (errtext)
        bytes += errlen + 1;
    struct weir_result *r = weir__result_alloc(bytes);
    if (!r)
        return weir__seterr(-ENOMEM, "out of memory for a result of %zu bytes", bytes);
    r->exec = e;
    r->n = p->nouts;
    r->err = errtext != NULL;
    r->errtext = NULL;
    r->view = NULL;
    r->held = 0;
    r->outs = (void *)(r + 1);
    char *dst = (char *)r + RESULT_ROUND(result_header_bytes(p->nouts));
    for (unsigned i = 0; i < p->nouts; i++) {
        r->outs[i].len = len[i];
        r->outs[i].data = dst;
        if (len[i])
            memcpy(dst, data[i], len[i]);
        dst += RESULT_ROUND(len[i]);
    }
    if (errtext) {
        r->errtext = dst;
        memcpy(dst, errtext, errlen);
        dst[errlen] = '\0';
    }
    *out = r;
    return 0;
}

/* Turn view v into a copy, in place of *slot (o->mu held): the slots go back. */
static int copy_out_locked(struct weir_dag *d, struct weir_result **slot)
{
    struct weir_result *v = *slot, *c;
    const void *data[v->n ? v->n : 1];
    size_t len[v->n ? v->n : 1];
    for (unsigned i = 0; i < v->n; i++) {
        data[i] = v->outs[i].data;
        len[i] = v->outs[i].len;
    }
    int rc = copy_result(d, v->exec, data, len, NULL, 0, &c);
    if (rc < 0)
        return rc;
    struct weir__outs *o = v->view;
    unpin_locked(o, v);
    cache_put(v);
    weir__sub_fetch_acq_rel(&o->refs, 1); /* never the last: the dag holds one */
    *slot = c;
    return 0;
}

/* Is execution e beyond what output channel k can take now (a slot still held)? */
static int no_room(struct weir__outs *o, unsigned k, uint64_t e, uint64_t *rel)
{
    *rel = weir__window_released(&o->ch[k].w);
    return e >= *rel + o->ch[k].depth && *rel < weir__window_taken(&o->ch[k].w);
}

/*
 * Make every output channel able to take execution e: copy out the buffered
 * views in the way (oldest first). A view the caller holds in the way is
 * -ENOBUFS (message without the "graph" prefix: the callers add it). d->mu held.
 */
static int make_room(struct weir_dag *d, uint64_t e)
{
    struct weir__outs *o = d->outs;
    uint64_t rel;
    unsigned k;
    /* Releases only move forward, so room seen here stays. */
    for (k = 0; k < o->n; k++)
        if (no_room(o, k, e, &rel))
            break;
    if (k == o->n)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&o->mu);
    for (; k < o->n && rc == 0; k++)
        while (no_room(o, k, e, &rel)) {
            struct weir_result *r = o->pin[rel % o->span];
            if (!r || r->exec != rel)
                break; /* the message of the execution being collected: normal flow */
            if (r->held) {
                rc = weir__seterr(-ENOBUFS,
                                  "the result of execution %llu is still held: channel '%s' "
                                  "(depth %u) has no slot for execution %llu until it is freed "
                                  "(weir_result_free)",
                                  (unsigned long long)rel, d->plan->chans[d->outch[k]].name,
                                  o->ch[k].depth, (unsigned long long)e);
                break;
            }
            unsigned i = 0;
            while (i < d->nready && d->ready[i] != r)
                i++;
            if (i == d->nready) {
                rc = weir__seterr(-EPROTO, "execution %llu holds a slot but is nowhere",
                                  (unsigned long long)rel);
                break;
            }
            if ((rc = copy_out_locked(d, &d->ready[i])) < 0)
                break;
        }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* The view of execution e from the held messages (one per output channel). */
static int view_result(struct weir_dag *d, uint64_t e, struct weir_result **out)
{
    const struct weir__plan *p = d->plan;
    struct weir__outs *o = d->outs;
    size_t bytes = result_header_bytes(p->nouts);
    struct weir_result *r = weir__result_alloc(bytes);
    if (!r)
        return weir__seterr(-ENOMEM, "out of memory for a result");
    r->exec = e;
    r->n = p->nouts;
    r->err = 0;
    r->errtext = NULL;
    r->held = 0;
    r->outs = (void *)(r + 1);
    for (unsigned i = 0; i < p->nouts; i++) {
        unsigned k = 0;
        while (d->outch[k] != p->outputs[i])
            k++;
        r->outs[i].data = (void *)d->held[k].data;
        r->outs[i].len = d->held[k].len;
    }
    weir__add_fetch_acq_rel(&o->refs, 1);
    r->view = o;
    pthread_mutex_lock(&o->mu);
    o->pin[e % o->span] = r;
    pthread_mutex_unlock(&o->mu);
    *out = r;
    return 0;
}

/* Hand r (just taken from the ready buffer or collected) to the caller: a
 * view becomes held, or a copy if submits already passed its execution +
 * depth - 1 (then holding it would stall an execution already submitted). */
static struct weir_result *hand_out(struct weir_dag *d, struct weir_result *r)
{
    struct weir__outs *o = r->view;
    if (!o)
        return r;
    pthread_mutex_lock(&o->mu);
    if (d->next_submit > r->exec + o->span && copy_out_locked(d, &r) == 0) {
        /* r is the copy now */
    } else if (r->view) {
        r->held = 1;
    }
    pthread_mutex_unlock(&o->mu);
    return r;
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

/* Read (the rest of) the outputs of execution next_collect into a new ready result. */
static int collect_one(struct weir_dag *d, struct weir__deadline *dl)
{
    const struct weir__plan *p = d->plan;
    struct weir__outs *o = d->outs;
    uint64_t e = d->next_collect;
    /* 0. The writers must be able to write e: buffered views in the way go. */
    int rc = make_room(d, e);
    if (rc < 0)
        return rc;
    /* 1. Take this execution's message on every output channel (held in the window). */
    while (d->partial_k < d->noutch) {
        unsigned c = d->outch[d->partial_k];
        weir_chan_msg *m = &d->held[d->partial_k];
        struct weir__window *w = &o->ch[d->partial_k].w;
        rc = weir__window_poll(w, m);
        if (rc == 0 && d->inl)
            rc = inline_take(d, c, w, m, dl);
        else if (rc == 0 && (rc = weir__window_next(w, m, deadline_ms(dl))) == 0)
            rc = 1; /* kicks are off: no -EINTR */
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
        if (m->seq != e)
            return weir__seterr(-EPROTO, "channel '%s' delivered message %llu for execution %llu",
                                p->chans[c].name, (unsigned long long)m->seq,
                                (unsigned long long)e);
        d->partial_k++;
    }
    /* 2. A view of the held messages, or a copy of them (then release them). */
    int err = -1;
    size_t total = 0;
    for (unsigned k = 0; k < d->noutch; k++) {
        if ((d->held[k].flags & WEIR_MSG_ERROR) && err < 0)
            err = (int)k;
        total += d->held[k].len;
    }
    struct weir_result *r;
    if (err < 0 && d->noutch && total >= d->view_bytes) {
        if ((rc = view_result(d, e, &r)) < 0)
            return rc;
    } else {
        const void *data[p->nouts ? p->nouts : 1];
        size_t len[p->nouts ? p->nouts : 1];
        for (unsigned i = 0; i < p->nouts; i++) {
            unsigned k = 0;
            while (d->outch[k] != p->outputs[i])
                k++;
            const weir_chan_msg *m = &d->held[k];
            data[i] = m->data;
            len[i] = (m->flags & WEIR_MSG_ERROR) ? 0 : m->len;
        }
        rc = copy_result(d, e, data, len, err >= 0 ? (const char *)d->held[err].data : NULL,
                         err >= 0 ? d->held[err].len : 0, &r);
        if (rc < 0)
            return rc; /* the messages stay held: the next call builds it again */
        /* With no view out (only the dag's reference) nobody else releases: no
         * lock. A freer drops its reference after its release (acq_rel). */
        if (weir__load_acquire(&o->refs) == 1) {
            release_locked(o, e);
        } else {
            pthread_mutex_lock(&o->mu);
            release_locked(o, e);
            pthread_mutex_unlock(&o->mu);
        }
    }
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
    /* Every output channel must be able to take this execution (views held, weir/dag.h). */
    int rc = make_room(d, d->next_submit);
    if (rc < 0)
        return exec_error(d, rc, "submit", 0);
    /* Reserve every argument channel before committing any. */
    unsigned k;
    void *dst[d->nargch ? d->nargch : 1];
    size_t alen[d->nargch ? d->nargch : 1];
    for (k = 0; k < d->nargch; k++) {
        const struct weir__plan_chan *pc = &p->chans[d->argch[k]];
        const weir_buf *b = &args[pc->src_index];
        weir_chan *ch = d->chans[d->argch[k]];
        size_t len = b->len;
        if (d->tensor && weir__tensor_arg_len(d, d->argch[k], b, &len) < 0) /* engine/tensor.c */
            break;
        alen[k] = len;
        int now = weir__chan_can_reserve(ch, len);
        dst[k] = now || !d->inl ? weir_chan_reserve(ch, len, now ? 0 : deadline_ms(dl))
                                : inline_reserve(d, ch, len, dl);
        if (!dst[k])
            break;
    }
    if (k < d->nargch) {
        rc = weir_errcode();
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        while (k-- > 0)
            weir__chan_unreserve(d->chans[d->argch[k]]);
        return weir__seterr(rc, "graph '%s': submit: %s", p->graph, why);
    }
    for (k = 0; k < d->nargch; k++) {
        const weir_buf *b = &args[p->chans[d->argch[k]].src_index];
        int w = d->tensor ? weir__tensor_arg_write(d, d->argch[k], b, dst[k], &alen[k],
                                                   d->next_submit)
                          : 0;
        if (w < 0) { /* a device argument's copy failed: commit nothing */
            char why[512];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            for (k = 0; k < d->nargch; k++)
                weir__chan_unreserve(d->chans[d->argch[k]]);
            return weir__seterr(w, "graph '%s': submit: %s", p->graph, why);
        }
        if (!w && b->len)
            memcpy(dst[k], b->data, b->len);
    }
    for (k = 0; k < d->nargch; k++)
        weir_chan_commit(d->chans[d->argch[k]], alen[k]);
    *exec_id = d->next_submit++;
    /* The driver's worker takes the new arguments now, so the workers after
     * it start on them while the caller goes on. */
    if (d->inl) {
        struct weir__wait_word w;
        weir__actor_inline_step(d->inl, &w);
    }
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
            *res = hand_out(d, r);
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
