/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_window.c - hold a window of messages, release later
 * (channels/ring_window.h).
 *
 * Design notes.
 *
 * A plain reader holds one message: read_seq is "released" and the slot
 * of read_seq is the one held. A window reader keeps a private cursor
 * `next` ahead of the shared read_seq: every message in [read_seq, next)
 * is held. The writer cannot reuse a slot of [read_seq, read_seq + depth)
 * (layout.h), so every held slot stays intact until released, and the
 * cursor can never run more than depth messages ahead (the writer cannot
 * write them): the window needs no bound of its own.
 *
 * The cursor follows generations as a plain reader does (a FORWARD mark in
 * the slot moves it to the next generation). Old generations stay mapped
 * for the life of the handle, so held messages of an older generation stay
 * readable. rewind() finds the generation of a sequence number from the
 * generation table (the last one that started at or before it).
 *
 * Releases come from another thread than the taker (a link's receiver of
 * acks, the driver's weir_result_free): `released` is written only by the
 * releaser and read by anyone with acquire, and `next` only by the taker
 * (stored with release, so a releaser may bound its release by it); the
 * shared read_seq is published through ring.c's hook,
 * which wakes a sleeping writer (the same pairing as weir_chan_release).
 * Out-of-order releases set a bit per slot (and count them); the
 * contiguous prefix then advances read_seq. With no bit set, an in-order
 * release is one publish. The bitmap is depth bits, allocated at open.
 *
 * Waiting for data is the reader protocol of wait.h on the channel's
 * rd_futex through the channels' one wait loop (weir__ring_wait: spin,
 * yield, announce in rd_sleepers, heavy barrier, re-check, sleep). A kick
 * bumps rd_futex, so a waiter returns -EINTR. A writer's wake-up bumps it
 * too, and can land after the waiter found its message and began the next
 * wait: a window that needs no kicks (the driver's) clears `kicks`, else
 * such stray -EINTRs cost a return and halve its spin budget each time.
 */
#include "channels/ring_window.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"
#include "channels/wait.h"

static int werr(const struct weir__window *w, int code, const char *what)
{
    return weir__seterr(code, "channel '%s': window of reader %d: %s", weir_chan_name(w->c),
                        w->reader, what);
}

static int alive(const struct weir__window *w)
{
    return (weir__load_acquire(&w->ctl->active_mask) & (1ull << w->reader)) &&
           weir__load_relaxed(&w->ctl->readers[w->reader].epoch) == w->epoch;
}

uint64_t weir__window_released(const struct weir__window *w)
{
    return weir__load_acquire(&w->released);
}

uint64_t weir__window_taken(const struct weir__window *w)
{
    return weir__load_acquire(&w->next);
}

/* Put the cursor at seq, in the generation that holds it. */
static int set_cursor(struct weir__window *w, uint64_t seq)
{
    unsigned cur = weir__load_acquire(&w->ctl->cur_gen), gen = 0;
    for (unsigned k = 1; k <= cur && k < WEIR_CHAN_MAX_GENS; k++)
        if (weir__load_relaxed(&w->ctl->gens[k].start_seq) <= seq)
            gen = k;
    int r = weir__chan_gen_view(w->c, gen, &w->gv);
    if (r < 0)
        return r;
    w->gen = gen;
    w->idx = (unsigned)(seq % w->depth);
    weir__store_release(&w->next, seq);
    return 0;
}

int weir__window_rewind(struct weir__window *w, uint64_t seq)
{
    uint64_t rel = weir__load_acquire(&w->released);
    if (seq < rel || seq > w->next)
        return werr(w, -EINVAL, "rewind outside the held window");
    return set_cursor(w, seq);
}

int weir__window_open(struct weir__window *w, weir_chan *c, int reader)
{
    memset(w, 0, sizeof *w);
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): window");
    int64_t ep = weir__chan_reader_epoch(c, reader);
    if (ep < 0)
        return weir__seterr(-EINVAL, "channel '%s': window: reader %d is not registered here",
                            weir_chan_name(c), reader);
    w->c = c;
    w->ctl = weir__chan_ctl(c);
    w->reader = reader;
    w->epoch = (uint32_t)ep;
    w->depth = w->ctl->depth;
    w->spin_ns = WEIR__SPIN_NS;
    w->kicks = 1;
    w->done = calloc((w->depth + 63) / 64, sizeof *w->done);
    if (!w->done)
        return werr(w, -ENOMEM, "out of memory for the release bitmap");
    uint64_t seq = weir__load_acquire(&w->ctl->readers[reader].read_seq);
    w->released = seq;
    int r = set_cursor(w, seq);
    if (r < 0) {
        weir__window_fini(w);
        return r;
    }
    return 0;
}

void weir__window_fini(struct weir__window *w)
{
    free(w->done);
    w->done = NULL;
}

/* The message at w->next, which is committed. */
static int take(struct weir__window *w, weir_chan_msg *m)
{
    unsigned idx = w->idx;
    /* Acquire pairs with the writer's release of write_seq (loaded before). */
    uint64_t hw = w->gv.hdrs[idx].word;
    uint32_t flags = WEIR__HDR_FLAGS(hw);
    while (flags & WEIR__SLOT_FORWARD) {
        unsigned k = w->gen + 1;
        if (k >= WEIR_CHAN_MAX_GENS)
            return werr(w, -EBADMSG, "forward past the last generation");
        int r = weir__chan_gen_view(w->c, k, &w->gv);
        if (r < 0)
            return r;
        w->gen = k;
        hw = w->gv.hdrs[idx].word;
        flags = WEIR__HDR_FLAGS(hw);
    }
    uint64_t len = WEIR__HDR_LEN(hw);
    if (len > w->gv.slot_bytes)
        return werr(w, -EBADMSG, "corrupt slot length");
    m->data = w->gv.data + (size_t)idx * w->gv.stride;
    m->len = (size_t)len;
    m->seq = w->next;
    m->flags = flags & WEIR__SLOT_FLAGS_MASK;
    if (++w->idx == w->depth)
        w->idx = 0;
    weir__store_release(&w->next, w->next + 1);
    return 0;
}

int weir__window_ready(struct weir__window *w)
{
    if (w->next < w->avail)
        return 1;
    w->avail = weir__load_acquire(&w->ctl->write_seq);
    return w->next < w->avail || weir__load_acquire(&w->ctl->closed) || !alive(w);
}

int weir__window_drained(struct weir__window *w)
{
    if (w->next < weir__load_acquire(&w->ctl->write_seq) || !weir__load_acquire(&w->ctl->closed))
        return 0;
    /* closed is stored after the last commit: reload to be exact. */
    return w->next >= weir__load_acquire(&w->ctl->write_seq);
}

int weir__window_poll(struct weir__window *w, weir_chan_msg *m)
{
    if (w->next >= w->avail) {
        w->avail = weir__load_acquire(&w->ctl->write_seq);
        if (w->next >= w->avail) {
            if (!alive(w))
                return werr(w, -EINVAL, "reader was deregistered");
            if (weir__load_acquire(&w->ctl->closed)) {
                /* closed is stored after the last commit: reload to be exact. */
                w->avail = weir__load_acquire(&w->ctl->write_seq);
                if (w->next >= w->avail)
                    return weir__seterr(-EPIPE, "channel '%s': closed (window of reader %d took "
                                        "%llu messages)", weir_chan_name(w->c), w->reader,
                                        (unsigned long long)w->next);
            } else {
                return 0;
            }
        }
    }
    int r = take(w, m);
    return r < 0 ? r : 1;
}

/* The one wait policy of the channels (weir__ring_wait, channels/ring_wait.c)
 * around a window's condition: a message to take, or a kick (rd_futex bumped
 * with nothing new), which ends the wait with -EINTR. */
struct window_waiter {
    struct weir__ring_waiter base;
    struct weir__window *win;
    weir_chan_msg *m;
    uint32_t futex0; /* rd_futex when the wait began */
};

static int window_ready(struct weir__ring_waiter *bw)
{
    struct window_waiter *ww = (struct window_waiter *)bw;
    int r = weir__window_poll(ww->win, ww->m);
    if (r != 0)
        return r;
    if (ww->win->kicks && weir__load_acquire(bw->futex) != ww->futex0)
        return werr(ww->win, -EINTR, "woken without a message");
    return 0;
}

static int window_timed_out(struct weir__ring_waiter *bw, int timeout_ms)
{
    (void)timeout_ms;
    return werr(((struct window_waiter *)bw)->win, -ETIMEDOUT, "timed out waiting for a message");
}

int weir__window_next(struct weir__window *w, weir_chan_msg *m, int timeout_ms)
{
    struct weir__chan_ctl *ctl = w->ctl;
    uint32_t futex0 = weir__load_acquire(&ctl->rd_futex);
    int r = weir__window_poll(w, m);
    if (r != 0)
        return r < 0 ? r : 0;
    if (timeout_ms == 0)
        return werr(w, -ETIMEDOUT, "no message yet");
    /* A short uncounted poll first, as a plain reader's: most waits in a busy
     * pipeline end here, before the wait loop reads the clock. */
    for (int k = 0; k < 32; k++) {
        weir__cpu_relax();
        if ((r = weir__window_poll(w, m)) != 0)
            return r < 0 ? r : 0;
    }
    struct window_waiter ww = {
        .base = {.c = w->c,
                 .id = w->reader,
                 .futex = &ctl->rd_futex,
                 .sleepers = &ctl->rd_sleepers,
                 .spin_ns = &w->spin_ns,
                 .max_sleep_ns = UINT64_MAX,
                 .ready = window_ready,
                 .timed_out = window_timed_out},
        .win = w,
        .m = m,
        .futex0 = futex0,
    };
    uint64_t waited;
    r = weir__ring_wait(&ww.base, timeout_ms, &waited);
    /* Starved time, as a plain reader counts it (weir_chan_stats). */
    weir__counter_add(&ctl->readers[w->reader].starved_ns, waited);
    return r;
}

static void publish(struct weir__window *w, uint64_t rel)
{
    weir__store_release(&w->released, rel);
    weir__chan_reader_publish(w->c, w->reader, rel);
}

int weir__window_release_upto(struct weir__window *w, uint64_t seq, uint64_t taken)
{
    uint64_t rel = w->released;
    if (seq < rel || seq > taken)
        return werr(w, -EINVAL, "release_upto outside the held window");
    if (seq == rel)
        return 0;
    if (!w->marks) { /* nothing released out of order: no bit to clear or follow */
        publish(w, seq);
        return 0;
    }
    for (uint64_t s = rel; s < seq && w->marks; s++) { /* clear out-of-order marks now covered */
        unsigned i = (unsigned)(s % w->depth);
        if ((w->done[i / 64] >> (i % 64)) & 1) {
            w->done[i / 64] &= ~(1ull << (i % 64));
            w->marks--;
        }
    }
    /* marks just past seq extend the prefix */
    while (seq < taken && w->marks) {
        unsigned i = (unsigned)(seq % w->depth);
        if (!((w->done[i / 64] >> (i % 64)) & 1))
            break;
        w->done[i / 64] &= ~(1ull << (i % 64));
        w->marks--;
        seq++;
    }
    publish(w, seq);
    return 0;
}

int weir__window_release_one(struct weir__window *w, uint64_t seq, uint64_t taken)
{
    uint64_t rel = w->released;
    if (seq == rel && seq < taken && !w->marks) { /* in order: one store */
        publish(w, seq + 1);
        return 0;
    }
    unsigned i = (unsigned)(seq % w->depth);
    if (seq < rel || seq >= taken || ((w->done[i / 64] >> (i % 64)) & 1))
        return werr(w, -EINVAL, "release_one of a message not held");
    if (seq != rel) {
        w->done[i / 64] |= 1ull << (i % 64);
        w->marks++;
        return 0;
    }
    return weir__window_release_upto(w, seq + 1, taken);
}

void weir__window_kick(struct weir__window *w)
{
    weir__chan_kick_readers(w->c);
}
