/* SPDX-License-Identifier: MIT */
/* channels/barrier.h - asymmetric store->load barriers (see barrier.c). */
#ifndef WEIR_BARRIER_H
#define WEIR_BARRIER_H

#include "channels/atomics.h"

extern int weir__asym_barrier;

/* Register this process for heavy barriers; idempotent. Call on every cold entry. */
void weir__barrier_init(void);

/* Slow side: a full barrier on this thread and on every running thread of
 * every process that uses weir channels. */
void weir__heavy_barrier(void);

/* Fast side: pairs with weir__heavy_barrier(); free when membarrier works. */
static inline void weir__light_barrier(void)
{
    if (__builtin_expect(weir__load_relaxed(&weir__asym_barrier), 1))
        __asm__ __volatile__("" ::: "memory");
    else
        weir__fence_seq_cst();
}

#endif
