/* SPDX-License-Identifier: MIT */
/* channels/chan_internal.h - calls of the channel used by the engine, not public. */
#ifndef WEIR_CHAN_INTERNAL_H
#define WEIR_CHAN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <weir/chan.h>

/* The engine's shared notes and flags use the same named atomics. */
#include "channels/atomics.h"

struct weir__chan_ctl;
struct weir__slot_hdr;

/* Writer: drop the current reservation (nothing is published, no sequence
 * number is used). 0, or -EINVAL if nothing is reserved. */
int weir__chan_unreserve(weir_chan *w);

/* Fork support (engine/proc.c): see ring.c. */
void weir__chan_after_fork(weir_chan *c);
/* In a forked child that will never use c: unmap and close this process's
 * copy (no shared state is touched); only weir_chan_free may follow. */
void weir__chan_forget(weir_chan *c);
int weir__chan_writer_resync(weir_chan *c);
int weir__chan_reader_resync(weir_chan *c, int id);
int weir__chan_claim_reader(weir_chan *c, int id);
uint64_t weir__chan_write_seq(const weir_chan *c);
uint64_t weir__chan_read_seq(const weir_chan *c, int id);
/* The slot payloads of the generation this handle's writer (reader < 0) or
 * its reader `reader` is on now, in this process: *data and *bytes (depth
 * slots). A later generation (a slot grown) is elsewhere; earlier ones stay
 * mapped until the handle is freed. 0, or -EINVAL. */
int weir__chan_slot_area(const weir_chan *c, int reader, void **data, size_t *bytes);
void weir__chan_set_label(weir_chan *c, const char *label);
/* Cheap readiness checks, so callers can skip computing a deadline (ring.c). */
int weir__chan_can_read(weir_chan *c, int id);
int weir__chan_can_reserve(weir_chan *c, size_t len);

/* Would a read by id (timeout -1) return at once: a message, the close, or
 * an error? Would a reserve of c return at once: a free slot (growing the
 * slot if need be does not wait), the close, or misuse? Neither reads a
 * clock or writes an error text: the checks of a schedule run step by step
 * (the driver's worker, engine/actor.c). ring_fork.c, ring_io.c. */
int weir__chan_read_wont_block(weir_chan *c, int id);
int weir__chan_space_now(weir_chan *c);
struct weir__wait_word;
/* The futex word a reader of c (writer_side 0) or its writer (1) sleeps on,
 * for weir__wait_many. */
void weir__chan_wait_word(const weir_chan *c, int writer_side, struct weir__wait_word *w);
/* Count ns of waiting done for c's reader `reader` (starved) or, reader < 0,
 * for its writer (blocked), by someone who waited for them (weir_chan_stats). */
void weir__chan_count_wait(weir_chan *c, int reader, uint64_t ns);

/* Hooks for readers that keep their own cursor (channels/ring_window.c);
 * defined in ring_cursor.c, beside the handle's private state (ring_handle.h). */
struct weir__gen_view {
    const struct weir__slot_hdr *hdrs; /* slot headers of the generation */
    const uint8_t *data;               /* slot payloads */
    size_t stride;                     /* bytes between payloads */
    size_t slot_bytes;                 /* payload capacity of a slot */
};
/* The shared control segment of c. */
struct weir__chan_ctl *weir__chan_ctl(const weir_chan *c);
/* Map generation k (if not yet) and describe it. 0, or -EBADMSG / -errno. */
int weir__chan_gen_view(weir_chan *c, unsigned k, struct weir__gen_view *v);
/* Registration epoch this handle holds for reader id (-1 if not registered here). */
int64_t weir__chan_reader_epoch(const weir_chan *c, int id);
/* Publish that reader id has released every message before seq (seq only
 * grows), and wake a sleeping writer. One thread at a time per reader. */
void weir__chan_reader_publish(weir_chan *c, int id, uint64_t seq);
/* Wake every reader sleeping on c (they re-check and sleep again). */
void weir__chan_kick_readers(weir_chan *c);

/* The writer's gate seen from any thread (ring_io.c; a link's credit thread
 * grants the free slots of the channel it writes): the lowest read_seq of
 * the active readers, or write_seq when there is none. Free slots =
 * depth - (write_seq - gate); the gate only grows (a reader registers at
 * write_seq, a deregistered one stops counting). Reads shared lines only. */
uint64_t weir__chan_gate(const weir_chan *c);

/*
 * One thread waiting for any of several channels (a link connection's one
 * send thread and one credit thread serve every stream, channels/link_conn.c):
 * the policy of wait.h (spin for *spin_ns, yield, then sleep) around
 * ready(arg), sleeping on every word of `words` at once (futex_waitv,
 * Linux 5.16; on an older kernel the sleep is a 100 us nap between checks).
 * A word is a channel's rd_futex / rd_sleepers (a reader waiting for data)
 * or wr_futex / wr_sleeping (waiting for the gate), or the caller's own
 * bell (weir__bell_ring). 0 once ready() returned non-zero, -ETIMEDOUT
 * after timeout_ms (no error text). n <= WEIR__WAIT_MANY_MAX.
 */
#define WEIR__WAIT_MANY_MAX 128
struct weir__wait_word {
    uint32_t *futex;    /* bumped by whoever wakes */
    uint32_t *sleepers; /* announced sleepers: the waking side wakes only if != 0 */
};
int weir__wait_many(const struct weir__wait_word *words, unsigned n, int (*ready)(void *arg),
                    void *arg, uint32_t *spin_ns, int timeout_ms);
/* Tests: make weir__wait_many poll (as without futex_waitv) from now on. */
void weir__wait_many_force_poll(void);
/* Wake a weir__wait_many sleeping on the bell (futex, sleepers): bump the
 * word, and wake only if a sleeper is announced. */
void weir__bell_ring(uint32_t *futex, uint32_t *sleepers);

/* A flag word in memory shared with actor processes (engine/: the actors'
 * notes): sleep until *word != 0 (no timeout; spurious wake-ups are looped
 * over), and set it and wake every sleeper. ring_wait.c. */
void weir__flag_wait(uint32_t *word);
void weir__flag_raise(uint32_t *word);

#endif
