/* SPDX-License-Identifier: MIT */
/*
 * tools/weir_top.c - `weir-top`: live counters of a running weir process,
 * read from its stats segments (/dev/shm/weir-stats.<pid>.<graph>, see
 * engine/stats_shm.h) without stopping or slowing it.
 *
 *   weir-top                      list the weir processes (dags) visible here
 *   weir-top [-d S] PID|NAME      refresh every S seconds (default 1)
 *   weir-top --once [--json] ...  one table (or one JSON object) over S seconds, then exit
 *
 * NAME matches a graph name or a program name. Per channel: msgs/s, MB/s,
 * writer-blocked %, worst reader-starved %, occupancy; per actor: busy %
 * (= 100 - waiting for input - blocked on output), calls/s, restarts; the
 * bottleneck by the rule of weir_bottleneck(); across ranks, per link of
 * the rank (each rank's process has a segment of its own): msgs/s, MB/s,
 * batches/s, credit stalls, reconnects, last RTT. Exit status: 0 ok, 1 the
 * target is gone or unreadable, 2 usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

#include "engine/stats_shm.h"

static void usage(FILE *f)
{
    fputs("usage: weir-top [-d SECONDS] [--once] [--json] [PID|NAME]\n"
          "  no target: list the weir processes and their dags\n"
          "  -d S       refresh period (default 1 s; --once: the interval measured)\n"
          "  --once     print one snapshot and exit\n"
          "  --json     print it as one JSON object (implies --once)\n",
          f);
}

struct find {
    const char *target;
    long pid; /* 0: match by name */
    char path[320];
    int found, listed;
};

static int list_one(const char *path, int pid, const char *graph, void *arg)
{
    struct find *f = arg;
    int alive = !weir__stats_pid_gone(pid);
    struct weir__stats_view v;
    char comm[WEIR__STATS_NAME] = "?";
    if (weir__stats_open(&v, path) == 0) {
        weir__stats_read(&v);
        snprintf(comm, sizeof comm, "%s", v.snap->comm);
        weir__stats_close(&v);
    }
    if (!f->listed++)
        printf("%-8s %-20s %-16s %s\n", "PID", "GRAPH", "PROGRAM", "SEGMENT");
    printf("%-8d %-20s %-16s %s%s\n", pid, graph, comm, path, alive ? "" : " (exited: stale)");
    return 0;
}

static int find_one(const char *path, int pid, const char *graph, void *arg)
{
    struct find *f = arg;
    int match = f->pid ? pid == f->pid : !strcmp(graph, f->target);
    if (!match && !f->pid) {
        struct weir__stats_view v;
        if (weir__stats_open(&v, path) == 0) {
            weir__stats_read(&v);
            match = !strcmp(v.snap->comm, f->target) || !strcmp(v.snap->graph, f->target);
            weir__stats_close(&v);
        }
    }
    if (match && !weir__stats_pid_gone(pid)) {
        snprintf(f->path, sizeof f->path, "%s", path);
        f->found = 1;
        return 1;
    }
    return 0;
}

static const char *who_name(struct weir__stats_hdr *h, int32_t who)
{
    if (who == WEIR__STATS_DRIVER)
        return "driver";
    if (who >= 0 && (uint32_t)who < h->nactors)
        return weir__stats_actor_at(h, (unsigned)who)->name;
    return "(other)";
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static double pct(uint64_t part, double wall_ns)
{
    double p = wall_ns > 0 ? 100.0 * (double)part / wall_ns : 0;
    return p > 100 ? 100 : p;
}

/* Print the interval from a (earlier) to b (later). */
static void show(struct weir__stats_hdr *a, struct weir__stats_hdr *b, int json)
{
    double wall = (double)(b->now_ns - a->now_ns);
    double secs = wall / 1e9;
    unsigned na = b->nactors;
    struct weir_actor_load loads[na ? na : 1];
    double busy[na ? na : 1], starved[na ? na : 1], blocked[na ? na : 1];
    /* Per actor, the earlier record and the time between the two: an actor
     * of another rank (rank 0 carries them as reported) counts over its
     * reports' interval (0 when no new one came: no rate), and a record's
     * first report or start has no rate yet. */
    struct weir__stats_actor *xa[na ? na : 1];
    double awall[na ? na : 1];
    for (unsigned i = 0; i < na; i++) {
        struct weir__stats_actor *x = weir__stats_actor_at(a, i), *y = weir__stats_actor_at(b, i);
        if (x->pid == 0 || (y->report_ns && !x->report_ns))
            x = y;
        xa[i] = x;
        awall[i] = y->report_ns ? (double)(y->report_ns - x->report_ns) : wall;
    }
    for (unsigned i = 0; i < na; i++) {
        struct weir__stats_actor *x = xa[i], *y = weir__stats_actor_at(b, i);
        starved[i] = pct(y->input_starved_ns - x->input_starved_ns, awall[i]);
        blocked[i] = pct(y->output_blocked_ns - x->output_blocked_ns, awall[i]);
        busy[i] = 100.0 - starved[i] - blocked[i];
        if (busy[i] < 0)
            busy[i] = 0;
        /* An actor that made no call in the interval is idle, not busy. */
        if (y->calls == x->calls)
            busy[i] = 0;
    }
    /* Across ranks an actor this rank does not host never starts here: on
     * rank 0 it shows as its rank last reported it (its calls and waits over
     * the interval of those reports: every WEIR_HEARTBEAT_MS / 2), elsewhere
     * (pid 0, and on rank 0 before its first report) not at all; either way
     * the bottleneck is this rank's (its rank's own weir-top judges it). */
    unsigned nl = 0;
    int map[na ? na : 1];
    for (unsigned i = 0; i < na; i++) {
        struct weir__stats_actor *y = weir__stats_actor_at(b, i);
        if (b->world > 1 && (y->pid == 0 || y->rank != b->rank))
            continue;
        map[nl] = (int)i;
        loads[nl].name = y->name;
        loads[nl++].busy = busy[i] / 100.0;
    }
    char bn[512];
    int bl = weir_bottleneck(loads, nl, b->ncpus, bn, sizeof bn);
    int bi = bl >= 0 ? map[bl] : -1;
    if (json) {
        printf("{\"pid\":%u,\"graph\":", b->pid);
        json_str(b->graph);
        printf(",\"program\":");
        json_str(b->comm);
        printf(",\"interval_s\":%.3f,\"uptime_s\":%.3f,\"cpus\":%u,\"executions\":%llu,"
               "\"collected\":%llu,\"timing\":%s,\"torn_down\":%s,\"channels\":[",
               secs, (double)(b->now_ns - b->start_ns) / 1e9, b->ncpus,
               (unsigned long long)b->executions, (unsigned long long)b->collected,
               b->timing ? "true" : "false", b->state ? "true" : "false");
        for (unsigned c = 0; c < b->nchans; c++) {
            struct weir__stats_chan *x = weir__stats_chan_at(a, c), *y = weir__stats_chan_at(b, c);
            double worst = 0;
            for (unsigned r = 0; r < y->nreaders && r < x->nreaders; r++) {
                double s = pct(y->readers[r].starved_ns - x->readers[r].starved_ns, wall);
                worst = s > worst ? s : worst;
            }
            printf("%s{\"name\":", c ? "," : "");
            json_str(y->name);
            printf(",\"writer\":");
            json_str(who_name(b, y->writer));
            printf(",\"messages\":%llu,\"bytes\":%llu,\"errors\":%llu,\"msgs_per_s\":%.1f,"
                   "\"mb_per_s\":%.3f,\"writer_blocked_pct\":%.1f,\"reader_starved_pct\":%.1f,"
                   "\"occupancy\":%llu,\"depth\":%u,\"slot_bytes\":%llu,\"grows\":%llu,"
                   "\"closed\":%s,\"readers\":[",
                   (unsigned long long)y->messages, (unsigned long long)y->bytes,
                   (unsigned long long)y->errors, secs > 0 ? (double)(y->messages - x->messages) / secs : 0,
                   secs > 0 ? (double)(y->bytes - x->bytes) / secs / 1e6 : 0,
                   pct(y->writer_blocked_ns - x->writer_blocked_ns, wall), worst,
                   (unsigned long long)y->occupancy, y->depth, (unsigned long long)y->slot_bytes,
                   (unsigned long long)y->grows, y->closed ? "true" : "false");
            for (unsigned r = 0; r < y->nreaders; r++) {
                printf("%s{\"who\":", r ? "," : "");
                json_str(who_name(b, y->readers[r].who));
                printf(",\"pid\":%u,\"consumed\":%llu,\"starved_ns\":%llu}", y->readers[r].pid,
                       (unsigned long long)y->readers[r].consumed,
                       (unsigned long long)y->readers[r].starved_ns);
            }
            printf("]}");
        }
        printf("],\"actors\":[");
        for (unsigned i = 0; i < na; i++) {
            struct weir__stats_actor *x = xa[i], *y = weir__stats_actor_at(b, i);
            double as = awall[i] / 1e9;
            printf("%s{\"name\":", i ? "," : "");
            json_str(y->name);
            printf(",\"isolation\":\"%s\",\"rank\":%d,\"pid\":%u,\"restarts\":%u,\"calls\":%llu,"
                   "\"calls_per_s\":%.1f,\"busy_pct\":%.1f,\"input_starved_pct\":%.1f,"
                   "\"output_blocked_pct\":%.1f,\"input_starved_ns\":%llu,"
                   "\"output_blocked_ns\":%llu,\"bottleneck\":%s,\"methods\":[",
                   y->isolation == WEIR_PROCESS ? "process" : "thread", y->rank, y->pid,
                   y->restarts,
                   (unsigned long long)y->calls, as > 0 ? (double)(y->calls - x->calls) / as : 0,
                   busy[i], starved[i], blocked[i], (unsigned long long)y->input_starved_ns,
                   (unsigned long long)y->output_blocked_ns, bi == (int)i ? "true" : "false");
            for (unsigned k = 0; k < y->nmethods && y->method0 + k < b->nmethods; k++) {
                struct weir__stats_method *m = weir__stats_method_at(b, y->method0 + k);
                printf("%s{\"name\":", k ? "," : "");
                json_str(m->name);
                printf(",\"calls\":%llu,\"errors\":%llu,\"busy_ns\":%llu}",
                       (unsigned long long)m->calls, (unsigned long long)m->errors,
                       (unsigned long long)m->busy_ns);
            }
            printf("]}");
        }
        printf("],\"rank\":%d,\"world\":%u,\"links\":[", b->rank, b->world);
        for (unsigned l = 0, first = 1; l < b->nlinks; l++) {
            struct weir__stats_link *x = weir__stats_link_at(a, l), *y = weir__stats_link_at(b, l);
            if (y->rank < 0)
                continue; /* another rank's, not reported yet */
            if (x->rank < 0)
                x = y; /* its first report: no rate yet */
            printf("%s{\"channel\":", first ? "" : ",");
            first = 0;
            json_str(y->chan < b->nchans ? weir__stats_chan_at(b, y->chan)->name : "?");
            printf(",\"direction\":\"%s\",\"peer_rank\":%d,\"peer\":",
                   y->sending ? "send" : "receive", y->peer_rank);
            json_str(y->peer);
            printf(",\"rank\":%d,\"status\":%d,\"messages\":%llu,\"bytes\":%llu,\"acked\":%llu,"
                   "\"credit_stalls\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
                   "\"conn_streams\":%u,\"frames\":%llu,\"batches\":%llu,\"reconnects\":%llu,"
                   "\"last_rtt_ns\":%llu,\"stream_frames\":%llu,\"stream_batches\":%llu}",
                   y->rank, y->status, (unsigned long long)y->messages, (unsigned long long)y->bytes,
                   (unsigned long long)y->acked, (unsigned long long)y->credit_stalls,
                   secs > 0 ? (double)(y->messages - x->messages) / secs : 0,
                   secs > 0 ? (double)(y->bytes - x->bytes) / secs / 1e6 : 0, y->conn_streams,
                   (unsigned long long)y->frames, (unsigned long long)y->batches,
                   (unsigned long long)y->reconnects, (unsigned long long)y->last_rtt_ns,
                   (unsigned long long)y->stream_frames, (unsigned long long)y->stream_batches);
        }
        printf("],\"bottleneck\":{\"actor\":");
        if (bi >= 0)
            json_str(loads[bl].name);
        else
            printf("null");
        printf(",\"text\":");
        json_str(bn);
        printf("}}\n");
        return;
    }
    printf("weir-top: %s (pid %u), graph '%s', up %.1f s, %llu executions, %u CPUs, over %.2f s%s\n",
           b->comm, b->pid, b->graph, (double)(b->now_ns - b->start_ns) / 1e9,
           (unsigned long long)b->executions, b->ncpus, secs, b->state ? " [torn down]" : "");
    printf("\n  %-24s %-12s %12s %10s %9s %9s %9s\n", "channel", "writer", "msgs/s", "MB/s",
           "w-block%", "r-starve%", "occupancy");
    for (unsigned c = 0; c < b->nchans; c++) {
        struct weir__stats_chan *x = weir__stats_chan_at(a, c), *y = weir__stats_chan_at(b, c);
        double worst = 0;
        for (unsigned r = 0; r < y->nreaders && r < x->nreaders; r++) {
            double s = pct(y->readers[r].starved_ns - x->readers[r].starved_ns, wall);
            worst = s > worst ? s : worst;
        }
        char occ[32];
        snprintf(occ, sizeof occ, "%llu/%u", (unsigned long long)y->occupancy, y->depth);
        printf("  %-24.24s %-12.12s %12.0f %10.2f %9.1f %9.1f %9s\n", y->name,
               who_name(b, y->writer), secs > 0 ? (double)(y->messages - x->messages) / secs : 0,
               secs > 0 ? (double)(y->bytes - x->bytes) / secs / 1e6 : 0,
               pct(y->writer_blocked_ns - x->writer_blocked_ns, wall), worst, occ);
    }
    printf("\n  %-16s %-8s %12s %12s %8s %9s %9s %8s\n", "actor", "mode",
           b->world > 1 ? "rank:pid" : "pid", "calls/s", "busy%", "wait-in%", "block-out%",
           "restarts");
    for (unsigned i = 0; i < na; i++) {
        struct weir__stats_actor *x = xa[i], *y = weir__stats_actor_at(b, i);
        double as = awall[i] / 1e9;
        if (b->world > 1 && y->pid == 0)
            continue; /* hosted by another rank, no report here */
        char pid[32];
        if (b->world > 1)
            snprintf(pid, sizeof pid, "%d:%u", y->rank, y->pid);
        else
            snprintf(pid, sizeof pid, "%u", y->pid);
        printf("  %-16.16s %-8s %12s %12.0f %8.1f %9.1f %9.1f %8u%s\n", y->name,
               y->isolation == WEIR_PROCESS ? "process" : "thread", pid,
               as > 0 ? (double)(y->calls - x->calls) / as : 0, busy[i], starved[i],
               blocked[i], y->restarts, bi == (int)i ? "  <- bottleneck" : "");
    }
    if (b->nlinks) {
        printf("\n  links seen from rank %d (of %u)%s\n  %-24s %-12s %12s %10s %10s %9s %8s "
               "%9s\n", b->rank, b->world,
               b->rank == 0 && b->world > 1 ? ": the other ranks' as they last reported them" : "",
               "channel", "link", "msgs/s", "MB/s", "batches/s", "stalls", "reconn",
               "rtt us");
        for (unsigned l = 0; l < b->nlinks; l++) {
            struct weir__stats_link *x = weir__stats_link_at(a, l), *y = weir__stats_link_at(b, l);
            char dir[32], rtt[24] = "-"; /* heartbeat RTT: only once the link idled */
            if (y->rank < 0)
                continue; /* another rank's, not reported yet */
            if (x->rank < 0)
                x = y; /* its first report: no rate yet */
            snprintf(dir, sizeof dir, "%d %s %d", y->rank, y->sending ? "->" : "<-", y->peer_rank);
            if (y->last_rtt_ns)
                snprintf(rtt, sizeof rtt, "%.1f", (double)y->last_rtt_ns / 1e3);
            printf("  %-24.24s %-12s %12.0f %10.2f %10.0f %9llu %8llu %9s%s\n",
                   y->chan < b->nchans ? weir__stats_chan_at(b, y->chan)->name : "?", dir,
                   secs > 0 ? (double)(y->messages - x->messages) / secs : 0,
                   secs > 0 ? (double)(y->bytes - x->bytes) / secs / 1e6 : 0,
                   secs > 0 ? (double)(y->stream_batches - x->stream_batches) / secs : 0,
                   (unsigned long long)y->credit_stalls, (unsigned long long)y->reconnects, rtt,
                   y->status && y->status != -EPIPE ? "  failed" : "");
        }
    }
    printf("\n  %s\n", bn);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double period = 1.0;
    int once = 0, json = 0;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--once")) {
            once = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = once = 1;
        } else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            char *end;
            period = strtod(argv[++i], &end);
            if (*end || !(period > 0) || period > 3600) {
                fprintf(stderr, "weir-top: -d wants seconds in (0, 3600], got '%s'\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' || target) {
            fprintf(stderr, "weir-top: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            target = argv[i];
        }
    }
    struct find f = {.target = target};
    if (!target) {
        if (weir__stats_list(list_one, &f) < 0) {
            fprintf(stderr, "weir-top: %s\n", weir_errmsg());
            return 1;
        }
        if (!f.listed)
            printf("weir-top: no weir process with a stats segment in /dev/shm\n");
        return 0;
    }
    char *end;
    f.pid = strtol(target, &end, 10);
    if (*end || f.pid <= 0)
        f.pid = 0;
    weir__stats_list(find_one, &f);
    if (!f.found) {
        if (f.pid && weir__stats_pid_gone((int)f.pid))
            fprintf(stderr, "weir-top: no process %ld\n", f.pid);
        else
            fprintf(stderr, "weir-top: no running weir dag matches '%s' (run weir-top without an "
                            "argument to list them)\n", target);
        return 1;
    }
    struct weir__stats_view v;
    if (weir__stats_open(&v, f.path) < 0) {
        fprintf(stderr, "weir-top: %s\n", weir_errmsg());
        return 1;
    }
    unsigned pid = v.seg->pid;
    char graph[WEIR__STATS_NAME];
    snprintf(graph, sizeof graph, "%s", v.seg->graph); /* static once published */
    struct weir__stats_hdr *prev = malloc(v.bytes);
    int rc = prev ? weir__stats_read(&v) : -ENOMEM;
    int status = 0, printed = 0;
    for (;;) {
        if (rc < 0)
            break;
        memcpy(prev, v.snap, v.bytes);
        if (prev->state)
            break; /* torn down: nothing more will come */
        weir__stats_watch(&v, (unsigned)(period * 1000) + 2000);
        struct timespec ts = {(time_t)period, (long)((period - (double)(time_t)period) * 1e9)};
        nanosleep(&ts, NULL);
        rc = weir__stats_read(&v);
        if (rc < 0)
            break;
        if (!once)
            printf("\033[H\033[2J");
        show(prev, v.snap, json);
        printed = 1;
        if (once || v.snap->state)
            break;
    }
    if (rc == -ESTALE) {
        fprintf(stderr, "weir-top: process %u (graph '%s') exited\n", pid, graph);
        status = 1;
    } else if (rc < 0) {
        fprintf(stderr, "weir-top: %s\n", rc == -ENOMEM ? "out of memory" : weir_errmsg());
        status = 1;
    } else if (v.snap->state) {
        fprintf(stderr, "weir-top: graph '%s' of process %u was torn down\n", graph, pid);
        status = printed ? 0 : 1;
    }
    free(prev);
    weir__stats_close(&v);
    return status;
}
