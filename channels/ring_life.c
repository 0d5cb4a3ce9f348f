/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_life.c - is the process behind a channel's writer or reader
 * still alive?
 *
 * Design notes. A pid alone can be reused, and kill(pid, 0) calls a zombie
 * alive (it exists until its parent reaps it), yet a zombie will never
 * release a slot or commit a message. So a process is named by its pid and
 * its start time (field 22 of /proc/PID/stat, clock ticks since boot, fixed
 * for the life of a process), recorded in the segment by the process itself
 * when it creates the channel or registers / attaches a reader id; it is
 * alive while /proc/PID/stat exists, shows the same start time and a state
 * other than Z (zombie) or X (dead). A start time of 0 (unknown: /proc not
 * mounted) falls back to kill(pid, 0), zombies then still counting as alive.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"

/* State letter and start time of pid; 0 if /proc/PID/stat cannot be read. */
static int proc_stat(pid_t pid, char *state, uint64_t *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so parse after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return 0;
    *state = p[2];
    p += 3;
    /* fields 4..21 follow the state (field 3); field 22 is the start time */
    for (int f = 4; f < 22; f++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    *start = strtoull(p + 1, NULL, 10);
    return 1;
}

uint64_t weir__proc_start_time(pid_t pid)
{
    char st;
    uint64_t start;
    if (!proc_stat(pid, &st, &start) || st == 'Z' || st == 'X')
        return 0;
    return start;
}

int weir__proc_alive(pid_t pid, uint64_t start)
{
    if (pid <= 0)
        return 0;
    char st;
    uint64_t now;
    if (proc_stat(pid, &st, &now))
        return st != 'Z' && st != 'X' && (start == 0 || now == start);
    if (start != 0)
        return 0; /* it had a /proc entry when it was recorded: gone */
    return !(kill(pid, 0) < 0 && errno == ESRCH);
}

int weir__ring_writer_watched(const weir_chan *c)
{
    return c->named && !c->writer && c->creator != getpid();
}

int weir__ring_writer_check(weir_chan *c, int reader)
{
    if (!weir__ring_writer_watched(c))
        return 0;
    const struct weir__chan_ctl *ctl = c->ctl;
    pid_t pid = (pid_t)ctl->creator_pid;
    if (weir__proc_alive(pid, ctl->creator_start))
        return 0;
    /* Drained? Messages committed before the death are still delivered. */
    if (c->r[reader].seq < weir__load_acquire(&ctl->write_seq))
        return 0;
    return CHERR(c, -EPIPE, "writer (pid %d) died (reader %d drained %llu messages)", (int)pid,
                 reader, (unsigned long long)c->r[reader].seq);
}
