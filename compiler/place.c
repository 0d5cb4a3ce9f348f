/* SPDX-License-Identifier: MIT */
/*
 * compiler/place.c - where a plan's channels live across ranks (several
 * machines, SPMD).
 *
 * Design notes. Placement is a pure function of the plan: an actor runs on
 * rank plan_actor.node, the driver on rank 0. A channel is written on its
 * writer's rank; every other rank with at least one reader gets one link
 * (one receiving ring there, shared by all of that rank's readers: Ray's
 * one buffer per node) and the writer's ring gets one registered reader per
 * such rank (the link's sending end). Readers on the writer's rank read its
 * ring directly (shm). Nothing here is stored in the plan's FlatBuffers:
 * every rank derives the same answer from the same plan, the listing and
 * the JSON show it, and the JSON (hence the plan hash) carries it only for
 * a plan that spans ranks, so single-rank hashes are unchanged.
 */
#include <stdint.h>

#include "compiler/plan.h"

int32_t weir__plan_party_rank(const struct weir__plan *p, int32_t who)
{
    if (who == WEIR__PLAN_DRIVER || !p || who < 0 || (uint32_t)who >= p->nactors)
        return 0;
    return p->actors[who].node;
}

int32_t weir__plan_writer_rank(const struct weir__plan *p, uint32_t c)
{
    if (!p || c >= p->nchans)
        return 0;
    return weir__plan_party_rank(p, p->chans[c].writer);
}

uint32_t weir__plan_readers_on(const struct weir__plan *p, uint32_t c, int32_t rank)
{
    if (!p || c >= p->nchans || !p->chans[c].readers)
        return 0;
    uint32_t n = 0;
    for (uint32_t k = 0; k < p->chans[c].nreaders; k++)
        if (weir__plan_party_rank(p, p->chans[c].readers[k]) == rank)
            n++;
    return n;
}

int32_t weir__plan_nranks(const struct weir__plan *p)
{
    int32_t n = 1;
    for (uint32_t a = 0; p && p->actors && a < p->nactors; a++)
        if (p->actors[a].node >= n)
            n = p->actors[a].node + 1;
    return n;
}

uint32_t weir__plan_links_from(const struct weir__plan *p, uint32_t c)
{
    int32_t w = weir__plan_writer_rank(p, c), n = weir__plan_nranks(p);
    uint32_t links = 0;
    for (int32_t r = 0; r < n; r++)
        if (r != w && weir__plan_readers_on(p, c, r) > 0)
            links++;
    return links;
}
