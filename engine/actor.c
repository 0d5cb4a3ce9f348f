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
 * Fused workers. A worker's lead runs one schedule for all the actors
 * placed on it (compiler/plan.h): each CALL names its actor, whose state,
 * method, note and counters the call uses, while registers and channels are
 * the lead's. So a value passed between two fused actors is a register of
 * the lead, exactly as inside one actor, and failures below read the same.
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
    const struct reg *r = &c->w->regs[c->op->in[i]];
    if (len)
        *len = r->len;
    return r->data;
}

WEIR_API void *weir_call_out(weir_call *c, unsigned i, size_t len)
{
    struct actor_rt *a = c->w;
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

static void run_call(struct actor_rt *w, const struct weir__plan_op *op, uint64_t exec)
{
    struct reg *regs = w->regs;
    struct actor_rt *a = &w->d->actors[op->actor];
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
    /* Field by field: an initializer would zero failmsg (1 KiB) on every call. */
    weir_call call;
    call.a = a;
    call.w = w;
    call.op = op;
    call.exec = exec;
    call.failed = 0;
    call.failmsg[0] = '\0';
    /* Relaxed atomics: the driver reads these for its messages while we run. */
    weir__store_relaxed(&a->note->cur_method, op->method);
    weir__store_relaxed(&a->note->cur_exec, exec);
    weir__store_release(&a->note->in_call, 1);
    uint64_t prof_t0 = weir__prof_call_begin(a, op->method, exec);
    int rc = a->fns[op->method](&call, a->state);
    weir__prof_call_end(a, op->method, exec, rc != 0 || call.failed, prof_t0);
    if (w->tensor)
        weir__tensor_after_call(w, op, exec, &call);
    weir__store_release(&a->note->in_call, 0);
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
            weir__chan_unreserve(w->d->chans[w->reg_chan[op->out[k]]]);
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

/* Op i of a's schedule in execution e (waits as its channel call does):
 * 0, or < 0 when the schedule ends there (a READ of a closed channel:
 * teardown, or an upstream actor died; a failed WRITE). */
static inline __attribute__((always_inline)) int run_op(struct actor_rt *a, unsigned i,
                                                        uint64_t e)
{
    struct weir_dag *d = a->d;
    const struct weir__plan_op *op = &a->pa->ops[i];
    struct reg *r = &a->regs[op->reg];
    uint64_t trace_t0 = __builtin_expect(a->trace != NULL, 0) ? weir_now_ns() : 0;
    switch (op->kind) {
    case WEIR__OP_READ: {
        weir_chan_msg m;
        if (weir_chan_read_msg(d->chans[op->chan], a->rid[op->chan], &m, -1) < 0)
            return -EPIPE;
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
            return rc;
        break;
    }
    case WEIR__OP_RELEASE:
        weir_chan_release(d->chans[op->chan], a->rid[op->chan]);
        break;
    }
    if (__builtin_expect(trace_t0 != 0, 0))
        weir__trace_op(a, i, e, trace_t0);
    return 0;
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
        weir__store_release(&a->note->resumed, 1);
    }
    if (pa->nops == 0) {
        /* No calls, so no channel: nothing but teardown can end it. */
        weir__flag_wait(&a->note->stop);
        return;
    }
    for (uint64_t e = first;; e++)
        for (unsigned i = 0; i < pa->nops; i++)
            if (run_op(a, i, e) < 0)
                return;
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

/* Import what the schedule touches and run every member's init; 0, or the
 * init's code with a->init_failed set and its text in that member's note. */
static int actor_start(struct actor_rt *a)
{
    struct actor_rt *all = a->d->actors;
    int trc;
    /* Tensor edges: the runner (the lead of fused actors) imports the pools
     * of the channels its schedule touches. */
    if (a->d->tensor && (trc = weir__tensor_actor_start(a)) != 0) {
        snprintf(a->note->text, sizeof a->note->text, "%s", weir_errmsg());
        a->init_failed = (int)a->idx;
        return trc;
    }
    for (unsigned k = 0; k < a->nmembers; k++) {
        struct actor_rt *m = &all[a->members[k]];
        int rc = 0;
        weir__prof_actor_start(m);
        weir__store_release(&m->note->phase, WEIR__PHASE_INIT);
        if (m->init && (rc = m->init(m->state)) != 0) {
            weir__tensor_actor_stop(a);
            /* No actor_leave: whoever marks the dag dead breaks the pipeline
             * (the thread wrapper, or the process monitor), so the driver never
             * sees a closed channel before it knows why. */
            snprintf(m->note->text, sizeof m->note->text, "init returned %d", rc);
            a->init_failed = (int)m->idx;
            return rc;
        }
        weir__store_release(&m->note->phase, WEIR__PHASE_RUN);
    }
    for (unsigned k = 0; k < a->nmembers; k++)
        weir__store_release(&all[a->members[k]].note->ready, 1);
    return 0;
}

/* The members' fini, then leave (close, deregister), as the schedule ends. */
static void actor_stop(struct actor_rt *a)
{
    struct actor_rt *all = a->d->actors;
    for (unsigned k = 0; k < a->nmembers; k++) {
        struct actor_rt *m = &all[a->members[k]];
        weir__store_release(&m->note->phase, WEIR__PHASE_FINI);
        if (m->fini)
            m->fini(m->state);
    }
    actor_leave(a);
    weir__tensor_actor_stop(a);
    weir__store_release(&a->note->left, 1);
}

int weir__actor_run(struct actor_rt *a)
{
    int rc = actor_start(a);
    if (rc != 0)
        return rc;
    actor_loop(a);
    actor_stop(a);
    return 0;
}

/* ---- the driver's worker -------------------------------------------------- */

int weir__actor_inline_start(struct actor_rt *a)
{
    a->pc_e = 0;
    a->pc_i = 0;
    a->pc_state = WEIR__PC_RUN;
    int rc = actor_start(a);
    if (rc != 0)
        a->pc_state = WEIR__PC_LEFT; /* as a thread whose init failed: no fini, no leave */
    return rc;
}

/* Would op i run now without waiting? If not, *w is what to sleep on, and
 * a->blk_chan / blk_rid the channel and reader id (-1: its writer) that waits. */
static int op_ready(struct actor_rt *a, const struct weir__plan_op *op, struct weir__wait_word *w)
{
    struct weir_dag *d = a->d;
    switch (op->kind) {
    case WEIR__OP_READ:
        if (weir__chan_read_wont_block(d->chans[op->chan], a->rid[op->chan]))
            return 1;
        weir__chan_wait_word(d->chans[op->chan], 0, w);
        a->blk_chan = op->chan;
        a->blk_rid = a->rid[op->chan];
        return 0;
    case WEIR__OP_CALL:
        /* weir_call_out reserves in the output channels: each must have a slot. */
        for (unsigned k = 0; k < op->nout; k++) {
            int ch = a->reg_chan[op->out[k]];
            if (ch >= 0 && !weir__chan_space_now(d->chans[ch])) {
                weir__chan_wait_word(d->chans[ch], 1, w);
                a->blk_chan = (unsigned)ch;
                a->blk_rid = -1;
                return 0;
            }
        }
        return 1;
    case WEIR__OP_WRITE:
        /* A commit never waits; an error record (a skipped call) reserves. */
        if (!a->regs[op->reg].err || weir__chan_space_now(d->chans[op->chan]))
            return 1;
        weir__chan_wait_word(d->chans[op->chan], 1, w);
        a->blk_chan = op->chan;
        a->blk_rid = -1;
        return 0;
    default:
        return 1;
    }
}

int weir__actor_inline_ready(struct actor_rt *a)
{
    struct weir__wait_word w;
    return a->pc_state != WEIR__PC_RUN || op_ready(a, &a->pa->ops[a->pc_i], &w);
}

/*
 * Run the schedule from where it stopped, op by op, until the next op would
 * wait: the ops are actor_loop's (run_op), each run only once it cannot
 * block, so the channel calls' waits never start. An op that ends the loop there (a
 * READ of a closed channel, a failed WRITE) ends it here: the members' fini
 * run and the actor leaves, as a thread's would.
 */
int weir__actor_inline_step(struct actor_rt *a, struct weir__wait_word *w)
{
    const struct weir__plan_actor *pa = a->pa;
    if (a->pc_state != WEIR__PC_RUN)
        return -EPIPE;
    int ran = 0;
    for (;;) {
        const struct weir__plan_op *op = &pa->ops[a->pc_i];
        if (!op_ready(a, op, w))
            return ran;
        if (run_op(a, a->pc_i, a->pc_e) < 0) {
            a->pc_state = WEIR__PC_LEFT;
            actor_stop(a);
            return -EPIPE;
        }
        ran = 1;
        if (++a->pc_i == pa->nops) {
            a->pc_i = 0;
            a->pc_e++;
        }
    }
}

void weir__actor_inline_abandon(struct actor_rt *a)
{
    if (a->pc_state == WEIR__PC_RUN) {
        a->pc_state = WEIR__PC_LEFT;
        actor_stop(a);
    }
}
