/* SPDX-License-Identifier: MIT */
/*
 * engine/actor.c - what runs inside an actor (thread or process): the
 * schedule loop, the weir_call API of methods, and error records.
 *
 * Design notes. One loop runs the actor's schedule (compiler/plan.h) for
 * execution 0, 1, 2, ... over a register file. READ holds a zero-copy view
 * of a channel message; CALL runs the method, whose weir_call_out()
 * reserves the output directly in the output channel's slot (zero-copy) or
 * in a register buffer for values that stay inside the actor; WRITE
 * commits; RELEASE gives the message back. Every channel carries exactly
 * one message per execution, so message seq == execution index, and the
 * actor never needs to know what the driver is doing.
 *
 * Failure. A failed method (weir_call_fail, a non-zero return, or an
 * output left unset) does not stop anything: its outputs become error
 * records carrying "actor 'a' method 'm' failed at execution N: text"; a
 * call with an error input is skipped and forwards the first error to its
 * own outputs; the driver turns an error record among the outputs into
 * -EREMOTEIO for that execution only. The loop ends when a READ returns
 * -EPIPE (teardown, or an upstream actor died); the actor then closes its
 * outputs and deregisters its readers, so the close cascades downstream.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weir/dag.h>

#include "channels/chan_internal.h"
#include "channels/err.h"
#include "engine/engine.h"
#include "engine/prof.h"
#include "engine/trace.h"

void weir__dag_destroy(struct weir_dag *d);

void weir__dag_unref(struct weir_dag *d)
{
    if (__atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) == 0)
        weir__dag_destroy(d);
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

/* ---- inside a method --------------------------------------------------- */

WEIR_API unsigned weir_call_nin(const weir_call *c)
{
    return c->op->nin;
}

WEIR_API unsigned weir_call_nout(const weir_call *c)
{
    return c->op->nout;
}

WEIR_API uint64_t weir_call_exec(const weir_call *c)
{
    return c->exec;
}

WEIR_API const char *weir_call_actor(const weir_call *c)
{
    return c->a->pa->name;
}

WEIR_API const char *weir_call_method(const weir_call *c)
{
    return c->a->pa->methods[c->op->method].name;
}

WEIR_API const void *weir_call_in(weir_call *c, unsigned i, size_t *len)
{
    if (i >= c->op->nin) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': input %u out of range (%u inputs)",
                     weir_call_actor(c), weir_call_method(c), i, c->op->nin);
        if (len)
            *len = 0;
        return NULL;
    }
    const struct reg *r = &c->a->regs[c->op->in[i]];
    if (len)
        *len = r->len;
    return r->data;
}

WEIR_API void *weir_call_out(weir_call *c, unsigned i, size_t len)
{
    struct actor_rt *a = c->a;
    if (i >= c->op->nout) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': output %u out of range (%u outputs)",
                     weir_call_actor(c), weir_call_method(c), i, c->op->nout);
        return NULL;
    }
    uint32_t ri = c->op->out[i];
    struct reg *r = &a->regs[ri];
    if (r->produced) {
        if (len <= r->len)
            return (void *)r->data;
        weir__seterr(-EBUSY,
                     "actor '%s' method '%s': output %u already has %zu bytes; cannot grow it to "
                     "%zu",
                     weir_call_actor(c), weir_call_method(c), i, r->len, len);
        return NULL;
    }
    void *p;
    int ch = a->reg_chan[ri];
    if (ch >= 0) {
        p = weir_chan_reserve(a->d->chans[ch], len, -1);
        if (!p)
            return NULL;
        r->reserved = 1;
    } else {
        if (len > r->cap || !r->buf) {
            size_t nc = len < 64 ? 64 : len;
            void *nb = realloc(r->buf, nc);
            if (!nb) {
                weir__seterr(-ENOMEM, "actor '%s' method '%s': no memory for output %u (%zu bytes)",
                             weir_call_actor(c), weir_call_method(c), i, len);
                return NULL;
            }
            r->buf = nb;
            r->cap = nc;
        }
        p = r->buf;
    }
    r->data = p;
    r->len = len;
    r->produced = 1;
    return p;
}

WEIR_API int weir_call_fail(weir_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->failmsg, sizeof c->failmsg, fmt, ap);
    va_end(ap);
    c->failed = 1;
    return -EREMOTEIO;
}

/* ---- actor loop --------------------------------------------------------- */

static void reg_set_error(struct reg *r, const char *text)
{
    if (!r->errtext)
        r->errtext = malloc(ERRTEXT_BUF);
    if (r->errtext)
        snprintf(r->errtext, ERRTEXT_BUF, "%s", text);
    r->err = 1;
    r->data = NULL;
    r->len = 0;
}

static void run_call(struct actor_rt *a, const struct weir__plan_op *op, uint64_t exec)
{
    struct reg *regs = a->regs;
    /* An error input: skip the method, forward the first error. */
    for (unsigned j = 0; j < op->nin; j++) {
        const struct reg *in = &regs[op->in[j]];
        if (in->err) {
            char text[ERRTEXT_BUF];
            snprintf(text, sizeof text, "%s",
                     in->errtext ? in->errtext : "error (no memory for its text)");
            for (unsigned k = 0; k < op->nout; k++) {
                struct reg *o = &regs[op->out[k]];
                o->produced = o->reserved = 0;
                reg_set_error(o, text);
            }
            return;
        }
    }
    for (unsigned k = 0; k < op->nout; k++) {
        struct reg *o = &regs[op->out[k]];
        o->data = NULL;
        o->len = 0;
        o->err = o->produced = o->reserved = 0;
    }
    weir_call call = {.a = a, .op = op, .exec = exec, .failed = 0};
    /* Relaxed atomics: the driver reads these for its messages while we run. */
    __atomic_store_n(&a->note->cur_method, op->method, __ATOMIC_RELAXED);
    __atomic_store_n(&a->note->cur_exec, exec, __ATOMIC_RELAXED);
    __atomic_store_n(&a->note->in_call, 1, __ATOMIC_RELEASE);
    uint64_t prof_t0 = weir__prof_call_begin(a, op->method, exec);
    int rc = a->fns[op->method](&call, a->state);
    weir__prof_call_end(a, op->method, exec, rc != 0 || call.failed, prof_t0);
    __atomic_store_n(&a->note->in_call, 0, __ATOMIC_RELEASE);
    const char *mname = a->pa->methods[op->method].name;
    char text[ERRTEXT_BUF];
    int failed = 0;
    if (rc != 0 || call.failed) {
        if (call.failed)
            snprintf(text, sizeof text, "actor '%s' method '%s' failed at execution %llu: %s",
                     a->pa->name, mname, (unsigned long long)exec, call.failmsg);
        else
            snprintf(text, sizeof text,
                     "actor '%s' method '%s' failed at execution %llu: returned %d", a->pa->name,
                     mname, (unsigned long long)exec, rc);
        failed = 1;
    } else {
        for (unsigned k = 0; k < op->nout; k++)
            if (!regs[op->out[k]].produced) {
                snprintf(text, sizeof text,
                         "actor '%s' method '%s' failed at execution %llu: output %u was not "
                         "produced (call weir_call_out)",
                         a->pa->name, mname, (unsigned long long)exec, k);
                failed = 1;
                break;
            }
    }
    if (!failed)
        return;
    for (unsigned k = 0; k < op->nout; k++) {
        struct reg *o = &regs[op->out[k]];
        if (o->reserved)
            weir__chan_unreserve(a->d->chans[a->reg_chan[op->out[k]]]);
        o->produced = o->reserved = 0;
        reg_set_error(o, text);
    }
}

/*
 * Restart fail mode: execution e was partly done by a process that died.
 * Consume exactly the messages the dead process had not released (rd_at:
 * per channel, the first message it had not released) and write an error
 * record exactly where it had not committed (wr_at), so every channel
 * stays at one message per execution and downstream sees the failure.
 */
static int fail_exec(struct actor_rt *a, uint64_t e, const uint64_t *rd_at, const uint64_t *wr_at)
{
    struct weir_dag *d = a->d;
    const struct weir__plan_actor *pa = a->pa;
    for (unsigned i = 0; i < pa->nops; i++) {
        const struct weir__plan_op *op = &pa->ops[i];
        struct reg *r = &a->regs[op->reg];
        switch (op->kind) {
        case WEIR__OP_READ:
            r->held = 0;
            if (e >= rd_at[op->chan]) {
                weir_chan_msg m;
                if (weir_chan_read_msg(d->chans[op->chan], a->rid[op->chan], &m, -1) < 0)
                    return -1;
                r->held = 1;
            }
            break;
        case WEIR__OP_CALL:
            break;
        case WEIR__OP_WRITE:
            if (e >= wr_at[op->chan] &&
                weir_chan_write_error(d->chans[op->chan], a->restart_text, -1) < 0)
                return -1;
            break;
        case WEIR__OP_RELEASE:
            if (r->held) {
                weir_chan_release(d->chans[op->chan], a->rid[op->chan]);
                r->held = 0;
            }
            break;
        }
    }
    return 0;
}

/*
 * Where a replacement process resumes: e0 is the first execution the dead
 * one had not finished on every channel, e1 the first it had not touched
 * (and past the execution that crashed inside a method: never retried).
 * Executions in [e0, e1) fail; from e1 on the actor runs normally.
 */
static uint64_t resume_point(struct actor_rt *a, uint64_t *rd_at, uint64_t *wr_at, uint64_t *e1)
{
    struct weir_dag *d = a->d;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned c = 0; c < d->plan->nchans; c++) {
        rd_at[c] = wr_at[c] = UINT64_MAX;
        uint64_t v;
        if (a->rid[c] >= 0) {
            weir__chan_reader_resync(d->chans[c], a->rid[c]);
            v = rd_at[c] = weir__chan_read_seq(d->chans[c], a->rid[c]);
        } else if (d->plan->chans[c].writer == (int32_t)a->idx) {
            weir__chan_writer_resync(d->chans[c]);
            v = wr_at[c] = weir__chan_write_seq(d->chans[c]);
        } else {
            continue;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (lo == UINT64_MAX)
        lo = hi = 0;
    if (a->crashed_in_call && a->crash_exec + 1 > hi)
        hi = a->crash_exec + 1;
    *e1 = hi;
    return lo;
}

/* The schedule loop; returns at teardown (-EPIPE on a READ) or when a WRITE fails. */
static void actor_loop(struct actor_rt *a)
{
    struct weir_dag *d = a->d;
    const struct weir__plan_actor *pa = a->pa;
    uint64_t first = 0;
    if (a->restarting) {
        unsigned n = d->plan->nchans ? d->plan->nchans : 1;
        uint64_t *rd_at = calloc(n, sizeof *rd_at), *wr_at = calloc(n, sizeof *wr_at), e1;
        if (!rd_at || !wr_at) {
            free(rd_at);
            free(wr_at);
            return;
        }
        first = resume_point(a, rd_at, wr_at, &e1);
        for (; first < e1; first++)
            if (fail_exec(a, first, rd_at, wr_at) < 0)
                break;
        free(rd_at);
        free(wr_at);
        if (first < e1)
            return;
        /* Past the failed executions: the next restart may forget this crash. */
        __atomic_store_n(&a->note->resumed, 1, __ATOMIC_RELEASE);
    }
    for (uint64_t e = first;; e++) {
        for (unsigned i = 0; i < pa->nops; i++) {
            const struct weir__plan_op *op = &pa->ops[i];
            struct reg *r = &a->regs[op->reg];
            uint64_t trace_t0 = __builtin_expect(a->trace != NULL, 0) ? weir_now_ns() : 0;
            switch (op->kind) {
            case WEIR__OP_READ: {
                weir_chan_msg m;
                if (weir_chan_read_msg(d->chans[op->chan], a->rid[op->chan], &m, -1) < 0)
                    return; /* -EPIPE: teardown, or an upstream actor died */
                r->data = m.data;
                r->len = m.len;
                r->err = (m.flags & WEIR_MSG_ERROR) != 0;
                if (r->err)
                    reg_set_error(r, (const char *)m.data);
                break;
            }
            case WEIR__OP_CALL:
                run_call(a, op, e);
                break;
            case WEIR__OP_WRITE: {
                weir_chan *ch = d->chans[op->chan];
                int rc = r->err ? weir_chan_write_error(ch, r->errtext ? r->errtext : "error", -1)
                                : weir_chan_commit(ch, r->len);
                r->reserved = 0;
                if (rc < 0)
                    return;
                break;
            }
            case WEIR__OP_RELEASE:
                weir_chan_release(d->chans[op->chan], a->rid[op->chan]);
                break;
            }
            if (__builtin_expect(trace_t0 != 0, 0))
                weir__trace_op(a, i, e, trace_t0);
        }
    }
}

/* Leaving: close what this actor writes, deregister what it reads, so the
 * close cascades downstream and no writer waits for this actor any more. */
static void actor_leave(struct actor_rt *a)
{
    struct weir_dag *d = a->d;
    for (unsigned c = 0; c < d->plan->nchans; c++) {
        if (d->plan->chans[c].writer == (int32_t)a->idx) {
            weir__chan_unreserve(d->chans[c]); /* harmless if nothing is reserved */
            weir_chan_close(d->chans[c]);
        }
        if (a->rid[c] >= 0)
            weir_chan_deregister_reader(d->chans[c], a->rid[c]);
    }
}

int weir__actor_run(struct actor_rt *a)
{
    int rc = 0;
    weir__prof_actor_start(a);
    __atomic_store_n(&a->note->phase, WEIR__PHASE_INIT, __ATOMIC_RELEASE);
    if (a->init && (rc = a->init(a->state)) != 0) {
        /* No actor_leave: whoever marks the dag dead breaks the pipeline
         * (the thread wrapper, or the process monitor), so the driver never
         * sees a closed channel before it knows why. */
        snprintf(a->note->text, sizeof a->note->text, "init returned %d", rc);
        return rc;
    }
    __atomic_store_n(&a->note->phase, WEIR__PHASE_RUN, __ATOMIC_RELEASE);
    actor_loop(a);
    __atomic_store_n(&a->note->phase, WEIR__PHASE_FINI, __ATOMIC_RELEASE);
    if (a->fini)
        a->fini(a->state);
    actor_leave(a);
    return 0;
}

void weir__note_describe(const struct actor_rt *a, char *buf, size_t cap)
{
    const struct weir__actor_note *n = a->note;
    int phase = __atomic_load_n(&n->phase, __ATOMIC_ACQUIRE);
    unsigned m = __atomic_load_n(&n->cur_method, __ATOMIC_RELAXED);
    uint64_t e = __atomic_load_n(&n->cur_exec, __ATOMIC_RELAXED);
    if (phase == WEIR__PHASE_INIT)
        snprintf(buf, cap, "in init");
    else if (phase == WEIR__PHASE_FINI)
        snprintf(buf, cap, "in fini");
    else if (__atomic_load_n(&n->in_call, __ATOMIC_ACQUIRE))
        snprintf(buf, cap, "in method '%s' (execution %llu)",
                 m < a->pa->nmethods ? a->pa->methods[m].name : "?", (unsigned long long)e);
    else
        snprintf(buf, cap, "waiting for a message or a free slot");
}

void *weir__actor_thread_main(void *arg)
{
    struct actor_rt *a = arg;
    struct weir_dag *d = a->d;
    char tname[16];
    snprintf(tname, sizeof tname, "weir:%s", a->pa->name);
    pthread_setname_np(pthread_self(), tname);
    if (weir__actor_run(a) != 0)
        weir__dag_mark_dead(d, (int)a->idx, "actor '%s' (thread) could not start: %s",
                            a->pa->name, a->note->text);
    /* Tell a teardown waiting for us (it then joins); the dag may be freed
     * by the unref below, so nothing after it touches the dag. */
    __atomic_store_n(&a->exited, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (d->exit_efd >= 0 && write(d->exit_efd, &one, sizeof one) < 0) {
        /* an eventfd write of 1 does not fail; teardown polls with a deadline anyway */
    }
    weir__dag_unref(d);
    return NULL;
}

void weir__dag_mark_dead(struct weir_dag *d, int who, const char *fmt, ...)
{
    pthread_mutex_lock(&d->dead_mu);
    if (!__atomic_load_n(&d->dead, __ATOMIC_ACQUIRE)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->dead_msg, sizeof d->dead_msg, fmt, ap);
        va_end(ap);
        __atomic_store_n(&d->dead, 1, __ATOMIC_RELEASE);
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
