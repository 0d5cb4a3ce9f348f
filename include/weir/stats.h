/* SPDX-License-Identifier: MIT */
/*
 * weir/stats.h - counters kept in shared memory by every channel
 * (implemented in channels/ring_stats.c).
 *
 * Counters are updated by the writer and readers themselves (no extra
 * thread), so reading them is a snapshot of relaxed loads: each number is
 * exact at some instant, the set is not one atomic snapshot.
 */
#ifndef WEIR_STATS_H
#define WEIR_STATS_H

#include <weir/chan.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weir_chan_reader_stats {
    int id;             /* reader id */
    int pid;            /* process that registered it */
    uint64_t consumed;  /* messages released */
    uint64_t starved_ns;/* time spent waiting for a message */
};

struct weir_chan_stats {
    char name[WEIR_CHAN_MAX_NAME + 1];
    uint64_t messages;          /* messages committed (sequence numbers used) */
    uint64_t bytes;             /* payload bytes committed */
    uint64_t errors;            /* error records committed (counted just after each is
                                   published, so never more than messages) */
    uint64_t writer_blocked_ns; /* time the writer waited for readers */
    uint64_t grows;             /* times the channel grew */
    size_t slot_bytes;          /* current slot size */
    unsigned depth;
    unsigned nreaders;          /* registered readers */
    int closed;
    struct weir_chan_reader_stats readers[WEIR_CHAN_MAX_READERS]; /* first nreaders valid */
};

/*
 * Fill *st with the channel's counters (the struct and the function share a
 * name, as `struct stat` and stat() do). Any handle, any thread. Returns 0,
 * or -EINVAL when c or st is NULL.
 */
WEIR_API int weir_chan_stats(const weir_chan *c, struct weir_chan_stats *st);

#ifdef __cplusplus
}
#endif
#endif
