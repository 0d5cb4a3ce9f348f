/* SPDX-License-Identifier: MIT */
/*
 * tests/test_proc.c - WEIR_PROCESS actors, deaths, teardown, no leftovers.
 *
 * After every test the fixture checks that no child process is left
 * (running or zombie), that /dev/shm has no new entry and that no file
 * descriptor leaked.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

#include "dag_util.h"
#include "view_util.h"

#include "engine/engine.h" /* struct weir_result: is it a view? */

#define TMO 10000


TestSuite(proc, .init = dag_leak_init, .fini = dag_leak_fini, .timeout = 120);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t in64(weir_call *c, unsigned i)
{
    size_t n;
    const int64_t *p = weir_call_in(c, i, &n);
    return n == sizeof(int64_t) ? *p : INT64_MIN;
}
static int out64(weir_call *c, unsigned i, int64_t v)
{
    int64_t *p = weir_call_out(c, i, sizeof v);
    if (!p)
        return weir_call_fail(c, "%s", weir_errmsg());
    *p = v;
    return 0;
}
static int64_t res64(const weir_result *r, unsigned i)
{
    size_t n;
    const int64_t *p = weir_result_data(r, i, &n);
    cr_assert_not_null(p);
    cr_assert_eq(n, sizeof(int64_t));
    return *p;
}

static int add_one(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, in64(c, 0) + 1);
}
static int times_two(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, in64(c, 0) * 2);
}
static int plus_three(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, in64(c, 0) + 3);
}
static int sum2(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, in64(c, 0) + in64(c, 1));
}
static int fail_sevens(weir_call *c, void *st)
{
    (void)st;
    int64_t x = in64(c, 0);
    if (x % 7 == 3)
        return weir_call_fail(c, "seven-three %lld", (long long)x);
    return out64(c, 0, x);
}

/* parse (thread) -> f1, f2 (processes) -> join (thread) -> check (process) */
static weir_dag *diamond(weir_graph **gp, int iso_f, int iso_j)
{
    weir_graph *g = weir_graph_new("mixed");
    weir_actor_opts t = {.isolation = WEIR_THREAD};
    weir_actor_opts pf = {.isolation = iso_f};
    weir_actor_opts pj = {.isolation = iso_j};
    weir_actor *p = weir_actor_new(g, "parse", &t), *f1 = weir_actor_new(g, "f1", &pf),
               *f2 = weir_actor_new(g, "f2", &pf), *j = weir_actor_new(g, "join", &t),
               *k = weir_actor_new(g, "check", &pj);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(p, "parse", add_one, &in, 1, 1);
    weir_node *ab[2] = {weir_bind(f1, "double", times_two, &x, 1, 1),
                        weir_bind(f2, "plus3", plus_three, &x, 1, 1)};
    weir_node *y = weir_bind(j, "sum", sum2, ab, 2, 1);
    weir_node *z = weir_bind(k, "sevens", fail_sevens, &y, 1, 1);
    weir_node *outs[2] = {z, ab[0]};
    weir_output(g, outs, 2);
    weir_compile_opts o = {.max_inflight = 8};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    *gp = g;
    return d;
}

/* Run n pipelined executions; return a checksum over every result and error. */
static uint64_t run_diamond(weir_dag *d, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    int64_t waited = 0;
    for (int64_t i = 0; i < n || waited < n;) {
        if (i < n && i - waited < 8) {
            weir_buf arg = {&i, sizeof i};
            uint64_t id;
            cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
            i++;
            continue;
        }
        weir_result *r = NULL;
        int rc = weir_wait(d, (uint64_t)waited, &r, TMO);
        int64_t y = (waited + 1) * 2 + waited + 4;
        if (y % 7 == 3) {
            cr_assert_eq(rc, -EREMOTEIO, "execution %lld: %d %s", (long long)waited, rc,
                         weir_errmsg());
            char want[128];
            snprintf(want, sizeof want,
                     "actor 'check' method 'sevens' failed at execution %lld: seven-three %lld",
                     (long long)waited, (long long)y);
            cr_assert(strstr(weir_errmsg(), want), "%s", weir_errmsg());
            h = (h ^ (uint64_t)-y) * 1099511628211ull;
        } else {
            cr_assert_eq(rc, 0, "execution %lld: %s", (long long)waited, weir_errmsg());
            cr_assert_eq(res64(r, 0), y);
            cr_assert_eq(res64(r, 1), (waited + 1) * 2);
            h = (h ^ (uint64_t)res64(r, 0)) * 1099511628211ull;
            weir_result_free(r);
        }
        waited++;
    }
    return h;
}

Test(proc, mixed_thread_and_process_give_thread_results)
{
    const int64_t n = 100000;
    weir_graph *g;
    weir_dag *d = diamond(&g, WEIR_THREAD, WEIR_THREAD);
    uint64_t h_thread = run_diamond(d, n);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);

    d = diamond(&g, WEIR_PROCESS, WEIR_PROCESS);
    uint64_t h_proc = run_diamond(d, n);
    cr_assert_eq(h_proc, h_thread);
    /* Counters written by actor processes are readable from the driver. */
    for (unsigned c = 0; c < weir_dag_nchannels(d); c++) {
        struct weir_chan_stats st;
        cr_assert_eq(weir_dag_chan_stats(d, c, &st), 0);
        cr_assert_eq(st.messages, (uint64_t)n, "channel %s: %llu", st.name,
                     (unsigned long long)st.messages);
        if (!strcmp(st.name, "check.sevens.out0"))
            cr_assert(st.errors > (uint64_t)n / 8, "errors %llu", (unsigned long long)st.errors);
        if (!strcmp(st.name, "parse.parse.out0")) {
            cr_assert_eq(st.nreaders, 2);
            for (unsigned r = 0; r < 2; r++)
                cr_assert_neq(st.readers[r].pid, (int)getpid(),
                              "process readers are owned by their processes");
        }
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* ---- init / fini in the actor's process ---------------------------------- */

struct pstate {
    int64_t init_pid;
    int64_t calls;
    int fini_fd;
};

static int st_init(void *s)
{
    struct pstate *st = s;
    st->init_pid = getpid();
    return 0;
}
static void st_fini(void *s)
{
    struct pstate *st = s;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "fini %lld %lld\n", (long long)getpid(), (long long)st->calls);
    if (write(st->fini_fd, buf, (size_t)n) != n)
        abort();
}
static int whoami(weir_call *c, void *s)
{
    struct pstate *st = s;
    st->calls++;
    int rc = out64(c, 0, st->init_pid);
    return rc ? rc : out64(c, 1, getpid());
}

Test(proc, init_and_fini_run_in_the_actor_process)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    struct pstate st = {.init_pid = 0, .calls = 0, .fini_fd = pfd[1]};
    weir_graph *g = weir_graph_new("initfini");
    weir_actor_opts o = {.state = &st, .isolation = WEIR_PROCESS,
                         .init = st_init, .fini = st_fini};
    weir_actor *a = weir_actor_new(g, "worker", &o);
    weir_node *in = weir_input(g, 0);
    weir_node *w = weir_bind(a, "whoami", whoami, &in, 1, 2);
    weir_node *outs[2] = {weir_ret(w, 0), weir_ret(w, 1)};
    weir_output(g, outs, 2);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t pid = 0;
    for (int64_t i = 0; i < 1000; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(res64(r, 0), res64(r, 1), "init ran in another process than the method");
        cr_assert_neq(res64(r, 1), (int64_t)getpid(), "the method ran in the driver");
        pid = res64(r, 1);
        weir_result_free(r);
    }
    cr_assert_eq(st.init_pid, 0, "the driver's copy of the state was touched");
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    close(pfd[1]);
    char buf[128] = {0};
    cr_assert(read(pfd[0], buf, sizeof buf - 1) > 0);
    close(pfd[0]);
    char want[64];
    snprintf(want, sizeof want, "fini %lld 1000\n", (long long)pid);
    cr_assert_str_eq(buf, want);
    weir_graph_free(g);
}

static int bad_init(void *s)
{
    (void)s;
    return -7;
}

/* The ready barrier: weir_compile returns once every init ran, and an init
 * that fails is the compile's error (it used to surface at the first
 * execution as "could not start"). Nothing is left behind. */
Test(proc, init_failure_fails_the_compile)
{
    weir_graph *g = weir_graph_new("badinit");
    weir_actor_opts o = {.isolation = WEIR_PROCESS, .init = bad_init};
    weir_actor *a = weir_actor_new(g, "loader", &o);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &x, 1);
    uint64_t t0 = weir_now_ns();
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_null(d);
    cr_assert(weir_now_ns() - t0 < 2000000000ull);
    cr_assert_eq(weir_errcode(), -EREMOTEIO, "%d %s", weir_errcode(), weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "graph 'badinit': actor 'loader' (pid "), "%s", weir_errmsg());
    cr_assert(strstr(weir_errmsg(), ") could not start: init returned -7"), "%s", weir_errmsg());
    /* The graph was not frozen: fix the actor and compile again. */
    weir_graph_free(g);
}

/* ---- deaths ---------------------------------------------------------------- */

enum { DIE_SEGV, DIE_ABORT, DIE_EXIT, DIE_SIGKILL_OUTSIDE };

static int boom(weir_call *c, void *s)
{
    int how = *(int *)s;
    int64_t x = in64(c, 0);
    if (x == 50) {
        if (how == DIE_SEGV)
            raise(SIGSEGV);
        if (how == DIE_ABORT)
            abort();
        if (how == DIE_EXIT)
            exit(1);
        if (how == DIE_SIGKILL_OUTSIDE)
            sleep_ms(20000); /* the test kills us from outside */
    }
    int rc = out64(c, 0, x + 1);
    return rc ? rc : out64(c, 1, getpid());
}
static int pass1(weir_call *c, void *s)
{
    (void)s;
    return out64(c, 0, in64(c, 0));
}

static void death_case(int how, const char *want_how)
{
    weir_graph *g = weir_graph_new("death");
    weir_actor_opts t = {.isolation = WEIR_THREAD};
    weir_actor_opts p = {.state = &how, .isolation = WEIR_PROCESS};
    weir_actor *a = weir_actor_new(g, "front", &t);
    weir_actor *v = weir_actor_new(g, "victim", &p);
    weir_actor *b = weir_actor_new(g, "back", &t);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "pass", pass1, &in, 1, 1);
    weir_node *y = weir_bind(v, "boom", boom, &x, 1, 2);
    weir_node *y0 = weir_ret(y, 0);
    weir_node *z = weir_bind(b, "pass", pass1, &y0, 1, 1);
    weir_node *outs[2] = {z, weir_ret(y, 1)};
    weir_output(g, outs, 2);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t pid = 0;
    for (int64_t i = 0; i < 50; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(res64(r, 0), i + 1);
        pid = res64(r, 1);
        weir_result_free(r);
    }
    /* Execution 50 kills the actor; 51..53 are in flight behind it. */
    uint64_t ids[4];
    for (int64_t i = 50; i < 54; i++) {
        weir_buf arg = {&i, sizeof i};
        cr_assert_eq(weir_submit(d, &arg, 1, &ids[i - 50], TMO), 0, "%s", weir_errmsg());
    }
    uint64_t t0 = weir_now_ns();
    if (how == DIE_SIGKILL_OUTSIDE) {
        sleep_ms(100); /* let it enter the method */
        t0 = weir_now_ns();
        cr_assert_eq(kill((pid_t)pid, SIGKILL), 0);
    }
    char want[256];
    if (how == DIE_SIGKILL_OUTSIDE || how == DIE_EXIT || how == DIE_SEGV || how == DIE_ABORT)
        snprintf(want, sizeof want,
                 "actor 'victim' (pid %lld) died in method 'boom' at execution 50: %s",
                 (long long)pid, want_how);
    for (int k = 0; k < 4; k++) {
        weir_result *r = NULL;
        int rc = weir_wait(d, ids[k], &r, TMO);
        cr_assert_eq(rc, -EPIPE, "execution %d: %d %s", 50 + k, rc, weir_errmsg());
        cr_assert_null(r);
        /* The execution asked about (50 + k), then the one that failed (50). */
        char full[400];
        snprintf(full, sizeof full, "graph 'death': execution %d: %s", 50 + k, want);
        cr_assert_str_eq(weir_errmsg(), full);
    }
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el < 1000000000ull, "the failure took %llu ns", (unsigned long long)el);
    /* Later calls keep failing cleanly, at once. */
    for (int k = 0; k < 3; k++) {
        int64_t val = 100 + k;
        weir_buf arg = {&val, sizeof val};
        weir_result *r = NULL;
        t0 = weir_now_ns();
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), -EPIPE);
        cr_assert(weir_now_ns() - t0 < 100000000ull);
        cr_assert(strstr(weir_errmsg(), "submit: actor 'victim'"), "%s", weir_errmsg());
        cr_assert(strstr(weir_errmsg(), want_how), "%s", weir_errmsg());
    }
    t0 = weir_now_ns();
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    cr_assert(weir_now_ns() - t0 < 1000000000ull);
    weir_graph_free(g);
}

Test(proc, sigsegv_in_method)
{
    death_case(DIE_SEGV, "killed by signal 11 (SIGSEGV)");
}
Test(proc, abort_in_method)
{
    death_case(DIE_ABORT, "killed by signal 6 (SIGABRT)");
}
Test(proc, exit_in_method)
{
    death_case(DIE_EXIT, "exited with status 1");
}
Test(proc, sigkill_from_outside)
{
    death_case(DIE_SIGKILL_OUTSIDE, "killed by signal 9 (SIGKILL)");
}

Test(proc, death_while_idle_fails_the_next_execution)
{
    int how = -1;
    weir_graph *g = weir_graph_new("idle");
    weir_actor_opts p = {.state = &how, .isolation = WEIR_PROCESS};
    weir_actor *v = weir_actor_new(g, "victim", &p);
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(v, "boom", boom, &in, 1, 2);
    weir_node *outs[2] = {weir_ret(y, 0), weir_ret(y, 1)};
    weir_output(g, outs, 2);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t v0 = 0;
    weir_buf arg = {&v0, sizeof v0};
    weir_result *r;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
    pid_t pid = (pid_t)res64(r, 1);
    weir_result_free(r);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    sleep_ms(200);
    char want[128];
    snprintf(want, sizeof want, "actor 'victim' (pid %d) died: killed by signal 9 (SIGKILL)",
             (int)pid);
    cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), -EPIPE);
    cr_assert(strstr(weir_errmsg(), want), "%s", weir_errmsg());
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

static int sleepy(weir_call *c, void *s)
{
    (void)s;
    int64_t x = in64(c, 0);
    if (x < 0)
        sleep_ms(30000);
    return out64(c, 0, x);
}

Test(proc, teardown_kills_a_stuck_process_actor)
{
    weir_graph *g = weir_graph_new("stuckp");
    weir_actor_opts p = {.isolation = WEIR_PROCESS};
    weir_actor *a = weir_actor_new(g, "sleeper", &p);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "sleepy", sleepy, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_compile_opts o = {.timeout_ms = 200};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t v = -1;
    weir_buf arg = {&v, sizeof v};
    uint64_t id;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0);
    sleep_ms(100);
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_dag_free(d), -ETIMEDOUT);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el < 700000000ull, "teardown took %llu ns", (unsigned long long)el);
    cr_assert(strstr(weir_errmsg(), "actor 'sleeper' (pid "), "%s", weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "was stuck in method 'sleepy' (execution 0) and was killed"),
              "%s", weir_errmsg());
    weir_graph_free(g);
}

/* ---- the driver dies -------------------------------------------------------- */

static int report_pid(weir_call *c, void *s)
{
    (void)s;
    return out64(c, 0, getpid());
}

Test(proc, driver_death_takes_actors_with_it)
{
    /* Orphans are re-parented to us, so we can check they died and reap them. */
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t drv = fork();
    cr_assert(drv >= 0);
    if (drv == 0) {
        close(pfd[0]);
        weir_graph *g = weir_graph_new("orphans");
        weir_actor_opts p = {.isolation = WEIR_PROCESS};
        weir_actor *a = weir_actor_new(g, "a", &p), *b = weir_actor_new(g, "b", &p);
        weir_node *in = weir_input(g, 0);
        weir_node *outs[2] = {weir_bind(a, "pid", report_pid, &in, 1, 1),
                              weir_bind(b, "pid", report_pid, &in, 1, 1)};
        weir_output(g, outs, 2);
        weir_dag *d = weir_compile(g, NULL);
        if (!d)
            _exit(3);
        int64_t zero = 0;
        weir_buf arg = {&zero, sizeof zero};
        weir_result *r;
        if (weir_execute(d, &arg, 1, &r, TMO) < 0)
            _exit(4);
        int64_t pids[2] = {*(const int64_t *)weir_result_data(r, 0, NULL),
                           *(const int64_t *)weir_result_data(r, 1, NULL)};
        if (write(pfd[1], pids, sizeof pids) != sizeof pids)
            _exit(5);
        for (;;)
            pause();
    }
    close(pfd[1]);
    int64_t pids[2];
    cr_assert_eq(read(pfd[0], pids, sizeof pids), (ssize_t)sizeof pids);
    close(pfd[0]);
    cr_assert_eq(kill((pid_t)pids[0], 0), 0, "actor a is not running");
    cr_assert_eq(kill(drv, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(drv, &st, 0), drv);
    /* Both actors must die (SIGKILL via PR_SET_PDEATHSIG) and come to us to be reaped. */
    uint64_t t0 = weir_now_ns();
    for (int k = 0; k < 2; k++) {
        pid_t got;
        while ((got = waitpid((pid_t)pids[k], &st, WNOHANG)) == 0) {
            cr_assert(weir_now_ns() - t0 < 1000000000ull, "actor pid %lld still alive after 1 s",
                      (long long)pids[k]);
            sleep_ms(5);
        }
        cr_assert_eq(got, (pid_t)pids[k]);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "actor status %#x", st);
    }
}

/* ---- restarts ---------------------------------------------------------------- */

struct rstate {
    int64_t inits; /* per process: init runs on the process's own copy */
};
static int r_init(void *s)
{
    ((struct rstate *)s)->inits++;
    return 0;
}
/* Crashes at executions 100, 300 and 500; outputs x + 1, the pid and the init count. */
static int crashy(weir_call *c, void *s)
{
    struct rstate *st = s;
    int64_t x = in64(c, 0);
    if (x == 100 || x == 300 || x == 500)
        raise(SIGSEGV);
    int rc = out64(c, 0, x + 1);
    rc = rc ? rc : out64(c, 1, getpid());
    return rc ? rc : out64(c, 2, st->inits);
}

Test(proc, restarts_fail_only_the_crashed_execution)
{
    struct rstate st = {0};
    weir_graph *g = weir_graph_new("restart");
    weir_actor_opts t = {.isolation = WEIR_THREAD};
    weir_actor_opts p = {.state = &st, .isolation = WEIR_PROCESS, .init = r_init,
                         .max_restarts = 2};
    weir_actor *front = weir_actor_new(g, "front", &t);
    weir_actor *x = weir_actor_new(g, "crashy", &p);
    weir_actor *back = weir_actor_new(g, "back", &t);
    weir_node *in = weir_input(g, 0);
    weir_node *a = weir_bind(front, "pass", pass1, &in, 1, 1);
    weir_node *c = weir_bind(x, "crash", crashy, &a, 1, 3);
    weir_node *c0 = weir_ret(c, 0);
    weir_node *b = weir_bind(back, "pass", pass1, &c0, 1, 1);
    weir_node *outs[3] = {b, weir_ret(c, 1), weir_ret(c, 2)};
    weir_output(g, outs, 3);
    weir_compile_opts o = {.max_inflight = 4};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    const int64_t n = 700;
    int64_t waited = 0, pid = 0, pids_seen = 0;
    for (int64_t i = 0; i < n || waited < n;) {
        if (i < n && i - waited < 4) {
            weir_buf arg = {&i, sizeof i};
            uint64_t id;
            int rc = weir_submit(d, &arg, 1, &id, TMO);
            if (i <= 500 || rc == 0) {
                cr_assert_eq(rc, 0, "submit %lld: %s", (long long)i, weir_errmsg());
            } else {
                /* after the third crash the dag is dead: submit fails at once */
                cr_assert_eq(rc, -EPIPE, "submit %lld: %d %s", (long long)i, rc, weir_errmsg());
                cr_assert(strstr(weir_errmsg(), "submit: actor 'crashy'"), "%s",
                          weir_errmsg());
                break;
            }
            i++;
            continue;
        }
        weir_result *r = NULL;
        int rc = weir_wait(d, (uint64_t)waited, &r, TMO);
        if (waited == 100 || waited == 300) {
            cr_assert_eq(rc, -EREMOTEIO, "execution %lld: %d %s", (long long)waited, rc,
                         weir_errmsg());
            char want[256];
            snprintf(want, sizeof want,
                     "graph 'restart': execution %lld: actor 'crashy' (pid %lld) died in method "
                     "'crash' at execution %lld: killed by signal 11 (SIGSEGV); restarted as pid ",
                     (long long)waited, (long long)pid, (long long)waited);
            cr_assert(strstr(weir_errmsg(), want), "'%s' lacks '%s'", weir_errmsg(), want);
            cr_assert(strstr(weir_errmsg(), waited == 100 ? "(restart 1 of 2)" : "(restart 2 of 2)"),
                      "%s", weir_errmsg());
        } else if (waited >= 500) {
            cr_assert_eq(rc, -EPIPE, "execution %lld: %d %s", (long long)waited, rc,
                         weir_errmsg());
            char want[256];
            snprintf(want, sizeof want,
                     "graph 'restart': execution %lld: actor 'crashy' (pid %lld) died in method "
                     "'crash' at execution 500: killed by signal 11 (SIGSEGV)",
                     (long long)waited, (long long)pid);
            cr_assert(strstr(weir_errmsg(), want), "'%s' lacks '%s'", weir_errmsg(), want);
        } else {
            cr_assert_eq(rc, 0, "execution %lld: %s", (long long)waited, weir_errmsg());
            cr_assert_eq(res64(r, 0), waited + 1);
            cr_assert_eq(res64(r, 2), 1, "init ran %lld times in this process", (long long)res64(r, 2));
            if (res64(r, 1) != pid) {
                pids_seen++;
                cr_assert(waited == 0 || waited == 101 || waited == 301,
                          "new pid at execution %lld", (long long)waited);
                pid = res64(r, 1);
            }
            weir_result_free(r);
        }
        waited++;
    }
    cr_assert_eq(pids_seen, 3, "expected the first process and two restarts");
    struct weir_actor_stats as;
    cr_assert_eq(weir_dag_actor_stats(d, 1, &as), 0);
    cr_assert_str_eq(as.name, "crashy");
    cr_assert_eq(as.isolation, WEIR_PROCESS);
    cr_assert_eq(as.restarts, 2u);
    cr_assert_eq((int64_t)as.pid, pid, "stats name the last process");
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

Test(proc, restart_after_idle_kill_fails_nothing)
{
    struct rstate st = {0};
    weir_graph *g = weir_graph_new("idlerestart");
    weir_actor_opts p = {.state = &st, .isolation = WEIR_PROCESS, .init = r_init,
                         .max_restarts = 1};
    weir_actor *x = weir_actor_new(g, "crashy", &p);
    weir_node *in = weir_input(g, 0);
    weir_node *c = weir_bind(x, "crash", crashy, &in, 1, 3);
    weir_node *outs[3] = {weir_ret(c, 0), weir_ret(c, 1), weir_ret(c, 2)};
    weir_output(g, outs, 3);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    pid_t first = 0;
    for (int64_t i = 0; i < 20; i++) {
        if (i == 10) {
            cr_assert_eq(kill(first, SIGKILL), 0);
            sleep_ms(100);
        }
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "execution %lld: %s", (long long)i,
                     weir_errmsg());
        cr_assert_eq(res64(r, 0), i + 1);
        if (i == 0)
            first = (pid_t)res64(r, 1);
        if (i >= 10)
            cr_assert_neq(res64(r, 1), (int64_t)first, "not restarted");
        else
            cr_assert_eq(res64(r, 1), (int64_t)first);
        weir_result_free(r);
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* ---- regressions (named after the bug they pin) ------------------------------ */

#include <sys/mman.h>

struct shared_counts {
    int inits;
    int calls_exec3;
};
static struct shared_counts *shc;

static int init_second_fails(void *s)
{
    (void)s;
    int n = __atomic_add_fetch(&shc->inits, 1, __ATOMIC_SEQ_CST);
    return n == 2 ? -7 : 0;
}
static int abort_at_3(weir_call *c, void *s)
{
    (void)s;
    if (weir_call_exec(c) == 3) {
        __atomic_add_fetch(&shc->calls_exec3, 1, __ATOMIC_SEQ_CST);
        abort();
    }
    return out64(c, 0, in64(c, 0) + 1);
}

/* A replacement whose init fails must not make the next one retry the crashed execution. */
Test(proc, regression_crash_not_retried_after_failed_replacement)
{
    shc = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(shc != MAP_FAILED);
    weir_graph *g = weir_graph_new("retry");
    weir_actor_opts o = {.isolation = WEIR_PROCESS, .init = init_second_fails,
                         .max_restarts = 2};
    weir_actor *a = weir_actor_new(g, "p", &o);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "m", abort_at_3, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    for (int64_t i = 0; i < 6; i++) {
        weir_buf b = {&i, sizeof i};
        weir_result *r = NULL;
        int rc = weir_execute(d, &b, 1, &r, TMO);
        if (i == 3) {
            cr_assert_eq(rc, -EREMOTEIO, "execution 3: %d %s", rc, weir_errmsg());
        } else {
            cr_assert_eq(rc, 0, "execution %lld: %s", (long long)i, weir_errmsg());
            cr_assert_eq(res64(r, 0), i + 1);
            weir_result_free(r);
        }
    }
    cr_assert_eq(shc->calls_exec3, 1, "the crashed execution ran %d times", shc->calls_exec3);
    cr_assert_eq(shc->inits, 3);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    munmap(shc, 4096);
}

static int abort_at_2(weir_call *c, void *s)
{
    (void)s;
    if (weir_call_exec(c) == 2)
        abort();
    return out64(c, 0, in64(c, 0));
}
static int count_init(void *s)
{
    (void)s;
    __atomic_add_fetch(&shc->inits, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* A process that leaves cleanly because its upstream died is not restarted. */
Test(proc, regression_clean_exit_after_upstream_death_is_not_restarted)
{
    shc = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(shc != MAP_FAILED);
    weir_graph *g = weir_graph_new("clean");
    weir_actor_opts pa = {.isolation = WEIR_PROCESS};
    weir_actor_opts pb = {.isolation = WEIR_PROCESS, .init = count_init,
                          .max_restarts = 3};
    weir_actor *a = weir_actor_new(g, "A", &pa), *b = weir_actor_new(g, "B", &pb);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "m", abort_at_2, &in, 1, 1);
    weir_node *y = weir_bind(b, "n", add_one, &x, 1, 1);
    weir_output(g, &y, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    for (int64_t i = 0; i < 4; i++) {
        weir_buf b2 = {&i, sizeof i};
        weir_result *r = NULL;
        int rc = weir_execute(d, &b2, 1, &r, TMO);
        cr_assert_eq(rc, i < 2 ? 0 : -EPIPE, "execution %lld: %d %s", (long long)i, rc,
                     weir_errmsg());
        weir_result_free(r);
    }
    sleep_ms(200);
    struct weir_actor_stats st;
    cr_assert_eq(weir_dag_actor_stats(d, 1, &st), 0);
    cr_assert_eq(st.restarts, 0u);
    cr_assert_eq(shc->inits, 1, "B's init ran %d times", shc->inits);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    munmap(shc, 4096);
}

static int slow3s(weir_call *c, void *s)
{
    (void)s;
    sleep_ms(3000);
    return out64(c, 0, in64(c, 0));
}

static int count_threads_named(const char *name)
{
    int n = 0;
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(dir))) {
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && !strncmp(comm, name, strlen(name)))
            n++;
        fclose(f);
    }
    closedir(dir);
    return n;
}

/* Killing a stuck process at teardown must free the thread actor waiting on it. */
Test(proc, regression_teardown_kill_releases_waiting_thread)
{
    weir_graph *g = weir_graph_new("leak");
    weir_actor_opts p = {.isolation = WEIR_PROCESS};
    weir_actor_opts t = {.isolation = WEIR_THREAD};
    weir_actor *pp = weir_actor_new(g, "P", &p), *tt = weir_actor_new(g, "T", &t);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(pp, "slow", slow3s, &in, 1, 1);
    weir_node *y = weir_bind(tt, "n", add_one, &x, 1, 1);
    weir_output(g, &y, 1);
    weir_compile_opts o = {.timeout_ms = 300};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t v = 1;
    weir_buf b = {&v, sizeof v};
    uint64_t id;
    cr_assert_eq(weir_submit(d, &b, 1, &id, TMO), 0);
    sleep_ms(50);
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_dag_free(d), -ETIMEDOUT);
    cr_assert(weir_now_ns() - t0 < 1000000000ull);
    cr_assert(strstr(weir_errmsg(), "actor 'P' (pid "), "%s", weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "was stuck in method 'slow' (execution 0) and was killed"),
              "%s", weir_errmsg());
    cr_assert_null(strstr(weir_errmsg(), "actor 'T'"), "T was freed by the kill: %s",
                   weir_errmsg());
    cr_assert_eq(count_threads_named("weir:T"), 0, "the thread actor is still alive");
    weir_graph_free(g);
}

static int never_called(weir_call *c, void *s)
{
    (void)c;
    (void)s;
    abort();
}

static int stuck_init(void *s)
{
    (void)s;
    sleep_ms(2000);
    return 0;
}

/* An actor stuck in init past the dag's timeout fails the compile, named as
 * such; its process is killed and reaped (the fixture checks no child is left). */
Test(proc, regression_stuck_in_init_is_named)
{
    weir_graph *g = weir_graph_new("initstuck");
    weir_actor_opts p = {.isolation = WEIR_PROCESS, .init = stuck_init};
    weir_actor *a = weir_actor_new(g, "A", &p);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "m", never_called, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_compile_opts o = {.timeout_ms = 200};
    uint64_t t0 = weir_now_ns();
    weir_dag *d = weir_compile(g, &o);
    cr_assert_null(d);
    cr_assert(weir_now_ns() - t0 < 1500000000ull, "compile took %llu ns",
              (unsigned long long)(weir_now_ns() - t0));
    cr_assert_eq(weir_errcode(), -ETIMEDOUT);
    cr_assert_str_eq(weir_errmsg(), "graph 'initstuck': actor 'A' still in init after 200 ms");
    weir_graph_free(g);
}

/* ---- a process actor drops other dags' fds and mappings (issue 13, item 8) -- */

#define MAX_INO 64
struct inoset {
    unsigned n;
    unsigned long ino[MAX_INO];
};
static int in_set(const struct inoset *s, unsigned long ino)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->ino[i] == ino)
            return 1;
    return 0;
}
/* The inodes of every weir channel segment this process has open as an fd. */
static void chan_inodes(struct inoset *s)
{
    s->n = 0;
    DIR *dir = opendir("/proc/self/fd");
    cr_assert_not_null(dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        char path[300], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        struct stat st;
        if (strncmp(link, "/memfd:weir-chan", 16) == 0 && stat(path, &st) == 0 && s->n < MAX_INO &&
            !in_set(s, (unsigned long)st.st_ino))
            s->ino[s->n++] = (unsigned long)st.st_ino;
    }
    closedir(dir);
}

static struct inoset first_dag; /* the child reads its inherited copy */
static int user_fd = -1;

/* In the second dag's process actor: how many of the first dag's segments
 * it still has open (fds) or mapped, how many of its own it has, and
 * whether the user's fd survived. Packed as fds * 10^6 + maps * 10^3 + own,
 * negated if the user's fd is gone. */
static int inherit_probe(weir_call *c, void *st)
{
    (void)st;
    struct inoset now;
    DIR *dir = opendir("/proc/self/fd");
    int64_t fds = 0, own = 0, maps = 0;
    now.n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        char path[300], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        struct stat sb;
        if (n <= 0 || strncmp(link, "/memfd:weir-chan", 16) != 0 || stat(path, &sb) != 0)
            continue;
        if (in_set(&first_dag, (unsigned long)sb.st_ino))
            fds++;
        else if (!in_set(&now, (unsigned long)sb.st_ino) && now.n < MAX_INO)
            now.ino[now.n++] = (unsigned long)sb.st_ino, own++;
    }
    if (dir)
        closedir(dir);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long ino = 0;
        char perm[8], dev[16];
        unsigned long long off;
        if (sscanf(line, "%*s %7s %llx %15s %lu", perm, &off, dev, &ino) == 4 && ino &&
            in_set(&first_dag, ino))
            maps++;
    }
    if (f)
        fclose(f);
    int64_t v = fds * 1000000 + maps * 1000 + own;
    if (fcntl(user_fd, F_GETFD) < 0)
        v = -v - 1;
    return out64(c, 0, v);
}

Test(proc, process_actor_drops_other_dags_fds_and_mappings)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    user_fd = pfd[0];
    struct inoset before;
    chan_inodes(&before);

    /* The first dag: thread actors, a chain of two (three channels). */
    weir_graph *g1 = weir_graph_new("first");
    weir_actor_opts t = {0};
    weir_actor *a1 = weir_actor_new(g1, "a", &t);
    weir_actor *b1 = weir_actor_new(g1, "b", &t);
    weir_node *in1 = weir_input(g1, 0);
    weir_node *x = weir_bind(a1, "add", add_one, &in1, 1, 1);
    weir_node *y = weir_bind(b1, "twice", times_two, &x, 1, 1);
    weir_output(g1, &y, 1);
    weir_dag *d1 = weir_compile(g1, NULL);
    cr_assert_not_null(d1, "%s", weir_errmsg());
    struct inoset all;
    chan_inodes(&all);
    first_dag.n = 0;
    for (unsigned i = 0; i < all.n; i++)
        if (!in_set(&before, all.ino[i]))
            first_dag.ino[first_dag.n++] = all.ino[i];
    cr_assert_eq(first_dag.n, 3, "the first dag has %u channel segments open", first_dag.n);

    /* The second dag: one process actor that looks at what it inherited. */
    weir_graph *g2 = weir_graph_new("second");
    weir_actor_opts p = {.isolation = WEIR_PROCESS};
    weir_actor *a2 = weir_actor_new(g2, "probe", &p);
    weir_node *in2 = weir_input(g2, 0);
    weir_node *z = weir_bind(a2, "probe", inherit_probe, &in2, 1, 1);
    weir_output(g2, &z, 1);
    weir_dag *d2 = weir_compile(g2, NULL);
    cr_assert_not_null(d2, "%s", weir_errmsg());
    int64_t zero = 0;
    weir_buf arg = {&zero, sizeof zero};
    weir_result *r;
    cr_assert_eq(weir_execute(d2, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
    /* 0 fds and 0 mappings of the first dag; its own 2 channels; user fd kept. */
    cr_assert_eq(res64(r, 0), 2, "child: %lld (first dag fds*10^6 + maps*10^3 + own; <0: user fd closed)",
                 (long long)res64(r, 0));
    weir_result_free(r);

    /* The first dag is untouched in the driver. */
    for (int64_t i = 0; i < 100; i++) {
        weir_buf a = {&i, sizeof i};
        cr_assert_eq(weir_execute(d1, &a, 1, &r, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(res64(r, 0), (i + 1) * 2);
        weir_result_free(r);
    }
    cr_assert_eq(weir_dag_free(d2), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_free(d1), 0, "%s", weir_errmsg());
    weir_graph_free(g2);
    weir_graph_free(g1);
    close(pfd[0]);
    close(pfd[1]);
    user_fd = -1;
}

/* ---- zero-copy results from process actors --------------------------------
 * Views into rings shared with actor processes: the writer in another process
 * grows the ring (100000-byte payloads, tests/view_util.h) while older views
 * of the driver stay mapped and intact. Two output channels (a's and b's),
 * so a view holds a slot in each. */
static uint8_t pv_scratch[100000];

static void pv_check(const weir_result *r, uint64_t x)
{
    cr_assert_eq(weir_result_exec(r), x);
    cr_assert_eq(weir_result_count(r), 2u);
    for (unsigned k = 0; k < 2; k++) {
        size_t n;
        const void *p = weir_result_data(r, k, &n);
        cr_assert_not_null(p);
        cr_assert_eq(n, big_len(x), "execution %llu output %u: %zu bytes",
                     (unsigned long long)x, k, n);
        cr_assert_eq(big_hash(p, n), big_expect_hash(x, (int)k + 1, pv_scratch),
                     "execution %llu output %u: a byte differs", (unsigned long long)x, k);
    }
}

Test(proc, process_actor_outputs_as_views, .timeout = 240)
{
    weir_graph *g = weir_graph_new("pviews");
    weir_actor_opts po = {.isolation = WEIR_PROCESS};
    weir_actor *a = weir_actor_new(g, "a", &po), *b = weir_actor_new(g, "b", &po);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "make", big_make, &in, 1, 1);
    weir_node *y = weir_bind(b, "pass", big_pass, &x, 1, 1);
    weir_node *outs[2] = {x, y};
    cr_assert_eq(weir_output(g, outs, 2), 0);
    weir_compile_opts o = {.max_inflight = 6, .depth = 12, .buffer_bytes = 65536};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const uint64_t n = 2000;
#else
    const uint64_t n = 10000;
#endif
    /* Windows of 6: waited newest first, freed oldest first a window later,
     * so 6 views stay held across the next window's executions. */
    weir_result *prev[6] = {0}, *cur[6];
    uint64_t acc = 0, want = 0;
    for (uint64_t base = 0; base < n; base += 6) {
        for (uint64_t k = 0; k < 6; k++) {
            int64_t v = (int64_t)(base + k);
            weir_buf arg = {&v, sizeof v};
            uint64_t id;
            /* the held window ends at base - 1: base + 5 < (base - 6) + 12 */
            cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
            cr_assert_eq(id, base + k);
        }
        for (int k = 5; k >= 0; k--) {
            cr_assert_eq(weir_wait(d, base + (uint64_t)k, &cur[k], TMO), 0, "%s",
                         weir_errmsg());
            pv_check(cur[k], base + (uint64_t)k);
            cr_assert_eq(cur[k]->view != NULL, big_len(base + (uint64_t)k) >= 4096);
        }
        for (int k = 0; k < 6; k++) {
            if (prev[k]) {
                pv_check(prev[k], base - 6 + (uint64_t)k);
                weir_result_free(prev[k]);
            }
            prev[k] = cur[k];
            size_t len;
            const void *p = weir_result_data(cur[k], 1, &len);
            acc += big_hash(p, len) ^ (base + (uint64_t)k);
            want += big_expect_hash(base + (uint64_t)k, 2, pv_scratch) ^ (base + (uint64_t)k);
        }
    }
    cr_assert_eq(acc, want);
    /* The last window outlives the dag and its actor processes. */
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    uint64_t last = (n + 5) / 6 * 6 - 6;
    for (int k = 0; k < 6; k++) {
        pv_check(prev[k], last + (uint64_t)k);
        weir_result_free(prev[k]);
    }
}
