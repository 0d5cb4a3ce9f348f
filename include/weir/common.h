/* SPDX-License-Identifier: MIT */
/*
 * weir/common.h - conventions shared by every part of the public API.
 *
 * Every function returns 0 (or a non-negative count) on success and a
 * negative errno value on failure. Functions that return a pointer return
 * NULL on failure. In both cases the thread-local weir_errmsg() then holds
 * one line naming the object (graph, actor, method, channel, node) and the
 * problem, and weir_errcode() holds the negative errno.
 */
#ifndef WEIR_COMMON_H
#define WEIR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEIR_BUILDING)
#define WEIR_API __attribute__((visibility("default")))
#else
#define WEIR_API
#endif

#define WEIR_VERSION_MAJOR 0
#define WEIR_VERSION_MINOR 1

/*
 * The reason for the last failure of a weir call on this thread, as one
 * line of text ("channel 'prices': reader 3 released without a read").
 * The string is owned by weir and stays valid until the next weir call on
 * the same thread. Never NULL; "" if nothing failed yet.
 */
WEIR_API const char *weir_errmsg(void);

/*
 * The negative errno of the last failure of a weir call on this thread
 * (0 if none). Useful after a call that returns a pointer.
 */
WEIR_API int weir_errcode(void);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC); cheap (vDSO). */
WEIR_API uint64_t weir_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
