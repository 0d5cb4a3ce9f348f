/* SPDX-License-Identifier: MIT */
/*
 * compiler/plan_json.c - the canonical JSON of a plan and its hash.
 *
 * Design notes.
 *
 * Canonical JSON: fixed key order (the order of the C structs), no
 * whitespace, integers in decimal, strings with JSON escapes. An op lists
 * only the fields its kind uses, so the hash covers exactly what the
 * engine executes. The hash is FNV-1a 64 over those bytes; it is computed
 * by streaming the same writer into the hash, so it never allocates.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/chan.h>
#include <weir/dag.h>
#include <weir/graph.h>

#include "channels/err.h"
#include "compiler/plan.h"

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
    const char *kn = weir__plan_kind_name(o->kind);
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
        put_key(s, "actor", 0);
        put_u(s, o->actor);
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
    put_key(s, "cpus", 0);
    if (a->cpus)
        put_str(s, a->cpus);
    else
        put_z(s, "null");
    put_key(s, "worker", 0);
    put_i(s, a->worker);
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

/* A plan spanning ranks: where channel ci is written and read (compiler/place.c). */
static void emit_placement(struct sink *s, const struct weir__plan *p, uint32_t ci)
{
    int32_t n = weir__plan_nranks(p), w = weir__plan_writer_rank(p, ci);
    put_key(s, "placement", 0);
    put(s, "{", 1);
    put_key(s, "writer_rank", 1);
    put_i(s, w);
    put_key(s, "ranks", 0);
    put(s, "[", 1);
    int first = 1;
    for (int32_t r = 0; r < n; r++) {
        uint32_t k = weir__plan_readers_on(p, ci, r);
        if (!k)
            continue;
        put_z(s, first ? "{" : ",{");
        first = 0;
        put_key(s, "rank", 1);
        put_i(s, r);
        put_key(s, "readers", 0);
        put_u(s, k);
        put_key(s, "via", 0);
        put_str(s, r == w ? "local" : "link");
        put(s, "}", 1);
    }
    put(s, "]}", 2);
}

static void emit_chan(struct sink *s, const struct weir__plan *p, uint32_t ci)
{
    const struct weir__plan_chan *c = &p->chans[ci];
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
    if (c->transport != p->transport) {
        /* an override (weir_node_transport): only then, so other plans keep their hash */
        put_key(s, "transport", 0);
        put_i(s, c->transport);
    }
    if (c->tensor.is_tensor) { /* only then: plans without tensors hash as before */
        const struct weir__plan_tensor *t = &c->tensor;
        put_key(s, "tensor", 0);
        put(s, "{", 1);
        put_key(s, "device", 1);
        put_i(s, t->device);
        put_key(s, "device_id", 0);
        put_i(s, t->device_id);
        put_key(s, "max_bytes", 0);
        put_u(s, t->max_bytes);
        put_key(s, "dtype_code", 0);
        put_u(s, t->dtype_code);
        put_key(s, "dtype_bits", 0);
        put_u(s, t->dtype_bits);
        put_key(s, "dtype_lanes", 0);
        put_u(s, t->dtype_lanes);
        put_key(s, "ndim", 0);
        put_i(s, t->ndim);
        put_key(s, "shape", 0);
        put(s, "[", 1);
        for (int d = 0; d < t->ndim && d < WEIR__PLAN_TENSOR_NDIM; d++) {
            if (d)
                put(s, ",", 1);
            put_i(s, t->shape[d]);
        }
        put(s, "]}", 2);
    }
    if (weir__plan_nranks(p) > 1)
        emit_placement(s, p, ci);
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
    put_key(s, "threads", 0);
    put_i(s, p->threads);
    put_key(s, "nworkers", 0);
    put_u(s, p->nworkers);
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
        emit_chan(s, p, i);
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

