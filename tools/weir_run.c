/* SPDX-License-Identifier: MIT */
/*
 * tools/weir_run.c - weir-run, the local launcher for tests and laptops:
 *
 *   weir-run -n N [--netns] [--port P] [--grace MS] PROG ARGS...
 *
 * runs N copies of PROG with WEIR_RANK, WEIR_WORLD_SIZE, WEIR_COORD,
 * WEIR_BIND and WEIR_TOKEN set, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT,
 * SIGUSR1 and SIGUSR2 to every rank, and returns the first failing rank's
 * status (128 + signal for a rank killed by a signal) after stopping the
 * others (SIGTERM, then SIGKILL after the grace period); 0 when all
 * succeed.
 *
 * Design notes. Each rank runs in its own process group, so a terminal's
 * SIGINT reaches weir-run alone and every rank gets it exactly once (the
 * forwarded copy); ranks die with weir-run (PR_SET_PDEATHSIG), so weir-run
 * killed by SIGKILL leaves no rank behind. Signals are blocked and taken
 * with sigtimedwait in one loop (no handlers, no races with SIGCHLD).
 *
 * --netns: each rank in a network namespace of its own ("host"), on one
 * bridge, with address 10.200.0.(rank+1)/24. Nothing is named in
 * /run/netns: weir-run first moves itself into a new network namespace
 * that holds the bridge, and each rank unshares its own before weir-run
 * gives it a veth into the bridge. A namespace lives exactly as long as
 * the processes in it, so every namespace, veth and the bridge vanish
 * when weir-run and the ranks exit, even after SIGKILL. The host side of
 * rank R's veth is "wr<R>" inside weir-run's namespace (a test cuts a rank
 * off with `nsenter -t <weir-run pid> -n ip link set wr<R> down`).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <weir/cluster.h>

#define NETNS_PREFIX "10.200.0."
#define COORD_PORT_NETNS 29500

static const int fwd_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFWD (sizeof fwd_sigs / sizeof fwd_sigs[0])

static void usage(void)
{
    fprintf(stderr, "usage: weir-run -n N [--netns] [--port P] [--grace MS] PROG ARGS...\n"
                    "  -n N        ranks to run (1..%d; --netns: 1..250)\n"
                    "  --netns     each rank in its own network namespace on a bridge\n"
                    "  --port P    rank 0's control port (default: a free one; 29500 with --netns)\n"
                    "  --grace MS  after a rank fails, SIGTERM the others, SIGKILL after MS "
                    "(default 2000)\n",
            WEIR_MAX_RANKS);
}

/* Run a command (argv) and wait; 0 when it exited 0. */
static int run(char *const argv[])
{
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

#define RUN(...)                                                                                   \
    do {                                                                                           \
        char *const a_[] = {__VA_ARGS__, NULL};                                                    \
        if (run(a_) < 0) {                                                                         \
            fprintf(stderr, "weir-run: --netns: '%s %s %s %s' failed\n", a_[0], a_[1], a_[2],       \
                    a_[3] ? a_[3] : "");                                                           \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

/* weir-run's own namespace: the bridge every rank's veth joins. */
static int netns_switch(void)
{
    if (unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "weir-run: --netns: unshare(CLONE_NEWNET): %s (needs root or "
                        "CAP_SYS_ADMIN)\n", strerror(errno));
        return -1;
    }
    RUN("ip", "link", "set", "lo", "up");
    RUN("ip", "link", "add", "weirbr", "type", "bridge");
    RUN("ip", "link", "set", "weirbr", "up");
    return 0;
}

/* Give rank r (pid, already in its own namespace) a veth into the bridge. */
static int netns_plug(int r, pid_t pid)
{
    char host[16], ps[16];
    snprintf(host, sizeof host, "wr%d", r);
    snprintf(ps, sizeof ps, "%d", (int)pid);
    RUN("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ps);
    RUN("ip", "link", "set", host, "master", "weirbr");
    RUN("ip", "link", "set", host, "up");
    return 0;
}

/* In rank r's own namespace: address and links up. */
static int netns_configure(int r)
{
    char addr[32];
    snprintf(addr, sizeof addr, NETNS_PREFIX "%d/24", r + 1);
    RUN("ip", "link", "set", "lo", "up");
    RUN("ip", "addr", "add", addr, "dev", "eth0");
    RUN("ip", "link", "set", "eth0", "up");
    return 0;
}

struct rank {
    pid_t pid;
    int done;
    int status;
};

static int exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

static void describe(int st, char *buf, size_t cap)
{
    if (WIFEXITED(st))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, cap, "killed by signal %d (SIG%s)", WTERMSIG(st),
                 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    else
        snprintf(buf, cap, "stopped");
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int main(int argc, char **argv)
{
    int n = 0, netns = 0, port = 0, grace = 2000, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--netns") == 0)
            netns = 1;
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc)
            grace = atoi(argv[++i]);
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "weir-run: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (n < 1 || n > (netns ? 250 : WEIR_MAX_RANKS) || i >= argc || port < 0 || port > 65535 ||
        grace < 0) {
        if (i >= argc)
            fprintf(stderr, "weir-run: no program to run\n");
        else
            fprintf(stderr, "weir-run: -n %d is out of range (1..%d)\n", n,
                    netns ? 250 : WEIR_MAX_RANKS);
        usage();
        return 2;
    }
    char **prog = argv + i;

    sigset_t all, old;
    sigemptyset(&all);
    for (size_t k = 0; k < NFWD; k++)
        sigaddset(&all, fwd_sigs[k]);
    sigaddset(&all, SIGCHLD);
    sigprocmask(SIG_BLOCK, &all, &old);

    if (netns && netns_switch() < 0)
        return 1;
    if (!port)
        port = netns ? COORD_PORT_NETNS : free_port();
    if (port <= 0) {
        fprintf(stderr, "weir-run: no free TCP port on 127.0.0.1\n");
        return 1;
    }
    char token[33];
    const char *tok = getenv("WEIR_TOKEN");
    if (!tok) {
        uint8_t rnd[16];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            fprintf(stderr, "weir-run: getrandom: %s\n", strerror(errno));
            return 1;
        }
        for (int k = 0; k < 16; k++)
            snprintf(token + 2 * k, 3, "%02x", rnd[k]);
        tok = token;
    }
    char coord[64], size_s[16];
    snprintf(coord, sizeof coord, "%s:%d", netns ? NETNS_PREFIX "1" : "127.0.0.1", port);
    snprintf(size_s, sizeof size_s, "%d", n);

    struct rank *ranks = calloc((size_t)n, sizeof *ranks);
    if (!ranks)
        return 1;
    pid_t self = getpid();
    int started = 0, failed_rank = -1, result = 0;
    for (int r = 0; r < n; r++) {
        int ready[2], go[2];
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
            fprintf(stderr, "weir-run: pipe: %s\n", strerror(errno));
            result = 1;
            break;
        }
        pid_t p = fork();
        if (p < 0) {
            fprintf(stderr, "weir-run: fork: %s\n", strerror(errno));
            result = 1;
            break;
        }
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != self)
                _exit(1);
            setpgid(0, 0);
            close(ready[0]);
            close(go[1]);
            char c = 'x';
            if (netns) {
                if (unshare(CLONE_NEWNET) < 0) {
                    fprintf(stderr, "weir-run: rank %d: unshare: %s\n", r, strerror(errno));
                    _exit(1);
                }
                if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1 || c != 'g')
                    _exit(1);
                if (netns_configure(r) < 0)
                    _exit(1);
            }
            char rank_s[16], bind[32];
            snprintf(rank_s, sizeof rank_s, "%d", r);
            if (netns)
                snprintf(bind, sizeof bind, NETNS_PREFIX "%d", r + 1);
            else
                snprintf(bind, sizeof bind, "127.0.0.1");
            setenv("WEIR_RANK", rank_s, 1);
            setenv("WEIR_WORLD_SIZE", size_s, 1);
            setenv("WEIR_COORD", coord, 1);
            setenv("WEIR_BIND", bind, 1);
            setenv("WEIR_TOKEN", tok, 1);
            if (r != 0 || isatty(0)) {
                int null = open("/dev/null", O_RDONLY);
                if (null >= 0 && null != 0) {
                    dup2(null, 0);
                    close(null);
                }
            }
            sigprocmask(SIG_SETMASK, &old, NULL);
            execvp(prog[0], prog);
            fprintf(stderr, "weir-run: rank %d: cannot run '%s': %s\n", r, prog[0],
                    strerror(errno));
            _exit(127);
        }
        setpgid(p, p); /* also here: no race with the child's own call */
        ranks[r].pid = p;
        started++;
        close(ready[1]);
        close(go[0]);
        if (netns) {
            char c;
            int ok = read(ready[0], &c, 1) == 1 && netns_plug(r, p) == 0;
            c = ok ? 'g' : 'n';
            if (write(go[1], &c, 1) != 1 || !ok) {
                result = 1;
                close(ready[0]);
                close(go[1]);
                break;
            }
        }
        close(ready[0]);
        close(go[1]);
    }

    int live = started;
    uint64_t kill_at = 0;
    int stopping = result != 0;
    if (stopping)
        for (int r = 0; r < started; r++)
            kill(-ranks[r].pid, SIGTERM), kill_at = now_ms() + (uint64_t)grace;
    while (live > 0) {
        struct timespec ts = {0, 100 * 1000000L};
        siginfo_t si;
        int sig = sigtimedwait(&all, &si, &ts);
        if (sig > 0 && sig != SIGCHLD) {
            for (int r = 0; r < started; r++)
                if (!ranks[r].done)
                    kill(-ranks[r].pid, sig);
            if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
                if (!result)
                    result = 128 + sig;
                if (!stopping)
                    kill_at = now_ms() + (uint64_t)grace;
                stopping = 1; /* the ranks' exits are the signal's, not failures */
            }
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            for (int r = 0; r < started; r++) {
                if (ranks[r].pid != p || ranks[r].done)
                    continue;
                ranks[r].done = 1;
                ranks[r].status = st;
                live--;
                /* The rank is gone: take the rest of its group with it. */
                kill(-p, SIGKILL);
                if (exit_code(st) != 0 && failed_rank < 0 && !stopping) {
                    failed_rank = r;
                    if (!result)
                        result = exit_code(st);
                    char why[64];
                    describe(st, why, sizeof why);
                    if (live > 0)
                        fprintf(stderr, "weir-run: rank %d (pid %d) %s; stopping the other "
                                        "ranks\n", r, (int)p, why);
                    else
                        fprintf(stderr, "weir-run: rank %d (pid %d) %s\n", r, (int)p, why);
                    stopping = 1;
                    for (int q = 0; q < started; q++)
                        if (!ranks[q].done)
                            kill(-ranks[q].pid, SIGTERM);
                    kill_at = now_ms() + (uint64_t)grace;
                }
            }
        }
        if (stopping && kill_at && now_ms() >= kill_at) {
            for (int r = 0; r < started; r++)
                if (!ranks[r].done)
                    kill(-ranks[r].pid, SIGKILL);
            kill_at = 0;
        }
    }
    free(ranks);
    return result;
}
