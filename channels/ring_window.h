/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_window.h - a reader mode of the ring that holds a window of
 * messages and releases them later, in order ("up to seq") or one by one
 * out of order. Used by a link's sender (send straight from the slots,
 * release on ack) and by the driver's zero-copy results (engine/driver.c:
 * a result freed in any order releases its message with release_one).
 *
 * One registered reader id per window; the window replaces the plain
 * read/release calls for that id (do not mix them). Two threads may use a
 * window at once: one that takes messages (next, rewind) and one that
 * releases (release_upto, release_one); any thread may kick.
 */
#ifndef WEIR_RING_WINDOW_H
#define WEIR_RING_WINDOW_H

#include <stdint.h>

#include <weir/chan.h>

#include "channels/chan_internal.h"

struct weir__window {
    weir_chan *c;
    struct weir__chan_ctl *ctl;
    int reader;
    uint32_t epoch;
    unsigned depth;
    /* taker's side */
    uint64_t next;     /* next message next() returns (atomic: a releaser reads it) */
    uint64_t avail;    /* cached write_seq */
    unsigned gen;      /* generation holding message `next` */
    unsigned idx;      /* next % depth */
    struct weir__gen_view gv;
    uint32_t spin_ns;
    int kicks;         /* 1 (open's default): any rd_futex bump without a message ends a
                          wait with -EINTR (a kick); 0: waits end only on a message, close,
                          deregistration or timeout (set it before the first wait) */
    /* releaser's side */
    uint64_t released; /* messages released (atomic: the taker reads it) */
    uint64_t *done;    /* out-of-order releases: bit (seq % depth) for released < seq */
    unsigned marks;    /* bits set in done (0: an in-order release is one store) */
};

/* Take over registered reader `reader` of c (registered by this handle) at
 * its current position. 0, or -EINVAL / -ENOMEM with the reason. */
int weir__window_open(struct weir__window *w, weir_chan *c, int reader);

/* Release nothing, free the window's memory (the reader stays registered). */
void weir__window_fini(struct weir__window *w);

/*
 * The next message, held in the window until released; data points into
 * the slot and stays valid until the message is released. Waits up to
 * timeout_ms (spin, then sleep on the channel's futex). 0; -ETIMEDOUT;
 * -EPIPE once the channel is closed and every message was taken; -EINVAL
 * if the reader was deregistered. With w->kicks set, a kick makes a
 * sleeping call return -EINTR (so can a writer's wake-up that lands after
 * the message was taken: callers that need no kick clear w->kicks).
 */
int weir__window_next(struct weir__window *w, weir_chan_msg *m, int timeout_ms);

/* Next message without waiting: 1 and *m, 0 if none yet, or -EPIPE / -EINVAL. */
int weir__window_poll(struct weir__window *w, weir_chan_msg *m);

/* Would poll return non-zero (a message, the close, a deregistration)?
 * Takes nothing: a waiter's check from the taker's thread. */
int weir__window_ready(struct weir__window *w);

/* Has the channel been closed with every message taken (poll would say
 * -EPIPE)? Takes nothing: the taker's thread. */
int weir__window_drained(struct weir__window *w);

/* Move the taker back to seq (released <= seq <= next): next() returns
 * message seq again (a link resending after a reconnect). 0 or -EINVAL. */
int weir__window_rewind(struct weir__window *w, uint64_t seq);

/* Release every message before seq (seq <= next taken). 0, or -EINVAL for a
 * seq past what was taken or below what was released already. */
int weir__window_release_upto(struct weir__window *w, uint64_t seq, uint64_t taken);

/* Release one message out of order; the reader's position moves past the
 * contiguous released prefix. 0, or -EINVAL (already released / not taken). */
int weir__window_release_one(struct weir__window *w, uint64_t seq, uint64_t taken);

/* Messages released so far (any thread). */
uint64_t weir__window_released(const struct weir__window *w);

/* Messages taken so far, i.e. the `taken` bound of the release calls (any
 * thread; the taker's own count, so a releaser on another thread may pass
 * it to release_one / release_upto). */
uint64_t weir__window_taken(const struct weir__window *w);

/* Make a sleeping next() return -EINTR soon (any thread). */
void weir__window_kick(struct weir__window *w);

#endif
