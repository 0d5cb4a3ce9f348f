/* SPDX-License-Identifier: MIT */
/*
 * engine/cluster.c - the control plane that joins the ranks of a multi-rank
 * graph (engine/cluster.h): join, endpoint table, barriers, heartbeats,
 * failure notices, teardown.
 *
 * Design notes.
 *
 * Sockets. Rank 0 binds a ZeroMQ ROUTER at the coordinator endpoint; every
 * other rank connects a DEALER whose routing id is its rank plus random
 * bytes, so a reconnect after a short cut keeps its identity
 * (ZMQ_ROUTER_HANDOVER) while a second process claiming the same rank
 * shows up as a different peer and is refused. Every message is one
 * FlatBuffers buffer (engine/cluster.fbs) verified on receipt; ROUTER's
 * ZMQ_MAXMSGSIZE cuts off a peer that sends more than
 * WEIR__CLUSTER_MSG_MAX. A message that does not verify, or a non-JOIN from
 * a peer that never joined, gets a REFUSE and changes nothing else.
 *
 * One thread owns the socket from open to close (ZeroMQ sockets are not
 * thread-safe): it receives, answers, heartbeats and watches liveness. The
 * API functions post a command under c->mu, poke the thread through an
 * eventfd it polls beside the socket, and wait on c->cv for the outcome.
 * on_event callbacks run on that thread with c->mu released.
 *
 * Join (inside weir__cluster_open). Rank 0 checks each JOIN in this order:
 * protocol version, token (constant time, before anything about the plan
 * is revealed), world size, rank range, duplicate rank, plan hash. A plan
 * hash that differs is fatal (the world cannot be completed with a rank
 * that built another graph): the rank is refused and rank 0 fails with
 * the same text, which it sends as a FAILURE to those already joined. The
 * other refusals leave the cluster waiting for the right process. Once all
 * ranks joined, rank 0 sends the TABLE; every rank acknowledges with
 * ARRIVE of barrier 0 and open returns on every rank at RELEASE 0, so when
 * open returns anywhere every rank holds the table. timeout_ms bounds all
 * of it; at the deadline rank 0 names the ranks that never joined and
 * tells the joined ones.
 *
 * Liveness. After open, each side sends a HEARTBEAT every heartbeat_ms / 8
 * and declares a peer failed once it has heard nothing from it for
 * 3/4 heartbeat_ms (the thread polls every heartbeat_ms / 16), so from a
 * death to its detection takes less than heartbeat_ms. ZeroMQ's own
 * disconnect is deliberately not a failure: a short cut reconnects and
 * fails nothing. How short: TCP retransmits from 200 ms on and backs off,
 * so a cut of C ms silences a peer for up to about 2C + 200 ms plus one
 * heartbeat interval, which must stay below 3/4 of the bound (tests: a
 * 200 ms cut under the default 2 s bound fails nothing, a lasting one is
 * named within the bound). Rank 0 passes every failure on to the live
 * ranks as a FAILURE; the first failure is the cluster's, for good.
 *
 * Counters. With every STATS_EVERY-th heartbeat to rank 0, and just before
 * its BYE, a rank also sends a STATS message when its collect callback has
 * any (engine/remote.c: the rings rank 0 has none of, the rank's links
 * and its actors); rank 0 hands a
 * joined rank's STATS, if it names its sender's rank, to on_stats. STATS
 * change nothing else (a bad one is noted like any bad message).
 *
 * Teardown. Rank 0 sends TEARDOWN to every live rank and waits, bounded,
 * for each one's BYE; a rank answers BYE as soon as it receives TEARDOWN,
 * a rank that closes without a TEARDOWN sends a FAILURE saying that it
 * left, and one that closes after a failure says BYE (rank 0 need not wait
 * for it to time out). Sockets linger at most LINGER_MS, so close never hangs on a dead
 * peer.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "engine/cluster.h"

#define LINGER_MS 200
#define STATS_EVERY 4 /* ranks != 0 send STATS with every 4th heartbeat */
#define DEFAULT_TIMEOUT_MS 10000
#define ID_MAX 32

struct peer {
    int joined;              /* rank 0: JOIN accepted */
    int alive;               /* neither failed nor said goodbye */
    int bye;                 /* BYE received (rank 0) */
    uint32_t arrived;        /* rank 0: barriers this rank arrived at */
    uint64_t last_heard;     /* ns */
    uint8_t id[ID_MAX];      /* rank 0: ZeroMQ routing id */
    size_t idlen;
};

enum { PH_JOIN = 0, PH_READY = 1, PH_DONE = 2 };

struct weir__cluster {
    int rank, size;
    char coord[WEIR__CLUSTER_ADDR_MAX + 8];
    uint8_t token[WEIR__CLUSTER_TOKEN_MAX];
    size_t token_len;
    uint64_t plan_hash;
    int hb_ms;
    int timeout_ms;          /* of the join */
    uint64_t join_deadline;  /* ns; 0: none */
    void (*on_event)(void *ctx, int kind, int rank, int code, const char *msg);
    void (*collect)(void *ctx, struct weir__cluster_stats *out);
    void (*on_stats)(void *ctx, int rank, const struct weir__cluster_stats *s);
    void *ctx;
    /* STATS to send (ranks != 0) or being decoded (rank 0): arrays of
     * WEIR__CLUSTER_STATS_MAX channels and WEIR__CLUSTER_LINKS_MAX links;
     * thread only */
    struct weir__cluster_chan_stat *stats;
    struct weir__cluster_link_stat *lstats;
    struct weir__cluster_actor_stat *astats; /* WEIR__CLUSTER_ACTORS_MAX */
    void *zctx, *sock;
    int efd;
    pthread_t th;
    int th_started;
    struct peer *peers;                 /* size entries (a worker uses peers[0]) */
    struct weir__cluster_rank *table;   /* size entries */
    char (*desc)[WEIR__CLUSTER_HOST_MAX + 64];
    uint8_t *rxbuf;                     /* scratch for decoding TABLEs */
    uint64_t hb_seq, next_hb;
    uint64_t last_check; /* the thread: when check_liveness last ran (0: never) */
    int table_done;          /* thread only: the table went out (rank 0) / came in */
    char last_refusal[WEIR__CLUSTER_REASON_MAX + 1]; /* thread only */
    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase;
    int fail_code;
    char fail_msg[WEIR__CLUSTER_REASON_MAX + 1];
    int torn_down;           /* worker: TEARDOWN received */
    uint32_t released;       /* barriers released (RELEASE epoch + 1) */
    uint32_t next_epoch;     /* the caller's next barrier */
    int cmd_arrive;          /* a barrier arrival to send */
    uint32_t arrive_epoch;
    int cmd_report;
    int report_code;
    char report_msg[WEIR__CLUSTER_REASON_MAX + 1];
    int cmd_teardown;        /* rank 0: send TEARDOWN, then wait for the BYEs */
    int cmd_bye;             /* worker: say goodbye (closing after a failure) */
    int teardown_done;
    int cmd_stop;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ms_ns(int ms)
{
    return (uint64_t)ms * 1000000ull;
}

static void poke(struct weir__cluster *c)
{
    uint64_t one = 1;
    ssize_t n = write(c->efd, &one, sizeof one);
    (void)n; /* a full counter still wakes the thread */
}

/* Constant-time token compare (time independent of where they differ). */
static int token_equal(const struct weir__cluster *c, const uint8_t *tok, size_t len)
{
    unsigned diff = (unsigned)(len ^ c->token_len);
    for (size_t i = 0; i < WEIR__CLUSTER_TOKEN_MAX; i++) {
        uint8_t a = i < c->token_len ? c->token[i] : 0;
        uint8_t b = i < len ? tok[i] : 0;
        diff |= (unsigned)(a ^ b);
    }
    return diff == 0;
}

const char *weir__cluster_describe(const struct weir__cluster *c, int r)
{
    if (!c || r < 0 || r >= c->size)
        return "rank ?";
    return c->desc[r];
}

static void set_desc(struct weir__cluster *c, int r)
{
    const struct weir__cluster_rank *t = &c->table[r];
    if (t->pid > 0)
        snprintf(c->desc[r], sizeof c->desc[r], "rank %d (pid %d on host %s)", r, (int)t->pid,
                 t->host[0] ? t->host : "?");
    else
        snprintf(c->desc[r], sizeof c->desc[r], "rank %d", r);
}

/* ---- sending (cluster thread) ---------------------------------------------- */

/* Send m to rank 0 (worker) or to routing id `id` (rank 0). Never blocks:
 * a peer that cannot take the message is the heartbeat's business. */
static int send_msg(struct weir__cluster *c, const uint8_t *id, size_t idlen,
                    const struct weir__cluster_msg *m)
{
    uint8_t *buf;
    size_t len;
    int r = weir__cluster_msg_encode(m, &buf, &len);
    if (r < 0)
        return r;
    if (id && zmq_send(c->sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        free(buf);
        return -errno;
    }
    r = zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
    free(buf);
    return r;
}

static void send_to_rank(struct weir__cluster *c, int r, const struct weir__cluster_msg *m)
{
    if (c->rank == 0)
        send_msg(c, c->peers[r].id, c->peers[r].idlen, m);
    else
        send_msg(c, NULL, 0, m);
}

static void refuse(struct weir__cluster *c, const uint8_t *id, size_t idlen, int rank, int code,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void refuse(struct weir__cluster *c, const uint8_t *id, size_t idlen, int rank, int code,
                   const char *fmt, ...)
{
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_REFUSE;
    m.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.reason, sizeof m.reason, fmt, ap);
    va_end(ap);
    send_msg(c, id, idlen, &m);
    snprintf(c->last_refusal, sizeof c->last_refusal, "%s", m.reason);
    if (c->on_event)
        c->on_event(c->ctx, WEIR__CLUSTER_EV_REFUSED, rank, code, m.reason);
}

/* The cluster failed (first failure wins); rank 0 passes it on to the live
 * ranks except `who`. Called on the cluster thread without c->mu. */
static void fail(struct weir__cluster *c, int who, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct weir__cluster *c, int who, int code, const char *fmt, ...)
{
    char msg[WEIR__CLUSTER_REASON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->mu);
    int first = c->fail_code == 0;
    if (first) {
        c->fail_code = code;
        snprintf(c->fail_msg, sizeof c->fail_msg, "%s", msg);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (who >= 0 && who < c->size && who != c->rank)
        c->peers[who].alive = 0;
    if (c->rank == 0) {
        struct weir__cluster_msg m;
        memset(&m, 0, sizeof m);
        m.kind = WEIR__CM_FAILURE;
        m.rank = who;
        m.code = code;
        snprintf(m.reason, sizeof m.reason, "%s", msg);
        /* The rank declared failed is told too: if it only fell silent for
         * a while (a partition, a paused VM), it learns that the cluster
         * gave it up, instead of later blaming rank 0's silence. */
        for (int r = 1; r < c->size; r++)
            if (c->peers[r].joined && (c->peers[r].alive || r == who))
                send_to_rank(c, r, &m);
    }
    if (c->on_event)
        c->on_event(c->ctx, WEIR__CLUSTER_EV_FAILED, who, code, msg);
}

static int failed_now(struct weir__cluster *c)
{
    pthread_mutex_lock(&c->mu);
    int f = c->fail_code;
    pthread_mutex_unlock(&c->mu);
    return f;
}

/* ---- rank 0 ----------------------------------------------------------------- */

static int find_peer(struct weir__cluster *c, const uint8_t *id, size_t idlen)
{
    for (int r = 1; r < c->size; r++)
        if (c->peers[r].joined && c->peers[r].idlen == idlen && memcmp(c->peers[r].id, id, idlen) == 0)
            return r;
    return -1;
}

static void send_table(struct weir__cluster *c)
{
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_TABLE;
    m.world_size = c->size;
    m.ranks = c->table;
    m.ranks_cap = m.nranks = (unsigned)c->size;
    for (int r = 1; r < c->size; r++)
        send_to_rank(c, r, &m);
}

static void try_release(struct weir__cluster *c)
{
    pthread_mutex_lock(&c->mu);
    uint32_t e = c->released;
    pthread_mutex_unlock(&c->mu);
    for (int r = 0; r < c->size; r++)
        if (c->peers[r].arrived <= e)
            return;
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_RELEASE;
    m.epoch = e;
    for (int r = 1; r < c->size; r++)
        if (c->peers[r].alive)
            send_to_rank(c, r, &m);
    pthread_mutex_lock(&c->mu);
    c->released = e + 1;
    if (e == 0 && c->phase == PH_JOIN) {
        c->phase = PH_READY;
        uint64_t t = now_ns();
        for (int r = 0; r < c->size; r++)
            c->peers[r].last_heard = t;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_join(struct weir__cluster *c, const uint8_t *id, size_t idlen,
                    const struct weir__cluster_msg *m)
{
    int r = m->rank;
    if (m->version != WEIR__CLUSTER_PROTO) {
        refuse(c, id, idlen, r, -EPROTO, "cluster: rank %d speaks control protocol version %u, "
               "rank 0 speaks %d", r, m->version, WEIR__CLUSTER_PROTO);
        return;
    }
    if (!token_equal(c, m->token, m->token_len)) {
        refuse(c, id, idlen, r, -EACCES, "cluster: rank %d (pid %d on host %s) presented a wrong "
               "token (WEIR_TOKEN differs)", r, (int)m->self.pid, m->self.host);
        return;
    }
    if (m->world_size != c->size) {
        refuse(c, id, idlen, r, -EINVAL, "cluster: rank %d says the world has %d ranks, rank 0 "
               "says %d", r, m->world_size, c->size);
        return;
    }
    if (r < 1 || r >= c->size) {
        refuse(c, id, idlen, r, -ERANGE, "cluster: rank %d is out of range (a world of %d ranks "
               "joins ranks 1..%d)", r, c->size, c->size - 1);
        return;
    }
    struct peer *p = &c->peers[r];
    if (p->joined) {
        if (p->idlen == idlen && memcmp(p->id, id, idlen) == 0)
            return; /* the same process again */
        refuse(c, id, idlen, r, -EEXIST, "cluster: rank %d joined twice: pid %d on host %s is "
               "rank %d already; refused pid %d on host %s", r, (int)c->table[r].pid,
               c->table[r].host, r, (int)m->self.pid, m->self.host);
        return;
    }
    int phase;
    pthread_mutex_lock(&c->mu);
    phase = c->phase;
    pthread_mutex_unlock(&c->mu);
    if (phase != PH_JOIN) {
        refuse(c, id, idlen, r, -EEXIST, "cluster: rank %d joined after the cluster formed", r);
        return;
    }
    if (m->plan_hash != c->plan_hash) {
        refuse(c, id, idlen, r, -EPROTO, "cluster: rank %d built a different plan: hash "
               "%016llx, rank 0's is %016llx", r, (unsigned long long)m->plan_hash,
               (unsigned long long)c->plan_hash);
        fail(c, r, -EPROTO, "%s", c->last_refusal);
        return;
    }
    p->joined = 1;
    p->alive = 1;
    memcpy(p->id, id, idlen);
    p->idlen = idlen;
    p->last_heard = now_ns();
    c->table[r] = m->self;
    c->table[r].rank = r;
    set_desc(c, r);
    for (int q = 1; q < c->size; q++)
        if (!c->peers[q].joined)
            return;
    send_table(c);
    /* From here on every rank knows every other: heartbeats and liveness run,
     * so a rank that dies before barrier 0 is named within the bound too. */
    c->table_done = 1;
    uint64_t t = now_ns();
    for (int q = 1; q < c->size; q++)
        c->peers[q].last_heard = t;
    weir__store_relaxed(&c->peers[0].arrived, 1u); /* rank 0 holds the table: at barrier 0 */
}

static void rank0_msg(struct weir__cluster *c, const uint8_t *id, size_t idlen, const uint8_t *buf,
                      size_t len)
{
    struct weir__cluster_msg *m = (struct weir__cluster_msg *)c->rxbuf;
    m->ranks = NULL;
    m->ranks_cap = 0;
    m->chans = c->stats;
    m->chans_cap = c->stats ? WEIR__CLUSTER_STATS_MAX : 0;
    m->links = c->lstats;
    m->links_cap = c->lstats ? WEIR__CLUSTER_LINKS_MAX : 0;
    m->actors = c->astats;
    m->actors_cap = c->astats ? WEIR__CLUSTER_ACTORS_MAX : 0;
    int from = find_peer(c, id, idlen);
    if (weir__cluster_msg_decode(buf, len, m) < 0) {
        if (from > 0) {
            /* A joined rank that speaks garbage: note it, change nothing. */
            snprintf(c->last_refusal, sizeof c->last_refusal, "cluster: %s sent a bad control "
                     "message: %s", c->desc[from], weir_errmsg());
            if (c->on_event)
                c->on_event(c->ctx, WEIR__CLUSTER_EV_REFUSED, from, -EBADMSG, c->last_refusal);
            return;
        }
        char why[WEIR__CLUSTER_REASON_MAX + 1];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        refuse(c, id, idlen, -1, weir_errcode(), "cluster: refused a message from a peer that "
               "has not joined: %s", why);
        return;
    }
    if (m->kind == WEIR__CM_JOIN) {
        on_join(c, id, idlen, m);
        return;
    }
    if (from < 0) {
        static const char *const kinds[] = {"?", "JOIN", "TABLE", "REFUSE", "ARRIVE", "RELEASE",
                                            "HEARTBEAT", "TEARDOWN", "BYE", "FAILURE", "STATS"};
        refuse(c, id, idlen, -1, -EPROTO, "cluster: refused a %s from a peer that has not joined",
               kinds[m->kind]);
        return;
    }
    struct peer *p = &c->peers[from];
    p->last_heard = now_ns();
    switch (m->kind) {
    case WEIR__CM_HEARTBEAT:
        break;
    case WEIR__CM_ARRIVE:
        if (m->epoch + 1 > p->arrived) /* read by a timed-out barrier's message */
            weir__store_relaxed(&p->arrived, m->epoch + 1);
        try_release(c);
        break;
    case WEIR__CM_BYE:
        p->bye = 1;
        p->alive = 0;
        pthread_mutex_lock(&c->mu);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    case WEIR__CM_FAILURE:
        if (p->alive)
            fail(c, from, m->code, "cluster: %s failed: %s", c->desc[from], m->reason);
        p->alive = 0;
        break;
    case WEIR__CM_STATS:
        if (m->rank != from) {
            snprintf(c->last_refusal, sizeof c->last_refusal, "cluster: %s sent STATS as rank "
                     "%d", c->desc[from], m->rank);
            if (c->on_event)
                c->on_event(c->ctx, WEIR__CLUSTER_EV_REFUSED, from, -EPROTO, c->last_refusal);
        } else if (c->on_stats && p->alive) {
            struct weir__cluster_stats st = {.chans = m->chans, .nchans = m->nchans,
                                             .links = m->links, .nlinks = m->nlinks,
                                             .actors = m->actors, .nactors = m->nactors,
                                             .at_ns = m->at_ns};
            c->on_stats(c->ctx, from, &st);
        }
        break;
    default:
        break; /* TABLE, REFUSE, RELEASE, TEARDOWN only flow from rank 0 */
    }
}

/* ---- ranks != 0 ------------------------------------------------------------- */

static void send_stats(struct weir__cluster *c);

static void worker_msg(struct weir__cluster *c, const uint8_t *buf, size_t len)
{
    struct weir__cluster_msg *m = (struct weir__cluster_msg *)c->rxbuf;
    m->ranks = (struct weir__cluster_rank *)(c->rxbuf + sizeof *m);
    m->ranks_cap = (unsigned)c->size;
    m->chans = NULL; /* STATS only flow to rank 0 */
    m->chans_cap = 0;
    m->links = NULL;
    m->links_cap = 0;
    m->actors = NULL;
    m->actors_cap = 0;
    if (weir__cluster_msg_decode(buf, len, m) < 0) {
        snprintf(c->last_refusal, sizeof c->last_refusal, "cluster: rank 0 sent a bad control "
                 "message: %s", weir_errmsg());
        if (c->on_event)
            c->on_event(c->ctx, WEIR__CLUSTER_EV_REFUSED, 0, -EBADMSG, c->last_refusal);
        return;
    }
    c->peers[0].last_heard = now_ns();
    struct weir__cluster_msg ack;
    memset(&ack, 0, sizeof ack);
    ack.rank = c->rank;
    switch (m->kind) {
    case WEIR__CM_REFUSE:
        fail(c, c->rank, m->code, "%s", m->reason);
        break;
    case WEIR__CM_TABLE: {
        pthread_mutex_lock(&c->mu);
        int phase = c->phase;
        pthread_mutex_unlock(&c->mu);
        if (phase != PH_JOIN || m->world_size != c->size)
            break;
        memcpy(c->table, m->ranks, sizeof *c->table * (size_t)c->size);
        for (int r = 0; r < c->size; r++)
            set_desc(c, r);
        c->table_done = 1;
        ack.kind = WEIR__CM_ARRIVE;
        ack.epoch = 0;
        send_msg(c, NULL, 0, &ack);
        break;
    }
    case WEIR__CM_RELEASE:
        pthread_mutex_lock(&c->mu);
        if (m->epoch + 1 > c->released)
            c->released = m->epoch + 1;
        if (c->phase == PH_JOIN && c->released >= 1) {
            c->phase = PH_READY;
            c->peers[0].last_heard = now_ns();
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    case WEIR__CM_TEARDOWN:
        send_stats(c); /* the final counters, before rank 0 stops listening */
        ack.kind = WEIR__CM_BYE;
        send_msg(c, NULL, 0, &ack);
        pthread_mutex_lock(&c->mu);
        c->torn_down = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    case WEIR__CM_FAILURE:
        fail(c, m->rank, m->code, "%s", m->reason);
        break;
    default:
        break; /* HEARTBEAT: heard; the rest only flows to rank 0 */
    }
}

/* ---- the thread --------------------------------------------------------------- */

static void recv_all(struct weir__cluster *c)
{
    uint8_t id[256];
    for (;;) {
        int idlen = 0;
        if (c->rank == 0) {
            idlen = zmq_recv(c->sock, id, sizeof id, ZMQ_DONTWAIT);
            if (idlen < 0)
                return;
            int more = 0;
            size_t ml = sizeof more;
            zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &ml);
            if (!more)
                continue; /* not a peer's message (ROUTER always prefixes the id) */
            if (idlen > (int)sizeof id)
                idlen = (int)sizeof id; /* cannot happen: ZeroMQ ids are <= 255 bytes */
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        /* Drop any further frames: a message is exactly one frame. */
        int more = zmq_msg_more(&msg);
        const uint8_t *buf = zmq_msg_data(&msg);
        size_t len = zmq_msg_size(&msg);
        if (c->rank == 0 && idlen > ID_MAX) /* weir's ranks use short ids */
            refuse(c, id, (size_t)idlen, -1, -EPROTO, "cluster: refused a peer with a routing id "
                   "of %d bytes (at most %d)", idlen, ID_MAX);
        else if (c->rank == 0)
            rank0_msg(c, id, (size_t)idlen, buf, len);
        else
            worker_msg(c, buf, len);
        zmq_msg_close(&msg);
        while (more) {
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0)
                more = 0;
            else
                more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
    }
}

static void join_timeout(struct weir__cluster *c)
{
    char msg[WEIR__CLUSTER_REASON_MAX + 1];
    int len = 0, n = 0, first = -1;
    if (c->rank != 0) {
        fail(c, 0, -ETIMEDOUT, "cluster: rank %d: rank 0 at %s did not complete the join within "
             "%d ms", c->rank, c->coord, c->timeout_ms);
        return;
    }
    int joined_all = 1;
    for (int r = 1; r < c->size; r++)
        joined_all &= c->peers[r].joined;
    for (int r = 1; r < c->size; r++) {
        int missing = joined_all ? c->peers[r].arrived < 1 : !c->peers[r].joined;
        if (!missing)
            continue;
        if (first < 0)
            first = r;
        if (n < 8)
            len += snprintf(msg + len, sizeof msg - (size_t)len, "%s%d", n ? ", " : "", r);
        else if (n == 8)
            len += snprintf(msg + len, sizeof msg - (size_t)len, ", ...");
        n++;
    }
    char tail[WEIR__CLUSTER_REASON_MAX + 1] = "";
    if (c->last_refusal[0])
        snprintf(tail, sizeof tail, " (last refused: %.300s)", c->last_refusal);
    fail(c, first, -ETIMEDOUT, "cluster: rank%s %s of %d did not %s within %d ms%s",
         n > 1 ? "s" : "", msg, c->size, joined_all ? "take the endpoint table" : "join",
         c->timeout_ms, tail);
}

static void check_liveness(struct weir__cluster *c, uint64_t t)
{
    uint64_t bound = ms_ns(c->hb_ms) * 3 / 4;
    /* The thread itself did not run for half the bound (this process was
     * stopped, its VM paused): the silence is ours, not the peers'. Give them
     * a fresh bound, in which rank 0's verdict on us (FAILURE) arrives if it
     * gave us up meanwhile, rather than blaming a peer for our own pause. */
    uint64_t prev = c->last_check;
    c->last_check = t;
    if (prev && t - prev > bound / 2) {
        for (int r = 0; r < c->size; r++)
            if (c->peers[r].last_heard < t)
                c->peers[r].last_heard = t;
        return;
    }
    for (int r = 0; r < c->size; r++) {
        if (r == c->rank || (c->rank != 0 && r != 0))
            continue;
        struct peer *p = &c->peers[r];
        if (!p->alive || t - p->last_heard <= bound)
            continue;
        fail(c, r, -EHOSTDOWN, "cluster: %s fell silent for %llu ms (heartbeat bound %d ms)",
             c->desc[r], (unsigned long long)((t - p->last_heard) / 1000000ull), c->hb_ms);
        p->alive = 0;
    }
}

/* Ranks != 0: the counters rank 0 has no ring of, and this rank's links
 * (collect), if any. */
static void send_stats(struct weir__cluster *c)
{
    if (!c->collect || !c->stats)
        return;
    struct weir__cluster_stats st = {.chans = c->stats, .links = c->lstats, .actors = c->astats};
    c->collect(c->ctx, &st);
    if (!st.nchans && !st.nlinks && !st.nactors)
        return;
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_STATS;
    m.rank = c->rank;
    m.chans = c->stats;
    m.nchans = st.nchans < WEIR__CLUSTER_STATS_MAX ? st.nchans : WEIR__CLUSTER_STATS_MAX;
    m.links = c->lstats;
    m.nlinks = st.nlinks < WEIR__CLUSTER_LINKS_MAX ? st.nlinks : WEIR__CLUSTER_LINKS_MAX;
    m.actors = c->astats;
    m.nactors = st.nactors < WEIR__CLUSTER_ACTORS_MAX ? st.nactors : WEIR__CLUSTER_ACTORS_MAX;
    m.at_ns = st.at_ns;
    send_msg(c, NULL, 0, &m);
}

static void send_heartbeats(struct weir__cluster *c)
{
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_HEARTBEAT;
    m.rank = c->rank;
    m.seq = ++c->hb_seq;
    if (c->rank != 0) {
        send_msg(c, NULL, 0, &m);
        if (m.seq % STATS_EVERY == 0)
            send_stats(c);
        return;
    }
    for (int r = 1; r < c->size; r++)
        if (c->peers[r].alive)
            send_to_rank(c, r, &m);
}

static void *cluster_thread(void *arg)
{
    struct weir__cluster *c = arg;
    uint64_t poll_ns = ms_ns(c->hb_ms) / 16;
    if (poll_ns < 1000000)
        poll_ns = 1000000;
    int tearing = 0;
    uint64_t teardown_deadline = 0;
    for (;;) {
        zmq_pollitem_t it[2] = {{c->sock, 0, ZMQ_POLLIN, 0}, {NULL, c->efd, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, (long)(poll_ns / 1000000));
        if (it[1].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t n = read(c->efd, &v, sizeof v);
            (void)n;
        }
        recv_all(c);

        /* Commands. */
        pthread_mutex_lock(&c->mu);
        int stop = c->cmd_stop, phase = c->phase;
        int arrive = c->cmd_arrive, report = c->cmd_report, teardown = c->cmd_teardown;
        uint32_t ae = c->arrive_epoch;
        int rcode = c->report_code;
        char rmsg[WEIR__CLUSTER_REASON_MAX + 1];
        snprintf(rmsg, sizeof rmsg, "%s", c->report_msg);
        int bye = c->cmd_bye;
        c->cmd_arrive = c->cmd_report = c->cmd_bye = 0;
        if (teardown)
            c->cmd_teardown = 0;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        uint64_t t = now_ns();
        if (arrive) {
            if (c->rank == 0) {
                if (ae + 1 > c->peers[0].arrived)
                    weir__store_relaxed(&c->peers[0].arrived, ae + 1);
                try_release(c);
            } else {
                struct weir__cluster_msg m;
                memset(&m, 0, sizeof m);
                m.kind = WEIR__CM_ARRIVE;
                m.rank = c->rank;
                m.epoch = ae;
                send_msg(c, NULL, 0, &m);
            }
        }
        if (report) {
            if (c->rank != 0) {
                struct weir__cluster_msg m;
                memset(&m, 0, sizeof m);
                m.kind = WEIR__CM_FAILURE;
                m.rank = c->rank;
                m.code = rcode;
                snprintf(m.reason, sizeof m.reason, "%s", rmsg);
                send_msg(c, NULL, 0, &m);
            }
            fail(c, c->rank, rcode, "cluster: %s failed: %s", c->desc[c->rank], rmsg);
        }
        if (bye && c->rank != 0) {
            /* After a failure rank 0 may still tear down: spare it the wait. */
            struct weir__cluster_msg m;
            memset(&m, 0, sizeof m);
            m.kind = WEIR__CM_BYE;
            m.rank = c->rank;
            send_msg(c, NULL, 0, &m);
            pthread_mutex_lock(&c->mu);
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
        }
        if (teardown && c->rank == 0) {
            struct weir__cluster_msg m;
            memset(&m, 0, sizeof m);
            m.kind = WEIR__CM_TEARDOWN;
            for (int r = 1; r < c->size; r++)
                if (c->peers[r].alive)
                    send_to_rank(c, r, &m);
            tearing = 1;
            teardown_deadline = t + ms_ns(teardown);
        }
        if (tearing) {
            int waiting = 0;
            for (int r = 1; r < c->size; r++)
                waiting |= c->peers[r].alive;
            if (!waiting || t >= teardown_deadline) {
                pthread_mutex_lock(&c->mu);
                c->teardown_done = 1;
                c->phase = PH_DONE;
                pthread_cond_broadcast(&c->cv);
                pthread_mutex_unlock(&c->mu);
                tearing = 0;
            }
        }

        if (phase == PH_JOIN && c->join_deadline && t >= c->join_deadline && !failed_now(c))
            join_timeout(c);
        if (phase == PH_READY || c->table_done) {
            if (t >= c->next_hb) {
                send_heartbeats(c);
                c->next_hb = t + ms_ns(c->hb_ms) / 8;
            }
            pthread_mutex_lock(&c->mu);
            int down = c->torn_down;
            pthread_mutex_unlock(&c->mu);
            if (!down && !tearing)
                check_liveness(c, t);
        }
    }
    return NULL;
}

/* ---- the API ------------------------------------------------------------------ */

static int zerr(const char *what, const char *ep)
{
    int e = errno;
    return weir__seterr(-e, "cluster: %s %s: %s", what, ep, zmq_strerror(e));
}

static void cluster_free(struct weir__cluster *c)
{
    if (c->th_started) {
        pthread_mutex_lock(&c->mu);
        c->cmd_stop = 1;
        pthread_mutex_unlock(&c->mu);
        poke(c);
        pthread_join(c->th, NULL);
    }
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    if (c->efd >= 0)
        close(c->efd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->peers);
    free(c->table);
    free(c->desc);
    free(c->rxbuf);
    free(c->stats);
    free(c->lstats);
    free(c->astats);
    free(c);
}

struct weir__cluster *weir__cluster_open(const struct weir__cluster_opts *o)
{
    weir__clearerr();
    if (!o || o->size < 2 || o->size > WEIR_MAX_RANKS || o->rank < 0 || o->rank >= o->size ||
        !o->coord || !o->coord[0] || strlen(o->coord) >= WEIR__CLUSTER_ADDR_MAX + 8 ||
        o->token_len > WEIR__CLUSTER_TOKEN_MAX || (o->token_len && !o->token) ||
        o->nendpoints > WEIR__CLUSTER_MAX_EP || (o->nendpoints && !o->endpoints) ||
        o->timeout_ms < -1 || o->heartbeat_ms < 0) {
        weir__seterr(-EINVAL, "cluster: open: bad argument (rank %d of %d, coordinator '%s')",
                     o ? o->rank : -1, o ? o->size : 0, o && o->coord ? o->coord : "(null)");
        return NULL;
    }
    for (unsigned i = 0; i < o->nendpoints; i++)
        if (!o->endpoints[i] || !o->endpoints[i][0] ||
            strlen(o->endpoints[i]) > WEIR__CLUSTER_EP_MAX) {
            weir__seterr(-EINVAL, "cluster: rank %d: data endpoint %u is empty or longer than %d "
                         "bytes", o->rank, i, WEIR__CLUSTER_EP_MAX);
            return NULL;
        }
    struct weir__cluster *c = calloc(1, sizeof *c);
    if (!c) {
        weir__seterr(-ENOMEM, "cluster: out of memory");
        return NULL;
    }
    c->efd = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->rank = o->rank;
    c->size = o->size;
    snprintf(c->coord, sizeof c->coord, "%s", o->coord);
    if (o->token_len)
        memcpy(c->token, o->token, o->token_len);
    c->token_len = o->token_len;
    c->plan_hash = o->plan_hash;
    c->hb_ms = o->heartbeat_ms ? o->heartbeat_ms : WEIR__CLUSTER_HEARTBEAT_MS;
    c->on_event = o->on_event;
    c->collect = o->collect;
    c->on_stats = o->on_stats;
    c->ctx = o->ctx;
    int timeout = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->timeout_ms = timeout;
    c->join_deadline = timeout < 0 ? 0 : now_ns() + ms_ns(timeout);
    c->peers = calloc((size_t)c->size, sizeof *c->peers);
    c->table = calloc((size_t)c->size, sizeof *c->table);
    c->desc = calloc((size_t)c->size, sizeof *c->desc);
    c->rxbuf = malloc(sizeof(struct weir__cluster_msg) +
                      sizeof(struct weir__cluster_rank) * (size_t)c->size);
    if ((c->rank == 0 ? c->on_stats != NULL : c->collect != NULL) &&
        (!(c->stats = calloc(WEIR__CLUSTER_STATS_MAX, sizeof *c->stats)) ||
         !(c->lstats = calloc(WEIR__CLUSTER_LINKS_MAX, sizeof *c->lstats)) ||
         !(c->astats = calloc(WEIR__CLUSTER_ACTORS_MAX, sizeof *c->astats)))) {
        weir__seterr(-ENOMEM, "cluster: out of memory for channel counters");
        goto fail;
    }
    if (!c->peers || !c->table || !c->desc || !c->rxbuf) {
        weir__seterr(-ENOMEM, "cluster: out of memory for %d ranks", c->size);
        goto fail;
    }
    for (int r = 0; r < c->size; r++) {
        c->table[r].rank = r;
        set_desc(c, r);
    }
    struct weir__cluster_rank *self = &c->table[c->rank];
    self->pid = (int32_t)getpid();
    if (gethostname(self->host, sizeof self->host) < 0)
        snprintf(self->host, sizeof self->host, "?");
    self->host[sizeof self->host - 1] = '\0';
    self->nep = o->nendpoints;
    for (unsigned i = 0; i < o->nendpoints; i++)
        snprintf(self->ep[i], sizeof self->ep[i], "%s", o->endpoints[i]);
    set_desc(c, c->rank);
    c->peers[c->rank].alive = 1;
    c->peers[c->rank].joined = 1;

    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->efd < 0) {
        weir__seterr(-errno, "cluster: eventfd: %s", strerror(errno));
        goto fail;
    }
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        zerr("ZeroMQ context for", c->coord);
        goto fail;
    }
    zmq_ctx_set(c->zctx, ZMQ_IO_THREADS, 1);
    zmq_ctx_set(c->zctx, ZMQ_BLOCKY, 0);
    c->sock = zmq_socket(c->zctx, c->rank == 0 ? ZMQ_ROUTER : ZMQ_DEALER);
    if (!c->sock) {
        zerr("socket for", c->coord);
        goto fail;
    }
    int linger = LINGER_MS, one = 1;
    int64_t maxmsg = WEIR__CLUSTER_MSG_MAX + 64;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (c->rank == 0) {
        zmq_setsockopt(c->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
        if (zmq_bind(c->sock, c->coord) < 0) {
            /* A host name that is not an interface of this machine: listen on all. */
            const char *port = strrchr(c->coord, ':');
            char any[64];
            if (errno == ENODEV && strncmp(c->coord, "tcp://", 6) == 0 && port) {
                snprintf(any, sizeof any, "tcp://*%s", port);
                if (zmq_bind(c->sock, any) == 0)
                    goto bound;
            }
            zerr("rank 0 cannot listen at", c->coord);
            goto fail;
        }
    } else {
        uint8_t id[ID_MAX];
        int len = snprintf((char *)id, sizeof id, "r%d-", c->rank);
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            uint64_t t = now_ns() ^ (uint64_t)getpid() << 32;
            memcpy(rnd, &t, sizeof rnd);
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            id[len++] = "0123456789abcdef"[rnd[i] & 15];
        zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, id, (size_t)len);
        if (zmq_connect(c->sock, c->coord) < 0) {
            zerr("cannot connect to rank 0 at", c->coord);
            goto fail;
        }
        struct weir__cluster_msg *m = calloc(1, sizeof *m);
        if (!m) {
            weir__seterr(-ENOMEM, "cluster: out of memory");
            goto fail;
        }
        m->kind = WEIR__CM_JOIN;
        m->version = WEIR__CLUSTER_PROTO;
        m->rank = c->rank;
        m->world_size = c->size;
        m->plan_hash = c->plan_hash;
        m->token_len = (uint32_t)c->token_len;
        memcpy(m->token, c->token, c->token_len);
        m->self = *self;
        int r = send_msg(c, NULL, 0, m);
        free(m);
        if (r < 0) {
            weir__seterr(r, "cluster: rank %d: cannot send its join to %s", c->rank, c->coord);
            goto fail;
        }
        c->peers[0].alive = 1;
    }
bound:
    if (pthread_create(&c->th, NULL, cluster_thread, c) != 0) {
        weir__seterr(-EAGAIN, "cluster: cannot start the control thread");
        goto fail;
    }
    c->th_started = 1;

    pthread_mutex_lock(&c->mu);
    while (c->phase == PH_JOIN && !c->fail_code)
        pthread_cond_wait(&c->cv, &c->mu);
    /* Past barrier 0 the join succeeded, whatever failed since (the thread
     * may have taken RELEASE and a FAILURE in one turn): later calls say it. */
    int code = c->phase == PH_JOIN ? c->fail_code : 0;
    char msg[WEIR__CLUSTER_REASON_MAX + 1];
    snprintf(msg, sizeof msg, "%s", c->fail_msg);
    if (!code)
        c->next_epoch = 1; /* barrier 0 was open's */
    pthread_mutex_unlock(&c->mu);
    if (code) {
        cluster_free(c);
        weir__seterr(code, "%s", msg);
        return NULL;
    }
    return c;
fail:
    {
        int ecode = weir_errcode();
        char emsg[512];
        snprintf(emsg, sizeof emsg, "%s", weir_errmsg());
        cluster_free(c);
        weir__seterr(ecode, "%s", emsg);
    }
    return NULL;
}

int weir__cluster_rank(const struct weir__cluster *c)
{
    return c->rank;
}

int weir__cluster_size(const struct weir__cluster *c)
{
    return c->size;
}

unsigned weir__cluster_nendpoints(const struct weir__cluster *c, int r)
{
    return c && r >= 0 && r < c->size ? c->table[r].nep : 0;
}

const char *weir__cluster_endpoint(const struct weir__cluster *c, int r, unsigned i)
{
    if (!c || r < 0 || r >= c->size || i >= c->table[r].nep)
        return NULL;
    return c->table[r].ep[i];
}

/* Absolute deadline for a condvar wait, or NULL-equivalent (tv_sec 0). */
static int wait_until(struct weir__cluster *c, const struct timespec *dl)
{
    if (!dl)
        return pthread_cond_wait(&c->cv, &c->mu);
    return pthread_cond_timedwait(&c->cv, &c->mu, dl);
}

static struct timespec *deadline(struct timespec *ts, int timeout_ms)
{
    if (timeout_ms < 0)
        return NULL;
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
    return ts;
}

static int failure(struct weir__cluster *c)
{
    return weir__seterr(c->fail_code, "%s", c->fail_msg);
}

int weir__cluster_barrier(struct weir__cluster *c, int timeout_ms)
{
    if (!c || timeout_ms < -1)
        return weir__seterr(-EINVAL, "cluster: barrier: bad argument");
    struct timespec ts, *dl = deadline(&ts, timeout_ms);
    pthread_mutex_lock(&c->mu);
    if (c->fail_code) {
        int r = failure(c);
        pthread_mutex_unlock(&c->mu);
        return r;
    }
    uint32_t e = c->next_epoch++;
    c->cmd_arrive = 1;
    c->arrive_epoch = e;
    pthread_mutex_unlock(&c->mu);
    poke(c);
    pthread_mutex_lock(&c->mu);
    int r = 0;
    while (c->released <= e && !c->fail_code && !c->torn_down && r != ETIMEDOUT)
        r = wait_until(c, dl);
    if (c->released > e)
        r = 0;
    else if (c->fail_code)
        r = failure(c);
    else if (c->torn_down) /* rank 0 gave up on the dag before releasing this barrier */
        r = weir__seterr(-ECANCELED, "cluster: barrier %u: rank %d: rank 0 tore the cluster down "
                         "before releasing it", e, c->rank);
    else if (c->rank != 0)
        r = weir__seterr(-ETIMEDOUT, "cluster: barrier %u: rank %d: rank 0 did not release it "
                         "within %d ms", e, c->rank, timeout_ms);
    else {
        /* The thread owns peers[].arrived; a racy read only shapes the message. */
        char who[200];
        int len = 0, n = 0;
        for (int q = 1; q < c->size && len < (int)sizeof who - 16; q++)
            if (weir__load_relaxed(&c->peers[q].arrived) <= e) /* the thread's relaxed stores */
                len += snprintf(who + len, sizeof who - (size_t)len, "%s%d", n++ ? ", " : "", q);
        r = weir__seterr(-ETIMEDOUT, "cluster: barrier %u: rank%s %s did not arrive within %d "
                         "ms", e, n > 1 ? "s" : "", n ? who : "?", timeout_ms);
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

int weir__cluster_wait(struct weir__cluster *c, int timeout_ms)
{
    if (!c || timeout_ms < -1)
        return weir__seterr(-EINVAL, "cluster: wait: bad argument");
    if (c->rank == 0)
        return weir__seterr(-EINVAL, "cluster: wait: rank 0 tears down, it does not wait for it");
    struct timespec ts, *dl = deadline(&ts, timeout_ms);
    pthread_mutex_lock(&c->mu);
    int r = 0;
    while (!c->torn_down && !c->fail_code && r != ETIMEDOUT)
        r = wait_until(c, dl);
    /* A failure the thread took before the teardown (rank 0 sends FAILURE,
     * then TEARDOWN, and both may arrive in one turn) is the answer. */
    if (c->fail_code)
        r = failure(c);
    else if (c->torn_down)
        r = 0;
    else
        r = weir__seterr(-ETIMEDOUT, "cluster: rank %d: no teardown from rank 0 within %d ms",
                         c->rank, timeout_ms);
    pthread_mutex_unlock(&c->mu);
    return r;
}

int weir__cluster_failed(struct weir__cluster *c, char *buf, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    int code = c->fail_code;
    if (code && buf && cap)
        snprintf(buf, cap, "%s", c->fail_msg);
    pthread_mutex_unlock(&c->mu);
    return code;
}

int weir__cluster_report(struct weir__cluster *c, int code, const char *fmt, ...)
{
    if (!c || code >= 0 || !fmt)
        return weir__seterr(-EINVAL, "cluster: report: bad argument");
    pthread_mutex_lock(&c->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->report_msg, sizeof c->report_msg, fmt, ap);
    va_end(ap);
    c->report_code = code;
    c->cmd_report = 1;
    pthread_mutex_unlock(&c->mu);
    poke(c);
    return 0;
}

int weir__cluster_close(struct weir__cluster *c, int timeout_ms)
{
    if (!c)
        return 0;
    int ret = 0;
    int t = timeout_ms < 0 ? 2 * c->hb_ms : timeout_ms;
    if (c->rank == 0) {
        pthread_mutex_lock(&c->mu);
        c->cmd_teardown = t > 0 ? t : 1;
        pthread_mutex_unlock(&c->mu);
        poke(c);
        pthread_mutex_lock(&c->mu);
        while (!c->teardown_done)
            pthread_cond_wait(&c->cv, &c->mu); /* the thread bounds it by t */
        pthread_mutex_unlock(&c->mu);
        /* The thread has stopped touching peers[] for teardown; stop it, then read. */
        pthread_mutex_lock(&c->mu);
        c->cmd_stop = 1;
        pthread_mutex_unlock(&c->mu);
        poke(c);
        pthread_join(c->th, NULL);
        c->th_started = 0;
        char who[200];
        int len = 0, n = 0;
        for (int r = 1; r < c->size && len < (int)sizeof who - 16; r++)
            if (c->peers[r].alive)
                len += snprintf(who + len, sizeof who - (size_t)len, "%s%d", n++ ? ", " : "", r);
        if (n)
            ret = weir__seterr(-ETIMEDOUT, "cluster: teardown: rank%s %s did not acknowledge "
                               "within %d ms", n > 1 ? "s" : "", who, t);
    } else {
        pthread_mutex_lock(&c->mu);
        int leave = !c->torn_down && !c->fail_code;
        int bye = !c->torn_down && c->fail_code && c->phase != PH_JOIN;
        if (bye)
            c->cmd_bye = 1;
        int pending = c->cmd_report; /* a report not sent yet says more: it goes */
        if (leave && !pending) {
            c->cmd_report = 1;
            c->report_code = -ECONNRESET;
            snprintf(c->report_msg, sizeof c->report_msg, "it left before rank 0 tore the "
                     "cluster down");
        }
        pthread_mutex_unlock(&c->mu);
        if (leave || bye || pending) {
            poke(c);
            /* The thread sends it on its next turn; the socket's linger flushes it. */
            pthread_mutex_lock(&c->mu);
            while (c->cmd_report || c->cmd_bye)
                pthread_cond_wait(&c->cv, &c->mu);
            pthread_mutex_unlock(&c->mu);
        }
    }
    cluster_free(c);
    return ret;
}
