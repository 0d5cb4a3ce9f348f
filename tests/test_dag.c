/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dag.c - builder, compiler and thread-mode engine.
 *
 * Every graph test runs >= 10^5 executions (or a stated smaller count for
 * slow paths) and checks every output exactly, plus a checksum over all.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weir/weir.h>

#include "dag_util.h"
#include "view_util.h"

#include "compiler/compile.h"
#include "compiler/plan.h"
#include "engine/engine.h" /* struct weir_result: is it a view? */

#if defined(__SANITIZE_ADDRESS__)
#define LSAN_CHECKS 1 /* the fixture's heap check (tests/heap_check.h) runs */
#else
#define LSAN_CHECKS 0
#endif

#define N_EXEC 100000
#define TMO 10000


TestSuite(dag, .init = dag_leak_init, .fini = dag_leak_fini, .timeout = 120);

/* The fixture itself: tests/leak_proof.c leaks a channel in one test and a
 * child process in the other; the fixture must catch both and fail the run
 * (under Criterion 2.4.1 a crash in .fini is only a warning in the synthesis
 * line but makes the program exit non-zero, which scripts/count_tests.py counts
 * as a failure; the TSan runner fails the test itself). */
Test(dag, leak_fixture_fails_leaking_tests)
{
    char cmd[4200];
    /* BXFI_MAP would make the inner Criterion think it is one of our sandboxes. */
    snprintf(cmd, sizeof cmd, "env -u BXFI_MAP %s --jobs 1 2>&1", WEIR_LEAK_PROOF);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "leak_proof exited with %d:\n%s", st, out);
    cr_assert(strstr(out, "LEAK: a child process is left"), "%s", out);
    cr_assert(strstr(out, "fds open at the end of the test"), "%s", out);
    cr_assert(strstr(out, "1 memfd or /dev/shm/weir.* mappings at the end, 0 at the start"), "%s", out);
    cr_assert(strstr(out, "Tested: 3 |"), "%s", out);
#if LSAN_CHECKS
    cr_assert(strstr(out, "LEAK: heap memory no pointer reaches"), "%s", out);
#endif
}

/* ---- methods ----------------------------------------------------------- */

static int64_t in64(weir_call *c, unsigned i)
{
    size_t n;
    const int64_t *p = weir_call_in(c, i, &n);
    cr_assert_eq(n, sizeof(int64_t), "input %u has %zu bytes", i, n);
    return *p;
}

static int out64(weir_call *c, unsigned i, int64_t v)
{
    int64_t *p = weir_call_out(c, i, sizeof v);
    if (!p)
        return weir_call_fail(c, "no output space: %s", weir_errmsg());
    *p = v;
    return 0;
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
    cr_assert_eq(weir_call_nin(c), 2);
    return out64(c, 0, in64(c, 0) + in64(c, 1));
}
static int minus(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, in64(c, 0) - in64(c, 1));
}
static int divmod7(weir_call *c, void *st)
{
    (void)st;
    int64_t x = in64(c, 0);
    int rc = out64(c, 0, x / 7);
    return rc ? rc : out64(c, 1, x % 7);
}
static int negate(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, -in64(c, 0));
}
/* Checks that the execution index matches the value (args are 0,1,2,...). */
static int check_exec(weir_call *c, void *st)
{
    (void)st;
    int64_t x = in64(c, 0);
    if ((uint64_t)x != weir_call_exec(c))
        return weir_call_fail(c, "value %lld at execution %llu", (long long)x,
                              (unsigned long long)weir_call_exec(c));
    return out64(c, 0, x);
}

static int64_t result64(const weir_result *r, unsigned i)
{
    size_t n;
    const int64_t *p = weir_result_data(r, i, &n);
    cr_assert_not_null(p);
    cr_assert_eq(n, sizeof(int64_t));
    return *p;
}

/* Run n executions with argument i (and i*3 as a second arg if nargs == 2). */
typedef void (*check_fn)(int64_t i, const weir_result *r, uint64_t *sum);

static uint64_t run_n(weir_dag *d, unsigned nargs, int n, check_fn check)
{
    uint64_t sum = 1469598103934665603ull;
    for (int64_t i = 0; i < n; i++) {
        int64_t a1 = i * 3;
        weir_buf args[2] = {{&i, sizeof i}, {&a1, sizeof a1}};
        weir_result *r = NULL;
        int rc = weir_execute(d, args, nargs, &r, TMO);
        cr_assert_eq(rc, 0, "execution %lld: %d %s", (long long)i, rc, weir_errmsg());
        check(i, r, &sum);
        weir_result_free(r);
    }
    return sum;
}

static void mix(uint64_t *sum, int64_t v)
{
    *sum = (*sum ^ (uint64_t)v) * 1099511628211ull;
}

/* ---- shapes ------------------------------------------------------------- */

static void check_chain(int64_t i, const weir_result *r, uint64_t *sum)
{
    cr_assert_eq(weir_result_count(r), 1);
    int64_t v = result64(r, 0);
    cr_assert_eq(v, i + 2, "execution %lld: got %lld", (long long)i, (long long)v);
    mix(sum, v);
}

static uint64_t expected_sum(int n, int64_t (*f)(int64_t))
{
    uint64_t s = 1469598103934665603ull;
    for (int64_t i = 0; i < n; i++)
        mix(&s, f(i));
    return s;
}
static int64_t f_chain(int64_t i)
{
    return i + 2;
}

Test(dag, chain)
{
    weir_graph *g = weir_graph_new("chain");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "add_one", add_one, &in, 1, 1);
    weir_node *y = weir_bind(b, "add_one", add_one, &x, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    uint64_t s = run_n(d, 1, N_EXEC, check_chain);
    cr_assert_eq(s, expected_sum(N_EXEC, f_chain));
    /* Every channel carried exactly one message per execution. */
    cr_assert_eq(weir_dag_nchannels(d), 3);
    for (unsigned c = 0; c < weir_dag_nchannels(d); c++) {
        struct weir_chan_stats st;
        cr_assert_eq(weir_dag_chan_stats(d, c, &st), 0);
        cr_assert_eq(st.messages, (uint64_t)N_EXEC, "channel %s: %llu messages", st.name,
                     (unsigned long long)st.messages);
        cr_assert_eq(st.nreaders, 1);
        cr_assert_eq(st.readers[0].consumed, (uint64_t)N_EXEC);
    }
    /* Per-actor view: b waits for a, which waits for the driver. */
    cr_assert_eq(weir_dag_nactors(d), 2);
    for (unsigned k = 0; k < 2; k++) {
        struct weir_actor_stats as;
        cr_assert_eq(weir_dag_actor_stats(d, k, &as), 0);
        cr_assert_str_eq(as.name, k ? "b" : "a");
        cr_assert_eq(as.isolation, WEIR_THREAD);
        cr_assert_eq(as.pid, (int)getpid());
        cr_assert_eq(as.restarts, 0u);
        cr_assert(as.input_starved_ns > 0, "actor %s never waited for input", as.name);
    }
    struct weir_actor_stats none;
    cr_assert_eq(weir_dag_actor_stats(d, 2, &none), -EINVAL);
    cr_assert(strstr(weir_errmsg(), "actor 2 out of range (2)"), "%s", weir_errmsg());
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

static void check_diamond(int64_t i, const weir_result *r, uint64_t *sum)
{
    int64_t v = result64(r, 0);
    cr_assert_eq(v, (i + 1) * 2 + (i + 1) + 3, "execution %lld", (long long)i);
    mix(sum, v);
}
static int64_t f_diamond(int64_t i)
{
    return (i + 1) * 2 + (i + 1) + 3;
}

Test(dag, diamond)
{
    weir_graph *g = weir_graph_new("diamond");
    weir_actor *p = weir_actor_new(g, "parse", NULL), *f1 = weir_actor_new(g, "f1", NULL),
               *f2 = weir_actor_new(g, "f2", NULL), *j = weir_actor_new(g, "join", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(p, "parse", add_one, &in, 1, 1);
    weir_node *a = weir_bind(f1, "double", times_two, &x, 1, 1);
    weir_node *b = weir_bind(f2, "plus3", plus_three, &x, 1, 1);
    weir_node *ab[2] = {a, b};
    weir_node *y = weir_bind(j, "sum", sum2, ab, 2, 1);
    weir_output(g, &y, 1);
    /* A thread per actor (not fused on a machine with fewer CPUs than actors). */
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR});
    cr_assert_not_null(d, "%s", weir_errmsg());
    /* parse.out0 is one channel with two registered readers (multicast, not copies). */
    int found = 0;
    for (unsigned c = 0; c < weir_dag_nchannels(d); c++) {
        struct weir_chan_stats st;
        weir_dag_chan_stats(d, c, &st);
        if (!strcmp(st.name, "parse.parse.out0")) {
            found = 1;
            cr_assert_eq(st.nreaders, 2);
        }
    }
    cr_assert(found);
    cr_assert_eq(run_n(d, 1, N_EXEC, check_diamond), expected_sum(N_EXEC, f_diamond));
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

static void check_fanout(int64_t i, const weir_result *r, uint64_t *sum)
{
    cr_assert_eq(weir_result_count(r), 3);
    cr_assert_eq(result64(r, 0), (i + 1) * 2);
    cr_assert_eq(result64(r, 1), i + 1 + 3);
    cr_assert_eq(result64(r, 2), -(i + 1));
    mix(sum, result64(r, 0) + result64(r, 1) + result64(r, 2));
}
static int64_t f_fanout(int64_t i)
{
    return (i + 1) * 2 + i + 4 - (i + 1);
}

Test(dag, fanout_to_three)
{
    weir_graph *g = weir_graph_new("fanout");
    weir_actor *src = weir_actor_new(g, "src", NULL);
    weir_actor *c1 = weir_actor_new(g, "c1", NULL), *c2 = weir_actor_new(g, "c2", NULL),
               *c3 = weir_actor_new(g, "c3", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(src, "inc", add_one, &in, 1, 1);
    weir_node *outs[3] = {weir_bind(c1, "dbl", times_two, &x, 1, 1),
                          weir_bind(c2, "p3", plus_three, &x, 1, 1),
                          weir_bind(c3, "neg", negate, &x, 1, 1)};
    weir_output(g, outs, 3);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(run_n(d, 1, N_EXEC, check_fanout), expected_sum(N_EXEC, f_fanout));
    weir_dag_free(d);
    weir_graph_free(g);
}

static void check_multi(int64_t i, const weir_result *r, uint64_t *sum)
{
    cr_assert_eq(result64(r, 0), (i / 7) * 2);
    cr_assert_eq(result64(r, 1), i % 7 + 1);
    cr_assert_eq(result64(r, 2), i % 7);
    mix(sum, result64(r, 0) * 31 + result64(r, 1));
}
static int64_t f_multi(int64_t i)
{
    return (i / 7) * 2 * 31 + i % 7 + 1;
}

Test(dag, multi_output)
{
    weir_graph *g = weir_graph_new("multi");
    weir_actor *a = weir_actor_new(g, "split", NULL), *b = weir_actor_new(g, "b", NULL),
               *c = weir_actor_new(g, "c", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *dm = weir_bind(a, "divmod", divmod7, &in, 1, 2);
    weir_node *q = weir_ret(dm, 0), *rem = weir_ret(dm, 1);
    cr_assert_not_null(q);
    cr_assert_eq(weir_ret(dm, 0), q, "weir_ret returns the same node for the same output");
    weir_node *outs[3] = {weir_bind(b, "dbl", times_two, &q, 1, 1),
                          weir_bind(c, "inc", add_one, &rem, 1, 1), rem};
    cr_assert_eq(weir_output(g, outs, 3), 0, "%s", weir_errmsg());
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(run_n(d, 1, N_EXEC, check_multi), expected_sum(N_EXEC, f_multi));
    weir_dag_free(d);
    weir_graph_free(g);
}

static void check_args(int64_t i, const weir_result *r, uint64_t *sum)
{
    /* out0 = arg1 - arg0 = 2i ; out1 = arg0 - arg1 + 1 = -2i + 1 */
    cr_assert_eq(result64(r, 0), 2 * i);
    cr_assert_eq(result64(r, 1), -2 * i + 1);
    mix(sum, result64(r, 0) ^ result64(r, 1));
}
static int64_t f_args(int64_t i)
{
    return (2 * i) ^ (-2 * i + 1);
}

Test(dag, input_attributes)
{
    weir_graph *g = weir_graph_new("args");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *a0 = weir_input(g, 0), *a1 = weir_input(g, 1);
    cr_assert_eq(weir_input(g, 0), a0, "the same argument gives the same node");
    weir_node *ba[2] = {a1, a0}, *ab[2] = {a0, a1};
    weir_node *m1 = weir_bind(a, "minus", minus, ba, 2, 1);
    weir_node *m2 = weir_bind(b, "minus", minus, ab, 2, 1);
    weir_node *m3 = weir_bind(b, "inc", add_one, &m2, 1, 1);
    weir_node *outs[2] = {m1, m3};
    weir_output(g, outs, 2);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(run_n(d, 2, N_EXEC, check_args), expected_sum(N_EXEC, f_args));
    /* Wrong argument count. */
    int64_t v = 1;
    weir_buf one = {&v, sizeof v};
    weir_result *r = (weir_result *)0x1;
    cr_assert_eq(weir_execute(d, &one, 1, &r, TMO), -EINVAL);
    cr_assert_null(r);
    cr_assert(strstr(weir_errmsg(), "graph 'args': an execution takes 2 arguments, got 1"),
              "%s", weir_errmsg());
    /* The dag still works after the bad call. */
    cr_assert_eq(run_n(d, 2, 10, check_args), expected_sum(10, f_args));
    weir_dag_free(d);
    weir_graph_free(g);
}

static void check_twomethods(int64_t i, const weir_result *r, uint64_t *sum)
{
    cr_assert_eq(result64(r, 0), (i + 1) * 2);
    cr_assert_eq(result64(r, 1), (i + 1) * 2 + 3);
    mix(sum, result64(r, 1));
}
static int64_t f_twomethods(int64_t i)
{
    return (i + 1) * 2 + 3;
}

Test(dag, actor_with_two_methods)
{
    weir_graph *g = weir_graph_new("two");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_node *y = weir_bind(a, "dbl", times_two, &x, 1, 1); /* a -> a: no channel */
    weir_node *z = weir_bind(b, "p3", plus_three, &y, 1, 1);
    weir_node *outs[2] = {y, z};
    weir_output(g, outs, 2);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    /* Channels: arg0, a.dbl.out0 (to b and the driver), b.p3.out0. No channel for a.inc. */
    cr_assert_eq(weir_dag_nchannels(d), 3);
    for (unsigned c = 0; c < 3; c++) {
        struct weir_chan_stats st;
        weir_dag_chan_stats(d, c, &st);
        cr_assert_null(strstr(st.name, "inc"), "unexpected channel %s", st.name);
    }
    cr_assert_eq(run_n(d, 1, N_EXEC, check_twomethods), expected_sum(N_EXEC, f_twomethods));
    weir_dag_free(d);
    weir_graph_free(g);
}

/* ---- pipelining ---------------------------------------------------------- */

static weir_dag *chain_dag(weir_graph **gp, const weir_compile_opts *o)
{
    weir_graph *g = weir_graph_new("pipe");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "check", check_exec, &in, 1, 1);
    weir_node *y = weir_bind(b, "add_one", add_one, &x, 1, 1);
    weir_output(g, &y, 1);
    weir_dag *d = weir_compile(g, o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    *gp = g;
    return d;
}

Test(dag, pipelined_in_order)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 16};
    weir_dag *d = chain_dag(&g, &o);
    uint64_t next_wait = 0, sum = 0, expect = 0;
    for (int64_t i = 0; i < N_EXEC; i++) {
        uint64_t id;
        weir_buf arg = {&i, sizeof i};
        cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(id, (uint64_t)i);
        expect += (uint64_t)i + 1;
        if (i >= 15) {
            weir_result *r;
            cr_assert_eq(weir_wait(d, next_wait, &r, TMO), 0, "%s", weir_errmsg());
            cr_assert_eq(weir_result_exec(r), next_wait);
            cr_assert_eq(result64(r, 0), (int64_t)next_wait + 1);
            sum += (uint64_t)result64(r, 0);
            weir_result_free(r);
            next_wait++;
        }
    }
    while (next_wait < N_EXEC) {
        weir_result *r;
        cr_assert_eq(weir_wait(d, next_wait, &r, TMO), 0, "%s", weir_errmsg());
        sum += (uint64_t)result64(r, 0);
        weir_result_free(r);
        next_wait++;
    }
    cr_assert_eq(sum, expect);
    weir_result *r;
    cr_assert_eq(weir_wait(d, 5, &r, 0), -ENOENT);
    cr_assert(strstr(weir_errmsg(), "execution 5 was already collected"), "%s", weir_errmsg());
    cr_assert_eq(weir_wait(d, N_EXEC + 10, &r, 0), -ENOENT);
    cr_assert(strstr(weir_errmsg(), "never submitted"), "%s", weir_errmsg());
    weir_dag_free(d);
    weir_graph_free(g);
}

/* Results freed on other threads: each of 4 short-lived threads checks and
 * frees 16 results (into its own small-block slots, engine/driver.c), then
 * exits; their slots go with them (under ASan a slot kept would be a leak at
 * the end of this test, which the suite's fixture turns into a failure:
 * tests/heap_check.h). The driver then runs on, recycling blocks again. */
struct free_job {
    weir_result *r[16];
    uint64_t first, sum;
};

static void *free_results(void *arg)
{
    struct free_job *j = arg;
    void *ok = j;
    for (unsigned k = 0; k < 16; k++) {
        size_t n = 0;
        const int64_t *v = weir_result_data(j->r[k], 0, &n);
        if (weir_result_exec(j->r[k]) != j->first + k || !v || n != sizeof *v ||
            *v != (int64_t)(j->first + k) + 1)
            ok = NULL; /* no cr_assert off the test's thread */
        else
            j->sum += (uint64_t)*v;
        weir_result_free(j->r[k]);
    }
    return ok;
}

Test(dag, results_freed_by_exiting_threads)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 16};
    weir_dag *d = chain_dag(&g, &o);
    uint64_t want = 0, got = 0;
    for (int round = 0; round < 3; round++) {
        struct free_job jobs[4];
        pthread_t th[4];
        for (int t = 0; t < 4; t++) {
            jobs[t].first = (uint64_t)(round * 64 + t * 16);
            jobs[t].sum = 0;
            for (unsigned k = 0; k < 16; k++) {
                int64_t i = (int64_t)(jobs[t].first + k);
                weir_buf arg = {&i, sizeof i};
                cr_assert_eq(weir_execute(d, &arg, 1, &jobs[t].r[k], TMO), 0, "%s", weir_errmsg());
                want += (uint64_t)i + 1;
            }
        }
        for (int t = 0; t < 4; t++)
            cr_assert_eq(pthread_create(&th[t], NULL, free_results, &jobs[t]), 0);
        for (int t = 0; t < 4; t++) {
            void *ok;
            cr_assert_eq(pthread_join(th[t], &ok), 0);
            cr_assert_eq(ok, &jobs[t], "thread %d found a wrong result", t);
            got += jobs[t].sum;
        }
    }
    cr_assert_eq(got, want);
    /* the driver's own recycling still works after the threads took blocks */
    for (int64_t i = 192; i < 2192; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(result64(r, 0), i + 1);
        weir_result_free(r);
    }
    weir_dag_free(d);
    weir_graph_free(g);
}

Test(dag, pipelined_out_of_order)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 8};
    weir_dag *d = chain_dag(&g, &o);
    int64_t base = 0;
    for (int round = 0; round < 2000; round++) {
        uint64_t ids[8];
        for (int k = 0; k < 8; k++) {
            int64_t v = base + k;
            weir_buf arg = {&v, sizeof v};
            cr_assert_eq(weir_submit(d, &arg, 1, &ids[k], TMO), 0, "%s", weir_errmsg());
        }
        /* Wait in a scrambled order: reverse on even rounds, odd-then-even on odd rounds. */
        for (int k = 0; k < 8; k++) {
            int pick = round % 2 ? (k < 4 ? 2 * k + 1 : 2 * (k - 4)) : 7 - k;
            weir_result *r;
            cr_assert_eq(weir_wait(d, ids[pick], &r, TMO), 0, "%s", weir_errmsg());
            cr_assert_eq(result64(r, 0), base + pick + 1);
            weir_result_free(r);
        }
        base += 8;
    }
    weir_dag_free(d);
    weir_graph_free(g);
}

/* A gate the test opens: the method blocks until released. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static int gated(weir_call *c, void *st)
{
    (void)st;
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return out64(c, 0, in64(c, 0));
}

Test(dag, max_inflight_backpressure)
{
    gate_open = 0;
    weir_graph *g = weir_graph_new("bp");
    weir_actor *a = weir_actor_new(g, "slow", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "gated", gated, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_compile_opts o = {.max_inflight = 4, .timeout_ms = 2000};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    uint64_t id;
    for (int64_t i = 0; i < 4; i++) {
        weir_buf arg = {&i, sizeof i};
        cr_assert_eq(weir_submit(d, &arg, 1, &id, 0), 0, "submit %lld: %s", (long long)i,
                     weir_errmsg());
    }
    int64_t v = 4;
    weir_buf arg = {&v, sizeof v};
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_submit(d, &arg, 1, &id, 100), -ETIMEDOUT);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el >= 90000000ull, "submit returned after %llu ns", (unsigned long long)el);
    cr_assert_str_eq(weir_errmsg(), "graph 'bp': submit: not finished in time (waiting for execution 0 on channel "
                     "'slow.gated.out0')");
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(id, 4u, "the timed-out submit did not consume an id");
    for (uint64_t k = 0; k <= 4; k++) {
        weir_result *r;
        cr_assert_eq(weir_wait(d, k, &r, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(result64(r, 0), (int64_t)k);
        weir_result_free(r);
    }
    weir_dag_free(d);
    weir_graph_free(g);
}

Test(dag, max_buffered_bound)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 2, .max_buffered = 3};
    weir_dag *d = chain_dag(&g, &o);
    uint64_t id;
    int64_t i;
    /* Never waiting: 2 in flight + 3 buffered, then -ENOBUFS. */
    for (i = 0; i < 5; i++) {
        weir_buf arg = {&i, sizeof i};
        cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "submit %lld: %s", (long long)i,
                     weir_errmsg());
    }
    weir_buf arg = {&i, sizeof i};
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), -ENOBUFS);
    cr_assert(strstr(weir_errmsg(), "3 finished results are waiting"), "%s", weir_errmsg());
    weir_result *r;
    cr_assert_eq(weir_wait(d, 0, &r, TMO), 0);
    weir_result_free(r);
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(id, 5u);
    weir_dag_free(d);
    weir_graph_free(g);
}

/* ---- failures ------------------------------------------------------------ */

static int fail_some(weir_call *c, void *st)
{
    (void)st;
    int64_t x = in64(c, 0);
    if (x % 7 == 3)
        return weir_call_fail(c, "bad value %lld", (long long)x);
    if (x % 11 == 5)
        return -5; /* plain non-zero return */
    if (x % 13 == 6)
        return 0; /* forgets its output */
    return out64(c, 0, x + 1);
}

Test(dag, failures_fail_their_execution_only)
{
    weir_graph *g = weir_graph_new("fail");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL),
               *c = weir_actor_new(g, "c", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "add_one", add_one, &in, 1, 1);
    weir_node *y = weir_bind(b, "fail_some", fail_some, &x, 1, 1);
    weir_node *xy[2] = {x, y};
    weir_node *z = weir_bind(c, "sum", sum2, xy, 2, 1); /* downstream of the failure */
    weir_output(g, &z, 1);
    /* A thread per actor, so b's output is a channel (fused: fused_failure_...). */
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR});
    cr_assert_not_null(d, "%s", weir_errmsg());
    int nfail = 0;
    for (int64_t i = 0; i < 20000; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r = NULL;
        int rc = weir_execute(d, &arg, 1, &r, TMO);
        int64_t x1 = i + 1;
        char want[256];
        if (x1 % 7 == 3) {
            snprintf(want, sizeof want,
                     "actor 'b' method 'fail_some' failed at execution %lld: bad value %lld",
                     (long long)i, (long long)x1);
        } else if (x1 % 11 == 5) {
            snprintf(want, sizeof want,
                     "actor 'b' method 'fail_some' failed at execution %lld: returned -5",
                     (long long)i);
        } else if (x1 % 13 == 6) {
            snprintf(want, sizeof want,
                     "actor 'b' method 'fail_some' failed at execution %lld: output 0 was not "
                     "produced (call weir_call_out)",
                     (long long)i);
        } else {
            cr_assert_eq(rc, 0, "execution %lld: %s", (long long)i, weir_errmsg());
            cr_assert_eq(result64(r, 0), x1 + x1 + 1);
            weir_result_free(r);
            continue;
        }
        nfail++;
        cr_assert_eq(rc, -EREMOTEIO, "execution %lld: rc %d", (long long)i, rc);
        cr_assert_null(r);
        /* The one shape: graph, the execution asked about, then the cause. */
        char full[600];
        snprintf(full, sizeof full, "graph 'fail': execution %lld: %s", (long long)i, want);
        cr_assert_str_eq(weir_errmsg(), full, "execution %lld: %s", (long long)i, weir_errmsg());
    }
    cr_assert(nfail > 4000, "%d failures", nfail);
    /* Error records are counted by the failing actor's output channel. */
    int seen = 0;
    for (unsigned k = 0; k < weir_dag_nchannels(d); k++) {
        struct weir_chan_stats st;
        weir_dag_chan_stats(d, k, &st);
        if (!strcmp(st.name, "b.fail_some.out0")) {
            seen = 1;
            cr_assert_eq(st.errors, (uint64_t)nfail);
        }
    }
    cr_assert(seen);
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

static int sleepy(weir_call *c, void *st)
{
    int ms = *(int *)st;
    int64_t x = in64(c, 0);
    if (x < 0) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return out64(c, 0, x);
}

Test(dag, execute_timeout_then_next_runs)
{
    int ms = 300;
    weir_graph *g = weir_graph_new("tmo");
    weir_actor_opts ao = {.state = &ms};
    weir_actor *a = weir_actor_new(g, "sleeper", &ao);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "sleepy", sleepy, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d);
    int64_t v = -1;
    weir_buf arg = {&v, sizeof v};
    weir_result *r = NULL;
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_execute(d, &arg, 1, &r, 50), -ETIMEDOUT);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el >= 45000000ull && el < 250000000ull, "timed out after %llu ns",
              (unsigned long long)el);
    cr_assert(strstr(weir_errmsg(), "execution 0: not finished in time (waiting for execution 0 on channel"), "%s", weir_errmsg());
    /* The next execution returns its own result, not the late one. */
    for (int64_t i = 1; i < 100; i++) {
        weir_buf a2 = {&i, sizeof i};
        cr_assert_eq(weir_execute(d, &a2, 1, &r, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(result64(r, 0), i);
        cr_assert_eq(weir_result_exec(r), (uint64_t)i);
        weir_result_free(r);
    }
    weir_dag_free(d);
    weir_graph_free(g);
}

Test(dag, teardown_with_executions_in_flight)
{
    for (int round = 0; round < 20; round++) {
        weir_graph *g;
        weir_compile_opts o = {.max_inflight = 8};
        weir_dag *d = chain_dag(&g, &o);
        uint64_t id;
        for (int64_t i = 0; i < 8 + round; i++) {
            weir_buf arg = {&i, sizeof i};
            cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
        }
        uint64_t t0 = weir_now_ns();
        cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
        cr_assert(weir_now_ns() - t0 < 2000000000ull);
        weir_graph_free(g);
    }
}

Test(dag, teardown_names_stuck_actor)
{
    int ms = 800;
    weir_graph *g = weir_graph_new("stuck");
    weir_actor_opts ao = {.state = &ms};
    weir_actor *a = weir_actor_new(g, "sleeper", &ao);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "sleepy", sleepy, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_compile_opts o = {.timeout_ms = 150};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d);
    int64_t v = -1;
    weir_buf arg = {&v, sizeof v};
    uint64_t id;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0);
    struct timespec ts = {0, 50000000L};
    nanosleep(&ts, NULL); /* let the actor enter the method */
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_dag_free(d), -ETIMEDOUT);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el < 600000000ull, "teardown took %llu ns", (unsigned long long)el);
    cr_assert(strstr(weir_errmsg(), "actor 'sleeper' is stuck in method 'sleepy' (execution 0)"),
              "%s", weir_errmsg());
    weir_graph_free(g);
    /* Let the detached thread finish and free the dag (checked by ASan's leak check). */
    ts.tv_sec = 1;
    ts.tv_nsec = 0;
    nanosleep(&ts, NULL);
}

/* Timeouts mean one thing (<weir/common.h>): a dag compiled with
 * WEIR_FOREVER waits at teardown for as long as a method takes, even past
 * WEIR_DEFAULT_TIMEOUT_MS (it used to be cut to 10 s and fail). */
Test(dag, teardown_with_timeout_forever_waits_out_a_long_method, .timeout = 60)
{
    int ms = WEIR_DEFAULT_TIMEOUT_MS + 600;
    weir_graph *g = weir_graph_new("forever");
    weir_actor_opts ao = {.state = &ms};
    weir_actor *a = weir_actor_new(g, "sleeper", &ao);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "sleepy", sleepy, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_compile_opts o = {.timeout_ms = WEIR_FOREVER};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t v = -1;
    weir_buf arg = {&v, sizeof v};
    uint64_t id;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    struct timespec ts = {0, 50000000L};
    nanosleep(&ts, NULL); /* let the actor enter the method */
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el >= (uint64_t)(ms - 100) * 1000000ull, "teardown returned after %llu ns",
              (unsigned long long)el);
    weir_graph_free(g);
}

/* 0 in a call: do not wait; 0 in an option struct: the default; < -1: -EINVAL. */
Test(dag, timeout_zero_and_below_minus_one)
{
    int ms = 200;
    weir_graph *g = weir_graph_new("tmo0");
    weir_actor_opts ao = {.state = &ms};
    weir_actor *a = weir_actor_new(g, "sleeper", &ao);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "sleepy", sleepy, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_compile_opts o = {.timeout_ms = 0};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    char *json = NULL;
    size_t jn = 0;
    FILE *f = open_memstream(&json, &jn);
    cr_assert_eq(weir_dag_write_json(d, f), 0);
    fclose(f);
    cr_assert(strstr(json, "\"timeout_ms\":10000"), "%s", json);
    free(json);
    int64_t v = -1;
    weir_buf arg = {&v, sizeof v};
    uint64_t id;
    weir_result *r = NULL;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, 0), 0, "%s", weir_errmsg());
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_wait(d, id, &r, 0), -ETIMEDOUT);
    cr_assert(weir_now_ns() - t0 < 20000000ull, "a 0 timeout waited");
    cr_assert_str_eq(weir_errmsg(), "graph 'tmo0': execution 0: not finished in time (waiting for "
                                    "execution 0 on channel 'sleeper.sleepy.out0')");
    cr_assert_eq(weir_wait(d, id, &r, -2), -EINVAL);
    cr_assert_str_eq(weir_errmsg(),
                     "weir_wait: timeout_ms -2 (use -1 to wait without bound, 0 not to wait)");
    cr_assert_eq(weir_execute(d, &arg, 1, &r, -7), -EINVAL);
    cr_assert_eq(weir_submit(d, &arg, 1, &id, -3), -EINVAL);
    cr_assert_eq(weir_wait(d, 0, &r, WEIR_FOREVER), 0, "%s", weir_errmsg());
    cr_assert_eq(result64(r, 0), -1);
    weir_result_free(r);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

Test(dag, idle_dag_uses_no_cpu)
{
    weir_graph *g;
    weir_dag *d = chain_dag(&g, NULL);
    for (int64_t i = 0; i < 100; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0);
        weir_result_free(r);
    }
    struct timespec ts = {0, 20000000L};
    nanosleep(&ts, NULL); /* past the spin phase */
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    ts.tv_nsec = 300000000L;
    nanosleep(&ts, NULL);
    getrusage(RUSAGE_SELF, &r1);
    long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
              (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
              (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
              (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
    cr_assert(us < 15000, "an idle dag used %ld us of CPU in 300 ms", us);
    weir_dag_free(d);
    weir_graph_free(g);
}

/* ---- validation ----------------------------------------------------------- */

#define EXPECT_ERR(expr, code, text)                                                               \
    do {                                                                                           \
        weir__seterr(0, "");                                                                       \
        cr_assert_null((void *)(uintptr_t)(expr), #expr " should fail");                           \
        cr_assert_eq(weir_errcode(), code, "%s: code %d: %s", #expr, weir_errcode(),              \
                     weir_errmsg());                                                               \
        cr_assert(strstr(weir_errmsg(), text), "%s: '%s' lacks '%s'", #expr, weir_errmsg(),      \
                  text);                                                                           \
    } while (0)

int weir__seterr(int code, const char *fmt, ...);

Test(dag, validation_errors)
{
    weir_graph *g = weir_graph_new("v");
    weir_graph *h = weir_graph_new("other");
    weir_actor *a = weir_actor_new(g, "a", NULL);
    weir_actor *ha = weir_actor_new(h, "ha", NULL);
    weir_node *in = weir_input(g, 0), *hin = weir_input(h, 0);
    EXPECT_ERR(weir_actor_new(g, "a", NULL), -EEXIST, "graph 'v': duplicate actor name 'a'");
    EXPECT_ERR(weir_actor_new(g, "", NULL), -EINVAL, "actor name '' is invalid");
    EXPECT_ERR(weir_graph_new(NULL), -EINVAL, "graph name");
    EXPECT_ERR(weir_bind(a, "m", add_one, &hin, 1, 1), -EXDEV,
               "actor 'a' method 'm': input 0 is input 0 of another graph ('other')");
    EXPECT_ERR(weir_bind(a, "m", add_one, &in, 0, 1), -EINVAL,
               "actor 'a' method 'm': 0 inputs");
    EXPECT_ERR(weir_bind(a, "m", add_one, &in, 1, 0), -EINVAL,
               "actor 'a' method 'm': 0 outputs");
    EXPECT_ERR(weir_bind(a, "m", NULL, &in, 1, 1), -EINVAL, "actor 'a' method 'm': NULL function");
    weir_node *dm = weir_bind(a, "divmod", divmod7, &in, 1, 2);
    cr_assert_not_null(dm);
    EXPECT_ERR(weir_ret(dm, 2), -EINVAL, "output index 2 out of range for node");
    EXPECT_ERR(weir_bind(a, "m", add_one, &dm, 1, 1), -EINVAL, "which has 2 outputs; pick one");
    weir_node *two[2] = {in, in};
    EXPECT_ERR(weir_bind(a, "divmod", divmod7, two, 2, 2), -EINVAL,
               "actor 'a' method 'divmod': bound before with 1 inputs, 2 outputs; now 2 inputs");
    cr_assert_eq(weir_output(g, &hin, 1), -EXDEV);
    cr_assert(strstr(weir_errmsg(), "output 0 is input 0 of another graph"), "%s", weir_errmsg());
    cr_assert_eq(weir_output(g, &in, 1), -EINVAL);
    cr_assert(strstr(weir_errmsg(), "outputs must be method results"), "%s", weir_errmsg());

    /* Empty graph. */
    weir_graph *e = weir_graph_new("empty");
    EXPECT_ERR(weir_compile(e, NULL), -EINVAL, "graph 'empty': empty graph");
    weir_graph_free(e);

    /* A call that reaches no output. */
    weir_node *q = weir_ret(dm, 0);
    weir_node *dead = weir_bind(a, "inc", add_one, &in, 1, 1);
    cr_assert_not_null(dead);
    cr_assert_eq(weir_output(g, &q, 1), 0);
    char want[128];
    snprintf(want, sizeof want, "graph 'v': node %u (a.inc) reaches no graph output", 4u);
    EXPECT_ERR(weir_compile(g, NULL), -EINVAL, "(a.inc) reaches no graph output");
    weir_graph_free(g);

    /* An unused input argument. */
    g = weir_graph_new("u");
    a = weir_actor_new(g, "a", NULL);
    in = weir_input(g, 1);
    weir_node *y = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &y, 1);
    EXPECT_ERR(weir_compile(g, NULL), -EINVAL, "graph 'u': input argument 0 is never used");
    weir_node *in2 = weir_input(g, 2);
    (void)in2;
    weir_graph_free(g);

    g = weir_graph_new("u2");
    a = weir_actor_new(g, "a", NULL);
    in = weir_input(g, 0);
    weir_input(g, 1);
    y = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &y, 1);
    EXPECT_ERR(weir_compile(g, NULL), -EINVAL, "graph 'u2': input argument 1 is never used");
    weir_graph_free(g);

    /* Compiled graphs are frozen. */
    g = weir_graph_new("frozen");
    a = weir_actor_new(g, "a", NULL);
    in = weir_input(g, 0);
    y = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &y, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d);
    EXPECT_ERR(weir_bind(a, "inc", add_one, &y, 1, 1), -EBUSY,
               "graph 'frozen': already compiled; modifying it afterwards is not allowed");
    EXPECT_ERR(weir_actor_new(g, "b", NULL), -EBUSY, "already compiled");
    cr_assert_eq(weir_output(g, &y, 1), -EBUSY);
    /* Compiling the unchanged graph again is fine and gives the same plan. */
    weir_dag *d2 = weir_compile(g, NULL);
    cr_assert_not_null(d2, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_plan_hash(d), weir_dag_plan_hash(d2));
    weir_dag_free(d2);
    weir_dag_free(d);
    weir_graph_free(g);
    weir_graph_free(h);
    (void)ha;
}

/* ---- deadlock check ---------------------------------------------------- */

Test(dag, deadlock_check_rejects_depth_below_inflight)
{
    weir_graph *g = weir_graph_new("dl");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_node *y = weir_bind(b, "inc", add_one, &x, 1, 1);
    weir_output(g, &y, 1);
    weir_compile_opts o = {.max_inflight = 4, .depth = 1};
    EXPECT_ERR(weir_compile(g, &o), -EDEADLK, "plan 'dl' can deadlock (max_inflight 4)");
    cr_assert(strstr(weir_errmsg(), "driver waits to write channel 'arg0' (depth 1)"), "%s",
              weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "waits to write channel"), "%s", weir_errmsg());
    /* The graph was not frozen by the failed compile; legal options pass. */
    o.depth = 4;
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    weir_dag_free(d);
    /* depth 1 with max_inflight 1 is Ray's exact semantics: legal. */
    o.max_inflight = 1;
    o.depth = 1;
    d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(run_n(d, 1, 1000, check_chain), expected_sum(1000, f_chain));
    weir_dag_free(d);
    weir_graph_free(g);
}

Test(dag, deadlock_check_rejects_crossed_schedules)
{
    /* Two actors each waiting to read what the other writes later: a schedule
     * no compiler of ours emits, built by hand as a loaded plan could be. */
    weir_graph *g = weir_graph_new("x");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "f", add_one, &in, 1, 1);
    weir_node *y = weir_bind(b, "g", add_one, &x, 1, 1);
    weir_node *xy[2] = {in, y};
    weir_node *z = weir_bind(a, "h", sum2, xy, 2, 1);
    weir_output(g, &z, 1);
    struct weir__plan *p;
    cr_assert_eq(weir__compile_plan(g, NULL, &p), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__plan_deadlock_check(p), 0, "%s", weir_errmsg());
    /* Move actor a's READ of b.g.out0 to the front of its schedule. */
    struct weir__plan_actor *pa = &p->actors[0];
    unsigned rd = pa->nops;
    for (unsigned i = 0; i < pa->nops; i++)
        if (pa->ops[i].kind == WEIR__OP_READ && strstr(p->chans[pa->ops[i].chan].name, "b.g"))
            rd = i;
    cr_assert(rd < pa->nops);
    struct weir__plan_op op = pa->ops[rd];
    memmove(&pa->ops[1], &pa->ops[0], rd * sizeof op);
    pa->ops[0] = op;
    cr_assert_eq(weir__plan_deadlock_check(p), -EDEADLK);
    cr_assert(strstr(weir_errmsg(), "a waits to read channel 'b.g.out0' from b"), "%s",
              weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "b waits to read channel 'a.f.out0' from a"), "%s",
              weir_errmsg());
    weir__plan_free(p);
    weir_graph_free(g);
}

/* ---- plan round trip ------------------------------------------------------ */

Test(dag, plan_save_load_same_hash)
{
    weir_graph *g = weir_graph_new("rt");
    weir_actor *p = weir_actor_new(g, "parse", NULL), *f1 = weir_actor_new(g, "f1", NULL),
               *f2 = weir_actor_new(g, "f2", NULL), *j = weir_actor_new(g, "join", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(p, "parse", add_one, &in, 1, 1);
    weir_node *ab[2] = {weir_bind(f1, "double", times_two, &x, 1, 1),
                        weir_bind(f2, "plus3", plus_three, &x, 1, 1)};
    weir_node *y = weir_bind(j, "sum", sum2, ab, 2, 1);
    weir_output(g, &y, 1);
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR});
    cr_assert_not_null(d);
    char path[] = "/tmp/weir-test-plan-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(weir_dag_save_plan(d, path), 0, "%s", weir_errmsg());
    struct weir__plan *lp;
    cr_assert_eq(weir__plan_load(path, &lp), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__plan_hash(lp), weir_dag_plan_hash(d));
    cr_assert_eq(weir__plan_deadlock_check(lp), 0);
    weir__plan_free(lp);
    unlink(path);
    /* DOT names every actor and channel. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(weir_dag_write_dot(d, f), 0);
    fclose(f);
    cr_assert(strstr(buf, "digraph"));
    cr_assert(strstr(buf, "join"));
    cr_assert(strstr(buf, "parse.parse.out0"), "%s", buf);
    free(buf);
    weir_dag_free(d);
    weir_graph_free(g);
}

Test(dag, restarts_need_processes_and_nodes_are_not_implemented)
{
    weir_graph *g = weir_graph_new("einval");
    weir_actor_opts to = {.isolation = WEIR_THREAD, .max_restarts = 2};
    weir_actor *a = weir_actor_new(g, "thr", &to);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &x, 1);
    EXPECT_ERR(weir_compile(g, NULL), -EINVAL,
               "actor 'thr': max_restarts 2 needs WEIR_PROCESS isolation");
    weir_graph_free(g);
    g = weir_graph_new("enosys2");
    weir_actor_opts no = {.node = 1};
    a = weir_actor_new(g, "remote", &no);
    in = weir_input(g, 0);
    x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &x, 1);
    /* a node past the world size (one rank: not launched as several) */
    EXPECT_ERR(weir_compile(g, NULL), -EINVAL,
               "graph 'enosys2': actor 'remote': node 1 is not below the world size 1 (not "
               "launched as several ranks: WEIR_WORLD_SIZE is unset)");
    weir_graph_free(g);
}

/* A CPU the process cannot run on is a compile error, not a half-started dag. */
Test(dag, regression_bad_cpu_rejected_at_compile)
{
    weir_graph *g = weir_graph_new("cpu");
    weir_actor_opts o = {.cpus = "0,500"};
    weir_actor *a = weir_actor_new(g, "A", &o);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_output(g, &x, 1);
    uint64_t t0 = weir_now_ns();
    EXPECT_ERR(weir_compile(g, NULL), -EINVAL,
               "actor 'A': cpus '0,500': CPU 500 is not one this process may run on (it may run on ");
    cr_assert(weir_now_ns() - t0 < 100000000ull);
    /* The failed compile did not freeze the graph. */
    cr_assert_not_null(weir_actor_new(g, "B", NULL), "%s", weir_errmsg());
    weir_graph_free(g);
}

static int init_fails(void *s)
{
    (void)s;
    return -5;
}

/* The ready barrier with a thread actor: the compile fails with the actor's
 * init text and leaves nothing behind; the graph stays unfrozen. */
Test(dag, thread_init_failure_fails_the_compile)
{
    weir_graph *g = weir_graph_new("tinit");
    weir_actor_opts ok = {0};
    weir_actor_opts bad = {.init = init_fails};
    weir_actor *a = weir_actor_new(g, "a", &ok), *b = weir_actor_new(g, "b", &bad);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
    weir_node *y = weir_bind(b, "inc", add_one, &x, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0, "%s", weir_errmsg());
    cr_assert_null(weir_compile(g, NULL));
    cr_assert_eq(weir_errcode(), -EREMOTEIO);
    cr_assert_str_eq(weir_errmsg(), "graph 'tinit': actor 'b' (thread) could not start: init "
                                    "returned -5");
    weir_actor *c = weir_actor_new(g, "c", &ok);
    cr_assert_not_null(c, "the graph was frozen by a failed compile: %s", weir_errmsg());
    weir_graph_free(g);
}

/* ---- CPU lists (weir_actor_opts.cpus; issue 13, item 6) ------------------- */

/* Every malformed list is a compile error naming the actor, the list and the fault. */
Test(dag, cpus_malformed_lists_rejected)
{
    static const char *const bad[][2] = {
        {"", "the list is empty (NULL means not pinned)"},
        {"x", "'x' is not a CPU number or a range N-M"},
        {"3-1", "'3-1' is a range that goes down"},
        {"0,,1", "an empty item"},
        {"1-", "'1-' is not a CPU number or a range N-M"},
        {"0, 1", "' 1' is not a CPU number or a range N-M"},
        {"-1", "'-1' is not a CPU number or a range N-M"},
        {"0,", "an empty item"},
        {"99999", "CPU numbers go up to 1023"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        weir_graph *g = weir_graph_new("cpus");
        weir_actor_opts o = {.cpus = bad[i][0]};
        weir_actor *a = weir_actor_new(g, "A", &o);
        weir_node *in = weir_input(g, 0);
        weir_node *x = weir_bind(a, "inc", add_one, &in, 1, 1);
        weir_output(g, &x, 1);
        char want[256];
        snprintf(want, sizeof want,
                 "actor 'A': cpus '%s': %s (a list as taskset -c takes it: \"2\", \"0,2-3\"; "
                 "NULL: not pinned)", bad[i][0], bad[i][1]);
        weir__seterr(0, "");
        cr_assert_null(weir_compile(g, NULL), "'%s' compiled", bad[i][0]);
        cr_assert_eq(weir_errcode(), -EINVAL);
        cr_assert_str_eq(weir_errmsg(), want);
        weir_graph_free(g);
    }
}

/* The CPUs the calling thread may run on, as a bit mask (CPUs 0..62). */
static int64_t my_mask(void)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) < 0)
        return -1;
    int64_t m = 0;
    for (int c = 0; c < 63; c++)
        if (CPU_ISSET(c, &s))
            m |= (int64_t)1 << c;
    return m;
}
static int mask_method(weir_call *c, void *st)
{
    (void)st;
    return out64(c, 0, my_mask());
}

/* One actor per case, thread and process: a zero-filled struct and NULL opts
 * are not pinned (the old `int cpu` pinned a zero-filled struct to CPU 0);
 * a list pins to exactly its CPUs; the plan carries the canonical form. */
Test(dag, cpus_pin_exactly_and_zero_opts_do_not_pin)
{
    int64_t all = my_mask();
    cr_assert_gt(all, 0);
    int last = 63 - __builtin_clzll((unsigned long long)all);
    char lastl[8], both[16];
    snprintf(lastl, sizeof lastl, "%d", last);
    snprintf(both, sizeof both, "%d,0", last); /* out of order on purpose */
    const char *lists[] = {NULL, "0", lastl, both};
    int64_t want[] = {all, 1, (int64_t)1 << last, 1 | ((int64_t)1 << last)};
    for (int iso = 0; iso < 2; iso++) {
        weir_graph *g = weir_graph_new("pin");
        weir_node *in = weir_input(g, 0);
        weir_node *outs[5];
        for (int i = 0; i < 4; i++) {
            char name[16];
            snprintf(name, sizeof name, "a%d", i);
            weir_actor_opts o = {.isolation = iso ? WEIR_PROCESS : WEIR_THREAD, .cpus = lists[i]};
            weir_actor *a = weir_actor_new(g, name, &o);
            outs[i] = weir_bind(a, "mask", mask_method, &in, 1, 1);
        }
        weir_actor *n = weir_actor_new(g, "nullopts", NULL);
        outs[4] = weir_bind(n, "mask", mask_method, &in, 1, 1);
        cr_assert_eq(weir_output(g, outs, 5), 0, "%s", weir_errmsg());
        weir_dag *d = weir_compile(g, NULL);
        cr_assert_not_null(d, "%s", weir_errmsg());
        int64_t zero = 0;
        weir_buf arg = {&zero, sizeof zero};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), 0, "%s", weir_errmsg());
        for (int i = 0; i < 4; i++)
            cr_expect_eq(result64(r, (unsigned)i), want[i], "%s actor %d (cpus %s): mask %llx, want %llx",
                         iso ? "process" : "thread", i, lists[i] ? lists[i] : "NULL",
                         (unsigned long long)result64(r, (unsigned)i), (unsigned long long)want[i]);
        cr_expect_eq(result64(r, 4), all, "NULL opts pinned the actor");
        weir_result_free(r);
        char *json = NULL;
        size_t jn = 0;
        FILE *f = open_memstream(&json, &jn);
        cr_assert_eq(weir_dag_write_json(d, f), 0);
        fclose(f);
        char canon[48];
        if (last == 0)
            snprintf(canon, sizeof canon, "\"cpus\":\"0\"");
        else if (last == 1)
            snprintf(canon, sizeof canon, "\"cpus\":\"0-1\"");
        else
            snprintf(canon, sizeof canon, "\"cpus\":\"0,%d\"", last);
        cr_expect(strstr(json, "\"name\":\"a0\",\"node\":0,\"isolation\":") &&
                      strstr(json, "\"cpus\":null"), "%s", json);
        cr_expect(strstr(json, canon), "plan lacks %s: %s", canon, json);
        free(json);
        cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
        weir_graph_free(g);
    }
}

/* ---- per-value slot sizes (weir_node_buffer_bytes; issue 13, item 7) ------ */

static int make_image(weir_call *c, void *st)
{
    (void)st;
    size_t n;
    const int64_t *x = weir_call_in(c, 0, &n);
    uint8_t *p = weir_call_out(c, 0, 262144);
    if (!p)
        return weir_call_fail(c, "%s", weir_errmsg());
    for (size_t i = 0; i < 262144; i++)
        p[i] = (uint8_t)(*x + (int64_t)i * 7);
    uint8_t *q = weir_call_out(c, 1, 8);
    memcpy(q, x, 8);
    return 0;
}
static int sum_image(weir_call *c, void *st)
{
    (void)st;
    size_t n;
    const uint8_t *p = weir_call_in(c, 0, &n);
    int64_t s = (int64_t)n * 1000000;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return out64(c, 0, s);
}

/* A 256 KiB image channel and 8-byte argument channels in one dag: each
 * channel is sized from its hint (the image's slots hold it from the first
 * message: no growth), the others keep the default; every output checked. */
Test(dag, buffer_bytes_hint_sizes_each_channel)
{
    weir_graph *g = weir_graph_new("img");
    weir_actor *a = weir_actor_new(g, "cam", NULL), *b = weir_actor_new(g, "sum", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *call = weir_bind(a, "shoot", make_image, &in, 1, 2);
    weir_node *img = weir_ret(call, 0), *echo = weir_ret(call, 1);
    cr_assert_eq(weir_node_buffer_bytes(img, 262144), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_node_buffer_bytes(in, 8), 0, "%s", weir_errmsg());
    weir_node *s = weir_bind(b, "sum", sum_image, &img, 1, 1);
    weir_node *outs[2] = {s, echo};
    cr_assert_eq(weir_output(g, outs, 2), 0, "%s", weir_errmsg());
    /* A multi-output call itself takes no hint; nor does an oversized one. */
    weir__seterr(0, "");
    cr_assert_eq(weir_node_buffer_bytes(call, 64), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'img': node 1 (cam.shoot) has 2 outputs: give the size of "
                                    "each of its weir_ret() picks");
    cr_assert_eq(weir_node_buffer_bytes(img, WEIR_CHAN_MAX_SLOT + 1), -EINVAL);
    cr_assert(strstr(weir_errmsg(), "buffer_bytes 17179869185 is over the channel limit"), "%s",
              weir_errmsg());
    weir_compile_opts co = {.buffer_bytes = 256};
    weir_dag *d = weir_compile(g, &co);
    cr_assert_not_null(d, "%s", weir_errmsg());
    for (int64_t i = 0; i < 200; i++) {
        weir_buf arg = {&i, sizeof i};
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), 0, "%s", weir_errmsg());
        int64_t want = 262144LL * 1000000;
        for (size_t k = 0; k < 262144; k++)
            want += (uint8_t)(i + (int64_t)k * 7);
        cr_assert_eq(result64(r, 0), want);
        cr_assert_eq(result64(r, 1), i);
        weir_result_free(r);
    }
    unsigned found = 0;
    for (unsigned c = 0; c < weir_dag_nchannels(d); c++) {
        struct weir_chan_stats st;
        cr_assert_eq(weir_dag_chan_stats(d, c, &st), 0);
        size_t want = !strcmp(st.name, "cam.shoot.out0") ? 262144 : !strcmp(st.name, "arg0") ? 8 : 256;
        cr_expect_eq(st.slot_bytes, want, "channel '%s': slot %zu, want %zu", st.name, st.slot_bytes,
                     want);
        cr_expect_eq(st.grows, 0, "channel '%s' grew %llu times", st.name,
                     (unsigned long long)st.grows);
        found += !strcmp(st.name, "cam.shoot.out0") + !strcmp(st.name, "arg0");
    }
    cr_assert_eq(found, 2);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_node_buffer_bytes(in, 16), -EBUSY);
    weir_graph_free(g);
}

/* ---- zero-copy results ----------------------------------------------------
 * Large results are views into the output channels' slots (weir/dag.h,
 * "Results"). Payloads of tests/view_util.h: every byte is checked. */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VIEW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VIEW_SANITIZED 1
#endif
#endif
#ifndef VIEW_SANITIZED
#define VIEW_SANITIZED 0
#endif
/* 64 KiB per execution and stage: 20000 executions optimized, fewer under sanitizers. */
#define N_BIG (VIEW_SANITIZED ? 3000 : 20000)

static uint8_t big_scratch[100000];

/* a: index -> payload, b: payload -> payload (2 stages), one graph output. */
static weir_dag *big_chain(weir_graph **gp, const char *name, const weir_compile_opts *o)
{
    weir_graph *g = weir_graph_new(name);
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "make", big_make, &in, 1, 1);
    weir_node *y = weir_bind(b, "pass", big_pass, &x, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    weir_dag *d = weir_compile(g, o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    *gp = g;
    return d;
}

/* Result r is execution x's payload after `stages` stages, byte for byte; returns its hash. */
static uint64_t big_check(const weir_result *r, uint64_t x, int stages)
{
    cr_assert_eq(weir_result_exec(r), x);
    cr_assert_eq(weir_result_count(r), 1u);
    size_t n;
    const uint8_t *p = weir_result_data(r, 0, &n);
    cr_assert_not_null(p);
    cr_assert_eq(n, big_len(x), "execution %llu: %zu bytes", (unsigned long long)x, n);
    uint64_t h = big_hash(p, n);
    cr_assert_eq(h, big_expect_hash(x, stages, big_scratch),
                 "execution %llu: a byte differs", (unsigned long long)x);
    return h;
}

static int is_view(const weir_result *r)
{
    return r->view != NULL;
}

static uint64_t big_submit(weir_dag *d, int64_t x)
{
    weir_buf arg = {&x, sizeof x};
    uint64_t id = UINT64_MAX;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "submit %lld: %s", (long long)x,
                 weir_errmsg());
    cr_assert_eq(id, (uint64_t)x);
    return id;
}

/* Order-independent sum of per-execution hashes, mixed with the index. */
static uint64_t big_acc(uint64_t x, uint64_t h)
{
    return (h ^ (x * 0xff51afd7ed558ccdull)) * 0xc4ceb9fe1a85ec53ull;
}

static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/*
 * Waited in a scrambled order, kept in a pool and freed in another
 * scrambled order; a held view is checked again, byte for byte, just
 * before it is freed (nothing overwrote its slot, even across a channel
 * growth). When the pool holds the execution a submit needs the slot of,
 * submit fails with the documented -ENOBUFS, naming exactly that
 * execution; the test then frees it and submits again.
 */
Test(dag, views_waited_and_freed_out_of_order, .timeout = 240)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 8, .depth = 16, .buffer_bytes = 65536};
    weir_dag *d = big_chain(&g, "views", &o);
    enum { POOL = 10 };
    weir_result *pool[POOL] = {0};
    uint64_t inflight[8];
    unsigned ninf = 0, npool = 0;
    uint64_t next = 0, done = 0, acc = 0, want = 0, seed = 42, views = 0, copies = 0, nobufs = 0;
    for (uint64_t x = 0; x < N_BIG; x++)
        want += big_acc(x, big_expect_hash(x, 2, big_scratch));
    while (done < N_BIG) {
        while (ninf < 8 && next < N_BIG) {
            int64_t x = (int64_t)next;
            weir_buf arg = {&x, sizeof x};
            uint64_t id;
            int rc = weir_submit(d, &arg, 1, &id, TMO);
            if (rc == -ENOBUFS) {
                /* The oldest view in the pool is in the way: exactly next - depth + 1 or older. */
                unsigned old = POOL;
                for (unsigned k = 0; k < POOL; k++)
                    if (pool[k] && is_view(pool[k]) &&
                        (old == POOL || weir_result_exec(pool[k]) < weir_result_exec(pool[old])))
                        old = k;
                cr_assert_neq(old, POOL, "-ENOBUFS with no view held: %s", weir_errmsg());
                uint64_t f = weir_result_exec(pool[old]);
                cr_assert_eq(next, f + 16, "-ENOBUFS for %llu with %llu held",
                             (unsigned long long)next, (unsigned long long)f);
                char msg[300];
                snprintf(msg, sizeof msg,
                         "graph 'views': submit: the result of execution %llu is still held: "
                         "channel 'b.pass.out0' (depth 16) has no slot for execution %llu until "
                         "it is freed (weir_result_free)",
                         (unsigned long long)f, (unsigned long long)next);
                cr_assert_str_eq(weir_errmsg(), msg);
                big_check(pool[old], f, 2);
                weir_result_free(pool[old]);
                pool[old] = NULL;
                npool--;
                nobufs++;
                continue;
            }
            cr_assert_eq(rc, 0, "submit %llu: %s", (unsigned long long)next, weir_errmsg());
            cr_assert_eq(id, next);
            inflight[ninf++] = next++;
        }
        unsigned pick = (unsigned)(lcg_next(&seed) % ninf);
        uint64_t x = inflight[pick];
        inflight[pick] = inflight[--ninf];
        weir_result *r;
        cr_assert_eq(weir_wait(d, x, &r, TMO), 0, "wait %llu: %s", (unsigned long long)x,
                     weir_errmsg());
        acc += big_acc(x, big_check(r, x, 2));
        if (big_len(x) >= WEIR_DEFAULT_RESULT_VIEW_BYTES)
            views += is_view(r);
        else
            cr_assert(!is_view(r), "a %zu-byte result is a view", big_len(x));
        copies += !is_view(r);
        done++;
        if (npool == POOL) {
            unsigned k = (unsigned)(lcg_next(&seed) % POOL);
            big_check(pool[k], weir_result_exec(pool[k]), 2);
            weir_result_free(pool[k]);
            pool[k] = NULL;
            npool--;
        }
        for (unsigned k = 0; k < POOL; k++)
            if (!pool[k]) {
                pool[k] = r;
                npool++;
                break;
            }
    }
    for (unsigned k = 0; k < POOL; k++)
        if (pool[k]) {
            big_check(pool[k], weir_result_exec(pool[k]), 2);
            weir_result_free(pool[k]);
        }
    cr_assert_eq(acc, want);
    cr_assert(views > N_BIG / 2, "%llu views, %llu copies", (unsigned long long)views,
              (unsigned long long)copies);
    cr_assert(nobufs > 0, "the pool never held a slot a submit needed");
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* Exactly as weir/dag.h says: a held view of F lets F + depth - 1 run; F + depth fails
 * at once (even with WEIR_FOREVER), consumes no id, and runs once F is freed. */
Test(dag, held_views_vs_depth)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 4, .depth = 4, .buffer_bytes = 65536};
    weir_dag *d = big_chain(&g, "hold", &o);
    weir_result *r0, *r;
    int64_t x = 0;
    weir_buf arg = {&x, sizeof x};
    cr_assert_eq(weir_execute(d, &arg, 1, &r0, TMO), 0, "%s", weir_errmsg());
    cr_assert(is_view(r0));
    uint64_t h0 = big_check(r0, 0, 2);
    for (x = 1; x < 4; x++) {
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
        big_check(r, (uint64_t)x, 2);
        weir_result_free(r);
        cr_assert_eq(big_check(r0, 0, 2), h0, "the held view changed at execution %lld",
                     (long long)x);
    }
    const char *want = "graph 'hold': submit: the result of execution 0 is still held: channel "
                       "'b.pass.out0' (depth 4) has no slot for execution 4 until it is freed "
                       "(weir_result_free)";
    uint64_t t0 = weir_now_ns();
    r = (weir_result *)1;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, WEIR_FOREVER), -ENOBUFS);
    cr_assert_null(r);
    cr_assert_str_eq(weir_errmsg(), want);
    uint64_t id = 99;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, WEIR_FOREVER), -ENOBUFS);
    cr_assert_eq(id, 99u);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert(weir_now_ns() - t0 < 1000000000ull, "-ENOBUFS was not immediate");
    weir_result_free(r0);
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(id, 4u, "the failed submits consumed an id");
    cr_assert_eq(weir_wait(d, 4, &r, TMO), 0, "%s", weir_errmsg());
    big_check(r, 4, 2);
    weir_result_free(r);

    /* Two held: the oldest counts; freeing a younger one changes nothing. */
    weir_result *r5, *r6;
    x = 5;
    cr_assert_eq(weir_execute(d, &arg, 1, &r5, TMO), 0, "%s", weir_errmsg());
    x = 6;
    cr_assert_eq(weir_execute(d, &arg, 1, &r6, TMO), 0, "%s", weir_errmsg());
    cr_assert(is_view(r5) && is_view(r6));
    for (x = 7; x < 9; x++) {
        cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
        weir_result_free(r);
    }
    x = 9;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), -ENOBUFS);
    cr_assert(strstr(weir_errmsg(), "the result of execution 5 is still held"), "%s",
              weir_errmsg());
    weir_result_free(r6);
    cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), -ENOBUFS);
    cr_assert(strstr(weir_errmsg(), "execution 5 is still held"), "%s", weir_errmsg());
    big_check(r5, 5, 2);
    weir_result_free(r5);
    cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
    big_check(r, 9, 2);
    weir_result_free(r);

    /* Buffered (not yet waited) results do not count: submitting 10 more without
     * waiting copies the old ones out of their slots; the last ones stay views. */
    for (x = 10; x < 20; x++)
        big_submit(d, x);
    weir_result *keep[4];
    for (x = 19; x >= 10; x--) {
        cr_assert_eq(weir_wait(d, (uint64_t)x, &r, TMO), 0, "%s", weir_errmsg());
        big_check(r, (uint64_t)x, 2);
        /* 10..15 were collected by the submits of 14..19 (max_inflight 4) and copied
         * out by the submits that needed their slots; 16..19 by the waits, as views. */
        cr_assert_eq(is_view(r), x >= 16 && big_len((uint64_t)x) >= 4096,
                     "execution %lld: view %d", (long long)x, is_view(r));
        if (x >= 16)
            keep[x - 16] = r;
        else
            weir_result_free(r);
    }
    /* 16..19 held: execution 20 needs the slot of 16. */
    x = 20;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), -ENOBUFS);
    cr_assert(strstr(weir_errmsg(), "the result of execution 16 is still held: channel "
                                    "'b.pass.out0' (depth 4) has no slot for execution 20"),
              "%s", weir_errmsg());
    for (int k = 0; k < 4; k++) {
        big_check(keep[k], 16 + (uint64_t)k, 2);
        weir_result_free(keep[k]);
    }
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    cr_assert_eq(id, 20u);
    cr_assert_eq(weir_wait(d, 20, &r, TMO), 0, "%s", weir_errmsg());
    big_check(r, 20, 2);
    weir_result_free(r);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());

    /* result_view_bytes = SIZE_MAX: every result a copy, held without bound. */
    o.result_view_bytes = SIZE_MAX;
    d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    weir_result *all[12];
    for (x = 0; x < 12; x++) {
        cr_assert_eq(weir_execute(d, &arg, 1, &all[x], TMO), 0, "%lld: %s", (long long)x,
                     weir_errmsg());
        cr_assert(!is_view(all[x]));
    }
    for (x = 0; x < 12; x++) {
        big_check(all[x], (uint64_t)x, 2);
        weir_result_free(all[x]);
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* depth < max_inflight (a chain deep enough for the deadlock check): a result
 * handed out when submits already went past its execution + depth - 1 is a
 * copy, so holding it cannot stall an execution already submitted. */
Test(dag, views_handed_out_as_copies_past_depth)
{
    weir_graph *g = weir_graph_new("shallow");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL),
               *c = weir_actor_new(g, "c", NULL), *e = weir_actor_new(g, "e", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x1 = weir_bind(a, "make", big_make, &in, 1, 1);
    weir_node *x2 = weir_bind(b, "pass", big_pass, &x1, 1, 1);
    weir_node *x3 = weir_bind(c, "pass", big_pass, &x2, 1, 1);
    weir_node *x4 = weir_bind(e, "pass", big_pass, &x3, 1, 1);
    cr_assert_eq(weir_output(g, &x4, 1), 0);
    weir_compile_opts o = {.max_inflight = 4, .depth = 2, .buffer_bytes = 65536};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    for (int round = 0; round < 200; round++) {
        uint64_t base = (uint64_t)round * 4;
        for (uint64_t k = 0; k < 4; k++)
            big_submit(d, (int64_t)(base + k));
        weir_result *r[4];
        /* base: next_submit base+4 > base + 2 -> a copy; base+2, base+3: views. */
        for (uint64_t k = 0; k < 4; k++) {
            cr_assert_eq(weir_wait(d, base + k, &r[k], TMO), 0, "%s", weir_errmsg());
            big_check(r[k], base + k, 4);
            int want = k >= 2 && big_len(base + k) >= 4096;
            cr_assert_eq(is_view(r[k]), want, "execution %llu: view %d",
                         (unsigned long long)(base + k), is_view(r[k]));
        }
        for (int k = 3; k >= 0; k--) {
            big_check(r[k], base + (uint64_t)k, 4);
            weir_result_free(r[k]);
        }
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* Views kept past weir_dag_free (with executions still in flight at teardown)
 * stay intact; freeing the last one frees the channels (the leak fixture
 * counts the mappings). */
Test(dag, views_outlive_the_dag)
{
    for (int round = 0; round < 10; round++) {
        weir_graph *g;
        weir_compile_opts o = {.max_inflight = 8, .buffer_bytes = 65536};
        weir_dag *d = big_chain(&g, "outlive", &o);
        weir_result *r[3];
        for (int64_t x = 0; x < 3; x++) {
            weir_buf arg = {&x, sizeof x};
            cr_assert_eq(weir_execute(d, &arg, 1, &r[x], TMO), 0, "%s", weir_errmsg());
            cr_assert(is_view(r[x]));
        }
        for (int64_t x = 3; x < 3 + round % 6; x++) /* up to 7: 0 + depth - 1 */
            big_submit(d, x);
        cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
        weir_graph_free(g);
        for (int k = 0; k < 3; k++) {
            int j = (k + round) % 3;
            big_check(r[j], (uint64_t)j, 2);
            weir_result_free(r[j]);
        }
    }
}

/* A failing method among views: the failed executions report the exact text,
 * the views around them (held across the failures) are intact. */
static int big_fail7(weir_call *c, void *st)
{
    if (weir_call_exec(c) % 7 == 3)
        return weir_call_fail(c, "bad payload %llu", (unsigned long long)weir_call_exec(c));
    return big_pass(c, st);
}

Test(dag, views_and_failed_executions)
{
    weir_graph *g = weir_graph_new("vfail");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "make", big_make, &in, 1, 1);
    weir_node *y = weir_bind(b, "fail7", big_fail7, &x, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    weir_compile_opts o = {.max_inflight = 8, .depth = 8, .buffer_bytes = 65536};
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int nfail = 0;
    uint64_t acc = 0, want = 0;
    for (uint64_t base = 0; base < N_BIG / 4; base += 4) {
        for (uint64_t k = 0; k < 4; k++)
            big_submit(d, (int64_t)(base + k));
        weir_result *r[4] = {0};
        for (int k = 3; k >= 0; k--) { /* newest first */
            uint64_t e = base + (uint64_t)k;
            int rc = weir_wait(d, e, &r[k], TMO);
            if (e % 7 == 3) {
                cr_assert_eq(rc, -EREMOTEIO, "execution %llu: %d", (unsigned long long)e, rc);
                cr_assert_null(r[k]);
                char msg[200];
                snprintf(msg, sizeof msg,
                         "graph 'vfail': execution %llu: actor 'b' method 'fail7' failed at "
                         "execution %llu: bad payload %llu",
                         (unsigned long long)e, (unsigned long long)e, (unsigned long long)e);
                cr_assert_str_eq(weir_errmsg(), msg);
                nfail++;
                continue;
            }
            cr_assert_eq(rc, 0, "execution %llu: %s", (unsigned long long)e, weir_errmsg());
            cr_assert_eq(is_view(r[k]), big_len(e) >= 4096);
            acc += big_acc(e, big_check(r[k], e, 2));
            want += big_acc(e, big_expect_hash(e, 2, big_scratch));
        }
        for (int k = 0; k < 4; k++)
            if (r[k]) {
                big_check(r[k], base + (uint64_t)k, 2);
                weir_result_free(r[k]);
            }
    }
    cr_assert_eq(acc, want);
    cr_assert_eq(nfail, (int)((N_BIG / 4 + 3) / 7), "%d failures", nfail);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* The driver thread submits and waits; another thread checks and frees the
 * results (weir_result_free from any thread, while the driver waits). A
 * submit that finds every slot held gets -ENOBUFS and tries again. */
struct vq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    weir_result *q[64];
    unsigned head, n;
    int end;
    uint64_t acc, freed;
    char err[256];
};

static void *view_freer(void *arg)
{
    struct vq *v = arg;
    static uint8_t scratch[100000];
    for (;;) {
        pthread_mutex_lock(&v->mu);
        while (!v->n && !v->end)
            pthread_cond_wait(&v->cv, &v->mu);
        if (!v->n) {
            pthread_mutex_unlock(&v->mu);
            return NULL;
        }
        weir_result *r = v->q[v->head];
        v->head = (v->head + 1) % 64;
        v->n--;
        pthread_mutex_unlock(&v->mu);
        uint64_t x = weir_result_exec(r);
        size_t n;
        const void *p = weir_result_data(r, 0, &n);
        uint64_t h = p && n == big_len(x) ? big_hash(p, n) : 0;
        if (h != big_expect_hash(x, 2, scratch) && !v->err[0])
            snprintf(v->err, sizeof v->err, "execution %llu: a byte differs", (unsigned long long)x);
        v->acc += big_acc(x, h);
        v->freed++;
        weir_result_free(r);
    }
}

Test(dag, views_freed_by_another_thread, .timeout = 240)
{
    weir_graph *g;
    weir_compile_opts o = {.max_inflight = 4, .depth = 8, .buffer_bytes = 65536};
    weir_dag *d = big_chain(&g, "vthreads", &o);
    struct vq v = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, view_freer, &v), 0);
    uint64_t next = 0, waited = 0, want = 0, retries = 0;
    while (waited < N_BIG) {
        while (next < N_BIG && next - waited < 4) {
            int64_t x = (int64_t)next;
            weir_buf arg = {&x, sizeof x};
            uint64_t id;
            int rc = weir_submit(d, &arg, 1, &id, TMO);
            if (rc == -ENOBUFS) {
                cr_assert(strstr(weir_errmsg(), "is still held"), "%s", weir_errmsg());
                retries++;
                sched_yield();
                continue;
            }
            cr_assert_eq(rc, 0, "submit %llu: %s", (unsigned long long)next, weir_errmsg());
            next++;
        }
        weir_result *r;
        cr_assert_eq(weir_wait(d, waited, &r, TMO), 0, "%s", weir_errmsg());
        want += big_acc(waited, big_expect_hash(waited, 2, big_scratch));
        waited++;
        pthread_mutex_lock(&v.mu);
        while (v.n == 64) { /* the freer is behind: let it catch up */
            pthread_mutex_unlock(&v.mu);
            sched_yield();
            pthread_mutex_lock(&v.mu);
        }
        v.q[(v.head + v.n) % 64] = r;
        v.n++;
        pthread_cond_signal(&v.cv);
        pthread_mutex_unlock(&v.mu);
    }
    pthread_mutex_lock(&v.mu);
    v.end = 1;
    pthread_cond_signal(&v.cv);
    pthread_mutex_unlock(&v.mu);
    pthread_join(th, NULL);
    cr_assert_str_eq(v.err, "");
    cr_assert_eq(v.freed, (uint64_t)N_BIG);
    cr_assert_eq(v.acc, want);
    cr_log_info("views_freed_by_another_thread: %llu submits retried after -ENOBUFS",
                (unsigned long long)retries);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* ---- co-scheduling: fused schedules ----------------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FUSED_SANITIZED 1
#else
#define FUSED_SANITIZED 0
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef FUSED_SANITIZED
#define FUSED_SANITIZED 1
#endif
#endif
/* Pipelined executions per fused case: 10^5 optimized, fewer under sanitizers. */
#define N_FUSED (FUSED_SANITIZED ? 20000 : N_EXEC)

/* The plan of d as `weir-plan show` prints it (malloc'd). */
static char *plan_text(const weir_dag *d)
{
    char path[] = "/tmp/weir-fused-plan.XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(weir_dag_save_plan(d, path), 0, "%s", weir_errmsg());
    struct weir__plan *p = NULL;
    cr_assert_eq(weir__plan_load(path, &p), 0, "%s", weir_errmsg());
    unlink(path);
    char *txt = NULL;
    size_t n;
    FILE *f = open_memstream(&txt, &n);
    cr_assert_eq(weir__plan_print(p, f), 0, "%s", weir_errmsg());
    fclose(f);
    weir__plan_free(p);
    return txt;
}

/* n executions with win in flight, waited in submit order; every output checked. */
static uint64_t run_pipelined(weir_dag *d, int n, int win, check_fn check)
{
    uint64_t sum = 1469598103934665603ull;
    int64_t next = 0, done = 0;
    while (done < n) {
        while (next < n && next - done < win) {
            uint64_t id;
            weir_buf arg = {&next, sizeof next};
            cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "submit %lld: %s",
                         (long long)next, weir_errmsg());
            cr_assert_eq(id, (uint64_t)next);
            next++;
        }
        weir_result *r = NULL;
        cr_assert_eq(weir_wait(d, (uint64_t)done, &r, TMO), 0, "wait %lld: %s", (long long)done,
                     weir_errmsg());
        cr_assert_eq(weir_result_exec(r), (uint64_t)done);
        check(done, r, &sum);
        weir_result_free(r);
        done++;
    }
    return sum;
}

static int64_t f_chain4(int64_t i)
{
    return i + 4;
}
static void check_chain4(int64_t i, const weir_result *r, uint64_t *sum)
{
    cr_assert_eq(weir_result_count(r), 1);
    int64_t v = result64(r, 0);
    cr_assert_eq(v, i + 4, "execution %lld: got %lld", (long long)i, (long long)v);
    mix(sum, v);
}

/* a -> b -> c -> d, each add_one; opts per actor from ao (NULL: defaults). */
static weir_graph *chain4_graph(const char *name, const weir_actor_opts *ao)
{
    weir_graph *g = weir_graph_new(name);
    weir_node *x = weir_input(g, 0);
    for (int i = 0; i < 4; i++) {
        char an[2] = {(char)('a' + i), 0};
        weir_actor *a = weir_actor_new(g, an, ao ? &ao[i] : NULL);
        cr_assert_not_null(a, "%s", weir_errmsg());
        x = weir_bind(a, "inc", add_one, &x, 1, 1);
        cr_assert_not_null(x, "%s", weir_errmsg());
    }
    cr_assert_eq(weir_output(g, &x, 1), 0);
    return g;
}

/* The placement and the fused schedules, exactly as `weir-plan show` prints them. */
Test(dag, fused_placement_is_in_the_plan)
{
    weir_graph *g = chain4_graph("c4", NULL);
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = 2, .max_inflight = 4});
    cr_assert_not_null(d, "%s", weir_errmsg());
    /* Only the edges between workers are channels: arg0, b -> c, d -> driver. */
    cr_assert_eq(weir_dag_nchannels(d), 3);
    char *txt = plan_text(d);
    const char *want_place = "  placement: threads 2, 2 workers\n"
                             "    worker 1: a, b\n"
                             "    worker 2: c, d\n";
    cr_assert(strstr(txt, want_place), "%s", txt);
    const char *want_chans = "  0  arg0        driver -> worker 1";
    cr_assert(strstr(txt, want_chans), "%s", txt);
    cr_assert(strstr(txt, "  1  b.inc.out0  worker 1 -> worker 2"), "%s", txt);
    cr_assert(strstr(txt, "  2  d.inc.out0  worker 2 -> driver  "), "%s", txt);
    const char *want_a = "actor 0 'a'  node 0, thread, worker 1, unpinned, 3 registers\n"
                         "  methods: inc(1 -> 1)\n"
                         "     0 READ    arg0 -> r0\n"
                         "     1 CALL    inc(r0) -> r1   [node 1]\n"
                         "     2 RELEASE r0 (arg0)\n"
                         "     3 CALL    b.inc(r1) -> r2   [node 2]\n"
                         "     4 WRITE   r2 -> b.inc.out0\n"
                         "\n"
                         "actor 1 'b'  node 0, thread, worker 1 (scheduled with 'a'), unpinned, "
                         "0 registers\n"
                         "  methods: inc(1 -> 1)\n"
                         "\n"
                         "actor 2 'c'  node 0, thread, worker 2, unpinned, 3 registers\n"
                         "  methods: inc(1 -> 1)\n"
                         "     0 READ    b.inc.out0 -> r0\n"
                         "     1 CALL    inc(r0) -> r1   [node 3]\n"
                         "     2 RELEASE r0 (b.inc.out0)\n"
                         "     3 CALL    d.inc(r1) -> r2   [node 4]\n"
                         "     4 WRITE   r2 -> d.inc.out0\n"
                         "\n"
                         "actor 3 'd'  node 0, thread, worker 2 (scheduled with 'c'), unpinned, "
                         "0 registers\n"
                         "  methods: inc(1 -> 1)\n";
    cr_assert(strstr(txt, want_a), "%s", txt);
    free(txt);
    cr_assert_eq(run_pipelined(d, N_FUSED, 4, check_chain4), expected_sum(N_FUSED, f_chain4));
    /* Per-actor stats: fused actors report their worker's waits, in-process. */
    struct weir_actor_stats as, bs;
    cr_assert_eq(weir_dag_actor_stats(d, 0, &as), 0);
    cr_assert_eq(weir_dag_actor_stats(d, 1, &bs), 0);
    cr_assert_eq(bs.pid, (int)getpid());
    cr_assert_str_eq(bs.name, "b");
    cr_assert_eq(weir_dag_free(d), 0);

    /* threads = 1: one worker, every edge inside it; only arg0 and the output. */
    d = weir_compile(g, &(weir_compile_opts){.threads = 1});
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_nchannels(d), 2);
    txt = plan_text(d);
    cr_assert(strstr(txt, "  placement: threads 1, 1 worker\n    worker 1: a, b, c, d\n"), "%s",
              txt);
    free(txt);
    cr_assert_eq(run_pipelined(d, N_FUSED, 8, check_chain4), expected_sum(N_FUSED, f_chain4));
    cr_assert_eq(weir_dag_free(d), 0);

    /* One per actor: the old plan, a worker each, 5 channels. */
    d = weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR});
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_nchannels(d), 5);
    txt = plan_text(d);
    cr_assert(strstr(txt, "  placement: threads one per actor, 4 workers\n    worker 1: a\n"
                          "    worker 2: b\n    worker 3: c\n    worker 4: d\n"),
              "%s", txt);
    cr_assert(strstr(txt, "  1  a.inc.out0  a -> b "), "%s", txt);
    free(txt);
    cr_assert_eq(weir_dag_free(d), 0);

    /* Automatic (threads 0): a thread per actor while the CPUs suffice, else
     * one worker per CPU but the driver's. */
    {
        cpu_set_t cs;
        cr_assert_eq(sched_getaffinity(0, sizeof cs, &cs), 0);
        unsigned ncpu = (unsigned)CPU_COUNT(&cs);
        unsigned want = ncpu >= 4 ? 4 : ncpu > 1 ? ncpu - 1 : 1;
        d = weir_compile(g, NULL);
        cr_assert_not_null(d, "%s", weir_errmsg());
        txt = plan_text(d);
        char line[96];
        snprintf(line, sizeof line, "  placement: threads automatic, %u worker%s\n", want,
                 want == 1 ? "" : "s");
        cr_assert(strstr(txt, line), "%u CPUs, want '%s' in\n%s", ncpu, line, txt);
        free(txt);
        cr_assert_eq(run_pipelined(d, 1000, 8, check_chain4), expected_sum(1000, f_chain4));
        cr_assert_eq(weir_dag_free(d), 0);
    }

    /* More threads than actors: a worker each, never an empty one. */
    d = weir_compile(g, &(weir_compile_opts){.threads = 9});
    cr_assert_not_null(d, "%s", weir_errmsg());
    txt = plan_text(d);
    cr_assert(strstr(txt, "  placement: threads 9, 4 workers\n"), "%s", txt);
    free(txt);
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

/* diamond: p -> (f1, f2) -> j, fused in every way threads allow. */
static weir_graph *diamond_graph(const weir_actor_opts *ao)
{
    weir_graph *g = weir_graph_new("fdia");
    weir_actor *p = weir_actor_new(g, "parse", ao ? &ao[0] : NULL);
    weir_actor *f1 = weir_actor_new(g, "f1", ao ? &ao[1] : NULL);
    weir_actor *f2 = weir_actor_new(g, "f2", ao ? &ao[2] : NULL);
    weir_actor *j = weir_actor_new(g, "join", ao ? &ao[3] : NULL);
    cr_assert(p && f1 && f2 && j, "%s", weir_errmsg());
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(p, "parse", add_one, &in, 1, 1);
    weir_node *a = weir_bind(f1, "double", times_two, &x, 1, 1);
    weir_node *b = weir_bind(f2, "plus3", plus_three, &x, 1, 1);
    weir_node *ab[2] = {a, b};
    weir_node *y = weir_bind(j, "sum", sum2, ab, 2, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    return g;
}

/* Every case twice: workers on threads of their own, and (dw 1) the first
 * worker run by the driver's calls (weir_compile_opts.driver_worker). */
Test(dag, fused_diamond_and_fanout_every_output)
{
    weir_graph *g = diamond_graph(NULL);
    for (int dw = 0; dw <= 1; dw++)
        for (int t = 1; t <= 4; t++) {
            weir_dag *d = weir_compile(
                g, &(weir_compile_opts){.threads = t, .max_inflight = 8, .driver_worker = dw});
            cr_assert_not_null(d, "threads %d: %s", t, weir_errmsg());
            cr_assert_eq(run_pipelined(d, N_FUSED / 2, 8, check_diamond),
                         expected_sum(N_FUSED / 2, f_diamond), "threads %d dw %d", t, dw);
            cr_assert_eq(weir_dag_free(d), 0);
        }
    /* Explicit: f1 and f2 on worker 2, parse and join on worker 1 (so worker 1
     * waits for worker 2 inside its own schedule, in topological order; with
     * dw 1 the driver's worker stops mid-schedule at join's READ). */
    weir_actor_opts ao[4] = {{.worker = 1}, {.worker = 2},
                             {.worker = 2}, {.worker = 1}};
    weir_graph *h = diamond_graph(ao);
    for (int dw = 0; dw <= 1; dw++) {
        weir_dag *d = weir_compile(
            h, &(weir_compile_opts){.threads = 2, .max_inflight = 8, .driver_worker = dw});
        cr_assert_not_null(d, "%s", weir_errmsg());
        char *txt = plan_text(d);
        cr_assert(strstr(txt, "    worker 1: parse, join\n    worker 2: f1, f2\n"), "%s", txt);
        /* parse.out0 goes to worker 2 once (one reader for both fused consumers). */
        cr_assert(strstr(txt, "parse.parse.out0  worker 1 -> worker 2 "), "%s", txt);
        free(txt);
        cr_assert_eq(run_pipelined(d, N_FUSED / 2, 8, check_diamond),
                     expected_sum(N_FUSED / 2, f_diamond), "dw %d", dw);
        /* One at a time too: every execute waits on worker 2 mid-schedule. */
        for (int64_t i = 0; i < 2000; i++) {
            weir_buf arg = {&i, sizeof i};
            weir_result *r = NULL;
            cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
            cr_assert_eq(result64(r, 0), f_diamond(i));
            weir_result_free(r);
        }
        cr_assert_eq(weir_dag_free(d), 0);
    }
    weir_graph_free(h);
    weir_graph_free(g);

    /* fan-out to three, outputs of fused actors read by the driver. */
    g = weir_graph_new("ffan");
    weir_actor *s = weir_actor_new(g, "src", NULL), *k1 = weir_actor_new(g, "k1", NULL),
               *k2 = weir_actor_new(g, "k2", NULL), *k3 = weir_actor_new(g, "k3", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(s, "inc", add_one, &in, 1, 1);
    weir_node *outs[3] = {weir_bind(k1, "double", times_two, &x, 1, 1),
                          weir_bind(k2, "plus3", plus_three, &x, 1, 1),
                          weir_bind(k3, "neg", negate, &x, 1, 1)};
    cr_assert_eq(weir_output(g, outs, 3), 0);
    for (int dw = 0; dw <= 1; dw++)
        for (int t = 1; t <= 3; t++) {
            weir_dag *d = weir_compile(
                g, &(weir_compile_opts){.threads = t, .max_inflight = 8, .driver_worker = dw});
            cr_assert_not_null(d, "threads %d: %s", t, weir_errmsg());
            cr_assert_eq(run_pipelined(d, N_FUSED / 2, 8, check_fanout),
                         expected_sum(N_FUSED / 2, f_fanout), "threads %d dw %d", t, dw);
            cr_assert_eq(weir_dag_free(d), 0);
        }
    weir_graph_free(g);
}

/* A method failure in a fused actor fails its execution only, with the
 * actor's own text, and the fused actors downstream skip and forward it. */
Test(dag, fused_failure_fails_its_execution_only)
{
    weir_graph *g = weir_graph_new("ffail");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL),
               *c = weir_actor_new(g, "c", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "add_one", add_one, &in, 1, 1);
    weir_node *y = weir_bind(b, "fail_some", fail_some, &x, 1, 1);
    weir_node *xy[2] = {x, y};
    weir_node *z = weir_bind(c, "sum", sum2, xy, 2, 1);
    weir_output(g, &z, 1);
    for (int k = 0; k < 4; k++) {
        /* threads 1: a, b, c on one worker; threads 2: (a, b) | c; k >= 2: the
         * first worker run by the driver. */
        int t = 1 + k % 2;
        weir_dag *d = weir_compile(
            g, &(weir_compile_opts){.threads = t, .max_inflight = 8, .driver_worker = k >= 2});
        cr_assert_not_null(d, "%s", weir_errmsg());
        const int n = FUSED_SANITIZED ? 3000 : 20000, win = 8;
        int nfail = 0;
        int64_t next = 0;
        for (int64_t i = 0; i < n; i++) {
            while (next < n && next - i < win) {
                uint64_t id;
                weir_buf arg = {&next, sizeof next};
                cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
                next++;
            }
            weir_result *r = NULL;
            int rc = weir_wait(d, (uint64_t)i, &r, TMO);
            int64_t x1 = i + 1;
            char want[256] = "";
            if (x1 % 7 == 3)
                snprintf(want, sizeof want,
                         "actor 'b' method 'fail_some' failed at execution %lld: bad value %lld",
                         (long long)i, (long long)x1);
            else if (x1 % 11 == 5)
                snprintf(want, sizeof want,
                         "actor 'b' method 'fail_some' failed at execution %lld: returned -5",
                         (long long)i);
            else if (x1 % 13 == 6)
                snprintf(want, sizeof want,
                         "actor 'b' method 'fail_some' failed at execution %lld: output 0 was "
                         "not produced (call weir_call_out)",
                         (long long)i);
            if (!want[0]) {
                cr_assert_eq(rc, 0, "threads %d execution %lld: %s", t, (long long)i,
                             weir_errmsg());
                cr_assert_eq(result64(r, 0), x1 + x1 + 1);
                weir_result_free(r);
                continue;
            }
            nfail++;
            cr_assert_eq(rc, -EREMOTEIO, "execution %lld: rc %d", (long long)i, rc);
            cr_assert_null(r);
            char full[600];
            snprintf(full, sizeof full, "graph 'ffail': execution %lld: %s", (long long)i, want);
            cr_assert_str_eq(weir_errmsg(), full);
        }
        cr_assert(nfail > n / 5, "%d failures", nfail);
        cr_assert_eq(weir_dag_free(d), 0);
    }
    weir_graph_free(g);
}

/* A process actor in the middle is never fused and runs as before; the
 * thread actors around it share the workers. */
Test(dag, fused_with_a_process_actor)
{
    weir_actor_opts ao[4] = {{0}, {.isolation = WEIR_PROCESS},
                             {0}, {0}};
    weir_graph *g = chain4_graph("fproc", ao);
    for (int dw = 0; dw <= 1; dw++) {
        /* dw 1: the driver runs worker 1, which waits for process b mid-schedule. */
        weir_dag *d = weir_compile(
            g, &(weir_compile_opts){.threads = 1, .max_inflight = 8, .driver_worker = dw});
        cr_assert_not_null(d, "%s", weir_errmsg());
        char *txt = plan_text(d);
        cr_assert(strstr(txt, "  placement: threads 1, 1 worker\n"
                              "    worker 1: a, c, d\n"
                              "    process: b\n"),
                  "%s", txt);
        cr_assert(strstr(txt, "actor 1 'b'  node 0, process, unpinned, 2 registers\n"), "%s", txt);
        /* a and c share worker 1, but b sits between them: a -> b -> worker 1. */
        cr_assert(strstr(txt, "a.inc.out0  worker 1 -> b "), "%s", txt);
        cr_assert(strstr(txt, "b.inc.out0  b -> worker 1 "), "%s", txt);
        free(txt);
        struct weir_actor_stats st;
        cr_assert_eq(weir_dag_actor_stats(d, 1, &st), 0);
        cr_assert_eq(st.isolation, WEIR_PROCESS);
        cr_assert_neq(st.pid, (int)getpid());
        const int n = FUSED_SANITIZED ? 5000 : 50000;
        cr_assert_eq(run_pipelined(d, n, 8, check_chain4), expected_sum(n, f_chain4), "dw %d", dw);
        cr_assert_eq(weir_dag_free(d), 0);
    }
    weir_graph_free(g);
}

/* The whole message, not a part of it. */
#define EXPECT_ERR_EQ(expr, code, text)                                                            \
    do {                                                                                           \
        weir__seterr(0, "");                                                                       \
        cr_assert_null((void *)(uintptr_t)(expr), #expr " should fail");                           \
        cr_assert_eq(weir_errcode(), code, "%s: code %d: %s", #expr, weir_errcode(),              \
                     weir_errmsg());                                                               \
        cr_assert_str_eq(weir_errmsg(), text, "%s:\n  got  %s\n  want %s", #expr, weir_errmsg(),  \
                         text);                                                                    \
    } while (0)

/* Explicit placement is checked at compile time, naming the actor. */
Test(dag, fused_placement_errors)
{
    weir_actor_opts ao[4] = {{0}, {0}, {0}, {0}};
    ao[2].worker = 3;
    weir_graph *g = chain4_graph("fbad", ao);
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = 2}), -EINVAL,
               "actor 'c': worker 3 is out of range (threads = 2: workers 1..2)");
    EXPECT_ERR_EQ(weir_compile(g, NULL), -EINVAL,
               "actor 'c': worker 3 needs weir_compile_opts.threads >= 3 (threads is 0)");
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR}), -EINVAL,
               "actor 'c': worker 3 needs weir_compile_opts.threads >= 3 (threads is -1)");
    weir_graph_free(g);

    ao[2].worker = -2;
    g = chain4_graph("fbad", ao);
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = 2}), -EINVAL,
               "actor 'c': worker -2 is not a worker (0: automatic, 1..threads, or "
               "WEIR_WORKER_ALONE)");
    weir_graph_free(g);

    ao[2].worker = 1;
    ao[2].isolation = WEIR_PROCESS;
    g = chain4_graph("fbad", ao);
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = 2}), -EINVAL,
               "actor 'c': worker 1, but a WEIR_PROCESS actor runs alone in its process (leave "
               "worker 0)");
    weir_graph_free(g);

    ao[2].isolation = WEIR_THREAD;
    g = chain4_graph("fbad", ao);
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = -2}), -EINVAL,
               "graph 'fbad': threads -2 is out of range (0: automatic, -1: one per actor, "
               "1..65536 workers)");
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = 65537}), -EINVAL,
               "graph 'fbad': threads 65537 is out of range (0: automatic, -1: one per actor, "
               "1..65536 workers)");
    weir_graph_free(g);

    /* Two CPU pins on one worker cannot both hold. */
    ao[2].worker = 0;
    ao[0] = (weir_actor_opts){.cpus = "0", .worker = 1};
    ao[1] = (weir_actor_opts){.cpus = "1", .worker = 1};
    g = chain4_graph("fpin", ao);
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = 2}), -EINVAL,
               "actor 'a' (cpus '0') and actor 'b' (cpus '1') are both on worker 1: one thread "
               "cannot be pinned to both");
    weir_graph_free(g);
    /* The same CPUs written two ways agree. */
    ao[0] = (weir_actor_opts){.cpus = "0-1", .worker = 1};
    ao[1] = (weir_actor_opts){.cpus = "1,0", .worker = 1};
    g = chain4_graph("fpin2", ao);
    weir_dag *dp = weir_compile(g, &(weir_compile_opts){.threads = 2});
    cr_assert_not_null(dp, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_free(dp), 0, "%s", weir_errmsg());
    weir_graph_free(g);

    /* ALONE keeps an actor off the shared workers; explicit ones go where asked. */
    ao[0] = (weir_actor_opts){.worker = 2};
    ao[1] = (weir_actor_opts){.worker = WEIR_WORKER_ALONE};
    ao[2] = (weir_actor_opts){0};
    ao[3] = (weir_actor_opts){.worker = 2};
    g = chain4_graph("falone", ao);
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = 2});
    cr_assert_not_null(d, "%s", weir_errmsg());
    char *txt = plan_text(d);
    /* c (automatic, the only one) takes worker 1; a, d worker 2; b its own. */
    cr_assert(strstr(txt, "  placement: threads 2, 3 workers\n"
                          "    worker 1: c\n"
                          "    worker 2: a, d\n"
                          "    worker 3: b\n"),
              "%s", txt);
    free(txt);
    const int n = FUSED_SANITIZED ? 5000 : 50000;
    cr_assert_eq(run_pipelined(d, n, 8, check_chain4), expected_sum(n, f_chain4));
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

/* The deadlock check runs over the fused schedules: what it rejected with a
 * thread per actor it still rejects, naming the workers. */
Test(dag, fused_deadlock_check_still_rejects)
{
    weir_graph *g = chain4_graph("fdl", NULL);
    /* 16 in flight through 3 channels of depth 1: the driver fills them. */
    weir_compile_opts o = {.max_inflight = 16, .depth = 1, .threads = 2};
    EXPECT_ERR_EQ(weir_compile(g, &o), -EDEADLK,
                  "plan 'fdl' can deadlock (max_inflight 16): worker 1 (a, b) waits to write "
                  "channel 'b.inc.out0' (depth 1) until worker 2 (c, d) releases a slot; worker 2 "
                  "(c, d) waits to write channel 'd.inc.out0' (depth 1) until driver releases a "
                  "slot; driver waits to write channel 'arg0' (depth 1) until worker 1 (a, b) "
                  "releases a slot");
    /* The same options with a thread per actor are rejected too (5 channels). */
    o.threads = WEIR_THREADS_PER_ACTOR;
    EXPECT_ERR(weir_compile(g, &o), -EDEADLK, "plan 'fdl' can deadlock (max_inflight 16): ");
    o.threads = 2;
    o.depth = 16;
    weir_dag *d = weir_compile(g, &o);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_free(d), 0);

    /* A fused schedule changed by hand (as a loaded plan could be): worker 1
     * first reads worker 2's output of the same execution, which worker 2 can
     * only make from what worker 1 writes later - a cycle between workers. */
    struct weir__plan *p;
    cr_assert_eq(weir__compile_plan(g, &(weir_compile_opts){.threads = 2}, &p), 0, "%s",
                 weir_errmsg());
    cr_assert_eq(weir__plan_deadlock_check(p), 0, "%s", weir_errmsg());
    struct weir__plan_actor *pa = &p->actors[0]; /* worker 1's lead */
    uint32_t outc = p->outputs[0];
    struct weir__plan_chan *oc = &p->chans[outc];
    oc->readers = realloc(oc->readers, (oc->nreaders + 1) * sizeof *oc->readers);
    oc->readers[oc->nreaders++] = 0;
    pa->ops = realloc(pa->ops, (pa->nops + 2) * sizeof *pa->ops);
    memmove(&pa->ops[1], &pa->ops[0], pa->nops * sizeof *pa->ops);
    pa->ops[0] = (struct weir__plan_op){.kind = WEIR__OP_READ, .chan = outc, .reg = pa->nregs};
    pa->nops++;
    pa->ops[pa->nops++] = (struct weir__plan_op){.kind = WEIR__OP_RELEASE, .chan = outc,
                                                 .reg = pa->nregs};
    pa->nregs++;
    for (unsigned c = 0; c < p->nchans; c++)
        if (p->chans[c].writer == 0)
            p->chans[c].src_index++; /* its CALL moved down by one */
    cr_assert_eq(weir__plan_validate(p), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__plan_deadlock_check(p), -EDEADLK);
    cr_assert(strstr(weir_errmsg(), "worker 1 (a, b) waits to read channel 'd.inc.out0' from "
                                    "worker 2 (c, d)"),
              "%s", weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "worker 2 (c, d) waits to read channel 'b.inc.out0' from "
                                    "worker 1 (a, b)"),
              "%s", weir_errmsg());
    weir__plan_free(p);
    weir_graph_free(g);
}

static int inits_run, finis_run;
static int count_init(void *s)
{
    (void)s;
    __atomic_add_fetch(&inits_run, 1, __ATOMIC_RELAXED);
    return 0;
}
static void count_fini(void *s)
{
    (void)s;
    __atomic_add_fetch(&finis_run, 1, __ATOMIC_RELAXED);
}

/* Every actor fused on a worker gets its own init and fini, on the worker;
 * an init that fails names its own actor, not the worker's lead. */
Test(dag, fused_init_fini_per_actor)
{
    weir_actor_opts ao[4];
    for (int i = 0; i < 4; i++)
        ao[i] = (weir_actor_opts){.init = count_init, .fini = count_fini};
    weir_graph *g = chain4_graph("finit", ao);
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = 1});
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(__atomic_load_n(&inits_run, __ATOMIC_RELAXED), 4);
    cr_assert_eq(run_pipelined(d, 1000, 4, check_chain4), expected_sum(1000, f_chain4));
    cr_assert_eq(weir_dag_free(d), 0);
    cr_assert_eq(__atomic_load_n(&finis_run, __ATOMIC_RELAXED), 4);
    weir_graph_free(g);

    ao[2].init = init_fails;
    g = chain4_graph("finit", ao);
    EXPECT_ERR_EQ(weir_compile(g, &(weir_compile_opts){.threads = 1}), -EREMOTEIO,
                  "graph 'finit': actor 'c' (thread) could not start: init returned -5");
    weir_graph_free(g);
}

/* An actor no call uses has no channel, so the close cascade never reaches
 * it: teardown wakes it directly. Alone on its thread (a thread per actor,
 * or WEIR_WORKER_ALONE beside a fused worker) and as a process, its init
 * and fini still run once each, and weir_dag_free returns 0 at once instead
 * of timing out. */
Test(dag, actors_without_calls_leave_at_teardown, .timeout = 60)
{
    const int threads[2] = {WEIR_THREADS_PER_ACTOR, 1};
    for (int k = 0; k < 2; k++) {
        __atomic_store_n(&inits_run, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&finis_run, 0, __ATOMIC_RELAXED);
        weir_actor_opts ao[4] = {{0}};
        weir_graph *g = chain4_graph("idle", ao);
        weir_actor_opts it = {.init = count_init, .fini = count_fini,
                              .worker = k ? WEIR_WORKER_ALONE : 0};
        cr_assert_not_null(weir_actor_new(g, "idle_thread", &it), "%s", weir_errmsg());
        weir_actor_opts ip = {.isolation = WEIR_PROCESS};
        cr_assert_not_null(weir_actor_new(g, "idle_process", &ip), "%s", weir_errmsg());
        weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = threads[k],
                                                          .timeout_ms = 10000});
        cr_assert_not_null(d, "%s", weir_errmsg());
        cr_assert_eq(__atomic_load_n(&inits_run, __ATOMIC_RELAXED), 1);
        cr_assert_eq(run_pipelined(d, 1000, 4, check_chain4), expected_sum(1000, f_chain4));
        uint64_t t0 = weir_now_ns();
        int rc = weir_dag_free(d);
        uint64_t ms = (weir_now_ns() - t0) / 1000000u;
        cr_assert_eq(rc, 0, "threads %d: %d %s", threads[k], rc, weir_errmsg());
        cr_assert_lt(ms, 2000, "threads %d: teardown took %llu ms", threads[k],
                     (unsigned long long)ms);
        cr_assert_eq(__atomic_load_n(&finis_run, __ATOMIC_RELAXED), 1);
        weir_graph_free(g);
    }
}

/* ---- the driver's worker (weir_compile_opts.driver_worker) ---------------- */

/* Where an actor's init, methods and fini ran. */
struct where_ran {
    pthread_t init_th, call_th, fini_th;
    int calls, moved; /* calls; 1 if a call ran in another thread than the first */
};

static int where_init(void *st)
{
    ((struct where_ran *)st)->init_th = pthread_self();
    return 0;
}
static void where_fini(void *st)
{
    ((struct where_ran *)st)->fini_th = pthread_self();
}
static int where_inc(weir_call *c, void *st)
{
    struct where_ran *w = st;
    if (w->calls++ == 0)
        w->call_th = pthread_self();
    else if (!pthread_equal(w->call_th, pthread_self()))
        w->moved = 1;
    return out64(c, 0, in64(c, 0) + 1);
}

static weir_graph *where_chain4(struct where_ran *w)
{
    weir_graph *g = weir_graph_new("drvw");
    weir_node *x = weir_input(g, 0);
    for (int i = 0; i < 4; i++) {
        char an[2] = {(char)('a' + i), 0};
        w[i] = (struct where_ran){0};
        weir_actor_opts ao = {.state = &w[i], .init = where_init, .fini = where_fini};
        weir_actor *a = weir_actor_new(g, an, &ao);
        cr_assert_not_null(a, "%s", weir_errmsg());
        x = weir_bind(a, "inc", where_inc, &x, 1, 1);
        cr_assert_not_null(x, "%s", weir_errmsg());
    }
    cr_assert_eq(weir_output(g, &x, 1), 0);
    return g;
}

static int task_count(void)
{
    DIR *dir = opendir("/proc/self/task");
    cr_assert_not_null(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* With driver_worker the first worker gets no thread: its actors' init,
 * methods and fini run in the caller's thread (weir_compile, the driver's
 * calls, weir_dag_free), the other workers as before; the plan (and its
 * hash) is the same either way. */
Test(dag, driver_worker_runs_the_first_worker_in_the_callers_thread)
{
    struct where_ran w[4];
    weir_graph *g = where_chain4(w);
    weir_dag *plain = weir_compile(g, &(weir_compile_opts){.threads = 2, .max_inflight = 8});
    cr_assert_not_null(plain, "%s", weir_errmsg());
    uint64_t hash = weir_dag_plan_hash(plain);
    cr_assert_eq(weir_dag_free(plain), 0);
    for (int t = 1; t <= 2; t++) {
        /* The same dag without the option: the tasks a dag adds (its workers,
         * the profiling publisher). */
        int before = task_count();
        plain = weir_compile(g, &(weir_compile_opts){.threads = t, .max_inflight = 8});
        cr_assert_not_null(plain, "%s", weir_errmsg());
        int added = task_count() - before;
        cr_assert_eq(weir_dag_free(plain), 0);
        for (int i = 0; i < 4; i++)
            w[i] = (struct where_ran){0};
        weir_dag *d = weir_compile(
            g, &(weir_compile_opts){.threads = t, .max_inflight = 8, .driver_worker = 1});
        cr_assert_not_null(d, "%s", weir_errmsg());
        /* threads 2: (a, b) here, (c, d) on a thread; threads 1: no worker thread. */
        cr_assert_eq(task_count() - before, added - 1, "threads %d: %d tasks, %d before", t,
                     task_count(), before);
        cr_assert_eq(weir_dag_plan_hash(d), t == 2 ? hash : weir_dag_plan_hash(d));
        cr_assert_eq(run_pipelined(d, N_FUSED, 8, check_chain4), expected_sum(N_FUSED, f_chain4));
        for (int64_t i = 0; i < 1000; i++) {
            weir_buf arg = {&i, sizeof i};
            weir_result *r = NULL;
            cr_assert_eq(weir_execute(d, &arg, 1, &r, TMO), 0, "%s", weir_errmsg());
            cr_assert_eq(result64(r, 0), i + 4);
            weir_result_free(r);
        }
        cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
        for (int i = 0; i < 4; i++) {
            int here = i < 2 || t == 1;
            cr_assert_eq(w[i].calls, N_FUSED + 1000, "actor %d", i);
            cr_assert_eq(w[i].moved, 0, "actor %d ran in two threads", i);
            cr_assert_eq(pthread_equal(w[i].call_th, pthread_self()) != 0, here,
                         "threads %d actor %d: methods ran %s the test's thread", t, i,
                         here ? "outside" : "in");
            cr_assert_eq(pthread_equal(w[i].init_th, pthread_self()) != 0, here);
            cr_assert_eq(pthread_equal(w[i].fini_th, pthread_self()) != 0, here);
        }
        if (t == 2)
            cr_assert(pthread_equal(w[2].call_th, w[3].call_th), "c and d share worker 2");
    }
    weir_graph_free(g);
}

/* Executions submitted and never waited for still run: the teardown runs the
 * driver's worker until its inputs are drained. A wait that cannot finish in
 * time fails with the usual text and the next one gets the result. */
static int slow_ms, slow_calls;
static int slow_neg(weir_call *c, void *st)
{
    (void)st;
    __atomic_add_fetch(&slow_calls, 1, __ATOMIC_RELAXED);
    int64_t x = in64(c, 0);
    if (x < 0) {
        struct timespec ts = {slow_ms / 1000, (long)(slow_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return out64(c, 0, x + 1);
}

static weir_graph *slow_tail_chain(struct where_ran *w)
{
    /* a, b (counted) -> c (sleeps on a negative value) on worker 2. */
    weir_graph *g = weir_graph_new("dwslow");
    weir_node *x = weir_input(g, 0);
    for (int i = 0; i < 3; i++) {
        char an[2] = {(char)('a' + i), 0};
        w[i] = (struct where_ran){0};
        weir_actor_opts ao = {.state = &w[i], .init = where_init, .fini = where_fini,
                              .worker = i < 2 ? 1 : 2};
        weir_actor *a = weir_actor_new(g, an, &ao);
        cr_assert_not_null(a, "%s", weir_errmsg());
        x = weir_bind(a, "inc", i < 2 ? where_inc : slow_neg, &x, 1, 1);
        cr_assert_not_null(x, "%s", weir_errmsg());
    }
    cr_assert_eq(weir_output(g, &x, 1), 0);
    return g;
}

Test(dag, driver_worker_drains_at_teardown_and_times_out_cleanly)
{
    struct where_ran w[3];
    weir_graph *g = slow_tail_chain(w);
    /* c sleeps 100 ms in execution 0 with 2 slots before it: when the
     * teardown begins, b has not run execution 2 and a not 3. */
    slow_ms = 100;
    __atomic_store_n(&slow_calls, 0, __ATOMIC_RELAXED);
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = 2, .max_inflight = 4,
                                                       .depth = 2, .driver_worker = 1});
    cr_assert_not_null(d, "%s", weir_errmsg());
    uint64_t id;
    for (int64_t i = 0; i < 4; i++) {
        int64_t v = i ? i : -10;
        weir_buf arg = {&v, sizeof v};
        cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    }
    cr_assert_lt(w[1].calls, 4);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    cr_assert_eq(w[0].calls, 4);
    cr_assert_eq(w[1].calls, 4);
    cr_assert_eq(__atomic_load_n(&slow_calls, __ATOMIC_RELAXED), 4);
    cr_assert(pthread_equal(w[1].fini_th, pthread_self()));

    slow_ms = 300;
    d = weir_compile(g, &(weir_compile_opts){.threads = 2, .max_inflight = 8, .driver_worker = 1});
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t v = -100; /* c sleeps 300 ms on it */
    weir_buf arg = {&v, sizeof v};
    cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    weir_result *r = NULL;
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_wait(d, id, &r, 50), -ETIMEDOUT);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el >= 45000000ull && el < 250000000ull, "wait returned after %llu ns",
              (unsigned long long)el);
    cr_assert_str_eq(weir_errmsg(), "graph 'dwslow': execution 0: not finished in time "
                                    "(waiting for execution 0 on channel 'c.inc.out0')");
    cr_assert_null(r);
    cr_assert_eq(weir_wait(d, id, &r, TMO), 0, "%s", weir_errmsg());
    el = weir_now_ns() - t0;
    cr_assert_eq(result64(r, 0), -97);
    weir_result_free(r);
    /* Meanwhile the driver's worker (a, b) waited for its next argument: its
     * stats say so, as a worker thread's would. */
    struct weir_actor_stats as;
    cr_assert_eq(weir_dag_actor_stats(d, 0, &as), 0);
    cr_assert(as.input_starved_ns >= 200000000ull && as.input_starved_ns <= el,
              "a waited %llu ns of %llu", (unsigned long long)as.input_starved_ns,
              (unsigned long long)el);
    cr_assert_eq(as.output_blocked_ns, 0);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* A worker stuck in a method holds the driver's worker (its channel to it is
 * full): teardown returns within its bound and names both. */
Test(dag, driver_worker_stuck_teardown_names_both)
{
    struct where_ran w[3];
    weir_graph *g = slow_tail_chain(w);
    slow_ms = 1200;
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = 2, .max_inflight = 4,
                                                       .depth = 2, .timeout_ms = 150,
                                                       .driver_worker = 1});
    cr_assert_not_null(d, "%s", weir_errmsg());
    uint64_t id;
    for (int64_t i = 0; i < 3; i++) {
        int64_t v = i ? i : -10; /* c sleeps in execution 0 only */
        weir_buf arg = {&v, sizeof v};
        cr_assert_eq(weir_submit(d, &arg, 1, &id, TMO), 0, "%s", weir_errmsg());
    }
    struct timespec ts = {0, 50000000L};
    nanosleep(&ts, NULL); /* c is in its first call; b.inc.out0 holds 2, a and b wait */
    cr_assert_eq(w[0].calls, 3);
    cr_assert_eq(w[1].calls, 2, "b could not write its third output");
    uint64_t t0 = weir_now_ns();
    cr_assert_eq(weir_dag_free(d), -ETIMEDOUT);
    uint64_t el = weir_now_ns() - t0;
    cr_assert(el < 900000000ull, "teardown took %llu ns", (unsigned long long)el);
    cr_assert_str_eq(weir_errmsg(),
                     "graph 'dwslow': teardown timed out after 150 ms: actor 'a' (the driver's "
                     "worker) is stuck waiting on a channel; actor 'c' is stuck in method 'inc' "
                     "(execution 0) (threads are left running detached and freed when they "
                     "return; processes are killed)");
    cr_assert(pthread_equal(w[1].fini_th, pthread_self()), "the driver's worker ran its fini");
    weir_graph_free(g);
    /* Let the detached thread finish and free the dag (checked by ASan's leak check). */
    ts.tv_sec = 1;
    ts.tv_nsec = 500000000L;
    nanosleep(&ts, NULL);
}
