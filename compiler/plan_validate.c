/* SPDX-License-Identifier: MIT */
/*
 * compiler/plan_validate.c - weir__plan_validate(), the trust boundary.
 *
 * Design notes.
 *
 * Validation is the trust boundary: a plan read from a file or the wire
 * goes through weir__plan_validate() before the engine indexes anything
 * with it, so it checks every count against its array, every index against
 * its range, and the data flow of each schedule by walking it once with
 * a small state per register:
 *
 *   unset -> READ -> MSG -> RELEASE -> FREED      (a channel message)
 *   unset -> CALL output -> VAL                   (a method output)
 *
 * A CALL may only read VAL or MSG registers; WRITE only the VAL register
 * that holds the channel's declared source (chan.src_index / src_out);
 * RELEASE only an unreleased MSG of the named channel. A READ or CALL
 * output must not overwrite an unreleased MSG, and every MSG must be
 * released by the end of the schedule (else its writer blocks forever).
 * Every channel is written exactly once per execution by its writer and
 * read exactly once by each registered reader.
 *
 * Placement: every thread actor sits on a worker that exists, every worker
 * has an actor, all on one rank (node), only a worker's lead (its lowest
 * actor index) has a schedule, registers or channels, and a CALL calls a
 * method of an actor whose calls that schedule runs (compiler/plan.h).
 * Whether the schedules can deadlock against the channel depths is the
 * compiler's separate check.
 * All work is linear in the plan's size, so a hostile file cannot make
 * validation slow: duplicate names are found by sorting, and per-register
 * state is stamped with the actor index instead of being cleared.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/chan.h>
#include <weir/tensor.h>
#include <weir/cluster.h>
#include <weir/dag.h>
#include <weir/graph.h>

#include "channels/err.h"
#include "compiler/plan.h"
#include "dag/cpulist.h"

#define PLAN_MAX_INFLIGHT 65536u     /* as weir_compile allows */

#define BAD(...) weir__seterr(-EBADMSG, __VA_ARGS__)

/* ---- validate ---------------------------------------------------------------- */

enum { REG_VAL = 1, REG_MSG = 2, REG_FREED = 3 };

struct vstate {
    uint64_t *readmask; /* per channel: positions in readers[] whose READ was seen */
    uint8_t *written;   /* per channel: its WRITE was seen */
    uint8_t *isout;     /* per channel: listed in p->outputs */
    uint32_t *stamp;    /* per register: actor index + 1 when set in that actor */
    uint32_t *def;      /* per register: op index that last set it */
    uint8_t *state;     /* per register: REG_* */
    const char **names; /* scratch for duplicate detection */
    uint32_t *args;     /* scratch for argument indices */
    int32_t *lead;      /* per worker: its lead actor, or -1 */
};

/* weir__plan_runner in constant time, over v->lead (built once: linear). */
static int32_t runner(const struct weir__plan *p, const struct vstate *v, uint32_t a)
{
    const struct weir__plan_actor *pa = &p->actors[a];
    if (pa->isolation != WEIR_THREAD)
        return (int32_t)a;
    if (pa->worker < 0 || (uint32_t)pa->worker >= p->nworkers)
        return -1;
    return v->lead[pa->worker];
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* First duplicated string among names[0..n) (sorted in place), or NULL. */
static const char *find_dup(const char **names, uint32_t n)
{
    if (n < 2)
        return NULL;
    qsort(names, n, sizeof *names, cmp_str);
    for (uint32_t i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i]))
            return names[i];
    return NULL;
}

static int check_name(const char *s, size_t max, const char *what, uint32_t idx)
{
    if (!s || !*s)
        return BAD("plan: %s %u has no name", what, idx);
    size_t n = strlen(s);
    if (n > max)
        return BAD("plan: %s %u name '%.40s...' is %zu bytes (max %zu)", what, idx, s, n, max);
    return 0;
}

static int check_header(const struct weir__plan *p)
{
    if (!p->graph || !*p->graph)
        return BAD("plan: empty graph name");
    size_t n = strlen(p->graph);
    if (n > WEIR_MAX_NAME)
        return BAD("plan: graph name '%.40s...' is %zu bytes (max %d)", p->graph, n,
                   WEIR_MAX_NAME);
    if (p->max_inflight == 0 || p->max_inflight > PLAN_MAX_INFLIGHT)
        return BAD("plan: max_inflight %u is out of range (1..%u)", p->max_inflight,
                   PLAN_MAX_INFLIGHT);
    if (p->depth == 0 || p->depth > WEIR_CHAN_MAX_DEPTH)
        return BAD("plan: depth %u is out of range (1..%u)", p->depth, WEIR_CHAN_MAX_DEPTH);
    if (p->buffer_bytes == 0 || p->buffer_bytes > WEIR_CHAN_MAX_SLOT)
        return BAD("plan: buffer_bytes %" PRIu64 " is out of range (1..%zu)", p->buffer_bytes,
                   WEIR_CHAN_MAX_SLOT);
    if (p->transport != WEIR_TRANSPORT_URING && p->transport != WEIR_TRANSPORT_ZMQ)
        return BAD("plan: unknown transport %d", p->transport);
    if (p->timeout_ms < -1)
        return BAD("plan: timeout_ms %d (use -1 for none)", p->timeout_ms);
    if (p->nactors && !p->actors)
        return BAD("plan: %u actors but no actor array", p->nactors);
    if (p->nchans && !p->chans)
        return BAD("plan: %u channels but no channel array", p->nchans);
    if (p->nouts && !p->outputs)
        return BAD("plan: %u outputs but no output array", p->nouts);
    if (p->nactors > INT32_MAX)
        return BAD("plan: %u actors (max %d)", p->nactors, INT32_MAX);
    if (p->threads < WEIR_THREADS_PER_ACTOR || p->threads > WEIR_MAX_THREADS)
        return BAD("plan: threads %d is out of range (-1..%d)", p->threads, WEIR_MAX_THREADS);
    if (p->nworkers > p->nactors)
        return BAD("plan: %u workers for %u actors", p->nworkers, p->nactors);
    return 0;
}

/* Actor ai's place: a process alone, a thread on an existing worker; only a
 * worker's lead has a schedule. */
static int check_place(const struct weir__plan *p, uint32_t ai, const struct vstate *v)
{
    const struct weir__plan_actor *a = &p->actors[ai];
    if (a->isolation == WEIR_PROCESS) {
        if (a->worker != -1)
            return BAD("plan: actor '%s' is a process but is placed on worker %d", a->name,
                       a->worker);
        return 0;
    }
    if (a->worker < 0 || (uint32_t)a->worker >= p->nworkers)
        return BAD("plan: actor '%s' is placed on worker %d of %u", a->name, a->worker,
                   p->nworkers);
    int32_t lead = v->lead[a->worker];
    if (lead != (int32_t)ai && (a->nops || a->nregs))
        return BAD("plan: actor '%s' has a schedule (%u ops, %u registers), but worker %d's "
                   "schedule is kept by actor '%s'",
                   a->name, a->nops, a->nregs, a->worker, p->actors[lead].name);
    if (p->actors[lead].node != a->node)
        return BAD("plan: actor '%s' (node %d) is on worker %d of actor '%s' (node %d): a "
                   "worker runs on one rank",
                   a->name, a->node, a->worker, p->actors[lead].name, p->actors[lead].node);
    return 0;
}

/* A channel party must run a schedule: the driver, a process actor or a lead. */
static int check_party(const struct weir__plan *p, const struct vstate *v, const char *cn,
                       int32_t who, const char *role)
{
    if (who < 0 || runner(p, v, (uint32_t)who) == who)
        return 0;
    return BAD("plan: channel '%s' %s is actor '%s', which runs on worker %d of actor '%s' "
               "(name the lead)",
               cn, role, p->actors[who].name, p->actors[who].worker,
               weir__plan_party(p, runner(p, v, (uint32_t)who)));
}

static int check_actor(const struct weir__plan *p, uint32_t ai, struct vstate *v)
{
    const struct weir__plan_actor *a = &p->actors[ai];
    int ret = check_name(a->name, WEIR_MAX_NAME, "actor", ai);
    if (ret < 0)
        return ret;
    if (a->node < 0 || a->node >= WEIR_MAX_RANKS)
        return BAD("plan: actor '%s' is placed on node %d", a->name, a->node);
    if (a->isolation != WEIR_THREAD && a->isolation != WEIR_PROCESS)
        return BAD("plan: actor '%s' has unknown isolation %d", a->name, a->isolation);
    if (a->cpus) {
        cpu_set_t set;
        char why[160];
        if (weir__cpulist_parse(a->cpus, &set, why, sizeof why) < 0)
            return BAD("plan: actor '%s': cpus '%.64s': %s", a->name, a->cpus, why);
    }
    if (a->nregs > WEIR__PLAN_MAX_REGS)
        return BAD("plan: actor '%s' has %u registers (max %u)", a->name, a->nregs,
                   WEIR__PLAN_MAX_REGS);
    if (a->nmethods && !a->methods)
        return BAD("plan: actor '%s' has %u methods but no method array", a->name, a->nmethods);
    if (a->nops && !a->ops)
        return BAD("plan: actor '%s' has %u ops but no op array", a->name, a->nops);
    for (uint32_t m = 0; m < a->nmethods; m++) {
        const struct weir__plan_method *pm = &a->methods[m];
        if (!pm->name || !*pm->name)
            return BAD("plan: actor '%s' method %u has no name", a->name, m);
        if (strlen(pm->name) > WEIR_MAX_NAME)
            return BAD("plan: actor '%s' method %u name is %zu bytes (max %d)", a->name, m,
                       strlen(pm->name), WEIR_MAX_NAME);
        if (pm->nin > WEIR_MAX_CALL_IO)
            return BAD("plan: actor '%s' method '%s' takes %u inputs (max %d)", a->name,
                       pm->name, pm->nin, WEIR_MAX_CALL_IO);
        if (pm->nout == 0 || pm->nout > WEIR_MAX_CALL_IO)
            return BAD("plan: actor '%s' method '%s' has %u outputs (1..%d)", a->name, pm->name,
                       pm->nout, WEIR_MAX_CALL_IO);
        v->names[m] = pm->name;
    }
    const char *dup = find_dup(v->names, a->nmethods);
    if (dup)
        return BAD("plan: actor '%s' has two methods named '%s'", a->name, dup);
    return 0;
}

static int reader_pos(const struct weir__plan_chan *c, int32_t who)
{
    for (uint32_t k = 0; k < c->nreaders; k++)
        if (c->readers[k] == who)
            return (int)k;
    return -1;
}

/* A tensor edge's spec: what weir_node_tensor_spec accepts (dag/tensor.c;
 * that a device edge has max_bytes and a device this build runs is the
 * engine's check at compile, with the edge's name). */
static int check_tensor(const struct weir__plan_chan *c, const char *cn)
{
    const struct weir__plan_tensor *t = &c->tensor;
    /* Which devices this build runs is the engine's check (it names the
     * edge); a plan only needs a DLPack device type. */
    if (t->device < (int32_t)kDLCPU)
        return BAD("plan: channel '%s': tensor device type %d is no DLPack device type", cn,
                   t->device);
    if (t->device_id < 0)
        return BAD("plan: channel '%s': tensor device id %d is negative", cn, t->device_id);
    if (t->max_bytes > WEIR_CHAN_MAX_SLOT)
        return BAD("plan: channel '%s': tensor max_bytes %" PRIu64 " is over %zu", cn,
                   t->max_bytes, WEIR_CHAN_MAX_SLOT);
    if (t->dtype_bits && (t->dtype_bits % 8 || t->dtype_lanes == 0))
        return BAD("plan: channel '%s': tensor dtype (code %u, bits %u, lanes %u): bits must be "
                   "a multiple of 8, lanes >= 1",
                   cn, t->dtype_code, t->dtype_bits, t->dtype_lanes);
    if (t->ndim < WEIR_TENSOR_SCALAR || t->ndim > WEIR_TENSOR_MAX_NDIM)
        return BAD("plan: channel '%s': tensor ndim %d out of range (-1..%d)", cn, t->ndim,
                   WEIR_TENSOR_MAX_NDIM);
    for (int i = 0; i < WEIR__PLAN_TENSOR_NDIM; i++)
        if (t->shape[i] < 0 || (i >= t->ndim && t->shape[i]))
            return BAD("plan: channel '%s': tensor shape[%d] = %" PRId64 " (ndim %d)", cn, i,
                       t->shape[i], t->ndim);
    return 0;
}

static int check_chan(const struct weir__plan *p, uint32_t ci, const struct vstate *v)
{
    const struct weir__plan_chan *c = &p->chans[ci];
    int ret = check_name(c->name, WEIR_CHAN_MAX_NAME, "channel", ci);
    if (ret < 0)
        return ret;
    const char *cn = c->name;
    if (c->tensor.is_tensor && (ret = check_tensor(c, cn)) < 0)
        return ret;
    if (c->writer < WEIR__PLAN_DRIVER || (c->writer >= 0 && (uint32_t)c->writer >= p->nactors))
        return BAD("plan: channel '%s' writer is actor %d of %u", cn, c->writer, p->nactors);
    if ((ret = check_party(p, v, cn, c->writer, "writer")) < 0)
        return ret;
    if (c->nreaders == 0)
        return BAD("plan: channel '%s' has no readers", cn);
    if (c->nreaders > WEIR_CHAN_MAX_READERS)
        return BAD("plan: channel '%s' has %u readers (max %d)", cn, c->nreaders,
                   WEIR_CHAN_MAX_READERS);
    if (!c->readers)
        return BAD("plan: channel '%s' has %u readers but no reader array", cn, c->nreaders);
    for (uint32_t k = 0; k < c->nreaders; k++) {
        int32_t r = c->readers[k];
        if (r < WEIR__PLAN_DRIVER || (r >= 0 && (uint32_t)r >= p->nactors))
            return BAD("plan: channel '%s' reader %u is actor %d of %u", cn, k, r, p->nactors);
        if (r == c->writer)
            return BAD("plan: channel '%s' lists its writer (%s) as a reader", cn,
                       weir__plan_party(p, r));
        if ((ret = check_party(p, v, cn, r, "reader")) < 0)
            return ret;
        for (uint32_t j = 0; j < k; j++)
            if (c->readers[j] == r)
                return BAD("plan: channel '%s' lists reader %s twice", cn, weir__plan_party(p, r));
    }
    if (c->depth == 0 || c->depth > WEIR_CHAN_MAX_DEPTH)
        return BAD("plan: channel '%s' depth %u is out of range (1..%u)", cn, c->depth,
                   WEIR_CHAN_MAX_DEPTH);
    if (c->slot_bytes == 0 || c->slot_bytes > WEIR_CHAN_MAX_SLOT)
        return BAD("plan: channel '%s' slot_bytes %" PRIu64 " is out of range (1..%zu)", cn,
                   c->slot_bytes, WEIR_CHAN_MAX_SLOT);
    if (c->transport != WEIR_TRANSPORT_URING && c->transport != WEIR_TRANSPORT_ZMQ)
        return BAD("plan: channel '%s' has unknown transport %d", cn, c->transport);
    if (c->src_kind == WEIR__SRC_ARG) {
        if (c->writer != WEIR__PLAN_DRIVER)
            return BAD("plan: channel '%s' carries argument %u but is written by actor '%s', "
                       "not the driver",
                       cn, c->src_index, weir__plan_party(p, c->writer));
        if (c->src_index >= p->nargs)
            return BAD("plan: channel '%s' carries argument %u of %u", cn, c->src_index,
                       p->nargs);
    } else if (c->src_kind == WEIR__SRC_OUT) {
        if (c->writer == WEIR__PLAN_DRIVER)
            return BAD("plan: channel '%s' carries a call output but is written by the driver",
                       cn);
        const struct weir__plan_actor *w = &p->actors[c->writer];
        if (c->src_index >= w->nops)
            return BAD("plan: channel '%s' comes from op %u of actor '%s', which has %u ops", cn,
                       c->src_index, w->name, w->nops);
        const struct weir__plan_op *op = &w->ops[c->src_index];
        if (op->kind != WEIR__OP_CALL)
            return BAD("plan: channel '%s' comes from actor '%s' op %u, which is not a CALL", cn,
                       w->name, c->src_index);
        if (c->src_out >= op->nout)
            return BAD("plan: channel '%s' carries output %u of actor '%s' op %u, which has %u "
                       "outputs",
                       cn, c->src_out, w->name, c->src_index, op->nout);
    } else {
        return BAD("plan: channel '%s' has unknown source kind %u", cn, c->src_kind);
    }
    if (reader_pos(c, WEIR__PLAN_DRIVER) >= 0 && !v->isout[ci])
        return BAD("plan: channel '%s' is read by the driver but is not a graph output", cn);
    return 0;
}

/* A READ or CALL output may not drop a message that is still held. */
static int check_overwrite(const struct weir__plan *p, const struct weir__plan_actor *a,
                           uint32_t ai, uint32_t i, uint32_t reg, const struct vstate *v)
{
    if (v->stamp[reg] == ai + 1 && v->state[reg] == REG_MSG)
        return BAD("plan: actor '%s' op %u overwrites register %u, which still holds an "
                   "unreleased message of channel '%s'",
                   a->name, i, reg, weir__plan_chan_name(p, a->ops[v->def[reg]].chan));
    return 0;
}

static void set_reg(struct vstate *v, uint32_t ai, uint32_t reg, uint32_t i, uint8_t state)
{
    v->stamp[reg] = ai + 1;
    v->def[reg] = i;
    v->state[reg] = state;
}

static int check_call(const struct weir__plan *p, uint32_t ai, uint32_t i, struct vstate *v)
{
    const struct weir__plan_actor *a = &p->actors[ai];
    const struct weir__plan_op *op = &a->ops[i];
    if (op->actor >= p->nactors)
        return BAD("plan: actor '%s' op %u calls a method of actor %u of %u", a->name, i,
                   op->actor, p->nactors);
    const struct weir__plan_actor *ca = &p->actors[op->actor];
    if (runner(p, v, op->actor) != (int32_t)ai)
        return BAD("plan: actor '%s' op %u calls a method of actor '%s', which does not run on "
                   "its worker",
                   a->name, i, ca->name);
    if (op->method >= ca->nmethods)
        return BAD("plan: actor '%s' op %u calls method %u of %u of actor '%s'", a->name, i,
                   op->method, ca->nmethods, ca->name);
    const struct weir__plan_method *m = &ca->methods[op->method];
    if (op->nin != m->nin || op->nout != m->nout)
        return BAD("plan: actor '%s' op %u calls '%s' with %u inputs and %u outputs (the method "
                   "has %u and %u)",
                   a->name, i, m->name, op->nin, op->nout, m->nin, m->nout);
    if ((op->nin && !op->in) || (op->nout && !op->out))
        return BAD("plan: actor '%s' op %u (CALL '%s') has no register array", a->name, i,
                   m->name);
    for (uint32_t k = 0; k < op->nin; k++) {
        uint32_t r = op->in[k];
        if (r >= a->nregs)
            return BAD("plan: actor '%s' op %u reads register %u of %u", a->name, i, r,
                       a->nregs);
        if (v->stamp[r] != ai + 1)
            return BAD("plan: actor '%s' op %u (CALL '%s') input %u reads register %u before "
                       "it is set",
                       a->name, i, m->name, k, r);
        if (v->state[r] == REG_FREED)
            return BAD("plan: actor '%s' op %u (CALL '%s') input %u reads register %u after "
                       "its message was released",
                       a->name, i, m->name, k, r);
    }
    for (uint32_t k = 0; k < op->nout; k++) {
        uint32_t r = op->out[k];
        if (r >= a->nregs)
            return BAD("plan: actor '%s' op %u (CALL '%s') output %u writes register %u of %u",
                       a->name, i, m->name, k, r, a->nregs);
        for (uint32_t j = 0; j < k; j++)
            if (op->out[j] == r)
                return BAD("plan: actor '%s' op %u (CALL '%s') outputs %u and %u both go to "
                           "register %u",
                           a->name, i, m->name, j, k, r);
        int ret = check_overwrite(p, a, ai, i, r, v);
        if (ret < 0)
            return ret;
    }
    for (uint32_t k = 0; k < op->nout; k++)
        set_reg(v, ai, op->out[k], i, REG_VAL);
    return 0;
}

static int check_schedule(const struct weir__plan *p, uint32_t ai, struct vstate *v)
{
    const struct weir__plan_actor *a = &p->actors[ai];
    uint32_t held = 0; /* messages read and not yet released */
    for (uint32_t i = 0; i < a->nops; i++) {
        const struct weir__plan_op *op = &a->ops[i];
        const struct weir__plan_chan *c = NULL;
        int ret;
        if (op->kind == WEIR__OP_CALL) {
            if ((ret = check_call(p, ai, i, v)) < 0)
                return ret;
            continue;
        }
        if (op->kind > WEIR__OP_RELEASE)
            return BAD("plan: actor '%s' op %u has unknown kind %u", a->name, i, op->kind);
        const char *kn = weir__plan_kind_name(op->kind);
        if (op->actor != 0)
            return BAD("plan: actor '%s' op %u (%s) names actor %u (only a CALL names one)",
                       a->name, i, kn, op->actor);
        if (op->chan >= p->nchans)
            return BAD("plan: actor '%s' op %u (%s) names channel %u of %u", a->name, i, kn,
                       op->chan, p->nchans);
        c = &p->chans[op->chan];
        if (op->reg >= a->nregs)
            return BAD("plan: actor '%s' op %u (%s %s) uses register %u of %u", a->name, i, kn,
                       c->name, op->reg, a->nregs);
        int set = v->stamp[op->reg] == ai + 1;
        if (op->kind == WEIR__OP_READ) {
            int pos = reader_pos(c, (int32_t)ai);
            if (pos < 0)
                return BAD("plan: actor '%s' op %u reads channel '%s' but is not one of its "
                           "readers",
                           a->name, i, c->name);
            if (v->readmask[op->chan] & (1ull << pos))
                return BAD("plan: actor '%s' op %u reads channel '%s' a second time", a->name, i,
                           c->name);
            if ((ret = check_overwrite(p, a, ai, i, op->reg, v)) < 0)
                return ret;
            v->readmask[op->chan] |= 1ull << pos;
            set_reg(v, ai, op->reg, i, REG_MSG);
            held++;
        } else if (op->kind == WEIR__OP_WRITE) {
            if (c->writer != (int32_t)ai)
                return BAD("plan: actor '%s' op %u writes channel '%s', whose writer is %s",
                           a->name, i, c->name, weir__plan_party(p, c->writer));
            if (v->written[op->chan])
                return BAD("plan: actor '%s' op %u writes channel '%s' a second time", a->name,
                           i, c->name);
            if (!set)
                return BAD("plan: actor '%s' op %u writes register %u to channel '%s' before "
                           "it is set",
                           a->name, i, op->reg, c->name);
            if (v->state[op->reg] != REG_VAL)
                return BAD("plan: actor '%s' op %u writes register %u to channel '%s', but it "
                           "holds a channel message, not a call output",
                           a->name, i, op->reg, c->name);
            /* Short-circuit: ops[src_index] is an earlier, already checked CALL. */
            if (v->def[op->reg] != c->src_index ||
                a->ops[c->src_index].out[c->src_out] != op->reg)
                return BAD("plan: actor '%s' op %u writes register %u to channel '%s', which "
                           "carries output %u of op %u",
                           a->name, i, op->reg, c->name, c->src_out, c->src_index);
            v->written[op->chan] = 1;
        } else { /* RELEASE */
            if (!set)
                return BAD("plan: actor '%s' op %u releases register %u before it is set",
                           a->name, i, op->reg);
            if (v->state[op->reg] == REG_VAL)
                return BAD("plan: actor '%s' op %u releases register %u, which holds a call "
                           "output, not a channel message",
                           a->name, i, op->reg);
            if (v->state[op->reg] == REG_FREED)
                return BAD("plan: actor '%s' op %u releases register %u twice", a->name, i,
                           op->reg);
            uint32_t from = a->ops[v->def[op->reg]].chan;
            if (from != op->chan)
                return BAD("plan: actor '%s' op %u releases register %u as channel '%s', but it "
                           "holds a message of channel '%s'",
                           a->name, i, op->reg, c->name, weir__plan_chan_name(p, from));
            v->state[op->reg] = REG_FREED;
            held--;
        }
    }
    if (held) {
        for (uint32_t i = 0; i < a->nops; i++) {
            const struct weir__plan_op *op = &a->ops[i];
            if (op->kind == WEIR__OP_READ && v->def[op->reg] == i &&
                v->state[op->reg] == REG_MSG)
                return BAD("plan: actor '%s' op %u reads channel '%s' into register %u and "
                           "never releases it",
                           a->name, i, weir__plan_chan_name(p, op->chan), op->reg);
        }
    }
    return 0;
}

static int check_flows(const struct weir__plan *p, const struct vstate *v)
{
    for (uint32_t ci = 0; ci < p->nchans; ci++) {
        const struct weir__plan_chan *c = &p->chans[ci];
        if (c->writer >= 0 && !v->written[ci])
            return BAD("plan: channel '%s' is never written: actor '%s' has no WRITE for it",
                       c->name, weir__plan_party(p, c->writer));
        for (uint32_t k = 0; k < c->nreaders; k++)
            if (c->readers[k] >= 0 && !(v->readmask[ci] & (1ull << k)))
                return BAD("plan: actor '%s' is a reader of channel '%s' but never reads it",
                           weir__plan_party(p, c->readers[k]), c->name);
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Two channels for one argument would make the driver write it twice. */
static int check_args(const struct weir__plan *p, uint32_t *idx)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < p->nchans; c++)
        if (p->chans[c].src_kind == WEIR__SRC_ARG)
            idx[n++] = p->chans[c].src_index;
    qsort(idx, n, sizeof *idx, cmp_u32);
    for (uint32_t k = 1; k < n; k++)
        if (idx[k] == idx[k - 1])
            return BAD("plan: argument %u has more than one channel", idx[k]);
    return 0;
}

int weir__plan_validate(const struct weir__plan *p)
{
    if (!p)
        return weir__seterr(-EINVAL, "plan: NULL plan");
    int ret = check_header(p);
    if (ret < 0)
        return ret;

    uint32_t maxregs = 1, maxnames = p->nactors;
    for (uint32_t ai = 0; ai < p->nactors; ai++) {
        const struct weir__plan_actor *a = &p->actors[ai];
        if (a->nregs > maxregs && a->nregs <= WEIR__PLAN_MAX_REGS)
            maxregs = a->nregs;
        if (a->nmethods > maxnames)
            maxnames = a->nmethods;
    }
    size_t nch = p->nchans ? p->nchans : 1;
    struct vstate v = {
        .readmask = calloc(nch, sizeof *v.readmask),
        .written = calloc(nch, 1),
        .isout = calloc(nch, 1),
        .stamp = calloc(maxregs, sizeof *v.stamp),
        .def = calloc(maxregs, sizeof *v.def),
        .state = calloc(maxregs, 1),
        .names = calloc(maxnames ? maxnames : 1, sizeof(const char *)),
        .args = calloc(nch, sizeof(uint32_t)),
        .lead = malloc((p->nworkers ? p->nworkers : 1) * sizeof(int32_t)),
    };
    if (!v.readmask || !v.written || !v.isout || !v.stamp || !v.def || !v.state || !v.names ||
        !v.args || !v.lead) {
        ret = weir__seterr(-ENOMEM, "plan: out of memory while validating");
        goto out;
    }
    for (uint32_t w = 0; w < p->nworkers; w++)
        v.lead[w] = -1;
    for (uint32_t ai = p->nactors; ai-- > 0;) {
        const struct weir__plan_actor *a = &p->actors[ai];
        if (a->isolation == WEIR_THREAD && a->worker >= 0 && (uint32_t)a->worker < p->nworkers)
            v.lead[a->worker] = (int32_t)ai;
    }

    for (uint32_t ai = 0; ai < p->nactors; ai++)
        if ((ret = check_actor(p, ai, &v)) < 0 || (ret = check_place(p, ai, &v)) < 0)
            goto out;
    for (uint32_t w = 0; w < p->nworkers; w++)
        if (v.lead[w] < 0) {
            ret = BAD("plan: worker %u has no actor", w);
            goto out;
        }
    for (uint32_t ai = 0; ai < p->nactors; ai++)
        v.names[ai] = p->actors[ai].name;
    const char *dup = find_dup(v.names, p->nactors);
    if (dup) {
        ret = BAD("plan: two actors are named '%s'", dup);
        goto out;
    }
    for (uint32_t i = 0; i < p->nouts; i++) {
        if (p->outputs[i] >= p->nchans) {
            ret = BAD("plan: output %u reads channel %u of %u", i, p->outputs[i], p->nchans);
            goto out;
        }
        v.isout[p->outputs[i]] = 1;
    }
    for (uint32_t ci = 0; ci < p->nchans; ci++)
        if ((ret = check_chan(p, ci, &v)) < 0)
            goto out;
    for (uint32_t i = 0; i < p->nouts; i++) {
        const struct weir__plan_chan *c = &p->chans[p->outputs[i]];
        if (reader_pos(c, WEIR__PLAN_DRIVER) < 0) {
            ret = BAD("plan: output %u is channel '%s', which the driver does not read", i,
                      c->name);
            goto out;
        }
    }
    if ((ret = check_args(p, v.args)) < 0)
        goto out;
    for (uint32_t ai = 0; ai < p->nactors; ai++)
        if ((ret = check_schedule(p, ai, &v)) < 0)
            goto out;
    ret = check_flows(p, &v);
out:
    free(v.readmask);
    free(v.written);
    free(v.isout);
    free(v.stamp);
    free(v.def);
    free(v.state);
    free(v.names);
    free(v.args);
    free(v.lead);
    return ret;
}

