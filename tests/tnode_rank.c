/* SPDX-License-Identifier: MIT */
/*
 * tests/tnode_rank.c - one rank of a tensor graph across ranks (the nodes
 * suite's tensor tests), launched by weir-run (plain and --netns). Every
 * rank builds the same graph and calls weir_compile(); rank 0 drives N
 * pipelined executions and checks every output tensor (record and every
 * element), the others call weir_dag_join(). Every reader checks the
 * record it got exactly (dtype, ndim, shape, strides, byte_offset, device,
 * 64-byte alignment of the data) and every element, and fails the
 * execution naming what differed. Values, layouts and dtypes: tnode_util.h.
 *
 *   tnode_rank SHAPE N ISO DEV [R C]
 *     SHAPE  chain | diamond
 *     N      executions
 *     ISO    thread | process
 *     DEV    cpu | sim    sim: simulated-device edges (chain: edges 0, 1, 2;
 *                         diamond: all), written with one host-to-device
 *                         copy, read with one device-to-host copy by each
 *                         method; the argument is a device tensor (the
 *                         driver's device buffer), a device output arrives
 *                         as a host copy
 *     R C    tensor shape (default 8 x 16)
 *
 * chain:   s0 (rank 1 % S), s1 (rank 0), s2 (rank 1 % S); s_k reads edge k
 *          (edge 0: the argument) and writes edge k + 1; the output is
 *          edge 3. Over 2 ranks every edge crosses ranks.
 * diamond: src (rank 1 % S) y = step(x, 0); left (rank 0) l = step(y, 1);
 *          right (rank 1 % S) r = step(y, 2); join (rank 0) (l ^ r) + x.
 *          Edges: 0 the argument (read on both ranks), 1 y (a reader on
 *          each rank), 2 l (rank 0 only), 3 r (1 -> 0), 4 the output.
 *
 * Lines on stdout: "rank 0: N executions checked, F failed, sum X" (X: the
 * u64 sum of every output element), "rank R: joined", "rank R: free RC in
 * .. ms", and with DEV sim after the free "rank R: weir copied h2d A d2h B
 * d2d C, pinned P (slot ranges registered G, unregistered U, failed F)" (the
 * copies weir itself made on this rank: the staging; P of them between the
 * device and slots registered with it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weir/weir.h>

#include "channels/device.h"
#include "tnode_util.h"

void weir__tensor_last_counters(weir__dev_counters *out); /* engine/engine.h */

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "tnode_rank %d: ", weir_rank());                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static int S, RANK, DIAMOND, SIMDEV;
static int64_t R = 8, C = 16;

/* The expected element of edge k. */
static uint32_t want(unsigned k, uint64_t e, int64_t i, int64_t j)
{
    if (!DIAMOND)
        return tn_chain(e, i, j, k);
    uint32_t x = tn_x(e, i, j), y = tn_step(x, 0);
    switch (k) {
    case 0:
        return x;
    case 1:
        return y;
    case 2:
        return tn_step(y, 1);
    case 3:
        return tn_step(y, 2);
    default:
        return tn_diamond(e, i, j);
    }
}

static int is_dev_edge(unsigned k)
{
    if (!SIMDEV)
        return 0;
    return DIAMOND ? 1 : k <= 2;
}

/* An actor's state: its device (sim mode), and a host image and a dense
 * array of its inputs. */
struct st {
    weir__device *dev;
    unsigned char *img;
    uint32_t *dense[3];
    uint32_t *outd;
};

static size_t span_max(void)
{
    return tn_max_span(R, C);
}

static int st_init(void *p)
{
    struct st *s = p;
    s->img = malloc(span_max());
    s->outd = malloc((size_t)(R * C) * 4);
    for (int k = 0; k < 3; k++)
        s->dense[k] = malloc((size_t)(R * C) * 4);
    if (!s->img || !s->outd || !s->dense[0] || !s->dense[1] || !s->dense[2])
        return -1;
    if (SIMDEV && weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "tnode", &s->dev) < 0)
        return -1;
    return 0;
}

static void st_fini(void *p)
{
    struct st *s = p;
    weir__device_close(s->dev);
    s->dev = NULL;
    free(s->img);
    free(s->outd);
    for (int k = 0; k < 3; k++)
        free(s->dense[k]);
}

/*
 * Check tensor t (edge k, execution e) exactly and every element; its data
 * from `base` (host memory). 0, or -1 with the reason in why.
 */
static int check_tensor(const DLTensor *t, const unsigned char *base, unsigned k, uint64_t e,
                        size_t align, int result, uint32_t *dense, char *why, size_t cap)
{
    int64_t st[2];
    uint64_t bo;
    const int64_t *ws = tn_layout(e, k, R, C, st, &bo);
    DLDataType dt = tn_dtype(k);
    /* A result is on the host (a device output's host copy). */
    DLDeviceType dev = is_dev_edge(k) && !result ? WEIR_TENSOR_DEVICE_SIM : kDLCPU;
    if (t->device.device_type != dev || t->device.device_id != 0) {
        snprintf(why, cap, "edge %u: device (%d, %d), expected (%d, 0)", k,
                 (int)t->device.device_type, t->device.device_id, (int)dev);
        return -1;
    }
    if (t->dtype.code != dt.code || t->dtype.bits != dt.bits || t->dtype.lanes != dt.lanes) {
        snprintf(why, cap, "edge %u: dtype (%u, %u, %u), expected (%u, %u, %u)", k, t->dtype.code,
                 t->dtype.bits, t->dtype.lanes, dt.code, dt.bits, dt.lanes);
        return -1;
    }
    if (t->ndim != 2 || t->shape[0] != R || t->shape[1] != C) {
        snprintf(why, cap, "edge %u: ndim %d shape %lld x %lld, expected 2, %lld x %lld", k,
                 t->ndim, t->ndim > 0 ? (long long)t->shape[0] : -1,
                 t->ndim > 1 ? (long long)t->shape[1] : -1, (long long)R, (long long)C);
        return -1;
    }
    if (!ws != !t->strides || (ws && (t->strides[0] != ws[0] || t->strides[1] != ws[1]))) {
        snprintf(why, cap, "edge %u execution %" PRIu64 ": strides %s{%lld, %lld}, expected %s", k,
                 e, t->strides ? "" : "NULL ", t->strides ? (long long)t->strides[0] : 0,
                 t->strides ? (long long)t->strides[1] : 0, ws ? "strided" : "NULL");
        return -1;
    }
    if (t->byte_offset != bo) {
        snprintf(why, cap, "edge %u execution %" PRIu64 ": byte_offset %llu, expected %llu", k, e,
                 (unsigned long long)t->byte_offset, (unsigned long long)bo);
        return -1;
    }
    if ((uintptr_t)t->data % align) {
        snprintf(why, cap, "edge %u: data at %p is not %zu-byte aligned", k, t->data, align);
        return -1;
    }
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) {
            uint32_t v;
            memcpy(&v, base + tn_at(t->strides, t->byte_offset, C, i, j), 4);
            uint32_t w = want(k, e, i, j);
            if (v != w) {
                snprintf(why, cap, "edge %u execution %" PRIu64 " [%lld][%lld]: %u, expected %u",
                         k, e, (long long)i, (long long)j, v, w);
                return -1;
            }
            dense[i * C + j] = v;
        }
    return 0;
}

/* Input `in` of the call (edge k) into dense, checked. */
static int read_in(weir_call *c, struct st *s, unsigned in, unsigned k, uint32_t *dense)
{
    DLTensor t;
    if (weir_call_in_tensor(c, in, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    const unsigned char *base = t.data;
    if (is_dev_edge(k)) {
        size_t span;
        if (weir_tensor_nbytes(&t, &span) < 0 || span > span_max())
            return weir_call_fail(c, "edge %u: span: %s", k, weir_errmsg());
        if (s->dev->ops->copy(s->dev->impl, s->img, t.data, span, WEIR__COPY_D2H) < 0)
            return weir_call_fail(c, "%s", weir_errmsg());
        base = s->img;
    }
    char why[256];
    if (check_tensor(&t, base, k, weir_call_exec(c), WEIR_TENSOR_ALIGN, 0, dense, why, sizeof why) < 0)
        return weir_call_fail(c, "%s", why);
    return 0;
}

/* Write dense (R x C) as output `out` (edge k) in the edge's layout. */
static int write_out(weir_call *c, struct st *s, unsigned out, unsigned k, const uint32_t *dense)
{
    uint64_t e = weir_call_exec(c);
    int64_t st[2], shape[2] = {R, C};
    DLTensor m;
    memset(&m, 0, sizeof m);
    m.ndim = 2;
    m.shape = shape;
    m.dtype = tn_dtype(k);
    m.strides = tn_layout(e, k, R, C, st, &m.byte_offset);
    m.device.device_type = is_dev_edge(k) ? WEIR_TENSOR_DEVICE_SIM : kDLCPU;
    size_t span;
    if (weir_tensor_nbytes(&m, &span) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    unsigned char *p = weir_call_out_tensor(c, out, &m);
    if (!p)
        return weir_call_fail(c, "%s", weir_errmsg());
    unsigned char *img = is_dev_edge(k) ? s->img : p;
    if (is_dev_edge(k))
        memset(img, 0xa5, span);
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++)
            memcpy(img + tn_at(m.strides, m.byte_offset, C, i, j), &dense[i * C + j], 4);
    if (is_dev_edge(k) && s->dev->ops->copy(s->dev->impl, p, img, span, WEIR__COPY_H2D) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    return 0;
}

/* chain stage k: edge k -> step(., k) -> edge k + 1. The stage's index is
 * its actor's, which the state pointer tells (states[k]). */
static struct st states[8];

static unsigned idx_of(void *p)
{
    return (unsigned)((struct st *)p - states);
}

static int m_step(weir_call *c, void *p)
{
    struct st *s = p;
    unsigned k = idx_of(p);
    int rc = read_in(c, s, 0, k, s->dense[0]);
    if (rc)
        return rc;
    for (int64_t q = 0; q < R * C; q++)
        s->outd[q] = tn_step(s->dense[0][q], k);
    return write_out(c, s, 0, k + 1, s->outd);
}

/* diamond: src (actor 0), left (1), right (2): edge in -> step(., k) -> edge out */
static int m_src(weir_call *c, void *p)
{
    struct st *s = p;
    int rc = read_in(c, s, 0, 0, s->dense[0]);
    if (rc)
        return rc;
    for (int64_t q = 0; q < R * C; q++)
        s->outd[q] = tn_step(s->dense[0][q], 0);
    return write_out(c, s, 0, 1, s->outd);
}

static int m_side(weir_call *c, void *p)
{
    struct st *s = p;
    unsigned k = idx_of(p); /* left: 1 -> edge 2, right: 2 -> edge 3 */
    int rc = read_in(c, s, 0, 1, s->dense[0]);
    if (rc)
        return rc;
    for (int64_t q = 0; q < R * C; q++)
        s->outd[q] = tn_step(s->dense[0][q], k);
    return write_out(c, s, 0, k + 1, s->outd);
}

static int m_join(weir_call *c, void *p)
{
    struct st *s = p;
    int rc;
    if ((rc = read_in(c, s, 0, 2, s->dense[0])) || (rc = read_in(c, s, 1, 3, s->dense[1])) ||
        (rc = read_in(c, s, 2, 0, s->dense[2])))
        return rc;
    for (int64_t q = 0; q < R * C; q++)
        s->outd[q] = (s->dense[0][q] ^ s->dense[1][q]) + s->dense[2][q];
    return write_out(c, s, 0, 4, s->outd);
}

static weir_actor *actor(weir_graph *g, const char *name, unsigned i, int node, int iso)
{
    weir_actor_opts o = {.state = &states[i], .node = node, .isolation = iso, .init = st_init,
                         .fini = st_fini};
    weir_actor *a = weir_actor_new(g, name, &o);
    if (!a)
        DIE("actor %s: %s", name, weir_errmsg());
    return a;
}

/* Mark n as edge k: CPU edges alternate max_bytes 0 (any: the ring grows)
 * and the largest span; device edges need max_bytes. */
static void mark(weir_node *n, unsigned k)
{
    weir_tensor_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.device = is_dev_edge(k) ? WEIR_TENSOR_DEVICE_SIM : kDLCPU;
    sp.max_bytes = (is_dev_edge(k) || k % 2) ? span_max() : 0;
    sp.dtype = tn_dtype(k);
    sp.ndim = 2;
    sp.shape[0] = R;
    sp.shape[1] = C;
    if (weir_node_tensor_spec(n, &sp) < 0)
        DIE("edge %u: %s", k, weir_errmsg());
}

static unsigned out_edge(void)
{
    return DIAMOND ? 4 : 3;
}

static void build(weir_graph *g, int iso)
{
    weir_node *in = weir_input(g, 0);
    mark(in, 0);
    if (!DIAMOND) {
        weir_node *x = in;
        for (unsigned k = 0; k < 3; k++) {
            char name[8];
            snprintf(name, sizeof name, "s%u", k);
            weir_actor *a = actor(g, name, k, k == 1 ? 0 : 1 % S, iso);
            x = weir_bind(a, "step", m_step, &x, 1, 1);
            mark(x, k + 1);
        }
        weir_output(g, &x, 1);
        return;
    }
    weir_actor *src = actor(g, "src", 0, 1 % S, iso), *left = actor(g, "left", 1, 0, iso),
               *right = actor(g, "right", 2, 1 % S, iso), *join = actor(g, "join", 3, 0, iso);
    weir_node *y = weir_bind(src, "src", m_src, &in, 1, 1);
    mark(y, 1);
    weir_node *l = weir_bind(left, "left", m_side, &y, 1, 1);
    mark(l, 2);
    weir_node *r = weir_bind(right, "right", m_side, &y, 1, 1);
    mark(r, 3);
    weir_node *j = weir_bind(join, "join", m_join, (weir_node *[]){l, r, in}, 3, 1);
    mark(j, 4);
    weir_output(g, &j, 1);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 5)
        DIE("usage: tnode_rank chain|diamond N thread|process cpu|sim [R C]");
    RANK = weir_rank();
    S = weir_world_size();
    if (RANK < 0 || S < 1)
        DIE("%s", weir_errmsg());
    DIAMOND = !strcmp(argv[1], "diamond");
    uint64_t N = strtoull(argv[2], NULL, 10);
    int iso = !strcmp(argv[3], "process") ? WEIR_PROCESS : WEIR_THREAD;
    SIMDEV = !strcmp(argv[4], "sim");
    if (argc >= 7) {
        R = atoll(argv[5]);
        C = atoll(argv[6]);
    }
    if (R < 1 || C < 1)
        DIE("bad shape");
    weir_graph *g = weir_graph_new(argv[1]);
    build(g, iso);
    weir_compile_opts co = {.max_inflight = 8};
    weir_dag *d = weir_compile(g, &co);
    if (!d) {
        printf("rank %d: compile %d: %s\n", RANK, weir_errcode(), weir_errmsg());
        weir_graph_free(g);
        return 1;
    }
    int bad = 0;
    if (RANK != 0) {
        int rc = weir_dag_join(d, 120000);
        if (rc == 0)
            printf("rank %d: joined\n", RANK);
        else
            printf("rank %d: join %d: %s\n", RANK, rc, weir_errmsg());
        bad = rc != 0;
    } else {
        int64_t shape[2] = {R, C};
        uint32_t *x = malloc((size_t)(R * C) * 4), *dense = malloc((size_t)(R * C) * 4);
        if (!x || !dense)
            DIE("out of memory");
        /* sim: the argument goes from a device buffer of the driver's. */
        weir__device *dv = NULL;
        void *dmem = NULL, *dptr = NULL;
        if (SIMDEV && (weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "driver", &dv) < 0 ||
                       dv->ops->mem_alloc(dv->impl, span_max(), &dmem, &dptr) < 0))
            DIE("driver device: %s", weir_errmsg());
        unsigned char *img = malloc(span_max());
        if (!img)
            DIE("out of memory");
        uint64_t next = 0, done = 0, failed = 0, sum = 0;
        while (done < N) {
            while (next < N && next - done < 8) {
                for (int64_t i = 0; i < R; i++)
                    for (int64_t j = 0; j < C; j++)
                        x[i * C + j] = tn_x(next, i, j);
                DLTensor t;
                memset(&t, 0, sizeof t);
                t.data = x;
                t.device.device_type = kDLCPU;
                t.ndim = 2;
                t.shape = shape;
                t.dtype = tn_dtype(0);
                int64_t st[2];
                uint64_t bo;
                int64_t *ws = tn_layout(next, 0, R, C, st, &bo);
                if (ws) { /* lay the argument out as edge 0 wants */
                    for (int64_t i = 0; i < R; i++)
                        for (int64_t j = 0; j < C; j++)
                            memcpy(img + tn_at(ws, bo, C, i, j), &x[i * C + j], 4);
                    t.data = img;
                    t.strides = ws;
                    t.byte_offset = bo;
                }
                if (SIMDEV) {
                    size_t span;
                    if (weir_tensor_nbytes(&t, &span) < 0 ||
                        dv->ops->copy(dv->impl, dptr, t.data, span, WEIR__COPY_H2D) < 0)
                        DIE("argument %" PRIu64 ": %s", next, weir_errmsg());
                    t.data = dptr;
                    t.device.device_type = WEIR_TENSOR_DEVICE_SIM;
                }
                weir_buf b = weir_tensor_arg(&t);
                uint64_t id;
                int rc = weir_submit(d, &b, 1, &id, 30000);
                if (rc < 0)
                    DIE("submit %" PRIu64 ": %s", next, weir_errmsg());
                next++;
            }
            weir_result *r;
            int rc = weir_wait(d, done, &r, 30000);
            if (rc < 0) {
                printf("rank 0: execution %" PRIu64 " %d: %s\n", done, rc, weir_errmsg());
                failed++;
                done++;
                continue;
            }
            DLTensor t;
            char why[256];
            if (weir_result_tensor(r, 0, &t) < 0)
                DIE("execution %" PRIu64 ": %s", done, weir_errmsg());
            if (check_tensor(&t, t.data, out_edge(), done, WEIR_TENSOR_ALIGN, 1, dense, why,
                             sizeof why) < 0)
                DIE("result: %s", why);
            for (int64_t q = 0; q < R * C; q++)
                sum += dense[q];
            weir_result_free(r);
            done++;
        }
        free(x);
        free(dense);
        free(img);
        if (dv) {
            dv->ops->mem_free(dv->impl, dmem);
            weir__device_close(dv);
        }
        printf("rank 0: %" PRIu64 " executions checked, %" PRIu64 " failed, sum %016" PRIx64 "\n",
               done - failed, failed, sum);
        bad = failed != 0;
    }
    uint64_t tf = mono_ms();
    int rc = weir_dag_free(d);
    printf("rank %d: free %d in %" PRIu64 " ms%s%s\n", RANK, rc, mono_ms() - tf, rc ? ": " : "",
           rc ? weir_errmsg() : "");
    if (SIMDEV) {
        weir__dev_counters k;
        weir__tensor_last_counters(&k);
        printf("rank %d: weir copied h2d %" PRIu64 " d2h %" PRIu64 " d2d %" PRIu64 ", pinned %" PRIu64
               " (slot ranges registered %" PRIu64 ", unregistered %" PRIu64 ", failed %" PRIu64
               ")\n", RANK, k.copies[WEIR__COPY_H2D], k.copies[WEIR__COPY_D2H],
               k.copies[WEIR__COPY_D2D], k.pinned_copies, k.host_regs, k.host_unregs,
               k.host_reg_fails);
    }
    weir_graph_free(g);
    return bad || rc != 0;
}
