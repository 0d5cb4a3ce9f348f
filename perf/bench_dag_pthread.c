/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_dag_pthread.c - the baseline of `weir-bench dag`: what users
 * write today, one thread per actor and bounded mutex/condvar queues
 * (capacity = max_inflight) of buffers preallocated per producer; fan-out
 * shares one refcounted buffer between the consumers' queues. Runs the same
 * shapes, stage functions, checks and measurement windows as weir
 * (perf/bench_dag.h). Queue waits are timed and stage threads joined with a
 * deadline, so nothing hangs (past it the pipeline is leaked and the case
 * fails).
 */
#include "bench_dag.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pitem {
    struct ppool *pool; /* NULL: malloc'd (pool was empty) */
    uint64_t seq;
    atomic_int refs;
    size_t len;
    _Alignas(64) unsigned char data[];
};

struct ppool {
    pthread_mutex_t mu;
    struct pitem **free;
    unsigned nfree, n;
    struct pitem **all;
};

struct pq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct pitem **ring;
    unsigned cap, head, count;
    int closed;
};

struct pipe;

struct pstage {
    struct pipe *pl;
    int idx, kind, nin, nout;
    struct pq *in[2];
    struct pq *out[BENCH_DAG_MAX_ACTORS + BENCH_DAG_MAX_OUTS];
    struct ppool pool;
    pthread_t th;
    int started;
};

struct pipe {
    const struct bench_dag_shape *s;
    size_t n;
    unsigned cap;
    struct pq qs[BENCH_DAG_MAX_QUEUES];
    int nq;
    struct pq *feed[BENCH_DAG_MAX_ACTORS]; /* queues the driver writes (graph input) */
    int nfeed;
    struct pq *res[BENCH_DAG_MAX_OUTS];    /* queues the driver reads (graph outputs) */
    struct ppool pool;                /* the driver's input buffers */
    struct pstage st[BENCH_DAG_MAX_ACTORS];
    atomic_int abort;
    pthread_mutex_t err_mu;
    char err[BENCH_ERR_LEN];
};

static int pool_init(struct ppool *p, unsigned n, size_t bytes)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    p->free = calloc(n, sizeof(*p->free));
    p->all = calloc(n, sizeof(*p->all));
    if (!p->free || !p->all) return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct pitem *it = NULL;
        if (posix_memalign((void **)&it, 64, sizeof(*it) + bytes)) return -ENOMEM;
        memset(it->data, 0, bytes);
        it->pool = p;
        p->all[p->n++] = it;
        p->free[p->nfree++] = it;
    }
    return 0;
}

static void pool_destroy(struct ppool *p)
{
    for (unsigned i = 0; p->all && i < p->n; i++)
        free(p->all[i]);
    free(p->all);
    free(p->free);
    pthread_mutex_destroy(&p->mu);
}

static struct pitem *pool_get(struct ppool *p, size_t bytes)
{
    pthread_mutex_lock(&p->mu);
    struct pitem *it = p->nfree ? p->free[--p->nfree] : NULL;
    pthread_mutex_unlock(&p->mu);
    if (!it && !posix_memalign((void **)&it, 64, sizeof(*it) + bytes)) it->pool = NULL;
    return it;
}

static void item_release(struct pitem *it)
{
    if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1) return;
    struct ppool *p = it->pool;
    if (!p) {
        free(it);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->free[p->nfree++] = it;
    pthread_mutex_unlock(&p->mu);
}

static int pq_init(struct pq *q, unsigned cap)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    q->cap = cap;
    q->ring = calloc(cap, sizeof(*q->ring));
    return q->ring ? 0 : -ENOMEM;
}

static void pq_destroy(struct pq *q)
{
    while (q->count) {
        item_release(q->ring[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->ring);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->mu);
}

static void abs_after_ms(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int pq_push(struct pq *q, struct pitem *it, int tmo_ms)
{
    struct timespec ts;
    abs_after_ms(&ts, tmo_ms);
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap && !q->closed)
        if (pthread_cond_timedwait(&q->not_full, &q->mu, &ts) == ETIMEDOUT &&
            q->count == q->cap && !q->closed) {
            pthread_mutex_unlock(&q->mu);
            return -ETIMEDOUT;
        }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return -EPIPE;
    }
    q->ring[(q->head + q->count) % q->cap] = it;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* 0, -ETIMEDOUT, or -EPIPE (closed and empty). */
static int pq_pop(struct pq *q, struct pitem **it, int tmo_ms)
{
    struct timespec ts;
    abs_after_ms(&ts, tmo_ms);
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->closed)
        if (pthread_cond_timedwait(&q->not_empty, &q->mu, &ts) == ETIMEDOUT && q->count == 0 &&
            !q->closed) {
            pthread_mutex_unlock(&q->mu);
            return -ETIMEDOUT;
        }
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return -EPIPE;
    }
    *it = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

static void pq_close(struct pq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

static void pipe_fail(struct pipe *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pipe_fail(struct pipe *pl, const char *fmt, ...)
{
    pthread_mutex_lock(&pl->err_mu);
    if (!pl->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pl->err, sizeof(pl->err), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&pl->err_mu);
    atomic_store(&pl->abort, 1);
    for (int i = 0; i < pl->nq; i++)
        pq_close(&pl->qs[i]);
}

static void *pstage_main(void *p)
{
    struct pstage *st = p;
    struct pipe *pl = st->pl;
    const size_t n = pl->n;
    const int tmo = bench_opts.timeout_ms;
    char tname[16];
    snprintf(tname, sizeof(tname), "pipe:%c", 'a' + st->idx);
    pthread_setname_np(pthread_self(), tname);
    if (bench_dag_actor_cpu(st->idx) >= 0) bench_pin_self(bench_dag_actor_cpu(st->idx));
    for (;;) {
        struct pitem *x[2] = {NULL, NULL};
        int rc = 0, got = 0;
        for (; got < st->nin; got++) {
            /* An idle stage waits for the driver as long as it takes (the
             * driver's own waits are bounded and it closes every queue). */
            while ((rc = pq_pop(st->in[got], &x[got], tmo)) == -ETIMEDOUT &&
                   !atomic_load(&pl->abort))
                ;
            if (rc < 0) break;
        }
        if (rc < 0) {
            for (int j = 0; j < got; j++)
                item_release(x[j]);
            break; /* -EPIPE: teardown (or abort); -ETIMEDOUT only with abort set */
        }
        struct pitem *y = pool_get(&st->pool, n);
        if (!y) {
            pipe_fail(pl, "stage %c: out of memory", 'a' + st->idx);
            for (int j = 0; j < got; j++)
                item_release(x[j]);
            break;
        }
        y->seq = x[0]->seq;
        y->len = n;
        atomic_store_explicit(&y->refs, st->nout, memory_order_relaxed);
        int bad = x[0]->len != n;
        if (!bad && st->kind == BENCH_DAG_INC)
            bench_dag_work_inc(y->data, x[0]->data, n);
        else if (!bad)
            bad = x[1]->seq != x[0]->seq || x[1]->len != n ||
                  bench_dag_work_join(y->data, x[0]->data, x[1]->data, n);
        uint64_t seq = x[0]->seq;
        for (int j = 0; j < got; j++)
            item_release(x[j]);
        if (bad) {
            pipe_fail(pl, "stage %c: inputs of execution %llu are wrong", 'a' + st->idx,
                      (unsigned long long)seq);
            for (int k = 0; k < st->nout; k++)
                item_release(y);
            break;
        }
        int k = 0;
        for (; k < st->nout; k++)
            if ((rc = pq_push(st->out[k], y, tmo)) < 0) break;
        if (k < st->nout) {
            for (int j = k; j < st->nout; j++)
                item_release(y);
            if (rc != -EPIPE)
                pipe_fail(pl, "stage %c: push of execution %llu: %s", 'a' + st->idx,
                          (unsigned long long)seq, strerror(-rc));
            break;
        }
    }
    for (int k = 0; k < st->nout; k++)
        pq_close(st->out[k]);
    for (int j = 0; j < st->nin; j++)
        pq_close(st->in[j]);
    return NULL;
}

/* Returns 0, or -1 with the pipeline leaked (a thread did not finish). */
static int pipe_stop(struct pipe *pl, char *why, size_t wl)
{
    for (int i = 0; i < pl->nq; i++)
        pq_close(&pl->qs[i]);
    int stuck = 0;
    for (int i = 0; i < pl->s->nactors; i++) {
        if (!pl->st[i].started) continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += bench_opts.timeout_ms / 1000 + 2;
        if (pthread_timedjoin_np(pl->st[i].th, NULL, &ts) != 0) {
            pthread_detach(pl->st[i].th);
            stuck++;
        }
    }
    if (stuck) {
        snprintf(why, wl, "%d pipeline thread(s) did not finish; pipeline leaked", stuck);
        return -1; /* leak: a running thread may still touch it */
    }
    for (int i = 0; i < pl->nq; i++)
        pq_destroy(&pl->qs[i]);
    for (int i = 0; i < pl->s->nactors; i++)
        pool_destroy(&pl->st[i].pool);
    pool_destroy(&pl->pool);
    pthread_mutex_destroy(&pl->err_mu);
    free(pl);
    return 0;
}

static struct pipe *pipe_start(const struct bench_dag_shape *s, size_t n, unsigned cap, char *why,
                               size_t wl)
{
    struct pipe *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        snprintf(why, wl, "out of memory");
        return NULL;
    }
    pl->s = s;
    pl->n = n;
    pl->cap = cap;
    pthread_mutex_init(&pl->err_mu, NULL);
    int rc = pool_init(&pl->pool, cap + 2, n);
    for (int i = 0; i < s->nactors; i++) {
        struct pstage *st = &pl->st[i];
        st->pl = pl;
        st->idx = i;
        st->kind = s->a[i].kind;
        st->nin = s->a[i].nin;
        if (pool_init(&st->pool, cap + 2, n) < 0) rc = -ENOMEM;
    }
    /* One queue per edge: actor inputs, then graph outputs. */
    for (int i = 0; i < s->nactors; i++)
        for (int j = 0; j < s->a[i].nin; j++) {
            struct pq *q = &pl->qs[pl->nq++];
            if (pq_init(q, cap) < 0) rc = -ENOMEM;
            pl->st[i].in[j] = q;
            int src = s->a[i].in[j];
            if (src < 0)
                pl->feed[pl->nfeed++] = q;
            else
                pl->st[src].out[pl->st[src].nout++] = q;
        }
    for (int k = 0; k < s->nouts; k++) {
        struct pq *q = &pl->qs[pl->nq++];
        if (pq_init(q, cap) < 0) rc = -ENOMEM;
        pl->res[k] = q;
        pl->st[s->outs[k]].out[pl->st[s->outs[k]].nout++] = q;
    }
    if (rc < 0) {
        snprintf(why, wl, "out of memory");
        pipe_stop(pl, why, wl);
        return NULL;
    }
    for (int i = 0; i < s->nactors; i++) {
        int e = pthread_create(&pl->st[i].th, NULL, pstage_main, &pl->st[i]);
        if (e) {
            snprintf(why, wl, "pthread_create: %s", strerror(e));
            char w2[BENCH_ERR_LEN];
            pipe_stop(pl, w2, sizeof(w2));
            return NULL;
        }
        pl->st[i].started = 1;
    }
    return pl;
}

static void pipe_why(struct pipe *pl, const char *what, uint64_t seq, int rc, char *why,
                     size_t wl)
{
    pthread_mutex_lock(&pl->err_mu);
    if (pl->err[0])
        snprintf(why, wl, "%s %llu: %.200s", what, (unsigned long long)seq, pl->err);
    else if (rc == -ETIMEDOUT)
        snprintf(why, wl, "%s %llu: timed out after %d ms", what, (unsigned long long)seq,
                 bench_opts.timeout_ms);
    else
        snprintf(why, wl, "%s %llu: %s", what, (unsigned long long)seq, strerror(-rc));
    pthread_mutex_unlock(&pl->err_mu);
}

static int pipe_submit(struct pipe *pl, const uint8_t *arg, uint64_t seq, char *why, size_t wl)
{
    struct pitem *it = pool_get(&pl->pool, pl->n);
    if (!it) {
        snprintf(why, wl, "submit %llu: out of memory", (unsigned long long)seq);
        return -ENOMEM;
    }
    memcpy(it->data, arg, pl->n);
    it->seq = seq;
    it->len = pl->n;
    atomic_store_explicit(&it->refs, pl->nfeed, memory_order_relaxed);
    for (int k = 0; k < pl->nfeed; k++) {
        int rc = pq_push(pl->feed[k], it, bench_opts.timeout_ms);
        if (rc < 0) {
            for (int j = k; j < pl->nfeed; j++)
                item_release(it);
            pipe_why(pl, "submit", seq, rc, why, wl);
            return rc;
        }
    }
    return 0;
}

/* Pop the outputs of the next execution into out[]. */
static int pipe_collect(struct pipe *pl, struct pitem **out, uint64_t seq, char *why, size_t wl)
{
    for (int k = 0; k < pl->s->nouts; k++) {
        int rc = pq_pop(pl->res[k], &out[k], bench_opts.timeout_ms);
        if (rc < 0) {
            for (int j = 0; j < k; j++)
                item_release(out[j]);
            pipe_why(pl, "collect", seq, rc, why, wl);
            return rc;
        }
    }
    return 0;
}

static int pipe_check_release(struct pipe *pl, struct pitem **out, uint64_t seq, char *why,
                              size_t wl)
{
    int rc = 0;
    for (int k = 0; k < pl->s->nouts; k++) {
        if (!rc && out[k]->seq != seq) {
            snprintf(why, wl, "output %d: item of execution %llu, want %llu", k,
                     (unsigned long long)out[k]->seq, (unsigned long long)seq);
            rc = -1;
        }
        if (!rc) rc = bench_dag_check(pl->s, k, out[k]->data, out[k]->len, pl->n, seq, why, wl);
        item_release(out[k]);
    }
    return rc;
}


/* The pipeline as the measurement windows drive it. */
struct pipe_run {
    struct pipe *pl;
    const uint8_t *arg;
    struct pitem *out[BENCH_DAG_MAX_OUTS];
};

static int pr_submit(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct pipe_run *p = ctx;
    return pipe_submit(p->pl, p->arg, seq, why, wl);
}

static int pr_collect_only(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct pipe_run *p = ctx;
    return pipe_collect(p->pl, p->out, seq, why, wl);
}

static int pr_exec(void *ctx, uint64_t seq, char *why, size_t wl)
{
    int rc = pr_submit(ctx, seq, why, wl);
    return rc < 0 ? rc : pr_collect_only(ctx, seq, why, wl);
}

static int pr_check(void *ctx, uint64_t seq, char *why, size_t wl)
{
    struct pipe_run *p = ctx;
    return pipe_check_release(p->pl, p->out, seq, why, wl);
}

static int pr_collect(void *ctx, uint64_t seq, char *why, size_t wl)
{
    int rc = pr_collect_only(ctx, seq, why, wl);
    return rc < 0 ? rc : pr_check(ctx, seq, why, wl);
}

void bench_dag_run_pthread(const struct bench_dag_shape *s, size_t n)
{
    struct bench_row lat, tput;
    unsigned cap = bench_dag_inflight();
    bench_dag_init_rows(&lat, &tput, s, "thr", "pthread", n, cap);
    int want_lat = bench_begin(&lat), want_tput = bench_begin(&tput);
    if (!want_lat && !want_tput) return;
    snprintf(lat.notes, sizeof(lat.notes), "%d thr + driver, mutex/condvar queues", s->nactors);
    snprintf(tput.notes, sizeof(tput.notes), "%d thr + driver, mutex/condvar queues; %u in flight",
             s->nactors, cap);
    char why[BENCH_ERR_LEN] = "";
    cpu_set_t saved;
    int have_saved = bench_dag_driver_pin(&saved);
    uint8_t *arg = bench_dag_arg_buf(n);
    struct pipe *pl = arg ? pipe_start(s, n, cap, why, sizeof(why)) : NULL;
    if (!arg) snprintf(why, sizeof(why), "out of memory");
    if (!pl) {
        bench_dag_row_failf(&lat, "%s", why);
        bench_dag_row_failf(&tput, "%s", why);
    } else {
        struct pipe_run pr = {.pl = pl, .arg = arg};
        struct bench_dag_ops o = {.ctx = &pr, .arg = arg, .n = n,
                                  .exec = pr_exec, .check = pr_check,
                                  .submit = pr_submit, .collect = pr_collect,
                                  .window = cap, .clock_every = 8};
        uint64_t next = 0;
        if (want_lat) bench_dag_lat(&o, &next, &lat);
        if (want_tput && !lat.failed) bench_dag_tput(&o, &next, &tput);
        if (lat.failed) bench_dag_row_failf(&tput, "not run: the latency case failed");
        if (pipe_stop(pl, why, sizeof(why)) < 0) {
            bench_dag_row_failf(&lat, "%s", why);
            bench_dag_row_failf(&tput, "%s", why);
        }
    }
    bench_dag_driver_unpin(have_saved, &saved);
    if (want_lat) bench_emit(&lat);
    if (want_tput) bench_emit(&tput);
    free(arg);
}
