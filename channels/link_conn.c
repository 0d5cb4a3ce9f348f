/* SPDX-License-Identifier: MIT */
/*
 * channels/link_conn.c - one transport connection carrying many streams
 * between two endpoints (channels/link.h). The standalone link
 * (channels/link.c) is its one-stream case.
 *
 * Design notes.
 *
 * Protocol (channels/frame.h): the dialer (sending end) opens a connection
 * and sends HELLO (version, token, its random sender id, every stream it
 * opens: id, channel identity, first sequence number it still holds). The
 * listener checks all of it and answers WELCOME (per stream: the next
 * sequence number it needs, its credits) or REFUSE + close. Then DATA and
 * CLOSE frames flow one way, ACK frames (seq = messages of the stream
 * committed into its channel, aux = credits beyond seq) the other; both
 * sides send HEARTBEAT every hb_ms, answered with ECHO, from which each
 * side measures the round trip (the dialer answers since protocol 2).
 * A REFUSE on a stream (not 0) ends that stream only. The dialer
 * heartbeats when it sent nothing for hb_ms, the listener when it received
 * nothing for ACK_DELAY_MS and then every hb_ms of silence; both also every
 * RTT_EVERY * hb_ms on a busy connection, so each end's last RTT stays
 * current under load.
 *
 * Credits are free slots, so nothing ever waits inside the shared rx
 * thread. The listener grants a stream only what its channel w can take
 * now: limit = min(committed + window, gate + depth(w)), where the gate is
 * the slowest active reader's read_seq (weir__chan_gate: it only grows, a
 * new reader starts at write_seq). A DATA frame within the limit therefore
 * always finds a free slot: the rx thread reserves with timeout 0, and a
 * frame past the limit is a protocol error (a peer ignoring its credits).
 * One stream whose readers stop reaches its limit and stops; the others
 * go on. When its readers move again somebody must tell the sender: the
 * connection's credit thread (one for every stream) sleeps until the rx
 * thread marks a stream starved (less than `step` credits left) and rings
 * the connection's bell, then waits on the writer futex of every starved
 * stream's w at once, as a blocked writer of each would (futex_waitv,
 * weir__wait_many), until a gate has moved far enough to grant `step`
 * more, and sends that stream's ACK. ACKs of one stream are computed and
 * sent under its ack_mu, so their (seq, limit) never go backwards on the
 * wire. The ACKs due at one moment (the streams of one received chunk,
 * the credit thread's grants of one wake-up, the idle flush) go out in
 * one transport send (ack_streams): 64 channels between two ranks, 10^4
 * executions, went from 191,795 listener sends to 140,949 and from 2.78 s
 * to 1.78 s (farm-bench, paired, medians of 5).
 *
 * Sending streams: each has a window reader of its channel c
 * (channels/ring_window.h); the connection's one send thread (tx_main)
 * takes from every stream that has credit, without waiting, and sends
 * headers + payloads straight from the slots, frames of many streams in
 * one transport call of up to BATCH frames, a fair share of it per stream.
 * With nothing to take it sleeps on the rd_futex of every such stream's
 * channel and on the bell (an ACK, a new pipe, a stream's end) at once: a
 * stream without credit or data holds nothing, and the threads of a
 * connection do not grow with its streams (64 streams: 3 threads per end,
 * not 2 per stream). The rx thread receives ACKs and releases each window
 * up to them, so c's writer blocks when its receiver stops acknowledging.
 *
 * Connection (dialer): a main thread heartbeats and watches the rx thread;
 * on a lost connection (error, or nothing heard for suspect_ms although
 * the peer heartbeats every hb_ms) it re-dials, HELLO lists every stream
 * where its window stands, WELCOME says where the receiver stands, and
 * each window is released up to that point; the pipe is published with a
 * new generation number and the send thread, seeing it, rewinds every
 * window there: nothing lost, nothing twice. The pipe pointer and the
 * generation change only under both send_mu and mu, so the send thread,
 * checking them under send_mu, sends on a pipe that stays alive for the
 * call. A peer unheard for timeout_ms, or a dial refused, fails every
 * stream that has not ended; the send thread then deregisters each failed
 * stream's reader of c, so c's writer is not held.
 *
 * Connection (listener): the acceptor thread accepts, judges HELLO on the
 * new pipe (a refused connection never touches the established one),
 * watches the timeout and, past it, writes an error record naming the
 * peer into every stream's w that has not ended, then closes it. One rx
 * thread per connection reads frames and writes DATA straight into a
 * reserved slot of the stream's w. It parses every frame of a received
 * chunk in one pass (rx_chunk): a DATA payload inside the chunk is copied
 * from it into its slot; any other frame (control, a payload or header
 * running past the chunk) gives the chunk back up to that point and takes
 * the per-frame path (rx_frame), which reads the rest from the pipe. The
 * counters, the last_heard clock and the lazy ACK are done once per chunk
 * (rx_flush), and before anything that ends a stream, so whoever sees a
 * stream end sees all its messages counted. A small-message sender sends
 * up to BATCH frames per transport call (one write of ~22 KiB at 64 B).
 * A second sender (another sender id) is refused while the first one's
 * streams live; the same sender reconnecting replaces the old connection.
 *
 * Bad input: everything a peer sends goes through weir__frame_decode
 * (fixed header checks) and the FlatBuffers verifier before use; control
 * payloads go into a fixed buffer; DATA goes into a slot of w (the frame
 * limit bounds it) or, for a stream that has ended, is read into a fixed
 * scratch buffer and dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <weir/chan.h>
#include <weir/link.h>

#include "channels/atomics.h"
#include "channels/chan_internal.h"
#include "channels/err.h"
#include "channels/frame.h"
#include "channels/layout.h"
#include "channels/link.h"
#include "channels/link_codec.h"
#include "channels/probes.h"
#include "channels/ring_window.h"
#include "channels/transport.h"
#include "channels/wait.h"

#define BATCH 256u                 /* frames per transport send (small messages: one write of ~22 KiB) */
#define BATCH_BYTES (1u << 20)     /* payload bytes per transport send */
#define ERR_MAX 65536u             /* largest error record carried */
#define MSG_LEN 240
#define ACK_DELAY_MS 1            /* receiver idle this long: acknowledge what it has (delayed ACK) */
#define NSTREAMS WEIR__LINK_MAX_STREAMS
#define RTT_EVERY 4               /* a busy end heartbeats every RTT_EVERY * hb_ms (round trips) */

struct stream {
    weir__conn *cn;
    uint32_t id;
    weir_chan *ch;
    unsigned depth;      /* of ch */
    unsigned window;     /* largest grant: min(opts.credits or depth, depth) */
    unsigned step;       /* ack and grant granularity: window / 2, at least 1 */
    int status;          /* atomic: 0, -EPIPE ended cleanly, or the failure */
    char err[MSG_LEN];   /* under cn->mu */
    uint64_t messages, bytes, acked, limit, credit_stalls; /* atomic */
    /* atomic: CLOSE frames sent / received (the stream's frames are its
     * messages' DATA and these), and this end's transport sends that carried
     * its frames (the sender's DATA and CLOSE, the receiver's ACKs) */
    uint64_t closes, batches;

    /* sending */
    int reader;
    struct weir__window win;
    int win_open;
    uint64_t sent;       /* atomic: messages handed to the transport (cursor) */
    uint64_t resume;     /* under mu: next_seq of the last WELCOME */
    int stalled;         /* send thread: out of credit, counted in credit_stalls */
    int dereg;           /* failed, its reader of ch deregistered (set and read under mu:
                            a release must not publish into a deregistered reader id) */
    int closed_sent;     /* atomic: CLOSE handed to the transport */
    uint64_t close_seq;  /* atomic */

    /* receiving */
    int admitted;        /* acceptor: a HELLO fixed the stream's base */
    uint64_t expected;   /* rx thread: next sequence number */
    uint64_t off;        /* stream seq = write_seq(ch) + off (mod 2^64) */
    pthread_mutex_t ack_mu;
    int starved;         /* under mu: fewer than step credits left */
    int ended;           /* atomic: CLOSE received, or the stream failed; ch closed */
    int refused;         /* atomic: this end failed it and sent REFUSE (said again after a cut) */
};

struct weir__conn {
    int sending;
    int started;
    const struct weir__tp_ops *tp;
    struct weir__tp_cfg cfg;
    char endpoint[80];
    char host[64];
    uint16_t port;
    uint8_t token[WEIR__LINK_MAX_TOKEN];
    uint32_t token_len;
    unsigned credits;
    int timeout_ms, hb_ms, suspect_ms, hello_ms;

    pthread_mutex_t mu;      /* guards err, peer, pipe/gen (with send_mu), the cvs */
    pthread_cond_t cv;       /* the main thread's */
    pthread_mutex_t send_mu; /* one sender on a pipe at a time */
    int status;              /* atomic */
    int stop;                /* atomic */
    char err[MSG_LEN];
    char rx_why[MSG_LEN];    /* why the last rx thread ended */
    char peer[80];
    char last_refusal[256];

    /* counters (atomic) */
    uint64_t frames, batches, reconnects, refused, rtt_ns;
    uint64_t last_heard_ns;  /* any frame from the peer, or the connection itself */
    uint64_t last_send_ns;   /* dialer: last transport send */
    uint64_t last_hb_ns;     /* dialer: last HEARTBEAT (dial_main only) */

    weir__tp_pipe *pipe;     /* current connection (changes under send_mu and mu) */
    uint64_t gen;            /* bumped with every new pipe (under send_mu and mu) */
    int rx_running;          /* an rx thread is live on pipe (joinable) */
    int rx_done;             /* atomic: that rx thread ended */
    pthread_t rx_thr;
    pthread_t main_thr;      /* dialer: reconnect + heartbeats; listener: acceptor */
    pthread_t work_thr;      /* dialer: the send thread of every stream (tx_main);
                                listener: the credit thread of every stream (credit_main) */
    int work_running;
    int tx_released;         /* atomic, dialer: the send thread let every failed stream's
                                reader go and stopped */
    uint32_t work_spin;      /* its adaptive spin budget */
    uint32_t bell;           /* bumped (weir__bell_ring) when work_thr has news: credit, */
    uint32_t bell_sleepers;  /* a new pipe, a stream's end or starvation, stop */
    int main_running;

    unsigned nstreams;
    struct stream st[NSTREAMS];

    uint64_t sender_id;      /* dialer */
    weir__tp_listener *lst;  /* listener with a socket of its own */
    int on_port;             /* listener on a shared port (no lst): HELLOs come from there */
    weir__conn_port *shared; /* that port while it lives (under its mu) */
    weir__tp_pipe *hand;     /* under mu: a connection the port handed over, not yet judged */
    uint8_t *hand_buf;       /* its HELLO payload (WEIR__FRAME_CTL_MAX bytes) */
    uint8_t *judge_buf;      /* on a port: the copy of hand_buf being judged (the port may
                              * hand over a newer HELLO meanwhile) */
    uint32_t hand_len;
    int have_sender;
    uint64_t cur_sender;
    uint8_t *scratch;        /* listener: error records, dropped payloads (ERR_MAX) */
};

/* A port several listeners share (channels/link.h): its acceptor reads each
 * new connection's HELLO and hands the pipe to the listener that carries the
 * first stream it opens; that listener judges the rest as if it had
 * accepted the pipe itself. */
struct weir__conn_port {
    const struct weir__tp_ops *tp;
    struct weir__tp_cfg cfg;
    weir__tp_listener *lst;
    char endpoint[80];
    int hello_ms, hb_ms;
    pthread_mutex_t mu;      /* guards members (lock order: port mu, then a member's mu) */
    weir__conn **members;
    unsigned nmembers, cap;
    pthread_t thr;
    int running;
    int stop;                /* atomic */
    uint64_t refused;        /* atomic */
    char last_refusal[256];  /* under mu */
};

/* ---- small helpers -------------------------------------------------------- */

static int cerr(weir__conn *cn, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cerr(weir__conn *cn, int code, const char *fmt, ...)
{
    char buf[MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return weir__seterr(code, "link %s: %s", cn->endpoint, buf);
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

static void ring_bell(weir__conn *cn)
{
    weir__bell_ring(&cn->bell, &cn->bell_sleepers);
}

static void wake_all(weir__conn *cn)
{
    ring_bell(cn);
    pthread_cond_broadcast(&cn->cv);
}

static int all_ended_locked(weir__conn *cn)
{
    for (unsigned i = 0; i < cn->nstreams; i++)
        if (weir__load_acquire(&cn->st[i].status) == 0)
            return 0;
    return cn->nstreams > 0;
}

/* End a stream (first reason wins), under mu. text: the full line. */
static void stream_end_locked(struct stream *s, int code, const char *text)
{
    if (weir__load_relaxed(&s->status) == 0) {
        snprintf(s->err, sizeof s->err, "%s", text);
        weir__store_release(&s->status, code);
    }
    pthread_cond_broadcast(&s->cn->cv);
    ring_bell(s->cn);
}

/* The connection has ended cleanly once every stream has (under mu). */
static void conn_check_end_locked(weir__conn *cn)
{
    if (weir__load_relaxed(&cn->status) != 0 || !all_ended_locked(cn))
        return;
    if (cn->nstreams == 1) {
        snprintf(cn->err, sizeof cn->err, "%s", cn->st[0].err);
    } else {
        unsigned failed = 0;
        for (unsigned i = 0; i < cn->nstreams; i++)
            failed += weir__load_relaxed(&cn->st[i].status) != -EPIPE;
        snprintf(cn->err, sizeof cn->err, "link %s: every stream ended (%u of %u failed)",
                 cn->endpoint, failed, cn->nstreams);
    }
    weir__store_release(&cn->status, -EPIPE);
    wake_all(cn);
}

static void stream_end(struct stream *s, int code, const char *text)
{
    pthread_mutex_lock(&s->cn->mu);
    stream_end_locked(s, code, text);
    conn_check_end_locked(s->cn);
    pthread_mutex_unlock(&s->cn->mu);
}

/* Fail the connection and every stream still running, from weir_errmsg(). */
static void conn_fail(weir__conn *cn, int code)
{
    char text[MSG_LEN];
    snprintf(text, sizeof text, "%s", weir_errmsg());
    pthread_mutex_lock(&cn->mu);
    if (weir__load_relaxed(&cn->status) == 0) {
        snprintf(cn->err, sizeof cn->err, "%s", text);
        weir__store_release(&cn->status, code);
    }
    for (unsigned i = 0; i < cn->nstreams; i++)
        stream_end_locked(&cn->st[i], code, text);
    wake_all(cn);
    pthread_mutex_unlock(&cn->mu);
}

static void refusal(weir__conn *cn, const char *reason)
{
    weir__fetch_add(&cn->refused, 1);
    pthread_mutex_lock(&cn->mu);
    snprintf(cn->last_refusal, sizeof cn->last_refusal, "%s", reason);
    pthread_mutex_unlock(&cn->mu);
}

static int ct_equal(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
    /* Constant time in the content: always WEIR__LINK_MAX_TOKEN steps. */
    unsigned diff = an ^ bn;
    for (uint32_t i = 0; i < WEIR__LINK_MAX_TOKEN; i++) {
        uint8_t x = i < an ? a[i] : 0, y = i < bn ? b[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0;
}

static void hdr(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream, uint32_t len,
                uint32_t aux, uint64_t seq)
{
    struct weir__frame f = {type, flags, stream, len, aux, seq};
    weir__frame_encode(&f, out);
}

/* Send one frame with an optional payload; the caller holds send_mu. */
static int send_frame_locked(weir__conn *cn, weir__tp_pipe *p, uint8_t type, uint32_t stream,
                             uint32_t aux, uint64_t seq, const void *payload, uint32_t len)
{
    uint8_t h[WEIR__FRAME_HDR];
    hdr(h, type, 0, stream, len, aux, seq);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)payload, len}};
    int r = cn->tp->send(p, iov, len ? 2 : 1, cn->timeout_ms);
    if (r == 0) {
        weir__fetch_add(&cn->frames, 1);
        weir__fetch_add(&cn->batches, 1);
    }
    return r;
}

static int send_frame(weir__conn *cn, weir__tp_pipe *p, uint8_t type, uint32_t stream,
                      uint32_t aux, uint64_t seq, const void *payload, uint32_t len)
{
    pthread_mutex_lock(&cn->send_mu);
    int r = send_frame_locked(cn, p, type, stream, aux, seq, payload, len);
    pthread_mutex_unlock(&cn->send_mu);
    return r;
}

/* REFUSE reason on a pipe no connection owns yet; 0 if it was sent. */
static int refuse_pipe(const struct weir__tp_ops *tp, weir__tp_pipe *p, const char *reason,
                       int timeout_ms)
{
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_refuse_encode(reason, NULL, 0, buf, sizeof buf);
    if (n <= 0)
        return -EINVAL;
    uint8_t h[WEIR__FRAME_HDR];
    hdr(h, WEIR__FR_REFUSE, 0, 0, (uint32_t)n, 0, 0);
    struct iovec iov[2] = {{h, sizeof h}, {buf, (size_t)n}};
    return tp->send(p, iov, 2, timeout_ms);
}

/* REFUSE with a reason on stream (0: the connection), naming the nended
 * streams of `ended` as ended cleanly; the caller holds send_mu. */
static void send_refuse_ended_locked(weir__conn *cn, weir__tp_pipe *p, uint32_t stream,
                                     const char *reason, const uint32_t *ended,
                                     uint32_t nended, int timeout_ms)
{
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_refuse_encode(reason, ended, nended, buf, sizeof buf);
    if (n > 0) {
        uint8_t h[WEIR__FRAME_HDR];
        hdr(h, WEIR__FR_REFUSE, 0, stream, (uint32_t)n, 0, 0);
        struct iovec iov[2] = {{h, sizeof h}, {buf, (size_t)n}};
        if (cn->tp->send(p, iov, 2, timeout_ms) == 0)
            weir__fetch_add(&cn->frames, 1);
        else
            cn->tp->close(p); /* a prefix may have gone: the byte stream is broken */
    }
}

static void send_refuse_locked(weir__conn *cn, weir__tp_pipe *p, uint32_t stream,
                               const char *reason, int timeout_ms)
{
    send_refuse_ended_locked(cn, p, stream, reason, NULL, 0, timeout_ms);
}

/* Read one frame header within timeout_ms. */
static int read_hdr(weir__conn *cn, weir__tp_pipe *p, struct weir__frame *f, int timeout_ms,
                    size_t max_data)
{
    uint8_t h[WEIR__FRAME_HDR];
    int r = cn->tp->recv_into(p, h, sizeof h, timeout_ms);
    if (r < 0)
        return r;
    r = weir__frame_decode(h, sizeof h, max_data, f);
    if (r < 0)
        return r;
    weir__fetch_add(&cn->frames, 1);
    weir__store_release(&cn->last_heard_ns, weir_now_ns());
    return 0;
}

static int ms_since(uint64_t t)
{
    uint64_t now = weir_now_ns();
    return now > t ? (int)((now - t) / 1000000ull) : 0;
}

static struct stream *find_stream(weir__conn *cn, uint32_t id)
{
    for (unsigned i = 0; i < cn->nstreams; i++)
        if (cn->st[i].id == id)
            return &cn->st[i];
    return NULL;
}

/* Either end: stop the connection's receive thread and free the pipe. */
static void drop_pipe(weir__conn *cn)
{
    if (cn->rx_running) {
        cn->tp->close(cn->pipe);
        pthread_join(cn->rx_thr, NULL);
        cn->rx_running = 0;
    }
    pthread_mutex_lock(&cn->send_mu);
    pthread_mutex_lock(&cn->mu);
    weir__tp_pipe *p = cn->pipe;
    cn->pipe = NULL;
    pthread_mutex_unlock(&cn->mu);
    pthread_mutex_unlock(&cn->send_mu);
    cn->tp->pipe_free(p);
}

/* Make p the connection's pipe (a new generation) and start rx on it. */
static int publish_pipe(weir__conn *cn, weir__tp_pipe *p, const char *peer, void *(*rx)(void *))
{
    pthread_mutex_lock(&cn->send_mu);
    pthread_mutex_lock(&cn->mu);
    snprintf(cn->peer, sizeof cn->peer, "%s", peer);
    cn->pipe = p;
    cn->gen++;
    wake_all(cn);
    pthread_mutex_unlock(&cn->mu);
    pthread_mutex_unlock(&cn->send_mu);
    weir__store_release(&cn->last_heard_ns, weir_now_ns());
    weir__store_release(&cn->rx_done, 0);
    int r = pthread_create(&cn->rx_thr, NULL, rx, cn);
    if (r != 0) {
        pthread_mutex_lock(&cn->send_mu);
        pthread_mutex_lock(&cn->mu);
        cn->pipe = NULL;
        pthread_mutex_unlock(&cn->mu);
        pthread_mutex_unlock(&cn->send_mu);
        return cerr(cn, -r, "cannot start the receive thread");
    }
    cn->rx_running = 1;
    return 0;
}

/* ---- creation ------------------------------------------------------------- */

static weir__conn *conn_new(const char *endpoint, const weir_link_opts *o, int sending)
{
    weir__clearerr();
    weir__conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        weir__seterr(-ENOMEM, "link %s: out of memory", endpoint ? endpoint : "(null)");
        return NULL;
    }
    cn->sending = sending;
    cn->work_spin = WEIR__SPIN_NS;
    pthread_mutex_init(&cn->mu, NULL);
    pthread_cond_init(&cn->cv, NULL);
    pthread_mutex_init(&cn->send_mu, NULL);
    snprintf(cn->endpoint, sizeof cn->endpoint, "%.79s", endpoint ? endpoint : "(null)");
    int r = weir__tp_parse_endpoint(endpoint, cn->host, sizeof cn->host, &cn->port);
    if (r < 0)
        goto fail;
    int transport = o ? o->transport : WEIR_TRANSPORT_URING;
    if (!(cn->tp = weir__tp_get(transport)))
        goto fail;
    cn->timeout_ms = o && o->timeout_ms ? o->timeout_ms : WEIR_LINK_DEFAULT_TIMEOUT_MS;
    if (cn->timeout_ms < 50) {
        cerr(cn, -EINVAL, "timeout_ms %d too short (at least 50)", cn->timeout_ms);
        goto fail;
    }
    cn->hb_ms = cn->timeout_ms / 32 > 10 ? cn->timeout_ms / 32 : 10;
    cn->suspect_ms = 4 * cn->hb_ms;
    cn->hello_ms = cn->timeout_ms / 2 < 2000 ? cn->timeout_ms / 2 : 2000;
    const char *tok = o && o->token ? o->token : getenv("WEIR_TOKEN");
    if (tok) {
        size_t n = strlen(tok);
        if (n > WEIR__LINK_MAX_TOKEN) {
            cerr(cn, -EINVAL, "token of %zu bytes (at most %d)", n, WEIR__LINK_MAX_TOKEN);
            goto fail;
        }
        memcpy(cn->token, tok, n);
        cn->token_len = (uint32_t)n;
    }
    if (o && (o->flags & ~WEIR_LINK_SEND_ZC)) {
        cerr(cn, -EINVAL, "unknown flags 0x%x", o->flags & ~WEIR_LINK_SEND_ZC);
        goto fail;
    }
    cn->cfg.send_zc = o && (o->flags & WEIR_LINK_SEND_ZC) ? 1 : 0;
    cn->credits = o && o->credits ? o->credits : 0;
    if (cn->credits > WEIR_CHAN_MAX_DEPTH) {
        cerr(cn, -EINVAL, "credits %u over %u", cn->credits, WEIR_CHAN_MAX_DEPTH);
        goto fail;
    }
    return cn;
fail: {
    char msg[MSG_LEN];
    int code = weir_errcode();
    snprintf(msg, sizeof msg, "%s", weir_errmsg());
    weir__conn_free(cn);
    weir__seterr(code, "%s", msg);
    return NULL;
}
}

/* A new stream slot of cn, checked (before start, id unique, room). */
static struct stream *stream_new(weir__conn *cn, uint32_t id, weir_chan *ch, int sending)
{
    weir__clearerr();
    if (!cn) {
        weir__seterr(-EINVAL, "link (null): add stream %u", id);
        return NULL;
    }
    if (cn->sending != sending) {
        cerr(cn, -EINVAL, "stream %u: a %s end carries %s streams", id,
             cn->sending ? "dialing" : "listening", cn->sending ? "sending" : "receiving");
        return NULL;
    }
    if (cn->started) {
        cerr(cn, -EINVAL, "stream %u: streams are declared before start", id);
        return NULL;
    }
    if (!ch) {
        cerr(cn, -EINVAL, "stream %u: NULL channel", id);
        return NULL;
    }
    if (id == 0) {
        cerr(cn, -EINVAL, "stream id 0 (ids start at 1; 0 is the connection)");
        return NULL;
    }
    if (find_stream(cn, id)) {
        cerr(cn, -EINVAL, "stream %u declared twice", id);
        return NULL;
    }
    if (cn->nstreams == NSTREAMS) {
        cerr(cn, -EINVAL, "stream %u: a connection carries at most %d streams", id, NSTREAMS);
        return NULL;
    }
    struct stream *s = &cn->st[cn->nstreams];
    memset(s, 0, sizeof *s);
    s->cn = cn;
    s->id = id;
    s->ch = ch;
    s->reader = -1;
    s->depth = weir__chan_ctl(ch)->depth;
    s->window = cn->credits && cn->credits < s->depth ? cn->credits : s->depth;
    s->step = s->window / 2 ? s->window / 2 : 1;
    pthread_mutex_init(&s->ack_mu, NULL);
    return s;
}

weir__conn *weir__conn_dial(const char *endpoint, const weir_link_opts *o)
{
    weir__conn *cn = conn_new(endpoint, o, 1);
    if (cn && getrandom(&cn->sender_id, sizeof cn->sender_id, 0) != sizeof cn->sender_id)
        cn->sender_id = weir_now_ns() ^ ((uint64_t)getpid() << 32);
    return cn;
}

weir__conn *weir__conn_listen(const char *endpoint, const weir_link_opts *o)
{
    weir__conn *cn = conn_new(endpoint, o, 0);
    if (!cn)
        return NULL;
    int r;
    if (!(cn->scratch = malloc(ERR_MAX)) || !(cn->hand_buf = malloc(WEIR__FRAME_CTL_MAX))) {
        r = cerr(cn, -ENOMEM, "out of memory");
        goto fail;
    }
    uint16_t port = 0;
    if ((r = cn->tp->listen(cn->host, cn->port, &cn->cfg, &cn->lst, &port)) < 0)
        goto fail;
    cn->port = port;
    if (strchr(cn->host, ':'))
        snprintf(cn->endpoint, sizeof cn->endpoint, "tcp://[%s]:%u", cn->host, port);
    else
        snprintf(cn->endpoint, sizeof cn->endpoint, "tcp://%s:%u", cn->host, port);
    return cn;
fail: {
    char msg[MSG_LEN];
    snprintf(msg, sizeof msg, "%s", weir_errmsg());
    weir__conn_free(cn);
    weir__seterr(r, "%s", msg);
    return NULL;
}
}

weir__conn_port *weir__conn_port_listen(const char *endpoint, const weir_link_opts *o)
{
    /* A throwaway listener checks the options and parses the endpoint the
     * way every listener does; the port keeps what it needs. */
    weir__conn *probe = conn_new(endpoint, o, 0);
    if (!probe)
        return NULL;
    weir__conn_port *pt = calloc(1, sizeof *pt);
    if (!pt) {
        weir__conn_free(probe);
        weir__seterr(-ENOMEM, "link %s: out of memory", endpoint);
        return NULL;
    }
    pt->tp = probe->tp;
    pt->cfg = probe->cfg;
    pt->hello_ms = probe->hello_ms;
    pt->hb_ms = probe->hb_ms;
    pthread_mutex_init(&pt->mu, NULL);
    uint16_t port = 0;
    int r = pt->tp->listen(probe->host, probe->port, &pt->cfg, &pt->lst, &port);
    if (r < 0) {
        char msg[MSG_LEN];
        snprintf(msg, sizeof msg, "%s", weir_errmsg());
        weir__conn_free(probe);
        pthread_mutex_destroy(&pt->mu);
        free(pt);
        weir__seterr(r, "%s", msg);
        return NULL;
    }
    if (strchr(probe->host, ':'))
        snprintf(pt->endpoint, sizeof pt->endpoint, "tcp://[%s]:%u", probe->host, port);
    else
        snprintf(pt->endpoint, sizeof pt->endpoint, "tcp://%s:%u", probe->host, port);
    weir__conn_free(probe);
    return pt;
}

const char *weir__conn_port_endpoint(const weir__conn_port *pt)
{
    return pt ? pt->endpoint : "(null)";
}

weir__conn *weir__conn_listen_on(weir__conn_port *pt, const weir_link_opts *o)
{
    if (!pt) {
        weir__seterr(-EINVAL, "link: listen on a NULL port");
        return NULL;
    }
    weir__conn *cn = conn_new(pt->endpoint, o, 0);
    if (!cn)
        return NULL;
    if (cn->tp != pt->tp) {
        cerr(cn, -EINVAL, "transport %s, but the port's is %s", cn->tp->name, pt->tp->name);
        weir__conn_free(cn);
        return NULL;
    }
    pthread_mutex_lock(&pt->mu);
    int ok = 0;
    if ((cn->scratch = malloc(ERR_MAX)) && (cn->hand_buf = malloc(WEIR__FRAME_CTL_MAX)) &&
        (cn->judge_buf = malloc(WEIR__FRAME_CTL_MAX))) {
        if (pt->nmembers == pt->cap) {
            unsigned cap = pt->cap ? 2 * pt->cap : 4;
            weir__conn **m = realloc(pt->members, cap * sizeof *m);
            if (m) {
                pt->members = m;
                pt->cap = cap;
            }
        }
        if (pt->nmembers < pt->cap) {
            pt->members[pt->nmembers++] = cn;
            cn->shared = pt;
            cn->on_port = 1;
            ok = 1;
        }
    }
    pthread_mutex_unlock(&pt->mu);
    if (!ok) {
        cerr(cn, -ENOMEM, "out of memory");
        int code = weir_errcode();
        char msg[MSG_LEN];
        snprintf(msg, sizeof msg, "%s", weir_errmsg());
        weir__conn_free(cn);
        weir__seterr(code, "%s", msg);
        return NULL;
    }
    return cn;
}

static int read_hello(const struct weir__tp_ops *tp, weir__tp_pipe *p, int hello_ms,
                      uint8_t *buf, uint32_t *len, char *why, size_t n);

static void port_refusal(weir__conn_port *pt, weir__tp_pipe *p, const char *why)
{
    char peer[80];
    pt->tp->peer(p, peer, sizeof peer);
    weir__fetch_add(&pt->refused, 1);
    pthread_mutex_lock(&pt->mu);
    snprintf(pt->last_refusal, sizeof pt->last_refusal, "refused %.40s: %.190s", peer, why);
    pthread_mutex_unlock(&pt->mu);
    refuse_pipe(pt->tp, p, why, 200);
    pt->tp->pipe_free(p);
}

/* The port's acceptor: read each new connection's HELLO (bounded by
 * hello_ms, so a silent peer delays the next accept by at most that), find
 * the started listener that carries its first stream, hand it over. */
static void *port_main(void *arg)
{
    weir__conn_port *pt = arg;
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    while (!weir__load_acquire(&pt->stop)) {
        weir__tp_pipe *np = NULL;
        int r = pt->tp->accept(pt->lst, pt->hb_ms, &np);
        if (r == -ETIMEDOUT)
            continue;
        if (r < 0)
            break;
        char why[200];
        uint32_t len = 0;
        if (read_hello(pt->tp, np, pt->hello_ms, buf, &len, why, sizeof why) < 0) {
            port_refusal(pt, np, why);
            continue;
        }
        struct weir__link_hello h;
        if (weir__link_hello_decode(buf, len, &h) < 0) {
            snprintf(why, sizeof why, "%s", weir_errmsg());
            port_refusal(pt, np, why);
            continue;
        }
        if (h.nstreams == 0) {
            port_refusal(pt, np, "opens no stream");
            continue;
        }
        pthread_mutex_lock(&pt->mu);
        weir__conn *to = NULL;
        for (unsigned i = 0; i < pt->nmembers && !to; i++)
            if (pt->members[i]->started && find_stream(pt->members[i], h.streams[0].stream))
                to = pt->members[i];
        if (to) {
            pthread_mutex_lock(&to->mu);
            weir__tp_pipe *old = to->hand; /* not judged yet: the newer one wins */
            to->hand = np;
            memcpy(to->hand_buf, buf, len);
            to->hand_len = len;
            pthread_cond_broadcast(&to->cv);
            pthread_mutex_unlock(&to->mu);
            pthread_mutex_unlock(&pt->mu);
            if (old)
                pt->tp->pipe_free(old);
            continue;
        }
        pthread_mutex_unlock(&pt->mu);
        snprintf(why, sizeof why, "opens stream %u, which this end does not carry",
                 h.streams[0].stream);
        port_refusal(pt, np, why);
    }
    return NULL;
}

int weir__conn_port_start(weir__conn_port *pt)
{
    if (!pt)
        return weir__seterr(-EINVAL, "link port (null): start");
    if (pt->running)
        return weir__seterr(-EINVAL, "link port %s: started twice", pt->endpoint);
    int r = pthread_create(&pt->thr, NULL, port_main, pt);
    if (r != 0)
        return weir__seterr(-r, "link port %s: cannot start the accept thread", pt->endpoint);
    pt->running = 1;
    return 0;
}

uint64_t weir__conn_port_refusals(const weir__conn_port *pt, char *last, size_t cap)
{
    if (!pt)
        return 0;
    if (last && cap) {
        pthread_mutex_lock((pthread_mutex_t *)&pt->mu);
        snprintf(last, cap, "%s", pt->last_refusal);
        pthread_mutex_unlock((pthread_mutex_t *)&pt->mu);
    }
    return weir__load_acquire(&pt->refused);
}

void weir__conn_port_free(weir__conn_port *pt)
{
    if (!pt)
        return;
    weir__store_release(&pt->stop, 1);
    pt->tp->listener_close(pt->lst);
    if (pt->running)
        pthread_join(pt->thr, NULL);
    pt->tp->listener_free(pt->lst);
    pthread_mutex_lock(&pt->mu);
    for (unsigned i = 0; i < pt->nmembers; i++)
        pt->members[i]->shared = NULL; /* freed later: nothing more to unregister */
    pthread_mutex_unlock(&pt->mu);
    pthread_mutex_destroy(&pt->mu);
    free(pt->members);
    free(pt);
}

int weir__conn_add_recv_stream(weir__conn *cn, uint32_t stream, weir_chan *w)
{
    struct stream *s = stream_new(cn, stream, w, 0);
    if (!s)
        return weir_errcode();
    cn->nstreams++;
    return 0;
}

int weir__conn_add_send_stream(weir__conn *cn, uint32_t stream, weir_chan *c, int reader)
{
    struct stream *s = stream_new(cn, stream, c, 1);
    if (!s)
        return weir_errcode();
    int r;
    if (reader < 0) {
        if ((reader = weir_chan_register_reader(c)) < 0)
            return reader;
    } else if (weir__chan_reader_epoch(c, reader) < 0) {
        return cerr(cn, -EINVAL, "stream %u: reader %d of channel '%s' is not registered here",
                    stream, reader, weir_chan_name(c));
    }
    s->reader = reader;
    if ((r = weir__window_open(&s->win, c, reader)) < 0) {
        weir_chan_deregister_reader(c, reader);
        pthread_mutex_destroy(&s->ack_mu);
        return r;
    }
    s->win_open = 1;
    weir__store_release(&s->sent, weir__window_released(&s->win));
    cn->nstreams++;
    return 0;
}

/* ==== sending end ========================================================== */

static void *dial_rx(void *arg);

/* Under mu: release s's window up to seq, the receiver having committed
 * every message before it - unless s failed (its reader of c is then
 * deregistered, or about to be: publishing into that id could move the
 * position of whoever registers it next). Serialized with the
 * deregistration (tx_release_failed) by mu. */
static void release_acked_locked(struct stream *s, uint64_t seq)
{
    if (weir__load_acquire(&s->status) == 0 && !s->dereg &&
        seq > weir__window_released(&s->win))
        weir__window_release_upto(&s->win, seq, weir__load_acquire(&s->sent));
}

/* Under mu: a stream whose CLOSE was sent and acknowledged has ended. */
static void send_check_done_locked(struct stream *s)
{
    if (weir__load_relaxed(&s->status) == 0 && weir__load_acquire(&s->closed_sent) &&
        weir__load_acquire(&s->acked) >= weir__load_acquire(&s->close_seq)) {
        char text[MSG_LEN];
        if (s->cn->nstreams == 1)
            snprintf(text, sizeof text,
                     "link %s: stream ended (channel closed, every message acknowledged)",
                     s->cn->endpoint);
        else
            snprintf(text, sizeof text, "link %s: stream %u ended (channel closed, every "
                     "message acknowledged)", s->cn->endpoint, s->id);
        stream_end_locked(s, -EPIPE, text);
        conn_check_end_locked(s->cn);
    }
}

/*
 * A reconnect refused because the receiver's streams have all ended: those
 * it names in rf->ended received their CLOSE after every message, so the
 * ACK this end waits for was lost in the cut. Each ends cleanly (-EPIPE),
 * as if that ACK had come; one this end never closed is the peer's error.
 * The other streams fail with the refusal, as before.
 */
static void ended_by_peer(weir__conn *cn, const struct weir__link_refuse *rf)
{
    for (uint32_t i = 0; i < rf->nended; i++) {
        struct stream *s = find_stream(cn, rf->ended[i]);
        if (!s || weir__load_acquire(&s->status) != 0)
            continue;
        if (!weir__load_acquire(&s->closed_sent)) {
            char text[MSG_LEN];
            snprintf(text, sizeof text, "link %s: peer %s says stream %u ended, but this end "
                     "never closed it", cn->endpoint, cn->peer, s->id);
            stream_end(s, -EPROTO, text);
            continue;
        }
        uint64_t cs = weir__load_acquire(&s->close_seq);
        pthread_mutex_lock(&cn->mu);
        release_acked_locked(s, cs);
        weir__store_release(&s->acked, cs);
        send_check_done_locked(s);
        pthread_mutex_unlock(&cn->mu);
    }
}

/* Dial, HELLO, WELCOME. On success the pipe is published (a new generation)
 * with every stream's resume point set and its window released up to it. */
static int dial_once(weir__conn *cn, int timeout_ms)
{
    weir__tp_pipe *p = NULL;
    int r = cn->tp->dial(cn->host, cn->port, &cn->cfg, timeout_ms, &p);
    if (r < 0)
        return r;
    struct weir__link_hello h;
    memset(&h, 0, sizeof h);
    h.version = WEIR__LINK_PROTO;
    h.token_len = cn->token_len;
    memcpy(h.token, cn->token, cn->token_len);
    h.sender_id = cn->sender_id;
    h.max_data = WEIR__FRAME_DATA_MAX;
    h.nstreams = cn->nstreams;
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        h.streams[i].stream = s->id;
        h.streams[i].next_seq = weir__window_released(&s->win);
        snprintf(h.streams[i].channel, sizeof h.streams[i].channel, "%s", weir_chan_name(s->ch));
    }
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_hello_encode(&h, buf, sizeof buf);
    if (n < 0) {
        cn->tp->pipe_free(p);
        return n;
    }
    if ((r = send_frame(cn, p, WEIR__FR_HELLO, 0, 0, 0, buf, (uint32_t)n)) < 0)
        goto out;
    struct weir__frame f;
    if ((r = read_hdr(cn, p, &f, timeout_ms, 0)) < 0)
        goto out;
    if (f.type != WEIR__FR_WELCOME && f.type != WEIR__FR_REFUSE) {
        r = cerr(cn, -EPROTO, "peer answered HELLO with %s", weir__frame_type_name(f.type));
        goto out;
    }
    if ((r = cn->tp->recv_into(p, buf, f.len, timeout_ms)) < 0)
        goto out;
    if (f.type == WEIR__FR_REFUSE) {
        struct weir__link_refuse rf;
        if ((r = weir__link_refuse_decode(buf, f.len, &rf)) == 0) {
            ended_by_peer(cn, &rf);
            r = cerr(cn, -ECONNREFUSED, "refused by the peer: %s", rf.reason);
        }
        goto out;
    }
    struct weir__link_welcome w;
    if ((r = weir__link_welcome_decode(buf, f.len, &w)) < 0)
        goto out;
    if (w.version != WEIR__LINK_PROTO) {
        r = cerr(cn, -EPROTO, "peer speaks protocol version %u, this end %u", w.version,
                 WEIR__LINK_PROTO);
        goto out;
    }
    /* Every stream answered exactly once, each resume point within what we hold. */
    struct weir__link_stream_accept *acc[NSTREAMS] = {0};
    for (unsigned i = 0; i < w.nstreams; i++) {
        struct stream *s = find_stream(cn, w.streams[i].stream);
        unsigned k = s ? (unsigned)(s - cn->st) : 0;
        if (!s || acc[k]) {
            r = cerr(cn, -EPROTO, "peer accepted stream %u, %s", w.streams[i].stream,
                     s ? "twice" : "which this end did not open");
            goto out;
        }
        acc[k] = &w.streams[i];
    }
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        if (!acc[i]) {
            r = cerr(cn, -EPROTO, "peer accepted %u streams, not stream %u", w.nstreams, s->id);
            goto out;
        }
        uint64_t rel = weir__window_released(&s->win);
        uint64_t next = acc[i]->next_seq;
        uint64_t sent = weir__load_acquire(&s->sent);
        if (weir__load_acquire(&s->status) == 0 && (next < rel || next > sent)) {
            r = cerr(cn, -EPROTO, "peer resumes stream %u at message %llu, outside what this end "
                     "holds (%llu..%llu)", s->id, (unsigned long long)next,
                     (unsigned long long)rel, (unsigned long long)sent);
            goto out;
        }
    }
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        if (weir__load_acquire(&s->status) != 0)
            continue;
        uint64_t next = acc[i]->next_seq;
        pthread_mutex_lock(&cn->mu);
        /* Everything before next was committed by the receiver (a lost ack). */
        release_acked_locked(s, next);
        s->resume = next;
        weir__store_release(&s->acked, next);
        weir__store_release(&s->limit, next + acc[i]->credits);
        pthread_mutex_unlock(&cn->mu);
    }
    char peer[80];
    cn->tp->peer(p, peer, sizeof peer);
    if ((r = publish_pipe(cn, p, peer, dial_rx)) < 0)
        goto out;
    return 0;
out:
    cn->tp->pipe_free(p);
    return r;
}

/* Receives ACK / ECHO / HEARTBEAT / REFUSE on the dialer's pipe. */
static void *dial_rx(void *arg)
{
    weir__conn *cn = arg;
    weir__tp_pipe *p = cn->pipe;
    for (;;) {
        struct weir__frame f;
        int r = read_hdr(cn, p, &f, cn->suspect_ms, 0);
        if (r < 0) {
            if (r == -ETIMEDOUT)
                cerr(cn, -ETIMEDOUT, "peer %s silent for %d ms", cn->peer, cn->suspect_ms);
            break;
        }
        if (f.type == WEIR__FR_ACK) {
            struct stream *s = find_stream(cn, f.stream);
            if (!s) {
                conn_fail(cn, cerr(cn, -EPROTO, "peer %s acknowledged stream %u, which this end "
                                   "did not open", cn->peer, f.stream));
                break;
            }
            uint64_t sent = weir__load_acquire(&s->sent);
            uint64_t acked = weir__load_relaxed(&s->acked);
            if (f.seq < acked || f.seq > sent) {
                conn_fail(cn, cerr(cn, -EPROTO, "peer %s acknowledged message %llu of stream %u "
                                   "outside %llu..%llu", cn->peer, (unsigned long long)f.seq,
                                   f.stream, (unsigned long long)acked,
                                   (unsigned long long)sent));
                break;
            }
            pthread_mutex_lock(&cn->mu);
            release_acked_locked(s, f.seq);
            weir__store_release(&s->acked, f.seq);
            /* The send thread waits for this ACK (on the bell) only when the
             * stream had used its credit; under mu, where it decides so. */
            uint64_t old = weir__load_relaxed(&s->limit);
            int news = weir__load_relaxed(&s->sent) >= old && f.seq + f.aux > old;
            if (f.seq + f.aux > old)
                weir__store_release(&s->limit, f.seq + f.aux);
            send_check_done_locked(s);
            pthread_mutex_unlock(&cn->mu);
            if (news)
                ring_bell(cn);
        } else if (f.type == WEIR__FR_ECHO) {
            uint64_t now = weir_now_ns();
            if (f.seq <= now)
                weir__store_relaxed(&cn->rtt_ns, now - f.seq);
        } else if (f.type == WEIR__FR_HEARTBEAT) {
            /* Liveness (read_hdr stamped last_heard); the ECHO lets the
             * listener measure the round trip too. */
            pthread_mutex_lock(&cn->send_mu);
            if (cn->pipe == p && send_frame_locked(cn, p, WEIR__FR_ECHO, 0, 0, f.seq, NULL, 0) < 0)
                cn->tp->close(p);
            pthread_mutex_unlock(&cn->send_mu);
        } else if (f.type == WEIR__FR_REFUSE) {
            uint8_t buf[WEIR__FRAME_CTL_MAX];
            struct weir__link_refuse rf;
            const char *reason = "?";
            if (cn->tp->recv_into(p, buf, f.len, cn->suspect_ms) == 0 &&
                weir__link_refuse_decode(buf, f.len, &rf) == 0)
                reason = rf.reason;
            struct stream *s = f.stream ? find_stream(cn, f.stream) : NULL;
            if (s) {
                /* The receiver ended this stream only. */
                char text[MSG_LEN];
                snprintf(text, sizeof text, "link %.60s: peer %.60s ended stream %u: %.80s", cn->endpoint,
                         cn->peer, s->id, reason);
                stream_end(s, -ECONNABORTED, text);
                continue;
            }
            conn_fail(cn, cerr(cn, -ECONNABORTED, "peer %s ended the link: %s", cn->peer, reason));
            break;
        } else {
            conn_fail(cn, cerr(cn, -EPROTO, "peer %s sent an unexpected %s frame", cn->peer,
                               weir__frame_type_name(f.type)));
            break;
        }
    }
    if (getenv("WEIR_LINK_DEBUG"))
        fprintf(stderr, "link %s: dialer rx ends: %s\n", cn->endpoint, weir_errmsg());
    pthread_mutex_lock(&cn->mu);
    snprintf(cn->rx_why, sizeof cn->rx_why, "%s", weir_errmsg());
    weir__store_release(&cn->rx_done, 1);
    wake_all(cn);
    pthread_mutex_unlock(&cn->mu);
    cn->tp->close(p);
    return NULL;
}

/* After a lost connection: re-dial until the peer has been unheard for timeout_ms. */
static int dial_reconnect(weir__conn *cn)
{
    char why[MSG_LEN];
    pthread_mutex_lock(&cn->mu);
    snprintf(why, sizeof why, "%s", cn->rx_why[0] ? cn->rx_why : weir_errmsg());
    pthread_mutex_unlock(&cn->mu);
    if (getenv("WEIR_LINK_DEBUG"))
        fprintf(stderr, "link %s: reconnecting after: %s\n", cn->endpoint, why);
    drop_pipe(cn);
    uint64_t heard = weir__load_acquire(&cn->last_heard_ns);
    for (;;) {
        if (weir__load_acquire(&cn->stop))
            return -ECANCELED;
        int left = cn->timeout_ms - ms_since(heard);
        if (left <= 0)
            return cerr(cn, -ETIMEDOUT, "peer %s lost for %d ms (%s)", cn->peer, cn->timeout_ms,
                        why);
        int r = dial_once(cn, left < cn->suspect_ms ? left : cn->suspect_ms);
        if (r < 0 && getenv("WEIR_LINK_DEBUG"))
            fprintf(stderr, "link %s: dial: %s\n", cn->endpoint, weir_errmsg());
        if (r == 0) {
            weir__fetch_add(&cn->reconnects, 1);
            return 0;
        }
        if (r == -ECONNREFUSED) {
            /* no listener (its process is gone) or an explicit refusal */
            char how[MSG_LEN];
            snprintf(how, sizeof how, "%s", weir_errmsg());
            return cerr(cn, r, "peer %s lost (%.80s); %.120s", cn->peer, why, how);
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The dialer's connection thread: heartbeats, reconnects, the end. */
static void *dial_main(void *arg)
{
    weir__conn *cn = arg;
    int r = 0;
    while (!weir__load_acquire(&cn->stop) && !weir__load_acquire(&cn->status)) {
        if (weir__load_acquire(&cn->rx_done)) {
            /* The peer closes once every stream ended: the last ACK may have
             * come before its stream's CLOSE send returned. send_mu waits for
             * that send (closed_sent is set under it), then judge again. */
            pthread_mutex_lock(&cn->send_mu);
            pthread_mutex_lock(&cn->mu);
            for (unsigned i = 0; i < cn->nstreams; i++)
                send_check_done_locked(&cn->st[i]);
            pthread_mutex_unlock(&cn->mu);
            pthread_mutex_unlock(&cn->send_mu);
            if (weir__load_acquire(&cn->status))
                break;
            if ((r = dial_reconnect(cn)) < 0)
                break;
            continue;
        }
        /* A heartbeat when nothing else went for hb_ms (the peer's liveness
         * check), and under load every RTT_EVERY heartbeat periods, so the
         * round trip (ECHO) is measured on a busy connection too. */
        if (ms_since(weir__load_acquire(&cn->last_send_ns)) >= cn->hb_ms ||
            ms_since(cn->last_hb_ns) >= RTT_EVERY * cn->hb_ms) {
            pthread_mutex_lock(&cn->send_mu);
            if (cn->pipe && send_frame_locked(cn, cn->pipe, WEIR__FR_HEARTBEAT, 0, 0,
                                              weir_now_ns(), NULL, 0) < 0)
                cn->tp->close(cn->pipe);
            pthread_mutex_unlock(&cn->send_mu);
            cn->last_hb_ns = weir_now_ns();
            weir__store_release(&cn->last_send_ns, cn->last_hb_ns);
        }
        pthread_mutex_lock(&cn->mu);
        if (!weir__load_relaxed(&cn->rx_done) && !weir__load_relaxed(&cn->stop) &&
            !weir__load_relaxed(&cn->status))
            timed_wait(&cn->cv, &cn->mu, cn->hb_ms);
        pthread_mutex_unlock(&cn->mu);
    }
    if (r < 0 && r != -ECANCELED)
        conn_fail(cn, r);
    return NULL;
}

/*
 * The dialer's one send thread, for every stream of the connection. Each
 * round: under mu, follow a new connection (rewind every live stream's
 * window to its WELCOME's resume point) and pick the candidates (a live
 * stream with credit, its CLOSE not yet sent); take what their windows
 * hold without waiting, round-robin from a rotating start, at most
 * BATCH / candidates frames each on a first pass (one busy stream cannot
 * fill a batch the others wait behind), more on a second; send it all in
 * one transport call under send_mu. Nothing to take: sleep on every
 * candidate's channel and the connection's bell at once (weir__wait_many:
 * futex_waitv), so a stream whose reader stops, or whose credit ran out,
 * holds nothing: its bell is an ACK. A stream that fails on its own (a
 * message over the frame limit, its reader deregistered) ends alone, with
 * a REFUSE to the receiver; a failed stream's reader of c is deregistered
 * at once, so c's writer is not held.
 */
struct tx_plan {
    uint64_t sent, limit;
    unsigned nf;
    size_t bytes;
    int done, closed, err;
    char text[MSG_LEN];
};

struct tx_wait_arg {
    weir__conn *cn;
    uint32_t bell0;
    unsigned n;
    struct stream **cand;
};

static int tx_ready(void *arg)
{
    struct tx_wait_arg *t = arg;
    if (weir__load_acquire(&t->cn->bell) != t->bell0)
        return 1;
    for (unsigned i = 0; i < t->n; i++)
        if (weir__window_ready(&t->cand[i]->win))
            return 1;
    return 0;
}

/* Sleep until a candidate's channel moves or the bell rings (or hb_ms). */
static void tx_wait(weir__conn *cn, struct stream **cand, unsigned n, uint32_t bell0)
{
    struct weir__wait_word words[NSTREAMS + 1];
    words[0] = (struct weir__wait_word){&cn->bell, &cn->bell_sleepers};
    for (unsigned i = 0; i < n; i++) {
        struct weir__chan_ctl *ctl = weir__chan_ctl(cand[i]->ch);
        words[i + 1] = (struct weir__wait_word){&ctl->rd_futex, &ctl->rd_sleepers};
    }
    struct tx_wait_arg t = {cn, bell0, n, cand};
    weir__wait_many(words, n + 1, tx_ready, &t, &cn->work_spin, cn->hb_ms);
}

/* A failed stream lets c's writer go (tx thread). */
static void tx_release_failed(weir__conn *cn)
{
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        int st = weir__load_acquire(&s->status);
        if (st != 0 && st != -EPIPE && !s->dereg) {
            /* Under mu: an ACK being applied (release_acked_locked) finishes
             * its publish first, and none comes after. */
            pthread_mutex_lock(&cn->mu);
            s->dereg = 1;
            if (weir__chan_reader_epoch(s->ch, s->reader) >= 0)
                weir_chan_deregister_reader(s->ch, s->reader);
            pthread_mutex_unlock(&cn->mu);
        }
    }
}

/* Stream s failed on its own (tx thread): end it here and at the receiver. */
static void tx_stream_fail(weir__conn *cn, struct stream *s, int code, const char *text)
{
    stream_end(s, code, text);
    pthread_mutex_lock(&cn->send_mu);
    if (cn->pipe)
        send_refuse_locked(cn, cn->pipe, s->id, text, cn->timeout_ms);
    pthread_mutex_unlock(&cn->send_mu);
}

static void *tx_main(void *arg)
{
    weir__conn *cn = arg;
    uint8_t hdrs[BATCH + NSTREAMS][WEIR__FRAME_HDR];
    struct iovec iov[2 * BATCH + NSTREAMS];
    struct stream *cand[NSTREAMS];
    struct tx_plan *pl = calloc(NSTREAMS, sizeof *pl);
    uint64_t gen_seen = 0, dead_gen = 0;
    unsigned rr = 0;
    if (!pl) {
        conn_fail(cn, cerr(cn, -ENOMEM, "out of memory for the send thread"));
        tx_release_failed(cn);
        return NULL;
    }
    for (;;) {
        uint32_t bell0 = weir__load_acquire(&cn->bell);
        weir__tp_pipe *p = NULL;
        uint64_t gen = 0;
        unsigned ncand = 0, nfail = 0;
        pthread_mutex_lock(&cn->mu);
        if (weir__load_relaxed(&cn->stop) || weir__load_relaxed(&cn->status)) {
            pthread_mutex_unlock(&cn->mu);
            break;
        }
        if (cn->pipe && cn->gen != gen_seen) {
            /* A new connection: every live stream resumes where its WELCOME said. */
            gen_seen = cn->gen;
            for (unsigned i = 0; i < cn->nstreams; i++) {
                struct stream *s = &cn->st[i];
                pl[i].err = 0;
                if (weir__load_relaxed(&s->status) != 0)
                    continue;
                if ((pl[i].err = weir__window_rewind(&s->win, s->resume)) < 0) {
                    snprintf(pl[i].text, sizeof pl[i].text, "%s", weir_errmsg());
                    nfail++;
                    continue;
                }
                weir__store_release(&s->sent, s->resume);
                weir__store_release(&s->closed_sent, 0);
            }
        }
        if (cn->pipe && dead_gen != cn->gen && !nfail) {
            p = cn->pipe;
            gen = cn->gen;
            for (unsigned i = 0; i < cn->nstreams; i++) {
                struct stream *s = &cn->st[i];
                if (weir__load_relaxed(&s->status) != 0)
                    continue;
                if (weir__load_relaxed(&s->closed_sent)) {
                    send_check_done_locked(s);
                    continue;
                }
                uint64_t limit = weir__load_acquire(&s->limit);
                /* A CLOSE takes no credit: a stream whose channel closed with
                 * everything sent closes now. (After a cut, a receiver that had
                 * already ended the stream grants it nothing and waits for the
                 * CLOSE again, to acknowledge it.) */
                int at_limit = weir__load_relaxed(&s->sent) >= limit;
                int close_only = at_limit && weir__window_drained(&s->win);
                if (at_limit && !close_only) {
                    if (!s->stalled)
                        weir__fetch_add(&s->credit_stalls, 1);
                    s->stalled = 1;
                    continue;
                }
                /* Field by field: a compound literal would clear text[] (MSG_LEN
                 * bytes) for every candidate of every round. */
                struct tx_plan *x = &pl[i];
                x->sent = weir__load_relaxed(&s->sent);
                x->limit = limit;
                x->nf = 0;
                x->bytes = 0;
                x->done = x->closed = close_only;
                x->err = 0;
                x->text[0] = '\0';
                cand[ncand++] = s;
            }
        }
        pthread_mutex_unlock(&cn->mu);
        if (nfail) {
            for (unsigned i = 0; i < cn->nstreams; i++)
                if (pl[i].err < 0)
                    tx_stream_fail(cn, &cn->st[i], pl[i].err, pl[i].text);
            tx_release_failed(cn);
            continue;
        }
        tx_release_failed(cn);
        if (!p || !ncand) {
            tx_wait(cn, cand, 0, bell0);
            continue;
        }
        /* Gather a batch: headers + payloads straight from the slots. */
        unsigned nf = 0, niov = 0, nclose = 0, cap = (BATCH + ncand - 1) / ncand;
        size_t bytes = 0;
        weir_chan_msg m;
        if (cap < 4)
            cap = 4;
        for (int pass = 0; pass < 2 && nf < BATCH && bytes < BATCH_BYTES; pass++) {
            for (unsigned j = 0; j < ncand && nf < BATCH && bytes < BATCH_BYTES; j++) {
                struct stream *s = cand[(rr + j) % ncand];
                struct tx_plan *x = &pl[s - cn->st];
                while (!x->done && nf < BATCH && bytes < BATCH_BYTES &&
                       x->sent + x->nf < x->limit && (pass || x->nf < cap)) {
                    int k = weir__window_poll(&s->win, &m);
                    if (k <= 0) {
                        x->done = 1;
                        if (k == -EPIPE)
                            x->closed = 1;
                        else if (k < 0)
                            x->err = k;
                        break;
                    }
                    if (m.len > WEIR__FRAME_DATA_MAX) {
                        x->done = 1;
                        x->err = cerr(cn, -EMSGSIZE, "stream %u: message %llu of %zu bytes over "
                                      "the link's limit of %u", s->id, (unsigned long long)m.seq,
                                      m.len, WEIR__FRAME_DATA_MAX);
                        break;
                    }
                    hdr(hdrs[nf], WEIR__FR_DATA, (m.flags & WEIR_MSG_ERROR) ? WEIR__FRF_ERROR : 0,
                        s->id, (uint32_t)m.len, 0, m.seq);
                    iov[niov++] = (struct iovec){hdrs[nf], WEIR__FRAME_HDR};
                    if (m.len)
                        iov[niov++] = (struct iovec){(void *)m.data, m.len};
                    bytes += m.len;
                    x->bytes += m.len;
                    x->nf++;
                    nf++;
                }
                if (x->err < 0 && !x->text[0])
                    snprintf(x->text, sizeof x->text, "%s", weir_errmsg());
            }
        }
        rr++;
        for (unsigned j = 0; j < ncand; j++) {
            struct stream *s = cand[j];
            struct tx_plan *x = &pl[s - cn->st];
            if (x->closed && x->nf == 0 && x->err == 0) {
                weir__store_release(&s->close_seq, x->sent);
                hdr(hdrs[BATCH + nclose], WEIR__FR_CLOSE, 0, s->id, 0, 0, x->sent);
                iov[niov++] = (struct iovec){hdrs[BATCH + nclose], WEIR__FRAME_HDR};
                nclose++;
            } else {
                x->closed = 0;
            }
            /* Before the send: an ACK for these may arrive before send() returns. */
            if (x->nf)
                weir__store_release(&s->sent, x->sent + x->nf);
        }
        int k = 0, current = 1;
        if (niov) {
            pthread_mutex_lock(&cn->send_mu);
            current = cn->pipe == p && cn->gen == gen;
            if (current) {
                k = cn->tp->send(p, iov, niov, -1);
                /* The pipe broke: rx notices too; the next connection rewinds.
                 * Closed under send_mu, while p is still the current pipe:
                 * drop_pipe frees it under send_mu, and a close after that
                 * would touch freed memory (and, over ZeroMQ, kick an fd
                 * number the next connection's socket may already own). */
                if (k < 0)
                    cn->tp->close(p);
            }
            if (k == 0 && current && nclose) /* under send_mu: see dial_main */
                for (unsigned j = 0; j < ncand; j++)
                    if (pl[cand[j] - cn->st].closed)
                        weir__store_release(&cand[j]->closed_sent, 1);
            pthread_mutex_unlock(&cn->send_mu);
        }
        if (niov && current && k < 0)
            dead_gen = gen;
        if (niov && current && k == 0) {
            weir__store_release(&cn->last_send_ns, weir_now_ns());
            for (unsigned j = 0; j < ncand; j++) {
                struct stream *s = cand[j];
                struct tx_plan *x = &pl[s - cn->st];
                if (x->closed)
                    weir__fetch_add(&s->closes, 1);
                if (x->nf || x->closed)
                    weir__fetch_add(&s->batches, 1);
                if (!x->nf)
                    continue;
                s->stalled = 0;
                WEIR_PROBE3(link_send, weir_chan_name(s->ch), x->sent, x->bytes);
                weir__fetch_add(&s->messages, x->nf);
                weir__fetch_add(&s->bytes, x->bytes);
            }
            weir__fetch_add(&cn->frames, nf + nclose);
            weir__fetch_add(&cn->batches, 1);
            if (nclose) {
                pthread_mutex_lock(&cn->mu);
                for (unsigned j = 0; j < ncand; j++)
                    if (pl[cand[j] - cn->st].closed)
                        send_check_done_locked(cand[j]);
                pthread_mutex_unlock(&cn->mu);
            }
        }
        /* Streams that failed on their own this round end now (their
         * messages gathered before the failure went out above). */
        for (unsigned j = 0; j < ncand; j++) {
            struct tx_plan *x = &pl[cand[j] - cn->st];
            if (x->err < 0)
                tx_stream_fail(cn, cand[j], x->err, x->text);
        }
        if (niov == 0)
            tx_wait(cn, cand, ncand, bell0);
    }
    tx_release_failed(cn);
    weir__store_release(&cn->tx_released, 1);
    free(pl);
    return NULL;
}

static int dial_start(weir__conn *cn)
{
    int r;
    if (cn->nstreams == 0)
        return cerr(cn, -EINVAL, "no stream declared");
    if ((r = dial_once(cn, cn->timeout_ms)) < 0)
        return r;
    weir__store_release(&cn->last_send_ns, weir_now_ns());
    cn->last_hb_ns = weir_now_ns(); /* before dial_main starts */
    if ((r = pthread_create(&cn->work_thr, NULL, tx_main, cn)) != 0)
        return cerr(cn, -r, "cannot start the send thread");
    weir__store_release(&cn->work_running, 1);
    if ((r = pthread_create(&cn->main_thr, NULL, dial_main, cn)) != 0)
        return cerr(cn, -r, "cannot start the connection thread");
    cn->main_running = 1;
    return 0;
}

/* ==== receiving end ======================================================== */

static void *listen_rx(void *arg);

/*
 * Acknowledge streams v[0..n) (in ascending stream order) and grant what
 * each one's channel can take now. mode ACK_LAZY: a stream only when
 * `step` messages went unacknowledged or `step` credits can be added;
 * ACK_MOVED: whenever its seq or limit moved (about to wait for bytes);
 * ACK_ALWAYS: in any case (the answer to a CLOSE). The ACKs that are due
 * go out in one transport send per ACK_GROUP streams (a wide connection
 * acknowledges many streams at once: one write, one wake-up of the
 * sender's rx thread, not one per stream). Each stream's ACK is computed
 * and sent under its ack_mu, taken in stream order and held across the
 * send, so a stream's (seq, limit) never go backwards on the wire; a
 * group bounds how many a thread holds at once (ThreadSanitizer tracks 64
 * at most). Returns how many ACKs went out (0: none was due, or there is
 * no pipe), or the first send's error.
 */
enum { ACK_LAZY, ACK_MOVED, ACK_ALWAYS };
#define ACK_GROUP 16u

static int ack_group(weir__conn *cn, struct stream *const *v, unsigned n, int mode)
{
    uint8_t h[ACK_GROUP][WEIR__FRAME_HDR];
    struct iovec iov[ACK_GROUP];
    uint64_t seq[ACK_GROUP], lim[ACK_GROUP];
    unsigned char due[ACK_GROUP];
    unsigned ndue = 0;
    int r = 0, ring = 0;
    if (n > ACK_GROUP)
        n = ACK_GROUP;
    for (unsigned i = 0; i < n; i++) {
        struct stream *s = v[i];
        pthread_mutex_lock(&s->ack_mu);
        /* write_seq first, then the gate: a snapshot that never over-grants. */
        uint64_t ws = weir__chan_write_seq(s->ch);
        uint64_t gate = weir__chan_gate(s->ch);
        uint64_t lim_w = gate + s->depth < ws + s->window ? gate + s->depth : ws + s->window;
        seq[i] = ws + s->off;
        lim[i] = weir__load_acquire(&s->ended) ? seq[i] : lim_w + s->off;
        uint64_t acked = weir__load_relaxed(&s->acked), old = weir__load_relaxed(&s->limit);
        if (lim[i] < old)
            lim[i] = old; /* granted already; the channel still has room for it */
        due[i] = mode == ACK_ALWAYS  ? 1
                 : mode == ACK_MOVED ? (seq[i] > acked || lim[i] > old)
                                     : (seq[i] - acked >= s->step || lim[i] - old >= s->step);
        ndue += due[i];
    }
    if (ndue) {
        pthread_mutex_lock(&cn->send_mu);
        if (cn->pipe) {
            unsigned k = 0;
            for (unsigned i = 0; i < n; i++) {
                if (!due[i])
                    continue;
                struct stream *s = v[i];
                /* Before the send: the rx thread may see DATA sent on these
                 * credits before send() returns. (A failed send breaks the
                 * pipe: the next WELCOME recomputes both.) */
                weir__store_release(&s->acked, seq[i]);
                weir__store_release(&s->limit, lim[i]);
                hdr(h[k], WEIR__FR_ACK, 0, s->id, 0, (uint32_t)(lim[i] - seq[i]), seq[i]);
                iov[k] = (struct iovec){h[k], WEIR__FRAME_HDR};
                k++;
            }
            r = cn->tp->send(cn->pipe, iov, k, cn->timeout_ms);
            if (r < 0)
                cn->tp->close(cn->pipe); /* a prefix may have gone: the byte stream is broken */
            if (r == 0) {
                weir__fetch_add(&cn->frames, k);
                weir__fetch_add(&cn->batches, 1);
                for (unsigned i = 0; i < n; i++)
                    if (due[i])
                        weir__fetch_add(&v[i]->batches, 1);
                r = (int)k;
            }
        }
        pthread_mutex_unlock(&cn->send_mu);
    }
    for (unsigned i = n; i-- > 0;) {
        struct stream *s = v[i];
        uint64_t sq = seq[i];
        int starved = !weir__load_acquire(&s->ended) && weir__load_relaxed(&s->limit) - sq < s->step;
        /* Still under ack_mu (lock order: ack_mu, then mu): stored in the
         * order computed, so a grant's "not starved" cannot land after the
         * rx thread's later "starved" and leave the credit thread asleep. */
        pthread_mutex_lock(&cn->mu);
        int news = starved != s->starved;
        s->starved = starved;
        pthread_mutex_unlock(&cn->mu);
        pthread_mutex_unlock(&s->ack_mu);
        ring |= news && starved;
    }
    if (ring)
        ring_bell(cn);
    return r;
}

static int ack_streams(weir__conn *cn, struct stream *const *v, unsigned n, int mode)
{
    int sent = 0;
    for (unsigned i = 0; i < n; i += ACK_GROUP) {
        int r = ack_group(cn, v + i, n - i < ACK_GROUP ? n - i : ACK_GROUP, mode);
        if (r < 0)
            return r;
        sent += r;
    }
    return sent;
}

static int ack_stream(struct stream *s, int mode)
{
    return ack_group(s->cn, &s, 1, mode);
}

/*
 * The listener's one credit thread, for every receiving stream: a stream
 * the rx thread marked starved (fewer than `step` credits left) needs its
 * readers to free `step` slots of w before the next grant. The thread
 * grants every starved stream whose gate has moved far enough (ack_stream),
 * and otherwise sleeps on the writer futex of every starved stream's w and
 * the connection's bell at once (weir__wait_many), as a blocked writer of
 * each would; the rx thread rings the bell when a stream starves.
 */
struct credit_wait {
    weir__conn *cn;
    uint32_t bell0;
    unsigned n;
    struct stream **st;
    const uint64_t *need;
};

static int credit_ready(void *arg)
{
    struct credit_wait *t = arg;
    if (weir__load_acquire(&t->cn->bell) != t->bell0 || weir__load_acquire(&t->cn->stop))
        return 1;
    for (unsigned i = 0; i < t->n; i++)
        if (weir__chan_gate(t->st[i]->ch) >= t->need[i])
            return 1;
    return 0;
}

static void *credit_main(void *arg)
{
    weir__conn *cn = arg;
    struct stream *st[NSTREAMS];
    uint64_t need[NSTREAMS];
    struct weir__wait_word words[NSTREAMS + 1];
    while (!weir__load_acquire(&cn->stop)) {
        uint32_t bell0 = weir__load_acquire(&cn->bell);
        unsigned n = 0, granted = 0, tried = 0;
        pthread_mutex_lock(&cn->mu);
        for (unsigned i = 0; cn->pipe && i < cn->nstreams; i++) {
            struct stream *s = &cn->st[i];
            if (!s->starved)
                continue;
            /* The limit can reach target once gate + depth (in w's numbering) does. */
            uint64_t target_w = weir__load_acquire(&s->limit) - s->off + s->step;
            need[n] = target_w > s->depth ? target_w - s->depth : 0;
            st[n++] = s;
        }
        pthread_mutex_unlock(&cn->mu);
        struct stream *ready[NSTREAMS];
        for (unsigned i = 0; i < n; i++)
            if (weir__chan_gate(st[i]->ch) >= need[i])
                ready[tried++] = st[i];
        if (tried) /* one send for all of them (st[] is in stream order) */
            granted = ack_streams(cn, ready, tried, ACK_LAZY) > 0;
        if (tried && !granted) {
            /* nothing granted (no pipe, a send error): do not spin */
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (tried)
            continue;
        words[0] = (struct weir__wait_word){&cn->bell, &cn->bell_sleepers};
        for (unsigned i = 0; i < n; i++) {
            struct weir__chan_ctl *ctl = weir__chan_ctl(st[i]->ch);
            words[i + 1] = (struct weir__wait_word){&ctl->wr_futex, &ctl->wr_sleeping};
        }
        struct credit_wait t = {cn, bell0, n, st, need};
        weir__wait_many(words, n + 1, credit_ready, &t, &cn->work_spin, n ? cn->hb_ms : 1000);
    }
    return NULL;
}

/* Check a HELLO; 0, or a refusal reason. */
static int check_hello(weir__conn *cn, const struct weir__link_hello *h, char *why, size_t n)
{
    if (h->version != WEIR__LINK_PROTO) {
        snprintf(why, n, "protocol version %u, this end speaks %u", h->version, WEIR__LINK_PROTO);
        return -EPROTO;
    }
    if (!ct_equal(h->token, h->token_len, cn->token, cn->token_len)) {
        snprintf(why, n, "wrong token");
        return -EACCES;
    }
    for (uint32_t i = 0; i < h->nstreams; i++) {
        struct stream *s = find_stream(cn, h->streams[i].stream);
        if (!s) {
            snprintf(why, n, "opens stream %u, which this end does not carry",
                     h->streams[i].stream);
            return -EPROTO;
        }
        if (strcmp(h->streams[i].channel, weir_chan_name(s->ch)) != 0) {
            snprintf(why, n, "stream %u: channel '%.60s', this end carries '%.60s'", s->id,
                     h->streams[i].channel, weir_chan_name(s->ch));
            return -EPROTO;
        }
    }
    for (unsigned i = 0; i < cn->nstreams; i++) {
        uint32_t k;
        for (k = 0; k < h->nstreams && h->streams[k].stream != cn->st[i].id; k++) {
        }
        if (k == h->nstreams) {
            snprintf(why, n, "does not open stream %u (channel '%.60s')", cn->st[i].id,
                     weir_chan_name(cn->st[i].ch));
            return -EPROTO;
        }
    }
    if (cn->have_sender && h->sender_id != cn->cur_sender) {
        snprintf(why, n, "another sender is connected to this stream");
        return -EBUSY;
    }
    if (weir__load_acquire(&cn->status)) {
        snprintf(why, n, cn->nstreams == 1 ? "the stream has ended" : "every stream has ended");
        return -EPIPE;
    }
    return 0;
}

/* Read a new connection's HELLO within hello_ms: its payload into buf
 * (WEIR__FRAME_CTL_MAX bytes), its length into *len. 0, or -1 with the
 * reason in why. */
static int read_hello(const struct weir__tp_ops *tp, weir__tp_pipe *p, int hello_ms,
                      uint8_t *buf, uint32_t *len, char *why, size_t n)
{
    struct weir__frame f;
    int r = tp->recv_into(p, buf, WEIR__FRAME_HDR, hello_ms);
    if (r == -ETIMEDOUT) {
        snprintf(why, n, "sent no HELLO within %d ms", hello_ms);
        return -1;
    }
    if (r < 0) {
        snprintf(why, n, "closed before its HELLO");
        return -1;
    }
    if (weir__frame_decode(buf, WEIR__FRAME_HDR, 0, &f) < 0) {
        snprintf(why, n, "%s", weir_errmsg());
        return -1;
    }
    if (f.type != WEIR__FR_HELLO) {
        snprintf(why, n, "first frame is %s, not HELLO", weir__frame_type_name(f.type));
        return -1;
    }
    if (tp->recv_into(p, buf, f.len, hello_ms) < 0) {
        snprintf(why, n, "truncated HELLO (%u bytes announced)", f.len);
        return -1;
    }
    *len = f.len;
    return 0;
}

/* Judge a new connection's HELLO (its payload hb, hlen bytes), then install
 * it or refuse it; either way the pipe is taken. */
static void listen_judge(weir__conn *cn, weir__tp_pipe *p, const uint8_t *hb, uint32_t hlen)
{
    char peer[80], why[200];
    cn->tp->peer(p, peer, sizeof peer);
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int r;
    struct weir__link_hello h;
    if ((r = weir__link_hello_decode(hb, hlen, &h)) < 0) {
        snprintf(why, sizeof why, "%s", weir_errmsg());
        goto refuse;
    }
    if ((r = check_hello(cn, &h, why, sizeof why)) < 0)
        goto refuse;
    /* Accepted: a reconnect of the same sender replaces its old connection. */
    drop_pipe(cn);
    if (!cn->have_sender) {
        cn->have_sender = 1;
        cn->cur_sender = h.sender_id;
    } else {
        weir__fetch_add(&cn->reconnects, 1);
    }
    const struct weir__link_stream_open *so[NSTREAMS];
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        for (uint32_t k = 0; k < h.nstreams; k++)
            if (h.streams[k].stream == s->id)
                so[i] = &h.streams[k];
        if (!s->admitted) {
            s->admitted = 1;
            s->expected = so[i]->next_seq;
            s->off = s->expected - weir__chan_write_seq(s->ch);
            weir__store_release(&s->acked, s->expected);
            weir__store_release(&s->limit, s->expected);
        }
        if (so[i]->next_seq > s->expected) {
            snprintf(why, sizeof why, "stream %u resumes at message %llu but message %llu is "
                     "missing", s->id, (unsigned long long)so[i]->next_seq,
                     (unsigned long long)s->expected);
            r = -EPROTO;
            goto refuse;
        }
    }
    /* WELCOME: per stream where the receiver stands and what its channel takes now. */
    struct weir__link_welcome w;
    memset(&w, 0, sizeof w);
    w.version = WEIR__LINK_PROTO;
    w.nstreams = cn->nstreams;
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        pthread_mutex_lock(&s->ack_mu);
        uint64_t ws = weir__chan_write_seq(s->ch);
        uint64_t gate = weir__chan_gate(s->ch);
        uint64_t lim_w = gate + s->depth < ws + s->window ? gate + s->depth : ws + s->window;
        uint64_t lim = weir__load_acquire(&s->ended) ? s->expected : lim_w + s->off;
        if (lim < s->expected)
            lim = s->expected;
        weir__store_release(&s->acked, s->expected);
        weir__store_release(&s->limit, lim);
        pthread_mutex_unlock(&s->ack_mu);
        w.streams[i].stream = s->id;
        w.streams[i].next_seq = s->expected;
        w.streams[i].credits = (uint32_t)(lim - s->expected);
        pthread_mutex_lock(&cn->mu);
        s->starved = !weir__load_acquire(&s->ended) && lim - s->expected < s->step;
        pthread_mutex_unlock(&cn->mu);
    }
    int n = weir__link_welcome_encode(&w, buf, sizeof buf);
    if (n < 0 || send_frame(cn, p, WEIR__FR_WELCOME, 0, 0, 0, buf, (uint32_t)n) < 0) {
        cn->tp->pipe_free(p);
        return;
    }
    /* A stream this end refused: its REFUSE may have been lost in a cut, so
     * it is said again (the sender ends that stream, if it has not yet). p
     * is not published: no other sender. */
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        if (!weir__load_acquire(&s->refused))
            continue;
        char text[MSG_LEN];
        pthread_mutex_lock(&cn->mu);
        snprintf(text, sizeof text, "%s", s->err);
        pthread_mutex_unlock(&cn->mu);
        send_refuse_locked(cn, p, s->id, text, cn->timeout_ms);
    }
    if (publish_pipe(cn, p, peer, listen_rx) < 0)
        cn->tp->pipe_free(p);
    return;
refuse: {
    char line[256];
    snprintf(line, sizeof line, "refused %.40s: %.190s", peer, why);
    refusal(cn, line);
    /* Ended (check_hello's -EPIPE): the sender may be reconnecting only
     * because a last ACK was lost; the streams whose CLOSE came tell it so. */
    uint32_t ended[NSTREAMS], nended = 0;
    for (unsigned i = 0; r == -EPIPE && i < cn->nstreams; i++)
        if (weir__load_acquire(&cn->st[i].ended) &&
            weir__load_acquire(&cn->st[i].status) == -EPIPE)
            ended[nended++] = cn->st[i].id;
    send_refuse_ended_locked(cn, p, 0, why, ended, nended, 200);
    cn->tp->pipe_free(p);
}
}

/* A new connection on a socket of this listener's own. */
static void listen_admit(weir__conn *cn, weir__tp_pipe *p)
{
    char why[200];
    uint32_t len = 0;
    if (read_hello(cn->tp, p, cn->hello_ms, cn->hand_buf, &len, why, sizeof why) < 0) {
        char peer[80], line[256];
        cn->tp->peer(p, peer, sizeof peer);
        snprintf(line, sizeof line, "refused %.40s: %.190s", peer, why);
        refusal(cn, line);
        send_refuse_locked(cn, p, 0, why, 200); /* p is not published: no other sender */
        cn->tp->pipe_free(p);
        return;
    }
    listen_judge(cn, p, cn->hand_buf, len);
}

/* Read and drop len payload bytes (a stream that has ended). */
static int skip_bytes(weir__conn *cn, weir__tp_pipe *p, size_t len)
{
    while (len) {
        size_t k = len < ERR_MAX ? len : ERR_MAX;
        int r = cn->tp->recv_into(p, cn->scratch, k, cn->suspect_ms);
        if (r < 0)
            return r;
        len -= k;
    }
    return 0;
}

/* A receiving stream fails on its own: error record (if w has room), close,
 * and tell the sender (REFUSE on the stream). */
static void recv_stream_fail(struct stream *s, weir__tp_pipe *p, int code, const char *text)
{
    if (code == -EPIPE)
        code = -ECONNABORTED; /* w was closed under it: -EPIPE is a clean end only */
    weir__store_release(&s->ended, 1);
    stream_end(s, code, text);
    weir__store_release(&s->refused, 1);
    weir_chan_write_error(s->ch, text, 0);
    weir_chan_close(s->ch);
    pthread_mutex_lock(&s->cn->send_mu);
    send_refuse_locked(s->cn, p, s->id, text, s->cn->timeout_ms);
    pthread_mutex_unlock(&s->cn->send_mu);
}

/* Counters of the frames of one received chunk, added once per chunk. */
struct rx_batch {
    uint64_t frames;
    uint64_t touched;            /* bit i: stream i received DATA (NSTREAMS <= 64) */
    uint64_t msgs[NSTREAMS], bytes[NSTREAMS];
};
_Static_assert(NSTREAMS <= 64, "rx_batch.touched has a bit per stream");

/* Add b's counters to the connection's and its streams' (once per chunk,
 * and before anything that ends a stream or the connection: whoever sees
 * that sees every message counted). Stamps last_heard once. */
static void rx_count(weir__conn *cn, struct rx_batch *b)
{
    if (b->frames) {
        weir__fetch_add(&cn->frames, b->frames);
        weir__store_release(&cn->last_heard_ns, weir_now_ns());
        b->frames = 0;
    }
    for (uint64_t t = b->touched; t; t &= t - 1) {
        unsigned i = (unsigned)__builtin_ctzll(t);
        weir__fetch_add(&cn->st[i].messages, b->msgs[i]);
        weir__fetch_add(&cn->st[i].bytes, b->bytes[i]);
        b->msgs[i] = b->bytes[i] = 0;
    }
}

/* Write one DATA frame's payload into its stream's channel. Within the
 * stream's credits the channel always has a free slot: nothing waits.
 * src: the payload, already received (a chunk), or NULL to read it from p. */
static int receive_data(weir__conn *cn, struct stream *s, weir__tp_pipe *p,
                        const struct weir__frame *f, const uint8_t *src, struct rx_batch *b)
{
    if (f->flags & WEIR__FRF_ERROR) {
        if (f->len > ERR_MAX)
            return cerr(cn, -EMSGSIZE, "peer %s: error record of %u bytes on stream %u (at most "
                        "%u)", cn->peer, f->len, s->id, ERR_MAX);
        int r = 0;
        if (src)
            memcpy(cn->scratch, src, f->len);
        else if ((r = cn->tp->recv_into(p, cn->scratch, f->len, cn->suspect_ms)) < 0)
            return r;
        cn->scratch[f->len - 1] = '\0';
        if ((r = weir_chan_write_error(s->ch, (const char *)cn->scratch, 0)) < 0) {
            char text[MSG_LEN];
            snprintf(text, sizeof text, "link %s: stream %u: %s", cn->endpoint, s->id,
                     weir_errmsg());
            rx_count(cn, b);
            recv_stream_fail(s, p, r, text);
        }
        return 0;
    }
    void *slot = weir_chan_reserve(s->ch, f->len, 0);
    if (!slot) {
        char text[MSG_LEN];
        int code = weir_errcode();
        snprintf(text, sizeof text, "link %s: stream %u: message %llu: %s", cn->endpoint, s->id,
                 (unsigned long long)f->seq, weir_errmsg());
        rx_count(cn, b);
        recv_stream_fail(s, p, code, text);
        return src ? 0 : skip_bytes(cn, p, f->len);
    }
    if (src) {
        memcpy(slot, src, f->len);
    } else {
        int r = cn->tp->recv_into(p, slot, f->len, cn->suspect_ms);
        if (r < 0) {
            weir__chan_unreserve(s->ch);
            return r;
        }
    }
    return weir_chan_commit(s->ch, f->len);
}

/* rx_count, then acknowledge the streams that received DATA (lazily:
 * step messages or credits). 0 or the send's error. */
static int rx_flush(weir__conn *cn, struct rx_batch *b)
{
    uint64_t t = b->touched;
    int r = 0;
    rx_count(cn, b);
    b->touched = 0;
    struct stream *v[NSTREAMS];
    unsigned n = 0;
    for (; t; t &= t - 1)
        v[n++] = &cn->st[__builtin_ctzll(t)];
    if (n && ack_streams(cn, v, n, ACK_LAZY) < 0)
        r = weir_errcode();
    return r;
}

/*
 * One DATA frame of stream s (header decoded): sequence and credit checks,
 * then the payload into the channel (from src, or read from p). Counted in
 * b. 0, or the error (the connection failed for a protocol error).
 */
static int rx_data(weir__conn *cn, struct stream *s, weir__tp_pipe *p, const struct weir__frame *f,
                   const uint8_t *src, struct rx_batch *b)
{
    int r;
    if (weir__load_acquire(&s->ended))
        return src ? 0 : skip_bytes(cn, p, f->len); /* in flight when the stream ended */
    if (f->seq != s->expected) {
        r = cerr(cn, -EPROTO, "peer %s sent message %llu of stream %u, expected %llu of "
                 "stream %u", cn->peer, (unsigned long long)f->seq, f->stream,
                 (unsigned long long)s->expected, s->id);
        rx_count(cn, b);
        conn_fail(cn, r);
        return r;
    }
    if (f->seq >= weir__load_acquire(&s->limit)) {
        r = cerr(cn, -EPROTO, "peer %s sent message %llu of stream %u beyond its credits "
                 "(limit %llu)", cn->peer, (unsigned long long)f->seq, s->id,
                 (unsigned long long)weir__load_relaxed(&s->limit));
        rx_count(cn, b);
        conn_fail(cn, r);
        return r;
    }
    if ((r = receive_data(cn, s, p, f, src, b)) < 0)
        return r;
    if (weir__load_acquire(&s->ended))
        return 0;
    WEIR_PROBE3(link_recv, weir_chan_name(s->ch), f->seq, f->len);
    s->expected++;
    unsigned k = (unsigned)(s - cn->st);
    b->touched |= 1ull << k;
    b->msgs[k]++;
    b->bytes[k] += f->len;
    /* A long chunk: acknowledge as the per-frame path would, every step. */
    if (s->expected - weir__load_relaxed(&s->acked) >= s->step)
        return rx_flush(cn, b);
    return 0;
}

/* Any frame but an in-chunk DATA (header decoded and consumed; its payload
 * is read from p). 0, or the error that ends the rx thread. */
static int rx_frame(weir__conn *cn, weir__tp_pipe *p, struct weir__frame *f, struct rx_batch *b)
{
    int r = 0;
    struct stream *s = NULL;
    if (f->type != WEIR__FR_DATA && f->type != WEIR__FR_HEARTBEAT)
        rx_count(cn, b); /* it may end a stream or the connection */
    if (f->type == WEIR__FR_DATA || f->type == WEIR__FR_CLOSE ||
        (f->type == WEIR__FR_REFUSE && f->stream)) {
        if (!(s = find_stream(cn, f->stream))) {
            r = cerr(cn, -EPROTO, "peer %s sent %s on stream %u, which this end does not "
                     "carry", cn->peer, weir__frame_type_name(f->type), f->stream);
            conn_fail(cn, r);
            return r;
        }
    }
    switch (f->type) {
    case WEIR__FR_DATA:
        return rx_data(cn, s, p, f, NULL, b);
    case WEIR__FR_CLOSE:
        weir__fetch_add(&s->closes, 1);
        /* Counters first: whoever sees the stream ended sees all its messages. */
        if ((r = rx_flush(cn, b)) < 0)
            return r;
        if (weir__load_acquire(&s->ended)) {
            /* a CLOSE resent after a cut: acknowledge it again */
            if (f->seq == s->expected && weir__load_acquire(&s->status) == -EPIPE &&
                ack_stream(s, ACK_ALWAYS) < 0)
                r = weir_errcode();
            return r;
        }
        if (f->seq != s->expected) {
            r = cerr(cn, -EPROTO, "peer %s closed stream %u after %llu messages, %llu "
                     "received", cn->peer, f->stream, (unsigned long long)f->seq,
                     (unsigned long long)s->expected);
            conn_fail(cn, r);
            return r;
        }
        {
            /* Status before the close: whoever sees w closed then sees the
             * stream ended. */
            char text[MSG_LEN];
            if (cn->nstreams == 1)
                snprintf(text, sizeof text, "link %s: stream ended (the sender's channel "
                         "closed)", cn->endpoint);
            else
                snprintf(text, sizeof text, "link %s: stream %u ended (the sender's channel "
                         "closed)", cn->endpoint, s->id);
            /* The final ACK before w closes: a reader that sees w closed
             * may free the link at once, and the sender needs that ACK
             * to end cleanly ("peer lost" otherwise). */
            weir__store_release(&s->ended, 1);
            int ar = ack_stream(s, ACK_ALWAYS);
            stream_end(s, -EPIPE, text);
            weir_chan_close(s->ch);
            if (ar < 0)
                r = weir_errcode();
            else if (weir__load_acquire(&cn->status) == -EPIPE)
                r = -EPIPE; /* every stream ended */
        }
        return r;
    case WEIR__FR_REFUSE: {
        /* The sender ended this stream (its side failed). */
        struct weir__link_refuse rf;
        const char *reason = "?";
        if (!s) {
            r = cerr(cn, -EPROTO, "peer %s sent REFUSE on the connection, a dialer's only "
                     "answer is to close", cn->peer);
            conn_fail(cn, r);
            return r;
        }
        if ((r = rx_flush(cn, b)) < 0)
            return r;
        if ((r = cn->tp->recv_into(p, cn->scratch, f->len, cn->suspect_ms)) < 0)
            return r;
        if (weir__link_refuse_decode(cn->scratch, f->len, &rf) == 0)
            reason = rf.reason;
        if (!weir__load_acquire(&s->ended)) {
            char text[MSG_LEN];
            snprintf(text, sizeof text, "link %.60s: peer %.60s ended stream %u: %.80s", cn->endpoint,
                     cn->peer, s->id, reason);
            weir__store_release(&s->ended, 1);
            stream_end(s, -ECONNABORTED, text);
            weir_chan_write_error(s->ch, text, 0);
            weir_chan_close(s->ch);
        }
        return 0;
    }
    case WEIR__FR_HEARTBEAT:
        return send_frame(cn, p, WEIR__FR_ECHO, 0, 0, f->seq, NULL, 0);
    case WEIR__FR_ECHO: { /* the dialer answered our HEARTBEAT (protocol 2) */
        uint64_t now = weir_now_ns();
        if (f->seq <= now)
            weir__store_relaxed(&cn->rtt_ns, now - f->seq);
        return 0;
    }
    default:
        r = cerr(cn, -EPROTO, "peer %s sent an unexpected %s frame", cn->peer,
                 weir__frame_type_name(f->type));
        conn_fail(cn, r);
        return r;
    }
}

/*
 * Parse every frame of one received chunk in one pass: DATA whose payload
 * is in the chunk goes straight from it into its slot; any other frame (a
 * control frame, a payload running past the chunk, a header cut by the
 * chunk's end) gives the chunk back up to its header and takes the
 * per-frame path. Every header still goes through weir__frame_decode.
 */
static int rx_chunk(weir__conn *cn, weir__tp_pipe *p, struct weir__tp_chunk *chunk,
                    struct rx_batch *b)
{
    size_t off = 0;
    int r = 0;
    for (;;) {
        struct weir__frame f;
        size_t left = chunk->len - off;
        if (left < WEIR__FRAME_HDR) {
            cn->tp->recv_done(p, chunk, off);
            if (left == 0)
                return 0;
            /* A header cut by the chunk's end: the per-frame path. */
            if ((r = read_hdr(cn, p, &f, cn->suspect_ms, WEIR__FRAME_DATA_MAX)) < 0) {
                if (r == -ETIMEDOUT)
                    cerr(cn, -ETIMEDOUT, "peer %s silent for %d ms", cn->peer, cn->suspect_ms);
                return r;
            }
            return rx_frame(cn, p, &f, b);
        }
        const uint8_t *h = chunk->data + off;
        if ((r = weir__frame_decode(h, WEIR__FRAME_HDR, WEIR__FRAME_DATA_MAX, &f)) < 0) {
            cn->tp->recv_done(p, chunk, off);
            return r;
        }
        b->frames++;
        struct stream *s;
        if (f.type == WEIR__FR_DATA && f.len <= left - WEIR__FRAME_HDR &&
            (s = find_stream(cn, f.stream))) {
            off += WEIR__FRAME_HDR + f.len;
            if ((r = rx_data(cn, s, p, &f, h + WEIR__FRAME_HDR, b)) < 0) {
                cn->tp->recv_done(p, chunk, off);
                return r;
            }
            continue;
        }
        /* Per-frame path; it reads the payload from p after the header. */
        cn->tp->recv_done(p, chunk, off + WEIR__FRAME_HDR);
        return rx_frame(cn, p, &f, b);
    }
}

/* Acknowledge every stream whose seq or limit moved (ack_streams, ACK_MOVED). 0 or the error. */
static int ack_moved_all(weir__conn *cn)
{
    struct stream *v[NSTREAMS];
    for (unsigned i = 0; i < cn->nstreams; i++)
        v[i] = &cn->st[i];
    return cn->nstreams && ack_streams(cn, v, cn->nstreams, ACK_MOVED) < 0 ? weir_errcode() : 0;
}

/* A receiving stream that failed: the reason as an error record into its w, then close. */
static void end_w_with(struct stream *s, const char *text)
{
    weir__store_release(&s->ended, 1);
    weir_chan_write_error(s->ch, text, 0);
    weir_chan_close(s->ch);
}

static void *listen_rx(void *arg)
{
    weir__conn *cn = arg;
    weir__tp_pipe *p = cn->pipe;
    uint64_t last_hb = weir_now_ns(), last_sweep = last_hb;
    struct rx_batch b;
    memset(&b, 0, sizeof b);
    int r = 0;
    while (r == 0) {
        /* Nothing to read: wait ACK_DELAY_MS for more, then, about to wait
         * longer, acknowledge what is committed (a delayed ACK, as TCP's:
         * a stream that keeps arriving is acknowledged every `step`
         * messages, not once per message). */
        struct weir__tp_chunk chunk;
        r = cn->tp->recv(p, &chunk, 0);
        if (r == -ETIMEDOUT)
            r = cn->tp->recv(p, &chunk, ACK_DELAY_MS);
        if (r == -ETIMEDOUT) {
            int a = ack_moved_all(cn);
            if (a < 0)
                r = a;
            last_sweep = weir_now_ns();
            if (r != -ETIMEDOUT)
                break;
        }
        /* Wait in hb_ms steps, heartbeating; silent for suspect_ms: lost. */
        int silent = 0;
        while (r == -ETIMEDOUT && silent < cn->suspect_ms && !weir__load_acquire(&cn->stop)) {
            if (ms_since(last_hb) >= cn->hb_ms) {
                if ((r = send_frame(cn, p, WEIR__FR_HEARTBEAT, 0, 0, weir_now_ns(), NULL, 0)) < 0)
                    break;
                last_hb = weir_now_ns();
            }
            r = cn->tp->recv(p, &chunk, cn->hb_ms);
            if (r == -ETIMEDOUT)
                silent += cn->hb_ms;
        }
        if (r == -ETIMEDOUT) {
            r = cerr(cn, -ETIMEDOUT, "peer %s silent for %d ms", cn->peer, silent);
            break;
        }
        if (r < 0)
            break;
        if ((r = rx_chunk(cn, p, &chunk, &b)) == 0)
            r = rx_flush(cn, &b);
        uint64_t now = weir_now_ns();
        /* Busy: every ACK_DELAY_MS, what is committed but not acknowledged
         * yet, below `step`, is acknowledged too. A sender whose own ring
         * holds fewer than `step` messages waits for exactly that ACK, and
         * another stream keeping the connection busy would otherwise hold
         * it back until the connection goes idle. */
        if (r == 0 && now - last_sweep >= (uint64_t)ACK_DELAY_MS * 1000000ull) {
            r = ack_moved_all(cn);
            last_sweep = now;
        }
        /* Busy too, a HEARTBEAT every RTT_EVERY heartbeat periods: its ECHO
         * keeps this end's round trip current under load, as the dialer's. */
        if (r == 0 && now - last_hb >= (uint64_t)RTT_EVERY * (uint64_t)cn->hb_ms * 1000000ull) {
            r = send_frame(cn, p, WEIR__FR_HEARTBEAT, 0, 0, now, NULL, 0);
            last_hb = now;
        }
    }
    rx_count(cn, &b);
    if (getenv("WEIR_LINK_DEBUG"))
        fprintf(stderr, "link %s: listener rx ends: %s\n", cn->endpoint, weir_errmsg());
    pthread_mutex_lock(&cn->mu);
    weir__store_release(&cn->rx_done, 1);
    pthread_mutex_unlock(&cn->mu);
    cn->tp->close(p);
    return NULL;
}

static void *listen_main(void *arg)
{
    weir__conn *cn = arg;
    /* Past a clean end (-EPIPE) too, until the link is freed: a sender whose
     * last ACK was lost reconnects, and its refusal names the streams that
     * ended (listen_judge), so it ends them cleanly instead of failing. */
    int st0;
    while (!weir__load_acquire(&cn->stop) &&
           ((st0 = weir__load_acquire(&cn->status)) == 0 || st0 == -EPIPE)) {
        weir__tp_pipe *np = NULL;
        int r;
        if (cn->on_port) {
            /* The port's acceptor read the HELLO; judge it here. */
            uint32_t len = 0;
            pthread_mutex_lock(&cn->mu);
            if (!cn->hand && !weir__load_relaxed(&cn->stop))
                timed_wait(&cn->cv, &cn->mu, cn->hb_ms);
            np = cn->hand;
            cn->hand = NULL;
            len = cn->hand_len;
            if (np) /* judged from a copy: the port writes hand_buf under mu only */
                memcpy(cn->judge_buf, cn->hand_buf, len);
            pthread_mutex_unlock(&cn->mu);
            if (np)
                listen_judge(cn, np, cn->judge_buf, len);
        } else if ((r = cn->tp->accept(cn->lst, cn->hb_ms, &np)) == 0) {
            listen_admit(cn, np);
        } else if (r != -ETIMEDOUT) {
            break;
        }
        if (cn->rx_running && weir__load_acquire(&cn->rx_done))
            drop_pipe(cn);
        if (cn->have_sender && !cn->rx_running && !weir__load_acquire(&cn->status) &&
            ms_since(weir__load_acquire(&cn->last_heard_ns)) > cn->timeout_ms) {
            /* Lost: every stream that has not ended gets the reason, then close. */
            char text[MSG_LEN];
            for (unsigned i = 0; i < cn->nstreams; i++) {
                struct stream *s = &cn->st[i];
                if (weir__load_acquire(&s->ended))
                    continue;
                if (cn->nstreams == 1)
                    snprintf(text, sizeof text, "link %s: peer %s lost for %d ms (after message "
                             "%llu)", cn->endpoint, cn->peer, cn->timeout_ms,
                             (unsigned long long)s->expected);
                else
                    snprintf(text, sizeof text, "link %s: peer %s lost for %d ms (stream %u, "
                             "after message %llu)", cn->endpoint, cn->peer, cn->timeout_ms,
                             s->id, (unsigned long long)s->expected);
                end_w_with(s, text);
            }
            weir__seterr(-ETIMEDOUT, "link %s: peer %s lost for %d ms", cn->endpoint, cn->peer,
                         cn->timeout_ms);
            if (cn->nstreams == 1)
                weir__seterr(-ETIMEDOUT, "%s", text);
            conn_fail(cn, -ETIMEDOUT);
        }
    }
    /* Failed otherwise (a protocol error on the receive thread, a failed
     * accept): the streams that have not ended get the reason and close, as
     * when the peer is lost, once the receive thread (their writer) is gone. */
    int st = weir__load_acquire(&cn->status);
    if (st != 0 && st != -EPIPE && !weir__load_acquire(&cn->stop)) {
        if (cn->rx_running)
            drop_pipe(cn);
        char text[MSG_LEN];
        pthread_mutex_lock(&cn->mu);
        snprintf(text, sizeof text, "%s", cn->err);
        pthread_mutex_unlock(&cn->mu);
        for (unsigned i = 0; i < cn->nstreams; i++)
            if (!weir__load_acquire(&cn->st[i].ended))
                end_w_with(&cn->st[i], text);
    }
    return NULL;
}

static int listen_start(weir__conn *cn)
{
    int r;
    if (cn->nstreams == 0)
        return cerr(cn, -EINVAL, "no stream declared");
    if ((r = pthread_create(&cn->work_thr, NULL, credit_main, cn)) != 0)
        return cerr(cn, -r, "cannot start the credit thread");
    cn->work_running = 1;
    if ((r = pthread_create(&cn->main_thr, NULL, listen_main, cn)) != 0)
        return cerr(cn, -r, "cannot start the accept thread");
    cn->main_running = 1;
    return 0;
}

/* ==== common =============================================================== */

int weir__conn_start(weir__conn *cn)
{
    weir__clearerr();
    if (!cn)
        return weir__seterr(-EINVAL, "link (null): start");
    if (cn->started)
        return cerr(cn, -EINVAL, "started twice");
    cn->started = 1;
    return cn->sending ? dial_start(cn) : listen_start(cn);
}

const char *weir__conn_endpoint(const weir__conn *cn)
{
    return cn ? cn->endpoint : "(null)";
}

int weir__conn_status(const weir__conn *cn)
{
    if (!cn)
        return weir__seterr(-EINVAL, "link (null): status");
    weir__conn *m = (weir__conn *)cn;
    int s = weir__load_acquire(&m->status);
    /* A dialer that failed: its send thread deregisters the streams' readers
     * of their channels as it stops, moments later (a failure closes the
     * pipe, so no send holds it). Report the failure once they are gone, so
     * a caller who sees it finds c's writer free; at most 200 ms. */
    if (s && s != -EPIPE && m->sending && weir__load_acquire(&m->work_running))
        for (int k = 0; k < 200 && !weir__load_acquire(&m->tx_released); k++) {
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        }
    pthread_mutex_lock(&m->mu);
    s = weir__load_acquire(&m->status);
    if (s)
        weir__seterr(s, "%s", m->err);
    pthread_mutex_unlock(&m->mu);
    return s;
}

int weir__conn_stream_status(const weir__conn *cn, uint32_t stream)
{
    if (!cn)
        return weir__seterr(-EINVAL, "link (null): stream status");
    weir__conn *m = (weir__conn *)cn;
    struct stream *s = find_stream(m, stream);
    if (!s)
        return cerr(m, -ENOENT, "no stream %u", stream);
    pthread_mutex_lock(&m->mu);
    int st = weir__load_acquire(&s->status);
    if (st)
        weir__seterr(st, "%s", s->err);
    pthread_mutex_unlock(&m->mu);
    return st;
}

int weir__conn_stream_stats(const weir__conn *cn, uint32_t stream,
                            struct weir__conn_stream_stats *st)
{
    if (!cn || !st)
        return weir__seterr(-EINVAL, "link: stream stats need a connection and a buffer");
    struct stream *s = find_stream((weir__conn *)cn, stream);
    if (!s)
        return cerr((weir__conn *)cn, -ENOENT, "no stream %u", stream);
    memset(st, 0, sizeof *st);
    st->stream = s->id;
    st->status = weir__load_acquire(&s->status);
    st->messages = weir__load_relaxed(&s->messages);
    st->bytes = weir__load_relaxed(&s->bytes);
    st->acked = weir__load_relaxed(&s->acked);
    st->limit = weir__load_relaxed(&s->limit);
    st->credit_stalls = weir__load_relaxed(&s->credit_stalls);
    st->frames = st->messages + weir__load_relaxed(&s->closes); /* DATA + CLOSE */
    st->batches = weir__load_relaxed(&s->batches);
    return 0;
}

int weir__conn_stats(const weir__conn *cn, struct weir_link_stats *st)
{
    if (!cn || !st)
        return weir__seterr(-EINVAL, "link: weir_link_stats needs a link and a buffer");
    weir__conn *m = (weir__conn *)cn;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&m->mu);
    snprintf(st->endpoint, sizeof st->endpoint, "%s", m->endpoint);
    snprintf(st->peer, sizeof st->peer, "%s", m->peer);
    snprintf(st->last_refusal, sizeof st->last_refusal, "%s", m->last_refusal);
    pthread_mutex_unlock(&m->mu);
    st->sending = m->sending;
    st->status = weir__load_acquire(&m->status);
    for (unsigned i = 0; i < m->nstreams; i++) {
        st->messages += weir__load_relaxed(&m->st[i].messages);
        st->bytes += weir__load_relaxed(&m->st[i].bytes);
        st->credit_stalls += weir__load_relaxed(&m->st[i].credit_stalls);
        st->acked += weir__load_relaxed(&m->st[i].acked);
    }
    st->frames = weir__load_relaxed(&m->frames);
    st->batches = weir__load_relaxed(&m->batches);
    st->reconnects = weir__load_relaxed(&m->reconnects);
    st->refused = weir__load_relaxed(&m->refused);
    st->last_rtt_ns = weir__load_relaxed(&m->rtt_ns);
    return 0;
}

int weir__conn_free(weir__conn *cn)
{
    if (!cn)
        return 0;
    if (cn->shared) {
        /* From now on the port hands nothing to this connection. */
        weir__conn_port *pt = cn->shared;
        pthread_mutex_lock(&pt->mu);
        for (unsigned i = 0; i < pt->nmembers; i++)
            if (pt->members[i] == cn)
                pt->members[i] = pt->members[--pt->nmembers];
        pthread_mutex_unlock(&pt->mu);
    }
    weir__store_release(&cn->stop, 1);
    pthread_mutex_lock(&cn->mu);
    wake_all(cn);
    if (cn->pipe)
        cn->tp->close(cn->pipe);
    pthread_mutex_unlock(&cn->mu);
    if (cn->lst)
        cn->tp->listener_close(cn->lst);
    if (cn->main_running)
        pthread_join(cn->main_thr, NULL);
    if (cn->work_running)
        pthread_join(cn->work_thr, NULL);
    if (cn->rx_running) {
        cn->tp->close(cn->pipe);
        pthread_join(cn->rx_thr, NULL);
    }
    if (cn->pipe)
        cn->tp->pipe_free(cn->pipe);
    if (cn->hand)
        cn->tp->pipe_free(cn->hand);
    if (cn->lst)
        cn->tp->listener_free(cn->lst);
    for (unsigned i = 0; i < cn->nstreams; i++) {
        struct stream *s = &cn->st[i];
        if (s->win_open)
            weir__window_fini(&s->win);
        /* Not one the send thread already gave back: the id may be someone
         * else's by now (the threads are joined: a plain read of dereg). */
        if (cn->sending && s->reader >= 0 && !s->dereg &&
            weir__chan_reader_epoch(s->ch, s->reader) >= 0)
            weir_chan_deregister_reader(s->ch, s->reader);
        pthread_mutex_destroy(&s->ack_mu);
    }
    int st = weir__load_acquire(&cn->status);
    pthread_mutex_destroy(&cn->mu);
    pthread_cond_destroy(&cn->cv);
    pthread_mutex_destroy(&cn->send_mu);
    free(cn->scratch);
    free(cn->hand_buf);
    free(cn->judge_buf);
    free(cn);
    return st;
}
