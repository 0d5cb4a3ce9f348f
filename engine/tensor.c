/* SPDX-License-Identifier: MIT */
/*
 * engine/tensor.c - tensor edges at run time: weir_call_in_tensor,
 * weir_call_out_tensor, weir_tensor_arg, weir_result_tensor, and the device
 * pools behind device edges.
 *
 * Design notes
 *   - Every tensor value, on a channel or in a register that stays inside
 *     an actor, is one message: the fixed record (channels/tensor.h), then
 *     for CPU edges the data, 64-byte aligned, in the same slot. A CPU
 *     reader's view points into the slot the producer filled (zero-copy
 *     across threads and process actors: the slots are shared memory).
 *   - Device edges keep the data on the device, in a pool of `depth`
 *     buffers per channel; execution e uses buffer e % depth. The ring
 *     already guarantees that message e's slot is reused only after every
 *     reader released it, and slot e and buffer e % depth are reused
 *     together, so a buffer is never overwritten while a reader holds it.
 *     Device work is asynchronous, so events order it: the producer records
 *     ready[b] after its method returns; a reader's stream waits on it
 *     before the view is handed out, and records rel[b][r] after its method
 *     returns; the producer's stream waits on every rel[b][*] before it
 *     hands out b again.
 *   - The driver opens the device, allocates each pool and its events and
 *     exports them; each actor (thread or process) opens the device itself
 *     in its own thread/process and imports the buffers and events of the
 *     edges it touches, once, at start (weir__tensor_actor_start). With
 *     process actors on this rank the pools are made by a holder process
 *     instead, forked before them, so the driver has not initialised the
 *     device when it forks them (see "the holder" below). A restarted
 *     process imports again from the same inherited handles.
 *   - Device edges across ranks: the pool lives on the writer's rank only,
 *     with release events for the readers there. When the edge has readers
 *     on other ranks, its messages are staged through host memory: the
 *     slot holds the record and room for the data (F_STAGED); after the
 *     producer's method returns (before the message is committed) weir
 *     copies the buffer device-to-host into the slot, and the link carries
 *     record and copy like any message. A reader on another rank has one
 *     device buffer of its own and copies the staged bytes host-to-device
 *     into it before its view is handed out; the slot is released when its
 *     method returns, so it needs no release event (the link's reader held
 *     the writer's slot until the bytes were sent). So a message costs one
 *     device-to-host copy on the writer's rank and one host-to-device copy
 *     per remote reader. (CUDA: the copies are synchronous on this
 *     process's stream; the ring slot is pageable shared memory, not
 *     pinned.)
 *   - Device tensors as arguments: the driver owns the pool of an argument
 *     edge; submit copies the caller's device data device-to-device into
 *     buffer e % depth once its slot is reserved (so every reader released
 *     the buffer's previous message) and records its ready event. As graph
 *     outputs: the edge is staged as for another rank, and the result holds
 *     the host copy (weir_result_tensor gives a kDLCPU tensor): a result
 *     can outlive the slot and its pool buffer.
 *   - An edge's device and dtype/ndim/shape are checked where the tensor is
 *     produced (weir_call_out_tensor, submit); a mismatch fails that
 *     execution only, with the edge named. A reader trusts nothing: it
 *     decodes and bounds-checks the record (another process wrote it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weir/tensor.h>

#include "channels/chan_internal.h"
#include "channels/device.h"
#include "channels/err.h"
#include "channels/tensor.h"
#include "dag/graph_internal.h"
#include "engine/engine.h"

#define NAME_MAX_ (3 * WEIR_MAX_NAME + 16)

/* A device edge's pool, owned by the driver (or, for dags with process
 * actors, by the holder: then the driver has only the handles, and its own
 * mappings once it writes a device argument). */
struct tpool {
    weir__device *dev;
    unsigned nbuf, nrd;
    void **mem, **ptr, **ready, **rel; /* nbuf; nbuf; nbuf; nbuf * nrd */
    weir__dev_ipc *h_mem, *h_ready, *h_rel;
};

struct tedge {
    char name[NAME_MAX_];
    weir_tensor_spec spec;
    int chan;   /* -1: the value stays inside its actor */
    int writer; /* actor index, WEIR__PLAN_DRIVER for arguments */
    int wrank;  /* the writer's rank */
    int staged; /* a device edge read on other ranks or by the driver: staged through the slot */
    int check;  /* the holder opens the device once to check it (no pool here) */
    struct tpool *pool; /* device edges with a channel, on the writer's rank */
};

struct weir__tensor_rt {
    weir__dev_counters *ctr; /* per actor, shared with actor processes (MAP_SHARED) */
    size_t ctr_bytes;
    unsigned nedges;
    struct tedge *edges;
    int *chan_edge; /* per channel: edge index or -1 */
    int **reg_edge; /* per actor, per register: edge index or -1 */
    /* Dags with process actors: the pools are made by the holder process. */
    int held;
    pid_t holder;               /* 0: none (yet, or any more) */
    int hold_sock;              /* the driver's end of the holder's socket, or -1 */
    weir__dev_counters *hold_ctr; /* the holder's counters, published as it exits (MAP_SHARED) */
};

/* One actor's view of a device edge it touches. */
struct tact_edge {
    weir__device *dev;
    unsigned nbuf;
    void **mem, **ptr, **ready, **rel;
    int rd;      /* this actor's reader index in the channel, or -1 */
    int local;   /* the edge stays in this actor: one buffer of its own */
    int remote;  /* a reader on another rank than the writer's: one buffer of its own */
    int written; /* the current call wrote buffer `buf` */
    unsigned buf;
    void *stage;        /* the writer of a staged edge: the slot's room for the copy */
    size_t stage_bytes; /* its size */
    uint64_t staged_in; /* a remote reader: execution + 1 whose bytes its buffer holds */
    void *pinned;       /* the slots registered with the device (staged edges), or NULL */
};

struct weir__tensor_actor {
    weir__dev_counters ctr; /* what this actor's devices did (published at stop) */
    unsigned nedges;
    struct tact_edge *e; /* by edge index; dev NULL: not a device edge of this actor */
};

static int is_device(const struct tedge *e)
{
    return e->spec.device != kDLCPU;
}

/* ---- checks ------------------------------------------------------------ */

static int spec_check(const struct tedge *e, const DLTensor *t, size_t *span)
{
    weir__tensor_edge te = {.name = e->name, .device_type = e->spec.device,
                            .max_bytes = e->spec.max_bytes};
    int rc = weir__tensor_check_edge(t, &te, span);
    if (rc < 0)
        return rc;
    if (is_device(e) && t->device.device_id != e->spec.device_id)
        return weir__seterr(-EINVAL,
                            "tensor edge '%s': tensor on device id %d, the edge's pool is on "
                            "device %d",
                            e->name, t->device.device_id, e->spec.device_id);
    const DLDataType *w = &e->spec.dtype;
    if (w->bits && (t->dtype.code != w->code || t->dtype.bits != w->bits ||
                    t->dtype.lanes != w->lanes))
        return weir__seterr(-EINVAL,
                            "tensor edge '%s': dtype (code %u, bits %u, lanes %u), the edge takes "
                            "(code %u, bits %u, lanes %u)",
                            e->name, t->dtype.code, t->dtype.bits, t->dtype.lanes, w->code,
                            w->bits, w->lanes);
    int want = e->spec.ndim == WEIR_TENSOR_SCALAR ? 0 : e->spec.ndim;
    if (e->spec.ndim != 0 && t->ndim != want)
        return weir__seterr(-EINVAL, "tensor edge '%s': ndim %d, the edge takes ndim %d", e->name,
                            t->ndim, want);
    for (int i = 0; i < want; i++)
        if (e->spec.shape[i] > 0 && t->shape[i] != e->spec.shape[i])
            return weir__seterr(-EINVAL, "tensor edge '%s': shape[%d] is %lld, the edge takes %lld",
                                e->name, i, (long long)t->shape[i], (long long)e->spec.shape[i]);
    return 0;
}

/* ---- compile: edges, registers, pools (driver) ------------------------- */

static void ctr_sum(weir__dev_counters *to, const weir__dev_counters *c)
{
    for (int k = 0; k < 3; k++)
        to->copies[k] += c->copies[k];
    to->copy_bytes += c->copy_bytes;
    to->allocs += c->allocs;
    to->frees += c->frees;
    to->exports += c->exports;
    to->imports += c->imports;
    to->unmaps += c->unmaps;
    to->ev_creates += c->ev_creates;
    to->ev_destroys += c->ev_destroys;
    to->ev_records += c->ev_records;
    to->ev_waits += c->ev_waits;
    to->syncs += c->syncs;
    to->host_regs += c->host_regs;
    to->host_unregs += c->host_unregs;
    to->host_reg_fails += c->host_reg_fails;
    to->pinned_copies += c->pinned_copies;
}

/* Free a pool; with acc, add what the pool's device did (the driver's
 * allocations, exports, and the copies of device arguments) to *acc once
 * everything of it is freed. */
static void pool_free(struct tpool *p, weir__dev_counters *acc)
{
    if (!p)
        return;
    const weir__device_ops *o = p->dev ? p->dev->ops : NULL;
    for (unsigned b = 0; b < p->nbuf; b++) {
        if (p->h_mem)
            weir__dev_ipc_close(&p->h_mem[b]);
        if (p->h_ready)
            weir__dev_ipc_close(&p->h_ready[b]);
        if (o && p->mem && p->mem[b])
            o->mem_free(p->dev->impl, p->mem[b]);
        if (o && p->ready && p->ready[b])
            o->ev_destroy(p->dev->impl, p->ready[b]);
        for (unsigned r = 0; r < p->nrd; r++) {
            if (p->h_rel)
                weir__dev_ipc_close(&p->h_rel[b * p->nrd + r]);
            if (o && p->rel && p->rel[b * p->nrd + r])
                o->ev_destroy(p->dev->impl, p->rel[b * p->nrd + r]);
        }
    }
    free(p->mem);
    free(p->ptr);
    free(p->ready);
    free(p->rel);
    free(p->h_mem);
    free(p->h_ready);
    free(p->h_rel);
    if (acc && p->dev) {
        weir__dev_counters c;
        p->dev->ops->counters(p->dev->impl, &c);
        ctr_sum(acc, &c);
    }
    weir__device_close(p->dev);
    free(p);
}

/* A pool's handles in one order (the holder sends them in it, the driver
 * receives them in it): per buffer its memory, its ready event, then its
 * release events. */
static unsigned pool_nhandles(const struct tpool *P)
{
    return P->nbuf * (2 + P->nrd);
}

static weir__dev_ipc *pool_handle(const struct tpool *P, unsigned k)
{
    unsigned b = k / (2 + P->nrd), j = k % (2 + P->nrd);
    return j == 0 ? &P->h_mem[b] : j == 1 ? &P->h_ready[b] : &P->h_rel[b * P->nrd + j - 2];
}

static weir__dev_ipc *handles(unsigned n)
{
    weir__dev_ipc *h = calloc(n ? n : 1, sizeof *h);
    for (unsigned i = 0; h && i < n; i++)
        h[i].fd = -1;
    return h;
}

/* A pool's arrays and empty handles, no device. */
static int pool_shell(const struct tedge *e, unsigned nbuf, unsigned nrd, struct tpool **out)
{
    struct tpool *p = calloc(1, sizeof *p);
    if (!p)
        return weir__seterr(-ENOMEM, "tensor edge '%s': out of memory", e->name);
    p->nbuf = nbuf;
    p->nrd = nrd;
    p->mem = calloc(nbuf, sizeof *p->mem);
    p->ptr = calloc(nbuf, sizeof *p->ptr);
    p->ready = calloc(nbuf, sizeof *p->ready);
    p->rel = calloc((size_t)nbuf * (nrd ? nrd : 1), sizeof *p->rel);
    p->h_mem = handles(nbuf);
    p->h_ready = handles(nbuf);
    p->h_rel = handles(nbuf * nrd);
    if (!p->mem || !p->ptr || !p->ready || !p->rel || !p->h_mem || !p->h_ready || !p->h_rel) {
        pool_free(p, NULL);
        return weir__seterr(-ENOMEM, "tensor edge '%s': out of memory", e->name);
    }
    *out = p;
    return 0;
}

static int pool_new(const struct tedge *e, unsigned nbuf, unsigned nrd, struct tpool **out)
{
    struct tpool *p;
    int rc = pool_shell(e, nbuf, nrd, &p);
    if (rc < 0)
        return rc;
    if ((rc = weir__device_open(e->spec.device, e->spec.device_id, e->name, &p->dev)) < 0)
        goto fail;
    const weir__device_ops *o = p->dev->ops;
    void *dv = p->dev->impl;
    for (unsigned b = 0; b < nbuf; b++) {
        if ((rc = o->mem_alloc(dv, e->spec.max_bytes, &p->mem[b], &p->ptr[b])) < 0 ||
            (rc = o->mem_export(dv, p->mem[b], &p->h_mem[b])) < 0 ||
            (rc = o->ev_create(dv, &p->ready[b])) < 0 ||
            (rc = o->ev_export(dv, p->ready[b], &p->h_ready[b])) < 0)
            goto named;
        for (unsigned r = 0; r < nrd; r++)
            if ((rc = o->ev_create(dv, &p->rel[b * nrd + r])) < 0 ||
                (rc = o->ev_export(dv, p->rel[b * nrd + r], &p->h_rel[b * nrd + r])) < 0)
                goto named;
    }
    *out = p;
    return 0;
named:;
    char why[512];
    snprintf(why, sizeof why, "%s", weir_errmsg());
    weir__seterr(rc, "tensor edge '%s': pool of %u buffers of %zu bytes: %s", e->name, nbuf,
                 e->spec.max_bytes, why);
fail:
    pool_free(p, NULL);
    return rc;
}

static void holder_stop(struct weir__tensor_rt *T, weir__dev_counters *acc);

static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static weir__dev_counters last_ctr, last_drv;

void weir__tensor_last_counters(weir__dev_counters *out)
{
    pthread_mutex_lock(&last_mu);
    *out = last_ctr;
    pthread_mutex_unlock(&last_mu);
}

void weir__tensor_last_driver_counters(weir__dev_counters *out)
{
    pthread_mutex_lock(&last_mu);
    *out = last_drv;
    pthread_mutex_unlock(&last_mu);
}

void weir__tensor_dag_free(struct weir_dag *d)
{
    struct weir__tensor_rt *T = d->tensor;
    if (!T)
        return;
    /* Every actor has stopped (or died): publish what they did, and what
     * the driver's pools did once they are freed (a dag whose set-up failed
     * before the counters were mapped publishes nothing). */
    weir__dev_counters sum, drv;
    memset(&sum, 0, sizeof sum);
    memset(&drv, 0, sizeof drv);
    int publish = T->ctr != NULL;
    if (T->ctr) {
        for (unsigned a = 0; a < d->plan->nactors; a++)
            ctr_sum(&sum, &T->ctr[a]);
        munmap(T->ctr, T->ctr_bytes);
    }
    for (unsigned i = 0; i < T->nedges; i++)
        pool_free(T->edges[i].pool, &drv);
    holder_stop(T, &drv); /* after the driver's own mappings of its pools are gone */
    if (publish) {
        pthread_mutex_lock(&last_mu);
        last_ctr = sum;
        last_drv = drv;
        pthread_mutex_unlock(&last_mu);
    }
    if (T->reg_edge)
        for (unsigned a = 0; a < d->plan->nactors; a++)
            free(T->reg_edge[a]);
    free(T->reg_edge);
    free(T->chan_edge);
    free(T->edges);
    free(T);
    d->tensor = NULL;
}

static int edge_of(const weir_graph *g, unsigned node, unsigned out)
{
    for (unsigned i = 0; i < g->ntensors; i++)
        if (g->tensors[i].node == node && g->tensors[i].out == out)
            return (int)i;
    return -1;
}

/* The channel carrying mark m's value, or -1. */
static int chan_of(const struct weir__plan *p, const weir_graph *g, const struct weir__tensor_mark *m)
{
    const weir_node *n = g->nodes[m->node];
    for (unsigned c = 0; c < p->nchans; c++) {
        const struct weir__plan_chan *pc = &p->chans[c];
        if (pc->src_kind == WEIR__SRC_ARG) {
            if (n->kind == WEIR__N_INPUT && pc->src_index == n->argi)
                return (int)c;
        } else if (n->kind == WEIR__N_CALL && pc->writer >= 0 &&
                   pc->src_index < p->actors[pc->writer].nops &&
                   p->actors[pc->writer].ops[pc->src_index].node == m->node && pc->src_out == m->out) {
            return (int)c;
        }
    }
    return -1;
}

static int edge_setup(struct weir_dag *d, const weir_graph *g, unsigned i)
{
    struct weir__plan *p = d->plan;
    struct weir__tensor_rt *T = d->tensor;
    const struct weir__tensor_mark *m = &g->tensors[i];
    struct tedge *e = &T->edges[i];
    const weir_node *n = g->nodes[m->node];
    e->spec = m->spec;
    e->chan = chan_of(p, g, m);
    if (e->chan >= 0) {
        snprintf(e->name, sizeof e->name, "%s", p->chans[e->chan].name);
        e->writer = p->chans[e->chan].writer;
        e->wrank = weir__plan_party_rank(p, e->writer);
        T->chan_edge[e->chan] = (int)i;
    } else if (n->kind == WEIR__N_INPUT) {
        snprintf(e->name, sizeof e->name, "arg%u", n->argi);
        e->writer = WEIR__PLAN_DRIVER;
    } else {
        snprintf(e->name, sizeof e->name, "%s.%s.out%u", n->actor->name,
                 n->actor->methods[n->method].name, m->out);
        /* An edge inside one unit: its buffer is the unit's, opened by whoever
         * runs the producing call (a fused worker's lead, not the producer
         * itself), as channels name units as their writers. */
        int32_t run = weir__plan_runner(p, n->actor->idx);
        e->writer = run >= 0 ? (int)run : (int)n->actor->idx;
    }
    if (!is_device(e)) {
        /* Room for the record, alignment and max_bytes of data from the start. */
        if (e->chan >= 0 && e->spec.max_bytes) {
            uint64_t need = sizeof(weir__tensor_rec) + WEIR_TENSOR_ALIGN + e->spec.max_bytes;
            if (p->chans[e->chan].slot_bytes < need)
                p->chans[e->chan].slot_bytes = need;
        }
        return 0;
    }
    if (!e->spec.max_bytes)
        return weir__seterr(-EINVAL,
                            "tensor edge '%s': a device edge needs max_bytes (the size of its "
                            "pool's buffers)",
                            e->name);
    unsigned nrd = 0; /* actors reading on the writer's rank: the pool's release events */
    int here = 0;
    if (e->chan >= 0)
        for (unsigned r = 0; r < p->chans[e->chan].nreaders; r++) {
            int32_t who = p->chans[e->chan].readers[r];
            if (who == WEIR__PLAN_DRIVER) {
                /* A graph output: the result holds a host copy (staged). */
                e->staged = 1;
                continue;
            }
            if (weir__plan_party_rank(p, who) == e->wrank)
                nrd++;
            else
                e->staged = 1;
            here |= weir__plan_party_rank(p, who) == d->rank;
        }
    if (e->staged) {
        /* Room for the record and the staged copy (every rank: the
         * receiving rings are made from the same plan). */
        uint64_t need = sizeof(weir__tensor_rec) + WEIR_TENSOR_ALIGN + e->spec.max_bytes;
        if (p->chans[e->chan].slot_bytes < need)
            p->chans[e->chan].slot_bytes = need;
    }
    if (e->chan < 0 || e->wrank != d->rank) {
        /* Local only, or written on another rank: an actor here allocates
         * its own buffer (if any reads it here); check the device now. */
        if (e->chan >= 0 && !here)
            return 0;
        if (T->held) {
            e->check = 1; /* by the holder: this process must not open it */
            return 0;
        }
        weir__device *dv;
        int rc = weir__device_open(e->spec.device, e->spec.device_id, e->name, &dv);
        if (rc < 0)
            return rc;
        weir__device_close(dv);
        return 0;
    }
    if (T->held)
        return pool_shell(e, p->chans[e->chan].depth, nrd, &e->pool);
    return pool_new(e, p->chans[e->chan].depth, nrd, &e->pool);
}

/* ---- the holder: device pools of dags with process actors --------------- */

/*
 * CUDA cannot be used in a process forked from one that had initialised it,
 * and process actors are forked from the driver. So when this rank has
 * process actors and the graph device edges, the driver must not touch the
 * device before they are forked: the pools are made by a holder, a process
 * forked first, while the driver has not initialised the device. It opens
 * the device, makes and exports every pool (and checks the edges the driver
 * would have checked), sends the handles to the driver over a unix socket
 * (SCM_RIGHTS), and keeps the pools until the driver closes the socket at
 * teardown; then it publishes its counters and exits. The driver keeps the
 * handles: the actor processes forked after it inherit them and import
 * them, as thread actors do. The driver maps a pool itself only to write a
 * device argument (after the forks), and a process forked after that (a
 * restart) cannot open the device: it fails to start, with the backend's
 * reason.
 */

struct hold_status {
    int32_t rc;
    char why[600];
};

static int holder_wanted(const struct weir_dag *d, const weir_graph *g)
{
    int dev = 0;
    for (unsigned i = 0; i < g->ntensors; i++)
        dev |= g->tensors[i].spec.device != kDLCPU;
    for (unsigned a = 0; dev && a < d->plan->nactors; a++)
        if (d->plan->actors[a].isolation == WEIR_PROCESS && WEIR__ACTOR_HERE(d, a))
            return 1;
    return 0;
}

static void holder_main(struct weir_dag *d, int sock)
{
    struct weir__tensor_rt *T = d->tensor;
    struct hold_status st;
    memset(&st, 0, sizeof st);
    struct tpool **mine = calloc(T->nedges, sizeof *mine);
    if (!mine)
        st.rc = weir__seterr(-ENOMEM, "device pool holder: out of memory");
    for (unsigned i = 0; mine && st.rc == 0 && i < T->nedges; i++) {
        const struct tedge *e = &T->edges[i];
        weir__device *dv;
        if (e->pool)
            st.rc = pool_new(e, e->pool->nbuf, e->pool->nrd, &mine[i]);
        else if (e->check && (st.rc = weir__device_open(e->spec.device, e->spec.device_id,
                                                        e->name, &dv)) == 0)
            weir__device_close(dv);
    }
    if (st.rc < 0)
        snprintf(st.why, sizeof st.why, "%s", weir_errmsg());
    int ok = send(sock, &st, sizeof st, MSG_NOSIGNAL) == (ssize_t)sizeof st && st.rc == 0;
    for (unsigned i = 0; ok && i < T->nedges; i++)
        for (unsigned k = 0; mine[i] && ok && k < pool_nhandles(mine[i]); k++)
            ok = weir__dev_ipc_send(sock, pool_handle(mine[i], k)) == 0;
    /* Keep the pools until the driver closes its end (or dies: PDEATHSIG). */
    char c;
    while (ok) {
        ssize_t k = recv(sock, &c, 1, 0);
        if (k == 0 || (k < 0 && errno != EINTR))
            break;
    }
    weir__dev_counters acc;
    memset(&acc, 0, sizeof acc);
    for (unsigned i = 0; mine && i < T->nedges; i++)
        pool_free(mine[i], &acc);
    *T->hold_ctr = acc;
    _exit(0);
}

/* Close the holder's socket, wait for it to exit (killed past 5 s), add its
 * counters to *acc. */
static void holder_stop(struct weir__tensor_rt *T, weir__dev_counters *acc)
{
    if (T->hold_sock >= 0) {
        shutdown(T->hold_sock, SHUT_RDWR);
        close(T->hold_sock);
        T->hold_sock = -1;
    }
    if (T->holder > 0) {
        int st = 0, done = 0;
        for (int i = 0; i < 5000 && !done; i++) {
            pid_t r = waitpid(T->holder, &st, WNOHANG);
            done = r == T->holder || (r < 0 && errno != EINTR);
            if (!done)
                usleep(1000);
        }
        if (!done) {
            kill(T->holder, SIGKILL);
            waitpid(T->holder, &st, 0);
        } else if (acc && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ctr_sum(acc, T->hold_ctr);
        }
        T->holder = 0;
    }
    if (T->hold_ctr)
        munmap(T->hold_ctr, sizeof *T->hold_ctr);
    T->hold_ctr = NULL;
}

static int holder_start(struct weir_dag *d)
{
    struct weir__tensor_rt *T = d->tensor;
    for (unsigned i = 0; i < T->nedges; i++) {
        const struct tedge *e = &T->edges[i];
        const weir__device_ops *o = weir__device_backend(e->spec.device);
        if (is_device(e) && o && o->used_here())
            return weir__seterr(-EBUSY,
                                "tensor edge '%s': this process has used the %s device before "
                                "weir_compile, and process actors forked from it could not (a "
                                "forked process cannot use a device its parent initialised): "
                                "compile dags with process actors and device edges before the "
                                "program's first device call",
                                e->name, o->name);
    }
    T->hold_ctr = mmap(NULL, sizeof *T->hold_ctr, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (T->hold_ctr == MAP_FAILED) {
        T->hold_ctr = NULL;
        return weir__seterr(-ENOMEM, "device pool holder: out of memory");
    }
    memset(T->hold_ctr, 0, sizeof *T->hold_ctr);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return weir__seterr(-errno, "device pool holder: socketpair: %s", strerror(errno));
    pid_t pid = weir__proc_fork(d, "devpool");
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return weir__seterr(-e, "device pool holder: fork failed: %s", strerror(e));
    }
    if (pid == 0) {
        close(sv[0]);
        holder_main(d, sv[1]);
    }
    close(sv[1]);
    T->holder = pid;
    T->hold_sock = sv[0];
    /* Its first answer: the pools are made, or why not. */
    int tmo = d->timeout_ms;
    struct pollfd pf = {.fd = sv[0], .events = POLLIN};
    int n;
    while ((n = poll(&pf, 1, tmo)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return weir__seterr(-ETIMEDOUT, "device pool holder (pid %d): no answer in %d ms",
                            (int)pid, tmo);
    struct hold_status st;
    ssize_t got = recv(sv[0], &st, sizeof st, 0);
    if (got != (ssize_t)sizeof st)
        return weir__seterr(-EPIPE, "device pool holder (pid %d): died before it answered",
                            (int)pid);
    st.why[sizeof st.why - 1] = '\0';
    if (st.rc < 0)
        return weir__seterr(st.rc, "%s", st.why);
    for (unsigned i = 0; i < T->nedges; i++) {
        const struct tpool *P = T->edges[i].pool;
        for (unsigned k = 0; P && k < pool_nhandles(P); k++) {
            int rc = weir__dev_ipc_recv(sv[0], pool_handle(P, k), tmo);
            if (rc < 0) {
                char why[512];
                snprintf(why, sizeof why, "%s", weir_errmsg());
                return weir__seterr(rc, "tensor edge '%s': handles from the device pool holder "
                                        "(pid %d): %s",
                                    T->edges[i].name, (int)pid, why);
            }
        }
    }
    return 0;
}

void weir__tensor_forget(struct weir_dag *d, int other)
{
    struct weir__tensor_rt *T = d->tensor;
    if (!T)
        return;
    if (T->hold_sock >= 0)
        close(T->hold_sock);
    T->hold_sock = -1;
    T->holder = 0; /* not this process's child */
    for (unsigned i = 0; other && i < T->nedges; i++)
        for (unsigned k = 0; T->edges[i].pool && k < pool_nhandles(T->edges[i].pool); k++)
            weir__dev_ipc_close(pool_handle(T->edges[i].pool, k));
}

/* Import pool P's buffers and ready events into dev, and its release
 * events: every reader's (rd < 0: a writer waits on them all) or reader
 * rd's only (it records its own). Into arrays of P's sizes. */
static int pool_import(const struct tpool *P, weir__device *dev, int rd, void **mem, void **ptr,
                       void **ready, void **rel)
{
    const weir__device_ops *o = dev->ops;
    int rc;
    for (unsigned b = 0; b < P->nbuf; b++) {
        if ((rc = o->mem_import(dev->impl, &P->h_mem[b], &mem[b], &ptr[b])) < 0 ||
            (rc = o->ev_import(dev->impl, &P->h_ready[b], &ready[b])) < 0)
            return rc;
        for (unsigned q = 0; q < P->nrd; q++)
            if ((rd < 0 || (int)q == rd) &&
                (rc = o->ev_import(dev->impl, &P->h_rel[b * P->nrd + q], &rel[b * P->nrd + q])) < 0)
                return rc;
    }
    return 0;
}

/* The driver's own mapping of a held pool (to write device arguments). */
static int pool_attach(const struct tedge *e, struct tpool *P)
{
    int rc = weir__device_open(e->spec.device, e->spec.device_id, e->name, &P->dev);
    return rc < 0 ? rc : pool_import(P, P->dev, -1, P->mem, P->ptr, P->ready, P->rel);
}

int weir__tensor_dag_init(struct weir_dag *d, const weir_graph *g)
{
    struct weir__plan *p = d->plan;
    if (!g->ntensors)
        return 0;
    struct weir__tensor_rt *T = calloc(1, sizeof *T);
    if (!T)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", p->graph);
    d->tensor = T;
    T->nedges = g->ntensors;
    T->edges = calloc(T->nedges, sizeof *T->edges);
    T->chan_edge = malloc((p->nchans ? p->nchans : 1) * sizeof *T->chan_edge);
    T->reg_edge = calloc(p->nactors ? p->nactors : 1, sizeof *T->reg_edge);
    if (!T->edges || !T->chan_edge || !T->reg_edge)
        goto oom;
    for (unsigned c = 0; c < p->nchans; c++)
        T->chan_edge[c] = -1;
    T->hold_sock = -1;
    T->held = holder_wanted(d, g);
    T->ctr_bytes = (p->nactors ? p->nactors : 1) * sizeof *T->ctr;
    T->ctr = mmap(NULL, T->ctr_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (T->ctr == MAP_FAILED) {
        T->ctr = NULL;
        goto oom;
    }
    for (unsigned i = 0; i < T->nedges; i++) {
        int rc = edge_setup(d, g, i);
        if (rc < 0) {
            char why[600];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            weir__tensor_dag_free(d);
            return weir__seterr(rc, "graph '%s': %s", p->graph, why);
        }
    }
    for (unsigned a = 0; a < p->nactors; a++) {
        const struct weir__plan_actor *pa = &p->actors[a];
        T->reg_edge[a] = malloc((pa->nregs ? pa->nregs : 1) * sizeof **T->reg_edge);
        if (!T->reg_edge[a])
            goto oom;
        for (unsigned r = 0; r < pa->nregs; r++)
            T->reg_edge[a][r] = -1;
        for (unsigned k = 0; k < pa->nops; k++) {
            const struct weir__plan_op *op = &pa->ops[k];
            if (op->kind == WEIR__OP_READ)
                T->reg_edge[a][op->reg] = T->chan_edge[op->chan];
            else if (op->kind == WEIR__OP_CALL)
                for (unsigned o = 0; o < op->nout; o++)
                    T->reg_edge[a][op->out[o]] = edge_of(g, op->node, o);
        }
    }
    if (T->held) {
        int rc = holder_start(d);
        if (rc < 0) {
            char why[700];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            weir__tensor_dag_free(d);
            return weir__seterr(rc, "graph '%s': %s", p->graph, why);
        }
    }
    return 0;
oom:
    weir__tensor_dag_free(d);
    return weir__seterr(-ENOMEM, "graph '%s': out of memory", p->graph);
}

/* ---- actors: their own device, imported pools --------------------------- */

/* Unmap and close what act_edge_open made; add the device's counters to *acc. */
static void act_edge_free(struct tact_edge *t, weir__dev_counters *acc)
{
    if (!t->dev)
        return;
    const weir__device_ops *o = t->dev->ops;
    void *dv = t->dev->impl;
    for (unsigned b = 0; b < t->nbuf; b++) {
        if (t->mem && t->mem[b])
            o->mem_free(dv, t->mem[b]);
        if (t->ready && t->ready[b])
            o->ev_destroy(dv, t->ready[b]);
    }
    free(t->mem);
    free(t->ptr);
    free(t->ready);
    free(t->rel);
    weir__dev_counters c;
    t->dev->ops->counters(t->dev->impl, &c);
    ctr_sum(acc, &c);
    weir__device_close(t->dev);
    memset(t, 0, sizeof *t);
}

/* One buffer of the edge's own (max_bytes): an actor's local device edge,
 * or a reader on another rank than the writer's (the staged bytes go in). */
static int own_buffer(struct tact_edge *t, const struct tedge *e, const weir__device_ops *o,
                      void *dv)
{
    t->nbuf = 1;
    t->mem = calloc(1, sizeof *t->mem);
    t->ptr = calloc(1, sizeof *t->ptr);
    if (!t->mem || !t->ptr)
        return weir__seterr(-ENOMEM, "tensor edge '%s': out of memory", e->name);
    return o->mem_alloc(dv, e->spec.max_bytes, &t->mem[0], &t->ptr[0]);
}

static int act_edge_open(struct actor_rt *a, const struct tedge *e, struct tact_edge *t)
{
    const struct weir__plan *p = a->d->plan;
    int rc = weir__device_open(e->spec.device, e->spec.device_id, e->name, &t->dev);
    if (rc < 0)
        return rc;
    const weir__device_ops *o = t->dev->ops;
    void *dv = t->dev->impl;
    t->rd = -1;
    if (e->chan < 0) {
        t->local = 1;
        return own_buffer(t, e, o, dv);
    }
    const struct tpool *P = e->pool;
    const struct weir__plan_chan *pc = &p->chans[e->chan];
    if (!P) {
        /* A reader on another rank than the writer's: the staged bytes go
         * into a buffer of its own. */
        t->remote = 1;
        return own_buffer(t, e, o, dv);
    }
    /* This actor's index among the channel's actor readers on the writer's
     * rank (the driver and other ranks' readers have no release event). */
    for (unsigned k = 0, q = 0; k < pc->nreaders; k++) {
        if (pc->readers[k] == (int32_t)a->idx) {
            t->rd = (int)q;
            break;
        }
        if (pc->readers[k] != WEIR__PLAN_DRIVER &&
            weir__plan_party_rank(p, pc->readers[k]) == e->wrank)
            q++;
    }
    t->nbuf = P->nbuf;
    t->mem = calloc(P->nbuf, sizeof *t->mem);
    t->ptr = calloc(P->nbuf, sizeof *t->ptr);
    t->ready = calloc(P->nbuf, sizeof *t->ready);
    t->rel = calloc((size_t)P->nbuf * (P->nrd ? P->nrd : 1), sizeof *t->rel);
    if (!t->mem || !t->ptr || !t->ready || !t->rel)
        return weir__seterr(-ENOMEM, "tensor edge '%s': out of memory", e->name);
    /* The writer waits on every reader's release event; a reader records
     * only its own. */
    return pool_import(P, t->dev, t->rd, t->mem, t->ptr, t->ready, t->rel);
}

/*
 * A staged edge's copies between the device and the ring slot (the writer's
 * device-to-host, a remote reader's host-to-device) run from page-locked
 * memory at full speed: register the slots this actor's handle uses with
 * its device once, at start (unregistered at stop, before the ring is
 * unmapped). The slots of a staged edge do not grow (they are sized for
 * max_bytes), but if they did the new ones would only be slower. A device
 * that cannot register them (host_reg_fails) leaves the copies pageable.
 */
static void pin_slots(struct actor_rt *a, const struct tedge *e, struct tact_edge *t)
{
    if (!e->staged || e->chan < 0 || !t->dev)
        return;
    int reader; /* this actor's handle of the ring: its writer (-1) or a remote reader */
    if (e->writer == (int)a->idx)
        reader = -1;
    else if (t->remote)
        reader = a->rid[e->chan];
    else
        return; /* a reader on the writer's rank: it copies nothing */
    void *data;
    size_t bytes;
    if (weir__chan_slot_area(a->d->chans[e->chan], reader, &data, &bytes) < 0)
        return;
    if (t->dev->ops->host_register(t->dev->impl, data, bytes) == 0)
        t->pinned = data;
}

int weir__tensor_actor_start(struct actor_rt *a)
{
    struct weir__tensor_rt *T = a->d->tensor;
    const struct weir__plan *p = a->d->plan;
    if (!T)
        return 0;
    struct weir__tensor_actor *A = calloc(1, sizeof *A);
    if (!A || !(A->e = calloc(T->nedges, sizeof *A->e))) {
        free(A);
        return weir__seterr(-ENOMEM, "actor '%s': out of memory for its tensor edges",
                            a->pa->name);
    }
    A->nedges = T->nedges;
    a->tensor = A;
    for (unsigned i = 0; i < T->nedges; i++) {
        const struct tedge *e = &T->edges[i];
        if (!is_device(e))
            continue;
        int touches = e->writer == (int)a->idx;
        if (e->chan >= 0)
            for (unsigned k = 0; k < p->chans[e->chan].nreaders; k++)
                touches |= p->chans[e->chan].readers[k] == (int32_t)a->idx;
        if (!touches)
            continue;
        int rc = act_edge_open(a, e, &A->e[i]);
        if (rc == 0)
            pin_slots(a, e, &A->e[i]);
        if (rc < 0) {
            char why[600];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            weir__tensor_actor_stop(a);
            return weir__seterr(rc, "%s", why);
        }
    }
    return 0;
}

void weir__tensor_actor_stop(struct actor_rt *a)
{
    struct weir__tensor_actor *A = a->tensor;
    if (!A)
        return;
    for (unsigned i = 0; i < A->nedges; i++) {
        struct tact_edge *t = &A->e[i];
        if (!t->dev)
            continue;
        if (t->pinned)
            t->dev->ops->host_unregister(t->dev->impl, t->pinned);
        /* Imported release events: destroy (unmap) them too. */
        const struct tpool *P = a->d->tensor->edges[i].pool;
        for (unsigned b = 0; P && t->rel && b < t->nbuf; b++)
            for (unsigned q = 0; q < P->nrd; q++)
                if (t->rel[b * P->nrd + q])
                    t->dev->ops->ev_destroy(t->dev->impl, t->rel[b * P->nrd + q]);
        t->dev->ops->sync(t->dev->impl);
        act_edge_free(t, &A->ctr);
    }
    /* Published in memory shared with the driver (an actor process too). */
    ctr_sum(&a->d->tensor->ctr[a->idx], &A->ctr);
    free(A->e);
    free(A);
    a->tensor = NULL;
}

void weir__tensor_after_call(struct actor_rt *a, const struct weir__plan_op *op, uint64_t exec,
                             weir_call *c)
{
    struct weir__tensor_rt *T = a->d->tensor;
    struct weir__tensor_actor *A = a->tensor;
    if (!T || !A)
        return;
    int *re = T->reg_edge[a->idx];
    for (unsigned k = 0; k < op->nout; k++) {
        int ei = re[op->out[k]];
        if (ei < 0 || !A->e[ei].dev || !A->e[ei].written)
            continue;
        struct tact_edge *t = &A->e[ei];
        t->written = 0;
        if (!t->local)
            t->dev->ops->ev_record(t->dev->impl, t->ready[t->buf]);
        if (t->stage && !c->failed) {
            /* Other ranks read it: the host copy goes into the slot before
             * the message is committed. */
            int rc = t->dev->ops->copy(t->dev->impl, t->stage, t->ptr[t->buf], t->stage_bytes,
                                       WEIR__COPY_D2H);
            if (rc == 0)
                rc = t->dev->ops->sync(t->dev->impl);
            if (rc < 0) {
                snprintf(c->failmsg, sizeof c->failmsg,
                         "tensor edge '%s': staging %zu bytes for other ranks: %s",
                         T->edges[ei].name, t->stage_bytes, weir_errmsg());
                c->failed = 1;
            }
        }
        t->stage = NULL;
    }
    for (unsigned j = 0; j < op->nin; j++) {
        int ei = re[op->in[j]];
        if (ei < 0 || !A->e[ei].dev || A->e[ei].rd < 0)
            continue;
        struct tact_edge *t = &A->e[ei];
        unsigned b = (unsigned)(exec % t->nbuf);
        t->dev->ops->ev_record(t->dev->impl, t->rel[b * T->edges[ei].pool->nrd + (unsigned)t->rd]);
    }
}

/* ---- inside a method ---------------------------------------------------- */

/* The edge of register ri of the calling actor, or -1. */
static int reg_edge(const weir_call *c, uint32_t ri)
{
    /* c->w: the schedule that holds the registers (the actor, or the lead
     * of the worker it is fused on). */
    const struct weir__tensor_rt *T = c->w->d->tensor;
    return T ? T->reg_edge[c->w->idx][ri] : -1;
}

WEIR_API int weir_call_in_tensor(weir_call *c, unsigned i, DLTensor *t)
{
    const char *an = c->a->pa->name, *mn = c->a->pa->methods[c->op->method].name;
    if (!t)
        return weir__seterr(-EINVAL, "actor '%s' method '%s': NULL tensor", an, mn);
    if (i >= c->op->nin)
        return weir__seterr(-EINVAL, "actor '%s' method '%s': input %u out of range (%u inputs)",
                            an, mn, i, c->op->nin);
    uint32_t ri = c->op->in[i];
    int ei = reg_edge(c, ri);
    if (ei < 0)
        return weir__seterr(-EINVAL,
                            "actor '%s' method '%s': input %u is not a tensor edge (mark it with "
                            "weir_node_tensor)",
                            an, mn, i);
    const struct tedge *e = &c->a->d->tensor->edges[ei];
    const struct reg *r = &c->w->regs[ri];
    uint32_t b = 0;
    DLTensor v;
    int rc = weir__tensor_decode(r->data, r->len, e->name, &v, &b);
    if (rc < 0)
        return rc;
    if (v.device.device_type != e->spec.device)
        return weir__seterr(-EBADMSG,
                            "tensor edge '%s': the record says device type %d, the edge is "
                            "device type %d",
                            e->name, (int)v.device.device_type, (int)e->spec.device);
    if (is_device(e) && c->w->tensor->e[ei].remote) {
        /* From another rank: the staged copy into this reader's buffer. */
        struct tact_edge *ta = &c->w->tensor->e[ei];
        size_t span;
        if (!v.data)
            return weir__seterr(-EBADMSG,
                                "tensor edge '%s': a device record from another rank without its "
                                "staged data",
                                e->name);
        if ((rc = weir__tensor_span(&v, e->name, &span)) < 0)
            return rc;
        if (span > e->spec.max_bytes)
            return weir__seterr(-EBADMSG,
                                "tensor edge '%s': staged tensor of %zu bytes, the edge's buffers "
                                "hold %zu",
                                e->name, span, e->spec.max_bytes);
        if (ta->staged_in != c->exec + 1) {
            if ((rc = ta->dev->ops->copy(ta->dev->impl, ta->ptr[0], v.data, span,
                                         WEIR__COPY_H2D)) < 0 ||
                (rc = ta->dev->ops->sync(ta->dev->impl)) < 0)
                return rc;
            ta->staged_in = c->exec + 1;
        }
        v.data = ta->ptr[0];
    } else if (is_device(e)) {
        struct tact_edge *ta = &c->w->tensor->e[ei];
        unsigned want = ta->local || !ta->nbuf ? 0 : (unsigned)(c->exec % ta->nbuf);
        if (!ta->dev || b != want)
            return weir__seterr(-EBADMSG,
                                "tensor edge '%s': the record names buffer %u, execution %llu "
                                "uses buffer %u",
                                e->name, b, (unsigned long long)c->exec, want);
        /* The record is the writer's word only: its tensor must fit the
         * edge's buffers and name the edge's device. */
        size_t span;
        if ((rc = weir__tensor_span(&v, e->name, &span)) < 0)
            return rc;
        if (span > e->spec.max_bytes || v.device.device_id != e->spec.device_id)
            return weir__seterr(-EBADMSG,
                                "tensor edge '%s': the record describes %zu bytes on device %d; "
                                "the edge's buffers hold %zu bytes on device %d",
                                e->name, span, (int)v.device.device_id, e->spec.max_bytes,
                                (int)e->spec.device_id);
        if (!ta->local && (rc = ta->dev->ops->ev_wait(ta->dev->impl, ta->ready[b])) < 0)
            return rc;
        v.data = ta->ptr[b];
    } else if (!v.data) {
        return weir__seterr(-EBADMSG, "tensor edge '%s': a host tensor record without its data",
                            e->name);
    }
    *t = v;
    return 0;
}

WEIR_API void *weir_call_out_tensor(weir_call *c, unsigned i, const DLTensor *meta)
{
    struct actor_rt *a = c->w; /* registers and pools: the schedule running the call */
    const char *an = c->a->pa->name, *mn = c->a->pa->methods[c->op->method].name;
    int rc;
    if (i >= c->op->nout) {
        weir__seterr(-EINVAL, "actor '%s' method '%s': output %u out of range (%u outputs)", an,
                     mn, i, c->op->nout);
        goto fail;
    }
    uint32_t ri = c->op->out[i];
    int ei = reg_edge(c, ri);
    if (ei < 0) {
        weir__seterr(-EINVAL,
                     "actor '%s' method '%s': output %u is not a tensor edge (mark it with "
                     "weir_node_tensor)",
                     an, mn, i);
        goto fail;
    }
    const struct tedge *e = &a->d->tensor->edges[ei];
    size_t span;
    if (spec_check(e, meta, &span) < 0)
        goto fail;
    struct reg *r = &a->regs[ri];
    size_t total;
    void *data;
    if (!is_device(e)) {
        void *p;
        size_t cap;
        if (r->produced) { /* again: the same space, if the tensor still fits */
            p = (void *)r->data;
            cap = r->cap > r->len && a->reg_chan[ri] < 0 ? r->cap : r->len;
        } else {
            cap = sizeof(weir__tensor_rec) + WEIR_TENSOR_ALIGN + span;
            if (!(p = weir_call_out(c, i, cap)))
                goto fail;
        }
        if (weir__tensor_encode(p, cap, meta, 1, 0, e->name, &total, &data) < 0)
            goto fail;
        r->len = total;
        return data;
    }
    struct tact_edge *t = &a->tensor->e[ei];
    if (!t->dev || !t->nbuf) { /* never opened for this schedule: a plan this engine cannot run */
        weir__seterr(-EPROTO, "tensor edge '%s': actor '%s' has no buffers of it", e->name,
                     a->pa->name);
        goto fail;
    }
    unsigned b = t->local ? 0 : (unsigned)(c->exec % t->nbuf);
    if (!t->local && !r->produced) {
        /* The buffer's last readers are done with it (their streams). */
        unsigned nrd = e->pool->nrd;
        for (unsigned q = 0; q < nrd; q++)
            if ((rc = t->dev->ops->ev_wait(t->dev->impl, t->rel[b * nrd + q])) < 0)
                goto fail;
    }
    int mode = e->staged ? WEIR__TENSOR_STAGED : 0;
    size_t cap = e->staged ? sizeof(weir__tensor_rec) + WEIR_TENSOR_ALIGN + span
                           : sizeof(weir__tensor_rec);
    if (r->produced && cap > r->len)
        cap = r->len; /* again: the space reserved the first time */
    void *p = r->produced ? (void *)r->data : weir_call_out(c, i, cap);
    if (!p || weir__tensor_encode(p, cap, meta, mode, b, e->name, &total, &data) < 0)
        goto fail;
    r->len = total;
    t->written = 1;
    t->buf = b;
    t->stage = data;
    t->stage_bytes = e->staged ? total - (size_t)((char *)data - (char *)p) : 0;
    return t->ptr[b];
fail:
    if (!c->failed) {
        snprintf(c->failmsg, sizeof c->failmsg, "%s", weir_errmsg());
        c->failed = 1;
    }
    return NULL;
}

/* ---- driver: arguments and results -------------------------------------- */

WEIR_API weir_buf weir_tensor_arg(const DLTensor *t)
{
    return (weir_buf){t, sizeof *t};
}

static const struct tedge *arg_edge(const struct weir_dag *d, unsigned chan)
{
    const struct weir__tensor_rt *T = d->tensor;
    int ei = T ? T->chan_edge[chan] : -1;
    return ei < 0 ? NULL : &T->edges[ei];
}

int weir__tensor_arg_len(struct weir_dag *d, unsigned chan, const weir_buf *b, size_t *len)
{
    const struct tedge *e = arg_edge(d, chan);
    if (!e) {
        *len = b->len;
        return 0;
    }
    if (!b->data || b->len != sizeof(DLTensor))
        return weir__seterr(-EINVAL,
                            "tensor edge '%s': the argument is not a tensor (pass "
                            "weir_tensor_arg(&t))",
                            e->name);
    const DLTensor *t = b->data;
    size_t span;
    int rc = spec_check(e, t, &span);
    if (rc < 0)
        return rc;
    if (span && !t->data)
        return weir__seterr(-EINVAL, "tensor edge '%s': tensor of %zu bytes with NULL data",
                            e->name, span);
    if (is_device(e) && !e->staged)
        *len = sizeof(weir__tensor_rec);
    else
        *len = sizeof(weir__tensor_rec) + WEIR_TENSOR_ALIGN + span;
    return 0;
}

/*
 * A CPU tensor argument into its slot (64-byte aligned). Large ones with
 * non-temporal stores: the slot is read next by an actor, on another CPU,
 * not by this thread, and a cached store would first read every line of it
 * from memory (read-for-ownership): a third of the traffic of the copy.
 */
#define NT_MIN (1u << 20)
static void big_copy(void *dst, const void *src, size_t n)
{
#if defined(__x86_64__) && defined(__SSE2__)
    if (n >= NT_MIN && ((uintptr_t)dst & 63) == 0) {
        char *d = dst;
        const char *s = src;
        size_t body = n & ~(size_t)63;
        for (size_t i = 0; i < body; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
            __m128i e = _mm_loadu_si128((const __m128i *)(s + i + 48));
            _mm_stream_si128((__m128i *)(d + i), a);
            _mm_stream_si128((__m128i *)(d + i + 16), b);
            _mm_stream_si128((__m128i *)(d + i + 32), c);
            _mm_stream_si128((__m128i *)(d + i + 48), e);
        }
        _mm_sfence(); /* the stores are visible before the commit that publishes them */
        memcpy(d + body, s + body, n - body);
        return;
    }
#endif
    memcpy(dst, src, n);
}

/* A device argument into buffer exec % depth of the driver's pool (its slot
 * is reserved: every reader released the buffer's last message), and its
 * record (with the host copy when staged) into dst. */
static int arg_write_device(const struct tedge *e, const DLTensor *t, uint64_t exec, void *dst,
                            size_t *len)
{
    struct tpool *P = e->pool;
    int rc = P->dev ? 0 : pool_attach(e, P);
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        return weir__seterr(rc, "tensor edge '%s': execution %llu: %s", e->name,
                            (unsigned long long)exec, why);
    }
    const weir__device_ops *o = P->dev->ops;
    void *dv = P->dev->impl;
    unsigned bi = (unsigned)(exec % P->nbuf);
    size_t span, total;
    void *data;
    rc = weir__tensor_span(t, e->name, &span);
    for (unsigned q = 0; rc == 0 && q < P->nrd; q++)
        rc = o->ev_wait(dv, P->rel[bi * P->nrd + q]);
    if (rc == 0 && span)
        rc = o->copy(dv, P->ptr[bi], t->data, span, WEIR__COPY_D2D);
    if (rc == 0)
        rc = o->ev_record(dv, P->ready[bi]);
    if (rc == 0)
        rc = weir__tensor_encode(dst, *len, t, e->staged ? WEIR__TENSOR_STAGED : 0, bi, e->name,
                                 &total, &data);
    if (rc == 0 && e->staged && span) {
        rc = o->copy(dv, data, P->ptr[bi], span, WEIR__COPY_D2H);
        if (rc == 0)
            rc = o->sync(dv);
    }
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        return weir__seterr(rc, "tensor edge '%s': execution %llu: %s", e->name,
                            (unsigned long long)exec, why);
    }
    *len = total;
    return 1;
}

int weir__tensor_arg_write(struct weir_dag *d, unsigned chan, const weir_buf *b, void *dst,
                           size_t *len, uint64_t exec)
{
    const struct tedge *e = arg_edge(d, chan);
    if (!e)
        return 0;
    const DLTensor *t = b->data;
    if (is_device(e))
        return arg_write_device(e, t, exec, dst, len);
    size_t total;
    void *data;
    /* Cannot fail: arg_len checked t and reserved *len bytes. */
    if (weir__tensor_encode(dst, *len, t, 1, 0, e->name, &total, &data) < 0)
        return 0;
    size_t span = total - (size_t)((char *)data - (char *)dst);
    if (span)
        big_copy(data, t->data, span);
    *len = total;
    return 1;
}

WEIR_API int weir_result_tensor(const weir_result *r, unsigned i, DLTensor *t)
{
    weir__clearerr();
    if (!r || !t || i >= r->n)
        return weir__seterr(-EINVAL, "result: output %u out of range (%u outputs)", i,
                            r ? r->n : 0);
    char name[32];
    snprintf(name, sizeof name, "output %u", i);
    uint32_t b;
    DLTensor v;
    /* A view points into the slot, a copy sits at a 64-byte aligned address
     * (driver.c): either way the data is 64-byte aligned. */
    int rc = weir__tensor_decode(r->outs[i].data, r->outs[i].len, name, &v, &b);
    if (rc < 0)
        return rc;
    if (v.device.device_type != kDLCPU) {
        /* A device output: its host copy (staged by the producer). */
        if (!v.data)
            return weir__seterr(-EBADMSG, "result: output %u: a device tensor without its host "
                                          "copy",
                                i);
        v.device.device_type = kDLCPU;
        v.device.device_id = 0;
    }
    *t = v;
    return 0;
}
