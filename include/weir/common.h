/* SPDX-License-Identifier: MIT */
/*
 * weir/common.h - conventions shared by every part of the public API
 * (errors: channels/err.c; the clock: channels/).
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

/*
 * Timeouts: one meaning everywhere. Every blocking call takes an
 * `int timeout_ms`:
 *   > 0  wait at most that many milliseconds, then fail with -ETIMEDOUT;
 *     0  do not wait: do what can be done at once, else -ETIMEDOUT;
 *    -1  (WEIR_FOREVER) wait without bound.
 * Anything below -1 is -EINVAL. Option structs (weir_chan_opts,
 * weir_compile_opts, weir_link_opts) follow the rule of every option field:
 * zero-filled means "not set", so a timeout_ms field left 0 takes the
 * documented default (WEIR_DEFAULT_TIMEOUT_MS); -1 and > 0 mean what they
 * mean for calls, and every wait that uses the field keeps that meaning
 * (a dag compiled with -1 waits at teardown for as long as its actors take).
 */
#define WEIR_FOREVER (-1)
#define WEIR_NOWAIT 0

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC); cheap (vDSO). */
WEIR_API uint64_t weir_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
