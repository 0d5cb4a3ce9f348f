/* SPDX-License-Identifier: MIT */
/*
 * tests/test_prof.c - profiling: USDT probes in the binaries, the stats
 * segment read from other processes (exact counters, process restarts),
 * weir-top against a running demo and against a process that exits, stale
 * segments, and nothing left in /dev/shm.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

#include "channels/probes.h"
#include "engine/stats_shm.h"
#include "heap_check.h"

#define TMO 10000
#define N 1000

/* weir-stats.<pid>.* entries of process pid (0: any). */
static int count_stats(int pid)
{
    DIR *d = opendir("/dev/shm");
    int n = 0;
    struct dirent *e;
    char pre[64];
    snprintf(pre, sizeof pre, "weir-stats.%d.", pid);
    while ((e = readdir(d)))
        if (pid ? !strncmp(e->d_name, pre, strlen(pre)) : !strncmp(e->d_name, "weir-stats.", 11))
            n++;
    closedir(d);
    return n;
}

static void setup(void)
{
    setenv("WEIR_STATS_INTERVAL_MS", "20", 1);
}

static void teardown(void)
{
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    /* abort(): Criterion does not fail a test on a failed expectation in .fini,
     * but a crash there fails the run (see tests/dag_util.h). */
    if (!(p == -1 && errno == ECHILD)) {
        fprintf(stderr, "LEAK: a child process is left (waitpid gave %d)\n", (int)p);
        abort();
    }
    if (count_stats(getpid()) != 0) {
        fprintf(stderr, "LEAK: a stats segment of this process was left behind\n");
        abort();
    }
    t_heap_check();
}

TestSuite(prof, .init = setup, .fini = teardown, .timeout = 120);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run cmd, return its whole stdout+stderr (malloc) and exit status in *status. */
static char *run(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "popen %s", cmd);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        n += k;
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return buf;
}

/* ---- USDT probes --------------------------------------------------------- */

static const char *const probes[] = {"chan_reserve", "chan_commit",  "chan_read",
                                     "chan_release", "writer_block", "writer_wake",
                                     "reader_block", "reader_wake",  "call_begin",
                                     "call_end",     "execution_submit", "execution_done",
                                     "link_send",    "link_recv"};

Test(prof, readelf_lists_every_probe_of_libweir)
{
#if !WEIR_HAVE_SDT
    cr_skip_test("built without <sys/sdt.h>: probes compile to nothing");
#endif
    int st;
    char *out = run("readelf -n " WEIR_LIBWEIR " 2>&1", &st);
    cr_assert_eq(st, 0, "readelf failed: %s", out);
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        char want[96];
        snprintf(want, sizeof want, "Provider: weir\n    Name: %s\n", probes[i]);
        cr_expect(strstr(out, want), "probe weir:%s not in %s", probes[i], WEIR_LIBWEIR);
    }
    free(out);
}

static int inc(weir_call *c, void *s)
{
    (void)s;
    size_t n;
    const int64_t *x = weir_call_in(c, 0, &n);
    int64_t *y = weir_call_out(c, 0, sizeof *y);
    if (!x || !y)
        return -1;
    *y = *x + 1;
    return 0;
}

/* Fails every execution whose index ends in 7 (x % 100 == 7 after inc: x = exec + 1). */
static int dbl(weir_call *c, void *s)
{
    (void)s;
    size_t n;
    const int64_t *x = weir_call_in(c, 0, &n);
    if (*x % 100 == 8)
        return weir_call_fail(c, "no %lld", (long long)*x);
    int64_t *y = weir_call_out(c, 0, 2 * sizeof *y);
    if (!y)
        return -1;
    y[0] = y[1] = 2 * *x;
    return 0;
}

static int crash5(weir_call *c, void *s)
{
    (void)s;
    if (weir_call_exec(c) == 5)
        raise(SIGKILL);
    return inc(c, s);
}

/* chain: driver -arg0-> a.inc -> b.dbl -> driver. */
static weir_dag *chain_opts(weir_graph **gp, const char *name, int a_process,
                            const weir_compile_opts *o)
{
    weir_graph *g = weir_graph_new(name);
    weir_actor_opts pa = {.isolation = a_process ? WEIR_PROCESS : WEIR_THREAD,
                          .max_restarts = a_process ? 1 : 0};
    weir_actor_opts pb = {0};
    weir_actor *a = weir_actor_new(g, "a", &pa), *b = weir_actor_new(g, "b", &pb);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", a_process ? crash5 : inc, &in, 1, 1);
    weir_node *y = weir_bind(b, "dbl", dbl, &x, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0, "%s", weir_errmsg());
    weir_dag *d = weir_compile(g, o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    *gp = g;
    return d;
}

static weir_dag *chain(weir_graph **gp, const char *name, int a_process)
{
    return chain_opts(gp, name, a_process, NULL);
}

static int run_n(weir_dag *d, int n)
{
    int failed = 0;
    for (int64_t i = 0; i < n; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        int rc = weir_execute(d, &arg, 1, &r, TMO);
        if (rc == -EREMOTEIO) {
            failed++;
            continue;
        }
        cr_assert_eq(rc, 0, "execution %lld: %s", (long long)i, weir_errmsg());
        weir_result_free(r);
    }
    return failed;
}

/* In a child process: wait until the segment shows `collected` executions, then
 * print every counter the tests check as one line. */
static void dump_from_child(const char *path, uint64_t collected, int wfd)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid)
        return;
    char line[2048];
    int n = 0;
    struct weir__stats_view v;
    if (weir__stats_open(&v, path) < 0) {
        n = snprintf(line, sizeof line, "open: %s\n", weir_errmsg());
    } else {
        int rc = -EAGAIN;
        for (int i = 0; i < 500; i++) {
            rc = weir__stats_read(&v);
            if (rc == 0 && v.snap->collected >= collected)
                break;
            sleep_ms(10);
        }
        struct weir__stats_hdr *h = v.snap;
        n = snprintf(line, sizeof line, "rc %d graph %s pid %u execs %llu collected %llu", rc,
                     h->graph, h->pid, (unsigned long long)h->executions,
                     (unsigned long long)h->collected);
        for (unsigned c = 0; c < h->nchans; c++) {
            struct weir__stats_chan *sc = weir__stats_chan_at(h, c);
            n += snprintf(line + n, sizeof line - (size_t)n, " | %s w%d m%llu b%llu e%llu r%u",
                          sc->name, sc->writer, (unsigned long long)sc->messages,
                          (unsigned long long)sc->bytes, (unsigned long long)sc->errors,
                          sc->nreaders);
            for (unsigned r = 0; r < sc->nreaders; r++)
                n += snprintf(line + n, sizeof line - (size_t)n, ":%d=%llu", sc->readers[r].who,
                              (unsigned long long)sc->readers[r].consumed);
        }
        for (unsigned a = 0; a < h->nactors; a++) {
            struct weir__stats_actor *sa = weir__stats_actor_at(h, a);
            n += snprintf(line + n, sizeof line - (size_t)n, " | %s %s restarts %u calls %llu",
                          sa->name, sa->isolation == WEIR_PROCESS ? "process" : "thread",
                          sa->restarts, (unsigned long long)sa->calls);
            for (unsigned k = 0; k < sa->nmethods; k++) {
                struct weir__stats_method *m = weir__stats_method_at(h, sa->method0 + k);
                n += snprintf(line + n, sizeof line - (size_t)n, " %s=%llu/%llu", m->name,
                              (unsigned long long)m->calls, (unsigned long long)m->errors);
            }
        }
        n += snprintf(line + n, sizeof line - (size_t)n, "\n");
        weir__stats_close(&v);
    }
    _exit(write(wfd, line, (size_t)n) == n ? 0 : 1);
}

static char *read_line(int fd)
{
    static char buf[4096];
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof buf && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    return buf;
}

Test(prof, counters_exact_read_from_another_process)
{
    weir_graph *g;
    weir_dag *d = chain(&g, "exact", 0);
    const char *path = weir_dag_stats_path(d);
    char want_path[128];
    snprintf(want_path, sizeof want_path, "/dev/shm/weir-stats.%d.exact", (int)getpid());
    cr_assert_str_eq(path, want_path);
    cr_assert_eq(run_n(d, N), N / 100, "one failure per 100 executions");
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    dump_from_child(path, N, pfd[1]); /* the dag still runs */
    close(pfd[1]);
    char *got = read_line(pfd[0]);
    close(pfd[0]);
    int st;
    cr_assert_gt(wait(&st), 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader process failed (%d)", st);
    /* b's output: 990 results of 16 bytes, 10 error records (text + NUL). */
    size_t berr = 0;
    for (int e = 7; e < N; e += 100) {
        char t[128];
        berr += (size_t)snprintf(t, sizeof t, "actor 'b' method 'dbl' failed at execution %d: no %d",
                                 e, e + 1) + 1;
    }
    char want[2048];
    snprintf(want, sizeof want,
             "rc 0 graph exact pid %d execs 1000 collected 1000"
             " | arg0 w-1 m1000 b8000 e0 r1:0=1000"
             " | a.inc.out0 w0 m1000 b8000 e0 r1:1=1000"
             " | b.dbl.out0 w1 m1000 b%d e10 r1:-1=1000"
             " | a thread restarts 0 calls 1000 inc=1000/0"
             " | b thread restarts 0 calls 1000 dbl=1000/10\n",
             (int)getpid(), (int)(990 * 16 + berr));
    cr_assert_str_eq(got, want);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    cr_assert_eq(access(want_path, F_OK), -1, "segment removed at teardown");
    weir_graph_free(g);
}

Test(prof, counters_exact_after_a_process_actor_restart)
{
    weir_graph *g;
    weir_dag *d = chain(&g, "restarted", 1);
    /* Execution 5 kills a's process inside inc: it fails, the replacement runs 6.. */
    int failed = run_n(d, N);
    cr_assert_eq(failed, N / 100 + 1, "the crashed execution and b's failures");
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    dump_from_child(weir_dag_stats_path(d), N, pfd[1]);
    close(pfd[1]);
    char *got = read_line(pfd[0]);
    close(pfd[0]);
    int st;
    cr_assert_gt(wait(&st), 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader process failed (%d)", st);
    /* The crashed call never finished: 999 calls of inc, counted by two processes.
     * a.inc.out0 carries an error record for execution 5, which b forwards
     * without calling dbl (999 calls, 10 of them failed). */
    const char *tail = " | a process restarts 1 calls 999 inc=999/0"
                       " | b thread restarts 0 calls 999 dbl=999/10\n";
    cr_assert(strstr(got, " | arg0 w-1 m1000 b8000 e0 r1:0=1000 | a.inc.out0 w0 m1000 "),
              "%s", got);
    cr_assert(strstr(got, " e1 r1:1=1000 | b.dbl.out0 w1 m1000 "), "%s", got);
    cr_assert(strstr(got, " e11 r1:-1=1000"), "%s", got);
    size_t n = strlen(got), t = strlen(tail);
    cr_assert(n > t && !strcmp(got + n - t, tail), "%s", got);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* Wait until process pid has a stats segment (ms bound); 1 if it has. */
static int wait_segment(int pid, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (count_stats(pid) > 0)
            return 1;
        sleep_ms(10);
    }
    return 0;
}

Test(prof, weir_top_json_of_a_running_demo)
{
    pid_t demo = fork();
    cr_assert_geq(demo, 0);
    if (demo == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        /* Fused on 2 workers: (parser, momentum, liquidity) | (joiner, scorer). */
        execl(WEIR_DEMO, "weir-marketdata", "-n", "400000", "--threads", "2", "--quiet",
              (char *)NULL);
        _exit(127);
    }
    cr_assert(wait_segment(demo, 20000), "the demo published no stats segment");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             WEIR_TOP " --once --json -d 0.3 %d | python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "print(d[\"graph\"], d[\"pid\"], \",\".join(c[\"name\"]+\"<\"+c[\"writer\"] for c in d[\"channels\"]), "
             "\",\".join(a[\"name\"] for a in d[\"actors\"]), "
             "all(a[\"calls\"] > 0 for a in d[\"actors\"]), d[\"bottleneck\"][\"text\"].startswith(\"bottleneck: \"))'",
             (int)demo);
    int st;
    char *out = run(cmd, &st);
    char want[512];
    snprintf(want, sizeof want,
             "marketdata %d arg0<driver,parser.parse.out0<parser,momentum.ema.out0<momentum,"
             "liquidity.vwap.out0<liquidity,scorer.score.out0<scorer "
             "parser,momentum,liquidity,joiner,scorer True True\n",
             (int)demo);
    int ds;
    cr_assert_eq(waitpid(demo, &ds, 0), demo);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_str_eq(out, want);
    cr_assert(WIFEXITED(ds) && WEXITSTATUS(ds) == 0, "demo status %d", ds);
    cr_assert_eq(count_stats(demo), 0, "the demo removed its segment at teardown");
    free(out);
}

Test(prof, weir_top_when_the_target_exits_and_stale_segments_go)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(pfd[0]);
        weir_graph *g;
        weir_dag *d = chain(&g, "vanishing", 0);
        run_n(d, 10);
        if (write(pfd[1], "x", 1) != 1)
            _exit(2);
        sleep_ms(800);
        _exit(0); /* no teardown: the segment stays behind, stale */
    }
    close(pfd[1]);
    char c;
    cr_assert_eq(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    char cmd[256];
    snprintf(cmd, sizeof cmd, WEIR_TOP " -d 0.2 %d 2>&1 >/dev/null", (int)child);
    int st;
    char *out = run(cmd, &st);
    char want[256];
    snprintf(want, sizeof want, "weir-top: process %d (graph 'vanishing') exited\n", (int)child);
    cr_assert_eq(st, 1, "%s", out);
    cr_assert_str_eq(out, want);
    free(out);
    int cs;
    cr_assert_eq(waitpid(child, &cs, 0), child);
    /* The list marks it; the next segment created removes it. */
    out = run(WEIR_TOP, &st);
    char mark[128];
    snprintf(mark, sizeof mark, "%d ", (int)child);
    cr_assert(strstr(out, mark) && strstr(out, "(exited: stale)"), "%s", out);
    free(out);
    cr_assert_eq(count_stats(child), 1);
    weir_graph *g;
    weir_dag *d = chain(&g, "cleaner", 0);
    cr_assert_eq(count_stats(child), 0, "stale segment of a dead process removed");
    cr_assert_eq(weir_stats_remove_stale(), 0, "nothing stale is left to remove");
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    /* A pid that never had a dag. */
    snprintf(cmd, sizeof cmd, WEIR_TOP " --once %d 2>&1", (int)child);
    out = run(cmd, &st);
    snprintf(want, sizeof want, "weir-top: no process %d\n", (int)child);
    cr_assert_eq(st, 1);
    cr_assert_str_eq(out, want);
    free(out);
}

Test(prof, bpftrace_counts_call_begin)
{
#if !WEIR_HAVE_SDT
    cr_skip_test("built without <sys/sdt.h>");
#endif
    int st;
    char *out = run("command -v bpftrace 2>&1", &st);
    free(out);
    if (st != 0)
        cr_skip_test("bpftrace is not installed");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "timeout 30 bpftrace -p %d -e 'usdt:/proc/%d/exe:weir:call_begin { @n = count(); } "
             "usdt:/proc/%d/exe:weir:execution_done /arg1 == %d/ { exit(); }' 2>&1",
             (int)getpid(), (int)getpid(), (int)getpid(), 2 * N - 1);
    weir_graph *g;
    weir_dag *d = chain(&g, "traced", 0);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char line[512] = "";
    int attached = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "Attaching")) {
            attached = 1;
            break;
        }
    if (!attached) {
        pclose(f);
        weir_dag_free(d);
        weir_graph_free(g);
        cr_skip_test("bpftrace cannot attach here: %s", line);
    }
    sleep_ms(500);
    run_n(d, 2 * N);
    char all[4096] = "";
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n + strlen(line) < sizeof all)
        n += (size_t)snprintf(all + n, sizeof all - n, "%s", line);
    pclose(f);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    /* Two calls (inc, dbl) per execution. */
    char want[64];
    snprintf(want, sizeof want, "@n: %d", 4 * N);
    cr_assert(strstr(all, want), "bpftrace said: %s", all);
}

/* ---- the timeline (WEIR_TRACE) -------------------------------------------- */

static char *trace_summary(const char *path, int *st)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); ev=d[\"traceEvents\"]; "
             "x=[e for e in ev if e[\"ph\"]==\"X\"]; "
             "k=lambda c: sum(1 for e in x if e[\"cat\"]==c); "
             "calls=sorted(set(e[\"args\"][\"exec\"] for e in x if e[\"cat\"]==\"CALL\")); "
             "ids=sorted(e[\"id\"] for e in ev if e[\"ph\"]==\"s\")==sorted(e[\"id\"] for e in ev if e[\"ph\"]==\"f\"); "
             "names=sorted(e[\"args\"][\"name\"] for e in ev if e[\"ph\"]==\"M\" and e[\"name\"]==\"thread_name\"); "
             "print(k(\"READ\"), k(\"CALL\"), k(\"WRITE\"), sum(1 for e in ev if e[\"ph\"]==\"s\"), "
             "sum(1 for e in ev if e[\"ph\"]==\"f\"), ids, len(calls), names, "
             "any(e[\"ph\"]==\"C\" for e in ev), d[\"otherData\"][\"dropped_events\"], "
             "sum(1 for e in ev if e[\"ph\"]==\"i\"))' %s 2>&1",
             path);
    return run(cmd, st);
}

/* 100 executions of the traced chain d: every slice and flow is in the file. */
static void check_trace_of_100(weir_dag *d, weir_graph *g, const char *path)
{
    cr_assert_eq(run_n(d, 100), 1);
    sleep_ms(50); /* a few occupancy samples */
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    int st;
    char *out = trace_summary(path, &st);
    unlink(path);
    cr_assert_eq(st, 0, "%s", out);
    /* a: READ arg0, CALL inc, WRITE; b: READ, CALL dbl, WRITE; one flow per message a -> b. */
    cr_assert_str_eq(out, "200 200 200 100 100 True 100 ['actor a', 'actor b'] True 0 0\n");
    free(out);
}

Test(prof, trace_file_has_every_slice_and_flow)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/weir-test-trace.%d.json", (int)getpid());
    setenv("WEIR_TRACE", path, 1);
    weir_graph *g;
    weir_dag *d = chain(&g, "traced", 0);
    unsetenv("WEIR_TRACE");
    check_trace_of_100(d, g, path);
}

/* The compile option does what WEIR_TRACE does, without the environment. */
Test(prof, trace_path_compile_option)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/weir-test-trace-opt.%d.json", (int)getpid());
    unsetenv("WEIR_TRACE");
    weir_compile_opts o = {.trace_path = path};
    weir_graph *g;
    weir_dag *d = chain_opts(&g, "traced_opt", 0, &o);
    check_trace_of_100(d, g, path);
}

Test(prof, trace_stays_bounded_and_says_so)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/weir-test-trace.%d.json", (int)getpid());
    setenv("WEIR_TRACE", path, 1);
    setenv("WEIR_TRACE_EVENTS", "50", 1);
    weir_graph *g;
    weir_dag *d = chain(&g, "bounded", 0);
    unsetenv("WEIR_TRACE");
    unsetenv("WEIR_TRACE_EVENTS");
    cr_assert_eq(run_n(d, 100), 1);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    int st;
    char *out = trace_summary(path, &st);
    unlink(path);
    cr_assert_eq(st, 0, "%s", out);
    /* 50 events kept per actor (the first: executions 0..15 whole, READ and CALL of 16),
     * 250 dropped by each of the two actors. */
    cr_assert(strstr(out, " 500 1\n"), "%s", out);
    const char *head = "34 34 32 ";
    cr_assert(!strncmp(out, head, strlen(head)), "%s", out);
    free(out);
}

/* ---- plan views ---------------------------------------------------------------- */

Test(prof, weir_plan_svg_with_and_without_dot)
{
    char dir[64], plan[96], dot[96], cmd[1024];
    snprintf(dir, sizeof dir, "/tmp/weir-test-svg.%d", (int)getpid());
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(plan, sizeof plan, "%s/chain.plan", dir);
    snprintf(dot, sizeof dot, "%s/dot", dir);
    weir_graph *g;
    weir_dag *d = chain(&g, "drawn", 0);
    cr_assert_eq(weir_dag_save_plan(d, plan), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    /* A stand-in for Graphviz: checks it got DOT, answers a fixed SVG. */
    FILE *f = fopen(dot, "w");
    fprintf(f, "#!/bin/sh\n[ \"$1\" = -Tsvg ] && grep -q digraph \"$2\" || exit 3\n"
               "echo '<?xml version=\"1.0\"?>'\necho '<svg width=\"120pt\" height=\"300pt\"><g id=\"graph0\"/></svg>'\n");
    fclose(f);
    chmod(dot, 0700);
    int st;
    snprintf(cmd, sizeof cmd,
             "PATH=%s:/usr/bin:/bin " WEIR_PLAN_TOOL " svg %s | python3 -c 'import sys, xml.dom.minidom as m; "
             "d=m.parseString(sys.stdin.read()); t=[s.firstChild.data if s.firstChild else \"\" for s in d.getElementsByTagName(\"tspan\")]; "
             "print(len(d.getElementsByTagName(\"g\")), d.documentElement.getAttribute(\"width\"), t[0].split()[0:2], "
             "[x.strip() for x in t if \"CALL\" in x])' 2>&1",
             dir, plan);
    char *out = run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    /* Two groups: the placement and dot's own; 120pt of graph + pads + the text. */
    cr_assert_str_eq(out, "2 883 ['plan', \"'drawn'\"] ['1 CALL    inc(r0) -> r1   [node 1]', '1 CALL    dbl(r0) -> r1   [node 2]']\n"
                          , "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "PATH=/nonexistent " WEIR_PLAN_TOOL " svg %s 2>&1 >/dev/null", plan);
    out = run(cmd, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "weir-plan: svg: Graphviz's 'dot' is not on PATH (Debian: apt-get install "
                          "graphviz); the SVG shows the schedules only\n");
    free(out);
    unlink(plan);
    unlink(dot);
    rmdir(dir);
}

Test(prof, weir_bench_svg_puts_weir_beside_its_baseline)
{
    char dir[64], cmd[1024];
    snprintf(dir, sizeof dir, "/tmp/weir-test-bench-svg.%d", (int)getpid());
    snprintf(cmd, sizeof cmd,
             WEIR_BENCH " chan --quick --rounds 1 --budget-ms 60 --filter 'weir tput.thr.read 64 r1,"
             "weir tput.thr.read 1024 r1,pipe tput.proc.copy 64 r1,pipe tput.proc.copy 1024 r1' "
             "--svg %s >/dev/null 2>&1 && python3 -c 'import sys, xml.dom.minidom as m; "
             "d=m.parse(sys.argv[1]+\"/chan-throughput.svg\"); l=m.parse(sys.argv[1]+\"/chan-latency.svg\"); "
             "print([len(p.getAttribute(\"points\").split()) for p in d.getElementsByTagName(\"polyline\")], "
             "[t.firstChild.data for t in d.getElementsByTagName(\"text\") if \" r1\" in t.firstChild.data], "
             "len(l.getElementsByTagName(\"text\")))' %s 2>&1; rm -rf %s",
             dir, dir, dir);
    int st;
    char *out = run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_str_eq(out, "[2, 2] ['weir tput.thr.read r1', 'pipe tput.proc.copy r1'] 1\n");
    free(out);
}

/* weir-bench net's command line: help, bad arguments, the case list (nothing runs). */
Test(prof, weir_bench_net_cli)
{
    int st;
    char *out = run(WEIR_BENCH " net --help 2>&1", &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strncmp(out, "usage: weir-bench net [options]\n", 32) == 0, "%s", out);
    cr_assert_not_null(strstr(out, "tcp-spin"), "%s", out);
    free(out);
    static const struct {
        const char *args, *err;
    } bad[] = {
        {"--bogus", "weir-bench net: unknown option '--bogus' (try 'weir-bench --help')\n"},
        {"--rounds 0", "weir-bench net: --rounds wants 1..9, not '0'\n"},
        {"extra", "weir-bench net: unexpected argument 'extra' (try 'weir-bench --help')\n"},
        {"--filter", "weir-bench net: option '--filter' needs a value (try 'weir-bench --help')\n"},
        {"--svg /tmp", "weir-bench net: --svg does not apply to net (try 'weir-bench net --help')\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, WEIR_BENCH " net %s 2>&1 >/dev/null", bad[i].args);
        out = run(cmd, &st);
        cr_assert_eq(st, 2, "%s: status %d: %s", bad[i].args, st, out);
        cr_assert_str_eq(out, bad[i].err);
        free(out);
    }
    /* --list: every case once, nothing measured, no namespace made. */
    out = run(WEIR_BENCH " net --list --filter tput.lo,pingpong.veth 2>&1", &st);
    cr_assert_eq(st, 0, "%s", out);
    int lines = 0;
    for (const char *q = out; *q; q++)
        lines += *q == '\n';
    cr_assert_eq(lines, 25, "%s", out); /* 4 sizes x 5 impls + 5 ping-pong */
    cr_assert_not_null(strstr(out, "weir-uring tput.lo                1048576 1\n"), "%s", out);
    cr_assert_not_null(strstr(out, "zmq        pingpong.veth               64 1\n"), "%s", out);
    free(out);
}
