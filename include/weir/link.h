/* SPDX-License-Identifier: MIT */
/*
 * weir/link.h - a channel whose readers are on another machine (implemented
 * in channels/: link.c on link_conn.c, frame.c, ring_window.c, the
 * transports tcp_uring.c behind transport.h).
 *
 * A link carries every message of a local channel to a channel in another
 * process (usually on another machine) over TCP. The sending end is one
 * registered reader of its channel c; the receiving end is the writer of
 * its channel w, which any number of local readers share. The sender sends
 * straight from c's slots and releases a slot only once the receiver has
 * acknowledged it, so the writer of c blocks when the slowest reader of w
 * lags by about depth(c) + credits messages: bounded memory end to end.
 *
 * A connection dropped while both processes live is re-dialled by the
 * sender and resumes from the last acknowledged message (nothing lost,
 * nothing twice). A peer silent or unreachable for longer than timeout_ms
 * fails the link: w gets an error record naming the peer and is closed,
 * c's reader is deregistered, and weir_link_status() returns the reason.
 *
 * Threads: each link runs its own threads; the calls below may be made
 * from any thread, but weir_link_free() only once and with no other call
 * on the same link running.
 */
#ifndef WEIR_LINK_H
#define WEIR_LINK_H

#include <weir/chan.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEIR_TRANSPORT_URING 0 /* io_uring over TCP (channels/tcp_uring.c); the default */
#define WEIR_TRANSPORT_ZMQ 1   /* ZeroMQ (channels/tcp_zmq.c) */

#define WEIR_LINK_DEFAULT_TIMEOUT_MS 5000

typedef struct weir_link weir_link;

typedef struct weir_link_opts {
    int transport;       /* WEIR_TRANSPORT_URING (default) or WEIR_TRANSPORT_ZMQ */
    const char *token;   /* shared secret both ends must present; NULL: $WEIR_TOKEN, else none */
    unsigned credits;    /* messages on the wire at once; 0: the receiving channel's depth
                            (never more than its free slots: the receiver never waits) */
    int timeout_ms;      /* connect bound, and how long a silent or cut peer is waited for
                            (a cut shorter than this resumes with nothing lost);
                            0: WEIR_LINK_DEFAULT_TIMEOUT_MS */
    unsigned flags;      /* WEIR_LINK_* below; 0: none */
} weir_link_opts;

/* weir_link_opts.flags: send with io_uring SEND_ZC (zero-copy from c's slots).
 * Pays only where the NIC really does zero-copy; on loopback the kernel copies
 * anyway and it halves 1 MiB throughput (PEERS.md), so it is off by default.
 * Ignored by the ZeroMQ transport. */
#define WEIR_LINK_SEND_ZC 0x1u

/*
 * Receiving end. Listen on endpoint ("tcp://ADDR:PORT"; PORT 0 picks a free
 * port; only ADDR is bound) and write every message received into w, whose
 * writer this link becomes (no other thread may write w while the link
 * lives). The channel identity a sender must present is weir_chan_name(w).
 * o may be NULL (defaults). The link borrows w: w must outlive the link.
 * Returns the link (free with weir_link_free), or NULL with the reason.
 */
WEIR_API weir_link *weir_link_listen(weir_chan *w, const char *endpoint, const weir_link_opts *o);

/*
 * Sending end. Register one reader of c and forward every message, in
 * order, exactly once, to the receiving end at endpoint, presenting
 * weir_chan_name(c) as the channel identity. Waits up to timeout_ms for the
 * first connection; NULL with the reason if it cannot be made or is
 * refused (wrong token, wrong channel, another sender already connected).
 * The link borrows c: c must outlive the link.
 */
WEIR_API weir_link *weir_link_connect(weir_chan *c, const char *endpoint,
                                      const weir_link_opts *o);

/* "tcp://ADDR:PORT" with the real port. Owned by the link. */
WEIR_API const char *weir_link_endpoint(const weir_link *l);

/*
 * 0 while running (or, on the receiving end, waiting for a sender);
 * -EPIPE once the stream ended cleanly (c closed and everything
 * acknowledged); else the failure (-ETIMEDOUT peer silent, -ECONNRESET,
 * -ECONNREFUSED, -EPROTO, ...), whose reason this call copies into
 * weir_errmsg(). On a sending link that failed, c's reader is already
 * deregistered when this reports the failure (the call waits the moment,
 * at most 200 ms, its send thread takes to let it go).
 */
WEIR_API int weir_link_status(const weir_link *l);

/*
 * Stop the link's threads and release everything. Never blocks past the
 * link's timeout. A sending link that is freed before its stream ended
 * deregisters its reader of c; a receiving link leaves w open (the caller
 * owns w). Returns the final status (as weir_link_status). l may be NULL (0).
 */
WEIR_API int weir_link_free(weir_link *l);

/* Per-link counters, a snapshot (like weir_chan_stats). */
struct weir_link_stats {
    char endpoint[80];       /* as weir_link_endpoint */
    char peer[80];           /* "ADDR:PORT" of the current or last peer, "" if none yet */
    int sending;             /* 1: sending end, 0: receiving end */
    int status;              /* as weir_link_status */
    uint64_t messages;       /* messages sent (sender) / committed into w (receiver) */
    uint64_t bytes;          /* payload bytes of those */
    uint64_t frames;         /* frames sent or received, control frames included */
    uint64_t batches;        /* transport sends (each carries one or more frames) */
    uint64_t credit_stalls;  /* times the sender had data but no credit */
    uint64_t acked;          /* messages acknowledged by the receiver */
    uint64_t reconnects;     /* connections after the first one */
    uint64_t refused;        /* connections or frames refused (bad input) */
    uint64_t last_rtt_ns;    /* last heartbeat round trip, 0 if none yet */
    char last_refusal[256];  /* reason of the last refusal, "" if none */
};

/* Fill *st. 0, or -EINVAL for a NULL argument. */
WEIR_API int weir_link_stats(const weir_link *l, struct weir_link_stats *st);

#ifdef __cplusplus
}
#endif
#endif
