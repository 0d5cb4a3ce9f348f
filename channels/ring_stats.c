/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_stats.c - a ring channel's shared counters as
 * weir_chan_stats (include/weir/stats.h). Any handle, in any process, at
 * any time: the counters are single-writer words read with atomic loads.
 */
#include <stdio.h>
#include <string.h>

#include <weir/chan.h>
#include <weir/stats.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"

WEIR_API int weir_chan_stats(const weir_chan *c, struct weir_chan_stats *st)
{
    weir__clearerr();
    if (!c || !st)
        return weir__seterr(-EINVAL, "channel: weir_chan_stats needs a channel and a buffer");
    const struct weir__chan_ctl *ctl = c->ctl;
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", c->name);
    /* errors first (pairs with the add after the record's publication), so
     * errors <= messages in every snapshot. */
    st->errors = weir__load_acquire(&ctl->errors);
    st->messages = weir__load_acquire(&ctl->write_seq);
    st->bytes = weir__load_relaxed(&ctl->bytes);
    st->writer_blocked_ns = weir__load_relaxed(&ctl->blocked_ns);
    unsigned gen = weir__load_acquire(&ctl->cur_gen);
    st->grows = gen;
    st->slot_bytes = ctl->gens[gen < WEIR_CHAN_MAX_GENS ? gen : 0].slot_bytes;
    st->depth = ctl->depth;
    st->closed = (int)weir__load_relaxed(&ctl->closed);
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    for (uint64_t m = mask; m; m &= m - 1) {
        int i = __builtin_ctzll(m);
        const struct weir__reader_line *rl = &ctl->readers[i];
        struct weir_chan_reader_stats *rs = &st->readers[st->nreaders++];
        rs->id = i;
        rs->pid = (int)rl->pid;
        rs->consumed = weir__load_relaxed(&rl->read_seq) - rl->start_seq;
        rs->starved_ns = weir__load_relaxed(&rl->starved_ns);
    }
    return 0;
}

