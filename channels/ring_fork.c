/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_fork.c - the engine's hooks into a ring channel
 * (chan_internal.h): fork and restart of actor processes (taking over a
 * writer or a reader id where a dead process left it), shared positions,
 * cheap readiness checks, labels, dropping a reservation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weir/chan.h>

#include "channels/atomics.h"
#include "channels/chan_internal.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"

int weir__chan_unreserve(weir_chan *c)
{
    if (!c || !c->w.reserved)
        return c ? CHERR(c, -EINVAL, "unreserve without a reservation")
                 : weir__seterr(-EINVAL, "channel (null): unreserve");
    /* The slot was never published; a forward mark written by grow() stays
     * valid because the writer stays on the new generation. */
    c->w.reserved = 0;
    return 0;
}


/* Give an anonymous channel a readable name (stats, messages). */
void weir__chan_set_label(weir_chan *c, const char *label)
{
    snprintf(c->name, sizeof c->name, "%s", label);
    snprintf(c->ctl->name, sizeof c->ctl->name, "%s", label);
}

/* A forked child takes over a reader id registered by its parent (stats and
 * weir_chan_reap_dead_readers then follow the child's pid). */
int weir__chan_claim_reader(weir_chan *c, int id)
{
    if (!c || id < 0 || id >= WEIR_CHAN_MAX_READERS || !c->r[id].registered)
        return weir__seterr(-EINVAL, "channel: cannot claim reader %d", id);
    weir__store_relaxed(&c->ctl->readers[id].pid, (uint32_t)getpid());
    weir__store_relaxed(&c->ctl->readers[id].pid_start, weir__proc_start_time(getpid()));
    return 0;
}

/*
 * After a fork from a multi-threaded process (an actor restart), the
 * child's copy of the handle may hold a mutex some other thread had
 * locked; the child is single-threaded, so start it fresh.
 */
void weir__chan_after_fork(weir_chan *c)
{
    pthread_mutex_init(&c->gen_mu, NULL);
}

/*
 * In a forked child that will never use c: drop this process's mapping
 * and fd of the channel without touching shared state (no deregistration,
 * no wake-ups: the parent's handle is unaffected). c stays allocated but
 * is unusable afterwards except for weir_chan_free.
 */
void weir__chan_forget(weir_chan *c)
{
    if (!c)
        return;
    for (unsigned k = 1; k < WEIR_CHAN_MAX_GENS; k++) {
        if (c->gens[k].seg)
            munmap(c->gens[k].seg, c->gens[k].seg_bytes);
        c->gens[k].seg = NULL;
    }
    if (c->ctl)
        munmap(c->ctl, c->ctl_map_bytes);
    c->ctl = NULL;
    c->gens[0].seg = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->named = 0;
    for (int i = 0; i < WEIR_CHAN_MAX_READERS; i++)
        c->r[i].registered = 0;
}

/*
 * Take over the writer side from a process that died: rebuild the local
 * writer state from the shared one. A message it had reserved but not
 * committed is gone; a growth it had published stays (the forward mark and
 * the new generation are both in place).
 */
int weir__chan_writer_resync(weir_chan *c)
{
    struct weir__chan_ctl *ctl = c->ctl;
    unsigned gen = weir__load_acquire(&ctl->cur_gen);
    if (gen >= WEIR_CHAN_MAX_GENS)
        return CHERR(c, -EBADMSG, "corrupt current generation %u", gen);
    if (gen > 0 && weir__ring_map_gen(c, gen) < 0)
        return weir_errcode();
    c->w.seq = weir__load_acquire(&ctl->write_seq);
    c->w.idx = (unsigned)(c->w.seq % c->depth);
    c->w.gen = gen;
    c->w.g = &c->gens[gen];
    c->w.reserved = 0;
    c->w.rescan = 1;
    c->w.min_read = c->w.seq >= c->depth ? c->w.seq - c->depth : 0;
    c->w.mask = 0;
    return 0;
}

/* Take over reader `id` from a process that died: continue at its shared
 * position (the first message it had not released). */
int weir__chan_reader_resync(weir_chan *c, int id)
{
    if (id < 0 || id >= WEIR_CHAN_MAX_READERS)
        return CHERR(c, -EINVAL, "reader id %d out of range", id);
    return weir__ring_reader_sync(c, id);
}

/* Shared positions, for deciding where a restarted actor resumes. */
uint64_t weir__chan_write_seq(const weir_chan *c)
{
    return weir__load_acquire(&c->ctl->write_seq);
}
uint64_t weir__chan_read_seq(const weir_chan *c, int id)
{
    return weir__load_acquire(&c->ctl->readers[id].read_seq);
}

int weir__chan_slot_area(const weir_chan *c, int reader, void **data, size_t *bytes)
{
    if (!c || reader >= WEIR_CHAN_MAX_READERS)
        return weir__seterr(-EINVAL, "channel: slot area of reader %d", reader);
    const struct weir__gen_map *g = reader < 0 ? c->w.g : c->r[reader].g;
    if (!g || !g->data)
        return CHERR(c, -EINVAL, "slot area: %s %d maps no generation",
                     reader < 0 ? "writer" : "reader", reader);
    *data = g->data;
    *bytes = g->stride * c->depth;
    return 0;
}

/* Would weir_chan_read_msg return a message at once? (No clock, no error text.) */
int weir__chan_can_read(weir_chan *c, int id)
{
    struct weir__rstate *r = &c->r[id];
    if (!r->registered || r->held)
        return 0;
    if (r->seq < r->avail)
        return 1;
    r->avail = weir__load_acquire(&c->ctl->write_seq);
    return r->seq < r->avail;
}

void weir__chan_count_wait(weir_chan *c, int reader, uint64_t ns)
{
    if (reader >= 0 && reader < WEIR_CHAN_MAX_READERS)
        weir__counter_add(&c->ctl->readers[reader].starved_ns, ns);
    else if (reader < 0)
        weir__counter_add(&c->ctl->blocked_ns, ns);
}

void weir__chan_wait_word(const weir_chan *c, int writer_side, struct weir__wait_word *w)
{
    w->futex = writer_side ? &c->ctl->wr_futex : &c->ctl->rd_futex;
    w->sleepers = writer_side ? &c->ctl->wr_sleeping : &c->ctl->rd_sleepers;
}

/* Would weir_chan_reserve(len) succeed at once without growing? */
int weir__chan_can_reserve(weir_chan *c, size_t len)
{
    return c->writer && !c->w.reserved && !c->w.rescan && weir__ring_slot_free(c) &&
           len <= c->w.g->slot_bytes && !weir__load_relaxed(&c->ctl->closed);
}

