/* SPDX-License-Identifier: MIT */
/*
 * channels/wait.h - spin, then yield, then sleep on a process-shared futex.
 *
 * Design notes. On the machines weir targets a sleep/wake round costs about
 * 35 us (an idle vCPU halts through the hypervisor), a spin-detected
 * hand-off costs 0.1-2 us. So every wait first spins (pause instructions,
 * for an adaptive budget, below), then yields the CPU for WEIR__YIELD_NS (helps when
 * more threads are runnable than cores: the thread we wait for gets the
 * core), and only then sleeps. Sleeping uses the "announce, re-check,
 * sleep" protocol with a 32-bit futex word in the shared segment; the side
 * that makes progress wakes only when a sleeper was announced, so the fast
 * path makes no system call.
 */
#ifndef WEIR_WAIT_H
#define WEIR_WAIT_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "channels/atomics.h"

#define WEIR__SPIN_NS 5000u      /* initial spin budget of a waiter */
#define WEIR__SPIN_MAX_NS 20000u  /* the budget adapts between 0 and this */
#define WEIR__YIELD_NS 100000u    /* then 100 us of sched_yield, then sleep */

/*
 * Adaptive spinning (as glibc's adaptive mutexes do): each waiter keeps its
 * own spin budget. A wait that ended while spinning grows it; a wait that
 * had to yield or sleep halves it. With a core per party the budget stays
 * high and hand-offs take ~100 ns; with more parties than cores (the party
 * we wait for needs our core) it decays to nothing within a few waits and
 * the waiter yields at once instead of burning its time slice.
 */
static inline uint32_t weir__spin_adapt(uint32_t cur, int won_while_spinning)
{
    if (won_while_spinning) {
        uint32_t n = cur + (cur >> 2) + 256;
        return n > WEIR__SPIN_MAX_NS ? WEIR__SPIN_MAX_NS : n;
    }
    return cur >> 1;
}

static inline int weir__futex_wait(uint32_t *addr, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tsp = &ts;
    }
    /* Not FUTEX_PRIVATE: the word lives in memory shared between processes. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, val, tsp, NULL, 0);
    return r < 0 ? -errno : 0;
}

static inline void weir__futex_wake_all(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Deadline from a timeout in ms: UINT64_MAX for "forever". */
static inline uint64_t weir__deadline(uint64_t now, int timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    return now + (uint64_t)timeout_ms * 1000000ull;
}

#endif
