/* SPDX-License-Identifier: MIT */
/*
 * tests/mnode_rank.c - one rank of a compiled graph across ranks (the
 * nodes suite's multi-node dag tests), launched by weir-run (plain and
 * --netns) or mpirun. Public API only: every rank builds the same graph,
 * calls weir_compile(); rank 0 drives N pipelined executions and checks
 * every output against the value it computes itself, the others call
 * weir_dag_join(). One line per outcome on stdout, which the test checks.
 *
 *   mnode_rank SHAPE N ISO [FAULT ARG]
 *     SHAPE  chain | diamond | fanout | wide   (placement below, over the world size S)
 *     N      executions
 *     ISO    thread | process | mixed   (mixed: every other actor a process)
 *     FAULT  kill R     rank R's first actor SIGKILLs its process at execution N/2
 *            killdriver rank 0 SIGKILLs itself after N/2 results
 *            fail R     rank R's first actor fails execution N/2 (only that one)
 *            hash R     rank R builds another graph (one more actor)
 *            cut R      the test cuts rank R off for longer than the bound:
 *                       rank 0's executions must fail, the others' join too
 * MNODE_SAVE=PATH: rank 0 saves the plan there (weir-plan show reads it).
 * MNODE_THREADS=T: weir_compile_opts.threads (T workers on every rank).
 * MNODE_PACE_US=U: rank 0 sleeps U us after each result (a run that lasts).
 * MNODE_TRANSPORT=uring|zmq: weir_compile_opts.transport.
 * MNODE_EDGE_TRANSPORT=uring|zmq: chain: weir_node_transport on the input and
 *   every step's output (all of them cross ranks).
 * MNODE_COMPILE_FAILS=1: a failed compile is what the test expects (exit 0,
 *   so the launcher does not stop the other ranks before they print theirs).
 * MNODE_TOP=PATH: before weir_dag_free every rank runs `PATH --json -d 0.3
 *   PID` on itself (weir-top; its JSON on stdout, prefixed "rank R: top ").
 * Every rank prints, before weir_dag_free, a line per channel with a ring
 * here ("rank R: channel NAME M messages B bytes") and per link of it
 * ("rank R: link NAME send|recv rank Q: messages M bytes B acked A streams
 * S reconnects X status C frames F batches T rtt_ns N"), once every link's
 * acks caught up with what it carried (a receiving end acknowledges lazily,
 * within 1 ms of going idle) and every running link (either end) measured
 * a round trip (heartbeats), bounded by 2 s.
 * Rank 0 then prints every other rank's links as they reported them ("rank
 * 0: remote link NAME on rank R send|recv rank Q: ..." as above), once
 * each shows N messages acknowledged; another rank prints what asking for
 * them gives it ("rank R: remote links 0, -22: ..."). Every rank prints
 * "rank R: actor NAME pid P restarts X" per actor of the graph (pid 0: an
 * actor of another rank that this rank has no report of). With MNODE_TOP,
 * rank 0 waits 1.2 s more (one more report) before running weir-top.
 * Rank 0 prints "rank 0: started" once the first result arrived (a test
 * cuts a link after it).
 *
 * chain:   S+1 actors s0..sS, s_i on rank (i+1) % S; s_i(x) = 3x + i + 1.
 * diamond: src on rank 1 % S, left on 2 % S, right on 0, join on S-1;
 *          src(x) = (x+1, 2x), left(y) = y+10, right(z) = 3z, join(l, r, x) = (l^r) + x.
 * fanout:  src on rank 1 % S; c_i on rank i % S for i < max(S,2)+1 (two
 *          readers share a rank), c_i(y) = y*(i+2); outputs: src and every c_i.
 * wide:    src on rank 1 % S sends W channels (MNODE_WIDE, default 40, at
 *          most 128) to sink on rank 0: src.spreadG(x) = x + j for channels
 *          j = 32G .. 32G+31, sink.sumG adds group G up; an output per group.
 * Values are u64 (wrapping). Exit 0 when this rank saw what it expects.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "mnode_rank %d: ", weir_rank());                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

static int S, RANK;
static uint64_t N;
static int g_complete; /* rank 0: every execution done, none failed on purpose */
static const char *fault = "";
static int fault_rank = -1;

/* Actor state: index i (the function's constant) and whether it is the
 * first actor of the fault rank. */
struct st {
    unsigned i;
    int faulty;
};

static uint64_t in_u64(weir_call *c, unsigned i)
{
    size_t len;
    const void *p = weir_call_in(c, i, &len);
    uint64_t v = 0;
    if (p && len == 8)
        memcpy(&v, p, 8);
    return v;
}

static int out_u64(weir_call *c, unsigned i, uint64_t v)
{
    void *p = weir_call_out(c, i, 8);
    if (!p)
        return weir_call_fail(c, "no output space");
    memcpy(p, &v, 8);
    return 0;
}

/* Faults happen in the first actor placed on fault_rank. */
static int maybe_fault(weir_call *c, const struct st *s)
{
    if (!s->faulty || weir_call_exec(c) != N / 2)
        return 0;
    if (!strcmp(fault, "kill")) {
        printf("rank %d: killing itself at %" PRIu64 " ms\n", RANK, mono_ms());
        fflush(stdout);
        kill(getpid(), SIGKILL);
    }
    if (!strcmp(fault, "fail"))
        return weir_call_fail(c, "boom at execution %" PRIu64, weir_call_exec(c));
    return 0;
}

static int chain_step(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    if (rc)
        return rc;
    return out_u64(c, 0, in_u64(c, 0) * 3 + s->i + 1);
}

static int d_src(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    if (rc)
        return rc;
    uint64_t x = in_u64(c, 0);
    return out_u64(c, 0, x + 1) ? -1 : out_u64(c, 1, 2 * x);
}
static int d_left(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    return rc ? rc : out_u64(c, 0, in_u64(c, 0) + 10);
}
static int d_right(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    return rc ? rc : out_u64(c, 0, in_u64(c, 0) * 3);
}
static int d_join(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    return rc ? rc : out_u64(c, 0, (in_u64(c, 0) ^ in_u64(c, 1)) + in_u64(c, 2));
}
static int f_src(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    return rc ? rc : out_u64(c, 0, in_u64(c, 0) * 7 + 1);
}
static int f_cons(weir_call *c, void *state)
{
    struct st *s = state;
    int rc = maybe_fault(c, s);
    return rc ? rc : out_u64(c, 0, in_u64(c, 0) * (s->i + 2));
}

/* wide: src (rank 1) sends W channels (MNODE_WIDE, default 40, at most
 * 128) to sink (rank 0): src.spreadG emits channels 32G .. 32G+31 (x + j
 * for channel j), sink.sumG adds group G up; one output per group. Up to
 * 64 channels ride one connection; past that, 64 per connection. */
#define WIDE_GROUP 32u
static unsigned wide_w(void)
{
    const char *e = getenv("MNODE_WIDE");
    unsigned w = e ? (unsigned)atoi(e) : 40;
    return w < 1 ? 1 : w > 4 * WIDE_GROUP ? 4 * WIDE_GROUP : w;
}
static unsigned wide_n(unsigned g) /* channels of group g */
{
    unsigned w = wide_w(), lo = g * WIDE_GROUP;
    return w - lo < WIDE_GROUP ? w - lo : WIDE_GROUP;
}
static unsigned wide_group(weir_call *c) /* G of spreadG / sumG */
{
    const char *m = weir_call_method(c);
    return (unsigned)atoi(m + strcspn(m, "0123456789"));
}
static int w_spread(weir_call *c, void *state)
{
    unsigned g = wide_group(c);
    (void)state;
    if (weir_call_nout(c) != wide_n(g))
        return weir_call_fail(c, "%u outputs, want %u", weir_call_nout(c), wide_n(g));
    for (unsigned k = 0; k < wide_n(g); k++) {
        int rc = out_u64(c, k, in_u64(c, 0) + g * WIDE_GROUP + k);
        if (rc)
            return rc;
    }
    return 0;
}
static int w_sum(weir_call *c, void *state)
{
    unsigned g = wide_group(c);
    (void)state;
    if (weir_call_nin(c) != wide_n(g))
        return weir_call_fail(c, "%u inputs, want %u", weir_call_nin(c), wide_n(g));
    uint64_t s = 0;
    for (unsigned k = 0; k < wide_n(g); k++)
        s += in_u64(c, k);
    return out_u64(c, 0, s);
}

#define MAXA 16
static struct st states[MAXA];
static unsigned nact;
static int faulty_taken;

static weir_actor *actor(weir_graph *g, const char *name, int node, int iso)
{
    unsigned i = nact++;
    states[i].i = i;
    if (node == fault_rank && !faulty_taken && (!strcmp(fault, "kill") || !strcmp(fault, "fail"))) {
        states[i].faulty = 1;
        faulty_taken = 1;
    }
    weir_actor_opts o = {.state = &states[i], .node = node, .isolation = iso};
    weir_actor *a = weir_actor_new(g, name, &o);
    if (!a)
        DIE("actor %s: %s", name, weir_errmsg());
    return a;
}

/* Build SHAPE; returns the number of outputs. */
static unsigned build(weir_graph *g, const char *shape, const char *iso_s)
{
    int mixed = !strcmp(iso_s, "mixed"), proc = !strcmp(iso_s, "process");
#define ISO(k) ((proc || (mixed && (k) % 2)) ? WEIR_PROCESS : WEIR_THREAD)
    weir_node *in = weir_input(g, 0);
    if (!strcmp(shape, "chain")) {
        const char *et = getenv("MNODE_EDGE_TRANSPORT");
        int t = et && !strcmp(et, "zmq") ? WEIR_TRANSPORT_ZMQ : WEIR_TRANSPORT_URING;
        weir_node *x = in;
        if (et && weir_node_transport(x, t) < 0)
            DIE("weir_node_transport: %s", weir_errmsg());
        for (int i = 0; i <= S; i++) {
            char name[16];
            snprintf(name, sizeof name, "s%d", i);
            weir_actor *a = actor(g, name, (i + 1) % S, ISO(i));
            x = weir_bind(a, "step", chain_step, &x, 1, 1);
            if (et && weir_node_transport(x, t) < 0)
                DIE("weir_node_transport: %s", weir_errmsg());
        }
        weir_output(g, &x, 1);
        return 1;
    }
    if (!strcmp(shape, "diamond")) {
        weir_actor *src = actor(g, "src", 1 % S, ISO(0));
        weir_actor *left = actor(g, "left", 2 % S, ISO(1));
        weir_actor *right = actor(g, "right", 0, ISO(2));
        weir_actor *join = actor(g, "join", S - 1, ISO(3));
        weir_node *s = weir_bind(src, "split", d_src, &in, 1, 2);
        weir_node *l0 = weir_ret(s, 0), *r0 = weir_ret(s, 1);
        weir_node *l = weir_bind(left, "f", d_left, &l0, 1, 1);
        weir_node *r = weir_bind(right, "g", d_right, &r0, 1, 1);
        weir_node *j = weir_bind(join, "merge", d_join, (weir_node *[]){l, r, in}, 3, 1);
        weir_output(g, &j, 1);
        return 1;
    }
    if (!strcmp(shape, "fanout")) {
        weir_actor *src = actor(g, "src", 1 % S, ISO(0));
        weir_node *y = weir_bind(src, "emit", f_src, &in, 1, 1);
        weir_node *outs[MAXA];
        unsigned n = 0;
        outs[n++] = y;
        unsigned nc = (unsigned)(S > 2 ? S : 2) + 1;
        for (unsigned i = 0; i < nc; i++) {
            char name[16];
            snprintf(name, sizeof name, "c%u", i);
            weir_actor *a = actor(g, name, (int)(i % (unsigned)S), ISO(i + 1));
            outs[n++] = weir_bind(a, "mul", f_cons, &y, 1, 1);
        }
        weir_output(g, outs, n);
        return n;
    }
    if (!strcmp(shape, "wide")) {
        weir_actor *src = actor(g, "src", 1 % S, ISO(0));
        weir_actor *snk = actor(g, "sink", 0, ISO(1));
        unsigned ng = (wide_w() + WIDE_GROUP - 1) / WIDE_GROUP;
        weir_node *outs[4];
        for (unsigned j = 0; j < ng; j++) {
            char sp[16], su[16];
            snprintf(sp, sizeof sp, "spread%u", j);
            snprintf(su, sizeof su, "sum%u", j);
            weir_node *y = weir_bind(src, sp, w_spread, &in, 1, wide_n(j));
            weir_node *ys[WIDE_GROUP];
            for (unsigned k = 0; k < wide_n(j); k++)
                ys[k] = weir_ret(y, k);
            outs[j] = weir_bind(snk, su, w_sum, ys, wide_n(j), 1);
        }
        weir_output(g, outs, ng);
        return ng;
    }
    DIE("unknown shape %s", shape);
}

/* What rank 0 expects for argument x, output k. */
static uint64_t expect(const char *shape, uint64_t x, unsigned k)
{
    if (!strcmp(shape, "chain")) {
        for (int i = 0; i <= S; i++)
            x = x * 3 + (uint64_t)i + 1;
        return x;
    }
    if (!strcmp(shape, "diamond"))
        return (((x + 1) + 10) ^ (2 * x * 3)) + x;
    if (!strcmp(shape, "wide")) {
        uint64_t s = 0;
        for (unsigned j = 0; j < wide_n(k); j++)
            s += x + k * WIDE_GROUP + j;
        return s;
    }
    uint64_t y = x * 7 + 1;
    if (k == 0)
        return y;
    /* c_{k-1} is actor index k (src is 0) */
    return y * ((uint64_t)k + 2);
}

/* Channel c's name: from this rank's ring, else (rank 0) from its writer's
 * report. */
static const char *chan_name(weir_dag *d, unsigned c, char *buf, size_t cap)
{
    struct weir_chan_stats st;
    if (weir_dag_chan_stats(d, c, &st) == 0 || weir_dag_chan_remote_stats(d, c, &st) == 0)
        snprintf(buf, cap, "%s", st.name);
    else
        snprintf(buf, cap, "channel%u", c);
    return buf;
}

/* Every channel with a ring here and every link of it (see the header). */
static void print_links(weir_dag *d)
{
    unsigned nc = weir_dag_nchannels(d);
    for (int tries = 0; tries < 200; tries++) {
        int behind = 0;
        for (unsigned c = 0; c < nc; c++)
            for (unsigned k = 0; k < weir_dag_chan_nlinks(d, c); k++) {
                struct weir_dag_link_stats ls;
                if (weir_dag_link_stats(d, c, k, &ls) == 0 &&
                    (ls.acked < ls.messages || (ls.status == 0 && !ls.last_rtt_ns)))
                    behind = 1;
            }
        if (!behind)
            break;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    /* Rank 0 of a run that completed: the channels it has no ring of, once
     * their writers' reports (every heartbeat) show all N messages. */
    for (int tries = 0; RANK == 0 && g_complete && tries < 300; tries++) {
        int behind = 0;
        for (unsigned c = 0; c < nc; c++) {
            struct weir_chan_stats st;
            if (weir_dag_chan_stats(d, c, &st) < 0 &&
                (weir_dag_chan_remote_stats(d, c, &st) < 0 || st.messages < N))
                behind = 1;
        }
        if (!behind)
            break;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    /* Rank 0 of a run that completed: every other rank's links, once their
     * reports show every message acknowledged. */
    for (int tries = 0; RANK == 0 && g_complete && tries < 300; tries++) {
        int behind = 0;
        for (unsigned c = 0; c < nc; c++)
            for (unsigned k = 0; k < weir_dag_chan_remote_nlinks(d, c); k++) {
                struct weir_dag_link_stats ls;
                if (weir_dag_link_remote_stats(d, c, k, &ls) < 0 || ls.acked < N ||
                    ls.acked < ls.messages)
                    behind = 1;
            }
        if (!behind)
            break;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    for (unsigned c = 0; c < nc; c++)
        for (unsigned k = 0; k < weir_dag_chan_remote_nlinks(d, c); k++) {
            struct weir_dag_link_stats ls;
            char name[256];
            if (weir_dag_link_remote_stats(d, c, k, &ls) < 0) {
                printf("rank 0: remote link %u %u %d: %s\n", c, k, weir_errcode(),
                       weir_errmsg());
                continue;
            }
            printf("rank 0: remote link %s on rank %d %s rank %d: messages %" PRIu64
                   " bytes %" PRIu64 " acked %" PRIu64 " streams %u reconnects %" PRIu64
                   " status %d frames %" PRIu64 " batches %" PRIu64 " rtt_ns %" PRIu64
                   " conn %u sframes %" PRIu64 " sbatches %" PRIu64 "\n",
                   chan_name(d, c, name, sizeof name), ls.rank,
                   ls.sending ? "send" : "recv", ls.peer_rank, ls.messages, ls.bytes, ls.acked,
                   ls.conn_streams, ls.reconnects, ls.status, ls.frames, ls.batches,
                   ls.last_rtt_ns, ls.conn, ls.stream_frames, ls.stream_batches);
        }
    if (RANK != 0) {
        struct weir_dag_link_stats ls;
        int rc = weir_dag_link_remote_stats(d, 0, 0, &ls);
        printf("rank %d: remote links %u, %d: %s\n", RANK, weir_dag_chan_remote_nlinks(d, 0), rc,
               weir_errmsg());
    }
    for (unsigned c = 0; c < nc; c++) {
        struct weir_chan_stats st;
        if (weir_dag_chan_stats(d, c, &st) < 0) {
            printf("rank %d: channel %u %d: %s\n", RANK, c, weir_errcode(), weir_errmsg());
            if (weir_dag_chan_remote_stats(d, c, &st) == 0)
                printf("rank %d: remote channel %s %" PRIu64 " messages %" PRIu64 " bytes %u "
                       "readers\n", RANK, st.name, st.messages, st.bytes, st.nreaders);
            else if (RANK == 0)
                printf("rank 0: remote channel %u %d: %s\n", c, weir_errcode(), weir_errmsg());
            continue;
        }
        printf("rank %d: channel %s %" PRIu64 " messages %" PRIu64 " bytes\n", RANK, st.name,
               st.messages, st.bytes);
        for (unsigned k = 0; k < weir_dag_chan_nlinks(d, c); k++) {
            struct weir_dag_link_stats ls;
            if (weir_dag_link_stats(d, c, k, &ls) < 0) {
                printf("rank %d: link %s %u %d: %s\n", RANK, st.name, k, weir_errcode(),
                       weir_errmsg());
                continue;
            }
            printf("rank %d: link %s %s rank %d: messages %" PRIu64 " bytes %" PRIu64
                   " acked %" PRIu64 " streams %u reconnects %" PRIu64 " status %d frames %" PRIu64
                   " batches %" PRIu64 " rtt_ns %" PRIu64 " conn %u sframes %" PRIu64
                   " sbatches %" PRIu64 "\n",
                   RANK, st.name, ls.sending ? "send" : "recv", ls.peer_rank, ls.messages,
                   ls.bytes, ls.acked, ls.conn_streams, ls.reconnects, ls.status, ls.frames,
                   ls.batches, ls.last_rtt_ns, ls.conn, ls.stream_frames, ls.stream_batches);
        }
    }
    /* Every actor as this rank sees it (rank 0: the others' as reported). */
    for (unsigned a = 0; a < weir_dag_nactors(d); a++) {
        struct weir_actor_stats as;
        if (weir_dag_actor_stats(d, a, &as) == 0)
            printf("rank %d: actor %s pid %d restarts %u\n", RANK, as.name, as.pid,
                   as.restarts);
    }
    const char *top = getenv("MNODE_TOP");
    if (top && RANK == 0 && S > 1 && g_complete) {
        /* one more report from every rank, so their actors' calls are final */
        struct timespec ts = {1, 200000000L};
        nanosleep(&ts, NULL);
    }
    if (top) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s --json -d 0.3 %d | sed 's/^/rank %d: top /'", top,
                 (int)getpid(), RANK);
        fflush(stdout);
        if (system(cmd) != 0)
            printf("rank %d: weir-top failed\n", RANK);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4)
        DIE("usage: mnode_rank chain|diamond|fanout N thread|process|mixed [FAULT R]");
    RANK = weir_rank();
    S = weir_world_size();
    if (RANK < 0 || S < 1)
        DIE("%s", weir_errmsg());
    N = strtoull(argv[2], NULL, 10);
    if (argc >= 6) {
        fault = argv[4];
        fault_rank = atoi(argv[5]);
    }
    /* A fault test: the failure must be found by weir, not by weir-run's
     * stop of the surviving ranks (SIGTERM). */
    if (fault[0])
        signal(SIGTERM, SIG_IGN);
    const char *shape = argv[1];
    weir_graph *g = weir_graph_new(shape);
    unsigned nout = build(g, shape, argv[3]);
    if (!strcmp(fault, "hash") && RANK == fault_rank)
        actor(g, "extra", 0, WEIR_THREAD); /* an actor no other rank has */
    weir_compile_opts co = {.max_inflight = 8};
    if (getenv("MNODE_THREADS"))
        co.threads = atoi(getenv("MNODE_THREADS"));
    if (getenv("MNODE_DRIVER_WORKER")) /* rank 0's first worker runs in its driver */
        co.driver_worker = atoi(getenv("MNODE_DRIVER_WORKER"));
    if (getenv("MNODE_TRANSPORT"))
        co.transport = !strcmp(getenv("MNODE_TRANSPORT"), "zmq") ? WEIR_TRANSPORT_ZMQ
                                                                 : WEIR_TRANSPORT_URING;
    uint64_t t0 = mono_ms();
    weir_dag *d = weir_compile(g, &co);
    if (!d) {
        printf("rank %d: compile %d: %s\n", RANK, weir_errcode(), weir_errmsg());
        weir_graph_free(g);
        return !strcmp(fault, "hash") || getenv("MNODE_COMPILE_FAILS") ? 0 : 1;
    }
    printf("rank %d: compiled in %" PRIu64 " ms, plan %016" PRIx64 "\n", RANK, mono_ms() - t0,
           weir_dag_plan_hash(d));
    int bad = 0;
    if (RANK == 0 && getenv("MNODE_SAVE") && weir_dag_save_plan(d, getenv("MNODE_SAVE")) < 0)
        DIE("save plan: %s", weir_errmsg());
    if (RANK != 0) {
        uint64_t tj = mono_ms();
        int rc = weir_dag_join(d, 120000);
        if (rc == 0)
            printf("rank %d: joined\n", RANK);
        else
            printf("rank %d: join %d after %" PRIu64 " ms at %" PRIu64 " ms: %s\n", RANK, rc,
                   mono_ms() - tj, mono_ms(), weir_errmsg());
        bad = rc != 0 && strcmp(fault, "killdriver") != 0 && strcmp(fault, "cut") != 0;
        print_links(d);
    } else {
        unsigned pace = getenv("MNODE_PACE_US") ? (unsigned)atoi(getenv("MNODE_PACE_US")) : 0;
        uint64_t next = 0, done = 0, sum = 0, failed = 0;
        uint64_t t_last_ok = mono_ms();
        int stop = 0;
        while (done < N && !stop) {
            while (next < N && next - done < 8) {
                uint64_t x = next * 2654435761u, id;
                weir_buf b = {&x, 8};
                int rc = weir_submit(d, &b, 1, &id, 30000);
                if (rc < 0) {
                    printf("rank 0: submit %" PRIu64 " %d after %" PRIu64 " ms at %" PRIu64
                           " ms: %s\n", next, rc, mono_ms() - t_last_ok, mono_ms(),
                           weir_errmsg());
                    stop = 1;
                    break;
                }
                if (id != next)
                    DIE("submit gave id %" PRIu64 " for %" PRIu64, id, next);
                next++;
            }
            if (stop)
                break;
            weir_result *r;
            int rc = weir_wait(d, done, &r, 30000);
            if (rc < 0) {
                if (!strcmp(fault, "fail") && rc == -EREMOTEIO && done == N / 2) {
                    printf("rank 0: execution %" PRIu64 " %d: %s\n", done, rc, weir_errmsg());
                    failed++;
                    done++;
                    continue;
                }
                printf("rank 0: wait %" PRIu64 " %d after %" PRIu64 " ms at %" PRIu64 " ms: %s\n",
                       done, rc, mono_ms() - t_last_ok, mono_ms(), weir_errmsg());
                stop = 1;
                break;
            }
            uint64_t x = done * 2654435761u;
            if (weir_result_count(r) != nout)
                DIE("execution %" PRIu64 ": %u outputs", done, weir_result_count(r));
            for (unsigned k = 0; k < nout; k++) {
                size_t len;
                const void *p = weir_result_data(r, k, &len);
                uint64_t v;
                if (len != 8)
                    DIE("execution %" PRIu64 " output %u: %zu bytes", done, k, len);
                memcpy(&v, p, 8);
                if (v != expect(shape, x, k))
                    DIE("execution %" PRIu64 " output %u: %" PRIu64 ", expected %" PRIu64, done,
                        k, v, expect(shape, x, k));
                sum += v;
            }
            weir_result_free(r);
            t_last_ok = mono_ms();
            if (done == 0)
                printf("rank 0: started\n");
            done++;
            if (pace) {
                struct timespec ts = {(time_t)(pace / 1000000u), (long)(pace % 1000000u) * 1000L};
                nanosleep(&ts, NULL);
            }
            if (!strcmp(fault, "killdriver") && done == N / 2) {
                printf("rank 0: killing itself at %" PRIu64 " ms\n", mono_ms());
                fflush(stdout);
                kill(getpid(), SIGKILL);
            }
        }
        printf("rank 0: %" PRIu64 " executions checked, %" PRIu64 " failed, sum %016" PRIx64
               "\n", done - failed, failed, sum);
        if (!strcmp(fault, "") || !strcmp(fault, "fail"))
            bad = done != N;
        g_complete = !strcmp(fault, "") && done == N;
        if (!strcmp(fault, "kill") || !strcmp(fault, "hash") || !strcmp(fault, "cut"))
            bad = !stop;
        print_links(d); /* the per-channel table, links included */
    }
    uint64_t tf = mono_ms();
    int rc = weir_dag_free(d);
    printf("rank %d: free %d in %" PRIu64 " ms%s%s\n", RANK, rc, mono_ms() - tf, rc ? ": " : "",
           rc ? weir_errmsg() : "");
    weir_graph_free(g);
    return bad;
}
