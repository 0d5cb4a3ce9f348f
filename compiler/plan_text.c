/* SPDX-License-Identifier: MIT */
/*
 * compiler/plan_text.c - a plan for people: the listing of `weir-plan show`
 * and Graphviz DOT (weir_dag_write_dot, `weir-plan dot`).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/chan.h>
#include <weir/dag.h>
#include <weir/graph.h>
#include <weir/tensor.h>

#include "channels/err.h"
#include "compiler/plan.h"

/* ---- human listing -------------------------------------------------------- */

static int out_status(FILE *f, const char *what, const struct weir__plan *p)
{
    if (fflush(f) != 0 || ferror(f))
        return weir__seterr(-EIO, "plan '%s': writing the %s failed", p->graph ? p->graph : "?",
                            what);
    return 0;
}

/* A tensor edge's spec in words: "cpu, max_bytes any, dtype float32, ndim 2,
 * shape 8 x ?" (the plan's ints; unknown codes as numbers). */
static void print_tensor(FILE *f, const struct weir__plan_tensor *t)
{
    if (t->device == kDLCPU)
        fputs("cpu", f);
    else if (t->device == kDLCUDA)
        fprintf(f, "cuda:%d", t->device_id);
    else if (t->device == WEIR_TENSOR_DEVICE_SIM)
        fprintf(f, "sim:%d", t->device_id);
    else
        fprintf(f, "device type %d:%d", t->device, t->device_id);
    if (t->max_bytes)
        fprintf(f, ", max_bytes %" PRIu64, t->max_bytes);
    else
        fputs(", max_bytes any", f);
    static const char *const codes[] = {"int", "uint", "float", "handle", "bfloat", "complex",
                                        "bool"};
    if (!t->dtype_bits)
        fputs(", dtype any", f);
    else if (t->dtype_code < sizeof codes / sizeof *codes)
        fprintf(f, ", dtype %s%u", codes[t->dtype_code], t->dtype_bits);
    else
        fprintf(f, ", dtype code %u bits %u", t->dtype_code, t->dtype_bits);
    if (t->dtype_bits && t->dtype_lanes != 1)
        fprintf(f, "x%u", t->dtype_lanes);
    if (t->ndim == 0)
        fputs(", ndim any", f);
    else if (t->ndim < 0)
        fputs(", scalar", f);
    else {
        fprintf(f, ", ndim %d, shape ", t->ndim);
        for (int d = 0; d < t->ndim && d < WEIR__PLAN_TENSOR_NDIM; d++) {
            if (d)
                fputs(" x ", f);
            if (t->shape[d])
                fprintf(f, "%" PRId64, t->shape[d]);
            else
                fputc('?', f);
        }
    }
}

/* A channel party as the listing names it: "driver", an actor, or "worker N"
 * for the lead of a worker that runs several actors (its schedule stands for
 * all of them). Safe on any index. */
static const char *party_label(const struct weir__plan *p, int32_t who, char *buf, size_t cap)
{
    const char *name = weir__plan_party(p, who);
    if (who < 0 || !p->actors || (uint32_t)who >= p->nactors)
        return name;
    const struct weir__plan_actor *a = &p->actors[who];
    if (a->isolation != WEIR_THREAD || a->worker < 0)
        return name;
    unsigned n = 0;
    for (uint32_t b = 0; b < p->nactors && n < 2; b++)
        n += p->actors[b].isolation == WEIR_THREAD && p->actors[b].worker == a->worker;
    if (n < 2)
        return name;
    snprintf(buf, cap, "worker %d", a->worker + 1);
    return buf;
}

static size_t flow_len(const struct weir__plan *p, const struct weir__plan_chan *c)
{
    char b[32];
    size_t n = strlen(party_label(p, c->writer, b, sizeof b)) + 4;
    for (uint32_t k = 0; c->readers && k < c->nreaders; k++)
        n += strlen(party_label(p, c->readers[k], b, sizeof b)) + (k ? 2 : 0);
    return n;
}

static void print_flow(FILE *f, const struct weir__plan *p, const struct weir__plan_chan *c,
                       size_t width)
{
    char b[32];
    fprintf(f, "%s -> ", party_label(p, c->writer, b, sizeof b));
    for (uint32_t k = 0; c->readers && k < c->nreaders; k++)
        fprintf(f, "%s%s", k ? ", " : "", party_label(p, c->readers[k], b, sizeof b));
    for (size_t n = flow_len(p, c); n < width; n++)
        fputc(' ', f);
}

static void print_regs(FILE *f, const uint32_t *r, uint32_t n)
{
    for (uint32_t i = 0; r && i < n; i++)
        fprintf(f, "%sr%u", i ? ", " : "", r[i]);
}

/* The actor a CALL op calls, or NULL when its index is out of range. */
static const struct weir__plan_actor *call_actor(const struct weir__plan *p,
                                                 const struct weir__plan_op *o)
{
    return p->actors && o->actor < p->nactors ? &p->actors[o->actor] : NULL;
}

static void print_op(FILE *f, const struct weir__plan *p, const struct weir__plan_actor *a,
                     uint32_t i)
{
    const struct weir__plan_op *o = &a->ops[i];
    const char *kn = weir__plan_kind_name(o->kind);
    fprintf(f, "  %4u %-7s ", i, kn ? kn : "?");
    switch (o->kind) {
    case WEIR__OP_READ:
        fprintf(f, "%s -> r%u\n", weir__plan_chan_name(p, o->chan), o->reg);
        break;
    case WEIR__OP_CALL: {
        const struct weir__plan_actor *ca = call_actor(p, o);
        if (ca && ca != a) /* a fused call of another actor of this worker */
            fprintf(f, "%s.%s(", ca->name ? ca->name : "?", weir__plan_method_name(ca, o->method));
        else
            fprintf(f, "%s(", ca ? weir__plan_method_name(ca, o->method) : "?");
        print_regs(f, o->in, o->nin);
        fputs(") -> ", f);
        print_regs(f, o->out, o->nout);
        fprintf(f, "   [node %u]\n", o->node);
        break;
    }
    case WEIR__OP_WRITE:
        fprintf(f, "r%u -> %s\n", o->reg, weir__plan_chan_name(p, o->chan));
        break;
    case WEIR__OP_RELEASE:
        fprintf(f, "r%u (%s)\n", o->reg, weir__plan_chan_name(p, o->chan));
        break;
    default:
        fprintf(f, "kind %u chan %u reg %u\n", o->kind, o->chan, o->reg);
    }
}

/*
 * "placement: threads 2 (asked 2), 2 workers" then one line per worker and
 * per process actor. Workers are numbered from 1, as weir_actor_opts.worker.
 */
static void print_placement(FILE *f, const struct weir__plan *p)
{
    char asked[32];
    if (p->threads == 0)
        snprintf(asked, sizeof asked, "automatic");
    else if (p->threads < 0)
        snprintf(asked, sizeof asked, "one per actor");
    else
        snprintf(asked, sizeof asked, "%d", p->threads);
    fprintf(f, "  placement: threads %s, %u worker%s\n", asked, p->nworkers,
            p->nworkers == 1 ? "" : "s");
    int spans = 0;
    for (uint32_t a = 0; p->actors && a < p->nactors; a++)
        spans |= p->actors[a].node != 0;
    for (uint32_t w = 0; w < p->nworkers; w++) {
        fprintf(f, "    worker %u", w + 1);
        for (uint32_t a = 0; spans && p->actors && a < p->nactors; a++)
            if (p->actors[a].isolation == WEIR_THREAD && p->actors[a].worker == (int32_t)w) {
                fprintf(f, " (rank %d)", p->actors[a].node);
                break;
            }
        fputc(':', f);
        for (uint32_t a = 0, k = 0; p->actors && a < p->nactors; a++)
            if (p->actors[a].isolation == WEIR_THREAD && p->actors[a].worker == (int32_t)w)
                fprintf(f, "%s %s", k++ ? "," : "", p->actors[a].name ? p->actors[a].name : "?");
        fputc('\n', f);
    }
    for (uint32_t a = 0; p->actors && a < p->nactors; a++)
        if (p->actors[a].isolation == WEIR_PROCESS)
            fprintf(f, "    process: %s\n", p->actors[a].name ? p->actors[a].name : "?");
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
    print_placement(f, p);

    size_t nw = 4, fw = 17;
    for (uint32_t c = 0; p->chans && c < p->nchans; c++) {
        size_t n = strlen(weir__plan_chan_name(p, c));
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
        fprintf(f, "  %4u  %-*s  ", ci, (int)nw, weir__plan_chan_name(p, ci));
        print_flow(f, p, c, fw);
        fprintf(f, "  %10" PRIu64 "  %6u  ", c->slot_bytes, c->depth);
        if (c->src_kind == WEIR__SRC_ARG)
            fprintf(f, "arg %u", c->src_index);
        else
            fprintf(f, "%s op %u out %u", weir__plan_party(p, c->writer), c->src_index, c->src_out);
        if (c->transport != p->transport)
            fprintf(f, "; transport %s", c->transport == WEIR_TRANSPORT_ZMQ ? "zmq" : "uring");
        fputc('\n', f);
    }

    int tensors = 0;
    for (uint32_t ci = 0; p->chans && ci < p->nchans; ci++)
        tensors += p->chans[ci].tensor.is_tensor != 0;
    if (tensors) {
        fputs("\ntensor edges\n", f);
        for (uint32_t ci = 0; p->chans && ci < p->nchans; ci++) {
            if (!p->chans[ci].tensor.is_tensor)
                continue;
            fprintf(f, "  %4u  %-*s  ", ci, (int)nw, weir__plan_chan_name(p, ci));
            print_tensor(f, &p->chans[ci].tensor);
            fputc('\n', f);
        }
    }

    int32_t nranks = weir__plan_nranks(p);
    if (nranks > 1) {
        fprintf(f, "\nplacement (%d ranks; links over %s; one receiving ring per rank)\n",
                nranks, p->transport == WEIR_TRANSPORT_ZMQ ? "zmq" : "uring");
        for (uint32_t ci = 0; p->chans && ci < p->nchans; ci++) {
            int32_t w = weir__plan_writer_rank(p, ci);
            fprintf(f, "  %4u  %-*s  written on rank %d:", ci, (int)nw, weir__plan_chan_name(p, ci), w);
            for (int32_t r = 0; r < nranks; r++) {
                uint32_t k = weir__plan_readers_on(p, ci, r);
                if (k)
                    fprintf(f, " rank %d %s (%u reader%s)", r, r == w ? "local" : "link", k,
                            k == 1 ? "" : "s");
            }
            if (p->chans[ci].transport != p->transport)
                fprintf(f, "; links over %s (weir_node_transport)",
                        p->chans[ci].transport == WEIR_TRANSPORT_ZMQ ? "zmq" : "uring");
            fputc('\n', f);
        }
    }

    for (uint32_t ai = 0; p->actors && ai < p->nactors; ai++) {
        const struct weir__plan_actor *a = &p->actors[ai];
        char cpu[64];
        if (!a->cpus)
            snprintf(cpu, sizeof cpu, "unpinned");
        else
            snprintf(cpu, sizeof cpu, "cpus %.50s", a->cpus);
        char where[WEIR_MAX_NAME + 64] = "";
        if (a->isolation == WEIR_THREAD) {
            int32_t lead = weir__plan_runner(p, ai);
            if (lead >= 0 && lead != (int32_t)ai)
                snprintf(where, sizeof where, " worker %d (scheduled with '%s'),", a->worker + 1,
                         weir__plan_party(p, lead));
            else
                snprintf(where, sizeof where, " worker %d,", a->worker + 1);
        }
        fprintf(f, "\nactor %u '%s'  node %d, %s,%s %s, %u register%s\n", ai,
                a->name ? a->name : "?", a->node,
                a->isolation == WEIR_PROCESS ? "process"
                : a->isolation == WEIR_THREAD ? "thread"
                                              : "?",
                where, cpu, a->nregs, a->nregs == 1 ? "" : "s");
        fputs("  methods:", f);
        for (uint32_t m = 0; a->methods && m < a->nmethods; m++)
            fprintf(f, "%s %s(%u -> %u)", m ? "," : "", weir__plan_method_name(a, m), a->methods[m].nin,
                    a->methods[m].nout);
        fputc('\n', f);
        for (uint32_t i = 0; a->ops && i < a->nops; i++)
            print_op(f, p, a, i);
    }

    fputs("\noutputs\n", f);
    for (uint32_t i = 0; p->outputs && i < p->nouts; i++)
        fprintf(f, "  %4u <- %s (channel %u)\n", i, weir__plan_chan_name(p, p->outputs[i]), p->outputs[i]);
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
        if (p->actors[ai].nregs > maxregs && p->actors[ai].nregs <= WEIR__PLAN_MAX_REGS)
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
        if (!a->nops && a->isolation == WEIR_THREAD && weir__plan_runner(p, ai) != (int32_t)ai)
            continue; /* its calls are drawn in its worker's cluster */
        fprintf(f, "  subgraph cluster_a%u {\n    label=", ai);
        unsigned fused = 0;
        for (uint32_t b = 0; a->isolation == WEIR_THREAD && b < p->nactors; b++)
            fused += p->actors[b].isolation == WEIR_THREAD && p->actors[b].worker == a->worker;
        if (fused > 1) {
            char wl[32];
            snprintf(wl, sizeof wl, "worker %d", a->worker + 1);
            dot_str(f, wl);
        } else {
            dot_str(f, a->name);
        }
        fputs(";\n    style=rounded;\n", f);
        for (uint32_t i = 0; a->ops && i < a->nops; i++) {
            if (a->ops[i].kind != WEIR__OP_CALL)
                continue;
            const struct weir__plan_actor *ca = call_actor(p, &a->ops[i]);
            char label[2 * WEIR_MAX_NAME + 8];
            snprintf(label, sizeof label, "%s.%s", ca && ca->name ? ca->name : "?",
                     ca ? weir__plan_method_name(ca, a->ops[i].method) : "?");
            fprintf(f, "    a%u_op%u [label=", ai, i);
            dot_str(f, label);
            fputs("];\n", f);
        }
        fputs("  }\n", f);
    }

    /* Edges into each call: from the producer of each input register. */
    for (uint32_t ai = 0; p->actors && ai < p->nactors; ai++) {
        const struct weir__plan_actor *a = &p->actors[ai];
        if (a->nregs > WEIR__PLAN_MAX_REGS)
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
                    dot_str(f, weir__plan_chan_name(p, src->chan));
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
        snprintf(label, sizeof label, "%s [out %u]", weir__plan_chan_name(p, p->outputs[i]), i);
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

