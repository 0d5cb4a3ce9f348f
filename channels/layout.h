/* SPDX-License-Identifier: MIT */
/*
 * channels/layout.h - the shared-memory layout of a ring channel.
 *
 * Design notes.
 *
 * A channel is one control segment plus one or more data generations.
 * The control segment holds identity (magic, version, sizes), the writer's
 * line (write_seq, counters), the control line (active reader mask,
 * sleeper flags, futex words, the registration lock, the current
 * generation), the table of data generations, and one cache line per
 * reader. Data generation 0 follows the control part in the same segment;
 * later generations (created when a message exceeds the slot size) are
 * appended to the same file (ftruncate + mmap at the new offset), so any
 * process that holds the channel's fd - inherited or from shm_open - can
 * map them, even after the writer has exited.
 *
 * Sequence numbers are free-running 64-bit counters that span generations:
 * write_seq = messages committed; a reader's read_seq = messages it
 * released. Message s lives in slot s % depth of the generation current
 * when it was written. The writer may reuse slot s % depth for message s
 * only when every active reader has read_seq > s - depth, i.e. it is never
 * more than `depth` messages ahead of the slowest registered reader. A
 * generation switch at message s writes a FORWARD flag into slot s % depth
 * of the old generation and the message itself into the same slot of the
 * new one; a reader that meets FORWARD moves to the next generation.
 *
 * Every field that two parties write lives on its own cache line; the
 * layout is locked with _Static_assert so a change is a version bump.
 */
#ifndef WEIR_CHAN_LAYOUT_H
#define WEIR_CHAN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include <weir/chan.h>

#define WEIR__CHAN_MAGIC 0x52494557u /* "WEIR" little endian */
#define WEIR__CHAN_VERSION 4u /* 4: creator_start, readers[].pid_start */
#define WEIR__CL 64

#define WEIR__SLOT_FORWARD 0x8000u /* message is in the next generation */
#define WEIR__SLOT_FLAGS_MASK (WEIR_MSG_ERROR)

/*
 * One 64-bit word per slot: the payload length in the low 48 bits, the
 * flags in the high 16 (8 headers per cache line: the header array costs a
 * reader one line transfer per 8 small messages).
 */
struct weir__slot_hdr {
    uint64_t word;
};
_Static_assert(sizeof(struct weir__slot_hdr) == 8, "slot header layout");
#define WEIR__HDR_LEN_BITS 48
#define WEIR__HDR(len, flags) (((uint64_t)(flags) << WEIR__HDR_LEN_BITS) | (uint64_t)(len))
#define WEIR__HDR_LEN(w) ((w) & ((1ull << WEIR__HDR_LEN_BITS) - 1))
#define WEIR__HDR_FLAGS(w) ((uint32_t)((w) >> WEIR__HDR_LEN_BITS))

struct weir__gen_desc {
    uint64_t offset;     /* where the generation's slot headers start in the segment file */
    uint64_t start_seq;  /* first message written in this generation */
    uint64_t slot_bytes; /* payload capacity of a slot */
    uint64_t seg_bytes;  /* bytes of the generation (headers + slots) */
};
_Static_assert(sizeof(struct weir__gen_desc) == 32, "gen desc layout");

struct weir__reader_line {
    uint64_t read_seq;   /* next message to read == messages released */
    uint64_t start_seq;  /* read_seq at registration (for stats) */
    uint64_t starved_ns; /* time spent waiting in read */
    uint32_t pid;        /* registering (or attaching) process */
    uint32_t epoch;      /* bumped at every registration, attach and deregistration of this id */
    uint64_t pid_start;  /* start time of pid (ring_life.c), against pid reuse; 0: unknown */
    uint8_t pad[WEIR__CL - 40];
} __attribute__((aligned(WEIR__CL)));
_Static_assert(sizeof(struct weir__reader_line) == WEIR__CL, "reader line layout");

struct weir__chan_ctl {
    /* line 0..4: identity, written once at creation */
    uint32_t magic;
    uint32_t version;
    uint32_t ctl_bytes;   /* offset of generation 0's data in this segment */
    uint32_t depth;
    uint32_t max_readers;
    uint32_t creator_pid;
    uint64_t seg_bytes;   /* size of this segment */
    uint64_t slot_bytes0; /* slot size of generation 0 */
    uint64_t creator_start; /* start time of creator_pid (ring_life.c), against pid reuse */
    uint8_t pad0[WEIR__CL - 48];
    char name[4 * WEIR__CL];

    /* writer line: written by the writer only */
    uint64_t write_seq __attribute__((aligned(WEIR__CL)));
    uint64_t bytes;
    uint64_t errors;
    uint64_t blocked_ns;
    uint8_t pad1[WEIR__CL - 32];

    /* control line: read-mostly; written on registration, sleep, close */
    uint64_t active_mask __attribute__((aligned(WEIR__CL)));
    uint32_t rd_sleepers; /* readers announced asleep on rd_futex */
    uint32_t wr_sleeping; /* writer announced asleep on wr_futex */
    uint32_t rd_futex;
    uint32_t wr_futex;
    uint32_t closed;
    uint32_t reg_lock; /* pid of the holder, 0 if free */
    uint32_t cur_gen;
    uint32_t pad2;
    uint8_t pad3[WEIR__CL - 40];

    struct weir__gen_desc gens[WEIR_CHAN_MAX_GENS] __attribute__((aligned(WEIR__CL)));
    struct weir__reader_line readers[WEIR_CHAN_MAX_READERS];
};

_Static_assert(offsetof(struct weir__chan_ctl, magic) == 0, "magic first");
_Static_assert(offsetof(struct weir__chan_ctl, version) == 4, "version second");
_Static_assert(offsetof(struct weir__chan_ctl, write_seq) == 5 * WEIR__CL, "writer line");
_Static_assert(offsetof(struct weir__chan_ctl, active_mask) == 6 * WEIR__CL, "control line");
_Static_assert(offsetof(struct weir__chan_ctl, gens) == 7 * WEIR__CL, "gen table");
_Static_assert(offsetof(struct weir__chan_ctl, readers) % WEIR__CL == 0, "reader lines");
_Static_assert(sizeof(struct weir__chan_ctl) == 7 * WEIR__CL + WEIR_CHAN_MAX_GENS * 32 +
                                                    WEIR_CHAN_MAX_READERS * WEIR__CL,
               "control segment layout");

#endif
