/* SPDX-License-Identifier: MIT */
/*
 * channels/transport.h - the ops table every link transport implements
 * (channels/tcp_uring.c, channels/tcp_zmq.c). Modelled on the split of
 * nng's transports (a listener, a dialer, and a pipe whose ops are a
 * table), reduced to what a link needs.
 *
 * Design notes.
 *
 * A transport moves an ordered, reliable BYTE STREAM between two endpoints:
 * a pipe. It knows nothing of frames, streams, credits or acks; link.c
 * lays frames (channels/frame.h) over the byte stream. That keeps one
 * connection able to carry many streams (every edge between two ranks, in
 * the multi-node issue): streams are a field of the frame header, each with
 * its own sequence numbers, credits and acks, and the pipe is shared.
 *
 * Threads: a pipe is used by at most one sending thread and one receiving
 * thread at a time (the caller serialises its senders with its own lock);
 * send and receive run concurrently. close() may be called from any thread
 * at any time and makes every blocked call on the pipe return.
 *
 * Sending is a gather of iovecs: the caller passes a frame header and the
 * payload straight from a ring slot (no staging copy), and many frames per
 * call (coalescing small messages into large writes). A send returns when
 * every byte has been handed to the kernel (or copied by the transport), so
 * the caller may then reuse the header memory; the payload memory must stay
 * valid only until the call returns (SEND_ZC-style transports wait for the
 * kernel's notification before returning).
 *
 * Receiving has two forms: recv() lends a chunk of received bytes (from a
 * provided buffer ring, or a zmq message) which the caller parses and gives
 * back with recv_done(); recv_into() fills caller memory with exactly n
 * bytes (first from what is already buffered, then directly from the
 * socket), so a large payload lands in its ring slot with no extra copy.
 *
 * Errors: every call returns 0 (or a count) or a negative errno, and on
 * failure sets weir_errmsg() to one line naming the endpoint and the
 * problem. -EPIPE: the peer closed or the pipe was closed; -ECONNRESET: a
 * reset; -ETIMEDOUT: the call's timeout passed with nothing done (the pipe
 * is still usable); anything else: the pipe is broken.
 */
#ifndef WEIR_TRANSPORT_H
#define WEIR_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct weir__tp_listener weir__tp_listener; /* one per transport backend */
typedef struct weir__tp_pipe weir__tp_pipe;         /* one connection */

/* Options a transport receives at listen/dial time. Zero-filled = defaults. */
struct weir__tp_cfg {
    uint32_t spin_ns;    /* busy-poll budget on completions before sleeping; 0: transport default */
    uint32_t send_zc;    /* 1: zero-copy sends where the backend has them (io_uring SEND_ZC) */
    uint32_t rcvbuf;     /* socket buffer sizes; 0: kernel default */
    uint32_t sndbuf;
};

/* A chunk of received bytes lent by recv(); valid until recv_done(). */
struct weir__tp_chunk {
    const uint8_t *data;
    size_t len;
    uint64_t cookie; /* the transport's own: which buffer to give back */
};

struct weir__tp_ops {
    /* Short name ("uring", "zmq") used in messages and stats. */
    const char *name;

    /*
     * listen: bind exactly host:port (host is a numeric IPv4/IPv6 address or
     * a name that resolves to one; port 0 picks a free port) and start
     * listening. Never binds a wildcard the caller did not name.
     * On success *out is owned by the caller (free with listener_free) and
     * *port_out holds the bound port. On failure nothing is left open.
     */
    int (*listen)(const char *host, uint16_t port, const struct weir__tp_cfg *cfg,
                  weir__tp_listener **out, uint16_t *port_out);

    /*
     * accept: wait up to timeout_ms (-1 forever, 0 poll) for one incoming
     * connection. 0 and *out (owned by the caller, free with pipe_free), or
     * -ETIMEDOUT, or -ECANCELED after listener_close, or another error.
     * The peer is NOT authenticated yet: that is the link's hello.
     */
    int (*accept)(weir__tp_listener *l, int timeout_ms, weir__tp_pipe **out);

    /* listener_close: stop listening; a blocked accept returns -ECANCELED.
     * Any thread, any time, idempotent. */
    void (*listener_close)(weir__tp_listener *l);

    /* listener_free: release everything; never blocks; l may be NULL.
     * No call may be running on l. */
    void (*listener_free)(weir__tp_listener *l);

    /*
     * dial: connect to host:port within timeout_ms. 0 and *out (owned by
     * the caller), -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, ...
     */
    int (*dial)(const char *host, uint16_t port, const struct weir__tp_cfg *cfg, int timeout_ms,
                weir__tp_pipe **out);

    /*
     * send: write all bytes of iov[0..n) in order, as one batch (the
     * backend may cut it into several writes but never interleaves another
     * send). Returns 0 once every byte is handed over; the caller keeps
     * ownership of iov and the memory it points to, which need to stay
     * valid only until the call returns. timeout_ms bounds the wait for
     * socket space (a peer that does not read): -ETIMEDOUT then means an
     * unknown prefix was sent and the pipe must be closed. One sending
     * thread at a time.
     */
    int (*send)(weir__tp_pipe *p, const struct iovec *iov, unsigned n, int timeout_ms);

    /*
     * recv: lend the next chunk of received bytes (at least 1), waiting up
     * to timeout_ms (0: only what has already arrived, no spinning; the
     * link uses that to learn it is about to wait). The transport spins on completions for its spin budget
     * before sleeping. 0 and *ch filled; the caller must call recv_done
     * before the next recv/recv_into. -EPIPE on orderly close by the peer.
     * One receiving thread at a time.
     */
    int (*recv)(weir__tp_pipe *p, struct weir__tp_chunk *ch, int timeout_ms);

    /*
     * recv_done: give back the chunk of the last recv, of which the caller
     * consumed `used` bytes (0..len); unconsumed bytes are returned first
     * by the next recv/recv_into. Never fails.
     */
    void (*recv_done)(weir__tp_pipe *p, struct weir__tp_chunk *ch, size_t used);

    /*
     * recv_into: fill buf with exactly len bytes: those still buffered
     * first, then from the connection (a backend whose receive is armed
     * ahead, as io_uring's multishot recv is, copies from its buffers;
     * one that can reads straight into buf). timeout_ms bounds the wait
     * for each progress step (a silent peer), not the whole transfer; 0
     * means "only what is already here". 0, or a negative errno (the pipe
     * is then unusable: -ETIMEDOUT midway leaves the stream out of frame).
     */
    int (*recv_into)(weir__tp_pipe *p, void *buf, size_t len, int timeout_ms);

    /*
     * close: shut the connection down (both directions); every blocked or
     * later send on p returns -EPIPE, and so does a blocked recv. A later
     * recv/recv_into may still hand out bytes that had already arrived
     * (buffered in the transport or the socket), in order, and returns
     * -EPIPE once they are consumed; it never waits for more. The link
     * relies on that: a send that fails closes the pipe, and the ACKs the
     * peer sent before it went are still read. Any thread, any time,
     * idempotent; never blocks. The "stop" half of nng's p_stop/p_fini.
     */
    void (*close)(weir__tp_pipe *p);

    /* pipe_free: release everything; p may be NULL. No call may be running
     * on p (close it, then join the threads using it). Never waits for the
     * peer, with one bound: a backend whose library writes asynchronously
     * (zmq: libzmq's I/O thread) first waits, at most 1 s, until the bytes
     * already sent are in the kernel, so a REFUSE or a last ACK sent just
     * before is not dropped; io_uring's sends are in the kernel already. */
    void (*pipe_free)(weir__tp_pipe *p);

    /* peer: "ADDR:PORT" of the other end into buf (NUL-terminated,
     * truncated to n). Returns buf. Never fails (writes "?" if unknown). */
    const char *(*peer)(const weir__tp_pipe *p, char *buf, size_t n);
};

/* The backends built into this library. Each file defines its table only
 * when its meson option found the library (WEIR_HAVE_URING / WEIR_HAVE_ZMQ_TRANSPORT
 * in weir_config.h); use weir__tp_get() rather than naming them. */
extern const struct weir__tp_ops weir__tp_uring; /* channels/tcp_uring.c */
extern const struct weir__tp_ops weir__tp_zmq;   /* channels/tcp_zmq.c */

/* The ops of WEIR_TRANSPORT_URING / WEIR_TRANSPORT_ZMQ (<weir/link.h>), or
 * NULL with -ENOSYS in weir_errmsg() naming the transport that this build
 * lacks (channels/transport.c). */
const struct weir__tp_ops *weir__tp_get(int transport);

/* Parse "tcp://HOST:PORT" ("tcp://[v6]:PORT" too) into host (NUL-terminated,
 * at most hostn bytes) and *port. 0 or -EINVAL with the reason in
 * weir_errmsg() naming the endpoint (channels/transport.c: a pure parser). */
int weir__tp_parse_endpoint(const char *endpoint, char *host, size_t hostn, uint16_t *port);

#endif
