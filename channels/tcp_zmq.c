/* SPDX-License-Identifier: MIT */
/*
 * channels/tcp_zmq.c - the ZeroMQ transport (channels/transport.h) over
 * libzmq's ZMQ_STREAM sockets.
 *
 * Design notes.
 *
 * Why ZMQ_STREAM. A link needs a byte stream per peer connection, a
 * listener that sees every new connection as a new pipe (the link re-dials
 * itself after a cut; the listener must see the old and the new connection
 * apart) and a peer that is not weir (the bad-input tests speak raw TCP).
 * ZMQ_STREAM is exactly that: raw TCP, one routing id per connection, an
 * empty message when a connection opens or closes, and sending an empty
 * message to a routing id closes that connection. PAIR has one peer and
 * reconnects behind the caller's back; DEALER load-balances over peers and
 * hides which connection a message came from. The dialer keeps libzmq
 * from reconnecting by giving it an interval of days (ZMQ_RECONNECT_IVL),
 * not -1: with -1, libzmq ends a lost connection by terminating the
 * socket's pipe at once, dropping what the socket had not read yet (a
 * REFUSE that arrived just before the FIN, and the closing notification);
 * a retry pending keeps the pipe readable. A lost connection is lost for
 * good (its socket closes with the pipe) and the link re-dials it with a
 * new socket, so resume sees a
 * new pipe, as it does over io_uring.
 *
 * Threads. A zmq socket must not be used by two threads at once, but a
 * pipe has a sending and a receiving thread, and a listener's one socket
 * carries all its accepted connections. So every socket has a mutex, every
 * libzmq call on it is non-blocking and made under that mutex, and nobody
 * waits holding it:
 *  - receiving: whoever holds the mutex "services" the socket: it pulls
 *    every message libzmq has and sorts it by routing id into the pipes'
 *    receive queues (or the listener's accept queue), and wakes the pipe's
 *    receiving thread through that pipe's eventfd. A thread with nothing in
 *    its own queue waits in poll() on the socket's ZMQ_FD and its eventfd.
 *    ZMQ_FD only says "libzmq has commands to process", and any libzmq call
 *    may process them, so every call on a socket ends with a service
 *    (ZMQ_EVENTS, then drain): nothing ready is left unseen. The wait is
 *    also capped at 100 ms, a safety net that costs ten wake-ups a second.
 *    libzmq hands a ZMQ_STREAM socket's bytes over in chunks of 8 KiB (its
 *    in_batch_size; the option to raise it is draft API, not in Debian's
 *    build), so a 1 MiB message is 128 chunks, and the per-chunk cost
 *    decides large-message throughput: a service writes a pipe's eventfd
 *    only while its receiver sleeps (rx_waiting), and accept() does not
 *    poll ZMQ_FD while a receiver sleeps on it (fd_waiters): that receiver
 *    services the socket and kicks accept's eventfd for a new connection
 *    (a closing pipe kicks it too). Both woke for every chunk before; 64
 *    KiB ran at half of plain ZeroMQ.
 *  - no busy-poll by default (SPIN_NS_DEFAULT 0, cfg.spin_ns sets one):
 *    the bytes come from libzmq's I/O thread, and on a machine with fewer
 *    spare CPUs than busy threads a spinning receiver takes the CPU that
 *    thread needs (measured on 2 vCPUs: 20 us of spin cost 15 - 25 % of
 *    the throughput at every size and raised ping-pong p50 from 49 to
 *    86 us).
 *    The queues of one socket hold at most RXQ_MAX bytes; past that the
 *    service stops pulling (libzmq and then TCP push back) until a
 *    receiver takes from its queue: memory is bounded whatever a peer
 *    sends, at the price that a pipe whose reader stalls with a full queue
 *    delays the other connections of its listener (the link's credits keep
 *    a well-behaved peer far below the bound).
 *  - sending never waits on libzmq: the send high-water mark is off
 *    (ZMQ_SNDHWM 0) and the transport bounds it itself. Every message it
 *    hands to libzmq carries a free function, called by libzmq's I/O thread
 *    when it is done with the bytes (written to the kernel, or dropped with
 *    the connection); the pipe counts the bytes libzmq still holds
 *    ("in flight") and a send waits, on a condition variable, with its
 *    timeout_ms, until they are under TX_MAX. A peer that stops reading
 *    fills the kernel's buffers, libzmq stops writing, the count stays up
 *    and the send returns -ETIMEDOUT on time; close() wakes it (-EPIPE).
 *
 * Copy, not zero copy. The contract lets a send's payload memory be reused
 * as soon as the send returns; libzmq's zero-copy zmq_msg_init_data keeps
 * a pointer until its I/O thread has written the bytes, so a zero-copy send
 * must wait for the free function before returning. That works while the
 * peer reads, but not when it stops: tried here, a zero-copy send that
 * timed out and then cut its connection waited for libzmq's release for
 * good (the stream engine keeps the message it is writing until the socket
 * drains), which is exactly the hang a send must not have. So every send
 * copies: its pieces are gathered into buffers of up to COPY_MAX bytes
 * (which is also the coalescing a link wants), each handed to libzmq with
 * a free function that only does the in-flight accounting above.
 * cfg.send_zc (WEIR_LINK_SEND_ZC) has no effect on this transport.
 *
 * Closing. close() wakes the pipe's blocked calls at once. The connection
 * of an accepted pipe is cut when libzmq has written what was already sent
 * (in flight reaches 0), at most LINGER_MS later, or at once when a send is
 * in progress; a dialed pipe's socket is its own and closes at once (a cut
 * message alone, it turned out, does not close a dialed connection): a listener's REFUSE or last ACK still
 * reaches the peer (the io_uring pipe gets that from the kernel, which
 * sends queued bytes before the FIN). A closed accepted pipe that pipe_free
 * released stays on its socket's list until that cut, then the service
 * frees it. Sockets close with ZMQ_LINGER 0, but live with ZMQ_LINGER
 * LINGER_MS: a connection that libzmq ends (the peer closed; the dialer does
 * not reconnect) terminates its pipe with the socket's linger, and with 0
 * libzmq drops what the socket had not read yet, the peer's last bytes and
 * the closing notification with them (the dialer then waited for nothing:
 * a REFUSE that arrived with the FIN was lost, now and then).
 *
 * Dialing. libzmq connects asynchronously and does not say why a connect
 * failed; a socket monitor says that it did (ZMQ_EVENT_CLOSED before
 * ZMQ_EVENT_CONNECTED), and the dial then learns the reason with one plain
 * connect() of its own to the same address (refused: the peer process is
 * gone, which the link treats differently from an unreachable network).
 * Should that probe connect (the listener appeared meanwhile), it is
 * closed at once and the dial fails with -EAGAIN, so the link retries.
 *
 * libzmq keeps one context per process (created on first use, one I/O
 * thread, never terminated; a forked child makes its own, as libzmq's
 * threads do not survive fork).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <weir/common.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "channels/transport.h"

#define TX_MAX (2u << 20)         /* bytes libzmq may hold for one pipe before send waits */
#define RXQ_MAX (8u << 20)        /* bytes queued for the receivers of one socket */
#define COPY_MAX (1u << 20)       /* largest gathered copy buffer */
#define LINGER_MS 1000            /* a closed accepted pipe's sent bytes may drain this long */
#define WAIT_CAP_MS 100           /* longest single sleep of a waiting receiver */
#define SPIN_NS_DEFAULT 0u
#define ID_MAX 256
#define RECONNECT_NEVER_MS (1 << 30) /* about 12 days: see z_dial */

/* ---- the process's context ------------------------------------------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static void *g_ctx;
static pid_t g_pid;
static void *g_stale[8]; /* contexts of parent processes: kept reachable, never used */
static unsigned g_nstale, g_monitors;

static void *ctx_get(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_ctx && g_pid != getpid()) {
        if (g_nstale < sizeof g_stale / sizeof g_stale[0])
            g_stale[g_nstale++] = g_ctx;
        g_ctx = NULL;
    }
    if (!g_ctx) {
        g_ctx = zmq_ctx_new();
        if (g_ctx) {
            zmq_ctx_set(g_ctx, ZMQ_BLOCKY, 0);
            g_pid = getpid();
        }
    }
    void *c = g_ctx;
    pthread_mutex_unlock(&g_mu);
    if (!c) {
        int e = errno ? errno : ENOMEM;
        weir__seterr(-e, "link (zmq): cannot create a ZeroMQ context: %s", zmq_strerror(e));
    }
    return c;
}

/* ThreadSanitizer does not see libzmq's own synchronisation (it is not
 * instrumented): order what our threads wrote into a buffer before the free
 * function that libzmq's I/O thread runs on it. Nothing in other builds. */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_RELEASE(a) __tsan_release(a)
#define TSAN_ACQUIRE(a) __tsan_acquire(a)
#else
#define TSAN_RELEASE(a) ((void)(a))
#define TSAN_ACQUIRE(a) ((void)(a))
#endif

/* ---- what libzmq still holds of a pipe's sends ------------------------------- */

struct zacct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t inflight; /* bytes handed to libzmq, not yet released */
    int refs;        /* the pipe + one per message libzmq holds */
    int closed;      /* the pipe was closed: wake the sender */
};

/* One message handed to libzmq; its free function's hint. */
struct zpart {
    struct zacct *a;
    size_t n;
    /* the copied bytes follow */
};

static struct zacct *acct_new(void)
{
    struct zacct *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &ca);
    pthread_condattr_destroy(&ca);
    a->refs = 1;
    return a;
}

static void acct_unref_locked(struct zacct *a) /* called with a->mu held; unlocks */
{
    int last = --a->refs == 0;
    pthread_mutex_unlock(&a->mu);
    if (last) {
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
    }
}

/* libzmq's I/O thread (or whoever drops the message) is done with a part. */
static void part_free(void *data, void *hint)
{
    (void)data;
    struct zpart *pt = hint;
    TSAN_ACQUIRE(pt);
    struct zacct *a = pt->a;
    pthread_mutex_lock(&a->mu);
    a->inflight -= pt->n;
    pthread_cond_broadcast(&a->cv);
    free(pt);
    acct_unref_locked(a);
}

/* ---- sockets and pipes -------------------------------------------------------- */

struct zq {
    struct zq *next;
    zmq_msg_t m;
};

struct zsock {
    pthread_mutex_t mu;
    void *s;      /* the ZMQ_STREAM socket; NULL once closed */
    int zfd;      /* its ZMQ_FD */
    int listener; /* 1: bound, carries accepted pipes */
    int refs;     /* listener + pipes (under g_mu-free atomic) */
    size_t queued;
    weir__tp_pipe *pipes;            /* every pipe with a routing id on this socket */
    weir__tp_pipe *acc_head, *acc_tail; /* accepted, not yet taken by accept() */
    int aefd;     /* listener: wakes accept */
    int fd_waiters; /* receivers asleep on zfd: while one is, accept() leaves zfd to them */
    int lclosed;  /* listener_close was called */
    char addr[64];
    /* dialer: the pipe waiting for its connect notification */
    weir__tp_pipe *dialing;
    int connected;
};

struct weir__tp_pipe {
    struct zsock *zs;
    weir__tp_pipe *next;    /* zs->pipes */
    weir__tp_pipe *anext;   /* zs accept queue */
    uint8_t id[ID_MAX];
    size_t idlen;
    char peer[64];
    struct zacct *acct;
    int rxfd;               /* eventfd: wakes the receiving thread */
    int cfd;                /* atomic: accepted: libzmq's fd of the connection (ZMQ_SRCFD), or -1 */
    char local[64];         /* accepted: its local address, to recognise cfd */
    uint64_t tx_total;      /* atomic: bytes handed to libzmq */
    int closed;             /* atomic: close() was called */
    int dialed;
    uint32_t spin_ns;
    /* under zs->mu */
    int peer_gone;          /* the connection closed (notification seen) */
    int cut;                /* the disconnect was sent */
    int cut_wanted;         /* cut once in flight reaches 0 or at cut_deadline */
    uint64_t cut_deadline;
    int zombie;             /* pipe_free was called: the service frees it after the cut */
    int in_accept_q;
    int rx_waiting;         /* the receiving thread sleeps in wait_fds: kick it */
    struct zq *qh, *qt;
    /* receiving thread only */
    zmq_msg_t cur;
    int have_cur;
    size_t coff;
    int sending;            /* atomic: a send is in progress */
};

static int perr(const weir__tp_pipe *p, int code, const char *what)
{
    return weir__seterr(code, "link peer %s (zmq): %s: %s", p->peer, what, weir__strerror(code));
}

static void kick(int efd)
{
    uint64_t one = 1;
    if (efd >= 0 && write(efd, &one, sizeof one) < 0) {
        /* counter full: a wake is pending anyway */
    }
}

static void drain_efd(int efd)
{
    uint64_t v;
    if (read(efd, &v, sizeof v) < 0) {
        /* nothing pending */
    }
}

static int zsock_opts(void *s, const struct weir__tp_cfg *cfg, int v6)
{
    int zero = 0, one = 1, linger = LINGER_MS;
    /* Not 0 while the socket lives: libzmq then ends a lost connection's pipe
     * only after the socket read what it carried (the bytes and the closing
     * notification); with 0 it drops them. Set to 0 before zmq_close. */
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero) < 0)
        return -1;
    if (v6 && zmq_setsockopt(s, ZMQ_IPV6, &one, sizeof one) < 0)
        return -1;
    if (cfg && cfg->sndbuf) {
        int v = (int)cfg->sndbuf;
        zmq_setsockopt(s, ZMQ_SNDBUF, &v, sizeof v);
    }
    if (cfg && cfg->rcvbuf) {
        int v = (int)cfg->rcvbuf;
        zmq_setsockopt(s, ZMQ_RCVBUF, &v, sizeof v);
    }
    return 0;
}

static void zclose(void *s)
{
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s);
}

static struct zsock *zsock_new(void *ctx, int listener, const struct weir__tp_cfg *cfg, int v6)
{
    struct zsock *zs = calloc(1, sizeof *zs);
    if (!zs) {
        weir__seterr(-ENOMEM, "link (zmq): out of memory for a socket");
        return NULL;
    }
    zs->aefd = -1;
    zs->listener = listener;
    zs->refs = 1;
    pthread_mutex_init(&zs->mu, NULL);
    zs->s = zmq_socket(ctx, ZMQ_STREAM);
    size_t fl = sizeof zs->zfd;
    if (!zs->s || zsock_opts(zs->s, cfg, v6) < 0 ||
        zmq_getsockopt(zs->s, ZMQ_FD, &zs->zfd, &fl) < 0) {
        int e = errno;
        weir__seterr(-e, "link (zmq): cannot make a ZMQ_STREAM socket: %s", zmq_strerror(e));
        goto fail;
    }
    if (listener && (zs->aefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        weir__seterr(-errno, "link (zmq): eventfd: %s", strerror(errno));
        goto fail;
    }
    return zs;
fail:
    if (zs->s)
        zclose(zs->s);
    pthread_mutex_destroy(&zs->mu);
    free(zs);
    return NULL;
}

static void zsock_unref(struct zsock *zs)
{
    if (weir__sub_fetch_acq_rel(&zs->refs, 1) != 0)
        return;
    if (zs->s)
        zclose(zs->s);
    if (zs->aefd >= 0)
        close(zs->aefd);
    pthread_mutex_destroy(&zs->mu);
    free(zs);
}

static void q_drop(struct zsock *zs, weir__tp_pipe *p)
{
    while (p->qh) {
        struct zq *q = p->qh;
        p->qh = q->next;
        zs->queued -= zmq_msg_size(&q->m);
        zmq_msg_close(&q->m);
        free(q);
    }
    p->qt = NULL;
}

static void pipe_destroy(weir__tp_pipe *p)
{
    if (p->rxfd >= 0)
        close(p->rxfd);
    if (p->have_cur)
        zmq_msg_close(&p->cur);
    if (p->acct) {
        pthread_mutex_lock(&p->acct->mu);
        acct_unref_locked(p->acct);
    }
    free(p);
}

static weir__tp_pipe *pipe_alloc(const struct weir__tp_cfg *cfg)
{
    weir__tp_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfd = -1;
    p->rxfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->acct = acct_new();
    if (p->rxfd < 0 || !p->acct) {
        pipe_destroy(p);
        return NULL;
    }
    p->spin_ns = cfg && cfg->spin_ns ? cfg->spin_ns : SPIN_NS_DEFAULT;
    return p;
}

static void kernel_cut(weir__tp_pipe *p);
static int kernel_has_all(weir__tp_pipe *p);

/* Send the empty message that makes libzmq close p's connection, and end
 * an accepted one in the kernel too (under zs->mu). */
static void cut_now(struct zsock *zs, weir__tp_pipe *p)
{
    if (p->cut)
        return;
    p->cut = 1;
    if (!zs->s || p->peer_gone || !p->idlen)
        return;
    if (zmq_send(zs->s, p->id, p->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)p->idlen)
        zmq_send(zs->s, "", 0, ZMQ_DONTWAIT);
    kernel_cut(p);
}

static void unlink_pipe(struct zsock *zs, weir__tp_pipe *p)
{
    for (weir__tp_pipe **pp = &zs->pipes; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
}

static weir__tp_pipe *find_pipe(struct zsock *zs, const void *id, size_t n)
{
    for (weir__tp_pipe *p = zs->pipes; p; p = p->next)
        if (p->idlen == n && memcmp(p->id, id, n) == 0)
            return p;
    return NULL;
}

static void fd_peer(int fd, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[INET6_ADDRSTRLEN] = "?";
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *s = (const void *)&ss;
            inet_ntop(AF_INET, &s->sin_addr, h, sizeof h);
            snprintf(buf, n, "%s:%u", h, ntohs(s->sin_port));
            return;
        }
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s = (const void *)&ss;
            inet_ntop(AF_INET6, &s->sin6_addr, h, sizeof h);
            snprintf(buf, n, "[%s]:%u", h, ntohs(s->sin6_port));
            return;
        }
    }
    snprintf(buf, n, "?");
}

static void fd_local(int fd, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(buf, n, "?");
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
        char h[INET6_ADDRSTRLEN] = "?";
        const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                                : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        unsigned port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
        inet_ntop(ss.ss_family, a, h, sizeof h);
        snprintf(buf, n, "%s:%u", h, port);
    }
}

/*
 * End an accepted connection in the kernel: shutdown(SHUT_WR) of libzmq's
 * own fd, which sends the FIN after the bytes already written (the peer
 * reads them, then EOF). The message cut alone ends libzmq's
 * pipe, but the connection only closes once the socket has processed the
 * termination's acknowledgement, that is on some later call on the socket,
 * which may never come (the listener's streams ended). The fd is checked
 * to be the same connection first (both addresses): libzmq may have closed
 * it when the peer went, and the number been reused.
 */
static void kernel_cut(weir__tp_pipe *p)
{
    int fd = weir__load_acquire(&p->cfd);
    if (fd < 0)
        return;
    char peer[64], local[64];
    fd_peer(fd, peer, sizeof peer);
    fd_local(fd, local, sizeof local);
    if (strcmp(peer, p->peer) == 0 && strcmp(local, p->local) == 0 && strcmp(peer, "?") != 0)
        shutdown(fd, SHUT_WR); /* not SHUT_RD: unread bytes at libzmq's close would RST */
    weir__store_release(&p->cfd, -1); /* read by kernel_has_all without zs->mu */
}

/* A new connection on a listener: a pipe in the accept queue. */
static void new_accepted(struct zsock *zs, const zmq_msg_t *id, zmq_msg_t *note)
{
    if (zs->lclosed || zmq_msg_size(id) > ID_MAX)
        return;
    weir__tp_pipe *p = pipe_alloc(NULL);
    if (!p)
        return; /* out of memory: the connection stays unserved */
    p->idlen = zmq_msg_size(id);
    memcpy(p->id, zmq_msg_data((zmq_msg_t *)id), p->idlen);
    /* ZMQ_SRCFD: the connection's own fd, only to ask the kernel who the peer is */
    p->cfd = zmq_msg_get(note, ZMQ_SRCFD);
    fd_peer(p->cfd, p->peer, sizeof p->peer);
    fd_local(p->cfd, p->local, sizeof p->local);
    if (strcmp(p->peer, "?") == 0) {
        const char *a = zmq_msg_gets(note, "Peer-Address");
        snprintf(p->peer, sizeof p->peer, "%s:?", a ? a : "?");
    }
    p->zs = zs;
    weir__fetch_add(&zs->refs, 1);
    p->next = zs->pipes;
    zs->pipes = p;
    p->in_accept_q = 1;
    if (zs->acc_tail)
        zs->acc_tail->anext = p;
    else
        zs->acc_head = p;
    zs->acc_tail = p;
    kick(zs->aefd);
}

/*
 * Under zs->mu: cut the pipes that wait for it, free zombies whose cut is
 * done, then pull every message libzmq has into the receive queues (up to
 * RXQ_MAX), waking whoever each one is for. Ends with ZMQ_EVENTS clear of
 * POLLIN (or the queues full), so ZMQ_FD signals anything later.
 */
static void service(struct zsock *zs)
{
    if (!zs->s)
        return;
    uint64_t now = 0;
    for (weir__tp_pipe **pp = &zs->pipes; *pp;) {
        weir__tp_pipe *p = *pp;
        if (p->cut_wanted && !p->cut) {
            if (!now)
                now = weir_now_ns();
            pthread_mutex_lock(&p->acct->mu);
            size_t inf = p->acct->inflight;
            pthread_mutex_unlock(&p->acct->mu);
            if ((inf == 0 && kernel_has_all(p)) || now >= p->cut_deadline)
                cut_now(zs, p);
        }
        if (p->zombie && (p->cut || p->peer_gone)) {
            *pp = p->next;
            q_drop(zs, p);
            pipe_destroy(p);
            weir__sub_fetch_acq_rel(&zs->refs, 1); /* never the last: the caller holds one */
            continue;
        }
        pp = &p->next;
    }
    while (zs->queued < RXQ_MAX) {
        zmq_msg_t id, d;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, zs->s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            int ev = 0;
            size_t el = sizeof ev;
            if (errno == EAGAIN && zmq_getsockopt(zs->s, ZMQ_EVENTS, &ev, &el) == 0 &&
                (ev & ZMQ_POLLIN))
                continue;
            break;
        }
        zmq_msg_init(&d);
        if (zmq_msg_recv(&d, zs->s, ZMQ_DONTWAIT) < 0) { /* a STREAM message has two parts */
            zmq_msg_close(&id);
            zmq_msg_close(&d);
            break;
        }
        weir__tp_pipe *p = find_pipe(zs, zmq_msg_data(&id), zmq_msg_size(&id));
        if (zmq_msg_size(&d) == 0) {
            if (p) {
                p->peer_gone = 1; /* the connection closed */
                kick(p->rxfd);
                if (zs->listener)
                    kick(zs->aefd); /* accept() watches zfd again (a re-dial may follow) */
                pthread_mutex_lock(&p->acct->mu);
                pthread_cond_broadcast(&p->acct->cv);
                pthread_mutex_unlock(&p->acct->mu);
            } else if (zs->listener) {
                new_accepted(zs, &id, &d);
            } else if (zs->dialing && zmq_msg_size(&id) <= ID_MAX) {
                /* the dialed connection is up: from now on its bytes are the pipe's */
                weir__tp_pipe *dp = zs->dialing;
                zs->dialing = NULL;
                dp->idlen = zmq_msg_size(&id);
                memcpy(dp->id, zmq_msg_data(&id), dp->idlen);
                dp->next = zs->pipes;
                zs->pipes = dp;
                zs->connected = 1;
            }
            zmq_msg_close(&d);
        } else if (p && !p->zombie && !p->cut) {
            struct zq *q = malloc(sizeof *q);
            if (q) {
                zmq_msg_init(&q->m);
                zmq_msg_move(&q->m, &d);
                q->next = NULL;
                if (p->qt)
                    p->qt->next = q;
                else
                    p->qh = q;
                p->qt = q;
                zs->queued += zmq_msg_size(&q->m);
                if (p->rx_waiting) { /* a receiver that is awake finds it in its queue */
                    p->rx_waiting = 0;
                    kick(p->rxfd);
                }
            }
            zmq_msg_close(&d);
        } else {
            zmq_msg_close(&d); /* for a connection nobody serves any more */
        }
        zmq_msg_close(&id);
    }
}

/* Wait for efd and, with zfd set, zs's ZMQ_FD, at most ms (capped); drains efd. */
static void wait_fds(struct zsock *zs, int efd, int zfd, int ms)
{
    if (ms < 0 || ms > WAIT_CAP_MS)
        ms = WAIT_CAP_MS;
    struct pollfd pf[2] = {{.fd = efd, .events = POLLIN}, {.fd = zfd ? zs->zfd : -1, .events = POLLIN}};
    if (poll(pf, 2, ms) > 0 && pf[0].revents)
        drain_efd(efd);
}

static int ms_left(uint64_t deadline)
{
    uint64_t now = weir_now_ns();
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* ---- endpoints ---------------------------------------------------------------- */

/* host -> numeric address text (and whether it is IPv6), and a sockaddr. */
static int resolve(const char *host, uint16_t port, char *num, size_t n, int *v6,
                   struct sockaddr_storage *ss, socklen_t *sl)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int r = getaddrinfo(host, ps, &hints, &ai);
    if (r != 0 || !ai)
        return weir__seterr(-EHOSTUNREACH, "link: cannot resolve '%s': %s", host,
                            gai_strerror(r));
    *v6 = ai->ai_family == AF_INET6;
    const void *a = *v6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, a, num, (socklen_t)n);
    if (ss) {
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        *sl = ai->ai_addrlen;
    }
    freeaddrinfo(ai);
    return 0;
}

static void hostport(char *buf, size_t n, const char *num, int v6, unsigned port)
{
    if (v6)
        snprintf(buf, n, "[%s]:%u", num, port);
    else
        snprintf(buf, n, "%s:%u", num, port);
}

/* ---- listener ------------------------------------------------------------------ */

static int z_listen(const char *host, uint16_t port, const struct weir__tp_cfg *cfg,
                    weir__tp_listener **out, uint16_t *port_out)
{
    *out = NULL;
    char num[INET6_ADDRSTRLEN], ep[96];
    int v6;
    int r = resolve(host, port, num, sizeof num, &v6, NULL, NULL);
    if (r < 0)
        return r;
    void *ctx = ctx_get();
    if (!ctx)
        return weir_errcode();
    struct zsock *zs = zsock_new(ctx, 1, cfg, v6);
    if (!zs)
        return weir_errcode();
    if (port)
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:%u" : "tcp://%s:%u", num, port);
    else
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:*" : "tcp://%s:*", num);
    hostport(zs->addr, sizeof zs->addr, num, v6, port);
    if (zmq_bind(zs->s, ep) < 0) {
        r = -errno;
        weir__seterr(r, "link: cannot listen on %s: %s", zs->addr, zmq_strerror(-r));
        zsock_unref(zs);
        return r;
    }
    char last[128] = "";
    size_t ll = sizeof last;
    zmq_getsockopt(zs->s, ZMQ_LAST_ENDPOINT, last, &ll);
    const char *colon = strrchr(last, ':');
    unsigned bound = colon ? (unsigned)atoi(colon + 1) : port;
    hostport(zs->addr, sizeof zs->addr, num, v6, bound);
    *port_out = (uint16_t)bound;
    *out = (weir__tp_listener *)zs;
    return 0;
}

static int z_accept(weir__tp_listener *l, int timeout_ms, weir__tp_pipe **out)
{
    struct zsock *zs = (struct zsock *)l;
    *out = NULL;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : weir_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        pthread_mutex_lock(&zs->mu);
        if (zs->lclosed) {
            pthread_mutex_unlock(&zs->mu);
            return weir__seterr(-ECANCELED, "link listener %s: closed", zs->addr);
        }
        service(zs);
        weir__tp_pipe *p = zs->acc_head;
        if (p) {
            zs->acc_head = p->anext;
            if (!zs->acc_head)
                zs->acc_tail = NULL;
            p->anext = NULL;
            p->in_accept_q = 0;
        }
        /* A receiver asleep on zfd services the socket when it stirs, and a
         * new connection it finds kicks aefd: no second thread need wake for
         * every message. It leaves its wait only to receive, or to end (the
         * connection closed: aefd is kicked then), so accept() sees a new
         * connection at once, or within WAIT_CAP_MS should that receiver
         * stop receiving without closing. */
        int zfd = zs->fd_waiters == 0;
        pthread_mutex_unlock(&zs->mu);
        if (p) {
            *out = p;
            return 0;
        }
        int left = timeout_ms < 0 ? -1 : ms_left(deadline);
        if (left == 0)
            return weir__seterr(-ETIMEDOUT, "link listener %s: no connection within %d ms",
                                zs->addr, timeout_ms);
        wait_fds(zs, zs->aefd, zfd, left);
    }
}

static void z_listener_close(weir__tp_listener *l)
{
    struct zsock *zs = (struct zsock *)l;
    if (!zs)
        return;
    pthread_mutex_lock(&zs->mu); /* held only for non-blocking calls: a short wait */
    zs->lclosed = 1;
    pthread_mutex_unlock(&zs->mu);
    kick(zs->aefd);
}

static void z_listener_free(weir__tp_listener *l)
{
    struct zsock *zs = (struct zsock *)l;
    if (!zs)
        return;
    pthread_mutex_lock(&zs->mu);
    zs->lclosed = 1;
    /* connections never accepted, and closed ones still draining, go now */
    for (weir__tp_pipe **pp = &zs->pipes; *pp;) {
        weir__tp_pipe *p = *pp;
        if (p->in_accept_q || p->zombie) {
            *pp = p->next;
            q_drop(zs, p);
            pipe_destroy(p);
            weir__sub_fetch_acq_rel(&zs->refs, 1);
            continue;
        }
        pp = &p->next;
    }
    zs->acc_head = zs->acc_tail = NULL;
    zclose(zs->s); /* ZMQ_LINGER 0: every connection goes */
    zs->s = NULL;
    for (weir__tp_pipe *p = zs->pipes; p; p = p->next) { /* pipes the caller still has */
        p->peer_gone = 1;
        kick(p->rxfd);
    }
    pthread_mutex_unlock(&zs->mu);
    zsock_unref(zs);
}

/* ---- dial ------------------------------------------------------------------------ */

/* libzmq said the connect failed but not why: ask the kernel once. */
static int probe_connect(const struct sockaddr_storage *ss, socklen_t sl, int ms)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int r = 0;
    if (connect(fd, (const struct sockaddr *)ss, sl) < 0) {
        if (errno != EINPROGRESS) {
            r = -errno;
        } else {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int n = poll(&pf, 1, ms > 0 ? ms : 1);
            int soerr = 0;
            socklen_t el = sizeof soerr;
            if (n == 0)
                r = -ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0 || soerr)
                r = -(soerr ? soerr : errno);
        }
    }
    close(fd);
    return r ? r : -EAGAIN;
}

static int z_dial(const char *host, uint16_t port, const struct weir__tp_cfg *cfg, int timeout_ms,
                  weir__tp_pipe **out)
{
    *out = NULL;
    char num[INET6_ADDRSTRLEN], addr[64], ep[96], mep[64];
    int v6;
    struct sockaddr_storage ss;
    socklen_t sl;
    int r = resolve(host, port, num, sizeof num, &v6, &ss, &sl);
    if (r < 0)
        return r;
    hostport(addr, sizeof addr, num, v6, port);
    void *ctx = ctx_get();
    if (!ctx)
        return weir_errcode();
    struct zsock *zs = zsock_new(ctx, 0, cfg, v6);
    if (!zs)
        return weir_errcode();
    weir__tp_pipe *p = pipe_alloc(cfg);
    void *mon = NULL;
    if (!p) {
        r = weir__seterr(-ENOMEM, "link: out of memory for a connection to %s", addr);
        goto fail;
    }
    /* Not -1 (no reconnect): libzmq then ends a lost connection by
     * terminating the socket's pipe without delay, which drops what the
     * socket had not read yet (a REFUSE that arrived with the FIN, the
     * closing notification). A reconnect interval of days keeps the pipe;
     * the pipe is closed, with its socket, long before it could fire. */
    int never = RECONNECT_NEVER_MS;
    zmq_setsockopt(zs->s, ZMQ_RECONNECT_IVL, &never, sizeof never);
    if (timeout_ms > 0)
        zmq_setsockopt(zs->s, ZMQ_CONNECT_TIMEOUT, &timeout_ms, sizeof timeout_ms);
    pthread_mutex_lock(&g_mu);
    unsigned mid = g_monitors++;
    pthread_mutex_unlock(&g_mu);
    snprintf(mep, sizeof mep, "inproc://weir-zmq-dial-%d-%u", (int)getpid(), mid);
    if (zmq_socket_monitor(zs->s, mep, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CLOSED) < 0 ||
        !(mon = zmq_socket(ctx, ZMQ_PAIR)) || zmq_connect(mon, mep) < 0) {
        r = -errno;
        weir__seterr(r, "link: cannot watch the connect to %s: %s", addr, zmq_strerror(-r));
        goto fail;
    }
    int zero = 0;
    zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
    p->zs = zs;
    p->dialed = 1;
    snprintf(p->peer, sizeof p->peer, "%s", addr);
    zs->dialing = p;
    snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:%u" : "tcp://%s:%u", num, port);
    if (zmq_connect(zs->s, ep) < 0) {
        r = -errno;
        weir__seterr(r, "link: cannot connect to %s: %s", addr, zmq_strerror(-r));
        goto fail;
    }
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : weir_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int failed = 0;
    while (!zs->connected && !failed) {
        int left = timeout_ms < 0 ? -1 : ms_left(deadline);
        if (left == 0) {
            r = weir__seterr(-ETIMEDOUT, "link: cannot connect to %s: %s", addr,
                             weir__strerror(-ETIMEDOUT));
            goto fail;
        }
        zmq_pollitem_t it[2] = {{zs->s, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 2, left < 0 || left > WAIT_CAP_MS ? WAIT_CAP_MS : left) < 0 &&
            errno != EINTR) {
            r = -errno;
            weir__seterr(r, "link: cannot connect to %s: zmq_poll: %s", addr, zmq_strerror(-r));
            goto fail;
        }
        pthread_mutex_lock(&zs->mu);
        service(zs);
        pthread_mutex_unlock(&zs->mu);
        while (!zs->connected) {
            zmq_msg_t ev, epm;
            zmq_msg_init(&ev);
            zmq_msg_init(&epm);
            if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&ev);
                zmq_msg_close(&epm);
                break;
            }
            zmq_msg_recv(&epm, mon, ZMQ_DONTWAIT);
            uint16_t e = 0;
            if (zmq_msg_size(&ev) >= 2)
                memcpy(&e, zmq_msg_data(&ev), 2);
            zmq_msg_close(&ev);
            zmq_msg_close(&epm);
            if (e == ZMQ_EVENT_CLOSED) {
                /* closed before the connect notification: the connect failed */
                pthread_mutex_lock(&zs->mu);
                service(zs);
                pthread_mutex_unlock(&zs->mu);
                if (!zs->connected)
                    failed = 1;
                break;
            }
        }
    }
    if (failed) {
        int left = timeout_ms < 0 ? 1000 : ms_left(deadline);
        r = probe_connect(&ss, sl, left < 1000 ? left : 1000);
        if (r == -EAGAIN)
            weir__seterr(r, "link: cannot connect to %s: the connect failed, a retry would not "
                         "(try again)", addr);
        else
            weir__seterr(r, "link: cannot connect to %s: %s", addr, weir__strerror(r));
        goto fail;
    }
    zmq_socket_monitor(zs->s, NULL, 0);
    zmq_close(mon);
    *out = p;
    return 0;
fail:
    if (mon)
        zmq_close(mon);
    if (p) {
        unlink_pipe(zs, p);
        pipe_destroy(p);
    }
    zsock_unref(zs);
    return r;
}

/* ---- pipe ------------------------------------------------------------------------- */

static void z_close(weir__tp_pipe *p)
{
    if (!p)
        return;
    weir__store_release(&p->closed, 1);
    kick(p->rxfd);
    pthread_mutex_lock(&p->acct->mu);
    p->acct->closed = 1;
    pthread_cond_broadcast(&p->acct->cv);
    pthread_mutex_unlock(&p->acct->mu);
    struct zsock *zs = p->zs;
    pthread_mutex_lock(&zs->mu);
    if (p->dialed) {
        /* the dialer's socket is this pipe's alone: closing it is the sure cut
         * (a cut message alone leaves libzmq's connection open) */
        cut_now(zs, p);
        if (zs->s) {
            zclose(zs->s);
            zs->s = NULL;
        }
    } else if (weir__load_acquire(&p->sending)) {
        cut_now(zs, p);
    } else if (!p->cut_wanted) {
        p->cut_wanted = 1;
        p->cut_deadline = weir_now_ns() + (uint64_t)LINGER_MS * 1000000ull;
    }
    service(zs);
    pthread_mutex_unlock(&zs->mu);
    if (!p->dialed)
        kick(zs->aefd); /* its receiver may have been the one watching zfd */
}

/*
 * Has the kernel got every byte sent on accepted pipe p? libzmq releases a
 * small message (inflight reaches 0) when it copies it into its own write
 * buffer, before the write: a cut then would drop it (a REFUSE lost, the
 * dialer waiting for nothing). ZMQ_STREAM writes exactly our bytes, so the
 * kernel has them all when acknowledged + still queued >= handed over.
 * 1 when it cannot tell (no fd): the caller then relies on inflight alone.
 */
static int kernel_has_all(weir__tp_pipe *p)
{
    int fd = weir__load_acquire(&p->cfd); /* kernel_cut clears it under zs->mu */
    if (fd < 0)
        return 1;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    int outq = 0;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 ||
        tl < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked ||
        ioctl(fd, SIOCOUTQ, &outq) < 0)
        return 1;
    return ti.tcpi_bytes_acked + (uint64_t)outq >= weir__load_acquire(&p->tx_total);
}

/* Wait until libzmq holds none of p's bytes and the kernel has them all, or
 * the monotonic deadline dl (ns). */
static void drain_wait(weir__tp_pipe *p, uint64_t dl)
{
    struct zacct *a = p->acct;
    pthread_mutex_lock(&a->mu);
    /* weir_now_ns is CLOCK_MONOTONIC, the clock of a->cv */
    struct timespec ts = {(time_t)(dl / 1000000000ull), (long)(dl % 1000000000ull)};
    while (a->inflight && weir_now_ns() < dl)
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    pthread_mutex_unlock(&a->mu);
    while (!kernel_has_all(p) && weir_now_ns() < dl)
        usleep(100); /* libzmq's I/O thread writes it within microseconds */
}

static void z_pipe_free(weir__tp_pipe *p)
{
    if (!p)
        return;
    struct zsock *zs = p->zs;
    if (p->have_cur) {
        zmq_msg_close(&p->cur);
        p->have_cur = 0;
    }
    pthread_mutex_lock(&zs->mu);
    q_drop(zs, p);
    if (p->dialed || !zs->s) {
    gone:
        cut_now(zs, p);
        unlink_pipe(zs, p);
        pthread_mutex_unlock(&zs->mu);
        pipe_destroy(p);
        zsock_unref(zs); /* a dialer's socket goes with its pipe */
        return;
    }
    /* Accepted: cut its connection here, once libzmq has written what was
     * sent (a REFUSE, a last ACK), at most until the cut deadline. Left to a
     * later service, the cut would wait for a call on the socket that may
     * never come (the listener's last stream ended: nobody accepts any more). */
    if (!p->cut && !p->peer_gone) {
        uint64_t dl = p->cut_wanted ? p->cut_deadline
                                    : weir_now_ns() + (uint64_t)LINGER_MS * 1000000ull;
        pthread_mutex_unlock(&zs->mu);
        drain_wait(p, dl);
        pthread_mutex_lock(&zs->mu);
        if (!zs->s) /* the listener was freed meanwhile: no service will free a zombie */
            goto gone;
        cut_now(zs, p);
    }
    p->zombie = 1;
    close(p->rxfd);
    p->rxfd = -1;
    service(zs);
    pthread_mutex_unlock(&zs->mu);
}

static const char *z_peer(const weir__tp_pipe *p, char *buf, size_t n)
{
    snprintf(buf, n, "%s", p ? p->peer : "?");
    return buf;
}

/* Hand one message to libzmq (under zs->mu). 0 or a negative errno. */
static int send_part(struct zsock *zs, weir__tp_pipe *p, void *data, size_t n, struct zpart *pt)
{
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, data, n, part_free, pt) < 0) {
        free(pt);
        return -ENOMEM;
    }
    struct zacct *a = p->acct;
    pthread_mutex_lock(&a->mu);
    a->inflight += n;
    a->refs++;
    pthread_mutex_unlock(&a->mu);
    weir__fetch_add(&p->tx_total, (uint64_t)n);
    TSAN_RELEASE(pt);
    int r = 0;
    if (zmq_send(zs->s, p->id, p->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) != (int)p->idlen ||
        zmq_msg_send(&m, zs->s, ZMQ_DONTWAIT) < 0) {
        r = errno == EHOSTUNREACH ? -EPIPE : -errno;
        zmq_msg_close(&m); /* runs part_free */
    }
    return r;
}

static int z_send(weir__tp_pipe *p, const struct iovec *iov, unsigned n, int timeout_ms)
{
    if (weir__load_acquire(&p->closed))
        return perr(p, -EPIPE, "send on a closed connection");
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0;
    struct zacct *a = p->acct;
    struct zsock *zs = p->zs;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    weir__store_release(&p->sending, 1);
    int ret = 0, timed_out = 0;
    /* Bounded: wait until libzmq holds little enough of this pipe's bytes. */
    pthread_mutex_lock(&a->mu);
    while (a->inflight && a->inflight + total > TX_MAX && !a->closed && !timed_out) {
        if (timeout_ms < 0)
            pthread_cond_wait(&a->cv, &a->mu);
        else if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT)
            timed_out = 1;
    }
    int closed = a->closed;
    pthread_mutex_unlock(&a->mu);
    if (closed) {
        ret = perr(p, -EPIPE, "send on a closed connection");
        goto out;
    }
    if (timed_out) {
        ret = weir__seterr(-ETIMEDOUT, "link peer %s (zmq): send timed out after %d ms "
                           "(peer not reading)", p->peer, timeout_ms);
        goto out;
    }
    pthread_mutex_lock(&zs->mu);
    if (!zs->s || p->peer_gone || p->cut) {
        pthread_mutex_unlock(&zs->mu);
        ret = perr(p, -EPIPE, "send: connection closed");
        goto out;
    }
    for (unsigned i = 0; i < n && ret == 0;) {
        /* gather a run of pieces, at most COPY_MAX (or one larger piece) */
        size_t run = 0;
        unsigned j = i;
        while (j < n && (run == 0 || run + iov[j].iov_len <= COPY_MAX)) {
            run += iov[j].iov_len;
            j++;
        }
        struct zpart *pt = malloc(sizeof *pt + run);
        if (!pt) {
            ret = -ENOMEM;
            break;
        }
        *pt = (struct zpart){a, run};
        uint8_t *d = (uint8_t *)(pt + 1);
        for (unsigned k = i; k < j; k++) {
            if (iov[k].iov_len)
                memcpy(d, iov[k].iov_base, iov[k].iov_len);
            d += iov[k].iov_len;
        }
        i = j;
        if (run)
            ret = send_part(zs, p, pt + 1, run, pt);
        else
            free(pt);
    }
    if (ret < 0)
        cut_now(zs, p); /* a prefix went: the stream is out of frame */
    service(zs);
    pthread_mutex_unlock(&zs->mu);
    if (ret < 0) {
        ret = ret == -EPIPE ? perr(p, ret, "send: connection closed") : perr(p, ret, "send");
    }
out:
    weir__store_release(&p->sending, 0);
    return ret;
}

static int z_recv(weir__tp_pipe *p, struct weir__tp_chunk *ch, int timeout_ms)
{
    if (p->have_cur) {
        ch->data = (const uint8_t *)zmq_msg_data(&p->cur) + p->coff;
        ch->len = zmq_msg_size(&p->cur) - p->coff;
        ch->cookie = 0;
        return 0;
    }
    struct zsock *zs = p->zs;
    uint64_t t0 = weir_now_ns();
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : t0 + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        if (weir__load_acquire(&p->closed))
            return perr(p, -EPIPE, "receive on a closed connection");
        pthread_mutex_lock(&zs->mu);
        if (!p->qh)
            service(zs);
        struct zq *q = p->qh;
        int gone = p->peer_gone || !zs->s;
        if (q) {
            p->qh = q->next;
            if (!p->qh)
                p->qt = NULL;
            int full = zs->queued >= RXQ_MAX;
            zs->queued -= zmq_msg_size(&q->m);
            if (full)
                service(zs); /* it had stopped pulling: go on */
        }
        pthread_mutex_unlock(&zs->mu);
        if (q) {
            zmq_msg_init(&p->cur);
            zmq_msg_move(&p->cur, &q->m);
            zmq_msg_close(&q->m);
            free(q);
            p->have_cur = 1;
            p->coff = 0;
            ch->data = zmq_msg_data(&p->cur);
            ch->len = zmq_msg_size(&p->cur);
            ch->cookie = 0;
            return 0;
        }
        if (gone)
            return weir__seterr(-EPIPE, "link peer %s (zmq): connection closed", p->peer);
        if (timeout_ms == 0)
            return weir__seterr(-ETIMEDOUT, "link peer %s (zmq): nothing received for 0 ms",
                                p->peer);
        uint64_t now = weir_now_ns();
        if (now >= deadline)
            return weir__seterr(-ETIMEDOUT, "link peer %s (zmq): nothing received for %d ms",
                                p->peer, timeout_ms);
        if (now - t0 < p->spin_ns) {
            for (int k = 0; k < 64; k++)
                weir__cpu_relax();
            continue;
        }
        pthread_mutex_lock(&zs->mu);
        int ready = p->qh || p->peer_gone || !zs->s;
        if (!ready) {
            p->rx_waiting = 1; /* service kicks rxfd for what it queues now */
            zs->fd_waiters++;
        }
        pthread_mutex_unlock(&zs->mu);
        if (ready)
            continue;
        wait_fds(zs, p->rxfd, 1, timeout_ms < 0 ? -1 : ms_left(deadline));
        pthread_mutex_lock(&zs->mu);
        p->rx_waiting = 0;
        zs->fd_waiters--;
        pthread_mutex_unlock(&zs->mu);
    }
}

static void z_recv_done(weir__tp_pipe *p, struct weir__tp_chunk *ch, size_t used)
{
    (void)ch;
    p->coff += used;
    if (p->have_cur && p->coff >= zmq_msg_size(&p->cur)) {
        zmq_msg_close(&p->cur);
        p->have_cur = 0;
    }
}

static int z_recv_into(weir__tp_pipe *p, void *buf, size_t len, int timeout_ms)
{
    uint8_t *d = buf;
    while (len) {
        struct weir__tp_chunk ch;
        int r = z_recv(p, &ch, timeout_ms);
        if (r < 0)
            return r;
        size_t k = ch.len < len ? ch.len : len;
        memcpy(d, ch.data, k);
        z_recv_done(p, &ch, k);
        d += k;
        len -= k;
    }
    return 0;
}

const struct weir__tp_ops weir__tp_zmq = {
    .name = "zmq",
    .listen = z_listen,
    .accept = z_accept,
    .listener_close = z_listener_close,
    .listener_free = z_listener_free,
    .dial = z_dial,
    .send = z_send,
    .recv = z_recv,
    .recv_done = z_recv_done,
    .recv_into = z_recv_into,
    .close = z_close,
    .pipe_free = z_pipe_free,
    .peer = z_peer,
};
