/* SPDX-License-Identifier: MIT */
/*
 * engine/stats_shm.h - the stats segment a process publishes per dag, and
 * its reader (weir-top, tests).
 *
 * Design notes. One file per dag per process, /dev/shm/weir-stats.<pid>.<graph>
 * (mode 0600), written by one publisher thread of the dag's process a few
 * times per second from counters that exist anyway (channel counters in
 * the rings, per-method counters of the actor loop). The publisher builds
 * a snapshot in private memory, then copies it into the segment under a
 * sequence lock: seq odd while it writes, even when done. A reader copies
 * the body and retries if seq was odd or changed, so it never sees a torn
 * record and never takes a lock (AeronStat's model, with a snapshot
 * instead of live words). All words are 64-bit aligned and copied with
 * relaxed atomic loads/stores, the fences pair as in any seqlock:
 * writer: seq=odd; release fence; body; seq=even (release)
 * reader: seq (acquire); body; acquire fence; seq again.
 *
 * The segment is removed at teardown, and by the next process that creates
 * a segment and finds one whose owner pid no longer exists. The only field
 * a reader writes is watch_until_ns (weir-top, same user): until then the
 * actors time their calls (busy ns per method); nobody watching costs
 * nothing but a counter increment per call.
 *
 * Layout: header, then nchans channel records, nactors actor records,
 * nmethods method records, nlinks link records (a dag across ranks: each
 * rank's process publishes its own segment, with this rank's rings and the
 * links that feed or drain them); fixed-width fields, locked by
 * _Static_assert. Any change is a version bump (2: links, rank, world).
 */
#ifndef WEIR_STATS_SHM_H
#define WEIR_STATS_SHM_H

#include <stddef.h>
#include <stdint.h>

#define WEIR__STATS_MAGIC 0x54535257u /* "WRST" little endian */
#define WEIR__STATS_VERSION 4u
#define WEIR__STATS_PREFIX "weir-stats."
#define WEIR__STATS_NAME 64          /* names (NUL-terminated, truncated) */
#define WEIR__STATS_MAX_READERS 64
#define WEIR__STATS_DRIVER (-1)      /* writer/reader "driver" */

struct weir__stats_hdr {
    uint32_t magic;          /* written last at creation (release) */
    uint32_t version;
    uint32_t hdr_bytes;      /* sizeof of each record, checked by readers */
    uint32_t chan_bytes;
    uint32_t actor_bytes;
    uint32_t method_bytes;
    uint32_t nchans;
    uint32_t nactors;
    uint32_t nmethods;
    uint32_t pid;            /* the dag's process (the driver) */
    uint32_t ncpus;          /* CPUs this process may run on */
    uint32_t interval_ms;    /* publisher period */
    uint64_t seq;            /* sequence lock: odd while a snapshot is written */
    uint64_t start_ns;       /* CLOCK_MONOTONIC when the dag started */
    uint64_t watch_until_ns; /* written by readers: time calls until then (not in the snapshot) */
    uint64_t now_ns;         /* when this snapshot was taken; the snapshot starts here */
    uint64_t snapshots;      /* snapshots published */
    uint64_t executions;     /* executions submitted / collected by the driver */
    uint64_t collected;
    uint32_t state;          /* 0 running, 1 torn down (final snapshot) */
    uint32_t timing;         /* calls are being timed */
    char graph[WEIR__STATS_NAME];
    char comm[WEIR__STATS_NAME]; /* program name */
    uint32_t nlinks;         /* link records (0 on one rank) */
    uint32_t link_bytes;
    int32_t rank;            /* this process's rank (0 on one rank) */
    uint32_t world;          /* ranks (1 on one rank) */
    uint8_t reserved[48];
};
_Static_assert(offsetof(struct weir__stats_hdr, seq) == 48, "stats header: seq");
_Static_assert(offsetof(struct weir__stats_hdr, graph) == 112, "stats header: graph");
_Static_assert(sizeof(struct weir__stats_hdr) == 304, "stats header layout");

struct weir__stats_reader {
    int32_t who;          /* actor index, or WEIR__STATS_DRIVER */
    uint32_t pid;         /* process that registered it */
    uint64_t consumed;    /* messages released */
    uint64_t starved_ns;  /* time spent waiting for a message */
    uint64_t pad;
};
_Static_assert(sizeof(struct weir__stats_reader) == 32, "stats reader layout");

struct weir__stats_chan {
    char name[WEIR__STATS_NAME];
    int32_t writer;       /* actor index, or WEIR__STATS_DRIVER */
    uint32_t depth;
    uint32_t nreaders;
    uint32_t closed;
    uint64_t messages;    /* committed (incl. error records) */
    uint64_t bytes;
    uint64_t errors;      /* error records */
    uint64_t writer_blocked_ns;
    uint64_t occupancy;   /* written - slowest released */
    uint64_t slot_bytes;
    uint64_t grows;
    struct weir__stats_reader readers[WEIR__STATS_MAX_READERS];
};
_Static_assert(offsetof(struct weir__stats_chan, messages) == 80, "stats chan: counters");
_Static_assert(sizeof(struct weir__stats_chan) == 136 + 32 * WEIR__STATS_MAX_READERS,
               "stats chan layout");

struct weir__stats_actor {
    char name[WEIR__STATS_NAME];
    uint32_t isolation;   /* WEIR_THREAD / WEIR_PROCESS */
    uint32_t pid;         /* the process running it now (0: not started) */
    uint32_t restarts;    /* process restarts */
    uint32_t nmethods;
    uint32_t method0;     /* index of its first method record */
    int32_t rank;         /* the rank hosting it (rank 0 carries the others' actors as
                             they last reported them; pid is then a process there) */
    uint64_t calls;       /* method calls finished (all methods) */
    uint64_t busy_ns;     /* timed inside methods (only while watched) */
    uint64_t input_starved_ns;
    uint64_t output_blocked_ns;
    uint64_t report_ns;   /* another rank's actor: when its rank took the counters
                             (that rank's CLOCK_MONOTONIC; rates divide by its
                             differences); 0: this rank's own, current */
};
_Static_assert(sizeof(struct weir__stats_actor) == 128, "stats actor layout");

struct weir__stats_method {
    char name[WEIR__STATS_NAME];
    uint32_t actor;
    uint32_t pad;
    uint64_t calls;       /* finished, including failed ones */
    uint64_t errors;      /* calls that failed */
    uint64_t busy_ns;     /* timed (only while watched) */
};
_Static_assert(sizeof(struct weir__stats_method) == 96, "stats method layout");

/* One link of a channel (as struct weir_dag_link_stats). */
struct weir__stats_link {
    uint32_t chan;          /* channel index */
    int32_t peer_rank;
    uint32_t sending;       /* 1: sent to peer_rank, 0: received from it */
    int32_t status;         /* the stream's */
    uint32_t conn_streams;  /* channels sharing the connection */
    int32_t rank;           /* the rank whose link it is (rank 0 also carries the
                               others' as they reported them) */
    uint64_t messages;      /* the stream's */
    uint64_t bytes;
    uint64_t acked;
    uint64_t credit_stalls;
    uint64_t frames;        /* the connection's */
    uint64_t batches;
    uint64_t reconnects;
    uint64_t last_rtt_ns;
    uint64_t stream_frames; /* the channel's own (weir_dag_link_stats) */
    uint64_t stream_batches;
    char peer[80];          /* "ADDR:PORT" */
};
_Static_assert(offsetof(struct weir__stats_link, messages) == 24, "stats link: counters");
_Static_assert(sizeof(struct weir__stats_link) == 184, "stats link layout");

/* Bytes of a segment with these counts. */
size_t weir__stats_bytes(uint32_t nchans, uint32_t nactors, uint32_t nmethods, uint32_t nlinks);

/* Record i of a snapshot or segment laid out as above. */
struct weir__stats_chan *weir__stats_chan_at(struct weir__stats_hdr *h, unsigned i);
struct weir__stats_actor *weir__stats_actor_at(struct weir__stats_hdr *h, unsigned i);
struct weir__stats_method *weir__stats_method_at(struct weir__stats_hdr *h, unsigned i);
struct weir__stats_link *weir__stats_link_at(struct weir__stats_hdr *h, unsigned i);

/* ---- publisher side (engine/prof.c) -------------------------------------- */

/* Create /dev/shm/weir-stats.<pid>.<graph> (0600) sized for the counts, with
 * the header's identity filled in from *tmpl; first removes stale segments
 * of dead processes. Returns the mapping, its size in *bytes and its path in
 * path (cap >= 128), or NULL with weir_errmsg() set. */
struct weir__stats_hdr *weir__stats_create(const struct weir__stats_hdr *tmpl, size_t *bytes,
                                           char *path, size_t cap);
/* Copy snapshot snap (same layout, `bytes` long) into the segment under the lock. */
void weir__stats_publish(struct weir__stats_hdr *seg, const struct weir__stats_hdr *snap,
                         size_t bytes);
/* 1 if process pid has exited (no such process, or a zombie). */
int weir__stats_pid_gone(int pid);
/* Remove every weir-stats segment whose owner pid is gone. Returns how many. */
int weir__stats_remove_stale(void);

/* ---- reader side (tools/weir_top.c, tests) ------------------------------- */

struct weir__stats_view {
    char path[160];
    int fd;
    size_t bytes;     /* of a snapshot */
    size_t map_bytes; /* of the mapping */
    struct weir__stats_hdr *seg; /* the mapping (read/write: watch_until_ns) */
    struct weir__stats_hdr *snap; /* last consistent copy (malloc) */
};

/* Open a segment by path. 0, or -errno with weir_errmsg() naming the path. */
int weir__stats_open(struct weir__stats_view *v, const char *path);
/* Take a consistent copy into v->snap. 0, -EAGAIN if the writer kept it busy, -ESTALE if the
 * owner process is gone. */
int weir__stats_read(struct weir__stats_view *v);
/* Ask the publisher to time calls for the next ms milliseconds. */
void weir__stats_watch(struct weir__stats_view *v, unsigned ms);
void weir__stats_close(struct weir__stats_view *v);

/* Every weir-stats segment in /dev/shm: fn(path, pid, graph) for each;
 * stops early when fn returns non-zero. Returns how many were visited. */
int weir__stats_list(int (*fn)(const char *path, int pid, const char *graph, void *arg), void *arg);

#endif
