/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_baselines.c - what weir is measured against in the same run:
 * the cache-line ping-pong floor, single-core memcpy, pipes, unix
 * sockets and ZeroMQ PAIR sockets (inproc and ipc).
 *
 * Design notes
 *
 * The pipe / socket / ZeroMQ cases move the same messages as the weir
 * cases (the sequence number stamped in the first and last 8 bytes and
 * checked on receipt), with the same warm-up and budgets, so rows compare.
 * They copy in and out by nature (".copy"). Pipes and unix sockets run
 * between processes (their natural use; the runner's watchdog kills a
 * stuck child, which releases a parent blocked in write() with EPIPE);
 * ZeroMQ inproc runs between threads, ipc between processes, each process
 * with its own context created after fork.
 *
 * The ideal ring is the ceiling a channel can approach on this machine:
 * one writer, one reader, fixed-size slots with no header, the write index
 * published once per IDEAL_BATCH messages (and whenever the ring is full),
 * the read index likewise; each side reloads the other's index only when
 * its cached copy says it must. It does the same work per message as
 * weir's tput.*.read rows (memcpy in, stamp; check the stamp, sum every
 * word), so the ratio of the two is the channel's own overhead.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef WEIR_BENCH_HAVE_ZMQ
#include <zmq.h>
#endif

#define STOP_SEQ UINT64_MAX

/* ----------------------------------------------------- cache-line floor */

struct floor_arg {
    _Alignas(64) atomic_uint_fast64_t a; /* ping (and pong with one line) */
    _Alignas(64) atomic_uint_fast64_t b; /* pong with two lines */
    _Alignas(64) int two;
    uint64_t warm;
    uint64_t *samples;
};

static int floor_spin_check(struct bench_shared *sh, unsigned *spins, uint64_t hard)
{
    if ((++*spins & 0xffff) == 0) {
        if (atomic_load_explicit(&sh->abort, memory_order_relaxed)) return -ECANCELED;
        if (bench_now_ns() > hard) return -ETIMEDOUT;
    }
    bench_cpu_relax();
    return 0;
}

static int floor_party(struct bench_shared *sh, int idx, void *arg)
{
    struct floor_arg *f = arg;
    atomic_uint_fast64_t *back = f->two ? &f->b : &f->a;
    int gen = 0, rc = bench_barrier(sh, 2, &gen);
    if (rc < 0) return bench_fail(sh, idx, rc, "floor: barrier: %s", strerror(-rc));
    uint64_t hard = bench_now_ns() + bench_opts.pp_budget_ns + 1000000ull * bench_opts.timeout_ms;
    unsigned spins = 0;
    if (idx == 0) {
        struct bench_pp pp = bench_pp_start(f->warm, f->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            atomic_store_explicit(&f->a, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(back, memory_order_acquire) != 2 * i + 2)
                if ((rc = floor_spin_check(sh, &spins, hard)) < 0) {
                    atomic_store(&f->a, STOP_SEQ);
                    return bench_fail(sh, idx, rc, "floor: no answer to %llu",
                                      (unsigned long long)i);
                }
            if (bench_pp_tick(&pp, i)) break;
        }
        atomic_store_explicit(&f->a, STOP_SEQ, memory_order_release);
        bench_pp_finish(&pp, &sh->res[0]);
        return 0;
    }
    for (uint64_t i = 0;; i++) {
        uint64_t v;
        while ((v = atomic_load_explicit(&f->a, memory_order_acquire)) != 2 * i + 1) {
            if (v == STOP_SEQ) return 0;
            if ((rc = floor_spin_check(sh, &spins, hard)) < 0)
                return bench_fail(sh, idx, rc, "floor: no ping %llu", (unsigned long long)i);
        }
        atomic_store_explicit(back, 2 * i + 2, memory_order_release);
    }
}

static void floor_case(int two)
{
    struct bench_row row;
    bench_row_init(&row, two ? "floor.2lines" : "floor.1line", "atomics", 8, 1, 0);
    if (!bench_begin(&row)) return;
    snprintf(row.notes, sizeof(row.notes), "pin 0/1; %s",
             two ? "one line per direction" : "one line both ways");
    size_t sbytes = bench_opts.pp_max_rt * sizeof(uint64_t);
    struct floor_arg *f = bench_shm_alloc(sizeof(*f));
    struct bench_shared *sh = bench_shared_new();
    uint64_t *samples = bench_shm_alloc(sbytes);
    if (!f || !sh || !samples) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    f->two = two;
    f->warm = bench_opts.quick ? 1000 : 10000;
    f->samples = samples;
    struct bench_run run = {
        .mode = BENCH_THREADS, .nparties = 2, .cpus = {0, 1}, .fn = floor_party, .arg = f};
    int rc = bench_run_parties(sh, &run);
    if (rc < 0 || sh->res[0].nsamples == 0)
        bench_row_fail_from(&row, sh, 2, rc < 0 ? rc : -EIO);
    else
        bench_row_latency(&row, samples, sh->res[0].nsamples,
                          sh->res[0].t_end - sh->res[0].t_start);
out:
    bench_emit(&row);
    bench_shm_free(f, sizeof(*f));
    bench_shm_free(samples, sbytes);
    bench_shared_free(sh);
}

void bench_baseline_floor(void)
{
    floor_case(0);
    floor_case(1);
}

/* ----------------------------------------------------------------- memcpy */

void bench_baseline_memcpy(size_t n)
{
    struct bench_row row;
    bench_row_init(&row, "memcpy", "libc", n, 0, 0);
    if (!bench_begin(&row)) return;
    snprintf(row.notes, sizeof(row.notes), "1 core (CPU 0), same src -> dst each time");
    void *src = NULL, *dst = NULL;
    if (posix_memalign(&src, 64, n) || posix_memalign(&dst, 64, n)) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    memcpy(src, bench_src_buf(n), n);
    memset(dst, 0, n);
    cpu_set_t saved;
    int have_saved = sched_getaffinity(0, sizeof(saved), &saved) == 0;
    bench_pin_self(0);
    for (int i = 0; i < 4; i++) {
        memcpy(dst, src, n);
        bench_escape(dst);
    }
    uint64_t mask = n >= 65536 ? 0 : n >= 1024 ? 63 : 1023;
    uint64_t iters = 0, t0 = bench_now_ns(), t = t0;
    for (;;) {
        memcpy(dst, src, n);
        bench_escape(dst);
        iters++;
        if ((iters & mask) == 0 && (t = bench_now_ns()) - t0 >= bench_opts.budget_ns) break;
    }
    if (have_saved) sched_setaffinity(0, sizeof(saved), &saved);
    bench_row_throughput(&row, iters, t - t0);
out:
    bench_emit(&row);
    free(src);
    free(dst);
}

/* ---------------------------------------------------------- ideal ring */

#define IDEAL_BATCH 64

struct ideal_arg {
    _Alignas(64) atomic_uint_fast64_t head; /* messages published by the writer */
    _Alignas(64) atomic_uint_fast64_t tail; /* messages released by the reader */
    _Alignas(64) atomic_int closed;
    size_t n;
    unsigned depth; /* power of two */
    uint64_t warm;
    uint8_t *slots; /* depth x n bytes, shared with a forked reader */
    const uint8_t *src;
};

static int ideal_writer(struct bench_shared *sh, struct ideal_arg *a)
{
    int gen = 0, rc = bench_barrier(sh, 2, &gen);
    if (rc < 0) {
        atomic_store_explicit(&a->closed, 1, memory_order_release);
        return bench_fail(sh, 0, rc, "ideal writer: barrier: %s", strerror(-rc));
    }
    const uint64_t limit = a->warm + bench_opts.max_msgs, mask = a->depth - 1;
    uint64_t hard = bench_now_ns() + bench_opts.budget_ns + 1000000ull * bench_opts.timeout_ms;
    uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX, tail = 0, published = 0;
    unsigned spins = 0;
    for (;; seq++) {
        if (seq == a->warm) {
            t0 = bench_now_ns();
            deadline = t0 + bench_opts.budget_ns;
        } else if ((seq & 255) == 0 && seq > a->warm && bench_now_ns() >= deadline) {
            break;
        }
        if (seq >= limit || atomic_load_explicit(&sh->abort, memory_order_relaxed)) break;
        while (seq - tail >= a->depth) {
            if (published != seq) {
                atomic_store_explicit(&a->head, seq, memory_order_release);
                published = seq;
            }
            tail = atomic_load_explicit(&a->tail, memory_order_acquire);
            if (seq - tail >= a->depth && (rc = floor_spin_check(sh, &spins, hard)) < 0) {
                atomic_store_explicit(&a->closed, 1, memory_order_release);
                return bench_fail(sh, 0, rc, "ideal writer: reader stuck at %llu",
                                  (unsigned long long)tail);
            }
        }
        uint8_t *p = a->slots + (seq & mask) * a->n;
        memcpy(p, a->src, a->n);
        bench_stamp(p, a->n, seq);
        if (((seq + 1) & (IDEAL_BATCH - 1)) == 0) {
            atomic_store_explicit(&a->head, seq + 1, memory_order_release);
            published = seq + 1;
        }
    }
    uint64_t t_close = bench_now_ns();
    atomic_store_explicit(&a->head, seq, memory_order_release);
    atomic_store_explicit(&a->closed, 1, memory_order_release);
    sh->res[0].msgs = seq;
    sh->res[0].t_start = t0;
    sh->res[0].t_end = t_close;
    return 0;
}

static int ideal_reader(struct bench_shared *sh, struct ideal_arg *a)
{
    int gen = 0, rc = bench_barrier(sh, 2, &gen);
    if (rc < 0) return bench_fail(sh, 1, rc, "ideal reader: barrier: %s", strerror(-rc));
    const uint64_t mask = a->depth - 1;
    uint64_t hard = bench_now_ns() + bench_opts.budget_ns + 1000000ull * bench_opts.timeout_ms;
    uint64_t seq = 0, avail = 0, sum = 0;
    unsigned spins = 0;
    for (;;) {
        if (seq == avail) {
            atomic_store_explicit(&a->tail, seq, memory_order_release);
            while ((avail = atomic_load_explicit(&a->head, memory_order_acquire)) == seq) {
                if (atomic_load_explicit(&a->closed, memory_order_acquire)) {
                    /* closed is stored after the last head: reload to be exact. */
                    avail = atomic_load_explicit(&a->head, memory_order_acquire);
                    if (avail == seq) goto done;
                    break;
                }
                if ((rc = floor_spin_check(sh, &spins, hard)) < 0)
                    return bench_fail(sh, 1, rc, "ideal reader: no message %llu",
                                      (unsigned long long)seq);
            }
        }
        const uint8_t *p = a->slots + (seq & mask) * a->n;
        if (!bench_check(p, a->n, seq))
            return bench_fail(sh, 1, -EBADMSG, "ideal reader: message %llu is wrong",
                              (unsigned long long)seq);
        sum += bench_sum64(p, a->n);
        seq++;
        if ((seq & (IDEAL_BATCH - 1)) == 0)
            atomic_store_explicit(&a->tail, seq, memory_order_release);
    }
done:
    sh->res[1].t_end = bench_now_ns();
    sh->res[1].msgs = seq;
    sh->res[1].sink = sum;
    return 0;
}

static int ideal_party(struct bench_shared *sh, int idx, void *arg)
{
    return idx == 0 ? ideal_writer(sh, arg) : ideal_reader(sh, arg);
}

void bench_baseline_ideal_ring(size_t n)
{
    struct bench_row row;
    unsigned depth = bench_depth_for(n);
    bench_row_init(&row, "tput.thr.read", "ideal-ring", n, 1, depth);
    if (!bench_begin(&row)) return;
    snprintf(row.notes, sizeof(row.notes),
             "pin 0/1; SPSC, no headers, indexes published per %d; memcpy in, sum every byte",
             IDEAL_BATCH);
    struct ideal_arg *a = bench_shm_alloc(sizeof(*a));
    struct bench_shared *sh = bench_shared_new();
    size_t bytes = 0;
    if (!a || !sh || (depth & (depth - 1)) || !bench_src_buf(n)) {
        bench_row_fail_from(&row, NULL, 0, (depth & (depth - 1)) ? -EINVAL : -ENOMEM);
        goto out;
    }
    a->n = n;
    a->depth = depth;
    a->warm = bench_warmup_for(n, depth);
    a->src = bench_src_buf(n);
    bytes = (size_t)depth * n;
    a->slots = bench_shm_alloc(bytes);
    if (!a->slots) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    struct bench_run run = {
        .mode = BENCH_THREADS, .nparties = 2, .cpus = {0, 1}, .fn = ideal_party, .arg = a};
    int rc = bench_run_parties(sh, &run);
    if (rc < 0) {
        bench_row_fail_from(&row, sh, 2, rc);
    } else if (sh->res[1].msgs != sh->res[0].msgs || sh->res[0].msgs <= a->warm) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "reader got %llu messages of %llu",
                 (unsigned long long)sh->res[1].msgs, (unsigned long long)sh->res[0].msgs);
    } else {
        bench_row_throughput(&row, sh->res[0].msgs - a->warm,
                             sh->res[1].t_end - sh->res[0].t_start);
    }
out:
    bench_emit(&row);
    if (a && a->slots) bench_shm_free(a->slots, bytes);
    if (a) bench_shm_free(a, sizeof(*a));
    bench_shared_free(sh);
}

/* ------------------------------------------------------- pipes / sockets */

struct fd_arg {
    int fd[4]; /* tput: [0] read end, [1] write end; pp: [0] ping r, [1] ping w, [2] pong r, [3]
                  pong w */
    int unix_sock;
    int spin; /* ping-pong: non-blocking reads, spinning on EAGAIN */
    size_t n;
    uint64_t warm;
    const uint8_t *src;
    uint64_t *samples;
};

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Close fd[i] and forget every alias of it in fd[0..3]. */
static void close_alias(int *fd, int i)
{
    int v = fd[i];
    if (v < 0) return;
    close(v);
    for (int j = 0; j < 4; j++)
        if (fd[j] == v) fd[j] = -1;
}

/* 0 or negative errno. */
static int write_full(int fd, const void *p, size_t n, uint64_t hard)
{
    const char *b = p;
    unsigned tries = 0;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if ((++tries & 4095) == 0 && bench_now_ns() > hard) return -ETIMEDOUT;
                bench_cpu_relax();
                continue;
            }
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1 message, 0 end of file before it, or negative errno. */
static int read_full(int fd, void *p, size_t n, uint64_t hard)
{
    char *b = p;
    size_t got = 0;
    unsigned tries = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if ((++tries & 4095) == 0 && bench_now_ns() > hard) return -ETIMEDOUT;
                bench_cpu_relax();
                continue;
            }
            return -errno;
        }
        if (r == 0) return got ? -EPROTO : 0;
        got += (size_t)r;
    }
    return 1;
}

static int fd_tput_party(struct bench_shared *sh, int idx, void *arg)
{
    struct fd_arg *a = arg;
    int gen = 0, rc;
    char *buf = malloc(a->n);
    if (!buf) return bench_fail(sh, idx, -ENOMEM, "out of memory");
    uint64_t hard = UINT64_MAX;
    if (idx == 0) {
        close_fd(&a->fd[0]);
        memcpy(buf, a->src, a->n);
        if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
            close_fd(&a->fd[1]);
            free(buf);
            return bench_fail(sh, idx, rc, "writer: barrier: %s", strerror(-rc));
        }
        const uint64_t mask = a->n >= 4096 ? 0 : 255;
        uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX;
        for (;; seq++) {
            if (seq == a->warm) {
                t0 = bench_now_ns();
                deadline = t0 + bench_opts.budget_ns;
            } else if ((seq & mask) == 0 && seq > a->warm && bench_now_ns() >= deadline) {
                break;
            }
            if (seq >= a->warm + bench_opts.max_msgs) break;
            bench_stamp(buf, a->n, seq);
            if ((rc = write_full(a->fd[1], buf, a->n, hard)) < 0) {
                bench_fail(sh, idx, rc, "writer: write: %s", strerror(-rc));
                break;
            }
        }
        close_fd(&a->fd[1]);
        sh->res[0].msgs = seq;
        sh->res[0].t_start = t0;
        free(buf);
        return sh->res[0].err;
    }
    close_fd(&a->fd[1]); /* or the pipe never reports end of file */
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        free(buf);
        return bench_fail(sh, idx, rc, "reader: barrier: %s", strerror(-rc));
    }
    uint64_t expect = 0;
    for (;; expect++) {
        rc = read_full(a->fd[0], buf, a->n, hard);
        if (rc == 0) break;
        if (rc < 0) {
            free(buf);
            return bench_fail(sh, idx, rc, "reader: read: %s", strerror(-rc));
        }
        if (!bench_check(buf, a->n, expect)) {
            free(buf);
            return bench_fail(sh, idx, -EBADMSG, "reader: message %llu is wrong",
                              (unsigned long long)expect);
        }
    }
    sh->res[idx].t_end = bench_now_ns();
    sh->res[idx].msgs = expect;
    close_fd(&a->fd[0]);
    free(buf);
    return 0;
}

void bench_baseline_fd_tput(int unix_sock, size_t n)
{
    struct bench_row row;
    unsigned depth = bench_depth_for(n);
    bench_row_init(&row, "tput.proc.copy", unix_sock ? "unix" : "pipe", n, 1, 0);
    if (!bench_begin(&row)) return;
    snprintf(row.notes, sizeof(row.notes), "pin 0/1; %s, blocking, default buffer",
             unix_sock ? "SOCK_STREAM" : "pipe");
    struct fd_arg a = {.fd = {-1, -1, -1, -1},
                       .unix_sock = unix_sock,
                       .n = n,
                       .warm = bench_warmup_for(n, depth),
                       .src = bench_src_buf(n)};
    struct bench_shared *sh = bench_shared_new();
    int rc;
    if (!sh || !a.src) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    if (unix_sock) {
        int sv[2];
        rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        a.fd[0] = sv[1];
        a.fd[1] = sv[0];
    } else {
        int pv[2];
        rc = pipe(pv);
        a.fd[0] = pv[0];
        a.fd[1] = pv[1];
    }
    if (rc < 0) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "%s: %s", unix_sock ? "socketpair" : "pipe",
                 strerror(errno));
        goto out;
    }
    struct bench_run run = {
        .mode = BENCH_PROCS, .nparties = 2, .cpus = {0, 1}, .fn = fd_tput_party, .arg = &a};
    rc = bench_run_parties(sh, &run);
    if (rc < 0) {
        bench_row_fail_from(&row, sh, 2, rc);
    } else if (sh->res[1].msgs != sh->res[0].msgs || sh->res[0].msgs <= a.warm) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "reader got %llu messages of %llu",
                 (unsigned long long)sh->res[1].msgs, (unsigned long long)sh->res[0].msgs);
    } else {
        bench_row_throughput(&row, sh->res[0].msgs - a.warm, sh->res[1].t_end - sh->res[0].t_start);
    }
out:
    for (int i = 0; i < 4; i++)
        close_fd(&a.fd[i]);
    bench_emit(&row);
    bench_shared_free(sh);
}

static int fd_pp_party(struct bench_shared *sh, int idx, void *arg)
{
    struct fd_arg *a = arg;
    /* pinger writes fd[1], reads fd[2]; echo reads fd[0], writes fd[3]. With
     * a socketpair fd[1] == fd[2] and fd[0] == fd[3]. */
    int rfd = idx == 0 ? a->fd[2] : a->fd[0];
    int wfd = idx == 0 ? a->fd[1] : a->fd[3];
    for (int i = 0; i < 4; i++)
        if (a->fd[i] != rfd && a->fd[i] != wfd) close_alias(a->fd, i);
    if (a->spin) {
        int fl = fcntl(rfd, F_GETFL);
        fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
    }
    int gen = 0, rc = bench_barrier(sh, 2, &gen);
    char buf[4096];
    uint64_t hard = bench_now_ns() + bench_opts.pp_budget_ns + 2000000ull * bench_opts.timeout_ms;
    if (rc < 0) goto done;
    memcpy(buf, a->src, a->n);
    if (idx == 0) {
        struct bench_pp pp = bench_pp_start(a->warm, a->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            bench_stamp(buf, a->n, i);
            if ((rc = write_full(wfd, buf, a->n, hard)) < 0) break;
            if ((rc = read_full(rfd, buf, a->n, hard)) <= 0 || !bench_check(buf, a->n, i)) {
                rc = rc < 0 ? rc : -EBADMSG;
                break;
            }
            if (bench_pp_tick(&pp, i)) break;
        }
        bench_pp_finish(&pp, &sh->res[0]);
    } else {
        for (uint64_t i = 0;; i++) {
            if ((rc = read_full(rfd, buf, a->n, hard)) <= 0) break;
            if (!bench_check(buf, a->n, i)) {
                rc = -EBADMSG;
                break;
            }
            if ((rc = write_full(wfd, buf, a->n, hard)) < 0) break;
        }
    }
done:
    if (wfd == rfd) shutdown(wfd, SHUT_WR);
    for (int i = 0; i < 4; i++)
        close_alias(a->fd, i);
    if (rc < 0) return bench_fail(sh, idx, rc, "%s: %s", idx ? "echo" : "pinger", strerror(-rc));
    return 0;
}

void bench_baseline_fd_pingpong(int unix_sock, int spin, size_t n)
{
    struct bench_row row;
    bench_row_init(&row, spin ? "pingpong.proc.spin" : "pingpong.proc.block",
                   unix_sock ? "unix" : "pipe", n, 1, 0);
    if (!bench_begin(&row)) return;
    snprintf(row.notes, sizeof(row.notes), "pin 0/1; %s%s",
             unix_sock ? "SOCK_STREAM socketpair" : "two pipes",
             spin ? ", O_NONBLOCK reads spinning on EAGAIN" : ", blocking reads");
    size_t sbytes = bench_opts.pp_max_rt * sizeof(uint64_t);
    struct fd_arg a = {.fd = {-1, -1, -1, -1},
                       .unix_sock = unix_sock,
                       .spin = spin,
                       .n = n,
                       .warm = bench_opts.quick ? 100 : 1000,
                       .src = bench_src_buf(n)};
    a.samples = bench_shm_alloc(sbytes);
    struct bench_shared *sh = bench_shared_new();
    int rc = 0;
    if (!sh || !a.samples || n > 4096) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    if (unix_sock) {
        int sv[2];
        rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        if (rc == 0) {
            a.fd[1] = a.fd[2] = sv[0];
            a.fd[0] = a.fd[3] = sv[1];
        }
    } else {
        int p[2], q[2];
        rc = pipe(p);
        if (rc == 0 && (rc = pipe(q)) < 0) {
            close(p[0]);
            close(p[1]);
        }
        if (rc == 0) {
            a.fd[0] = p[0];
            a.fd[1] = p[1];
            a.fd[2] = q[0];
            a.fd[3] = q[1];
        }
    }
    if (rc < 0) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "%s", strerror(errno));
        goto out;
    }
    struct bench_run run = {
        .mode = BENCH_PROCS, .nparties = 2, .cpus = {0, 1}, .fn = fd_pp_party, .arg = &a};
    rc = bench_run_parties(sh, &run);
    if (rc < 0 || sh->res[0].nsamples == 0)
        bench_row_fail_from(&row, sh, 2, rc < 0 ? rc : -EIO);
    else
        bench_row_latency(&row, a.samples, sh->res[0].nsamples,
                          sh->res[0].t_end - sh->res[0].t_start);
out:
    for (int i = 0; i < 4; i++)
        close_alias(a.fd, i);
    bench_emit(&row);
    bench_shm_free(a.samples, sbytes);
    bench_shared_free(sh);
}

/* ----------------------------------------------------------------- ZeroMQ */

#ifdef WEIR_BENCH_HAVE_ZMQ

int bench_have_zmq(void)
{
    return !bench_opts.no_zmq;
}

struct zmq_arg {
    void *ctx; /* inproc: shared; ipc: NULL (each party makes its own) */
    int ipc;
    char ep[128];
    size_t n;
    int hwm;
    uint64_t warm;
    const uint8_t *src;
    uint64_t *samples;
};

static void *zsock(struct bench_shared *sh, int idx, void *ctx, int hwm)
{
    void *s = zmq_socket(ctx, ZMQ_PAIR);
    if (!s) {
        bench_fail(sh, idx, -zmq_errno(), "zmq_socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    int zero = 0, tmo = bench_opts.timeout_ms;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    if (hwm > 0) {
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    }
    return s;
}

/* Party 1 binds (before the barrier), party 0 connects (after it). */
static int zmq_party(struct bench_shared *sh, int idx, void *arg, int pingpong)
{
    struct zmq_arg *a = arg;
    /* ZeroMQ's I/O thread starts with the first socket and inherits our
     * CPU pin: create context and socket unpinned, so it can run anywhere. */
    cpu_set_t pinned;
    int have_pinned = sched_getaffinity(0, sizeof(pinned), &pinned) == 0;
    bench_pin_self(-1);
    void *ctx = a->ctx ? a->ctx : zmq_ctx_new();
    void *s = NULL;
    char *buf = malloc(a->n < 16 ? 16 : a->n);
    int gen = 0, rc = 0;
    if (ctx && buf) s = zsock(sh, idx, ctx, pingpong ? 0 : a->hwm);
    if (have_pinned) sched_setaffinity(0, sizeof(pinned), &pinned);
    if (!ctx || !buf) {
        rc = bench_fail(sh, idx, -ENOMEM, "zmq_ctx_new / malloc failed");
        goto done;
    }
    if (!s) {
        rc = -EIO;
        goto done;
    }
    if (idx == 1 && zmq_bind(s, a->ep) < 0) {
        rc = bench_fail(sh, idx, -zmq_errno(), "zmq_bind %s: %s", a->ep, zmq_strerror(zmq_errno()));
        goto done;
    }
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        rc = bench_fail(sh, idx, rc, "barrier: %s", strerror(-rc));
        goto done;
    }
    if (idx == 0 && zmq_connect(s, a->ep) < 0) {
        rc = bench_fail(sh, idx, -zmq_errno(), "zmq_connect %s: %s", a->ep,
                        zmq_strerror(zmq_errno()));
        goto done;
    }
    memcpy(buf, a->src, a->n);
    const uint64_t stop = STOP_SEQ;
    if (!pingpong && idx == 0) {
        const uint64_t mask = a->n >= 4096 ? 0 : 255;
        uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX;
        for (;; seq++) {
            if (seq == a->warm) {
                t0 = bench_now_ns();
                deadline = t0 + bench_opts.budget_ns;
            } else if ((seq & mask) == 0 && seq > a->warm && bench_now_ns() >= deadline) {
                break;
            }
            if (seq >= a->warm + bench_opts.max_msgs) break;
            bench_stamp(buf, a->n, seq);
            if (zmq_send(s, buf, a->n, 0) < 0) {
                rc = bench_fail(sh, idx, -zmq_errno(), "writer: zmq_send %llu: %s",
                                (unsigned long long)seq, zmq_strerror(zmq_errno()));
                break;
            }
        }
        sh->res[0].msgs = seq;
        sh->res[0].t_start = t0;
        if (rc == 0 && zmq_send(s, &stop, 8, 0) < 0)
            rc = bench_fail(sh, idx, -zmq_errno(), "writer: zmq_send end: %s",
                            zmq_strerror(zmq_errno()));
        /* Wait for the reader's acknowledgement: closing now (linger 0)
         * would drop what is still queued in the ipc pipe. */
        uint64_t ack;
        if (rc == 0 && zmq_recv(s, &ack, sizeof(ack), 0) < 0)
            rc = bench_fail(sh, idx, -zmq_errno(), "writer: no acknowledgement: %s",
                            zmq_strerror(zmq_errno()));
    } else if (!pingpong) {
        uint64_t expect = 0;
        for (;; expect++) {
            int r = zmq_recv(s, buf, a->n, 0);
            if (r < 0) {
                rc = bench_fail(sh, idx, -zmq_errno(), "reader: zmq_recv %llu: %s",
                                (unsigned long long)expect, zmq_strerror(zmq_errno()));
                break;
            }
            if (r == 8 && !memcmp(buf, &stop, 8)) {
                zmq_send(s, &stop, 8, 0); /* acknowledge the end */
                break;
            }
            if ((size_t)r != a->n || !bench_check(buf, a->n, expect)) {
                rc = bench_fail(sh, idx, -EBADMSG, "reader: message %llu is wrong",
                                (unsigned long long)expect);
                break;
            }
        }
        sh->res[1].t_end = bench_now_ns();
        sh->res[1].msgs = expect;
    } else if (idx == 0) {
        struct bench_pp pp = bench_pp_start(a->warm, a->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            bench_stamp(buf, a->n, i);
            if (zmq_send(s, buf, a->n, 0) < 0 || zmq_recv(s, buf, a->n, 0) != (int)a->n) {
                rc = bench_fail(sh, idx, -EIO, "pinger: round trip %llu: %s", (unsigned long long)i,
                                zmq_strerror(zmq_errno()));
                break;
            }
            if (!bench_check(buf, a->n, i)) {
                rc = bench_fail(sh, idx, -EBADMSG, "pinger: wrong answer %llu",
                                (unsigned long long)i);
                break;
            }
            if (bench_pp_tick(&pp, i)) break;
        }
        bench_pp_finish(&pp, &sh->res[0]);
        zmq_send(s, &stop, 8, 0);
    } else {
        for (;;) {
            int r = zmq_recv(s, buf, a->n, 0);
            if (r < 0) {
                rc = bench_fail(sh, idx, -zmq_errno(), "echo: zmq_recv: %s",
                                zmq_strerror(zmq_errno()));
                break;
            }
            if (r == 8 && !memcmp(buf, &stop, 8)) break;
            if (zmq_send(s, buf, (size_t)r, 0) < 0) {
                rc = bench_fail(sh, idx, -zmq_errno(), "echo: zmq_send: %s",
                                zmq_strerror(zmq_errno()));
                break;
            }
        }
    }
done:
    if (s) zmq_close(s);
    if (ctx && !a->ctx) zmq_ctx_term(ctx);
    free(buf);
    return rc < 0 ? rc : sh->res[idx].err;
}

static int zmq_tput_party(struct bench_shared *sh, int idx, void *arg)
{
    return zmq_party(sh, idx, arg, 0);
}

static int zmq_pp_party(struct bench_shared *sh, int idx, void *arg)
{
    return zmq_party(sh, idx, arg, 1);
}

static void zmq_case(int ipc, size_t n, int pingpong)
{
    static unsigned counter;
    struct bench_row row;
    int hwm = n <= 1024 ? 1000 : (int)bench_depth_for(n);
    bench_row_init(&row,
                   pingpong ? (ipc ? "pingpong.proc.copy" : "pingpong.thr.copy")
                            : (ipc ? "tput.proc.copy" : "tput.thr.copy"),
                   ipc ? "zmq-ipc" : "zmq-inproc", n, 1, pingpong ? 0 : (unsigned)hwm);
    if (!bench_begin(&row)) return;
    if (bench_opts.no_zmq) {
        row.skipped = 1;
        snprintf(row.error, sizeof(row.error), "--no-zmq");
        bench_emit(&row);
        return;
    }
    snprintf(row.notes, sizeof(row.notes), "pin 0/1; PAIR, %s, blocking zmq_send/zmq_recv",
             ipc ? "ipc://, processes" : "inproc://, threads");
    size_t sbytes = bench_opts.pp_max_rt * sizeof(uint64_t);
    struct zmq_arg a = {.ipc = ipc,
                        .n = n,
                        .hwm = hwm,
                        .src = bench_src_buf(n),
                        .warm = pingpong ? (bench_opts.quick ? 100u : 1000u)
                                         : bench_warmup_for(n, bench_depth_for(n))};
    if (ipc)
        snprintf(a.ep, sizeof(a.ep), "ipc:///tmp/weir-bench-%d-%u.ipc", (int)getpid(), counter++);
    else
        snprintf(a.ep, sizeof(a.ep), "inproc://weir-bench-%u", counter++);
    struct bench_shared *sh = bench_shared_new();
    a.samples = pingpong ? bench_shm_alloc(sbytes) : NULL;
    if (!sh || (pingpong && !a.samples)) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    if (!ipc && !(a.ctx = zmq_ctx_new())) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        goto out;
    }
    struct bench_run run = {.mode = ipc ? BENCH_PROCS : BENCH_THREADS,
                            .nparties = 2,
                            .cpus = {0, 1},
                            .fn = pingpong ? zmq_pp_party : zmq_tput_party,
                            .arg = &a};
    int rc = bench_run_parties(sh, &run);
    if (rc < 0) {
        bench_row_fail_from(&row, sh, 2, rc);
    } else if (pingpong) {
        if (sh->res[0].nsamples == 0)
            bench_row_fail_from(&row, sh, 2, -EIO);
        else
            bench_row_latency(&row, a.samples, sh->res[0].nsamples,
                              sh->res[0].t_end - sh->res[0].t_start);
    } else if (sh->res[1].msgs != sh->res[0].msgs || sh->res[0].msgs <= a.warm) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "reader got %llu messages of %llu",
                 (unsigned long long)sh->res[1].msgs, (unsigned long long)sh->res[0].msgs);
    } else {
        bench_row_throughput(&row, sh->res[0].msgs - a.warm, sh->res[1].t_end - sh->res[0].t_start);
    }
out:
    if (a.ctx) zmq_ctx_term(a.ctx);
    if (ipc) unlink(a.ep + strlen("ipc://"));
    bench_emit(&row);
    bench_shm_free(a.samples, sbytes);
    bench_shared_free(sh);
}

void bench_baseline_zmq_tput(int ipc, size_t n)
{
    zmq_case(ipc, n, 0);
}

void bench_baseline_zmq_pingpong(int ipc, size_t n)
{
    zmq_case(ipc, n, 1);
}

#else /* !WEIR_BENCH_HAVE_ZMQ */

int bench_have_zmq(void)
{
    return 0;
}

static void zmq_missing(int ipc, size_t n, int pingpong)
{
    static int noted;
    struct bench_row row;
    bench_row_init(&row,
                   pingpong ? (ipc ? "pingpong.proc.copy" : "pingpong.thr.copy")
                            : (ipc ? "tput.proc.copy" : "tput.thr.copy"),
                   ipc ? "zmq-ipc" : "zmq-inproc", n, 1, 0);
    if (!bench_begin(&row)) return;
    if (!noted++) bench_note("ZeroMQ baselines skipped: weir-bench was built without libzmq");
}

void bench_baseline_zmq_tput(int ipc, size_t n)
{
    zmq_missing(ipc, n, 0);
}

void bench_baseline_zmq_pingpong(int ipc, size_t n)
{
    zmq_missing(ipc, n, 1);
}

#endif
