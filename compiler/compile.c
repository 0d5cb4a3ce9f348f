/* SPDX-License-Identifier: MIT */
/*
 * compiler/compile.c - lowering a graph to a plan, and the deadlock check.
 *
 * Design notes.
 *
 * Channels. Every value that crosses an actor boundary gets exactly one
 * channel, written by its producer and read by each consuming actor once
 * (multicast, not copies); the driver is a reader when the value is a
 * graph output. Each execution argument gets one channel written by the
 * driver. Values consumed only inside their producing actor get no
 * channel: they stay in a register.
 *
 * Schedules. Graph nodes are created in topological order (a call's
 * inputs exist before it), so node-id order is one global topological
 * order. Each actor's schedule lists its calls in that order; before a
 * call it READs each input channel not yet read in this execution, after
 * it WRITEs each output that has a channel and RELEASEs every message
 * whose last use in this actor was this call. Because all schedules follow
 * one topological order and every channel carries one message per
 * execution, a wait can only be on an earlier node - no cycle - as long as
 * every channel can hold what the driver keeps in flight.
 *
 * Placement and fusion. Thread actors are placed on workers first
 * (place_actors, rules in <weir/dag.h>); from then on lowering works on
 * "units" - a process actor, or a worker, represented by its lead actor
 * (compiler/plan.h) - instead of actors: a value crosses a channel only
 * between units, and a unit's schedule lists the calls of all its actors
 * in node-id order. So fusing is the same lowering as before with a
 * coarser notion of "the same actor": the fused schedule follows the one
 * global topological order (no worker waits on a later node of its own),
 * edges between fused actors stay in registers, and the deadlock check
 * below simulates the fused schedules like any others.
 *
 * Deadlock check. That last condition depends on the options (depth vs.
 * max_inflight), and plans can be loaded from anywhere, so the compiler
 * does not argue: it simulates. The actors' schedules and the driver's
 * pattern (write the arguments of execution e after reading the outputs of
 * execution e - max_inflight) run against the channel depths for enough
 * executions to reach a steady state. If no party can move before all
 * are done, the wait-for graph (reader -> writer of an empty channel;
 * writer -> the slowest reader of a full one) has a cycle, which the error
 * message spells out.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/dag.h>

#include "channels/err.h"
#include "compiler/compile.h"
#include "dag/cpulist.h"
#include "dag/graph_internal.h"

int weir__graph_validate(const weir_graph *g);

static char *xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

/* Dynamic op list. */
struct oplist {
    struct weir__plan_op *ops;
    unsigned n, cap;
};

static struct weir__plan_op *op_push(struct oplist *l)
{
    if (l->n == l->cap) {
        unsigned nc = l->cap ? l->cap * 2 : 16;
        struct weir__plan_op *p = realloc(l->ops, nc * sizeof *p);
        if (!p)
            return NULL;
        l->ops = p;
        l->cap = nc;
    }
    struct weir__plan_op *o = &l->ops[l->n++];
    memset(o, 0, sizeof *o);
    return o;
}

/* Value ids: calls' outputs are (node id, out); inputs are args. */
struct value_info {
    int chan; /* channel index, -1 if none */
};

/* The slot size of the channel of value (n, out): a weir_node_buffer_bytes
 * hint on the node itself (an input or a single-output call) or on a
 * weir_ret() pick of it, else the dag's default. */
static size_t value_hint(const weir_graph *g, const weir_node *n, unsigned out, size_t dflt)
{
    if (n->buffer_bytes && (n->kind == WEIR__N_INPUT || out == 0))
        return n->buffer_bytes;
    for (unsigned k = 0; k < g->nnodes; k++) {
        const weir_node *r = g->nodes[k];
        if (r->kind == WEIR__N_RET && r->call == n && r->out == out && r->buffer_bytes)
            return r->buffer_bytes;
    }
    return dflt;
}

/* The links' transport of the channel of value (n, out): a
 * weir_node_transport on the node itself or on a weir_ret() pick of it,
 * else the dag's. */
static int32_t value_transport(const weir_graph *g, const weir_node *n, unsigned out,
                               int32_t dflt)
{
    if (n->transport1 && (n->kind == WEIR__N_INPUT || out == 0))
        return n->transport1 - 1 == WEIR_TRANSPORT_DEFAULT ? dflt : n->transport1 - 1;
    for (unsigned k = 0; k < g->nnodes; k++) {
        const weir_node *r = g->nodes[k];
        if (r->kind == WEIR__N_RET && r->call == n && r->out == out && r->transport1)
            return r->transport1 - 1 == WEIR_TRANSPORT_DEFAULT ? dflt : r->transport1 - 1;
    }
    return dflt;
}

/* 1 if two CPU lists (checked already) name the same CPUs. */
static int same_cpus(const char *x, const char *y)
{
    cpu_set_t a, b;
    char why[160];
    if (weir__cpulist_parse(x, &a, why, sizeof why) < 0 ||
        weir__cpulist_parse(y, &b, why, sizeof why) < 0)
        return 0;
    return CPU_EQUAL(&a, &b);
}

/* CPUs this process may run on (the automatic placement's measure of "cores"). */
static unsigned usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? (unsigned)n : 1;
}

/*
 * Place the thread actors on workers (rules in <weir/dag.h>): sets
 * p->actors[i].worker, p->nworkers and unit[i] (the lead actor whose
 * schedule runs actor i's calls; i itself for a process actor). Explicit
 * placements land on workers 1..threads, the automatic ones are cut into
 * contiguous runs of the first-call order, actors alone get a worker each;
 * empty workers are dropped and the rest numbered in that order.
 */
/* qsort_r comparator over actor indices by their slot (place_actors). */
static int by_slot(const void *x, const void *y, void *slots)
{
    const int64_t *sl = slots;
    int64_t a = sl[*(const unsigned *)x], b = sl[*(const unsigned *)y];
    return a < b ? -1 : a > b;
}

static int place_actors(const weir_graph *g, const weir_compile_opts *o, struct weir__plan *p,
                        int32_t *unit)
{
    int T = o ? o->threads : 0;
    unsigned na = g->nactors;
    if (T < WEIR_THREADS_PER_ACTOR || T > WEIR_MAX_THREADS)
        return weir__seterr(-EINVAL,
                            "graph '%s': threads %d is out of range (0: automatic, -1: one per "
                            "actor, 1..%d workers)",
                            g->name, T, WEIR_MAX_THREADS);
    unsigned nthr = 0;
    for (unsigned i = 0; i < na; i++) {
        const weir_actor *a = g->actors[i];
        int w = a->opts.worker;
        if (a->opts.isolation != WEIR_THREAD) {
            if (w != WEIR_WORKER_AUTO)
                return weir__seterr(-EINVAL,
                                    "actor '%s': worker %d, but a WEIR_PROCESS actor runs alone "
                                    "in its process (leave worker 0)",
                                    a->name, w);
            continue;
        }
        nthr++;
        if (w < WEIR_WORKER_ALONE)
            return weir__seterr(-EINVAL,
                                "actor '%s': worker %d is not a worker (0: automatic, 1..threads, "
                                "or WEIR_WORKER_ALONE)",
                                a->name, w);
        if (w > 0 && T <= 0)
            return weir__seterr(-EINVAL,
                                "actor '%s': worker %d needs weir_compile_opts.threads >= %d "
                                "(threads is %d)",
                                a->name, w, w, T);
        if (w > 0 && w > T)
            return weir__seterr(-EINVAL,
                                "actor '%s': worker %d is out of range (threads = %d: workers "
                                "1..%d)",
                                a->name, w, T, T);
    }
    /* Workers for the automatic actors: T, or with T = 0, once the thread
     * actors outnumber the CPUs, one per CPU but the driver's (else none: a
     * thread per actor). Measured in <weir/dag.h>. */
    unsigned N = 0, ncpu = usable_cpus();
    /* Fusion is per rank: threads = N gives each rank N workers, and a worker
     * only ever holds actors of one rank. Automatic placement needs every
     * rank to agree on the plan (its hash is checked at join), and the ranks'
     * CPU counts need not agree: a graph that spans ranks runs a thread per
     * actor unless threads is given. */
    unsigned nranks = 1;
    for (unsigned i = 0; i < na; i++)
        if (g->actors[i]->opts.node >= 0 && (unsigned)g->actors[i]->opts.node + 1 > nranks)
            nranks = (unsigned)g->actors[i]->opts.node + 1;
    int spans = nranks > 1;
    if (T > 0)
        N = (unsigned)T;
    else if (T == WEIR_THREADS_AUTO && nthr > ncpu && !spans)
        N = ncpu > 1 ? ncpu - 1 : 1;
    /* slot[i]: rank * S + (0..N-1 a shared worker; N + k: alone, k-th of its
     * rank); -1: process. Slots are only compared, never indexed. */
    const int64_t S = (int64_t)N + na;
    int64_t *slot = malloc((na ? na : 1) * sizeof *slot);
    unsigned *order = malloc((na ? na : 1) * sizeof *order);
    unsigned *first = malloc((na ? na : 1) * sizeof *first);
    unsigned *nalone = calloc(nranks, sizeof *nalone);
    int32_t *renum = NULL;
    if (!slot || !order || !first || !nalone)
        goto oom;
    for (unsigned i = 0; i < na; i++)
        first[i] = g->nnodes;
    for (unsigned k = g->nnodes; k-- > 0;)
        if (g->nodes[k]->kind == WEIR__N_CALL)
            first[g->nodes[k]->actor->idx] = k;
    for (unsigned r = 0; r < nranks; r++) {
        unsigned nauto = 0;
        const int64_t base = (int64_t)r * S;
        for (unsigned i = 0; i < na; i++) {
            const weir_actor *a = g->actors[i];
            int w = a->opts.worker;
            if ((unsigned)(a->opts.node < 0 ? 0 : a->opts.node) != r)
                continue;
            if (a->opts.isolation != WEIR_THREAD)
                slot[i] = -1;
            else if (w > 0)
                slot[i] = base + w - 1;
            else if (w == WEIR_WORKER_ALONE || N == 0 || a->cpus)
                slot[i] = base + (int64_t)N + nalone[r]++;
            else
                order[nauto++] = i;
        }
        /* Automatic actors by first call (insertion sort: graphs are small), then cut. */
        for (unsigned x = 1; x < nauto; x++)
            for (unsigned y = x; y > 0 && first[order[y - 1]] > first[order[y]]; y--) {
                unsigned t = order[y];
                order[y] = order[y - 1];
                order[y - 1] = t;
            }
        for (unsigned x = 0; x < nauto; x++)
            slot[order[x]] = base + (int64_t)(((uint64_t)x * N) / nauto);
    }
    /* A worker thread is pinned like its actors: they must agree. */
    for (unsigned i = 0; i < na; i++)
        for (unsigned j = 0; j < i; j++)
            if (slot[i] >= 0 && slot[i] == slot[j] && g->actors[i]->cpus && g->actors[j]->cpus &&
                !same_cpus(g->actors[i]->cpus, g->actors[j]->cpus)) {
                int rc = weir__seterr(-EINVAL,
                                      "actor '%s' (cpus '%s') and actor '%s' (cpus '%s') are both "
                                      "on worker %lld: one thread cannot be pinned to both",
                                      g->actors[j]->name, g->actors[j]->cpus,
                                      g->actors[i]->name, g->actors[i]->cpus,
                                      (long long)slot[i] + 1);
                free(slot);
                free(order);
                free(first);
                free(nalone);
                return rc;
            }
    /* Number the non-empty slots densely, in slot order (so by rank): sort
     * the actors by slot (order[] is free again), then count distinct runs. */
    renum = malloc((na ? na : 1) * sizeof *renum);
    if (!renum)
        goto oom;
    unsigned nthreaded = 0;
    for (unsigned i = 0; i < na; i++)
        if (slot[i] >= 0)
            order[nthreaded++] = i;
    qsort_r(order, nthreaded, sizeof *order, by_slot, slot);
    uint32_t nw = 0;
    for (unsigned x = 0; x < nthreaded; x++) {
        if (x && slot[order[x]] != slot[order[x - 1]])
            nw++;
        renum[order[x]] = (int32_t)nw;
    }
    nw += nthreaded > 0;
    p->nworkers = nw;
    p->threads = T;
    for (unsigned i = 0; i < na; i++) {
        p->actors[i].worker = slot[i] >= 0 ? renum[i] : -1;
        unit[i] = (int32_t)i;
    }
    for (unsigned i = 0; i < na; i++)
        if (p->actors[i].worker >= 0)
            unit[i] = weir__plan_worker_lead(p, (uint32_t)p->actors[i].worker);
    free(slot);
    free(order);
    free(first);
    free(nalone);
    free(renum);
    return 0;
oom:
    free(slot);
    free(order);
    free(first);
    free(nalone);
    free(renum);
    return weir__seterr(-ENOMEM, "graph '%s': out of memory while placing actors", g->name);
}

int weir__compile_plan(const weir_graph *g, const weir_compile_opts *o, struct weir__plan **out)
{
    int ret = weir__graph_validate(g);
    if (ret < 0)
        return ret;
    unsigned K = o && o->max_inflight ? o->max_inflight : WEIR_DEFAULT_MAX_INFLIGHT;
    unsigned depth = o && o->depth ? o->depth : K;
    size_t slot = o && o->buffer_bytes ? o->buffer_bytes : WEIR_DEFAULT_BUFFER_BYTES;
    int timeout = o && o->timeout_ms ? o->timeout_ms : WEIR_DEFAULT_TIMEOUT_MS;
    unsigned maxbuf = o && o->max_buffered ? o->max_buffered : WEIR_DEFAULT_MAX_BUFFERED;
    if (K > 65536)
        return weir__seterr(-EINVAL, "graph '%s': max_inflight %u is too large (max 65536)",
                            g->name, K);
    if (depth > WEIR_CHAN_MAX_DEPTH)
        return weir__seterr(-EINVAL, "graph '%s': depth %u exceeds the maximum %u", g->name,
                            depth, WEIR_CHAN_MAX_DEPTH);
    if (o && o->transport != WEIR_TRANSPORT_URING && o->transport != WEIR_TRANSPORT_ZMQ)
        return weir__seterr(-EINVAL, "graph '%s': unknown transport %d", g->name, o->transport);
    if (timeout < -1)
        return weir__seterr(-EINVAL, "graph '%s': timeout_ms %d (use -1 for none)", g->name,
                            timeout);

    struct weir__plan *p = calloc(1, sizeof *p);
    unsigned nn = g->nnodes;
    /* For each node id and output: channel index or -1. chan_of[id * ?]: use offsets. */
    unsigned *voff = calloc(nn + 1, sizeof *voff);
    int32_t *unit = malloc((g->nactors ? g->nactors : 1) * sizeof *unit);
    int *vchan = NULL;
    unsigned nvals = 0;
    if (!p || !voff || !unit)
        goto oom;
    p->graph = xstrdup(g->name);
    p->max_inflight = K;
    p->depth = depth;
    p->buffer_bytes = slot;
    p->transport = o ? o->transport : WEIR_TRANSPORT_URING;
    p->timeout_ms = timeout;
    p->max_buffered = maxbuf;
    for (unsigned k = 0; k < nn; k++) {
        voff[k] = nvals;
        const weir_node *n = g->nodes[k];
        if (n->kind == WEIR__N_CALL)
            nvals += n->nout;
        else if (n->kind == WEIR__N_INPUT)
            nvals += 1;
    }
    voff[nn] = nvals;
    vchan = malloc((nvals ? nvals : 1) * sizeof *vchan);
    if (!vchan)
        goto oom;
    for (unsigned v = 0; v < nvals; v++)
        vchan[v] = -1;

    /* Actors and methods. */
    p->nactors = g->nactors;
    p->actors = calloc(g->nactors ? g->nactors : 1, sizeof *p->actors);
    if (!p->actors)
        goto oom;
    for (unsigned i = 0; i < g->nactors; i++) {
        const weir_actor *a = g->actors[i];
        struct weir__plan_actor *pa = &p->actors[i];
        pa->name = xstrdup(a->name);
        pa->node = a->opts.node;
        pa->isolation = a->opts.isolation;
        if (a->cpus) {
            cpu_set_t set;
            char why[160], canon[1024];
            if (weir__cpulist_parse(a->cpus, &set, why, sizeof why) < 0) {
                /* weir__graph_check_actors ran first: only a graph changed since. */
                free(voff);
                free(vchan);
                weir__plan_free(p);
                return weir__seterr(-EINVAL, "actor '%s': cpus '%s': %s", a->name, a->cpus, why);
            }
            weir__cpulist_format(&set, canon, sizeof canon);
            if (!(pa->cpus = xstrdup(canon)))
                goto oom;
        }
        pa->nmethods = a->nmethods;
        pa->methods = calloc(a->nmethods ? a->nmethods : 1, sizeof *pa->methods);
        if (!pa->name || !pa->methods)
            goto oom;
        for (unsigned m = 0; m < a->nmethods; m++) {
            pa->methods[m].name = xstrdup(a->methods[m].name);
            pa->methods[m].nin = a->methods[m].nin;
            pa->methods[m].nout = a->methods[m].nout;
            if (!pa->methods[m].name)
                goto oom;
        }
    }
    if ((ret = place_actors(g, o, p, unit)) < 0) {
        free(voff);
        free(vchan);
        free(unit);
        weir__plan_free(p);
        return ret;
    }
#define UNIT(actor) ((unsigned)unit[(actor)->idx])

    /* Channels: consumer sets per value. readers bitmap over actors + driver. */
    unsigned nreaders_max = g->nactors + 1;
    unsigned char *rd = calloc((size_t)(nvals ? nvals : 1) * nreaders_max, 1);
    if (!rd)
        goto oom;
#define RD(v, a) rd[(size_t)(v) * nreaders_max + (a)]
    unsigned nargs = 0;
    for (unsigned k = 0; k < nn; k++) {
        const weir_node *n = g->nodes[k];
        if (n->kind == WEIR__N_INPUT && n->argi + 1 > nargs)
            nargs = n->argi + 1;
        if (n->kind != WEIR__N_CALL)
            continue;
        for (unsigned j = 0; j < n->nin; j++) {
            const weir_node *src = n->in[j], *call = NULL;
            unsigned oi = 0;
            if (weir__node_value(src, &call, &oi)) {
                if (UNIT(call->actor) != UNIT(n->actor))
                    RD(voff[call->id] + oi, UNIT(n->actor)) = 1;
            } else {
                RD(voff[src->id], UNIT(n->actor)) = 1;
            }
        }
    }
    for (unsigned i = 0; i < g->nouts; i++) {
        const weir_node *call = NULL;
        unsigned oi = 0;
        weir__node_value(g->outs[i], &call, &oi);
        RD(voff[call->id] + oi, g->nactors) = 1;
    }
    p->nargs = nargs;
    /* Create channels: arguments first (arg0..), then call outputs in node order. */
    unsigned nch = 0;
    for (unsigned pass = 0; pass < 2; pass++) {
        for (unsigned k = 0; k < nn; k++) {
            const weir_node *n = g->nodes[k];
            if ((pass == 0) != (n->kind == WEIR__N_INPUT) || n->kind == WEIR__N_RET)
                continue;
            unsigned nv = n->kind == WEIR__N_CALL ? n->nout : 1;
            for (unsigned oi = 0; oi < nv; oi++) {
                unsigned v = voff[k] + oi;
                unsigned cnt = 0;
                for (unsigned a = 0; a < nreaders_max; a++)
                    cnt += RD(v, a);
                if (cnt)
                    vchan[v] = (int)nch++;
            }
        }
        /* Args must be created in argi order for readability: renumber below. */
    }
    p->nchans = nch;
    p->chans = calloc(nch ? nch : 1, sizeof *p->chans);
    if (!p->chans) {
        free(rd);
        goto oom;
    }
    for (unsigned k = 0; k < nn; k++) {
        const weir_node *n = g->nodes[k];
        if (n->kind == WEIR__N_RET)
            continue;
        unsigned nv = n->kind == WEIR__N_CALL ? n->nout : 1;
        for (unsigned oi = 0; oi < nv; oi++) {
            unsigned v = voff[k] + oi;
            if (vchan[v] < 0)
                continue;
            struct weir__plan_chan *c = &p->chans[vchan[v]];
            char name[3 * WEIR_MAX_NAME];
            if (n->kind == WEIR__N_INPUT) {
                snprintf(name, sizeof name, "arg%u", n->argi);
                c->writer = WEIR__PLAN_DRIVER;
                c->src_kind = WEIR__SRC_ARG;
                c->src_index = n->argi;
            } else {
                snprintf(name, sizeof name, "%s.%s.out%u", n->actor->name,
                         n->actor->methods[n->method].name, oi);
                /* Several calls of one method: disambiguate with the node id. */
                for (unsigned k2 = 0; k2 < nn; k2++)
                    if (k2 != k && g->nodes[k2]->kind == WEIR__N_CALL &&
                        g->nodes[k2]->actor == n->actor && g->nodes[k2]->method == n->method) {
                        snprintf(name, sizeof name, "%s.%s#%u.out%u", n->actor->name,
                                 n->actor->methods[n->method].name, k, oi);
                        break;
                    }
                c->writer = (int32_t)UNIT(n->actor);
                c->src_kind = WEIR__SRC_OUT;
                c->src_index = k; /* node id; fixed up to the op index below */
                c->src_out = oi;
            }
            c->name = xstrdup(name);
            c->slot_bytes = value_hint(g, n, oi, slot);
            c->transport = value_transport(g, n, oi, p->transport);
            c->depth = depth;
            const struct weir__tensor_mark *tm = weir__graph_tensor(g, k, oi);
            if (tm) { /* the plan records the tensor edge (engine/tensor.c runs it) */
                struct weir__plan_tensor *t = &c->tensor;
                t->is_tensor = 1;
                t->device = (int32_t)tm->spec.device;
                t->device_id = tm->spec.device_id;
                t->max_bytes = tm->spec.max_bytes;
                t->dtype_code = tm->spec.dtype.code;
                t->dtype_bits = tm->spec.dtype.bits;
                t->dtype_lanes = tm->spec.dtype.lanes;
                t->ndim = tm->spec.ndim;
                for (int d = 0; d < tm->spec.ndim; d++)
                    t->shape[d] = tm->spec.shape[d];
            }
            unsigned cnt = 0;
            for (unsigned a = 0; a < nreaders_max; a++)
                cnt += RD(v, a);
            c->readers = malloc(cnt * sizeof *c->readers);
            if (!c->name || !c->readers) {
                free(rd);
                goto oom;
            }
            for (unsigned a = 0; a < nreaders_max; a++)
                if (RD(v, a))
                    c->readers[c->nreaders++] =
                        a == g->nactors ? WEIR__PLAN_DRIVER : (int32_t)a;
        }
    }
    free(rd);
#undef RD
    p->nouts = g->nouts;
    p->outputs = malloc(g->nouts * sizeof *p->outputs);
    if (!p->outputs)
        goto oom;
    for (unsigned i = 0; i < g->nouts; i++) {
        const weir_node *call = NULL;
        unsigned oi = 0;
        weir__node_value(g->outs[i], &call, &oi);
        p->outputs[i] = (uint32_t)vchan[voff[call->id] + oi];
    }

    /* Schedules. */
    int *vreg = malloc((nvals ? nvals : 1) * sizeof *vreg);
    unsigned *lastuse = malloc((nvals ? nvals : 1) * sizeof *lastuse);
    if (!vreg || !lastuse) {
        free(vreg);
        free(lastuse);
        goto oom;
    }
    for (unsigned ai = 0; ai < g->nactors; ai++) {
        /* One schedule per unit, kept by its lead; the others of a worker have none. */
        if (unit[ai] != (int32_t)ai)
            continue;
        struct weir__plan_actor *pa = &p->actors[ai];
        struct oplist L = {0};
        unsigned nregs = 0;
        for (unsigned v = 0; v < nvals; v++) {
            vreg[v] = -1;
            lastuse[v] = 0;
        }
        /* Last call (node id) of this actor that reads each value over a channel. */
        for (unsigned k = 0; k < nn; k++) {
            const weir_node *n = g->nodes[k];
            if (n->kind != WEIR__N_CALL || UNIT(n->actor) != ai)
                continue;
            for (unsigned j = 0; j < n->nin; j++) {
                const weir_node *src = n->in[j], *call = NULL;
                unsigned oi = 0;
                unsigned v = weir__node_value(src, &call, &oi) ? voff[call->id] + oi
                                                               : voff[src->id];
                lastuse[v] = k;
            }
        }
        int fail = 0;
        for (unsigned k = 0; k < nn && !fail; k++) {
            const weir_node *n = g->nodes[k];
            if (n->kind != WEIR__N_CALL || UNIT(n->actor) != ai)
                continue;
            uint32_t *ins = malloc(n->nin * sizeof *ins);
            uint32_t *outs = malloc(n->nout * sizeof *outs);
            if (!ins || !outs) {
                free(ins);
                free(outs);
                fail = 1;
                break;
            }
            for (unsigned j = 0; j < n->nin; j++) {
                const weir_node *src = n->in[j], *call = NULL;
                unsigned oi = 0;
                unsigned v = weir__node_value(src, &call, &oi) ? voff[call->id] + oi
                                                               : voff[src->id];
                if (vreg[v] < 0) {
                    /* Not produced here: it must come over a channel. */
                    struct weir__plan_op *op = op_push(&L);
                    if (!op) {
                        fail = 1;
                        break;
                    }
                    op->kind = WEIR__OP_READ;
                    op->chan = (uint32_t)vchan[v];
                    op->reg = nregs;
                    vreg[v] = (int)nregs++;
                }
                ins[j] = (uint32_t)vreg[v];
            }
            for (unsigned oi = 0; oi < n->nout; oi++) {
                vreg[voff[k] + oi] = (int)nregs;
                outs[oi] = nregs++;
            }
            struct weir__plan_op *op = fail ? NULL : op_push(&L);
            if (!op) {
                free(ins);
                free(outs);
                fail = 1;
                break;
            }
            op->kind = WEIR__OP_CALL;
            op->method = n->method;
            op->node = k;
            op->actor = n->actor->idx;
            op->nin = n->nin;
            op->nout = n->nout;
            op->in = ins;
            op->out = outs;
            unsigned callop = L.n - 1;
            for (unsigned oi = 0; oi < n->nout; oi++) {
                int ch = vchan[voff[k] + oi];
                if (ch < 0)
                    continue;
                p->chans[ch].src_index = callop;
                struct weir__plan_op *w = op_push(&L);
                if (!w) {
                    fail = 1;
                    break;
                }
                w->kind = WEIR__OP_WRITE;
                w->chan = (uint32_t)ch;
                w->reg = vreg[voff[k] + oi];
            }
            /* Release channel messages whose last use here was this call. */
            for (unsigned j = 0; j < n->nin && !fail; j++) {
                const weir_node *src = n->in[j], *call = NULL;
                unsigned oi = 0;
                int fromchan;
                unsigned v;
                if (weir__node_value(src, &call, &oi)) {
                    v = voff[call->id] + oi;
                    fromchan = UNIT(call->actor) != ai;
                } else {
                    v = voff[src->id];
                    fromchan = 1;
                }
                if (!fromchan || lastuse[v] != k || vreg[v] < 0)
                    continue;
                struct weir__plan_op *r = op_push(&L);
                if (!r) {
                    fail = 1;
                    break;
                }
                r->kind = WEIR__OP_RELEASE;
                r->reg = (uint32_t)vreg[v];
                r->chan = (uint32_t)vchan[v];
                lastuse[v] = (unsigned)-1; /* released once even if used twice by this call */
            }
        }
        pa->ops = L.ops;
        pa->nops = L.n;
        pa->nregs = nregs;
        if (fail) {
            free(vreg);
            free(lastuse);
            goto oom;
        }
    }
    free(vreg);
    free(lastuse);
    free(voff);
    free(vchan);
    free(unit);
#undef UNIT
    *out = p;
    return 0;
oom:
    free(voff);
    free(vchan);
    free(unit);
    weir__plan_free(p);
    return weir__seterr(-ENOMEM, "graph '%s': out of memory while compiling", g->name);
}

/* ---- deadlock check -------------------------------------------------- */

struct simchan {
    uint64_t w;    /* messages written */
    uint64_t *rd;  /* per reader: messages read */
    uint64_t *rel; /* per reader: messages released */
};

/* Reader slot of party `who` (actor index or driver) in channel c; -1 if none. */
static int reader_slot(const struct weir__plan_chan *c, int32_t who)
{
    for (unsigned i = 0; i < c->nreaders; i++)
        if (c->readers[i] == who)
            return (int)i;
    return -1;
}

static int has_space(const struct weir__plan_chan *pc, const struct simchan *sc, unsigned *slowest)
{
    uint64_t min = sc->w;
    unsigned who = 0;
    for (unsigned i = 0; i < pc->nreaders; i++)
        if (sc->rel[i] < min) {
            min = sc->rel[i];
            who = i;
        }
    if (slowest)
        *slowest = who;
    return sc->w - min < pc->depth;
}

/* "driver", the actor's name, or for a fused worker "worker 1 (a, b)". */
static const char *party_name(const struct weir__plan *p, int32_t who, char *buf, size_t cap)
{
    if (who == WEIR__PLAN_DRIVER)
        return "driver";
    const struct weir__plan_actor *pa = &p->actors[who];
    unsigned n = 0;
    for (unsigned a = 0; pa->worker >= 0 && a < p->nactors; a++)
        n += p->actors[a].isolation == WEIR_THREAD && p->actors[a].worker == pa->worker;
    if (n <= 1) {
        snprintf(buf, cap, "%s", pa->name);
        return buf;
    }
    int len = snprintf(buf, cap, "worker %d (", pa->worker + 1);
    for (unsigned a = 0, k = 0; a < p->nactors && len < (int)cap; a++)
        if (p->actors[a].isolation == WEIR_THREAD && p->actors[a].worker == pa->worker)
            len += snprintf(buf + len, cap - (size_t)len, "%s%s", k++ ? ", " : "",
                            p->actors[a].name);
    if (len < (int)cap)
        snprintf(buf + len, cap - (size_t)len, ")");
    return buf;
}

int weir__plan_deadlock_check(const struct weir__plan *p)
{
    unsigned maxdepth = 1;
    for (unsigned c = 0; c < p->nchans; c++)
        if (p->chans[c].depth > maxdepth)
            maxdepth = p->chans[c].depth;
    unsigned K = p->max_inflight ? p->max_inflight : 1;
    uint64_t E = 2 * (uint64_t)(K > maxdepth ? K : maxdepth) + 3;
    if (E > 4096)
        E = 4096;
    struct simchan *sc = calloc(p->nchans ? p->nchans : 1, sizeof *sc);
    unsigned *pc = calloc(p->nactors + 1, sizeof *pc);
    uint64_t *ex = calloc(p->nactors + 1, sizeof *ex);
    int ret = 0;
    if (!sc || !pc || !ex) {
        ret = weir__seterr(-ENOMEM, "plan '%s': out of memory in the deadlock check", p->graph);
        goto out;
    }
    for (unsigned c = 0; c < p->nchans; c++) {
        sc[c].rd = calloc(p->chans[c].nreaders, sizeof(uint64_t));
        sc[c].rel = calloc(p->chans[c].nreaders, sizeof(uint64_t));
        if (!sc[c].rd || !sc[c].rel) {
            ret = weir__seterr(-ENOMEM, "plan '%s': out of memory in the deadlock check",
                               p->graph);
            goto out;
        }
    }
    /* Driver program per execution e: phase 0 reads outputs of e-K, phase 1 writes args of e.
     * After E executions it drains the last outputs. pc[nactors] = phase/channel cursor. */
    unsigned D = p->nactors;
    for (;;) {
        int progress = 0, alldone = 1;
        for (unsigned a = 0; a < p->nactors; a++) {
            const struct weir__plan_actor *pa = &p->actors[a];
            while (ex[a] < E && pa->nops) {
                const struct weir__plan_op *op = &pa->ops[pc[a]];
                int ok = 1;
                if (op->kind == WEIR__OP_READ) {
                    int s = reader_slot(&p->chans[op->chan], (int32_t)a);
                    if (s < 0 || sc[op->chan].rd[s] >= sc[op->chan].w)
                        ok = 0;
                    else
                        sc[op->chan].rd[s]++;
                } else if (op->kind == WEIR__OP_CALL) {
                    /* The call reserves every output channel it writes. */
                    for (unsigned k = pc[a] + 1; k < pa->nops && pa->ops[k].kind == WEIR__OP_WRITE;
                         k++)
                        if (!has_space(&p->chans[pa->ops[k].chan], &sc[pa->ops[k].chan], NULL))
                            ok = 0;
                } else if (op->kind == WEIR__OP_WRITE) {
                    sc[op->chan].w++;
                } else {
                    int s = reader_slot(&p->chans[op->chan], (int32_t)a);
                    if (s >= 0)
                        sc[op->chan].rel[s]++;
                }
                if (!ok)
                    break;
                progress = 1;
                if (++pc[a] == pa->nops) {
                    pc[a] = 0;
                    ex[a]++;
                }
            }
            if (ex[a] < E && pa->nops)
                alldone = 0;
        }
        /* The driver. */
        while (ex[D] < E + K) {
            uint64_t e = ex[D];
            int ok = 1;
            if (pc[D] < p->nouts) {
                /* phase 0: read output pc[D] of execution e - K */
                if (e >= K) {
                    uint32_t c = p->outputs[pc[D]];
                    int s = reader_slot(&p->chans[c], WEIR__PLAN_DRIVER);
                    if (s >= 0 && sc[c].rel[s] <= e - K) {
                        if (sc[c].w <= e - K)
                            ok = 0;
                        else
                            sc[c].rd[s]++, sc[c].rel[s]++;
                    }
                }
            } else if (e < E) {
                /* phase 1: write argument channel (pc[D] - nouts)-th arg channel */
                unsigned k = pc[D] - p->nouts, seen = 0;
                for (unsigned c = 0; c < p->nchans; c++) {
                    if (p->chans[c].writer != WEIR__PLAN_DRIVER)
                        continue;
                    if (seen++ != k)
                        continue;
                    if (!has_space(&p->chans[c], &sc[c], NULL))
                        ok = 0;
                    else
                        sc[c].w++;
                }
            }
            if (!ok)
                break;
            progress = 1;
            unsigned nargch = 0;
            for (unsigned c = 0; c < p->nchans; c++)
                nargch += p->chans[c].writer == WEIR__PLAN_DRIVER;
            if (++pc[D] >= p->nouts + nargch) {
                pc[D] = 0;
                ex[D]++;
            }
        }
        if (ex[D] < E + K)
            alldone = 0;
        if (alldone)
            break;
        if (progress)
            continue;

        /* Deadlock: build the wait-for chain from the driver and find the cycle. */
        int32_t *next = malloc((p->nactors + 1) * sizeof *next);
        char (*why)[512] = calloc(p->nactors + 1, sizeof *why);
        char pn1[200], pn2[200];
        if (!next || !why) {
            free(next);
            free(why);
            ret = weir__seterr(-ENOMEM, "plan '%s': out of memory in the deadlock check",
                               p->graph);
            goto out;
        }
        for (unsigned a = 0; a <= p->nactors; a++) {
            next[a] = -2;
            int32_t self = a == D ? WEIR__PLAN_DRIVER : (int32_t)a;
            uint32_t chan = 0;
            int reading = 0;
            if (a < D) {
                const struct weir__plan_actor *pa = &p->actors[a];
                if (ex[a] >= E || !pa->nops)
                    continue;
                const struct weir__plan_op *op = &pa->ops[pc[a]];
                if (op->kind == WEIR__OP_READ) {
                    chan = op->chan;
                    reading = 1;
                } else {
                    for (unsigned k = pc[a] + 1; k < pa->nops && pa->ops[k].kind == WEIR__OP_WRITE;
                         k++)
                        if (!has_space(&p->chans[pa->ops[k].chan], &sc[pa->ops[k].chan], NULL)) {
                            chan = pa->ops[k].chan;
                            break;
                        }
                }
            } else {
                if (ex[D] >= E + K)
                    continue;
                if (pc[D] < p->nouts) {
                    chan = p->outputs[pc[D]];
                    reading = 1;
                } else {
                    unsigned k = pc[D] - p->nouts, seen = 0;
                    for (unsigned c = 0; c < p->nchans; c++)
                        if (p->chans[c].writer == WEIR__PLAN_DRIVER && seen++ == k)
                            chan = c;
                }
            }
            const struct weir__plan_chan *ch = &p->chans[chan];
            if (reading) {
                int32_t w = ch->writer;
                next[a] = w == WEIR__PLAN_DRIVER ? (int32_t)D : w;
                snprintf(why[a], sizeof why[a], "%s waits to read channel '%s' from %s",
                         party_name(p, self, pn1, sizeof pn1), ch->name,
                         party_name(p, w, pn2, sizeof pn2));
            } else {
                unsigned slow;
                has_space(ch, &sc[chan], &slow);
                int32_t r = ch->readers[slow];
                next[a] = r == WEIR__PLAN_DRIVER ? (int32_t)D : r;
                snprintf(why[a], sizeof why[a],
                         "%s waits to write channel '%s' (depth %u) until %s releases a slot",
                         party_name(p, self, pn1, sizeof pn1), ch->name, ch->depth,
                         party_name(p, r, pn2, sizeof pn2));
            }
        }
        /* Walk from the first blocked party until a node repeats. */
        unsigned start = 0;
        while (start <= p->nactors && next[start] == -2)
            start++;
        unsigned char *seen = calloc(p->nactors + 1, 1);
        unsigned cur = start;
        while (seen && cur <= p->nactors && !seen[cur] && next[cur] >= 0) {
            seen[cur] = 1;
            cur = (unsigned)next[cur];
        }
        char msg[2048];
        int len = snprintf(msg, sizeof msg, "plan '%s' can deadlock (max_inflight %u): ",
                           p->graph, K);
        unsigned c0 = cur;
        for (unsigned hops = 0; hops <= p->nactors + 1 && cur <= p->nactors && next[cur] >= 0;
             hops++) {
            if (len < (int)sizeof msg)
                len += snprintf(msg + len, sizeof msg - (size_t)len, "%s%s", hops ? "; " : "",
                                why[cur]);
            cur = (unsigned)next[cur];
            if (cur == c0)
                break;
        }
        free(seen);
        free(next);
        free(why);
        ret = weir__seterr(-EDEADLK, "%s", msg);
        goto out;
    }
out:
    if (sc)
        for (unsigned c = 0; c < p->nchans; c++) {
            free(sc[c].rd);
            free(sc[c].rel);
        }
    free(sc);
    free(pc);
    free(ex);
    return ret;
}
