/* SPDX-License-Identifier: MIT */
/*
 * tests/nodes_rank.c - one rank of the nodes suite's launcher tests, run by
 * weir-run (plain and --netns) and by mpirun: it reads its place from the
 * environment (engine/cluster_env.c), joins the control plane
 * (engine/cluster.c) and prints one line per event, which the test checks.
 *
 *   nodes_rank ok [BARRIERS]   join, check the table, BARRIERS barriers,
 *                              rank 0 tears down, the others wait for it
 *   nodes_rank exit R CODE     rank R exits CODE at once; the others sleep
 *   nodes_rank kill R          join; rank R SIGKILLs itself; the others
 *                              report the failure (ignoring SIGTERM, so
 *                              weir-run's stop does not pre-empt them)
 *   nodes_rank watch MS        join; rank 0 watches for a failure for MS ms,
 *                              then tears down; the others wait (a test cuts
 *                              a rank off meanwhile, or not)
 *   nodes_rank sleep           sleep 60 s (signal forwarding)
 *
 * Heartbeat bound 1000 ms, or $NODES_HB_MS. Exit status 0 when everything this rank saw was as expected, else 1
 * with the reason on stderr. Plan hash 0x5eed; data endpoint
 * tcp://BIND:(7000 + rank).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

#include "engine/cluster.h"

extern char **environ;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "nodes_rank: " __VA_ARGS__);                                               \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        DIE("usage: nodes_rank ok|exit|kill|sleep ...");
    const char *mode = argv[1];
    if (strcmp(mode, "sleep") == 0) {
        sleep(60);
        return 0;
    }
    struct weir__cluster_env e;
    if (weir__cluster_env_parse(environ, &e) < 0)
        DIE("%s", weir_errmsg());
    if (weir_rank() != e.rank || weir_world_size() != e.size)
        DIE("weir_rank %d / weir_world_size %d differ from the parser's %d / %d", weir_rank(),
            weir_world_size(), e.rank, e.size);
    printf("rank %d of %d: launcher %s, rank from %s, coordinator %s\n", e.rank, e.size,
           e.launcher, e.rank_var, e.coord);
    if (strcmp(mode, "exit") == 0) {
        if (argc < 4)
            DIE("exit R CODE");
        if (e.rank == atoi(argv[2]))
            return atoi(argv[3]);
        sleep(60);
        return 0;
    }
    int victim = -1, watch_ms = 0;
    if (strcmp(mode, "watch") == 0) {
        if (argc < 3)
            DIE("watch MS");
        watch_ms = atoi(argv[2]);
    }
    if (strcmp(mode, "kill") == 0) {
        if (argc < 3)
            DIE("kill R");
        victim = atoi(argv[2]);
        signal(SIGTERM, SIG_IGN);
    }
    char bind[128], ep[160];
    if (weir__cluster_bind_addr(&e, bind, sizeof bind) < 0)
        DIE("%s", weir_errmsg());
    snprintf(ep, sizeof ep, "tcp://%s:%d", bind, 7000 + e.rank);
    const char *eps[] = {ep};
    struct weir__cluster_opts o = {
        .rank = e.rank, .size = e.size, .coord = e.coord, .token = e.token,
        .token_len = e.token_len, .plan_hash = 0x5eed, .endpoints = eps, .nendpoints = 1,
        .timeout_ms = 20000,
        .heartbeat_ms = getenv("NODES_HB_MS") ? atoi(getenv("NODES_HB_MS")) : 1000,
    };
    struct weir__cluster *c = weir__cluster_open(&o);
    if (!c)
        DIE("rank %d: open: %s", e.rank, weir_errmsg());
    char line[2048];
    int len = snprintf(line, sizeof line, "rank %d: table", e.rank);
    for (int r = 0; r < e.size; r++) {
        const char *x = weir__cluster_endpoint(c, r, 0);
        if (weir__cluster_nendpoints(c, r) != 1 || !x)
            DIE("rank %d: table entry %d has %u endpoints", e.rank, r,
                weir__cluster_nendpoints(c, r));
        char want[32];
        snprintf(want, sizeof want, ":%d", 7000 + r);
        if (strlen(x) < strlen(want) || strcmp(x + strlen(x) - strlen(want), want) != 0)
            DIE("rank %d: table entry %d is '%s'", e.rank, r, x);
        len += snprintf(line + len, sizeof line - (size_t)len, " %s", x);
    }
    printf("%s\n", line);
    if (watch_ms) {
        int code;
        char msg[512];
        uint64_t t0 = mono_ns();
        if (e.rank == 0) {
            while (!(code = weir__cluster_failed(c, msg, sizeof msg)) &&
                   mono_ns() - t0 < (uint64_t)watch_ms * 1000000ull)
                usleep(1000);
        } else {
            code = weir__cluster_wait(c, watch_ms + 5000);
            snprintf(msg, sizeof msg, "%s", code ? weir_errmsg() : "");
        }
        if (code)
            printf("rank %d: failure %d at %llu: %s\n", e.rank, code,
                   (unsigned long long)mono_ns(), msg);
        else
            printf("rank %d: no failure\n", e.rank);
        int r = weir__cluster_close(c, 1000);
        if (e.rank == 0)
            printf("rank 0: teardown %d\n", r);
        return code == 0 || code == -EHOSTDOWN ? 0 : 1;
    }
    if (victim >= 0) {
        if (e.rank == victim) {
            printf("rank %d: killing itself at %llu\n", e.rank, (unsigned long long)mono_ns());
            fflush(stdout);
            raise(SIGKILL);
        }
        int code;
        char msg[512];
        uint64_t t0 = mono_ns();
        if (e.rank == 0) {
            while (!(code = weir__cluster_failed(c, msg, sizeof msg)) &&
                   mono_ns() - t0 < 10000000000ull)
                usleep(1000);
        } else {
            code = weir__cluster_wait(c, 10000);
            snprintf(msg, sizeof msg, "%s", weir_errmsg());
        }
        printf("rank %d: failure %d at %llu: %s\n", e.rank, code, (unsigned long long)mono_ns(),
               msg);
        weir__cluster_close(c, 500);
        return code == -EHOSTDOWN ? 0 : 1;
    }
    int nb = argc > 2 ? atoi(argv[2]) : 1;
    for (int b = 0; b < nb; b++)
        if (weir__cluster_barrier(c, 10000) < 0)
            DIE("rank %d: barrier %d: %s", e.rank, b, weir_errmsg());
    printf("rank %d: %d barriers\n", e.rank, nb);
    if (e.rank == 0) {
        int r = weir__cluster_close(c, 5000);
        printf("rank 0: teardown %d\n", r);
        return r == 0 ? 0 : 1;
    }
    int r = weir__cluster_wait(c, 10000);
    printf("rank %d: wait %d%s%s\n", e.rank, r, r ? ": " : "", r ? weir_errmsg() : "");
    weir__cluster_close(c, 1000);
    return r == 0 ? 0 : 1;
}
