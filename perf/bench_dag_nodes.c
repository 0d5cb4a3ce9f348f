/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_dag_nodes.c - `weir-bench dag --nodes 2`: the chain of 4 with
 * its middle edge across two ranks, each in a network namespace of its
 * own, beside the same chain on one rank and beside a raw spinning TCP
 * ping-pong over the same namespaces, measured in the same run.
 *
 * Design notes
 *
 * Launch. Run from a shell (no WEIR_WORLD_SIZE), the command re-runs
 * itself as `weir-run --netns -n 2 WEIR-BENCH dag ARGS...` (weir-run from
 * $WEIR_RUN, else beside this program: ../tools/weir-run in a build tree,
 * weir-run in an installed bin/, else $PATH) and returns its status: the
 * namespaces, the veths and the bridge are weir-run's and vanish with the
 * ranks. Under a launcher (weir-run, mpirun, srun on two machines) it runs
 * as one of the two ranks; rank 0 prints the table or the JSON, rank 1
 * writes nothing to stdout (its errors go to stderr).
 *
 * Placement: a, b on rank 0 with the driver, c, d on rank 1, so an
 * execution crosses b -> c (rank 0 to 1) and d -> driver (rank 1 to 0):
 * one network round trip, the same as one TCP ping-pong. Every output is
 * checked as in the one-rank dag bench (bench_dag_check).
 *
 * Each round both ranks run the same steps in the same order:
 *  1. the floor: rank 0 listens on the coordinator's host, port + 1 (its
 *     own namespace: the port is free there), rank 1 connects (retrying)
 *     and echoes; 8-byte messages, TCP_NODELAY, both ends spin on
 *     recv(MSG_DONTWAIT) (tcp-spin of `weir-bench net`); p50/p99 of the
 *     round trip; rank 0 closes, which ends rank 1's echo;
 *  2. the chain across the ranks over io_uring links: rank 0 measures
 *     chain4.2rank.lat and .tput (the windows of bench_dag_common.c),
 *     rank 1 sits in weir_dag_join; both free;
 *  3. the same with the actors fused on one worker per rank (threads = 1:
 *     a,b on rank 0's worker, c,d on rank 1's), chain4.2fused, then again
 *     with rank 0's worker run by its driver (driver_worker: a,b in the
 *     driver's calls), chain4.2drvw;
 *  4. the same over ZeroMQ links (not with --no-zmq): a transport that is
 *     not built fails both ranks' compile alike, and the row is skipped
 *     with the reason;
 *  5. rank 0 alone: the chain on one rank (the launcher's variables hidden
 *     for the compile), chain4.1rank (a thread per actor) and
 *     chain4.1fused (threads = 2: a,b | c,d).
 * The CPU parallelism (bench_parallelism) is measured on rank 0 before
 * each case and printed in the case's notes. --filter only selects rows
 * to print: both ranks must run every step.
 */
#include "bench_dag.h"

#include <weir/weir.h>

#include "engine/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Ray Compiled Graphs, published figures (see /work/shared/PEERS.md). */
#define RAY_CALL_NS 50000.0
#define RAY_CHAIN4_EPS 5700.0
#define MSG 8
#define CONNECT_MS 60000 /* rank 1 waits this long for rank 0's floor port */

static const int across[4] = {0, 0, 1, 1};

/* ---------------------------------------------------------------- launch */

static int relaunch(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) {
        fprintf(stderr, "weir-bench dag --nodes: cannot find this program: %s\n", strerror(errno));
        return 1;
    }
    self[k] = '\0';
    char run[PATH_MAX + 32] = "";
    const char *env = getenv("WEIR_RUN");
    if (env && *env) {
        snprintf(run, sizeof run, "%s", env);
    } else {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", self);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        const char *cand[] = {"/../tools/weir-run", "/weir-run"};
        for (size_t i = 0; i < 2 && !run[0]; i++) {
            char p[PATH_MAX + 32];
            snprintf(p, sizeof p, "%s%s", dir, cand[i]);
            if (access(p, X_OK) == 0) snprintf(run, sizeof run, "%s", p);
        }
        if (!run[0]) snprintf(run, sizeof run, "weir-run");
    }
    char **av = calloc((size_t)argc + 8, sizeof *av);
    if (!av) return 1;
    int n = 0;
    av[n++] = run;
    av[n++] = "--netns";
    av[n++] = "-n";
    av[n++] = "2";
    av[n++] = self;
    for (int i = 0; i < argc; i++) av[n++] = argv[i]; /* argv[0] is "dag" */
    av[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "weir-bench dag --nodes: fork: %s\n", strerror(errno));
        free(av);
        return 1;
    }
    if (pid == 0) {
        execvp(run, av);
        fprintf(stderr, "weir-bench dag --nodes: cannot run %s (set WEIR_RUN to weir-run): %s\n",
                run, strerror(errno));
        _exit(127);
    }
    free(av);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---------------------------------------------------------------- the floor */

/* host and port of the coordinator endpoint "tcp://HOST:PORT". */
static int coord_hostport(const char *coord, char *host, size_t cap, int *port)
{
    if (strncmp(coord, "tcp://", 6) != 0) return -1;
    const char *hp = coord + 6, *colon = strrchr(hp, ':');
    if (!colon) return -1;
    size_t hl = (size_t)(colon - hp);
    if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    if (hl + 1 > cap) return -1;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65535 ? 0 : -1;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Spin until len bytes arrived (or EOF / error / the deadline): 0, 1 at EOF, -1. */
static int spin_recv(int fd, void *buf, size_t len, uint64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) return 1;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        if (bench_now_ns() > deadline) return -1;
        bench_cpu_relax();
    }
    return 0;
}

static int spin_send(int fd, const void *buf, size_t len, uint64_t deadline)
{
    size_t put = 0;
    while (put < len) {
        ssize_t r = send(fd, (const char *)buf + put, len - put, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            put += (size_t)r;
            continue;
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        if (bench_now_ns() > deadline) return -1;
    }
    return 0;
}

/* Rank 0: listen, accept rank 1, ping-pong; fills row. */
static void floor_rank0(const char *host, int port, struct bench_row *row)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (resolve(host, port, &ss, &sl) < 0) {
        bench_dag_row_failf(row, "cannot resolve %s", host);
        return;
    }
    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (lfd < 0) {
        bench_dag_row_failf(row, "socket: %s", strerror(errno));
        return;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 1) < 0) {
        bench_dag_row_failf(row, "listen on %s:%d: %s", host, port, strerror(errno));
        close(lfd);
        return;
    }
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    int fd = poll(&pf, 1, CONNECT_MS) == 1 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
    close(lfd);
    if (fd < 0) {
        bench_dag_row_failf(row, "rank 1 did not connect to %s:%d within %d ms", host, port,
                            CONNECT_MS);
        return;
    }
    tune(fd);
    uint64_t warm = bench_opts.quick ? 20 : 100, k = 0, t_first = 0, t_last = 0;
    uint64_t deadline = UINT64_MAX;
    for (uint64_t i = 0; k < bench_opts.pp_max_rt; i++) {
        uint64_t msg[MSG / 8] = {i}, back[MSG / 8];
        uint64_t hard = bench_now_ns() + (uint64_t)bench_opts.timeout_ms * 1000000u;
        uint64_t t0 = bench_now_ns();
        int rc = spin_send(fd, msg, MSG, hard);
        if (rc == 0) rc = spin_recv(fd, back, MSG, hard);
        uint64_t t1 = bench_now_ns();
        if (rc != 0) {
            bench_dag_row_failf(row, "round trip %llu: %s", (unsigned long long)i,
                                rc > 0 ? "rank 1 closed" : strerror(errno));
            close(fd);
            return;
        }
        if (back[0] != i) {
            bench_dag_row_failf(row, "round trip %llu came back as %llu", (unsigned long long)i,
                                (unsigned long long)back[0]);
            close(fd);
            return;
        }
        if (i == warm) {
            t_first = t0;
            deadline = t0 + bench_opts.pp_budget_ns;
        }
        if (i >= warm) {
            bench_dag_samples[k++] = t1 - t0;
            t_last = t1;
        }
        if (t1 >= deadline) break;
    }
    close(fd);
    if (!k) {
        bench_dag_row_failf(row, "no round trip measured");
        return;
    }
    bench_sort_u64(bench_dag_samples, k);
    row->p50_ns = bench_percentile_sorted(bench_dag_samples, k, 0.50);
    row->p99_ns = bench_percentile_sorted(bench_dag_samples, k, 0.99);
    if (t_last > t_first) row->msgs_per_s = (double)k * 1e9 / (double)(t_last - t_first);
}

/* Rank 1: connect (retrying until rank 0 listens) and echo until EOF. 0 or -1. */
static int floor_rank1(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (resolve(host, port, &ss, &sl) < 0) {
        fprintf(stderr, "weir-bench dag --nodes: rank 1: cannot resolve %s\n", host);
        return -1;
    }
    uint64_t until = bench_now_ns() + (uint64_t)CONNECT_MS * 1000000u;
    int fd = -1;
    while (fd < 0) {
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        if (connect(fd, (struct sockaddr *)&ss, sl) == 0) break;
        close(fd);
        fd = -1;
        if (bench_now_ns() > until) {
            fprintf(stderr, "weir-bench dag --nodes: rank 1: cannot connect to %s:%d: %s\n",
                    host, port, strerror(errno));
            return -1;
        }
        usleep(2000);
    }
    tune(fd);
    for (;;) {
        uint64_t m[MSG / 8];
        /* rank 0 may pause between round trips only briefly; a long silence is an error */
        uint64_t hard = bench_now_ns() + (uint64_t)CONNECT_MS * 1000000u;
        int rc = spin_recv(fd, m, MSG, hard);
        if (rc == 1) break;
        if (rc < 0 || spin_send(fd, m, MSG, hard) < 0) {
            fprintf(stderr, "weir-bench dag --nodes: rank 1: echo: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* ---------------------------------------------------------------- the dags */

static void note_par(struct bench_row *r, double par)
{
    size_t l = strlen(r->notes);
    snprintf(r->notes + l, sizeof r->notes - l, "%sCPU parallelism %.2f", l ? "; " : "", par);
}

/* Rank 0: compile (node: across, or NULL for one rank), measure lat and tput. */
static void run_rank0(const int *node, int transport, int threads, int drvw,
                      struct bench_row *lat, struct bench_row *tput)
{
    const struct bench_dag_shape *s = bench_dag_shape("chain4");
    size_t n = MSG;
    char why[BENCH_ERR_LEN] = "";
    uint8_t *arg = bench_dag_arg_buf(n);
    if (!arg) {
        bench_dag_row_failf(lat, "out of memory");
        bench_dag_row_failf(tput, "out of memory");
        return;
    }
    weir_dag *d = bench_dag_build_on(s, n, node, transport, threads, drvw, why, sizeof why);
    if (!d && weir_errcode() == -ENOSYS) {
        /* a transport not built into this library: skipped, with the reason */
        snprintf(lat->error, sizeof lat->error, "%s", why);
        snprintf(tput->error, sizeof tput->error, "%s", why);
        lat->skipped = tput->skipped = 1;
        free(arg);
        return;
    }
    if (!d) {
        bench_dag_row_failf(lat, "%s", why);
        bench_dag_row_failf(tput, "%s", why);
        free(arg);
        return;
    }
    struct bench_dag_weir wr = {d, s, n, {arg, n}, NULL};
    struct bench_dag_ops o = bench_dag_weir_ops(&wr, arg, n);
    uint64_t next = 0;
    bench_dag_lat(&o, &next, lat);
    if (!lat->failed) bench_dag_tput(&o, &next, tput);
    else bench_dag_row_failf(tput, "not run: the latency case failed");
    if (weir_dag_free(d) < 0) {
        snprintf(why, sizeof why, "weir_dag_free: %s", weir_errmsg());
        if (!lat->failed) bench_dag_row_failf(lat, "%s", why);
        if (!tput->failed) bench_dag_row_failf(tput, "%s", why);
    }
    free(arg);
}

/* Rank 1: the same compile, then wait for the driver's teardown. 0 or -1
 * (a compile that fails alike on both ranks is 0: rank 0 reports it). */
static int run_rank1(int transport, int threads)
{
    char why[BENCH_ERR_LEN] = "";
    weir_dag *d = bench_dag_build_on(bench_dag_shape("chain4"), MSG, across, transport, threads,
                                     0, why, sizeof why);
    if (!d && weir_errcode() == -ENOSYS)
        return 0; /* not built: rank 0's row says so */
    if (!d) {
        fprintf(stderr, "weir-bench dag --nodes: rank 1: %s\n", why);
        return -1;
    }
    int rc = weir_dag_join(d, WEIR_FOREVER);
    if (rc < 0) fprintf(stderr, "weir-bench dag --nodes: rank 1: join: %s\n", weir_errmsg());
    if (weir_dag_free(d) < 0) {
        fprintf(stderr, "weir-bench dag --nodes: rank 1: free: %s\n", weir_errmsg());
        rc = -1;
    }
    return rc < 0 ? -1 : 0;
}

static const char *const hidden[] = {"WEIR_RANK", "WEIR_WORLD_SIZE", "WEIR_COORD", "WEIR_BIND",
                                     "WEIR_TOKEN"};
#define NHIDDEN (sizeof hidden / sizeof hidden[0])

static void one_rank(int threads, struct bench_row *lat, struct bench_row *tput)
{
    char *saved[NHIDDEN];
    for (size_t i = 0; i < NHIDDEN; i++) {
        const char *v = getenv(hidden[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(hidden[i]);
    }
    run_rank0(NULL, WEIR_TRANSPORT_URING, threads, 0, lat, tput);
    for (size_t i = 0; i < NHIDDEN; i++) {
        if (saved[i]) setenv(hidden[i], saved[i], 1);
        free(saved[i]);
    }
}

/* ---------------------------------------------------------------- rows */

enum { R_FLOOR, R_LAT2, R_TPUT2, R_ZLAT2, R_ZTPUT2, R_LAT1, R_TPUT1, R_FLAT2, R_FTPUT2, R_DLAT2,
       R_DTPUT2, R_FLAT1, R_FTPUT1, NROWS };

static void init_rows(struct bench_row *r)
{
    unsigned win = bench_dag_inflight();
    bench_row_init(&r[R_FLOOR], "pingpong.2rank.lat", "tcp-spin", MSG, 2, 0);
    snprintf(r[R_FLOOR].notes, sizeof r[R_FLOOR].notes,
             "8 B each way, rank 0 <-> rank 1 over the same netns pair, both ends spin");
    const struct bench_dag_shape *s = bench_dag_shape("chain4");
    bench_dag_init_rows(&r[R_LAT2], &r[R_TPUT2], s, "2rank", "weir-uring", MSG, win);
    bench_dag_init_rows(&r[R_ZLAT2], &r[R_ZTPUT2], s, "2rank", "weir-zmq", MSG, win);
    bench_dag_init_rows(&r[R_LAT1], &r[R_TPUT1], s, "1rank", "weir", MSG, win);
    for (int i = R_LAT2; i <= R_ZTPUT2; i++)
        snprintf(r[i].notes, sizeof r[i].notes, "a,b + driver on rank 0, c,d on rank 1; %s",
                 i == R_LAT2 || i == R_ZLAT2 ? "weir_execute" : "in flight = depth");
    snprintf(r[R_LAT1].notes, sizeof r[R_LAT1].notes, "4 actor thr + driver, one rank; "
             "weir_execute");
    snprintf(r[R_TPUT1].notes, sizeof r[R_TPUT1].notes, "4 actor thr + driver, one rank; "
             "in flight = depth");
    bench_dag_init_rows(&r[R_FLAT2], &r[R_FTPUT2], s, "2fused", "weir-uring", MSG, win);
    bench_dag_init_rows(&r[R_FLAT1], &r[R_FTPUT1], s, "1fused", "weir", MSG, win);
    for (int i = R_FLAT2; i <= R_FTPUT2; i++)
        snprintf(r[i].notes, sizeof r[i].notes, "threads 1 per rank: a,b fused on rank 0, c,d "
                 "on rank 1; %s", i == R_FLAT2 ? "weir_execute" : "in flight = depth");
    bench_dag_init_rows(&r[R_DLAT2], &r[R_DTPUT2], s, "2drvw", "weir-uring", MSG, win);
    for (int i = R_DLAT2; i <= R_DTPUT2; i++)
        snprintf(r[i].notes, sizeof r[i].notes, "as 2fused, rank 0's worker run by its driver "
                 "(driver_worker); %s", i == R_DLAT2 ? "weir_execute" : "in flight = depth");
    for (int i = R_FLAT1; i <= R_FTPUT1; i++)
        snprintf(r[i].notes, sizeof r[i].notes, "threads 2: a,b | c,d, one rank; %s",
                 i == R_FLAT1 ? "weir_execute" : "in flight = depth");
}

static void emit_rows(struct bench_row *r)
{
    for (int i = 0; i < NROWS; i++) {
        if ((i == R_ZLAT2 || i == R_ZTPUT2) && bench_opts.no_zmq) continue;
        if (bench_selected(r[i].name, r[i].impl)) bench_emit(&r[i]);
    }
}

static void legend(const char *host, int port)
{
    bench_note_load();
    bench_note("weir-bench dag --nodes 2%s: %d round(s), each case %llu ms per round (latency: at "
               "most %llu executions), call timeout %d ms; two ranks under a launcher "
               "(weir-run --netns: each rank in a network namespace of its own on a bridge)",
               bench_opts.quick ? " --quick" : "", bench_opts.rounds,
               (unsigned long long)(bench_opts.budget_ns / 1000000u),
               (unsigned long long)bench_opts.pp_max_rt, bench_opts.timeout_ms);
    bench_note("chain4 = a->b->c->d, 8 B per stage, every output checked; 2rank: a, b and the "
               "driver on rank 0, c, d on rank 1 (b->c and d->driver cross: one network round "
               "trip per execution); 1rank: the same chain in rank 0's process alone");
    bench_note("floor: tcp-spin ping-pong of 8 B between the two ranks (rank 0 at %s:%d, "
               "TCP_NODELAY, both ends spin on recv(MSG_DONTWAIT)); p50/p99 = whole round trip",
               host, port);
    bench_note("CPU parallelism (2.00: both CPUs ran at once) measured on rank 0 just before "
               "each case, in its notes");
}

/* The (info) targets of chain4.2<v> (fused, drvw): round trip beside the TCP
 * floor fl, throughput beside the one-rank row base (named base_name). */
static void info_ratios(const char *v, const struct bench_row *fl, const struct bench_row *base,
                        const char *base_name)
{
    char name[48], key[48], desc[112];
    snprintf(name, sizeof name, "chain4.2%s.lat", v);
    const struct bench_row *l = bench_find(name, "weir-uring", MSG, 0);
    snprintf(name, sizeof name, "chain4.2%s.tput", v);
    const struct bench_row *t = bench_find(name, "weir-uring", MSG, 0);
    snprintf(key, sizeof key, "nodes.%s_rtt_vs_tcp", v);
    snprintf(desc, sizeof desc, "  (info) weir chain4.2%s.lat p50 / tcp-spin pingpong p50", v);
    bench_ratio(key, desc, l ? l->p50_ns : -1, fl ? fl->p50_ns : -1, "<=", 3, NULL);
    snprintf(key, sizeof key, "nodes.%s_tput_vs_1rank", v);
    snprintf(desc, sizeof desc, "  (info) weir chain4.2%s.tput / chain4.%s.tput", v, base_name);
    bench_ratio(key, desc, t ? t->msgs_per_s : -1, base ? base->msgs_per_s : -1, ">=", 0.5,
                NULL);
}

static void ratios(void)
{
#define V(r, f) ((r) ? (r)->f : -1)
    const struct bench_row *fl = bench_find("pingpong.2rank.lat", "tcp-spin", MSG, 0);
    const struct bench_row *l2 = bench_find("chain4.2rank.lat", "weir-uring", MSG, 0);
    const struct bench_row *t2 = bench_find("chain4.2rank.tput", "weir-uring", MSG, 0);
    const struct bench_row *l1 = bench_find("chain4.1rank.lat", "weir", MSG, 0);
    const struct bench_row *t1 = bench_find("chain4.1rank.tput", "weir", MSG, 0);
    bench_ratio("nodes.rtt_vs_tcp", "weir chain4.2rank.lat p50 / tcp-spin pingpong p50",
                V(l2, p50_ns), V(fl, p50_ns), "<=", 3, NULL);
    bench_ratio("nodes.tput_vs_1rank", "weir chain4.2rank.tput exec/s / chain4.1rank.tput",
                V(t2, msgs_per_s), V(t1, msgs_per_s), ">=", 0.5, NULL);
    bench_ratio("nodes.rtt_vs_ray", "Ray CG 50 us/call / weir chain4.2rank.lat p50",
                l2 ? RAY_CALL_NS : -1, V(l2, p50_ns), ">=", 5, NULL);
    bench_ratio("nodes.tput_vs_ray", "weir chain4.2rank.tput exec/s / Ray CG 5.7k exec/s",
                V(t2, msgs_per_s), t2 ? RAY_CHAIN4_EPS : -1, ">=", 50, NULL);
    bench_ratio("nodes.rtt_vs_1rank", "  (info) weir chain4.2rank.lat p50 / chain4.1rank.lat p50",
                V(l2, p50_ns), V(l1, p50_ns), "<=", 1e9, NULL);
    info_ratios("fused", fl, bench_find("chain4.1fused.tput", "weir", MSG, 0), "1fused");
    info_ratios("drvw", fl, t1, "1rank");
#undef V
}

/* ---------------------------------------------------------------- command */

int bench_dag_nodes(int argc, char **argv)
{
    bench_set_columns("executions_per_s", "exec/s", "act");
    if (bench_opts.list) {
        struct bench_row r[NROWS];
        init_rows(r);
        for (int i = 0; i < NROWS; i++)
            if (!((i == R_ZLAT2 || i == R_ZTPUT2) && bench_opts.no_zmq)) bench_begin(&r[i]);
        return 0;
    }
    if (!getenv("WEIR_WORLD_SIZE") && weir_world_size() == 1) return relaunch(argc, argv);
    struct weir__cluster_env e;
    if (weir__cluster_env_parse(environ, &e) < 0) {
        fprintf(stderr, "weir-bench dag --nodes: %s\n", weir_errmsg());
        return 1;
    }
    if (e.size != 2) {
        fprintf(stderr, "weir-bench dag --nodes 2: launched as %d ranks, needs 2\n", e.size);
        return 1;
    }
    char host[WEIR__CLUSTER_ADDR_MAX + 1];
    int port;
    if (coord_hostport(e.coord, host, sizeof host, &port) < 0) {
        fprintf(stderr, "weir-bench dag --nodes: the coordinator %s is not tcp://HOST:PORT (the "
                        "floor listens beside it)\n", e.coord);
        return 1;
    }
    port++;
    if (bench_opts.quick && !bench_opts.budget_given) {
        bench_opts.budget_ns = 250ull * 1000000u / (uint64_t)bench_opts.rounds;
        bench_opts.pp_budget_ns = bench_opts.budget_ns;
    }
    bench_dag_samples = malloc((bench_opts.pp_max_rt ? bench_opts.pp_max_rt : 1) *
                               sizeof(*bench_dag_samples));
    if (!bench_dag_samples) return 1;
    int status = 0;
    if (e.rank != 0) {
        /* Rank 1: stdout is rank 0's (the table or the JSON). */
        if (!freopen("/dev/null", "w", stdout)) status = 1;
        for (int round = 0; round < bench_opts.rounds && !status; round++) {
            if (floor_rank1(host, port) < 0 || run_rank1(WEIR_TRANSPORT_URING, 0) < 0 ||
                run_rank1(WEIR_TRANSPORT_URING, 1) < 0 || run_rank1(WEIR_TRANSPORT_URING, 1) < 0 ||
                (!bench_opts.no_zmq && run_rank1(WEIR_TRANSPORT_ZMQ, 0) < 0))
                status = 1;
        }
        free(bench_dag_samples);
        return status;
    }
    uint64_t t0 = bench_now_ns();
    legend(host, port);
    for (bench_opts.round = 0; bench_opts.round < bench_opts.rounds; bench_opts.round++) {
        struct bench_row r[NROWS];
        init_rows(r);
        note_par(&r[R_FLOOR], bench_parallelism());
        floor_rank0(host, port, &r[R_FLOOR]);
        double par = bench_parallelism();
        note_par(&r[R_LAT2], par);
        note_par(&r[R_TPUT2], par);
        run_rank0(across, WEIR_TRANSPORT_URING, 0, 0, &r[R_LAT2], &r[R_TPUT2]);
        par = bench_parallelism();
        note_par(&r[R_FLAT2], par);
        note_par(&r[R_FTPUT2], par);
        run_rank0(across, WEIR_TRANSPORT_URING, 1, 0, &r[R_FLAT2], &r[R_FTPUT2]);
        par = bench_parallelism();
        note_par(&r[R_DLAT2], par);
        note_par(&r[R_DTPUT2], par);
        run_rank0(across, WEIR_TRANSPORT_URING, 1, 1, &r[R_DLAT2], &r[R_DTPUT2]);
        if (!bench_opts.no_zmq) {
            par = bench_parallelism();
            note_par(&r[R_ZLAT2], par);
            note_par(&r[R_ZTPUT2], par);
            run_rank0(across, WEIR_TRANSPORT_ZMQ, 0, 0, &r[R_ZLAT2], &r[R_ZTPUT2]);
        }
        par = bench_parallelism();
        note_par(&r[R_LAT1], par);
        note_par(&r[R_TPUT1], par);
        one_rank(0, &r[R_LAT1], &r[R_TPUT1]);
        par = bench_parallelism();
        note_par(&r[R_FLAT1], par);
        note_par(&r[R_FTPUT1], par);
        one_rank(2, &r[R_FLAT1], &r[R_FTPUT1]);
        emit_rows(r);
    }
    ratios();
    bench_note("wall time %.1f s", (double)(bench_now_ns() - t0) / 1e9);
    free(bench_dag_samples);
    return bench_finish("dag");
}
