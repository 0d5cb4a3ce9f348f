/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_wait.c - the one wait loop of the ring: spin, then yield,
 * then sleep on a futex word in the segment (policy and budgets: wait.h).
 *
 * Design notes. Every blocking call of the channel (a writer waiting for a
 * free slot, a reader waiting for a message, anyone waiting for readers to
 * register) is this loop around a condition (w->ready). Sleeping is the
 * Dekker half of pair 2 (ring_io.c): announce (sleepers++), heavy barrier,
 * load the futex word, re-check the condition, sleep only if it still
 * fails. The waking side publishes its progress, issues a light barrier and
 * wakes only if it sees an announced sleeper, then bumps the futex word, so
 * either the sleeper sees the progress in its re-check or the futex word has
 * changed and FUTEX_WAIT returns at once. No wake-up is lost; nobody calls
 * futex() unless someone sleeps.
 *
 * A sleep is bounded by w->max_sleep_ns so that checks no wake-up can
 * announce (a writer process that died) run within a bounded time.
 *
 * weir__flag_wait/raise are the plain case outside a ring: one word that
 * goes 0 -> 1 once; the raiser always wakes (it is rare: a teardown).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <weir/stats.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/chan_internal.h"
#include "channels/ring_handle.h"
#include "channels/wait.h"

/* The spin-then-yield part of the policy (wait.h), after a round of polls
 * at `now` of a wait that began at t0: 1 when the caller polls again (it
 * spun, or yielded, and *spinning is cleared past the spin budget), 0 when
 * it is time to sleep. */
static inline int spin_or_yield(uint64_t now, uint64_t t0, uint32_t spin, int *spinning)
{
    if (now - t0 < spin)
        return 1;
    *spinning = 0;
    if (now - t0 < spin + WEIR__YIELD_NS) {
        sched_yield();
        return 1;
    }
    return 0;
}

int weir__ring_wait(struct weir__ring_waiter *w, int timeout_ms, uint64_t *waited_ns)
{
    uint64_t t0 = weir_now_ns();
    uint64_t deadline = weir__deadline(t0, timeout_ms);
    uint32_t spin = *w->spin_ns;
    int spinning = 1;
    int ret;
    for (;;) {
        for (int k = 0; k < 64; k++) {
            if ((ret = w->ready(w)) != 0)
                goto done;
            weir__cpu_relax();
        }
        uint64_t now = weir_now_ns();
        if (now >= deadline) {
            ret = w->timed_out(w, timeout_ms);
            goto done;
        }
        if (spin_or_yield(now, t0, spin, &spinning))
            continue;
        if (w->before_sleep && (ret = w->before_sleep(w)) < 0)
            goto done;
        /* Announce, re-check, sleep. */
        weir__fetch_add(w->sleepers, 1);
        weir__heavy_barrier();
        uint32_t v = weir__load_acquire(w->futex);
        ret = w->ready(w);
        if (ret == 0) {
            uint64_t left = deadline == UINT64_MAX ? UINT64_MAX : deadline - now;
            if (left > w->max_sleep_ns)
                left = w->max_sleep_ns;
            weir__futex_wait(w->futex, v, left);
        }
        weir__fetch_sub(w->sleepers, 1);
        if (ret != 0)
            goto done;
    }
done:
    if (ret > 0)
        ret = 0;
    *w->spin_ns = weir__spin_adapt(spin, spinning && ret == 0);
    *waited_ns = weir_now_ns() - t0;
    return ret;
}

/* futex_waitv(2) works here: 1, or 0 once it failed with something else
 * than a wake-up, a changed word or the timeout (ENOSYS on a kernel before
 * 5.16, EPERM under a seccomp filter...): from then on waits nap and poll. */
static int waitv_ok = 1;

/* futex_waitv over words with the values seen before the re-check, bounded
 * by an absolute CLOCK_MONOTONIC deadline. */
static void sleep_many(const struct weir__wait_word *words, const uint32_t *vals, unsigned n,
                       uint64_t left_ns)
{
#ifdef SYS_futex_waitv
    struct futex_waitv fw[WEIR__WAIT_MANY_MAX];
    for (unsigned i = 0; i < n; i++)
        fw[i] = (struct futex_waitv){.val = vals[i], .uaddr = (uintptr_t)words[i].futex,
                                     .flags = FUTEX_32};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + left_ns;
    ts.tv_sec = (time_t)(t / 1000000000ull);
    ts.tv_nsec = (long)(t % 1000000000ull);
    if (syscall(SYS_futex_waitv, fw, n, 0, &ts, CLOCK_MONOTONIC) >= 0 || errno == EAGAIN ||
        errno == ETIMEDOUT || errno == EINTR)
        return;
    weir__store_relaxed(&waitv_ok, 0);
#else
    (void)words, (void)vals, (void)n, (void)left_ns;
    weir__store_relaxed(&waitv_ok, 0);
#endif
}

void weir__wait_many_force_poll(void)
{
    weir__store_relaxed(&waitv_ok, 0);
}

int weir__wait_many(const struct weir__wait_word *words, unsigned n, int (*ready)(void *arg),
                    void *arg, uint32_t *spin_ns, int timeout_ms)
{
    if (n > WEIR__WAIT_MANY_MAX)
        n = WEIR__WAIT_MANY_MAX;
    uint64_t t0 = weir_now_ns();
    uint64_t deadline = weir__deadline(t0, timeout_ms);
    uint32_t spin = *spin_ns;
    int spinning = 1, ret;
    uint32_t vals[WEIR__WAIT_MANY_MAX];
    for (;;) {
        for (int k = 0; k < 16; k++) {
            if ((ret = ready(arg)) != 0)
                goto done;
            weir__cpu_relax();
        }
        uint64_t now = weir_now_ns();
        if (now >= deadline) {
            ret = -ETIMEDOUT;
            goto done;
        }
        if (spin_or_yield(now, t0, spin, &spinning))
            continue;
        if (!weir__load_relaxed(&waitv_ok)) {
            /* No futex_waitv: poll every 100 us (announcing nothing, so no
             * waker calls futex for us). */
            uint64_t left = deadline - now;
            struct timespec nap = {0, left < 100000 ? (long)left : 100000L};
            nanosleep(&nap, NULL);
            continue;
        }
        /* Announce on every word, re-check, sleep on all of them. */
        for (unsigned i = 0; i < n; i++)
            weir__fetch_add(words[i].sleepers, 1);
        weir__heavy_barrier();
        for (unsigned i = 0; i < n; i++)
            vals[i] = weir__load_acquire(words[i].futex);
        ret = ready(arg);
        if (ret == 0)
            sleep_many(words, vals, n, deadline == UINT64_MAX ? 1000000000ull : deadline - now);
        for (unsigned i = 0; i < n; i++)
            weir__fetch_sub(words[i].sleepers, 1);
        if (ret != 0)
            goto done;
    }
done:
    if (ret > 0)
        ret = 0;
    *spin_ns = weir__spin_adapt(spin, spinning && ret == 0);
    return ret;
}

void weir__bell_ring(uint32_t *futex, uint32_t *sleepers)
{
    weir__fetch_add(futex, 1);
    /* Pairs with the sleeper's announce + heavy barrier + re-check. */
    weir__light_barrier();
    if (weir__load_relaxed(sleepers))
        weir__futex_wake_all(futex);
}

void weir__flag_wait(uint32_t *word)
{
    while (!weir__load_acquire(word))
        weir__futex_wait(word, 0, UINT64_MAX);
}

void weir__flag_raise(uint32_t *word)
{
    weir__store_release(word, 1u);
    weir__futex_wake_all(word);
}
