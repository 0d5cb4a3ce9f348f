/* SPDX-License-Identifier: MIT */
/*
 * examples/marketdata.c - weir's main job: a market-data pipeline.
 *
 *            +-> momentum (EMA crossover) -+
 *   parse ---+                             +--> join --> score
 *            +-> liquidity (VWAP, volume) -+
 *
 * The driver feeds text ticks ("SYM,price,qty") through a compiled graph of
 * five actors, pipelined with weir_submit/weir_wait, prints a live progress
 * line (executions/s), then a per-channel table (messages, MB/s, how long
 * each writer was blocked and each reader starved) and a per-actor table
 * (waiting for input, blocked on output, busy) that shows which stage
 * limits the pipeline, and finally checks every score against the same
 * functions run in a plain loop.
 *
 *   weir-marketdata [-n EXECUTIONS] [-i MAX_INFLIGHT] [-w WORK] [--process]
 *                   [--threads N] [--driver-worker] [--plan FILE] [--quiet] [--nodes N]
 *
 * -w adds WORK rounds of arithmetic to the momentum stage to make it the
 * bottleneck on purpose (watch the table move). --process runs the two
 * feature actors as separate processes (WEIR_PROCESS); --threads N runs the
 * thread actors on N workers (weir_compile_opts.threads: 0 automatic, the
 * default; -1 a thread per actor), fusing the stages placed on one worker;
 * --driver-worker runs the first worker in this (the driver's) thread
 * (weir_compile_opts.driver_worker);
 * --plan saves the compiled plan for `weir-plan show FILE`, which prints the
 * placement.
 *
 * Across ranks: --nodes N runs the same pipeline over N ranks, actor i (in
 * the order parser, momentum, liquidity, joiner, scorer) on rank i % N. Run
 * from a shell, it re-runs itself as `weir-run --netns -n N` (each rank in
 * a network namespace of its own; weir-run from $WEIR_RUN, else beside
 * this program); under any other launcher (mpirun, srun on N machines) it
 * is one rank. Rank 0 drives and prints the live rate, then every rank
 * prints its own table: the channels with a ring on it, with the links
 * that feed or drain them (bytes, batches, last round trip), and the
 * actors it hosts; rank 0 then checks every score.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

#define NSYM 16

struct tick {
    uint32_t sym;
    uint32_t qty;
    double price;
};

struct momentum_state {
    double fast[NSYM], slow[NSYM];
    unsigned work;
};
struct liquidity_state {
    double pv[NSYM], vol[NSYM];
};
struct feat_m {
    uint32_t sym;
    double signal;
};
struct feat_l {
    uint32_t sym;
    double vwap, vol;
};
struct joined {
    uint32_t sym;
    double signal, vwap, vol, price;
};

static const char *SYMS[NSYM] = {"AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "BRKB",
                                 "JPM",  "V",    "UNH",  "XOM",  "JNJ",  "WMT",  "PG",   "MA"};

/* ---- the stage functions (pure, so the reference loop can call them) ---- */

static int parse_tick(const char *line, size_t len, struct tick *t)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *c1 = strchr(buf, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || !c2)
        return -1;
    *c1 = *c2 = '\0';
    t->sym = NSYM;
    for (uint32_t s = 0; s < NSYM; s++)
        if (!strcmp(buf, SYMS[s]))
            t->sym = s;
    if (t->sym == NSYM)
        return -1;
    t->price = strtod(c1 + 1, NULL);
    t->qty = (uint32_t)strtoul(c2 + 1, NULL, 10);
    return 0;
}

static struct feat_m momentum_step(struct momentum_state *s, const struct tick *t)
{
    double f = s->fast[t->sym], sl = s->slow[t->sym];
    f = f == 0 ? t->price : f + 0.2 * (t->price - f);
    sl = sl == 0 ? t->price : sl + 0.02 * (t->price - sl);
    double extra = 0;
    for (unsigned k = 0; k < s->work; k++)
        extra += sin((double)k * f) * 1e-12;
    s->fast[t->sym] = f;
    s->slow[t->sym] = sl;
    return (struct feat_m){t->sym, (f - sl) / sl + extra};
}

static struct feat_l liquidity_step(struct liquidity_state *s, const struct tick *t)
{
    s->pv[t->sym] = s->pv[t->sym] * 0.99 + t->price * t->qty;
    s->vol[t->sym] = s->vol[t->sym] * 0.99 + t->qty;
    return (struct feat_l){t->sym, s->pv[t->sym] / s->vol[t->sym], s->vol[t->sym]};
}

static double score_of(const struct joined *j)
{
    double edge = (j->price - j->vwap) / j->vwap;
    return 1e4 * (j->signal - 0.5 * edge) * log1p(j->vol);
}

/* ---- the actors' methods -------------------------------------------------- */

static int m_parse(weir_call *c, void *st)
{
    (void)st;
    size_t len;
    const char *line = weir_call_in(c, 0, &len);
    struct tick *t = weir_call_out(c, 0, sizeof *t);
    if (!t)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (parse_tick(line, len, t) < 0)
        return weir_call_fail(c, "cannot parse tick '%.*s'", (int)(len < 40 ? len : 40), line);
    return 0;
}

static int m_momentum(weir_call *c, void *st)
{
    const struct tick *t = weir_call_in(c, 0, NULL);
    struct feat_m *o = weir_call_out(c, 0, sizeof *o);
    if (!o)
        return weir_call_fail(c, "%s", weir_errmsg());
    *o = momentum_step(st, t);
    return 0;
}

static int m_liquidity(weir_call *c, void *st)
{
    const struct tick *t = weir_call_in(c, 0, NULL);
    struct feat_l *o = weir_call_out(c, 0, sizeof *o);
    if (!o)
        return weir_call_fail(c, "%s", weir_errmsg());
    *o = liquidity_step(st, t);
    return 0;
}

static int m_join(weir_call *c, void *st)
{
    (void)st;
    const struct feat_m *m = weir_call_in(c, 0, NULL);
    const struct feat_l *l = weir_call_in(c, 1, NULL);
    const struct tick *t = weir_call_in(c, 2, NULL);
    if (m->sym != l->sym || m->sym != t->sym)
        return weir_call_fail(c, "features of different symbols (%u, %u, %u)", m->sym, l->sym,
                              t->sym);
    struct joined *j = weir_call_out(c, 0, sizeof *j);
    if (!j)
        return weir_call_fail(c, "%s", weir_errmsg());
    *j = (struct joined){m->sym, m->signal, l->vwap, l->vol, t->price};
    return 0;
}

static int m_score(weir_call *c, void *st)
{
    (void)st;
    const struct joined *j = weir_call_in(c, 0, NULL);
    double *s = weir_call_out(c, 0, sizeof *s);
    if (!s)
        return weir_call_fail(c, "%s", weir_errmsg());
    *s = score_of(j);
    return 0;
}

/* ---- the feed ---------------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int make_tick(char *buf, size_t cap, double *px)
{
    uint64_t r = next_rand();
    unsigned s = (unsigned)(r % NSYM);
    px[s] *= 1.0 + ((double)((r >> 8) % 2001) - 1000.0) * 1e-6;
    return snprintf(buf, cap, "%s,%.4f,%u", SYMS[s], px[s], (unsigned)(1 + (r >> 24) % 500));
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-n EXECUTIONS] [-i MAX_INFLIGHT] [-w WORK] [--process] [--threads N] "
            "[--driver-worker] [--plan FILE] [--quiet] [--nodes N]\n"
            "  --threads N  workers for the thread actors: 0 automatic (default), -1 one per "
            "actor\n"
            "  --driver-worker  the first worker runs in the driver's thread, inside its calls\n"
            "  --nodes N    the pipeline across N ranks (2..8), actor i on rank i %% N; from a "
            "shell\n"
            "               it runs itself under weir-run --netns -n N (root)\n",
            argv0);
    return 2;
}

/* --nodes N from a shell: run this program again as N ranks under
 * `weir-run --netns -n N` and return its status. */
static int relaunch(int nodes, int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) {
        perror("weir-marketdata: /proc/self/exe");
        return 1;
    }
    self[k] = '\0';
    char run[PATH_MAX + 32] = "";
    if (getenv("WEIR_RUN") && *getenv("WEIR_RUN")) {
        snprintf(run, sizeof run, "%s", getenv("WEIR_RUN"));
    } else {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", self);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        const char *cand[] = {"/../tools/weir-run", "/weir-run"};
        for (int i = 0; i < 2 && !run[0]; i++) {
            char p[PATH_MAX + 32];
            snprintf(p, sizeof p, "%s%s", dir, cand[i]);
            if (access(p, X_OK) == 0)
                snprintf(run, sizeof run, "%s", p);
        }
        if (!run[0])
            snprintf(run, sizeof run, "weir-run");
    }
    char ns[16];
    snprintf(ns, sizeof ns, "%d", nodes);
    char **av = calloc((size_t)argc + 8, sizeof *av);
    if (!av)
        return 1;
    int n = 0;
    av[n++] = run;
    av[n++] = "--netns";
    av[n++] = "-n";
    av[n++] = ns;
    av[n++] = self;
    for (int i = 1; i < argc; i++)
        av[n++] = argv[i];
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(run, av);
        fprintf(stderr, "weir-marketdata: cannot run %s (set WEIR_RUN to weir-run): %s\n", run,
                strerror(errno));
        _exit(127);
    }
    free(av);
    if (pid < 0) {
        perror("weir-marketdata: fork");
        return 1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* This rank's channels (a ring here) and their links, as one block of text
 * (ranks print at once through one terminal). secs: the run; el: since
 * compile, the counters' time. */
static struct weir_chan_stats *snap_c;  /* rank != 0: the last counters seen in the join */
static struct weir_actor_stats *snap_a;
static double snap_el;

static void channel_table(weir_dag *d, int rank, int nranks, double secs, double el)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    const char *pre = nranks > 1 ? "  " : "";
    if (nranks > 1)
        fprintf(f, "\n  rank %d of %d: channels with a ring here, and their links\n", rank,
                nranks);
    fprintf(f, "\n  %s%-22s %-9s %7s %10s %9s %9s %10s\n", pre, "channel", "writer", "readers",
            "messages", "MB/s", "w-blocked", "r-starved");
    for (unsigned c = 0; c < weir_dag_nchannels(d); c++) {
        struct weir_chan_stats st;
        if (weir_dag_chan_stats(d, c, &st) < 0)
            continue; /* no ring on this rank: another rank's table shows it */
        double cel = el;
        if (snap_c && snap_el > 0) {
            /* the readers left at teardown: their waits as last seen */
            struct weir_chan_stats fin = st;
            st = snap_c[c];
            st.messages = fin.messages;
            st.bytes = fin.bytes;
            cel = snap_el;
        }
        double starved = 0;
        for (unsigned r = 0; r < st.nreaders; r++)
            starved += 100.0 * (double)st.readers[r].starved_ns / cel;
        starved /= st.nreaders ? st.nreaders : 1;
        fprintf(f, "  %s%-22s %-9s %7u %10llu %9.2f %8.1f%% %9.1f%%\n", pre, st.name,
                weir_dag_chan_writer(d, c), st.nreaders, (unsigned long long)st.messages,
                (double)st.bytes / secs / 1e6, 100.0 * (double)st.writer_blocked_ns / cel,
                starved);
        for (unsigned k = 0; k < weir_dag_chan_nlinks(d, c); k++) {
            struct weir_dag_link_stats ls;
            if (weir_dag_link_stats(d, c, k, &ls) < 0)
                continue;
            char rtt[32] = "-";
            if (ls.last_rtt_ns)
                snprintf(rtt, sizeof rtt, "%.0f us", (double)ls.last_rtt_ns / 1e3);
            fprintf(f, "  %s  %s rank %d: %llu msgs, %.2f MB, %llu frames in %llu sends "
                    "(a connection of %u channel%s), %llu credit stalls, %llu reconnects, "
                    "rtt %s%s\n",
                    pre, ls.sending ? "link to  " : "link from", ls.peer_rank,
                    (unsigned long long)ls.messages, (double)ls.bytes / 1e6,
                    (unsigned long long)ls.stream_frames, (unsigned long long)ls.stream_batches,
                    ls.conn_streams, ls.conn_streams == 1 ? "" : "s",
                    (unsigned long long)ls.credit_stalls,
                    (unsigned long long)ls.reconnects, rtt,
                    ls.status && ls.status != -EPIPE ? " (failed)" : "");
        }
    }
    fclose(f);
    fwrite(buf, 1, len, stdout); /* flushed with the actor table */
    free(buf);
}

/* The actors this rank hosts: where their time went, and the bottleneck. */
static void actor_table(weir_dag *d, int rank, int nranks, double el)
{
    /* Per-actor table: the actor that waits least is the one the others wait for. */
    if (nranks > 1)
        printf("\n  rank %d of %d: the actors it hosts\n", rank, nranks);
    printf("\n  %-10s %7s %15s %15s %8s\n", "actor", "worker", "waiting input", "blocked output",
           "busy");
    unsigned nact = weir_dag_nactors(d), nload = 0;
    /* One load per thread that runs stages: a process actor, or a worker with
     * the actors fused on it (they share its waits, so its busy time). */
    struct weir_actor_load loads[nact ? nact : 1];
    char names[nact ? nact : 1][160];
    int load_worker[nact ? nact : 1];
    for (unsigned a = 0; a < nact; a++) {
        struct weir_actor_stats as;
        if ((int)a % nranks != rank)
            continue; /* hosted by another rank, which shows it */
        weir_dag_actor_stats(d, a, &as);
        if (snap_a && snap_el > 0) {
            as = snap_a[a]; /* as last seen in the join (the waits end with the readers) */
            el = snap_el;
        }
        double wi = 100.0 * (double)as.input_starved_ns / el;
        double bo = 100.0 * (double)as.output_blocked_ns / el;
        double busy = 100.0 - wi - bo;
        if (busy < 0)
            busy = 0;
        char wk[16];
        snprintf(wk, sizeof wk, as.worker ? "%d" : "process", as.worker);
        printf("  %-10s %7s %14.1f%% %14.1f%% %7.1f%%\n", as.name, wk, wi, bo, busy);
        unsigned k = 0;
        while (k < nload && !(as.worker && load_worker[k] == as.worker))
            k++;
        if (k == nload) {
            load_worker[nload] = as.worker;
            snprintf(names[nload], sizeof names[0], "%s", as.name);
            loads[nload].name = names[nload];
            loads[nload++].busy = busy / 100.0;
        } else {
            if (!strchr(names[k], '(')) {
                char first[WEIR_MAX_NAME + 1];
                snprintf(first, sizeof first, "%s", names[k]);
                snprintf(names[k], sizeof names[0], "worker %d (%s", as.worker, first);
            }
            size_t l = strlen(names[k]);
            snprintf(names[k] + l, sizeof names[0] - l, ", %s", as.name);
        }
    }
    for (unsigned k = 0; k < nload; k++)
        if (strchr(names[k], '(')) {
            size_t l = strlen(names[k]);
            snprintf(names[k] + l, sizeof names[0] - l, ")");
        }
    /* waiting % is wall time in reads: with more threads than cores it includes time
     * spent yielding the CPU to the stage that has the work. The rule is weir-top's. */
    cpu_set_t cpus;
    unsigned ncpu = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? (unsigned)CPU_COUNT(&cpus) : 1;
    char bn[512];
    weir_bottleneck(loads, nload, ncpu, bn, sizeof bn);
    printf("\n  %s\n", bn);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long n = 300000, inflight = 16, work = 0, threads = 0, nodes = 0;
    int quiet = 0, process = 0, driver_worker = 0;
    const char *plan_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-i") && i + 1 < argc)
            inflight = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            work = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--quiet"))
            quiet = 1;
        else if (!strcmp(argv[i], "--process"))
            process = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--driver-worker"))
            driver_worker = 1;
        else if (!strcmp(argv[i], "--plan") && i + 1 < argc)
            plan_path = argv[++i];
        else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
            nodes = strtol(argv[++i], NULL, 10);
        else
            return usage(argv[0]);
    }
    if (n <= 0 || inflight <= 0 || inflight > 4096 || work < 0 || threads < -1 || threads > 64 ||
        (nodes && (nodes < 2 || nodes > 8)))
        return usage(argv[0]);
    int rank = weir_rank(), nranks = weir_world_size();
    if (rank < 0 || nranks < 1) {
        fprintf(stderr, "weir-marketdata: %s\n", weir_errmsg());
        return 1;
    }
    if (nodes && nranks == 1)
        return relaunch((int)nodes, argc, argv);
    if (nodes && nranks != nodes) {
        fprintf(stderr, "weir-marketdata: --nodes %ld, but launched as %d ranks\n", nodes,
                nranks);
        return 2;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16); /* each rank's tables leave in one piece */

    struct momentum_state ms = {.work = (unsigned)work};
    struct liquidity_state ls;
    memset(&ls, 0, sizeof ls);
    weir_graph *g = weir_graph_new("marketdata");
    int iso = process ? WEIR_PROCESS : WEIR_THREAD;
    /* actor i on rank i % nranks (all on rank 0 when not launched as several) */
    weir_actor_opts mo = {.state = &ms, .isolation = iso, .node = 1 % nranks},
                    lo = {.state = &ls, .isolation = iso, .node = 2 % nranks};
    weir_actor *parser = weir_actor_new(g, "parser", NULL);
    weir_actor *mom = weir_actor_new(g, "momentum", &mo);
    weir_actor *liq = weir_actor_new(g, "liquidity", &lo);
    weir_actor *joiner = weir_actor_new(g, "joiner", &(weir_actor_opts){.node = 3 % nranks});
    weir_actor *scorer = weir_actor_new(g, "scorer", &(weir_actor_opts){.node = 4 % nranks});
    weir_node *in = weir_input(g, 0);
    weir_node *tick = weir_bind(parser, "parse", m_parse, &in, 1, 1);
    weir_node *fm = weir_bind(mom, "ema", m_momentum, &tick, 1, 1);
    weir_node *fl = weir_bind(liq, "vwap", m_liquidity, &tick, 1, 1);
    weir_node *jin[3] = {fm, fl, tick};
    weir_node *j = weir_bind(joiner, "join", m_join, jin, 3, 1);
    weir_node *sc = weir_bind(scorer, "score", m_score, &j, 1, 1);
    if (!sc || weir_output(g, &sc, 1) < 0) {
        fprintf(stderr, "weir-marketdata: %s\n", weir_errmsg());
        return 1;
    }
    double px[NSYM];
    for (int s = 0; s < NSYM; s++)
        px[s] = 50.0 + 25.0 * s;
    double *scores = malloc((size_t)n * sizeof *scores);
    char(*lines)[48] = malloc((size_t)n * sizeof *lines);
    if (!scores || !lines) {
        fprintf(stderr, "weir-marketdata: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++)
        make_tick(lines[i], sizeof lines[i], px);

    weir_compile_opts co = {.max_inflight = (unsigned)inflight, .buffer_bytes = 64,
                            .threads = (int)threads, .driver_worker = driver_worker};
    uint64_t t_compiled = weir_now_ns(); /* counters run from here */
    weir_dag *d = weir_compile(g, &co);
    if (!d) {
        fprintf(stderr, "weir-marketdata: %s\n", weir_errmsg());
        return 1;
    }
    t_compiled = weir_now_ns();
    if (rank != 0) {
        /* Another rank: host its actors until the driver tears the dag down,
         * noting the counters every 100 ms (teardown ends the readers, and
         * their waits with them). */
        unsigned nc = weir_dag_nchannels(d), na = weir_dag_nactors(d);
        snap_c = calloc(nc ? nc : 1, sizeof *snap_c);
        snap_a = calloc(na ? na : 1, sizeof *snap_a);
        int jrc;
        while ((jrc = weir_dag_join(d, 100)) == -ETIMEDOUT && snap_c && snap_a) {
            snap_el = (double)(weir_now_ns() - t_compiled);
            for (unsigned c = 0; c < nc; c++)
                weir_dag_chan_stats(d, c, &snap_c[c]);
            for (unsigned a = 0; a < na; a++)
                weir_dag_actor_stats(d, a, &snap_a[a]);
        }
        if (jrc == -ETIMEDOUT)
            jrc = weir_dag_join(d, WEIR_FOREVER);
        if (jrc < 0)
            fprintf(stderr, "weir-marketdata: rank %d: %s\n", rank, weir_errmsg());
        double el = (double)(weir_now_ns() - t_compiled);
        channel_table(d, rank, nranks, el / 1e9, el);
        actor_table(d, rank, nranks, el);
        int frc = weir_dag_free(d);
        if (frc < 0)
            fprintf(stderr, "weir-marketdata: rank %d: %s\n", rank, weir_errmsg());
        weir_graph_free(g);
        free(scores);
        free(lines);
        free(snap_c);
        free(snap_a);
        return jrc < 0 || frc < 0 ? 1 : 0;
    }
    if (plan_path && weir_dag_save_plan(d, plan_path) < 0) {
        fprintf(stderr, "weir-marketdata: %s\n", weir_errmsg());
        weir_dag_free(d);
        return 1;
    }
    unsigned nworkers = 0; /* thread actors' workers (the compiler's placement) */
    for (unsigned a = 0; a < weir_dag_nactors(d); a++) {
        struct weir_actor_stats as;
        if (weir_dag_actor_stats(d, a, &as) == 0 && as.worker > (int)nworkers)
            nworkers = (unsigned)as.worker;
    }
    char tdesc[32];
    snprintf(tdesc, sizeof tdesc, threads == 0 ? "automatic" : threads < 0 ? "one per actor" : "%ld",
             threads);
    printf("weir-marketdata: %ld executions of parse -> {momentum, liquidity} -> join -> score, "
           "max_inflight %ld, %s, thread actors on %u worker%s (--threads %s%s), plan %016llx\n",
           n, inflight, process ? "feature actors in processes" : "all actors in threads",
           nworkers, nworkers == 1 ? "" : "s", tdesc,
           driver_worker ? "; the first run by the driver" : "",
           (unsigned long long)weir_dag_plan_hash(d));
    if (nranks > 1)
        printf("  across %d ranks (actor i on rank i %% %d): parser on rank 0, momentum %d, "
               "liquidity %d, joiner %d, scorer %d; rank 0 drives\n",
               nranks, nranks, 1 % nranks, 2 % nranks, 3 % nranks, 4 % nranks);
    fflush(stdout);

    uint64_t t0 = weir_now_ns(), last = t0;
    long waited = 0, last_waited = 0;
    int rc = 0;
    for (long i = 0; i < n || waited < n;) {
        if (i < n && i - waited < inflight) {
            weir_buf arg = {lines[i], strlen(lines[i])};
            uint64_t id;
            if ((rc = weir_submit(d, &arg, 1, &id, 5000)) < 0)
                break;
            i++;
            continue;
        }
        weir_result *r;
        if ((rc = weir_wait(d, (uint64_t)waited, &r, 5000)) < 0)
            break;
        scores[waited++] = *(const double *)weir_result_data(r, 0, NULL);
        weir_result_free(r);
        uint64_t now = weir_now_ns();
        if (!quiet && now - last > 250000000ull) {
            printf("\r  %9ld / %ld executions  %8.0f executions/s", waited, n,
                   (double)(waited - last_waited) * 1e9 / (double)(now - last));
            fflush(stdout);
            last = now;
            last_waited = waited;
        }
    }
    uint64_t t1 = weir_now_ns();
    if (rc < 0) {
        fprintf(stderr, "\nweir-marketdata: %s\n", weir_errmsg());
        weir_dag_free(d);
        return 1;
    }
    double secs = (double)(t1 - t0) / 1e9;
    printf("\r  %9ld / %ld executions  %8.0f executions/s on average (%.2f s, %.2f us each)\n",
           waited, n, (double)n / secs, secs, secs * 1e6 / (double)n);

    /* Per-channel table (across ranks: this rank's rings and links; a link
     * measures its round trip by heartbeat once idle: give it a moment). */
    if (nranks > 1) {
        struct timespec ts = {0, 150000000L};
        nanosleep(&ts, NULL);
    }
    double el = (double)(weir_now_ns() - t_compiled);
    channel_table(d, rank, nranks, secs, el);
    actor_table(d, rank, nranks, el);

    /* Check every score against the same functions in a plain loop. */
    struct momentum_state rm = {.work = (unsigned)work};
    struct liquidity_state rl;
    memset(&rl, 0, sizeof rl);
    long bad = 0;
    uint64_t h = 1469598103934665603ull;
    for (long i = 0; i < n; i++) {
        struct tick t;
        parse_tick(lines[i], strlen(lines[i]), &t);
        struct feat_m m = momentum_step(&rm, &t);
        struct feat_l l = liquidity_step(&rl, &t);
        struct joined jn = {t.sym, m.signal, l.vwap, l.vol, t.price};
        double s = score_of(&jn);
        if (memcmp(&s, &scores[i], sizeof s))
            bad++;
        uint64_t bits;
        memcpy(&bits, &scores[i], sizeof bits);
        h = (h ^ bits) * 1099511628211ull;
    }
    printf("  verified: %ld of %ld scores equal the single-threaded reference (checksum "
           "%016llx)\n",
           n - bad, n, (unsigned long long)h);
    fflush(stdout);
    free(scores);
    free(lines);
    int frc = weir_dag_free(d);
    weir_graph_free(g);
    if (frc < 0)
        fprintf(stderr, "weir-marketdata: %s\n", weir_errmsg());
    return bad || frc < 0 ? 1 : 0;
}
