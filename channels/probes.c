/* SPDX-License-Identifier: MIT */
/*
 * channels/probes.c - the semaphores of the USDT probes (channels/probes.h).
 *
 * A tracer that attaches to probe weir:NAME increments weir_NAME_semaphore
 * (in section .probes, as <sys/sdt.h> expects) and decrements it when it
 * leaves; the code reads it through WEIR_PROBE_ON(NAME).
 */
#include "channels/probes.h"

#if WEIR_HAVE_SDT
#define WEIR__PROBE_SEMA_DEF(n)                                                                    \
    unsigned short weir_##n##_semaphore __attribute__((section(".probes"), used));
WEIR__PROBE_LIST(WEIR__PROBE_SEMA_DEF)
#undef WEIR__PROBE_SEMA_DEF
#else
/* ISO C forbids an empty translation unit. */
typedef int weir__no_probes;
#endif
