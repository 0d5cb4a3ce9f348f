/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_handle.h - the ring channel's handle and the calls its files share
 * (not public; the engine's calls are in chan_internal.h).
 *
 * The ring is written in one file per job:
 *   ring.c          segment lifecycle (create, open, free, unlink), growth
 *   ring_map.c      segment geometry, mapping of data generations
 *   ring_readers.c  reader registration, hand-over between handles, waiting
 *                   for readers, reaping dead readers
 *   ring_io.c       the hot path: reserve / commit / read / release, close
 *   ring_wait.c     the one spin -> yield -> sleep wait loop (wait.h's policy)
 *   ring_life.c     liveness of the processes behind a channel (writer, readers)
 *   ring_stats.c    the shared counters as weir_chan_stats
 *   ring_fork.c     the engine's fork and restart hooks (chan_internal.h)
 * Layout and sequence rules: layout.h. Memory ordering: ring_io.c.
 */
#ifndef WEIR_CHAN_RING_HANDLE_H
#define WEIR_CHAN_RING_HANDLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <weir/chan.h>

#include "channels/atomics.h"
#include "channels/layout.h"
#include "channels/wait.h"

/* One data generation as mapped in this process. */
struct weir__gen_map {
    uint8_t *seg;                /* start of the mapping (NULL: not mapped) */
    size_t seg_bytes;            /* bytes mapped at seg */
    struct weir__slot_hdr *hdrs; /* slot headers of the generation */
    uint8_t *data;               /* slot payloads */
    size_t stride;               /* bytes between payloads */
    size_t slot_bytes;
};

/* The writer's private state (only the writing thread touches it). */
struct weir__wstate {
    uint64_t seq;      /* next message to write */
    uint64_t min_read; /* cached gate: min read_seq of active readers */
    uint64_t mask;     /* active_mask when min_read was computed */
    unsigned idx;      /* seq % depth */
    unsigned gen;
    uint32_t spin_ns; /* adaptive spin budget (wait.h) */
    unsigned reserved; /* messages reserved from seq on (0: none; > 1: a batch) */
    int rescan;
    size_t reserved_len;
    struct weir__gen_map *g;
} __attribute__((aligned(WEIR__CL)));

/* One reader id's private state in this handle (only its reading thread touches it). */
struct weir__rstate {
    uint64_t seq;   /* next message to read */
    uint64_t avail; /* cached write_seq */
    unsigned idx;   /* seq % depth */
    unsigned gen;   /* generation of the next message to read (seq + held) */
    uint32_t epoch; /* registration epoch of the id, to detect force-deregistration */
    uint32_t spin_ns; /* adaptive spin budget (wait.h) */
    int registered;
    unsigned held; /* messages held from seq on (0: none; > 1: a batch) */
    struct weir__gen_map *g;
} __attribute__((aligned(WEIR__CL)));

struct weir_chan {
    struct weir__wstate w;
    struct weir__rstate r[WEIR_CHAN_MAX_READERS];
    struct weir__chan_ctl *ctl;
    size_t ctl_map_bytes;
    int fd;
    int writer; /* this handle may write */
    int named;
    pid_t creator; /* process that created the channel (unlinks its name) */
    unsigned depth;
    pthread_mutex_t gen_mu; /* guards mapping of generations */
    struct weir__gen_map gens[WEIR_CHAN_MAX_GENS];
    char name[WEIR_CHAN_MAX_NAME + 1];
};

/* ---- errors (weir__chan_err: err.c) --------------------------------------- */

#define CHERR(c, code, ...) weir__chan_err((c)->name, code, __VA_ARGS__)

/* ---- geometry and mapping (ring_map.c) ------------------------------------ */

/* Bytes of the control part (page-rounded): where data generation 0 starts. */
size_t weir__ring_ctl_bytes(void);
/* Bytes of one data generation (page-rounded); 0 on overflow or past the size cap. */
size_t weir__ring_gen_bytes(unsigned depth, size_t slot_bytes);
/* Point g at a generation mapped at seg + off; publishes g->seg last. */
void weir__ring_gen_bind(struct weir__gen_map *g, uint8_t *seg, size_t seg_bytes, size_t off,
                         unsigned depth, size_t slot_bytes);
/* Make data generation k available in this handle: 0, or -EBADMSG / -errno. */
int weir__ring_map_gen(weir_chan *c, unsigned k);

/* ---- growth (ring.c) ------------------------------------------------------ */

/* Writer: move to a new generation whose slots hold len bytes (slot w.seq is free). */
int weir__ring_grow(weir_chan *c, size_t len);

/* ---- readers (ring_readers.c) -------------------------------------------- */

/* The registration lock in the control segment (cold path, shared between
 * processes; a lock left by a dead holder is taken over). The critical
 * sections are a few stores long, so a lock held by a live process for
 * WEIR__REG_LOCK_MAX_MS is stuck or forged (a corrupt segment): 0, or
 * -EDEADLK with a message naming the channel and the holder's pid. */
#define WEIR__REG_LOCK_MAX_MS 2000
int weir__ring_reg_lock(weir_chan *c);
void weir__ring_reg_unlock(struct weir__chan_ctl *ctl);

/* 0 if this handle may use reader id `reader`, else -EINVAL with the reason. */
int weir__ring_reader_check(weir_chan *c, int reader);
/* Point this handle's state for reader `id` at the id's shared position (the
 * first message it has not released) and epoch, and own it: 0 or -errno. */
int weir__ring_reader_sync(weir_chan *c, int id);

/* ---- liveness (ring_life.c) ----------------------------------------------- */

/* Start time of process pid (clock ticks since boot, /proc/PID/stat field 22),
 * 0 if it does not exist. A zombie counts as dead: 0. */
uint64_t weir__proc_start_time(pid_t pid);
/* 1 if the process recorded as (pid, start) is alive (not a zombie, not a
 * later process that reuses the pid); start 0: compare the pid only. */
int weir__proc_alive(pid_t pid, uint64_t start);
/* Reader's check that the writer of a named channel lives: 0, or -EPIPE with
 * "writer (pid N) died". Channels whose writer is this process pass. */
int weir__ring_writer_check(weir_chan *c, int reader);
/* 1 if readers of c should watch the writer's life (named, created by another process). */
int weir__ring_writer_watched(const weir_chan *c);
/* How often a waiting reader looks at a watched writer: the bound on noticing its death. */
#define WEIR__LIVENESS_NS 20000000ull /* 20 ms */

/* ---- waiting (ring_wait.c) ------------------------------------------------ */

/*
 * One wait: the policy of wait.h (spin for the waiter's adaptive budget, then
 * yield, then sleep on a futex word in the segment with the "announce,
 * re-check, sleep" protocol) around the caller's condition.
 */
struct weir__ring_waiter {
    weir_chan *c;
    int id;              /* reader id, or -1 (the callbacks' business) */
    uint32_t *futex;     /* word to sleep on (bumped by whoever wakes) */
    uint32_t *sleepers;  /* announced sleepers on it: the waking side wakes only if != 0 */
    uint32_t *spin_ns;   /* the waiter's adaptive spin budget */
    uint64_t max_sleep_ns; /* bound of one sleep (liveness checks between); UINT64_MAX: none */
    /* 1: the wait is over; 0: keep waiting; < 0: fail (weir_errmsg set). Called often. */
    int (*ready)(struct weir__ring_waiter *w);
    /* Checks too slow for every poll, made before each sleep: 0, or < 0 to fail. May be NULL. */
    int (*before_sleep)(struct weir__ring_waiter *w);
    /* Set the timeout text; return -ETIMEDOUT. */
    int (*timed_out)(struct weir__ring_waiter *w, int timeout_ms);
};

/* 0 when ready() said 1; else its error, before_sleep's, or timed_out's.
 * *waited_ns: time spent in the call. timeout_ms: -1 forever, else a bound (> 0). */
int weir__ring_wait(struct weir__ring_waiter *w, int timeout_ms, uint64_t *waited_ns);

/* ---- wake-ups (the waking side of weir__ring_wait's protocol) ------------- */

static inline void weir__ring_wake_writer(struct weir__chan_ctl *ctl)
{
    /* Pairs with the announce + heavy barrier + re-check in weir__ring_wait(). */
    if (weir__load_relaxed(&ctl->wr_sleeping)) {
        weir__fetch_add(&ctl->wr_futex, 1);
        weir__futex_wake_all(&ctl->wr_futex);
    }
}

static inline void weir__ring_wake_readers(struct weir__chan_ctl *ctl)
{
    weir__fetch_add(&ctl->rd_futex, 1);
    weir__futex_wake_all(&ctl->rd_futex);
}

/* ---- the writer's gate (ring_io.c and the engine hooks) -------------------- */

/* Slot w.seq % depth is free by the cached gate. */
static inline int weir__ring_slot_free(const weir_chan *c)
{
    return c->w.seq - c->w.min_read < c->depth;
}

#endif
