/* SPDX-License-Identifier: MIT */
/*
 * channels/atomics.h - every atomic operation weir's shared memory uses,
 * named by the ordering it provides (after liburing's barrier.h). Each call
 * site comments which other access it pairs with.
 */
#ifndef WEIR_ATOMICS_H
#define WEIR_ATOMICS_H

#include <stdint.h>

#define weir__load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define weir__load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define weir__store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define weir__store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define weir__fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define weir__fetch_sub(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define weir__fetch_or(p, v) __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define weir__fetch_and(p, v) __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
#define weir__cas(p, expp, v)                                                                      \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define weir__exchange(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
/* Reference counts: the decrement that reaches 0 must see every access of
 * the other holders (acquire) and publish this holder's (release). */
#define weir__add_fetch_acq_rel(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define weir__sub_fetch_acq_rel(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_ACQ_REL)
/* Single-writer counters that other threads or processes read at any time
 * (stats): one writer, so a relaxed load + relaxed store is an exact
 * increment, with no locked instruction on the hot path. */
#define weir__counter_add(p, v) weir__store_relaxed((p), weir__load_relaxed(p) + (v))

/*
 * Full fence: orders an earlier store before a later load (the only
 * reordering x86 does). Used in the Dekker pairs "publish, then look for a
 * sleeper" / "announce sleep, then re-check".
 */
static inline void weir__fence_seq_cst(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void weir__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif
