/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_run.c - the party runner (threads or forked processes),
 * CPU pinning, the shared-memory barrier, statistics helpers.
 *
 * Design notes
 *
 * Party 0 runs on the calling thread unless the run asks for all
 * children; the others are threads or children. In process mode a
 * watchdog thread kills the children at the deadline: a parent blocked
 * in write() on a pipe whose reader is stuck is then released by EPIPE,
 * so no case can hang the program. Threads cannot be killed: thread-mode
 * parties bound every wait themselves and check sh->abort; a thread that
 * still does not finish is a fatal error (we cannot free what it uses).
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *bench_shm_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void bench_shm_free(void *p, size_t bytes)
{
    if (p) munmap(p, bytes);
}

struct bench_shared *bench_shared_new(void)
{
    return bench_shm_alloc(sizeof(struct bench_shared));
}

void bench_shared_free(struct bench_shared *sh)
{
    bench_shm_free(sh, sizeof(*sh));
}

int bench_pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    if (cpu < 0) {
        for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
            CPU_SET((int)i, &set);
    } else {
        CPU_SET(cpu % (int)ncpu, &set);
    }
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    return rc ? -rc : 0;
}

int bench_fail(struct bench_shared *sh, int idx, int err, const char *fmt, ...)
{
    if (err >= 0) err = -EIO;
    struct bench_res *r = &sh->res[idx];
    if (r->err == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
        va_end(ap);
        r->t_fail = bench_now_ns();
        r->err = err;
    }
    atomic_store(&sh->abort, 1);
    return err;
}

int bench_barrier(struct bench_shared *sh, int n, int *gen)
{
    int target = n * ++*gen;
    atomic_fetch_add(&sh->arrived, 1);
    uint64_t deadline = bench_now_ns() + (uint64_t)(bench_opts.timeout_ms + 5000) * 1000000u;
    for (unsigned spins = 1; atomic_load(&sh->arrived) < target; spins++) {
        if (atomic_load_explicit(&sh->abort, memory_order_relaxed)) return -ECANCELED;
        if ((spins & 63) == 0) {
            if (bench_now_ns() > deadline) return -ETIMEDOUT;
            sched_yield(); /* more parties than CPUs: let the late ones run */
        } else {
            bench_cpu_relax();
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ runner */

struct party_start {
    struct bench_shared *sh;
    const struct bench_run *run;
    int idx;
};

static void run_one(struct bench_shared *sh, const struct bench_run *run, int idx)
{
    bench_pin_self(run->cpus[idx]); /* best effort: a machine with one CPU still runs */
    int rc = run->fn(sh, idx, run->arg);
    if (rc < 0 && sh->res[idx].err == 0)
        bench_fail(sh, idx, rc, "party %d failed: %s", idx, strerror(-rc));
}

static void *thread_main(void *p)
{
    struct party_start *ps = p;
    run_one(ps->sh, ps->run, ps->idx);
    return NULL;
}

struct watchdog {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct timespec deadline; /* CLOCK_MONOTONIC */
    pid_t *pids;
    int npids;
    int fired;
};

static void *watchdog_main(void *p)
{
    struct watchdog *w = p;
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        int rc = pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline);
        if (rc == ETIMEDOUT && !w->done) {
            w->fired = 1;
            for (int i = 0; i < w->npids; i++)
                if (w->pids[i] > 0) kill(w->pids[i], SIGKILL);
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int first_error(const struct bench_shared *sh, int n)
{
    for (int i = 0; i < n; i++)
        if (sh->res[i].err) return sh->res[i].err;
    return 0;
}

int bench_run_parties(struct bench_shared *sh, const struct bench_run *run)
{
    int n = run->nparties;
    if (n < 1 || n > BENCH_MAX_PARTIES) return -EINVAL;
    int deadline_ms = run->deadline_ms;
    if (deadline_ms <= 0)
        deadline_ms = (int)(bench_opts.budget_ns / 1000000u) +
                      (int)(bench_opts.pp_budget_ns / 1000000u) + 3 * bench_opts.timeout_ms + 5000;
    int first = (run->mode == BENCH_PROCS && run->all_children) ? 0 : 1;

    fflush(stdout);
    fflush(stderr);
    if (run->mode == BENCH_THREADS) {
        pthread_t th[BENCH_MAX_PARTIES];
        struct party_start ps[BENCH_MAX_PARTIES];
        int started = 0;
        for (int i = 1; i < n; i++) {
            ps[i] = (struct party_start){sh, run, i};
            int rc = pthread_create(&th[i], NULL, thread_main, &ps[i]);
            if (rc) {
                bench_fail(sh, i, -rc, "pthread_create: %s", strerror(rc));
                break;
            }
            started = i;
        }
        cpu_set_t saved;
        int have_saved = sched_getaffinity(0, sizeof(saved), &saved) == 0;
        if (sh->res[0].err == 0 && first_error(sh, n) == 0) run_one(sh, run, 0);
        if (have_saved) sched_setaffinity(0, sizeof(saved), &saved);
        for (int i = 1; i <= started; i++) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += deadline_ms / 1000 + 1;
            if (pthread_timedjoin_np(th[i], NULL, &ts) != 0) {
                atomic_store(&sh->abort, 1);
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += bench_opts.timeout_ms / 1000 + 2;
                if (pthread_timedjoin_np(th[i], NULL, &ts) != 0) {
                    fprintf(stderr,
                            "weir-bench: fatal: party %d (thread) did not finish; giving up\n", i);
                    fflush(stdout);
                    _exit(3);
                }
                bench_fail(sh, i, -ETIMEDOUT, "party %d did not finish in %d ms", i, deadline_ms);
            }
        }
        return first_error(sh, n);
    }

    /* Processes. */
    pid_t pids[BENCH_MAX_PARTIES] = {0};
    for (int i = first; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            bench_fail(sh, i, -errno, "fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            run_one(sh, run, i);
            if (run->clean_exit) exit(sh->res[i].err ? 1 : 0);
            _exit(sh->res[i].err ? 1 : 0);
        }
        pids[i] = pid;
    }
    struct watchdog wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .pids = pids, .npids = n};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd.cv, &ca);
    pthread_condattr_destroy(&ca);
    clock_gettime(CLOCK_MONOTONIC, &wd.deadline);
    wd.deadline.tv_sec += deadline_ms / 1000;
    wd.deadline.tv_nsec += (long)(deadline_ms % 1000) * 1000000L;
    if (wd.deadline.tv_nsec >= 1000000000L) {
        wd.deadline.tv_sec++;
        wd.deadline.tv_nsec -= 1000000000L;
    }
    pthread_t wdt;
    int have_wd = pthread_create(&wdt, NULL, watchdog_main, &wd) == 0;

    if (first == 1) {
        cpu_set_t saved;
        int have_saved = sched_getaffinity(0, sizeof(saved), &saved) == 0;
        if (first_error(sh, n) == 0) run_one(sh, run, 0);
        if (have_saved) sched_setaffinity(0, sizeof(saved), &saved);
    }
    for (int i = first; i < n; i++) {
        if (pids[i] <= 0) continue;
        int status = 0;
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(status) && sh->res[i].err == 0)
            bench_fail(sh, i, WTERMSIG(status) == SIGKILL ? -ETIMEDOUT : -ECHILD,
                       "party %d (pid %d) killed by signal %d%s", i, (int)pids[i], WTERMSIG(status),
                       WTERMSIG(status) == SIGKILL ? " (deadline)" : "");
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && sh->res[i].err == 0)
            bench_fail(sh, i, -ECHILD, "party %d exited with status %d", i, WEXITSTATUS(status));
        pids[i] = 0;
    }
    if (have_wd) {
        pthread_mutex_lock(&wd.mu);
        wd.done = 1;
        pthread_cond_signal(&wd.cv);
        pthread_mutex_unlock(&wd.mu);
        pthread_join(wdt, NULL);
    }
    pthread_cond_destroy(&wd.cv);
    if (wd.fired && first_error(sh, n) == 0)
        bench_fail(sh, 0, -ETIMEDOUT, "deadline of %d ms passed", deadline_ms);
    return first_error(sh, n);
}

/* ---------------------------------------------------------- data helpers */

typedef uint64_t bench_v2u64 __attribute__((vector_size(16)));

uint64_t bench_sum64(const void *p, size_t len)
{
    const unsigned char *b = p;
    bench_v2u64 s0 = {0, 0}, s1 = {0, 0}, s2 = {0, 0}, s3 = {0, 0};
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        bench_v2u64 a, c, d, e;
        __builtin_memcpy(&a, b + i, 16);
        __builtin_memcpy(&c, b + i + 16, 16);
        __builtin_memcpy(&d, b + i + 32, 16);
        __builtin_memcpy(&e, b + i + 48, 16);
        s0 += a;
        s1 += c;
        s2 += d;
        s3 += e;
    }
    s0 += s1 + s2 + s3;
    uint64_t s = s0[0] + s0[1];
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, b + i, 8);
        s += w;
    }
    return s;
}

uint64_t bench_touch_lines(const void *p, size_t len)
{
    const volatile unsigned char *b = p;
    uint64_t s = 0;
    for (size_t i = 0; i < len; i += 64)
        s += b[i];
    return s;
}

const uint8_t *bench_src_buf(size_t bytes)
{
    /* One growing pattern buffer; callers never free it. */
    static uint8_t *buf;
    static size_t have;
    if (bytes > have) {
        uint8_t *nb = NULL;
        if (posix_memalign((void **)&nb, 64, bytes)) return NULL;
        for (size_t i = 0; i < bytes; i++)
            nb[i] = (uint8_t)(i * 131u + 7u);
        free(buf);
        buf = nb;
        have = bytes;
    }
    return buf;
}

unsigned bench_depth_for(size_t msg_bytes)
{
    if (bench_opts.depth) return bench_opts.depth;
    /* Deep rings for small messages: when parties outnumber cores every
     * resume costs a context switch, and the ring depth is how many
     * messages one switch can move (1->3 at 64 B: 0.26x of 1->1 with 256
     * slots, 0.69x with 4096). */
    if (msg_bytes <= 64) return 4096;
    if (msg_bytes <= 1024) return 1024;
    if (msg_bytes <= 65536) return 16;
    return 4;
}

uint64_t bench_warmup_for(size_t msg_bytes, unsigned depth)
{
    (void)msg_bytes;
    return 2u * depth;
}

/* ------------------------------------------------------------- statistics */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void bench_sort_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
}

double bench_percentile_sorted(const uint64_t *sorted, size_t n, double q)
{
    if (n == 0) return -1;
    size_t i = (size_t)(q * (double)n);
    if (i >= n) i = n - 1;
    return (double)sorted[i];
}

void bench_row_latency(struct bench_row *r, uint64_t *rt, size_t n, uint64_t span_ns)
{
    if (n == 0) return;
    bench_sort_u64(rt, n);
    r->p50_ns = bench_percentile_sorted(rt, n, 0.50) / 2.0;
    r->p99_ns = bench_percentile_sorted(rt, n, 0.99) / 2.0;
    if (span_ns) r->msgs_per_s = (double)n * 1e9 / (double)span_ns;
}

void bench_row_throughput(struct bench_row *r, uint64_t msgs, uint64_t span_ns)
{
    if (span_ns == 0) return;
    r->msgs_per_s = (double)msgs * 1e9 / (double)span_ns;
    r->mb_per_s = r->msgs_per_s * (double)r->msg_bytes / 1e6;
}

void bench_row_fail_from(struct bench_row *r, const struct bench_shared *sh, int n, int rc)
{
    r->failed = 1;
    r->msgs_per_s = r->mb_per_s = r->p50_ns = r->p99_ns = -1;
    /* The cause is the earliest failure; the others are usually its echo
     * (a peer that saw the channel closed, or was told to abort). */
    int best = -1;
    for (int i = 0; sh && i < n; i++) {
        const struct bench_res *q = &sh->res[i];
        if (!q->err || !q->errmsg[0]) continue;
        if (best < 0 || (q->err != -ECANCELED && sh->res[best].err == -ECANCELED) ||
            ((q->err == -ECANCELED) == (sh->res[best].err == -ECANCELED) &&
             q->t_fail < sh->res[best].t_fail))
            best = i;
    }
    if (best >= 0)
        snprintf(r->error, sizeof(r->error), "%s", sh->res[best].errmsg);
    else
        snprintf(r->error, sizeof(r->error), "failed: %s", strerror(rc < 0 ? -rc : EIO));
}

/* ------------------------------------------------------- CPU parallelism */

struct burn_arg {
    int cpu;
    uint64_t ns;
    uint64_t work;
};

static void *burn_main(void *p)
{
    struct burn_arg *b = p;
    bench_pin_self(b->cpu);
    volatile uint64_t n = 0;
    uint64_t t0 = bench_now_ns();
    while (bench_now_ns() - t0 < b->ns)
        for (int i = 0; i < 1000; i++)
            n++;
    b->work = n;
    return NULL;
}

double bench_parallelism(void)
{
    /* One spinning thread, then two at once on CPUs 0 and 1: on a machine
     * whose 2 CPUs really run at the same time the pair does twice the work. */
    struct burn_arg one = {0, 10000000u, 0}, one2 = {1, 10000000u, 0};
    struct burn_arg two[2] = {{0, 20000000u, 0}, {1, 20000000u, 0}};
    pthread_t t[2];
    cpu_set_t saved;
    int have_saved = sched_getaffinity(0, sizeof(saved), &saved) == 0;
    burn_main(&one);
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, burn_main, &two[i])) return -1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    burn_main(&one2);
    if (have_saved) sched_setaffinity(0, sizeof(saved), &saved);
    /* The better single-thread rate is the reference (a slow one means the
     * machine was busy, not that two threads scale better than 2x). */
    uint64_t single = one.work > one2.work ? one.work : one2.work;
    if (!single) return -1;
    return (double)(two[0].work + two[1].work) / (double)(2 * single);
}
