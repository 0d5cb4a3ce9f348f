/* SPDX-License-Identifier: MIT */
/*
 * channels/link.c - a channel carried to another process over a transport
 * (include/weir/link.h).
 *
 * Design notes.
 *
 * Protocol (channels/frame.h): the dialer (sending end) opens a connection
 * and sends HELLO (version, token, its random sender id, the streams it
 * opens: id, channel identity, first sequence number it still holds). The
 * listener checks all of it and answers WELCOME (per stream: the next
 * sequence number it needs, its credits) or REFUSE + close. Then DATA
 * frames flow one way and ACK frames (seq = messages committed into w,
 * aux = credits) the other; both sides send HEARTBEAT every hb_ms, the
 * receiver answers the sender's with ECHO (round-trip time).
 *
 * Streams: the frame header, HELLO and WELCOME carry a stream id per
 * frame, each stream with its own sequence numbers, credits and acks. This
 * file serves exactly one stream per connection (id 1: the standalone
 * API). Carrying many (the multi-node issue) needs two changes here: a
 * table of streams per connection, and a receiver that never waits on a
 * full w inside the shared rx thread (grant as credits only w's free
 * slots, so a commit never blocks and one stalled stream cannot stall the
 * others); today the rx thread waits in weir_chan_reserve (heartbeating).
 *
 * Sender. A window reader of c (channels/ring_window.h): the tx thread
 * takes messages, sends header + payload straight from the slots in
 * batches of up to BATCH frames, never more than `credits` beyond the last
 * ack; the rx thread receives ACKs and releases the window up to them, so
 * c's writer blocks when the receiver stops acknowledging (end-to-end
 * backpressure). On a lost connection (error, or nothing heard for
 * suspect_ms although the peer heartbeats every hb_ms) the tx thread
 * re-dials; WELCOME says where the receiver stands and the window is
 * rewound there: nothing lost, nothing twice. A peer unheard for
 * timeout_ms, or a dial refused (no listener: the process is gone), fails
 * the link and deregisters its reader of c.
 *
 * Receiver. The acceptor thread accepts, checks HELLO, sends heartbeats
 * and watches the timeout; one rx thread per connection reads frames and
 * writes DATA straight into a reserved slot of w (the receive copies from
 * the transport into the slot), and acknowledges when it is about to wait
 * for more bytes or when half the credits are unacknowledged. A second
 * sender (another sender id) is refused while the first one's stream
 * lives; the same sender id reconnecting replaces the old connection.
 * When the sender is lost for timeout_ms, w gets an error record naming
 * the peer, then close.
 *
 * Bad input: everything a peer sends goes through weir__frame_decode (fixed
 * header checks) and the FlatBuffers verifier before use; control payloads
 * go into a fixed buffer; DATA goes into a slot of w whose size the frame
 * limit bounds. A refused connection never touches the established
 * stream: its own thread reads its HELLO on its own pipe.
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
#include "channels/probes.h"
#include "channels/layout.h"
#include "channels/link_codec.h"
#include "channels/ring_window.h"
#include "channels/transport.h"

#define STREAM_ID 1u
#define BATCH 32u                  /* frames per transport send */
#define BATCH_BYTES (1u << 20)     /* payload bytes per transport send */
#define ERR_MAX 65536u             /* largest error record carried */
#define MSG_LEN 240

struct weir_link {
    int sending;
    weir_chan *ch;
    const struct weir__tp_ops *tp;
    struct weir__tp_cfg cfg;
    char endpoint[80];
    char host[64];
    uint16_t port;
    uint8_t token[WEIR__LINK_MAX_TOKEN];
    uint32_t token_len;
    unsigned credits;
    int timeout_ms, hb_ms, suspect_ms, hello_ms;

    pthread_mutex_t mu; /* guards err, peer, the pipe pointer swap, cv */
    pthread_cond_t cv;
    pthread_mutex_t send_mu; /* one sender on a pipe at a time */
    int status;              /* atomic */
    int stop;                /* atomic */
    char err[MSG_LEN];
    char rx_why[MSG_LEN]; /* why the last rx thread ended */
    char peer[80];
    char last_refusal[256];

    /* counters (atomic) */
    uint64_t messages, bytes, frames, batches, credit_stalls, acked, reconnects, refused, rtt_ns;
    uint64_t last_heard_ns; /* atomic: any frame from the peer, or the connection itself */

    weir__tp_pipe *pipe; /* current connection */
    int rx_running;      /* an rx thread is live on pipe (joinable) */
    int rx_done;         /* atomic: that rx thread ended */
    pthread_t rx_thr;
    pthread_t main_thr; /* sender: tx; receiver: acceptor */
    int main_running;

    /* sender */
    int reader;
    struct weir__window win;
    int win_open;
    uint64_t sender_id;
    uint64_t sent;       /* atomic: messages handed to the transport (cursor) */
    uint64_t limit;      /* atomic: may send while sent < limit */
    int closed_sent;
    uint64_t close_seq;

    /* receiver */
    weir__tp_listener *lst;
    int have_sender;
    uint64_t cur_sender;
    uint64_t expected;   /* next sequence number of the stream (rx thread) */
    uint64_t base;       /* first sequence number of the stream */
    int ended;           /* atomic: CLOSE received and w closed */
    uint8_t *errbuf;
};

/* ---- small helpers -------------------------------------------------------- */

static int lerr(weir_link *l, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lerr(weir_link *l, int code, const char *fmt, ...)
{
    char buf[MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return weir__seterr(code, "link %s: %s", l->endpoint, buf);
}

/* Record the link's failure (first one wins) from the current weir_errmsg(). */
static void fail(weir_link *l, int code)
{
    pthread_mutex_lock(&l->mu);
    if (weir__load_relaxed(&l->status) == 0) {
        snprintf(l->err, sizeof l->err, "%s", weir_errmsg());
        weir__store_release(&l->status, code);
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void end_clean(weir_link *l, const char *why)
{
    pthread_mutex_lock(&l->mu);
    if (weir__load_relaxed(&l->status) == 0) {
        snprintf(l->err, sizeof l->err, "link %s: %s", l->endpoint, why);
        weir__store_release(&l->status, -EPIPE);
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void refusal(weir_link *l, const char *reason)
{
    weir__fetch_add(&l->refused, 1);
    pthread_mutex_lock(&l->mu);
    snprintf(l->last_refusal, sizeof l->last_refusal, "%s", reason);
    pthread_mutex_unlock(&l->mu);
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

/* Send one frame with an optional payload (under send_mu). */
static int send_frame(weir_link *l, weir__tp_pipe *p, uint8_t type, uint32_t stream, uint32_t aux,
                      uint64_t seq, const void *payload, uint32_t len)
{
    uint8_t h[WEIR__FRAME_HDR];
    hdr(h, type, 0, stream, len, aux, seq);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)payload, len}};
    pthread_mutex_lock(&l->send_mu);
    int r = l->tp->send(p, iov, len ? 2 : 1, l->timeout_ms);
    pthread_mutex_unlock(&l->send_mu);
    if (r == 0) {
        weir__fetch_add(&l->frames, 1);
        weir__fetch_add(&l->batches, 1);
    }
    return r;
}

static void send_refuse(weir_link *l, weir__tp_pipe *p, const char *reason)
{
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_refuse_encode(reason, buf, sizeof buf);
    if (n > 0) {
        uint8_t h[WEIR__FRAME_HDR];
        hdr(h, WEIR__FR_REFUSE, 0, 0, (uint32_t)n, 0, 0);
        struct iovec iov[2] = {{h, sizeof h}, {buf, (size_t)n}};
        l->tp->send(p, iov, 2, 200);
    }
}

/* Read one frame header within timeout_ms. */
static int read_hdr(weir_link *l, weir__tp_pipe *p, struct weir__frame *f, int timeout_ms,
                    size_t max_data)
{
    uint8_t h[WEIR__FRAME_HDR];
    int r = l->tp->recv_into(p, h, sizeof h, timeout_ms);
    if (r < 0)
        return r;
    r = weir__frame_decode(h, sizeof h, max_data, f);
    if (r < 0)
        return r;
    weir__fetch_add(&l->frames, 1);
    weir__store_release(&l->last_heard_ns, weir_now_ns());
    return 0;
}

static int ms_since(uint64_t t)
{
    uint64_t now = weir_now_ns();
    return now > t ? (int)((now - t) / 1000000ull) : 0;
}

/* ---- options -------------------------------------------------------------- */

static int setup(weir_link *l, weir_chan *ch, const char *endpoint, const weir_link_opts *o,
                 int sending)
{
    l->sending = sending;
    l->ch = ch;
    l->reader = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pthread_mutex_init(&l->send_mu, NULL);
    snprintf(l->endpoint, sizeof l->endpoint, "%.79s", endpoint ? endpoint : "(null)");
    if (!ch)
        return lerr(l, -EINVAL, "NULL channel");
    int r = weir__tp_parse_endpoint(endpoint, l->host, sizeof l->host, &l->port);
    if (r < 0)
        return r;
    int transport = o ? o->transport : WEIR_TRANSPORT_URING;
    if (!(l->tp = weir__tp_get(transport)))
        return weir_errcode();
    l->timeout_ms = o && o->timeout_ms ? o->timeout_ms : WEIR_LINK_DEFAULT_TIMEOUT_MS;
    if (l->timeout_ms < 50)
        return lerr(l, -EINVAL, "timeout_ms %d too short (at least 50)", l->timeout_ms);
    l->hb_ms = l->timeout_ms / 32 > 10 ? l->timeout_ms / 32 : 10;
    l->suspect_ms = 4 * l->hb_ms;
    l->hello_ms = l->timeout_ms / 2 < 2000 ? l->timeout_ms / 2 : 2000;
    const char *tok = o && o->token ? o->token : getenv("WEIR_TOKEN");
    if (tok) {
        size_t n = strlen(tok);
        if (n > WEIR__LINK_MAX_TOKEN)
            return lerr(l, -EINVAL, "token of %zu bytes (at most %d)", n, WEIR__LINK_MAX_TOKEN);
        memcpy(l->token, tok, n);
        l->token_len = (uint32_t)n;
    }
    if (o && (o->flags & ~WEIR_LINK_SEND_ZC))
        return lerr(l, -EINVAL, "unknown flags 0x%x", o->flags & ~WEIR_LINK_SEND_ZC);
    l->cfg.send_zc = o && (o->flags & WEIR_LINK_SEND_ZC) ? 1 : 0;
    l->credits = o && o->credits ? o->credits : 0;
    if (l->credits > WEIR_CHAN_MAX_DEPTH)
        return lerr(l, -EINVAL, "credits %u over %u", l->credits, WEIR_CHAN_MAX_DEPTH);
    return 0;
}

/* ==== sending end ========================================================== */

static void *sender_rx(void *arg);

/* Dial, HELLO, WELCOME. On success l->pipe is set and the window rewound. */
static int sender_connect(weir_link *l, int timeout_ms)
{
    weir__tp_pipe *p = NULL;
    int r = l->tp->dial(l->host, l->port, &l->cfg, timeout_ms, &p);
    if (r < 0)
        return r;
    struct weir__link_hello h;
    memset(&h, 0, sizeof h);
    h.version = WEIR__LINK_PROTO;
    h.token_len = l->token_len;
    memcpy(h.token, l->token, l->token_len);
    h.sender_id = l->sender_id;
    h.max_data = WEIR__FRAME_DATA_MAX;
    h.nstreams = 1;
    h.streams[0].stream = STREAM_ID;
    h.streams[0].next_seq = weir__window_released(&l->win);
    snprintf(h.streams[0].channel, sizeof h.streams[0].channel, "%s", weir_chan_name(l->ch));
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int n = weir__link_hello_encode(&h, buf, sizeof buf);
    if (n < 0) {
        l->tp->pipe_free(p);
        return n;
    }
    if ((r = send_frame(l, p, WEIR__FR_HELLO, 0, 0, 0, buf, (uint32_t)n)) < 0)
        goto out;
    struct weir__frame f;
    if ((r = read_hdr(l, p, &f, timeout_ms, 0)) < 0)
        goto out;
    if (f.type != WEIR__FR_WELCOME && f.type != WEIR__FR_REFUSE) {
        r = lerr(l, -EPROTO, "peer answered HELLO with %s", weir__frame_type_name(f.type));
        goto out;
    }
    if ((r = l->tp->recv_into(p, buf, f.len, timeout_ms)) < 0)
        goto out;
    if (f.type == WEIR__FR_REFUSE) {
        char reason[WEIR__LINK_MAX_REASON + 1];
        if ((r = weir__link_refuse_decode(buf, f.len, reason, sizeof reason)) == 0)
            r = lerr(l, -ECONNREFUSED, "refused by the peer: %s", reason);
        goto out;
    }
    struct weir__link_welcome w;
    if ((r = weir__link_welcome_decode(buf, f.len, &w)) < 0)
        goto out;
    if (w.version != WEIR__LINK_PROTO) {
        r = lerr(l, -EPROTO, "peer speaks protocol version %u, this end %u", w.version,
                 WEIR__LINK_PROTO);
        goto out;
    }
    if (w.nstreams != 1 || w.streams[0].stream != STREAM_ID) {
        r = lerr(l, -EPROTO, "peer accepted %u streams, not stream %u", w.nstreams, STREAM_ID);
        goto out;
    }
    uint64_t rel = weir__window_released(&l->win);
    uint64_t next = w.streams[0].next_seq;
    uint64_t sent = weir__load_acquire(&l->sent);
    if (next < rel || next > sent) {
        r = lerr(l, -EPROTO, "peer resumes at message %llu, outside what this end holds "
                 "(%llu..%llu)", (unsigned long long)next, (unsigned long long)rel,
                 (unsigned long long)sent);
        goto out;
    }
    /* Everything before next was committed by the receiver (a lost ack). */
    if (next > rel)
        weir__window_release_upto(&l->win, next, sent);
    if ((r = weir__window_rewind(&l->win, next)) < 0)
        goto out;
    weir__store_release(&l->sent, next);
    weir__store_release(&l->acked, next);
    weir__store_release(&l->limit, next + w.streams[0].credits);
    l->closed_sent = 0;
    pthread_mutex_lock(&l->mu);
    l->tp->peer(p, l->peer, sizeof l->peer);
    l->pipe = p;
    pthread_mutex_unlock(&l->mu);
    weir__store_release(&l->last_heard_ns, weir_now_ns());
    weir__store_release(&l->rx_done, 0);
    if ((r = pthread_create(&l->rx_thr, NULL, sender_rx, l)) != 0) {
        pthread_mutex_lock(&l->mu);
        l->pipe = NULL;
        pthread_mutex_unlock(&l->mu);
        r = lerr(l, -r, "cannot start the receive thread");
        goto out;
    }
    l->rx_running = 1;
    return 0;
out:
    l->tp->pipe_free(p);
    return r;
}

/* Receives ACK / ECHO / HEARTBEAT / REFUSE on the sender's pipe. */
static void *sender_rx(void *arg)
{
    weir_link *l = arg;
    weir__tp_pipe *p = l->pipe;
    for (;;) {
        struct weir__frame f;
        int r = read_hdr(l, p, &f, l->suspect_ms, 0);
        if (r < 0) {
            if (r == -ETIMEDOUT)
                lerr(l, -ETIMEDOUT, "peer %s silent for %d ms", l->peer, l->suspect_ms);
            break;
        }
        if (f.type == WEIR__FR_ACK && f.stream == STREAM_ID) {
            uint64_t sent = weir__load_acquire(&l->sent);
            uint64_t acked = weir__load_relaxed(&l->acked);
            if (f.seq < acked || f.seq > sent) {
                r = lerr(l, -EPROTO, "peer %s acknowledged message %llu outside %llu..%llu",
                         l->peer, (unsigned long long)f.seq, (unsigned long long)acked,
                         (unsigned long long)sent);
                fail(l, r);
                break;
            }
            weir__window_release_upto(&l->win, f.seq, sent);
            pthread_mutex_lock(&l->mu);
            weir__store_release(&l->acked, f.seq);
            weir__store_release(&l->limit, f.seq + f.aux);
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            weir__window_kick(&l->win);
        } else if (f.type == WEIR__FR_ECHO) {
            uint64_t now = weir_now_ns();
            if (f.seq <= now)
                weir__store_relaxed(&l->rtt_ns, now - f.seq);
        } else if (f.type == WEIR__FR_HEARTBEAT) {
            /* liveness only (read_hdr stamped last_heard) */
        } else if (f.type == WEIR__FR_REFUSE) {
            uint8_t buf[WEIR__FRAME_CTL_MAX];
            char reason[WEIR__LINK_MAX_REASON + 1] = "?";
            if (l->tp->recv_into(p, buf, f.len, l->suspect_ms) == 0)
                weir__link_refuse_decode(buf, f.len, reason, sizeof reason);
            fail(l, lerr(l, -ECONNABORTED, "peer %s ended the link: %s", l->peer, reason));
            break;
        } else {
            fail(l, lerr(l, -EPROTO, "peer %s sent an unexpected %s frame", l->peer,
                         weir__frame_type_name(f.type)));
            break;
        }
    }
    if (getenv("WEIR_LINK_DEBUG"))
        fprintf(stderr, "%llu ms: link %s: sender rx ends: %s\n", (unsigned long long)(weir_now_ns() / 1000000 % 100000), l->endpoint, weir_errmsg());
    pthread_mutex_lock(&l->mu);
    snprintf(l->rx_why, sizeof l->rx_why, "%s", weir_errmsg());
    weir__store_release(&l->rx_done, 1);
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    l->tp->close(p);
    weir__window_kick(&l->win);
    return NULL;
}

/* Either end: stop the connection's receive thread and free the pipe. */
static void drop_pipe(weir_link *l)
{
    if (l->rx_running) {
        l->tp->close(l->pipe);
        pthread_join(l->rx_thr, NULL);
        l->rx_running = 0;
    }
    pthread_mutex_lock(&l->mu);
    weir__tp_pipe *p = l->pipe;
    l->pipe = NULL;
    pthread_mutex_unlock(&l->mu);
    l->tp->pipe_free(p);
}

/* After a lost connection: re-dial until the peer has been unheard for timeout_ms. */
static int sender_reconnect(weir_link *l)
{
    char why[MSG_LEN];
    pthread_mutex_lock(&l->mu);
    snprintf(why, sizeof why, "%s", l->rx_why[0] ? l->rx_why : weir_errmsg());
    pthread_mutex_unlock(&l->mu);
    if (getenv("WEIR_LINK_DEBUG"))
        fprintf(stderr, "%llu ms: link %s: reconnecting after: %s\n", (unsigned long long)(weir_now_ns() / 1000000 % 100000), l->endpoint, why);
    drop_pipe(l);
    uint64_t heard = weir__load_acquire(&l->last_heard_ns);
    for (;;) {
        if (weir__load_acquire(&l->stop))
            return -ECANCELED;
        int left = l->timeout_ms - ms_since(heard);
        if (left <= 0)
            return lerr(l, -ETIMEDOUT, "peer %s lost for %d ms (%s)", l->peer, l->timeout_ms,
                        why);
        int r = sender_connect(l, left < l->suspect_ms ? left : l->suspect_ms);
        if (getenv("WEIR_LINK_DEBUG"))
            fprintf(stderr, "%llu ms: link %s: re-dial: %d %s\n",
                    (unsigned long long)(weir_now_ns() / 1000000 % 100000), l->endpoint, r,
                    r ? weir_errmsg() : "");
        if (r == 0) {
            weir__fetch_add(&l->reconnects, 1);
            return 0;
        }
        if (r == -ECONNREFUSED) {
            /* no listener (its process is gone) or an explicit refusal */
            char how[MSG_LEN];
            snprintf(how, sizeof how, "%s", weir_errmsg());
            return lerr(l, r, "peer %s lost (%.80s); %.120s", l->peer, why, how);
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *sender_main(void *arg)
{
    weir_link *l = arg;
    uint8_t hdrs[BATCH][WEIR__FRAME_HDR];
    struct iovec iov[2 * BATCH + 1];
    uint64_t last_send = weir_now_ns();
    int r = 0;
    while (!weir__load_acquire(&l->stop) && !weir__load_acquire(&l->status)) {
        if (l->closed_sent && weir__load_acquire(&l->acked) >= l->close_seq) {
            end_clean(l, "stream ended (channel closed, every message acknowledged)");
            break;
        }
        if (weir__load_acquire(&l->rx_done)) {
            if ((r = sender_reconnect(l)) < 0)
                break;
            last_send = 0;
        }
        weir__tp_pipe *p = l->pipe;
        uint64_t sent = weir__load_relaxed(&l->sent);
        uint64_t limit = weir__load_acquire(&l->limit);
        /* Heartbeat when nothing was sent for hb_ms. */
        if (ms_since(last_send) >= l->hb_ms) {
            if (send_frame(l, p, WEIR__FR_HEARTBEAT, 0, 0, weir_now_ns(), NULL, 0) < 0) {
                l->tp->close(p);
                continue;
            }
            last_send = weir_now_ns();
        }
        if (l->closed_sent) {
            if (weir__load_acquire(&l->acked) >= l->close_seq) {
                end_clean(l, "stream ended (channel closed, every message acknowledged)");
                break;
            }
            pthread_mutex_lock(&l->mu);
            if (!weir__load_relaxed(&l->rx_done) && weir__load_relaxed(&l->acked) < l->close_seq) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += (long)l->hb_ms * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&l->cv, &l->mu, &ts);
            }
            pthread_mutex_unlock(&l->mu);
            continue;
        }
        if (sent >= limit) {
            weir__fetch_add(&l->credit_stalls, 1);
            pthread_mutex_lock(&l->mu);
            while (weir__load_relaxed(&l->limit) <= sent && !weir__load_relaxed(&l->rx_done) &&
                   !weir__load_relaxed(&l->stop)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += (long)l->hb_ms * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
                    break;
            }
            pthread_mutex_unlock(&l->mu);
            continue;
        }
        /* Gather a batch: headers + payloads straight from the slots. */
        unsigned nf = 0, niov = 0;
        size_t bytes = 0;
        int closed = 0;
        weir_chan_msg m;
        while (nf < BATCH && sent + nf < limit && bytes < BATCH_BYTES) {
            int k = nf == 0 ? weir__window_next(&l->win, &m, l->hb_ms)
                            : weir__window_poll(&l->win, &m);
            if (k == 0 && nf > 0)
                break;
            if (k < 0) {
                if (k == -EPIPE)
                    closed = 1;
                else if (k == -EINVAL)
                    r = k;
                break;
            }
            if (m.len > WEIR__FRAME_DATA_MAX) {
                r = lerr(l, -EMSGSIZE, "message %llu of %zu bytes over the link's limit of %u",
                         (unsigned long long)m.seq, m.len, WEIR__FRAME_DATA_MAX);
                break;
            }
            hdr(hdrs[nf], WEIR__FR_DATA, (m.flags & WEIR_MSG_ERROR) ? WEIR__FRF_ERROR : 0,
                STREAM_ID, (uint32_t)m.len, 0, m.seq);
            iov[niov++] = (struct iovec){hdrs[nf], WEIR__FRAME_HDR};
            if (m.len)
                iov[niov++] = (struct iovec){(void *)m.data, m.len};
            bytes += m.len;
            nf++;
        }
        if (r < 0)
            break;
        uint8_t ch[WEIR__FRAME_HDR];
        if (closed && nf == 0 && !l->closed_sent) {
            l->close_seq = sent;
            hdr(ch, WEIR__FR_CLOSE, 0, STREAM_ID, 0, 0, sent);
            iov[niov++] = (struct iovec){ch, WEIR__FRAME_HDR};
        }
        if (niov == 0)
            continue;
        /* Before the send: an ACK for these may arrive before send() returns. */
        weir__store_release(&l->sent, sent + nf);
        pthread_mutex_lock(&l->send_mu);
        int s = l->tp->send(p, iov, niov, -1);
        pthread_mutex_unlock(&l->send_mu);
        if (s < 0) {
            /* The pipe broke: rx notices too; rewind happens at reconnect. */
            l->tp->close(p);
            weir__window_rewind(&l->win, sent);
            continue;
        }
        last_send = weir_now_ns();
        WEIR_PROBE3(link_send, weir_chan_name(l->ch), sent, bytes);
        weir__fetch_add(&l->messages, nf);
        weir__fetch_add(&l->bytes, bytes);
        weir__fetch_add(&l->frames, nf + (closed && nf == 0));
        weir__fetch_add(&l->batches, 1);
        if (closed && nf == 0)
            l->closed_sent = 1;
    }
    if (r < 0 && r != -ECANCELED)
        fail(l, r);
    if (weir__load_acquire(&l->status) != -EPIPE && weir__load_acquire(&l->status) != 0) {
        /* Failed: let c's writer go. */
        weir_chan_deregister_reader(l->ch, l->reader);
    }
    return NULL;
}

/* Both ends start alike: a zeroed link, set up for channel ch (sender or not). */
static weir_link *link_new(weir_chan *ch, const char *endpoint, const weir_link_opts *o,
                           int sender, int *r)
{
    weir__clearerr();
    weir_link *l = calloc(1, sizeof *l);
    if (!l) {
        *r = weir__seterr(-ENOMEM, "link %s: out of memory", endpoint ? endpoint : "(null)");
        return NULL;
    }
    *r = setup(l, ch, endpoint, o, sender);
    return l;
}

/* Both ends give up alike: free what was built, keep the first reason. */
static weir_link *link_abort(weir_link *l, int r)
{
    char msg[MSG_LEN];
    snprintf(msg, sizeof msg, "%s", weir_errmsg());
    weir_link_free(l);
    weir__seterr(r, "%s", msg);
    return NULL;
}

WEIR_API weir_link *weir_link_connect(weir_chan *c, const char *endpoint, const weir_link_opts *o)
{
    int r;
    weir_link *l = link_new(c, endpoint, o, 1, &r);
    if (!l)
        return NULL;
    if (r < 0)
        goto fail;
    if (getrandom(&l->sender_id, sizeof l->sender_id, 0) != sizeof l->sender_id)
        l->sender_id = weir_now_ns() ^ ((uint64_t)getpid() << 32);
    if ((l->reader = weir_chan_register_reader(c)) < 0) {
        r = l->reader;
        goto fail;
    }
    if ((r = weir__window_open(&l->win, c, l->reader)) < 0)
        goto fail;
    l->win_open = 1;
    weir__store_release(&l->sent, weir__window_released(&l->win));
    if ((r = sender_connect(l, l->timeout_ms)) < 0)
        goto fail;
    if ((r = pthread_create(&l->main_thr, NULL, sender_main, l)) != 0) {
        r = lerr(l, -r, "cannot start the send thread");
        goto fail;
    }
    l->main_running = 1;
    return l;
fail:
    return link_abort(l, r);
}

/* ==== receiving end ======================================================== */

static void *receiver_rx(void *arg);

static int send_ack(weir_link *l, weir__tp_pipe *p, uint64_t seq)
{
    unsigned cr = l->credits ? l->credits : weir__chan_ctl(l->ch)->depth;
    int r = send_frame(l, p, WEIR__FR_ACK, STREAM_ID, cr, seq, NULL, 0);
    if (r == 0)
        weir__store_relaxed(&l->acked, seq);
    return r;
}

/* Check a HELLO; 0 and the stream's resume point, or a refusal reason. */
static int check_hello(weir_link *l, const struct weir__link_hello *h, char *why, size_t n)
{
    if (h->version != WEIR__LINK_PROTO) {
        snprintf(why, n, "protocol version %u, this end speaks %u", h->version, WEIR__LINK_PROTO);
        return -EPROTO;
    }
    if (!ct_equal(h->token, h->token_len, l->token, l->token_len)) {
        snprintf(why, n, "wrong token");
        return -EACCES;
    }
    if (h->nstreams != 1 || h->streams[0].stream != STREAM_ID) {
        snprintf(why, n, "opens %u streams; this end carries one (id %u)", h->nstreams, STREAM_ID);
        return -EPROTO;
    }
    if (strcmp(h->streams[0].channel, weir_chan_name(l->ch)) != 0) {
        snprintf(why, n, "channel '%.60s', this end carries '%.60s'", h->streams[0].channel,
                 weir_chan_name(l->ch));
        return -EPROTO;
    }
    if (l->have_sender && h->sender_id != l->cur_sender) {
        snprintf(why, n, "another sender is connected to this stream");
        return -EBUSY;
    }
    if (weir__load_acquire(&l->ended) || weir__load_acquire(&l->status)) {
        snprintf(why, n, "the stream has ended");
        return -EPIPE;
    }
    return 0;
}

/* A new connection: read and judge its HELLO (bounded), then install it. */
static void receiver_admit(weir_link *l, weir__tp_pipe *p)
{
    char peer[80], why[200];
    l->tp->peer(p, peer, sizeof peer);
    struct weir__frame f;
    uint8_t buf[WEIR__FRAME_CTL_MAX];
    int r = l->tp->recv_into(p, buf, WEIR__FRAME_HDR, l->hello_ms);
    if (r == -ETIMEDOUT) {
        snprintf(why, sizeof why, "sent no HELLO within %d ms", l->hello_ms);
        goto refuse;
    }
    if (r < 0) {
        snprintf(why, sizeof why, "closed before its HELLO");
        goto refuse;
    }
    if ((r = weir__frame_decode(buf, WEIR__FRAME_HDR, 0, &f)) < 0) {
        snprintf(why, sizeof why, "%s", weir_errmsg());
        goto refuse;
    }
    if (f.type != WEIR__FR_HELLO) {
        snprintf(why, sizeof why, "first frame is %s, not HELLO", weir__frame_type_name(f.type));
        goto refuse;
    }
    if ((r = l->tp->recv_into(p, buf, f.len, l->hello_ms)) < 0) {
        snprintf(why, sizeof why, "truncated HELLO (%u bytes announced)", f.len);
        goto refuse;
    }
    struct weir__link_hello h;
    if ((r = weir__link_hello_decode(buf, f.len, &h)) < 0) {
        snprintf(why, sizeof why, "%s", weir_errmsg());
        goto refuse;
    }
    if ((r = check_hello(l, &h, why, sizeof why)) < 0)
        goto refuse;
    /* Accepted: a reconnect of the same sender replaces its old connection. */
    drop_pipe(l);
    if (!l->have_sender) {
        l->have_sender = 1;
        l->cur_sender = h.sender_id;
        l->base = l->expected = h.streams[0].next_seq;
    } else {
        weir__fetch_add(&l->reconnects, 1);
    }
    if (h.streams[0].next_seq > l->expected) {
        snprintf(why, sizeof why, "resumes at message %llu but message %llu is missing",
                 (unsigned long long)h.streams[0].next_seq, (unsigned long long)l->expected);
        r = -EPROTO;
        goto refuse;
    }
    struct weir__link_welcome w;
    memset(&w, 0, sizeof w);
    w.version = WEIR__LINK_PROTO;
    w.nstreams = 1;
    w.streams[0].stream = STREAM_ID;
    w.streams[0].next_seq = l->expected;
    w.streams[0].credits = l->credits ? l->credits : weir__chan_ctl(l->ch)->depth;
    int n = weir__link_welcome_encode(&w, buf, sizeof buf);
    if (n < 0 || send_frame(l, p, WEIR__FR_WELCOME, 0, 0, 0, buf, (uint32_t)n) < 0) {
        l->tp->pipe_free(p);
        return;
    }
    pthread_mutex_lock(&l->mu);
    snprintf(l->peer, sizeof l->peer, "%s", peer);
    l->pipe = p;
    pthread_mutex_unlock(&l->mu);
    weir__store_release(&l->last_heard_ns, weir_now_ns());
    weir__store_release(&l->rx_done, 0);
    if (pthread_create(&l->rx_thr, NULL, receiver_rx, l) != 0) {
        pthread_mutex_lock(&l->mu);
        l->pipe = NULL;
        pthread_mutex_unlock(&l->mu);
        l->tp->pipe_free(p);
        return;
    }
    l->rx_running = 1;
    return;
refuse: {
    char line[256];
    snprintf(line, sizeof line, "refused %.40s: %.190s", peer, why);
    refusal(l, line);
    send_refuse(l, p, why);
    l->tp->pipe_free(p);
}
}

/* Write one DATA frame's payload into w. */
static int receive_data(weir_link *l, weir__tp_pipe *p, const struct weir__frame *f)
{
    if (f->flags & WEIR__FRF_ERROR) {
        if (f->len > ERR_MAX)
            return lerr(l, -EMSGSIZE, "peer %s: error record of %u bytes (at most %u)", l->peer,
                        f->len, ERR_MAX);
        int r = l->tp->recv_into(p, l->errbuf, f->len, l->suspect_ms);
        if (r < 0)
            return r;
        l->errbuf[f->len - 1] = '\0';
        for (;;) {
            r = weir_chan_write_error(l->ch, (const char *)l->errbuf, l->hb_ms);
            if (r != -ETIMEDOUT || weir__load_acquire(&l->stop))
                return r;
        }
    }
    void *slot;
    for (;;) {
        slot = weir_chan_reserve(l->ch, f->len, l->hb_ms);
        if (slot)
            break;
        if (weir_errcode() != -ETIMEDOUT || weir__load_acquire(&l->stop))
            return weir_errcode();
        /* w is full (a stalled reader): stay alive for the sender. */
        int r = send_frame(l, p, WEIR__FR_HEARTBEAT, 0, 0, weir_now_ns(), NULL, 0);
        if (r < 0)
            return r;
    }
    int r = l->tp->recv_into(p, slot, f->len, l->suspect_ms);
    if (r < 0) {
        weir__chan_unreserve(l->ch);
        return r;
    }
    return weir_chan_commit(l->ch, f->len);
}

static void *receiver_rx(void *arg)
{
    weir_link *l = arg;
    weir__tp_pipe *p = l->pipe;
    unsigned cr = l->credits ? l->credits : weir__chan_ctl(l->ch)->depth;
    unsigned ack_every = cr / 2 ? cr / 2 : 1;
    uint64_t acked = l->expected;
    int r = send_ack(l, p, acked);
    uint64_t last_hb = weir_now_ns();
    while (r == 0) {
        /* About to wait for bytes: acknowledge what is committed first. */
        struct weir__tp_chunk ch;
        r = l->tp->recv(p, &ch, 0);
        if (r == -ETIMEDOUT && l->expected > acked) {
            if ((r = send_ack(l, p, l->expected)) < 0)
                break;
            acked = l->expected;
            r = -ETIMEDOUT;
        }
        /* Wait in hb_ms steps, heartbeating; silent for suspect_ms: lost. */
        int silent = 0;
        while (r == -ETIMEDOUT && silent < l->suspect_ms && !weir__load_acquire(&l->stop)) {
            if (ms_since(last_hb) >= l->hb_ms) {
                if ((r = send_frame(l, p, WEIR__FR_HEARTBEAT, 0, 0, weir_now_ns(), NULL, 0)) < 0)
                    break;
                last_hb = weir_now_ns();
            }
            r = l->tp->recv(p, &ch, l->hb_ms);
            if (r == -ETIMEDOUT)
                silent += l->hb_ms;
        }
        if (r == -ETIMEDOUT) {
            r = lerr(l, -ETIMEDOUT, "peer %s silent for %d ms", l->peer, silent);
            break;
        }
        if (r < 0)
            break;
        l->tp->recv_done(p, &ch, 0);
        struct weir__frame f;
        r = read_hdr(l, p, &f, l->suspect_ms, WEIR__FRAME_DATA_MAX);
        if (r < 0) {
            if (r == -ETIMEDOUT)
                lerr(l, -ETIMEDOUT, "peer %s silent for %d ms", l->peer, l->suspect_ms);
            break;
        }
        switch (f.type) {
        case WEIR__FR_DATA:
            if (f.stream != STREAM_ID || f.seq != l->expected) {
                r = lerr(l, -EPROTO, "peer %s sent message %llu of stream %u, expected %llu of "
                         "stream %u", l->peer, (unsigned long long)f.seq, f.stream,
                         (unsigned long long)l->expected, STREAM_ID);
                fail(l, r);
                break;
            }
            if ((r = receive_data(l, p, &f)) < 0)
                break;
            WEIR_PROBE3(link_recv, weir_chan_name(l->ch), f.seq, f.len);
            l->expected++;
            weir__fetch_add(&l->messages, 1);
            weir__fetch_add(&l->bytes, f.len);
            if (l->expected - acked >= ack_every) {
                if ((r = send_ack(l, p, l->expected)) < 0)
                    break;
                acked = l->expected;
            }
            break;
        case WEIR__FR_CLOSE:
            if (f.stream != STREAM_ID || f.seq != l->expected) {
                r = lerr(l, -EPROTO, "peer %s closed stream %u after %llu messages, %llu "
                         "received", l->peer, f.stream, (unsigned long long)f.seq,
                         (unsigned long long)l->expected);
                fail(l, r);
                break;
            }
            /* The final ACK before w closes: a reader that sees w closed may
             * free this link at once, and the sender needs that ACK to end
             * cleanly. Status next: whoever sees w closed sees the link ended. */
            weir__store_release(&l->ended, 1);
            send_ack(l, p, l->expected);
            end_clean(l, "stream ended (the sender's channel closed)");
            weir_chan_close(l->ch);
            r = -EPIPE;
            break;
        case WEIR__FR_HEARTBEAT:
            r = send_frame(l, p, WEIR__FR_ECHO, 0, 0, f.seq, NULL, 0);
            break;
        default:
            r = lerr(l, -EPROTO, "peer %s sent an unexpected %s frame", l->peer,
                     weir__frame_type_name(f.type));
            fail(l, r);
            break;
        }
    }
    if (getenv("WEIR_LINK_DEBUG"))
        fprintf(stderr, "link %s: receiver rx ends: %s\n", l->endpoint, weir_errmsg());
    pthread_mutex_lock(&l->mu);
    weir__store_release(&l->rx_done, 1);
    pthread_mutex_unlock(&l->mu);
    l->tp->close(p);
    return NULL;
}

static void *receiver_main(void *arg)
{
    weir_link *l = arg;
    while (!weir__load_acquire(&l->stop) && !weir__load_acquire(&l->status)) {
        weir__tp_pipe *np = NULL;
        int r = l->tp->accept(l->lst, l->hb_ms, &np);
        if (r == 0)
            receiver_admit(l, np);
        else if (r != -ETIMEDOUT)
            break;
        if (l->rx_running && weir__load_acquire(&l->rx_done)) {
            pthread_join(l->rx_thr, NULL);
            l->rx_running = 0;
            pthread_mutex_lock(&l->mu);
            weir__tp_pipe *p = l->pipe;
            l->pipe = NULL;
            pthread_mutex_unlock(&l->mu);
            l->tp->pipe_free(p);
        }
        if (l->have_sender && !l->rx_running && !weir__load_acquire(&l->ended) &&
            !weir__load_acquire(&l->status) &&
            ms_since(weir__load_acquire(&l->last_heard_ns)) > l->timeout_ms) {
            char text[MSG_LEN];
            snprintf(text, sizeof text, "link %s: peer %s lost for %d ms (after message %llu)",
                     l->endpoint, l->peer, l->timeout_ms, (unsigned long long)l->expected);
            weir_chan_write_error(l->ch, text, 0);
            weir_chan_close(l->ch);
            weir__seterr(-ETIMEDOUT, "%s", text);
            fail(l, -ETIMEDOUT);
        }
    }
    return NULL;
}

WEIR_API weir_link *weir_link_listen(weir_chan *w, const char *endpoint, const weir_link_opts *o)
{
    int r;
    weir_link *l = link_new(w, endpoint, o, 0, &r);
    if (!l)
        return NULL;
    if (r < 0)
        goto fail;
    if (!(l->errbuf = malloc(ERR_MAX))) {
        r = lerr(l, -ENOMEM, "out of memory");
        goto fail;
    }
    uint16_t port = 0;
    if ((r = l->tp->listen(l->host, l->port, &l->cfg, &l->lst, &port)) < 0)
        goto fail;
    l->port = port;
    if (strchr(l->host, ':'))
        snprintf(l->endpoint, sizeof l->endpoint, "tcp://[%s]:%u", l->host, port);
    else
        snprintf(l->endpoint, sizeof l->endpoint, "tcp://%s:%u", l->host, port);
    if ((r = pthread_create(&l->main_thr, NULL, receiver_main, l)) != 0) {
        r = lerr(l, -r, "cannot start the accept thread");
        goto fail;
    }
    l->main_running = 1;
    return l;
fail:
    return link_abort(l, r);
}

/* ==== common =============================================================== */

WEIR_API const char *weir_link_endpoint(const weir_link *l)
{
    return l ? l->endpoint : "(null)";
}

WEIR_API int weir_link_status(const weir_link *l)
{
    if (!l)
        return weir__seterr(-EINVAL, "link (null): status");
    weir_link *m = (weir_link *)l;
    pthread_mutex_lock(&m->mu);
    int s = weir__load_acquire(&m->status);
    if (s)
        weir__seterr(s, "%s", m->err);
    pthread_mutex_unlock(&m->mu);
    return s;
}

WEIR_API int weir_link_stats(const weir_link *l, struct weir_link_stats *st)
{
    if (!l || !st)
        return weir__seterr(-EINVAL, "link: weir_link_stats needs a link and a buffer");
    weir_link *m = (weir_link *)l;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&m->mu);
    snprintf(st->endpoint, sizeof st->endpoint, "%s", m->endpoint);
    snprintf(st->peer, sizeof st->peer, "%s", m->peer);
    snprintf(st->last_refusal, sizeof st->last_refusal, "%s", m->last_refusal);
    pthread_mutex_unlock(&m->mu);
    st->sending = m->sending;
    st->status = weir__load_acquire(&m->status);
    st->messages = weir__load_relaxed(&m->messages);
    st->bytes = weir__load_relaxed(&m->bytes);
    st->frames = weir__load_relaxed(&m->frames);
    st->batches = weir__load_relaxed(&m->batches);
    st->credit_stalls = weir__load_relaxed(&m->credit_stalls);
    st->acked = weir__load_relaxed(&m->acked);
    st->reconnects = weir__load_relaxed(&m->reconnects);
    st->refused = weir__load_relaxed(&m->refused);
    st->last_rtt_ns = weir__load_relaxed(&m->rtt_ns);
    return 0;
}

WEIR_API int weir_link_free(weir_link *l)
{
    if (!l)
        return 0;
    weir__store_release(&l->stop, 1);
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->cv);
    if (l->pipe)
        l->tp->close(l->pipe);
    pthread_mutex_unlock(&l->mu);
    if (l->lst)
        l->tp->listener_close(l->lst);
    if (l->win_open)
        weir__window_kick(&l->win);
    if (l->main_running)
        pthread_join(l->main_thr, NULL);
    if (l->rx_running) {
        l->tp->close(l->pipe);
        pthread_join(l->rx_thr, NULL);
    }
    if (l->pipe)
        l->tp->pipe_free(l->pipe);
    if (l->lst)
        l->tp->listener_free(l->lst);
    if (l->win_open)
        weir__window_fini(&l->win);
    if (l->sending && l->reader >= 0) {
        int64_t ep = weir__chan_reader_epoch(l->ch, l->reader);
        if (ep >= 0)
            weir_chan_deregister_reader(l->ch, l->reader);
    }
    int s = weir__load_acquire(&l->status);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->send_mu);
    free(l->errbuf);
    free(l);
    return s;
}
