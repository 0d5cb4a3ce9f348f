/* SPDX-License-Identifier: MIT */
/*
 * compiler/plan.c - everything about a plan except its FlatBuffers codec:
 * free, validate, canonical JSON and its hash, the human listing
 * (`weir-plan show`), Graphviz DOT, save and load.
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
 * read exactly once by each registered reader. Whether the schedules can
 * deadlock against the channel depths is the compiler's separate check.
 * All work is linear in the plan's size, so a hostile file cannot make
 * validation slow: duplicate names are found by sorting, and per-register
 * state is stamped with the actor index instead of being cleared.
 *
 * Canonical JSON: fixed key order (the order of the C structs), no
 * whitespace, integers in decimal, strings with JSON escapes. An op lists
 * only the fields its kind uses, so the hash covers exactly what the
 * engine executes. The hash is FNV-1a 64 over those bytes; it is computed
 * by streaming the same writer into the hash, so it never allocates.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir/chan.h>
#include <weir/dag.h>
#include <weir/graph.h>

#include "channels/err.h"
#include "compiler/plan.h"

#define PLAN_MAX_REGS (1u << 20)     /* registers per actor */
#define PLAN_MAX_INFLIGHT 65536u     /* as weir_compile allows */

/* The largest encoded plan the codec accepts (compiler/plan_codec.cc). */
extern const size_t weir__plan_max_bytes;

#define BAD(...) weir__seterr(-EBADMSG, __VA_ARGS__)

/* ---- free ----------------------------------------------------------------- */

void weir__plan_free(struct weir__plan *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; p->actors && i < p->nactors; i++) {
        struct weir__plan_actor *a = &p->actors[i];
        for (uint32_t m = 0; a->methods && m < a->nmethods; m++)
            free(a->methods[m].name);
        for (uint32_t k = 0; a->ops && k < a->nops; k++) {
            free(a->ops[k].in);
            free(a->ops[k].out);
        }
        free(a->name);
        free(a->methods);
        free(a->ops);
    }
    for (uint32_t c = 0; p->chans && c < p->nchans; c++) {
        free(p->chans[c].name);
        free(p->chans[c].readers);
    }
    free(p->actors);
    free(p->chans);
    free(p->outputs);
    free(p->graph);
    free(p);
}

/* ---- names used in messages ------------------------------------------------ */

static const char *kind_name(uint32_t kind)
{
    static const char *const names[] = {"READ", "CALL", "WRITE", "RELEASE"};
    return kind < 4 ? names[kind] : NULL;
}

/* Actor index or the driver; safe on any index. */
static const char *party(const struct weir__plan *p, int32_t who)
{
    if (who == WEIR__PLAN_DRIVER)
        return "driver";
    if (who < 0 || !p->actors || (uint32_t)who >= p->nactors || !p->actors[who].name)
        return "?";
    return p->actors[who].name;
}

static const char *chan_name(const struct weir__plan *p, uint32_t c)
{
    if (!p->chans || c >= p->nchans || !p->chans[c].name)
        return "?";
    return p->chans[c].name;
}

static const char *method_name(const struct weir__plan_actor *a, uint32_t m)
{
    if (!a->methods || m >= a->nmethods || !a->methods[m].name)
        return "?";
    return a->methods[m].name;
}

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
};

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
    return 0;
}

static int check_actor(const struct weir__plan *p, uint32_t ai, struct vstate *v)
{
    const struct weir__plan_actor *a = &p->actors[ai];
    int ret = check_name(a->name, WEIR_MAX_NAME, "actor", ai);
    if (ret < 0)
        return ret;
    if (a->node < 0)
        return BAD("plan: actor '%s' is placed on node %d", a->name, a->node);
    if (a->isolation != WEIR_THREAD && a->isolation != WEIR_PROCESS)
        return BAD("plan: actor '%s' has unknown isolation %d", a->name, a->isolation);
    if (a->cpu < -1)
        return BAD("plan: actor '%s' is pinned to cpu %d", a->name, a->cpu);
    if (a->nregs > PLAN_MAX_REGS)
        return BAD("plan: actor '%s' has %u registers (max %u)", a->name, a->nregs,
                   PLAN_MAX_REGS);
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

static int check_chan(const struct weir__plan *p, uint32_t ci, const struct vstate *v)
{
    const struct weir__plan_chan *c = &p->chans[ci];
    int ret = check_name(c->name, WEIR_CHAN_MAX_NAME, "channel", ci);
    if (ret < 0)
        return ret;
    const char *cn = c->name;
    if (c->writer < WEIR__PLAN_DRIVER || (c->writer >= 0 && (uint32_t)c->writer >= p->nactors))
        return BAD("plan: channel '%s' writer is actor %d of %u", cn, c->writer, p->nactors);
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
                       party(p, r));
        for (uint32_t j = 0; j < k; j++)
            if (c->readers[j] == r)
                return BAD("plan: channel '%s' lists reader %s twice", cn, party(p, r));
    }
    if (c->depth == 0 || c->depth > WEIR_CHAN_MAX_DEPTH)
        return BAD("plan: channel '%s' depth %u is out of range (1..%u)", cn, c->depth,
                   WEIR_CHAN_MAX_DEPTH);
    if (c->slot_bytes == 0 || c->slot_bytes > WEIR_CHAN_MAX_SLOT)
        return BAD("plan: channel '%s' slot_bytes %" PRIu64 " is out of range (1..%zu)", cn,
                   c->slot_bytes, WEIR_CHAN_MAX_SLOT);
    if (c->src_kind == WEIR__SRC_ARG) {
        if (c->writer != WEIR__PLAN_DRIVER)
            return BAD("plan: channel '%s' carries argument %u but is written by actor '%s', "
                       "not the driver",
                       cn, c->src_index, party(p, c->writer));
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
                   a->name, i, reg, chan_name(p, a->ops[v->def[reg]].chan));
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
    if (op->method >= a->nmethods)
        return BAD("plan: actor '%s' op %u calls method %u of %u", a->name, i, op->method,
                   a->nmethods);
    const struct weir__plan_method *m = &a->methods[op->method];
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
        const char *kn = kind_name(op->kind);
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
                           a->name, i, c->name, party(p, c->writer));
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
                           a->name, i, op->reg, c->name, chan_name(p, from));
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
                           a->name, i, chan_name(p, op->chan), op->reg);
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
                       c->name, party(p, c->writer));
        for (uint32_t k = 0; k < c->nreaders; k++)
            if (c->readers[k] >= 0 && !(v->readmask[ci] & (1ull << k)))
                return BAD("plan: actor '%s' is a reader of channel '%s' but never reads it",
                           party(p, c->readers[k]), c->name);
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
        if (a->nregs > maxregs && a->nregs <= PLAN_MAX_REGS)
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
    };
    if (!v.readmask || !v.written || !v.isout || !v.stamp || !v.def || !v.state || !v.names ||
        !v.args) {
        ret = weir__seterr(-ENOMEM, "plan: out of memory while validating");
        goto out;
    }

    for (uint32_t ai = 0; ai < p->nactors; ai++)
        if ((ret = check_actor(p, ai, &v)) < 0)
            goto out;
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
    return ret;
}

/* ---- canonical JSON and hash --------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* Output of the JSON writer: a growing string, or an FNV-1a state. */
struct sink {
    int hashing;
    int oom;
    uint64_t h;
    char *buf;
    size_t len, cap;
};

static void put(struct sink *s, const char *b, size_t n)
{
    if (s->hashing) {
        for (size_t i = 0; i < n; i++) {
            s->h ^= (unsigned char)b[i];
            s->h *= FNV_PRIME;
        }
        return;
    }
    if (s->oom)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (!nb) {
            s->oom = 1;
            return;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, b, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void put_z(struct sink *s, const char *z)
{
    put(s, z, strlen(z));
}

static void put_u(struct sink *s, uint64_t x)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRIu64, x);
    put(s, t, (size_t)n);
}

static void put_i(struct sink *s, int64_t x)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRId64, x);
    put(s, t, (size_t)n);
}

static void put_str(struct sink *s, const char *z)
{
    put(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)(z ? z : ""); *c; c++) {
        char esc[8];
        const char *e = NULL;
        switch (*c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                e = esc;
            }
        }
        if (e)
            put_z(s, e);
        else
            put(s, (const char *)c, 1);
    }
    put(s, "\"", 1);
}

/* ,"key": (no comma before the first key of an object) */
static void put_key(struct sink *s, const char *key, int first)
{
    if (!first)
        put(s, ",", 1);
    put_str(s, key);
    put(s, ":", 1);
}

static void put_u32s(struct sink *s, const uint32_t *v, uint32_t n)
{
    put(s, "[", 1);
    for (uint32_t i = 0; v && i < n; i++) {
        if (i)
            put(s, ",", 1);
        put_u(s, v[i]);
    }
    put(s, "]", 1);
}

static void emit_op(struct sink *s, const struct weir__plan_op *o)
{
    const char *kn = kind_name(o->kind);
    put_key(s, "kind", 1);
    if (kn)
        put_str(s, kn);
    else
        put_u(s, o->kind);
    if (o->kind != WEIR__OP_CALL) {
        put_key(s, "chan", 0);
        put_u(s, o->chan);
        put_key(s, "reg", 0);
        put_u(s, o->reg);
    }
    if (!kn || o->kind == WEIR__OP_CALL) {
        put_key(s, "method", 0);
        put_u(s, o->method);
        put_key(s, "node", 0);
        put_u(s, o->node);
        put_key(s, "in", 0);
        put_u32s(s, o->in, o->nin);
        put_key(s, "out", 0);
        put_u32s(s, o->out, o->nout);
    }
}

static void emit_actor(struct sink *s, const struct weir__plan_actor *a)
{
    put_key(s, "name", 1);
    put_str(s, a->name);
    put_key(s, "node", 0);
    put_i(s, a->node);
    put_key(s, "isolation", 0);
    put_i(s, a->isolation);
    put_key(s, "cpu", 0);
    put_i(s, a->cpu);
    put_key(s, "methods", 0);
    put(s, "[", 1);
    for (uint32_t m = 0; a->methods && m < a->nmethods; m++) {
        put_z(s, m ? ",{" : "{");
        put_key(s, "name", 1);
        put_str(s, a->methods[m].name);
        put_key(s, "nin", 0);
        put_u(s, a->methods[m].nin);
        put_key(s, "nout", 0);
        put_u(s, a->methods[m].nout);
        put(s, "}", 1);
    }
    put(s, "]", 1);
    put_key(s, "nregs", 0);
    put_u(s, a->nregs);
    put_key(s, "ops", 0);
    put(s, "[", 1);
    for (uint32_t i = 0; a->ops && i < a->nops; i++) {
        put_z(s, i ? ",{" : "{");
        emit_op(s, &a->ops[i]);
        put(s, "}", 1);
    }
    put(s, "]", 1);
}

static void emit_chan(struct sink *s, const struct weir__plan_chan *c)
{
    put_key(s, "name", 1);
    put_str(s, c->name);
    put_key(s, "writer", 0);
    put_i(s, c->writer);
    put_key(s, "readers", 0);
    put(s, "[", 1);
    for (uint32_t k = 0; c->readers && k < c->nreaders; k++) {
        if (k)
            put(s, ",", 1);
        put_i(s, c->readers[k]);
    }
    put(s, "]", 1);
    put_key(s, "slot_bytes", 0);
    put_u(s, c->slot_bytes);
    put_key(s, "depth", 0);
    put_u(s, c->depth);
    put_key(s, "src_kind", 0);
    if (c->src_kind == WEIR__SRC_ARG)
        put_str(s, "ARG");
    else if (c->src_kind == WEIR__SRC_OUT)
        put_str(s, "OUT");
    else
        put_u(s, c->src_kind);
    put_key(s, "src_index", 0);
    put_u(s, c->src_index);
    put_key(s, "src_out", 0);
    put_u(s, c->src_out);
}

static void emit_plan(struct sink *s, const struct weir__plan *p)
{
    put(s, "{", 1);
    put_key(s, "graph", 1);
    put_str(s, p->graph);
    put_key(s, "nargs", 0);
    put_u(s, p->nargs);
    put_key(s, "max_inflight", 0);
    put_u(s, p->max_inflight);
    put_key(s, "depth", 0);
    put_u(s, p->depth);
    put_key(s, "buffer_bytes", 0);
    put_u(s, p->buffer_bytes);
    put_key(s, "transport", 0);
    put_i(s, p->transport);
    put_key(s, "timeout_ms", 0);
    put_i(s, p->timeout_ms);
    put_key(s, "max_buffered", 0);
    put_u(s, p->max_buffered);
    put_key(s, "actors", 0);
    put(s, "[", 1);
    for (uint32_t i = 0; p->actors && i < p->nactors; i++) {
        put_z(s, i ? ",{" : "{");
        emit_actor(s, &p->actors[i]);
        put(s, "}", 1);
    }
    put(s, "]", 1);
    put_key(s, "chans", 0);
    put(s, "[", 1);
    for (uint32_t i = 0; p->chans && i < p->nchans; i++) {
        put_z(s, i ? ",{" : "{");
        emit_chan(s, &p->chans[i]);
        put(s, "}", 1);
    }
    put(s, "]", 1);
    put_key(s, "outputs", 0);
    put_u32s(s, p->outputs, p->nouts);
    put(s, "}", 1);
}

char *weir__plan_json(const struct weir__plan *p)
{
    if (!p) {
        weir__seterr(-EINVAL, "plan: NULL plan");
        return NULL;
    }
    struct sink s = {0};
    emit_plan(&s, p);
    if (s.oom) {
        free(s.buf);
        weir__seterr(-ENOMEM, "plan: out of memory while writing JSON");
        return NULL;
    }
    return s.buf;
}

uint64_t weir__plan_hash(const struct weir__plan *p)
{
    struct sink s = {.hashing = 1, .h = FNV_OFFSET};
    if (p)
        emit_plan(&s, p);
    return s.h;
}

/* ---- human listing -------------------------------------------------------- */

static int out_status(FILE *f, const char *what, const struct weir__plan *p)
{
    if (fflush(f) != 0 || ferror(f))
        return weir__seterr(-EIO, "plan '%s': writing the %s failed", p->graph ? p->graph : "?",
                            what);
    return 0;
}

static size_t flow_len(const struct weir__plan *p, const struct weir__plan_chan *c)
{
    size_t n = strlen(party(p, c->writer)) + 4;
    for (uint32_t k = 0; c->readers && k < c->nreaders; k++)
        n += strlen(party(p, c->readers[k])) + (k ? 2 : 0);
    return n;
}

static void print_flow(FILE *f, const struct weir__plan *p, const struct weir__plan_chan *c,
                       size_t width)
{
    fprintf(f, "%s -> ", party(p, c->writer));
    for (uint32_t k = 0; c->readers && k < c->nreaders; k++)
        fprintf(f, "%s%s", k ? ", " : "", party(p, c->readers[k]));
    for (size_t n = flow_len(p, c); n < width; n++)
        fputc(' ', f);
}

static void print_regs(FILE *f, const uint32_t *r, uint32_t n)
{
    for (uint32_t i = 0; r && i < n; i++)
        fprintf(f, "%sr%u", i ? ", " : "", r[i]);
}

static void print_op(FILE *f, const struct weir__plan *p, const struct weir__plan_actor *a,
                     uint32_t i)
{
    const struct weir__plan_op *o = &a->ops[i];
    const char *kn = kind_name(o->kind);
    fprintf(f, "  %4u %-7s ", i, kn ? kn : "?");
    switch (o->kind) {
    case WEIR__OP_READ:
        fprintf(f, "%s -> r%u\n", chan_name(p, o->chan), o->reg);
        break;
    case WEIR__OP_CALL:
        fprintf(f, "%s(", method_name(a, o->method));
        print_regs(f, o->in, o->nin);
        fputs(") -> ", f);
        print_regs(f, o->out, o->nout);
        fprintf(f, "   [node %u]\n", o->node);
        break;
    case WEIR__OP_WRITE:
        fprintf(f, "r%u -> %s\n", o->reg, chan_name(p, o->chan));
        break;
    case WEIR__OP_RELEASE:
        fprintf(f, "r%u (%s)\n", o->reg, chan_name(p, o->chan));
        break;
    default:
        fprintf(f, "kind %u chan %u reg %u\n", o->kind, o->chan, o->reg);
    }
}

int weir__plan_print(const struct weir__plan *p, void *FILE_out)
{
    FILE *f = FILE_out;
    if (!p || !f)
        return weir__seterr(-EINVAL, "plan: print: NULL argument");
    fprintf(f, "plan '%s'  hash %016" PRIx64 "\n", p->graph ? p->graph : "?",
            weir__plan_hash(p));
    fprintf(f, "  %u argument%s, %u output%s, %u actor%s, %u channel%s\n", p->nargs,
            p->nargs == 1 ? "" : "s", p->nouts, p->nouts == 1 ? "" : "s", p->nactors,
            p->nactors == 1 ? "" : "s", p->nchans, p->nchans == 1 ? "" : "s");
    fprintf(f,
            "  max_inflight %u, depth %u, buffer_bytes %" PRIu64
            ", transport %s, timeout_ms %d, max_buffered %u\n",
            p->max_inflight, p->depth, p->buffer_bytes,
            p->transport == WEIR_TRANSPORT_URING ? "uring"
            : p->transport == WEIR_TRANSPORT_ZMQ ? "zmq"
                                                 : "?",
            p->timeout_ms, p->max_buffered);

    size_t nw = 4, fw = 17;
    for (uint32_t c = 0; p->chans && c < p->nchans; c++) {
        size_t n = strlen(chan_name(p, c));
        if (n > nw)
            nw = n;
        n = flow_len(p, &p->chans[c]);
        if (n > fw)
            fw = n;
    }
    fprintf(f, "\nchannels\n  %4s  %-*s  %-*s  %10s  %6s  %s\n", "#", (int)nw, "name", (int)fw,
            "writer -> readers", "slot bytes", "depth", "source");
    for (uint32_t ci = 0; p->chans && ci < p->nchans; ci++) {
        const struct weir__plan_chan *c = &p->chans[ci];
        fprintf(f, "  %4u  %-*s  ", ci, (int)nw, chan_name(p, ci));
        print_flow(f, p, c, fw);
        fprintf(f, "  %10" PRIu64 "  %6u  ", c->slot_bytes, c->depth);
        if (c->src_kind == WEIR__SRC_ARG)
            fprintf(f, "arg %u\n", c->src_index);
        else
            fprintf(f, "%s op %u out %u\n", party(p, c->writer), c->src_index, c->src_out);
    }

    for (uint32_t ai = 0; p->actors && ai < p->nactors; ai++) {
        const struct weir__plan_actor *a = &p->actors[ai];
        char cpu[16];
        if (a->cpu < 0)
            snprintf(cpu, sizeof cpu, "unpinned");
        else
            snprintf(cpu, sizeof cpu, "cpu %d", a->cpu);
        fprintf(f, "\nactor %u '%s'  node %d, %s, %s, %u register%s\n", ai,
                a->name ? a->name : "?", a->node,
                a->isolation == WEIR_PROCESS ? "process"
                : a->isolation == WEIR_THREAD ? "thread"
                                              : "?",
                cpu, a->nregs, a->nregs == 1 ? "" : "s");
        fputs("  methods:", f);
        for (uint32_t m = 0; a->methods && m < a->nmethods; m++)
            fprintf(f, "%s %s(%u -> %u)", m ? "," : "", method_name(a, m), a->methods[m].nin,
                    a->methods[m].nout);
        fputc('\n', f);
        for (uint32_t i = 0; a->ops && i < a->nops; i++)
            print_op(f, p, a, i);
    }

    fputs("\noutputs\n", f);
    for (uint32_t i = 0; p->outputs && i < p->nouts; i++)
        fprintf(f, "  %4u <- %s (channel %u)\n", i, chan_name(p, p->outputs[i]), p->outputs[i]);
    return out_status(f, "listing", p);
}

/* ---- DOT ---------------------------------------------------------------- */

/* A DOT double-quoted string. */
static void dot_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (s = s ? s : ""; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* The DOT node that produces channel c's value (a call, or an argument). */
static void dot_src(FILE *f, const struct weir__plan *p, const struct weir__plan_chan *c)
{
    if (c->writer == WEIR__PLAN_DRIVER || c->writer < 0 || (uint32_t)c->writer >= p->nactors)
        fprintf(f, "arg%u", c->src_index);
    else
        fprintf(f, "a%d_op%u", c->writer, c->src_index);
}

int weir__plan_dot(const struct weir__plan *p, void *FILE_out)
{
    FILE *f = FILE_out;
    if (!p || !f)
        return weir__seterr(-EINVAL, "plan: dot: NULL argument");
    uint32_t maxregs = 1;
    for (uint32_t ai = 0; p->actors && ai < p->nactors; ai++)
        if (p->actors[ai].nregs > maxregs && p->actors[ai].nregs <= PLAN_MAX_REGS)
            maxregs = p->actors[ai].nregs;
    uint32_t *def = malloc(maxregs * sizeof *def); /* register -> op that last set it */
    if (!def)
        return weir__seterr(-ENOMEM, "plan: out of memory while writing DOT");

    fputs("digraph ", f);
    dot_str(f, p->graph);
    fputs(" {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
          "  edge [fontname=\"Helvetica\", fontsize=10];\n",
          f);
    for (uint32_t i = 0; i < p->nargs && i < 4096; i++)
        fprintf(f, "  arg%u [shape=ellipse, label=\"arg %u\"];\n", i, i);
    fputs("  outputs [shape=doubleoctagon];\n", f);

    for (uint32_t ai = 0; p->actors && ai < p->nactors; ai++) {
        const struct weir__plan_actor *a = &p->actors[ai];
        fprintf(f, "  subgraph cluster_a%u {\n    label=", ai);
        dot_str(f, a->name);
        fputs(";\n    style=rounded;\n", f);
        for (uint32_t i = 0; a->ops && i < a->nops; i++) {
            if (a->ops[i].kind != WEIR__OP_CALL)
                continue;
            char label[2 * WEIR_MAX_NAME + 8];
            snprintf(label, sizeof label, "%s.%s", a->name ? a->name : "?",
                     method_name(a, a->ops[i].method));
            fprintf(f, "    a%u_op%u [label=", ai, i);
            dot_str(f, label);
            fputs("];\n", f);
        }
        fputs("  }\n", f);
    }

    /* Edges into each call: from the producer of each input register. */
    for (uint32_t ai = 0; p->actors && ai < p->nactors; ai++) {
        const struct weir__plan_actor *a = &p->actors[ai];
        if (a->nregs > PLAN_MAX_REGS)
            continue;
        for (uint32_t r = 0; r < a->nregs; r++)
            def[r] = UINT32_MAX;
        for (uint32_t i = 0; a->ops && i < a->nops; i++) {
            const struct weir__plan_op *o = &a->ops[i];
            if (o->kind == WEIR__OP_READ && o->reg < a->nregs)
                def[o->reg] = i;
            if (o->kind != WEIR__OP_CALL)
                continue;
            for (uint32_t k = 0; o->in && k < o->nin; k++) {
                uint32_t r = o->in[k];
                uint32_t d = r < a->nregs ? def[r] : UINT32_MAX;
                if (d == UINT32_MAX)
                    continue;
                const struct weir__plan_op *src = &a->ops[d];
                if (src->kind == WEIR__OP_READ) {
                    if (!p->chans || src->chan >= p->nchans)
                        continue;
                    fputs("  ", f);
                    dot_src(f, p, &p->chans[src->chan]);
                    fprintf(f, " -> a%u_op%u [label=", ai, i);
                    dot_str(f, chan_name(p, src->chan));
                    fputs("];\n", f);
                } else {
                    fprintf(f, "  a%u_op%u -> a%u_op%u [style=dashed, label=\"r%u\"];\n", ai, d,
                            ai, i, r);
                }
            }
            for (uint32_t k = 0; o->out && k < o->nout; k++)
                if (o->out[k] < a->nregs)
                    def[o->out[k]] = i;
        }
    }
    for (uint32_t i = 0; p->outputs && i < p->nouts; i++) {
        if (!p->chans || p->outputs[i] >= p->nchans)
            continue;
        char label[WEIR_CHAN_MAX_NAME + 24];
        snprintf(label, sizeof label, "%s [out %u]", chan_name(p, p->outputs[i]), i);
        fputs("  ", f);
        dot_src(f, p, &p->chans[p->outputs[i]]);
        fputs(" -> outputs [label=", f);
        dot_str(f, label);
        fputs("];\n", f);
    }
    fputs("}\n", f);
    free(def);
    return out_status(f, "DOT", p);
}

/* ---- save / load ----------------------------------------------------------- */

/* Put the path into a codec/validation message: "plan: x" -> "plan 'path': x". */
static int with_path(int ret, const char *path)
{
    const char *m = weir_errmsg();
    if (!strncmp(m, "plan: ", 6)) {
        char tail[512];
        snprintf(tail, sizeof tail, "%s", m + 6);
        weir__seterr(ret, "plan '%s': %s", path, tail);
    }
    return ret;
}

int weir__plan_save(const struct weir__plan *p, const char *path)
{
    if (!p || !path)
        return weir__seterr(-EINVAL, "plan: save: NULL argument");
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret = weir__plan_encode(p, &buf, &len);
    if (ret < 0)
        return with_path(ret, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        ret = -errno;
        weir__seterr(ret, "plan '%s': cannot create: %s", path, weir__strerror(ret));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO;
            weir__seterr(ret, "plan '%s': write failed: %s", path, weir__strerror(ret));
            close(fd);
            goto out;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0) {
        ret = -errno;
        weir__seterr(ret, "plan '%s': write failed: %s", path, weir__strerror(ret));
    }
out:
    free(buf);
    return ret;
}

int weir__plan_load(const char *path, struct weir__plan **out)
{
    if (!path || !out)
        return weir__seterr(-EINVAL, "plan: load: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int ret = -errno;
        return weir__seterr(ret, "plan '%s': cannot open: %s", path, weir__strerror(ret));
    }
    /* Read to EOF (works for pipes too), at most one byte past the limit. */
    size_t max = weir__plan_max_bytes, len = 0, cap = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < max)
        cap = (size_t)st.st_size + 1;
    if (cap < 4096)
        cap = 4096;
    uint8_t *buf = malloc(cap);
    int ret = 0;
    if (!buf) {
        ret = weir__seterr(-ENOMEM, "plan '%s': out of memory", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                ret = weir__seterr(-EBADMSG, "plan '%s': too large (more than %zu bytes)", path,
                                   max);
                goto out;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                ret = weir__seterr(-ENOMEM, "plan '%s': out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            weir__seterr(ret, "plan '%s': cannot read: %s", path, weir__strerror(ret));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    ret = weir__plan_decode(buf, len, out);
    if (ret < 0)
        with_path(ret, path);
out:
    close(fd);
    free(buf);
    return ret;
}
