/* SPDX-License-Identifier: MIT */
/*
 * engine/remote.c - a dag across ranks (SPMD): every rank compiles the same
 * plan, creates only its own rings, joins the control plane
 * (engine/cluster.c) and carries every edge between two ranks on one link
 * connection per direction (channels/link.h). dag.c calls in at a few
 * points: weir__remote_check before the dag exists, weir__remote_chan_ring
 * and weir__remote_register while it creates the rings, weir__remote_start
 * once this rank's actors are ready, weir__remote_quiesce and
 * weir__remote_stop at teardown.
 *
 * Design notes.
 *
 * Rings. A channel has a ring on its writer's rank (the writer's own ring,
 * with one registered reader per remote rank that reads it: the sending
 * end of that rank's link) and one ring on every other rank with readers,
 * written by this rank's listener connection and shared by all the
 * readers there (Ray's one buffer per node). A rank with neither has no
 * ring (d->chans[c] NULL). Stream id = channel index + 1 on every link.
 *
 * Transports. Each channel has one (the compile option, or the value's
 * weir_node_transport, recorded in the plan); every connection, port and
 * published endpoint below exists once per transport, and a rank's
 * endpoints are published in transport order, one per transport it
 * listens on, so every rank finds the one it dials from the plan alone.
 * A transport this library lacks fails every rank's compile in
 * weir__remote_check, before the join, naming the first channel.
 *
 * Connections. A connection carries one sender's streams (link_conn.c
 * refuses a second sender), so a rank has one listener per rank that sends
 * to it, all on one shared port (weir__conn_port: one socket on
 * tcp://BIND:0, WEIR_BIND or the address that routes to the coordinator;
 * its acceptor hands each connection to the listener that carries the
 * streams its HELLO opens, and stream ids are channel indices, so unique).
 * The port is bound before the join, which publishes its one endpoint; the
 * table then tells every rank where to dial. A rank dials each rank it
 * sends to once, with all of its streams on that connection; past
 * WEIR__LINK_MAX_STREAMS (64, the HELLO's room) the channels between two
 * ranks over one transport are cut, in channel order, into groups of 64,
 * each on a connection of its own (group[]: every rank computes the same
 * from the plan, so the dialer of group g reaches the listener of group g
 * through the port, by the first stream its HELLO opens).
 *
 * Failure. The control plane watches every rank (heartbeats, bound
 * WEIR_HEARTBEAT_MS, default 2000); its FAILED event marks the dag dead
 * with a text naming the rank and the actors it hosted, then breaks this
 * rank's side of every link: the connections are freed (a dialer
 * deregisters its readers, so no local writer waits for a dead peer) and
 * every ring a listener wrote is closed, so every local reader and the
 * driver wake up. Links use the same bound as their timeout, so a cut
 * shorter than it resumes on both planes and fails nothing.
 *
 * Counters. Rank 0 sees every channel: weir_dag_chan_remote_stats answers
 * for a channel rank 0 has no ring of (written on rank W, read only on
 * ranks other than 0) with W's ring as W last reported it: every rank
 * sends rank 0, with every 4th heartbeat (heartbeat_ms / 2) and once more
 * when it is torn down, a STATS message with the counters of up to
 * WEIR__CLUSTER_STATS_MAX such rings it writes (taking turns past that).
 * Rank 0 accepts a channel's counters only from its writer's rank. The
 * same message carries up to WEIR__CLUSTER_LINKS_MAX of the rank's links
 * (all of them, taking turns past that); rank 0 keeps a link's report
 * only if the plan gives the sending rank that link (channel, number,
 * peer and direction), so weir_dag_link_remote_stats and rank 0's stats
 * segment show every link of the graph.
 *
 * Teardown. Rank 0 tears down as one rank does (the close cascades over
 * the links), then waits for every connection to end, frees them and
 * tears the cluster down, which is what weir_dag_join returns on. Other
 * ranks first break their listener side (their actors leave at once: the
 * driver has finished, or this rank leaves early and rank 0 learns it from
 * the cluster), then do the same.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weir/dag.h>

#include "channels/chan_internal.h"
#include "channels/err.h"
#include "channels/link.h"
#include "channels/link_codec.h"
#include "channels/transport.h"
#include "engine/cluster.h"
#include "engine/engine.h"
#include "engine/prof.h"

extern char **environ;

#define NT 2 /* transports: WEIR_TRANSPORT_URING, WEIR_TRANSPORT_ZMQ */

struct weir__remote {
    int rank, size;
    struct weir__cluster_env env;
    int hb_ms;
    int *link_rid;       /* [c * size + q]: reader id of c's link to rank q, or -1 */
    weir__conn_port *port[NT]; /* per transport: the one port its listeners share */
    unsigned ngroups;    /* connections per (transport, rank pair) at most (1 up to 64 channels) */
    unsigned *group;     /* [c * size + r]: the group (connection) of channel c's link to rank r */
    weir__conn **lst;    /* [SLOT(t, q, g)]: receives the streams of group g over transport t
                            written on q and read here */
    weir__conn **dial;   /* [SLOT(t, q, g)]: sends those written here, read on q */
    struct weir__cluster *cl;
    pthread_mutex_t mu;  /* lst, dial, broken, the last counters below */
    int broken;          /* the links were broken (failure or teardown) */
    /* The counters as they were when the links were broken (weir_dag_link_stats
     * goes on answering after a failure and in the final stats snapshot). */
    struct weir__conn_stream_stats *last_ss; /* [c * size + q]: c's stream to / from rank q */
    struct weir_link_stats *last_dial;       /* [SLOT(t, q, g)] */
    struct weir_link_stats *last_lst;        /* [SLOT(t, q, g)] */
    /* [2 * SLOT(t, q, g) + dir] (dir 1: dial): started, so its counters may be
     * read (its streams are declared before start only) */
    unsigned char *live;
    /* Rank 0: for each channel rank 0 has no ring of (rstats_at[c] >= 0: its
     * entry), its writer rank's ring as last reported (STATS); have once one
     * came. Only those channels take room (an entry is ~2 KB). */
    int *rstats_at;
    struct weir__cluster_chan_stat *rstats;
    unsigned char *rstats_have;
    unsigned stats_cursor; /* ranks != 0: where the next STATS starts (cluster thread) */
    /* Rank 0: the links of every other rank as last reported (STATS):
     * channel c's links on rank r are rlinks[rlinks_at[c * size + r] + k],
     * k < link_count(p, size, r, c); rlinks_have[] once one came. */
    unsigned *rlinks_at;
    struct weir_dag_link_stats *rlinks;
    unsigned char *rlinks_have;
    unsigned nrlinks;
    unsigned links_cursor; /* ranks != 0: the first link of the next STATS (cluster thread) */
    /* Rank 0: the actors of other ranks as last reported (ractors[a] for an
     * actor a with node != 0; ractors_have[a] once one came). */
    struct weir__cluster_actor_stat *ractors;
    unsigned char *ractors_have;
    unsigned actors_cursor; /* ranks != 0: where the next STATS's actors start */
};

/* Connections per rank pair: per transport (WEIR_TRANSPORT_URING, _ZMQ), one
 * per group of up to 64 channels. */
#define NSLOTS ((size_t)NT * (size_t)rm->size * rm->ngroups)
#define SLOT(t, q, g) (((size_t)(t) * (size_t)rm->size + (size_t)(q)) * rm->ngroups + (g))
/* The group of channel c's link to (dial) or from (listen) rank q. */
#define GROUP(c, r) (rm->group[(size_t)(c) * (size_t)rm->size + (size_t)(r)])

/* The heartbeat bound: WEIR_HEARTBEAT_MS, else the control plane's default. */
static int heartbeat_ms(int *out)
{
    const char *v = getenv("WEIR_HEARTBEAT_MS");
    *out = WEIR__CLUSTER_HEARTBEAT_MS;
    if (!v || !*v)
        return 0;
    char *end;
    long ms = strtol(v, &end, 10);
    if (*end || ms < 50 || ms > 3600000)
        return weir__seterr(-EINVAL, "cluster environment: WEIR_HEARTBEAT_MS=%s is not a "
                            "number of milliseconds in 50..3600000", v);
    *out = (int)ms;
    return 0;
}

/* Cut the channels from rank w to rank r over transport t into groups of
 * WEIR__LINK_MAX_STREAMS (the HELLO's room), in channel order: group[c *
 * size + r] for every channel c with readers on r != w. Sets ngroups. */
static int assign_groups(const struct weir__plan *p, struct weir__remote *rm)
{
    int size = rm->size;
    uint32_t *n = calloc((size_t)NT * (size_t)size * (size_t)size, sizeof *n);
    rm->group = calloc((size_t)(p->nchans ? p->nchans : 1) * (size_t)size, sizeof *rm->group);
    if (!n || !rm->group) {
        free(n);
        free(rm->group);
        rm->group = NULL;
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", p->graph);
    }
    rm->ngroups = 1;
    for (uint32_t c = 0; c < p->nchans; c++) {
        int32_t w = weir__plan_writer_rank(p, c);
        int t = p->chans[c].transport;
        if (w < 0 || t < 0 || t >= NT)
            continue;
        for (int32_t r = 0; r < size; r++) {
            if (r == w || !weir__plan_readers_on(p, c, r))
                continue;
            uint32_t k = n[((size_t)t * (size_t)size + (size_t)w) * (size_t)size + (size_t)r]++;
            unsigned g = k / WEIR__LINK_MAX_STREAMS;
            rm->group[(size_t)c * (size_t)size + (size_t)r] = g;
            if (g + 1 > rm->ngroups)
                rm->ngroups = g + 1;
        }
    }
    free(n);
    return 0;
}

/* The peer rank of channel c's link k on rank r (a rank writing c has one
 * sending link per other rank that reads it, in rank order; a rank reading
 * c that does not write it has one receiving link, from the writer's
 * rank), or -1 when r has no link k of c; *sending set. */
static int link_peer_on(const struct weir__plan *p, int size, int r, unsigned c, unsigned k,
                        int *sending)
{
    int32_t w = weir__plan_writer_rank(p, c);
    *sending = w == r;
    if (w < 0)
        return -1;
    if (w == r) {
        for (int q = 0; q < size; q++)
            if (q != r && weir__plan_readers_on(p, c, q) && k-- == 0)
                return q;
        return -1;
    }
    return k == 0 && weir__plan_readers_on(p, c, r) ? (int)w : -1;
}

/* Number of links of channel c on rank r. */
static unsigned link_count(const struct weir__plan *p, int size, int r, unsigned c)
{
    unsigned n = 0;
    int sending;
    while (link_peer_on(p, size, r, c, n, &sending) >= 0)
        n++;
    return n;
}

/* Rank 0's room for the other ranks' reports: rstats (the channels it has
 * no ring of) and rlinks (every link of ranks 1 .. size - 1). */
static int alloc_reports(const struct weir__plan *p, struct weir__remote *rm)
{
    unsigned nh = 0, nl = 0;
    size_t size = (size_t)rm->size;
    rm->rstats_at = malloc(p->nchans * sizeof *rm->rstats_at);
    rm->rlinks_at = calloc(p->nchans * size, sizeof *rm->rlinks_at);
    if (!rm->rstats_at || !rm->rlinks_at)
        return -ENOMEM;
    for (uint32_t c = 0; c < p->nchans; c++) {
        int32_t w = weir__plan_writer_rank(p, c);
        rm->rstats_at[c] = w > 0 && !weir__plan_readers_on(p, c, 0) ? (int)nh++ : -1;
        for (int r = 1; r < rm->size; r++) {
            rm->rlinks_at[c * size + (size_t)r] = nl;
            nl += link_count(p, rm->size, r, c);
        }
    }
    rm->nrlinks = nl;
    rm->rstats = calloc(nh ? nh : 1, sizeof *rm->rstats);
    rm->rstats_have = calloc(nh ? nh : 1, 1);
    rm->rlinks = calloc(nl ? nl : 1, sizeof *rm->rlinks);
    rm->rlinks_have = calloc(nl ? nl : 1, 1);
    rm->ractors = calloc(p->nactors ? p->nactors : 1, sizeof *rm->ractors);
    rm->ractors_have = calloc(p->nactors ? p->nactors : 1, 1);
    return rm->rstats && rm->rstats_have && rm->rlinks && rm->rlinks_have && rm->ractors &&
                   rm->ractors_have
               ? 0
               : -ENOMEM;
}

int weir__remote_check(const struct weir__plan *p, struct weir__remote **out)
{
    *out = NULL;
    struct weir__cluster_env e;
    if (weir__cluster_env_parse(environ, &e) < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        return weir__seterr(weir_errcode(), "graph '%s': %s", p->graph, why);
    }
    for (uint32_t a = 0; a < p->nactors; a++)
        if (p->actors[a].node >= e.size) {
            if (e.size == 1 && !e.size_var[0])
                return weir__seterr(-EINVAL,
                                    "graph '%s': actor '%s': node %d is not below the world size "
                                    "1 (not launched as several ranks: WEIR_WORLD_SIZE is unset)",
                                    p->graph, p->actors[a].name, p->actors[a].node);
            return weir__seterr(-EINVAL,
                                "graph '%s': actor '%s': node %d is not below the world size %d "
                                "(%s)",
                                p->graph, p->actors[a].name, p->actors[a].node, e.size,
                                e.size_var[0] ? e.size_var : "WEIR_WORLD_SIZE");
        }
    if (e.size <= 1)
        return 0;
    /* Every rank fails alike, before anything is joined, for a transport
     * this library lacks. */
    for (uint32_t c = 0; c < p->nchans; c++)
        if (weir__plan_links_from(p, c) && !weir__tp_get(p->chans[c].transport)) {
            char why[256];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            return weir__seterr(weir_errcode(), "graph '%s': channel '%s' crosses ranks over %s%s: "
                                "%s", p->graph, p->chans[c].name,
                                p->chans[c].transport == WEIR_TRANSPORT_ZMQ ? "zmq" : "uring",
                                p->chans[c].transport != p->transport ? " (weir_node_transport)"
                                                                      : "",
                                why);
        }
    struct weir__remote *rm = calloc(1, sizeof *rm);
    if (!rm)
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", p->graph);
    if (heartbeat_ms(&rm->hb_ms) < 0) {
        free(rm);
        return weir_errcode();
    }
    rm->env = e;
    rm->rank = e.rank;
    rm->size = e.size;
    if (assign_groups(p, rm) < 0) {
        free(rm);
        return weir_errcode();
    }
    size_t n = (size_t)(p->nchans ? p->nchans : 1) * (size_t)e.size;
    rm->link_rid = malloc(n * sizeof *rm->link_rid);
    rm->dial = calloc(NSLOTS, sizeof *rm->dial);
    rm->lst = calloc(NSLOTS, sizeof *rm->lst);
    rm->last_ss = calloc(n, sizeof *rm->last_ss);
    rm->last_dial = calloc(NSLOTS, sizeof *rm->last_dial);
    rm->last_lst = calloc(NSLOTS, sizeof *rm->last_lst);
    rm->live = calloc(2 * NSLOTS, 1);
    if (!rm->link_rid || !rm->dial || !rm->lst || !rm->last_ss || !rm->last_dial ||
        !rm->last_lst || !rm->live) {
        free(rm->group);
        free(rm->live);
        free(rm->link_rid);
        free(rm->dial);
        free(rm->lst);
        free(rm->last_ss);
        free(rm->last_dial);
        free(rm->last_lst);
        free(rm);
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", p->graph);
    }
    pthread_mutex_init(&rm->mu, NULL);
    if (e.rank == 0 && p->nchans && alloc_reports(p, rm) < 0) {
        weir__remote_free(rm);
        return weir__seterr(-ENOMEM, "graph '%s': out of memory", p->graph);
    }
    for (size_t i = 0; i < n; i++)
        rm->link_rid[i] = -1;
    *out = rm;
    return 0;
}

int weir__remote_rank(const struct weir__remote *rm)
{
    return rm ? rm->rank : 0;
}

int weir__remote_size(const struct weir__remote *rm)
{
    return rm ? rm->size : 1;
}

int weir__remote_chan_ring(const struct weir_dag *d, unsigned c)
{
    const struct weir__plan *p = d->plan;
    int32_t w = weir__plan_writer_rank(p, c);
    uint32_t here = weir__plan_readers_on(p, c, d->rank);
    if (w == d->rank)
        return (int)(here + weir__plan_links_from(p, c));
    return here ? (int)here : -1;
}

int weir__remote_register(struct weir_dag *d, unsigned c)
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    if (!rm || weir__plan_writer_rank(p, c) != rm->rank)
        return 0;
    for (int q = 0; q < rm->size; q++) {
        if (q == rm->rank || !weir__plan_readers_on(p, c, q))
            continue;
        int id = weir_chan_register_reader(d->chans[c]);
        if (id < 0)
            return id;
        rm->link_rid[(size_t)c * (size_t)rm->size + (size_t)q] = id;
    }
    return 0;
}

/* Break this rank's side of every link: free the connections (a dialer
 * deregisters its readers), then close every ring a listener wrote. Under
 * rm->mu; idempotent. */
static void break_links_locked(struct weir_dag *d)
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    if (rm->broken)
        return;
    rm->broken = 1;
    /* Keep the last counters of every connection and stream. */
    for (int t = 0; t < NT; t++)
        for (int q = 0; q < rm->size; q++)
            for (unsigned g = 0; g < rm->ngroups; g++)
                for (int dir = 0; dir < 2; dir++) {
                    size_t k = SLOT(t, q, g);
                    weir__conn *cn = dir ? rm->dial[k] : rm->lst[k];
                    if (!cn || !rm->live[2 * k + (size_t)dir])
                        continue;
                    rm->live[2 * k + (size_t)dir] = 0;
                    weir__conn_stats(cn, dir ? &rm->last_dial[k] : &rm->last_lst[k]);
                    for (unsigned c = 0; c < p->nchans; c++)
                        if (p->chans[c].transport == t && GROUP(c, dir ? q : rm->rank) == g)
                            weir__conn_stream_stats(cn, c + 1,
                                                    &rm->last_ss[(size_t)c * (size_t)rm->size +
                                                                 (size_t)q]);
                }
    for (int t = 0; t < NT; t++) {
        weir__conn_port_free(rm->port[t]); /* accepts nothing more; its listeners go on */
        rm->port[t] = NULL;
    }
    for (size_t k = 0; k < NSLOTS; k++) {
        weir__conn_free(rm->lst[k]);
        rm->lst[k] = NULL;
    }
    for (size_t k = 0; k < NSLOTS; k++) {
        weir__conn_free(rm->dial[k]);
        rm->dial[k] = NULL;
    }
    for (int q = 0; q < rm->size; q++) {
        /* readers the dialer never took over (a start that failed early) */
        for (unsigned c = 0; c < p->nchans; c++) {
            int *id = &rm->link_rid[(size_t)c * (size_t)rm->size + (size_t)q];
            if (*id >= 0 && d->chans[c] && weir__chan_reader_epoch(d->chans[c], *id) >= 0)
                weir_chan_deregister_reader(d->chans[c], *id);
            *id = -1;
        }
    }
    for (unsigned c = 0; c < p->nchans; c++)
        if (d->chans[c] && weir__plan_writer_rank(p, c) != rm->rank) {
            weir__chan_unreserve(d->chans[c]);
            weir_chan_close(d->chans[c]);
        }
}

/* "'b', 'c'" for the actors rank r hosts ("none" when it hosts none). */
static void actors_of(const struct weir__plan *p, int r, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (uint32_t a = 0; a < p->nactors && len < cap; a++)
        if (p->actors[a].node == r)
            len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", len ? ", " : "",
                                    p->actors[a].name);
    if (!buf[0])
        snprintf(buf, cap, "none");
}

static void on_cluster_event(void *ctx, int kind, int rank, int code, const char *msg)
{
    struct weir_dag *d = ctx;
    struct weir__remote *rm = d->remote;
    if (kind != WEIR__CLUSTER_EV_FAILED)
        return;
    char acts[256];
    actors_of(d->plan, rank, acts, sizeof acts);
    weir__dag_mark_dead(d, -1, "rank %d failed (%s); the actors it hosted: %s", rank, msg, acts);
    pthread_mutex_lock(&rm->mu);
    break_links_locked(d);
    /* Rank 0: the failed rank sends no more reports; its links as last
     * reported carry the failure rather than "running". */
    if (rm->rlinks_at && rank > 0 && rank < rm->size)
        for (unsigned c = 0; c < d->plan->nchans; c++) {
            unsigned at = rm->rlinks_at[(size_t)c * (size_t)rm->size + (size_t)rank];
            for (unsigned k = 0, n = link_count(d->plan, rm->size, rank, c); k < n; k++)
                if (rm->rlinks_have[at + k] && rm->rlinks[at + k].status == 0)
                    rm->rlinks[at + k].status = code < 0 ? code : -EHOSTDOWN;
        }
    pthread_mutex_unlock(&rm->mu);
}

/* ---- channel counters for rank 0 (STATS) ------------------------------------ */

/* Written on this rank, no ring on rank 0: rank 0 learns its counters from us. */
static int reported(const struct weir_dag *d, unsigned c)
{
    const struct weir__plan *p = d->plan;
    return d->chans[c] && weir__plan_writer_rank(p, c) == d->rank &&
           !weir__plan_readers_on(p, c, 0);
}

/* The plan's reader behind reader id `id` of channel c on this rank. */
static int32_t reader_who(const struct weir_dag *d, unsigned c, int id)
{
    if (d->drv_rid[c] == id)
        return -1;
    for (unsigned a = 0; a < d->plan->nactors; a++)
        if (d->actors[a].rid && d->actors[a].rid[c] == id)
            return (int32_t)a;
    return -2;
}

/* Ranks != 0, on the cluster's thread before each heartbeat (the rings and
 * the links' counters live until the cluster is closed): up to
 * WEIR__CLUSTER_STATS_MAX reported rings and WEIR__CLUSTER_LINKS_MAX of
 * this rank's links, each in turn past that. */
static void collect_stats(void *ctx, struct weir__cluster_stats *out)
{
    struct weir_dag *d = ctx;
    struct weir__remote *rm = d->remote;
    unsigned nch = d->plan->nchans, n = 0;
    out->at_ns = weir_now_ns();
    for (unsigned k = 0; k < nch && n < WEIR__CLUSTER_STATS_MAX; k++) {
        unsigned c = (rm->stats_cursor + k) % nch;
        if (!reported(d, c))
            continue;
        struct weir__cluster_chan_stat *e = &out->chans[n];
        if (weir_chan_stats(d->chans[c], &e->st) < 0)
            continue;
        e->chan = c;
        for (unsigned r = 0; r < e->st.nreaders && r < WEIR_CHAN_MAX_READERS; r++)
            e->who[r] = reader_who(d, c, e->st.readers[r].id);
        n++;
        if (n == WEIR__CLUSTER_STATS_MAX)
            rm->stats_cursor = (c + 1) % nch;
    }
    out->nchans = n;
    /* The links, numbered j in channel then link order; this message takes
     * the WEIR__CLUSTER_LINKS_MAX from links_cursor on (all, when fewer). */
    unsigned total = 0, nl = 0, j = 0;
    for (unsigned c = 0; c < nch; c++)
        total += weir__remote_nlinks(d, c);
    unsigned start = total ? rm->links_cursor % total : 0;
    for (unsigned c = 0; c < nch; c++)
        for (unsigned k = 0, m = weir__remote_nlinks(d, c); k < m; k++, j++) {
            if ((j + total - start) % total >= WEIR__CLUSTER_LINKS_MAX)
                continue;
            struct weir__cluster_link_stat *l = &out->links[nl];
            if (weir__remote_link_stats(d, c, k, &l->st) < 0)
                continue;
            l->index = k;
            nl++;
        }
    rm->links_cursor = total ? (start + WEIR__CLUSTER_LINKS_MAX) % total : 0;
    out->nlinks = nl;
    /* This rank's actors, WEIR__CLUSTER_ACTORS_MAX at a time, in turn. */
    unsigned nact = d->plan->nactors, na = 0;
    for (unsigned i = 0; i < nact && na < WEIR__CLUSTER_ACTORS_MAX; i++) {
        unsigned a = (rm->actors_cursor + i) % nact;
        const struct actor_rt *ar = &d->actors[a];
        struct weir_actor_stats as;
        if (ar->pa->node != d->rank || weir_dag_actor_stats(d, a, &as) < 0)
            continue;
        struct weir__cluster_actor_stat *e = &out->actors[na++];
        memset(e, 0, sizeof *e);
        e->actor = a;
        e->pid = as.pid;
        e->restarts = as.restarts;
        e->input_starved_ns = as.input_starved_ns;
        e->output_blocked_ns = as.output_blocked_ns;
        e->nmethods = ar->pa->nmethods < WEIR__CLUSTER_METHODS_MAX ? ar->pa->nmethods
                                                                   : WEIR__CLUSTER_METHODS_MAX;
        for (unsigned k = 0; ar->mctr && k < e->nmethods; k++) {
            e->methods[k].calls = weir__load_relaxed(&ar->mctr[k].calls);
            e->methods[k].errors = weir__load_relaxed(&ar->mctr[k].errors);
            e->methods[k].busy_ns = weir__load_relaxed(&ar->mctr[k].busy_ns);
        }
        if (na == WEIR__CLUSTER_ACTORS_MAX)
            rm->actors_cursor = (a + 1) % nact;
    }
    out->nactors = na;
}

/* Rank 0, on the cluster's thread: keep what rank `rank` reported of the
 * channels it writes and rank 0 has no ring of, and of its links; ignore
 * whatever the plan does not have there. */
static void on_stats(void *ctx, int rank, const struct weir__cluster_stats *s)
{
    struct weir_dag *d = ctx;
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    if (rank <= 0 || rank >= rm->size || !rm->rstats_at)
        return;
    pthread_mutex_lock(&rm->mu);
    for (unsigned i = 0; i < s->nchans; i++) {
        const struct weir__cluster_chan_stat *v = &s->chans[i];
        unsigned c = v->chan;
        if (c >= p->nchans || rm->rstats_at[c] < 0 || weir__plan_writer_rank(p, c) != rank)
            continue;
        struct weir__cluster_chan_stat *e = &rm->rstats[rm->rstats_at[c]];
        *e = *v;
        /* A reader is an actor of the sending rank, or someone else. */
        for (unsigned r = 0; r < e->st.nreaders && r < WEIR_CHAN_MAX_READERS; r++)
            if (e->who[r] >= 0 && ((unsigned)e->who[r] >= p->nactors ||
                                   p->actors[e->who[r]].node != rank))
                e->who[r] = -2;
        rm->rstats_have[rm->rstats_at[c]] = 1;
    }
    for (unsigned i = 0; i < s->nlinks; i++) {
        const struct weir__cluster_link_stat *l = &s->links[i];
        unsigned c = l->st.chan;
        int sending;
        if (c >= p->nchans ||
            link_peer_on(p, rm->size, rank, c, l->index, &sending) != l->st.peer_rank ||
            sending != l->st.sending)
            continue;
        unsigned at = rm->rlinks_at[(size_t)c * (size_t)rm->size + (size_t)rank] + l->index;
        rm->rlinks[at] = l->st;
        rm->rlinks[at].rank = rank;
        rm->rlinks_have[at] = 1;
    }
    for (unsigned i = 0; i < s->nactors; i++) {
        const struct weir__cluster_actor_stat *v = &s->actors[i];
        if (v->actor >= p->nactors || p->actors[v->actor].node != rank)
            continue; /* not an actor of that rank */
        rm->ractors[v->actor] = *v;
        rm->ractors[v->actor].at_ns = s->at_ns;
        if (rm->ractors[v->actor].nmethods > p->actors[v->actor].nmethods)
            rm->ractors[v->actor].nmethods = p->actors[v->actor].nmethods;
        rm->ractors_have[v->actor] = 1;
    }
    pthread_mutex_unlock(&rm->mu);
}

int weir__remote_actor_stats(const struct weir_dag *d, unsigned a,
                             struct weir__cluster_actor_stat *out)
{
    struct weir__remote *rm = d->remote;
    if (!rm || !rm->ractors || a >= d->plan->nactors || d->plan->actors[a].node == 0)
        return -ENOENT;
    pthread_mutex_lock(&rm->mu);
    int have = rm->ractors_have[a];
    if (have)
        *out = rm->ractors[a];
    pthread_mutex_unlock(&rm->mu);
    return have ? 0 : -ENOENT;
}

int weir__remote_chan_stats(const struct weir_dag *d, unsigned c, struct weir_chan_stats *st,
                            int32_t *who)
{
    struct weir__remote *rm = d->remote;
    if (!rm || !rm->rstats_at || c >= d->plan->nchans || rm->rstats_at[c] < 0)
        return -ENOENT;
    int have, k = rm->rstats_at[c];
    pthread_mutex_lock(&rm->mu);
    if ((have = rm->rstats_have[k]) != 0) {
        *st = rm->rstats[k].st;
        if (who)
            memcpy(who, rm->rstats[k].who, sizeof rm->rstats[k].who);
    }
    pthread_mutex_unlock(&rm->mu);
    return have ? 0 : -ENOENT;
}

static weir_link_opts link_opts(const struct weir_dag *d, int t)
{
    const struct weir__remote *rm = d->remote;
    return (weir_link_opts){.transport = t,
                            .token = rm->env.token_len ? rm->env.token : NULL,
                            .timeout_ms = rm->hb_ms};
}

/* Whether rank q writes a channel over transport t that rank r reads. */
static int sends_to(const struct weir__plan *p, int q, int r, int t)
{
    for (unsigned c = 0; c < p->nchans; c++)
        if (weir__plan_writer_rank(p, c) == q && weir__plan_readers_on(p, c, r) &&
            p->chans[c].transport == t)
            return 1;
    return 0;
}

/* Whether rank r listens on transport t: another rank sends it a channel over t. */
static int listens_on(const struct weir__plan *p, int size, int r, int t)
{
    for (int q = 0; q < size; q++)
        if (q != r && sends_to(p, q, r, t))
            return 1;
    return 0;
}

/* Which of rank r's published endpoints is its port for transport t: one
 * per transport it listens on, in transport order (every rank computes
 * the same from the plan). */
static unsigned endpoint_index(const struct weir__plan *p, int size, int r, int t)
{
    unsigned k = 0;
    for (int u = 0; u < t; u++)
        k += (unsigned)listens_on(p, size, r, u);
    return k;
}

/* The listeners: per transport, one per rank that sends here over it, with
 * every stream it writes over it and this rank reads, all on the
 * transport's one port; the ports' endpoints into ep[] in transport order.
 * Returns the number of endpoints (0 .. NT). */
static int start_listeners(struct weir_dag *d, char (*ep)[WEIR__CLUSTER_EP_MAX + 1])
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    int nep = 0;
    for (int t = 0; t < NT; t++) {
    weir_link_opts o = link_opts(d, t);
    for (int q = 0; q < rm->size; q++)
    for (unsigned g = 0; g < rm->ngroups; g++) {
        if (q == rm->rank || !sends_to(p, q, rm->rank, t))
            continue;
        int any = 0;
        for (unsigned c = 0; c < p->nchans && !any; c++)
            any = d->chans[c] && weir__plan_writer_rank(p, c) == q &&
                  p->chans[c].transport == t && GROUP(c, rm->rank) == g;
        if (!any)
            continue;
        if (!rm->port[t]) {
            char host[WEIR__CLUSTER_ADDR_MAX + 1];
            if (weir__cluster_bind_addr(&rm->env, host, sizeof host) < 0)
                return weir_errcode();
            char want[WEIR__CLUSTER_ADDR_MAX + 16];
            snprintf(want, sizeof want, "tcp://%s:0", host);
            weir__conn_port *pt = weir__conn_port_listen(want, &o);
            if (!pt)
                return weir_errcode();
            pthread_mutex_lock(&rm->mu);
            rm->port[t] = pt;
            pthread_mutex_unlock(&rm->mu);
        }
        weir__conn *cn = weir__conn_listen_on(rm->port[t], &o);
        if (!cn)
            return weir_errcode();
        pthread_mutex_lock(&rm->mu);
        rm->lst[SLOT(t, q, g)] = cn;
        pthread_mutex_unlock(&rm->mu);
        for (unsigned c = 0; c < p->nchans; c++)
            if (d->chans[c] && weir__plan_writer_rank(p, c) == q && p->chans[c].transport == t &&
                GROUP(c, rm->rank) == g)
                if (weir__conn_add_recv_stream(cn, c + 1, d->chans[c]) < 0)
                    return weir_errcode();
        if (weir__conn_start(cn) < 0)
            return weir_errcode();
        pthread_mutex_lock(&rm->mu);
        rm->live[2 * SLOT(t, q, g)] = 1;
        pthread_mutex_unlock(&rm->mu);
    }
    if (!rm->port[t])
        continue;
    if (weir__conn_port_start(rm->port[t]) < 0)
        return weir_errcode();
    snprintf(ep[nep++], WEIR__CLUSTER_EP_MAX + 1, "%s", weir__conn_port_endpoint(rm->port[t]));
    }
    return nep;
}

/* Per transport, one dialer per rank this rank sends to over it, all
 * those streams on it. */
static int start_dialers(struct weir_dag *d)
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    for (int t = 0; t < NT; t++)
    for (int q = 0; q < rm->size; q++)
    for (unsigned g = 0; g < rm->ngroups; g++) {
        if (q == rm->rank)
            continue;
        int any = 0;
        for (unsigned c = 0; c < p->nchans && !any; c++)
            any = rm->link_rid[(size_t)c * (size_t)rm->size + (size_t)q] >= 0 &&
                  p->chans[c].transport == t && GROUP(c, q) == g;
        if (!any)
            continue;
        const char *ep = weir__cluster_endpoint(rm->cl, q, endpoint_index(p, rm->size, q, t));
        if (!ep)
            return weir__seterr(-EPROTO, "rank %d published no data endpoint for %s, but it "
                                "reads channels written here over it", q,
                                t == WEIR_TRANSPORT_ZMQ ? "zmq" : "uring");
        weir_link_opts o = link_opts(d, t);
        weir__conn *cn = weir__conn_dial(ep, &o);
        if (!cn)
            return weir_errcode();
        /* The readers this connection takes over, taken from link_rid under
         * the lock: a failure on the cluster thread (break_links_locked) may
         * come at any moment of the start, which can block for a while in
         * the dial, and must neither deregister them nor free a connection
         * still being started. So the connection is published in dial[]
         * only once started; if the links were broken meanwhile, it is
         * freed here instead (which gives its readers back). */
        int ids[p->nchans ? p->nchans : 1]; /* the readers it takes over, by channel; -1: none */
        pthread_mutex_lock(&rm->mu);
        int broken = rm->broken;
        for (unsigned c = 0; c < p->nchans; c++) {
            int *id = &rm->link_rid[(size_t)c * (size_t)rm->size + (size_t)q];
            ids[c] = -1;
            if (broken || *id < 0 || p->chans[c].transport != t || GROUP(c, q) != g)
                continue;
            ids[c] = *id;
            *id = -1; /* this start owns it now */
        }
        pthread_mutex_unlock(&rm->mu);
        if (broken)
            goto broken;
        int rc = 0;
        for (unsigned c = 0; c < p->nchans; c++) {
            int id = ids[c];
            if (id < 0)
                continue;
            if (rc == 0 && (rc = weir__conn_add_send_stream(cn, c + 1, d->chans[c], id)) == 0)
                continue; /* the connection owns it */
            if (weir__chan_reader_epoch(d->chans[c], id) >= 0) /* not handed over */
                weir_chan_deregister_reader(d->chans[c], id);
        }
        char why[512];
        if (rc == 0 && (rc = weir__conn_start(cn)) < 0) {
            snprintf(why, sizeof why, "%s", weir_errmsg());
            rc = weir__seterr(rc, "link to %s: %s", weir__cluster_describe(rm->cl, q), why);
        }
        if (rc < 0) {
            snprintf(why, sizeof why, "%s", weir_errmsg());
            weir__conn_free(cn);
            return weir__seterr(rc, "%s", why);
        }
        pthread_mutex_lock(&rm->mu);
        broken = rm->broken;
        if (!broken) {
            rm->dial[SLOT(t, q, g)] = cn;
            rm->live[2 * SLOT(t, q, g) + 1] = 1;
        }
        pthread_mutex_unlock(&rm->mu);
        if (broken) /* broken while it started: nobody else frees it */
            goto broken;
        continue;
    broken:
        weir__conn_free(cn);
        return weir__seterr(-ECANCELED, "link to %s: the dag failed while it started",
                            weir__cluster_describe(rm->cl, q));
    }
    return 0;
}

int weir__remote_start(struct weir_dag *d)
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    char ep[NT][WEIR__CLUSTER_EP_MAX + 1] = {""};
    const char *eps[NT] = {ep[0], ep[1]};
    int rc = start_listeners(d, ep);
    if (rc < 0)
        goto fail;
    struct weir__cluster_opts co = {
        .rank = rm->rank,
        .size = rm->size,
        .coord = rm->env.coord,
        .token = rm->env.token,
        .token_len = rm->env.token_len,
        .plan_hash = weir__plan_hash(p),
        .endpoints = eps,
        .nendpoints = (unsigned)rc,
        .timeout_ms = p->timeout_ms,
        .heartbeat_ms = rm->hb_ms,
        .on_event = on_cluster_event,
        .collect = collect_stats,
        .on_stats = on_stats,
        .ctx = d,
    };
    rm->cl = weir__cluster_open(&co);
    if (!rm->cl) {
        rc = weir_errcode();
        goto fail;
    }
    if ((rc = start_dialers(d)) < 0)
        goto fail;
    /* The ready barrier across ranks: every rank's actors ran init and its
     * links are up. */
    if ((rc = weir__cluster_barrier(rm->cl, p->timeout_ms)) < 0)
        goto fail;
    return 0;
fail:;
    char why[768];
    snprintf(why, sizeof why, "%s", weir_errmsg());
    return weir__seterr(rc, "graph '%s': rank %d: %s", p->graph, rm->rank, why);
}

void weir__remote_quiesce(struct weir_dag *d)
{
    struct weir__remote *rm = d->remote;
    if (!rm || rm->rank == 0)
        return;
    pthread_mutex_lock(&rm->mu);
    break_links_locked(d);
    pthread_mutex_unlock(&rm->mu);
}

int weir__remote_stop(struct weir_dag *d, uint64_t deadline)
{
    struct weir__remote *rm = d->remote;
    if (!rm)
        return 0;
    /* Rank 0: let every connection finish what the close cascade sent. */
    for (;;) {
        int busy = 0;
        pthread_mutex_lock(&rm->mu);
        if (!rm->broken)
            for (size_t k = 0; k < NSLOTS && !busy; k++)
                if ((rm->lst[k] && weir__conn_status(rm->lst[k]) == 0) ||
                    (rm->dial[k] && weir__conn_status(rm->dial[k]) == 0))
                    busy = 1;
        pthread_mutex_unlock(&rm->mu);
        if (!busy || weir_now_ns() >= deadline)
            break;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&rm->mu);
    break_links_locked(d);
    pthread_mutex_unlock(&rm->mu);
    int rc = 0;
    if (rm->cl) {
        uint64_t now = weir_now_ns();
        int ms = deadline == UINT64_MAX ? -1
                 : deadline > now      ? (int)((deadline - now) / 1000000ull) + 1000
                                       : 1000;
        rc = weir__cluster_close(rm->cl, ms);
        rm->cl = NULL;
    }
    return rc;
}

void weir__remote_free(struct weir__remote *rm)
{
    if (!rm)
        return;
    pthread_mutex_destroy(&rm->mu);
    free(rm->rstats_at);
    free(rm->rstats);
    free(rm->rstats_have);
    free(rm->rlinks_at);
    free(rm->rlinks);
    free(rm->rlinks_have);
    free(rm->ractors);
    free(rm->ractors_have);
    free(rm->group);
    free(rm->live);
    free(rm->last_ss);
    free(rm->last_dial);
    free(rm->last_lst);
    free(rm->link_rid);
    free(rm->dial);
    free(rm->lst);
    free(rm);
}

WEIR_API int weir_dag_join(weir_dag *d, int timeout_ms)
{
    weir__clearerr();
    if (!d)
        return weir__seterr(-EINVAL, "weir_dag_join: NULL dag");
    struct weir__remote *rm = d->remote;
    const char *g = d->plan->graph;
    if (!rm || rm->rank == 0)
        return weir__seterr(-EINVAL, "graph '%s': weir_dag_join: this is rank 0, the driver "
                            "(execute there; weir_dag_join is for the other ranks)", g);
    uint64_t t0 = weir_now_ns();
    for (;;) {
        char buf[WEIR__CLUSTER_REASON_MAX + 1];
        if (weir__load_acquire(&d->dead) && weir__cluster_failed(rm->cl, buf, sizeof buf) == 0) {
            char msg[DEAD_MSG_MAX];
            pthread_mutex_lock(&d->dead_mu);
            snprintf(msg, sizeof msg, "%s", d->dead_msg);
            pthread_mutex_unlock(&d->dead_mu);
            /* A failure of this rank's own (an actor process died): tell
             * the others, whose executions then fail with it. */
            weir__cluster_report(rm->cl, -EPIPE, "rank %d: %s", rm->rank, msg);
            return weir__seterr(-EPIPE, "graph '%s': rank %d: %s", g, rm->rank, msg);
        }
        int slice = 50;
        if (timeout_ms >= 0) {
            uint64_t spent = (weir_now_ns() - t0) / 1000000ull;
            if (spent >= (uint64_t)timeout_ms)
                return weir__seterr(-ETIMEDOUT, "graph '%s': rank %d: the driver did not tear "
                                    "the dag down within %d ms", g, rm->rank, timeout_ms);
            if ((uint64_t)timeout_ms - spent < (uint64_t)slice)
                slice = (int)((uint64_t)timeout_ms - spent);
        }
        int wrc = weir__cluster_wait(rm->cl, slice);
        if (wrc == 0)
            return 0;
        if (wrc != -ETIMEDOUT) {
            char why[768];
            snprintf(why, sizeof why, "%s", weir_errmsg());
            return weir__seterr(wrc, "graph '%s': rank %d: %s", g, rm->rank, why);
        }
    }
}

/* ---- link counters ---------------------------------------------------------- */

/* The peer rank of channel c's link k on this rank (sending links first, in
 * rank order), or -1; *sending set. */
static int link_peer(const struct weir_dag *d, unsigned c, unsigned k, int *sending)
{
    return link_peer_on(d->plan, d->remote->size, d->remote->rank, c, k, sending);
}

unsigned weir__remote_nlinks(const struct weir_dag *d, unsigned c)
{
    if (!d || !d->remote || c >= d->plan->nchans)
        return 0;
    unsigned n = 0;
    int sending;
    while (link_peer(d, c, n, &sending) >= 0)
        n++;
    return n;
}

int weir__remote_link_stats(const struct weir_dag *d, unsigned c, unsigned k,
                            struct weir_dag_link_stats *st)
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    int sending = 0;
    int q = rm ? link_peer(d, c, k, &sending) : -1;
    if (q < 0)
        return weir__seterr(-ENOENT, "graph '%s': channel '%s' has %u link%s on rank %d, no link "
                            "%u", p->graph, p->chans[c].name, weir__remote_nlinks(d, c),
                            weir__remote_nlinks(d, c) == 1 ? "" : "s", d->rank, k);
    memset(st, 0, sizeof *st);
    st->chan = c;
    st->rank = rm->rank;
    st->peer_rank = q;
    st->sending = sending;
    /* The channels on the same connection: same direction, two ranks,
     * transport and group. */
    int from = sending ? rm->rank : q, to = sending ? q : rm->rank, t = p->chans[c].transport;
    unsigned g = GROUP(c, to);
    st->conn = g;
    for (unsigned x = 0; x < p->nchans; x++)
        if (weir__plan_writer_rank(p, x) == from && weir__plan_readers_on(p, x, to) &&
            p->chans[x].transport == t && GROUP(x, to) == g)
            st->conn_streams++;
    struct weir__conn_stream_stats ss;
    struct weir_link_stats cs;
    size_t slot = SLOT(t, q, g);
    pthread_mutex_lock(&rm->mu);
    weir__conn *cn = sending ? rm->dial[slot] : rm->lst[slot];
    if (!rm->live[2 * slot + (size_t)sending])
        cn = NULL; /* not started yet: its streams are still being declared */
    int have = 0;
    if (cn && weir__conn_stream_stats(cn, c + 1, &ss) == 0 && weir__conn_stats(cn, &cs) == 0)
        have = 1;
    if (!have) {
        /* Not started yet, or broken: the counters kept at the break (zeros before). */
        ss = rm->last_ss[(size_t)c * (size_t)rm->size + (size_t)q];
        cs = sending ? rm->last_dial[slot] : rm->last_lst[slot];
    }
    pthread_mutex_unlock(&rm->mu);
    st->status = ss.status;
    snprintf(st->peer, sizeof st->peer, "%s", cs.peer);
    st->messages = ss.messages;
    st->bytes = ss.bytes;
    st->acked = ss.acked;
    st->credit_stalls = ss.credit_stalls;
    st->frames = cs.frames;
    st->batches = cs.batches;
    st->stream_frames = ss.frames;
    st->stream_batches = ss.batches;
    st->reconnects = cs.reconnects;
    st->last_rtt_ns = cs.last_rtt_ns;
    return 0;
}

WEIR_API unsigned weir_dag_chan_nlinks(const weir_dag *d, unsigned i)
{
    return weir__remote_nlinks(d, i);
}

WEIR_API int weir_dag_link_stats(const weir_dag *d, unsigned i, unsigned k,
                                 struct weir_dag_link_stats *st)
{
    weir__clearerr();
    if (!d || !st || i >= d->plan->nchans)
        return weir__seterr(-EINVAL, "weir_dag_link_stats: channel %u out of range (%u)", i,
                            d ? d->plan->nchans : 0);
    return weir__remote_link_stats(d, i, k, st);
}

unsigned weir__remote_rlinks(const struct weir_dag *d, unsigned c)
{
    const struct weir__remote *rm = d ? d->remote : NULL;
    if (!rm || !rm->rlinks_at || c >= d->plan->nchans)
        return 0;
    unsigned n = 0;
    for (int r = 1; r < rm->size; r++)
        n += link_count(d->plan, rm->size, r, c);
    return n;
}

int weir__remote_rlink_stats(const struct weir_dag *d, unsigned c, unsigned k,
                             struct weir_dag_link_stats *st)
{
    struct weir__remote *rm = d->remote;
    const struct weir__plan *p = d->plan;
    unsigned n = weir__remote_rlinks(d, c);
    if (k >= n)
        return weir__seterr(-ENOENT, "graph '%s': channel '%s' has %u link%s on ranks other "
                            "than 0, no link %u", p->graph, p->chans[c].name, n,
                            n == 1 ? "" : "s", k);
    /* Rank r's links of c follow rank r - 1's, so link k is rank r's link kk. */
    int r = 1;
    unsigned kk = k, m;
    while ((m = link_count(p, rm->size, r, c)) <= kk) {
        kk -= m;
        r++;
    }
    unsigned at = rm->rlinks_at[(size_t)c * (size_t)rm->size + (size_t)r] + kk;
    pthread_mutex_lock(&rm->mu);
    int have = rm->rlinks_have[at];
    if (have)
        *st = rm->rlinks[at];
    pthread_mutex_unlock(&rm->mu);
    if (!have)
        return weir__seterr(-ENOENT, "graph '%s': channel '%s': rank %d has not reported its "
                            "link %u yet", p->graph, p->chans[c].name, r, kk);
    return 0;
}

WEIR_API unsigned weir_dag_chan_remote_nlinks(const weir_dag *d, unsigned i)
{
    return d && d->rank == 0 ? weir__remote_rlinks(d, i) : 0;
}

WEIR_API int weir_dag_link_remote_stats(const weir_dag *d, unsigned i, unsigned k,
                                        struct weir_dag_link_stats *st)
{
    weir__clearerr();
    if (!d || !st || i >= d->plan->nchans)
        return weir__seterr(-EINVAL, "weir_dag_link_remote_stats: channel %u out of range (%u)",
                            i, d ? d->plan->nchans : 0);
    if (d->rank != 0)
        return weir__seterr(-EINVAL, "graph '%s': channel '%s': weir_dag_link_remote_stats is "
                            "for rank 0 (this is rank %d)", d->plan->graph,
                            d->plan->chans[i].name, d->rank);
    return weir__remote_rlink_stats(d, i, k, st);
}
