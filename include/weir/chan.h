/* SPDX-License-Identifier: MIT */
/*
 * weir/chan.h - the shared-memory ring channel (implemented in channels/:
 * ring.c segments and growth, ring_io.c the hot path, ring_readers.c
 * registration, ring_wait.c waiting, ring_life.c process liveness).
 *
 * A channel has one writer and up to WEIR_CHAN_MAX_READERS registered
 * readers. Every registered reader sees every message committed after its
 * registration, in order, exactly once. The writer never drops or
 * overwrites: reserving a slot blocks until every registered reader has
 * released the message that last used it. With depth D the writer can be
 * at most D messages ahead of the slowest registered reader.
 *
 * The ring lives in a shared segment (a memfd for anonymous channels, a
 * POSIX shm object "/weir.<name>" for named ones, mode 0600). Anonymous
 * channels are shared with child processes through fork(); named ones can
 * be opened by any process of the same user with weir_chan_open().
 *
 * Threads: the writer side (reserve/commit/write/close) must be used by one
 * thread at a time. Each reader id must be used by one thread at a time;
 * different reader ids may be used concurrently from different threads on
 * the same handle. Registration, deregistration and weir_chan_stats() are
 * safe from any thread.
 *
 * Waiting: a blocked call spins briefly, then yields, then sleeps on a
 * futex in the shared segment. When nobody sleeps, no call makes a system
 * call. timeout_ms: -1 waits forever, 0 never waits, > 0 is a bound in
 * milliseconds; an expired wait fails with -ETIMEDOUT.
 *
 * Messages larger than the slot size: the channel grows. The writer maps a
 * new data segment whose slots hold the message (slot size doubles, rounded
 * up to a power of two that fits), marks the old slot as a forward, and
 * readers follow the forward when they reach it. Sequence numbers do not
 * change. Cost: one ftruncate + mmap in the writer and one mmap per reader
 * process, once per growth; the old data segments stay mapped until the
 * channel is freed (at most about as much memory again as the newest one).
 * Generations are appended to the channel's segment file, so a reader
 * process can follow a growth even after the writer has exited.
 * At most WEIR_CHAN_MAX_GENS - 1 growths per channel (then -EMSGSIZE).
 * Segments are allocated when created or grown (posix_fallocate), so a
 * full /dev/shm is an error from create or reserve (-ENOMEM), never a
 * SIGBUS later.
 */
#ifndef WEIR_CHAN_H
#define WEIR_CHAN_H

#include <weir/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEIR_CHAN_MAX_READERS 64
#define WEIR_CHAN_MAX_GENS 40
#define WEIR_CHAN_MAX_DEPTH (1u << 20)
#define WEIR_CHAN_MAX_SLOT ((size_t)1 << 34) /* 16 GiB */
#define WEIR_CHAN_MAX_NAME 200

#define WEIR_CHAN_DEFAULT_SLOT 4096
#define WEIR_CHAN_DEFAULT_DEPTH 8

typedef struct weir_chan weir_chan;

typedef struct weir_chan_opts {
    size_t slot_bytes;    /* initial slot size; 0: WEIR_CHAN_DEFAULT_SLOT */
    unsigned depth;       /* slots; 0: WEIR_CHAN_DEFAULT_DEPTH; max WEIR_CHAN_MAX_DEPTH */
    unsigned max_readers; /* 0: WEIR_CHAN_MAX_READERS; more is -EINVAL */
} weir_chan_opts;

/* Flags of a message (weir_chan_msg.flags). */
#define WEIR_MSG_ERROR 0x1u /* an error record: data is a NUL-terminated text */

/* One message as seen by a reader (weir_chan_read_msg). */
typedef struct weir_chan_msg {
    const void *data; /* points into the shared segment; valid until release */
    size_t len;       /* payload bytes (for an error record: strlen + 1) */
    uint64_t seq;     /* sequence number: 0 for the first message ever written */
    uint32_t flags;   /* WEIR_MSG_* */
} weir_chan_msg;

/*
 * Create a channel; the returned handle is its writer (and may also
 * register readers, for readers in the same process or in children forked
 * later). name NULL makes an anonymous channel (memfd); otherwise a named
 * one, "/weir.<name>" in /dev/shm, that other processes open with
 * weir_chan_open(); the name is removed when the creator frees the handle.
 * o may be NULL. Returns NULL on failure (-EINVAL bad options, -EEXIST
 * name in use by a live process, or the errno of the failing system call).
 * A name left behind by a creator that died (its pid and start time are in
 * the segment, so a reused pid does not count) is reclaimed: the old
 * segment is unlinked (processes that still map it keep it) and a new one
 * created.
 * The caller owns the handle and frees it with weir_chan_free().
 */
WEIR_API weir_chan *weir_chan_create(const char *name, const weir_chan_opts *o);

/*
 * Open a named channel created by another process (or this one) in order
 * to read it. Checks the magic and version of the segment and its sizes:
 * a foreign or corrupt segment fails with -EPROTO or -EBADMSG. The handle
 * cannot write (-EPERM). The caller owns the handle.
 *
 * A reader of such a handle that waits for a message watches the writer
 * (the creating process): if it dies without closing, the wait ends within
 * about 20 ms, once every message it committed was read, with -EPIPE and
 * "writer (pid N) died" in weir_errmsg().
 */
WEIR_API weir_chan *weir_chan_open(const char *name);

/*
 * Remove the name of a channel left behind by a process that died. Open
 * handles stay valid. Returns 0, or -ENOENT.
 */
WEIR_API int weir_chan_unlink(const char *name);

/* The channel's name ("anon" for anonymous channels). Owned by the handle. */
WEIR_API const char *weir_chan_name(const weir_chan *c);

/*
 * Register a reader. Returns its id (0 .. max_readers-1), or -ENOSPC when
 * max_readers are registered, -EPIPE if the channel is closed. The reader
 * sees every message committed after this call returns (and possibly some
 * committed while it ran), in order.
 *
 * The id reads through this handle only, and its liveness (for
 * weir_chan_reap_dead_readers) follows this process. To read it through
 * another handle (a process that opened the channel by name, say), that
 * handle calls weir_chan_attach_reader(); reading before attaching fails
 * with -EINVAL, "registered through another handle: attach it first".
 * Children forked after the registration may read through their copy of
 * this handle directly.
 */
WEIR_API int weir_chan_register_reader(weir_chan *c);

/*
 * Take over reader id `reader`, registered through another handle (often
 * by a coordinator that never reads with it, or before a fork), so this
 * handle reads from where that id stands: the first message it has not
 * released, so no message is missed between registration and the first
 * read (a message the old handle held and did not release is read again).
 * From then on the id belongs to this handle and process (liveness checks
 * follow this process); the previous handle's next use of it fails with
 * -EINVAL ("taken over by another handle"), and freeing the previous
 * handle leaves the id registered. Any thread; the id's reads must then
 * come from one thread at a time, as always.
 * Returns 0, or -EINVAL (out of range, or not registered).
 */
WEIR_API int weir_chan_attach_reader(weir_chan *c, int reader);

/*
 * Wait until at least n readers are registered (through any handle, in any
 * process), so that none misses the first message. Any handle, any thread.
 * timeout_ms: 0 checks once, -1 waits forever. Returns 0, or -ETIMEDOUT,
 * -EPIPE (closed), -EINVAL (n larger than max_readers).
 */
WEIR_API int weir_chan_wait_readers(weir_chan *c, unsigned n, int timeout_ms);

/*
 * Deregister reader `reader`: the writer stops waiting for it at once. Any
 * message it holds is released. Works from any handle of the channel and
 * any process, so a dead reader can be force-deregistered by its id.
 * Returns 0, or -EINVAL if `reader` is not registered.
 */
WEIR_API int weir_chan_deregister_reader(weir_chan *c, int reader);

/*
 * Force-deregister every registered reader whose process is dead: exited,
 * a zombie its parent has not reaped yet, or replaced by a later process
 * that reuses its pid (the start time recorded at registration or attach
 * tells them apart). Returns how many were removed.
 */
WEIR_API int weir_chan_reap_dead_readers(weir_chan *c);

/*
 * Writer: reserve space for a message of len bytes (len may be 0, and may
 * exceed the slot size: the channel then grows). Blocks while the slot is
 * still held by a registered reader. Returns a pointer into the shared
 * segment, valid until commit; NULL on failure with weir_errcode()
 * -ETIMEDOUT, -EPIPE (closed), -EBUSY (already reserved), -EPERM (not the
 * writer), -ENOMEM (growth failed), -EMSGSIZE (len > WEIR_CHAN_MAX_SLOT).
 */
WEIR_API void *weir_chan_reserve(weir_chan *w, size_t len, int timeout_ms);

/*
 * Writer: publish the reserved message with len bytes (len <= the reserved
 * length). Never blocks. Returns 0, or -EINVAL without a reservation or
 * with len larger than reserved.
 */
WEIR_API int weir_chan_commit(weir_chan *w, size_t len);

/*
 * Writer, batch claim (the Disruptor's next(n)): reserve up to n
 * consecutive messages of up to len bytes each with one look at the
 * readers. Waits, as weir_chan_reserve() does, until at least one slot is
 * free, then takes every free slot up to n: the count can be smaller than
 * n (a ring that is partly full, or n larger than the depth: at most depth
 * slots are ever free), like a partial write(2). slots[i] receives the
 * pointer for message i of the batch, valid until the commit; the slots
 * are not contiguous in memory (the ring wraps). len may exceed the slot
 * size: the channel grows first, and the whole batch lies in the new
 * generation. Returns the count (1..n), or -EINVAL (n 0, slots NULL), or
 * the codes of weir_chan_reserve() (-EBUSY while anything is reserved).
 */
WEIR_API int weir_chan_reserve_n(weir_chan *w, size_t len, unsigned n, void **slots,
                                 int timeout_ms);

/*
 * Writer: publish the first k messages of the reserved batch in order,
 * message i with lens[i] bytes (lens NULL: every one len bytes, the length
 * given to weir_chan_reserve_n). The rest of the batch is dropped: it uses
 * no sequence number, and k 0 drops the whole batch. One publication for
 * the k messages (readers see them all at once). Never blocks. Returns 0,
 * or -EINVAL (nothing reserved, k larger than the batch, a length larger
 * than reserved: nothing is published then). weir_chan_commit() commits a
 * batch of exactly one; a larger batch needs this call.
 */
WEIR_API int weir_chan_commit_n(weir_chan *w, unsigned k, const size_t *lens);

/* Writer: copy len bytes from p into a new message. reserve + memcpy + commit. */
WEIR_API int weir_chan_write(weir_chan *w, const void *p, size_t len, int timeout_ms);

/*
 * Writer: publish an error record in place of a message: it takes one
 * sequence number like any message and carries `text` (copied, truncated
 * to 4095 bytes) instead of data.
 */
WEIR_API int weir_chan_write_error(weir_chan *w, const char *text, int timeout_ms);

/*
 * Reader: wait for the next message and return a zero-copy view of it,
 * valid until weir_chan_release(). Error records are returned as messages
 * with WEIR_MSG_ERROR set (and must be released too). Returns 0, or
 * -ETIMEDOUT, -EPIPE (closed and drained, or the writer of a channel
 * opened by name died: see weir_chan_open), -EBUSY (a message is already
 * held: release it first), -EINVAL (reader not registered, or registered
 * through another handle: see weir_chan_attach_reader).
 */
WEIR_API int weir_chan_read_msg(weir_chan *c, int reader, weir_chan_msg *m, int timeout_ms);

/*
 * Reader: like weir_chan_read_msg() but returns the payload pointer and
 * length. An error record is consumed (released) and reported as NULL with
 * weir_errcode() == -EREMOTEIO and its text in weir_errmsg(). Other
 * failures: NULL with the codes of weir_chan_read_msg().
 */
WEIR_API const void *weir_chan_read(weir_chan *c, int reader, size_t *len, int timeout_ms);

/*
 * Reader: release the message it holds (of a batch from weir_chan_read_n,
 * the oldest one it still holds). -EINVAL if it holds none.
 */
WEIR_API int weir_chan_release(weir_chan *c, int reader);

/*
 * Reader, batch read: wait, as weir_chan_read_msg() does, for at least one
 * message, then hold every message available up to n (the count can be
 * smaller than n; never more than the depth) and describe them in
 * msgs[0 .. count-1], in order, with consecutive sequence numbers. Each
 * view stays valid until that message is released. Error records are
 * messages with WEIR_MSG_ERROR set, as in weir_chan_read_msg(). Returns the
 * count (1..n), or -EINVAL (n 0, msgs NULL), or the codes of
 * weir_chan_read_msg() (-EBUSY while any message is held). A corrupt slot
 * after the first message ends the batch before it; the next read reports
 * it.
 */
WEIR_API int weir_chan_read_n(weir_chan *c, int reader, weir_chan_msg *msgs, unsigned n,
                              int timeout_ms);

/*
 * Reader: release the k oldest messages it holds (k <= held), with one
 * publication: the writer sees the k slots free at once. The others stay
 * held (release them later, with either call). Returns 0, or -EINVAL (k 0,
 * or more than it holds: nothing is released then).
 */
WEIR_API int weir_chan_release_n(weir_chan *c, int reader, unsigned k);

/*
 * Writer: close the channel. Readers still get every committed message,
 * then -EPIPE. Wakes every sleeper. Further reserves fail with -EPIPE.
 */
WEIR_API int weir_chan_close(weir_chan *w);

/* 1 if the channel was closed by its writer, else 0. */
WEIR_API int weir_chan_is_closed(const weir_chan *c);

/*
 * Unmap and free the handle; the creator also removes the channel's name.
 * Never blocks. Readers registered through this handle are deregistered.
 * NULL is a no-op. Other processes keep their own mappings.
 */
WEIR_API void weir_chan_free(weir_chan *c);

/* The fd of the control segment (for passing to other processes). */
WEIR_API int weir_chan_fd(const weir_chan *c);

#ifdef __cplusplus
}
#endif
#endif
