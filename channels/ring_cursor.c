/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_cursor.c - the hooks of readers that keep their own cursor
 * (channels/ring_window.c: hold a window of messages, release up to a
 * sequence number or out of order). Declared in chan_internal.h; they read
 * and publish the handle's private reader state (channels/ring_handle.h).
 */
#include <errno.h>

#include "channels/barrier.h"
#include "channels/chan_internal.h"
#include "channels/err.h"
#include "channels/ring_handle.h"

struct weir__chan_ctl *weir__chan_ctl(const weir_chan *c)
{
    return c->ctl;
}

int weir__chan_gen_view(weir_chan *c, unsigned k, struct weir__gen_view *v)
{
    if (k >= WEIR_CHAN_MAX_GENS)
        return CHERR(c, -EBADMSG, "generation %u out of range", k);
    if (k > 0 && weir__ring_map_gen(c, k) < 0)
        return weir_errcode();
    const struct weir__gen_map *g = &c->gens[k];
    v->hdrs = g->hdrs;
    v->data = g->data;
    v->stride = g->stride;
    v->slot_bytes = g->slot_bytes;
    return 0;
}

int64_t weir__chan_reader_epoch(const weir_chan *c, int id)
{
    if (id < 0 || id >= WEIR_CHAN_MAX_READERS || !c->r[id].registered)
        return -1;
    return c->r[id].epoch;
}

void weir__chan_reader_publish(weir_chan *c, int id, uint64_t seq)
{
    struct weir__rstate *r = &c->r[id];
    r->seq = seq;
    r->idx = (unsigned)(seq % c->depth);
    /* Pair 1/2 as in weir_chan_release(). */
    weir__store_release(&c->ctl->readers[id].read_seq, seq);
    weir__light_barrier();
    weir__ring_wake_writer(c->ctl);
}

void weir__chan_kick_readers(weir_chan *c)
{
    weir__ring_wake_readers(c->ctl);
}
