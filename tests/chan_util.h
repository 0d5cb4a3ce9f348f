/* SPDX-License-Identifier: MIT */
/*
 * tests/chan_util.h - helpers shared by the channel tests.
 *
 * Everything here is static inline so each test program gets its own copy
 * and unused helpers cost nothing. Conventions:
 *  - every blocking weir call in a test takes a timeout (TMO) so that a bug
 *    makes a test fail, never hang;
 *  - forked children never touch Criterion: they report through their exit
 *    status and stderr (CCHECK) and leave with _exit();
 *  - threads never call cr_assert: they record the first failure in a
 *    buffer that the main thread asserts on.
 */
#ifndef WEIR_TESTS_CHAN_UTIL_H
#define WEIR_TESTS_CHAN_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weir/chan.h>
#include <weir/common.h>
#include <weir/stats.h>
#include "heap_check.h"

#define TMO 10000 /* ms: bound of every blocking call that should succeed */

/* ---- time ---------------------------------------------------------------- */

static inline uint64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double t_ms_since(uint64_t t0)
{
    return (double)(t_now_ns() - t0) / 1e6;
}

static inline void t_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- names --------------------------------------------------------------- */

/* A channel name unique to this test process: "wt<pid>_<tag>". */
static inline const char *t_name(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "wt%d_%s", (int)getpid(), tag);
    return buf;
}

/* 1 if /dev/shm/weir.<name> exists. */
static inline int t_shm_exists(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/weir.%s", name);
    return stat(path, &st) == 0;
}

/* ---- payload patterns ---------------------------------------------------- */

static inline uint8_t t_pat_byte(uint64_t seq, size_t i)
{
    uint64_t x = seq * 0x9E3779B97F4A7C15ull + (uint64_t)i * 0x100000001B3ull;
    return (uint8_t)(x ^ (x >> 29) ^ (x >> 47));
}

static inline void t_fill(void *p, size_t len, uint64_t seq)
{
    uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        b[i] = t_pat_byte(seq, i);
}

/* -1 if p holds the pattern of message seq, else the first bad index. */
static inline long t_check(const void *p, size_t len, uint64_t seq)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != t_pat_byte(seq, i))
            return (long)i;
    return -1;
}

/* A deterministic pseudo-random length in 0..max for message seq. */
static inline size_t t_len_for(uint64_t seq, size_t max)
{
    uint64_t x = (seq + 1) * 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return (size_t)(x % (max + 1));
}

/* ---- FNV-1a 64, eight bytes at a time (fast enough for the stress tests) - */

#define T_FNV_OFF 0xcbf29ce484222325ull
#define T_FNV_PRIME 0x100000001b3ull

static inline uint64_t t_fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h ^= w;
        h *= T_FNV_PRIME;
    }
    for (; i < len; i++) {
        h ^= b[i];
        h *= T_FNV_PRIME;
    }
    return h;
}

static inline uint64_t t_fnv_u64(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= T_FNV_PRIME;
    return h;
}

/* ---- failure text for threads and children -------------------------------- */

struct t_fail {
    char text[600];
};

static inline void t_failf(struct t_fail *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void t_failf(struct t_fail *f, const char *fmt, ...)
{
    if (f->text[0])
        return; /* keep the first failure */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->text, sizeof f->text, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof f->text - 1)
        snprintf(f->text + n, sizeof f->text - (size_t)n, " [weir_errmsg: %s]", weir_errmsg());
}

/* In a forked child: report and leave with status 1 on a failed check. */
#define CCHECK(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child %d: %s:%d: check failed: %s: ", (int)getpid(), __FILE__,       \
                    __LINE__, #cond);                                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [weir_errcode %d, weir_errmsg: %s]\n", weir_errcode(),              \
                    weir_errmsg());                                                                \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* ---- pipes with timeouts --------------------------------------------------- */

/* Read exactly n bytes within timeout_ms; 0, or -1 on timeout/EOF/error. */
static inline int t_read_full(int fd, void *buf, size_t n, int timeout_ms)
{
    uint8_t *b = buf;
    size_t got = 0;
    uint64_t deadline = t_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (got < n) {
        uint64_t now = t_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)((deadline - now) / 1000000ull) + 1;
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static inline int t_write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *b = buf;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/*
 * Wait for child pid within timeout_ms. Returns its wait status, or -1 if
 * it did not exit in time (it is then killed and reaped).
 */
static inline int t_wait_child(pid_t pid, int timeout_ms)
{
    uint64_t deadline = t_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        if (t_now_ns() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        t_sleep_ms(2);
    }
}

static inline const char *t_status_str(int st, char *buf, size_t n)
{
    if (st == -1)
        snprintf(buf, n, "did not exit in time (killed)");
    else if (WIFEXITED(st))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, n, "wait status 0x%x", st);
    return buf;
}

/* ---- leak accounting: fds, /dev/shm/weir.* entries, shared mappings ------- */

#define T_MAX_SHM 256

struct t_leak_base {
    int nfd;
    int nmaps;
    int nshm;
    char shm[T_MAX_SHM][256];
};

/* count() once it equals want (-1: any) or holds still for hold_ms, at
 * most max_ms: a library may close its fds in a thread of its own a moment
 * after the call that frees them (libzmq's reaper). */
static inline int t_settled(int (*count)(void), int want, int hold_ms, int max_ms)
{
    uint64_t t0 = t_now_ns(), ts = t0;
    int n = count();
    while (n != want && t_ms_since(ts) < hold_ms && t_ms_since(t0) < max_ms) {
        t_sleep_ms(5);
        int m = count();
        if (m != n) {
            n = m;
            ts = t_now_ns();
        }
    }
    return n;
}

static inline int t_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Mappings of memfds and of /dev/shm/weir.* objects (the channel's segments). */
static inline int t_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "/memfd:") || strstr(line, "/dev/shm/weir."))
            n++;
    fclose(f);
    return n;
}

static inline int t_list_shm(char (*names)[256], int max)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "weir.", 5) != 0)
            continue;
        if (n < max)
            snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n < max ? n : max;
}

static inline void t_leak_snapshot(struct t_leak_base *b)
{
    b->nfd = t_count_fds();
    b->nmaps = t_count_maps();
    b->nshm = t_list_shm(b->shm, T_MAX_SHM);
}

static inline int t_in_base(const struct t_leak_base *b, const char *name)
{
    for (int i = 0; i < b->nshm; i++)
        if (strcmp(b->shm[i], name) == 0)
            return 1;
    return 0;
}

/*
 * Compare with the snapshot. Returns 0 if nothing leaked, else prints what
 * leaked to stderr and returns -1. Entries under /dev/shm that carry this
 * process's tag (every channel a test creates is named "wt<pid>_...") are
 * ours; other new weir.* entries belong to another program running at the
 * same time and are only reported.
 */
static inline int t_leak_check(const struct t_leak_base *b)
{
    int bad = 0;
    int nfd = -1, nmaps = -1;
    for (int i = 0; i < 100; i++) { /* 1 s for threads that are still exiting */
        nfd = t_count_fds();
        nmaps = t_count_maps();
        if (nfd == b->nfd && nmaps == b->nmaps)
            break;
        t_sleep_ms(10);
    }
    if (nfd != b->nfd) {
        fprintf(stderr, "LEAK: %d fds open at the end of the test, %d at the start\n", nfd, b->nfd);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "ls -l /proc/%d/fd >&2", (int)getpid());
        (void)!system(cmd);
        bad = 1;
    }
    if (nmaps != b->nmaps) {
        fprintf(stderr, "LEAK: %d memfd or /dev/shm/weir.* mappings at the end, %d at the start\n",
                nmaps, b->nmaps);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "grep -E '/memfd:|/dev/shm/weir\\.' /proc/%d/maps >&2",
                 (int)getpid());
        (void)!system(cmd);
        bad = 1;
    }
    char tag[32];
    snprintf(tag, sizeof tag, "weir.wt%d_", (int)getpid());
    for (int tries = 0;; tries++) {
        static char now[T_MAX_SHM][256];
        int n = t_list_shm(now, T_MAX_SHM);
        int ours = 0, foreign = 0;
        for (int i = 0; i < n; i++) {
            if (t_in_base(b, now[i]))
                continue;
            if (strncmp(now[i], tag, strlen(tag)) == 0)
                ours++;
            else
                foreign++;
        }
        if (ours) {
            for (int i = 0; i < n; i++)
                if (!t_in_base(b, now[i]) && strncmp(now[i], tag, strlen(tag)) == 0)
                    fprintf(stderr, "LEAK: /dev/shm/%s was left behind\n", now[i]);
            bad = 1;
            break;
        }
        if (foreign && tries >= 100) {
            /* not named after this test: another program's channel; report only */
            for (int i = 0; i < n; i++)
                if (!t_in_base(b, now[i]))
                    fprintf(stderr, "note: /dev/shm/%s appeared during the test (not ours)\n",
                            now[i]);
            break;
        }
        if (!foreign)
            break;
        t_sleep_ms(10);
    }
    return bad ? -1 : 0;
}

/* ---- stats --------------------------------------------------------------- */

static inline const struct weir_chan_reader_stats *t_reader_stats(const struct weir_chan_stats *st,
                                                                  int id)
{
    for (unsigned i = 0; i < st->nreaders && i < WEIR_CHAN_MAX_READERS; i++)
        if (st->readers[i].id == id)
            return &st->readers[i];
    return NULL;
}

/*
 * The suites' fixture: snapshot fds, mappings and /dev/shm before a test and
 * abort (Criterion ignores assertions in .fini; a crash fails the run) if
 * the test left anything behind.
 */
static struct t_leak_base g_base;

static inline void leak_init(void)
{
    t_leak_snapshot(&g_base);
}

static inline void leak_fini(void)
{
    if (t_leak_check(&g_base) != 0) {
        fprintf(stderr, "test leaked resources (see LEAK lines above)\n");
        abort();
    }
    t_heap_check();
}

#endif
