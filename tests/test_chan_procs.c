/* SPDX-License-Identifier: MIT */
/*
 * tests/test_chan_procs.c - channels shared between threads and processes:
 * counters read while they change, reader ids handed between handles and
 * processes (weir_chan_attach_reader), waiting for readers
 * (weir_chan_wait_readers), writers and readers that die (dead writers of
 * named channels, zombies). Each regression test is named after the bug it
 * pins (issues 7 and 13).
 *
 * Same conventions as tests/test_chan.c: the `leak` fixture, a timeout on
 * every blocking call, forked children report through CCHECK and _exit().
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "chan_util.h"

TestSuite(chan_procs, .init = leak_init, .fini = leak_fini, .timeout = 120);

static weir_chan *mk(const char *name, size_t slot, unsigned depth)
{
    weir_chan_opts o = {.slot_bytes = slot, .depth = depth};
    weir_chan *c = weir_chan_create(name, &o);
    cr_assert_not_null(c, "weir_chan_create(%s, slot %zu, depth %u): %d %s",
                       name ? name : "NULL", slot, depth, weir_errcode(), weir_errmsg());
    return c;
}

static void stats(const weir_chan *c, struct weir_chan_stats *st)
{
    memset(st, 0xa5, sizeof *st);
    int rc = weir_chan_stats(c, st);
    cr_assert_eq(rc, 0, "weir_chan_stats: %d %s", rc, weir_errmsg());
}

/* Check a failure: return value, weir_errcode() and an exact piece of the text. */
#define EXPECT_ERR(expr, code, text)                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (code), "%s: expected %d (%s), got %d; errmsg '%s'", #expr, (code),     \
                     strerror(-(code)), rc_, weir_errmsg());                                       \
        cr_assert_eq(weir_errcode(), (code), "weir_errcode() is %d after %s, expected %d",        \
                     weir_errcode(), #expr, (code));                                               \
        cr_assert(strstr(weir_errmsg(), (text)) != NULL, "weir_errmsg() after %s: '%s', want '%s'", \
                  #expr, weir_errmsg(), (text));                                                   \
    } while (0)

/* =========================================================================== */
/* Issue 7, finding 3: the error-records counter is read while it changes      */
/* =========================================================================== */

#define ERR_RECORDS 20000

struct err_writer {
    pthread_t th;
    weir_chan *c;
    struct t_fail fail;
};

static void *err_writer_main(void *arg)
{
    struct err_writer *w = arg;
    char text[32];
    for (int i = 0; i < ERR_RECORDS; i++) {
        snprintf(text, sizeof text, "e%d", i);
        if (weir_chan_write_error(w->c, text, TMO) != 0) {
            t_failf(&w->fail, "error record %d not written", i);
            break;
        }
    }
    return NULL;
}

/*
 * The writer thread writes error records while this thread reads them and
 * reads the counters through weir_chan_stats: the count never goes back,
 * never passes what was written, ends exact, and every record's text is
 * checksummed. Under ThreadSanitizer the old plain `errors++` is a data
 * race with the stats reader, and the test fails.
 */
Test(chan_procs, error_counter_exact_while_stats_read)
{
    weir_chan *c = mk(NULL, 64, 16);
    int id = weir_chan_register_reader(c);
    cr_assert_geq(id, 0, "%s", weir_errmsg());
    struct err_writer w = {.c = c};
    cr_assert_eq(pthread_create(&w.th, NULL, err_writer_main, &w), 0);
    uint64_t last = 0, sum = T_FNV_OFF, want = T_FNV_OFF;
    char text[32];
    for (int i = 0; i < ERR_RECORDS; i++) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(c, id, &m, TMO);
        cr_assert_eq(rc, 0, "record %d: %d %s", i, rc, weir_errmsg());
        cr_assert_eq(m.flags, WEIR_MSG_ERROR, "record %d: flags 0x%x", i, m.flags);
        sum = t_fnv(sum, m.data, m.len);
        int n = snprintf(text, sizeof text, "e%d", i);
        want = t_fnv(want, text, (size_t)n + 1);
        cr_assert_eq(weir_chan_release(c, id), 0, "%s", weir_errmsg());
        if (i % 7 == 0) {
            struct weir_chan_stats st;
            stats(c, &st);
            cr_assert_geq(st.errors, last, "errors went back from %llu to %llu",
                          (unsigned long long)last, (unsigned long long)st.errors);
            /* counted after publication: at least every record before this one */
            cr_assert_geq(st.errors, (uint64_t)i, "record %d read but errors = %llu", i,
                          (unsigned long long)st.errors);
            cr_assert_leq(st.errors, st.messages, "more errors (%llu) than messages (%llu)",
                          (unsigned long long)st.errors, (unsigned long long)st.messages);
            last = st.errors;
        }
    }
    pthread_join(w.th, NULL);
    cr_assert(w.fail.text[0] == 0, "%s", w.fail.text);
    cr_assert_eq(sum, want, "checksum of the error texts: %016llx, expected %016llx",
                 (unsigned long long)sum, (unsigned long long)want);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.errors, ERR_RECORDS, "errors = %llu", (unsigned long long)st.errors);
    cr_assert_eq(st.messages, ERR_RECORDS);
    cr_assert_eq(weir_chan_deregister_reader(c, id), 0);
    weir_chan_free(c);
}

/* The same across processes: a child writes, the parent reads and counts. */
Test(chan_procs, error_counter_exact_across_processes)
{
    char nm[64];
    weir_chan *c = mk(t_name(nm, sizeof nm, "errx"), 64, 16);
    int id = weir_chan_register_reader(c);
    cr_assert_geq(id, 0, "%s", weir_errmsg());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < ERR_RECORDS; i++)
            CCHECK(weir_chan_write_error(c, "boom", TMO) == 0, "record %d", i);
        _exit(0);
    }
    uint64_t last = 0;
    for (int i = 0; i < ERR_RECORDS; i++) {
        weir_chan_msg m;
        cr_assert_eq(weir_chan_read_msg(c, id, &m, TMO), 0, "record %d: %s", i, weir_errmsg());
        cr_assert_eq(m.flags, WEIR_MSG_ERROR);
        cr_assert_eq(m.len, 5);
        cr_assert(memcmp(m.data, "boom", 5) == 0, "record %d: text %.*s", i, (int)m.len, (const char *)m.data);
        cr_assert_eq(weir_chan_release(c, id), 0);
        struct weir_chan_stats st;
        stats(c, &st);
        cr_assert(st.errors >= last && st.errors >= (uint64_t)i && st.errors <= st.messages, "errors %llu at record %d",
                  (unsigned long long)st.errors, i);
        last = st.errors;
    }
    char sb[64];
    int ws = t_wait_child(pid, TMO);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "writer: %s",
              t_status_str(ws, sb, sizeof sb));
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.errors, ERR_RECORDS, "errors = %llu", (unsigned long long)st.errors);
    cr_assert_eq(weir_chan_deregister_reader(c, id), 0);
    weir_chan_free(c);
}
