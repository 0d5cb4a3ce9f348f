/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_iceoryx.c - the iceoryx baseline (C binding, v2): publisher /
 * subscriber throughput and ping-pong, against a RouDi daemon that this
 * program starts itself and stops at the end.
 *
 * Design notes
 *
 * RouDi: started on first use as a child process (`iox-roudi -m off -c
 * <our config>`) with its output in a temporary log; ready when the log
 * says "RouDi is ready for clients". If it is missing, exits, or is not
 * ready within 5 s, every iceoryx case is skipped with a note. It is
 * stopped (SIGTERM, then SIGKILL) at the end, at exit, and on SIGINT /
 * SIGTERM. Our config gives mempools sized for our messages (a pool's
 * size is the user payload, plus 128 B of slack for the 64-byte alignment
 * we ask for; iceoryx adds its chunk header on top).
 *
 * The iceoryx runtime cannot be used across fork(), so this process never
 * initialises it: every party is a child (process mode) or a thread of one
 * child (thread mode) that calls iox_runtime_init and leaves with exit()
 * so the runtime's destructor deregisters it from RouDi.
 *
 * Fairness: publishers use ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER and
 * subscribers QueueFullPolicy_BLOCK_PRODUCER (nothing is dropped), the
 * subscriber queue capacity is the weir depth, and subscribers busy-poll
 * iox_sub_take_chunk (no WaitSet: it sleeps, and sleeping costs ~35 us
 * here), as weir spins. Chunks are loaned 64-byte aligned.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef WEIR_BENCH_HAVE_ICEORYX
/* iceoryx's C headers declare `void iox_runtime_shutdown();` */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#pragma GCC diagnostic pop
#endif

#define STOP_SEQ UINT64_MAX

static int ice_state; /* 0 not tried, 1 RouDi running, -1 unavailable */
static pid_t roudi_pid = -1;
static pid_t owner_pid = -1; /* the process that started RouDi */
static char roudi_dir[64];
static char roudi_log[96];
static char roudi_cfg[96];

static void ice_skip(const char *name, const char *impl, size_t n, int readers, const char *why)
{
    struct bench_row row;
    bench_row_init(&row, name, impl, n, readers, 0);
    if (!bench_begin(&row)) return;
    row.skipped = 1;
    snprintf(row.error, sizeof(row.error), "%s", why);
    bench_emit(&row);
}

/* Paths computed before RouDi starts, so the signal handler needs no snprintf. */
static char roudi_user_seg[160]; /* /dev/shm/<user>: RouDi's data segment */

/*
 * Stop RouDi: SIGTERM, up to grace_ms for it to leave, then SIGKILL and
 * remove the segments and socket it would have removed. Async-signal-safe
 * (kill, waitpid, nanosleep, unlink, rmdir), so the signal handler uses it.
 */
static void roudi_kill(int grace_ms)
{
    if (getpid() != owner_pid) return;
    if (roudi_pid <= 0) goto files;
    kill(roudi_pid, SIGTERM);
    int status;
    pid_t r = 0;
    for (int i = 0; i < grace_ms / 10 && (r = waitpid(roudi_pid, &status, WNOHANG)) == 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (r == 0) {
        /* RouDi waits for registered apps that will never answer; what it
         * leaves is ours: remove it so nothing stays behind. */
        kill(roudi_pid, SIGKILL);
        waitpid(roudi_pid, &status, 0);
        unlink("/dev/shm/iceoryx_mgmt");
        if (roudi_user_seg[0]) unlink(roudi_user_seg);
        unlink("/tmp/roudi");
        unlink("/tmp/roudi.lock");
    }
    roudi_pid = -1;
files:
    if (roudi_dir[0]) {
        unlink(roudi_log);
        unlink(roudi_cfg);
        rmdir(roudi_dir);
        roudi_dir[0] = 0;
    }
}

void bench_iceoryx_stop(void)
{
    roudi_kill(3000);
    if (ice_state > 0) ice_state = 0;
}

#ifdef WEIR_BENCH_HAVE_ICEORYX

static char child_uds[64]; /* a party's runtime socket: /tmp/<runtime name> */
static char child_uds_lock[72];

static void on_signal(int sig)
{
    /* Async-signal-safe calls only. The parent stops RouDi; a party (child)
     * removes its runtime socket, which its runtime's destructor would have. */
    if (getpid() == owner_pid) {
        roudi_kill(300);
    } else if (child_uds[0]) {
        unlink(child_uds);
        unlink(child_uds_lock);
    }
    _exit(128 + sig);
}

static const char roudi_config[] = "[general]\n"
                                   "version = 1\n"
                                   "\n"
                                   "[[segment]]\n"
                                   "\n"
                                   "[[segment.mempool]]\nsize = 256\ncount = 4096\n\n"
                                   "[[segment.mempool]]\nsize = 1152\ncount = 1024\n\n"
                                   "[[segment.mempool]]\nsize = 65664\ncount = 96\n\n"
                                   "[[segment.mempool]]\nsize = 1048704\ncount = 24\n";

static int log_says_ready(void)
{
    FILE *f = fopen(roudi_log, "r");
    if (!f) return 0;
    char line[512];
    int ready = 0;
    while (!ready && fgets(line, sizeof(line), f))
        ready = strstr(line, "RouDi is ready for clients") != NULL;
    fclose(f);
    return ready;
}

/* The line of RouDi's log that says why it stopped: the first "Fatal" one,
 * else the last one; ANSI colour codes removed. */
static void log_reason(char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(roudi_log, "r");
    if (!f) return;
    char line[512], last[512] = "", fatal[512] = "";
    while (fgets(line, sizeof(line), f)) {
        size_t j = 0;
        for (size_t i = 0; line[i] && line[i] != '\n'; i++) {
            if (line[i] == '\033') { /* skip ESC [ ... m */
                while (line[i] && line[i] != 'm')
                    i++;
                if (!line[i]) break;
                continue;
            }
            line[j++] = line[i];
        }
        line[j] = 0;
        if (!line[0]) continue;
        snprintf(last, sizeof(last), "%s", line);
        if (!fatal[0] && strstr(line, "Fatal")) snprintf(fatal, sizeof(fatal), "%s", line);
    }
    fclose(f);
    snprintf(out, n, "%.200s", fatal[0] ? fatal : last);
}

static int ice_start(void)
{
    if (ice_state) return ice_state > 0;
    ice_state = -1;
    if (bench_opts.no_iceoryx) {
        bench_note("iceoryx baselines skipped: --no-iceoryx");
        return 0;
    }
    snprintf(roudi_dir, sizeof(roudi_dir), "/tmp/weir-bench-iox-XXXXXX");
    if (!mkdtemp(roudi_dir)) {
        roudi_dir[0] = 0;
        bench_note("iceoryx baselines skipped: mkdtemp: %s", strerror(errno));
        return 0;
    }
    snprintf(roudi_log, sizeof(roudi_log), "%s/roudi.log", roudi_dir);
    snprintf(roudi_cfg, sizeof(roudi_cfg), "%s/roudi.toml", roudi_dir);
    owner_pid = getpid();
    FILE *f = fopen(roudi_cfg, "w");
    int wrote = f && fputs(roudi_config, f) >= 0;
    if (f && fclose(f) != 0) wrote = 0;
    if (!wrote) {
        bench_note("iceoryx baselines skipped: cannot write %s", roudi_cfg);
        roudi_kill(0); /* removes the files */
        return 0;
    }
    struct passwd *pw = getpwuid(geteuid());
    if (pw && pw->pw_name[0] && !strchr(pw->pw_name, '/'))
        snprintf(roudi_user_seg, sizeof(roudi_user_seg), "/dev/shm/%.100s", pw->pw_name);
    uint64_t t0 = bench_now_ns();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        bench_note("iceoryx baselines skipped: fork: %s", strerror(errno));
        return 0;
    }
    if (pid == 0) {
        int fd = open(roudi_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0) dup2(nul, 0);
        execlp("iox-roudi", "iox-roudi", "-m", "off", "-l", "warning", "-c", roudi_cfg,
               (char *)NULL);
        dprintf(2, "exec iox-roudi: %s\n", strerror(errno));
        _exit(127);
    }
    roudi_pid = pid;
    atexit(bench_iceoryx_stop);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char tail[256];
            log_reason(tail, sizeof(tail));
            roudi_pid = -1;
            bench_note("iceoryx baselines skipped: iox-roudi exited (%s %d): %s",
                       WIFEXITED(status) ? "status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
            bench_iceoryx_stop();
            ice_state = -1;
            return 0;
        }
        if (log_says_ready()) break;
        if (bench_now_ns() - t0 > 5000000000ull) {
            bench_note("iceoryx baselines skipped: iox-roudi not ready within 5 s");
            bench_iceoryx_stop();
            ice_state = -1;
            return 0;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ice_state = 1;
    bench_note("iox-roudi (pid %d, monitoring off, own mempool config) ready in %.0f ms", (int)pid,
               (double)(bench_now_ns() - t0) / 1e6);
    return 1;
}

int bench_have_iceoryx(void)
{
    return !bench_opts.no_iceoryx && ice_state >= 0;
}

/* ------------------------------------------------------------------ cases */

struct ice_arg {
    char instance[32];
    size_t n;
    int zc;
    unsigned depth;
    uint64_t warm;
    const uint8_t *src;
    uint64_t *samples;
    int init_runtime;           /* each party initialises its own runtime (process mode) */
    struct bench_shared *inner; /* thread mode: the threads' shared area */
    int pingpong;
};

static void ice_runtime(void)
{
    char name[48];
    snprintf(name, sizeof(name), "weir-bench-%d", (int)getpid());
    snprintf(child_uds, sizeof(child_uds), "/tmp/%s", name);
    snprintf(child_uds_lock, sizeof(child_uds_lock), "/tmp/%s.lock", name);
    iox_set_loglevel(Iceoryx_LogLevel_Error);
    iox_runtime_init(name);
}

static iox_pub_t ice_pub(iox_pub_storage_t *st, const char *inst, const char *event)
{
    iox_pub_options_t o;
    iox_pub_options_init(&o);
    o.historyCapacity = 0;
    o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    return iox_pub_init(st, "weir-bench", inst, event, &o);
}

static iox_sub_t ice_sub(iox_sub_storage_t *st, const char *inst, const char *event, unsigned depth)
{
    iox_sub_options_t o;
    iox_sub_options_init(&o);
    o.queueCapacity = depth;
    o.historyRequest = 0;
    o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    return iox_sub_init(st, "weir-bench", inst, event, &o);
}

/* Wait (bounded) until pub has a subscriber and sub is subscribed. */
static int ice_connect(struct bench_shared *sh, iox_pub_t pub, iox_sub_t sub)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)bench_opts.timeout_ms * 1000000u;
    while ((pub && !iox_pub_has_subscribers(pub)) ||
           (sub && iox_sub_get_subscription_state(sub) != SubscribeState_SUBSCRIBED)) {
        if (bench_now_ns() > deadline) return -ETIMEDOUT;
        if (atomic_load(&sh->abort)) return -ECANCELED;
        struct timespec ts = {0, 200000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Loan a chunk of n bytes, retrying (bounded) while the pool is exhausted. */
static void *ice_loan(struct bench_shared *sh, iox_pub_t pub, size_t n, int *err)
{
    void *p = NULL;
    uint64_t deadline = 0;
    for (unsigned spins = 1;; spins++) {
        enum iox_AllocationResult r = iox_pub_loan_aligned_chunk(pub, &p, (uint32_t)n, 64);
        if (r == AllocationResult_SUCCESS) return p;
        if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS &&
            r != AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL) {
            *err = (int)r;
            return NULL;
        }
        if ((spins & 1023) == 0) {
            uint64_t now = bench_now_ns();
            if (!deadline)
                deadline = now + (uint64_t)bench_opts.timeout_ms * 1000000u;
            else if (now > deadline || atomic_load(&sh->abort)) {
                *err = (int)r;
                return NULL;
            }
        }
        bench_cpu_relax();
    }
}

/* Busy-poll the next chunk (bounded); NULL on timeout/abort. */
static const void *ice_take(struct bench_shared *sh, iox_sub_t sub, int *err)
{
    const void *p = NULL;
    uint64_t deadline = 0;
    for (unsigned spins = 1;; spins++) {
        enum iox_ChunkReceiveResult r = iox_sub_take_chunk(sub, &p);
        if (r == ChunkReceiveResult_SUCCESS) return p;
        if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
            *err = (int)r;
            return NULL;
        }
        if ((spins & 4095) == 0) {
            uint64_t now = bench_now_ns();
            if (!deadline)
                deadline = now + (uint64_t)bench_opts.timeout_ms * 1000000u;
            else if (now > deadline || atomic_load_explicit(&sh->abort, memory_order_relaxed)) {
                *err = -ETIMEDOUT;
                return NULL;
            }
        }
        bench_cpu_relax();
    }
}

static int ice_tput_party(struct bench_shared *sh, int idx, void *arg)
{
    struct ice_arg *a = arg;
    int gen = 0, rc = 0, err = 0;
    if (a->init_runtime) ice_runtime();
    iox_pub_storage_t pst;
    iox_sub_storage_t sst;
    iox_pub_t pub = idx == 0 ? ice_pub(&pst, a->instance, "tput") : NULL;
    iox_sub_t sub = idx == 1 ? ice_sub(&sst, a->instance, "tput", a->depth) : NULL;
    if ((rc = bench_barrier(sh, 2, &gen)) < 0 || (rc = ice_connect(sh, pub, sub)) < 0 ||
        (rc = bench_barrier(sh, 2, &gen)) < 0) {
        bench_fail(sh, idx, rc, "%s: setup: %s", idx ? "subscriber" : "publisher",
                   rc == -ETIMEDOUT ? "no connection through RouDi" : strerror(-rc));
        goto out;
    }
    if (idx == 0) {
        const uint64_t mask = a->n >= 4096 ? 0 : 255;
        uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX;
        for (;; seq++) {
            if (seq == a->warm) {
                t0 = bench_now_ns();
                deadline = t0 + bench_opts.budget_ns;
            } else if ((seq & mask) == 0 && seq > a->warm && bench_now_ns() >= deadline) {
                break;
            }
            if (seq >= a->warm + bench_opts.max_msgs ||
                atomic_load_explicit(&sh->abort, memory_order_relaxed))
                break;
            void *p = ice_loan(sh, pub, a->n, &err);
            if (!p) {
                bench_fail(sh, idx, -ENOBUFS, "publisher: loan %llu failed (AllocationResult %d)",
                           (unsigned long long)seq, err);
                break;
            }
            if (!a->zc) memcpy(p, a->src, a->n);
            bench_stamp(p, a->n, seq);
            iox_pub_publish_chunk(pub, p);
        }
        sh->res[0].msgs = seq;
        sh->res[0].t_start = t0;
        void *p = ice_loan(sh, pub, 8, &err);
        if (p) {
            uint64_t stop = STOP_SEQ;
            memcpy(p, &stop, 8);
            iox_pub_publish_chunk(pub, p);
        } else {
            bench_fail(sh, idx, -ENOBUFS, "publisher: loan of the end marker failed (%d)", err);
        }
    } else {
        uint64_t expect = 0, sum = 0;
        for (;; expect++) {
            const void *p = ice_take(sh, sub, &err);
            if (!p) {
                bench_fail(sh, idx, -ETIMEDOUT, "subscriber: take %llu failed (%d)",
                           (unsigned long long)expect, err);
                break;
            }
            uint64_t first;
            memcpy(&first, p, 8);
            if (first == STOP_SEQ) {
                iox_sub_release_chunk(sub, p);
                break;
            }
            if (!bench_check(p, a->n, expect)) {
                iox_sub_release_chunk(sub, p);
                bench_fail(sh, idx, -EBADMSG, "subscriber: message %llu is wrong (got %llu)",
                           (unsigned long long)expect, (unsigned long long)first);
                break;
            }
            if (!a->zc) sum += bench_sum64(p, a->n);
            iox_sub_release_chunk(sub, p);
        }
        sh->res[1].t_end = bench_now_ns();
        sh->res[1].msgs = expect;
        sh->res[1].sink = sum;
    }
    bench_barrier(sh, 2, &gen); /* nobody leaves while the other still uses its port */
out:
    if (pub) iox_pub_deinit(pub);
    if (sub) iox_sub_deinit(sub);
    return sh->res[idx].err;
}

static int ice_pp_party(struct bench_shared *sh, int idx, void *arg)
{
    struct ice_arg *a = arg;
    int gen = 0, rc = 0, err = 0;
    if (a->init_runtime) ice_runtime();
    iox_pub_storage_t pst;
    iox_sub_storage_t sst;
    iox_pub_t pub = ice_pub(&pst, a->instance, idx == 0 ? "ping" : "pong");
    iox_sub_t sub = ice_sub(&sst, a->instance, idx == 0 ? "pong" : "ping", a->depth);
    if ((rc = bench_barrier(sh, 2, &gen)) < 0 || (rc = ice_connect(sh, pub, sub)) < 0 ||
        (rc = bench_barrier(sh, 2, &gen)) < 0) {
        bench_fail(sh, idx, rc, "%s: setup: %s", idx ? "echo" : "pinger",
                   rc == -ETIMEDOUT ? "no connection through RouDi" : strerror(-rc));
        goto out;
    }
    uint64_t sum = 0;
    if (idx == 0) {
        struct bench_pp pp = bench_pp_start(a->warm, a->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            void *p = ice_loan(sh, pub, a->n, &err);
            if (!p) {
                bench_fail(sh, idx, -ENOBUFS, "pinger: loan failed (%d)", err);
                break;
            }
            if (!a->zc) memcpy(p, a->src, a->n);
            bench_stamp(p, a->n, i);
            iox_pub_publish_chunk(pub, p);
            const void *q = ice_take(sh, sub, &err);
            if (!q) {
                bench_fail(sh, idx, -ETIMEDOUT, "pinger: no answer to %llu (%d)",
                           (unsigned long long)i, err);
                break;
            }
            int ok = bench_check(q, a->n, i);
            if (ok && !a->zc) sum += bench_sum64(q, a->n);
            iox_sub_release_chunk(sub, q);
            if (!ok) {
                bench_fail(sh, idx, -EBADMSG, "pinger: wrong answer %llu", (unsigned long long)i);
                break;
            }
            if (bench_pp_tick(&pp, i)) break;
        }
        bench_pp_finish(&pp, &sh->res[0]);
        void *p = ice_loan(sh, pub, a->n, &err);
        if (p) {
            bench_stamp(p, a->n, STOP_SEQ);
            iox_pub_publish_chunk(pub, p);
        }
    } else {
        for (uint64_t i = 0;; i++) {
            const void *q = ice_take(sh, sub, &err);
            if (!q) {
                bench_fail(sh, idx, -ETIMEDOUT, "echo: take %llu failed (%d)",
                           (unsigned long long)i, err);
                break;
            }
            uint64_t first;
            memcpy(&first, q, 8);
            if (first == STOP_SEQ) {
                iox_sub_release_chunk(sub, q);
                break;
            }
            int ok = bench_check(q, a->n, i);
            if (ok && !a->zc) sum += bench_sum64(q, a->n);
            iox_sub_release_chunk(sub, q);
            if (!ok) {
                bench_fail(sh, idx, -EBADMSG, "echo: wrong message %llu", (unsigned long long)i);
                break;
            }
            void *p = ice_loan(sh, pub, a->n, &err);
            if (!p) {
                bench_fail(sh, idx, -ENOBUFS, "echo: loan failed (%d)", err);
                break;
            }
            if (!a->zc) memcpy(p, a->src, a->n);
            bench_stamp(p, a->n, i);
            iox_pub_publish_chunk(pub, p);
        }
    }
    sh->res[idx].sink = sum;
    bench_barrier(sh, 2, &gen);
out:
    iox_pub_deinit(pub);
    iox_sub_deinit(sub);
    return sh->res[idx].err;
}

/* Thread mode: one child initialises the runtime and runs both parties as threads. */
static int ice_container(struct bench_shared *outer, int idx, void *arg)
{
    struct ice_arg *a = arg;
    (void)outer;
    (void)idx;
    ice_runtime();
    struct bench_run run = {.mode = BENCH_THREADS,
                            .nparties = 2,
                            .cpus = {0, 1},
                            .fn = a->pingpong ? ice_pp_party : ice_tput_party,
                            .arg = a};
    return bench_run_parties(a->inner, &run);
}

static void ice_case(enum bench_mode mode, int zc, size_t n, int pingpong)
{
    static unsigned counter;
    char name[48];
    snprintf(name, sizeof(name), "%s.%s.%s", pingpong ? "pingpong" : "tput",
             mode == BENCH_THREADS ? "thr" : "proc", zc ? "zc" : "read");
    unsigned depth = bench_depth_for(n);
    if (depth > 256)
        depth = 256; /* iceoryx's largest subscriber queue */
    struct bench_row row;
    bench_row_init(&row, name, "iceoryx", n, 1, depth);
    if (!bench_begin(&row)) return;
    if (!ice_start()) {
        ice_skip(name, "iceoryx", n, 1, "iceoryx/RouDi not available (see note)");
        return;
    }
    snprintf(row.notes, sizeof(row.notes), "pin 0/1; %s; busy-poll take; %s",
             mode == BENCH_THREADS ? "threads" : "processes",
             zc ? "zero-copy: seq only" : "memcpy in, sum every byte");
    size_t sbytes = bench_opts.pp_max_rt * sizeof(uint64_t);
    struct ice_arg *a = bench_shm_alloc(sizeof(*a));
    struct bench_shared *sh = bench_shared_new();
    struct bench_shared *outer = mode == BENCH_THREADS ? bench_shared_new() : NULL;
    uint64_t *samples = pingpong ? bench_shm_alloc(sbytes) : NULL;
    if (!a || !sh || (mode == BENCH_THREADS && !outer) || (pingpong && !samples)) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    snprintf(a->instance, sizeof(a->instance), "c%d-%u", (int)getpid(), counter++);
    a->n = n;
    a->zc = zc;
    a->depth = depth;
    a->warm = pingpong ? (bench_opts.quick ? 200 : 2000) : bench_warmup_for(n, depth);
    a->src = bench_src_buf(n);
    a->samples = samples;
    a->pingpong = pingpong;
    a->inner = sh;
    int rc;
    if (mode == BENCH_THREADS) {
        struct bench_run run = {.mode = BENCH_PROCS,
                                .nparties = 1,
                                .all_children = 1,
                                .clean_exit = 1,
                                .fn = ice_container,
                                .arg = a,
                                .cpus = {-1}};
        rc = bench_run_parties(outer, &run);
    } else {
        a->init_runtime = 1;
        struct bench_run run = {.mode = BENCH_PROCS,
                                .nparties = 2,
                                .all_children = 1,
                                .clean_exit = 1,
                                .cpus = {0, 1},
                                .fn = pingpong ? ice_pp_party : ice_tput_party,
                                .arg = a};
        rc = bench_run_parties(sh, &run);
    }
    if (rc < 0) {
        if (sh->res[0].err || sh->res[1].err)
            bench_row_fail_from(&row, sh, 2, rc);
        else
            bench_row_fail_from(&row, outer, 1, rc);
    } else if (pingpong) {
        if (sh->res[0].nsamples == 0)
            bench_row_fail_from(&row, sh, 2, -EIO);
        else
            bench_row_latency(&row, samples, sh->res[0].nsamples,
                              sh->res[0].t_end - sh->res[0].t_start);
    } else if (sh->res[1].msgs != sh->res[0].msgs || sh->res[0].msgs <= a->warm) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "subscriber got %llu messages of %llu",
                 (unsigned long long)sh->res[1].msgs, (unsigned long long)sh->res[0].msgs);
    } else {
        bench_row_throughput(&row, sh->res[0].msgs - a->warm,
                             sh->res[1].t_end - sh->res[0].t_start);
        if (zc) row.mb_per_s = -1;
    }
out:
    bench_emit(&row);
    bench_shm_free(a, sizeof(*a));
    bench_shm_free(samples, sbytes);
    bench_shared_free(sh);
    bench_shared_free(outer);
}

void bench_iceoryx_tput(int zc, size_t n)
{
    ice_case(BENCH_PROCS, zc, n, 0);
}

void bench_iceoryx_pingpong(enum bench_mode mode, int zc, size_t n)
{
    ice_case(mode, zc, n, 1);
}

#else /* !WEIR_BENCH_HAVE_ICEORYX */

int bench_have_iceoryx(void)
{
    return 0;
}

static void ice_missing(const char *name, size_t n)
{
    static int noted;
    struct bench_row row;
    bench_row_init(&row, name, "iceoryx", n, 1, 0);
    if (!bench_begin(&row)) return;
    (void)ice_skip;
    if (!noted++)
        bench_note("iceoryx baselines skipped: weir-bench was built without the iceoryx C binding");
}

void bench_iceoryx_tput(int zc, size_t n)
{
    ice_missing(zc ? "tput.proc.zc" : "tput.proc.read", n);
}

void bench_iceoryx_pingpong(enum bench_mode mode, int zc, size_t n)
{
    ice_missing(mode == BENCH_THREADS ? (zc ? "pingpong.thr.zc" : "pingpong.thr.read")
                                      : (zc ? "pingpong.proc.zc" : "pingpong.proc.read"),
                n);
}

#endif
