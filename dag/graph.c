/* SPDX-License-Identifier: MIT */
/*
 * dag/graph.c - the builder API: graphs, actors, inputs, calls, outputs.
 *
 * Design notes. The builder checks everything it can at the call that
 * introduces the problem (a node of another graph, an output index out of
 * range, a method rebound with another signature) so the message points at
 * the culprit; whole-graph properties (unused inputs, calls that reach no
 * output, an empty graph) are checked by weir__graph_validate at compile
 * time. A graph becomes frozen when compiled: a dag never disagrees with
 * the graph it came from. Nodes are created in topological order by
 * construction (a call's inputs exist before it), which the compiler uses.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/chan.h>
#include <weir/cluster.h>
#include <weir/link.h>

#include "channels/err.h"
#include "dag/cpulist.h"
#include "dag/graph_internal.h"

static int check_name(const char *what, const char *name)
{
    if (!name || !*name || strlen(name) > WEIR_MAX_NAME)
        return weir__seterr(-EINVAL, "%s name '%s' is invalid (1..%d bytes)", what,
                            name ? name : "(null)", WEIR_MAX_NAME);
    return 0;
}

static int check_frozen(const weir_graph *g)
{
    if (g->frozen)
        return weir__seterr(-EBUSY,
                            "graph '%s': already compiled; modifying it afterwards is not "
                            "allowed (build a new graph)",
                            g->name);
    return 0;
}

static void *grow(void *arr, unsigned *cap, unsigned need, size_t elt)
{
    if (need <= *cap)
        return arr;
    unsigned ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(arr, (size_t)ncap * elt);
    if (p)
        *cap = ncap;
    return p;
}

WEIR_API weir_graph *weir_graph_new(const char *name)
{
    weir__clearerr();
    if (check_name("graph", name) < 0)
        return NULL;
    weir_graph *g = calloc(1, sizeof *g);
    if (!g) {
        weir__seterr(-ENOMEM, "graph '%s': out of memory", name);
        return NULL;
    }
    strcpy(g->name, name);
    return g;
}

WEIR_API const char *weir_graph_name(const weir_graph *g)
{
    return g ? g->name : "(null)";
}

WEIR_API void weir_graph_free(weir_graph *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->nnodes; i++) {
        free(g->nodes[i]->in);
        free(g->nodes[i]);
    }
    for (unsigned i = 0; i < g->nactors; i++) {
        free(g->actors[i]->methods);
        free(g->actors[i]->cpus);
        free(g->actors[i]);
    }
    free(g->nodes);
    free(g->actors);
    free(g->outs);
    free(g->tensors);
    free(g);
}

WEIR_API weir_actor *weir_actor_new(weir_graph *g, const char *name, const weir_actor_opts *opts)
{
    weir__clearerr();
    if (!g) {
        weir__seterr(-EINVAL, "actor '%s': NULL graph", name ? name : "(null)");
        return NULL;
    }
    if (check_frozen(g) < 0 || check_name("actor", name) < 0)
        return NULL;
    for (unsigned i = 0; i < g->nactors; i++)
        if (!strcmp(g->actors[i]->name, name)) {
            weir__seterr(-EEXIST, "graph '%s': duplicate actor name '%s'", g->name, name);
            return NULL;
        }
    if (opts && opts->isolation != WEIR_THREAD && opts->isolation != WEIR_PROCESS) {
        weir__seterr(-EINVAL, "actor '%s': unknown isolation %d", name, opts->isolation);
        return NULL;
    }
    if (opts && opts->node < 0) {
        weir__seterr(-EINVAL, "actor '%s': node %d is negative", name, opts->node);
        return NULL;
    }
    weir_actor **arr = grow(g->actors, &g->cap_actors, g->nactors + 1, sizeof *arr);
    weir_actor *a = calloc(1, sizeof *a);
    if (!arr || !a) {
        if (arr)
            g->actors = arr;
        free(a);
        weir__seterr(-ENOMEM, "actor '%s': out of memory", name);
        return NULL;
    }
    g->actors = arr;
    a->g = g;
    a->idx = g->nactors;
    strcpy(a->name, name);
    if (opts)
        a->opts = *opts;
    else
        a->opts = (weir_actor_opts){.state = NULL, .node = 0, .isolation = WEIR_THREAD};
    if (a->opts.cpus && !(a->cpus = strdup(a->opts.cpus))) {
        free(a);
        weir__seterr(-ENOMEM, "actor '%s': out of memory", name);
        return NULL;
    }
    a->opts.cpus = a->cpus;
    g->actors[g->nactors++] = a;
    return a;
}

static weir_node *node_new(weir_graph *g, int kind)
{
    weir_node **arr = grow(g->nodes, &g->cap_nodes, g->nnodes + 1, sizeof *arr);
    if (!arr) {
        weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
        return NULL;
    }
    g->nodes = arr;
    weir_node *n = calloc(1, sizeof *n);
    if (!n) {
        weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
        return NULL;
    }
    n->g = g;
    n->kind = kind;
    n->id = g->nnodes;
    g->nodes[g->nnodes++] = n;
    return n;
}

WEIR_API weir_node *weir_input(weir_graph *g, unsigned argi)
{
    weir__clearerr();
    if (!g) {
        weir__seterr(-EINVAL, "input %u: NULL graph", argi);
        return NULL;
    }
    if (check_frozen(g) < 0)
        return NULL;
    if (argi >= 1024) {
        weir__seterr(-EINVAL, "graph '%s': input argument %u is out of range (max 1023)", g->name,
                     argi);
        return NULL;
    }
    for (unsigned i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->kind == WEIR__N_INPUT && g->nodes[i]->argi == argi)
            return g->nodes[i];
    weir_node *n = node_new(g, WEIR__N_INPUT);
    if (n)
        n->argi = argi;
    return n;
}

/* Human-readable description of a node, for messages. */
static const char *node_desc(const weir_node *n, char *buf, size_t len)
{
    if (n->kind == WEIR__N_INPUT)
        snprintf(buf, len, "input %u", n->argi);
    else if (n->kind == WEIR__N_CALL)
        snprintf(buf, len, "node %u (%s.%s)", n->id, n->actor->name,
                 n->actor->methods[n->method].name);
    else
        snprintf(buf, len, "node %u (output %u of %s.%s)", n->id, n->out, n->call->actor->name,
                 n->call->actor->methods[n->call->method].name);
    return buf;
}

WEIR_API weir_node *weir_bind(weir_actor *a, const char *method, weir_method_fn fn,
                              weir_node *const *in, unsigned nin, unsigned nout)
{
    weir__clearerr();
    if (!a) {
        weir__seterr(-EINVAL, "method '%s': NULL actor", method ? method : "(null)");
        return NULL;
    }
    weir_graph *g = a->g;
    if (check_frozen(g) < 0 || check_name("method", method) < 0)
        return NULL;
    if (!fn) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': NULL function", a->name, method);
        return NULL;
    }
    if (nin == 0 || nin > WEIR_MAX_CALL_IO) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': %u inputs (a call takes 1..%d)", a->name,
                     method, nin, WEIR_MAX_CALL_IO);
        return NULL;
    }
    if (nout == 0 || nout > WEIR_MAX_CALL_IO) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': %u outputs (a call has 1..%d)", a->name,
                     method, nout, WEIR_MAX_CALL_IO);
        return NULL;
    }
    if (!in) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': NULL input array", a->name, method);
        return NULL;
    }
    char buf[160];
    for (unsigned i = 0; i < nin; i++) {
        if (!in[i]) {
            weir__seterr(-EINVAL, "actor '%s' method '%s': input %u is NULL", a->name, method, i);
            return NULL;
        }
        if (in[i]->g != g) {
            weir__seterr(-EXDEV, "actor '%s' method '%s': input %u is %s of another graph ('%s')",
                         a->name, method, i, node_desc(in[i], buf, sizeof buf), in[i]->g->name);
            return NULL;
        }
        if (in[i]->kind == WEIR__N_CALL && in[i]->nout > 1) {
            weir__seterr(-EINVAL,
                         "actor '%s' method '%s': input %u is %s, which has %u outputs; pick one "
                         "with weir_ret()",
                         a->name, method, i, node_desc(in[i], buf, sizeof buf), in[i]->nout);
            return NULL;
        }
    }
    unsigned m;
    for (m = 0; m < a->nmethods; m++)
        if (!strcmp(a->methods[m].name, method))
            break;
    if (m < a->nmethods) {
        struct weir__method *md = &a->methods[m];
        if (md->fn != fn || md->nin != nin || md->nout != nout) {
            weir__seterr(-EINVAL,
                         "actor '%s' method '%s': bound before with %u inputs, %u outputs%s; now "
                         "%u inputs, %u outputs",
                         a->name, method, md->nin, md->nout,
                         md->fn != fn ? " and another function" : "", nin, nout);
            return NULL;
        }
    } else {
        struct weir__method *ms = realloc(a->methods, (a->nmethods + 1) * sizeof *ms);
        if (!ms) {
            weir__seterr(-ENOMEM, "actor '%s': out of memory", a->name);
            return NULL;
        }
        a->methods = ms;
        memset(&ms[m], 0, sizeof ms[m]);
        strcpy(ms[m].name, method);
        ms[m].fn = fn;
        ms[m].nin = nin;
        ms[m].nout = nout;
        a->nmethods++;
    }
    weir_node **ins = malloc(nin * sizeof *ins);
    if (!ins) {
        weir__seterr(-ENOMEM, "actor '%s': out of memory", a->name);
        return NULL;
    }
    weir_node *n = node_new(g, WEIR__N_CALL);
    if (!n) {
        free(ins);
        return NULL;
    }
    memcpy(ins, in, nin * sizeof *ins);
    n->actor = a;
    n->method = m;
    n->nin = nin;
    n->nout = nout;
    n->in = ins;
    return n;
}

WEIR_API weir_node *weir_ret(weir_node *call, unsigned i)
{
    weir__clearerr();
    if (!call) {
        weir__seterr(-EINVAL, "weir_ret: NULL call node");
        return NULL;
    }
    weir_graph *g = call->g;
    char buf[160];
    if (call->kind != WEIR__N_CALL) {
        weir__seterr(-EINVAL, "graph '%s': weir_ret on %s, which is not a call", g->name,
                     node_desc(call, buf, sizeof buf));
        return NULL;
    }
    if (i >= call->nout) {
        weir__seterr(-EINVAL, "graph '%s': output index %u out of range for %s (%u outputs)",
                     g->name, i, node_desc(call, buf, sizeof buf), call->nout);
        return NULL;
    }
    if (check_frozen(g) < 0)
        return NULL;
    for (unsigned k = 0; k < g->nnodes; k++)
        if (g->nodes[k]->kind == WEIR__N_RET && g->nodes[k]->call == call && g->nodes[k]->out == i)
            return g->nodes[k];
    weir_node *n = node_new(g, WEIR__N_RET);
    if (n) {
        n->call = call;
        n->out = i;
    }
    return n;
}

WEIR_API int weir_node_buffer_bytes(weir_node *n, size_t bytes)
{
    weir__clearerr();
    if (!n)
        return weir__seterr(-EINVAL, "weir_node_buffer_bytes: NULL node");
    char buf[160];
    if (n->kind == WEIR__N_CALL && n->nout != 1)
        return weir__seterr(-EINVAL, "graph '%s': %s has %u outputs: give the size of each of "
                            "its weir_ret() picks", n->g->name, node_desc(n, buf, sizeof buf), n->nout);
    if (bytes > WEIR_CHAN_MAX_SLOT)
        return weir__seterr(-EINVAL, "graph '%s': %s: buffer_bytes %zu is over the channel limit "
                            "(%zu)", n->g->name, node_desc(n, buf, sizeof buf), bytes,
                            (size_t)WEIR_CHAN_MAX_SLOT);
    int rc = check_frozen(n->g);
    if (rc < 0)
        return rc;
    n->buffer_bytes = bytes;
    return 0;
}

WEIR_API int weir_node_transport(weir_node *n, int transport)
{
    weir__clearerr();
    if (!n)
        return weir__seterr(-EINVAL, "weir_node_transport: NULL node");
    char buf[160];
    if (n->kind == WEIR__N_CALL && n->nout != 1)
        return weir__seterr(-EINVAL, "graph '%s': %s has %u outputs: give the transport of each "
                            "of its weir_ret() picks", n->g->name, node_desc(n, buf, sizeof buf),
                            n->nout);
    if (transport != WEIR_TRANSPORT_DEFAULT && transport != WEIR_TRANSPORT_URING &&
        transport != WEIR_TRANSPORT_ZMQ)
        return weir__seterr(-EINVAL, "graph '%s': %s: unknown transport %d (WEIR_TRANSPORT_URING, "
                            "WEIR_TRANSPORT_ZMQ or WEIR_TRANSPORT_DEFAULT)", n->g->name,
                            node_desc(n, buf, sizeof buf), transport);
    int rc = check_frozen(n->g);
    if (rc < 0)
        return rc;
    n->transport1 = transport + 1;
    return 0;
}

WEIR_API int weir_output(weir_graph *g, weir_node *const *outs, unsigned n)
{
    weir__clearerr();
    if (!g)
        return weir__seterr(-EINVAL, "weir_output: NULL graph");
    if (check_frozen(g) < 0)
        return weir_errcode();
    if (n == 0 || !outs)
        return weir__seterr(-EINVAL, "graph '%s': weir_output needs at least one output", g->name);
    char buf[160];
    for (unsigned i = 0; i < n; i++) {
        if (!outs[i])
            return weir__seterr(-EINVAL, "graph '%s': output %u is NULL", g->name, i);
        if (outs[i]->g != g)
            return weir__seterr(-EXDEV, "graph '%s': output %u is %s of another graph ('%s')",
                                g->name, i, node_desc(outs[i], buf, sizeof buf), outs[i]->g->name);
        if (outs[i]->kind == WEIR__N_INPUT)
            return weir__seterr(-EINVAL,
                                "graph '%s': output %u is %s; outputs must be method results",
                                g->name, i, node_desc(outs[i], buf, sizeof buf));
        if (outs[i]->kind == WEIR__N_CALL && outs[i]->nout > 1)
            return weir__seterr(-EINVAL,
                                "graph '%s': output %u is %s, which has %u outputs; pick one with "
                                "weir_ret()",
                                g->name, i, node_desc(outs[i], buf, sizeof buf), outs[i]->nout);
    }
    weir_node **arr = malloc(n * sizeof *arr);
    if (!arr)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
    memcpy(arr, outs, n * sizeof *arr);
    free(g->outs);
    g->outs = arr;
    g->nouts = n;
    return 0;
}

/*
 * Whole-graph checks, run by weir_compile: an output is declared, every
 * argument 0..max is used, every call output reaches a graph output.
 */
int weir__graph_validate(const weir_graph *g);
int weir__graph_validate(const weir_graph *g)
{
    char buf[160];
    if (g->nouts == 0)
        return weir__seterr(-EINVAL, "graph '%s': empty graph (no outputs; call weir_output)",
                            g->name);
    /* Reachability backwards from the outputs. */
    unsigned char *live = calloc(g->nnodes ? g->nnodes : 1, 1);
    if (!live)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
    for (unsigned i = 0; i < g->nouts; i++) {
        const weir_node *n = g->outs[i];
        live[n->id] = 1;
        if (n->kind == WEIR__N_RET)
            live[n->call->id] = 1;
    }
    for (unsigned k = g->nnodes; k-- > 0;) {
        const weir_node *n = g->nodes[k];
        if (!live[n->id])
            continue;
        if (n->kind == WEIR__N_RET)
            live[n->call->id] = 1;
        if (n->kind == WEIR__N_CALL)
            for (unsigned j = 0; j < n->nin; j++) {
                live[n->in[j]->id] = 1;
                if (n->in[j]->kind == WEIR__N_RET)
                    live[n->in[j]->call->id] = 1;
            }
    }
    int ret = 0;
    unsigned maxarg = 0, nin = 0;
    for (unsigned k = 0; k < g->nnodes && ret == 0; k++) {
        const weir_node *n = g->nodes[k];
        if (n->kind == WEIR__N_CALL && !live[k])
            ret = weir__seterr(-EINVAL, "graph '%s': %s reaches no graph output", g->name,
                               node_desc(n, buf, sizeof buf));
        if (n->kind == WEIR__N_INPUT) {
            nin++;
            if (n->argi + 1 > maxarg)
                maxarg = n->argi + 1;
            if (!live[k])
                ret = weir__seterr(-EINVAL, "graph '%s': input argument %u is never used", g->name,
                                   n->argi);
        }
    }
    if (ret == 0 && nin != maxarg) {
        for (unsigned a = 0; a < maxarg; a++) {
            unsigned k;
            for (k = 0; k < g->nnodes; k++)
                if (g->nodes[k]->kind == WEIR__N_INPUT && g->nodes[k]->argi == a)
                    break;
            if (k == g->nnodes) {
                ret = weir__seterr(-EINVAL,
                                   "graph '%s': input argument %u is never used (arguments "
                                   "0..%u must all be used)",
                                   g->name, a, maxarg - 1);
                break;
            }
        }
    }
    free(live);
    return ret;
}

/* ---- validation at compile time ------------------------------------------- */

/* 0 if the actor's CPU list parses and names only CPUs this process may run on. */
static int check_cpus(const weir_actor *ac)
{
    if (!ac->cpus)
        return 0;
    cpu_set_t want, may;
    char why[160];
    if (weir__cpulist_parse(ac->cpus, &want, why, sizeof why) < 0)
        return weir__seterr(-EINVAL, "actor '%s': cpus '%s': %s (a list as taskset -c takes it: "
                            "\"2\", \"0,2-3\"; NULL: not pinned)", ac->name, ac->cpus, why);
    if (sched_getaffinity(0, sizeof may, &may) < 0)
        return weir__seterr(-errno, "actor '%s': sched_getaffinity: %s", ac->name, strerror(errno));
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &want) && !CPU_ISSET(c, &may)) {
            char mayl[256];
            weir__cpulist_format(&may, mayl, sizeof mayl);
            return weir__seterr(-EINVAL, "actor '%s': cpus '%s': CPU %d is not one this process "
                                "may run on (it may run on %s)", ac->name, ac->cpus, c, mayl);
        }
    return 0;
}

int weir__graph_check_actors(const weir_graph *g)
{
    for (unsigned a = 0; a < g->nactors; a++) {
        const weir_actor *ac = g->actors[a];
        if (ac->opts.max_restarts > 0 && ac->opts.isolation != WEIR_PROCESS) {
            return weir__seterr(-EINVAL, "actor '%s': max_restarts %u needs WEIR_PROCESS isolation "
                                "(a thread cannot be restarted)", ac->name, ac->opts.max_restarts);
        }
        int rc = check_cpus(ac);
        if (rc < 0)
            return rc;
        if (ac->opts.node >= WEIR_MAX_RANKS)
            return weir__seterr(-EINVAL, "actor '%s': node %d is not below WEIR_MAX_RANKS (%d)",
                                ac->name, ac->opts.node, WEIR_MAX_RANKS);
    }
    return 0;
}
