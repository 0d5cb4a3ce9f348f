/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_io.c - the ring channel's hot path: reserve / commit /
 * write, read / release, close (include/weir/chan.h).
 *
 * Design notes.
 *
 * Layout and sequence rules: channels/layout.h. Waiting: channels/wait.h and
 * the one wait loop in channels/ring_wait.c.
 *
 * Fast paths. The writer caches the minimum read_seq of the active readers
 * (`min_read`, as the Disruptor caches its gating sequence) and rescans
 * the reader lines only when the ring looks full or the active mask
 * changed. A reader caches write_seq (`avail`) and reloads it only when it
 * has consumed everything it saw. So in steady state each side touches the
 * other's line once per batch, not once per message.
 *
 * Memory ordering, the three pairs:
 *  1. Data: the writer fills the slot, then publishes write_seq with a
 *     release store; a reader loads write_seq with acquire before it
 *     touches the slot. Symmetrically a reader's release of read_seq pairs
 *     with the writer's acquire loads in rescan() before slot reuse.
 *  2. Sleep/wake (Dekker): a sleeper announces itself (rd_sleepers++ or
 *     wr_sleeping++, in ring_wait.c), issues a heavy barrier and then re-checks the
 *     condition; the other side publishes progress, issues a light barrier
 *     and then checks for an announced sleeper (channels/barrier.c). One of
 *     the two always sees the other, so no wake-up is lost, and nobody
 *     calls futex() unless someone sleeps.
 *  3. Registration vs. the writer's cached gate: a new reader sets its bit
 *     in active_mask, heavy barrier, then loads write_seq to pick its start;
 *     the writer, after publishing write_seq (light barrier), compares
 *     active_mask with its cached copy and rescans on change. By the same
 *     Dekker argument the writer notices the new reader before it can
 *     reuse the slot of the first message that reader will read.
 *
 * Failure cases: a reader process that dies keeps its bit set and would
 * block the writer forever; weir_chan_deregister_reader() (by id) or
 * weir_chan_reap_dead_readers() (by pid liveness) clear it and wake the
 * writer (ring_readers.c). A writer of a named channel that dies is noticed
 * by its waiting readers within WEIR__LIVENESS_NS (ring_life.c): -EPIPE
 * once they drained what it committed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <weir/chan.h>
#include <weir/stats.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/err.h"
#include "channels/probes.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"
#include "channels/wait.h"

/* ---- writer ------------------------------------------------------------- */

/* Recompute the gate from the reader lines. Pairs with the readers' release of read_seq. */
static void rescan(weir_chan *c)
{
    struct weir__chan_ctl *ctl = c->ctl;
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    uint64_t min = c->w.seq;
    for (uint64_t m = mask; m; m &= m - 1) {
        int i = __builtin_ctzll(m);
        uint64_t r = weir__load_acquire(&ctl->readers[i].read_seq);
        if (r < min)
            min = r;
    }
    c->w.mask = mask;
    c->w.min_read = min;
    c->w.rescan = 0;
}


static int space_ready(struct weir__ring_waiter *w)
{
    rescan(w->c);
    return weir__ring_slot_free(w->c);
}

static int space_timed_out(struct weir__ring_waiter *w, int timeout_ms)
{
    return CHERR(w->c, -ETIMEDOUT, "writer timed out after %d ms waiting for readers (message %llu)",
                 timeout_ms, (unsigned long long)w->c->w.seq);
}

/* Slow path: wait until slot w.seq % depth is released by every active reader. */
static int wait_for_space(weir_chan *c, int timeout_ms)
{
    rescan(c);
    if (weir__ring_slot_free(c))
        return 0;
    if (timeout_ms == 0)
        return CHERR(c, -ETIMEDOUT, "writer would block (ring full at message %llu)",
                     (unsigned long long)c->w.seq);
    struct weir__ring_waiter w = {
        .c = c,
        .id = -1,
        .futex = &c->ctl->wr_futex,
        .sleepers = &c->ctl->wr_sleeping,
        .spin_ns = &c->w.spin_ns,
        .max_sleep_ns = UINT64_MAX,
        .ready = space_ready,
        .timed_out = space_timed_out,
    };
    uint64_t waited;
    WEIR_PROBE2(writer_block, c->name, c->w.seq);
    int ret = weir__ring_wait(&w, timeout_ms, &waited);
    weir__counter_add(&c->ctl->blocked_ns, waited);
    WEIR_PROBE4(writer_wake, c->name, c->w.seq, waited, ret);
    return ret;
}

WEIR_API void *weir_chan_reserve(weir_chan *c, size_t len, int timeout_ms)
{
    if (__builtin_expect(!c || !c->writer || c->w.reserved || len > c->w.g->slot_bytes, 0)) {
        weir__clearerr();
        if (!c) {
            weir__seterr(-EINVAL, "channel (null): reserve");
            return NULL;
        }
        if (!c->writer) {
            CHERR(c, -EPERM, "this handle was opened for reading; only the creator writes");
            return NULL;
        }
        if (c->w.reserved) {
            CHERR(c, -EBUSY, "a message is already reserved; commit it first");
            return NULL;
        }
        if (len > WEIR_CHAN_MAX_SLOT) {
            CHERR(c, -EMSGSIZE, "message of %zu bytes exceeds the maximum %zu", len,
                  (size_t)WEIR_CHAN_MAX_SLOT);
            return NULL;
        }
    }
    if (__builtin_expect(weir__load_relaxed(&c->ctl->closed), 0)) {
        CHERR(c, -EPIPE, "closed");
        return NULL;
    }
    if (__builtin_expect(c->w.rescan || !weir__ring_slot_free(c), 0)) {
        if (wait_for_space(c, timeout_ms) < 0)
            return NULL;
    }
    if (__builtin_expect(len > c->w.g->slot_bytes, 0)) {
        if (weir__ring_grow(c, len) < 0)
            return NULL;
    }
    c->w.reserved = 1;
    c->w.reserved_len = len;
    WEIR_PROBE3(chan_reserve, c->name, c->w.seq, len);
    return c->w.g->data + (size_t)c->w.idx * c->w.g->stride;
}

static int commit_flags(weir_chan *c, size_t len, uint32_t flags)
{
    struct weir__chan_ctl *ctl = c->ctl;
    c->w.g->hdrs[c->w.idx].word = WEIR__HDR(len, flags);
    c->w.reserved = 0;
    c->w.seq++;
    if (++c->w.idx == c->depth)
        c->w.idx = 0;
    weir__counter_add(&ctl->bytes, len);
    /* Pairs 1-3: publish, then look at the control line. The store->load
     * order comes from the light barrier paired with the sleeper's or the
     * registering reader's heavy barrier (channels/barrier.c). */
    weir__store_release(&ctl->write_seq, c->w.seq);
    WEIR_PROBE4(chan_commit, c->name, c->w.seq - 1, len, flags);
    weir__light_barrier();
    if (__builtin_expect(weir__load_relaxed(&ctl->active_mask) != c->w.mask, 0))
        c->w.rescan = 1;
    if (__builtin_expect(weir__load_relaxed(&ctl->rd_sleepers) != 0, 0))
        weir__ring_wake_readers(ctl);
    return 0;
}

WEIR_API int weir_chan_commit(weir_chan *c, size_t len)
{
    if (__builtin_expect(!c || !c->w.reserved || len > c->w.reserved_len, 0)) {
        if (!c)
            return weir__seterr(-EINVAL, "channel (null): commit");
        if (!c->writer)
            return CHERR(c, -EPERM, "this handle was opened for reading; only the creator writes");
        if (!c->w.reserved)
            return CHERR(c, -EINVAL, "commit without a reserve");
        return CHERR(c, -EINVAL, "commit of %zu bytes but only %zu were reserved", len,
                     c->w.reserved_len);
    }
    return commit_flags(c, len, 0);
}

WEIR_API int weir_chan_write(weir_chan *c, const void *p, size_t len, int timeout_ms)
{
    void *dst = weir_chan_reserve(c, len, timeout_ms);
    if (!dst)
        return weir_errcode();
    if (len)
        memcpy(dst, p, len);
    return commit_flags(c, len, 0);
}

WEIR_API int weir_chan_write_error(weir_chan *c, const char *text, int timeout_ms)
{
    size_t n = text ? strnlen(text, 4095) : 0;
    char *dst = weir_chan_reserve(c, n + 1, timeout_ms);
    if (!dst)
        return weir_errcode();
    if (n)
        memcpy(dst, text, n);
    dst[n] = '\0';
    commit_flags(c, n + 1, WEIR_MSG_ERROR);
    /* Counted after the record is published: weir_chan_stats, in any process,
     * loads errors before write_seq, so it never reports more error records
     * than messages. An atomic add (error path only): exact even if the
     * writer role moves between processes (weir__chan_writer_resync). */
    weir__fetch_add(&c->ctl->errors, 1);
    return 0;
}

WEIR_API int weir_chan_close(weir_chan *c)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): close");
    if (!c->writer)
        return CHERR(c, -EPERM, "this handle was opened for reading; only the creator closes");
    if (c->w.reserved)
        return CHERR(c, -EBUSY, "close with a reserved, uncommitted message");
    /* Release, paired with the readers' acquire load of closed: a reader
     * that sees closed also sees every committed message. */
    weir__store_release(&c->ctl->closed, 1);
    weir__ring_wake_readers(c->ctl);
    /* And whoever waits for readers on the writer's word (weir_chan_wait_readers):
     * the bump orders after the closed store, so a sleeper that loaded the old
     * word value sees it change, one that loaded the new one sees closed. */
    weir__fetch_add(&c->ctl->wr_futex, 1);
    weir__futex_wake_all(&c->ctl->wr_futex);
    return 0;
}

WEIR_API int weir_chan_is_closed(const weir_chan *c)
{
    return c && weir__load_acquire(&c->ctl->closed) ? 1 : 0;
}

/* ---- reader ------------------------------------------------------------- */


static int data_ready(struct weir__ring_waiter *w)
{
    struct weir__chan_ctl *ctl = w->c->ctl;
    struct weir__rstate *r = &w->c->r[w->id];
    r->avail = weir__load_acquire(&ctl->write_seq);
    if (r->seq < r->avail)
        return 1;
    if (!weir__load_acquire(&ctl->closed))
        return 0;
    /* closed is stored after the last commit: reload to be exact. */
    r->avail = weir__load_acquire(&ctl->write_seq);
    if (r->seq < r->avail)
        return 1;
    return CHERR(w->c, -EPIPE, "closed (reader %d drained %llu messages)", w->id,
                 (unsigned long long)r->seq);
}

static int data_before_sleep(struct weir__ring_waiter *w)
{
    int ret = weir__ring_reader_check(w->c, w->id);
    return ret < 0 ? ret : weir__ring_writer_check(w->c, w->id);
}

static int data_timed_out(struct weir__ring_waiter *w, int timeout_ms)
{
    return CHERR(w->c, -ETIMEDOUT, "reader %d timed out after %d ms waiting for message %llu",
                 w->id, timeout_ms, (unsigned long long)w->c->r[w->id].seq);
}

/* Slow path: wait until write_seq > r->seq, or closed, or the writer died. */
static int wait_for_data(weir_chan *c, int reader, int timeout_ms)
{
    struct weir__chan_ctl *ctl = c->ctl;
    struct weir__rstate *r = &c->r[reader];
    int ret = weir__ring_reader_check(c, reader);
    if (ret < 0)
        return ret;
    /* A short uncounted poll first: most waits in a busy pipeline end here. */
    for (int k = 0; k < 32; k++) {
        weir__cpu_relax();
        r->avail = weir__load_acquire(&ctl->write_seq);
        if (r->seq < r->avail)
            return 0;
    }
    struct weir__ring_waiter w = {
        .c = c,
        .id = reader,
        .futex = &ctl->rd_futex,
        .sleepers = &ctl->rd_sleepers,
        .spin_ns = &r->spin_ns,
        /* A dead writer wakes nobody: look at it between bounded sleeps. */
        .max_sleep_ns = weir__ring_writer_watched(c) ? WEIR__LIVENESS_NS : UINT64_MAX,
        .ready = data_ready,
        .before_sleep = data_before_sleep,
        .timed_out = data_timed_out,
    };
    uint64_t waited;
    WEIR_PROBE3(reader_block, c->name, reader, r->seq);
    ret = weir__ring_wait(&w, timeout_ms, &waited);
    /* Removed while waiting (force-deregistered): no message on a dead id. */
    if (ret == 0)
        ret = weir__ring_reader_check(c, reader);
    struct weir__reader_line *rl = &ctl->readers[reader];
    weir__counter_add(&rl->starved_ns, waited);
    WEIR_PROBE5(reader_wake, c->name, reader, r->seq, waited, ret);
    return ret;
}

WEIR_API int weir_chan_read_msg(weir_chan *c, int reader, weir_chan_msg *m, int timeout_ms)
{
    if (__builtin_expect(!c || reader < 0 || reader >= WEIR_CHAN_MAX_READERS ||
                             !c->r[reader].registered || c->r[reader].held || !m ||
                             weir__load_relaxed(&c->ctl->readers[reader].epoch) !=
                                 c->r[reader].epoch,
                         0)) {
        weir__clearerr();
        int ret = weir__ring_reader_check(c, reader);
        if (ret < 0)
            return ret;
        if (!m)
            return CHERR(c, -EINVAL, "reader %d: NULL message pointer", reader);
        return CHERR(c, -EBUSY, "reader %d already holds message %llu; release it first",
                     reader, (unsigned long long)c->r[reader].seq);
    }
    struct weir__rstate *r = &c->r[reader];
    if (r->seq >= r->avail) {
        r->avail = weir__load_acquire(&c->ctl->write_seq);
        if (r->seq >= r->avail) {
            if (timeout_ms != 0) {
                int ret = wait_for_data(c, reader, timeout_ms);
                if (ret < 0)
                    return ret;
            } else if (!weir__load_acquire(&c->ctl->closed)) {
                return CHERR(c, -ETIMEDOUT, "reader %d: no message %llu yet", reader,
                             (unsigned long long)r->seq);
            } else {
                /* closed is stored after the last commit: reload to be exact. */
                r->avail = weir__load_acquire(&c->ctl->write_seq);
                if (r->seq >= r->avail)
                    return CHERR(c, -EPIPE, "closed (reader %d drained %llu messages)", reader,
                                 (unsigned long long)r->seq);
            }
        }
    }
    uint64_t hw = r->g->hdrs[r->idx].word;
    uint32_t flags = WEIR__HDR_FLAGS(hw);
    while (__builtin_expect(flags & WEIR__SLOT_FORWARD, 0)) {
        unsigned k = r->gen + 1;
        if (k >= WEIR_CHAN_MAX_GENS || weir__ring_map_gen(c, k) < 0)
            return k >= WEIR_CHAN_MAX_GENS ? CHERR(c, -EBADMSG, "forward past the last generation")
                                           : weir_errcode();
        r->gen = k;
        r->g = &c->gens[k];
        hw = r->g->hdrs[r->idx].word;
        flags = WEIR__HDR_FLAGS(hw);
    }
    uint64_t len = WEIR__HDR_LEN(hw);
    if (__builtin_expect(len > r->g->slot_bytes, 0))
        return CHERR(c, -EBADMSG, "corrupt slot: message %llu claims %llu bytes in %zu-byte slots",
                     (unsigned long long)r->seq, (unsigned long long)len, r->g->slot_bytes);
    m->data = r->g->data + (size_t)r->idx * r->g->stride;
    m->len = (size_t)len;
    m->seq = r->seq;
    m->flags = flags & WEIR__SLOT_FLAGS_MASK;
    r->held = 1;
    WEIR_PROBE4(chan_read, c->name, reader, m->seq, m->len);
    return 0;
}

WEIR_API int weir_chan_release(weir_chan *c, int reader)
{
    if (__builtin_expect(!c || reader < 0 || reader >= WEIR_CHAN_MAX_READERS ||
                             !c->r[reader].held ||
                             weir__load_relaxed(&c->ctl->readers[reader].epoch) !=
                                 c->r[reader].epoch,
                         0)) {
        weir__clearerr();
        int ret = weir__ring_reader_check(c, reader);
        if (ret < 0)
            return ret;
        return CHERR(c, -EINVAL, "reader %d released without a read", reader);
    }
    struct weir__rstate *r = &c->r[reader];
    struct weir__chan_ctl *ctl = c->ctl;
    r->held = 0;
    r->seq++;
    if (++r->idx == c->depth)
        r->idx = 0;
    /* Pair 1/2: publish the release, then look for a sleeping writer (light
     * barrier, paired with the writer's heavy barrier before it sleeps). */
    weir__store_release(&ctl->readers[reader].read_seq, r->seq);
    WEIR_PROBE3(chan_release, c->name, reader, r->seq - 1);
    weir__light_barrier();
    if (__builtin_expect(weir__load_relaxed(&ctl->wr_sleeping) != 0, 0))
        weir__ring_wake_writer(ctl);
    return 0;
}

WEIR_API const void *weir_chan_read(weir_chan *c, int reader, size_t *len, int timeout_ms)
{
    weir_chan_msg m;
    int ret = weir_chan_read_msg(c, reader, &m, timeout_ms);
    if (ret < 0)
        return NULL;
    if (__builtin_expect(m.flags & WEIR_MSG_ERROR, 0)) {
        char text[4096];
        snprintf(text, sizeof text, "%s", (const char *)m.data);
        weir_chan_release(c, reader);
        CHERR(c, -EREMOTEIO, "error record at message %llu: %s", (unsigned long long)m.seq,
              text);
        return NULL;
    }
    if (len)
        *len = m.len;
    return m.data;
}


/* ---- the writer's gate seen from another thread (a link's credit grants) --- */

/* Gate from the shared lines only: the lowest read_seq of the active readers,
 * or write_seq when there is none. Touches no writer-private state. */
uint64_t weir__chan_gate(const weir_chan *c)
{
    struct weir__chan_ctl *ctl = c->ctl;
    uint64_t ws = weir__load_acquire(&ctl->write_seq);
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    uint64_t min = ws;
    for (uint64_t m = mask; m; m &= m - 1) {
        uint64_t r = weir__load_acquire(&ctl->readers[__builtin_ctzll(m)].read_seq);
        if (r < min)
            min = r;
    }
    return min;
}

struct gate_wait {
    struct weir__ring_waiter w;
    uint64_t seq;
    const int *stop;
};

static int gate_ready(struct weir__ring_waiter *w)
{
    struct gate_wait *g = (struct gate_wait *)w;
    return weir__load_acquire(g->stop) || weir__chan_gate(w->c) >= g->seq;
}

static int gate_timed_out(struct weir__ring_waiter *w, int timeout_ms)
{
    (void)timeout_ms;
    (void)w;
    return -ETIMEDOUT; /* a bounded poll of the caller's loop, not an error to report */
}

int weir__chan_wait_gate(weir_chan *c, uint64_t seq, const int *stop, uint32_t *spin_ns,
                         int timeout_ms)
{
    struct gate_wait g = {
        .w = {.c = c,
              .id = -1,
              .futex = &c->ctl->wr_futex,
              .sleepers = &c->ctl->wr_sleeping,
              .spin_ns = spin_ns,
              .max_sleep_ns = UINT64_MAX,
              .ready = gate_ready,
              .timed_out = gate_timed_out},
        .seq = seq,
        .stop = stop,
    };
    uint64_t waited;
    return weir__ring_wait(&g.w, timeout_ms, &waited);
}

void weir__chan_wake_gate_waiters(weir_chan *c)
{
    /* After the caller's store to *stop: pairs with the waiter's announce,
     * heavy barrier and re-check of ready() in weir__ring_wait(). */
    weir__light_barrier();
    weir__ring_wake_writer(c->ctl);
}
