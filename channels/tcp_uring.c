/* SPDX-License-Identifier: MIT */
/*
 * channels/tcp_uring.c - the io_uring TCP transport (channels/transport.h).
 *
 * Design notes.
 *
 * One pipe = one TCP socket and two rings, one per thread that uses it
 * (the sending thread and the receiving thread, as liburing's proxy example
 * keeps one ring per thread): no lock on the submission path. Both rings
 * are set up with COOP_TASKRUN | TASKRUN_FLAG (falling back to plain
 * flags on older kernels): completions then arrive without an IPI and
 * peeking the CQ ring runs pending task work, so a bounded spin on
 * completions (spin_ns) catches a reply in a few microseconds; after the
 * budget the thread sleeps in io_uring_wait_cqe_timeout (PEERS.md: 19.8 vs
 * 4.0 us one way).
 *
 * Sending: the caller's iovecs (frame headers and payloads straight from
 * ring slots) go out as one SENDMSG per batch, linked to a LINK_TIMEOUT so
 * a peer that stops reading cannot hold the thread past the timeout; short
 * sends are resubmitted from where they stopped. With cfg.send_zc the
 * batch goes as SENDMSG_ZC and the call also waits for the kernel's
 * notification (the payload pages are then free to be reused). That
 * notification needs the peer's acknowledgement of every byte, so a peer
 * that stopped reading never sends it: the wait is bounded by the send's
 * timeout and ended by close(), after a grace of ZC_CLOSE_GRACE_MS for a
 * notification already on its way (-ETIMEDOUT / -EPIPE; the pipe is then
 * closed, and the kernel holds its own references to the pages).
 *
 * Receiving: a multishot RECV into a ring of provided buffers (kernel 5.19+):
 * one SQE keeps delivering chunks; each chunk is lent to the caller and its
 * buffer goes back to the buffer ring in recv_done. When the kernel runs
 * out of buffers or ends the multishot, it is re-armed. Where buffer rings
 * are missing, a single-shot RECV into one buffer is used.
 *
 * Large payloads skip the buffers: recv_into() first copies what is
 * already buffered, then, for a remainder of DIRECT_MIN or more, reads
 * straight into the caller's memory with one RECV (MSG_WAITALL). A
 * multishot armed at that point would race it for the socket's bytes, so
 * it is cancelled first and its last chunks (bytes that arrived before)
 * are consumed in order; after a direct read the next SINGLE_ARMS arms
 * are single-shot RECVs of SINGLE_LEN bytes, so a stream of large
 * messages has at most SINGLE_LEN bytes of each copied (the multishot
 * would have drained the socket into the buffers ahead of us). A direct
 * RECV never outlives the call: on a timeout it is cancelled and reaped.
 *
 * Sending copies runs of small segments (frame headers, small payloads:
 * up to STAGE_SEG_MAX bytes each) into one staging buffer, so the kernel
 * sees one segment per run instead of one per frame part (a batch of 32
 * 64 B messages: 1 iovec, not 64); larger payloads go by reference, from
 * the ring slots.
 *
 * close() shuts the socket down: armed recvs complete with 0 and sends
 * with an error, so blocked threads return -EPIPE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weir/common.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "channels/transport.h"

#define NBUFS 16u                 /* provided buffers per pipe (power of two) */
#define BUFSZ (64u * 1024u)       /* bytes per provided buffer */
/* Bounded spin on completions before sleeping. Short: a link has three
 * threads per end in a chain (writer, send, receive), more than the cores,
 * and a long spin starves the thread with the work. weir-bench net, 64 B
 * ping-pong one way, paired runs: 44 us with 20 us of spin, 30 us with
 * 5 us, 27 us with 2 us, 26 us with 1 us; throughput unchanged. */
#define SPIN_NS_DEFAULT 2000u
#define RING_ENTRIES 8u
#define BGID 0
#define DIRECT_MIN (16u * 1024u)  /* recv_into reads at least this much straight into the caller's memory */
#define SINGLE_ARMS 32u           /* after a direct read: single-shot arms before multishot again */
#define SINGLE_LEN 4096u          /* bytes a single-shot arm asks for */
#define STAGE_BYTES (64u * 1024u) /* send: small segments are copied into one run of this buffer */
#define STAGE_SEG_MAX 2048u       /* send: segments up to this size are staged */
#define ZC_SLICE_MS 20             /* send: a zero-copy notification is awaited in slices of this */
#define ZC_CLOSE_GRACE_MS 100      /* ... and this long after close() */
#define STACK_IOV 528u            /* send: iovecs without a malloc (a link batch: 2 * 256 + 1) */

/* user_data of the receive ring's operations */
enum { UD_SEND = 1, UD_TMO = 2, UD_RECV = 3, UD_DIRECT = 4, UD_CANCEL = 5 };

struct weir__tp_listener {
    int fd;
    int efd; /* listener_close writes it: wakes a blocked accept */
    struct weir__tp_cfg cfg; /* for every accepted pipe */
    char addr[64];
};

struct weir__tp_pipe {
    int fd;
    int closed;
    uint32_t spin_ns;
    int send_zc;
    char peer[64];
    struct io_uring tx;
    struct io_uring rx;
    int tx_ok, rx_ok;
    uint8_t *stage; /* send side: small segments of one batch, copied together */
    /* receive side (receiving thread only) */
    struct io_uring_buf_ring *br; /* NULL: single-shot fallback */
    size_t br_bytes;
    uint8_t *bufs;
    int armed;       /* a recv SQE (UD_RECV) is in flight */
    int multi;       /* ... and it is the multishot */
    int cancelling;  /* an ASYNC_CANCEL of it is in flight */
    unsigned single; /* single-shot arms left before multishot again (after direct reads) */
    int lent;        /* a chunk is lent to the caller */
    int have;        /* a chunk with unconsumed bytes is pending */
    unsigned bid;    /* its buffer */
    size_t clen, coff;
    int rx_err;      /* sticky: the stream ended */
};

static int perr(const weir__tp_pipe *p, int code, const char *what)
{
    return weir__seterr(code, "link peer %s (uring): %s: %s", p->peer, what,
                        weir__strerror(code));
}

static void addr_str(const struct sockaddr *sa, char *buf, size_t n)
{
    char h[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, h, sizeof h);
        port = ntohs(s->sin_port);
        snprintf(buf, n, "%s:%u", h, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, h, sizeof h);
        port = ntohs(s->sin6_port);
        snprintf(buf, n, "[%s]:%u", h, port);
    } else {
        snprintf(buf, n, "?");
    }
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl)
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
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void tune(int fd, const struct weir__tp_cfg *cfg)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cfg && cfg->rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof cfg->rcvbuf);
    if (cfg && cfg->sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg->sndbuf, sizeof cfg->sndbuf);
}

/* ---- listener ------------------------------------------------------------- */

static int u_listen(const char *host, uint16_t port, const struct weir__tp_cfg *cfg,
                    weir__tp_listener **out, uint16_t *port_out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sl;
    int r = resolve(host, port, &ss, &sl);
    if (r < 0)
        return r;
    weir__tp_listener *l = calloc(1, sizeof *l);
    if (!l)
        return weir__seterr(-ENOMEM, "link: out of memory for a listener");
    l->efd = -1;
    if (cfg)
        l->cfg = *cfg;
    l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    /* The receive buffer before listen(): accepted sockets inherit it, and the
     * window scale is agreed in the handshake from it. */
    if (l->fd >= 0 && l->cfg.rcvbuf)
        setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &l->cfg.rcvbuf, sizeof l->cfg.rcvbuf);
    if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(l->fd, (struct sockaddr *)&ss, sl) < 0 || listen(l->fd, 16) < 0) {
        r = -errno;
        addr_str((struct sockaddr *)&ss, l->addr, sizeof l->addr);
        weir__seterr(r, "link: cannot listen on %s: %s", l->addr, strerror(-r));
        goto fail;
    }
    if ((l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        r = weir__seterr(-errno, "link: eventfd: %s", strerror(errno));
        goto fail;
    }
    sl = sizeof ss;
    getsockname(l->fd, (struct sockaddr *)&ss, &sl);
    addr_str((struct sockaddr *)&ss, l->addr, sizeof l->addr);
    *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = l;
    return 0;
fail:
    if (l->fd >= 0)
        close(l->fd);
    free(l);
    return r;
}

static int pipe_new(int fd, const struct weir__tp_cfg *cfg, weir__tp_pipe **out);

static int u_accept(weir__tp_listener *l, int timeout_ms, weir__tp_pipe **out)
{
    *out = NULL;
    struct pollfd pf[2] = {{.fd = l->fd, .events = POLLIN}, {.fd = l->efd, .events = POLLIN}};
    int n = poll(pf, 2, timeout_ms);
    if (n < 0)
        return weir__seterr(-errno, "link listener %s: poll: %s", l->addr, strerror(errno));
    if (pf[1].revents)
        return weir__seterr(-ECANCELED, "link listener %s: closed", l->addr);
    if (n == 0)
        return weir__seterr(-ETIMEDOUT, "link listener %s: no connection within %d ms", l->addr,
                            timeout_ms);
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        int e = errno == EAGAIN ? ETIMEDOUT : errno;
        return weir__seterr(-e, "link listener %s: accept: %s", l->addr, strerror(e));
    }
    tune(fd, &l->cfg);
    return pipe_new(fd, &l->cfg, out);
}

static void u_listener_close(weir__tp_listener *l)
{
    uint64_t one = 1;
    if (l && write(l->efd, &one, sizeof one) < 0) {
        /* counter full: a wake is already pending */
    }
}

static void u_listener_free(weir__tp_listener *l)
{
    if (!l)
        return;
    close(l->fd);
    if (l->efd >= 0)
        close(l->efd);
    free(l);
}

/* ---- dial ----------------------------------------------------------------- */

static int u_dial(const char *host, uint16_t port, const struct weir__tp_cfg *cfg, int timeout_ms,
                  weir__tp_pipe **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sl;
    char addr[64];
    int r = resolve(host, port, &ss, &sl);
    if (r < 0)
        return r;
    addr_str((struct sockaddr *)&ss, addr, sizeof addr);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return weir__seterr(-errno, "link: socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        r = -errno;
        goto fail;
    }
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int n = poll(&pf, 1, timeout_ms);
    if (n == 0) {
        r = -ETIMEDOUT;
        goto fail;
    }
    int soerr = 0;
    socklen_t el = sizeof soerr;
    if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0)
        soerr = errno;
    if (soerr) {
        r = -soerr;
        goto fail;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    tune(fd, cfg);
    return pipe_new(fd, cfg, out);
fail:
    close(fd);
    return weir__seterr(r, "link: cannot connect to %s: %s", addr, weir__strerror(r));
}

/* ---- pipe ----------------------------------------------------------------- */

/*
 * liburing maps a ring's memory with raw system calls that ThreadSanitizer
 * does not intercept, so when a freed ring's address is reused by a new ring
 * of another thread, TSan takes the two rings' accesses for a race. Order
 * them explicitly through the rings' addresses: release at exit, acquire at
 * init. Nothing at all in other builds.
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static void tsan_ring_handoff(struct io_uring *ring, int acquire)
{
    void *a[] = {ring->sq.sqes, ring->sq.ring_ptr, ring->cq.ring_ptr};
    for (unsigned i = 0; i < sizeof a / sizeof a[0]; i++)
        if (a[i]) {
            if (acquire)
                __tsan_acquire(a[i]);
            else
                __tsan_release(a[i]);
        }
}
/* Bytes read from a pipe follow what this end sent on it (an ACK follows the
 * data it acknowledges): send releases, receive acquires, so the staging
 * copy of a slot in u_send is ordered before the slot's reuse after the
 * peer's ACK, a round trip through the kernel TSan cannot see. */
static void tsan_pipe(weir__tp_pipe *p, int acquire)
{
    if (acquire)
        __tsan_acquire(p);
    else
        __tsan_release(p);
}
#else
static void tsan_ring_handoff(struct io_uring *ring, int acquire)
{
    (void)ring;
    (void)acquire;
}
static void tsan_pipe(weir__tp_pipe *p, int acquire)
{
    (void)p;
    (void)acquire;
}
#endif

static void ring_exit(struct io_uring *ring)
{
    tsan_ring_handoff(ring, 0);
    io_uring_queue_exit(ring);
}

static int ring_init(struct io_uring *ring)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    int r = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    if (r == -EINVAL) {
        memset(&p, 0, sizeof p);
        r = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    }
    if (r == 0)
        tsan_ring_handoff(ring, 1);
    return r;
}

static void give_buf(weir__tp_pipe *p, unsigned bid)
{
    io_uring_buf_ring_add(p->br, p->bufs + (size_t)bid * BUFSZ, BUFSZ, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    io_uring_buf_ring_advance(p->br, 1);
}

static int pipe_new(int fd, const struct weir__tp_cfg *cfg, weir__tp_pipe **out)
{
    weir__tp_pipe *p = calloc(1, sizeof *p);
    if (!p) {
        close(fd);
        return weir__seterr(-ENOMEM, "link: out of memory for a connection");
    }
    p->fd = fd;
    p->spin_ns = cfg && cfg->spin_ns ? cfg->spin_ns : SPIN_NS_DEFAULT;
    p->send_zc = cfg ? (int)cfg->send_zc : 0;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_str((struct sockaddr *)&ss, p->peer, sizeof p->peer);
    else
        snprintf(p->peer, sizeof p->peer, "?");
    int r;
    if ((r = ring_init(&p->tx)) < 0) {
        perr(p, r, "io_uring_queue_init");
        goto fail;
    }
    p->tx_ok = 1;
    if (!(p->stage = malloc(STAGE_BYTES))) {
        r = perr(p, -ENOMEM, "send staging buffer");
        goto fail;
    }
    if ((r = ring_init(&p->rx)) < 0) {
        perr(p, r, "io_uring_queue_init");
        goto fail;
    }
    p->rx_ok = 1;
    p->bufs = mmap(NULL, (size_t)NBUFS * BUFSZ, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->bufs == MAP_FAILED) {
        p->bufs = NULL;
        r = perr(p, -ENOMEM, "receive buffers");
        goto fail;
    }
    p->br_bytes = NBUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, p->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br != MAP_FAILED) {
        struct io_uring_buf_reg reg;
        memset(&reg, 0, sizeof reg);
        reg.ring_addr = (uint64_t)(uintptr_t)br;
        reg.ring_entries = NBUFS;
        reg.bgid = BGID;
        if (io_uring_register_buf_ring(&p->rx, &reg, 0) == 0) {
            p->br = br;
            io_uring_buf_ring_init(p->br);
            for (unsigned i = 0; i < NBUFS; i++)
                give_buf(p, i);
        } else {
            munmap(br, p->br_bytes); /* kernel without buffer rings: single-shot recv */
        }
    }
    *out = p;
    return 0;
fail:
    weir__tp_uring.pipe_free(p);
    return r;
}

static void u_close(weir__tp_pipe *p)
{
    if (!p)
        return;
    weir__store_release(&p->closed, 1);
    shutdown(p->fd, SHUT_RDWR);
}

static void u_pipe_free(weir__tp_pipe *p)
{
    if (!p)
        return;
    if (p->fd >= 0) {
        shutdown(p->fd, SHUT_RDWR);
    }
    if (p->rx_ok)
        ring_exit(&p->rx); /* cancels an armed recv */
    if (p->tx_ok)
        ring_exit(&p->tx);
    if (p->br)
        munmap(p->br, p->br_bytes);
    if (p->bufs)
        munmap(p->bufs, (size_t)NBUFS * BUFSZ);
    if (p->fd >= 0)
        close(p->fd);
    free(p->stage);
    free(p);
}

static const char *u_peer(const weir__tp_pipe *p, char *buf, size_t n)
{
    snprintf(buf, n, "%s", p ? p->peer : "?");
    return buf;
}

/*
 * Wait for a completion: spin on the CQ ring for the spin budget (peeking
 * also runs deferred task work under TASKRUN_FLAG), then sleep.
 * timeout_ms < 0: forever. 0 and *cqe, or -ETIME.
 */
static int wait_cqe(weir__tp_pipe *p, struct io_uring *ring, struct io_uring_cqe **cqe,
                    int timeout_ms)
{
    if (io_uring_peek_cqe(ring, cqe) == 0)
        return 0;
    if (timeout_ms == 0)
        return -ETIME;
    uint64_t t0 = weir_now_ns();
    while (weir_now_ns() - t0 < p->spin_ns) {
        for (int k = 0; k < 32; k++)
            weir__cpu_relax();
        if (io_uring_peek_cqe(ring, cqe) == 0)
            return 0;
    }
    if (timeout_ms < 0) {
        int r;
        do
            r = io_uring_wait_cqe(ring, cqe);
        while (r == -EINTR);
        return r;
    }
    uint64_t left = (uint64_t)timeout_ms * 1000000ull;
    uint64_t spent = weir_now_ns() - t0;
    left = spent >= left ? 0 : left - spent;
    struct __kernel_timespec ts = {.tv_sec = (long long)(left / 1000000000ull),
                                   .tv_nsec = (long long)(left % 1000000000ull)};
    int r;
    do
        r = io_uring_wait_cqe_timeout(ring, cqe, &ts);
    while (r == -EINTR);
    return r;
}

static int u_send(weir__tp_pipe *p, const struct iovec *iov_in, unsigned n, int timeout_ms)
{
    if (weir__load_acquire(&p->closed))
        return perr(p, -EPIPE, "send on a closed connection");
    struct iovec stack[STACK_IOV], *iov = stack;
    if (n > STACK_IOV && !(iov = malloc(n * sizeof *iov)))
        return perr(p, -ENOMEM, "send");
    /* Runs of small segments become one staged segment each. */
    size_t staged = 0;
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t len = iov_in[i].iov_len;
        if (len == 0)
            continue;
        if (len <= STAGE_SEG_MAX && staged + len <= STAGE_BYTES) {
            uint8_t *dst = p->stage + staged;
            memcpy(dst, iov_in[i].iov_base, len);
            staged += len;
            if (m && (uint8_t *)iov[m - 1].iov_base + iov[m - 1].iov_len == dst)
                iov[m - 1].iov_len += len;
            else
                iov[m++] = (struct iovec){dst, len};
        } else {
            iov[m++] = iov_in[i];
        }
    }
    tsan_pipe(p, 0);
    struct iovec *cur = iov;
    unsigned left = m;
    int ret = 0;
    while (left) {
        if (cur->iov_len == 0) {
            cur++;
            left--;
            continue;
        }
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = cur;
        mh.msg_iovlen = left;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&p->tx);
        if (p->send_zc)
            io_uring_prep_sendmsg_zc(sqe, p->fd, &mh, MSG_NOSIGNAL | MSG_WAITALL);
        else
            io_uring_prep_sendmsg(sqe, p->fd, &mh, MSG_NOSIGNAL | MSG_WAITALL);
        sqe->user_data = UD_SEND;
        struct __kernel_timespec ts;
        int nsqe = 1;
        if (timeout_ms >= 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000ll;
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *t = io_uring_get_sqe(&p->tx);
            io_uring_prep_link_timeout(t, &ts, 0);
            t->user_data = UD_TMO;
            nsqe = 2;
        }
        int r = io_uring_submit(&p->tx);
        if (r < 0) {
            ret = perr(p, r, "io_uring_submit");
            break;
        }
        /* Collect the send's result (and the timeout's, and a ZC notification). */
        uint64_t t_sub = weir_now_ns(), t_closed = 0;
        int res = 0, got_send = 0, got_notif = !p->send_zc, got_tmo = nsqe == 1;
        while (!got_send || !got_notif || !got_tmo) {
            struct io_uring_cqe *cqe;
            if (got_send && got_tmo) {
                /* Only the ZC notification is missing: it comes when the kernel
                 * frees the pages, i.e. when the peer has acknowledged them,
                 * which a peer that stopped reading never does, and close()
                 * does not hasten. So it is waited in slices, bounded by the
                 * send's timeout and cut short by close(); the pipe must be
                 * closed then, and the kernel keeps its own references to the
                 * pages it still holds (the caller may reuse them). */
                uint64_t now = weir_now_ns(), ms = (now - t_sub) / 1000000ull;
                /* Closed: the notification may still be on its way (a peer
                 * that acknowledged everything, then closed: the send did
                 * succeed). A short grace, then give up. */
                if (weir__load_acquire(&p->closed)) {
                    if (!t_closed)
                        t_closed = now;
                    else if (now - t_closed >= (uint64_t)ZC_CLOSE_GRACE_MS * 1000000ull) {
                        ret = perr(p, -EPIPE, "send (closed before the kernel released a "
                                              "zero-copy send)");
                        goto out;
                    }
                }
                if (timeout_ms >= 0 && ms >= (uint64_t)timeout_ms) {
                    ret = weir__seterr(-ETIMEDOUT, "link peer %s (uring): send timed out after "
                                       "%d ms (peer not reading)", p->peer, timeout_ms);
                    goto out;
                }
                r = wait_cqe(p, &p->tx, &cqe, ZC_SLICE_MS);
                if (r == -ETIME)
                    continue;
            } else {
                r = wait_cqe(p, &p->tx, &cqe, -1);
            }
            if (r < 0) {
                ret = perr(p, r, "waiting for a send");
                goto out;
            }
            if (cqe->user_data == UD_TMO) {
                got_tmo = 1;
            } else if (cqe->flags & IORING_CQE_F_NOTIF) {
                got_notif = 1;
            } else {
                got_send = 1;
                res = cqe->res;
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    got_notif = 1; /* ZC send that failed: no notification follows */
            }
            io_uring_cqe_seen(&p->tx, cqe);
        }
        if (res == -ECANCELED) {
            ret = weir__seterr(-ETIMEDOUT, "link peer %s (uring): send timed out after %d ms "
                               "(peer not reading)", p->peer, timeout_ms);
            break;
        }
        if (res < 0) {
            ret = perr(p, res == -EPIPE || weir__load_acquire(&p->closed) ? -EPIPE : res, "send");
            break;
        }
        if (res == 0) {
            ret = perr(p, -EPIPE, "send");
            break;
        }
        size_t done = (size_t)res;
        while (left && done >= cur->iov_len) {
            done -= cur->iov_len;
            cur++;
            left--;
        }
        if (left) {
            cur->iov_base = (uint8_t *)cur->iov_base + done;
            cur->iov_len -= done;
        }
    }
out:
    if (iov != stack)
        free(iov);
    return ret;
}

static int submit_rx(weir__tp_pipe *p, struct io_uring_sqe *sqe, const char *what)
{
    (void)sqe;
    int r = io_uring_submit(&p->rx);
    return r < 0 ? perr(p, r, what) : 0;
}

/* Arm the receive (UD_RECV): multishot, or single-shot after direct reads. */
static int arm(weir__tp_pipe *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->rx);
    if (!sqe)
        return perr(p, -EBUSY, "no free submission entry (recv)");
    p->multi = 0;
    if (p->br && p->single) {
        p->single--;
        io_uring_prep_recv(sqe, p->fd, NULL, SINGLE_LEN, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
    } else if (p->br) {
        io_uring_prep_recv_multishot(sqe, p->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        p->multi = 1;
    } else {
        io_uring_prep_recv(sqe, p->fd, p->bufs, BUFSZ, 0);
    }
    sqe->user_data = UD_RECV;
    int r = submit_rx(p, sqe, "io_uring_submit (recv)");
    if (r == 0)
        p->armed = 1;
    return r;
}

/* Ask the kernel to end the armed multishot (its last chunks still arrive). */
static int cancel_multishot(weir__tp_pipe *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->rx);
    if (!sqe)
        return perr(p, -EBUSY, "no free submission entry (cancel)");
    io_uring_prep_cancel64(sqe, UD_RECV, 0);
    sqe->user_data = UD_CANCEL;
    int r = submit_rx(p, sqe, "io_uring_submit (cancel)");
    if (r == 0)
        p->cancelling = 1;
    return r;
}

/*
 * Wait up to timeout_ms for one completion of the armed receive (or of its
 * cancel) and take it in. 1: a chunk is pending (p->have); 0: a completion
 * without data (a cancel's, a multishot that ended); else a negative error
 * with the message set (-ETIMEDOUT: nothing came).
 */
static int reap(weir__tp_pipe *p, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    int r = wait_cqe(p, &p->rx, &cqe, timeout_ms);
    if (r == -ETIME)
        return weir__seterr(-ETIMEDOUT, "link peer %s (uring): nothing received for %d ms",
                            p->peer, timeout_ms);
    if (r < 0)
        return perr(p, r, "waiting for data");
    uint64_t ud = cqe->user_data;
    int res = cqe->res;
    unsigned flags = cqe->flags;
    io_uring_cqe_seen(&p->rx, cqe);
    if (ud != UD_RECV) {
        if (ud == UD_CANCEL)
            p->cancelling = 0;
        return 0;
    }
    if (!p->multi || !(flags & IORING_CQE_F_MORE))
        p->armed = 0;
    if (res == -ENOBUFS || res == -ECANCELED)
        return 0; /* out of buffers (cannot happen with one lent chunk) or cancelled */
    if (res == 0) {
        p->rx_err = -EPIPE;
        return weir__seterr(-EPIPE, "link peer %s (uring): connection closed", p->peer);
    }
    if (res < 0) {
        p->rx_err = weir__load_acquire(&p->closed) ? -EPIPE : res;
        return perr(p, p->rx_err, "receive");
    }
    tsan_pipe(p, 1);
    p->bid = p->br ? flags >> IORING_CQE_BUFFER_SHIFT : 0;
    p->clen = (size_t)res;
    p->coff = 0;
    p->have = 1;
    return 1;
}

static int u_recv(weir__tp_pipe *p, struct weir__tp_chunk *ch, int timeout_ms)
{
    for (;;) {
        if (p->have) {
            ch->data = p->bufs + (size_t)p->bid * BUFSZ + p->coff;
            ch->len = p->clen - p->coff;
            ch->cookie = p->bid;
            p->lent = 1;
            return 0;
        }
        if (p->rx_err)
            return perr(p, p->rx_err, "receive");
        /* Never arm while a cancel is in flight: it could hit the new recv. */
        if (!p->armed && !p->cancelling) {
            int r = arm(p);
            if (r < 0)
                return r;
        }
        int r = reap(p, timeout_ms);
        if (r < 0)
            return r;
    }
}

static void u_recv_done(weir__tp_pipe *p, struct weir__tp_chunk *ch, size_t used)
{
    (void)ch;
    p->lent = 0;
    p->coff += used;
    if (p->coff >= p->clen) {
        p->have = 0;
        if (p->br)
            give_buf(p, p->bid);
        /* single-shot: the buffer is free again; the next recv re-arms */
    }
}

/*
 * One RECV (MSG_WAITALL) of up to len bytes straight into d; nothing else
 * may be armed. *got: bytes received. A wait past timeout_ms cancels it and
 * reaps it (it never outlives the call): bytes that came by then count as
 * progress; none is -ETIMEDOUT, and the stream is then given up (a kernel
 * that does not report a cancelled recv's partial count may have lost bytes).
 */
static int direct(weir__tp_pipe *p, uint8_t *d, size_t len, int timeout_ms, size_t *got)
{
    *got = 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->rx);
    if (!sqe)
        return perr(p, -EBUSY, "no free submission entry (direct recv)");
    io_uring_prep_recv(sqe, p->fd, d, len, MSG_WAITALL);
    sqe->user_data = UD_DIRECT;
    int r = submit_rx(p, sqe, "io_uring_submit (direct recv)");
    if (r < 0)
        return r;
    struct io_uring_cqe *cqe;
    int res = 0, cancelled = 0;
    r = wait_cqe(p, &p->rx, &cqe, timeout_ms);
    if (r != 0) {
        /* Timed out (or the wait failed): cancel it, then reap it. */
        sqe = io_uring_get_sqe(&p->rx);
        if (sqe) {
            io_uring_prep_cancel64(sqe, UD_DIRECT, 0);
            sqe->user_data = UD_CANCEL;
            p->cancelling = io_uring_submit(&p->rx) >= 0;
        }
        cancelled = 1;
    }
    for (;;) {
        if (r != 0 && (r = wait_cqe(p, &p->rx, &cqe, -1)) != 0)
            return perr(p, r, "reaping a cancelled recv"); /* the ring itself is broken */
        uint64_t ud = cqe->user_data;
        int cres = cqe->res;
        io_uring_cqe_seen(&p->rx, cqe);
        if (ud == UD_DIRECT) {
            res = cres;
            break;
        }
        if (ud == UD_CANCEL)
            p->cancelling = 0;
        r = 1; /* not ours: wait for the next one */
    }
    while (p->cancelling) { /* the cancel's own completion */
        if (wait_cqe(p, &p->rx, &cqe, -1) != 0)
            break;
        if (cqe->user_data == UD_CANCEL)
            p->cancelling = 0;
        io_uring_cqe_seen(&p->rx, cqe);
    }
    if (res > 0) {
        *got = (size_t)res;
        return 0;
    }
    if (res == 0) {
        p->rx_err = -EPIPE;
        return weir__seterr(-EPIPE, "link peer %s (uring): connection closed", p->peer);
    }
    if (res == -ECANCELED && cancelled) {
        p->rx_err = -ETIMEDOUT;
        return weir__seterr(-ETIMEDOUT, "link peer %s (uring): nothing received for %d ms",
                            p->peer, timeout_ms);
    }
    p->rx_err = weir__load_acquire(&p->closed) ? -EPIPE : res;
    return perr(p, p->rx_err, "receive");
}

static int u_recv_into(weir__tp_pipe *p, void *buf, size_t len, int timeout_ms)
{
    uint8_t *d = buf;
    if (p->have && p->clen - p->coff > len) {
        /* The common case of a frame header or a small payload: all buffered. */
        memcpy(d, p->bufs + (size_t)p->bid * BUFSZ + p->coff, len);
        p->coff += len;
        return 0;
    }
    while (len) {
        if (p->have) {
            struct weir__tp_chunk ch;
            u_recv(p, &ch, 0);
            size_t n = ch.len < len ? ch.len : len;
            memcpy(d, ch.data, n);
            u_recv_done(p, &ch, n);
            d += n;
            len -= n;
            continue;
        }
        if (p->rx_err)
            return perr(p, p->rx_err, "receive");
        if (len >= DIRECT_MIN) {
            /* Straight into buf: first end the multishot and take its last chunks. */
            int r = 0;
            if (p->armed && p->multi && !p->cancelling)
                r = cancel_multishot(p);
            if (r == 0 && (p->armed || p->cancelling))
                r = reap(p, timeout_ms);
            if (r < 0)
                return r;
            if (p->armed || p->cancelling || p->have)
                continue;
            size_t got;
            if ((r = direct(p, d, len, timeout_ms, &got)) < 0)
                return r;
            d += got;
            len -= got;
            p->single = SINGLE_ARMS;
            continue;
        }
        struct weir__tp_chunk ch;
        int r = u_recv(p, &ch, timeout_ms);
        if (r < 0)
            return r;
        size_t n = ch.len < len ? ch.len : len;
        memcpy(d, ch.data, n);
        u_recv_done(p, &ch, n);
        d += n;
        len -= n;
    }
    return 0;
}

const struct weir__tp_ops weir__tp_uring = {
    .name = "uring",
    .listen = u_listen,
    .accept = u_accept,
    .listener_close = u_listener_close,
    .listener_free = u_listener_free,
    .dial = u_dial,
    .send = u_send,
    .recv = u_recv,
    .recv_done = u_recv_done,
    .recv_into = u_recv_into,
    .close = u_close,
    .pipe_free = u_pipe_free,
    .peer = u_peer,
};
