/* SPDX-License-Identifier: MIT */
/*
 * tests/heap_check.h - t_heap_check(), for the suites' .fini fixtures.
 */
#ifndef WEIR_TESTS_HEAP_CHECK_H
#define WEIR_TESTS_HEAP_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/*
 * Heap leaks (AddressSanitizer builds): LeakSanitizer's own report runs when
 * the process exits, after Criterion has counted the test as passed, so it
 * is only printed. Here a fixture asks for it while the test still counts:
 * memory no live pointer reaches is reported and the test aborts. Blocks a
 * global or a live thread's TLS holds (caches) are reachable, not leaks.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif
static inline void t_heap_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
    if (__lsan_do_recoverable_leak_check() != 0) {
        fprintf(stderr, "LEAK: heap memory no pointer reaches (LeakSanitizer report above)\n");
        abort();
    }
#endif
}

#endif
