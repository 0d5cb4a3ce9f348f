/* SPDX-License-Identifier: MIT */
/*
 * channels/link.h - a link connection carrying many streams between two
 * endpoints (channels/link_conn.c). Internal: the public standalone link
 * (<weir/link.h>, channels/link.c) is the one-stream case on top of it, and
 * the multi-node compiler/engine puts every edge between two ranks on one
 * connection per transport.
 *
 * A connection is either a listener (the receiving end: one writer of a
 * local channel per stream) or a dialer (the sending end: one registered
 * reader of a local channel per stream). Both sides declare the same
 * streams before start: id (>= 1, at most WEIR__LINK_MAX_STREAMS per
 * connection) and the channel, whose weir_chan_name() is the identity the
 * two ends compare. HELLO lists every stream the dialer opens; the listener
 * refuses a HELLO naming a stream it does not carry, or missing one it
 * does, with a reason naming the stream. Each stream has its own sequence
 * numbers, credits, acks and status: a stalled stream (its receiving
 * channel's readers stop) stalls only itself, a stream whose channel closes
 * (with or without an error record) ends alone. A lost connection resumes
 * every stream at once; a connection lost past timeout_ms fails every
 * stream that has not ended.
 *
 * Threads: the calls below may be made from any thread; add_* only before
 * start, and weir__conn_free() once, with no other call on the connection
 * running.
 */
#ifndef WEIR_CHANNELS_LINK_H
#define WEIR_CHANNELS_LINK_H

#include <stdint.h>

#include <weir/chan.h>
#include <weir/link.h>

typedef struct weir__conn weir__conn;

/*
 * Receiving end: bind endpoint ("tcp://ADDR:PORT", PORT 0 picks one) now,
 * so weir__conn_endpoint() has the real port before start; accept nothing
 * until weir__conn_start(). o: as weir_link_opts (credits caps each
 * stream's grant; 0: the stream's channel depth). NULL with the reason.
 */
weir__conn *weir__conn_listen(const char *endpoint, const weir_link_opts *o);

/*
 * A port several receiving ends share: one socket (bound now, like
 * weir__conn_listen) and one acceptor thread for every listener made with
 * weir__conn_listen_on(), so a rank that receives from many ranks listens
 * once. The acceptor reads each new connection's HELLO (within the
 * timeout's hello bound) and hands the pipe to the started listener that
 * carries the first stream the HELLO opens; that listener judges it as if
 * it had accepted it (token, streams, one sender at a time, resume). A
 * HELLO that is garbage or opens no stream carried here is refused by the
 * port (weir__conn_port_refusals). Stream ids must therefore be unique
 * among the port's listeners. o: as for weir__conn_listen (transport,
 * timeout). NULL with the reason.
 */
typedef struct weir__conn_port weir__conn_port;
weir__conn_port *weir__conn_port_listen(const char *endpoint, const weir_link_opts *o);
/* "tcp://ADDR:PORT" with the real port. Owned by the port. */
const char *weir__conn_port_endpoint(const weir__conn_port *pt);
/* A receiving end on pt (no socket of its own; same transport as pt): then
 * add_recv_stream and start as for weir__conn_listen. NULL with the reason. */
weir__conn *weir__conn_listen_on(weir__conn_port *pt, const weir_link_opts *o);
/* Start accepting. 0, or the error with the reason. */
int weir__conn_port_start(weir__conn_port *pt);
/* Connections the port refused itself; the last one's reason into last. */
uint64_t weir__conn_port_refusals(const weir__conn_port *pt, char *last, size_t cap);
/* Stop accepting and free; its listeners go on with the connections they
 * have. Before or after its listeners' weir__conn_free, never at once. */
void weir__conn_port_free(weir__conn_port *pt);

/* Sending end: check the options; no I/O until weir__conn_start(). NULL
 * with the reason. */
weir__conn *weir__conn_dial(const char *endpoint, const weir_link_opts *o);

/*
 * Listener, before start: carry stream `stream` into w, whose writer the
 * connection becomes (no other thread writes w while it lives; w must
 * outlive the connection). 0, or -EINVAL (bad id, id already declared,
 * NULL channel, more than WEIR__LINK_MAX_STREAMS, a dialer, started) with
 * the reason.
 */
int weir__conn_add_recv_stream(weir__conn *cn, uint32_t stream, weir_chan *w);

/*
 * Dialer, before start: forward every message of c as stream `stream`.
 * reader: a reader id of c registered through this handle, which the
 * connection takes over (it deregisters it when the stream fails or the
 * connection is freed), or -1 to register one now. 0 or the error.
 */
int weir__conn_add_send_stream(weir__conn *cn, uint32_t stream, weir_chan *c, int reader);

/*
 * Start. Listener: start accepting (returns at once). Dialer: connect,
 * HELLO, WELCOME within timeout_ms, then start the threads; -ECONNREFUSED
 * (the peer refused: reason from the peer), -ETIMEDOUT, ... with the
 * reason. After a failed start only weir__conn_free() is useful.
 */
int weir__conn_start(weir__conn *cn);

/* "tcp://ADDR:PORT" with the real port. Owned by the connection. */
const char *weir__conn_endpoint(const weir__conn *cn);

/*
 * Connection status: 0 while running (a listener: also while waiting for
 * its dialer); -EPIPE once every stream ended (its channel closed and every
 * message was acknowledged / committed); else the failure of the
 * connection, its reason copied into weir_errmsg(). A failed dialer reports
 * it once its send thread deregistered the streams' readers (waits for
 * that at most 200 ms).
 */
int weir__conn_status(const weir__conn *cn);

/*
 * One stream's status: 0 running; -EPIPE ended cleanly; else its failure
 * (the connection's, or its own: a message over the frame limit, its
 * reader deregistered, the peer ending the stream), reason into
 * weir_errmsg(). -ENOENT for a stream id not declared.
 */
int weir__conn_stream_status(const weir__conn *cn, uint32_t stream);

/* Per-stream counters, a snapshot. */
struct weir__conn_stream_stats {
    uint32_t stream;
    int status;              /* as weir__conn_stream_status */
    uint64_t messages;       /* sent (dialer) / committed into the channel (listener) */
    uint64_t bytes;          /* payload bytes of those */
    uint64_t acked;          /* messages acknowledged */
    uint64_t limit;          /* highest sequence number the sender may send below (credits) */
    uint64_t credit_stalls;  /* dialer: times the stream had to wait for credit */
    uint64_t frames;         /* its DATA and CLOSE frames: sent (dialer) / received (listener) */
    uint64_t batches;        /* this end's transport sends carrying its frames: the dialer's
                                DATA and CLOSE, the listener's ACKs */
};

/* Fill *st for stream `stream`. 0, -ENOENT (not declared), -EINVAL. */
int weir__conn_stream_stats(const weir__conn *cn, uint32_t stream,
                            struct weir__conn_stream_stats *st);

/* Connection counters (the sum of the streams' messages, bytes, acked and
 * credit stalls, and the connection's frames, batches, reconnects,
 * refusals, RTT, peer). 0 or -EINVAL. */
int weir__conn_stats(const weir__conn *cn, struct weir_link_stats *st);

/*
 * Stop every thread and release everything. Never blocks past the
 * timeout. A dialer deregisters its readers; a listener leaves its
 * channels open (the caller owns them). Returns the final connection
 * status. cn may be NULL (0).
 */
int weir__conn_free(weir__conn *cn);

#endif
