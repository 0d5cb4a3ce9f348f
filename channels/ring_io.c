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
 * Batches (weir_chan_reserve_n / commit_n, read_n / release_n): the
 * Disruptor's batch claim and batch read. A batch is k consecutive
 * sequence numbers; the writer looks at the readers' lines once for the
 * batch (a rescan when its cached gate shows fewer free slots than it
 * asked for) and publishes write_seq once for the k headers; a reader
 * loads write_seq once per batch and publishes read_seq once. The
 * orderings are the same three pairs: the k header and payload stores
 * precede the one release of write_seq, the reader's k reads of slots
 * precede its one release of read_seq. The single-message calls are
 * batches of one (w.reserved and r.held count messages), so the two kinds
 * mix freely: weir_chan_release() releases the oldest held message of a
 * batch. A batch read may cross a generation forward (older generations
 * stay mapped, so earlier views of the batch stay valid).
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
#include "channels/chan_internal.h"
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

int weir__chan_space_now(weir_chan *c)
{
    if (!c->writer || weir__load_relaxed(&c->ctl->closed))
        return 1;
    if (c->w.rescan || !weir__ring_slot_free(c))
        rescan(c);
    return weir__ring_slot_free(c);
}

/* The slow checks of a reserve (cold): the error, or 0 when only the size is unusual. */
static __attribute__((noinline, cold)) int reserve_check(weir_chan *c, size_t len, const char *what)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): %s", what);
    if (!c->writer)
        return CHERR(c, -EPERM, "this handle was opened for reading; only the creator writes");
    if (c->w.reserved == 1)
        return CHERR(c, -EBUSY, "a message is already reserved; commit it first");
    if (c->w.reserved)
        return CHERR(c, -EBUSY, "a batch of %u messages is already reserved; commit it first",
                     c->w.reserved);
    if (len > WEIR_CHAN_MAX_SLOT)
        return CHERR(c, -EMSGSIZE, "message of %zu bytes exceeds the maximum %zu", len,
                     (size_t)WEIR_CHAN_MAX_SLOT);
    return 0;
}

/* The slow part of a reserve (cold): closed, a full ring, a changed reader
 * set, growth. 0 once slot w.seq is free and holds len bytes. */
static __attribute__((noinline)) int reserve_slow(weir_chan *c, size_t len, int timeout_ms)
{
    if (weir__load_relaxed(&c->ctl->closed))
        return CHERR(c, -EPIPE, "closed");
    if (c->w.rescan || !weir__ring_slot_free(c)) {
        int ret = wait_for_space(c, timeout_ms);
        if (ret < 0)
            return ret;
    }
    if (len > c->w.g->slot_bytes)
        return weir__ring_grow(c, len);
    return 0;
}

/* Everything weir_chan_reserve() does, for the calls its fast path declines. */
static __attribute__((noinline)) void *reserve_one_slow(weir_chan *c, size_t len, int timeout_ms)
{
    if (!c || !c->writer || c->w.reserved || len > WEIR_CHAN_MAX_SLOT) {
        reserve_check(c, len, "reserve");
        return NULL;
    }
    if (reserve_slow(c, len, timeout_ms) < 0)
        return NULL;
    c->w.reserved = 1;
    c->w.reserved_len = len;
    WEIR_PROBE3(chan_reserve, c->name, c->w.seq, len);
    return c->w.g->data + (size_t)c->w.idx * c->w.g->stride;
}

/*
 * The fast path is a leaf: every condition that needs more (bad use, a
 * closed channel, a full ring by the cached gate, a changed reader set, a
 * message larger than the slot) is one branch to a tail call, so the
 * common call saves no registers.
 */
WEIR_API void *weir_chan_reserve(weir_chan *c, size_t len, int timeout_ms)
{
    /* A reading handle has no writer generation (w.g): test before using it. */
    if (__builtin_expect(!c || !c->writer, 0))
        return reserve_one_slow(c, len, timeout_ms);
    const struct weir__gen_map *g = c->w.g;
    if (__builtin_expect(c->w.reserved | c->w.rescan | (len > g->slot_bytes) |
                             !weir__ring_slot_free(c) | weir__load_relaxed(&c->ctl->closed),
                         0))
        return reserve_one_slow(c, len, timeout_ms);
    c->w.reserved = 1;
    c->w.reserved_len = len;
    WEIR_PROBE3(chan_reserve, c->name, c->w.seq, len);
    return g->data + (size_t)c->w.idx * g->stride;
}

WEIR_API int weir_chan_reserve_n(weir_chan *c, size_t len, unsigned n, void **slots,
                                 int timeout_ms)
{
    if (__builtin_expect(!c || !c->writer || c->w.reserved || !n || !slots, 0)) {
        int ret = reserve_check(c, len, "reserve_n");
        if (ret < 0)
            return ret;
        return CHERR(c, -EINVAL, "reserve_n of %u messages into %s", n,
                     slots ? "a slot array (need at least 1)" : "a NULL slot array");
    }
    if (__builtin_expect(len > c->w.g->slot_bytes, 0)) {
        int ret = reserve_check(c, len, "reserve_n");
        if (ret < 0)
            return ret;
    }
    if (__builtin_expect(c->w.rescan | weir__load_relaxed(&c->ctl->closed) |
                             !weir__ring_slot_free(c) | (len > c->w.g->slot_bytes),
                         0)) {
        int ret = reserve_slow(c, len, timeout_ms);
        if (ret < 0)
            return ret;
    }
    /* Free slots by the cached gate (>= 1 here); fewer than asked: look
     * at the readers once more (pair 1, rescan's acquire loads). */
    uint64_t avail = c->depth - (c->w.seq - c->w.min_read);
    if (avail < n) {
        rescan(c);
        avail = c->depth - (c->w.seq - c->w.min_read);
    }
    unsigned k = avail < n ? (unsigned)avail : n;
    const struct weir__gen_map *g = c->w.g;
    unsigned idx = c->w.idx;
    for (unsigned i = 0; i < k; i++) {
        slots[i] = g->data + (size_t)idx * g->stride;
        if (++idx == c->depth)
            idx = 0;
    }
    c->w.reserved = k;
    c->w.reserved_len = len;
    if (WEIR_PROBE_ON(chan_reserve))
        for (unsigned i = 0; i < k; i++)
            WEIR_PROBE3(chan_reserve, c->name, c->w.seq + i, len);
    return (int)k;
}

/* Wake-ups out of line and returning 0, so that the fast paths end in a
 * tail call and stay leaf functions. */
static __attribute__((noinline)) int wake_readers(struct weir__chan_ctl *ctl)
{
    weir__ring_wake_readers(ctl);
    return 0;
}

static __attribute__((noinline)) int wake_writer(struct weir__chan_ctl *ctl)
{
    weir__ring_wake_writer(ctl);
    return 0;
}

/* Publish the k messages whose headers are written (k >= 1), bytes in all;
 * the probe of the last one (batches fire theirs in commit_n). 0. */
static inline __attribute__((always_inline)) int publish(weir_chan *c, unsigned k, uint64_t bytes,
                                                         uint32_t flags)
{
    struct weir__chan_ctl *ctl = c->ctl;
    uint64_t seq = c->w.seq + k;
    unsigned idx = c->w.idx + k;
    if (idx >= c->depth)
        idx -= c->depth;
    c->w.reserved = 0;
    c->w.seq = seq;
    c->w.idx = idx;
    weir__counter_add(&ctl->bytes, bytes);
    /* Pairs 1-3: publish, then look at the control line. The store->load
     * order comes from the light barrier paired with the sleeper's or the
     * registering reader's heavy barrier (channels/barrier.c). */
    weir__store_release(&ctl->write_seq, seq);
    if (k == 1)
        WEIR_PROBE4(chan_commit, c->name, seq - 1, bytes, flags);
    weir__light_barrier();
    if (__builtin_expect(weir__load_relaxed(&ctl->active_mask) != c->w.mask, 0))
        c->w.rescan = 1;
    if (__builtin_expect(weir__load_relaxed(&ctl->rd_sleepers) != 0, 0))
        return wake_readers(ctl);
    return 0;
}

static inline __attribute__((always_inline)) int commit_flags(weir_chan *c, size_t len,
                                                              uint32_t flags)
{
    c->w.g->hdrs[c->w.idx].word = WEIR__HDR(len, flags);
    return publish(c, 1, len, flags);
}

static __attribute__((noinline, cold)) int commit_err(weir_chan *c, unsigned k, size_t len)
{
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): commit");
    if (!c->writer)
        return CHERR(c, -EPERM, "this handle was opened for reading; only the creator writes");
    if (!c->w.reserved)
        return CHERR(c, -EINVAL, "commit without a reserve");
    if (k > c->w.reserved)
        return CHERR(c, -EINVAL, "commit of %u messages but only %u were reserved", k,
                     c->w.reserved);
    return CHERR(c, -EINVAL, "commit of %zu bytes but only %zu were reserved", len,
                 c->w.reserved_len);
}

WEIR_API int weir_chan_commit(weir_chan *c, size_t len)
{
    if (__builtin_expect(!c || c->w.reserved != 1 || len > c->w.reserved_len, 0)) {
        if (c && c->w.reserved > 1)
            return CHERR(c, -EINVAL,
                         "commit of one message while a batch of %u is reserved: use "
                         "weir_chan_commit_n",
                         c->w.reserved);
        return commit_err(c, 1, len);
    }
    return commit_flags(c, len, 0);
}

WEIR_API int weir_chan_commit_n(weir_chan *c, unsigned k, const size_t *lens)
{
    if (__builtin_expect(!c || !c->w.reserved || k > c->w.reserved, 0))
        return commit_err(c, k, 0);
    const size_t rlen = c->w.reserved_len;
    struct weir__slot_hdr *hdrs = c->w.g->hdrs;
    uint64_t bytes = 0;
    if (lens) {
        for (unsigned i = 0; i < k; i++)
            if (__builtin_expect(lens[i] > rlen, 0))
                return CHERR(c, -EINVAL,
                             "commit of message %u of the batch with %zu bytes but only %zu "
                             "were reserved (nothing published)",
                             i, lens[i], rlen);
    }
    if (k == 0) {
        c->w.reserved = 0; /* the whole batch dropped; a forward mark stays valid (unreserve) */
        return 0;
    }
    unsigned idx = c->w.idx;
    for (unsigned i = 0; i < k; i++) {
        size_t len = lens ? lens[i] : rlen;
        hdrs[idx].word = WEIR__HDR(len, 0);
        bytes += len;
        if (++idx == c->depth)
            idx = 0;
    }
    publish(c, k, bytes, 0);
    if (k > 1 && WEIR_PROBE_ON(chan_commit))
        for (unsigned i = 0; i < k; i++)
            WEIR_PROBE4(chan_commit, c->name, c->w.seq - k + i, lens ? lens[i] : rlen, 0);
    return 0;
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

/* The failed checks of a read (cold): the error. */
static __attribute__((noinline, cold)) int read_check(weir_chan *c, int reader, const void *out,
                                                      unsigned n)
{
    weir__clearerr();
    int ret = weir__ring_reader_check(c, reader);
    if (ret < 0)
        return ret;
    if (!out)
        return CHERR(c, -EINVAL, "reader %d: NULL message pointer", reader);
    if (!n)
        return CHERR(c, -EINVAL, "reader %d: read_n of 0 messages", reader);
    if (c->r[reader].held > 1)
        return CHERR(c, -EBUSY,
                     "reader %d already holds %u messages from %llu on; release them first",
                     reader, c->r[reader].held, (unsigned long long)c->r[reader].seq);
    return CHERR(c, -EBUSY, "reader %d already holds message %llu; release it first", reader,
                 (unsigned long long)c->r[reader].seq);
}

/* Nothing cached to read: reload write_seq, wait if allowed. 0 once r->seq < r->avail. */
static __attribute__((noinline)) int read_slow(weir_chan *c, int reader, int timeout_ms)
{
    struct weir__rstate *r = &c->r[reader];
    r->avail = weir__load_acquire(&c->ctl->write_seq);
    if (r->seq < r->avail)
        return 0;
    if (timeout_ms != 0)
        return wait_for_data(c, reader, timeout_ms);
    if (!weir__load_acquire(&c->ctl->closed))
        return CHERR(c, -ETIMEDOUT, "reader %d: no message %llu yet", reader,
                     (unsigned long long)r->seq);
    /* closed is stored after the last commit: reload to be exact. */
    r->avail = weir__load_acquire(&c->ctl->write_seq);
    if (r->seq >= r->avail)
        return CHERR(c, -EPIPE, "closed (reader %d drained %llu messages)", reader,
                     (unsigned long long)r->seq);
    return 0;
}

/* The slot at idx of the reader's generation is a forward: move to the
 * generation that holds the message. Its header word, or < 0. */
static __attribute__((noinline)) int64_t follow_forward(weir_chan *c, struct weir__rstate *r,
                                                        unsigned idx)
{
    uint64_t hw;
    do {
        unsigned k = r->gen + 1;
        if (k >= WEIR_CHAN_MAX_GENS)
            return CHERR(c, -EBADMSG, "forward past the last generation");
        if (weir__ring_map_gen(c, k) < 0)
            return weir_errcode();
        r->gen = k;
        r->g = &c->gens[k];
        hw = r->g->hdrs[idx].word;
    } while (WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FORWARD);
    return (int64_t)hw;
}

static __attribute__((noinline, cold)) int corrupt_slot(weir_chan *c, uint64_t seq, uint64_t len,
                                                        size_t slot_bytes)
{
    return CHERR(c, -EBADMSG, "corrupt slot: message %llu claims %llu bytes in %zu-byte slots",
                 (unsigned long long)seq, (unsigned long long)len, slot_bytes);
}

/* Reader id may read through this handle and holds nothing (the epoch
 * check catches a force-deregistration or a take-over by another handle). */
static inline int read_ok(const weir_chan *c, int reader)
{
    return reader >= 0 && reader < WEIR_CHAN_MAX_READERS && c->r[reader].registered &&
           !c->r[reader].held &&
           weir__load_relaxed(&c->ctl->readers[reader].epoch) == c->r[reader].epoch;
}

/* Would weir_chan_read_msg(c, id, .., -1) return at once: a message, the
 * close, or an error (read_ok fails: a deregistered or mis-used id)? */
int weir__chan_read_wont_block(weir_chan *c, int id)
{
    return !read_ok(c, id) || weir__chan_can_read(c, id) || weir__load_acquire(&c->ctl->closed);
}

/* Describe message seq at slot idx of the reader's generation into *m:
 * 0, or < 0 (a forward that cannot be followed, a corrupt header). */
static inline int take(weir_chan *c, struct weir__rstate *r, uint64_t seq, unsigned idx,
                       weir_chan_msg *m)
{
    uint64_t hw = r->g->hdrs[idx].word;
    if (__builtin_expect(WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FORWARD, 0)) {
        int64_t f = follow_forward(c, r, idx);
        if (f < 0)
            return (int)f;
        hw = (uint64_t)f;
    }
    uint64_t len = WEIR__HDR_LEN(hw);
    if (__builtin_expect(len > r->g->slot_bytes, 0))
        return corrupt_slot(c, seq, len, r->g->slot_bytes);
    m->data = r->g->data + (size_t)idx * r->g->stride;
    m->len = (size_t)len;
    m->seq = seq;
    m->flags = WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FLAGS_MASK;
    return 0;
}

/* Everything weir_chan_read_msg() does after its checks, for the calls its
 * fast path declines (nothing cached to read, a forward, a corrupt slot). */
static __attribute__((noinline)) int read_one_slow(weir_chan *c, int reader, weir_chan_msg *m,
                                                   int timeout_ms)
{
    struct weir__rstate *r = &c->r[reader];
    if (r->seq >= r->avail) {
        int ret = read_slow(c, reader, timeout_ms);
        if (ret < 0)
            return ret;
    }
    int ret = take(c, r, r->seq, r->idx, m);
    if (ret < 0)
        return ret;
    r->held = 1;
    WEIR_PROBE4(chan_read, c->name, reader, m->seq, m->len);
    return 0;
}

/* A leaf, like weir_chan_reserve(): anything unusual is one tail call. */
WEIR_API int weir_chan_read_msg(weir_chan *c, int reader, weir_chan_msg *m, int timeout_ms)
{
    if (__builtin_expect(!c || !m || !read_ok(c, reader), 0))
        return read_check(c, reader, m, 1);
    struct weir__rstate *r = &c->r[reader];
    const uint64_t seq = r->seq;
    if (__builtin_expect(seq >= r->avail, 0))
        return read_one_slow(c, reader, m, timeout_ms);
    const struct weir__gen_map *g = r->g;
    const unsigned idx = r->idx;
    const uint64_t hw = g->hdrs[idx].word;
    const uint64_t len = WEIR__HDR_LEN(hw);
    if (__builtin_expect((WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FORWARD) | (len > g->slot_bytes), 0))
        return read_one_slow(c, reader, m, timeout_ms);
    m->data = g->data + (size_t)idx * g->stride;
    m->len = (size_t)len;
    m->seq = seq;
    m->flags = WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FLAGS_MASK;
    r->held = 1;
    WEIR_PROBE4(chan_read, c->name, reader, seq, len);
    return 0;
}

WEIR_API int weir_chan_read_n(weir_chan *c, int reader, weir_chan_msg *msgs, unsigned n,
                              int timeout_ms)
{
    if (__builtin_expect(!c || !msgs || !n || !read_ok(c, reader), 0))
        return read_check(c, reader, msgs, n);
    struct weir__rstate *r = &c->r[reader];
    if (__builtin_expect(r->seq >= r->avail, 0)) {
        int ret = read_slow(c, reader, timeout_ms);
        if (ret < 0)
            return ret;
    }
    /* Fewer cached than asked: one more look at write_seq (pair 1). */
    uint64_t have = r->avail - r->seq;
    if (have < n) {
        r->avail = weir__load_acquire(&c->ctl->write_seq);
        have = r->avail - r->seq;
    }
    unsigned k = have < n ? (unsigned)have : n;
    unsigned idx = r->idx;
    const uint64_t seq = r->seq;
    /* The generation in locals: the stores into msgs[] cannot alias it. */
    const struct weir__gen_map *g = r->g;
    const struct weir__slot_hdr *hdrs = g->hdrs;
    const uint8_t *data = g->data;
    size_t stride = g->stride, slot_bytes = g->slot_bytes;
    for (unsigned i = 0; i < k; i++) {
        const uint64_t hw = hdrs[idx].word;
        const uint64_t len = WEIR__HDR_LEN(hw);
        if (__builtin_expect((WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FORWARD) | (len > slot_bytes), 0)) {
            int ret = take(c, r, seq + i, idx, &msgs[i]);
            if (ret < 0) {
                if (i == 0)
                    return ret;
                k = i; /* the next read reports it */
                break;
            }
            g = r->g; /* followed a forward */
            hdrs = g->hdrs;
            data = g->data;
            stride = g->stride;
            slot_bytes = g->slot_bytes;
        } else {
            msgs[i].data = data + (size_t)idx * stride;
            msgs[i].len = (size_t)len;
            msgs[i].seq = seq + i;
            msgs[i].flags = WEIR__HDR_FLAGS(hw) & WEIR__SLOT_FLAGS_MASK;
        }
        if (++idx == c->depth)
            idx = 0;
    }
    r->held = k;
    if (WEIR_PROBE_ON(chan_read))
        for (unsigned i = 0; i < k; i++)
            WEIR_PROBE4(chan_read, c->name, reader, msgs[i].seq, msgs[i].len);
    return (int)k;
}

static __attribute__((noinline, cold)) int release_err(weir_chan *c, int reader, unsigned k)
{
    weir__clearerr();
    int ret = weir__ring_reader_check(c, reader);
    if (ret < 0)
        return ret;
    if (!c->r[reader].held)
        return CHERR(c, -EINVAL, "reader %d released without a read", reader);
    return CHERR(c, -EINVAL, "reader %d released %u messages but holds %u", reader, k,
                 c->r[reader].held);
}

/* Release the k oldest held messages (1 <= k <= held); inlined with k 1
 * into weir_chan_release(), which stays a leaf (the wake is a tail call). */
static inline __attribute__((always_inline)) int release_k(weir_chan *c, int reader, unsigned k)
{
    if (__builtin_expect(!c || reader < 0 || reader >= WEIR_CHAN_MAX_READERS || k == 0 ||
                             k > c->r[reader].held ||
                             weir__load_relaxed(&c->ctl->readers[reader].epoch) !=
                                 c->r[reader].epoch,
                         0))
        return release_err(c, reader, k);
    struct weir__rstate *r = &c->r[reader];
    struct weir__chan_ctl *ctl = c->ctl;
    const uint64_t seq = r->seq + k;
    unsigned idx = r->idx + k;
    if (idx >= c->depth)
        idx -= c->depth;
    r->held -= k;
    r->seq = seq;
    r->idx = idx;
    /* Pair 1/2: publish the release, then look for a sleeping writer (light
     * barrier, paired with the writer's heavy barrier before it sleeps). */
    weir__store_release(&ctl->readers[reader].read_seq, seq);
    if (k == 1)
        WEIR_PROBE3(chan_release, c->name, reader, seq - 1);
    else if (WEIR_PROBE_ON(chan_release))
        for (unsigned i = k; i > 0; i--)
            WEIR_PROBE3(chan_release, c->name, reader, seq - i);
    weir__light_barrier();
    if (__builtin_expect(weir__load_relaxed(&ctl->wr_sleeping) != 0, 0))
        return wake_writer(ctl);
    return 0;
}

WEIR_API int weir_chan_release(weir_chan *c, int reader)
{
    return release_k(c, reader, 1);
}

WEIR_API int weir_chan_release_n(weir_chan *c, int reader, unsigned k)
{
    return release_k(c, reader, k);
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
