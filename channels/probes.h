/* SPDX-License-Identifier: MIT */
/*
 * channels/probes.h - USDT probes of weir (provider "weir"), for perf,
 * bpftrace and SystemTap.
 *
 * Design notes. Each probe is a <sys/sdt.h> marker: one `nop` in the code
 * plus a note in .note.stapsdt (`readelf -n libweir.so` lists them). Every
 * probe has a semaphore (a 16-bit counter in .probes, defined once in
 * channels/probes.c) that a tracer increments while attached:
 * WEIR_PROBE_ON(name) reads it, so an argument that costs something to
 * compute is computed only when somebody listens. A build without
 * <sys/sdt.h> (meson: WEIR_HAVE_SDT 0) compiles every probe to nothing.
 *
 * The probes and their arguments (strings are NUL-terminated pointers):
 *   chan_reserve (chan, seq, len)            writer got a slot for message seq
 *   chan_commit  (chan, seq, len, flags)     message seq published (flags 1: error record)
 *   chan_read    (chan, reader, seq, len)    reader holds message seq
 *   chan_release (chan, reader, seq)         reader gave message seq back
 *   writer_block (chan, seq)                 ring full: writer starts waiting
 *   writer_wake  (chan, seq, waited_ns, rc)  ... and stops
 *   reader_block (chan, reader, seq)         no message: reader starts waiting
 *   reader_wake  (chan, reader, seq, waited_ns, rc)
 *   call_begin   (actor, method, exec)       a method starts
 *   call_end     (actor, method, exec, failed)
 *   execution_submit (graph, exec)           the driver committed an execution's arguments
 *   execution_done   (graph, exec, failed)   the driver collected its outputs
 *   link_send    (channel, seq, bytes)       a link sent a batch: first seq, its bytes
 *   link_recv    (channel, seq, bytes)       a link received message seq
 *
 * The batch calls of a channel (weir_chan_reserve_n, commit_n, read_n,
 * release_n) fire the chan_* probe of each message of the batch, in a loop
 * that runs only while the probe's semaphore is raised (WEIR_PROBE_ON), so
 * an untraced batch pays one load, not a probe per message. Tracers that
 * honour USDT semaphores (bpftrace, SystemTap, perf with kernel >= 4.20)
 * see them; the single-message calls fire theirs unconditionally.
 */
#ifndef WEIR_PROBES_H
#define WEIR_PROBES_H

#include "weir_config.h"

/* X-macro of every probe: the semaphores (probes.c) and the tests use it. */
#define WEIR__PROBE_LIST(X)                                                                        \
    X(chan_reserve)                                                                                \
    X(chan_commit)                                                                                 \
    X(chan_read)                                                                                   \
    X(chan_release)                                                                                \
    X(writer_block)                                                                                \
    X(writer_wake)                                                                                 \
    X(reader_block)                                                                                \
    X(reader_wake)                                                                                 \
    X(call_begin)                                                                                  \
    X(call_end)                                                                                    \
    X(execution_submit)                                                                            \
    X(execution_done)                                                                              \
    X(link_send)                                                                                   \
    X(link_recv)

#if WEIR_HAVE_SDT
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define WEIR__PROBE_SEMA_DECL(n) extern unsigned short weir_##n##_semaphore __attribute__((visibility("hidden")));
WEIR__PROBE_LIST(WEIR__PROBE_SEMA_DECL)
#undef WEIR__PROBE_SEMA_DECL

/* Non-zero while a tracer is attached to probe n. */
#define WEIR_PROBE_ON(n) __builtin_expect(__atomic_load_n(&weir_##n##_semaphore, __ATOMIC_RELAXED), 0)
#define WEIR_PROBE1(n, a) STAP_PROBE1(weir, n, a)
#define WEIR_PROBE2(n, a, b) STAP_PROBE2(weir, n, a, b)
#define WEIR_PROBE3(n, a, b, c) STAP_PROBE3(weir, n, a, b, c)
#define WEIR_PROBE4(n, a, b, c, d) STAP_PROBE4(weir, n, a, b, c, d)
#define WEIR_PROBE5(n, a, b, c, d, e) STAP_PROBE5(weir, n, a, b, c, d, e)
#else
#define WEIR_PROBE_ON(n) 0
#define WEIR_PROBE1(n, a) ((void)0)
#define WEIR_PROBE2(n, a, b) ((void)0)
#define WEIR_PROBE3(n, a, b, c) ((void)0)
#define WEIR_PROBE4(n, a, b, c, d) ((void)0)
#define WEIR_PROBE5(n, a, b, c, d, e) ((void)0)
#endif

#endif
