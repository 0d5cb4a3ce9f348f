/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_net.c - `weir-bench net`: weir links (include/weir/link.h)
 * over TCP beside raw TCP and ZeroMQ, measured in the same run, on
 * loopback and across a veth pair between two network namespaces.
 *
 * Design notes
 *
 * Every case is two processes (bench_run_parties, BENCH_PROCS): party 0,
 * the sender / pinger, is this process pinned to CPU 0; party 1, the
 * receiver / echo, a forked child pinned to CPU 1. On the veth path the
 * child first joins the namespace the bench created (setns), so its
 * traffic crosses the veth pair; the namespace and the pair are created
 * once per run and removed at exit (also on SIGINT/SIGTERM). Threads a
 * library starts (the link's send/receive/accept threads, ZeroMQ's I/O
 * thread) are started unpinned, as ZeroMQ's would be in an application.
 *
 * The receiver listens first (port 0: a free port) and publishes the port
 * in the shared argument before the first barrier; the sender connects
 * after it. Throughput: the sender sends until its time or message budget
 * (the first warm messages untimed), then ends the stream (weir: closes
 * c, the link carries the close; raw TCP: shutdown; ZeroMQ: a stop
 * message); the clock runs from the first timed send to the receiver's
 * end of stream. The receiver checks the length and the stamped sequence
 * number (first and last 8 bytes) of every message and must count exactly
 * what the sender sent.
 *
 * What each implementation does per message:
 *  - weir-uring / weir-zmq: the writer reserves a slot of c (depth from
 *    net_depth), stamps it in place (the baselines stamp a send buffer
 *    filled once, so no side copies a payload per message) and commits; the link carries it to
 *    w in the other process, whose reader checks it in place.
 *  - tcp-block: 4-byte length + payload in one sendmsg() per message,
 *    TCP_NODELAY; the receiver reads into a 256 KiB buffer and checks
 *    messages there (larger ones are read straight into a message buffer);
 *    blocking recv(). tcp-spin: the same with a receiver that busy-polls
 *    recv(MSG_DONTWAIT) (ping-pong: both ends).
 *  - zmq: ZeroMQ PUSH/PULL over tcp (ping-pong: PAIR), zmq_send from the
 *    buffer, zmq_msg_recv checked in place; HWM 1000 (64 for 1 MiB).
 * Ping-pong: one 64 B message in flight; weir uses two links (one per
 * direction, each process listens on one and dials the other).
 */
#include "bench.h"

#include <weir/chan.h>
#include <weir/link.h>

#include "channels/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef WEIR_BENCH_HAVE_ZMQ
#include <zmq.h>
#endif

#define STOP_SEQ UINT64_MAX
#define RBUF_CAP (256u * 1024u)

enum impl { I_URING, I_WZMQ, I_TCP, I_TCPSPIN, I_ZMQ, NIMPL };
static const char *const impl_name[NIMPL] = {"weir-uring", "weir-zmq", "tcp-block", "tcp-spin",
                                             "zmq"};

/* ---------------------------------------------------------------- paths */

struct net_path {
    const char *name; /* "lo" or "veth" */
    int ok;           /* usable in this run */
    char why[160];    /* why not */
    char ns[32];      /* party 1's namespace ("" on loopback) */
    char va[16], vb[16];
    char ip_a[32], ip_b[32]; /* party 0's address, party 1's address */
};

static struct net_path paths[2] = {
    {.name = "lo", .ok = 1, .ip_a = "127.0.0.1", .ip_b = "127.0.0.1"},
    {.name = "veth"},
};
static int veth_made; /* the namespace exists: remove it at exit */

static int sh_quiet(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh_quiet(const char *fmt, ...)
{
    char cmd[400], full[460];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
    int st = system(full);
    return st == 0 ? 0 : -1;
}

static void veth_down(void)
{
    if (!veth_made) return;
    veth_made = 0;
    struct net_path *p = &paths[1];
    sh_quiet("ip netns del %s", p->ns);
    sh_quiet("ip link del %s", p->va);
}

static void on_signal(int sig)
{
    veth_down();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The root namespace keeps va (ip_a), namespace ns gets vb (ip_b). */
static void veth_up(void)
{
    struct net_path *p = &paths[1];
    int id = (int)(getpid() % 100000);
    snprintf(p->ns, sizeof(p->ns), "weirb%d", id);
    snprintf(p->va, sizeof(p->va), "wba%d", id);
    snprintf(p->vb, sizeof(p->vb), "wbb%d", id);
    snprintf(p->ip_a, sizeof(p->ip_a), "10.%d.%d.1", 200 + id % 50, id / 50 % 250);
    snprintf(p->ip_b, sizeof(p->ip_b), "10.%d.%d.2", 200 + id % 50, id / 50 % 250);
    if (sh_quiet("ip netns add %s", p->ns) < 0) {
        snprintf(p->why, sizeof(p->why), "'ip netns add' not permitted here (root and iproute2 "
                                         "needed)");
        return;
    }
    veth_made = 1;
    atexit(veth_down);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (sh_quiet("ip link add %s type veth peer name %s", p->va, p->vb) ||
        sh_quiet("ip link set %s netns %s", p->vb, p->ns) ||
        sh_quiet("ip addr add %s/24 dev %s", p->ip_a, p->va) ||
        sh_quiet("ip link set %s up", p->va) ||
        sh_quiet("ip -n %s addr add %s/24 dev %s", p->ns, p->ip_b, p->vb) ||
        sh_quiet("ip -n %s link set %s up", p->ns, p->vb) ||
        sh_quiet("ip -n %s link set lo up", p->ns)) {
        snprintf(p->why, sizeof(p->why), "cannot set up the veth pair %s/%s into namespace %s",
                 p->va, p->vb, p->ns);
        veth_down();
        return;
    }
    p->ok = 1;
}

static int join_ns(const char *ns)
{
    if (!ns[0]) return 0;
    char path[96];
    snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* ---------------------------------------------------------- the case arg */

struct net_arg {
    int impl, pingpong;
    size_t n;
    unsigned depth;
    uint64_t warm;
    char ns[32];
    char ip_a[32], ip_b[32];
    int port_a, port_b; /* published before the first barrier */
    uint64_t *samples;  /* ping-pong round trips (shared) */
    const uint8_t *src;
};

/* Run f with the calling thread unpinned, so the threads it starts float. */
#define UNPINNED(stmt)                                                                            \
    do {                                                                                          \
        cpu_set_t saved_;                                                                         \
        int have_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0;                           \
        bench_pin_self(-1);                                                                       \
        stmt;                                                                                     \
        if (have_) sched_setaffinity(0, sizeof(saved_), &saved_);                                 \
    } while (0)

/* Sender's clock: 1 while seq should be sent (sets *t0 at the first timed one). */
static int tput_more(struct bench_shared *sh, const struct net_arg *a, uint64_t seq, uint64_t *t0,
                     uint64_t *deadline)
{
    const uint64_t mask = a->n >= 4096 ? 0 : 255;
    if (seq == a->warm) {
        *t0 = bench_now_ns();
        *deadline = *t0 + bench_opts.budget_ns;
    } else if ((seq & mask) == 0 && seq > a->warm && bench_now_ns() >= *deadline) {
        return 0;
    }
    if (seq >= a->warm + bench_opts.max_msgs) return 0;
    return !atomic_load_explicit(&sh->abort, memory_order_relaxed);
}

/* ------------------------------------------------------------ weir links */

static weir_link_opts link_opts(const struct net_arg *a)
{
    weir_link_opts o = {.transport = a->impl == I_WZMQ ? WEIR_TRANSPORT_ZMQ : WEIR_TRANSPORT_URING,
                        .timeout_ms = bench_opts.timeout_ms};
    return o;
}

static int ep_port(const weir_link *l)
{
    const char *c = strrchr(weir_link_endpoint(l), ':');
    return c ? atoi(c + 1) : 0;
}

static weir_chan *mkchan(const struct net_arg *a)
{
    weir_chan_opts o = {.slot_bytes = a->n, .depth = a->depth, .max_readers = 1};
    return weir_chan_create(NULL, &o);
}

/* Listen for w on ip; 0 and *port, or a failure recorded for idx. */
static int link_listen(struct bench_shared *sh, int idx, const struct net_arg *a, weir_chan *w,
                       const char *ip, weir_link **out, int *port)
{
    char ep[80];
    snprintf(ep, sizeof(ep), "tcp://%s:0", ip);
    weir_link_opts o = link_opts(a);
    weir_link *l = NULL;
    UNPINNED(l = weir_link_listen(w, ep, &o));
    if (!l) return bench_fail(sh, idx, weir_errcode(), "weir_link_listen %s: %s", ep, weir_errmsg());
    *out = l;
    *port = ep_port(l);
    return 0;
}

static int link_connect(struct bench_shared *sh, int idx, const struct net_arg *a, weir_chan *c,
                        const char *ip, int port, weir_link **out)
{
    char ep[80];
    snprintf(ep, sizeof(ep), "tcp://%s:%d", ip, port);
    weir_link_opts o = link_opts(a);
    weir_link *l = NULL;
    UNPINNED(l = weir_link_connect(c, ep, &o));
    if (!l)
        return bench_fail(sh, idx, weir_errcode(), "weir_link_connect %s: %s", ep, weir_errmsg());
    *out = l;
    return 0;
}

static int chan_put(weir_chan *c, const struct net_arg *a, uint64_t seq)
{
    void *p = weir_chan_reserve(c, a->n, bench_opts.timeout_ms);
    if (!p) return weir_errcode() ? weir_errcode() : -EIO;
    /* Stamped in place, as the baselines stamp their send buffers: a
     * producer writes its message into the slot it reserved (zero copy), so
     * a memcpy here would be a copy no baseline makes. */
    bench_stamp(p, a->n, seq);
    return weir_chan_commit(c, a->n);
}

/* 0, -EPIPE at the end, -EBADMSG (text in why), or the channel's error. */
static int chan_get(weir_chan *c, int id, const struct net_arg *a, uint64_t seq, char *why,
                    size_t whyn)
{
    weir_chan_msg m;
    int rc = weir_chan_read_msg(c, id, &m, bench_opts.timeout_ms);
    if (rc < 0) {
        snprintf(why, whyn, "%s", weir_errmsg());
        return rc;
    }
    if (m.flags & WEIR_MSG_ERROR) {
        snprintf(why, whyn, "error record: %.*s", (int)(m.len < 160 ? m.len : 160),
                 (const char *)m.data);
        rc = -EREMOTEIO;
    } else if (m.len != a->n || !bench_check(m.data, a->n, seq)) {
        snprintf(why, whyn, "message %llu is wrong (%zu bytes)", (unsigned long long)seq, m.len);
        rc = -EBADMSG;
    }
    weir_chan_release(c, id);
    return rc;
}

/* Sender's end: wait (bounded) for the link to report the stream acknowledged, free it. */
static int link_finish(struct bench_shared *sh, int idx, weir_link *l)
{
    uint64_t hard = bench_now_ns() + (uint64_t)bench_opts.timeout_ms * 1000000u;
    while (weir_link_status(l) == 0 && bench_now_ns() < hard) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    int st = weir_link_status(l);
    char msg[BENCH_ERR_LEN];
    snprintf(msg, sizeof(msg), "%s", weir_errmsg());
    weir_link_free(l);
    if (st != -EPIPE && sh->res[idx].err == 0)
        return bench_fail(sh, idx, st ? st : -ETIMEDOUT, "link did not end cleanly: %s",
                          st ? msg : "still running after the timeout");
    return 0;
}

static int weir_tput_party(struct bench_shared *sh, int idx, struct net_arg *a)
{
    int gen = 0, rc = 0;
    char why[200];
    weir_chan *ch = mkchan(a);
    weir_link *l = NULL;
    if (!ch) return bench_fail(sh, idx, weir_errcode(), "weir_chan_create: %s", weir_errmsg());
    if (idx == 1) {
        int id = weir_chan_register_reader(ch);
        if (id < 0) {
            rc = bench_fail(sh, idx, id, "register_reader: %s", weir_errmsg());
            goto out;
        }
        if ((rc = link_listen(sh, idx, a, ch, a->ip_b, &l, &a->port_b)) < 0) goto out;
        if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
            rc = bench_fail(sh, idx, rc, "receiver: barrier: %s", strerror(-rc));
            goto out;
        }
        uint64_t expect = 0;
        for (;; expect++) {
            rc = chan_get(ch, id, a, expect, why, sizeof(why));
            if (rc == -EPIPE) break;
            if (rc < 0) {
                bench_fail(sh, idx, rc, "receiver: message %llu: %s", (unsigned long long)expect,
                           why);
                break;
            }
        }
        sh->res[1].t_end = bench_now_ns();
        sh->res[1].msgs = expect;
        rc = rc == -EPIPE ? 0 : rc;
    } else {
        if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
            rc = bench_fail(sh, idx, rc, "sender: barrier: %s", strerror(-rc));
            goto out;
        }
        if ((rc = link_connect(sh, idx, a, ch, a->ip_b, a->port_b, &l)) < 0) goto out;
        uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX;
        for (; tput_more(sh, a, seq, &t0, &deadline); seq++)
            if ((rc = chan_put(ch, a, seq)) < 0) {
                bench_fail(sh, idx, rc, "sender: message %llu: %s", (unsigned long long)seq,
                           weir_errmsg());
                break;
            }
        weir_chan_close(ch);
        sh->res[0].msgs = seq;
        sh->res[0].t_start = t0;
        rc = link_finish(sh, idx, l);
        l = NULL;
    }
out:
    weir_chan_close(ch);
    weir_link_free(l);
    weir_chan_free(ch);
    return rc < 0 ? rc : sh->res[idx].err;
}

static int weir_pp_party(struct bench_shared *sh, int idx, struct net_arg *a)
{
    /* Party 0 writes ping (c) and reads pong (w); party 1 the other way round. */
    int gen = 0, rc = 0;
    char why[200];
    weir_chan *c = mkchan(a), *w = mkchan(a);
    weir_link *lc = NULL, *lw = NULL;
    if (!c || !w) {
        rc = bench_fail(sh, idx, weir_errcode(), "weir_chan_create: %s", weir_errmsg());
        goto out;
    }
    int id = weir_chan_register_reader(w);
    if (id < 0) {
        rc = bench_fail(sh, idx, id, "register_reader: %s", weir_errmsg());
        goto out;
    }
    if ((rc = link_listen(sh, idx, a, w, idx ? a->ip_b : a->ip_a, &lw,
                          idx ? &a->port_b : &a->port_a)) < 0)
        goto out;
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        rc = bench_fail(sh, idx, rc, "barrier: %s", strerror(-rc));
        goto out;
    }
    if ((rc = link_connect(sh, idx, a, c, idx ? a->ip_a : a->ip_b, idx ? a->port_a : a->port_b,
                           &lc)) < 0)
        goto out;
    if (idx == 0) {
        struct bench_pp pp = bench_pp_start(a->warm, a->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            if ((rc = chan_put(c, a, i)) < 0) {
                bench_fail(sh, idx, rc, "pinger: send %llu: %s", (unsigned long long)i,
                           weir_errmsg());
                break;
            }
            if ((rc = chan_get(w, id, a, i, why, sizeof(why))) < 0) {
                bench_fail(sh, idx, rc, "pinger: answer %llu: %s", (unsigned long long)i, why);
                break;
            }
            if (bench_pp_tick(&pp, i)) break;
        }
        bench_pp_finish(&pp, &sh->res[0]);
        weir_chan_close(c);
        /* The echo closes its channel when it sees ours closed. */
        while (rc == 0 && (rc = chan_get(w, id, a, 0, why, sizeof(why))) == 0)
            ;
    } else {
        for (uint64_t i = 0;; i++) {
            if ((rc = chan_get(w, id, a, i, why, sizeof(why))) < 0) {
                if (rc != -EPIPE)
                    bench_fail(sh, idx, rc, "echo: ping %llu: %s", (unsigned long long)i, why);
                break;
            }
            if ((rc = chan_put(c, a, i)) < 0) {
                bench_fail(sh, idx, rc, "echo: answer %llu: %s", (unsigned long long)i,
                           weir_errmsg());
                break;
            }
        }
        weir_chan_close(c);
    }
    if (rc == -EPIPE) {
        rc = link_finish(sh, idx, lc);
        lc = NULL;
    }
out:
    if (c) weir_chan_close(c);
    weir_link_free(lc);
    weir_link_free(lw);
    weir_chan_free(c);
    weir_chan_free(w);
    return rc < 0 ? rc : sh->res[idx].err;
}

/* --------------------------------------------------------------- raw TCP */

static void tcp_tune(int fd, int spin)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {bench_opts.timeout_ms / 1000, (bench_opts.timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (spin) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int tcp_listen(const char *ip, int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int tcp_accept(int lfd)
{
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    int n = poll(&pf, 1, bench_opts.timeout_ms);
    if (n <= 0) return n == 0 ? -ETIMEDOUT : -errno;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int tcp_connect(const char *ip, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t el = sizeof(soerr);
    int n = poll(&pf, 1, bench_opts.timeout_ms);
    if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0 || soerr) {
        int e = n == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        close(fd);
        return -e;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* One recv: blocking (SO_RCVTIMEO bounds it) or spinning on EAGAIN until hard. */
static ssize_t sock_recv(int fd, void *p, size_t len, int spin, int waitall, uint64_t hard)
{
    for (unsigned tries = 1;; tries++) {
        ssize_t r = recv(fd, p, len, spin ? MSG_DONTWAIT : waitall ? MSG_WAITALL : 0);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        if (!spin || ((tries & 4095) == 0 && bench_now_ns() > hard)) return -ETIMEDOUT;
        bench_cpu_relax();
    }
}

static int sock_send(int fd, struct iovec *iov, int niov, uint64_t hard)
{
    while (niov) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN && bench_now_ns() < hard) {
                bench_cpu_relax();
                continue;
            }
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        size_t done = (size_t)w;
        while (niov && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            niov--;
        }
        if (niov) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

struct rbuf {
    int fd, spin;
    uint8_t *b, *big; /* RBUF_CAP bytes; a message buffer for larger messages */
    size_t head, tail, bigcap;
    uint64_t hard;
};

/* Ensure need bytes buffered. 1, 0 at end of stream before any byte, or -errno. */
static int rb_fill(struct rbuf *r, size_t need)
{
    if (r->head + need > RBUF_CAP) {
        memmove(r->b, r->b + r->head, r->tail - r->head);
        r->tail -= r->head;
        r->head = 0;
    }
    while (r->tail - r->head < need) {
        ssize_t g = sock_recv(r->fd, r->b + r->tail, RBUF_CAP - r->tail, r->spin, 0, r->hard);
        if (g < 0) return (int)g;
        if (g == 0) return r->tail == r->head ? 0 : -EPROTO;
        r->tail += (size_t)g;
    }
    return 1;
}

/* Next length-prefixed message: 1 and *data and *len, 0 at end of stream, or -errno. */
static int rb_msg(struct rbuf *r, const uint8_t **data, size_t *len)
{
    int rc = rb_fill(r, 4);
    if (rc <= 0) return rc;
    uint32_t l;
    memcpy(&l, r->b + r->head, 4);
    r->head += 4;
    *len = l;
    if (l + 4u <= RBUF_CAP) {
        if ((rc = rb_fill(r, l)) <= 0) return rc < 0 ? rc : -EPROTO;
        *data = r->b + r->head;
        r->head += l;
        return 1;
    }
    if (l > r->bigcap) return -EMSGSIZE;
    size_t have = r->tail - r->head;
    memcpy(r->big, r->b + r->head, have);
    r->head = r->tail = 0;
    while (have < l) {
        ssize_t g = sock_recv(r->fd, r->big + have, l - have, r->spin, 1, r->hard);
        if (g < 0) return (int)g;
        if (g == 0) return -EPROTO;
        have += (size_t)g;
    }
    *data = r->big;
    return 1;
}

static int tcp_party(struct bench_shared *sh, int idx, struct net_arg *a)
{
    int gen = 0, rc = 0, fd = -1, lfd = -1, spin = a->impl == I_TCPSPIN;
    uint8_t *sbuf = malloc(a->n);
    struct rbuf rb = {.fd = -1, .b = malloc(RBUF_CAP), .big = malloc(a->n), .bigcap = a->n};
    const char *who = idx ? (a->pingpong ? "echo" : "receiver") : a->pingpong ? "pinger" : "sender";
    if (!sbuf || !rb.b || !rb.big) {
        rc = bench_fail(sh, idx, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(sbuf, a->src, a->n);
    if (idx == 1 && (lfd = tcp_listen(a->ip_b, &a->port_b)) < 0) {
        rc = bench_fail(sh, idx, lfd, "%s: listen on %s: %s", who, a->ip_b, strerror(-lfd));
        goto out;
    }
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        rc = bench_fail(sh, idx, rc, "%s: barrier: %s", who, strerror(-rc));
        goto out;
    }
    fd = idx ? tcp_accept(lfd) : tcp_connect(a->ip_b, a->port_b);
    if (fd < 0) {
        rc = bench_fail(sh, idx, fd, "%s: %s %s:%d: %s", who, idx ? "accept on" : "connect to",
                        a->ip_b, a->port_b, strerror(-fd));
        goto out;
    }
    /* tput: only the receiver spins; ping-pong: both ends. */
    tcp_tune(fd, spin && (idx == 1 || a->pingpong));
    rb.fd = fd;
    rb.spin = spin && (idx == 1 || a->pingpong);
    rb.hard = bench_now_ns() + bench_opts.budget_ns + bench_opts.pp_budget_ns +
              2000000ull * (uint64_t)bench_opts.timeout_ms;
    uint32_t hl = (uint32_t)a->n;
    const uint8_t *data;
    size_t len;
    if (!a->pingpong && idx == 0) {
        uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX;
        for (; tput_more(sh, a, seq, &t0, &deadline); seq++) {
            bench_stamp(sbuf, a->n, seq);
            struct iovec iov[2] = {{&hl, 4}, {sbuf, a->n}};
            if ((rc = sock_send(fd, iov, 2, rb.hard)) < 0) {
                bench_fail(sh, idx, rc, "sender: message %llu: %s", (unsigned long long)seq,
                           strerror(-rc));
                break;
            }
        }
        sh->res[0].msgs = seq;
        sh->res[0].t_start = t0;
        shutdown(fd, SHUT_WR);
        /* Wait for the receiver's close: it has read everything then. */
        char c;
        sock_recv(fd, &c, 1, 0, 0, rb.hard);
    } else if (!a->pingpong) {
        uint64_t expect = 0;
        for (;; expect++) {
            rc = rb_msg(&rb, &data, &len);
            if (rc == 0) break;
            if (rc < 0 || len != a->n || !bench_check(data, a->n, expect)) {
                rc = bench_fail(sh, idx, rc < 0 ? rc : -EBADMSG, "receiver: message %llu: %s",
                                (unsigned long long)expect, rc < 0 ? strerror(-rc) : "wrong");
                break;
            }
        }
        sh->res[1].t_end = bench_now_ns();
        sh->res[1].msgs = expect;
    } else if (idx == 0) {
        struct bench_pp pp = bench_pp_start(a->warm, a->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            bench_stamp(sbuf, a->n, i);
            struct iovec iov[2] = {{&hl, 4}, {sbuf, a->n}};
            if ((rc = sock_send(fd, iov, 2, rb.hard)) < 0 || (rc = rb_msg(&rb, &data, &len)) <= 0 ||
                len != a->n || !bench_check(data, a->n, i)) {
                rc = bench_fail(sh, idx, rc < 0 ? rc : -EBADMSG, "pinger: round trip %llu: %s",
                                (unsigned long long)i, rc < 0 ? strerror(-rc) : "wrong answer");
                break;
            }
            if (bench_pp_tick(&pp, i)) break;
        }
        bench_pp_finish(&pp, &sh->res[0]);
        shutdown(fd, SHUT_WR);
    } else {
        for (uint64_t i = 0;; i++) {
            rc = rb_msg(&rb, &data, &len);
            if (rc == 0) break;
            if (rc < 0 || len != a->n || !bench_check(data, a->n, i)) {
                rc = bench_fail(sh, idx, rc < 0 ? rc : -EBADMSG, "echo: ping %llu: %s",
                                (unsigned long long)i, rc < 0 ? strerror(-rc) : "wrong");
                break;
            }
            struct iovec iov[2] = {{&hl, 4}, {(void *)data, len}};
            if ((rc = sock_send(fd, iov, 2, rb.hard)) < 0) {
                bench_fail(sh, idx, rc, "echo: answer %llu: %s", (unsigned long long)i,
                           strerror(-rc));
                break;
            }
        }
    }
out:
    if (fd >= 0) close(fd);
    if (lfd >= 0) close(lfd);
    free(sbuf);
    free(rb.b);
    free(rb.big);
    return rc < 0 ? rc : sh->res[idx].err;
}

/* ---------------------------------------------------------------- ZeroMQ */

#ifdef WEIR_BENCH_HAVE_ZMQ
static int zmq_party(struct bench_shared *sh, int idx, struct net_arg *a)
{
    int gen = 0, rc = 0;
    void *ctx = NULL, *s = NULL;
    int type = a->pingpong ? ZMQ_PAIR : idx ? ZMQ_PULL : ZMQ_PUSH;
    UNPINNED(if ((ctx = zmq_ctx_new())) s = zmq_socket(ctx, type));
    uint8_t *buf = malloc(a->n < 16 ? 16 : a->n);
    const char *who = idx ? (a->pingpong ? "echo" : "receiver") : a->pingpong ? "pinger" : "sender";
    if (!ctx || !s || !buf) {
        rc = bench_fail(sh, idx, -ENOMEM, "%s: zmq_ctx_new/zmq_socket: %s", who,
                        zmq_strerror(zmq_errno()));
        goto out;
    }
    memcpy(buf, a->src, a->n);
    int tmo = bench_opts.timeout_ms, hwm = a->n >= 1048576 ? 64 : 1000;
    zmq_setsockopt(s, ZMQ_LINGER, &tmo, sizeof(tmo));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    char ep[96];
    if (idx == 1) {
        snprintf(ep, sizeof(ep), "tcp://%s:*", a->ip_b);
        size_t el = sizeof(ep);
        if (zmq_bind(s, ep) < 0 || zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &el) < 0) {
            rc = bench_fail(sh, idx, -EIO, "%s: zmq_bind %s: %s", who, ep,
                            zmq_strerror(zmq_errno()));
            goto out;
        }
        a->port_b = atoi(strrchr(ep, ':') + 1);
    }
    if ((rc = bench_barrier(sh, 2, &gen)) < 0) {
        rc = bench_fail(sh, idx, rc, "%s: barrier: %s", who, strerror(-rc));
        goto out;
    }
    if (idx == 0) {
        snprintf(ep, sizeof(ep), "tcp://%s:%d", a->ip_b, a->port_b);
        if (zmq_connect(s, ep) < 0) {
            rc = bench_fail(sh, idx, -EIO, "%s: zmq_connect %s: %s", who, ep,
                            zmq_strerror(zmq_errno()));
            goto out;
        }
    }
    const uint64_t stop = STOP_SEQ;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (!a->pingpong && idx == 0) {
        uint64_t seq = 0, t0 = 0, deadline = UINT64_MAX;
        for (; tput_more(sh, a, seq, &t0, &deadline); seq++) {
            bench_stamp(buf, a->n, seq);
            if (zmq_send(s, buf, a->n, 0) < 0) {
                rc = bench_fail(sh, idx, -EIO, "sender: zmq_send %llu: %s",
                                (unsigned long long)seq, zmq_strerror(zmq_errno()));
                break;
            }
        }
        sh->res[0].msgs = seq;
        sh->res[0].t_start = t0;
        if (zmq_send(s, &stop, 8, 0) < 0 && rc == 0)
            rc = bench_fail(sh, idx, -EIO, "sender: zmq_send (end): %s", zmq_strerror(zmq_errno()));
        /* zmq_ctx_term below waits (linger) until everything is delivered. */
    } else if (!a->pingpong) {
        uint64_t expect = 0;
        for (;; expect++) {
            if (zmq_msg_recv(&m, s, 0) < 0) {
                rc = bench_fail(sh, idx, -EIO, "receiver: zmq_msg_recv %llu: %s",
                                (unsigned long long)expect, zmq_strerror(zmq_errno()));
                break;
            }
            size_t l = zmq_msg_size(&m);
            if (l == 8 && !memcmp(zmq_msg_data(&m), &stop, 8)) break;
            if (l != a->n || !bench_check(zmq_msg_data(&m), a->n, expect)) {
                rc = bench_fail(sh, idx, -EBADMSG, "receiver: message %llu is wrong",
                                (unsigned long long)expect);
                break;
            }
        }
        sh->res[1].t_end = bench_now_ns();
        sh->res[1].msgs = expect;
    } else if (idx == 0) {
        struct bench_pp pp = bench_pp_start(a->warm, a->samples);
        for (uint64_t i = 0; !bench_pp_full(&pp); i++) {
            bench_stamp(buf, a->n, i);
            if (zmq_send(s, buf, a->n, 0) < 0 || zmq_msg_recv(&m, s, 0) != (int)a->n ||
                !bench_check(zmq_msg_data(&m), a->n, i)) {
                rc = bench_fail(sh, idx, -EIO, "pinger: round trip %llu: %s", (unsigned long long)i,
                                zmq_strerror(zmq_errno()));
                break;
            }
            if (bench_pp_tick(&pp, i)) break;
        }
        bench_pp_finish(&pp, &sh->res[0]);
        zmq_send(s, &stop, 8, 0);
    } else {
        for (uint64_t i = 0;; i++) {
            if (zmq_msg_recv(&m, s, 0) < 0) {
                rc = bench_fail(sh, idx, -EIO, "echo: zmq_msg_recv: %s",
                                zmq_strerror(zmq_errno()));
                break;
            }
            size_t l = zmq_msg_size(&m);
            if (l == 8 && !memcmp(zmq_msg_data(&m), &stop, 8)) break;
            if (zmq_send(s, zmq_msg_data(&m), l, 0) < 0) {
                rc = bench_fail(sh, idx, -EIO, "echo: zmq_send: %s", zmq_strerror(zmq_errno()));
                break;
            }
        }
    }
    zmq_msg_close(&m);
out:
    if (s) zmq_close(s);
    if (ctx) zmq_ctx_term(ctx);
    free(buf);
    return rc < 0 ? rc : sh->res[idx].err;
}
#endif

/* ------------------------------------------------------------------ cases */

static char wzmq_missing[200]; /* "" when this build has the ZeroMQ link transport */

static int net_party(struct bench_shared *sh, int idx, void *arg)
{
    struct net_arg *a = arg;
    if (idx == 1) {
        int rc = join_ns(a->ns);
        if (rc < 0)
            return bench_fail(sh, idx, rc, "setns into %s: %s", a->ns, strerror(-rc));
    }
    switch (a->impl) {
    case I_URING:
    case I_WZMQ:
        return a->pingpong ? weir_pp_party(sh, idx, a) : weir_tput_party(sh, idx, a);
    case I_TCP:
    case I_TCPSPIN:
        return tcp_party(sh, idx, a);
#ifdef WEIR_BENCH_HAVE_ZMQ
    case I_ZMQ:
        return zmq_party(sh, idx, a);
#endif
    default:
        return bench_fail(sh, idx, -ENOSYS, "no such implementation");
    }
}

static const char *impl_notes(int impl, int pingpong)
{
    switch (impl) {
    case I_URING:
        return "weir link (io_uring), processes; writer stamps c's slot in place, reader checks w";
    case I_WZMQ:
        return "weir link (ZeroMQ transport), processes";
    case I_TCP:
        return pingpong ? "len+payload sendmsg, blocking recv, NODELAY"
                        : "one sendmsg (len+payload) per msg, NODELAY; blocking buffered recv";
    case I_TCPSPIN:
        return pingpong ? "len+payload sendmsg, both ends spin on recv(MSG_DONTWAIT)"
                        : "one sendmsg per msg; receiver spins on recv(MSG_DONTWAIT)";
    default:
        return pingpong ? "ZeroMQ PAIR tcp, zmq_send/zmq_msg_recv"
                        : "ZeroMQ PUSH/PULL tcp, zmq_send/zmq_msg_recv";
    }
}

/*
 * Depth of the weir rings c and w: bench_depth_for's (4096 slots at 64 B,
 * 16 at 64 KiB), but 1024 from 65 B to 4 KiB, as many messages
 * as the ZeroMQ baseline buffers on each side (HWM 1000). A link keeps
 * every message in c until the receiver acknowledges it, so the depth is
 * its window: with 16 slots a 4 KiB stream is bound by the ack round trip
 * (weir-uring 123 k msgs/s at 16, 612 k at 1024; zmq 165 k). At 64 KiB
 * more slots gain nothing (34 k msgs/s at 16 and at 64, 28 k at 256; three
 * paired --quick runs later, veth / zmq: 1.80 1.89 1.92 at 16, 1.74 1.99
 * 1.45 at 64). At 1 MiB 4 slots (4 MiB in flight) bind the stream to the
 * ack round trip: 16 slots, still a quarter of ZeroMQ's HWM of 64 (three
 * paired --quick runs, weir-uring / tcp-block: lo 0.67 0.69 0.86 at 4,
 * 1.51 0.73 0.91 at 16; veth 0.92 0.86 0.85 at 4, 1.10 1.05 1.20 at 16).
 */
static unsigned net_depth(size_t n)
{
    if (bench_opts.depth) return bench_opts.depth;
    if (n >= 1048576)
        return 16;
    return n > 64 && n <= 4096 ? 1024 : bench_depth_for(n);
}

static void net_case(const struct net_path *pa, int impl, size_t n, int pingpong)
{
    char name[48];
    snprintf(name, sizeof(name), "%s.%s", pingpong ? "pingpong" : "tput", pa->name);
    unsigned depth = pingpong ? 16 : net_depth(n);
    int weir = impl == I_URING || impl == I_WZMQ;
    struct bench_row row;
    bench_row_init(&row, name, impl_name[impl], n, 1,
                   weir ? depth : impl == I_ZMQ ? (n >= 1048576 ? 64 : 1000) : 0);
    if (!bench_begin(&row)) return;
    snprintf(row.notes, sizeof(row.notes), "pin 0/1; %s", impl_notes(impl, pingpong));
    if (!pa->ok || (impl == I_WZMQ && wzmq_missing[0]) || (impl == I_ZMQ && !bench_have_zmq())) {
        row.skipped = 1;
        snprintf(row.error, sizeof(row.error), "%s",
                 !pa->ok            ? pa->why
                 : impl == I_WZMQ   ? wzmq_missing
                 : bench_opts.no_zmq ? "--no-zmq"
                                     : "not built (weir-bench without libzmq)");
        bench_emit(&row);
        return;
    }
    size_t sbytes = bench_opts.pp_max_rt * sizeof(uint64_t);
    struct net_arg *a = bench_shm_alloc(sizeof(*a));
    struct bench_shared *sh = bench_shared_new();
    uint64_t *samples = pingpong ? bench_shm_alloc(sbytes) : NULL;
    if (!a || !sh || (pingpong && !samples) || !bench_src_buf(n)) {
        bench_row_fail_from(&row, NULL, 0, -ENOMEM);
        goto out;
    }
    a->impl = impl;
    a->pingpong = pingpong;
    a->n = n;
    a->depth = depth;
    a->warm = pingpong ? (bench_opts.quick ? 200u : 2000u) : bench_warmup_for(n, depth);
    a->samples = samples;
    a->src = bench_src_buf(n);
    snprintf(a->ns, sizeof(a->ns), "%s", pa->ns);
    snprintf(a->ip_a, sizeof(a->ip_a), "%s", pa->ip_a);
    snprintf(a->ip_b, sizeof(a->ip_b), "%s", pa->ip_b);
    struct bench_run run = {.mode = BENCH_PROCS,
                            .nparties = 2,
                            .cpus = {0, 1},
                            .clean_exit = 0,
                            .fn = net_party,
                            .arg = a};
    int rc = bench_run_parties(sh, &run);
    if (rc < 0) {
        bench_row_fail_from(&row, sh, 2, rc);
    } else if (pingpong) {
        if (sh->res[0].nsamples == 0)
            bench_row_fail_from(&row, sh, 2, -EIO);
        else
            bench_row_latency(&row, samples, sh->res[0].nsamples,
                              sh->res[0].t_end - sh->res[0].t_start);
    } else if (sh->res[1].msgs != sh->res[0].msgs || sh->res[0].msgs <= a->warm ||
               sh->res[1].t_end <= sh->res[0].t_start) {
        row.failed = 1;
        snprintf(row.error, sizeof(row.error), "receiver got %llu messages of %llu",
                 (unsigned long long)sh->res[1].msgs, (unsigned long long)sh->res[0].msgs);
    } else {
        bench_row_throughput(&row, sh->res[0].msgs - a->warm,
                             sh->res[1].t_end - sh->res[0].t_start);
    }
out:
    bench_emit(&row);
    bench_shm_free(samples, sbytes);
    bench_shm_free(a, sizeof(*a));
    bench_shared_free(sh);
}

/* ------------------------------------------------------------------- plan */

static const size_t sizes[] = {64, 4096, 65536, 1048576};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void plan(void)
{
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; i < NSIZES; i++)
            for (int impl = 0; impl < NIMPL; impl++)
                net_case(&paths[p], impl, sizes[i], 0);
        for (int impl = 0; impl < NIMPL; impl++)
            net_case(&paths[p], impl, 64, 1);
    }
}

static void legend(void)
{
    bench_note_load();
    bench_note("weir-bench net%s: %d round(s) (the whole plan runs %d time(s), so cases "
               "interleave; each row is its best round), each case %llu ms or %llu messages per "
               "round (ping-pong: %llu round trips), call timeout %d ms",
               bench_opts.quick ? " --quick" : "", bench_opts.rounds, bench_opts.rounds,
               (unsigned long long)(bench_opts.budget_ns / 1000000u),
               (unsigned long long)bench_opts.max_msgs, (unsigned long long)bench_opts.pp_max_rt,
               bench_opts.timeout_ms);
    bench_note("every case: 2 processes, sender/pinger on CPU 0, receiver/echo on CPU 1 (library "
               "threads unpinned); tput.*: msgs/s at the receiver over the sender's timed part, "
               "MB/s = payload only; pingpong.*: p50/p99 one way = round trip / 2");
    bench_note("lo = 127.0.0.1; veth = a veth pair (MTU 1500) into network namespace %s, "
               "receiver/echo inside it",
               paths[1].ok ? paths[1].ns : "(none)");
    if (!paths[1].ok) bench_note("veth half skipped: %s", paths[1].why);
    if (wzmq_missing[0]) bench_note("weir-zmq rows: %s", wzmq_missing);
}

static void annotate_and_ratios(void)
{
#define V(r, f) ((r) ? (r)->f : -1)
    static const char *const wimpl[] = {"weir-uring", "weir-zmq"};
    for (int p = 0; p < 2; p++) {
        char tn[32], pn[32];
        snprintf(tn, sizeof(tn), "tput.%s", paths[p].name);
        snprintf(pn, sizeof(pn), "pingpong.%s", paths[p].name);
        /* Beside each weir figure: its ratio to ZeroMQ and raw TCP. */
        for (int w = 0; w < 2; w++) {
            for (size_t i = 0; i < NSIZES; i++) {
                const struct bench_row *r = bench_find(tn, wimpl[w], sizes[i], 0);
                const struct bench_row *z = bench_find(tn, "zmq", sizes[i], 0);
                const struct bench_row *t = bench_find(tn, "tcp-block", sizes[i], 0);
                if (!r) continue;
                char zs[24] = "-", ts[24] = "-";
                if (z) snprintf(zs, sizeof(zs), "%.2fx", r->mb_per_s / z->mb_per_s);
                if (t) snprintf(ts, sizeof(ts), "%.2fx", r->mb_per_s / t->mb_per_s);
                bench_annotate(tn, wimpl[w], sizes[i], "= %s zmq, %s tcp-block", zs, ts);
            }
            const struct bench_row *r = bench_find(pn, wimpl[w], 64, 0);
            const struct bench_row *s = bench_find(pn, "tcp-spin", 64, 0);
            const struct bench_row *z = bench_find(pn, "zmq", 64, 0);
            if (r) {
                char ss[24] = "-", zs[24] = "-";
                if (s) snprintf(ss, sizeof(ss), "%.2fx", r->p50_ns / s->p50_ns);
                if (z) snprintf(zs, sizeof(zs), "%.1fx", z->p50_ns / r->p50_ns);
                bench_annotate(pn, wimpl[w], 64, "p50 = %s tcp-spin; zmq/this %s", ss, zs);
            }
        }
        const char *nzmq = bench_have_zmq() ? NULL : "ZeroMQ not available";
        const char *nwz = wzmq_missing[0] ? "weir-zmq not built" : nzmq;
        const char *miss = paths[p].ok ? NULL : "veth skipped";
        const struct bench_row *u64 = bench_find(tn, "weir-uring", 64, 0);
        const struct bench_row *u64k = bench_find(tn, "weir-uring", 65536, 0);
        const struct bench_row *u1m = bench_find(tn, "weir-uring", 1048576, 0);
        const struct bench_row *z64 = bench_find(tn, "zmq", 64, 0);
        const struct bench_row *z64k = bench_find(tn, "zmq", 65536, 0);
        const struct bench_row *z1m = bench_find(tn, "zmq", 1048576, 0);
        const struct bench_row *t64 = bench_find(tn, "tcp-block", 64, 0);
        const struct bench_row *t1m = bench_find(tn, "tcp-block", 1048576, 0);
        const struct bench_row *wz64 = bench_find(tn, "weir-zmq", 64, 0);
        const struct bench_row *wz64k = bench_find(tn, "weir-zmq", 65536, 0);
        const struct bench_row *wz1m = bench_find(tn, "weir-zmq", 1048576, 0);
        const struct bench_row *pu = bench_find(pn, "weir-uring", 64, 0);
        const struct bench_row *ps = bench_find(pn, "tcp-spin", 64, 0);
        const struct bench_row *pz = bench_find(pn, "zmq", 64, 0);
        const struct bench_row *pwz = bench_find(pn, "weir-zmq", 64, 0);
        char k[48], d[96];
#define R(key, desc, num, den, op, tgt, why)                                                      \
    do {                                                                                          \
        snprintf(k, sizeof(k), "%s.%s", paths[p].name, key);                                      \
        snprintf(d, sizeof(d), "%s: %s", paths[p].name, desc);                                    \
        bench_ratio(k, d, num, den, op, tgt, miss ? miss : why);                                  \
    } while (0)
        R("uring64_vs_zmq", "weir-uring tput 64 B / zmq PUSH/PULL", V(u64, mb_per_s),
          V(z64, mb_per_s), ">=", 1.5, nzmq);
        R("uring64_vs_tcp", "  (info) weir-uring tput 64 B / tcp-block", V(u64, mb_per_s),
          V(t64, mb_per_s), ">=", 12, NULL);
        R("uring64k_vs_zmq", "weir-uring tput 64 KiB / zmq", V(u64k, mb_per_s), V(z64k, mb_per_s),
          ">=", 2, nzmq);
        R("uring1m_vs_tcp", "weir-uring tput 1 MiB / tcp-block", V(u1m, mb_per_s),
          V(t1m, mb_per_s), ">=", 0.9, NULL);
        R("uring_lat_vs_spin", "weir-uring pingpong 64 B p50 / tcp-spin p50", V(pu, p50_ns),
          V(ps, p50_ns), "<=", 1.5, NULL);
        R("zmq_lat_vs_uring", "zmq pingpong 64 B p50 / weir-uring p50", V(pz, p50_ns),
          V(pu, p50_ns), ">=", 10, nzmq);
        R("wzmq64_vs_zmq", "weir-zmq tput 64 B / zmq", V(wz64, mb_per_s), V(z64, mb_per_s), ">=",
          0.8, nwz);
        R("wzmq64k_vs_zmq", "weir-zmq tput 64 KiB / zmq", V(wz64k, mb_per_s), V(z64k, mb_per_s),
          ">=", 0.8, nwz);
        R("wzmq1m_vs_zmq", "weir-zmq tput 1 MiB / zmq", V(wz1m, mb_per_s), V(z1m, mb_per_s), ">=",
          0.8, nwz);
        R("wzmq_lat_vs_zmq", "  (info) weir-zmq pingpong 64 B p50 / zmq p50", V(pwz, p50_ns),
          V(pz, p50_ns), "<=", 1.25, nwz);
#undef R
    }
#undef V
}

static void net_usage(FILE *f)
{
    fprintf(f,
            "usage: weir-bench net [options]\n"
            "\n"
            "weir links over TCP (include/weir/link.h) beside raw TCP and ZeroMQ, measured in\n"
            "the same run, on loopback (lo) and across a veth pair into a network namespace\n"
            "that the bench creates and removes (veth; skipped when 'ip netns' is not\n"
            "permitted). Sender and receiver are two processes pinned to CPUs 0 and 1.\n"
            "\n"
            "cases (impl name msg_bytes):\n"
            "  tput.<lo|veth>      64, 4096, 65536, 1048576 B: msgs/s and MB/s\n"
            "  pingpong.<lo|veth>  64 B, one message in flight: p50/p99 one way\n"
            "impls: weir-uring (io_uring link transport), weir-zmq (ZeroMQ link transport;\n"
            "\"not built\" rows when the library lacks it), tcp-block (one sendmsg per\n"
            "message, blocking recv), tcp-spin (receiver busy-polls recv(MSG_DONTWAIT)),\n"
            "zmq (PUSH/PULL tcp; ping-pong PAIR tcp).\n"
            "\n"
            "options (as for every subcommand, see 'weir-bench --help'):\n"
            "  --quick  --json  --filter A,B  --list  --budget-ms N  --rounds N\n"
            "  --timeout-ms N  --depth N (weir rings)  --no-zmq  -h, --help\n"
            "\n"
            "Ratios against the issue's targets follow the table. Exit status: 0 all cases\n"
            "ran, 1 a case failed, 2 usage.\n");
}

int bench_cmd_net(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            net_usage(stdout);
            return 0;
        }
    int rc = bench_parse_opts(argc, argv, "net");
    if (rc) return rc > 0 ? 0 : 2;
    if (bench_opts.svg_dir || bench_opts.pin_given || bench_opts.no_iceoryx) {
        fprintf(stderr, "weir-bench net: %s does not apply to net (try 'weir-bench net --help')\n",
                bench_opts.svg_dir ? "--svg" : bench_opts.pin_given ? "--pin-multi" : "--no-iceoryx");
        return 2;
    }
    if (bench_opts.list) {
        plan();
        return 0;
    }
    if (!weir__tp_get(WEIR_TRANSPORT_ZMQ))
        snprintf(wzmq_missing, sizeof(wzmq_missing), "not built: %s", weir_errmsg());
    uint64_t t0 = bench_now_ns();
    veth_up();
    legend();
    bench_rounds(plan);
    veth_down();
    annotate_and_ratios();
    bench_note("wall time %.1f s", (double)(bench_now_ns() - t0) / 1e9);
    return bench_finish("net");
}
