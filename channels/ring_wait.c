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

#include <weir/stats.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/chan_internal.h"
#include "channels/ring_handle.h"
#include "channels/wait.h"

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
        if (now - t0 < spin)
            continue;
        spinning = 0;
        if (now - t0 < spin + WEIR__YIELD_NS) {
            sched_yield();
            continue;
        }
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
