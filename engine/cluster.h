/* SPDX-License-Identifier: MIT */
/*
 * engine/cluster.h - several ranks: the environment a rank reads
 * (cluster_env.c), the control plane that joins the ranks (cluster.c) and
 * its FlatBuffers messages (cluster.fbs, cluster_codec.cc). The compiler
 * path calls weir__cluster_open() once per compile on every rank of a
 * multi-rank graph; nothing here knows about plans beyond their hash.
 */
#ifndef WEIR_ENGINE_CLUSTER_H
#define WEIR_ENGINE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <weir/cluster.h>
#include <weir/dag.h>
#include <weir/stats.h>

/* ---- the environment (cluster_env.c) --------------------------------------- */

#define WEIR__CLUSTER_ADDR_MAX 255  /* bytes of a coordinator endpoint or bind address */
#define WEIR__CLUSTER_TOKEN_MAX 256 /* bytes of WEIR_TOKEN */

struct weir__cluster_env {
    int rank, size;            /* 0 and 1 when not launched as several */
    const char *launcher;      /* "weir", "Open MPI", ..., or "none" (static) */
    char rank_var[32];         /* the variable that gave the rank ("" when none) */
    char size_var[32];         /* the variable that gave the size ("" when none) */
    /* Rank 0's control endpoint as a ZeroMQ endpoint ("tcp://HOST:PORT", or
     * "ipc://@weir-..." for a one-host launch that names no coordinator);
     * "" when size is 1. */
    char coord[WEIR__CLUSTER_ADDR_MAX + 8];
    char coord_var[32];        /* "WEIR_COORD", "MASTER_ADDR", or the job-id variable */
    char bind[WEIR__CLUSTER_ADDR_MAX + 1]; /* WEIR_BIND as given, or "" */
    size_t token_len;
    char token[WEIR__CLUSTER_TOKEN_MAX + 1]; /* WEIR_TOKEN, or "" */
};

/*
 * Read the cluster variables out of envp (a NULL-terminated "NAME=VALUE"
 * array, as environ; the first entry of a name wins, as getenv). Pure: no
 * other input, no side effect. 0 with *out filled, or -EINVAL with
 * weir_errmsg() "cluster environment: ..." naming the variable that is
 * missing, malformed or contradicts another (rules in weir/cluster.h).
 */
int weir__cluster_env_parse(char *const *envp, struct weir__cluster_env *out);

/*
 * This rank's data address: WEIR_BIND when set, else the local address
 * that routes to the coordinator's host (a UDP socket connected to it:
 * nothing is sent), else 127.0.0.1 for an ipc:// coordinator. Writes a
 * host (no port) into buf; 0, or -EINVAL / -EHOSTUNREACH naming the
 * coordinator that does not resolve or route.
 */
int weir__cluster_bind_addr(const struct weir__cluster_env *e, char *buf, size_t cap);

/* ---- the control plane (cluster.c) ----------------------------------------- */

/* Data endpoints per rank (engine/remote.c publishes one: the port all its
 * listeners share; the table leaves room for more). */
#define WEIR__CLUSTER_MAX_EP 4
#define WEIR__CLUSTER_EP_MAX 127    /* bytes of one data endpoint */
#define WEIR__CLUSTER_HOST_MAX 63   /* bytes of a host name in messages */
#define WEIR__CLUSTER_REASON_MAX 400 /* bytes of a refusal / failure text */
#define WEIR__CLUSTER_PROTO 2       /* control protocol version (Join.version); 2: STATS */
#define WEIR__CLUSTER_HEARTBEAT_MS 2000 /* default failure bound */
/* Largest control message (ZMQ_MAXMSGSIZE: a peer sending more is cut off). */
#define WEIR__CLUSTER_MSG_MAX (1u << 20)

/* What weir__cluster_opts.on_event reports. */
enum {
    WEIR__CLUSTER_EV_REFUSED = 1, /* a join (or a stray message) was refused: msg says why */
    WEIR__CLUSTER_EV_FAILED = 2,  /* rank `rank` failed (died, cut off, left, reported) */
};

/* One channel's counters in a STATS message (rank -> 0). */
#define WEIR__CLUSTER_STATS_MAX 128 /* channels per STATS message */
struct weir__cluster_chan_stat {
    uint32_t chan;                        /* channel index in the plan */
    int32_t who[WEIR_CHAN_MAX_READERS];   /* per reader of st: actor index, -1 the driver,
                                             -2 another reader */
    struct weir_chan_stats st;
};

/* One link's counters in a STATS message (rank -> 0). */
#define WEIR__CLUSTER_LINKS_MAX 128 /* links per STATS message */
struct weir__cluster_link_stat {
    uint32_t index;                /* the link's number k on the sending rank */
    struct weir_dag_link_stats st; /* st.rank is not sent: the message's rank is */
};

/* One actor's counters in a STATS message (rank -> 0). */
#define WEIR__CLUSTER_ACTORS_MAX 64  /* actors per STATS message */
#define WEIR__CLUSTER_METHODS_MAX 64 /* methods of one actor in a STATS message */
struct weir__cluster_method_stat {
    uint64_t calls, errors, busy_ns;
};
struct weir__cluster_actor_stat {
    uint32_t actor;       /* actor index in the plan */
    int32_t pid;          /* its process on the sending rank */
    uint32_t restarts;
    unsigned nmethods;    /* <= WEIR__CLUSTER_METHODS_MAX: its first methods */
    uint64_t input_starved_ns, output_blocked_ns;
    uint64_t at_ns;       /* not sent per actor: the message's at_ns (decode copies it) */
    struct weir__cluster_method_stat methods[WEIR__CLUSTER_METHODS_MAX];
};

/* What a rank reports in one STATS message: arrays of the _MAX capacities
 * above, filled with nchans / nlinks / nactors entries. */
struct weir__cluster_stats {
    struct weir__cluster_chan_stat *chans; /* WEIR__CLUSTER_STATS_MAX */
    unsigned nchans;
    struct weir__cluster_link_stat *links; /* WEIR__CLUSTER_LINKS_MAX */
    unsigned nlinks;
    struct weir__cluster_actor_stat *actors; /* WEIR__CLUSTER_ACTORS_MAX */
    unsigned nactors;
    uint64_t at_ns; /* the sender's CLOCK_MONOTONIC when collect took the counters */
};

struct weir__cluster_opts {
    int rank, size;          /* 0 <= rank < size <= WEIR_MAX_RANKS */
    const char *coord;       /* ZeroMQ endpoint of rank 0 (weir__cluster_env.coord) */
    const void *token;       /* shared secret (may be NULL with token_len 0); copied */
    size_t token_len;        /* <= WEIR__CLUSTER_TOKEN_MAX */
    uint64_t plan_hash;      /* every rank must present the same */
    const char *const *endpoints; /* this rank's data endpoints (copied) */
    unsigned nendpoints;     /* <= WEIR__CLUSTER_MAX_EP */
    int timeout_ms;          /* join + endpoint table + ready barrier (0: 10 s; -1: none) */
    int heartbeat_ms;        /* a peer silent this long has failed (0: 2000) */
    /* Called on the cluster's own thread (never with a lock of the cluster
     * held; it may call weir__cluster_failed but not close). msg is one line,
     * valid during the call. NULL: no callback. */
    void (*on_event)(void *ctx, int kind, int rank, int code, const char *msg);
    /* Ranks != 0: called on the cluster's thread before every 4th heartbeat
     * to rank 0 (every heartbeat_ms / 2) and before the BYE of a teardown;
     * fills out's arrays (their capacities are the _MAX above) and sets
     * nchans / nlinks / nactors (all 0: no STATS message). NULL: none. */
    void (*collect)(void *ctx, struct weir__cluster_stats *out);
    /* Rank 0: a joined rank's STATS (decoded and range-checked, not judged
     * against any plan), on the cluster's thread, no lock held. NULL: dropped. */
    void (*on_stats)(void *ctx, int rank, const struct weir__cluster_stats *s);
    void *ctx;
};

struct weir__cluster;

/*
 * Join the ranks: rank 0 binds a ROUTER at o->coord and waits for every
 * other rank's join (rank, world size, plan hash, token, endpoints), refusing
 * bad ones without harm to the cluster; then it sends every rank the table
 * of all endpoints and holds the ready barrier. Ranks != 0 connect a DEALER
 * and do their side. Bounded by o->timeout_ms in total. Returns the cluster
 * (caller owns it: weir__cluster_close) with heartbeats running, or NULL
 * with weir_errcode() / weir_errmsg() "cluster: ...": -ETIMEDOUT naming
 * the ranks that never joined ("rank 0 at ... did not complete the join"
 * on the others), the refusal this rank received (-EPROTO plan hash or
 * version, -EACCES token, -EEXIST duplicate rank, -ERANGE rank out of
 * range, -EINVAL world size), the failure rank 0 saw when it gave up (the
 * same code and text on every rank: a plan hash that differs, a rank that
 * never came), -EHOSTDOWN for a rank that fell silent after the table went
 * out, -EADDRINUSE / other ZeroMQ errors naming the endpoint. Barrier 0
 * is open's own: the first weir__cluster_barrier is barrier 1.
 */
struct weir__cluster *weir__cluster_open(const struct weir__cluster_opts *o);

int weir__cluster_rank(const struct weir__cluster *c);
int weir__cluster_size(const struct weir__cluster *c);
/* Rank r's data endpoints from the table (r < size): count, and endpoint i
 * (owned by the cluster, valid until close; NULL when out of range). */
unsigned weir__cluster_nendpoints(const struct weir__cluster *c, int r);
const char *weir__cluster_endpoint(const struct weir__cluster *c, int r, unsigned i);
/* "rank 2 (pid 812 on host b)" for messages (owned by the cluster). */
const char *weir__cluster_describe(const struct weir__cluster *c, int r);

/*
 * Every rank calls it; returns 0 once all have (barrier N of every rank
 * pairs with barrier N of the others). -ETIMEDOUT naming the ranks not
 * arrived (rank 0) or "rank 0 did not release" (others); the failure's
 * code and text when a rank failed meanwhile. Any thread; one at a time.
 * A timed-out barrier leaves the ranks out of step: treat it as fatal.
 */
int weir__cluster_barrier(struct weir__cluster *c, int timeout_ms);

/*
 * Ranks != 0: wait until rank 0 tears the cluster down (0) or a rank
 * fails (its code, -EHOSTDOWN for a silent or dead rank, and text; a
 * failure seen before the teardown wins);
 * -ETIMEDOUT when neither happened within timeout_ms. Rank 0: -EINVAL.
 */
int weir__cluster_wait(struct weir__cluster *c, int timeout_ms);

/* 0 while no rank has failed, else the failure's code with its text copied
 * to buf (the first failure wins). Any thread. */
int weir__cluster_failed(struct weir__cluster *c, char *buf, size_t cap);

/* Tell every rank that this rank failed (code < 0, one line of text); rank
 * 0 passes it on. The cluster is failed from then on. Any thread. */
int weir__cluster_report(struct weir__cluster *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Rank 0: send teardown to every live rank and wait (bounded by
 * timeout_ms) for each one's goodbye; others: say goodbye (or that this
 * rank leaves, if rank 0 never tore down). Then stop the thread and free.
 * Always frees; returns 0, or -ETIMEDOUT naming the ranks that did not
 * acknowledge. NULL is a no-op.
 */
int weir__cluster_close(struct weir__cluster *c, int timeout_ms);

/* ---- control messages (cluster_codec.cc; cluster.fbs) ---------------------- */

enum {
    WEIR__CM_JOIN = 1,  /* rank -> 0: who I am */
    WEIR__CM_TABLE,     /* 0 -> rank: every rank's endpoints */
    WEIR__CM_REFUSE,    /* 0 -> a peer: refused (code, reason) */
    WEIR__CM_ARRIVE,    /* rank -> 0: at barrier epoch */
    WEIR__CM_RELEASE,   /* 0 -> rank: barrier epoch passed */
    WEIR__CM_HEARTBEAT, /* both ways */
    WEIR__CM_TEARDOWN,  /* 0 -> rank */
    WEIR__CM_BYE,       /* rank -> 0: teardown acknowledged */
    WEIR__CM_FAILURE,   /* rank -> 0: I failed; 0 -> rank: rank R failed */
    WEIR__CM_STATS,     /* rank -> 0: channel counters rank 0 has no ring for */
    WEIR__CM_MAX = WEIR__CM_STATS
};

struct weir__cluster_rank {
    int32_t rank, pid;
    char host[WEIR__CLUSTER_HOST_MAX + 1];
    unsigned nep;
    char ep[WEIR__CLUSTER_MAX_EP][WEIR__CLUSTER_EP_MAX + 1];
};

struct weir__cluster_msg {
    int kind;                 /* WEIR__CM_* */
    uint32_t version;         /* JOIN */
    int32_t rank;             /* JOIN, ARRIVE, HEARTBEAT, BYE, FAILURE */
    int32_t world_size;       /* JOIN, TABLE */
    int32_t code;             /* REFUSE, FAILURE: a negative errno */
    uint32_t epoch;           /* ARRIVE, RELEASE */
    uint64_t plan_hash;       /* JOIN */
    uint64_t seq;             /* HEARTBEAT */
    uint32_t token_len;       /* JOIN */
    uint8_t token[WEIR__CLUSTER_TOKEN_MAX];
    struct weir__cluster_rank self; /* JOIN: rank, pid, host, endpoints */
    char reason[WEIR__CLUSTER_REASON_MAX + 1]; /* REFUSE, FAILURE */
    /* TABLE: the caller's array of ranks_cap entries, filled with nranks. */
    struct weir__cluster_rank *ranks;
    unsigned ranks_cap, nranks;
    /* STATS (rank is the sender): the caller's array of chans_cap entries,
     * filled with nchans (at most WEIR__CLUSTER_STATS_MAX), and of
     * links_cap entries, filled with nlinks (at most WEIR__CLUSTER_LINKS_MAX). */
    struct weir__cluster_chan_stat *chans;
    unsigned chans_cap, nchans;
    struct weir__cluster_link_stat *links;
    unsigned links_cap, nlinks;
    /* STATS: and of actors_cap entries, filled with nactors (at most
     * WEIR__CLUSTER_ACTORS_MAX). */
    struct weir__cluster_actor_stat *actors;
    unsigned actors_cap, nactors;
    uint64_t at_ns; /* STATS: the sender's CLOCK_MONOTONIC when it took the counters */
};

/*
 * Encode m into a new buffer: 0 with *out (malloc'd: the caller frees) and
 * *len, or -EINVAL (a field out of range) / -ENOMEM, with weir_errmsg().
 */
int weir__cluster_msg_encode(const struct weir__cluster_msg *m, uint8_t **out, size_t *len);

/*
 * Verify buf[0..len) and fill *out (its ranks / ranks_cap, chans /
 * chans_cap, links / links_cap and actors / actors_cap are kept: a TABLE
 * with more than ranks_cap ranks, a STATS with more than chans_cap
 * channels, links_cap links or actors_cap actors, is refused). Trusts nothing: size,
 * identifier "WCLU", the FlatBuffers verifier, then every field's range;
 * strings are copied into the fixed arrays (nothing is allocated at a size
 * the peer chose). 0, or -EBADMSG (not a verified weir control message) /
 * -EPROTO (a field out of range) with one line in weir_errmsg(). A version
 * mismatch is not judged here.
 */
int weir__cluster_msg_decode(const uint8_t *buf, size_t len, struct weir__cluster_msg *out);

#endif
