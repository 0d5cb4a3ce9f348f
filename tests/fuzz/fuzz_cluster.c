/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_cluster.c - libFuzzer target for what the control plane
 * reads from the network: every control message (engine/cluster_codec.cc)
 * goes through weir__cluster_msg_decode before rank 0 or a rank looks at
 * it (engine/cluster.c).
 *
 * The first byte picks the receiver's world size (the TABLE capacity) and,
 * modulo WEIR__CLUSTER_STATS_MAX + 1, its room for STATS channels (and,
 * times 7 modulo WEIR__CLUSTER_LINKS_MAX + 1, for STATS links, and times 3
 * modulo WEIR__CLUSTER_ACTORS_MAX + 1, for STATS actors); the rest
 * is the message. An accepted message must satisfy every documented
 * invariant (a known kind, strings NUL-terminated within their arrays and
 * free of control bytes, counts within bounds) and re-encode; a refused one
 * must say why in one line, with -EBADMSG or -EPROTO only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weir/weir.h>

#include "engine/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct weir__cluster_rank ranks[256];
static struct weir__cluster_chan_stat chans[WEIR__CLUSTER_STATS_MAX];
static struct weir__cluster_chan_stat chans2[WEIR__CLUSTER_STATS_MAX];
static struct weir__cluster_link_stat links[WEIR__CLUSTER_LINKS_MAX];
static struct weir__cluster_link_stat links2[WEIR__CLUSTER_LINKS_MAX];
static struct weir__cluster_actor_stat actors[WEIR__CLUSTER_ACTORS_MAX];
static struct weir__cluster_actor_stat actors2[WEIR__CLUSTER_ACTORS_MAX];

static void check_str(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            __builtin_trap();
}

static void check_rank(const struct weir__cluster_rank *r)
{
    check_str(r->host, sizeof r->host);
    if (r->nep > WEIR__CLUSTER_MAX_EP)
        __builtin_trap();
    for (unsigned i = 0; i < r->nep; i++) {
        check_str(r->ep[i], sizeof r->ep[i]);
        if (!r->ep[i][0])
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned cap = data[0];
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    m.ranks = ranks;
    m.ranks_cap = cap;
    unsigned ccap = cap % (WEIR__CLUSTER_STATS_MAX + 1);
    m.chans = chans;
    m.chans_cap = ccap;
    unsigned lcap = cap * 7 % (WEIR__CLUSTER_LINKS_MAX + 1);
    m.links = links;
    m.links_cap = lcap;
    unsigned acap = cap * 3 % (WEIR__CLUSTER_ACTORS_MAX + 1);
    m.actors = actors;
    m.actors_cap = acap;
    int r = weir__cluster_msg_decode(data + 1, size - 1, &m);
    if (r < 0) {
        const char *e = weir_errmsg();
        if ((r != -EBADMSG && r != -EPROTO && r != -ENOMEM) || !e[0] || strchr(e, '\n'))
            __builtin_trap();
        return 0;
    }
    if (r != 0 || m.kind < 1 || m.kind > WEIR__CM_MAX || m.ranks != ranks || m.ranks_cap != cap ||
        m.chans != chans || m.chans_cap != ccap || m.links != links || m.links_cap != lcap ||
        m.actors != actors || m.actors_cap != acap)
        __builtin_trap();
    if (m.kind == WEIR__CM_STATS) {
        if (m.nchans > ccap || m.nchans > WEIR__CLUSTER_STATS_MAX)
            __builtin_trap();
        for (unsigned i = 0; i < m.nchans; i++) {
            const struct weir__cluster_chan_stat *c = &chans[i];
            check_str(c->st.name, sizeof c->st.name);
            if (c->st.nreaders > WEIR_CHAN_MAX_READERS || c->st.depth > WEIR_CHAN_MAX_DEPTH ||
                (c->st.closed != 0 && c->st.closed != 1))
                __builtin_trap();
            for (unsigned k = 0; k < c->st.nreaders; k++)
                if (c->who[k] < -2)
                    __builtin_trap();
        }
        if (m.nlinks > lcap || m.nlinks > WEIR__CLUSTER_LINKS_MAX)
            __builtin_trap();
        for (unsigned i = 0; i < m.nlinks; i++) {
            const struct weir_dag_link_stats *l = &links[i].st;
            check_str(l->peer, sizeof l->peer);
            if (l->rank != m.rank || l->peer_rank < 0 || l->peer_rank >= WEIR_MAX_RANKS ||
                (l->sending != 0 && l->sending != 1) || l->status > 0 || l->status < -4095)
                __builtin_trap();
        }
        if (m.nactors > acap || m.nactors > WEIR__CLUSTER_ACTORS_MAX)
            __builtin_trap();
        for (unsigned i = 0; i < m.nactors; i++)
            if (actors[i].nmethods > WEIR__CLUSTER_METHODS_MAX || actors[i].pid < 0)
                __builtin_trap();
    } else if (m.nchans || m.nlinks || m.nactors) {
        __builtin_trap();
    }
    if (m.token_len > WEIR__CLUSTER_TOKEN_MAX)
        __builtin_trap();
    check_str(m.reason, sizeof m.reason);
    check_rank(&m.self);
    if ((m.kind == WEIR__CM_REFUSE || m.kind == WEIR__CM_FAILURE) && (m.code >= 0 || m.code < -4095))
        __builtin_trap();
    if (m.kind == WEIR__CM_TABLE) {
        if (m.nranks > cap || m.nranks != (unsigned)m.world_size)
            __builtin_trap();
        for (unsigned i = 0; i < m.nranks; i++) {
            if (ranks[i].rank != (int32_t)i)
                __builtin_trap();
            check_rank(&ranks[i]);
        }
    } else if (m.nranks) {
        __builtin_trap();
    }
    /* What was accepted re-encodes and decodes to the same kind. */
    uint8_t *out;
    size_t len;
    if (weir__cluster_msg_encode(&m, &out, &len) != 0)
        __builtin_trap();
    struct weir__cluster_msg again;
    memset(&again, 0, sizeof again);
    static struct weir__cluster_rank ranks2[256];
    again.ranks = ranks2;
    again.ranks_cap = cap;
    again.chans = chans2;
    again.chans_cap = ccap;
    again.links = links2;
    again.links_cap = lcap;
    again.actors = actors2;
    again.actors_cap = acap;
    if (weir__cluster_msg_decode(out, len, &again) != 0 || again.kind != m.kind ||
        again.rank != m.rank || again.nranks != m.nranks || again.nchans != m.nchans ||
        again.nlinks != m.nlinks || again.nactors != m.nactors ||
        strcmp(again.reason, m.reason) != 0)
        __builtin_trap();
    for (unsigned i = 0; i < m.nchans; i++)
        if (chans2[i].chan != chans[i].chan || chans2[i].st.messages != chans[i].st.messages ||
            chans2[i].st.nreaders != chans[i].st.nreaders ||
            strcmp(chans2[i].st.name, chans[i].st.name) != 0)
            __builtin_trap();
    for (unsigned i = 0; i < m.nlinks; i++)
        if (memcmp(&links2[i], &links[i], sizeof links[i]) != 0)
            __builtin_trap();
    for (unsigned i = 0; i < m.nactors; i++)
        if (memcmp(&actors2[i], &actors[i], sizeof actors[i]) != 0)
            __builtin_trap();
    free(out);
    return 0;
}
