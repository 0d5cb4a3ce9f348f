/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_readers.c - reader ids of a ring channel: registration,
 * hand-over between handles and processes (weir_chan_attach_reader),
 * waiting for readers, deregistration and reaping of dead readers.
 *
 * Design notes.
 *
 * A reader id is shared state (its bit in active_mask and its reader line)
 * plus the private state of the one handle that reads with it (struct
 * weir__rstate). The line's epoch changes at every registration, attach
 * and deregistration; a handle whose private epoch differs no longer owns
 * the id, and its next call fails with -EINVAL instead of moving someone
 * else's read_seq. A handle that finds the id registered but never owned
 * it is told to attach first.
 *
 * Registration vs. the writer's cached gate is pair 3 of ring_io.c: set the
 * bit, heavy barrier, then pick the start from write_seq. Registration then
 * wakes whoever waits for readers on the writer's futex word
 * (weir_chan_wait_readers, same announce / re-check protocol).
 *
 * Liveness (the pid and its start time in the line, ring_life.c) follows
 * the process that registered or attached the id last.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <weir/chan.h>
#include <weir/stats.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"
#include "channels/wait.h"

/* ---- registration lock (cold path, shared between processes) ---------- */

int weir__ring_reg_lock(weir_chan *c)
{
    struct weir__chan_ctl *ctl = c->ctl;
    uint32_t me = (uint32_t)getpid();
    uint64_t t0 = 0;
    for (unsigned spins = 0;; spins++) {
        uint32_t cur = 0;
        if (weir__cas(&ctl->reg_lock, &cur, me))
            return 0;
        if (spins > 200 && cur != me && kill((pid_t)cur, 0) < 0 && errno == ESRCH) {
            /* The holder died inside the critical section: take over. */
            if (weir__cas(&ctl->reg_lock, &cur, me))
                return 0;
        }
        if (spins < 100) {
            weir__cpu_relax();
            continue;
        }
        uint64_t now = weir_now_ns();
        if (!t0)
            t0 = now;
        else if (now - t0 > (uint64_t)WEIR__REG_LOCK_MAX_MS * 1000000ull)
            return CHERR(c, -EDEADLK,
                         "registration lock held by pid %u for over %d ms (a stuck process or a "
                         "corrupt segment)",
                         cur, WEIR__REG_LOCK_MAX_MS);
        sched_yield();
    }
}

void weir__ring_reg_unlock(struct weir__chan_ctl *ctl)
{
    weir__store_release(&ctl->reg_lock, 0);
}

int weir__ring_reader_check(weir_chan *c, int reader)
{
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): read");
    if (reader < 0 || reader >= WEIR_CHAN_MAX_READERS)
        return CHERR(c, -EINVAL, "reader %d is not registered", reader);
    struct weir__reader_line *rl = &c->ctl->readers[reader];
    int shared = (weir__load_acquire(&c->ctl->active_mask) >> reader) & 1;
    if (!c->r[reader].registered)
        return shared ? CHERR(c, -EINVAL,
                              "reader %d is registered through another handle: attach it "
                              "first (weir_chan_attach_reader)",
                              reader)
                      : CHERR(c, -EINVAL, "reader %d is not registered", reader);
    if (!shared || weir__load_relaxed(&rl->epoch) != c->r[reader].epoch) {
        c->r[reader].registered = 0;
        return shared ? CHERR(c, -EINVAL,
                              "reader %d was taken over by another handle (attached or "
                              "registered again)",
                              reader)
                      : CHERR(c, -EINVAL, "reader %d was deregistered", reader);
    }
    return 0;
}

/* Point this handle's state for reader `id` at message seq (the generation
 * holding it: the last one that started at or before it). */
static int reader_sync(weir_chan *c, int id, uint64_t seq, uint32_t epoch)
{
    struct weir__chan_ctl *ctl = c->ctl;
    unsigned cur = weir__load_acquire(&ctl->cur_gen), gen = 0;
    for (unsigned k = 1; k <= cur && k < WEIR_CHAN_MAX_GENS; k++)
        if (ctl->gens[k].start_seq <= seq)
            gen = k;
    if (gen > 0 && weir__ring_map_gen(c, gen) < 0)
        return weir_errcode();
    struct weir__rstate *r = &c->r[id];
    r->seq = seq;
    r->avail = seq;
    r->idx = (unsigned)(seq % c->depth);
    r->gen = gen;
    r->g = &c->gens[gen];
    r->epoch = epoch;
    r->spin_ns = WEIR__SPIN_NS;
    r->held = 0;
    r->registered = 1;
    return 0;
}

int weir__ring_reader_sync(weir_chan *c, int id)
{
    struct weir__reader_line *rl = &c->ctl->readers[id];
    return reader_sync(c, id, weir__load_acquire(&rl->read_seq), weir__load_relaxed(&rl->epoch));
}

WEIR_API int weir_chan_register_reader(weir_chan *c)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot register a reader");
    struct weir__chan_ctl *ctl = c->ctl;
    weir__barrier_init();
    uint64_t me_start = weir__proc_start_time(getpid());
    int lk = weir__ring_reg_lock(c);
    if (lk < 0)
        return lk;
    if (weir__load_acquire(&ctl->closed)) {
        weir__ring_reg_unlock(ctl);
        return CHERR(c, -EPIPE, "closed; no new readers");
    }
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    int id = -1;
    for (unsigned i = 0; i < ctl->max_readers; i++)
        if (!(mask & (1ull << i))) {
            id = (int)i;
            break;
        }
    if (id < 0) {
        weir__ring_reg_unlock(ctl);
        return CHERR(c, -ENOSPC, "all %u reader slots are registered", ctl->max_readers);
    }
    struct weir__reader_line *rl = &ctl->readers[id];
    weir__store_relaxed(&rl->read_seq, weir__load_acquire(&ctl->write_seq));
    weir__store_relaxed(&rl->pid, (uint32_t)getpid());
    weir__store_relaxed(&rl->pid_start, me_start);
    weir__store_relaxed(&rl->starved_ns, 0);
    uint32_t epoch = rl->epoch + 1;
    weir__store_relaxed(&rl->epoch, epoch);
    /* Pair 3 (ring_io.c): set the bit, then pick the start from write_seq. */
    weir__fetch_or(&ctl->active_mask, 1ull << id);
    weir__heavy_barrier();
    uint64_t start = weir__load_acquire(&ctl->write_seq);
    weir__store_release(&rl->read_seq, start);
    rl->start_seq = start;
    weir__ring_reg_unlock(ctl);
    /* Whoever waits for readers (weir_chan_wait_readers) sleeps on the writer's word. */
    weir__ring_wake_writer(ctl);

    int ret = reader_sync(c, id, start, epoch);
    if (ret < 0) {
        weir_chan_deregister_reader(c, id);
        return ret;
    }
    return id;
}

WEIR_API int weir_chan_attach_reader(weir_chan *c, int reader)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot attach a reader");
    struct weir__chan_ctl *ctl = c->ctl;
    if (reader < 0 || (unsigned)reader >= ctl->max_readers)
        return CHERR(c, -EINVAL, "reader id %d out of range 0..%u", reader,
                     ctl->max_readers - 1);
    weir__barrier_init();
    uint64_t me_start = weir__proc_start_time(getpid());
    int lk = weir__ring_reg_lock(c);
    if (lk < 0)
        return lk;
    if (!(weir__load_acquire(&ctl->active_mask) & (1ull << reader))) {
        weir__ring_reg_unlock(ctl);
        return CHERR(c, -EINVAL, "reader %d is not registered", reader);
    }
    struct weir__reader_line *rl = &ctl->readers[reader];
    /* The previous owner sees the epoch change at its next call (-EINVAL). */
    uint32_t epoch = rl->epoch + 1;
    weir__store_relaxed(&rl->epoch, epoch);
    weir__store_relaxed(&rl->pid, (uint32_t)getpid());
    weir__store_relaxed(&rl->pid_start, me_start);
    /* read_seq is written only by the owner's release, and the owner no
     * longer counts: this handle continues at the first unreleased message. */
    uint64_t seq = weir__load_acquire(&rl->read_seq);
    weir__ring_reg_unlock(ctl);
    return reader_sync(c, reader, seq, epoch);
}

static int readers_ready(struct weir__ring_waiter *w)
{
    struct weir__chan_ctl *ctl = w->c->ctl;
    if ((unsigned)__builtin_popcountll(weir__load_acquire(&ctl->active_mask)) >= (unsigned)w->id)
        return 1;
    if (weir__load_acquire(&ctl->closed))
        return CHERR(w->c, -EPIPE, "closed while waiting for %d readers", w->id);
    return 0;
}

static int readers_timed_out(struct weir__ring_waiter *w, int timeout_ms)
{
    return CHERR(w->c, -ETIMEDOUT, "timed out after %d ms waiting for %d readers (%d registered)",
                 timeout_ms, w->id,
                 __builtin_popcountll(weir__load_acquire(&w->c->ctl->active_mask)));
}

WEIR_API int weir_chan_wait_readers(weir_chan *c, unsigned n, int timeout_ms)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot wait for readers");
    struct weir__chan_ctl *ctl = c->ctl;
    if (n > ctl->max_readers)
        return CHERR(c, -EINVAL, "cannot wait for %u readers: at most %u can register", n,
                     ctl->max_readers);
    weir__barrier_init();
    uint32_t spin = WEIR__SPIN_NS;
    struct weir__ring_waiter w = {
        .c = c,
        .id = (int)n,
        .futex = &ctl->wr_futex,
        .sleepers = &ctl->wr_sleeping,
        .spin_ns = &spin,
        .max_sleep_ns = UINT64_MAX,
        .ready = readers_ready,
        .timed_out = readers_timed_out,
    };
    int ret = readers_ready(&w);
    if (ret != 0)
        return ret < 0 ? ret : 0;
    if (timeout_ms == 0)
        return readers_timed_out(&w, 0);
    uint64_t waited;
    return weir__ring_wait(&w, timeout_ms, &waited);
}

WEIR_API int weir_chan_deregister_reader(weir_chan *c, int reader)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot deregister");
    struct weir__chan_ctl *ctl = c->ctl;
    if (reader < 0 || (unsigned)reader >= ctl->max_readers)
        return CHERR(c, -EINVAL, "reader id %d out of range 0..%u", reader,
                     ctl->max_readers - 1);
    int lk = weir__ring_reg_lock(c);
    if (lk < 0)
        return lk;
    uint64_t bit = 1ull << reader;
    if (!(weir__load_acquire(&ctl->active_mask) & bit)) {
        weir__ring_reg_unlock(ctl);
        return CHERR(c, -EINVAL, "reader %d is not registered", reader);
    }
    /* A handle still using this id (force-deregistered while alive) sees
     * the epoch change and gets -EINVAL instead of moving a future reader. */
    weir__store_relaxed(&ctl->readers[reader].epoch, ctl->readers[reader].epoch + 1);
    weir__fetch_and(&ctl->active_mask, ~bit);
    weir__ring_reg_unlock(ctl);
    /* The handle's local reader state belongs to the reader's thread: it
     * notices the bumped epoch on its next call (-EINVAL). */
    /* The writer may be waiting for exactly this reader; and the reader
     * itself may be asleep in read (another thread or process removed it). */
    weir__ring_wake_writer(ctl);
    weir__ring_wake_readers(ctl);
    return 0;
}

WEIR_API int weir_chan_reap_dead_readers(weir_chan *c)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot reap");
    int n = 0;
    uint64_t mask = weir__load_acquire(&c->ctl->active_mask);
    for (int i = 0; i < WEIR_CHAN_MAX_READERS; i++) {
        if (!(mask & (1ull << i)))
            continue;
        const struct weir__reader_line *rl = &c->ctl->readers[i];
        pid_t pid = (pid_t)weir__load_relaxed(&rl->pid);
        uint64_t start = weir__load_relaxed(&rl->pid_start);
        /* Dead: gone, a zombie, or the pid now names a later process. */
        if (pid > 0 && !weir__proc_alive(pid, start) && weir_chan_deregister_reader(c, i) == 0)
            n++;
    }
    weir__clearerr();
    return n;
}
